/* Loading tokenizers (see llm_tokenizer.h): tokenizer.json components,
 * GPT-2 vocab.json + merges.txt and BERT vocab.txt. Each unsupported
 * component is LLM_EUNSUPPORTED and each malformed one LLM_EPARSE, with a
 * detail "file: what". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm_json.h"
#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"

#define GPT2_PATTERN \
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3_PATTERN                                                             \
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| " \
	"?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* --- files ------------------------------------------------------------------------ */

static llm_err read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	llm_err err = LLM_OK;

	*out = NULL;
	if (!f)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		err = llm_fail(LLM_EIO, "%s: not a readable regular file", path);
	} else if ((size_t)st.st_size > LLM_TOK_MAX_FILE) {
		err = llm_fail(LLM_ETOOLARGE, "%s: %lld bytes is over the cap of %zu bytes", path,
			       (long long)st.st_size, LLM_TOK_MAX_FILE);
	} else if (!(*out = malloc((size_t)st.st_size + 1))) {
		err = llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	} else {
		*len = fread(*out, 1, (size_t)st.st_size, f);
		(*out)[*len] = '\0';
		if (*len != (size_t)st.st_size)
			err = llm_fail(LLM_EIO, "%s: short read", path);
	}
	fclose(f);
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

static llm_tok *tok_alloc(const char *name)
{
	llm_tok *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->name = strdup(name);
	if (!t->name) {
		free(t);
		return NULL;
	}
	t->unk_id = TOK_NO_ID;
	t->wp_max_chars = 100;
	return t;
}

void llm_tok_destroy(llm_tok *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->id_cap; i++)
		free(t->id_str[i]);
	free(t->id_str);
	free(t->id_len);
	llm_tok_map_free(&t->vocab);
	llm_tok_merges_free(&t->merges);
	for (size_t i = 0; i < t->n_added; i++) {
		if (t->added[i].match != t->added[i].content)
			free(t->added[i].match);
		free(t->added[i].content);
	}
	free(t->added);
	free(t->post_pre);
	free(t->post_post);
	free(t->name);
	free(t);
}

static llm_err bad(const llm_tok *t, const char *what, const char *detail)
{
	return llm_fail(LLM_EPARSE, "%s: %s%s%s", t->name, what, *detail ? ": " : "", detail);
}

static llm_err copy_small(const llm_tok *t, const char *field, const char *s, char *dst)
{
	if (strlen(s) >= TOK_MAX_SMALL_STR)
		return llm_fail(LLM_ETOOLARGE, "%s: %s is over %d bytes", t->name, field,
				TOK_MAX_SMALL_STR - 1);
	memcpy(dst, s, strlen(s) + 1);
	return LLM_OK;
}

