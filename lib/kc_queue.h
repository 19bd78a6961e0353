/* The controller work queue, with client-go util/workqueue semantics: a
 * deduplicating FIFO of string keys ("namespace/name"), delayed adds, per-key
 * rate limiting, graceful shutdown, and a small worker pool on top.
 *
 * - A key added several times before a worker takes it is handed out once
 *   ("dirty" set). A key re-added while a worker holds it is handed out again
 *   only after that worker calls kc_queue_done(), so no key is ever processed
 *   by two workers at once ("processing" set).
 * - Delayed keys wait in a min-heap of ready times. There is no timer thread:
 *   every queue call moves keys whose time has come to the FIFO, and
 *   kc_queue_get() sleeps with pthread_cond_timedwait (CLOCK_MONOTONIC) until
 *   the earliest ready time when nothing else is queued.
 * - The default rate limiter is client-go's DefaultControllerRateLimiter: the
 *   max of a per-key exponential backoff (5 ms doubling, capped at 1000 s) and
 *   an overall token bucket (10 qps, burst 100) that reserves and never blocks.
 *
 * All functions are thread-safe. Design limit: one mutex guards the whole
 * queue, which is fine for tens of workers but not for hundreds of busy ones;
 * keys are capped in length and in number (see kc_queue_opts). */
#ifndef KC_QUEUE_H
#define KC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"

/* Longest key accepted, in bytes (namespace 63 + "/" + name 253, with room). */
#define KC_QUEUE_KEY_MAX 1024
/* Default cap on distinct keys held by a queue or a limiter. */
#define KC_QUEUE_DEFAULT_MAX_KEYS (1u << 20)

/* ---- Rate limiter: per-key exponential backoff combined with a token bucket ---- */

typedef struct kc_queue_limiter kc_queue_limiter;

/* Limiter options; zero fields mean the client-go defaults. */
struct kc_queue_limiter_opts {
	uint64_t base_delay_ms;		/* first per-key backoff; 0: 5 ms */
	uint64_t max_delay_ms;		/* per-key backoff cap; 0: 1,000,000 ms (1000 s) */
	double qps;			/* bucket refill rate, tokens per second; 0: 10 */
	int burst;			/* bucket size (and initial tokens); 0: 100 */
	uint64_t (*now_ms)(void *data); /* clock for the bucket; NULL: CLOCK_MONOTONIC */
	void *clock_data;		/* passed to now_ms */
	size_t max_keys; /* keys with a failure count; 0: KC_QUEUE_DEFAULT_MAX_KEYS */
};

/* Creates a limiter (opts NULL: all defaults). LLM_EINVAL for negative qps or
 * burst, LLM_ENOMEM. Free with kc_queue_limiter_destroy(). */
llm_err kc_queue_limiter_new(const struct kc_queue_limiter_opts *opts, kc_queue_limiter **out);

/* Frees the limiter; NULL is a no-op. */
void kc_queue_limiter_destroy(kc_queue_limiter *l);

/* Records one more failure of key and sets *delay_ms to how long to wait
 * before retrying it: the max of kc_queue_limiter_backoff() and
 * kc_queue_limiter_reserve() (both are charged). LLM_EINVAL for a bad key,
 * LLM_ETOOLARGE past max_keys, LLM_ENOMEM; nothing is charged on failure. */
llm_err kc_queue_limiter_when(kc_queue_limiter *l, const char *key, uint64_t *delay_ms);

/* The per-key part alone: base * 2^failures (capped at max), then counts the
 * failure. Errors as for kc_queue_limiter_when(). */
llm_err kc_queue_limiter_backoff(kc_queue_limiter *l, const char *key, uint64_t *delay_ms);

/* The bucket part alone: takes a token (the balance may go negative) and
 * returns the ms until that token exists, rounded up; 0 when one was free. */
uint64_t kc_queue_limiter_reserve(kc_queue_limiter *l);

/* Resets key's failure count, so its next backoff is base again. */
void kc_queue_limiter_forget(kc_queue_limiter *l, const char *key);

/* How many failures have been recorded for key since it was last forgotten. */
unsigned kc_queue_limiter_num_requeues(kc_queue_limiter *l, const char *key);

/* ---- The queue ---- */

typedef struct kc_queue kc_queue;

/* Queue options; zero-initialise and set what you need. */
struct kc_queue_opts {
	size_t max_keys;		      /* distinct keys held; 0: KC_QUEUE_DEFAULT_MAX_KEYS */
	struct kc_queue_limiter_opts limiter; /* for kc_queue_add_rate_limited() */
};

/* Counters and gauges for the Prometheus workqueue_* metrics. */
struct kc_queue_stats {
	size_t depth;		     /* keys ready for a worker (workqueue_depth) */
	size_t waiting;		     /* delayed keys whose time has not come yet */
	size_t processing;	     /* keys handed out by get() and not yet done() */
	uint64_t adds_total;	     /* keys that became queued; repeats of a queued key
					are not counted (workqueue_adds_total) */
	uint64_t retries_total;	     /* accepted delayed adds: add_after() and
					add_rate_limited() (workqueue_retries_total) */
	uint64_t longest_running_ms; /* age of the oldest key in processing, 0 if none
					(workqueue_longest_running_processor_seconds) */
	uint64_t unfinished_work_ms; /* sum of the ages of keys in processing
					(workqueue_unfinished_work_seconds) */
};

