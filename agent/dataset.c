/* The fine-tuning dataset pipeline: JSONL files are read line by line (each
 * line capped), each record is turned into text segments that do or do not
 * carry a loss (by format, optionally through a PromptVersion), the
 * segments are tokenised separately so the mask boundaries are exact, and
 * the examples are split, packed and served in a seeded order. Design
 * limit: everything is in memory, under one byte cap (ds_config.max_bytes).
 * docs/finetune.md is the user-facing description of all of this. */
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm_json.h"
#include "llm_prompt.h"
#include "llmops_kernels.h"

#define MAX_SPECIAL 8
#define MAX_SEGS    (2 * DS_MAX_MESSAGES + 8)
/* Domain tags mixed into the seed, so each use draws its own stream. */
#define TAG_SPLIT 0x73706c6974ULL /* "split" */
#define TAG_EPOCH 0x65706f6368ULL /* "epoch" */

/* Examples of one split: example i is ids/labels[off[i] .. off[i+1]). */
struct examples {
	int32_t *ids;
	int32_t *labels;
	size_t *off;
	size_t n;
	size_t len;
	size_t cap_n;
	size_t cap_len;
};

struct part {
	struct examples ex;
	int32_t *seq_ids; /* n_seq * seq_len */
	int32_t *seq_labels;
	size_t n_seq;
};

struct ds_dataset {
	size_t seq_len;
	uint64_t seed;
	struct part part[2]; /* DS_TRAIN, DS_VALIDATION */
	struct ds_counts counts;
	size_t bytes; /* charged against max_bytes */
	size_t max_bytes;
};

/* Special tokens found by probing the tokenizer (see find_specials()). */
struct specials {
	int32_t bos[MAX_SPECIAL];
	size_t n_bos;
	int32_t eos[MAX_SPECIAL];
	size_t n_eos;
	int32_t pad;
};

/* A piece of an example's text and whether its tokens carry a loss. */
struct seg {
	char *text;
	bool loss;
};

struct segs {
	struct seg v[MAX_SEGS];
	size_t n;
};

/* One example's tokens while it is built. */
struct tokv {
	int32_t *ids;
	int32_t *labels;
	size_t n;
	size_t cap;
};

struct loader {
	const struct ds_config *cfg;
	const llm_tok *tok;
	struct ds_dataset *d;
	struct specials sp;
	struct segs segs;
	struct tokv tv;
	char *line;	  /* max_line + 1 bytes */
	const char *file; /* base name, for errors */
	size_t lineno;
};

/* --- memory ---------------------------------------------------------------- */

static llm_err charge(struct ds_dataset *d, size_t bytes)
{
	if (bytes > d->max_bytes - d->bytes)
		return llm_fail(LLM_ETOOLARGE,
				"dataset needs more than %zu bytes of memory; use fewer or "
				"shorter records or more memory",
				d->max_bytes);
	d->bytes += bytes;
	return LLM_OK;
}

static void examples_free(struct ds_dataset *d, struct examples *e)
{
	d->bytes -= e->cap_len * 2 * sizeof(int32_t) + e->cap_n * sizeof(size_t);
	free(e->ids);
	free(e->labels);
	free(e->off);
	memset(e, 0, sizeof(*e));
}

/* Makes room for one more offset. */
static llm_err grow_offsets(struct ds_dataset *d, struct examples *e)
{
	size_t cap = e->cap_n ? 2 * e->cap_n : 64, *off;

	if (e->n + 2 <= e->cap_n)
		return LLM_OK;
	if (charge(d, (cap - e->cap_n) * sizeof(size_t)))
		return LLM_ETOOLARGE;
	if (!(off = realloc(e->off, cap * sizeof(size_t))))
		return llm_fail(LLM_ENOMEM, "out of memory loading the dataset");
	if (!e->off)
		off[0] = 0;
	e->off = off;
	e->cap_n = cap;
	return LLM_OK;
}

/* Makes room for n more tokens. */
static llm_err grow_tokens(struct ds_dataset *d, struct examples *e, size_t n)
{
	size_t cap = e->cap_len ? 2 * e->cap_len : 4096;
	int32_t *ids, *labels;

	if (e->len + n <= e->cap_len)
		return LLM_OK;
	while (cap < e->len + n)
		cap *= 2;
	if (charge(d, (cap - e->cap_len) * 2 * sizeof(int32_t)))
		return LLM_ETOOLARGE;
	ids = realloc(e->ids, cap * sizeof(int32_t));
	if (ids)
		e->ids = ids;
	labels = ids ? realloc(e->labels, cap * sizeof(int32_t)) : NULL;
	if (!labels)
		return llm_fail(LLM_ENOMEM, "out of memory loading the dataset");
	e->labels = labels;
	e->cap_len = cap;
	return LLM_OK;
}

