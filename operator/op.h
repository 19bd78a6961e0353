/* What every reconciler of the operator shares: the context it runs in, the
 * llmops.dev resources, the labels and ownership of children, server-side
 * apply of children and of the operator's part of a status, conditions, and
 * the agent container that workloads run.
 *
 * A reconciler is one file exporting one `const struct op_reconciler`; the
 * operator's main turns each into a controller. */
#ifndef OP_H
#define OP_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "kc_controller.h"
#include "kc_events.h"
#include "kc_http.h"
#include "kc_manager.h"

#define OP_FIELD_MANAGER "llmops-operator"
#define OP_GROUP	 "llmops.dev"
#define OP_API_VERSION	 "llmops.dev/v1alpha1"

/* Shared by every reconciler; set up by main. */
struct op_ctx {
	kc_http *h;
	kc_manager *manager;	 /* reads come from its informers' caches; NULL: from the API */
	kc_events *events;	 /* may be NULL */
	const char *agent_image; /* default image of agent workloads */
	const char *agent_service_account; /* for agent Pods; NULL: the default */
	const char *agent_status_interval; /* LLMOPS_STATUS_INTERVAL of agents; NULL: unset */
};

struct op_reconciler {
	const char *kind;	  /* "FineTuneJob" */
	const char *component;	  /* agent role / label value: "finetune" */
	const struct kc_gvr *gvr; /* the resource */
	const struct kc_gvr *owns[KC_CONTROLLER_MAX_OWNED]; /* NULL-terminated */
	/* Reconciles obj (a private copy, fetched fresh) towards its spec. */
	struct kc_result (*reconcile)(struct op_ctx *c, json_t *obj);
	/* Optional: the resource ns/name is gone (children go with it through
	 * owner references; this is for state shared with other objects). */
	struct kc_result (*gone)(struct op_ctx *c, const char *ns, const char *name);
};

extern const struct kc_gvr OP_PROMPTVERSIONS, OP_FINETUNEJOBS, OP_RAGINDEXES, OP_EVALRUNS,
	OP_MODELENDPOINTS, OP_MONITORS;

/* Fills def to run r with context c (both must outlive the controller). */
void op_controller_def(const struct op_reconciler *r, struct op_ctx *c,
		       struct kc_controller_def *def);

/* The standard labels of a child of owner (see docs/api-conventions.md). */
json_t *op_labels(json_t *owner, const char *component);

/* A new object {apiVersion, kind, metadata{name, namespace, labels,
 * ownerReferences}} for a child of owner. */
json_t *op_child(json_t *owner, const char *api_version, const char *kind, const char *name,
		 const char *component);

/* Server-side applies a child (field manager llmops-operator, force). */
llm_err op_apply(struct op_ctx *c, const struct kc_gvr *r, json_t *child);

/* Applies status (the operator's fields only) to owner's /status. */
llm_err op_apply_status(struct op_ctx *c, const struct kc_gvr *r, json_t *owner, json_t *status);

/* Sets condition type on status (an object holding "conditions"), keeping
 * lastTransitionTime unless the status flips; observedGeneration is
 * owner's generation. */
void op_condition(json_t *status, json_t *owner, const char *type, const char *cond_status,
		  const char *reason, const char *message);

/* A status object seeded with owner's current conditions, so transition
 * times survive, with phase and observedGeneration set. */
json_t *op_status(json_t *owner, const char *phase);

/* The agent container for role on owner: llmops-agent <role> --resource
 * Kind/ns/name, the image from spec.image or the default. */
json_t *op_agent_container(struct op_ctx *c, json_t *owner, const char *role);

/* A pod spec running the agent's role for owner: the agent container with
 * spec.resources (plus nvidia.com/gpu limits when gpus > 0), the
 * scheduling fields the user set, the agent service account, and the
 * PersistentVolumeClaims of the pvc:// URIs at uri_fields (NULL-terminated,
 * may be NULL). */
json_t *op_pod_spec(struct op_ctx *c, json_t *owner, const char *role, long gpus,
		    const char *const *uri_fields);

/* A Job running role once (restartPolicy Never, 2 retries by the Job). */
json_t *op_job(struct op_ctx *c, json_t *owner, const char *name, const char *role,
	       const char *const *uri_fields);

/* A Deployment of replicas agents in role; extra labels (may be NULL) are
 * added to its selector and pods. */
json_t *op_deployment(struct op_ctx *c, json_t *owner, const char *name, const char *role,
		      long replicas, long gpus, json_t *extra_labels,
		      const char *const *uri_fields);

/* A ClusterIP Service on port 8080 selecting pods of owner with component
 * and extra labels (may be NULL), which the Service carries too. */
json_t *op_service(json_t *owner, const char *name, const char *component, json_t *extra_labels);

/* The first container of a Job's or Deployment's pod template (borrowed). */
json_t *op_template_container(json_t *workload);

/* Adds an environment variable to container. */
void op_env(json_t *container, const char *name, const char *value);

/* True when a Job has a condition type (Complete, Failed) set to True. */
bool op_job_has(json_t *job, const char *type);

/* Applies deployment (and service, when not NULL), then reads the
 * Deployment back into *ready_replicas (its status.readyReplicas). */
llm_err op_apply_workload(struct op_ctx *c, json_t *deployment, json_t *service,
			  long *ready_replicas);

/* Records an Event on owner if a recorder is set. */
void op_event(struct op_ctx *c, json_t *owner, const char *type, const char *reason,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The resource's "Kind/namespace/name". */
void op_ref(json_t *obj, char *out, size_t size);

/* Mounts the PersistentVolumeClaim of every pvc://<claim>/<path> value
 * found at paths in owner ("[]" in a path stands for each element of an
 * array) into pod_spec's first container, at /llmops/pvc/<claim>, where the
 * agent resolves pvc:// URIs; each claim once. */
void op_mount_pvcs(json_t *owner, const char *const *paths, json_t *pod_spec);

/* Seconds since the epoch, and RFC 3339 (UTC, seconds) to and from it. */
time_t op_now(void);
void op_format_time(time_t t, char *out, size_t size);
bool op_parse_time(const char *text, time_t *out);

/* Children of owner of resource r (label llmops.dev/<kind>=<name>, same
 * namespace), as a new array, from the informer cache when there is one.
 * The objects are shared: read-only. */
llm_err op_list_children(struct op_ctx *c, const struct kc_gvr *r, json_t *owner, json_t **out);

/* The object ns/name of r (a new reference, read-only) from the informer
 * cache, or from the API without a manager; NULL when it does not exist. */
json_t *op_read(struct op_ctx *c, const struct kc_gvr *r, const char *ns, const char *name);

/* Every object of r in ns (a new array of shared, read-only objects). */
json_t *op_list(struct op_ctx *c, const struct kc_gvr *r, const char *ns);

/* Deletes owner's children of resource r except the one named keep. */
void op_delete_children_except(struct op_ctx *c, const struct kc_gvr *r, json_t *owner,
			       const char *keep);

/* Deletes every object in list (background propagation); true if all went. */
bool op_delete_all(struct op_ctx *c, const struct kc_gvr *r, json_t *list);

/* Result helpers. */
struct kc_result op_done(void);
struct kc_result op_retry(void);
struct kc_result op_after(uint64_t ms);

#endif
