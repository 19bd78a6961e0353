/* Unit tests for lib/llm_metrics: exposition text, validation, concurrency,
 * process metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_metrics.h"

#define RENDER_MAX (1 << 20)

static int new_registry(void **state)
{
	*state = llm_metrics_new();
	return *state ? 0 : -1;
}

static int free_registry(void **state)
{
	llm_metrics_destroy(*state);
	return 0;
}

/* Renders r into a fresh string the caller frees. */
static char *render(llm_metrics *r)
{
	llm_buf b;

	llm_buf_init(&b, RENDER_MAX);
	assert_int_equal(llm_metrics_render(r, &b), LLM_OK);
	if (!b.data)
		return calloc(1, 1);
	return llm_buf_steal(&b);
}

static void assert_renders(llm_metrics *r, const char *want)
{
	char *got = render(r);

	assert_string_equal(got, want);
	free(got);
}

/* The value of the first sample line that starts with `name `; NaN if none. */
static double sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static void test_metrics_counter_with_labels_renders_exact_text(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;

	assert_int_equal(llm_metrics_counter(r, "controller_runtime_reconcile_total",
					     "Total number of reconciliations per controller",
					     (const char *[]){"controller", "result", NULL}, &c),
			 LLM_OK);
	assert_int_equal(llm_counter_add(c, (const char *[]){"finetunejob", "success"}, 1), LLM_OK);
	assert_int_equal(llm_counter_add(c, (const char *[]){"ragindex", "error"}, 1), LLM_OK);
	assert_int_equal(llm_counter_add(c, (const char *[]){"finetunejob", "success"}, 2), LLM_OK);
	assert_renders(r, "# HELP controller_runtime_reconcile_total Total number of "
			  "reconciliations per controller\n"
			  "# TYPE controller_runtime_reconcile_total counter\n"
			  "controller_runtime_reconcile_total{controller=\"finetunejob\","
			  "result=\"success\"} 3\n"
			  "controller_runtime_reconcile_total{controller=\"ragindex\","
			  "result=\"error\"} 1\n");
}

static void test_metrics_unlabelled_gauge_renders_zero_then_set_and_add(void **state)
{
	llm_metrics *r = *state;
	llm_gauge *g;

	assert_int_equal(llm_metrics_gauge(r, "leader_election_master_status", "Leader?", NULL, &g),
			 LLM_OK);
	assert_renders(r, "# HELP leader_election_master_status Leader?\n"
			  "# TYPE leader_election_master_status gauge\n"
			  "leader_election_master_status 0\n");
	assert_int_equal(llm_gauge_set(g, NULL, 5), LLM_OK);
	assert_int_equal(llm_gauge_add(g, NULL, -1.5), LLM_OK);
	assert_renders(r, "# HELP leader_election_master_status Leader?\n"
			  "# TYPE leader_election_master_status gauge\n"
			  "leader_election_master_status 3.5\n");
}

static double depth_fn(void *data)
{
	return (double)*(int *)data;
}

static void test_metrics_callback_gauge_is_evaluated_at_render(void **state)
{
	llm_metrics *r = *state;
	llm_gauge *g;
	int depth = 7;
	double v;

	assert_int_equal(llm_metrics_gauge(r, "workqueue_depth", "Current depth of workqueue",
					   (const char *[]){"name", NULL}, &g),
			 LLM_OK);
	assert_int_equal(llm_gauge_set_func(g, (const char *[]){"finetunejob"}, depth_fn, &depth),
			 LLM_OK);
	assert_renders(r, "# HELP workqueue_depth Current depth of workqueue\n"
			  "# TYPE workqueue_depth gauge\n"
			  "workqueue_depth{name=\"finetunejob\"} 7\n");
	depth = 2;
	assert_int_equal(llm_gauge_value(g, (const char *[]){"finetunejob"}, &v), LLM_OK);
	assert_true(v == 2);
}

