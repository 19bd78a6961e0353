/* Unit tests for lib/kc_meta: condition upserts and lastTransitionTime rules,
 * reason and status validation, finalizers, controller owner references and
 * generations, all on plain JSON objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kc_meta.h"
#include "llm_json.h"

#define T0 "2026-01-01T00:00:00Z"
#define T1 "2026-01-01T00:01:00Z"
#define T2 "2026-01-01T00:02:00Z"

static json_t *model(const char *name, const char *uid)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i}}", "apiVersion", "llmops.dev/v1alpha1",
			 "kind", "Model", "metadata", "name", name, "namespace", "ml", "uid", uid,
			 "generation", 3);
}

static json_t *configmap(void)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
			 "metadata", "name", "child", "namespace", "ml");
}

static void test_meta_now_is_rfc3339_seconds_utc(void **state)
{
	char buf[KC_META_TIME_LEN], small[20];

	(void)state;
	assert_int_equal(kc_meta_now(buf, sizeof(buf)), LLM_OK);
	assert_int_equal(strlen(buf), 20);
	assert_int_equal(buf[4], '-');
	assert_int_equal(buf[10], 'T');
	assert_int_equal(buf[19], 'Z');
	assert_int_equal(kc_meta_now(small, sizeof(small)), LLM_ETOOLARGE);
}

static void test_cond_set_adds_condition_with_all_fields(void **state)
{
	json_t *obj = model("m", "u1"), *c;
	json_int_t gen;
	bool changed = false;

	(void)state;
	assert_int_equal(
		kc_cond_set(obj, "Ready", "False", "Pending", "waiting for nodes", 3, T0, &changed),
		LLM_OK);
	assert_true(changed);
	c = kc_cond_get(obj, "Ready");
	assert_non_null(c);
	assert_ptr_equal(
		c,
		json_array_get(json_object_get(json_object_get(obj, "status"), "conditions"), 0));
	assert_string_equal(llm_json_str_or(c, "status", ""), "False");
	assert_string_equal(llm_json_str_or(c, "reason", ""), "Pending");
	assert_string_equal(llm_json_str_or(c, "message", ""), "waiting for nodes");
	assert_string_equal(llm_json_str_or(c, "lastTransitionTime", ""), T0);
	assert_int_equal(llm_json_get_int(c, "observedGeneration", &gen), LLM_OK);
	assert_int_equal(gen, 3);
	assert_false(kc_cond_is_true(obj, "Ready"));
	json_decref(obj);
}

static void test_cond_set_same_values_is_not_a_change(void **state)
{
	json_t *obj = model("m", "u1"), *before;
	bool changed = true;

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "ok", 3, T0, NULL), LLM_OK);
	before = json_deep_copy(obj);
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "ok", 3, T1, &changed),
			 LLM_OK);
	assert_false(changed);
	assert_true(json_equal(obj, before));
	json_decref(before);
	json_decref(obj);
}

static void test_cond_reason_change_keeps_transition_time(void **state)
{
	json_t *obj = model("m", "u1");
	bool changed = false;

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "False", "Pending", "a", 3, T0, NULL), LLM_OK);
	assert_int_equal(kc_cond_set(obj, "Ready", "False", "Downloading", "b", 4, T1, &changed),
			 LLM_OK);
	assert_true(changed);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "lastTransitionTime", ""),
			    T0);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "reason", ""),
			    "Downloading");
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "message", ""), "b");
	json_decref(obj);
}

static void test_cond_generation_change_alone_is_a_change(void **state)
{
	json_t *obj = model("m", "u1");
	json_int_t gen = 0;
	bool changed = false;

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 3, T0, NULL), LLM_OK);
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 4, T1, &changed), LLM_OK);
	assert_true(changed);
	assert_int_equal(llm_json_get_int(kc_cond_get(obj, "Ready"), "observedGeneration", &gen),
			 LLM_OK);
	assert_int_equal(gen, 4);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "lastTransitionTime", ""),
			    T0);
	json_decref(obj);
}

static void test_cond_status_flip_moves_transition_time(void **state)
{
	json_t *obj = model("m", "u1");
	bool changed = false;

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "False", "Pending", "", 3, T0, NULL), LLM_OK);
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 3, T1, &changed), LLM_OK);
	assert_true(changed);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "lastTransitionTime", ""),
			    T1);
	assert_true(kc_cond_is_true(obj, "Ready"));
	/* Flipping to Unknown is a flip as well. */
	assert_int_equal(kc_cond_set(obj, "Ready", "Unknown", "Lost", "", 3, T2, &changed), LLM_OK);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "lastTransitionTime", ""),
			    T2);
	assert_false(kc_cond_is_true(obj, "Ready"));
	json_decref(obj);
}