static llm_err examples_push(struct ds_dataset *d, struct examples *e, const int32_t *ids,
			     const int32_t *labels, size_t n)
{
	llm_err rc = grow_offsets(d, e);

	if (!rc)
		rc = grow_tokens(d, e, n);
	if (rc)
		return rc;
	memcpy(e->ids + e->len, ids, n * sizeof(int32_t));
	memcpy(e->labels + e->len, labels, n * sizeof(int32_t));
	e->len += n;
	e->off[++e->n] = e->len;
	return LLM_OK;
}

/* --- special tokens -------------------------------------------------------- */

static bool find_run(const uint32_t *hay, size_t nh, const uint32_t *needle, size_t nn, size_t *at)
{
	for (size_t i = 0; i + nn <= nh; i++) {
		if (memcmp(hay + i, needle, nn * sizeof(uint32_t)) == 0) {
			*at = i;
			return true;
		}
	}
	return false;
}

/* BOS: the tokens the post-processor puts before a text. EOS: those it puts
 * after, else the first of the usual end-of-text tokens in the vocabulary. */
static llm_err find_specials(const llm_tok *tok, struct specials *sp)
{
	static const char *const eos_names[] = {"</s>", "<|endoftext|>", "<|end_of_text|>"};
	uint32_t *plain = NULL, *full = NULL, id;
	size_t np = 0, nf = 0, at = 0;
	llm_err rc = llm_tok_encode(tok, "a", 1, false, &plain, &np);

	if (!rc)
		rc = llm_tok_encode(tok, "a", 1, true, &full, &nf);
	memset(sp, 0, sizeof(*sp));
	if (!rc && find_run(full, nf, plain, np, &at) && at <= MAX_SPECIAL &&
	    nf - at - np <= MAX_SPECIAL) {
		for (size_t i = 0; i < at; i++)
			sp->bos[sp->n_bos++] = (int32_t)full[i];
		for (size_t i = at + np; i < nf; i++)
			sp->eos[sp->n_eos++] = (int32_t)full[i];
	}
	for (size_t i = 0; !rc && !sp->n_eos && i < sizeof(eos_names) / sizeof(*eos_names); i++) {
		if (llm_tok_token_to_id(tok, eos_names[i], strlen(eos_names[i]), &id))
			sp->eos[sp->n_eos++] = (int32_t)id;
	}
	sp->pad = sp->n_eos ? sp->eos[0] : 0;
	free(plain);
	free(full);
	return rc;
}

/* --- records to segments ----------------------------------------------------- */

static llm_err seg_add(struct segs *s, const char *text, size_t len, bool loss)
{
	if (s->n == MAX_SEGS)
		return llm_fail(LLM_EINVAL, "more than %d turns", DS_MAX_MESSAGES);
	if (!(s->v[s->n].text = strndup(text, len)))
		return llm_fail(LLM_ENOMEM, "out of memory");
	s->v[s->n++].loss = loss;
	return LLM_OK;
}

static void segs_clear(struct segs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].text);
	s->n = 0;
}

/* The chat layout of one turn: "<role>:" then " <content>\n". */
static llm_err seg_turn(struct segs *s, const char *role, const char *content, bool loss_role,
			bool loss_content)
{
	char *body;
	llm_err rc = LLM_OK;
	int n = asprintf(&body, " %s\n", content);

	if (n < 0)
		return llm_fail(LLM_ENOMEM, "out of memory");
	rc = seg_add(s, role, strlen(role), loss_role);
	if (!rc)
		rc = seg_add(s, ":", 1, loss_role);
	if (!rc)
		rc = seg_add(s, body, (size_t)n, loss_content);
	free(body);
	return rc;
}

static llm_err need_string(const json_t *obj, const char *key, const char *where, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return llm_fail(LLM_EINVAL, "%smissing \"%s\"", where, key);
	if (!json_is_string(v))
		return llm_fail(LLM_ETYPE, "%s\"%s\" is not a string", where, key);
	*out = json_string_value(v);
	return LLM_OK;
}

static bool valid_role(const char *r)
{
	return strcmp(r, "system") == 0 || strcmp(r, "user") == 0 || strcmp(r, "assistant") == 0;
}

/* Checks one chat turn {role, content}; i names it in errors. */
static llm_err check_turn(const json_t *m, size_t i, const char **role, const char **content)
{
	char where[48];
	llm_err rc;

	snprintf(where, sizeof(where), "messages[%zu]: ", i);
	if (!json_is_object(m))
		return llm_fail(LLM_ETYPE, "messages[%zu] is not an object", i);
	rc = need_string(m, "role", where, role);
	if (!rc && !valid_role(*role))
		return llm_fail(LLM_EINVAL,
				"messages[%zu]: role \"%s\" is not system, user or assistant", i,
				*role);
	return rc ? rc : need_string(m, "content", where, content);
}

