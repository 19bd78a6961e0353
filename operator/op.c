/* Shared reconciler plumbing (see op.h). */
#include "op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_meta.h"
#include "llm_json.h"
#include "llm_log.h"

const struct kc_gvr OP_PROMPTVERSIONS = {OP_GROUP, "v1alpha1", "promptversions", true};
const struct kc_gvr OP_FINETUNEJOBS = {OP_GROUP, "v1alpha1", "finetunejobs", true};
const struct kc_gvr OP_RAGINDEXES = {OP_GROUP, "v1alpha1", "ragindexes", true};
const struct kc_gvr OP_EVALRUNS = {OP_GROUP, "v1alpha1", "evalruns", true};
const struct kc_gvr OP_MODELENDPOINTS = {OP_GROUP, "v1alpha1", "modelendpoints", true};
const struct kc_gvr OP_MONITORS = {OP_GROUP, "v1alpha1", "monitors", true};

/* A reconciler bound to its context: the controller's data. */
struct binding {
	const struct op_reconciler *r;
	struct op_ctx *c;
};

/* Reads the resource itself from the API server, so decisions that depend
 * on its own status (a FineTuneJob's attempt number) never act on a stale
 * copy; children come from the caches. */
static struct kc_result reconcile_key(const char *ns, const char *name, void *data)
{
	struct binding *b = data;
	json_t *obj = NULL;
	struct kc_result res;
	llm_err rc = kc_get(b->c->h, b->r->gvr, ns, name, KC_MAIN, &obj);

	if (rc == LLM_ENOTFOUND) { /* deleted: children go with it (owner references) */
		json_decref(obj);
		return b->r->gone ? b->r->gone(b->c, ns, name) : op_done();
	}
	if (rc) {
		json_decref(obj);
		return op_retry();
	}
	res = b->r->reconcile(b->c, obj);
	json_decref(obj);
	return res;
}

/* The manager's informer for r, or NULL. */
static kc_informer *informer(struct op_ctx *c, const struct kc_gvr *r)
{
	kc_informer *inf = NULL;

	if (c->manager && kc_manager_informer(c->manager, r, &inf) == LLM_OK)
		return inf;
	return NULL;
}

json_t *op_read(struct op_ctx *c, const struct kc_gvr *r, const char *ns, const char *name)
{
	kc_informer *inf = informer(c, r);
	json_t *obj = NULL;

	if (inf)
		return kc_informer_get(inf, ns, name);
	if (kc_get(c->h, r, ns, name, KC_MAIN, &obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Keeps the items of all that are in ns. */
static json_t *in_namespace(json_t *all, const char *ns)
{
	json_t *out = json_array(), *item;
	size_t i;

	json_array_foreach(all, i, item)
	{
		if (strcmp(llm_json_str_or(item, "metadata.namespace", ""), ns) == 0)
			json_array_append(out, item);
	}
	return out;
}

json_t *op_list(struct op_ctx *c, const struct kc_gvr *r, const char *ns)
{
	kc_informer *inf = informer(c, r);
	json_t *all, *list = NULL, *out;

	if (inf) {
		all = kc_informer_list(inf, NULL, NULL);
		out = in_namespace(all, ns);
		json_decref(all);
		return out;
	}
	if (kc_list_all(c->h, r, ns, NULL, &list) == LLM_OK)
		out = json_incref(json_object_get(list, "items"));
	else
		out = json_array();
	json_decref(list);
	return out;
}

void op_controller_def(const struct op_reconciler *r, struct op_ctx *c,
		       struct kc_controller_def *def)
{
	struct binding *b = malloc(sizeof(*b)); /* lives as long as the process */

	memset(def, 0, sizeof(*def));
	if (b)
		*b = (struct binding){r, c};
	def->name = r->component;
	def->gvr = r->gvr;
	def->kind = r->kind;
	def->api_group = OP_GROUP;
	memcpy(def->owns, r->owns, sizeof(def->owns));
	def->reconcile = reconcile_key;
	def->data = b;
}

/* "FineTuneJob" -> "finetunejob". */
static void lower(const char *s, char *out, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
	out[i] = '\0';
}

json_t *op_labels(json_t *owner, const char *component)
{
	const char *name = llm_json_str_or(owner, "metadata.name", "");
	char key[128], kind[64];

	lower(llm_json_str_or(owner, "kind", ""), kind, sizeof(kind));
	snprintf(key, sizeof(key), "llmops.dev/%s", kind);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "app.kubernetes.io/name", "llmops",
			 "app.kubernetes.io/instance", name, "app.kubernetes.io/component",
			 component, "app.kubernetes.io/managed-by", OP_FIELD_MANAGER,
			 "app.kubernetes.io/part-of", "llmops", key, name);
}

json_t *op_child(json_t *owner, const char *api_version, const char *kind, const char *name,
		 const char *component)
{
	json_t *child = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}}", "apiVersion", api_version,
				  "kind", kind, "metadata", "name", name, "namespace",
				  llm_json_str_or(owner, "metadata.namespace", ""), "labels",
				  op_labels(owner, component));

	kc_meta_set_controller_ref(child, owner, NULL);
	return child;
}

