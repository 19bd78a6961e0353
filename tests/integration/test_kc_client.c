/* The resource API against the local control plane: CRUD, optimistic
 * concurrency, the status subresource of a custom resource, server-side
 * apply with two field managers, patches, pagination over 1,200 objects,
 * delete preconditions, discovery, and RBAC through the operator identity.
 * Needs KUBECONFIG and LLMOPS_OPERATOR_KUBECONFIG (set by e2e/run.sh). */
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

/* A namespace of its own per run, so reruns never meet old objects. */
static char NS[64];

static kc_config *admin_cfg, *operator_cfg;
static kc_http *admin, *operator;

static const struct kc_gvr widgets = {"test.llmops.dev", "v1", "widgets", true};

static json_t *configmap(const char *name, const char *value)
{
	return json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
			 "metadata", "name", name, "data", "value", value);
}

static void create_test_crd(void)
{
	const char *crd =
		"{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
		"\"metadata\":{\"name\":\"widgets.test.llmops.dev\"},\"spec\":{\"group\":"
		"\"test.llmops.dev\",\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\","
		"\"singular\":\"widget\",\"kind\":\"Widget\",\"listKind\":\"WidgetList\"},"
		"\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
		"\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":{\"type\":"
		"\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{\"size\":"
		"{\"type\":\"integer\"}}},\"status\":{\"type\":\"object\",\"properties\":{"
		"\"phase\":"
		"{\"type\":\"string\"}}}}}}}]}}";
	json_t *obj = json_loads(crd, 0, NULL), *out;
	struct kc_gvr_owned g;

	kc_create(admin, &KC_CRDS, NULL, obj, &out);
	json_decref(out);
	json_decref(obj);
	/* The resource is served once the CRD is established. */
	for (int i = 0; i < 100; i++) {
		if (kc_discover(admin, "test.llmops.dev/v1", "Widget", &g) == LLM_OK) {
			kc_gvr_free(&g);
			return;
		}
		usleep(100000);
	}
	fail_msg("Widget CRD never became served: %s", llm_last_error());
}

static int setup(void **state)
{
	const char *op_kc = getenv("LLMOPS_OPERATOR_KUBECONFIG");

	(void)state;
	snprintf(NS, sizeof(NS), "kc-client-%ld", (long)getpid());
	if (!op_kc) {
		fprintf(stderr, "setup: LLMOPS_OPERATOR_KUBECONFIG is not set (run through "
				"e2e/run.sh)\n");
		return -1;
	}
	if (itest_connect(NULL, &admin_cfg, &admin) ||
	    itest_connect(op_kc, &operator_cfg, &operator))
		return -1;
	itest_namespace_create(admin, NS);
	create_test_crd();
	return 0;
}

static int teardown(void **state)
{
	json_t *out;

	(void)state;
	if (admin) {
		kc_delete(admin, &KC_CRDS, NULL, "widgets.test.llmops.dev", NULL, &out);
		json_decref(out);
		itest_namespace_delete(admin, NS);
	}
	kc_http_destroy(admin);
	kc_http_destroy(operator);
	kc_config_destroy(admin_cfg);
	kc_config_destroy(operator_cfg);
	return 0;
}

static void test_client_create_get_update_delete(void **state)
{
	json_t *cm = configmap("crud", "one"), *out, *got;

	(void)state;
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
	assert_string_equal(llm_json_str_or(out, "metadata.namespace", ""), NS);
	json_decref(out);
	assert_rc(kc_get(admin, &KC_CONFIGMAPS, NS, "crud", KC_MAIN, &got), LLM_OK);
	assert_string_equal(llm_json_str_or(got, "data.value", ""), "one");
	json_object_set_new(json_object_get(got, "data"), "value", json_string("two"));
	assert_rc(kc_update(admin, &KC_CONFIGMAPS, NS, got, KC_MAIN, &out), LLM_OK);
	assert_string_equal(llm_json_str_or(out, "data.value", ""), "two");
	json_decref(out);
	assert_rc(kc_delete(admin, &KC_CONFIGMAPS, NS, "crud", NULL, &out), LLM_OK);
	json_decref(out);
	assert_rc(kc_get(admin, &KC_CONFIGMAPS, NS, "crud", KC_MAIN, &out), LLM_ENOTFOUND);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "NotFound");
	assert_non_null(strstr(llm_last_error(), "404 NotFound: configmaps \"crud\" not found"));
	json_decref(out);
	json_decref(got);
	json_decref(cm);
}

static void test_client_create_twice_is_already_exists_with_status(void **state)
{
	json_t *cm = configmap("twice", "x"), *out;
	json_int_t code;

	(void)state;
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
	json_decref(out);
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_EEXIST);
	assert_int_equal(llm_json_get_int(out, "code", &code), LLM_OK);
	assert_int_equal(code, 409);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "AlreadyExists");
	assert_string_equal(llm_json_str_or(out, "details.name", ""), "twice");
	json_decref(out);
	json_decref(cm);
}

