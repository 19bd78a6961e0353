/* Encoding and decoding (see llm_tokenizer.h): added tokens are cut out of
 * the raw text first (leftmost, longest), the rest is normalised, split by
 * the normalised added tokens, pre-tokenised and run through the model; the
 * post-processor wraps the ids. Decoding maps ids to strings and runs the
 * decoder steps over the list, as HF's decode_chain. */
#include <stdlib.h>
#include <string.h>

#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"

struct ids {
	uint32_t *v;
	size_t n, cap;
};

static llm_err ids_push(struct ids *a, uint32_t id)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		uint32_t *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = id;
	return LLM_OK;
}

size_t llm_tok_vocab_size(const llm_tok *t)
{
	return t->n_ids;
}

const char *llm_tok_id_to_token(const llm_tok *t, uint32_t id, size_t *len)
{
	if (id >= t->n_ids || !t->id_str[id])
		return NULL;
	*len = t->id_len[id];
	return t->id_str[id];
}

bool llm_tok_token_to_id(const llm_tok *t, const char *tok, size_t len, uint32_t *id)
{
	for (size_t i = 0; i < t->n_added; i++)
		if (t->added[i].len == len && memcmp(t->added[i].content, tok, len) == 0) {
			*id = t->added[i].id;
			return true;
		}
	return llm_tok_map_get(&t->vocab, tok, len, id);
}

/* --- added tokens ------------------------------------------------------------------ */

static bool is_word_char(uint32_t cp)
{
	return cp == '_' || llm_tok_u_is_letter(cp) || llm_tok_u_is_number(cp);
}

/* Whether the match s[at..at+len) stands alone as a word. */
static bool single_word_ok(const char *s, size_t n, size_t at, size_t len)
{
	size_t i = at + len, j = at;

	if (i < n && is_word_char(llm_tok_u_next(s, n, &i)))
		return false;
	while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
		j--;
	if (j > 0) {
		size_t k = j - 1;

		while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		if (is_word_char(llm_tok_u_next(s, n, &k)))
			return false;
	}
	return true;
}

/* The added token (of the given normalized kind) at s[at], longest first. */
static const struct tok_added *added_at(const llm_tok *t, const char *s, size_t n, size_t at,
					bool normalized)
{
	for (size_t k = 0; k < t->n_added; k++) {
		const struct tok_added *a = &t->added[k];

		if (a->normalized != normalized || !a->match_len || a->match[0] != s[at] ||
		    a->match_len > n - at || memcmp(a->match, s + at, a->match_len) != 0)
			continue;
		if (a->single_word && !single_word_ok(s, n, at, a->match_len))
			continue;
		return a;
	}
	return NULL;
}

/* Calls fn for each piece of s: text between added tokens (id TOK_NO_ID)
 * and the added tokens, whose lstrip/rstrip swallow adjacent whitespace. */
typedef llm_err (*piece_fn)(const llm_tok *t, const char *s, size_t n, uint32_t id, bool first,
			    void *data);

