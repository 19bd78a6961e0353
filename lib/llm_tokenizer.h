/* Tokenizers that give the same ids as Hugging Face `tokenizers` for three
 * families: byte-level BPE (GPT-2 vocab.json + merges.txt, tokenizer.json
 * with a ByteLevel or Llama-3 Split pre-tokenizer), SentencePiece-style BPE
 * (Llama-2: Prepend/Replace or Metaspace, byte fallback, fused unknowns) and
 * WordPiece (BERT vocab.txt or tokenizer.json, BertNormalizer).
 *
 * Added tokens are matched in the raw text before normalisation (those marked
 * "normalized", in the normalised text, as HF does). Text that is
 * not valid UTF-8 is repaired first (each invalid sequence becomes U+FFFD).
 * Truncation and padding in tokenizer.json are ignored (callers do that).
 * Every malformed file is an error with a detail naming the file and the
 * problem (llm_last_error()); files and texts have size caps. A loaded
 * tokenizer is immutable: encode and decode may run on many threads. */
#ifndef LLM_TOKENIZER_H
#define LLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"

#define LLM_TOK_MAX_FILE      ((size_t)64 << 20) /* tokenizer.json, vocab, merges */
#define LLM_TOK_MAX_TEXT      ((size_t)16 << 20) /* one encode() input */
#define LLM_TOK_MAX_VOCAB     (1u << 22)	 /* ids are below this */
#define LLM_TOK_MAX_TOKEN_LEN 4096		 /* bytes in one vocabulary entry */

/* A loaded tokenizer (opaque). */
typedef struct llm_tok llm_tok;

/* Loads path: a directory (tokenizer.json if present, else vocab.json with
 * merges.txt or GPT-2's encoder.json with vocab.bpe, else vocab.txt) or a file (a .txt file is a
 * WordPiece vocab, anything else is read as tokenizer.json). LLM_ENOTFOUND when nothing loadable is
 * there, LLM_EPARSE for malformed content, LLM_EUNSUPPORTED for a component this module does not
 * implement, LLM_ETOOLARGE over a cap. The caller frees *out with llm_tok_destroy(). */
llm_err llm_tok_load(const char *path, llm_tok **out);

/* Parses a tokenizer.json document held in memory; name labels errors. */
llm_err llm_tok_load_json(const char *text, size_t len, const char *name, llm_tok **out);

/* Loads a GPT-2 style byte-level BPE from vocab.json (encoder.json) and
 * merges.txt (vocab.bpe), configured as HF's ByteLevelBPETokenizer. */
llm_err llm_tok_load_bpe_files(const char *vocab_json, const char *merges_txt, llm_tok **out);

/* Loads a BERT vocab.txt, configured as HF's BertWordPieceTokenizer with
 * the given lowercase (strip_accents follows it). */
llm_err llm_tok_load_wordpiece_file(const char *vocab_txt, bool lowercase, llm_tok **out);

/* Frees t; NULL is a no-op. */
void llm_tok_destroy(llm_tok *t);

/* Encodes len bytes of text. With add_special the post-processor adds its
 * tokens (Llama's <s>, BERT's [CLS] ... [SEP]). On success *ids is a new
 * array of *n ids (free() it; NULL when *n is 0). LLM_ETOOLARGE when len
 * is over LLM_TOK_MAX_TEXT. */
llm_err llm_tok_encode(const llm_tok *t, const char *text, size_t len, bool add_special,
		       uint32_t **ids, size_t *n);

/* Decodes n ids to text as the tokenizer's decoder does; ids out of the
 * vocabulary are skipped, special added tokens too with skip_special. On
 * success *text is a new NUL-terminated string of *len bytes (free() it). */
llm_err llm_tok_decode(const llm_tok *t, const uint32_t *ids, size_t n, bool skip_special,
		       char **text, size_t *len);

/* One more than the largest id (model vocabulary and added tokens). */
size_t llm_tok_vocab_size(const llm_tok *t);

/* The string of id (borrowed, *len bytes, not NUL-terminated in general),
 * or NULL when id is unknown. */
const char *llm_tok_id_to_token(const llm_tok *t, uint32_t id, size_t *len);

/* The id of the token string tok (added tokens first), or false. */
bool llm_tok_token_to_id(const llm_tok *t, const char *tok, size_t len, uint32_t *id);

#endif
