/* Unit tests for agent/uri: pvc:// and file:/// URIs to the paths the
 * operator mounts, the test node's per-claim override, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "uri.h"

static int clear_env(void **state)
{
	(void)state;
	unsetenv("LLMOPS_PVC_ROOT");
	unsetenv("LLMOPS_MOUNT_PVC_MY_DATA");
	return 0;
}

static void expect(const char *uri, const char *path)
{
	char buf[256];

	assert_int_equal(uri_to_path(uri, buf, sizeof(buf)), LLM_OK);
	assert_string_equal(buf, path);
}

static void test_uri_pvc_maps_to_the_operator_mount(void **state)
{
	(void)state;
	expect("pvc://models/tiny-gpt2", "/llmops/pvc/models/tiny-gpt2");
	expect("pvc://models", "/llmops/pvc/models");
}

static void test_uri_file_is_its_absolute_path(void **state)
{
	(void)state;
	expect("file:///data/train.jsonl", "/data/train.jsonl");
	expect("relative/dir", "relative/dir");
}

static void test_uri_pvc_root_and_claim_overrides(void **state)
{
	(void)state;
	setenv("LLMOPS_PVC_ROOT", "/tmp/pvcs", 1);
	expect("pvc://models/a", "/tmp/pvcs/models/a");
	setenv("LLMOPS_MOUNT_PVC_MY_DATA", "/srv/vol", 1);
	expect("pvc://my-data/x/y.jsonl", "/srv/vol/x/y.jsonl");
	expect("pvc://models/a", "/tmp/pvcs/models/a");
}

static void test_uri_refuses_dotdot_unknown_schemes_and_empty_parts(void **state)
{
	char buf[256];

	(void)state;
	assert_int_equal(uri_to_path("pvc://c/a/../b", buf, sizeof(buf)), LLM_EINVAL);
	assert_int_equal(uri_to_path("file:///..", buf, sizeof(buf)), LLM_EINVAL);
	assert_int_equal(uri_to_path("s3://bucket/key", buf, sizeof(buf)), LLM_EINVAL);
	assert_int_equal(uri_to_path("pvc:///x", buf, sizeof(buf)), LLM_EINVAL);
	assert_int_equal(uri_to_path("file://relative", buf, sizeof(buf)), LLM_EINVAL);
	assert_int_equal(uri_to_path("", buf, sizeof(buf)), LLM_EINVAL);
	expect("pvc://c/a..b/..c", "/llmops/pvc/c/a..b/..c");
}

static void test_uri_too_long_is_an_error_not_a_cut(void **state)
{
	char buf[20];

	(void)state;
	assert_int_equal(uri_to_path("pvc://models/tiny-gpt2", buf, sizeof(buf)), LLM_ETOOLARGE);
	assert_int_equal(uri_join("/a/b", "checkpoints", buf, sizeof(buf)), LLM_OK);
	assert_string_equal(buf, "/a/b/checkpoints");
	assert_int_equal(uri_join("/a/b/", "c", buf, sizeof(buf)), LLM_OK);
	assert_string_equal(buf, "/a/b/c");
	assert_int_equal(uri_join("/a/b", "checkpoints-and-more", buf, sizeof(buf)), LLM_ETOOLARGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_uri_pvc_maps_to_the_operator_mount, clear_env),
		cmocka_unit_test_setup(test_uri_file_is_its_absolute_path, clear_env),
		cmocka_unit_test_setup(test_uri_pvc_root_and_claim_overrides, clear_env),
		cmocka_unit_test_setup(test_uri_refuses_dotdot_unknown_schemes_and_empty_parts,
				       clear_env),
		cmocka_unit_test_setup(test_uri_too_long_is_an_error_not_a_cut, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