static void test_cond_types_are_kept_apart(void **state)
{
	json_t *obj = model("m", "u1");

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 0, T0, NULL), LLM_OK);
	assert_int_equal(
		kc_cond_set(obj, "llmops.dev/Degraded", "False", "AsExpected", "", 0, T0, NULL),
		LLM_OK);
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(obj, "status"), "conditions")), 2);
	assert_true(kc_cond_is_true(obj, "Ready"));
	assert_false(kc_cond_is_true(obj, "llmops.dev/Degraded"));
	assert_null(kc_cond_get(obj, "Missing"));
	assert_false(kc_cond_is_true(obj, "Missing"));
	/* Generation 0 leaves observedGeneration out. */
	assert_null(json_object_get(kc_cond_get(obj, "Ready"), "observedGeneration"));
	json_decref(obj);
}

static void test_cond_reason_must_match_the_api_pattern(void **state)
{
	const char *bad[] = {"", "1Starts", "has space", "Ends,", "Ends:", "dash-ed", "Dot.ted"};
	const char *good[] = {"A", "Ready", "Scaled_Up", "a,b:c", "ModelLoaded2"};
	json_t *obj = model("m", "u1");
	bool changed = true;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kc_cond_set(obj, "Ready", "True", bad[i], "", 0, T0, &changed),
				 LLM_EINVAL);
		assert_false(changed);
		assert_non_null(strstr(llm_last_error(), "reason"));
	}
	assert_int_equal(kc_cond_set(obj, "Ready", "True", NULL, "", 0, T0, NULL), LLM_EINVAL);
	/* A rejected call leaves the object untouched: no status appears. */
	assert_null(json_object_get(obj, "status"));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(kc_cond_set(obj, "Ready", "True", good[i], "", 0, T0, NULL),
				 LLM_OK);
	json_decref(obj);
}

static void test_cond_status_and_type_are_validated(void **state)
{
	json_t *obj = model("m", "u1");

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "true", "Serving", "", 0, T0, NULL), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "True, False or Unknown"));
	assert_int_equal(kc_cond_set(obj, "Ready", NULL, "Serving", "", 0, T0, NULL), LLM_EINVAL);
	assert_int_equal(kc_cond_set(obj, "", "True", "Serving", "", 0, T0, NULL), LLM_EINVAL);
	assert_int_equal(kc_cond_set(obj, "Bad Type", "True", "Serving", "", 0, T0, NULL),
			 LLM_EINVAL);
	assert_int_equal(kc_cond_set(obj, "UPPER.dev/Ready", "True", "Serving", "", 0, T0, NULL),
			 LLM_EINVAL);
	assert_null(json_object_get(obj, "status"));
	json_decref(obj);
}

static void test_cond_mistyped_conditions_is_a_type_error(void **state)
{
	json_t *obj = json_pack("{s:{s:s}}", "status", "conditions", "oops");

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 0, T0, NULL), LLM_ETYPE);
	assert_null(kc_cond_get(obj, "Ready"));
	json_decref(obj);
}

static void test_cond_default_time_is_now(void **state)
{
	json_t *obj = model("m", "u1");
	const char *t;

	(void)state;
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", NULL, 0, NULL, NULL), LLM_OK);
	t = llm_json_str_or(kc_cond_get(obj, "Ready"), "lastTransitionTime", "");
	assert_int_equal(strlen(t), 20);
	assert_string_equal(llm_json_str_or(kc_cond_get(obj, "Ready"), "message", "x"), "");
	json_decref(obj);
}

static void test_cond_remove(void **state)
{
	json_t *obj = model("m", "u1");
	bool changed = false;

	(void)state;
	assert_int_equal(kc_cond_remove(obj, "Ready", &changed), LLM_OK);
	assert_false(changed);
	assert_int_equal(kc_cond_set(obj, "Ready", "True", "Serving", "", 0, T0, NULL), LLM_OK);
	assert_int_equal(kc_cond_remove(obj, "Ready", &changed), LLM_OK);
	assert_true(changed);
	assert_null(kc_cond_get(obj, "Ready"));
	json_decref(obj);
}

