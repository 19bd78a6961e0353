/* Resource API over the transport (see kc_client.h). Paths follow the API
 * server's layout: /api/v1/... for the core group, /apis/<group>/<version>/...
 * otherwise, then [namespaces/<ns>/]<resource>[/<name>][/status]. */
#include "kc_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"
#include "llm_json.h"

#define PATH_MAX_LEN 8192

const struct kc_gvr KC_CONFIGMAPS = {"", "v1", "configmaps", true};
const struct kc_gvr KC_SECRETS = {"", "v1", "secrets", true};
const struct kc_gvr KC_PODS = {"", "v1", "pods", true};
const struct kc_gvr KC_SERVICES = {"", "v1", "services", true};
const struct kc_gvr KC_NAMESPACES = {"", "v1", "namespaces", false};
const struct kc_gvr KC_NODES = {"", "v1", "nodes", false};
const struct kc_gvr KC_EVENTS = {"events.k8s.io", "v1", "events", true};
const struct kc_gvr KC_LEASES = {"coordination.k8s.io", "v1", "leases", true};
const struct kc_gvr KC_DEPLOYMENTS = {"apps", "v1", "deployments", true};
const struct kc_gvr KC_JOBS = {"batch", "v1", "jobs", true};
const struct kc_gvr KC_CRDS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions", false};

llm_err kc_status_err(long code, const char *reason)
{
	reason = reason ? reason : "";
	if (strcmp(reason, "Expired") == 0 || code == 410)
		return LLM_EGONE;
	if (strcmp(reason, "AlreadyExists") == 0)
		return LLM_EEXIST;
	switch (code) {
	case 400: return LLM_EINVAL;
	case 401: return LLM_EUNAUTHORIZED;
	case 403: return LLM_EFORBIDDEN;
	case 404: return LLM_ENOTFOUND;
	case 405:
	case 406:
	case 415: return LLM_EUNSUPPORTED;
	case 408:
	case 504: return LLM_ETIMEDOUT;
	case 409: return LLM_ECONFLICT;
	case 413: return LLM_ETOOLARGE;
	case 422: return LLM_EINVAL;
	case 429: return LLM_ETOOMANY;
	default: return LLM_EINTERNAL;
	}
}

llm_err kc_path(llm_buf *p, const struct kc_gvr *r, const char *ns, const char *name,
		enum kc_sub sub)
{
	llm_err rc;

	if (r->group[0])
		rc = llm_buf_printf(p, "/apis/%s/%s", r->group, r->version);
	else
		rc = llm_buf_printf(p, "/api/%s", r->version);
	if (!rc && r->namespaced && ns && ns[0])
		rc = llm_buf_printf(p, "/namespaces/%s", ns);
	if (!rc)
		rc = llm_buf_printf(p, "/%s", r->resource);
	if (!rc && name)
		rc = llm_buf_printf(p, "/%s", name);
	if (!rc && sub == KC_STATUS)
		rc = llm_buf_puts(p, "/status");
	return rc;
}

llm_err kc_query_add(llm_buf *p, const char *key, const char *value)
{
	char *esc;
	llm_err rc;

	if (!value || !value[0])
		return LLM_OK;
	esc = curl_easy_escape(NULL, value, 0);
	if (!esc)
		return llm_fail(LLM_ENOMEM, "cannot escape query value");
	rc = llm_buf_printf(p, "%c%s=%s", p->len ? '&' : '?', key, esc);
	curl_free(esc);
	return rc;
}

static llm_err query_add_long(llm_buf *p, const char *key, long value)
{
	char text[32];

	snprintf(text, sizeof(text), "%ld", value);
	return kc_query_add(p, key, text);
}

/* Turns a finished exchange into the result: parses the body, maps a
 * non-2xx status to an error with the server's message. */
static llm_err interpret(const char *method, const char *path, struct kc_http_resp *resp,
			 json_t **out)
{
	json_t *obj = NULL;
	const char *reason, *message;
	llm_err rc;

	if (resp->body.len > 0 &&
	    llm_json_parse(llm_buf_str(&resp->body), resp->body.len, resp->body.max, path, &obj) &&
	    resp->status / 100 == 2)
		return LLM_EPARSE;
	if (resp->status / 100 == 2) {
		*out = obj;
		return LLM_OK;
	}
	reason = llm_json_str_or(obj, "reason", "");
	message = llm_json_str_or(obj, "message", llm_buf_str(&resp->body));
	rc = kc_status_err(resp->status, reason);
	llm_fail(rc, "%s %s: %ld %s: %s", method, path, resp->status, reason, message);
	*out = obj;
	return rc;
}

/* Sends one request with an optional JSON body and interprets the answer;
 * cancel (optional) stops it. */