/* The record's own "messages", laid out with a loss on assistant turns. */
static llm_err record_turns(struct segs *s, const json_t *msgs, bool required)
{
	json_t *m;
	size_t i;

	if (!msgs && !required)
		return LLM_OK;
	if (!msgs)
		return llm_fail(LLM_EINVAL, "missing \"messages\"");
	if (!json_is_array(msgs))
		return llm_fail(LLM_ETYPE, "\"messages\" is not an array");
	if (required && !json_array_size(msgs))
		return llm_fail(LLM_EINVAL, "\"messages\" is empty");
	if (json_array_size(msgs) > DS_MAX_MESSAGES)
		return llm_fail(LLM_EINVAL, "\"messages\" has more than %d turns", DS_MAX_MESSAGES);
	json_array_foreach(msgs, i, m)
	{
		const char *role, *content;
		llm_err rc = check_turn(m, i, &role, &content);

		if (!rc)
			rc = seg_turn(s, role, content, false, strcmp(role, "assistant") == 0);
		if (rc)
			return rc;
	}
	return LLM_OK;
}

/* Lays out rendered messages: all with a loss (text format), none
 * (prompt-completion), or on non-example assistant turns (chat). */
static llm_err rendered_turns(struct segs *s, const json_t *msgs, enum ds_format f)
{
	json_t *m;
	size_t i;

	json_array_foreach(msgs, i, m)
	{
		const char *role = json_string_value(json_object_get(m, "role"));
		bool assistant = strcmp(role, "assistant") == 0;
		bool example = json_is_true(json_object_get(m, "example"));
		llm_err rc = seg_turn(s, role, json_string_value(json_object_get(m, "content")),
				      f == DS_TEXT,
				      f == DS_TEXT || (f == DS_CHAT && assistant && !example));

		if (rc)
			return rc;
	}
	return LLM_OK;
}

/* Renders the record's fields, but reserved, through the PromptVersion. */
static llm_err render(const struct loader *l, const json_t *rec, const char *reserved, json_t **out)
{
	json_t *vars = json_object(), *v;
	const char *key;
	llm_err rc;

	json_object_foreach((json_t *)rec, key, v)
	{
		if (!reserved || strcmp(key, reserved) != 0)
			json_object_set(vars, key, v);
	}
	rc = llm_prompt_render(l->cfg->prompt, vars, 0, out);
	json_decref(vars);
	return rc;
}

static llm_err prompted_segs(struct loader *l, const json_t *rec)
{
	enum ds_format f = l->cfg->format;
	const char *completion = NULL;
	json_t *r = NULL;
	llm_err rc = LLM_OK;

	if (f == DS_PROMPT_COMPLETION)
		rc = need_string(rec, "completion", "", &completion);
	if (!rc)
		rc = render(l, rec,
			    f == DS_PROMPT_COMPLETION ? "completion"
			    : f == DS_CHAT	      ? "messages"
						      : NULL,
			    &r);
	if (rc)
		return rc;
	if (json_is_string(r) && f == DS_CHAT)
		rc = seg_turn(&l->segs, "user", json_string_value(r), false, false);
	else if (json_is_string(r))
		rc = seg_add(&l->segs, json_string_value(r), json_string_length(r), f == DS_TEXT);
	else
		rc = rendered_turns(&l->segs, r, f);
	if (!rc && f == DS_PROMPT_COMPLETION && json_is_string(r))
		rc = seg_add(&l->segs, completion, strlen(completion), true);
	else if (!rc && f == DS_PROMPT_COMPLETION)
		rc = seg_turn(&l->segs, "assistant", completion, false, true);
	if (!rc && f == DS_CHAT)
		rc = record_turns(&l->segs, json_object_get(rec, "messages"), false);
	json_decref(r);
	return rc;
}

static llm_err plain_segs(struct loader *l, const json_t *rec)
{
	const char *a = "", *b = "";
	llm_err rc;

	switch (l->cfg->format) {
	case DS_TEXT:
		rc = need_string(rec, "text", "", &a);
		return rc ? rc : seg_add(&l->segs, a, strlen(a), true);
	case DS_PROMPT_COMPLETION:
		rc = need_string(rec, "prompt", "", &a);
		if (!rc)
			rc = need_string(rec, "completion", "", &b);
		if (!rc)
			rc = seg_add(&l->segs, a, strlen(a), false);
		return rc ? rc : seg_add(&l->segs, b, strlen(b), true);
	default: return record_turns(&l->segs, json_object_get(rec, "messages"), true);
	}
}

