/* Prometheus metrics registry (see llm_metrics.h).
 *
 * Each family keeps its children in a singly linked list (creation order, for
 * rendering) and in a chained hash table keyed by the label values (for
 * lookup on the hot path). One mutex per family guards its children and
 * values; the registry mutex guards only the list of families. Design limit:
 * children are never deleted, so label values must come from a bounded set
 * (controller names, results), never from user input. */
#include "llm_metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const double llm_metrics_def_buckets[LLM_METRICS_DEF_BUCKETS_LEN] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* clang-format off */
const double llm_metrics_reconcile_buckets[LLM_METRICS_RECONCILE_BUCKETS_LEN] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
	0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
	5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
};
/* clang-format on */

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct child {
	struct child *next;  /* creation order */
	struct child *hnext; /* hash chain */
	uint64_t hash;
	char **values; /* nlabels strings, in the same allocation */
	double value;  /* counter or gauge */
	llm_metric_fn fn;
	void *data;
	unsigned long long *counts; /* histogram: per bucket, not cumulative; +Inf last */
	unsigned long long count;
	double sum;
};

struct family {
	struct family *next;
	enum kind kind;
	char *name;
	char *help;
	char **labels;
	size_t nlabels;
	double *bounds; /* histogram upper bounds, +Inf implied */
	size_t nbounds;
	pthread_mutex_t lock;
	struct child *first, *last;
	struct child **table;
	size_t table_size; /* a power of two */
	size_t nchildren;
};

struct llm_metrics {
	pthread_mutex_t lock;
	struct family *first, *last;
};

/* --- registry ---------------------------------------------------------------- */

llm_metrics *llm_metrics_new(void)
{
	llm_metrics *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

static void family_free(struct family *f)
{
	struct child *c, *next;

	if (!f)
		return;
	for (c = f->first; c; c = next) {
		next = c->next;
		free(c);
	}
	for (size_t i = 0; f->labels && i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->table);
	free(f->bounds);
	free(f->name);
	free(f->help);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void llm_metrics_destroy(llm_metrics *r)
{
	struct family *f, *next;

	if (!r)
		return;
	for (f = r->first; f; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		char ch = s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			  (colon && ch == ':') || (i > 0 && ch >= '0' && ch <= '9');

		if (!ok)
			return false;
	}
	return true;
}

/* Checks the label names of a new family; LLM_EINVAL naming the culprit. */
static llm_err check_labels(const char *metric, const char *const *labels, enum kind kind,
			    size_t *n)
{
	*n = 0;
	for (size_t i = 0; labels && labels[i]; i++) {
		const char *l = labels[i];

		if (!valid_name(l, false) || strncmp(l, "__", 2) == 0)
			return llm_fail(LLM_EINVAL, "metric %s: invalid label name '%s'", metric,
					l);
		if (kind == KIND_HISTOGRAM && strcmp(l, "le") == 0)
			return llm_fail(LLM_EINVAL, "metric %s: label 'le' is reserved", metric);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[j], l) == 0)
				return llm_fail(LLM_EINVAL, "metric %s: duplicate label '%s'",
						metric, l);
		(*n)++;
	}
	return LLM_OK;
}

/* Copies the bucket bounds, dropping a trailing +Inf. */
static llm_err copy_bounds(struct family *f, const double *b, size_t n)
{
	if (!b) {
		b = llm_metrics_def_buckets;
		n = LLM_METRICS_DEF_BUCKETS_LEN;
	}
	if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0)
		n--;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1]))
			return llm_fail(LLM_EINVAL,
					"metric %s: buckets must be finite and strictly increasing",
					f->name);
	f->bounds = malloc((n ? n : 1) * sizeof(double));
	if (!f->bounds)
		return llm_fail(LLM_ENOMEM, "metric %s: out of memory", f->name);
	if (n)
		memcpy(f->bounds, b, n * sizeof(double));
	f->nbounds = n;
	return LLM_OK;
}