/* Optional fields of component objects. */
static bool opt_bool(const json_t *o, const char *key, bool def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

static const char *opt_str(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

/* --- vocabularies ---------------------------------------------------------------------- */

static llm_err load_vocab_obj(llm_tok *t, const json_t *vocab)
{
	const char *key;
	json_t *v;

	if (!json_is_object(vocab))
		return bad(t, "model.vocab is not an object", "");
	json_object_foreach((json_t *)vocab, key, v)
	{
		llm_err err;

		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return bad(t, "vocab entry is not a non-negative integer", key);
		if (json_integer_value(v) >= LLM_TOK_MAX_VOCAB)
			return llm_fail(LLM_ETOOLARGE, "%s: vocab entry \"%s\": id is over the cap",
					t->name, key);
		err = llm_tok_set_token(t, key, strlen(key), (uint32_t)json_integer_value(v));
		if (err)
			return err;
	}
	if (t->vocab.n == 0)
		return bad(t, "the vocabulary is empty", "");
	return LLM_OK;
}

static llm_err add_merge(llm_tok *t, const char *a, size_t al, const char *b, size_t bl,
			 uint32_t rank)
{
	uint32_t ia, ib, id;
	char joined[2 * LLM_TOK_MAX_TOKEN_LEN];

	if (!llm_tok_map_get(&t->vocab, a, al, &ia) || !llm_tok_map_get(&t->vocab, b, bl, &ib))
		return llm_fail(LLM_EPARSE,
				"%s: merge %u (\"%.*s %.*s\") refers to a token not in "
				"the vocabulary",
				t->name, rank + 1, (int)al, a, (int)bl, b);
	memcpy(joined, a, al);
	memcpy(joined + al, b, bl);
	if (!llm_tok_map_get(&t->vocab, joined, al + bl, &id))
		return llm_fail(LLM_EPARSE, "%s: merge %u: \"%.*s\" is not in the vocabulary",
				t->name, rank + 1, (int)(al + bl), joined);
	return llm_tok_merges_put(&t->merges, ia, ib, rank, id);
}

static llm_err load_merges_arr(llm_tok *t, const json_t *merges)
{
	size_t i;
	json_t *m;

	if (!json_is_array(merges))
		return bad(t, "model.merges is not an array", "");
	json_array_foreach(merges, i, m)
	{
		const char *s, *sp;
		llm_err err;

		if (json_is_array(m) && json_array_size(m) == 2 &&
		    json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
			const json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);

			err = add_merge(t, json_string_value(a), json_string_length(a),
					json_string_value(b), json_string_length(b), (uint32_t)i);
		} else if (json_is_string(m) && (sp = strchr(s = json_string_value(m), ' '))) {
			err = add_merge(t, s, (size_t)(sp - s), sp + 1, strlen(sp + 1),
					(uint32_t)i);
		} else {
			return llm_fail(LLM_EPARSE, "%s: merge %zu is not \"a b\" or [a, b]",
					t->name, i + 1);
		}
		if (err)
			return err;
	}
	return LLM_OK;
}

/* merges.txt: "#version" lines skipped, then "a b" per line. */
static llm_err load_merges_txt(llm_tok *t, const char *path, const char *text, size_t len)
{
	uint32_t rank = 0;
	size_t line = 0;

	for (size_t i = 0; i < len;) {
		const char *s = text + i, *nl = memchr(s, '\n', len - i);
		size_t n = nl ? (size_t)(nl - s) : len - i;
		const char *sp;
		llm_err err;

		i += n + (nl != NULL);
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		if (n >= 8 && memcmp(s, "#version", 8) == 0)
			continue;
		sp = memchr(s, ' ', n);
		if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
			return llm_fail(LLM_EPARSE,
					"%s:%zu: a merge must be two tokens separated "
					"by one space",
					path, line);
		err = add_merge(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp + 1 - s), rank++);
		if (err)
			return err;
	}
	return LLM_OK;
}

/* vocab.txt: one token per line, id = line number, trailing space trimmed. */
static llm_err load_vocab_txt(llm_tok *t, const char *text, size_t len)
{
	uint32_t id = 0;

	if (!llm_tok_u_valid(text, len))
		return bad(t, "not valid UTF-8", "");
	for (size_t i = 0; i < len; id++) {
		const char *s = text + i, *nl = memchr(s, '\n', len - i);
		size_t n = nl ? (size_t)(nl - s) : len - i;
		llm_err err;

		i += n + (nl != NULL);
		while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r')))
			n--;
		if (n > LLM_TOK_MAX_TOKEN_LEN || id >= LLM_TOK_MAX_VOCAB)
			return llm_fail(LLM_ETOOLARGE, "%s:%u: line is over a cap", t->name,
					id + 1);
		if ((err = llm_tok_set_token(t, s, n, id)))
			return err;
	}
	return id ? LLM_OK : bad(t, "the vocabulary is empty", "");
}

/* --- added tokens and the post-processor -------------------------------------------------- */

static llm_err add_added(llm_tok *t, const char *s, size_t len, uint32_t id, bool special)
{
	struct tok_added *a = realloc(t->added, (t->n_added + 1) * sizeof(*a));

	if (!a)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	t->added = a;
	if (len == 0 || len > LLM_TOK_MAX_TOKEN_LEN)
		return bad(t, "an added token is empty or too long", "");
	a = &t->added[t->n_added];
	memset(a, 0, sizeof(*a));
	if (!(a->content = malloc(len + 1)))
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	memcpy(a->content, s, len);
	a->content[len] = '\0';
	a->len = len;
	a->match = a->content;
	a->match_len = len;
	a->id = id;
	a->special = special;
	t->n_added++;
	return llm_tok_set_token(t, s, len, id);
}

