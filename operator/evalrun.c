/* EvalRun reconciler: one Job runs the agent's eval role, which writes
 * status.results; once the Job completes the operator judges the results
 * against spec.thresholds and the baseline run into the Passed condition. */
#include "evalrun.h"

#include <stdio.h>
#include <string.h>

#include "kc_meta.h"
#include "llm_json.h"

static const char *const uri_fields[] = {"spec.target.model", "spec.target.adapter",
					 "spec.dataset.uri", NULL};

static bool lower_is_better(const char *metric)
{
	return strcmp(metric, "perplexity") == 0;
}

llm_err evr_judge(json_t *results, json_t *thresholds, json_t *baseline, double max_regression,
		  bool *passed, char *why, size_t why_size)
{
	const char *metric;
	json_t *limit;

	*passed = true;
	snprintf(why, why_size, "every threshold met");
	json_object_foreach(thresholds, metric, limit)
	{
		json_t *got = json_object_get(results, metric);
		bool low = lower_is_better(metric);

		if (!json_is_number(got))
			return llm_fail(LLM_ENOTFOUND, "no result for %s yet", metric);
		if (low ? json_number_value(got) > json_number_value(limit)
			: json_number_value(got) < json_number_value(limit)) {
			*passed = false;
			snprintf(why, why_size, "%s = %g, threshold %s %g", metric,
				 json_number_value(got),
				 low ? "<=" : ">=", json_number_value(limit));
			return LLM_OK;
		}
	}
	json_object_foreach(baseline, metric, limit)
	{
		json_t *got = json_object_get(results, metric);
		double drop;

		if (!json_is_number(got) || !json_is_number(limit))
			continue;
		drop = lower_is_better(metric) ? json_number_value(got) - json_number_value(limit)
					       : json_number_value(limit) - json_number_value(got);
		if (drop > max_regression) {
			*passed = false;
			snprintf(why, why_size,
				 "%s regressed by %g against the baseline (allowed %g)", metric,
				 drop, max_regression);
			return LLM_OK;
		}
	}
	return LLM_OK;
}

/* The baseline run's results, or NULL when none is named or ready. */
static json_t *baseline_results(struct op_ctx *c, json_t *evr)
{
	const char *name = llm_json_str_or(evr, "spec.baseline.evalRunRef.name", NULL);
	json_t *base = NULL, *results = NULL;

	if (name)
		base = op_read(c, &OP_EVALRUNS, llm_json_str_or(evr, "metadata.namespace", ""),
			       name);
	if (base)
		results = json_incref(json_object_get(json_object_get(base, "status"), "results"));
	json_decref(base);
	return results;
}

/* Turns the finished Job and the agent's results into the verdict. */
static void judge(struct op_ctx *c, json_t *evr, json_t *status)
{
	json_t *spec = json_object_get(evr, "spec"), *base = baseline_results(c, evr);
	json_t *results = json_object_get(json_object_get(evr, "status"), "results");
	double allowed = 0;
	bool passed;
	char why[512];

	llm_json_get_num(evr, "spec.baseline.maxRegression", &allowed);
	if (evr_judge(results, json_object_get(spec, "thresholds"), base, allowed, &passed, why,
		      sizeof(why))) {
		op_condition(status, evr, "Passed", "Unknown", "WaitingForResults",
			     llm_last_error());
	} else {
		op_condition(status, evr, "Passed", passed ? "True" : "False",
			     passed ? "ThresholdsMet" : "ThresholdsNotMet", why);
		op_event(c, evr, passed ? "Normal" : "Warning",
			 passed ? "ThresholdsMet" : "ThresholdsNotMet", "%s", why);
	}
	json_decref(base);
}

static struct kc_result reconcile(struct op_ctx *c, json_t *evr)
{
	char name[300];
	json_t *job = NULL, *desired, *status;
	const char *phase;
	bool complete, failed;
	llm_err rc;

	/* A Job per generation: a changed spec is evaluated again, and Job
	 * templates, which cannot change, never need to. */
	snprintf(name, sizeof(name), "%s-eval-g%lld", llm_json_str_or(evr, "metadata.name", ""),
		 (long long)kc_meta_generation(evr));
	desired = op_job(c, evr, name, "eval", uri_fields);
	rc = op_apply(c, &KC_JOBS, desired);
	json_decref(desired);
	if (rc || kc_get(c->h, &KC_JOBS, llm_json_str_or(evr, "metadata.namespace", ""), name,
			 KC_MAIN, &job)) {
		json_decref(job);
		return op_retry();
	}
	complete = op_job_has(job, "Complete");
	failed = !complete && op_job_has(job, "Failed");
	if (complete)
		phase = "Succeeded";
	else if (failed)
		phase = "Failed";
	else
		phase = json_integer_value(
				json_object_get(json_object_get(job, "status"), "active"))
				? "Running"
				: "Pending";
	status = op_status(evr, phase);
	op_delete_children_except(c, &KC_JOBS, evr, name); /* earlier generations */
	op_condition(status, evr, "Ready", complete ? "True" : "False", phase,
		     complete ? "the evaluation finished" : "the evaluation has not finished");
	if (complete)
		judge(c, evr, status);
	else if (failed)
		op_condition(status, evr, "Passed", "False", "EvaluationFailed",
			     "the evaluation Job failed; see its pods' logs");
	else
		op_condition(status, evr, "Passed", "Unknown", "Evaluating",
			     "the evaluation is running");
	rc = op_apply_status(c, &OP_EVALRUNS, evr, status);
	json_decref(status);
	json_decref(job);
	return rc ? op_retry() : op_done();
}

const struct op_reconciler evalrun_reconciler = {
	.kind = "EvalRun",
	.component = "eval",
	.gvr = &OP_EVALRUNS,
	.owns = {&KC_JOBS},
	.reconcile = reconcile,
};
