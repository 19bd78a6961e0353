/* Unit tests for agent/schedule: warm-up and the three decays, with values
 * worked out from transformers' get_*_schedule_with_warmup formulas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "schedule.h"

#define EPS 1e-12

static struct sched mk(enum sched_kind k, int64_t warmup, int64_t total)
{
	return (struct sched){k, 1.0, warmup, total};
}

static void test_schedule_warmup_is_linear_from_zero(void **state)
{
	(void)state;
	for (int k = SCHED_CONSTANT; k <= SCHED_COSINE; k++) {
		struct sched s = mk((enum sched_kind)k, 10, 110);

		assert_true(fabs(sched_lr(&s, 0)) < EPS);
		assert_true(fabs(sched_lr(&s, 5) - 0.5) < EPS);
		assert_true(fabs(sched_lr(&s, 10) - 1.0) < EPS);
	}
}

static void test_schedule_constant_stays_at_peak(void **state)
{
	struct sched s = mk(SCHED_CONSTANT, 0, 100);

	(void)state;
	assert_true(fabs(sched_lr(&s, 0) - 1.0) < EPS);
	assert_true(fabs(sched_lr(&s, 99) - 1.0) < EPS);
}

static void test_schedule_linear_reaches_zero_at_total(void **state)
{
	struct sched s = mk(SCHED_LINEAR, 10, 110);

	(void)state;
	assert_true(fabs(sched_lr(&s, 60) - 0.5) < EPS);
	assert_true(fabs(sched_lr(&s, 109) - 0.01) < EPS);
	assert_true(fabs(sched_lr(&s, 110)) < EPS);
	assert_true(fabs(sched_lr(&s, 500)) < EPS);
}

static void test_schedule_cosine_follows_half_a_period(void **state)
{
	struct sched s = mk(SCHED_COSINE, 10, 110);

	(void)state;
	assert_true(fabs(sched_lr(&s, 35) - 0.5 * (1 + cos(M_PI / 4))) < EPS);
	assert_true(fabs(sched_lr(&s, 60) - 0.5) < EPS);
	assert_true(fabs(sched_lr(&s, 110)) < EPS);
}

static void test_schedule_without_warmup_starts_at_peak(void **state)
{
	struct sched s = mk(SCHED_COSINE, 0, 10);

	(void)state;
	assert_true(fabs(sched_lr(&s, 0) - 1.0) < EPS);
}

static void test_schedule_parse_defaults_to_cosine_and_refuses_others(void **state)
{
	enum sched_kind k = SCHED_CONSTANT;

	(void)state;
	assert_int_equal(sched_parse(NULL, &k), LLM_OK);
	assert_int_equal(k, SCHED_COSINE);
	assert_int_equal(sched_parse("linear", &k), LLM_OK);
	assert_int_equal(k, SCHED_LINEAR);
	assert_int_equal(sched_parse("Cosine", &k), LLM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_warmup_is_linear_from_zero),
		cmocka_unit_test(test_schedule_constant_stays_at_peak),
		cmocka_unit_test(test_schedule_linear_reaches_zero_at_total),
		cmocka_unit_test(test_schedule_cosine_follows_half_a_period),
		cmocka_unit_test(test_schedule_without_warmup_starts_at_peak),
		cmocka_unit_test(test_schedule_parse_defaults_to_cosine_and_refuses_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