static llm_err load_added(llm_tok *t, const json_t *arr)
{
	size_t i;
	json_t *o;

	if (!arr || json_is_null(arr))
		return LLM_OK;
	if (!json_is_array(arr))
		return bad(t, "added_tokens is not an array", "");
	json_array_foreach(arr, i, o)
	{
		const json_t *c = json_object_get(o, "content"), *id = json_object_get(o, "id");
		llm_err err;

		if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) >= LLM_TOK_MAX_VOCAB)
			return llm_fail(LLM_EPARSE,
					"%s: added_tokens[%zu] needs a content string "
					"and an id in range",
					t->name, i);
		err = add_added(t, json_string_value(c), json_string_length(c),
				(uint32_t)json_integer_value(id), opt_bool(o, "special", false));
		if (err)
			return err;
		struct tok_added *a = &t->added[t->n_added - 1];

		a->lstrip = opt_bool(o, "lstrip", false);
		a->rstrip = opt_bool(o, "rstrip", false);
		a->single_word = opt_bool(o, "single_word", false);
		a->normalized = opt_bool(o, "normalized", !a->special);
	}
	return LLM_OK;
}

static llm_err append_ids(llm_tok *t, uint32_t **dst, size_t *n, const uint32_t *ids, size_t k)
{
	uint32_t *p = realloc(*dst, (*n + k + 1) * sizeof(*p));

	if (!p)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	memcpy(p + *n, ids, k * sizeof(*p));
	*dst = p;
	*n += k;
	return LLM_OK;
}

/* TemplateProcessing "single": special tokens before and after $A. */
static llm_err load_template(llm_tok *t, const json_t *pp)
{
	const json_t *single = json_object_get(pp, "single"), *sp;
	bool seen_a = false;
	size_t i;
	json_t *item;

	sp = json_object_get(pp, "special_tokens");
	if (!json_is_array(single))
		return bad(t, "post_processor.single is not an array", "");
	json_array_foreach(single, i, item)
	{
		const json_t *st = json_object_get(item, "SpecialToken");
		const json_t *ids, *v;
		size_t j;
		llm_err err = LLM_OK;

		if (json_object_get(item, "Sequence")) {
			seen_a = true;
			continue;
		}
		ids = json_object_get(json_object_get(sp, opt_str(st, "id", "")), "ids");
		if (!json_is_array(ids))
			return bad(t, "post_processor: special token without ids",
				   opt_str(st, "id", "?"));
		json_array_foreach(ids, j, v)
		{
			uint32_t id;

			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) >= LLM_TOK_MAX_VOCAB)
				return bad(t, "post_processor: bad id", opt_str(st, "id", "?"));
			id = (uint32_t)json_integer_value(v);
			err = seen_a ? append_ids(t, &t->post_post, &t->n_post_post, &id, 1)
				     : append_ids(t, &t->post_pre, &t->n_post_pre, &id, 1);
			if (err)
				return err;
		}
	}
	return LLM_OK;
}

/* BertProcessing / RobertaProcessing: "cls": [token, id], "sep": [token, id]. */
static llm_err load_cls_sep(llm_tok *t, const json_t *pp)
{
	const json_t *cls = json_array_get(json_object_get(pp, "cls"), 1);
	const json_t *sep = json_array_get(json_object_get(pp, "sep"), 1);
	uint32_t c, s;
	llm_err err;

	if (!json_is_integer(cls) || !json_is_integer(sep) || json_integer_value(cls) < 0 ||
	    json_integer_value(sep) < 0)
		return bad(t, "post_processor needs cls and sep as [token, id]", "");
	c = (uint32_t)json_integer_value(cls);
	s = (uint32_t)json_integer_value(sep);
	err = append_ids(t, &t->post_pre, &t->n_post_pre, &c, 1);
	return err ? err : append_ids(t, &t->post_post, &t->n_post_post, &s, 1);
}

