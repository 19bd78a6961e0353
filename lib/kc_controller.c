/* Controller: informer events -> work queue -> reconcile (see
 * kc_controller.h). Queue metrics are read from kc_queue_stats() at scrape
 * time, so the hot path only updates the reconcile counters. */
#include "kc_controller.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_meta.h"
#include "llm_json.h"
#include "llm_log.h"

struct kc_controller {
	struct kc_controller_def def;
	char *name, *kind, *group;
	struct kc_controller_metrics m;
	kc_queue *q;
	kc_workers *workers;
};

const struct kc_controller_def *kc_controller_def(const kc_controller *c)
{
	return &c->def;
}

void kc_controller_enqueue(kc_controller *c, const char *key)
{
	if (kc_queue_add(c->q, key))
		llm_warn("controller", "%s: cannot queue %s: %s", c->name, key, llm_last_error());
}

static void enqueue_object(kc_controller *c, json_t *obj)
{
	char key[512];

	if (kc_object_key(obj, key, sizeof(key)) == LLM_OK)
		kc_controller_enqueue(c, key);
}

static void primary_add(json_t *obj, void *data)
{
	enqueue_object(data, obj);
}

static void primary_update(json_t *old_obj, json_t *new_obj, void *data)
{
	(void)old_obj;
	enqueue_object(data, new_obj);
}

/* The group part of an apiVersion ("apps/v1" -> "apps", "v1" -> ""). */
static bool same_group(const char *api_version, const char *group)
{
	const char *slash = strchr(api_version, '/');
	size_t n = slash ? (size_t)(slash - api_version) : 0;

	return strlen(group) == n && strncmp(api_version, group, n) == 0;
}

/* Queues the controller owner of obj when it is of this controller's kind. */
static void enqueue_owner(kc_controller *c, json_t *obj)
{
	json_t *ref = kc_meta_controller_of(obj);
	const char *ns = llm_json_str_or(obj, "metadata.namespace", "");
	char key[512];

	if (!ref || strcmp(llm_json_str_or(ref, "kind", ""), c->kind) != 0 ||
	    !same_group(llm_json_str_or(ref, "apiVersion", ""), c->group))
		return;
	if (c->def.gvr->namespaced && ns[0])
		snprintf(key, sizeof(key), "%s/%s", ns, llm_json_str_or(ref, "name", ""));
	else
		snprintf(key, sizeof(key), "%s", llm_json_str_or(ref, "name", ""));
	kc_controller_enqueue(c, key);
}

static void owned_add(json_t *obj, void *data)
{
	enqueue_owner(data, obj);
}

static void owned_update(json_t *old_obj, json_t *new_obj, void *data)
{
	/* An owner reference that changed or vanished concerns the old owner. */
	enqueue_owner(data, old_obj);
	enqueue_owner(data, new_obj);
}

llm_err kc_controller_watch_primary(kc_controller *c, kc_informer *inf)
{
	struct kc_informer_handlers hs = {primary_add, primary_update, primary_add, c};

	return kc_informer_add_handlers(inf, &hs);
}

