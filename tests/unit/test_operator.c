/* Unit tests for the operator's pure functions: PromptVersion validation and
 * hashing, the FineTuneJob gang's desired children, the EvalRun verdict, the
 * RagIndex version and the ModelEndpoint variants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "evalrun.h"
#include "finetunejob.h"
#include "llm_json.h"
#include "modelendpoint.h"
#include "promptversion.h"
#include "ragindex.h"

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, 0, &err);

	if (!v)
		fail_msg("bad test JSON: %s", err.text);
	return v;
}

static const char *pv_ok = "{\"family\":\"support\",\"template\":\"Hello {{ name }}, about "
			   "{{topic}}\",\"variables\":[{\"name\":\"name\",\"required\":true},"
			   "{\"name\":\"topic\",\"default\":\"billing\"}],\"shots\":\"one\","
			   "\"examples\":[{\"inputs\":{\"name\":\"Ann\"},\"output\":\"Hi Ann\"}]}";

static void test_pv_valid_spec_passes(void **state)
{
	json_t *spec = parse(pv_ok);

	(void)state;
	assert_int_equal(pv_validate(spec), LLM_OK);
	json_decref(spec);
}

static void expect_invalid(const char *spec_text, const char *message)
{
	json_t *spec = parse(spec_text);

	assert_int_equal(pv_validate(spec), LLM_EINVAL);
	if (!strstr(llm_last_error(), message))
		fail_msg("'%s' does not contain '%s'", llm_last_error(), message);
	json_decref(spec);
}

static void test_pv_template_problems_are_named(void **state)
{
	(void)state;
	expect_invalid("{\"template\":\"Hi {{who}}\"}",
		       "spec.template: variable 'who' is used but not declared");
	expect_invalid("{\"template\":\"Hi {{who\",\"variables\":[{\"name\":\"who\"}]}",
		       "spec.template: '{{' at offset 3 is not closed");
	expect_invalid("{\"template\":\"Hi who}}\"}",
		       "spec.template: '}}' at offset 6 closes nothing");
	expect_invalid("{\"template\":\"{{ 9x }}\"}", "is not a variable name");
	expect_invalid("{\"template\":\"{{a {{b}} }}\",\"variables\":[{\"name\":\"b\"}]}",
		       "is not closed");
	expect_invalid("{\"messages\":[{\"role\":\"user\",\"content\":\"ok\"},{\"role\":\"user\","
		       "\"content\":\"{{x}}\"}]}",
		       "spec.messages[1].content: variable 'x'");
	expect_invalid("{\"template\":\"a\",\"messages\":[]}",
		       "exactly one of template and messages");
	expect_invalid("{\"family\":\"f\"}", "exactly one of template and messages");
}

static void test_pv_examples_must_match_shots_and_variables(void **state)
{
	(void)state;
	expect_invalid("{\"template\":\"x\",\"shots\":\"few\",\"examples\":[{\"inputs\":{},"
		       "\"output\":\"o\"}]}",
		       "spec.shots is few but spec.examples has 1 (need 2)");
	expect_invalid("{\"template\":\"{{n}}\",\"variables\":[{\"name\":\"n\",\"required\":true}],"
		       "\"examples\":[{\"inputs\":{},\"output\":\"o\"}]}",
		       "spec.examples[0].inputs lacks required variable 'n'");
	expect_invalid("{\"template\":\"x\",\"examples\":[{\"inputs\":{}}]}",
		       "spec.examples[0] has no output");
}

static void test_pv_hash_is_canonical(void **state)
{
	json_t *a = parse("{\"b\":1,\"a\":{\"y\":[1,2],\"x\":\"s\"}}");
	json_t *b = parse("{\"a\":{\"x\":\"s\",\"y\":[1,2]},\"b\":1}");
	json_t *c = parse("{\"a\":{\"x\":\"s\",\"y\":[2,1]},\"b\":1}");
	char ha[80], hb[80], hc[80];

	(void)state;
	pv_content_hash(a, ha, sizeof(ha));
	pv_content_hash(b, hb, sizeof(hb));
	pv_content_hash(c, hc, sizeof(hc));
	assert_int_equal(strlen(ha), 71);
	assert_memory_equal(ha, "sha256:", 7);
	assert_string_equal(ha, hb);
	assert_string_not_equal(ha, hc);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static json_t *ftj(void)
{
	return parse("{\"apiVersion\":\"llmops.dev/v1alpha1\",\"kind\":\"FineTuneJob\","
		     "\"metadata\":{\"name\":\"tune\",\"namespace\":\"ml\",\"uid\":\"u-1\"},"
		     "\"spec\":{\"baseModel\":\"pvc://models/gpt2\",\"dataset\":{\"train\":"
		     "\"pvc://data/train.jsonl\"},\"output\":\"pvc://models/out\",\"workers\":2,"
		     "\"gpusPerWorker\":1,\"nodeSelector\":{\"gpu\":\"h100\"},"
		     "\"resources\":{\"requests\":{\"cpu\":\"2\"}}}}");
}

static void test_ftj_worker_pod_carries_rendezvous_and_resources(void **state)
{
	struct op_ctx c = {.agent_image = "img:1"};
	json_t *job = ftj(), *pod = ftj_worker_pod(&c, job, 3, 1);

	(void)state;
	assert_string_equal(llm_json_str_or(pod, "metadata.name", ""), "tune-a3-w1");
	assert_string_equal(llm_json_str_or(pod, "metadata.namespace", ""), "ml");
	assert_string_equal(llm_json_str_or(pod, "metadata.labels[\"llmops.dev/attempt\"]", ""),
			    "3");
	assert_string_equal(llm_json_str_or(pod, "metadata.labels[\"llmops.dev/rank\"]", ""), "1");
	assert_string_equal(llm_json_str_or(pod, "metadata.labels[\"llmops.dev/finetunejob\"]", ""),
			    "tune");
	assert_string_equal(
		llm_json_str_or(pod, "metadata.labels[\"app.kubernetes.io/managed-by\"]", ""),
		"llmops-operator");
	assert_true(json_is_true(json_object_get(
		json_array_get(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"),
			       0),
		"controller")));
	assert_string_equal(llm_json_str_or(pod, "spec.restartPolicy", ""), "Never");
	assert_string_equal(llm_json_str_or(pod, "spec.hostname", ""), "tune-w1");
	assert_string_equal(llm_json_str_or(pod, "spec.subdomain", ""), "tune-workers");
	assert_string_equal(llm_json_str_or(pod, "spec.nodeSelector.gpu", ""), "h100");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].image", ""), "img:1");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].args[0]", ""), "finetune");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].args[2]", ""),
			    "FineTuneJob/ml/tune");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[1].value", ""), "1");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[2].value", ""), "2");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[3].value", ""),
			    "tune-w0.tune-workers.ml.svc");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[5].name", ""),
			    "LLMOPS_JOB_ID");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[5].value", ""), "u-1-a3");
	/* a GPU worker: NCCL when its agent trains on the GPU */
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[6].name", ""),
			    "LLMOPS_COLL_BACKEND");
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].env[6].value", ""), "auto");
	assert_int_equal(
		json_integer_value(json_object_get(
			json_object_get(
				json_object_get(
					json_array_get(json_object_get(json_object_get(pod, "spec"),
								       "containers"),
						       0),
					"resources"),
				"limits"),
			"nvidia.com/gpu")),
		1);
	assert_string_equal(llm_json_str_or(pod, "spec.containers[0].resources.requests.cpu", ""),
			    "2");
	/* Two claims (models, data) mounted once each, though models is named twice. */
	assert_int_equal(json_array_size(json_object_get(json_object_get(pod, "spec"), "volumes")),
			 2);
	assert_string_equal(
		llm_json_str_or(pod, "spec.containers[0].volumeMounts[0].mountPath", ""),
		"/llmops/pvc/models");
	json_decref(pod);
	json_decref(job);
}