static llm_err load_post(llm_tok *t, const json_t *pp)
{
	const char *type = opt_str(pp, "type", "");

	if (!pp || json_is_null(pp) || !strcmp(type, "ByteLevel"))
		return LLM_OK;
	if (!strcmp(type, "TemplateProcessing"))
		return load_template(t, pp);
	if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing"))
		return load_cls_sep(t, pp);
	if (!strcmp(type, "Sequence")) {
		size_t i;
		json_t *p;

		json_array_foreach(json_object_get(pp, "processors"), i, p)
		{
			llm_err err = load_post(t, p);

			if (err)
				return err;
		}
		return LLM_OK;
	}
	return llm_fail(LLM_EUNSUPPORTED, "%s: post_processor type \"%s\" is not supported",
			t->name, type);
}

/* --- normalizer, pre-tokenizer, decoder -------------------------------------------------- */

static const char *string_pattern(const json_t *o)
{
	return opt_str(json_object_get(o, "pattern"), "String", NULL);
}

static llm_err load_norm(llm_tok *t, const json_t *o)
{
	const char *type = opt_str(o, "type", "");
	struct tok_norm *nm;

	if (!o || json_is_null(o))
		return LLM_OK;
	if (!strcmp(type, "Sequence")) {
		size_t i;
		json_t *s;

		json_array_foreach(json_object_get(o, "normalizers"), i, s)
		{
			llm_err err = load_norm(t, s);

			if (err)
				return err;
		}
		return LLM_OK;
	}
	if (t->n_norm == TOK_MAX_STEPS)
		return llm_fail(LLM_EUNSUPPORTED, "%s: more than %d normalizers", t->name,
				TOK_MAX_STEPS);
	nm = &t->norm[t->n_norm++];
	if (!strcmp(type, "BertNormalizer")) {
		const json_t *sa = json_object_get(o, "strip_accents");

		nm->kind = NORM_BERT;
		nm->clean = opt_bool(o, "clean_text", true);
		nm->chinese = opt_bool(o, "handle_chinese_chars", true);
		nm->lower = opt_bool(o, "lowercase", true);
		nm->strip = json_is_boolean(sa) ? json_is_true(sa) : nm->lower;
		return LLM_OK;
	}
	if (!strcmp(type, "Prepend")) {
		nm->kind = NORM_PREPEND;
		return copy_small(t, "Prepend.prepend", opt_str(o, "prepend", ""), nm->a);
	}
	if (!strcmp(type, "Replace") && string_pattern(o)) {
		llm_err err = copy_small(t, "Replace.pattern", string_pattern(o), nm->a);

		nm->kind = NORM_REPLACE;
		return err ? err
			   : copy_small(t, "Replace.content", opt_str(o, "content", ""), nm->b);
	}
	if (!strcmp(type, "Lowercase") || !strcmp(type, "NFD")) {
		nm->kind = type[0] == 'L' ? NORM_LOWER : NORM_NFD;
		return LLM_OK;
	}
	return llm_fail(LLM_EUNSUPPORTED, "%s: normalizer \"%s\" is not supported", t->name, type);
}

static llm_err regex_kind(llm_tok *t, const char *re, enum tok_regex *out)
{
	if (re && !strcmp(re, GPT2_PATTERN)) {
		*out = RE_GPT2;
		return LLM_OK;
	}
	if (re && !strcmp(re, LLAMA3_PATTERN)) {
		*out = RE_LLAMA3;
		return LLM_OK;
	}
	return llm_fail(LLM_EUNSUPPORTED,
			"%s: Split pattern %s is not supported (only the GPT-2 "
			"and Llama-3 patterns)",
			t->name, re ? re : "(not a Regex)");
}

static enum tok_prepend prepend_scheme(const json_t *o)
{
	const char *s = opt_str(o, "prepend_scheme", NULL);

