/* A controller: informers for a primary kind and the kinds it owns feed a
 * work queue of "namespace/name" keys, and workers call reconcile(key) as
 * controller-runtime does. Changes to an owned object enqueue its
 * controller owner (ownerReferences with controller: true and the primary's
 * kind), so children going astray are noticed. Reconcile outcomes follow
 * kc_queue's: done (forget), requeue after a delay, retry with per-key
 * backoff, or a terminal error that is not retried.
 *
 * Controllers are created and run by a kc_manager, which owns the shared
 * informers, the metrics and leader election. */
#ifndef KC_CONTROLLER_H
#define KC_CONTROLLER_H

#include "kc_informer.h"
#include "kc_queue.h"
#include "llm_metrics.h"

/* Reconciles the object ns/name (ns "" for cluster-scoped) towards its
 * desired state; must be idempotent. On KC_RETRY or KC_TERMINAL the detail
 * recorded with llm_fail() is logged. Called from worker threads, never
 * concurrently for the same key. */
typedef struct kc_result (*kc_reconcile_fn)(const char *ns, const char *name, void *data);

#define KC_CONTROLLER_MAX_OWNED 8

struct kc_controller_def {
	const char *name;	  /* controller label in metrics and logs */
	const struct kc_gvr *gvr; /* primary resource */
	const char *kind;	  /* primary Kind, matched in ownerReferences */
	const char *api_group;	  /* primary group ("" for core), matched likewise */
	const struct kc_gvr *owns[KC_CONTROLLER_MAX_OWNED]; /* NULL-terminated */
	kc_reconcile_fn reconcile;
	void *data;
	int workers; /* 0: the manager's default */
};

/* Metric families shared by every controller, owned by the manager. */
struct kc_controller_metrics {
	llm_counter *reconcile_total;  /* {controller, result} */
	llm_counter *reconcile_errors; /* {controller} */
	llm_histogram *reconcile_time; /* {controller} */
	llm_gauge *depth;	       /* workqueue_depth{name} */
	llm_counter *adds;	       /* workqueue_adds_total{name} */
	llm_counter *retries;	       /* workqueue_retries_total{name} */
};

typedef struct kc_controller kc_controller;

/* Creates a controller for def (copied) with its own queue, and exports its
 * queue metrics through m. */
llm_err kc_controller_new(const struct kc_controller_def *def,
			  const struct kc_controller_metrics *m, kc_controller **out);

/* Subscribes to the primary informer (every change enqueues the object) and
 * to an owned kind's informer (every change enqueues the controller owner).
 * Call before the informers start. */
llm_err kc_controller_watch_primary(kc_controller *c, kc_informer *inf);
llm_err kc_controller_watch_owned(kc_controller *c, kc_informer *inf);

/* Adds a key by hand ("ns/name" or "name"). */
void kc_controller_enqueue(kc_controller *c, const char *key);

/* Starts n workers. */
llm_err kc_controller_start(kc_controller *c, int n);

/* Stops taking keys (queued ones are dropped), lets in-flight reconciles
 * finish within grace_ms and joins the workers. LLM_ETIMEDOUT if one is
 * still running then; the workers are left to the exiting process. */
llm_err kc_controller_stop(kc_controller *c, int grace_ms);

/* Frees a stopped (or never started) controller; one whose workers could
 * not be stopped is left alone. NULL is a no-op. */
void kc_controller_destroy(kc_controller *c);

const struct kc_controller_def *kc_controller_def(const kc_controller *c);

#endif