static void test_ftj_service_is_headless_over_the_workers(void **state)
{
	json_t *job = ftj(), *svc = ftj_service(job);

	(void)state;
	assert_string_equal(llm_json_str_or(svc, "metadata.name", ""), "tune-workers");
	assert_string_equal(llm_json_str_or(svc, "spec.clusterIP", ""), "None");
	assert_string_equal(llm_json_str_or(svc, "spec.selector[\"llmops.dev/finetunejob\"]", ""),
			    "tune");
	json_decref(svc);
	json_decref(job);
}

static void test_evr_judge_thresholds_and_baseline(void **state)
{
	json_t *results = parse("{\"bleu\":30.5,\"perplexity\":12.0}");
	json_t *ok = parse("{\"bleu\":30,\"perplexity\":15}");
	json_t *strict = parse("{\"bleu\":31}");
	json_t *ppl = parse("{\"perplexity\":11}");
	json_t *missing = parse("{\"rougeL\":0.3}");
	json_t *base = parse("{\"bleu\":33.0}");
	bool passed;
	char why[256];

	(void)state;
	assert_int_equal(evr_judge(results, ok, NULL, 0, &passed, why, sizeof(why)), LLM_OK);
	assert_true(passed);
	assert_int_equal(evr_judge(results, strict, NULL, 0, &passed, why, sizeof(why)), LLM_OK);
	assert_false(passed);
	assert_string_equal(why, "bleu = 30.5, threshold >= 31");
	assert_int_equal(evr_judge(results, ppl, NULL, 0, &passed, why, sizeof(why)), LLM_OK);
	assert_false(passed);
	assert_string_equal(why, "perplexity = 12, threshold <= 11");
	assert_int_equal(evr_judge(results, missing, NULL, 0, &passed, why, sizeof(why)),
			 LLM_ENOTFOUND);
	assert_int_equal(evr_judge(results, ok, base, 3.0, &passed, why, sizeof(why)), LLM_OK);
	assert_true(passed);
	assert_int_equal(evr_judge(results, ok, base, 2.0, &passed, why, sizeof(why)), LLM_OK);
	assert_false(passed);
	assert_string_equal(why, "bleu regressed by 2.5 against the baseline (allowed 2)");
	json_decref(results);
	json_decref(ok);
	json_decref(strict);
	json_decref(ppl);
	json_decref(missing);
	json_decref(base);
}