static void test_finalizers_add_and_remove_are_idempotent(void **state)
{
	json_t *obj = model("m", "u1");
	bool changed = false;

	(void)state;
	assert_false(kc_meta_has_finalizer(obj, "llmops.dev/cleanup"));
	assert_int_equal(kc_meta_add_finalizer(obj, "llmops.dev/cleanup", &changed), LLM_OK);
	assert_true(changed);
	assert_int_equal(kc_meta_add_finalizer(obj, "llmops.dev/cleanup", &changed), LLM_OK);
	assert_false(changed);
	assert_int_equal(kc_meta_add_finalizer(obj, "other/f", &changed), LLM_OK);
	assert_true(changed);
	assert_int_equal(
		json_array_size(json_object_get(json_object_get(obj, "metadata"), "finalizers")),
		2);
	assert_true(kc_meta_has_finalizer(obj, "llmops.dev/cleanup"));
	assert_int_equal(kc_meta_remove_finalizer(obj, "llmops.dev/cleanup", &changed), LLM_OK);
	assert_true(changed);
	assert_int_equal(kc_meta_remove_finalizer(obj, "llmops.dev/cleanup", &changed), LLM_OK);
	assert_false(changed);
	assert_false(kc_meta_has_finalizer(obj, "llmops.dev/cleanup"));
	assert_true(kc_meta_has_finalizer(obj, "other/f"));
	/* The last removal drops the key, as Go's omitempty would. */
	assert_int_equal(kc_meta_remove_finalizer(obj, "other/f", &changed), LLM_OK);
	assert_true(changed);
	assert_null(json_object_get(json_object_get(obj, "metadata"), "finalizers"));
	assert_int_equal(kc_meta_add_finalizer(obj, "", &changed), LLM_EINVAL);
	json_decref(obj);
}

static void test_finalizer_remove_on_object_without_metadata(void **state)
{
	json_t *obj = json_object();
	bool changed = true;

	(void)state;
	assert_int_equal(kc_meta_remove_finalizer(obj, "f", &changed), LLM_OK);
	assert_false(changed);
	assert_int_equal(json_object_size(obj), 0);
	json_decref(obj);
}

static void test_owner_set_controller_ref_builds_the_reference(void **state)
{
	json_t *owner = model("m", "u1"), *child = configmap(), *ref;
	bool changed = false, flag = false;

	(void)state;
	assert_null(kc_meta_controller_of(child));
	assert_int_equal(kc_meta_set_controller_ref(child, owner, &changed), LLM_OK);
	assert_true(changed);
	ref = kc_meta_controller_of(child);
	assert_non_null(ref);
	assert_string_equal(llm_json_str_or(ref, "apiVersion", ""), "llmops.dev/v1alpha1");
	assert_string_equal(llm_json_str_or(ref, "kind", ""), "Model");
	assert_string_equal(llm_json_str_or(ref, "name", ""), "m");
	assert_string_equal(llm_json_str_or(ref, "uid", ""), "u1");
	assert_int_equal(llm_json_get_bool(ref, "controller", &flag), LLM_OK);
	assert_true(flag);
	assert_int_equal(llm_json_get_bool(ref, "blockOwnerDeletion", &flag), LLM_OK);
	assert_true(flag);
	assert_true(kc_meta_is_owned_by(child, owner));
	/* Setting it again changes nothing. */
	assert_int_equal(kc_meta_set_controller_ref(child, owner, &changed), LLM_OK);
	assert_false(changed);
	assert_int_equal(json_array_size(json_object_get(json_object_get(child, "metadata"),
							 "ownerReferences")),
			 1);
	json_decref(child);
	json_decref(owner);
}

static void test_owner_another_controller_is_a_conflict(void **state)
{
	json_t *a = model("a", "ua"), *b = model("b", "ub"), *child = configmap(), *before;
	bool changed = true;

	(void)state;
	assert_int_equal(kc_meta_set_controller_ref(child, a, NULL), LLM_OK);
	before = json_deep_copy(child);
	assert_int_equal(kc_meta_set_controller_ref(child, b, &changed), LLM_ECONFLICT);
	assert_false(changed);
	assert_non_null(strstr(llm_last_error(), "already controlled by Model a"));
	assert_true(json_equal(child, before));
	assert_true(kc_meta_is_owned_by(child, a));
	assert_false(kc_meta_is_owned_by(child, b));
	json_decref(before);
	json_decref(child);
	json_decref(b);
	json_decref(a);
}