	if (!s)
		return opt_bool(o, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER;
	return !strcmp(s, "first") ? PREPEND_FIRST
				   : (!strcmp(s, "never") ? PREPEND_NEVER : PREPEND_ALWAYS);
}

static llm_err load_split(llm_tok *t, const json_t *o, struct tok_pre *p)
{
	const char *re = opt_str(json_object_get(o, "pattern"), "Regex", NULL);

	p->kind = PRE_SPLIT;
	if (strcmp(opt_str(o, "behavior", ""), "Isolated") || opt_bool(o, "invert", false))
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: only Split with behavior Isolated is "
				"supported",
				t->name);
	return regex_kind(t, re, &p->re);
}

static llm_err load_pre(llm_tok *t, const json_t *o)
{
	const char *type = opt_str(o, "type", "");
	struct tok_pre *p;

	if (!o || json_is_null(o))
		return LLM_OK;
	if (!strcmp(type, "Sequence")) {
		size_t i;
		json_t *s;

		json_array_foreach(json_object_get(o, "pretokenizers"), i, s)
		{
			llm_err err = load_pre(t, s);

			if (err)
				return err;
		}
		return LLM_OK;
	}
	if (t->n_pre == TOK_MAX_STEPS)
		return llm_fail(LLM_EUNSUPPORTED, "%s: more than %d pre-tokenizers", t->name,
				TOK_MAX_STEPS);
	p = &t->pre[t->n_pre++];
	if (!strcmp(type, "Split"))
		return load_split(t, o, p);
	if (!strcmp(type, "ByteLevel")) {
		p->kind = PRE_BYTELEVEL;
		p->re = RE_GPT2;
		p->use_regex = opt_bool(o, "use_regex", true);
		p->add_prefix_space = opt_bool(o, "add_prefix_space", true);
		return LLM_OK;
	}
	if (!strcmp(type, "Metaspace")) {
		p->kind = PRE_METASPACE;
		p->prepend = prepend_scheme(o);
		p->split = opt_bool(o, "split", true);
		return copy_small(t, "Metaspace.replacement", opt_str(o, "replacement", "\u2581"),
				  p->a);
	}
	if (!strcmp(type, "BertPreTokenizer") || !strcmp(type, "WhitespaceSplit")) {
		p->kind = type[0] == 'B' ? PRE_BERT : PRE_WSSPLIT;
		return LLM_OK;
	}
	return llm_fail(LLM_EUNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", t->name,
			type);
}

static llm_err load_dec_one(llm_tok *t, const json_t *o, const char *type, struct tok_dec *d)
{
	if (!strcmp(type, "ByteLevel") || !strcmp(type, "ByteFallback") || !strcmp(type, "Fuse")) {
		d->kind = type[0] == 'F' ? DEC_FUSE
					 : (type[4] == 'L' ? DEC_BYTELEVEL : DEC_BYTEFALLBACK);
		return LLM_OK;
	}
	if (!strcmp(type, "Replace") && string_pattern(o)) {
		llm_err err = copy_small(t, "Replace.pattern", string_pattern(o), d->a);

		d->kind = DEC_REPLACE;
		return err ? err
			   : copy_small(t, "Replace.content", opt_str(o, "content", ""), d->b);
	}
	if (!strcmp(type, "Strip")) {
		const json_t *start = json_object_get(o, "start"),
			     *stop = json_object_get(o, "stop");

		d->kind = DEC_STRIP;
		d->start = json_is_integer(start) ? (size_t)json_integer_value(start) : 0;
		d->stop = json_is_integer(stop) ? (size_t)json_integer_value(stop) : 0;
		return copy_small(t, "Strip.content", opt_str(o, "content", " "), d->a);
	}
	if (!strcmp(type, "WordPiece")) {
		d->kind = DEC_WORDPIECE;
		d->cleanup = opt_bool(o, "cleanup", true);
		return copy_small(t, "WordPiece.prefix", opt_str(o, "prefix", "##"), d->a);
	}
	if (!strcmp(type, "Metaspace")) {
		d->kind = DEC_METASPACE;
		d->prefix_space = prepend_scheme(o) != PREPEND_NEVER;
		return copy_small(t, "Metaspace.replacement", opt_str(o, "replacement", "\u2581"),
				  d->a);
	}
	return llm_fail(LLM_EUNSUPPORTED, "%s: decoder \"%s\" is not supported", t->name, type);
}