static void test_rag_version_ignores_serving_settings(void **state)
{
	json_t *a = parse("{\"chunking\":{\"size\":512},\"search\":{\"replicas\":1}}");
	json_t *b = parse("{\"chunking\":{\"size\":512},\"search\":{\"replicas\":5}}");
	json_t *c = parse("{\"chunking\":{\"size\":256},\"search\":{\"replicas\":1}}");
	char va[16], vb[16], vc[16];

	(void)state;
	rag_version(a, va, sizeof(va));
	rag_version(b, vb, sizeof(vb));
	rag_version(c, vc, sizeof(vc));
	assert_int_equal(strlen(va), 12);
	assert_string_equal(va, vb);
	assert_string_not_equal(va, vc);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void test_mep_variants_default_and_router(void **state)
{
	json_t *single = parse("{\"spec\":{\"model\":{\"uri\":\"pvc://m/x\"}}}");
	json_t *ab = parse("{\"spec\":{\"variants\":[{\"name\":\"a\",\"weight\":90},"
			   "{\"name\":\"b\",\"weight\":10}]}}");
	json_t *shadow = parse("{\"spec\":{\"shadow\":{\"variant\":\"x\",\"percent\":5}}}");
	json_t *v = mep_variants(single);

	(void)state;
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(llm_json_str_or(v, "[0].name", ""), "default");
	assert_false(mep_needs_router(single));
	assert_true(mep_needs_router(ab));
	assert_true(mep_needs_router(shadow));
	json_decref(v);
	v = mep_variants(ab);
	assert_int_equal(json_array_size(v), 2);
	json_decref(v);
	json_decref(single);
	json_decref(ab);
	json_decref(shadow);
}

static void test_pvc_claims_in_lists_are_mounted_once(void **state)
{
	json_t *rag = parse("{\"spec\":{\"embedding\":{\"model\":\"pvc://models/minilm\"},"
			    "\"sources\":[{\"uri\":\"pvc://docs/a/*.md\"},{\"inline\":{}},"
			    "{\"uri\":\"pvc://docs/b\"},{\"uri\":\"file:///x\"}]}}");
	const char *const paths[] = {"spec.embedding.model", "spec.sources[].uri", NULL};
	json_t *pod_spec = parse("{\"containers\":[{\"name\":\"index\"}]}");

	(void)state;
	op_mount_pvcs(rag, paths, pod_spec);
	assert_int_equal(json_array_size(json_object_get(pod_spec, "volumes")), 2);
	assert_string_equal(
		llm_json_str_or(pod_spec, "volumes[0].persistentVolumeClaim.claimName", ""),
		"models");
	assert_string_equal(
		llm_json_str_or(pod_spec, "volumes[1].persistentVolumeClaim.claimName", ""),
		"docs");
	assert_string_equal(
		llm_json_str_or(pod_spec, "containers[0].volumeMounts[1].mountPath", ""),
		"/llmops/pvc/docs");
	json_decref(pod_spec);
	json_decref(rag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pv_valid_spec_passes),
		cmocka_unit_test(test_pv_template_problems_are_named),
		cmocka_unit_test(test_pv_examples_must_match_shots_and_variables),
		cmocka_unit_test(test_pv_hash_is_canonical),
		cmocka_unit_test(test_ftj_worker_pod_carries_rendezvous_and_resources),
		cmocka_unit_test(test_ftj_service_is_headless_over_the_workers),
		cmocka_unit_test(test_evr_judge_thresholds_and_baseline),
		cmocka_unit_test(test_rag_version_ignores_serving_settings),
		cmocka_unit_test(test_mep_variants_default_and_router),
		cmocka_unit_test(test_pvc_claims_in_lists_are_mounted_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
