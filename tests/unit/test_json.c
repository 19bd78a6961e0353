/* Unit tests for lib/llm_json: located parse errors, caps, typed getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "llm_json.h"
#include "tmpdir.h"

static const char *pod = "{\"metadata\":{\"name\":\"web\",\"generation\":3,"
			 "\"labels\":{\"app.kubernetes.io/name\":\"llmops\"}},"
			 "\"spec\":{\"replicas\":2,\"ratio\":0.5,\"paused\":false,"
			 "\"containers\":[{\"image\":\"a\"},{\"image\":\"b\",\"args\":[]}]}}";

static int parse_pod(void **state)
{
	json_t *doc;

	if (llm_json_parse(pod, strlen(pod), 4096, "pod", &doc))
		return -1;
	*state = doc;
	return 0;
}

static int free_pod(void **state)
{
	json_decref(*state);
	return 0;
}

static void test_json_parse_error_names_source_line_and_column(void **state)
{
	const char *bad = "{\n  \"a\": 1,\n  \"b\": }\n";
	json_t *doc = (json_t *)1;

	(void)state;
	assert_int_equal(llm_json_parse(bad, strlen(bad), 1024, "body.json", &doc), LLM_EPARSE);
	assert_null(doc);
	assert_non_null(strstr(llm_last_error(), "body.json:3:"));
	assert_non_null(strstr(llm_last_error(), "unexpected token"));
}

static void test_json_truncated_document_is_a_parse_error(void **state)
{
	const char *cut = "{\"kind\":\"ConfigMap\",\"data\":{\"k\":\"v";
	json_t *doc;

	(void)state;
	assert_int_equal(llm_json_parse(cut, strlen(cut), 1024, "stream", &doc), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), "stream:1:"));
}

static void test_json_duplicate_keys_are_rejected(void **state)
{
	const char *dup = "{\"a\":1,\"a\":2}";
	json_t *doc;

	(void)state;
	assert_int_equal(llm_json_parse(dup, strlen(dup), 1024, "dup", &doc), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), "duplicate object key"));
}

static void test_json_input_over_cap_is_too_large(void **state)
{
	const char *doc_text = "[1,2,3]";
	json_t *doc;

	(void)state;
	assert_int_equal(llm_json_parse(doc_text, 7, 6, "list", &doc), LLM_ETOOLARGE);
	assert_string_equal(llm_last_error(), "list: 7 bytes is over the limit of 6 bytes");
}

static void test_json_embedded_nul_is_rejected(void **state)
{
	const char text[] = "{\"a\":\"x\0y\"}";
	json_t *doc;

	(void)state;
	assert_int_equal(llm_json_parse(text, sizeof(text) - 1, 1024, "nul", &doc), LLM_EPARSE);
}

static void test_json_typed_getters_read_nested_paths(void **state)
{
	const char *s;
	json_int_t i;
	double d;
	bool b;
	json_t *v;

	assert_int_equal(llm_json_get_str(*state, "metadata.name", &s), LLM_OK);
	assert_string_equal(s, "web");
	assert_int_equal(llm_json_get_int(*state, "spec.replicas", &i), LLM_OK);
	assert_int_equal(i, 2);
	assert_int_equal(llm_json_get_num(*state, "spec.ratio", &d), LLM_OK);
	assert_true(d == 0.5);
	assert_int_equal(llm_json_get_num(*state, "spec.replicas", &d), LLM_OK);
	assert_true(d == 2.0);
	assert_int_equal(llm_json_get_bool(*state, "spec.paused", &b), LLM_OK);
	assert_false(b);
	assert_int_equal(llm_json_get_str(*state, "spec.containers[1].image", &s), LLM_OK);
	assert_string_equal(s, "b");
	assert_int_equal(llm_json_get_arr(*state, "spec.containers[1].args", &v), LLM_OK);
	assert_int_equal(json_array_size(v), 0);
	assert_int_equal(llm_json_get_obj(*state, "metadata", &v), LLM_OK);
}

static void test_json_quoted_keys_may_contain_dots(void **state)
{
	const char *s;

	assert_int_equal(
		llm_json_get_str(*state, "metadata.labels[\"app.kubernetes.io/name\"]", &s),
		LLM_OK);
	assert_string_equal(s, "llmops");
}

static void test_json_missing_field_is_not_found_with_path(void **state)
{
	const char *s = "unchanged";

	assert_int_equal(llm_json_get_str(*state, "metadata.namespace", &s), LLM_ENOTFOUND);
	assert_null(s);
	assert_string_equal(llm_last_error(), "'metadata.namespace' has no 'metadata.namespace'");
	assert_int_equal(llm_json_get_str(*state, "spec.containers[5].image", &s), LLM_ENOTFOUND);
	assert_string_equal(llm_last_error(),
			    "'spec.containers[5].image' has no 'spec.containers[5]'");
}

static void test_json_wrong_types_are_reported_not_crashed(void **state)
{
	const char *s;
	json_int_t i;
	bool b;

	assert_int_equal(llm_json_get_int(*state, "spec.ratio", &i), LLM_ETYPE);
	assert_string_equal(llm_last_error(), "'spec.ratio' is a number, expected an integer");
	assert_int_equal(llm_json_get_str(*state, "spec.replicas", &s), LLM_ETYPE);
	assert_int_equal(llm_json_get_bool(*state, "metadata.name", &b), LLM_ETYPE);
	/* Indexing into an object, and descending into a string. */
	assert_int_equal(llm_json_get_str(*state, "metadata[0]", &s), LLM_ETYPE);
	assert_string_equal(llm_last_error(),
			    "'metadata' in 'metadata[0]' is an object, not an array");
	assert_int_equal(llm_json_get_str(*state, "metadata.name.first", &s), LLM_ETYPE);
	assert_string_equal(llm_last_error(),
			    "'metadata.name' in 'metadata.name.first' is a string, not an object");
}