static void test_client_stale_resource_version_is_a_conflict(void **state)
{
	json_t *cm = configmap("stale", "a"), *first, *out;

	(void)state;
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &first), LLM_OK);
	json_object_set_new(json_object_get(first, "data"), "value", json_string("b"));
	assert_rc(kc_update(admin, &KC_CONFIGMAPS, NS, first, KC_MAIN, &out), LLM_OK);
	json_decref(out);
	/* first still carries the old resourceVersion. */
	json_object_set_new(json_object_get(first, "data"), "value", json_string("c"));
	assert_rc(kc_update(admin, &KC_CONFIGMAPS, NS, first, KC_MAIN, &out), LLM_ECONFLICT);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "Conflict");
	assert_non_null(strstr(llm_last_error(), "the object has been modified"));
	json_decref(out);
	json_decref(first);
	json_decref(cm);
}

static void test_client_status_subresource_of_a_custom_resource(void **state)
{
	json_t *w = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}, s:{s:s}}", "apiVersion",
			      "test.llmops.dev/v1", "kind", "Widget", "metadata", "name", "w1",
			      "spec", "size", 3, "status", "phase", "ignored"),
	       *out, *st;

	(void)state;
	assert_rc(kc_create(admin, &widgets, NS, w, &out), LLM_OK);
	/* The main resource ignores status; the subresource ignores spec. */
	assert_null(json_object_get(out, "status"));
	json_object_set_new(out, "status", json_pack("{s:s}", "phase", "Running"));
	json_object_set_new(json_object_get(out, "spec"), "size", json_integer(99));
	assert_rc(kc_update(admin, &widgets, NS, out, KC_STATUS, &st), LLM_OK);
	assert_string_equal(llm_json_str_or(st, "status.phase", ""), "Running");
	json_decref(st);
	assert_rc(kc_get(admin, &widgets, NS, "w1", KC_STATUS, &st), LLM_OK);
	assert_string_equal(llm_json_str_or(st, "status.phase", ""), "Running");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "spec"), "size")),
			 3);
	json_decref(st);
	json_decref(out);
	json_decref(w);
}

static void test_client_apply_conflict_between_field_managers(void **state)
{
	json_t *a = configmap("applied", "from-a"), *b = configmap("applied", "from-b"), *out;

	(void)state;
	assert_rc(kc_apply(admin, &KC_CONFIGMAPS, NS, a, "manager-a", false, KC_MAIN, &out),
		  LLM_OK);
	json_decref(out);
	assert_rc(kc_apply(admin, &KC_CONFIGMAPS, NS, b, "manager-b", false, KC_MAIN, &out),
		  LLM_ECONFLICT);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "Conflict");
	assert_string_equal(llm_json_str_or(out, "details.causes[0].field", ""), ".data.value");
	assert_non_null(strstr(llm_json_str_or(out, "details.causes[0].message", ""), "manager-a"));
	json_decref(out);
	assert_rc(kc_apply(admin, &KC_CONFIGMAPS, NS, b, "manager-b", true, KC_MAIN, &out), LLM_OK);
	assert_string_equal(llm_json_str_or(out, "data.value", ""), "from-b");
	json_decref(out);
	json_decref(a);
	json_decref(b);
}

static void test_client_merge_and_json_patches(void **state)
{
	json_t *cm = configmap("patched", "0"), *out;
	json_t *merge = json_pack("{s:{s:s}}", "data", "extra", "1");
	json_t *ops = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path", "/data/value",
				"value", "2");
	json_t *bad = json_pack("[{s:s, s:s, s:s}]", "op", "test", "path", "/data/value", "value",
				"nope");

	(void)state;
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
	json_decref(out);
	assert_rc(kc_patch(admin, &KC_CONFIGMAPS, NS, "patched", KC_PATCH_MERGE, merge, KC_MAIN,
			   &out),
		  LLM_OK);
	assert_string_equal(llm_json_str_or(out, "data.extra", ""), "1");
	json_decref(out);
	assert_rc(kc_patch(admin, &KC_CONFIGMAPS, NS, "patched", KC_PATCH_JSON, ops, KC_MAIN, &out),
		  LLM_OK);
	assert_string_equal(llm_json_str_or(out, "data.value", ""), "2");
	json_decref(out);
	/* A failed "test" operation is 422 Invalid. */
	assert_rc(kc_patch(admin, &KC_CONFIGMAPS, NS, "patched", KC_PATCH_JSON, bad, KC_MAIN, &out),
		  LLM_EINVAL);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "Invalid");
	json_decref(out);
	json_decref(bad);
	json_decref(ops);
	json_decref(merge);
	json_decref(cm);
}

