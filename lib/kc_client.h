/* The Kubernetes resource API for any group/version/resource, core or
 * custom, namespaced or cluster-scoped: get, list (one page or all pages),
 * create, update, delete, patch (merge, JSON patch), server-side apply, and
 * the same on the /status subresource; plus discovery of a kind's resource.
 *
 * Every call returns an llm_err mapped from the HTTP status and the Status
 * reason (NotFound, AlreadyExists, Conflict, Invalid, Forbidden,
 * Unauthorized, Gone/Expired, TooManyRequests, ...), with a detail naming
 * the verb, the object and the server's message. On success *out holds the
 * returned object; on an API error it holds the server's Status object
 * (code, reason, message, details.causes) or NULL if none came back. Either
 * way the caller owns *out and json_decref()s it. */
#ifndef KC_CLIENT_H
#define KC_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "kc_http.h"
#include "llm_buf.h"
#include "llm_err.h"

/* Which resource: group "" is the core API. */
struct kc_gvr {
	const char *group;
	const char *version;
	const char *resource; /* plural, lower case: "configmaps" */
	bool namespaced;
};

/* The subresource a call addresses: the object itself or its /status. */
enum kc_sub { KC_MAIN = 0, KC_STATUS = 1 };

extern const struct kc_gvr KC_CONFIGMAPS, KC_SECRETS, KC_PODS, KC_SERVICES, KC_NAMESPACES, KC_NODES,
	KC_EVENTS, KC_LEASES, KC_DEPLOYMENTS, KC_JOBS, KC_CRDS;

/* Appends the URL path of r to p: "/api/v1" or "/apis/<group>/<version>",
 * "/namespaces/<ns>" (namespaced resources, non-empty ns), "/<resource>",
 * then "/<name>" (non-NULL name) and "/status" (sub KC_STATUS). */
llm_err kc_path(llm_buf *p, const struct kc_gvr *r, const char *ns, const char *name,
		enum kc_sub sub);

/* Appends "?key=value" to an empty query buffer q, "&key=value" otherwise,
 * URL-escaping value; NULL or empty values are skipped. */
llm_err kc_query_add(llm_buf *q, const char *key, const char *value);

/* Maps an HTTP status and Status reason to the error enum. */
llm_err kc_status_err(long code, const char *reason);

/* GET one object. ns is ignored for cluster-scoped resources. */
llm_err kc_get(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
	       enum kc_sub sub, json_t **out);

struct kc_list_opts {
	const char *label_selector;
	const char *field_selector;
	long limit;			    /* page size; 0: no limit */
	const char *continue_token;	    /* from a previous page's metadata.continue */
	const char *resource_version;	    /* "" or NULL: most recent */
	const char *resource_version_match; /* "NotOlderThan", "Exact" or NULL */
	int timeout_seconds;		    /* server-side timeout; 0: none */
	struct kc_cancel *cancel;	    /* optional: stops the request when fired */
};

/* One page of a list (ns NULL or "" lists across all namespaces). */
llm_err kc_list(kc_http *h, const struct kc_gvr *r, const char *ns, const struct kc_list_opts *opts,
		json_t **out);

/* Every page, following metadata.continue with opts->limit per page
 * (500 when 0), into one list object whose metadata.resourceVersion is the
 * first page's. A continue token that expires mid-way (410) fails with
 * LLM_EGONE; the caller relists. */
llm_err kc_list_all(kc_http *h, const struct kc_gvr *r, const char *ns,
		    const struct kc_list_opts *opts, json_t **out);

/* POST obj. The namespace comes from ns (not obj's metadata). */
llm_err kc_create(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj, json_t **out);

/* PUT obj (its metadata.name and, for optimistic concurrency,
 * metadata.resourceVersion) to the object or its /status. */
llm_err kc_update(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj, enum kc_sub sub,
		  json_t **out);

struct kc_delete_opts {
	const char *propagation_policy; /* "Foreground", "Background", "Orphan" or NULL */
	const char *precondition_uid;	/* or NULL */
	const char *precondition_resource_version; /* or NULL */
	long grace_period_seconds;		   /* -1: server default */
};

/* DELETE one object. opts may be NULL. */
llm_err kc_delete(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
		  const struct kc_delete_opts *opts, json_t **out);

enum kc_patch_type { KC_PATCH_MERGE, KC_PATCH_JSON };

/* PATCH with a JSON merge patch or a JSON patch (an array of operations). */
llm_err kc_patch(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
		 enum kc_patch_type type, json_t *patch, enum kc_sub sub, json_t **out);

/* Server-side apply of obj (a full intent with apiVersion, kind and
 * metadata.name) under field_manager; force takes over conflicting fields. */
llm_err kc_apply(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj,
		 const char *field_manager, bool force, enum kc_sub sub, json_t **out);

/* A resource found by discovery; strings are owned (kc_gvr_free). */
struct kc_gvr_owned {
	struct kc_gvr gvr;
	char *group, *version, *resource;
};

/* Finds the resource serving kind in api_version ("v1", "apps/v1",
 * "llmops.dev/v1alpha1") through the discovery API. LLM_ENOTFOUND when the
 * group/version or the kind is not served. */
llm_err kc_discover(kc_http *h, const char *api_version, const char *kind,
		    struct kc_gvr_owned *out);

void kc_gvr_free(struct kc_gvr_owned *g);

#endif