static void test_json_malformed_paths_are_invalid(void **state)
{
	const char *bad[] = {"",
			     ".a",
			     "metadata..name",
			     "x..y",
			     "spec.containers[",
			     "spec.containers[x]",
			     "spec.containers[-1]",
			     "metadata.labels[\"unterminated]"};
	json_t *v;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		llm_err rc = llm_json_get(*state, bad[k], &v);

		/* The empty path names the root itself. */
		if (bad[k][0] == '\0') {
			assert_int_equal(rc, LLM_OK);
			assert_ptr_equal(v, *state);
			continue;
		}
		assert_int_equal(rc, LLM_EINVAL);
		assert_non_null(strstr(llm_last_error(), "malformed JSON path"));
	}
}

static void test_json_null_document_is_invalid(void **state)
{
	json_t *v;

	(void)state;
	assert_int_equal(llm_json_get(NULL, "a", &v), LLM_EINVAL);
}

static void test_json_str_or_falls_back(void **state)
{
	assert_string_equal(llm_json_str_or(*state, "metadata.name", "x"), "web");
	assert_string_equal(llm_json_str_or(*state, "metadata.uid", "x"), "x");
	assert_string_equal(llm_json_str_or(*state, "spec.replicas", "x"), "x");
}

static void test_json_load_file_reads_caps_and_names_the_file(void **state)
{
	char path[128];
	json_t *doc;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/config.json", tmpdir);
	assert_int_equal(llm_json_load_file(path, 1024, &doc), LLM_ENOTFOUND);
	assert_null(doc);
	assert_non_null(strstr(llm_last_error(), path));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"n_layer\": 2}", f);
	fclose(f);
	assert_int_equal(llm_json_load_file(path, 1024, &doc), LLM_OK);
	assert_int_equal(json_integer_value(json_object_get(doc, "n_layer")), 2);
	json_decref(doc);
	assert_int_equal(llm_json_load_file(path, 4, &doc), LLM_ETOOLARGE);
	assert_null(doc);
	assert_non_null(strstr(llm_last_error(), path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_parse_error_names_source_line_and_column),
		cmocka_unit_test(test_json_truncated_document_is_a_parse_error),
		cmocka_unit_test(test_json_duplicate_keys_are_rejected),
		cmocka_unit_test(test_json_input_over_cap_is_too_large),
		cmocka_unit_test(test_json_embedded_nul_is_rejected),
		cmocka_unit_test(test_json_null_document_is_invalid),
		cmocka_unit_test_setup_teardown(test_json_load_file_reads_caps_and_names_the_file,
						make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_json_typed_getters_read_nested_paths,
						parse_pod, free_pod),
		cmocka_unit_test_setup_teardown(test_json_quoted_keys_may_contain_dots, parse_pod,
						free_pod),
		cmocka_unit_test_setup_teardown(test_json_missing_field_is_not_found_with_path,
						parse_pod, free_pod),
		cmocka_unit_test_setup_teardown(test_json_wrong_types_are_reported_not_crashed,
						parse_pod, free_pod),
		cmocka_unit_test_setup_teardown(test_json_malformed_paths_are_invalid, parse_pod,
						free_pod),
		cmocka_unit_test_setup_teardown(test_json_str_or_falls_back, parse_pod, free_pod),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