static struct family *family_alloc(const char *name, const char *help, const char *const *labels,
				   size_t nlabels)
{
	struct family *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	f->labels = calloc(nlabels ? nlabels : 1, sizeof(char *));
	f->table_size = 16;
	f->table = calloc(f->table_size, sizeof(struct child *));
	if (!f->name || !f->help || !f->labels || !f->table)
		goto out_free;
	for (f->nlabels = 0; f->nlabels < nlabels; f->nlabels++) {
		f->labels[f->nlabels] = strdup(labels[f->nlabels]);
		if (!f->labels[f->nlabels])
			goto out_free;
	}
	return f;
out_free:
	family_free(f);
	return NULL;
}

static struct child *child_get(struct family *f, const char *const *values, llm_err *rc);

/* Validates, builds and appends a family; an unlabelled one gets its only
 * child at once so that it renders 0 before its first update. */
static llm_err family_register(llm_metrics *r, enum kind kind, const char *name, const char *help,
			       const char *const *labels, const double *buckets, size_t nbuckets,
			       struct family **out)
{
	struct family *f, *it;
	size_t nlabels;
	llm_err rc;

	*out = NULL;
	if (!r || !valid_name(name, true))
		return llm_fail(LLM_EINVAL, "invalid metric name '%s'", name ? name : "(null)");
	rc = check_labels(name, labels, kind, &nlabels);
	if (rc)
		return rc;
	f = family_alloc(name, help, labels, nlabels);
	if (!f)
		return llm_fail(LLM_ENOMEM, "metric %s: out of memory", name);
	f->kind = kind;
	rc = kind == KIND_HISTOGRAM ? copy_bounds(f, buckets, nbuckets) : LLM_OK;
	if (!rc && nlabels == 0 && !child_get(f, NULL, &rc))
		rc = rc ? rc : LLM_ENOMEM;
	if (rc)
		goto out_free;
	pthread_mutex_lock(&r->lock);
	for (it = r->first; it; it = it->next)
		if (strcmp(it->name, name) == 0)
			break;
	if (!it) {
		if (r->last)
			r->last->next = f;
		else
			r->first = f;
		r->last = f;
	}
	pthread_mutex_unlock(&r->lock);
	if (it) {
		rc = llm_fail(LLM_EEXIST, "metric %s is already registered", name);
		goto out_free;
	}
	*out = f;
	return LLM_OK;
out_free:
	family_free(f);
	return rc;
}

llm_err llm_metrics_counter(llm_metrics *r, const char *name, const char *help,
			    const char *const *labels, llm_counter **out)
{
	struct family *f;
	llm_err rc = family_register(r, KIND_COUNTER, name, help, labels, NULL, 0, &f);

	*out = (llm_counter *)f;
	return rc;
}

llm_err llm_metrics_gauge(llm_metrics *r, const char *name, const char *help,
			  const char *const *labels, llm_gauge **out)
{
	struct family *f;
	llm_err rc = family_register(r, KIND_GAUGE, name, help, labels, NULL, 0, &f);

	*out = (llm_gauge *)f;
	return rc;
}

llm_err llm_metrics_histogram(llm_metrics *r, const char *name, const char *help,
			      const char *const *labels, const double *buckets, size_t nbuckets,
			      llm_histogram **out)
{
	struct family *f;
	llm_err rc = family_register(r, KIND_HISTOGRAM, name, help, labels, buckets, nbuckets, &f);

	*out = (llm_histogram *)f;
	return rc;
}

/* --- children ---------------------------------------------------------------- */

/* FNV-1a over the values, each followed by a 0xff separator. */
static uint64_t hash_values(const struct family *f, const char *const *values)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < f->nlabels; i++) {
		for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL;
	}
	return h;
}

static bool same_values(const struct family *f, const struct child *c, const char *const *values)
{
	for (size_t i = 0; i < f->nlabels; i++)
		if (strcmp(c->values[i], values[i]) != 0)
			return false;
	return true;
}

/* Doubles the hash table; on allocation failure keeps the old one (lookups
 * stay correct, only slower). */