/* --- tokenising ---------------------------------------------------------- */

static llm_err tokv_push(struct tokv *tv, const int32_t *ids, size_t n, bool loss)
{
	if (tv->n + n > tv->cap) {
		size_t cap = tv->cap ? 2 * tv->cap : 1024;
		int32_t *a, *b;

		while (cap < tv->n + n)
			cap *= 2;
		a = realloc(tv->ids, cap * sizeof(int32_t));
		if (a)
			tv->ids = a;
		b = a ? realloc(tv->labels, cap * sizeof(int32_t)) : NULL;
		if (!b)
			return llm_fail(LLM_ENOMEM, "out of memory tokenising");
		tv->labels = b;
		tv->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		tv->ids[tv->n + i] = ids[i];
		tv->labels[tv->n + i] = loss ? ids[i] : DS_IGNORE;
	}
	tv->n += n;
	return LLM_OK;
}

/* BOS, every segment tokenised on its own, EOS (a target when the token
 * before it is). */
static llm_err tokenise(struct loader *l)
{
	struct tokv *tv = &l->tv;
	llm_err rc = tokv_push(tv, l->sp.bos, l->sp.n_bos, false);

	for (size_t i = 0; !rc && i < l->segs.n; i++) {
		uint32_t *ids = NULL;
		size_t n = 0;

		rc = llm_tok_encode(l->tok, l->segs.v[i].text, strlen(l->segs.v[i].text), false,
				    &ids, &n);
		if (!rc) /* ids are below LLM_TOK_MAX_VOCAB: they fit an int32_t */
			rc = tokv_push(tv, (const int32_t *)ids, n, l->segs.v[i].loss);
		free(ids);
	}
	if (!rc)
		rc = tokv_push(tv, l->sp.eos, l->sp.n_eos,
			       tv->n && tv->labels[tv->n - 1] != DS_IGNORE);
	return rc;
}

/* The record in text to tokens in l->tv; errors are the record's. */
static llm_err record_to_tokens(struct loader *l, const char *text, size_t len)
{
	json_error_t je;
	json_t *rec = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	llm_err rc;

	if (!rec)
		return llm_fail(LLM_EPARSE, "invalid JSON at column %d: %s", je.column, je.text);
	if (!json_is_object(rec))
		rc = llm_fail(LLM_ETYPE, "not a JSON object");
	else if (l->cfg->prompt)
		rc = prompted_segs(l, rec);
	else
		rc = plain_segs(l, rec);
	if (!rc)
		rc = tokenise(l);
	segs_clear(&l->segs);
	json_decref(rec);
	return rc;
}

/* --- reading ---------------------------------------------------------------- */

/* Reads one line (without its newline) into l->line; *too_long when it has
 * more than max_line bytes (the rest is consumed). false at end of file. */
static bool read_line(struct loader *l, FILE *f, size_t *len, bool *too_long)
{
	size_t max = l->cfg->max_line ? l->cfg->max_line : DS_MAX_LINE_DEFAULT;
	int c;

	*len = 0;
	*too_long = false;
	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
		if (*len < max)
			l->line[(*len)++] = (char)c;
		else
			*too_long = true;
	}
	return c != EOF || *len > 0 || *too_long;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	}
	return true;
}

/* Applies the length policy to l->tv and keeps the example. */
static llm_err keep_example(struct loader *l, struct examples *into)
{
	struct ds_counts *c = &l->d->counts;
	size_t n = l->tv.n;

	if (n > l->d->seq_len) {
		if (l->cfg->drop_long) {
			c->dropped++;
			return LLM_OK;
		}
		c->truncated++;
		n = l->d->seq_len;
	}
	c->tokens += n;
	for (size_t i = 0; i < n; i++)
		c->loss_tokens += l->tv.labels[i] != DS_IGNORE;
	return n ? examples_push(l->d, into, l->tv.ids, l->tv.labels, n) : LLM_OK;
}

static bool skippable(llm_err rc)
{
	return rc == LLM_EPARSE || rc == LLM_EINVAL || rc == LLM_ETYPE || rc == LLM_ETOOLARGE;
}

/* One line: a record, blank, or an error located at file:line. */
static llm_err handle_line(struct loader *l, size_t len, bool too_long, struct examples *into)
{
	size_t max = l->cfg->max_line ? l->cfg->max_line : DS_MAX_LINE_DEFAULT;
	char detail[1024];
	llm_err rc;

	if (!too_long && blank(l->line, len))
		return LLM_OK;
	l->d->counts.records++;
	l->tv.n = 0;
	if (too_long)
		rc = llm_fail(LLM_ETOOLARGE, "line is longer than %zu bytes", max);
	else
		rc = record_to_tokens(l, l->line, len);
	if (!rc)
		return keep_example(l, into);
	if (rc != LLM_ENOMEM && skippable(rc) && l->cfg->skip_invalid) {
		l->d->counts.skipped++;
		return LLM_OK;
	}
	snprintf(detail, sizeof(detail), "%s", llm_last_error());
	return llm_fail(rc, "%s:%zu: %s", l->file, l->lineno, detail);
}