/* Start of the whitespace run that ends at s[from], not before floor. */
static size_t space_back(const char *s, size_t from, size_t floor)
{
	while (from > floor) {
		size_t k = from - 1, i;

		while (k > floor && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		i = k;
		if (!llm_tok_u_is_space(llm_tok_u_next(s, from, &i)))
			break;
		from = k;
	}
	return from;
}

/* End of the whitespace run that starts at s[from]. */
static size_t space_fwd(const char *s, size_t n, size_t from)
{
	while (from < n) {
		size_t i = from;

		if (!llm_tok_u_is_space(llm_tok_u_next(s, n, &i)))
			break;
		from = i;
	}
	return from;
}

static llm_err split_added(const llm_tok *t, const char *s, size_t n, bool normalized, bool first,
			   piece_fn fn, void *data)
{
	size_t start = 0;
	llm_err err = LLM_OK;

	for (size_t at = 0; at < n && !err; at++) {
		const struct tok_added *a = t->added_first[(unsigned char)s[at]]
						    ? added_at(t, s, n, at, normalized)
						    : NULL;
		size_t end;

		if (!a)
			continue;
		end = a->lstrip ? space_back(s, at, start) : at;
		if (end > start)
			err = fn(t, s + start, end - start, TOK_NO_ID, first && start == 0, data);
		if (!err)
			err = fn(t, s + at, a->match_len, a->id, false, data);
		start = at + a->match_len;
		if (a->rstrip)
			start = space_fwd(s, n, start);
		at = start - 1;
	}
	if (!err && n > start)
		err = fn(t, s + start, n - start, TOK_NO_ID, first && start == 0, data);
	return err;
}

/* --- encode -------------------------------------------------------------------------- */

static llm_err encode_normalized(const llm_tok *t, const char *s, size_t n, uint32_t id, bool first,
				 void *data)
{
	struct ids *out = data;
	struct tok_list pieces;
	llm_err err;

	if (id != TOK_NO_ID)
		return ids_push(out, id);
	llm_tok_list_init(&pieces);
	err = llm_tok_pretokenize(t, s, n, first, &pieces);
	for (size_t i = 0; i < pieces.n && !err; i++)
		err = llm_tok_model_encode(t, llm_buf_str(&pieces.text) + pieces.items[i].off,
					   pieces.items[i].len, &out->v, &out->n, &out->cap);
	llm_tok_list_free(&pieces);
	return err;
}

static llm_err encode_raw(const llm_tok *t, const char *s, size_t n, uint32_t id, bool first,
			  void *data)
{
	llm_buf norm;
	llm_err err;

	if (id != TOK_NO_ID)
		return ids_push(data, id);
	llm_buf_init(&norm, LLM_TOK_MAX_TEXT * 4);
	err = llm_tok_normalize(t, s, n, &norm);
	if (!err)
		err = split_added(t, llm_buf_str(&norm), norm.len, true, first, encode_normalized,
				  data);
	llm_buf_free(&norm);
	return err;
}

llm_err llm_tok_encode(const llm_tok *t, const char *text, size_t len, bool add_special,
		       uint32_t **ids, size_t *n)
{
	struct ids out = {0};
	llm_buf clean;
	llm_err err = LLM_OK;

	*ids = NULL;
	*n = 0;
	if (len > LLM_TOK_MAX_TEXT)
		return llm_fail(LLM_ETOOLARGE,
				"tokenizer: %zu bytes of text is over the cap of %zu", len,
				LLM_TOK_MAX_TEXT);
	llm_buf_init(&clean, LLM_TOK_MAX_TEXT * 3);
	if (!llm_tok_u_valid(text, len))
		err = llm_tok_u_append_lossy(&clean, text, len);
	const char *s = clean.len ? llm_buf_str(&clean) : text;
	size_t sn = clean.len ? clean.len : len;

	for (size_t i = 0; add_special && i < t->n_post_pre && !err; i++)
		err = ids_push(&out, t->post_pre[i]);
	if (!err)
		err = split_added(t, s, sn, false, true, encode_raw, &out);
	for (size_t i = 0; add_special && i < t->n_post_post && !err; i++)
		err = ids_push(&out, t->post_post[i]);
	llm_buf_free(&clean);
	if (err) {
		free(out.v);
		return err;
	}
	*ids = out.v;
	*n = out.n;
	return LLM_OK;
}

/* --- decode --------------------------------------------------------------------------- */

static bool is_special(const llm_tok *t, uint32_t id)
{
	for (size_t i = 0; i < t->n_added; i++)
		if (t->added[i].id == id && t->added[i].special)
			return true;
	return false;
}

static const char *item(const struct tok_list *l, size_t i)
{
	return llm_buf_str(&l->text) + l->items[i].off;
}

static llm_err dec_bytelevel(const struct tok_list *in, struct tok_list *out)
{
	llm_buf raw;
	llm_err err = LLM_OK;

	llm_buf_init(&raw, LLM_TOK_MAX_TEXT * 4);
	for (size_t k = 0; k < in->n && !err; k++) {
		const char *s = item(in, k);
		size_t n = in->items[k].len, mark = raw.len;

		for (size_t i = 0; i < n && !err;) {
			int b = llm_tok_cp_to_byte(llm_tok_u_next(s, n, &i));
			unsigned char c = (unsigned char)b;

			if (b < 0) { /* not all byte-level: the token's own bytes */
				raw.len = mark;
				err = llm_buf_append(&raw, s, n);
				break;
			}
			err = llm_buf_append(&raw, &c, 1);
		}
	}
	if (!err)
		err = llm_tok_list_open(out);
	if (!err)
		err = llm_tok_u_append_lossy(&out->text, llm_buf_str(&raw), raw.len);
	if (!err)
		llm_tok_list_close(out);
	llm_buf_free(&raw);
	return err;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<0xAB>" -> 0xAB, or -1. */
static int byte_token(const char *s, size_t n)
{
	if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || hexval(s[3]) < 0 ||
	    hexval(s[4]) < 0)
		return -1;
	return hexval(s[3]) * 16 + hexval(s[4]);
}

static llm_err flush_bytes(llm_buf *bytes, struct tok_list *out)
{
	llm_err err = LLM_OK;

	if (!bytes->len)
		return LLM_OK;
	if (llm_tok_u_valid(llm_buf_str(bytes), bytes->len)) {
		err = llm_tok_list_add(out, llm_buf_str(bytes), bytes->len);
	} else {
		for (size_t i = 0; i < bytes->len && !err; i++)
			err = llm_tok_list_add(out, "\xEF\xBF\xBD", 3);
	}
	llm_buf_reset(bytes);
	return err;
}

static llm_err dec_bytefallback(const struct tok_list *in, struct tok_list *out)
{
	llm_buf bytes;
	llm_err err = LLM_OK;

	llm_buf_init(&bytes, LLM_TOK_MAX_TEXT);
	for (size_t k = 0; k < in->n && !err; k++) {
		int b = byte_token(item(in, k), in->items[k].len);
		unsigned char c = (unsigned char)b;

		if (b >= 0) {
			err = llm_buf_append(&bytes, &c, 1);
			continue;
		}
		err = flush_bytes(&bytes, out);
		if (!err)
			err = llm_tok_list_add(out, item(in, k), in->items[k].len);
	}
	if (!err)
		err = flush_bytes(&bytes, out);
	llm_buf_free(&bytes);
	return err;
}

static llm_err replace_into(llm_buf *b, const char *s, size_t n, const char *pat, const char *with)
{
	size_t pl = strlen(pat);
	llm_err err = LLM_OK;

	for (size_t i = 0; i < n && !err;) {
		if (pl && i + pl <= n && memcmp(s + i, pat, pl) == 0) {
			err = llm_buf_puts(b, with);
			i += pl;
		} else {
			err = llm_buf_append(b, s + i, 1);
			i++;
		}
	}
	return err;
}

/* WordPiece's cleanup(): fixed replacements, in order. */
static llm_err wp_cleanup(llm_buf *tok)
{
	static const char *const from[] = {" .",  " ?",	     " !",  " ,",   " ' ", " n't",
					   " 'm", " do not", " 's", " 've", " 're"};
	static const char *const to[] = {".",  "?",	 "!",  ",",   "'",  "n't",
					 "'m", " don't", "'s", "'ve", "'re"};
	llm_buf tmp;
	llm_err err = LLM_OK;

	for (size_t r = 0; r < 11 && !err; r++) {
		if (!strstr(llm_buf_str(tok), from[r]))
			continue;
		llm_buf_init(&tmp, tok->max);
		err = replace_into(&tmp, llm_buf_str(tok), tok->len, from[r], to[r]);
		llm_buf_reset(tok);
		if (!err)
			err = llm_buf_append(tok, llm_buf_str(&tmp), tmp.len);
		llm_buf_free(&tmp);
	}
	return err;
}

/* One token through a per-token step (Replace, Strip, WordPiece, Metaspace). */
static llm_err dec_token(const struct tok_dec *d, size_t i, const char *s, size_t n, llm_buf *b)
{
	size_t pl = strlen(d->a), a = 0, z = n;
	llm_err err = LLM_OK;

	switch (d->kind) {
	case DEC_REPLACE: return replace_into(b, s, n, d->a, d->b);
	case DEC_STRIP:
		for (size_t k = 0; k < d->start && pl && a + pl <= z && !memcmp(s + a, d->a, pl);
		     k++)
			a += pl;
		for (size_t k = 0;
		     k < d->stop && pl && z >= a + pl && !memcmp(s + z - pl, d->a, pl); k++)
			z -= pl;
		return llm_buf_append(b, s + a, z - a);
	case DEC_METASPACE:
		return replace_into(b, s, n, d->a, i == 0 && d->prefix_space ? "" : " ");
	default: /* DEC_WORDPIECE */
		if (i != 0 && pl <= n && memcmp(s, d->a, pl) == 0) {
			s += pl; /* a continuation: glued to the previous token */
			n -= pl;
		} else if (i != 0) {
			err = llm_buf_append(b, " ", 1);
		}
		if (!err)
			err = llm_buf_append(b, s, n);
		return err || !d->cleanup ? err : wp_cleanup(b);
	}
}

static llm_err dec_step(const struct tok_dec *d, const struct tok_list *in, struct tok_list *out)
{
	llm_buf b;
	llm_err err = LLM_OK;

	if (d->kind == DEC_BYTELEVEL)
		return dec_bytelevel(in, out);
	if (d->kind == DEC_BYTEFALLBACK)
		return dec_bytefallback(in, out);
	if (d->kind == DEC_FUSE) {
		err = llm_tok_list_open(out);
		if (!err && in->n)
			err = llm_buf_append(&out->text, item(in, 0),
					     in->items[in->n - 1].off + in->items[in->n - 1].len);
		if (!err)
			llm_tok_list_close(out);
		return err;
	}
	llm_buf_init(&b, LLM_TOK_MAX_TEXT * 4);
	for (size_t i = 0; i < in->n && !err; i++) {
		llm_buf_reset(&b);
		err = dec_token(d, i, item(in, i), in->items[i].len, &b);
		if (!err)
			err = llm_tok_list_add(out, llm_buf_str(&b), b.len);
	}
	llm_buf_free(&b);
	return err;
}

static llm_err run_decoders(const llm_tok *t, struct tok_list *a, llm_buf *out)
{
	struct tok_list b;
	llm_err err = LLM_OK;

	llm_tok_list_init(&b);
	for (size_t k = 0; k < t->n_dec && !err; k++) {
		struct tok_list tmp;

		llm_tok_list_reset(&b);
		err = dec_step(&t->dec[k], a, &b);
		tmp = *a;
		*a = b;
		b = tmp;
	}
	for (size_t i = 0; i < a->n && !err; i++) {
		if (!t->has_decoder && i > 0)
			err = llm_buf_append(out, " ", 1);
		if (!err)
			err = llm_buf_append(out, item(a, i), a->items[i].len);
	}
	llm_tok_list_free(&b);
	return err;
}

llm_err llm_tok_decode(const llm_tok *t, const uint32_t *ids, size_t n, bool skip_special,
		       char **text, size_t *len)
{
	struct tok_list toks;
	llm_buf out;
	llm_err err = LLM_OK;

	*text = NULL;
	*len = 0;
	if (n > LLM_TOK_MAX_TEXT)
		return llm_fail(LLM_ETOOLARGE, "tokenizer: %zu ids to decode is over the cap", n);
	llm_tok_list_init(&toks);
	llm_buf_init(&out, LLM_TOK_MAX_TEXT * 4);
	for (size_t i = 0; i < n && !err; i++) {
		size_t l;
		const char *s = llm_tok_id_to_token(t, ids[i], &l);

		if (s && !(skip_special && is_special(t, ids[i])))
			err = llm_tok_list_add(&toks, s, l);
	}
	if (!err)
		err = run_decoders(t, &toks, &out);
	llm_tok_list_free(&toks);
	*len = out.len;
	*text = err ? NULL : (out.data ? llm_buf_steal(&out) : strdup(""));
	llm_buf_free(&out);
	if (!err && !*text)
		err = llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
	return err;
}
