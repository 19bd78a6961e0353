/* Tokenizer models and their tables (see llm_tokenizer_int.h): the
 * string->id map, the BPE merge table, BPE with a priority queue of merges
 * (lowest rank first, leftmost on ties, as HF's Word::merge_all) with byte
 * fallback and fused unknowns, and WordPiece greedy longest-match-first. */
#include <stdlib.h>
#include <string.h>

#include "llm_tokenizer_int.h"
#include "llm_tokenizer_unicode.h"

/* --- string -> id map ------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static llm_err map_grow(struct tok_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct tok_map_slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
	for (size_t i = 0; i < m->cap; i++) {
		struct tok_map_slot *o = &m->slots[i];
		size_t j;

		if (!o->key)
			continue;
		for (j = hash_bytes(o->key, o->len) & (cap - 1); s[j].key; j = (j + 1) & (cap - 1))
			;
		s[j] = *o;
	}
	free(m->slots);
	m->slots = s;
	m->cap = cap;
	return LLM_OK;
}

static struct tok_map_slot *map_find(const struct tok_map *m, const char *key, size_t len)
{
	if (!m->cap)
		return NULL;
	for (size_t j = hash_bytes(key, len) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		struct tok_map_slot *s = &m->slots[j];

		if (!s->key || (s->len == len && memcmp(s->key, key, len) == 0))
			return s;
	}
}

llm_err llm_tok_map_put(struct tok_map *m, const char *key, size_t len, uint32_t val)
{
	struct tok_map_slot *s;

	if ((m->n + 1) * 2 > m->cap && map_grow(m))
		return LLM_ENOMEM;
	s = map_find(m, key, len);
	if (!s->key) {
		s->key = malloc(len + 1);
		if (!s->key)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		memcpy(s->key, key, len);
		s->key[len] = '\0';
		s->len = (uint32_t)len;
		m->n++;
	}
	s->val = val;
	return LLM_OK;
}

bool llm_tok_map_get(const struct tok_map *m, const char *key, size_t len, uint32_t *val)
{
	const struct tok_map_slot *s = map_find(m, key, len);

	if (!s || !s->key)
		return false;
	*val = s->val;
	return true;
}

void llm_tok_map_free(struct tok_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* --- merges ------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct tok_merge_slot *merges_find(const struct tok_merges *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t j = mix64(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1))
		if (!m->slots[j].key || m->slots[j].key == key)
			return &m->slots[j];
}

static llm_err merges_grow(struct tok_merges *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct tok_merges old = *m;

	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		*m = old;
		return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
	}
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			*merges_find(m, old.slots[i].key) = old.slots[i];
	free(old.slots);
	return LLM_OK;
}

llm_err llm_tok_merges_put(struct tok_merges *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id)
{
	uint64_t key = (((uint64_t)a << 32) | b) + 1;
	struct tok_merge_slot *s;

	if ((m->n + 1) * 2 > m->cap && merges_grow(m))
		return LLM_ENOMEM;
	s = merges_find(m, key);
	if (!s->key)
		m->n++;
	s->key = key;
	s->rank = rank;
	s->id = id;
	return LLM_OK;
}

static const struct tok_merge_slot *merges_get(const struct tok_merges *m, uint32_t a, uint32_t b)
{
	const struct tok_merge_slot *s = merges_find(m, (((uint64_t)a << 32) | b) + 1);

	return s && s->key ? s : NULL;
}

void llm_tok_merges_free(struct tok_merges *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* --- lists of strings -------------------------------------------------------- */

void llm_tok_list_init(struct tok_list *l)
{
	memset(l, 0, sizeof(*l));
	llm_buf_init(&l->text, LLM_TOK_MAX_TEXT * 4);
}

llm_err llm_tok_list_open(struct tok_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct tok_piece *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n].off = l->text.len;
	l->items[l->n].len = 0;
	l->n++;
	return LLM_OK;
}

void llm_tok_list_close(struct tok_list *l)
{
	struct tok_piece *p = &l->items[l->n - 1];

	p->len = l->text.len - p->off;
}

llm_err llm_tok_list_add(struct tok_list *l, const char *s, size_t len)
{
	llm_err err = llm_tok_list_open(l);

	if (!err)
		err = llm_buf_append(&l->text, s, len);
	if (err)
		return err;
	llm_tok_list_close(l);
	return LLM_OK;
}

void llm_tok_list_reset(struct tok_list *l)
{
	llm_buf_reset(&l->text);
	l->n = 0;
}

