/* The events.k8s.io/v1 recorder (see kc_events.h).
 *
 * One mutex guards a cache of keys: a chained hash table whose entries are
 * also threaded onto a list ordered by when each key was last seen (newest
 * first), so expiry and eviction both take from the old end. record() only
 * touches the cache; a single flusher thread collects the entries that are
 * due (dirty, and not written within the flush interval unless new or
 * flushing), makes their writes with the lock released, then settles the
 * results on the entries by (hash, id), so an entry evicted or replaced
 * meanwhile is simply not found. An entry evicted while it still owes a
 * write leaves that write behind as an orphan job for the next pass.
 * Design limit: one writer thread, so a slow API server delays every
 * Event's writes; records never wait for it. */
#include "kc_events.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kc_client.h"
#include "llm_buf.h"
#include "llm_json.h"
#include "llm_log.h"
#include "llm_time.h"

#define LOGGER		    "events"
#define DEFAULT_FLUSH_MS    1000
#define DEFAULT_WINDOW_MS   (6 * 60 * 1000)
#define DEFAULT_MAX_ENTRIES 4096
#define MIN_BUCKETS	    64
#define MAX_FIELD_LEN	    128 /* reason, action, reporting controller and instance */
#define MAX_KEY_LEN	    8192
#define MAX_NAME_LEN	    253
#define NAME_SUFFIX_LEN	    17 /* ".%016llx" */
#define MICRO_TIME_LEN	    32

/* One key's occurrences. */
struct entry {
	struct entry *chain;	     /* next in the hash bucket */
	struct entry *newer, *older; /* the list by last seen, newest first */
	uint64_t hash, id;	     /* id: unique per entry, for settling writes */
	char *key;
	json_t *event;			/* the Event as first created, without series */
	json_int_t count;		/* occurrences, the first included */
	char last_seen[MICRO_TIME_LEN]; /* series.lastObservedTime */
	uint64_t seen_ms, written_ms;	/* monotonic */
	bool dirty;			/* not yet written as it is now */
	bool attempted;			/* a write has been tried */
	bool created;			/* the Event exists on the server */
};

/* One write the flusher makes with the lock released. */
struct job {
	uint64_t hash, id;
	json_t *event; /* a copy, with series when count >= 2 */
	bool created;  /* patch the series first */
	bool exists;   /* result: the Event exists afterwards */
};

struct kc_events {
	kc_http *h;
	struct kc_events_opts o;
	char *controller, *instance;
	pthread_mutex_t mu;
	pthread_cond_t wake_cond; /* flusher: new entry, flush or stop */
	pthread_cond_t done_cond; /* flush(): a pass finished */
	pthread_t thread;
	struct entry **buckets;
	size_t nbuckets, nentries;
	struct entry *newest, *oldest;
	struct job *orphans; /* writes of dirty entries evicted before a pass */
	size_t norphans, orphans_cap;
	unsigned long dropped; /* pending writes lost to a full cache, unreported */
	uint64_t next_id, flush_req, flush_done;
	bool wake, stopping;
};

/* --- clocks, names, keys ----------------------------------------------------- */

/* A random 64-bit id; time and a counter when the kernel has no entropy. */
static uint64_t random_id(kc_events *r)
{
	struct timespec ts;
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
	       (r->next_id * 0x9e3779b97f4a7c15ull);
}

/* FNV-1a, 64 bits. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static const char *str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The cache key: the regarding object's identity, type, reason, action,
 * then the note (last, so newlines in it cannot make two keys equal). */
static llm_err make_key(llm_buf *key, const json_t *reg, const char *type, const char *reason,
			const char *action, const char *note)
{
	const json_t *m = json_object_get(reg, "metadata");

	if (llm_buf_printf(key, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s", str_of(reg, "apiVersion"),
			   str_of(reg, "kind"), str_of(m, "namespace"), str_of(m, "name"),
			   str_of(m, "uid"), type, reason, action, note))
		return llm_fail(LLM_ETOOLARGE, "event key over %d bytes", MAX_KEY_LEN);
	return LLM_OK;
}

