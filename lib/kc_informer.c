/* List + watch into a cache (see kc_informer.h).
 *
 * The store is a jansson object mapping keys to objects, which gives a hash
 * table for free; the label index maps "key=value" to an object used as a
 * set of store keys, so each object is stored once. A read-write lock guards
 * both; handlers are called outside it. Cached objects are shared: callers
 * must treat them as read-only (json_deep_copy before changing one). */
#include "kc_informer.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_watch.h"
#include "llm_json.h"
#include "llm_log.h"
#include "llm_time.h"

#define MAX_HANDLERS	 8
#define BACKOFF_START_MS 800
#define BACKOFF_MAX_MS	 30000
#define BACKOFF_RESET_MS 120000

struct kc_informer {
	kc_http *h;
	struct kc_gvr gvr;
	char *ns, *label_selector, *field_selector;
	int resync_seconds;
	long page_size;
	bool keep_managed_fields;
	struct kc_informer_handlers hs[MAX_HANDLERS];
	int nhs;

	pthread_rwlock_t cache_lock; /* store and labels */
	json_t *store;		     /* key -> object */
	json_t *labels;		     /* "k=v" -> {key: true} */

	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cond;
	bool started, stopping, synced, resyncer;
	struct kc_cancel cancel;
	pthread_t thread, resync_thread;
	struct kc_informer_stats stats;
	unsigned int seed;
};

llm_err kc_object_key(json_t *obj, char *out, size_t size)
{
	const char *name, *ns = llm_json_str_or(obj, "metadata.namespace", "");

	if (llm_json_get_str(obj, "metadata.name", &name))
		return llm_fail(LLM_EINVAL, "object has no metadata.name");
	if (ns[0])
		snprintf(out, size, "%s/%s", ns, name);
	else
		snprintf(out, size, "%s", name);
	return LLM_OK;
}

/* --- cache ----------------------------------------------------------------- */

/* Adds (add true) or removes key from the index sets of obj's labels. */
static void index_update(kc_informer *inf, json_t *obj, const char *key, bool add)
{
	json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	const char *k;
	json_t *v;

	json_object_foreach(labels, k, v)
	{
		char lk[512];
		json_t *set;

		if (!json_is_string(v))
			continue;
		snprintf(lk, sizeof(lk), "%s=%s", k, json_string_value(v));
		set = json_object_get(inf->labels, lk);
		if (add) {
			if (!set) {
				set = json_object();
				json_object_set_new(inf->labels, lk, set);
			}
			json_object_set_new(set, key, json_true());
		} else if (set) {
			json_object_del(set, key);
			if (json_object_size(set) == 0)
				json_object_del(inf->labels, lk);
		}
	}
}

/* Stores obj under key; returns the previous object (a reference the caller
 * releases) or NULL. Caller holds the write lock. */
static json_t *store_put(kc_informer *inf, const char *key, json_t *obj)
{
	json_t *old = json_incref(json_object_get(inf->store, key));

	if (old)
		index_update(inf, old, key, false);
	json_object_set(inf->store, key, obj);
	index_update(inf, obj, key, true);
	return old;
}

/* Removes key; returns the removed object (caller releases) or NULL. */
static json_t *store_del(kc_informer *inf, const char *key)
{
	json_t *old = json_incref(json_object_get(inf->store, key));

	if (old) {
		index_update(inf, old, key, false);
		json_object_del(inf->store, key);
	}
	return old;
}

static void notify_add(kc_informer *inf, json_t *obj)
{
	for (int i = 0; i < inf->nhs; i++)
		if (inf->hs[i].on_add)
			inf->hs[i].on_add(obj, inf->hs[i].data);
}

static void notify_update(kc_informer *inf, json_t *old_obj, json_t *new_obj)
{
	for (int i = 0; i < inf->nhs; i++)
		if (inf->hs[i].on_update)
			inf->hs[i].on_update(old_obj, new_obj, inf->hs[i].data);
}

static void notify_delete(kc_informer *inf, json_t *obj)
{
	for (int i = 0; i < inf->nhs; i++)
		if (inf->hs[i].on_delete)
			inf->hs[i].on_delete(obj, inf->hs[i].data);
}

/* Drops metadata.managedFields unless asked to keep them: controllers read
 * specs and statuses from the cache, and field ownership is often a third
 * of an object's size. */
static void trim(kc_informer *inf, json_t *obj)
{
	if (!inf->keep_managed_fields)
		json_object_del(json_object_get(obj, "metadata"), "managedFields");
}