llm_err kc_controller_watch_owned(kc_controller *c, kc_informer *inf)
{
	struct kc_informer_handlers hs = {owned_add, owned_update, owned_add, c};

	return kc_informer_add_handlers(inf, &hs);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *result_label(enum kc_outcome o)
{
	switch (o) {
	case KC_DONE: return "success";
	case KC_REQUEUE_AFTER: return "requeue_after";
	case KC_RETRY:
	case KC_TERMINAL: return "error";
	}
	return "error";
}

/* One reconcile, timed and counted under controller-runtime's metric names. */
static struct kc_result process(const char *key, void *data)
{
	kc_controller *c = data;
	const char *slash = strchr(key, '/');
	char ns[256] = "";
	const char *name = slash ? slash + 1 : key;
	struct timespec t0;
	struct kc_result r;

	if (slash)
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	llm_clear_error();
	r = c->def.reconcile(ns, name, c->def.data);
	llm_histogram_observe(c->m.reconcile_time, (const char *[]){c->name}, seconds_since(&t0));
	llm_counter_add(c->m.reconcile_total, (const char *[]){c->name, result_label(r.outcome)},
			1);
	if (r.outcome == KC_RETRY || r.outcome == KC_TERMINAL) {
		llm_counter_add(c->m.reconcile_errors, (const char *[]){c->name}, 1);
		llm_error("controller", "%s: reconcile %s failed%s: %s", c->name, key,
			  r.outcome == KC_TERMINAL ? " (terminal, not retried)" : "",
			  llm_last_error());
	}
	return r;
}

static double queue_depth(void *data)
{
	struct kc_queue_stats s;

	kc_queue_stats(data, &s);
	return (double)s.depth;
}

static double queue_adds(void *data)
{
	struct kc_queue_stats s;

	kc_queue_stats(data, &s);
	return (double)s.adds_total;
}

static double queue_retries(void *data)
{
	struct kc_queue_stats s;

	kc_queue_stats(data, &s);
	return (double)s.retries_total;
}

static llm_err export_queue_metrics(kc_controller *c)
{
	const char *const label[] = {c->name};
	llm_err rc = llm_gauge_set_func(c->m.depth, label, queue_depth, c->q);

	if (!rc)
		rc = llm_counter_set_func(c->m.adds, label, queue_adds, c->q);
	if (!rc)
		rc = llm_counter_set_func(c->m.retries, label, queue_retries, c->q);
	return rc;
}

llm_err kc_controller_new(const struct kc_controller_def *def,
			  const struct kc_controller_metrics *m, kc_controller **out)
{
	kc_controller *c;
	llm_err rc;

	*out = NULL;
	if (!def->name || !def->gvr || !def->kind || !def->reconcile)
		return llm_fail(LLM_EINVAL,
				"controller: name, resource, kind and reconcile are required");
	c = calloc(1, sizeof(*c));
	if (!c)
		return llm_fail(LLM_ENOMEM, "controller: out of memory");
	c->def = *def;
	c->m = *m;
	c->name = strdup(def->name);
	c->kind = strdup(def->kind);
	c->group = strdup(def->api_group ? def->api_group : "");
	if (!c->name || !c->kind || !c->group)
		rc = llm_fail(LLM_ENOMEM, "controller: out of memory");
	else
		rc = kc_queue_new(NULL, &c->q);
	if (!rc)
		rc = export_queue_metrics(c);
	if (rc) {
		kc_controller_destroy(c);
		return rc;
	}
	*out = c;
	return LLM_OK;
}

llm_err kc_controller_start(kc_controller *c, int n)
{
	if (c->workers)
		return llm_fail(LLM_EINVAL, "controller %s: already started", c->name);
	return kc_queue_run_workers(c->q, n, process, c, &c->workers);
}

/* Waits up to grace_ms for the keys handed to workers to be done. */
static bool wait_idle(kc_controller *c, int grace_ms)
{
	struct timespec slice = {0, 10 * 1000000};

	for (int waited = 0;; waited += 10) {
		struct kc_queue_stats s;

		kc_queue_stats(c->q, &s);
		if (s.processing == 0)
			return true;
		if (waited >= grace_ms)
			return false;
		nanosleep(&slice, NULL);
	}
}

llm_err kc_controller_stop(kc_controller *c, int grace_ms)
{
	/* Queued keys are dropped: whoever reconciles next lists everything. */
	kc_queue_shutdown(c->q);
	if (!c->workers)
		return LLM_OK;
	if (!wait_idle(c, grace_ms))
		return llm_fail(LLM_ETIMEDOUT,
				"controller %s: reconciles still running after %d ms", c->name,
				grace_ms);
	kc_workers_join(c->workers);
	c->workers = NULL;
	return LLM_OK;
}

void kc_controller_destroy(kc_controller *c)
{
	if (!c)
		return;
	if (c->workers && kc_controller_stop(c, 0)) {
		/* A reconcile is stuck: leave the controller to the exiting process
		 * rather than free what its workers still use. */
		return;
	}
	if (c->q) {
		const char *const label[] = {c->name};

		/* Unbind the scrape-time callbacks before the queue goes. */
		llm_gauge_set_func(c->m.depth, label, NULL, NULL);
		llm_counter_set_func(c->m.adds, label, NULL, NULL);
		llm_counter_set_func(c->m.retries, label, NULL, NULL);
	}
	kc_queue_destroy(c->q);
	free(c->name);
	free(c->kind);
	free(c->group);
	free(c);
}