/* --- the cache (callers hold mu) -------------------------------------------- */

static void list_unlink(kc_events *r, struct entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void list_push_newest(kc_events *r, struct entry *e)
{
	e->older = r->newest;
	e->newer = NULL;
	if (r->newest)
		r->newest->newer = e;
	r->newest = e;
	if (!r->oldest)
		r->oldest = e;
}

static struct entry **bucket_of(kc_events *r, uint64_t hash)
{
	return &r->buckets[hash & (r->nbuckets - 1)];
}

static struct entry *find_key(kc_events *r, uint64_t hash, const char *key)
{
	for (struct entry *e = *bucket_of(r, hash); e; e = e->chain)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static struct entry *find_id(kc_events *r, uint64_t hash, uint64_t id)
{
	for (struct entry *e = *bucket_of(r, hash); e; e = e->chain)
		if (e->id == id)
			return e;
	return NULL;
}

/* Unlinks e from its bucket and the list, and frees it. */
static void forget(kc_events *r, struct entry *e)
{
	struct entry **p = bucket_of(r, e->hash);

	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
	list_unlink(r, e);
	r->nentries--;
	json_decref(e->event);
	free(e->key);
	free(e);
}

/* Fills j with what to write for e: its Event, with series when repeated. */
static bool make_job(const struct entry *e, struct job *j)
{
	j->hash = e->hash;
	j->id = e->id;
	j->created = e->created;
	j->event = json_deep_copy(e->event);
	if (j->event && e->count >= 2 &&
	    json_object_set_new(
		    j->event, "series",
		    json_pack("{s:I, s:s}", "count", e->count, "lastObservedTime", e->last_seen))) {
		json_decref(j->event);
		j->event = NULL;
	}
	return j->event != NULL;
}

/* Keeps e's pending write as an orphan job, at most max_entries of them. */
static bool keep_orphan(kc_events *r, const struct entry *e)
{
	if (r->norphans == r->orphans_cap) {
		size_t cap = r->orphans_cap ? 2 * r->orphans_cap : MIN_BUCKETS;
		struct job *grown;

		cap = cap < r->o.max_entries ? cap : r->o.max_entries;
		if (cap <= r->orphans_cap)
			return false;
		grown = realloc(r->orphans, cap * sizeof(*grown));
		if (!grown)
			return false;
		r->orphans = grown;
		r->orphans_cap = cap;
	}
	if (!make_job(e, &r->orphans[r->norphans]))
		return false;
	r->norphans++;
	return true;
}

/* Makes room by forgetting the least recently seen key; a write it still
 * owes is kept for the flusher when there is room, counted as lost if not. */
static void evict_oldest(kc_events *r)
{
	struct entry *e = r->oldest;

	if (e->dirty && !keep_orphan(r, e))
		r->dropped++;
	forget(r, e);
}

/* Forgets keys not seen within the series window, oldest first. */
static void sweep_expired(kc_events *r, uint64_t t)
{
	while (r->oldest && t - r->oldest->seen_ms > (uint64_t)r->o.series_window_ms)
		forget(r, r->oldest);
}

/* --- recording ---------------------------------------------------------------- */

/* The ObjectReference to regarding: its non-empty identity fields. */
static json_t *regarding_ref(const json_t *reg)
{
	static const char *const fields[][2] = {
		{"apiVersion", NULL},	   {"kind", NULL},	{"name", "metadata"},
		{"namespace", "metadata"}, {"uid", "metadata"}, {"resourceVersion", "metadata"},
	};
	json_t *ref = json_object();

	for (size_t i = 0; ref && i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *from = fields[i][1] ? json_object_get(reg, fields[i][1]) : reg;
		const char *v = str_of(from, fields[i][0]);

		if (v[0] && json_object_set_new(ref, fields[i][0], json_string(v))) {
			json_decref(ref);
			ref = NULL;
		}
	}
	return ref;
}

/* The Event for a first occurrence, named <regarding name>.<random hex>. */
static json_t *build_event(kc_events *r, const json_t *reg, const char *type, const char *reason,
			   const char *action, const char *note, const char *now)
{
	const json_t *m = json_object_get(reg, "metadata");
	const char *ns = str_of(m, "namespace");
	json_t *ref = regarding_ref(reg), *event;
	char name[MAX_NAME_LEN + 1];

	if (!ref)
		return NULL;
	snprintf(name, sizeof(name), "%.*s.%016llx", MAX_NAME_LEN - NAME_SUFFIX_LEN,
		 str_of(m, "name"), (unsigned long long)random_id(r));
	event = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}",
			  "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name",
			  name, "namespace", ns[0] ? ns : "default", "eventTime", now,
			  "reportingController", r->controller, "reportingInstance", r->instance,
			  "action", action, "reason", reason, "type", type, "note", note,
			  "regarding", ref);
	json_decref(ref);
	return event;
}