static llm_err call(kc_http *h, const char *method, const char *path, const char *ctype,
		    json_t *body, struct kc_cancel *cancel, json_t **out)
{
	struct kc_http_req req = {
		.method = method, .path = path, .content_type = ctype, .cancel = cancel};
	struct kc_http_resp resp;
	char *text = NULL;
	llm_err rc;

	*out = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			return llm_fail(LLM_EINVAL, "%s %s: body cannot be serialised", method,
					path);
		req.body = text;
		req.body_len = strlen(text);
	}
	rc = kc_http_do(h, &req, &resp);
	if (!rc)
		rc = interpret(method, path, &resp, out);
	kc_http_resp_free(&resp);
	free(text);
	return rc;
}

/* Sends method to the object (or collection when name is NULL) addressed by
 * r, ns, name and sub, with an optional query ("?a=b&c=d", escaped). */
static llm_err call_at(kc_http *h, const char *method, const struct kc_gvr *r, const char *ns,
		       const char *name, enum kc_sub sub, const char *query, const char *ctype,
		       json_t *body, struct kc_cancel *cancel, json_t **out)
{
	llm_buf p;
	llm_err rc;

	*out = NULL;
	llm_buf_init(&p, PATH_MAX_LEN);
	rc = kc_path(&p, r, ns, name, sub);
	if (!rc && query)
		rc = llm_buf_puts(&p, query);
	if (!rc)
		rc = call(h, method, llm_buf_str(&p), ctype, body, cancel, out);
	llm_buf_free(&p);
	return rc;
}

llm_err kc_get(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
	       enum kc_sub sub, json_t **out)
{
	return call_at(h, "GET", r, ns, name, sub, NULL, NULL, NULL, NULL, out);
}

static llm_err list_query(llm_buf *q, const struct kc_list_opts *o)
{
	llm_err rc = LLM_OK;

	if (!o)
		return rc;
	rc = kc_query_add(q, "labelSelector", o->label_selector);
	if (!rc)
		rc = kc_query_add(q, "fieldSelector", o->field_selector);
	if (!rc && o->limit > 0)
		rc = query_add_long(q, "limit", o->limit);
	if (!rc)
		rc = kc_query_add(q, "continue", o->continue_token);
	if (!rc)
		rc = kc_query_add(q, "resourceVersion", o->resource_version);
	if (!rc)
		rc = kc_query_add(q, "resourceVersionMatch", o->resource_version_match);
	if (!rc && o->timeout_seconds > 0)
		rc = query_add_long(q, "timeoutSeconds", o->timeout_seconds);
	return rc;
}

llm_err kc_list(kc_http *h, const struct kc_gvr *r, const char *ns, const struct kc_list_opts *opts,
		json_t **out)
{
	llm_buf q;
	llm_err rc;

	*out = NULL;
	llm_buf_init(&q, PATH_MAX_LEN);
	rc = list_query(&q, opts);
	if (!rc)
		rc = call_at(h, "GET", r, ns, NULL, KC_MAIN, llm_buf_str(&q), NULL, NULL,
			     opts ? opts->cancel : NULL, out);
	llm_buf_free(&q);
	return rc;
}

llm_err kc_list_all(kc_http *h, const struct kc_gvr *r, const char *ns,
		    const struct kc_list_opts *opts, json_t **out)
{
	struct kc_list_opts o = opts ? *opts : (struct kc_list_opts){0};
	json_t *all = NULL, *page = NULL;
	char *token = NULL;
	llm_err rc;

	if (o.limit <= 0)
		o.limit = 500;
	for (;;) {
		o.continue_token = token;
		rc = kc_list(h, r, ns, &o, &page);
		free(token);
		token = NULL;
		if (rc)
			goto fail;
		if (!all)
			all = json_incref(page);
		else
			json_array_extend(json_object_get(all, "items"),
					  json_object_get(page, "items"));
		token = strdup(llm_json_str_or(page, "metadata.continue", ""));
		json_decref(page);
		page = NULL;
		if (!token || !token[0])
			break;
		/* Later pages come from the snapshot the token names. */
		o.resource_version = NULL;
		o.resource_version_match = NULL;
	}
	free(token);
	json_object_del(json_object_get(all, "metadata"), "continue");
	json_object_del(json_object_get(all, "metadata"), "remainingItemCount");
	*out = all;
	return LLM_OK;
fail:
	json_decref(all);
	*out = page;
	return rc;
}

llm_err kc_create(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj, json_t **out)
{
	return call_at(h, "POST", r, ns, NULL, KC_MAIN, NULL, NULL, obj, NULL, out);
}

/* The object's metadata.name, required for update and apply. */
static llm_err object_name(json_t *obj, const char *verb, const char **name)
{
	if (llm_json_get_str(obj, "metadata.name", name) != LLM_OK)
		return llm_fail(LLM_EINVAL, "%s: object has no metadata.name", verb);
	return LLM_OK;
}

