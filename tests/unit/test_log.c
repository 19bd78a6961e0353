/* Unit tests for lib/llm_log: levels, both formats, escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_log.h"

static char *captured;
static size_t captured_len;
static FILE *sink;

static int open_sink(void **state)
{
	(void)state;
	sink = open_memstream(&captured, &captured_len);
	llm_log_set_output(sink);
	llm_log_set_level(LLM_LOG_INFO);
	llm_log_set_format(LLM_LOG_TEXT);
	return sink ? 0 : -1;
}

static int close_sink(void **state)
{
	(void)state;
	llm_log_set_output(NULL);
	fclose(sink);
	free(captured);
	captured = NULL;
	return 0;
}

static const char *output(void)
{
	fflush(sink);
	return captured ? captured : "";
}

static void test_log_records_below_level_are_dropped(void **state)
{
	(void)state;
	llm_debug("test", "hidden %d", 1);
	assert_string_equal(output(), "");
	llm_log_set_level(LLM_LOG_DEBUG);
	llm_debug("test", "shown %d", 2);
	assert_non_null(strstr(output(), "DEBUG test: shown 2\n"));
	assert_false(llm_log_enabled(LLM_LOG_DEBUG - 1));
}

static void test_log_text_format_has_timestamp_level_logger_and_fields(void **state)
{
	const char *kv[] = {"controller", "finetunejob", "key", "ns/a", NULL};

	(void)state;
	llm_log_kv(LLM_LOG_WARN, "operator", kv, "requeue in %ds", 5);
	/* 2026-11-27T20:49:56.123Z WARN  operator: requeue in 5s controller=... */
	assert_int_equal(output()[4], '-');
	assert_int_equal(output()[23], 'Z');
	assert_non_null(strstr(output(), "Z WARN  operator: requeue in 5s "
					 "controller=finetunejob key=ns/a\n"));
}

static void test_log_json_format_is_one_valid_object_per_line(void **state)
{
	const char *kv[] = {"path", "a\"b\nc", NULL};
	json_error_t err;
	json_t *rec;
	char *nl;

	(void)state;
	llm_log_set_format(LLM_LOG_JSON);
	llm_log_kv(LLM_LOG_ERROR, "watch", kv, "quote \" and newline \n inside");
	llm_info("watch", "second");
	nl = strchr(output(), '\n');
	assert_non_null(nl);
	rec = json_loadb(output(), (size_t)(nl - output()), 0, &err);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "level")), "error");
	assert_string_equal(json_string_value(json_object_get(rec, "logger")), "watch");
	assert_string_equal(json_string_value(json_object_get(rec, "msg")),
			    "quote \" and newline \n inside");
	assert_string_equal(json_string_value(json_object_get(rec, "path")), "a\"b\nc");
	assert_non_null(json_object_get(rec, "ts"));
	json_decref(rec);
	assert_non_null(strstr(nl + 1, "\"msg\":\"second\"}\n"));
}

static void test_log_parses_level_and_format_names(void **state)
{
	llm_log_level level;
	llm_log_format format;

	(void)state;
	assert_int_equal(llm_log_parse_level("debug", &level), LLM_OK);
	assert_int_equal(level, LLM_LOG_DEBUG);
	assert_int_equal(llm_log_parse_level("warning", &level), LLM_OK);
	assert_int_equal(level, LLM_LOG_WARN);
	assert_int_equal(llm_log_parse_level("verbose", &level), LLM_EINVAL);
	assert_string_equal(llm_last_error(),
			    "unknown log level 'verbose' (use debug, info, warn or error)");
	assert_int_equal(llm_log_parse_format("json", &format), LLM_OK);
	assert_int_equal(format, LLM_LOG_JSON);
	assert_int_equal(llm_log_parse_format("xml", &format), LLM_EINVAL);
}

static void test_log_long_message_is_truncated_not_overflowed(void **state)
{
	char big[10000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	llm_info("test", "%s", big);
	assert_true(strlen(output()) > 4000);
	assert_true(strlen(output()) < 4200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_records_below_level_are_dropped, open_sink,
						close_sink),
		cmocka_unit_test_setup_teardown(
			test_log_text_format_has_timestamp_level_logger_and_fields, open_sink,
			close_sink),
		cmocka_unit_test_setup_teardown(test_log_json_format_is_one_valid_object_per_line,
						open_sink, close_sink),
		cmocka_unit_test_setup_teardown(test_log_parses_level_and_format_names, open_sink,
						close_sink),
		cmocka_unit_test_setup_teardown(test_log_long_message_is_truncated_not_overflowed,
						open_sink, close_sink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