llm_err op_apply(struct op_ctx *c, const struct kc_gvr *r, json_t *child)
{
	json_t *out = NULL;
	llm_err rc = kc_apply(c->h, r, llm_json_str_or(child, "metadata.namespace", ""), child,
			      OP_FIELD_MANAGER, true, KC_MAIN, &out);

	json_decref(out);
	return rc;
}

/* Records an Event when status moves owner to another phase: the
 * significant transitions, for every kind, in one place. */
static void note_phase_change(struct op_ctx *c, json_t *owner, json_t *status)
{
	const char *from = llm_json_str_or(owner, "status.phase", "");
	const char *to = llm_json_str_or(status, "phase", "");
	bool bad = !strcmp(to, "Failed") || !strcmp(to, "Degraded") || !strcmp(to, "Invalid");

	if (to[0] && strcmp(from, to) != 0)
		op_event(c, owner, bad ? "Warning" : "Normal", to, "phase %s -> %s",
			 from[0] ? from : "(none)", to);
}

llm_err op_apply_status(struct op_ctx *c, const struct kc_gvr *r, json_t *owner, json_t *status)
{
	json_t *patch = json_pack("{s:O, s:O, s:{s:O, s:O}, s:O}", "apiVersion",
				  json_object_get(owner, "apiVersion"), "kind",
				  json_object_get(owner, "kind"), "metadata", "name",
				  json_object_get(json_object_get(owner, "metadata"), "name"),
				  "namespace",
				  json_object_get(json_object_get(owner, "metadata"), "namespace"),
				  "status", status),
	       *out = NULL;
	llm_err rc = kc_apply(c->h, r, llm_json_str_or(owner, "metadata.namespace", ""), patch,
			      OP_FIELD_MANAGER, true, KC_STATUS, &out);

	json_decref(out);
	json_decref(patch);
	if (!rc)
		note_phase_change(c, owner, status);
	return rc;
}

json_t *op_status(json_t *owner, const char *phase)
{
	json_t *conds = json_object_get(json_object_get(owner, "status"), "conditions");
	json_t *status = json_object();

	json_object_set_new(status, "phase", json_string(phase));
	json_object_set_new(status, "observedGeneration", json_integer(kc_meta_generation(owner)));
	json_object_set_new(status, "conditions",
			    json_is_array(conds) ? json_deep_copy(conds) : json_array());
	return status;
}

void op_condition(json_t *status, json_t *owner, const char *type, const char *cond_status,
		  const char *reason, const char *message)
{
	json_t *holder = json_pack("{s:O}", "status", status);
	char now[40];

	kc_meta_now(now, sizeof(now));
	if (kc_cond_set(holder, type, cond_status, reason, message, kc_meta_generation(owner), now,
			NULL))
		llm_warn("operator", "condition %s: %s", type, llm_last_error());
	json_decref(holder);
}