/* A repeat of a known key: count it; the flusher writes it when due. */
static void count_repeat(kc_events *r, struct entry *e, const char *now, uint64_t t)
{
	e->count++;
	snprintf(e->last_seen, sizeof(e->last_seen), "%s", now);
	e->seen_ms = t;
	e->dirty = true;
	list_unlink(r, e);
	list_push_newest(r, e);
}

/* A first occurrence: a new entry (taking key's text), the least recently
 * seen key evicted when full, and the flusher woken to create it now. */
static llm_err add_entry(kc_events *r, llm_buf *key, uint64_t hash, json_t *event, const char *now,
			 uint64_t t)
{
	struct entry *e = calloc(1, sizeof(*e)), **b = bucket_of(r, hash);

	if (!e) {
		json_decref(event);
		return llm_fail(LLM_ENOMEM, "event cache: out of memory");
	}
	e->hash = hash;
	e->id = ++r->next_id;
	e->key = llm_buf_steal(key);
	e->event = event;
	e->count = 1;
	snprintf(e->last_seen, sizeof(e->last_seen), "%s", now);
	e->seen_ms = t;
	e->dirty = true;
	e->chain = *b;
	*b = e;
	list_push_newest(r, e);
	if (++r->nentries > r->o.max_entries)
		evict_oldest(r);
	r->wake = true;
	pthread_cond_signal(&r->wake_cond);
	return LLM_OK;
}

/* Counts the occurrence under key, or starts a new Event for it. */
static llm_err record_locked(kc_events *r, llm_buf *key, const json_t *reg, const char *type,
			     const char *reason, const char *action, const char *note)
{
	char now[MICRO_TIME_LEN];
	uint64_t t = llm_mono_ms(), hash = hash_str(llm_buf_str(key));
	struct entry *e = find_key(r, hash, llm_buf_str(key));
	json_t *event;

	llm_micro_time(now, sizeof(now));
	if (e && t - e->seen_ms > (uint64_t)r->o.series_window_ms) {
		forget(r, e);
		e = NULL;
	}
	if (e) {
		count_repeat(r, e, now, t);
		return LLM_OK;
	}
	event = build_event(r, reg, type, reason, action, note, now);
	if (!event)
		return llm_fail(LLM_EINVAL, "event %s: note or fields are not valid UTF-8", reason);
	return add_entry(r, key, hash, event, now, t);
}

