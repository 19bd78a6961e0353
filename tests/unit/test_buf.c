/* Unit tests for lib/llm_buf: growth, the cap, and ownership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"

static void test_buf_empty_buffer_reads_as_empty_string(void **state)
{
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 16);
	assert_string_equal(llm_buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	llm_buf_free(&b);
}

static void test_buf_appends_grow_and_stay_terminated(void **state)
{
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(llm_buf_puts(&b, "abc"), LLM_OK);
	assert_int_equal(b.len, 3000);
	assert_int_equal(strlen(llm_buf_str(&b)), 3000);
	assert_memory_equal(b.data + 2997, "abc", 4);
	llm_buf_free(&b);
}

static void test_buf_append_past_cap_fails_and_keeps_content(void **state)
{
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 8);
	assert_int_equal(llm_buf_puts(&b, "12345"), LLM_OK);
	assert_int_equal(llm_buf_puts(&b, "6789"), LLM_ETOOLARGE);
	assert_non_null(strstr(llm_last_error(), "cap of 8 bytes"));
	assert_string_equal(llm_buf_str(&b), "12345");
	assert_int_equal(llm_buf_puts(&b, "678"), LLM_OK);
	assert_string_equal(llm_buf_str(&b), "12345678");
	assert_true(b.cap <= 9);
	llm_buf_free(&b);
}

static void test_buf_printf_formats_and_respects_cap(void **state)
{
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 10);
	assert_int_equal(llm_buf_printf(&b, "%d-%s", 42, "ok"), LLM_OK);
	assert_string_equal(llm_buf_str(&b), "42-ok");
	assert_int_equal(llm_buf_printf(&b, "%s", "toolong"), LLM_ETOOLARGE);
	assert_string_equal(llm_buf_str(&b), "42-ok");
	llm_buf_free(&b);
}

static void test_buf_binary_data_with_nul_bytes(void **state)
{
	const char data[] = {'a', '\0', 'b'};
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 100);
	assert_int_equal(llm_buf_append(&b, data, 3), LLM_OK);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, data, 3);
	llm_buf_free(&b);
}

static void test_buf_reset_and_steal(void **state)
{
	llm_buf b;
	char *p;

	(void)state;
	llm_buf_init(&b, 100);
	llm_buf_puts(&b, "hello");
	llm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(llm_buf_str(&b), "");
	llm_buf_puts(&b, "world");
	p = llm_buf_steal(&b);
	assert_string_equal(p, "world");
	assert_null(b.data);
	assert_int_equal(b.max, 100);
	free(p);
}

static void test_buf_zero_cap_refuses_everything_but_empty(void **state)
{
	llm_buf b;

	(void)state;
	llm_buf_init(&b, 0);
	assert_int_equal(llm_buf_append(&b, "", 0), LLM_OK);
	assert_int_equal(llm_buf_append(&b, "x", 1), LLM_ETOOLARGE);
	llm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_empty_buffer_reads_as_empty_string),
		cmocka_unit_test(test_buf_appends_grow_and_stay_terminated),
		cmocka_unit_test(test_buf_append_past_cap_fails_and_keeps_content),
		cmocka_unit_test(test_buf_printf_formats_and_respects_cap),
		cmocka_unit_test(test_buf_binary_data_with_nul_bytes),
		cmocka_unit_test(test_buf_reset_and_steal),
		cmocka_unit_test(test_buf_zero_cap_refuses_everything_but_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