json_t *op_agent_container(struct op_ctx *c, json_t *owner, const char *role)
{
	char ref[512];

	json_t *container;

	op_ref(owner, ref, sizeof(ref));
	container =
		json_pack("{s:s, s:s, s:[s], s:[s, s, s], s:[{s:s, s:{s:{s:s}}}]}", "name", role,
			  "image", llm_json_str_or(owner, "spec.image", c->agent_image), "command",
			  "llmops-agent", "args", role, "--resource", ref, "env", "name",
			  "POD_NAME", "valueFrom", "fieldRef", "fieldPath", "metadata.name");
	if (c->agent_status_interval)
		op_env(container, "LLMOPS_STATUS_INTERVAL", c->agent_status_interval);
	return container;
}

void op_event(struct op_ctx *c, json_t *owner, const char *type, const char *reason,
	      const char *fmt, ...)
{
	char note[1024];
	va_list ap;

	if (!c->events)
		return;
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	kc_events_record(c->events, owner, type, reason, "Reconcile", "%s", note);
}

void op_ref(json_t *obj, char *out, size_t size)
{
	snprintf(out, size, "%s/%s/%s", llm_json_str_or(obj, "kind", ""),
		 llm_json_str_or(obj, "metadata.namespace", ""),
		 llm_json_str_or(obj, "metadata.name", ""));
}

/* Adds claim as volume "pvc-<claim>" and mounts it, once. */
static void mount_claim(json_t *pod_spec, const char *claim, size_t len)
{
	json_t *volumes = json_object_get(pod_spec, "volumes"), *v;
	json_t *container = json_array_get(json_object_get(pod_spec, "containers"), 0);
	char name[300], path[300];
	size_t i;

	snprintf(name, sizeof(name), "pvc-%.*s", (int)len, claim);
	json_array_foreach(volumes, i, v)
	{
		if (strcmp(llm_json_str_or(v, "name", ""), name) == 0)
			return;
	}
	if (!volumes) {
		volumes = json_array();
		json_object_set_new(pod_spec, "volumes", volumes);
	}
	json_array_append_new(volumes,
			      json_pack("{s:s, s:{s:s#}}", "name", name, "persistentVolumeClaim",
					"claimName", claim, (int)len));
	if (!json_object_get(container, "volumeMounts"))
		json_object_set_new(container, "volumeMounts", json_array());
	snprintf(path, sizeof(path), "/llmops/pvc/%.*s", (int)len, claim);
	json_array_append_new(json_object_get(container, "volumeMounts"),
			      json_pack("{s:s, s:s}", "name", name, "mountPath", path));
}

/* Mounts the claim of every pvc:// URI at path in obj; "[]" in the path
 * stands for each element of that array ("spec.sources[].uri"). */
static void mount_path(json_t *pod_spec, json_t *obj, const char *path)
{
	const char *each = strstr(path, "[]"), *uri;
	char prefix[256];
	json_t *items, *item;
	size_t i;

	if (!each) {
		uri = llm_json_str_or(obj, path, "");
		if (strncmp(uri, "pvc://", 6) == 0 && uri[6])
			mount_claim(pod_spec, uri + 6, strcspn(uri + 6, "/"));
		return;
	}
	snprintf(prefix, sizeof(prefix), "%.*s", (int)(each - path), path);
	if (llm_json_get_arr(obj, prefix, &items))
		return;
	json_array_foreach(items, i, item)
	{
		mount_path(pod_spec, item, each[2] == '.' ? each + 3 : each + 2);
	}
}

void op_mount_pvcs(json_t *owner, const char *const *paths, json_t *pod_spec)
{
	for (; *paths; paths++)
		mount_path(pod_spec, owner, *paths);
}

/* spec.resources, plus nvidia.com/gpu limits when gpus > 0. */
static json_t *resources(json_t *owner, long gpus)
{
	json_t *r = json_deep_copy(json_object_get(json_object_get(owner, "spec"), "resources"));
	json_t *limits;

	if (!json_is_object(r)) {
		json_decref(r);
		r = json_object();
	}
	if (gpus > 0) {
		limits = json_object_get(r, "limits");
		if (!json_is_object(limits)) {
			limits = json_object();
			json_object_set_new(r, "limits", limits);
		}
		json_object_set_new(limits, "nvidia.com/gpu", json_integer(gpus));
	}
	return r;
}

