/* EvalRun: the pass/fail judgement, exposed for unit tests. */
#ifndef OP_EVALRUN_H
#define OP_EVALRUN_H

#include "op.h"

extern const struct op_reconciler evalrun_reconciler;

/* Judges results (metric -> number) against thresholds (metric -> number;
 * higher is better except for perplexity) and, when baseline (metric ->
 * number) is not NULL, against it with max_regression allowed. *passed is
 * the verdict; the detail (llm_last_error()) says which metric failed, or
 * LLM_ENOTFOUND when a thresholded metric has no result yet. */
llm_err evr_judge(json_t *results, json_t *thresholds, json_t *baseline, double max_regression,
		  bool *passed, char *why, size_t why_size);

#endif
