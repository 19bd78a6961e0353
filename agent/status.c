/* Coalesced status reporting for agents (see status.h). Not thread-safe:
 * one reporter per role, called from one thread. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include "llm_log.h"
#include "llm_opts.h"
#include "llm_time.h"

#define DEFAULT_INTERVAL_MS 5000

struct agent_status {
	kc_http *h;
	struct kc_gvr gvr;
	char *group, *version, *resource, *api_version, *kind, *ns, *name;
	uint64_t interval_ms, last_write_ms;
	json_t *pending; /* every field this reporter owns, latest values */
	bool dirty;	 /* pending holds values not written yet */
};

/* The status fields agents own (docs/api-conventions.md): the operator's
 * phase, conditions and times are never sent. */
static const char *const agent_fields[] = {"progress", "results", "latestCheckpoint", "checkpoints",
					   "dataset"};

llm_err agent_status_new(kc_http *h, const struct kc_gvr *r, const char *api_version,
			 const char *kind, const char *ns, const char *name, int interval_ms,
			 agent_status **out)
{
	const char *env = getenv("LLMOPS_STATUS_INTERVAL");
	long ms = interval_ms > 0 ? interval_ms : DEFAULT_INTERVAL_MS;
	agent_status *s;

	*out = NULL;
	if (interval_ms <= 0 && env && *env &&
	    llm_parse_duration_ms(env, "LLMOPS_STATUS_INTERVAL", 0, 3600000, &ms))
		return LLM_EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return llm_fail(LLM_ENOMEM, "status reporter: out of memory");
	s->h = h;
	s->group = strdup(r->group);
	s->version = strdup(r->version);
	s->resource = strdup(r->resource);
	s->api_version = strdup(api_version);
	s->kind = strdup(kind);
	s->ns = strdup(ns);
	s->name = strdup(name);
	s->pending = json_object();
	s->interval_ms = (uint64_t)ms;
	s->gvr = (struct kc_gvr){s->group, s->version, s->resource, r->namespaced};
	if (!s->group || !s->version || !s->resource || !s->api_version || !s->kind || !s->ns ||
	    !s->name || !s->pending) {
		agent_status_destroy(s);
		return llm_fail(LLM_ENOMEM, "status reporter: out of memory");
	}
	*out = s;
	return LLM_OK;
}

llm_err agent_status_flush(agent_status *s)
{
	json_t *patch, *out = NULL;
	llm_err rc;

	if (!s->dirty)
		return LLM_OK;
	patch = json_pack("{s:s, s:s, s:{s:s, s:s}, s:O}", "apiVersion", s->api_version, "kind",
			  s->kind, "metadata", "name", s->name, "namespace", s->ns, "status",
			  s->pending);
	rc = kc_apply(s->h, &s->gvr, s->ns, patch, AGENT_FIELD_MANAGER, true, KC_STATUS, &out);
	json_decref(out);
	json_decref(patch);
	s->last_write_ms = llm_mono_ms();
	if (rc) {
		llm_warn("agent", "cannot report status of %s %s/%s: %s", s->kind, s->ns, s->name,
			 llm_last_error());
		return rc;
	}
	s->dirty = false;
	return LLM_OK;
}

llm_err agent_status_set(agent_status *s, const char *field, json_t *value)
{
	bool known = false;

	for (size_t i = 0; i < sizeof(agent_fields) / sizeof(agent_fields[0]); i++)
		known |= strcmp(field, agent_fields[i]) == 0;
	if (!known)
		return llm_fail(LLM_EINVAL,
				"agents report status.progress, results, latestCheckpoint, "
				"checkpoints or dataset, not %s",
				field);
	json_object_set_new(s->pending, field, json_deep_copy(value));
	s->dirty = true;
	if (llm_mono_ms() - s->last_write_ms < s->interval_ms)
		return LLM_OK;
	return agent_status_flush(s);
}

void agent_status_destroy(agent_status *s)
{
	if (!s)
		return;
	if (s->pending)
		agent_status_flush(s);
	json_decref(s->pending);
	free(s->group);
	free(s->version);
	free(s->resource);
	free(s->api_version);
	free(s->kind);
	free(s->ns);
	free(s->name);
	free(s);
}