static llm_err check_args(const json_t *reg, const char *type, const char *reason,
			  const char *action, const char *note_fmt)
{
	if (!str_of(json_object_get(reg, "metadata"), "name")[0])
		return llm_fail(LLM_EINVAL, "event: the regarding object has no metadata.name");
	if (!type || (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0))
		return llm_fail(LLM_EINVAL, "event: type \"%s\" is not Normal or Warning",
				type ? type : "");
	if (!reason || !reason[0] || strlen(reason) > MAX_FIELD_LEN)
		return llm_fail(LLM_EINVAL, "event: reason must be 1 to %d bytes", MAX_FIELD_LEN);
	if (!action || !action[0] || strlen(action) > MAX_FIELD_LEN)
		return llm_fail(LLM_EINVAL, "event: action must be 1 to %d bytes", MAX_FIELD_LEN);
	if (!note_fmt)
		return llm_fail(LLM_EINVAL, "event: no note");
	return LLM_OK;
}

/* Formats the note into buf, cut to KC_EVENTS_NOTE_MAX bytes at a UTF-8
 * character boundary. buf has room for a few bytes past the cut. */
static void format_note(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t cut = KC_EVENTS_NOTE_MAX;
	int n = vsnprintf(buf, size, fmt, ap);

	if (n < 0) {
		buf[0] = '\0';
		return;
	}
	if ((size_t)n <= cut)
		return;
	while (cut > 0 && ((unsigned char)buf[cut] & 0xC0) == 0x80)
		cut--;
	buf[cut] = '\0';
}

llm_err kc_events_record(kc_events *r, const json_t *regarding, const char *type,
			 const char *reason, const char *action, const char *note_fmt, ...)
{
	char note[KC_EVENTS_NOTE_MAX + 8];
	llm_buf key;
	va_list ap;
	llm_err rc;

	if (!r)
		return LLM_OK;
	rc = check_args(regarding, type, reason, action, note_fmt);
	if (rc)
		return rc;
	va_start(ap, note_fmt);
	format_note(note, sizeof(note), note_fmt, ap);
	va_end(ap);
	llm_buf_init(&key, MAX_KEY_LEN);
	rc = make_key(&key, regarding, type, reason, action, note);
	if (rc)
		goto out_free_key;
	pthread_mutex_lock(&r->mu);
	rc = record_locked(r, &key, regarding, type, reason, action, note);
	pthread_mutex_unlock(&r->mu);
out_free_key:
	llm_buf_free(&key);
	return rc;
}

/* --- the flusher ------------------------------------------------------------- */

static bool is_due(const kc_events *r, const struct entry *e, bool all, uint64_t t)
{
	return e->dirty &&
	       (all || !e->attempted || t - e->written_ms >= (uint64_t)r->o.flush_interval_ms);
}

/* The writes due now (all dirty ones when all), marked as written, after
 * the orphans' writes. */
static size_t collect(kc_events *r, bool all, struct job **out)
{
	uint64_t t = llm_mono_ms();
	size_t due = r->norphans, n = r->norphans;
	struct entry *e;

	*out = NULL;
	for (e = r->newest; e; e = e->older)
		due += is_due(r, e, all, t);
	if (due == 0 || !(*out = calloc(due, sizeof(**out)))) {
		if (due)
			llm_warn(LOGGER, "out of memory; %zu Event writes postponed", due);
		return 0;
	}
	if (n)
		memcpy(*out, r->orphans, n * sizeof(**out));
	r->norphans = 0;
	for (e = r->newest; e && n < due; e = e->older) {
		if (!is_due(r, e, all, t))
			continue;
		if (make_job(e, &(*out)[n]))
			n++;
		e->dirty = false;
		e->attempted = true;
		e->written_ms = t;
	}
	return n;
}

static void warn_failed(const struct job *j, const char *verb)
{
	const json_t *ev = j->event;

	llm_warn(LOGGER, "cannot %s Event %s/%s (%s %s for %s %s): %s", verb,
		 llm_json_str_or(ev, "metadata.namespace", ""),
		 llm_json_str_or(ev, "metadata.name", ""), llm_json_str_or(ev, "type", ""),
		 llm_json_str_or(ev, "reason", ""), llm_json_str_or(ev, "regarding.kind", ""),
		 llm_json_str_or(ev, "regarding.name", ""), llm_last_error());
}

