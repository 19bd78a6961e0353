/* Normalizers and pre-tokenizers (see llm_tokenizer_int.h).
 *
 * The GPT-2 and Llama-3 split patterns are matched by hand, alternative by
 * alternative in the regex's order, with the backtracking of "\s+(?!\S)"
 * and "\s*[\r\n]+" worked out: at a whitespace run ending before a
 * non-space, "\s+(?!\S)" takes all but the last space. */
#include <stdlib.h>
#include <string.h>

#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"

/* --- byte-level alphabet (GPT-2's bytes_to_unicode) ------------------------- */

static bool byte_printable(unsigned b)
{
	return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t llm_tok_byte_to_cp(unsigned char b)
{
	unsigned n = 0;

	if (byte_printable(b))
		return b;
	for (unsigned k = 0; k < b; k++)
		n += !byte_printable(k);
	return 256 + n;
}

int llm_tok_cp_to_byte(uint32_t cp)
{
	if (cp < 256)
		return byte_printable(cp) ? (int)cp : -1;
	if (cp >= 256 + 68)
		return -1;
	for (unsigned b = 0, n = 0; b < 256; b++) {
		if (byte_printable(b))
			continue;
		if (256 + n == cp)
			return (int)b;
		n++;
	}
	return -1;
}

/* --- normalizers ---------------------------------------------------------------- */

static llm_err bert_char(const struct tok_norm *nm, uint32_t cp, llm_buf *out)
{
	uint32_t d[4], lo[3];
	size_t nd = 1;
	llm_err err = LLM_OK;

	if (nm->clean) {
		bool tnr = cp == '\t' || cp == '\n' || cp == '\r';

		if (cp == 0 || cp == LLM_TOK_U_REPLACEMENT || (!tnr && llm_tok_u_is_other(cp)))
			return LLM_OK;
		if (tnr || llm_tok_u_is_space(cp))
			cp = ' ';
	}
	if (nm->chinese && llm_tok_u_is_chinese(cp)) {
		err = llm_buf_append(out, " ", 1);
		if (!err)
			err = llm_tok_u_append(out, cp);
		return err ? err : llm_buf_append(out, " ", 1);
	}
	d[0] = cp;
	if (nm->strip)
		nd = llm_tok_u_nfd(cp, d);
	for (size_t k = 0; k < nd && !err; k++) {
		if (nm->strip && llm_tok_u_is_mn(d[k]))
			continue;
		size_t nl = nm->lower ? llm_tok_u_lower(d[k], lo) : 1;

		if (!nm->lower)
			lo[0] = d[k];
		for (size_t j = 0; j < nl && !err; j++)
			err = llm_tok_u_append(out, lo[j]);
	}
	return err;
}

static llm_err norm_chars(const struct tok_norm *nm, const char *s, size_t n, llm_buf *out)
{
	llm_err err = LLM_OK;

	for (size_t i = 0; i < n && !err;) {
		uint32_t cp = llm_tok_u_next(s, n, &i), tmp[4];
		size_t k;

		switch (nm->kind) {
		case NORM_BERT: err = bert_char(nm, cp, out); break;
		case NORM_LOWER:
			k = llm_tok_u_lower(cp, tmp);
			for (size_t j = 0; j < k && !err; j++)
				err = llm_tok_u_append(out, tmp[j]);
			break;
		default: /* NORM_NFD */
			k = llm_tok_u_nfd(cp, tmp);
			for (size_t j = 0; j < k && !err; j++)
				err = llm_tok_u_append(out, tmp[j]);
			break;
		}
	}
	return err;
}

static llm_err norm_replace(const char *pat, const char *with, const char *s, size_t n,
			    llm_buf *out)
{
	size_t pl = strlen(pat), wl = strlen(with);
	llm_err err = LLM_OK;

	for (size_t i = 0; i < n && !err;) {
		if (pl && i + pl <= n && memcmp(s + i, pat, pl) == 0) {
			err = llm_buf_append(out, with, wl);
			i += pl;
		} else {
			err = llm_buf_append(out, s + i, 1);
			i++;
		}
	}
	return err;
}

static llm_err norm_step(const struct tok_norm *nm, const char *s, size_t n, llm_buf *out)
{
	llm_err err;

	switch (nm->kind) {
	case NORM_PREPEND:
		if (!n)
			return LLM_OK;
		err = llm_buf_puts(out, nm->a);
		return err ? err : llm_buf_append(out, s, n);
	case NORM_REPLACE: return norm_replace(nm->a, nm->b, s, n, out);
	default: return norm_chars(nm, s, n, out);
	}
}

llm_err llm_tok_normalize(const llm_tok *t, const char *s, size_t n, llm_buf *out)
{
	llm_buf tmp[2];
	llm_err err = LLM_OK;
	const char *cur = s;
	size_t len = n;

	if (t->n_norm == 0)
		return llm_buf_append(out, s, n);
	llm_buf_init(&tmp[0], out->max);
	llm_buf_init(&tmp[1], out->max);
	for (size_t k = 0; k < t->n_norm && !err; k++) {
		llm_buf *dst = k + 1 == t->n_norm ? out : &tmp[k % 2];

		llm_buf_reset(dst);
		err = norm_step(&t->norm[k], cur, len, dst);
		cur = llm_buf_str(dst);
		len = dst->len;
	}
	llm_buf_free(&tmp[0]);
	llm_buf_free(&tmp[1]);
	return err;
}

/* --- the split patterns ------------------------------------------------------------ */

static bool is_other(uint32_t c)
{
	return !llm_tok_u_is_space(c) && !llm_tok_u_is_letter(c) && !llm_tok_u_is_number(c);
}

static size_t run(const uint32_t *c, size_t n, size_t i, bool (*pred)(uint32_t))
{
	while (i < n && pred(c[i]))
		i++;
	return i;
}

/* "'s|'t|'re|'ve|'m|'ll|'d" (fold: case-insensitive, as Llama-3's (?i:)). */
static size_t contraction(const uint32_t *c, size_t n, size_t i, bool fold)
{
	uint32_t a, b;

	if (c[i] != '\'' || i + 1 >= n)
		return 0;
	a = c[i + 1];
	b = i + 2 < n ? c[i + 2] : 0;
	if (fold) {
		a = a >= 'A' && a <= 'Z' ? a + 32 : a; /* ASCII only: HF does not fold U+017F */
		b = b >= 'A' && b <= 'Z' ? b + 32 : b;
	}
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return i + 2;
	if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
		return i + 3;
	return 0;
}

/* "\s+(?!\S)|\s+" at a whitespace character. */
static size_t spaces(const uint32_t *c, size_t n, size_t i)
{
	size_t j = run(c, n, i, llm_tok_u_is_space);

	if (j == n || j - 1 == i)
		return j;
	return j - 1;
}

static size_t match_gpt2(const uint32_t *c, size_t n, size_t i)
{
	size_t j = contraction(c, n, i, false), k;

	if (j)
		return j;
	k = i + (c[i] == ' ' && i + 1 < n);
	if (llm_tok_u_is_letter(c[k]))
		return run(c, n, k, llm_tok_u_is_letter);
	if (llm_tok_u_is_number(c[k]))
		return run(c, n, k, llm_tok_u_is_number);
	if (is_other(c[k]))
		return run(c, n, k, is_other);
	return spaces(c, n, i);
}

static bool is_crlf(uint32_t c)
{
	return c == '\r' || c == '\n';
}

static size_t match_llama3(const uint32_t *c, size_t n, size_t i)
{
	size_t j = contraction(c, n, i, true), k;

	if (j)
		return j;
	if (llm_tok_u_is_letter(c[i]))
		return run(c, n, i, llm_tok_u_is_letter);
	if (!is_crlf(c[i]) && !llm_tok_u_is_number(c[i]) && i + 1 < n &&
	    llm_tok_u_is_letter(c[i + 1]))
		return run(c, n, i + 1, llm_tok_u_is_letter);
	if (llm_tok_u_is_number(c[i])) {
		for (j = i; j < n && j < i + 3 && llm_tok_u_is_number(c[j]); j++)
			;
		return j;
	}
	k = i + (c[i] == ' ' && i + 1 < n && is_other(c[i + 1]));
	if (is_other(c[k]))
		return run(c, n, run(c, n, k, is_other), is_crlf);
	j = run(c, n, i, llm_tok_u_is_space);
	for (k = j; k > i; k--) /* "\s*[\r\n]+": up to the last line break */
		if (is_crlf(c[k - 1]))
			return k;
	return spaces(c, n, i);
}

/* Decodes s into code points and their byte offsets (n + 1 entries). */
static llm_err decode_cps(const char *s, size_t n, uint32_t **cps, size_t **offs, size_t *count)
{
	size_t i = 0, k = 0;

	*cps = malloc((n + 1) * sizeof(**cps));
	*offs = malloc((n + 1) * sizeof(**offs));
	if (!*cps || !*offs) {
		free(*cps);
		free(*offs);
		return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
	}
	while (i < n) {
		(*offs)[k] = i;
		(*cps)[k++] = llm_tok_u_next(s, n, &i);
	}
	(*offs)[k] = n;
	*count = k;
	return LLM_OK;
}

static llm_err split_regex(enum tok_regex re, const char *s, size_t n, struct tok_list *out)
{
	uint32_t *c;
	size_t *off, count = 0;
	llm_err err = decode_cps(s, n, &c, &off, &count);

	if (err)
		return err;
	for (size_t i = 0; i < count && !err;) {
		size_t j = re == RE_GPT2 ? match_gpt2(c, count, i) : match_llama3(c, count, i);

		err = llm_tok_list_add(out, s + off[i], off[j] - off[i]);
		i = j;
	}
	free(c);
	free(off);
	return err;
}

/* --- pre-tokenizer steps ------------------------------------------------------------- */

static llm_err byte_level(const struct tok_pre *p, const char *s, size_t n, struct tok_list *out)
{
	struct tok_list parts;
	llm_buf src;
	llm_err err = LLM_OK;

	llm_tok_list_init(&parts);
	llm_buf_init(&src, LLM_TOK_MAX_TEXT * 4);
	if (p->add_prefix_space && (n == 0 || s[0] != ' '))
		err = llm_buf_append(&src, " ", 1);
	if (!err)
		err = llm_buf_append(&src, s, n);
	if (!err && p->use_regex)
		err = split_regex(p->re, llm_buf_str(&src), src.len, &parts);
	else if (!err && src.len)
		err = llm_tok_list_add(&parts, llm_buf_str(&src), src.len);
	for (size_t k = 0; k < parts.n && !err; k++) {
		const char *b = llm_buf_str(&parts.text) + parts.items[k].off;

		err = llm_tok_list_open(out);
		for (size_t j = 0; j < parts.items[k].len && !err; j++)
			err = llm_tok_u_append(&out->text, llm_tok_byte_to_cp((unsigned char)b[j]));
		if (!err)
			llm_tok_list_close(out);
	}
	llm_buf_free(&src);
	llm_tok_list_free(&parts);
	return err;
}

static llm_err metaspace(const struct tok_pre *p, const char *s, size_t n, bool first,
			 struct tok_list *out)
{
	llm_buf b;
	size_t rl = strlen(p->a), start = 0;
	llm_err err = LLM_OK;

	llm_buf_init(&b, LLM_TOK_MAX_TEXT * 4);
	if (p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && first))
		if (n == 0 || s[0] != ' ')
			if (!(n >= rl && memcmp(s, p->a, rl) == 0))
				err = llm_buf_puts(&b, p->a);
	if (!err)
		err = norm_replace(" ", p->a, s, n, &b);
	const char *t = llm_buf_str(&b);

	for (size_t i = 1; i <= b.len && !err && p->split; i++)
		if (i == b.len || (rl && i + rl <= b.len && memcmp(t + i, p->a, rl) == 0)) {
			err = llm_tok_list_add(out, t + start, i - start);
			start = i;
		}
	if (!err && !p->split && b.len)
		err = llm_tok_list_add(out, t, b.len);
	llm_buf_free(&b);
	return err;
}

