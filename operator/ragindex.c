/* RagIndex reconciler: a build Job per index version, then a search
 * Deployment and Service serving the latest version that built. A spec
 * change starts a new build while search keeps serving the previous
 * version; the Deployment moves only once the new build has succeeded, so
 * search never goes down. Build Jobs of other versions are removed once
 * the new one serves. */
#include "ragindex.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_json.h"

static const char *const uri_fields[] = {"spec.embedding.model", "spec.sources[].uri", NULL};

void rag_version(json_t *spec, char *out, size_t size)
{
	json_t *copy = json_deep_copy(spec);
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char *canon;
	size_t n = 0;

	json_object_del(copy, "search");
	canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	SHA256((const unsigned char *)(canon ? canon : ""), canon ? strlen(canon) : 0, digest);
	out[0] = '\0';
	for (int i = 0; i < 6 && n + 2 < size; i++)
		n += snprintf(out + n, size - n, "%02x", digest[i]);
	free(canon);
	json_decref(copy);
}

/* Applies the build Job for version and returns it (fresh from the API). */
static llm_err build(struct op_ctx *c, json_t *rag, const char *version, json_t **job)
{
	char name[300];
	json_t *desired;
	llm_err rc;

	snprintf(name, sizeof(name), "%s-build-%s", llm_json_str_or(rag, "metadata.name", ""),
		 version);
	desired = op_job(c, rag, name, "index", uri_fields);
	op_env(op_template_container(desired), "LLMOPS_INDEX_VERSION", version);
	rc = op_apply(c, &KC_JOBS, desired);
	json_decref(desired);
	if (!rc)
		rc = kc_get(c->h, &KC_JOBS, llm_json_str_or(rag, "metadata.namespace", ""), name,
			    KC_MAIN, job);
	return rc;
}

/* Points the search Deployment and Service at version; *ready reports
 * whether the Deployment serves it with every replica ready. */
static llm_err serve(struct op_ctx *c, json_t *rag, const char *version, bool *ready)
{
	json_int_t replicas = 1;
	char name[300];
	json_t *d, *svc, *res;
	long have;
	llm_err rc;

	llm_json_get_int(rag, "spec.search.replicas", &replicas);
	snprintf(name, sizeof(name), "%s-search", llm_json_str_or(rag, "metadata.name", ""));
	d = op_deployment(c, rag, name, "search", replicas, 0, NULL, uri_fields);
	op_env(op_template_container(d), "LLMOPS_INDEX_VERSION", version);
	if (llm_json_get_obj(rag, "spec.search.resources", &res) == LLM_OK)
		json_object_set(op_template_container(d), "resources", res);
	svc = op_service(rag, name, "search", NULL);
	rc = op_apply_workload(c, d, svc, &have);
	*ready = have >= replicas;
	json_decref(svc);
	json_decref(d);
	return rc;
}

/* Removes build Jobs of versions other than keep. */
static void prune_builds(struct op_ctx *c, json_t *rag, const char *keep)
{
	char name[300];

	snprintf(name, sizeof(name), "%s-build-%s", llm_json_str_or(rag, "metadata.name", ""),
		 keep);
	op_delete_children_except(c, &KC_JOBS, rag, name);
}

static struct kc_result reconcile(struct op_ctx *c, json_t *rag)
{
	const char *active = llm_json_str_or(rag, "status.activeVersion", "");
	char version[16], endpoint[512], serving[16];
	json_t *job = NULL, *status;
	bool built, failed, ready = false;
	llm_err rc;

	rag_version(json_object_get(rag, "spec"), version, sizeof(version));
	rc = build(c, rag, version, &job);
	built = !rc && op_job_has(job, "Complete");
	failed = !rc && op_job_has(job, "Failed");
	snprintf(serving, sizeof(serving), "%s", built ? version : active);
	if (!rc && serving[0])
		rc = serve(c, rag, serving, &ready);
	if (!rc && built)
		prune_builds(c, rag, version);
	json_decref(job);
	if (rc)
		return op_retry();
	status = op_status(rag, failed					 ? "Failed"
				: ready && strcmp(serving, version) == 0 ? "Ready"
									 : "Building");
	json_object_set_new(status, "buildVersion", json_string(version));
	if (serving[0]) {
		json_object_set_new(status, "activeVersion", json_string(serving));
		snprintf(endpoint, sizeof(endpoint), "http://%s-search.%s.svc:8080",
			 llm_json_str_or(rag, "metadata.name", ""),
			 llm_json_str_or(rag, "metadata.namespace", ""));
		json_object_set_new(status, "endpoint", json_string(endpoint));
	}
	/* Ready means search answers, possibly from the previous version while
	 * a new one builds. */
	if (ready)
		op_condition(status, rag, "Ready", "True", "Serving", "search serves the index");
	else if (failed)
		op_condition(status, rag, "Ready", "False", "BuildFailed",
			     "the index build Job failed; see its pods' logs");
	else
		op_condition(status, rag, "Ready", "False", built ? "Deploying" : "Building",
			     built ? "waiting for search replicas" : "building the index");
	rc = op_apply_status(c, &OP_RAGINDEXES, rag, status);
	json_decref(status);
	return rc ? op_retry() : op_done();
}

const struct op_reconciler ragindex_reconciler = {
	.kind = "RagIndex",
	.component = "index",
	.gvr = &OP_RAGINDEXES,
	.owns = {&KC_JOBS, &KC_DEPLOYMENTS, &KC_SERVICES},
	.reconcile = reconcile,
};