/* Merge-patches the Event's series to the job's; LLM_OK when the job has
 * no series to write. */
static llm_err patch_series(kc_events *r, const struct job *j)
{
	json_t *series = json_object_get(j->event, "series"), *patch, *out = NULL;
	llm_err rc;

	if (!series)
		return LLM_OK;
	patch = json_pack("{s:O}", "series", series);
	if (!patch)
		return llm_fail(LLM_ENOMEM, "event patch: out of memory");
	rc = kc_patch(r->h, &KC_EVENTS, llm_json_str_or(j->event, "metadata.namespace", ""),
		      llm_json_str_or(j->event, "metadata.name", ""), KC_PATCH_MERGE, patch,
		      KC_MAIN, &out);
	json_decref(out);
	json_decref(patch);
	return rc;
}

/* Writes one job: patches the series of an existing Event, or creates it
 * (again, under the same name, when the patch finds it gone). */
static void run_job(kc_events *r, struct job *j)
{
	llm_err rc = j->created ? patch_series(r, j) : LLM_ENOTFOUND;
	bool patched = j->created;
	json_t *out = NULL;

	if (rc == LLM_ENOTFOUND) {
		patched = false;
		rc = kc_create(r->h, &KC_EVENTS,
			       llm_json_str_or(j->event, "metadata.namespace", ""), j->event, &out);
		json_decref(out);
	}
	/* AlreadyExists for a random name: an earlier create of ours landed
	 * (an orphan's entry may not have known); bring its series up to date. */
	if (rc == LLM_EEXIST) {
		patched = true;
		rc = patch_series(r, j);
	}
	j->exists = rc == LLM_OK || (patched && rc != LLM_ENOTFOUND);
	if (rc)
		warn_failed(j, patched ? "patch" : "create");
}

/* Records on the entries (if still cached) whether their Events exist. */
static void settle(kc_events *r, struct job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct entry *e = find_id(r, jobs[i].hash, jobs[i].id);

		if (e)
			e->created = jobs[i].exists;
		json_decref(jobs[i].event);
	}
}

/* Sleeps a flush interval, or less when woken by a new entry, a flush
 * request or stop. */
static void wait_for_work(kc_events *r)
{
	struct timespec until = llm_deadline_ms((uint64_t)r->o.flush_interval_ms);

	while (!r->wake && !r->stopping && r->flush_req == r->flush_done)
		if (pthread_cond_timedwait(&r->wake_cond, &r->mu, &until) == ETIMEDOUT)
			break;
	r->wake = false;
}

/* One pass: write what is due (everything when flushing or stopping), then
 * tell flush() waiters which request it covered. Returns with mu held. */
static void flush_pass(kc_events *r, bool stop)
{
	uint64_t want = r->flush_req;
	struct job *jobs;
	size_t n = collect(r, stop || want != r->flush_done, &jobs);

	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < n; i++)
		run_job(r, &jobs[i]);
	pthread_mutex_lock(&r->mu);
	settle(r, jobs, n);
	free(jobs);
	r->flush_done = want;
	pthread_cond_broadcast(&r->done_cond);
	sweep_expired(r, llm_mono_ms());
	if (r->dropped) {
		llm_warn(LOGGER, "event cache full: %lu pending Event writes dropped", r->dropped);
		r->dropped = 0;
	}
}

