/* Unicode helpers (see llm_tokenizer_unicode.h): binary search over the
 * generated range tables, a strict UTF-8 decoder and algorithmic Hangul
 * decomposition. */
#include "llm_tokenizer_unicode.h"

#include "llm_unicode_tables.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *llm_tok_u_version(void)
{
	return LLM_UNI_VERSION;
}

/* Length of the valid prefix of the sequence starting at s[0] (1..4), and
 * whether it is complete, following the Unicode table of well-formed UTF-8. */
static size_t utf8_prefix(const unsigned char *s, size_t n, uint32_t *cp, bool *complete)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;

	*complete = false;
	if (c < 0x80) {
		*cp = c;
		*complete = true;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		*cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		*cp = c & 0x0F;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		*cp = c & 0x07;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 1;
	}
	size_t k = 1;
	for (; k <= need && k < n; k++) {
		if (s[k] < lo || s[k] > hi)
			return k;
		*cp = (*cp << 6) | (s[k] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*complete = k == need + 1;
	return k;
}

uint32_t llm_tok_u_next(const char *s, size_t n, size_t *i)
{
	uint32_t cp = 0;
	bool complete;
	size_t k = utf8_prefix((const unsigned char *)s + *i, n - *i, &cp, &complete);

	*i += k;
	return complete ? cp : LLM_TOK_U_REPLACEMENT;
}

size_t llm_tok_u_put(uint32_t cp, char *out)
{
	unsigned char *o = (unsigned char *)out;

	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

llm_err llm_tok_u_append(llm_buf *b, uint32_t cp)
{
	char tmp[4];

	return llm_buf_append(b, tmp, llm_tok_u_put(cp, tmp));
}

llm_err llm_tok_u_append_lossy(llm_buf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t start = i;
		uint32_t cp = llm_tok_u_next(s, n, &i);
		llm_err err;

		if (cp == LLM_TOK_U_REPLACEMENT)
			err = llm_tok_u_append(b, cp);
		else
			err = llm_buf_append(b, s + start, i - start);
		if (err)
			return err;
	}
	return LLM_OK;
}

bool llm_tok_u_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp = 0;
		bool complete;

		i += utf8_prefix((const unsigned char *)s + i, n - i, &cp, &complete);
		if (!complete)
			return false;
	}
	return true;
}

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < r[mid][0])
			hi = mid;
		else if (cp > r[mid][1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

bool llm_tok_u_is_letter(uint32_t cp)
{
	if (cp < 0x80)
		return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
	return in_ranges(llm_uni_letter, COUNT(llm_uni_letter), cp);
}

bool llm_tok_u_is_number(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= '0' && cp <= '9';
	return in_ranges(llm_uni_number, COUNT(llm_uni_number), cp);
}

bool llm_tok_u_is_space(uint32_t cp)
{
	if (cp < 0x80)
		return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
	return in_ranges(llm_uni_space, COUNT(llm_uni_space), cp);
}

bool llm_tok_u_is_mn(uint32_t cp)
{
	return in_ranges(llm_uni_mark_nonspacing, COUNT(llm_uni_mark_nonspacing), cp);
}

bool llm_tok_u_is_punct(uint32_t cp)
{
	return in_ranges(llm_uni_punct, COUNT(llm_uni_punct), cp);
}

bool llm_tok_u_is_other(uint32_t cp)
{
	return in_ranges(llm_uni_other, COUNT(llm_uni_other), cp);
}

bool llm_tok_u_is_chinese(uint32_t cp)
{
	return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
	       (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
	       (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static const struct llm_uni_map *map_find(const struct llm_uni_map *m, size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < m[mid].cp)
			hi = mid;
		else if (cp > m[mid].cp)
			lo = mid + 1;
		else
			return &m[mid];
	}
	return NULL;
}

size_t llm_tok_u_lower(uint32_t cp, uint32_t *out)
{
	const struct llm_uni_map *e;

	if (cp < 0x80) {
		out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
		return 1;
	}
	e = map_find(llm_uni_lower, COUNT(llm_uni_lower), cp);
	if (!e) {
		out[0] = cp;
		return 1;
	}
	for (size_t k = 0; k < e->len; k++)
		out[k] = llm_uni_lower_pool[e->off + k];
	return e->len;
}

size_t llm_tok_u_nfd(uint32_t cp, uint32_t *out)
{
	const struct llm_uni_map *e;

	if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V (T) */
		uint32_t s = cp - 0xAC00, t = s % 28;

		out[0] = 0x1100 + s / (21 * 28);
		out[1] = 0x1161 + (s % (21 * 28)) / 28;
		if (!t)
			return 2;
		out[2] = 0x11A7 + t;
		return 3;
	}
	e = cp < 0xC0 ? NULL : map_find(llm_uni_nfd, COUNT(llm_uni_nfd), cp);
	if (!e) {
		out[0] = cp;
		return 1;
	}
	for (size_t k = 0; k < e->len; k++)
		out[k] = llm_uni_nfd_pool[e->off + k];
	return e->len;
}
