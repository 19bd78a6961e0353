/* ModelEndpoint reconciler: a Deployment per variant (the agent's serve
 * role, the variant's model or the endpoint's), a Service per variant, and,
 * when there are several variants or a shadow, a router Deployment (the
 * route role) that splits traffic by weight and mirrors the shadow share.
 * The endpoint's Service selects the router, or the only variant. Ready
 * when every variant has all its replicas ready. Deployments of variants
 * no longer listed are removed. */
#include "modelendpoint.h"

#include <stdio.h>
#include <string.h>

#include "llm_json.h"

static const char *const uri_fields[] = {"spec.model.uri", "spec.model.adapters[].uri",
					 "spec.variants[].model.uri",
					 "spec.variants[].model.adapters[].uri", NULL};

json_t *mep_variants(json_t *mep)
{
	json_t *v = json_object_get(json_object_get(mep, "spec"), "variants");

	if (json_array_size(v))
		return json_deep_copy(v);
	return json_pack("[{s:s, s:i}]", "name", "default", "weight", 100);
}

bool mep_needs_router(json_t *mep)
{
	json_t *spec = json_object_get(mep, "spec");

	return json_array_size(json_object_get(spec, "variants")) > 1 ||
	       json_object_get(spec, "shadow") != NULL;
}

/* The Deployment and Service of one variant; *ready counts its ready
 * replicas. */
static llm_err apply_variant(struct op_ctx *c, json_t *mep, json_t *variant, long replicas,
			     long *ready)
{
	const char *vname = llm_json_str_or(variant, "name", "default");
	json_int_t gpus = 0;
	char name[300];
	json_t *extra = json_pack("{s:s}", "llmops.dev/variant", vname), *d, *svc;
	llm_err rc;

	llm_json_get_int(mep, "spec.gpus", &gpus);
	snprintf(name, sizeof(name), "%s-%s", llm_json_str_or(mep, "metadata.name", ""), vname);
	d = op_deployment(c, mep, name, "serve", replicas, (long)gpus, extra, uri_fields);
	op_env(op_template_container(d), "LLMOPS_VARIANT", vname);
	svc = op_service(mep, name, "serve", extra);
	rc = op_apply_workload(c, d, svc, ready);
	json_decref(svc);
	json_decref(d);
	json_decref(extra);
	return rc;
}

/* The router (when needed) and the endpoint's own Service. */
static llm_err apply_front(struct op_ctx *c, json_t *mep, json_t *variants)
{
	const char *name = llm_json_str_or(mep, "metadata.name", "");
	char router[300];
	json_t *svc, *d = NULL, *sel;
	llm_err rc = LLM_OK;

	if (mep_needs_router(mep)) {
		snprintf(router, sizeof(router), "%s-router", name);
		d = op_deployment(c, mep, router, "route", 1, 0, NULL, NULL);
		rc = op_apply(c, &KC_DEPLOYMENTS, d);
		svc = op_service(mep, name, "route", NULL);
	} else {
		sel = json_pack("{s:s}", "llmops.dev/variant",
				llm_json_str_or(json_array_get(variants, 0), "name", "default"));
		svc = op_service(mep, name, "serve", sel);
		json_decref(sel);
	}
	if (!rc)
		rc = op_apply(c, &KC_SERVICES, svc);
	json_decref(svc);
	json_decref(d);
	return rc;
}

/* Deletes serving Deployments and Services whose variant is gone, and the
 * router when no longer needed. */
static void prune(struct op_ctx *c, json_t *mep, json_t *variants)
{
	const struct kc_gvr *kinds[] = {&KC_DEPLOYMENTS, &KC_SERVICES};
	bool router = mep_needs_router(mep);

	for (size_t k = 0; k < 2; k++) {
		json_t *items = NULL, *stale = json_array(), *item, *v;
		size_t i, j;

		if (op_list_children(c, kinds[k], mep, &items) == LLM_OK) {
			json_array_foreach(items, i, item)
			{
				const char *comp = llm_json_str_or(
					item, "metadata.labels[\"app.kubernetes.io/component\"]",
					"");
				const char *var = llm_json_str_or(
					item, "metadata.labels[\"llmops.dev/variant\"]", NULL);
				bool keep = strcmp(comp, "route") == 0 ? router : !var;

				json_array_foreach(variants, j, v)
				{
					if (var && strcmp(var, llm_json_str_or(v, "name", "")) == 0)
						keep = true;
				}
				if (!keep)
					json_array_append(stale, item);
			}
		}
		op_delete_all(c, kinds[k], stale);
		json_decref(stale);
		json_decref(items);
	}
}

static struct kc_result reconcile(struct op_ctx *c, json_t *mep)
{
	json_t *variants = mep_variants(mep), *vstatus = json_array(), *v, *status;
	json_int_t replicas = 1, total_ready = 0;
	bool all_ready = true;
	char url[512];
	llm_err rc = LLM_OK;
	size_t i;

	llm_json_get_int(mep, "spec.replicas", &replicas);
	json_array_foreach(variants, i, v)
	{
		long ready = 0;

		if (!rc)
			rc = apply_variant(c, mep, v, (long)replicas, &ready);
		all_ready &= ready >= replicas;
		total_ready += ready;
		json_array_append_new(vstatus, json_pack("{s:s, s:I, s:O}", "name",
							 llm_json_str_or(v, "name", "default"),
							 "readyReplicas", (json_int_t)ready,
							 "weight", json_object_get(v, "weight")));
	}
	if (!rc)
		rc = apply_front(c, mep, variants);
	if (!rc)
		prune(c, mep, variants);
	status = op_status(mep, all_ready ? "Ready" : "Pending");
	snprintf(url, sizeof(url), "http://%s.%s.svc:8080",
		 llm_json_str_or(mep, "metadata.name", ""),
		 llm_json_str_or(mep, "metadata.namespace", ""));
	json_object_set_new(status, "url", json_string(url));
	json_object_set_new(status, "variants", vstatus);
	json_object_set_new(status, "readyReplicas", json_integer(total_ready));
	op_condition(status, mep, "Ready", all_ready ? "True" : "False",
		     all_ready ? "AllVariantsReady" : "WaitingForReplicas",
		     all_ready ? "every variant has its replicas ready"
			       : "waiting for every variant's replicas to be ready");
	if (!rc)
		rc = op_apply_status(c, &OP_MODELENDPOINTS, mep, status);
	json_decref(status);
	json_decref(variants);
	return rc ? op_retry() : op_done();
}

const struct op_reconciler modelendpoint_reconciler = {
	.kind = "ModelEndpoint",
	.component = "serve",
	.gvr = &OP_MODELENDPOINTS,
	.owns = {&KC_DEPLOYMENTS, &KC_SERVICES},
	.reconcile = reconcile,
};