llm_err kc_update(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj, enum kc_sub sub,
		  json_t **out)
{
	const char *name;
	llm_err rc = object_name(obj, "update", &name);

	if (rc) {
		*out = NULL;
		return rc;
	}
	return call_at(h, "PUT", r, ns, name, sub, NULL, NULL, obj, NULL, out);
}

/* A DeleteOptions body, or NULL when no option is set. */
static json_t *delete_body(const struct kc_delete_opts *o)
{
	json_t *body, *pre;

	if (!o)
		return NULL;
	body = json_pack("{s:s, s:s}", "apiVersion", "v1", "kind", "DeleteOptions");
	pre = json_object();
	if (o->propagation_policy)
		json_object_set_new(body, "propagationPolicy", json_string(o->propagation_policy));
	if (o->grace_period_seconds >= 0)
		json_object_set_new(body, "gracePeriodSeconds",
				    json_integer(o->grace_period_seconds));
	if (o->precondition_uid)
		json_object_set_new(pre, "uid", json_string(o->precondition_uid));
	if (o->precondition_resource_version)
		json_object_set_new(pre, "resourceVersion",
				    json_string(o->precondition_resource_version));
	if (json_object_size(pre))
		json_object_set(body, "preconditions", pre);
	json_decref(pre);
	return body;
}

llm_err kc_delete(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
		  const struct kc_delete_opts *opts, json_t **out)
{
	json_t *body = delete_body(opts);
	llm_err rc = call_at(h, "DELETE", r, ns, name, KC_MAIN, NULL, NULL, body, NULL, out);

	json_decref(body);
	return rc;
}

llm_err kc_patch(kc_http *h, const struct kc_gvr *r, const char *ns, const char *name,
		 enum kc_patch_type type, json_t *patch, enum kc_sub sub, json_t **out)
{
	const char *ctype = type == KC_PATCH_JSON ? "application/json-patch+json"
						  : "application/merge-patch+json";

	return call_at(h, "PATCH", r, ns, name, sub, NULL, ctype, patch, NULL, out);
}

llm_err kc_apply(kc_http *h, const struct kc_gvr *r, const char *ns, json_t *obj,
		 const char *field_manager, bool force, enum kc_sub sub, json_t **out)
{
	const char *name;
	llm_buf q;
	llm_err rc;

	*out = NULL;
	rc = object_name(obj, "apply", &name);
	if (rc)
		return rc;
	llm_buf_init(&q, PATH_MAX_LEN);
	rc = kc_query_add(&q, "fieldManager", field_manager);
	if (!rc && force)
		rc = kc_query_add(&q, "force", "true");
	/* JSON is YAML, so the apply content type takes it as it is. */
	if (!rc)
		rc = call_at(h, "PATCH", r, ns, name, sub, llm_buf_str(&q),
			     "application/apply-patch+yaml", obj, NULL, out);
	llm_buf_free(&q);
	return rc;
}

/* Finds kind among the resources of one discovery document. */
static llm_err find_kind(json_t *list, const char *kind, json_t **found)
{
	json_t *res, *item;
	size_t i;

	if (llm_json_get_arr(list, "resources", &res))
		return LLM_EPARSE;
	json_array_foreach(res, i, item)
	{
		const char *name = llm_json_str_or(item, "name", "/");

		if (!strchr(name, '/') && strcmp(llm_json_str_or(item, "kind", ""), kind) == 0) {
			*found = item;
			return LLM_OK;
		}
	}
	return LLM_ENOTFOUND;
}

llm_err kc_discover(kc_http *h, const char *api_version, const char *kind, struct kc_gvr_owned *out)
{
	const char *slash = strchr(api_version, '/');
	char path[512];
	json_t *list = NULL, *item = NULL;
	llm_err rc;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), slash ? "/apis/%s" : "/api/%s", api_version);
	rc = call(h, "GET", path, NULL, NULL, NULL, &list);
	if (!rc && (rc = find_kind(list, kind, &item)) != LLM_OK)
		llm_fail(rc, "kind %s is not served by %s", kind, api_version);
	if (!rc) {
		out->group =
			slash ? strndup(api_version, (size_t)(slash - api_version)) : strdup("");
		out->version = strdup(slash ? slash + 1 : api_version);
		out->resource = strdup(llm_json_str_or(item, "name", ""));
		out->gvr = (struct kc_gvr){out->group, out->version, out->resource,
					   json_is_true(json_object_get(item, "namespaced"))};
		if (!out->group || !out->version || !out->resource) {
			kc_gvr_free(out);
			rc = llm_fail(LLM_ENOMEM, "discovery: out of memory");
		}
	}
	json_decref(list);
	return rc;
}

void kc_gvr_free(struct kc_gvr_owned *g)
{
	free(g->group);
	free(g->version);
	free(g->resource);
	memset(g, 0, sizeof(*g));
}
