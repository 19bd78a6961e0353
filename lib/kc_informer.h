/* An informer: a list + watch of one resource kept in a thread-safe cache,
 * with add/update/delete handlers, as client-go's shared informer does.
 *
 * It lists (in pages), then watches from the list's resourceVersion. A watch
 * the server ends is resumed from the last version seen (bookmarks
 * included); an expired version (410 Gone, or an ERROR event saying so)
 * triggers a relist whose differences with the cache are delivered as adds,
 * updates and deletes, so handlers never miss a change; other failures are
 * retried with backoff from 800 ms doubling to 30 s, reset after 2 minutes
 * without failure. Watch timeouts are random in 5-10 minutes so many
 * informers do not reconnect in step.
 *
 * The cache stores each object once, keyed "namespace/name" ("name" for
 * cluster-scoped objects), with an index by label; metadata.managedFields
 * is dropped unless asked for, as it is often a third of an object. Lists
 * are taken a page at a time, so only one page of raw answer is held. Handlers run on the
 * transport's I/O thread (watch events) or the informer's own thread
 * (lists, resyncs): they must be quick and must not block, which is why
 * controllers only enqueue keys from them. */
#ifndef KC_INFORMER_H
#define KC_INFORMER_H

#include <jansson.h>
#include <stdbool.h>

#include "kc_client.h"
#include "kc_http.h"

typedef struct kc_informer kc_informer;

/* Callbacks; any may be NULL. Objects are borrowed for the call. For a
 * periodic resync on_update gets the same object twice. */
struct kc_informer_handlers {
	void (*on_add)(json_t *obj, void *data);
	void (*on_update)(json_t *old_obj, json_t *new_obj, void *data);
	void (*on_delete)(json_t *obj, void *data); /* last known state */
	void *data;
};

struct kc_informer_opts {
	const struct kc_gvr *gvr;   /* required; borrowed */
	const char *namespace;	    /* NULL or "": all namespaces */
	const char *label_selector; /* optional */
	const char *field_selector; /* optional */
	int resync_seconds;	    /* 0: no periodic resync */
	long page_size;		    /* list page size; 0: 500 */
	bool keep_managed_fields;   /* false: cached objects lose metadata.managedFields */
};

/* Creates an informer (not started). h must outlive it. */
llm_err kc_informer_new(kc_http *h, const struct kc_informer_opts *opts, kc_informer **out);

/* Registers handlers; up to 8, all before kc_informer_start(). */
llm_err kc_informer_add_handlers(kc_informer *inf, const struct kc_informer_handlers *hs);

/* Starts the list/watch thread. */
llm_err kc_informer_start(kc_informer *inf);

/* True once the first list has been delivered to the cache and handlers. */
bool kc_informer_has_synced(kc_informer *inf);

/* Waits up to timeout_ms for has_synced; false on timeout. */
bool kc_informer_wait_synced(kc_informer *inf, int timeout_ms);

/* Stops the thread and any watch in flight; returns when they are gone.
 * Safe to call twice. */
void kc_informer_stop(kc_informer *inf);

/* Stops if needed and frees the informer and its cache. NULL is a no-op. */
void kc_informer_destroy(kc_informer *inf);

/* The cached object (a new reference; json_decref it) or NULL. ns is
 * ignored for cluster-scoped resources. */
json_t *kc_informer_get(kc_informer *inf, const char *ns, const char *name);

/* A new JSON array of every cached object, or of those whose label key
 * equals value when key is non-NULL (through the label index). */
json_t *kc_informer_list(kc_informer *inf, const char *label_key, const char *label_value);

/* Counters for tests and metrics. */
struct kc_informer_stats {
	size_t objects;		   /* now in the cache */
	unsigned long lists;	   /* completed lists (1 + relists) */
	unsigned long watches;	   /* watch sessions started */
	unsigned long failures;	   /* list or watch failures backed off from */
	char resource_version[64]; /* last version seen */
};

void kc_informer_stats(kc_informer *inf, struct kc_informer_stats *out);

/* The cache key of obj: "namespace/name" or "name". Writes at most size
 * bytes; LLM_EINVAL if obj has no metadata.name. */
llm_err kc_object_key(json_t *obj, char *out, size_t size);

#endif
