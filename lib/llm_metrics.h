/* A Prometheus metrics registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4 for a /metrics endpoint.
 *
 * A registry holds metric families, each registered once by name with help
 * text and label names. A family has one child per tuple of label values,
 * created on first use and kept until the registry is destroyed (like
 * client_golang's *Vec types). Updates lock only their family's mutex and do
 * not allocate once the child exists. Families render in registration order
 * and children in creation order, so output is deterministic; a labelled
 * family with no children yet renders nothing, an unlabelled one renders 0.
 *
 * Label values are passed as an array with exactly as many strings as the
 * family has label names, e.g. (const char *[]){"finetunejob", "success"};
 * NULL for a family without labels. Integral values print without an exponent
 * ("1234567"); others print in the shortest form that reads back exactly
 * ("0.5", "1e-07"), with +Inf, -Inf and NaN spelled as Prometheus does. */
#ifndef LLM_METRICS_H
#define LLM_METRICS_H

#include <stddef.h>

#include "llm_buf.h"
#include "llm_err.h"

typedef struct llm_metrics llm_metrics;
typedef struct llm_counter llm_counter;
typedef struct llm_gauge llm_gauge;
typedef struct llm_histogram llm_histogram;

/* A value computed at render time (queue depth, process statistics). It runs
 * on the rendering thread with its family locked, so it must be thread-safe,
 * must not update metrics of the same family, and must not wait for a lock
 * that someone holds while updating that family. */
typedef double (*llm_metric_fn)(void *data);

/* Prometheus' DefBuckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10. */
#define LLM_METRICS_DEF_BUCKETS_LEN 11
extern const double llm_metrics_def_buckets[LLM_METRICS_DEF_BUCKETS_LEN];

/* controller-runtime's buckets for controller_runtime_reconcile_time_seconds:
 * 0.005 to 1 in steps, then up to 60 seconds (40 bounds). */
#define LLM_METRICS_RECONCILE_BUCKETS_LEN 40
extern const double llm_metrics_reconcile_buckets[LLM_METRICS_RECONCILE_BUCKETS_LEN];

/* A new empty registry, or NULL when out of memory. */
llm_metrics *llm_metrics_new(void);

/* Frees the registry and every family in it; handles from it become invalid.
 * NULL is a no-op. */
void llm_metrics_destroy(llm_metrics *r);

/* Registers a counter family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*;
 * labels is NULL or a NULL-terminated list of distinct label names matching
 * [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__". help may be NULL.
 * LLM_EINVAL for a bad name, LLM_EEXIST when the name is taken. The registry
 * owns the family; *out stays valid until llm_metrics_destroy. */
llm_err llm_metrics_counter(llm_metrics *r, const char *name, const char *help,
			    const char *const *labels, llm_counter **out);

/* Registers a gauge family; same rules as llm_metrics_counter. */
llm_err llm_metrics_gauge(llm_metrics *r, const char *name, const char *help,
			  const char *const *labels, llm_gauge **out);

/* Registers a histogram family; same rules, and "le" is not a valid label.
 * buckets are nbuckets strictly increasing finite upper bounds (a trailing
 * +Inf is accepted and dropped; the +Inf bucket is always implied); NULL
 * means llm_metrics_def_buckets. The bounds are copied. */
llm_err llm_metrics_histogram(llm_metrics *r, const char *name, const char *help,
			      const char *const *labels, const double *buckets, size_t nbuckets,
			      llm_histogram **out);

/* Adds v (>= 0, not NaN; LLM_EINVAL otherwise) to the counter child named by
 * values, creating it at 0 first if needed. LLM_ENOMEM if creating fails. */
llm_err llm_counter_add(llm_counter *c, const char *const *values, double v);

/* Makes the child named by values report fn(data) at render time instead of
 * its stored value; fn NULL returns it to its stored value. fn must be
 * monotonic (a counter never goes down) and data must outlive the binding. */
llm_err llm_counter_set_func(llm_counter *c, const char *const *values, llm_metric_fn fn,
			     void *data);

/* The current value of a child (evaluating its function if bound);
 * LLM_ENOTFOUND if the child was never created. For tests and status. */
llm_err llm_counter_value(llm_counter *c, const char *const *values, double *out);

/* Sets / adds to a gauge child, creating it at 0 first if needed. */
llm_err llm_gauge_set(llm_gauge *g, const char *const *values, double v);
llm_err llm_gauge_add(llm_gauge *g, const char *const *values, double v);

/* Like llm_counter_set_func, for gauges (workqueue_depth, process metrics);
 * no monotonicity required. */
llm_err llm_gauge_set_func(llm_gauge *g, const char *const *values, llm_metric_fn fn, void *data);

/* Like llm_counter_value, for gauges. */
llm_err llm_gauge_value(llm_gauge *g, const char *const *values, double *out);

/* Records one observation v in the histogram child named by values: it
 * counts in every bucket whose bound is >= v, in _sum and in _count. */
llm_err llm_histogram_observe(llm_histogram *h, const char *const *values, double v);

/* Number and sum of a child's observations; LLM_ENOTFOUND if never created. */
llm_err llm_histogram_stats(llm_histogram *h, const char *const *values, unsigned long long *count,
			    double *sum);

/* Appends every family to out in the text exposition format 0.0.4 (serve it
 * as "text/plain; version=0.0.4; charset=utf-8"). LLM_ETOOLARGE when out's
 * cap is reached; out then holds a truncated rendering. */
llm_err llm_metrics_render(llm_metrics *r, llm_buf *out);

/* Registers the process metrics of client_golang's process collector, read
 * from /proc at render time: process_cpu_seconds_total, process_max_fds,
 * process_open_fds, process_resident_memory_bytes, process_start_time_seconds,
 * process_virtual_memory_bytes and process_virtual_memory_max_bytes. A value
 * that cannot be read renders as NaN. LLM_EEXIST, registering nothing, if any
 * of these names is taken. */
llm_err llm_metrics_register_process(llm_metrics *r);

/* Formats v as the exposition format does into buf (32 bytes suffice);
 * returns buf. Exposed for tests and for other text formats. */
const char *llm_metrics_format_value(double v, char *buf, size_t size);

#endif
