/* Unit tests for lib/llm_opts: one table drives parsing, defaults and help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "llm_opts.h"

static struct llm_opt table[] = {
	{"workers", 'w', "N", "2", "reconcile workers", NULL},
	{"kubeconfig", 0, "FILE", NULL, "kubeconfig to use", NULL},
	{"leader-elect", 0, NULL, NULL, "enable leader election", NULL},
	{"help", 'h', NULL, NULL, "print help", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static llm_err parse(int argc, char **argv, int *next)
{
	return llm_opts_parse(table, argc, argv, 1, next);
}

static void test_opts_defaults_apply_when_absent(void **state)
{
	char *argv[] = {"prog"};
	int next;
	long n;

	(void)state;
	assert_int_equal(parse(1, argv, &next), LLM_OK);
	assert_int_equal(next, 1);
	assert_string_equal(llm_opts_get(table, "workers"), "2");
	assert_null(llm_opts_get(table, "kubeconfig"));
	assert_false(llm_opts_flag(table, "leader-elect"));
	assert_int_equal(llm_opts_long(table, "workers", 1, 64, &n), LLM_OK);
	assert_int_equal(n, 2);
}

static void test_opts_all_value_forms_are_accepted(void **state)
{
	char *argv[] = {"prog", "--workers=8", "--kubeconfig", "/k", "--leader-elect", "role"};
	char *argv2[] = {"prog", "-w", "3", "--leader-elect=false"};
	int next;

	(void)state;
	assert_int_equal(parse(6, argv, &next), LLM_OK);
	assert_string_equal(llm_opts_get(table, "workers"), "8");
	assert_string_equal(llm_opts_get(table, "kubeconfig"), "/k");
	assert_true(llm_opts_flag(table, "leader-elect"));
	assert_int_equal(next, 5);
	assert_int_equal(parse(4, argv2, &next), LLM_OK);
	assert_string_equal(llm_opts_get(table, "workers"), "3");
	assert_false(llm_opts_flag(table, "leader-elect"));
	assert_null(llm_opts_get(table, "kubeconfig"));
}

static void test_opts_double_dash_ends_options(void **state)
{
	char *argv[] = {"prog", "--", "--workers=8"};
	int next;

	(void)state;
	assert_int_equal(parse(3, argv, &next), LLM_OK);
	assert_int_equal(next, 2);
	assert_string_equal(llm_opts_get(table, "workers"), "2");
}

static void test_opts_errors_name_the_option(void **state)
{
	char *unknown[] = {"prog", "--worker=3"};
	char *missing[] = {"prog", "--kubeconfig"};
	char *badflag[] = {"prog", "--leader-elect=yes"};
	int next;

	(void)state;
	assert_int_equal(parse(2, unknown, &next), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "unknown option '--worker=3' (see --help)");
	assert_int_equal(parse(2, missing, &next), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "--kubeconfig needs a value (FILE)");
	assert_int_equal(parse(2, badflag, &next), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "--leader-elect takes true or false, not 'yes'");
}

static void test_opts_integers_are_checked_whole_and_in_range(void **state)
{
	long v = 7;

	(void)state;
	assert_int_equal(llm_parse_long("12", "n", 0, 100, &v), LLM_OK);
	assert_int_equal(v, 12);
	assert_int_equal(llm_parse_long("12x", "--workers", 0, 100, &v), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "--workers: '12x' is not an integer");
	assert_int_equal(llm_parse_long("", "n", 0, 100, &v), LLM_EINVAL);
	assert_int_equal(llm_parse_long(NULL, "n", 0, 100, &v), LLM_EINVAL);
	assert_int_equal(llm_parse_long("101", "n", 0, 100, &v), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "n: 101 is outside [0, 100]");
	assert_int_equal(llm_parse_long("99999999999999999999", "n", 0, 100, &v), LLM_EINVAL);
	assert_int_equal(v, 12);
}

static void test_opts_durations_take_units_and_ranges(void **state)
{
	long ms = -1;

	(void)state;
	assert_int_equal(llm_parse_duration_ms("15s", "d", 1, 100000, &ms), LLM_OK);
	assert_int_equal(ms, 15000);
	assert_int_equal(llm_parse_duration_ms("500ms", "d", 1, 100000, &ms), LLM_OK);
	assert_int_equal(ms, 500);
	assert_int_equal(llm_parse_duration_ms("2m", "d", 1, 1000000, &ms), LLM_OK);
	assert_int_equal(ms, 120000);
	assert_int_equal(llm_parse_duration_ms("1h", "d", 1, 10000000, &ms), LLM_OK);
	assert_int_equal(ms, 3600000);
	assert_int_equal(llm_parse_duration_ms("7", "d", 1, 100000, &ms), LLM_OK);
	assert_int_equal(ms, 7000);
	assert_int_equal(llm_parse_duration_ms("fast", "--lease", 1, 100000, &ms), LLM_EINVAL);
	assert_string_equal(llm_last_error(),
			    "--lease: 'fast' is not a duration (like 15s or 500ms)");
	assert_int_equal(llm_parse_duration_ms("5d", "--lease", 1, 100000, &ms), LLM_EINVAL);
	assert_string_equal(llm_last_error(),
			    "--lease: '5d' has an unknown unit (use ms, s, m or h)");
	assert_int_equal(llm_parse_duration_ms("-1s", "d", 1, 100000, &ms), LLM_EINVAL);
	assert_int_equal(llm_parse_duration_ms("0s", "d", 1, 100000, &ms), LLM_EINVAL);
	assert_int_equal(llm_parse_duration_ms("99999999999h", "d", 1, 100000, &ms), LLM_EINVAL);
	assert_int_equal(llm_parse_duration_ms(NULL, "d", 1, 100000, &ms), LLM_EINVAL);
	assert_int_equal(ms, 7000);
}

static void test_opts_usage_lists_every_option_with_default(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	llm_opts_usage(f, table);
	fclose(f);
	assert_non_null(strstr(text, "-w, --workers N"));
	assert_non_null(strstr(text, "reconcile workers (default: 2)"));
	assert_non_null(strstr(text, "--kubeconfig FILE"));
	assert_non_null(strstr(text, "--leader-elect"));
	assert_non_null(strstr(text, "-h, --help"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_defaults_apply_when_absent),
		cmocka_unit_test(test_opts_all_value_forms_are_accepted),
		cmocka_unit_test(test_opts_double_dash_ends_options),
		cmocka_unit_test(test_opts_errors_name_the_option),
		cmocka_unit_test(test_opts_integers_are_checked_whole_and_in_range),
		cmocka_unit_test(test_opts_durations_take_units_and_ranges),
		cmocka_unit_test(test_opts_usage_lists_every_option_with_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