static llm_err load_file(struct loader *l, const char *path, struct examples *into)
{
	FILE *f = fopen(path, "r");
	const char *slash = strrchr(path, '/');
	bool too_long;
	size_t len;
	llm_err rc = LLM_OK;

	if (!f)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	l->file = slash ? slash + 1 : path;
	l->lineno = 0;
	while (!rc && read_line(l, f, &len, &too_long)) {
		l->lineno++;
		rc = handle_line(l, len, too_long, into);
	}
	if (!rc && ferror(f))
		rc = llm_fail(LLM_EIO, "%s: read error", path);
	fclose(f);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_jsonl(const char *name)
{
	size_t n = strlen(name);

	return n > 6 && strcmp(name + n - 6, ".jsonl") == 0 && name[0] != '.';
}

/* The *.jsonl names in dir, sorted; *n of them in *names (free each). */
static llm_err list_dir(const char *dir, char ***names, size_t *n)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char **v = calloc(DS_MAX_FILES, sizeof(char *));
	llm_err rc = LLM_OK;

	*n = 0;
	if (!dp || !v) {
		free(v);
		if (dp)
			closedir(dp);
		return llm_fail(dp ? LLM_ENOMEM : LLM_EIO, "%s: cannot list", dir);
	}
	while (!rc && (e = readdir(dp))) {
		if (!is_jsonl(e->d_name))
			continue;
		if (*n == DS_MAX_FILES)
			rc = llm_fail(LLM_ETOOLARGE, "%s: more than %d *.jsonl files", dir,
				      DS_MAX_FILES);
		else if (!(v[(*n)++] = strdup(e->d_name)))
			rc = llm_fail(LLM_ENOMEM, "out of memory");
	}
	closedir(dp);
	qsort(v, *n, sizeof(char *), cmp_names);
	*names = v;
	if (!rc && !*n)
		rc = llm_fail(LLM_ENOTFOUND, "%s: no *.jsonl files", dir);
	return rc;
}

static llm_err load_dir(struct loader *l, const char *dir, struct examples *into)
{
	char **names = NULL, path[4096];
	size_t n = 0;
	llm_err rc = list_dir(dir, &names, &n);

	for (size_t i = 0; !rc && i < n; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path))
			rc = llm_fail(LLM_EINVAL, "%s/%s: path too long", dir, names[i]);
		else
			rc = load_file(l, path, into);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static llm_err load_path(struct loader *l, const char *path, struct examples *into)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(errno));
	return S_ISDIR(st.st_mode) ? load_dir(l, path, into) : load_file(l, path, into);
}

/* --- split, pack, order ------------------------------------------------------- */

/* Fisher-Yates with a counter-based generator: a function of key alone. */
static void shuffle(size_t *v, size_t n, uint64_t key)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(llm_hash64(key, i) % i), t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static llm_err copy_example(struct ds_dataset *d, struct examples *to, const struct examples *from,
			    size_t i)
{
	size_t a = from->off[i], n = from->off[i + 1] - a;

	return examples_push(d, to, from->ids + a, from->labels + a, n);
}

/* Moves round(split * n) seeded-random training examples (at least one,
 * never all) to the validation set; both keep file order. */
static llm_err split(struct ds_dataset *d, double fraction)
{
	struct examples *train = &d->part[DS_TRAIN].ex, kept = {0},
			*val = &d->part[DS_VALIDATION].ex;
	size_t n = train->n, n_val = (size_t)(fraction * (double)n + 0.5), *idx;
	unsigned char *is_val;
	llm_err rc = LLM_OK;

	if (fraction <= 0 || n < 2)
		return LLM_OK;
	n_val = n_val < 1 ? 1 : n_val > n - 1 ? n - 1 : n_val;
	idx = malloc(n * sizeof(size_t));
	is_val = calloc(n, 1);
	if (!idx || !is_val)
		rc = llm_fail(LLM_ENOMEM, "out of memory splitting the dataset");
	for (size_t i = 0; !rc && i < n; i++)
		idx[i] = i;
	if (!rc)
		shuffle(idx, n, llm_hash64(d->seed, TAG_SPLIT));
	for (size_t k = 0; !rc && k < n_val; k++)
		is_val[idx[k]] = 1;
	for (size_t i = 0; !rc && i < n; i++)
		rc = copy_example(d, is_val[i] ? val : &kept, train, i);
	examples_free(d, rc ? &kept : train);
	if (!rc)
		*train = kept;
	free(idx);
	free(is_val);
	return rc;
}

