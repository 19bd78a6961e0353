/* The controller manager: what controller-runtime's Manager does for a
 * process. It owns the shared informers (one per resource, however many
 * controllers use it), the controllers, leader election on a Lease, the
 * Prometheus /metrics endpoint and the /healthz and /readyz probes, and the
 * orderly shutdown.
 *
 * Informers run on every replica so a new leader starts warm; workers run
 * only once every informer has synced and, with leader election, only while
 * this replica leads. Losing leadership stops the workers and makes
 * kc_manager_run() return LLM_ECANCELED, after which the process should exit
 * (Kubernetes restarts it), as controller-runtime does.
 *
 * Shutdown (kc_manager_request_stop, safe in a signal handler): stop taking
 * work, let in-flight reconciles finish within the grace period, release
 * the lease so a successor takes over at once, stop the informers. */
#ifndef KC_MANAGER_H
#define KC_MANAGER_H

#include <stdbool.h>

#include "kc_controller.h"
#include "kc_http.h"
#include "llm_metrics.h"

typedef struct kc_manager kc_manager;

/* Options; zero fields take the defaults in brackets. */
struct kc_manager_opts {
	const char *namespace;		  /* watch one namespace; NULL/"": all */
	const char *metrics_addr;	  /* [":8080"]; "0" disables */
	const char *probe_addr;		  /* [":8081"]; "0" disables */
	bool leader_elect;		  /* [false] */
	const char *leader_ns;		  /* Lease namespace [the config's namespace] */
	const char *leader_name;	  /* Lease name ["llmops-operator"] */
	const char *identity;		  /* [$POD_NAME or hostname, "_", random] */
	int lease_ms, renew_ms, retry_ms; /* [15000, 10000, 2000] */
	int workers;			  /* per controller, unless its def says [2] */
	int shutdown_grace_ms;		  /* [30000] */
	int resync_seconds;		  /* informer resync [0: none] */
};

/* Creates a manager over transport h (borrowed; must outlive it). Validates
 * the leader-election timings. */
llm_err kc_manager_new(kc_http *h, const struct kc_manager_opts *opts, kc_manager **out);

/* Adds a controller (def is copied). Before kc_manager_run(). */
llm_err kc_manager_add(kc_manager *m, const struct kc_controller_def *def);

/* The shared informer for r, created on first use (not started). */
llm_err kc_manager_informer(kc_manager *m, const struct kc_gvr *r, kc_informer **out);

/* Runs until a stop is requested (LLM_OK after a clean shutdown,
 * LLM_ETIMEDOUT when reconciles outlived the grace period) or leadership is
 * lost (LLM_ECANCELED). Errors binding the endpoints are returned at once. */
llm_err kc_manager_run(kc_manager *m);

/* Asks kc_manager_run() to shut down; async-signal-safe. */
void kc_manager_request_stop(kc_manager *m);

/* The bound port of the metrics (which 0) or probe (which 1) listener, once
 * running; 0 when disabled. For tests that bind port 0. */
int kc_manager_port(kc_manager *m, int which);

/* The registry behind /metrics, for reconcilers' own metrics. */
llm_metrics *kc_manager_metrics(kc_manager *m);

/* Frees a manager that is not running. NULL is a no-op. */
void kc_manager_destroy(kc_manager *m);

#endif
