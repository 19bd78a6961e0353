/* Unit tests for lib/llm_err: stable codes, names and the detail message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "llm_err.h"

static void test_err_codes_keep_their_numbers(void **state)
{
	(void)state;
	/* These numbers appear in logs and status: they must never change. */
	assert_int_equal(LLM_OK, 0);
	assert_int_equal(LLM_ENOMEM, 1);
	assert_int_equal(LLM_ETOOLARGE, 3);
	assert_int_equal(LLM_ENOTFOUND, 4);
	assert_int_equal(LLM_ECONFLICT, 6);
	assert_int_equal(LLM_EGONE, 9);
	assert_int_equal(LLM_EUNSUPPORTED, 16);
}

static void test_err_every_code_has_a_distinct_name_and_text(void **state)
{
	(void)state;
	for (int i = 0; i < LLM_ERR_COUNT_; i++) {
		assert_non_null(strstr(llm_errname(i), "LLM_"));
		assert_string_not_equal(llm_strerror(i), "unknown error");
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(llm_errname(i), llm_errname(j));
			assert_string_not_equal(llm_strerror(i), llm_strerror(j));
		}
	}
}

static void test_err_unknown_codes_are_named_unknown(void **state)
{
	(void)state;
	assert_string_equal(llm_strerror(-1), "unknown error");
	assert_string_equal(llm_strerror(LLM_ERR_COUNT_), "unknown error");
	assert_string_equal(llm_errname(9999), "LLM_EUNKNOWN");
	assert_string_equal(llm_strerror(LLM_ENOTFOUND), "not found");
}

static void test_err_fail_records_detail_and_returns_code(void **state)
{
	(void)state;
	llm_clear_error();
	assert_string_equal(llm_last_error(), "");
	assert_int_equal(llm_fail(LLM_EPARSE, "%s:%d: bad", "x.yaml", 3), LLM_EPARSE);
	assert_string_equal(llm_last_error(), "x.yaml:3: bad");
	llm_clear_error();
	assert_string_equal(llm_last_error(), "");
}

static void test_err_long_detail_is_truncated_not_overflowed(void **state)
{
	char big[4096];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	llm_fail(LLM_EINVAL, "%s", big);
	assert_int_equal(strlen(llm_last_error()), 1023);
}

static void *fail_in_thread(void *arg)
{
	(void)arg;
	llm_fail(LLM_EIO, "from the other thread");
	return NULL;
}

static void test_err_wrap_prefixes_the_current_detail(void **state)
{
	char big[2000];

	(void)state;
	llm_fail(LLM_EIO, "connect: refused");
	assert_int_equal(llm_wrap(LLM_ETIMEDOUT, "rank %d at %s", 1, "h:29500"), LLM_ETIMEDOUT);
	assert_string_equal(llm_last_error(), "rank 1 at h:29500: connect: refused");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	llm_fail(LLM_EIO, "%s", big);
	llm_wrap(LLM_EIO, "ctx");
	assert_int_equal(strlen(llm_last_error()), 1023);
	assert_memory_equal(llm_last_error(), "ctx: xxx", 8);
	llm_fail(LLM_EIO, "tail");
	llm_wrap(LLM_EIO, "%s", big);
	assert_int_equal(strlen(llm_last_error()), 1023);
}

static void test_err_detail_is_per_thread(void **state)
{
	pthread_t t;

	(void)state;
	llm_fail(LLM_EINVAL, "main thread");
	pthread_create(&t, NULL, fail_in_thread, NULL);
	pthread_join(t, NULL);
	assert_string_equal(llm_last_error(), "main thread");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_codes_keep_their_numbers),
		cmocka_unit_test(test_err_every_code_has_a_distinct_name_and_text),
		cmocka_unit_test(test_err_unknown_codes_are_named_unknown),
		cmocka_unit_test(test_err_fail_records_detail_and_returns_code),
		cmocka_unit_test(test_err_long_detail_is_truncated_not_overflowed),
		cmocka_unit_test(test_err_wrap_prefixes_the_current_detail),
		cmocka_unit_test(test_err_detail_is_per_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