static void *flusher_main(void *arg)
{
	kc_events *r = arg;
	bool stop = false;

	pthread_mutex_lock(&r->mu);
	while (!stop) {
		stop = r->stopping;
		flush_pass(r, stop);
		if (!stop)
			wait_for_work(r);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* --- lifecycle ------------------------------------------------------------- */

static llm_err check_opts(const kc_http *h, const struct kc_events_opts *o)
{
	if (!h || !o)
		return llm_fail(LLM_EINVAL, "kc_events: no transport or options");
	if (!o->reporting_controller || !o->reporting_controller[0] ||
	    strlen(o->reporting_controller) > MAX_FIELD_LEN)
		return llm_fail(LLM_EINVAL, "kc_events: reporting controller must be 1 to %d bytes",
				MAX_FIELD_LEN);
	if (!o->reporting_instance || !o->reporting_instance[0] ||
	    strlen(o->reporting_instance) > MAX_FIELD_LEN)
		return llm_fail(LLM_EINVAL, "kc_events: reporting instance must be 1 to %d bytes",
				MAX_FIELD_LEN);
	if (o->flush_interval_ms < 0 || o->series_window_ms < 0)
		return llm_fail(LLM_EINVAL, "kc_events: negative interval");
	return LLM_OK;
}

static void apply_defaults(kc_events *r, const struct kc_events_opts *o)
{
	r->o = *o;
	r->o.flush_interval_ms = o->flush_interval_ms ? o->flush_interval_ms : DEFAULT_FLUSH_MS;
	r->o.series_window_ms = o->series_window_ms ? o->series_window_ms : DEFAULT_WINDOW_MS;
	r->o.max_entries = o->max_entries ? o->max_entries : DEFAULT_MAX_ENTRIES;
	r->nbuckets = MIN_BUCKETS;
	while (r->nbuckets < r->o.max_entries)
		r->nbuckets *= 2;
}

/* Initialises the lock and conditions and starts the flusher. */
static llm_err start_flusher(kc_events *r)
{
	int err;

	pthread_mutex_init(&r->mu, NULL);
	llm_cond_init_monotonic(&r->wake_cond);
	pthread_cond_init(&r->done_cond, NULL);
	err = pthread_create(&r->thread, NULL, flusher_main, r);
	if (err == 0)
		return LLM_OK;
	pthread_cond_destroy(&r->done_cond);
	pthread_cond_destroy(&r->wake_cond);
	pthread_mutex_destroy(&r->mu);
	return llm_fail(LLM_ENOMEM, "kc_events: cannot start the flusher: %s", strerror(err));
}

llm_err kc_events_new_opts(kc_http *h, const struct kc_events_opts *opts, kc_events **out)
{
	kc_events *r;
	llm_err rc;

	*out = NULL;
	rc = check_opts(h, opts);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return llm_fail(LLM_ENOMEM, "kc_events: out of memory");
	r->h = h;
	apply_defaults(r, opts);
	r->controller = strdup(opts->reporting_controller);
	r->instance = strdup(opts->reporting_instance);
	r->o.reporting_controller = r->controller;
	r->o.reporting_instance = r->instance;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	rc = r->controller && r->instance && r->buckets
		     ? start_flusher(r)
		     : llm_fail(LLM_ENOMEM, "kc_events: out of memory");
	if (rc)
		goto out_free;
	*out = r;
	return LLM_OK;
out_free:
	free(r->buckets);
	free(r->instance);
	free(r->controller);
	free(r);
	return rc;
}

llm_err kc_events_new(kc_http *h, const char *reporting_controller, const char *reporting_instance,
		      kc_events **out)
{
	struct kc_events_opts o = {.reporting_controller = reporting_controller,
				   .reporting_instance = reporting_instance};

	return kc_events_new_opts(h, &o, out);
}

void kc_events_flush(kc_events *r)
{
	uint64_t ticket;

	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	ticket = ++r->flush_req;
	pthread_cond_signal(&r->wake_cond);
	while (r->flush_done < ticket)
		pthread_cond_wait(&r->done_cond, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

void kc_events_destroy(kc_events *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_signal(&r->wake_cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	while (r->oldest)
		forget(r, r->oldest);
	for (size_t i = 0; i < r->norphans; i++)
		json_decref(r->orphans[i].event);
	free(r->orphans);
	pthread_cond_destroy(&r->done_cond);
	pthread_cond_destroy(&r->wake_cond);
	pthread_mutex_destroy(&r->mu);
	free(r->buckets);
	free(r->instance);
	free(r->controller);
	free(r);
}