json_t *op_pod_spec(struct op_ctx *c, json_t *owner, const char *role, long gpus,
		    const char *const *uri_fields)
{
	static const char *const fields[] = {"nodeSelector", "tolerations", "priorityClassName",
					     "schedulerName"};
	json_t *spec = json_object_get(owner, "spec");
	json_t *container = op_agent_container(c, owner, role);
	json_t *pod_spec;

	json_object_set_new(container, "resources", resources(owner, gpus));
	pod_spec = json_pack("{s:[o]}", "containers", container);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (json_object_get(spec, fields[i]))
			json_object_set(pod_spec, fields[i], json_object_get(spec, fields[i]));
	if (c->agent_service_account)
		json_object_set_new(pod_spec, "serviceAccountName",
				    json_string(c->agent_service_account));
	if (uri_fields)
		op_mount_pvcs(owner, uri_fields, pod_spec);
	return pod_spec;
}

json_t *op_job(struct op_ctx *c, json_t *owner, const char *name, const char *role,
	       const char *const *uri_fields)
{
	json_t *job = op_child(owner, "batch/v1", "Job", name, role);
	json_t *pod_spec = op_pod_spec(c, owner, role, 0, uri_fields);

	json_object_set_new(pod_spec, "restartPolicy", json_string("Never"));
	json_object_set_new(job, "spec",
			    json_pack("{s:i, s:{s:{s:O}, s:o}}", "backoffLimit", 2, "template",
				      "metadata", "labels",
				      json_object_get(json_object_get(job, "metadata"), "labels"),
				      "spec", pod_spec));
	return job;
}

/* labels plus extra (both borrowed) as a new object. */
static json_t *merged(json_t *labels, json_t *extra)
{
	json_t *m = json_deep_copy(labels);

	if (extra)
		json_object_update(m, extra);
	return m;
}

json_t *op_deployment(struct op_ctx *c, json_t *owner, const char *name, const char *role,
		      long replicas, long gpus, json_t *extra_labels, const char *const *uri_fields)
{
	json_t *d = op_child(owner, "apps/v1", "Deployment", name, role);
	json_t *labels = json_object_get(json_object_get(d, "metadata"), "labels");
	json_t *pod_labels = merged(labels, extra_labels);

	json_object_update(labels, pod_labels);
	json_object_set_new(d, "spec",
			    json_pack("{s:i, s:{s:O}, s:{s:{s:o}, s:o}}", "replicas", (int)replicas,
				      "selector", "matchLabels", pod_labels, "template", "metadata",
				      "labels", pod_labels, "spec",
				      op_pod_spec(c, owner, role, gpus, uri_fields)));
	return d;
}

json_t *op_service(json_t *owner, const char *name, const char *component, json_t *extra_labels)
{
	json_t *svc = op_child(owner, "v1", "Service", name, component);
	json_t *selector =
		merged(json_object_get(json_object_get(svc, "metadata"), "labels"), extra_labels);

	json_object_set_new(svc, "spec",
			    json_pack("{s:o, s:[{s:s, s:i, s:i}]}", "selector", selector, "ports",
				      "name", "http", "port", 8080, "targetPort", 8080));
	return svc;
}

json_t *op_template_container(json_t *workload)
{
	json_t *containers;

	if (llm_json_get_arr(workload, "spec.template.spec.containers", &containers))
		return NULL;
	return json_array_get(containers, 0);
}

void op_env(json_t *container, const char *name, const char *value)
{
	json_t *env = json_object_get(container, "env");

	if (!env) {
		env = json_array();
		json_object_set_new(container, "env", env);
	}
	json_array_append_new(env, json_pack("{s:s, s:s}", "name", name, "value", value));
}

