/* Unit tests for the watch stream decoder (lib/kc_watch): events split at
 * every possible byte, several per read, blank keep-alive lines, and hostile
 * streams (oversized, truncated, malformed events). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "kc_watch.h"

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}}"
	"\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"2\"}"
	","
	"\"data\":{\"k\":\"line1\\nline2\"}}}\n"
	"\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n"
	"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"8\"}}"
	"}\n";

struct seen {
	int n;
	enum kc_event_type types[16];
	char rvs[16][16];
	int stop_after; /* 0: never stop */
};

static bool record(enum kc_event_type type, json_t *obj, void *data)
{
	struct seen *s = data;
	json_t *md = json_object_get(obj, "metadata");

	s->types[s->n] = type;
	snprintf(s->rvs[s->n], sizeof(s->rvs[0]), "%s",
		 json_string_value(json_object_get(md, "resourceVersion")));
	s->n++;
	return s->stop_after == 0 || s->n < s->stop_after;
}

static void check_all_seen(const struct seen *s)
{
	assert_int_equal(s->n, 4);
	assert_int_equal(s->types[0], KC_ADDED);
	assert_int_equal(s->types[1], KC_MODIFIED);
	assert_int_equal(s->types[2], KC_BOOKMARK);
	assert_int_equal(s->types[3], KC_DELETED);
	assert_string_equal(s->rvs[0], "1");
	assert_string_equal(s->rvs[3], "8");
}

static void test_watch_decodes_a_stream_in_one_read(void **state)
{
	struct kc_watch_decoder d;
	struct seen s = {0};

	(void)state;
	kc_watch_decoder_init(&d, 0, record, &s);
	assert_int_equal(kc_watch_decoder_feed(&d, stream, strlen(stream)), LLM_OK);
	assert_int_equal(kc_watch_decoder_finish(&d), LLM_OK);
	check_all_seen(&s);
	kc_watch_decoder_free(&d);
}

static void test_watch_decodes_events_split_at_every_byte(void **state)
{
	(void)state;
	for (size_t cut = 1; cut < strlen(stream); cut++) {
		struct kc_watch_decoder d;
		struct seen s = {0};

		kc_watch_decoder_init(&d, 0, record, &s);
		assert_int_equal(kc_watch_decoder_feed(&d, stream, cut), LLM_OK);
		assert_int_equal(kc_watch_decoder_feed(&d, stream + cut, strlen(stream) - cut),
				 LLM_OK);
		assert_int_equal(kc_watch_decoder_finish(&d), LLM_OK);
		check_all_seen(&s);
		kc_watch_decoder_free(&d);
	}
}

static void test_watch_decodes_byte_by_byte(void **state)
{
	struct kc_watch_decoder d;
	struct seen s = {0};

	(void)state;
	kc_watch_decoder_init(&d, 0, record, &s);
	for (size_t i = 0; i < strlen(stream); i++)
		assert_int_equal(kc_watch_decoder_feed(&d, stream + i, 1), LLM_OK);
	assert_int_equal(kc_watch_decoder_finish(&d), LLM_OK);
	check_all_seen(&s);
	kc_watch_decoder_free(&d);
}

static void test_watch_oversized_event_is_reported(void **state)
{
	struct kc_watch_decoder d;
	struct seen s = {0};
	size_t n = 4096;
	char *big = malloc(n);

	(void)state;
	memset(big, ' ', n);
	memcpy(big, "{\"type\":\"ADDED\",\"object\":{\"x\":\"", 30);
	kc_watch_decoder_init(&d, 1024, record, &s);
	assert_int_equal(kc_watch_decoder_feed(&d, stream, 60), LLM_OK);
	assert_int_equal(kc_watch_decoder_feed(&d, big, n), LLM_ETOOLARGE);
	assert_non_null(strstr(llm_last_error(), "over the limit of 1024 bytes"));
	assert_int_equal(s.n, 0);
	kc_watch_decoder_free(&d);
	free(big);
}

static void test_watch_truncated_stream_is_reported_at_finish(void **state)
{
	struct kc_watch_decoder d;
	struct seen s = {0};
	size_t first_two = (size_t)(strstr(stream, "\n\n") - stream) + 1;

	(void)state;
	kc_watch_decoder_init(&d, 0, record, &s);
	assert_int_equal(kc_watch_decoder_feed(&d, stream, first_two + 20), LLM_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(kc_watch_decoder_finish(&d), LLM_EPARSE);
	assert_non_null(strstr(llm_last_error(), "ended inside event 3"));
	kc_watch_decoder_free(&d);
}

static void test_watch_malformed_lines_are_parse_errors(void **state)
{
	const char *bad[] = {
		"{\"type\":\"ADDED\",\"object\":{\"a\":1}\n", /* unbalanced */
		"{\"type\":\"EXPLODED\",\"object\":{}}\n",    /* unknown type */
		"{\"type\":\"ADDED\"}\n",		      /* no object */
		"{\"type\":\"ADDED\",\"object\":[]}\n",	      /* object not an object */
		"[1,2,3]\n",
		"not json at all\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kc_watch_decoder d;
		struct seen s = {0};

		kc_watch_decoder_init(&d, 0, record, &s);
		assert_int_equal(kc_watch_decoder_feed(&d, bad[i], strlen(bad[i])), LLM_EPARSE);
		assert_non_null(strstr(llm_last_error(), "watch event 1"));
		assert_int_equal(s.n, 0);
		kc_watch_decoder_free(&d);
	}
}

static void test_watch_handler_can_stop_the_stream(void **state)
{
	struct kc_watch_decoder d;
	struct seen s = {.stop_after = 2};

	(void)state;
	kc_watch_decoder_init(&d, 0, record, &s);
	assert_int_equal(kc_watch_decoder_feed(&d, stream, strlen(stream)), LLM_OK);
	assert_true(d.stopped);
	assert_int_equal(s.n, 2);
	kc_watch_decoder_free(&d);
}

static void test_watch_event_type_names_round_trip(void **state)
{
	enum kc_event_type t;

	(void)state;
	for (int i = KC_ADDED; i <= KC_ERROR; i++) {
		assert_int_equal(kc_event_type_parse(kc_event_type_name(i), &t), LLM_OK);
		assert_int_equal(t, i);
	}
	assert_int_equal(kc_event_type_parse("added", &t), LLM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_decodes_a_stream_in_one_read),
		cmocka_unit_test(test_watch_decodes_events_split_at_every_byte),
		cmocka_unit_test(test_watch_decodes_byte_by_byte),
		cmocka_unit_test(test_watch_oversized_event_is_reported),
		cmocka_unit_test(test_watch_truncated_stream_is_reported_at_finish),
		cmocka_unit_test(test_watch_malformed_lines_are_parse_errors),
		cmocka_unit_test(test_watch_handler_can_stop_the_stream),
		cmocka_unit_test(test_watch_event_type_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