static void test_owner_recreated_owner_takes_over_its_reference(void **state)
{
	json_t *old = model("m", "old-uid"), *fresh = model("m", "new-uid"), *child = configmap();
	bool changed = false;

	(void)state;
	assert_int_equal(kc_meta_set_controller_ref(child, old, NULL), LLM_OK);
	/* Same group, kind and name: the same object to controller-runtime. */
	assert_int_equal(kc_meta_set_controller_ref(child, fresh, &changed), LLM_OK);
	assert_true(changed);
	assert_string_equal(llm_json_str_or(kc_meta_controller_of(child), "uid", ""), "new-uid");
	assert_false(kc_meta_is_owned_by(child, old));
	assert_true(kc_meta_is_owned_by(child, fresh));
	json_decref(child);
	json_decref(fresh);
	json_decref(old);
}

static void test_owner_non_controller_references_are_kept(void **state)
{
	json_t *owner = model("m", "u1"), *child = configmap(), *other;
	json_t *refs = json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind", "Secret",
				 "name", "s", "uid", "us");

	(void)state;
	json_object_set_new(json_object_get(child, "metadata"), "ownerReferences", refs);
	other = json_pack("{s:{s:s}}", "metadata", "uid", "us");
	assert_null(kc_meta_controller_of(child));
	assert_true(kc_meta_is_owned_by(child, other));
	assert_int_equal(kc_meta_set_controller_ref(child, owner, NULL), LLM_OK);
	assert_int_equal(json_array_size(refs), 2);
	assert_string_equal(llm_json_str_or(kc_meta_controller_of(child), "uid", ""), "u1");
	assert_true(kc_meta_is_owned_by(child, other));
	json_decref(other);
	json_decref(child);
	json_decref(owner);
}

static void test_owner_must_be_complete_and_in_the_same_namespace(void **state)
{
	json_t *owner = model("m", "u1"), *child = configmap(), *no_uid = model("m", "");

	(void)state;
	assert_int_equal(kc_meta_set_controller_ref(child, no_uid, NULL), LLM_EINVAL);
	assert_false(kc_meta_is_owned_by(child, no_uid));
	json_object_set_new(json_object_get(child, "metadata"), "namespace", json_string("other"));
	assert_int_equal(kc_meta_set_controller_ref(child, owner, NULL), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "namespaced"));
	assert_null(kc_meta_controller_of(child));
	json_decref(no_uid);
	json_decref(child);
	json_decref(owner);
}

static void test_generation_and_observed_generation(void **state)
{
	json_t *obj = model("m", "u1");
	bool changed = false;

	(void)state;
	assert_int_equal(kc_meta_generation(obj), 3);
	assert_int_equal(kc_meta_observed_generation(obj), 0);
	assert_int_equal(kc_meta_set_observed_generation(obj, 3, &changed), LLM_OK);
	assert_true(changed);
	assert_int_equal(kc_meta_observed_generation(obj), 3);
	assert_int_equal(kc_meta_set_observed_generation(obj, 3, &changed), LLM_OK);
	assert_false(changed);
	json_decref(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_now_is_rfc3339_seconds_utc),
		cmocka_unit_test(test_cond_set_adds_condition_with_all_fields),
		cmocka_unit_test(test_cond_set_same_values_is_not_a_change),
		cmocka_unit_test(test_cond_reason_change_keeps_transition_time),
		cmocka_unit_test(test_cond_generation_change_alone_is_a_change),
		cmocka_unit_test(test_cond_status_flip_moves_transition_time),
		cmocka_unit_test(test_cond_types_are_kept_apart),
		cmocka_unit_test(test_cond_reason_must_match_the_api_pattern),
		cmocka_unit_test(test_cond_status_and_type_are_validated),
		cmocka_unit_test(test_cond_mistyped_conditions_is_a_type_error),
		cmocka_unit_test(test_cond_default_time_is_now),
		cmocka_unit_test(test_cond_remove),
		cmocka_unit_test(test_finalizers_add_and_remove_are_idempotent),
		cmocka_unit_test(test_finalizer_remove_on_object_without_metadata),
		cmocka_unit_test(test_owner_set_controller_ref_builds_the_reference),
		cmocka_unit_test(test_owner_another_controller_is_a_conflict),
		cmocka_unit_test(test_owner_recreated_owner_takes_over_its_reference),
		cmocka_unit_test(test_owner_non_controller_references_are_kept),
		cmocka_unit_test(test_owner_must_be_complete_and_in_the_same_namespace),
		cmocka_unit_test(test_generation_and_observed_generation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