bool op_job_has(json_t *job, const char *type)
{
	json_t *cond;
	size_t i;

	json_t *conds = json_object_get(json_object_get(job, "status"), "conditions");

	json_array_foreach(conds, i, cond)
	{
		if (strcmp(llm_json_str_or(cond, "type", ""), type) == 0 &&
		    strcmp(llm_json_str_or(cond, "status", ""), "True") == 0)
			return true;
	}
	return false;
}

llm_err op_apply_workload(struct op_ctx *c, json_t *deployment, json_t *service,
			  long *ready_replicas)
{
	json_int_t have = 0;
	json_t *cur = NULL;
	llm_err rc = op_apply(c, &KC_DEPLOYMENTS, deployment);

	*ready_replicas = 0;
	if (!rc && service)
		rc = op_apply(c, &KC_SERVICES, service);
	if (!rc)
		cur = op_read(c, &KC_DEPLOYMENTS,
			      llm_json_str_or(deployment, "metadata.namespace", ""),
			      llm_json_str_or(deployment, "metadata.name", ""));
	if (cur) {
		llm_json_get_int(cur, "status.readyReplicas", &have);
		*ready_replicas = (long)have;
	}
	json_decref(cur);
	return rc;
}

time_t op_now(void)
{
	return time(NULL);
}

void op_format_time(time_t t, char *out, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool op_parse_time(const char *text, time_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		return false;
	*out = timegm(&tm);
	return true;
}

llm_err op_list_children(struct op_ctx *c, const struct kc_gvr *r, json_t *owner, json_t **out)
{
	const char *ns = llm_json_str_or(owner, "metadata.namespace", "");
	const char *name = llm_json_str_or(owner, "metadata.name", "");
	char key[128], kind[64];
	struct kc_list_opts lo = {.label_selector = key};
	kc_informer *inf = informer(c, r);
	json_t *list = NULL;
	llm_err rc = LLM_OK;

	lower(llm_json_str_or(owner, "kind", ""), kind, sizeof(kind));
	snprintf(key, sizeof(key), "llmops.dev/%s", kind);
	if (inf) {
		list = kc_informer_list(inf, key, name); /* through the label index */
		*out = in_namespace(list, ns);
	} else {
		snprintf(key + strlen(key), sizeof(key) - strlen(key), "=%s", name);
		rc = kc_list_all(c->h, r, ns, &lo, &list);
		*out = rc ? NULL : json_incref(json_object_get(list, "items"));
	}
	json_decref(list);
	return rc;
}

void op_delete_children_except(struct op_ctx *c, const struct kc_gvr *r, json_t *owner,
			       const char *keep)
{
	json_t *children = NULL, *stale = json_array(), *child;
	size_t i;

	if (op_list_children(c, r, owner, &children) == LLM_OK) {
		json_array_foreach(children, i, child)
		{
			if (strcmp(llm_json_str_or(child, "metadata.name", ""), keep) != 0)
				json_array_append(stale, child);
		}
	}
	op_delete_all(c, r, stale);
	json_decref(stale);
	json_decref(children);
}

bool op_delete_all(struct op_ctx *c, const struct kc_gvr *r, json_t *list)
{
	struct kc_delete_opts o = {.propagation_policy = "Background", .grace_period_seconds = -1};
	json_t *item;
	bool ok = true;
	size_t i;

	json_array_foreach(list, i, item)
	{
		json_t *out = NULL;
		llm_err rc = kc_delete(c->h, r, llm_json_str_or(item, "metadata.namespace", ""),
				       llm_json_str_or(item, "metadata.name", ""), &o, &out);

		if (rc && rc != LLM_ENOTFOUND)
			ok = false;
		json_decref(out);
	}
	return ok;
}

struct kc_result op_done(void)
{
	return (struct kc_result){KC_DONE, 0};
}

struct kc_result op_retry(void)
{
	return (struct kc_result){KC_RETRY, 0};
}

struct kc_result op_after(uint64_t ms)
{
	return (struct kc_result){KC_REQUEUE_AFTER, ms};
}
