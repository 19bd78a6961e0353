/* How agents report: server-side apply of the fields agents own
 * (status.progress, status.results, and for FineTuneJob
 * status.latestCheckpoint, status.checkpoints and status.dataset) on their
 * resource's /status subresource, under the field manager "llmops-agent", so
 * the operator's fields (phase, conditions, observedGeneration) and the
 * agent's never overwrite each other. Every write sends every field set so
 * far (an apply that left one out would remove it). Updates are coalesced:
 * at most one write per interval (a few seconds), the latest values
 * winning, so a training loop can report every step for free. */
#ifndef AGENT_STATUS_H
#define AGENT_STATUS_H

#include <jansson.h>
#include <stdbool.h>

#include "kc_client.h"

#define AGENT_FIELD_MANAGER "llmops-agent"

typedef struct agent_status agent_status;

/* Reports for the object {api_version, kind, ns/name} served by r (all
 * copied); writes at most every interval_ms, or when interval_ms is 0 every
 * $LLMOPS_STATUS_INTERVAL (a duration such as "5s" or "500ms", which the
 * operator's --agent-status-interval sets; default 5 s). h must outlive it.
 * LLM_EINVAL for an interval that does not parse. */
llm_err agent_status_new(kc_http *h, const struct kc_gvr *r, const char *api_version,
			 const char *kind, const char *ns, const char *name, int interval_ms,
			 agent_status **out);

/* Sets status.<field> (one of the fields above) to value (borrowed), and
 * writes if the interval has passed. LLM_EINVAL for another field. */
llm_err agent_status_set(agent_status *s, const char *field, json_t *value);

/* Writes what is pending now (at the end of a run, or before exiting). */
llm_err agent_status_flush(agent_status *s);

/* Flushes and frees. NULL is a no-op. */
void agent_status_destroy(agent_status *s);

#endif
