/* Unit tests for agent/status: the reporting interval taken from
 * LLMOPS_STATUS_INTERVAL (what the operator's --agent-status-interval sets).
 * Writing status is covered against a real API server by
 * tests/integration/test_status_ownership.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "status.h"

static const struct kc_gvr gvr = {"llmops.dev", "v1alpha1", "finetunejobs", true};

static llm_err reporter(const char *interval)
{
	agent_status *s = NULL;
	llm_err rc;

	if (interval)
		setenv("LLMOPS_STATUS_INTERVAL", interval, 1);
	else
		unsetenv("LLMOPS_STATUS_INTERVAL");
	/* no write happens before agent_status_set, so no client is needed */
	rc = agent_status_new(NULL, &gvr, "llmops.dev/v1alpha1", "FineTuneJob", "ns", "job", 0, &s);
	assert_true(rc == LLM_OK ? s != NULL : s == NULL);
	agent_status_destroy(s);
	return rc;
}

static void test_status_interval_from_the_environment(void **state)
{
	(void)state;
	assert_int_equal(reporter(NULL), LLM_OK);
	assert_int_equal(reporter(""), LLM_OK);
	assert_int_equal(reporter("250ms"), LLM_OK);
	assert_int_equal(reporter("2m"), LLM_OK);
}

static void test_status_interval_that_does_not_parse_names_the_variable(void **state)
{
	(void)state;
	assert_int_equal(reporter("5 parsecs"), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "LLMOPS_STATUS_INTERVAL"));
	assert_int_equal(reporter("2h"), LLM_EINVAL); /* over an hour */
	assert_non_null(strstr(llm_last_error(), "LLMOPS_STATUS_INTERVAL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_interval_from_the_environment),
		cmocka_unit_test(test_status_interval_that_does_not_parse_names_the_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