/* How many sequences pack() makes of e. */
static size_t pack_count(const struct examples *e, size_t S)
{
	size_t room = 0, n_seq = 0;

	for (size_t i = 0; i < e->n; i++) {
		size_t len = e->off[i + 1] - e->off[i];

		if (len > room) {
			n_seq++;
			room = S;
		}
		room -= len;
	}
	return n_seq;
}

/* Sequences of whole examples in order: an example that does not fit in
 * what is left of the current sequence starts the next one; the rest is
 * padding with no loss. Each example's first token has no loss (nothing
 * before it in the sequence predicts it). */
static llm_err pack(struct ds_dataset *d, struct part *p, int32_t pad)
{
	const struct examples *e = &p->ex;
	size_t S = d->seq_len, n_seq = pack_count(e, S), at = 0;

	if (charge(d, n_seq * S * 2 * sizeof(int32_t)))
		return LLM_ETOOLARGE;
	p->seq_ids = malloc(n_seq * S * sizeof(int32_t) + 1);
	p->seq_labels = malloc(n_seq * S * sizeof(int32_t) + 1);
	if (!p->seq_ids || !p->seq_labels)
		return llm_fail(LLM_ENOMEM, "out of memory packing the dataset");
	p->n_seq = n_seq;
	for (size_t k = 0; k < n_seq * S; k++) {
		p->seq_ids[k] = pad;
		p->seq_labels[k] = DS_IGNORE;
	}
	for (size_t i = 0, seq = 0, pos = S; i < e->n; i++) {
		size_t len = e->off[i + 1] - e->off[i];

		if (pos + len > S) {
			at = seq++ * S;
			pos = 0;
		}
		memcpy(p->seq_ids + at + pos, e->ids + e->off[i], len * sizeof(int32_t));
		memcpy(p->seq_labels + at + pos, e->labels + e->off[i], len * sizeof(int32_t));
		p->seq_labels[at + pos] = DS_IGNORE;
		pos += len;
	}
	return LLM_OK;
}

void ds_epoch_order(const ds_dataset *d, uint64_t epoch, size_t *perm)
{
	size_t n = d->part[DS_TRAIN].n_seq;

	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	shuffle(perm, n, llm_hash64(llm_hash64(d->seed, TAG_EPOCH), epoch));
}

/* --- loading ---------------------------------------------------------------- */

llm_err ds_format_parse(const char *s, enum ds_format *out)
{
	if (!s || strcmp(s, "text") == 0)
		*out = DS_TEXT;
	else if (strcmp(s, "prompt-completion") == 0)
		*out = DS_PROMPT_COMPLETION;
	else if (strcmp(s, "chat") == 0)
		*out = DS_CHAT;
	else
		return llm_fail(LLM_EINVAL,
				"dataset format \"%s\" is not text, prompt-completion or chat", s);
	return LLM_OK;
}

/* A PromptVersion that cannot render any record fails before the first. */
static llm_err check_prompt(const json_t *spec)
{
	char detail[1024];

	if (!json_is_string(json_object_get(spec, "template")) ==
	    !json_is_array(json_object_get(spec, "messages")))
		return llm_fail(LLM_EINVAL,
				"dataset: PromptVersion: spec needs exactly one of template and "
				"messages");
	if (!llm_prompt_check(spec))
		return LLM_OK;
	snprintf(detail, sizeof(detail), "%s", llm_last_error());
	return llm_fail(LLM_EINVAL, "dataset: PromptVersion: %s", detail);
}

/* Reads an optional integer at path into *out, keeping *out when unset. */
static llm_err opt_size(const json_t *spec, const char *path, uint64_t *out)
{
	json_int_t v;
	llm_err rc = llm_json_get_int(spec, path, &v);

	if (rc == LLM_ENOTFOUND)
		return LLM_OK;
	if (!rc && v < 0)
		rc = llm_fail(LLM_EINVAL, "%s is negative", path);
	if (!rc)
		*out = (uint64_t)v;
	return rc;
}