static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
	llm_metrics *r = *state;
	llm_histogram *h;
	const double b[] = {0.1, 0.5, 1};

	assert_int_equal(llm_metrics_histogram(r, "reconcile_time_seconds", "Time",
					       (const char *[]){"controller", NULL}, b, 3, &h),
			 LLM_OK);
	assert_int_equal(llm_histogram_observe(h, (const char *[]){"x"}, 0.0625), LLM_OK);
	assert_int_equal(llm_histogram_observe(h, (const char *[]){"x"}, 0.5), LLM_OK);
	assert_int_equal(llm_histogram_observe(h, (const char *[]){"x"}, 0.75), LLM_OK);
	assert_int_equal(llm_histogram_observe(h, (const char *[]){"x"}, 3), LLM_OK);
	assert_renders(r, "# HELP reconcile_time_seconds Time\n"
			  "# TYPE reconcile_time_seconds histogram\n"
			  "reconcile_time_seconds_bucket{controller=\"x\",le=\"0.1\"} 1\n"
			  "reconcile_time_seconds_bucket{controller=\"x\",le=\"0.5\"} 2\n"
			  "reconcile_time_seconds_bucket{controller=\"x\",le=\"1\"} 3\n"
			  "reconcile_time_seconds_bucket{controller=\"x\",le=\"+Inf\"} 4\n"
			  "reconcile_time_seconds_sum{controller=\"x\"} 4.3125\n"
			  "reconcile_time_seconds_count{controller=\"x\"} 4\n");
}

static void test_metrics_unlabelled_histogram_uses_default_buckets(void **state)
{
	llm_metrics *r = *state;
	llm_histogram *h;
	unsigned long long count;
	double sum;
	char *text;

	assert_int_equal(llm_metrics_histogram(r, "h", "", NULL, NULL, 0, &h), LLM_OK);
	assert_int_equal(llm_histogram_observe(h, NULL, 0.3), LLM_OK);
	text = render(r);
	assert_non_null(strstr(text, "h_bucket{le=\"0.005\"} 0\n"));
	assert_non_null(strstr(text, "h_bucket{le=\"0.25\"} 0\nh_bucket{le=\"0.5\"} 1\n"));
	assert_non_null(strstr(text, "h_bucket{le=\"10\"} 1\nh_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(text, "h_sum 0.3\nh_count 1\n"));
	free(text);
	assert_int_equal(llm_histogram_stats(h, NULL, &count, &sum), LLM_OK);
	assert_true(count == 1 && sum == 0.3);
}

static void test_metrics_reconcile_buckets_render_41_bucket_lines(void **state)
{
	llm_metrics *r = *state;
	llm_histogram *h;
	char *text;
	int lines = 0;

	assert_int_equal(llm_metrics_histogram(r, "controller_runtime_reconcile_time_seconds", "",
					       NULL, llm_metrics_reconcile_buckets,
					       LLM_METRICS_RECONCILE_BUCKETS_LEN, &h),
			 LLM_OK);
	text = render(r);
	for (const char *p = text; (p = strstr(p, "_bucket{")) != NULL; p++)
		lines++;
	assert_int_equal(lines, 41);
	assert_non_null(strstr(text, "{le=\"0.15\"} 0\n"));
	assert_non_null(strstr(text, "{le=\"60\"} 0\n"));
	free(text);
}

static void test_metrics_histogram_buckets_must_increase(void **state)
{
	llm_metrics *r = *state;
	llm_histogram *h;
	const double bad[] = {1, 1};
	const double nan_bound[] = {NAN};
	const double with_inf[] = {1, INFINITY};

	assert_int_equal(llm_metrics_histogram(r, "h1", "", NULL, bad, 2, &h), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "strictly increasing"));
	assert_int_equal(llm_metrics_histogram(r, "h2", "", NULL, nan_bound, 1, &h), LLM_EINVAL);
	assert_int_equal(llm_metrics_histogram(r, "h3", "", NULL, with_inf, 2, &h), LLM_OK);
	assert_renders(r, "# HELP h3 \n# TYPE h3 histogram\nh3_bucket{le=\"1\"} 0\n"
			  "h3_bucket{le=\"+Inf\"} 0\nh3_sum 0\nh3_count 0\n");
}

static void test_metrics_label_values_and_help_are_escaped(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;

	assert_int_equal(
		llm_metrics_counter(r, "c", "a \\ b\nc \"q\"", (const char *[]){"v", NULL}, &c),
		LLM_OK);
	assert_int_equal(llm_counter_add(c, (const char *[]){"x\\y\"z\nw"}, 1), LLM_OK);
	assert_renders(r, "# HELP c a \\\\ b\\nc \"q\"\n"
			  "# TYPE c counter\n"
			  "c{v=\"x\\\\y\\\"z\\nw\"} 1\n");
}

static void test_metrics_invalid_names_are_rejected(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	llm_histogram *h;

	assert_int_equal(llm_metrics_counter(r, "1abc", "", NULL, &c), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "'1abc'"));
	assert_null(c);
	assert_int_equal(llm_metrics_counter(r, "a-b", "", NULL, &c), LLM_EINVAL);
	assert_int_equal(llm_metrics_counter(r, "", "", NULL, &c), LLM_EINVAL);
	assert_int_equal(llm_metrics_counter(r, "ok", "", (const char *[]){"__x", NULL}, &c),
			 LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "'__x'"));
	assert_int_equal(llm_metrics_counter(r, "ok", "", (const char *[]){"a:b", NULL}, &c),
			 LLM_EINVAL);
	assert_int_equal(llm_metrics_counter(r, "ok", "", (const char *[]){"a", "a", NULL}, &c),
			 LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "duplicate label 'a'"));
	assert_int_equal(
		llm_metrics_histogram(r, "ok", "", (const char *[]){"le", NULL}, NULL, 0, &h),
		LLM_EINVAL);
	/* Colons are fine in metric names, and none of the failures registered. */
	assert_int_equal(llm_metrics_counter(r, "ok:sub_total", "", NULL, &c), LLM_OK);
	assert_int_equal(llm_metrics_counter(r, "ok", "", NULL, &c), LLM_OK);
}

