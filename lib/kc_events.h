/* An Event recorder for events.k8s.io/v1, like client-go's tools/events:
 * reconcilers record what happened to an object; repeats are folded into
 * one Event's series instead of creating an object per occurrence.
 *
 * Semantics:
 *  - Occurrences are keyed by the regarding object (apiVersion, kind,
 *    namespace, name, uid), type, reason, action and note. The first
 *    occurrence creates an Event named <regarding name>.<16 hex digits>
 *    in the object's namespace ("default" for cluster-scoped objects).
 *  - A repeat within the series window (6 minutes since the key was last
 *    seen) only counts, in memory. series.count is the number of
 *    occurrences including the first, so N records give one Event with
 *    series.count == N (an Event seen once has no series, as the API
 *    requires series.count >= 2). Counts reach the server as a JSON merge
 *    patch of {series: {count, lastObservedTime}}, at most once per flush
 *    interval per Event; if the Event has gone (deleted, expired by the
 *    server's TTL) it is created again under its name with the series.
 *  - After the window the key is forgotten and the next occurrence creates
 *    a new Event. The cache holds at most max_entries keys; beyond that the
 *    least recently seen key is forgotten. A write it still owes is kept
 *    for the flusher (up to max_entries such writes; past that they are
 *    dropped and the loss is logged), so a burst of distinct events still
 *    creates each of them.
 *  - kc_events_record() never does I/O: it updates the cache and wakes a
 *    flusher thread, which does every create and patch. Failures are
 *    logged (llm_warn, logger "events") and dropped; a later repeat of the
 *    same key tries again.
 * Thread-safe. */
#ifndef KC_EVENTS_H
#define KC_EVENTS_H

#include <jansson.h>
#include <stddef.h>

#include "kc_http.h"
#include "llm_err.h"

typedef struct kc_events kc_events;

/* The longest note kept, in bytes; longer notes are cut at a UTF-8
 * character boundary. */
#define KC_EVENTS_NOTE_MAX 1024

/* Recorder options; zero fields take the defaults in brackets. */
struct kc_events_opts {
	const char *reporting_controller; /* required: "llmops.dev/operator", <= 128 bytes */
	const char *reporting_instance;	  /* required: pod or host name, <= 128 bytes */
	int flush_interval_ms;		  /* series patches per Event at most this often [1000] */
	int series_window_ms;		  /* repeats this soon after the last join it [360000] */
	size_t max_entries;		  /* keys remembered [4096] */
};

/* Creates a recorder with the default options and starts its flusher. h
 * must outlive the recorder. LLM_EINVAL for a missing or over-long
 * controller or instance name. */
llm_err kc_events_new(kc_http *h, const char *reporting_controller, const char *reporting_instance,
		      kc_events **out);

/* The same with explicit options (copied; the strings too). */
llm_err kc_events_new_opts(kc_http *h, const struct kc_events_opts *opts, kc_events **out);

/* Writes everything pending, stops the flusher and frees the recorder.
 * No record may run concurrently or afterwards. NULL is a no-op. */
void kc_events_destroy(kc_events *r);

/* Records one occurrence about regarding (borrowed; read during the call
 * only: apiVersion, kind, metadata.name/namespace/uid/resourceVersion).
 * type is "Normal" or "Warning"; reason and action are required, at most
 * 128 bytes; the note is printf-formatted and truncated to
 * KC_EVENTS_NOTE_MAX. Never waits for the API server. LLM_EINVAL for a bad
 * argument or a note that is not UTF-8, LLM_ENOMEM. A NULL recorder is a
 * no-op returning LLM_OK, so code can record without one. */
llm_err kc_events_record(kc_events *r, const json_t *regarding, const char *type,
			 const char *reason, const char *action, const char *note_fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Waits until every occurrence recorded before the call has been written
 * (or its write has failed and been logged). NULL is a no-op. */
void kc_events_flush(kc_events *r);

#endif