void llm_tok_list_free(struct tok_list *l)
{
	llm_buf_free(&l->text);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* --- vocabulary ---------------------------------------------------------------- */

/* Makes room for ids below n in the id -> string table. */
static llm_err grow_ids(llm_tok *t, uint32_t n)
{
	uint32_t cap = n > t->id_cap * 2 ? n : t->id_cap * 2;
	char **str;
	uint32_t *len;

	if (cap > LLM_TOK_MAX_VOCAB)
		cap = LLM_TOK_MAX_VOCAB;
	str = realloc(t->id_str, cap * sizeof(*str));
	if (!str)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	t->id_str = str;
	len = realloc(t->id_len, cap * sizeof(*len));
	if (!len)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	t->id_len = len;
	memset(str + t->id_cap, 0, (cap - t->id_cap) * sizeof(*str));
	memset(len + t->id_cap, 0, (cap - t->id_cap) * sizeof(*len));
	t->id_cap = cap;
	return LLM_OK;
}

llm_err llm_tok_set_token(llm_tok *t, const char *s, size_t len, uint32_t id)
{
	char *copy;

	if (id >= LLM_TOK_MAX_VOCAB)
		return llm_fail(LLM_ETOOLARGE, "%s: token id %u is over the cap of %u", t->name, id,
				LLM_TOK_MAX_VOCAB);
	if (len > LLM_TOK_MAX_TOKEN_LEN)
		return llm_fail(LLM_ETOOLARGE, "%s: token %u is %zu bytes, over the cap of %d",
				t->name, id, len, LLM_TOK_MAX_TOKEN_LEN);
	if (id >= t->id_cap && grow_ids(t, id + 1))
		return LLM_ENOMEM;
	copy = strndup(s, len);
	if (!copy)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", t->name);
	free(t->id_str[id]);
	t->id_str[id] = copy;
	t->id_len[id] = (uint32_t)len;
	if (id >= t->n_ids)
		t->n_ids = id + 1;
	return llm_tok_map_put(&t->vocab, s, len, id);
}

/* --- growable id arrays ---------------------------------------------------------- */

static llm_err push_id(uint32_t **ids, size_t *n, size_t *cap, uint32_t id)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		uint32_t *p = realloc(*ids, c * sizeof(*p));

		if (!p)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		*ids = p;
		*cap = c;
	}
	(*ids)[(*n)++] = id;
	return LLM_OK;
}

/* --- BPE ------------------------------------------------------------------------- */

struct bpe_word {
	uint32_t *id;
	int32_t *prev, *next;
	bool *dead;
	size_t n, cap;
};

struct bpe_heap {
	struct bpe_cand {
		uint32_t rank, pos, id;
	} * v;
	size_t n, cap;
};

static bool cand_less(const struct bpe_cand *a, const struct bpe_cand *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static llm_err heap_push(struct bpe_heap *h, struct bpe_cand c)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct bpe_cand *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		h->v = v;
		h->cap = cap;
	}
	size_t i = h->n++;

	while (i > 0 && cand_less(&c, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = c;
	return LLM_OK;
}

static struct bpe_cand heap_pop(struct bpe_heap *h)
{
	struct bpe_cand top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && cand_less(&h->v[c + 1], &h->v[c]))
			c++;
		if (!cand_less(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static llm_err word_add(struct bpe_word *w, uint32_t id)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		uint32_t *a = realloc(w->id, cap * sizeof(*a));

		if (a)
			w->id = a;
		int32_t *p = a ? realloc(w->prev, cap * sizeof(*p)) : NULL;

		if (p)
			w->prev = p;
		int32_t *q = p ? realloc(w->next, cap * sizeof(*q)) : NULL;

		if (q)
			w->next = q;
		bool *d = q ? realloc(w->dead, cap * sizeof(*d)) : NULL;

		if (!d)
			return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
		w->dead = d;
		w->cap = cap;
	}
	w->id[w->n] = id;
	w->prev[w->n] = (int32_t)w->n - 1;
	w->next[w->n] = (int32_t)w->n + 1;
	w->dead[w->n] = false;
	w->n++;
	return LLM_OK;
}

static void word_free(struct bpe_word *w)
{
	free(w->id);
	free(w->prev);
	free(w->next);
	free(w->dead);
}

/* Pushes the merge of the pair starting at pos, if there is one. */
static llm_err push_pair(const llm_tok *t, const struct bpe_word *w, struct bpe_heap *h,
			 int32_t pos)
{
	const struct tok_merge_slot *m;
	int32_t nx;

	if (pos < 0 || (nx = w->next[pos]) >= (int32_t)w->n)
		return LLM_OK;
	m = merges_get(&t->merges, w->id[pos], w->id[nx]);
	if (!m)
		return LLM_OK;
	return heap_push(h, (struct bpe_cand){m->rank, (uint32_t)pos, m->id});
}

static llm_err merge_all(const llm_tok *t, struct bpe_word *w)
{
	struct bpe_heap h = {0};
	llm_err err = LLM_OK;

	for (size_t i = 0; i + 1 < w->n && !err; i++)
		err = push_pair(t, w, &h, (int32_t)i);
	while (!err && h.n) {
		struct bpe_cand c = heap_pop(&h);
		int32_t right = w->next[c.pos];
		const struct tok_merge_slot *m;

		if (w->dead[c.pos] || right >= (int32_t)w->n)
			continue;
		m = merges_get(&t->merges, w->id[c.pos], w->id[right]);
		if (!m || m->id != c.id)
			continue;
		w->id[c.pos] = c.id;
		w->dead[right] = true;
		w->next[c.pos] = w->next[right];
		if (w->next[right] < (int32_t)w->n)
			w->prev[w->next[right]] = (int32_t)c.pos;
		err = push_pair(t, w, &h, w->prev[c.pos]);
		if (!err)
			err = push_pair(t, w, &h, (int32_t)c.pos);
	}
	free(h.v);
	return err;
}

/* Byte fallback for one character: its <0xXX> tokens, all or nothing. */
static bool byte_tokens(const llm_tok *t, const char *s, size_t n, uint32_t *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t k = 0; k < n; k++) {
		unsigned char b = (unsigned char)s[k];
		char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};

		if (!llm_tok_map_get(&t->vocab, name, 6, &out[k]))
			return false;
	}
	return true;
}