static void test_metrics_duplicate_name_is_eexist(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	llm_gauge *g;

	assert_int_equal(llm_metrics_counter(r, "workqueue_adds_total", "", NULL, &c), LLM_OK);
	assert_int_equal(llm_metrics_gauge(r, "workqueue_adds_total", "", NULL, &g), LLM_EEXIST);
	assert_non_null(strstr(llm_last_error(), "workqueue_adds_total"));
	assert_null(g);
}

static void test_metrics_labelled_family_without_children_renders_nothing(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;

	assert_int_equal(llm_metrics_counter(r, "c", "", (const char *[]){"x", NULL}, &c), LLM_OK);
	assert_renders(r, "");
}

static void test_metrics_counter_rejects_negative_and_nan(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	double v;

	assert_int_equal(llm_metrics_counter(r, "c", "", NULL, &c), LLM_OK);
	assert_int_equal(llm_counter_add(c, NULL, -1), LLM_EINVAL);
	assert_int_equal(llm_counter_add(c, NULL, NAN), LLM_EINVAL);
	assert_int_equal(llm_counter_value(c, NULL, &v), LLM_OK);
	assert_true(v == 0);
}

static void test_metrics_missing_label_value_is_invalid(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;

	assert_int_equal(llm_metrics_counter(r, "c", "", (const char *[]){"a", "b", NULL}, &c),
			 LLM_OK);
	assert_int_equal(llm_counter_add(c, NULL, 1), LLM_EINVAL);
	assert_int_equal(llm_counter_add(c, (const char *[]){"x", NULL}, 1), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "label 'b'"));
	assert_renders(r, "");
}

static void test_metrics_value_of_unknown_child_is_not_found(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	double v;

	assert_int_equal(llm_metrics_counter(r, "c", "", (const char *[]){"a", NULL}, &c), LLM_OK);
	assert_int_equal(llm_counter_value(c, (const char *[]){"nope"}, &v), LLM_ENOTFOUND);
}

static void test_metrics_many_children_stay_distinct(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	char name[16];
	double v;

	assert_int_equal(llm_metrics_counter(r, "c", "", (const char *[]){"k", NULL}, &c), LLM_OK);
	for (int round = 1; round <= 2; round++)
		for (int i = 0; i < 1000; i++) {
			snprintf(name, sizeof(name), "k%d", i);
			assert_int_equal(llm_counter_add(c, (const char *[]){name}, i), LLM_OK);
		}
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(llm_counter_value(c, (const char *[]){name}, &v), LLM_OK);
		assert_true(v == 2.0 * i);
	}
}

static void test_metrics_render_over_cap_is_too_large(void **state)
{
	llm_metrics *r = *state;
	llm_counter *c;
	llm_buf b;

	assert_int_equal(llm_metrics_counter(r, "a_rather_long_metric_name", "help", NULL, &c),
			 LLM_OK);
	llm_buf_init(&b, 32);
	assert_int_equal(llm_metrics_render(r, &b), LLM_ETOOLARGE);
	llm_buf_free(&b);
}

static void test_metrics_process_metrics_are_plausible(void **state)
{
	llm_metrics *r = *state;
	double now = (double)time(NULL);
	char *text;

	assert_int_equal(llm_metrics_register_process(r), LLM_OK);
	text = render(r);
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));
	assert_true(sample(text, "process_resident_memory_bytes") > 1e6);
	assert_true(sample(text, "process_virtual_memory_bytes") >=
		    sample(text, "process_resident_memory_bytes"));
	assert_true(sample(text, "process_open_fds") >= 3);
	assert_true(sample(text, "process_max_fds") >= sample(text, "process_open_fds"));
	assert_true(sample(text, "process_cpu_seconds_total") >= 0);
	assert_true(sample(text, "process_virtual_memory_max_bytes") > 0);
	assert_true(sample(text, "process_start_time_seconds") > now - 3600);
	assert_true(sample(text, "process_start_time_seconds") <= now + 1);
	free(text);
	assert_int_equal(llm_metrics_register_process(r), LLM_EEXIST);
}

