/* Unit tests for lib/llm_time: MicroTime format, deadlines, stoppable waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "llm_time.h"

static void test_time_micro_time_is_rfc3339_with_microseconds(void **state)
{
	char buf[40];
	int y, mo, d, h, mi, s;
	long us;
	char z;

	(void)state;
	llm_micro_time(buf, sizeof(buf));
	assert_int_equal(strlen(buf), 27);
	assert_int_equal(
		sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d.%6ld%c", &y, &mo, &d, &h, &mi, &s, &us, &z),
		8);
	assert_true(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
	assert_int_equal(z, 'Z');
}

static void test_time_deadline_is_ahead_of_now(void **state)
{
	struct timespec now, dl;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &now);
	dl = llm_deadline_ms(1500);
	assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000);
	assert_true(dl.tv_sec > now.tv_sec ||
		    (dl.tv_sec == now.tv_sec && dl.tv_nsec > now.tv_nsec));
	assert_true((dl.tv_sec - now.tv_sec) * 1000 + (dl.tv_nsec - now.tv_nsec) / 1000000 >= 1499);
}

static void test_time_wait_stop_times_out_when_not_stopped(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c;
	bool stop = false;
	uint64_t t0 = llm_mono_ms();

	(void)state;
	llm_cond_init_monotonic(&c);
	assert_false(llm_cond_wait_stop(&c, &mu, &stop, 100));
	assert_true(llm_mono_ms() - t0 >= 100);
	pthread_cond_destroy(&c);
}

struct stopper {
	pthread_mutex_t mu;
	pthread_cond_t c;
	bool stop;
};

static void *stop_soon(void *arg)
{
	struct stopper *s = arg;

	usleep(50000);
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->c);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void test_time_wait_stop_returns_when_stopped(void **state)
{
	struct stopper s;
	pthread_t t;

	(void)state;
	pthread_mutex_init(&s.mu, NULL);
	s.stop = false;
	llm_cond_init_monotonic(&s.c);
	pthread_create(&t, NULL, stop_soon, &s);
	/* A minute-long wait ends as soon as stop is set. */
	assert_true(llm_cond_wait_stop(&s.c, &s.mu, &s.stop, 60000));
	pthread_join(t, NULL);
	pthread_cond_destroy(&s.c);
	pthread_mutex_destroy(&s.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_micro_time_is_rfc3339_with_microseconds),
		cmocka_unit_test(test_time_deadline_is_ahead_of_now),
		cmocka_unit_test(test_time_wait_stop_times_out_when_not_stopped),
		cmocka_unit_test(test_time_wait_stop_returns_when_stopped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