/* Applies one watch event to the cache and tells the handlers. */
static bool on_event(enum kc_event_type type, json_t *obj, void *data)
{
	kc_informer *inf = data;
	char key[512];
	json_t *old;

	if (kc_object_key(obj, key, sizeof(key))) {
		llm_warn("informer", "%s: ignoring event without a name", inf->gvr.resource);
		return true;
	}
	pthread_rwlock_wrlock(&inf->cache_lock);
	if (type != KC_DELETED)
		trim(inf, obj);
	old = type == KC_DELETED ? store_del(inf, key) : store_put(inf, key, obj);
	pthread_rwlock_unlock(&inf->cache_lock);
	if (type == KC_DELETED)
		notify_delete(inf, old ? old : obj);
	else if (old)
		notify_update(inf, old, obj);
	else
		notify_add(inf, obj);
	json_decref(old);
	return true;
}

/* --- list ------------------------------------------------------------------- */

/* List items come without apiVersion and kind for built-in types; restore
 * them from the list so cached objects look like watched ones. */
static void set_item_kind(json_t *list, json_t *item)
{
	const char *kind = llm_json_str_or(list, "kind", "");
	size_t n = strlen(kind);

	if (!json_object_get(item, "apiVersion"))
		json_object_set(item, "apiVersion", json_object_get(list, "apiVersion"));
	if (!json_object_get(item, "kind") && n > 4 && strcmp(kind + n - 4, "List") == 0)
		json_object_set_new(item, "kind", json_stringn(kind, n - 4));
}

/* Adds a page's items to fresh (key -> object). */
static void take_page(kc_informer *inf, json_t *page, json_t *fresh)
{
	json_t *item;
	size_t i;

	json_array_foreach(json_object_get(page, "items"), i, item)
	{
		char key[512];

		set_item_kind(page, item);
		trim(inf, item);
		if (kc_object_key(item, key, sizeof(key)) == LLM_OK)
			json_object_set(fresh, key, item);
	}
}

/* Lists every page into fresh, holding one page of the answer at a time,
 * and copies the first page's resourceVersion into rv. Later pages come from
 * the snapshot the continue token names; an expired token is LLM_EGONE. */
static llm_err list_into(kc_informer *inf, json_t *fresh, char *rv, size_t rv_size)
{
	struct kc_list_opts lo = {.label_selector = inf->label_selector,
				  .field_selector = inf->field_selector,
				  .limit = inf->page_size,
				  .cancel = &inf->cancel};
	char *token = NULL;
	json_t *page;
	llm_err rc;

	do {
		lo.continue_token = token;
		rc = kc_list(inf->h, &inf->gvr, inf->ns, &lo, &page);
		free(token);
		token = NULL;
		if (!rc) {
			if (!rv[0])
				snprintf(rv, rv_size, "%s",
					 llm_json_str_or(page, "metadata.resourceVersion", ""));
			take_page(inf, page, fresh);
			token = strdup(llm_json_str_or(page, "metadata.continue", ""));
			if (!token)
				rc = llm_fail(LLM_ENOMEM, "informer: out of memory");
		}
		json_decref(page);
	} while (!rc && token[0]);
	free(token);
	return rc;
}

/* Swaps in fresh as the cache, then tells the handlers what changed: new
 * keys are adds, changed resourceVersions updates, vanished keys deletes. */
static void replace_cache(kc_informer *inf, json_t *fresh)
{
	json_t *old_store, *obj, *old;
	const char *key;

	pthread_rwlock_wrlock(&inf->cache_lock);
	old_store = inf->store;
	inf->store = json_object();
	json_decref(inf->labels);
	inf->labels = json_object();
	json_object_foreach(fresh, key, obj)
	{
		json_decref(store_put(inf, key, obj));
	}
	pthread_rwlock_unlock(&inf->cache_lock);

	json_object_foreach(fresh, key, obj)
	{
		old = json_object_get(old_store, key);
		if (!old)
			notify_add(inf, obj);
		else if (strcmp(llm_json_str_or(old, "metadata.resourceVersion", ""),
				llm_json_str_or(obj, "metadata.resourceVersion", "")) != 0)
			notify_update(inf, old, obj);
		json_object_del(old_store, key);
	}
	json_object_foreach(old_store, key, old)
	{
		notify_delete(inf, old);
	}
	json_decref(old_store);
}