llm_err ds_config_from_spec(const json_t *spec, struct ds_config *cfg)
{
	const char *truncate = llm_json_str_or(spec, "dataset.truncate", "truncate");
	uint64_t seq_len = 512, seed = 42;
	double split = 0;
	llm_err rc = ds_format_parse(llm_json_str_or(spec, "dataset.format", "text"), &cfg->format);

	if (!rc && strcmp(truncate, "truncate") != 0 && strcmp(truncate, "drop") != 0)
		rc = llm_fail(LLM_EINVAL, "dataset.truncate \"%s\" is not truncate or drop",
			      truncate);
	if (!rc && llm_json_get_num(spec, "dataset.validationSplit", &split) == LLM_ETYPE)
		rc = LLM_ETYPE;
	if (!rc)
		rc = opt_size(spec, "hyperparameters.sequenceLength", &seq_len);
	if (!rc)
		rc = opt_size(spec, "hyperparameters.seed", &seed);
	if (rc)
		return rc;
	cfg->drop_long = strcmp(truncate, "drop") == 0;
	cfg->skip_invalid =
		json_is_true(json_object_get(json_object_get(spec, "dataset"), "skipInvalid"));
	cfg->validation_split = split;
	cfg->seq_len = (size_t)seq_len;
	cfg->seed = seed;
	return LLM_OK;
}

static llm_err check_config(const struct ds_config *cfg)
{
	if (!cfg->train)
		return llm_fail(LLM_EINVAL, "dataset: no training set");
	if (cfg->seq_len < 2)
		return llm_fail(LLM_EINVAL, "dataset: sequence length %zu is below 2",
				cfg->seq_len);
	if (!(cfg->validation_split >= 0 && cfg->validation_split <= 0.5))
		return llm_fail(LLM_EINVAL, "dataset: validationSplit %g is not in [0, 0.5]",
				cfg->validation_split);
	if (cfg->validation && cfg->validation_split > 0)
		return llm_fail(LLM_EINVAL,
				"dataset: set at most one of validation and validationSplit");
	if (cfg->format > DS_CHAT)
		return llm_fail(LLM_EINVAL, "dataset: unknown format %d", (int)cfg->format);
	if (cfg->prompt)
		return check_prompt(cfg->prompt);
	return LLM_OK;
}

static llm_err load_all(struct loader *l)
{
	struct ds_dataset *d = l->d;
	llm_err rc = load_path(l, l->cfg->train, &d->part[DS_TRAIN].ex);

	if (!rc && l->cfg->validation)
		rc = load_path(l, l->cfg->validation, &d->part[DS_VALIDATION].ex);
	if (!rc)
		rc = split(d, l->cfg->validation_split);
	if (!rc && !d->part[DS_TRAIN].ex.n)
		rc = llm_fail(LLM_EINVAL, "%s: no examples left to train on", l->cfg->train);
	for (int s = DS_TRAIN; !rc && s <= DS_VALIDATION; s++)
		rc = pack(d, &d->part[s], l->sp.pad);
	d->counts.train_examples = d->part[DS_TRAIN].ex.n;
	d->counts.val_examples = d->part[DS_VALIDATION].ex.n;
	d->counts.examples = d->counts.train_examples + d->counts.val_examples;
	d->counts.sequences = d->part[DS_TRAIN].n_seq;
	d->counts.val_sequences = d->part[DS_VALIDATION].n_seq;
	return rc;
}

llm_err ds_load(const struct ds_config *cfg, const llm_tok *tok, ds_dataset **out)
{
	size_t max_line = cfg->max_line ? cfg->max_line : DS_MAX_LINE_DEFAULT;
	struct loader *l;
	llm_err rc = check_config(cfg);

	if (rc)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->d = calloc(1, sizeof(*l->d))) || !(l->line = malloc(max_line + 1))) {
		rc = llm_fail(LLM_ENOMEM, "out of memory loading the dataset");
		goto out_free_loader;
	}
	l->cfg = cfg;
	l->tok = tok;
	l->d->seq_len = cfg->seq_len;
	l->d->seed = cfg->seed;
	l->d->max_bytes = cfg->max_bytes ? cfg->max_bytes : DS_MAX_BYTES_DEFAULT;
	rc = find_specials(tok, &l->sp);
	if (!rc)
		rc = load_all(l);
	if (!rc) {
		*out = l->d;
		l->d = NULL;
	}
out_free_loader:
	if (l) {
		ds_destroy(l->d);
		free(l->line);
		free(l->tv.ids);
		free(l->tv.labels);
	}
	free(l);
	return rc;
}

void ds_destroy(ds_dataset *d)
{
	if (!d)
		return;
	for (int s = DS_TRAIN; s <= DS_VALIDATION; s++) {
		examples_free(d, &d->part[s].ex);
		free(d->part[s].seq_ids);
		free(d->part[s].seq_labels);
	}
	free(d);
}

/* --- access -------------------------------------------------------------- */

void ds_get_counts(const ds_dataset *d, struct ds_counts *out)
{
	*out = d->counts;
}

size_t ds_seq_len(const ds_dataset *d)
{
	return d->seq_len;
}

size_t ds_num_examples(const ds_dataset *d, enum ds_split s)
{
	return s <= DS_VALIDATION ? d->part[s].ex.n : 0;
}