static void test_client_lists_1200_objects_in_pages_of_500(void **state)
{
	struct kc_list_opts page = {.label_selector = "bulk=yes", .limit = 500};
	json_t *out, *all;
	int pages = 0;

	(void)state;
	for (int i = 0; i < 1200; i++) {
		char name[32];
		json_t *cm;

		snprintf(name, sizeof(name), "bulk-%04d", i);
		cm = configmap(name, "v");
		json_object_set_new(json_object_get(cm, "metadata"), "labels",
				    json_pack("{s:s}", "bulk", "yes"));
		assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
		json_decref(out);
		json_decref(cm);
	}
	do {
		char *token;

		assert_rc(kc_list(admin, &KC_CONFIGMAPS, NS, &page, &out), LLM_OK);
		assert_true(json_array_size(json_object_get(out, "items")) <= 500);
		pages++;
		token = strdup(llm_json_str_or(out, "metadata.continue", ""));
		free((char *)page.continue_token);
		page.continue_token = token[0] ? token : NULL;
		if (!token[0])
			free(token);
		json_decref(out);
	} while (page.continue_token);
	assert_int_equal(pages, 3);
	page.limit = 500;
	assert_rc(kc_list_all(admin, &KC_CONFIGMAPS, NS, &page, &all), LLM_OK);
	assert_int_equal(json_array_size(json_object_get(all, "items")), 1200);
	assert_null(json_object_get(json_object_get(all, "metadata"), "continue"));
	assert_string_equal(llm_json_str_or(all, "items[1199].metadata.name", ""), "bulk-1199");
	json_decref(all);
}

static void test_client_delete_precondition_mismatch_is_a_conflict(void **state)
{
	struct kc_delete_opts wrong = {.precondition_uid = "00000000-0000-0000-0000-000000000000",
				       .grace_period_seconds = -1};
	struct kc_delete_opts fg = {.propagation_policy = "Foreground", .grace_period_seconds = 0};
	json_t *cm = configmap("guarded", "x"), *created, *out;

	(void)state;
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &created), LLM_OK);
	fg.precondition_uid = llm_json_str_or(created, "metadata.uid", "");
	assert_rc(kc_delete(admin, &KC_CONFIGMAPS, NS, "guarded", &wrong, &out), LLM_ECONFLICT);
	assert_non_null(strstr(llm_last_error(), "the UID in the precondition"));
	json_decref(out);
	/* Foreground propagation keeps the object, marked, until the garbage
	 * collector has removed its dependents: proof the policy was sent. */
	assert_rc(kc_delete(admin, &KC_CONFIGMAPS, NS, "guarded", &fg, &out), LLM_OK);
	assert_string_equal(llm_json_str_or(out, "metadata.finalizers[0]", ""),
			    "foregroundDeletion");
	assert_non_null(json_object_get(json_object_get(out, "metadata"), "deletionTimestamp"));
	json_decref(out);
	json_decref(created);
	json_decref(cm);
}

static void test_client_discovery_maps_kinds_to_resources(void **state)
{
	struct kc_gvr_owned g;

	(void)state;
	assert_rc(kc_discover(admin, "v1", "ConfigMap", &g), LLM_OK);
	assert_string_equal(g.gvr.resource, "configmaps");
	assert_string_equal(g.gvr.group, "");
	assert_true(g.gvr.namespaced);
	kc_gvr_free(&g);
	assert_rc(kc_discover(admin, "coordination.k8s.io/v1", "Lease", &g), LLM_OK);
	assert_string_equal(g.gvr.resource, "leases");
	assert_string_equal(g.gvr.group, "coordination.k8s.io");
	kc_gvr_free(&g);
	assert_rc(kc_discover(admin, "v1", "Namespace", &g), LLM_OK);
	assert_false(g.gvr.namespaced);
	kc_gvr_free(&g);
	assert_rc(kc_discover(admin, "v1", "Gadget", &g), LLM_ENOTFOUND);
	assert_rc(kc_discover(admin, "nope.example/v9", "Thing", &g), LLM_ENOTFOUND);
}

static void test_client_operator_identity_is_forbidden_outside_its_role(void **state)
{
	json_t *out;

	(void)state;
	assert_rc(kc_list(operator, & KC_SECRETS, NS, NULL, &out), LLM_EFORBIDDEN);
	assert_string_equal(llm_json_str_or(out, "reason", ""), "Forbidden");
	assert_non_null(strstr(llm_json_str_or(out, "message", ""),
			       "User \"llmops-operator\" cannot list resource \"secrets\""));
	assert_non_null(strstr(llm_last_error(), "403 Forbidden"));
	json_decref(out);
	assert_rc(kc_list(operator, & KC_CONFIGMAPS, NS, NULL, &out), LLM_OK);
	json_decref(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_create_get_update_delete),
		cmocka_unit_test(test_client_create_twice_is_already_exists_with_status),
		cmocka_unit_test(test_client_stale_resource_version_is_a_conflict),
		cmocka_unit_test(test_client_status_subresource_of_a_custom_resource),
		cmocka_unit_test(test_client_apply_conflict_between_field_managers),
		cmocka_unit_test(test_client_merge_and_json_patches),
		cmocka_unit_test(test_client_lists_1200_objects_in_pages_of_500),
		cmocka_unit_test(test_client_delete_precondition_mismatch_is_a_conflict),
		cmocka_unit_test(test_client_discovery_maps_kinds_to_resources),
		cmocka_unit_test(test_client_operator_identity_is_forbidden_outside_its_role),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