struct worker {
	llm_counter *c;
	llm_histogram *h;
};

static void *increment(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 100000; i++) {
		llm_counter_add(w->c, (const char *[]){i % 2 ? "odd" : "even"}, 1);
		llm_histogram_observe(w->h, NULL, 1);
	}
	return NULL;
}

static void test_metrics_concurrent_increments_sum_exactly(void **state)
{
	llm_metrics *r = *state;
	struct worker w;
	pthread_t t[4];
	unsigned long long count;
	double odd, even, sum;

	assert_int_equal(llm_metrics_counter(r, "c", "", (const char *[]){"k", NULL}, &w.c),
			 LLM_OK);
	assert_int_equal(llm_metrics_histogram(r, "h", "", NULL, NULL, 0, &w.h), LLM_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, increment, &w), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(llm_counter_value(w.c, (const char *[]){"odd"}, &odd), LLM_OK);
	assert_int_equal(llm_counter_value(w.c, (const char *[]){"even"}, &even), LLM_OK);
	assert_true(odd == 200000 && even == 200000);
	assert_int_equal(llm_histogram_stats(w.h, NULL, &count, &sum), LLM_OK);
	assert_true(count == 400000 && sum == 400000);
}

static void test_metrics_float_formatting(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(llm_metrics_format_value(1, buf, sizeof(buf)), "1");
	assert_string_equal(llm_metrics_format_value(0, buf, sizeof(buf)), "0");
	assert_string_equal(llm_metrics_format_value(-0.0, buf, sizeof(buf)), "0");
	assert_string_equal(llm_metrics_format_value(0.5, buf, sizeof(buf)), "0.5");
	assert_string_equal(llm_metrics_format_value(0.1, buf, sizeof(buf)), "0.1");
	assert_string_equal(llm_metrics_format_value(1e-07, buf, sizeof(buf)), "1e-07");
	assert_string_equal(llm_metrics_format_value(123456789, buf, sizeof(buf)), "123456789");
	assert_string_equal(llm_metrics_format_value(-42, buf, sizeof(buf)), "-42");
	assert_string_equal(llm_metrics_format_value(1.5e300, buf, sizeof(buf)), "1.5e+300");
	assert_string_equal(llm_metrics_format_value(INFINITY, buf, sizeof(buf)), "+Inf");
	assert_string_equal(llm_metrics_format_value(-INFINITY, buf, sizeof(buf)), "-Inf");
	assert_string_equal(llm_metrics_format_value(NAN, buf, sizeof(buf)), "NaN");
	/* Shortest form that reads back exactly. */
	assert_true(strtod(llm_metrics_format_value(0.1 + 0.2, buf, sizeof(buf)), NULL) ==
		    0.1 + 0.2);
	assert_string_equal(buf, "0.30000000000000004");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, new_registry, free_registry)
	const struct CMUnitTest tests[] = {
		T(test_metrics_counter_with_labels_renders_exact_text),
		T(test_metrics_unlabelled_gauge_renders_zero_then_set_and_add),
		T(test_metrics_callback_gauge_is_evaluated_at_render),
		T(test_metrics_histogram_buckets_are_cumulative),
		T(test_metrics_unlabelled_histogram_uses_default_buckets),
		T(test_metrics_reconcile_buckets_render_41_bucket_lines),
		T(test_metrics_histogram_buckets_must_increase),
		T(test_metrics_label_values_and_help_are_escaped),
		T(test_metrics_invalid_names_are_rejected),
		T(test_metrics_duplicate_name_is_eexist),
		T(test_metrics_labelled_family_without_children_renders_nothing),
		T(test_metrics_counter_rejects_negative_and_nan),
		T(test_metrics_missing_label_value_is_invalid),
		T(test_metrics_value_of_unknown_child_is_not_found),
		T(test_metrics_many_children_stay_distinct),
		T(test_metrics_render_over_cap_is_too_large),
		T(test_metrics_process_metrics_are_plausible),
		T(test_metrics_concurrent_increments_sum_exactly),
		cmocka_unit_test(test_metrics_float_formatting),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
