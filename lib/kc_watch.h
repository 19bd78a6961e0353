/* Watching Kubernetes resources: a streaming decoder for the API server's
 * watch stream (one JSON event per line) and one watch session over the
 * transport.
 *
 * The decoder takes bytes as they arrive, whatever the split (an event may
 * come in many reads, or many events in one), caps each event's size, and
 * reports a malformed, oversized or truncated event as an error instead of
 * skipping it, since a skipped event would leave a cache silently wrong.
 *
 * A session (kc_watch_run) tracks the last resourceVersion seen, including
 * from BOOKMARK events, and maps the ways a watch ends: the server's timeout
 * (LLM_OK: rewatch from the last version), 410 Gone or an ERROR event with
 * reason Expired/Gone (LLM_EGONE: relist), and everything else (an error to
 * back off from). Reconnection policy belongs to the caller (the informer). */
#ifndef KC_WATCH_H
#define KC_WATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "kc_client.h"
#include "llm_buf.h"

enum kc_event_type { KC_ADDED, KC_MODIFIED, KC_DELETED, KC_BOOKMARK, KC_ERROR };

/* Receives one event; object is borrowed for the call (json_incref to keep
 * it). Returns false to stop the watch. */
typedef bool (*kc_event_fn)(enum kc_event_type type, json_t *object, void *data);

/* Default cap on one event's encoded size. */
#define KC_WATCH_MAX_EVENT (16u << 20)

struct kc_watch_decoder {
	llm_buf line; /* bytes of the event in progress */
	kc_event_fn fn;
	void *data;
	bool stopped;	      /* fn returned false */
	unsigned long events; /* events decoded so far */
};

/* Prepares a decoder delivering to fn; max_event 0 means the default cap. */
void kc_watch_decoder_init(struct kc_watch_decoder *d, size_t max_event, kc_event_fn fn,
			   void *data);

/* Decodes n more bytes. LLM_ETOOLARGE when an event exceeds the cap,
 * LLM_EPARSE for a line that is not a watch event; after an error the
 * decoder must not be fed again. */
llm_err kc_watch_decoder_feed(struct kc_watch_decoder *d, const char *p, size_t n);

/* Ends the stream: LLM_EPARSE if a partial event is left over. */
llm_err kc_watch_decoder_finish(struct kc_watch_decoder *d);

void kc_watch_decoder_free(struct kc_watch_decoder *d);

/* Parses a watch event type name ("ADDED", ...); LLM_EINVAL if unknown. */
llm_err kc_event_type_parse(const char *s, enum kc_event_type *out);

const char *kc_event_type_name(enum kc_event_type t);

struct kc_watch_opts {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version; /* start after this version; required */
	int timeout_seconds;	      /* server-side timeout; 0: 300 */
	size_t max_event;	      /* 0: KC_WATCH_MAX_EVENT */
	struct kc_cancel *cancel;     /* fires to stop the session */
};

/* One watch session on r in ns (NULL or "" for all namespaces) with
 * bookmarks enabled. Events other than ERROR go to fn; *rv (caller-owned
 * buffer of rv_size bytes, initially the starting version) is updated to
 * the last resourceVersion seen. Returns LLM_OK when the server ended the
 * stream normally, LLM_EGONE when the version expired, LLM_ECANCELED when
 * opts->cancel fired or fn returned false, or the transport or decoding
 * error. */
llm_err kc_watch_run(kc_http *h, const struct kc_gvr *r, const char *ns,
		     const struct kc_watch_opts *opts, kc_event_fn fn, void *data, char *rv,
		     size_t rv_size);

#endif