llm_err ds_example(const ds_dataset *d, enum ds_split s, size_t i, const int32_t **ids,
		   const int32_t **labels, size_t *len)
{
	const struct examples *e;

	if (i >= ds_num_examples(d, s))
		return llm_fail(LLM_EINVAL, "example %zu is out of range", i);
	e = &d->part[s].ex;
	*ids = e->ids + e->off[i];
	*labels = e->labels + e->off[i];
	*len = e->off[i + 1] - e->off[i];
	return LLM_OK;
}

size_t ds_num_sequences(const ds_dataset *d, enum ds_split s)
{
	return s <= DS_VALIDATION ? d->part[s].n_seq : 0;
}

llm_err ds_sequence(const ds_dataset *d, enum ds_split s, size_t i, const int32_t **ids,
		    const int32_t **labels)
{
	if (i >= ds_num_sequences(d, s))
		return llm_fail(LLM_EINVAL, "sequence %zu is out of range", i);
	*ids = d->part[s].seq_ids + i * d->seq_len;
	*labels = d->part[s].seq_labels + i * d->seq_len;
	return LLM_OK;
}

llm_err ds_gather(const ds_dataset *d, enum ds_split s, const size_t *idx, size_t n, int32_t *ids,
		  int32_t *labels)
{
	size_t S = d->seq_len;

	for (size_t k = 0; k < n; k++) {
		const int32_t *a = NULL, *b = NULL;
		llm_err rc = ds_sequence(d, s, idx[k], &a, &b);

		if (rc)
			return rc;
		memcpy(ids + k * S, a, S * sizeof(int32_t));
		memcpy(labels + k * S, b, S * sizeof(int32_t));
	}
	return LLM_OK;
}

/* --- cursors ------------------------------------------------------------- */

struct ds_cursor {
	const ds_dataset *d;
	struct ds_shard sh;
	struct ds_pos pos;
	size_t steps; /* per epoch */
	size_t *perm; /* the order of pos.epoch */
};

size_t ds_steps_per_epoch(const ds_dataset *d, size_t global_batch)
{
	return global_batch ? d->part[DS_TRAIN].n_seq / global_batch : 0;
}

static llm_err check_shard(const ds_dataset *d, const struct ds_shard *sh, struct ds_pos pos)
{
	size_t g = sh->global_batch, steps = ds_steps_per_epoch(d, g);

	if (!sh->world || !sh->micro_batch || !g || g % (sh->micro_batch * sh->world))
		return llm_fail(LLM_EINVAL,
				"globalBatchSize %zu is not a multiple of microBatchSize %zu x "
				"world size %zu",
				g, sh->micro_batch, sh->world);
	if (sh->rank >= sh->world)
		return llm_fail(LLM_EINVAL, "rank %zu is not below world size %zu", sh->rank,
				sh->world);
	if (!steps)
		return llm_fail(LLM_EINVAL,
				"the training set packs into %zu sequences, fewer than "
				"globalBatchSize %zu",
				d->part[DS_TRAIN].n_seq, g);
	if (pos.step >= steps)
		return llm_fail(LLM_EINVAL, "step %llu is past the %zu steps of an epoch",
				(unsigned long long)pos.step, steps);
	return LLM_OK;
}

llm_err ds_cursor_new(const ds_dataset *d, const struct ds_shard *sh, struct ds_pos pos,
		      ds_cursor **out)
{
	ds_cursor *c;
	llm_err rc = check_shard(d, sh, pos);

	if (rc)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->perm = malloc(d->part[DS_TRAIN].n_seq * sizeof(size_t)))) {
		free(c);
		return llm_fail(LLM_ENOMEM, "out of memory for a dataset cursor");
	}
	c->d = d;
	c->sh = *sh;
	c->pos = pos;
	c->steps = ds_steps_per_epoch(d, sh->global_batch);
	ds_epoch_order(d, pos.epoch, c->perm);
	*out = c;
	return LLM_OK;
}

void ds_cursor_destroy(ds_cursor *c)
{
	if (!c)
		return;
	free(c->perm);
	free(c);
}

struct ds_pos ds_cursor_pos(const ds_cursor *c)
{
	return c->pos;
}

llm_err ds_cursor_next(ds_cursor *c, size_t *idx)
{
	size_t per = c->sh.global_batch / c->sh.world;
	size_t base = (size_t)c->pos.step * c->sh.global_batch + c->sh.rank * per;

	for (size_t k = 0; k < per; k++)
		idx[k] = c->perm[base + k];
	if (++c->pos.step == c->steps) {
		c->pos.step = 0;
		c->pos.epoch++;
		ds_epoch_order(c->d, c->pos.epoch, c->perm);
	}
	return LLM_OK;
}