static llm_err load_dec(llm_tok *t, const json_t *o)
{
	const char *type = opt_str(o, "type", "");

	if (!o || json_is_null(o))
		return LLM_OK;
	t->has_decoder = true;
	if (!strcmp(type, "Sequence")) {
		size_t i;
		json_t *s;

		json_array_foreach(json_object_get(o, "decoders"), i, s)
		{
			llm_err err = load_dec(t, s);

			if (err)
				return err;
		}
		return LLM_OK;
	}
	if (t->n_dec == TOK_MAX_STEPS)
		return llm_fail(LLM_EUNSUPPORTED, "%s: more than %d decoders", t->name,
				TOK_MAX_STEPS);
	return load_dec_one(t, o, type, &t->dec[t->n_dec++]);
}

/* --- models ---------------------------------------------------------------------------- */

static llm_err find_unk(llm_tok *t, const char *unk)
{
	if (!unk)
		return LLM_OK;
	if (!llm_tok_map_get(&t->vocab, unk, strlen(unk), &t->unk_id))
		return bad(t, "unk_token is not in the vocabulary", unk);
	return LLM_OK;
}

static llm_err load_bpe(llm_tok *t, const json_t *m)
{
	llm_err err;

	/* GPT-2's tokenizer.json spells "none" as "" */
	if (*opt_str(m, "continuing_subword_prefix", "") || *opt_str(m, "end_of_word_suffix", ""))
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: BPE continuing_subword_prefix and "
				"end_of_word_suffix are not supported",
				t->name);
	t->model = MODEL_BPE;
	t->byte_fallback = opt_bool(m, "byte_fallback", false);
	t->fuse_unk = opt_bool(m, "fuse_unk", false);
	t->ignore_merges = opt_bool(m, "ignore_merges", false);
	err = load_vocab_obj(t, json_object_get(m, "vocab"));
	if (!err)
		err = load_merges_arr(t, json_object_get(m, "merges"));
	return err ? err : find_unk(t, opt_str(m, "unk_token", NULL));
}

static llm_err load_wordpiece(llm_tok *t, const json_t *m)
{
	const json_t *mx = json_object_get(m, "max_input_chars_per_word");
	llm_err err;

	t->model = MODEL_WORDPIECE;
	if (json_is_integer(mx) && json_integer_value(mx) >= 0)
		t->wp_max_chars = (size_t)json_integer_value(mx);
	err = copy_small(t, "continuing_subword_prefix",
			 opt_str(m, "continuing_subword_prefix", "##"), t->wp_prefix);
	if (!err)
		err = load_vocab_obj(t, json_object_get(m, "vocab"));
	if (!err)
		err = find_unk(t, opt_str(m, "unk_token", "[UNK]"));
	if (!err && t->unk_id == TOK_NO_ID)
		err = bad(t, "WordPiece needs an unk_token", "");
	return err;
}

static llm_err load_model(llm_tok *t, const json_t *m)
{
	const char *type = opt_str(m, "type", NULL);

	if (!json_is_object(m))
		return bad(t, "no \"model\" object", "");
	if (!type)
		type = json_object_get(m, "merges") ? "BPE" : "WordPiece";
	if (!strcmp(type, "BPE"))
		return load_bpe(t, m);
	if (!strcmp(type, "WordPiece"))
		return load_wordpiece(t, m);
	return llm_fail(LLM_EUNSUPPORTED, "%s: model type \"%s\" is not supported", t->name, type);
}