static void table_grow(struct family *f)
{
	size_t size = f->table_size * 2;
	struct child **t = calloc(size, sizeof(*t));

	if (!t)
		return;
	for (struct child *c = f->first; c; c = c->next) {
		c->hnext = t[c->hash & (size - 1)];
		t[c->hash & (size - 1)] = c;
	}
	free(f->table);
	f->table = t;
	f->table_size = size;
}

/* One allocation: the child, its bucket counts, the value pointers and the
 * value strings. */
static struct child *child_new(struct family *f, const char *const *values, uint64_t h)
{
	size_t ncounts = f->kind == KIND_HISTOGRAM ? f->nbounds + 1 : 0;
	size_t size = sizeof(struct child) + ncounts * sizeof(unsigned long long) +
		      f->nlabels * sizeof(char *);
	struct child *c;
	char *p;

	for (size_t i = 0; i < f->nlabels; i++)
		size += strlen(values[i]) + 1;
	c = calloc(1, size);
	if (!c)
		return NULL;
	c->hash = h;
	c->counts = ncounts ? (unsigned long long *)(c + 1) : NULL;
	c->values = (char **)((unsigned long long *)(c + 1) + ncounts);
	p = (char *)(c->values + f->nlabels);
	for (size_t i = 0; i < f->nlabels; i++) {
		size_t n = strlen(values[i]) + 1;

		memcpy(p, values[i], n);
		c->values[i] = p;
		p += n;
	}
	return c;
}

/* Finds or creates the child for values; call with f->lock held. NULL with
 * *rc set when values are missing or memory runs out. */
static struct child *child_get(struct family *f, const char *const *values, llm_err *rc)
{
	uint64_t h;
	struct child *c;

	*rc = LLM_OK;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (!values || !values[i]) {
			*rc = llm_fail(LLM_EINVAL, "metric %s: missing value for label '%s'",
				       f->name, f->labels[i]);
			return NULL;
		}
	}
	h = hash_values(f, values);
	for (c = f->table[h & (f->table_size - 1)]; c; c = c->hnext)
		if (c->hash == h && same_values(f, c, values))
			return c;
	c = child_new(f, values, h);
	if (!c) {
		*rc = llm_fail(LLM_ENOMEM, "metric %s: out of memory", f->name);
		return NULL;
	}
	if (f->last)
		f->last->next = c;
	else
		f->first = c;
	f->last = c;
	c->hnext = f->table[h & (f->table_size - 1)];
	f->table[h & (f->table_size - 1)] = c;
	if (++f->nchildren > f->table_size)
		table_grow(f);
	return c;
}

