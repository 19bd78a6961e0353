/* Status ownership on a real FineTuneJob: the operator applies phase and
 * conditions under its field manager, the agent reporter applies progress
 * and results under its own, and neither write removes the other's fields;
 * the reporter coalesces updates to one write per interval.
 * Needs KUBECONFIG and LLMOPS_ROOT (set by e2e/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "llm_json.h"
#include "llm_yaml.h"
#include "op.h"
#include "status.h"

static char NS[64];
static kc_config *cfg;
static kc_http *http;

static json_t *get_job(void)
{
	json_t *obj = NULL;

	assert_rc(kc_get(http, &OP_FINETUNEJOBS, NS, "owned", KC_MAIN, &obj), LLM_OK);
	return obj;
}

static void operator_sets_phase(const char *phase)
{
	struct op_ctx c = {.h = http};
	json_t *job = get_job(), *status = op_status(job, phase);

	op_condition(status, job, "Running", "True", "Test", "set by the test");
	assert_rc(op_apply_status(&c, &OP_FINETUNEJOBS, job, status), LLM_OK);
	json_decref(status);
	json_decref(job);
}

static json_int_t progress_step(json_t *job)
{
	json_int_t step = -1;

	llm_json_get_int(job, "status.progress.step", &step);
	return step;
}

static void test_operator_and_agent_status_fields_coexist(void **state)
{
	agent_status *s;
	json_t *p, *job;

	(void)state;
	operator_sets_phase("Running");
	assert_rc(agent_status_new(http, &OP_FINETUNEJOBS, OP_API_VERSION, "FineTuneJob", NS,
				   "owned", 60000, &s),
		  LLM_OK);
	p = json_pack("{s:i, s:i}", "step", 10, "totalSteps", 100);
	assert_rc(agent_status_set(s, "progress", p), LLM_OK); /* first write is immediate */
	json_decref(p);
	job = get_job();
	assert_int_equal(progress_step(job), 10);
	assert_string_equal(llm_json_str_or(job, "status.phase", ""), "Running");
	json_decref(job);

	/* Within the interval the update waits, then a flush writes it. */
	p = json_pack("{s:i, s:i}", "step", 20, "totalSteps", 100);
	assert_rc(agent_status_set(s, "progress", p), LLM_OK);
	json_decref(p);
	job = get_job();
	assert_int_equal(progress_step(job), 10);
	json_decref(job);
	assert_rc(agent_status_flush(s), LLM_OK);

	/* The operator's next write keeps the agent's progress. */
	operator_sets_phase("Succeeded");
	job = get_job();
	assert_int_equal(progress_step(job), 20);
	assert_string_equal(llm_json_str_or(job, "status.phase", ""), "Succeeded");
	assert_string_equal(llm_json_str_or(job, "status.conditions[0].type", ""), "Running");
	json_decref(job);
	agent_status_destroy(s);
}

static void test_agent_reports_only_its_fields(void **state)
{
	agent_status *s;
	json_t *v = json_string("x");

	(void)state;
	assert_rc(agent_status_new(http, &OP_FINETUNEJOBS, OP_API_VERSION, "FineTuneJob", NS,
				   "owned", 0, &s),
		  LLM_OK);
	assert_rc(agent_status_set(s, "phase", v), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "not phase"));
	json_decref(v);
	agent_status_destroy(s);
}

/* Applies the FineTuneJob CRD from the repository and waits until served. */
static int install_crd(void)
{
	char path[512];
	json_t *docs, *out = NULL;
	struct kc_gvr_owned g;

	snprintf(path, sizeof(path), "%s/crds/finetunejobs.llmops.dev.yaml", getenv("LLMOPS_ROOT"));
	if (llm_yaml_load_file(path, 1 << 22, &docs))
		return -1;
	kc_apply(http, &KC_CRDS, NULL, json_array_get(docs, 0), "test", true, KC_MAIN, &out);
	json_decref(out);
	json_decref(docs);
	for (int i = 0; i < 100; i++) {
		if (kc_discover(http, OP_API_VERSION, "FineTuneJob", &g) == LLM_OK) {
			kc_gvr_free(&g);
			return 0;
		}
		usleep(100000);
	}
	return -1;
}

static int setup(void **state)
{
	struct kc_config_opts co = {0};
	struct kc_http_opts fast = {.qps = -1};
	json_t *obj, *out = NULL;

	(void)state;
	snprintf(NS, sizeof(NS), "status-own-%ld", (long)getpid());
	if (!getenv("LLMOPS_ROOT") || kc_config_load(&co, &cfg) || kc_http_new(cfg, &fast, &http) ||
	    install_crd()) {
		fprintf(stderr, "setup: %s (run through e2e/run.sh)\n", llm_last_error());
		return -1;
	}
	obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
			"name", NS);
	kc_create(http, &KC_NAMESPACES, NULL, obj, &out);
	json_decref(out);
	json_decref(obj);
	obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:{s:s}, s:s}}", "apiVersion", OP_API_VERSION,
			"kind", "FineTuneJob", "metadata", "name", "owned", "spec", "baseModel",
			"pvc://models/tiny", "dataset", "train", "pvc://data/train.jsonl", "output",
			"pvc://models/out");
	if (kc_create(http, &OP_FINETUNEJOBS, NS, obj, &out)) {
		fprintf(stderr, "setup: %s\n", llm_last_error());
		json_decref(out);
		json_decref(obj);
		return -1;
	}
	json_decref(out);
	json_decref(obj);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(http, NS);
	kc_http_destroy(http);
	kc_config_destroy(cfg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operator_and_agent_status_fields_coexist),
		cmocka_unit_test(test_agent_reports_only_its_fields),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