/* Sorts added tokens longest first, so the first match is the longest. */
static int added_cmp(const void *a, const void *b)
{
	const struct tok_added *x = a, *y = b;

	if (x->match_len != y->match_len)
		return x->match_len < y->match_len ? 1 : -1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Sorts added tokens longest first and notes their first bytes. */
static void sort_added(llm_tok *t)
{
	if (t->n_added)
		qsort(t->added, t->n_added, sizeof(*t->added), added_cmp);
	for (size_t i = 0; i < t->n_added; i++)
		if (t->added[i].match_len)
			t->added_first[(unsigned char)t->added[i].match[0]] = true;
}

/* Normalised added tokens are matched in normalised text: normalise them
 * with the tokenizer's normalizer, as HF does (their id then decodes to the
 * normalised form, as in HF). */
static llm_err normalize_added(llm_tok *t)
{
	for (size_t i = 0; i < t->n_added; i++) {
		struct tok_added *a = &t->added[i];
		llm_buf b;
		llm_err err;

		if (!a->normalized || t->n_norm == 0)
			continue;
		llm_buf_init(&b, 4 * LLM_TOK_MAX_TOKEN_LEN);
		err = llm_tok_normalize(t, a->content, a->len, &b);
		if (err) {
			llm_buf_free(&b);
			return err;
		}
		a->match_len = b.len;
		a->match = b.len ? llm_buf_steal(&b) : a->content;
		llm_buf_free(&b);
		/* HF decodes such a token to its normalised form too */
		char *copy = strndup(a->match, a->match_len);

		if (!copy)
			return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
		free(t->id_str[a->id]);
		t->id_str[a->id] = copy;
		t->id_len[a->id] = (uint32_t)a->match_len;
	}
	return LLM_OK;
}

static llm_err load_root(llm_tok *t, const json_t *root)
{
	llm_err err;

	if (!json_is_object(root))
		return bad(t, "not a JSON object", "");
	err = load_model(t, json_object_get(root, "model"));
	if (!err)
		err = load_added(t, json_object_get(root, "added_tokens"));
	if (!err)
		err = load_norm(t, json_object_get(root, "normalizer"));
	if (!err)
		err = load_pre(t, json_object_get(root, "pre_tokenizer"));
	if (!err)
		err = load_dec(t, json_object_get(root, "decoder"));
	if (!err)
		err = load_post(t, json_object_get(root, "post_processor"));
	if (!err)
		err = normalize_added(t);
	if (!err)
		sort_added(t);
	return err;
}

llm_err llm_tok_load_json(const char *text, size_t len, const char *name, llm_tok **out)
{
	json_t *root;
	llm_tok *t;
	llm_err err;

	*out = NULL;
	err = llm_json_parse(text, len, LLM_TOK_MAX_FILE, name, &root);
	if (err)
		return err;
	t = tok_alloc(name);
	if (!t) {
		json_decref(root);
		return llm_fail(LLM_ENOMEM, "%s: out of memory", name);
	}
	err = load_root(t, root);
	json_decref(root);
	if (err) {
		llm_tok_destroy(t);
		return err;
	}
	*out = t;
	return LLM_OK;
}

/* --- explicit files and directories ----------------------------------------------------- */

static llm_err load_json_file(const char *path, llm_tok **out)
{
	char *text;
	size_t len;
	llm_err err = read_file(path, &text, &len);

	if (err)
		return err;
	err = llm_tok_load_json(text, len, path, out);
	free(text);
	return err;
}

static llm_err gpt2_files(llm_tok *t, const char *vocab_json, const char *merges_txt)
{
	char *text;
	size_t len;
	json_t *root;
	llm_err err = read_file(vocab_json, &text, &len);

	if (err)
		return err;
	err = llm_json_parse(text, len, LLM_TOK_MAX_FILE, vocab_json, &root);
	free(text);
	if (err)
		return err;
	err = load_vocab_obj(t, root);
	json_decref(root);
	if (err)
		return err;
	if ((err = read_file(merges_txt, &text, &len)))
		return err;
	err = load_merges_txt(t, merges_txt, text, len);
	free(text);
	return err;
}

llm_err llm_tok_load_bpe_files(const char *vocab_json, const char *merges_txt, llm_tok **out)
{
	llm_tok *t = tok_alloc(vocab_json);
	llm_err err;

	*out = NULL;
	if (!t)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", vocab_json);
	t->model = MODEL_BPE;
	t->n_pre = 1;
	t->pre[0] = (struct tok_pre){.kind = PRE_BYTELEVEL, .re = RE_GPT2, .use_regex = true};
	t->n_dec = 1;
	t->has_decoder = true;
	t->dec[0].kind = DEC_BYTELEVEL;
	err = gpt2_files(t, vocab_json, merges_txt);
	if (err) {
		llm_tok_destroy(t);
		return err;
	}
	*out = t;
	return LLM_OK;
}

static llm_err bert_setup(llm_tok *t, bool lowercase)
{
	static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
	uint32_t id, cls, sep;
	llm_err err = LLM_OK;

	for (size_t i = 0; i < 5 && !err; i++)
		if (llm_tok_map_get(&t->vocab, specials[i], strlen(specials[i]), &id))
			err = add_added(t, specials[i], strlen(specials[i]), id, true);
	if (err)
		return err;
	sort_added(t);
	if (!llm_tok_map_get(&t->vocab, "[UNK]", 5, &t->unk_id) ||
	    !llm_tok_map_get(&t->vocab, "[CLS]", 5, &cls) ||
	    !llm_tok_map_get(&t->vocab, "[SEP]", 5, &sep))
		return bad(t, "[UNK], [CLS] or [SEP] is missing", "");
	t->norm[0] = (struct tok_norm){.kind = NORM_BERT,
				       .clean = true,
				       .chinese = true,
				       .strip = lowercase,
				       .lower = lowercase};
	t->n_norm = 1;
	t->pre[0].kind = PRE_BERT;
	t->n_pre = 1;
	t->dec[0] = (struct tok_dec){.kind = DEC_WORDPIECE, .a = "##", .cleanup = true};
	t->n_dec = 1;
	t->has_decoder = true;
	err = append_ids(t, &t->post_pre, &t->n_post_pre, &cls, 1);
	return err ? err : append_ids(t, &t->post_post, &t->n_post_post, &sep, 1);
}

llm_err llm_tok_load_wordpiece_file(const char *vocab_txt, bool lowercase, llm_tok **out)
{
	llm_tok *t = tok_alloc(vocab_txt);
	char *text = NULL;
	size_t len;
	llm_err err;

	*out = NULL;
	if (!t)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", vocab_txt);
	t->model = MODEL_WORDPIECE;
	memcpy(t->wp_prefix, "##", 3);
	err = read_file(vocab_txt, &text, &len);
	if (!err)
		err = load_vocab_txt(t, text, len);
	free(text);
	if (!err)
		err = bert_setup(t, lowercase);
	if (err) {
		llm_tok_destroy(t);
		return err;
	}
	*out = t;
	return LLM_OK;
}

static bool exists(const char *dir, const char *file, char *path, size_t cap)
{
	struct stat st;

	snprintf(path, cap, "%s/%s", dir, file);
	return stat(path, &st) == 0;
}

llm_err llm_tok_load(const char *path, llm_tok **out)
{
	char a[4096], b[4096];
	struct stat st;
	size_t n = strlen(path);

	*out = NULL;
	if (n >= 4000)
		return llm_fail(LLM_EINVAL, "tokenizer path is too long");
	if (stat(path, &st) != 0)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (n >= 4 && !strcmp(path + n - 4, ".txt"))
			return llm_tok_load_wordpiece_file(path, true, out);
		return load_json_file(path, out);
	}
	if (exists(path, "tokenizer.json", a, sizeof(a)))
		return load_json_file(a, out);
	if (exists(path, "vocab.json", a, sizeof(a)) && exists(path, "merges.txt", b, sizeof(b)))
		return llm_tok_load_bpe_files(a, b, out);
	if (exists(path, "encoder.json", a, sizeof(a)) && exists(path, "vocab.bpe", b, sizeof(b)))
		return llm_tok_load_bpe_files(a, b, out); /* GPT-2's original names */
	if (exists(path, "vocab.txt", a, sizeof(a)))
		return llm_tok_load_wordpiece_file(a, true, out);
	return llm_fail(LLM_ENOTFOUND,
			"%s: no tokenizer.json, vocab.json with merges.txt, or "
			"vocab.txt",
			path);
}