/* BertPreTokenizer (punct = true) and WhitespaceSplit (punct = false). */
static llm_err split_words(const char *s, size_t n, bool punct, struct tok_list *out)
{
	size_t i = 0, start = 0;
	llm_err err = LLM_OK;

	while (i < n && !err) {
		size_t at = i;
		uint32_t cp = llm_tok_u_next(s, n, &i);
		bool ws = llm_tok_u_is_space(cp), pu = punct && !ws && llm_tok_u_is_punct(cp);

		if (!ws && !pu)
			continue;
		if (at > start)
			err = llm_tok_list_add(out, s + start, at - start);
		if (!err && pu)
			err = llm_tok_list_add(out, s + at, i - at);
		start = i;
	}
	if (!err && n > start)
		err = llm_tok_list_add(out, s + start, n - start);
	return err;
}

static llm_err pre_step(const struct tok_pre *p, const char *s, size_t n, bool first,
			struct tok_list *out)
{
	switch (p->kind) {
	case PRE_SPLIT: return split_regex(p->re, s, n, out);
	case PRE_BYTELEVEL: return byte_level(p, s, n, out);
	case PRE_METASPACE: return metaspace(p, s, n, first, out);
	case PRE_BERT: return split_words(s, n, true, out);
	default: return split_words(s, n, false, out);
	}
}

llm_err llm_tok_pretokenize(const llm_tok *t, const char *s, size_t n, bool first,
			    struct tok_list *out)
{
	struct tok_list a, b;
	llm_err err = LLM_OK;

	if (t->n_pre == 0)
		return n ? llm_tok_list_add(out, s, n) : LLM_OK;
	llm_tok_list_init(&a);
	llm_tok_list_init(&b);
	err = llm_tok_list_add(&a, s, n);
	for (size_t k = 0; k < t->n_pre && !err; k++) {
		struct tok_list *dst = k + 1 == t->n_pre ? out : &b;

		if (dst == &b)
			llm_tok_list_reset(&b);
		for (size_t i = 0; i < a.n && !err; i++) {
			if (!a.items[i].len)
				continue;
			err = pre_step(&t->pre[k], llm_buf_str(&a.text) + a.items[i].off,
				       a.items[i].len, first && i == 0, dst);
		}
		if (dst == &b) {
			struct tok_list tmp = a;

			a = b;
			b = tmp;
		}
	}
	llm_tok_list_free(&a);
	llm_tok_list_free(&b);
	return err;
}
