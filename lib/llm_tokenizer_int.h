/* Internals shared by the tokenizer's source files (not a public header):
 * the tokenizer struct, the string->id map, the merge table, and the
 * normalizer, pre-tokenizer, model, decoder and post-processor steps. */
#ifndef LLM_TOKENIZER_INT_H
#define LLM_TOKENIZER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_buf.h"
#include "llm_err.h"
#include "llm_tokenizer.h"

#define TOK_MAX_STEPS	  8  /* steps in one normalizer/pre-tokenizer/decoder */
#define TOK_MAX_SMALL_STR 64 /* prefixes, replacements, special token names */
#define TOK_NO_ID	  UINT32_MAX

/* Open-addressing map from byte strings to ids; keys are copied. */
struct tok_map {
	struct tok_map_slot {
		char *key;
		uint32_t len;
		uint32_t val;
	} * slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

/* BPE merges: (left id, right id) -> (rank, merged id). */
struct tok_merges {
	struct tok_merge_slot {
		uint64_t key; /* left << 32 | right, + 1 so 0 is empty */
		uint32_t rank;
		uint32_t id;
	} * slots;
	size_t cap;
	size_t n;
};

/* A list of strings sharing one buffer (pre-tokens, decoder tokens). */
struct tok_list {
	llm_buf text;
	struct tok_piece {
		size_t off;
		size_t len;
	} * items;
	size_t n, cap;
};

enum tok_norm_kind { NORM_BERT, NORM_PREPEND, NORM_REPLACE, NORM_LOWER, NORM_NFD, NORM_STRIP };
struct tok_norm {
	enum tok_norm_kind kind;
	bool clean, chinese, strip, lower; /* NORM_BERT */
	char a[TOK_MAX_SMALL_STR];	   /* prepend text, replace pattern */
	char b[TOK_MAX_SMALL_STR];	   /* replace content */
};

enum tok_regex { RE_GPT2, RE_LLAMA3 };
enum tok_pre_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE, PRE_BERT, PRE_WSSPLIT };
enum tok_prepend { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
struct tok_pre {
	enum tok_pre_kind kind;
	enum tok_regex re;	   /* PRE_SPLIT, PRE_BYTELEVEL with use_regex */
	bool use_regex;		   /* PRE_BYTELEVEL */
	bool add_prefix_space;	   /* PRE_BYTELEVEL */
	enum tok_prepend prepend;  /* PRE_METASPACE */
	bool split;		   /* PRE_METASPACE */
	char a[TOK_MAX_SMALL_STR]; /* PRE_METASPACE replacement */
};

enum tok_dec_kind {
	DEC_BYTELEVEL,
	DEC_REPLACE,
	DEC_BYTEFALLBACK,
	DEC_FUSE,
	DEC_STRIP,
	DEC_WORDPIECE,
	DEC_METASPACE
};
struct tok_dec {
	enum tok_dec_kind kind;
	char a[TOK_MAX_SMALL_STR]; /* replace pattern, strip content, prefix */
	char b[TOK_MAX_SMALL_STR]; /* replace content */
	size_t start, stop;	   /* DEC_STRIP */
	bool cleanup;		   /* DEC_WORDPIECE */
	bool prefix_space;	   /* DEC_METASPACE: drop the first leading space */
};

struct tok_added {
	char *content;
	size_t len;
	char *match; /* what is matched: content, normalised when normalized */
	size_t match_len;
	uint32_t id;
	bool special, lstrip, rstrip, single_word, normalized;
};

enum tok_model_kind { MODEL_BPE, MODEL_WORDPIECE };

struct llm_tok {
	char *name; /* the file it came from, for errors */
	enum tok_model_kind model;
	struct tok_map vocab;
	char **id_str; /* id -> token string (owned), NULL for holes */
	uint32_t *id_len;
	uint32_t n_ids;	 /* one more than the largest id */
	uint32_t id_cap; /* entries allocated in id_str and id_len */
	uint32_t unk_id; /* TOK_NO_ID when none */
	/* BPE */
	struct tok_merges merges;
	bool byte_fallback, fuse_unk, ignore_merges;
	/* WordPiece */
	char wp_prefix[TOK_MAX_SMALL_STR];
	size_t wp_max_chars;
	/* pipeline */
	struct tok_norm norm[TOK_MAX_STEPS];
	size_t n_norm;
	struct tok_pre pre[TOK_MAX_STEPS];
	size_t n_pre;
	struct tok_dec dec[TOK_MAX_STEPS];
	size_t n_dec;
	bool has_decoder;
	/* post-processor, single sequence: ids before and after */
	uint32_t *post_pre, *post_post;
	size_t n_post_pre, n_post_post;
	/* added tokens, sorted longest first */
	struct tok_added *added;
	size_t n_added;
	bool added_first[256]; /* first bytes of added tokens' match strings */
};

/* tok_map */
llm_err llm_tok_map_put(struct tok_map *m, const char *key, size_t len, uint32_t val);
bool llm_tok_map_get(const struct tok_map *m, const char *key, size_t len, uint32_t *val);
void llm_tok_map_free(struct tok_map *m);

/* tok_merges: a later duplicate pair replaces the earlier one (as HF). */
llm_err llm_tok_merges_put(struct tok_merges *m, uint32_t a, uint32_t b, uint32_t rank,
			   uint32_t id);
void llm_tok_merges_free(struct tok_merges *m);

/* tok_list */
void llm_tok_list_init(struct tok_list *l);
llm_err llm_tok_list_add(struct tok_list *l, const char *s, size_t len);
/* Starts an empty item whose bytes are appended to l->text afterwards. */
llm_err llm_tok_list_open(struct tok_list *l);
void llm_tok_list_close(struct tok_list *l);
void llm_tok_list_reset(struct tok_list *l);
void llm_tok_list_free(struct tok_list *l);

/* Sets token id's string (copied) in the id table and the vocabulary map. */
llm_err llm_tok_set_token(llm_tok *t, const char *s, size_t len, uint32_t id);

/* Normalises s (n bytes of valid UTF-8) with t's normalizer into out. */
llm_err llm_tok_normalize(const llm_tok *t, const char *s, size_t n, llm_buf *out);

/* Pre-tokenises s into pieces (appended to out); first says whether s
 * starts the input (Metaspace prepend_scheme "first"). */
llm_err llm_tok_pretokenize(const llm_tok *t, const char *s, size_t n, bool first,
			    struct tok_list *out);

/* Runs the model on one pre-token and appends its ids. */
llm_err llm_tok_model_encode(const llm_tok *t, const char *s, size_t n, uint32_t **ids,
			     size_t *nids, size_t *cap);

/* The byte-level alphabet: byte -> code point, and back (-1 if none). */
uint32_t llm_tok_byte_to_cp(unsigned char b);
int llm_tok_cp_to_byte(uint32_t cp);

#endif