/* Creates an empty queue (opts NULL: defaults). LLM_EINVAL for bad limiter
 * options, LLM_ENOMEM. Free with kc_queue_destroy(). */
llm_err kc_queue_new(const struct kc_queue_opts *opts, kc_queue **out);

/* Frees the queue and every key in it; NULL is a no-op. Call only after
 * shutdown, once no thread uses the queue (workers joined). */
void kc_queue_destroy(kc_queue *q);

/* Queues a copy of key unless it is already queued; if a worker holds it, it
 * is queued again when that worker calls done(). Ignored (LLM_OK) after
 * shutdown. LLM_EINVAL for an empty key, LLM_ETOOLARGE for a key over
 * KC_QUEUE_KEY_MAX or past max_keys, LLM_ENOMEM. */
llm_err kc_queue_add(kc_queue *q, const char *key);

/* Adds key once delay_ms has passed (0: now). If key is already waiting, the
 * earlier of the two ready times is kept. Ignored after shutdown. Errors as
 * for kc_queue_add(). */
llm_err kc_queue_add_after(kc_queue *q, const char *key, uint64_t delay_ms);

/* kc_queue_add_after(key, kc_queue_limiter_when(key)): counts a failure of
 * key and adds it after its backoff. Ignored after shutdown. */
llm_err kc_queue_add_rate_limited(kc_queue *q, const char *key);

/* Resets key's failure count (call after key was processed successfully). */
void kc_queue_forget(kc_queue *q, const char *key);

/* Failures recorded for key by kc_queue_add_rate_limited() since forget. */
unsigned kc_queue_num_requeues(kc_queue *q, const char *key);

/* Blocks until a key is ready and sets *key to it; the string belongs to the
 * queue and stays valid until kc_queue_done() for it. Returns false, without
 * a key, after kc_queue_shutdown(), or after kc_queue_shutdown_drain() once
 * nothing is queued. Each true return must be matched by one done(). */
bool kc_queue_get(kc_queue *q, const char **key);

/* Marks key, handed out by get(), as finished; if it was re-added meanwhile
 * it is queued again. Unknown keys are logged and ignored. */
void kc_queue_done(kc_queue *q, const char *key);

/* Stops the queue: adds are ignored from now on, delayed keys are dropped,
 * and every get() (blocked or later) returns false even if keys are queued. */
void kc_queue_shutdown(kc_queue *q);

/* Stops accepting adds and drops delayed keys, but lets get() hand out the
 * keys already queued; returns LLM_OK once nothing is queued or processing
 * (every key handed out has been done()), LLM_ETIMEDOUT after timeout_ms. Keys
 * still queued with no worker running make it time out. */
llm_err kc_queue_shutdown_drain(kc_queue *q, uint64_t timeout_ms);

/* True once kc_queue_shutdown() or kc_queue_shutdown_drain() was called. */
bool kc_queue_shutting_down(kc_queue *q);

/* Fills *out with a consistent snapshot of the queue's metrics. */
void kc_queue_stats(const kc_queue *q, struct kc_queue_stats *out);

/* ---- Worker pool: n threads looping get -> process -> done ---- */

/* What a worker does with a key after process() returns (controller-runtime's
 * reconcile.Result / error, as one value). */
enum kc_outcome {
	KC_DONE = 0,	  /* success: forget the key's failures */
	KC_REQUEUE_AFTER, /* forget, then add again after after_ms */
	KC_RETRY,	  /* failure: add again rate limited (per-key backoff) */
	KC_TERMINAL,	  /* failure that retrying cannot fix: forget, do not requeue */
};

struct kc_result {
	enum kc_outcome outcome;
	uint64_t after_ms; /* delay for KC_REQUEUE_AFTER; ignored otherwise */
};

/* Processes one key; called from a worker thread, never concurrently for the
 * same key. key is valid only during the call. */
typedef struct kc_result (*kc_process_fn)(const char *key, void *data);

typedef struct kc_workers kc_workers;

/* Starts n (1..256) threads that loop: get, process(key, data), apply the
 * outcome, done; they exit when get() returns false. LLM_EINVAL for a bad n,
 * LLM_ENOMEM or LLM_EINTERNAL if a thread cannot start (none is left
 * running then). Stop with a queue shutdown, then kc_workers_join(). */
llm_err kc_queue_run_workers(kc_queue *q, int n, kc_process_fn process, void *data,
			     kc_workers **out);

/* Waits for every worker thread to exit and frees w; NULL is a no-op. Blocks
 * until the queue is shut down (and, after a drain, emptied). */
void kc_workers_join(kc_workers *w);

#endif