static llm_err list_once(kc_informer *inf)
{
	json_t *fresh = json_object();
	char rv[64] = "";
	llm_err rc = list_into(inf, fresh, rv, sizeof(rv));

	if (!rc) {
		replace_cache(inf, fresh);
		pthread_mutex_lock(&inf->mu);
		snprintf(inf->stats.resource_version, sizeof(inf->stats.resource_version), "%s",
			 rv);
		inf->stats.lists++;
		inf->synced = true;
		pthread_cond_broadcast(&inf->cond);
		pthread_mutex_unlock(&inf->mu);
	}
	json_decref(fresh);
	/* A list's transient JSON can be large: give the heap back. */
	malloc_trim(0);
	return rc;
}

/* --- the list/watch loop ------------------------------------------------------ */

/* Sleeps up to ms unless stopped; returns false when stopping. */
static bool pause_ms(kc_informer *inf, uint64_t ms)
{
	return !llm_cond_wait_stop(&inf->cond, &inf->mu, &inf->stopping, ms);
}

static bool stopping(kc_informer *inf)
{
	bool s;

	pthread_mutex_lock(&inf->mu);
	s = inf->stopping;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

/* One watch session from the last version; returns its result. */
static llm_err watch_once(kc_informer *inf)
{
	struct kc_watch_opts wo = {.label_selector = inf->label_selector,
				   .field_selector = inf->field_selector,
				   .cancel = &inf->cancel};
	char rv[64];
	llm_err rc;

	pthread_mutex_lock(&inf->mu);
	snprintf(rv, sizeof(rv), "%s", inf->stats.resource_version);
	inf->stats.watches++;
	wo.timeout_seconds = 300 + (int)(rand_r(&inf->seed) % 300);
	pthread_mutex_unlock(&inf->mu);
	rc = kc_watch_run(inf->h, &inf->gvr, inf->ns, &wo, on_event, inf, rv, sizeof(rv));
	pthread_mutex_lock(&inf->mu);
	snprintf(inf->stats.resource_version, sizeof(inf->stats.resource_version), "%s", rv);
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

/* Next backoff delay: doubles from 800 ms to 30 s, reset after 2 minutes
 * without a failure, with up to 10% jitter. */
static uint64_t next_backoff(kc_informer *inf, uint64_t *delay, uint64_t *last_failure)
{
	uint64_t t = llm_mono_ms();

	if (*delay == 0 || t - *last_failure > BACKOFF_RESET_MS)
		*delay = BACKOFF_START_MS;
	else if (*delay < BACKOFF_MAX_MS)
		*delay = *delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *delay * 2;
	*last_failure = t;
	pthread_mutex_lock(&inf->mu);
	inf->stats.failures++;
	pthread_mutex_unlock(&inf->mu);
	return *delay + (uint64_t)(rand_r(&inf->seed) % (*delay / 10 + 1));
}

static void *run(void *arg)
{
	kc_informer *inf = arg;
	uint64_t delay = 0, last_failure = 0;
	bool need_list = true;
	llm_err rc;

	while (!stopping(inf)) {
		rc = need_list ? list_once(inf) : watch_once(inf);
		if (stopping(inf))
			break;
		if (rc == LLM_OK) {
			need_list = false;
			continue;
		}
		if (rc == LLM_EGONE && !need_list) {
			llm_info("informer", "%s: resource version expired, relisting",
				 inf->gvr.resource);
			need_list = true;
			continue;
		}
		llm_warn("informer", "%s: %s failed: %s", inf->gvr.resource,
			 need_list ? "list" : "watch", llm_last_error());
		if (!pause_ms(inf, next_backoff(inf, &delay, &last_failure)))
			break;
	}
	return NULL;
}

/* Periodic resync: every cached object is delivered again as an update. */
static void *resync_main(void *arg)
{
	kc_informer *inf = arg;

	while (pause_ms(inf, (uint64_t)inf->resync_seconds * 1000)) {
		json_t *all = kc_informer_list(inf, NULL, NULL), *obj;
		size_t i;

		json_array_foreach(all, i, obj)
		{
			notify_update(inf, obj, obj);
		}
		json_decref(all);
	}
	return NULL;
}

/* --- lifecycle and queries ----------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

llm_err kc_informer_new(kc_http *h, const struct kc_informer_opts *o, kc_informer **out)
{
	kc_informer *inf;

	*out = NULL;
	if (!o || !o->gvr)
		return llm_fail(LLM_EINVAL, "informer: a resource is required");
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return llm_fail(LLM_ENOMEM, "informer: out of memory");
	inf->h = h;
	inf->gvr = *o->gvr;
	inf->ns = dup_or_null(o->namespace);
	inf->label_selector = dup_or_null(o->label_selector);
	inf->field_selector = dup_or_null(o->field_selector);
	inf->resync_seconds = o->resync_seconds;
	inf->page_size = o->page_size > 0 ? o->page_size : 500;
	inf->keep_managed_fields = o->keep_managed_fields;
	inf->store = json_object();
	inf->labels = json_object();
	inf->seed = (unsigned int)llm_mono_ms() ^ (unsigned int)(uintptr_t)inf;
	pthread_rwlock_init(&inf->cache_lock, NULL);
	pthread_mutex_init(&inf->mu, NULL);
	llm_cond_init_monotonic(&inf->cond);
	*out = inf;
	return LLM_OK;
}

llm_err kc_informer_add_handlers(kc_informer *inf, const struct kc_informer_handlers *hs)
{
	if (inf->started)
		return llm_fail(LLM_EINVAL, "informer: handlers must be added before start");
	if (inf->nhs == MAX_HANDLERS)
		return llm_fail(LLM_ETOOLARGE, "informer: at most %d handler sets", MAX_HANDLERS);
	inf->hs[inf->nhs++] = *hs;
	return LLM_OK;
}

llm_err kc_informer_start(kc_informer *inf)
{
	if (inf->started)
		return llm_fail(LLM_EINVAL, "informer: already started");
	if (pthread_create(&inf->thread, NULL, run, inf) != 0)
		return llm_fail(LLM_ENOMEM, "informer: cannot start thread");
	inf->started = true;
	if (inf->resync_seconds > 0 &&
	    pthread_create(&inf->resync_thread, NULL, resync_main, inf) == 0)
		inf->resyncer = true;
	return LLM_OK;
}

bool kc_informer_has_synced(kc_informer *inf)
{
	bool s;

	pthread_mutex_lock(&inf->mu);
	s = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

bool kc_informer_wait_synced(kc_informer *inf, int timeout_ms)
{
	uint64_t end = llm_mono_ms() + (uint64_t)timeout_ms;

	while (!kc_informer_has_synced(inf)) {
		if (llm_mono_ms() >= end || stopping(inf))
			return false;
		pause_ms(inf, 20);
	}
	return true;
}

void kc_informer_stop(kc_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	if (!inf->started || inf->stopping) {
		pthread_mutex_unlock(&inf->mu);
		return;
	}
	inf->stopping = true;
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->mu);
	kc_http_cancel(inf->h, &inf->cancel);
	pthread_join(inf->thread, NULL);
	if (inf->resyncer)
		pthread_join(inf->resync_thread, NULL);
}

void kc_informer_destroy(kc_informer *inf)
{
	if (!inf)
		return;
	kc_informer_stop(inf);
	json_decref(inf->store);
	json_decref(inf->labels);
	pthread_cond_destroy(&inf->cond);
	pthread_mutex_destroy(&inf->mu);
	pthread_rwlock_destroy(&inf->cache_lock);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf);
}

json_t *kc_informer_get(kc_informer *inf, const char *ns, const char *name)
{
	char key[512];
	json_t *obj;

	if (inf->gvr.namespaced && ns && ns[0])
		snprintf(key, sizeof(key), "%s/%s", ns, name);
	else
		snprintf(key, sizeof(key), "%s", name);
	pthread_rwlock_rdlock(&inf->cache_lock);
	obj = json_incref(json_object_get(inf->store, key));
	pthread_rwlock_unlock(&inf->cache_lock);
	return obj;
}

json_t *kc_informer_list(kc_informer *inf, const char *label_key, const char *label_value)
{
	json_t *out = json_array(), *set, *v;
	const char *key;

	pthread_rwlock_rdlock(&inf->cache_lock);
	if (label_key) {
		char lk[512];

		snprintf(lk, sizeof(lk), "%s=%s", label_key, label_value ? label_value : "");
		set = json_object_get(inf->labels, lk);
		json_object_foreach(set, key, v)
			json_array_append(out, json_object_get(inf->store, key));
	} else {
		json_object_foreach(inf->store, key, v)
		{
			json_array_append(out, v);
		}
	}
	pthread_rwlock_unlock(&inf->cache_lock);
	return out;
}

void kc_informer_stats(kc_informer *inf, struct kc_informer_stats *out)
{
	pthread_mutex_lock(&inf->mu);
	*out = inf->stats;
	pthread_mutex_unlock(&inf->mu);
	pthread_rwlock_rdlock(&inf->cache_lock);
	out->objects = json_object_size(inf->store);
	pthread_rwlock_unlock(&inf->cache_lock);
}