/* The initial symbols of a word, as HF's BPE::merge_word. */
static llm_err bpe_symbols(const llm_tok *t, const char *s, size_t n, struct bpe_word *w)
{
	uint32_t pending = TOK_NO_ID; /* an unknown not yet added */
	llm_err err = LLM_OK;

	for (size_t i = 0; i < n && !err;) {
		size_t start = i;
		uint32_t id, bytes[4];

		llm_tok_u_next(s, n, &i);
		if (llm_tok_map_get(&t->vocab, s + start, i - start, &id)) {
			if (pending != TOK_NO_ID)
				err = word_add(w, pending);
			pending = TOK_NO_ID;
			if (!err)
				err = word_add(w, id);
		} else if (t->byte_fallback && byte_tokens(t, s + start, i - start, bytes)) {
			for (size_t k = 0; k < i - start && !err; k++)
				err = word_add(w, bytes[k]);
		} else if (t->unk_id != TOK_NO_ID) {
			if (pending != TOK_NO_ID && !t->fuse_unk)
				err = word_add(w, pending);
			pending = t->unk_id;
		}
	}
	if (!err && pending != TOK_NO_ID)
		err = word_add(w, pending);
	return err;
}

static llm_err bpe_encode(const llm_tok *t, const char *s, size_t n, uint32_t **ids, size_t *nids,
			  size_t *cap)
{
	struct bpe_word w = {0};
	uint32_t id;
	llm_err err;

	if (n == 0)
		return LLM_OK;
	if (t->ignore_merges && llm_tok_map_get(&t->vocab, s, n, &id))
		return push_id(ids, nids, cap, id);
	err = bpe_symbols(t, s, n, &w);
	if (!err)
		err = merge_all(t, &w);
	for (size_t i = 0; i < w.n && !err; i++)
		if (!w.dead[i])
			err = push_id(ids, nids, cap, w.id[i]);
	word_free(&w);
	return err;
}

/* --- WordPiece --------------------------------------------------------------------- */

/* Byte length of the last character of s[0..n). */
static size_t last_char_len(const char *s, size_t n)
{
	size_t k = 1;

	while (k < n && ((unsigned char)s[n - k] & 0xC0) == 0x80)
		k++;
	return k;
}

static size_t count_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

/* The longest vocabulary entry s[start..end) (prefixed unless at 0). */
static bool wp_longest(const llm_tok *t, const char *s, size_t start, size_t *end, uint32_t *id,
		       char *tmp)
{
	size_t plen = strlen(t->wp_prefix);

	memcpy(tmp, t->wp_prefix, plen);
	while (*end > start) {
		size_t len = *end - start;

		if (start == 0 && llm_tok_map_get(&t->vocab, s, len, id))
			return true;
		if (start > 0 && len + plen <= LLM_TOK_MAX_TOKEN_LEN) {
			memcpy(tmp + plen, s + start, len);
			if (llm_tok_map_get(&t->vocab, tmp, plen + len, id))
				return true;
		}
		*end -= last_char_len(s + start, len);
	}
	return false;
}

static llm_err wp_encode(const llm_tok *t, const char *s, size_t n, uint32_t **ids, size_t *nids,
			 size_t *cap)
{
	size_t first = *nids, start = 0;
	char *tmp;

	if (count_chars(s, n) > t->wp_max_chars)
		return push_id(ids, nids, cap, t->unk_id);
	tmp = malloc(LLM_TOK_MAX_TOKEN_LEN + TOK_MAX_SMALL_STR);
	if (!tmp)
		return llm_fail(LLM_ENOMEM, "tokenizer: out of memory");
	while (start < n) {
		size_t end = n;
		uint32_t id;
		llm_err err;

		if (!wp_longest(t, s, start, &end, &id, tmp)) {
			*nids = first;
			free(tmp);
			return push_id(ids, nids, cap, t->unk_id);
		}
		err = push_id(ids, nids, cap, id);
		if (err) {
			free(tmp);
			return err;
		}
		start = end;
	}
	free(tmp);
	return LLM_OK;
}

llm_err llm_tok_model_encode(const llm_tok *t, const char *s, size_t n, uint32_t **ids,
			     size_t *nids, size_t *cap)
{
	if (t->model == MODEL_BPE)
		return bpe_encode(t, s, n, ids, nids, cap);
	return wp_encode(t, s, n, ids, nids, cap);
}