/* Locks f and returns the child for values, or NULL (unlocked) on failure. */
static struct child *lock_child(struct family *f, enum kind kind, const char *const *values,
				llm_err *rc)
{
	struct child *c;

	if (!f || f->kind != kind) {
		*rc = llm_fail(LLM_EINVAL, "metric: no %s given", kind_names[kind]);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	c = child_get(f, values, rc);
	if (!c)
		pthread_mutex_unlock(&f->lock);
	return c;
}

/* Sets (add false) or adds to a counter or gauge child. */
static llm_err update(struct family *f, enum kind kind, const char *const *values, double v,
		      bool add)
{
	llm_err rc;
	struct child *c = lock_child(f, kind, values, &rc);

	if (!c)
		return rc;
	c->value = add ? c->value + v : v;
	pthread_mutex_unlock(&f->lock);
	return LLM_OK;
}

static llm_err bind_func(struct family *f, enum kind kind, const char *const *values,
			 llm_metric_fn fn, void *data)
{
	llm_err rc;
	struct child *c = lock_child(f, kind, values, &rc);

	if (!c)
		return rc;
	c->fn = fn;
	c->data = fn ? data : NULL;
	pthread_mutex_unlock(&f->lock);
	return LLM_OK;
}

/* Reads a child's value without creating it. */
static llm_err read_value(struct family *f, enum kind kind, const char *const *values, double *out)
{
	struct child *c;

	if (!f || f->kind != kind)
		return llm_fail(LLM_EINVAL, "metric: no %s given", kind_names[kind]);
	for (size_t i = 0; i < f->nlabels; i++)
		if (!values || !values[i])
			return llm_fail(LLM_EINVAL, "metric %s: missing label value", f->name);
	pthread_mutex_lock(&f->lock);
	for (c = f->first; c && !same_values(f, c, values); c = c->next)
		;
	if (c)
		*out = c->fn ? c->fn(c->data) : c->value;
	pthread_mutex_unlock(&f->lock);
	return c ? LLM_OK : llm_fail(LLM_ENOTFOUND, "metric %s: no such child", f->name);
}

llm_err llm_counter_add(llm_counter *c, const char *const *values, double v)
{
	if (!(v >= 0))
		return llm_fail(LLM_EINVAL, "counter: cannot add %g", v);
	return update((struct family *)c, KIND_COUNTER, values, v, true);
}

llm_err llm_counter_set_func(llm_counter *c, const char *const *values, llm_metric_fn fn,
			     void *data)
{
	return bind_func((struct family *)c, KIND_COUNTER, values, fn, data);
}

llm_err llm_counter_value(llm_counter *c, const char *const *values, double *out)
{
	return read_value((struct family *)c, KIND_COUNTER, values, out);
}

llm_err llm_gauge_set(llm_gauge *g, const char *const *values, double v)
{
	return update((struct family *)g, KIND_GAUGE, values, v, false);
}

llm_err llm_gauge_add(llm_gauge *g, const char *const *values, double v)
{
	return update((struct family *)g, KIND_GAUGE, values, v, true);
}

llm_err llm_gauge_set_func(llm_gauge *g, const char *const *values, llm_metric_fn fn, void *data)
{
	return bind_func((struct family *)g, KIND_GAUGE, values, fn, data);
}

llm_err llm_gauge_value(llm_gauge *g, const char *const *values, double *out)
{
	return read_value((struct family *)g, KIND_GAUGE, values, out);
}

llm_err llm_histogram_observe(llm_histogram *h, const char *const *values, double v)
{
	struct family *f = (struct family *)h;
	llm_err rc;
	struct child *c = lock_child(f, KIND_HISTOGRAM, values, &rc);
	size_t lo = 0, hi;

	if (!c)
		return rc;
	/* First bound >= v; NaN and values over every bound land in +Inf. */
	hi = f->nbounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->bounds[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (isnan(v))
		lo = f->nbounds;
	c->counts[lo]++;
	c->count++;
	c->sum += v;
	pthread_mutex_unlock(&f->lock);
	return LLM_OK;
}

llm_err llm_histogram_stats(llm_histogram *h, const char *const *values, unsigned long long *count,
			    double *sum)
{
	struct family *f = (struct family *)h;
	struct child *c;

	if (!f || f->kind != KIND_HISTOGRAM)
		return llm_fail(LLM_EINVAL, "metric: no histogram given");
	for (size_t i = 0; i < f->nlabels; i++)
		if (!values || !values[i])
			return llm_fail(LLM_EINVAL, "metric %s: missing label value", f->name);
	pthread_mutex_lock(&f->lock);
	for (c = f->first; c && !same_values(f, c, values); c = c->next)
		;
	if (c) {
		*count = c->count;
		*sum = c->sum;
	}
	pthread_mutex_unlock(&f->lock);
	return c ? LLM_OK : llm_fail(LLM_ENOTFOUND, "metric %s: no such child", f->name);
}

/* --- rendering --------------------------------------------------------------- */

const char *llm_metrics_format_value(double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "NaN");
	else if (isinf(v))
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
	else
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	return buf;
}

/* The escape sequence for ch, or NULL if it stands for itself: backslash and
 * newline always, double quote when quote is set (label values, not help). */
static const char *escape_of(char ch, bool quote)
{
	switch (ch) {
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '"': return quote ? "\\\"" : NULL;
	default: return NULL;
	}
}

/* Appends s escaped for the exposition format. */
static llm_err put_escaped(llm_buf *out, const char *s, bool quote)
{
	llm_err rc = LLM_OK;
	const char *run = s;

	for (; *s && !rc; s++) {
		const char *esc = escape_of(*s, quote);

		if (!esc)
			continue;
		rc = llm_buf_append(out, run, (size_t)(s - run));
		if (!rc)
			rc = llm_buf_puts(out, esc);
		run = s + 1;
	}
	return rc ? rc : llm_buf_puts(out, run);
}

/* Writes `name{labels[,le="bound"]} value\n`; le NULL for no le label. */
static llm_err put_sample(llm_buf *out, const struct family *f, const char *suffix,
			  const struct child *c, const char *le, double v)
{
	char num[32];
	llm_err rc = llm_buf_printf(out, "%s%s", f->name, suffix);

	if (!rc && (f->nlabels || le))
		rc = llm_buf_puts(out, "{");
	for (size_t i = 0; !rc && i < f->nlabels; i++) {
		rc = llm_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (!rc)
			rc = put_escaped(out, c->values[i], true);
		if (!rc)
			rc = llm_buf_puts(out, "\"");
	}
	if (!rc && le)
		rc = llm_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	if (!rc && (f->nlabels || le))
		rc = llm_buf_puts(out, "}");
	if (!rc)
		rc = llm_buf_printf(out, " %s\n", llm_metrics_format_value(v, num, sizeof(num)));
	return rc;
}

static llm_err put_histogram(llm_buf *out, const struct family *f, const struct child *c)
{
	char le[32];
	unsigned long long cum = 0;
	llm_err rc = LLM_OK;

	for (size_t i = 0; !rc && i <= f->nbounds; i++) {
		cum += c->counts[i];
		if (i < f->nbounds)
			llm_metrics_format_value(f->bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		rc = put_sample(out, f, "_bucket", c, le, (double)cum);
	}
	if (!rc)
		rc = put_sample(out, f, "_sum", c, NULL, c->sum);
	if (!rc)
		rc = put_sample(out, f, "_count", c, NULL, (double)c->count);
	return rc;
}

/* Renders one family; call with f->lock held. */
static llm_err put_family(llm_buf *out, const struct family *f)
{
	llm_err rc;

	if (!f->first)
		return LLM_OK;
	rc = llm_buf_printf(out, "# HELP %s ", f->name);
	if (!rc)
		rc = put_escaped(out, f->help, false);
	if (!rc)
		rc = llm_buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
	for (const struct child *c = f->first; c && !rc; c = c->next) {
		if (f->kind == KIND_HISTOGRAM)
			rc = put_histogram(out, f, c);
		else
			rc = put_sample(out, f, "", c, NULL, c->fn ? c->fn(c->data) : c->value);
	}
	return rc;
}

llm_err llm_metrics_render(llm_metrics *r, llm_buf *out)
{
	llm_err rc = LLM_OK;

	if (!r || !out)
		return llm_fail(LLM_EINVAL, "metrics: nothing to render");
	pthread_mutex_lock(&r->lock);
	for (struct family *f = r->first; f && !rc; f = f->next) {
		pthread_mutex_lock(&f->lock);
		rc = put_family(out, f);
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* --- process metrics ---------------------------------------------------------- */

/* Reads a small /proc file whole into buf; false if it cannot. */
static bool read_proc(const char *path, char *buf, size_t size)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return false;
	n = fread(buf, 1, size - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n > 0;
}

/* Field `field` (1-based, as in proc(5)) of /proc/self/stat; NaN if unread. */
static double stat_field(int field)
{
	char buf[2048], *p, *end;
	double v = NAN;

	if (!read_proc("/proc/self/stat", buf, sizeof(buf)))
		return NAN;
	p = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
	if (!p)
		return NAN;
	p++;
	for (int i = 3; i <= field; i++) {
		unsigned long long u;

		while (*p == ' ')
			p++;
		u = strtoull(p, &end, 10);
		if (i == field && end != p)
			v = (double)u;
		for (p = end; *p && *p != ' '; p++)
			;
	}
	return v;
}

static double proc_cpu_seconds(void *data)
{
	(void)data;
	return (stat_field(14) + stat_field(15)) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_virtual_bytes(void *data)
{
	(void)data;
	return stat_field(23);
}

static double proc_resident_bytes(void *data)
{
	(void)data;
	return stat_field(24) * (double)sysconf(_SC_PAGESIZE);
}

/* Boot time from the "btime" line of /proc/stat, which follows the long
 * per-CPU and interrupt lines, so the file is read line by line. */
static double boot_time(void)
{
	FILE *fp = fopen("/proc/stat", "r");
	char *line = NULL;
	size_t cap = 0;
	double v = NAN;
	unsigned long long btime;

	if (!fp)
		return NAN;
	while (getline(&line, &cap, fp) > 0) {
		if (sscanf(line, "btime %llu", &btime) == 1) {
			v = (double)btime;
			break;
		}
	}
	free(line);
	fclose(fp);
	return v;
}

static double proc_start_time(void *data)
{
	(void)data;
	return boot_time() + stat_field(22) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_open_fds(void *data)
{
	DIR *d = opendir("/proc/self/fd");
	const struct dirent *e;
	double n = 0;

	(void)data;
	if (!d)
		return NAN;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A soft limit as client_golang reports it: "unlimited" is 2^64 - 1. */
static double rlimit_soft(int resource)
{
	struct rlimit rl;

	if (getrlimit(resource, &rl) != 0)
		return NAN;
	return rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)rl.rlim_cur;
}

static double proc_max_fds(void *data)
{
	(void)data;
	return rlimit_soft(RLIMIT_NOFILE);
}

static double proc_virtual_max_bytes(void *data)
{
	(void)data;
	return rlimit_soft(RLIMIT_AS);
}

static const struct {
	const char *name;
	enum kind kind;
	const char *help;
	llm_metric_fn fn;
} process_metrics[] = {
	{"process_cpu_seconds_total", KIND_COUNTER,
	 "Total user and system CPU time spent in seconds.", proc_cpu_seconds},
	{"process_max_fds", KIND_GAUGE, "Maximum number of open file descriptors.", proc_max_fds},
	{"process_open_fds", KIND_GAUGE, "Number of open file descriptors.", proc_open_fds},
	{"process_resident_memory_bytes", KIND_GAUGE, "Resident memory size in bytes.",
	 proc_resident_bytes},
	{"process_start_time_seconds", KIND_GAUGE,
	 "Start time of the process since unix epoch in seconds.", proc_start_time},
	{"process_virtual_memory_bytes", KIND_GAUGE, "Virtual memory size in bytes.",
	 proc_virtual_bytes},
	{"process_virtual_memory_max_bytes", KIND_GAUGE,
	 "Maximum amount of virtual memory available in bytes.", proc_virtual_max_bytes},
};

static bool family_exists(llm_metrics *r, const char *name)
{
	const struct family *f;

	pthread_mutex_lock(&r->lock);
	for (f = r->first; f && strcmp(f->name, name) != 0; f = f->next)
		;
	pthread_mutex_unlock(&r->lock);
	return f != NULL;
}

llm_err llm_metrics_register_process(llm_metrics *r)
{
	size_t n = sizeof(process_metrics) / sizeof(process_metrics[0]);

	if (!r)
		return llm_fail(LLM_EINVAL, "metrics: no registry");
	for (size_t i = 0; i < n; i++)
		if (family_exists(r, process_metrics[i].name))
			return llm_fail(LLM_EEXIST, "metric %s is already registered",
					process_metrics[i].name);
	for (size_t i = 0; i < n; i++) {
		struct family *f;
		llm_err rc = family_register(r, process_metrics[i].kind, process_metrics[i].name,
					     process_metrics[i].help, NULL, NULL, 0, &f);

		if (rc)
			return rc;
		bind_func(f, process_metrics[i].kind, NULL, process_metrics[i].fn, NULL);
	}
	return LLM_OK;
}
