/* Unit tests for lib/kc_queue: dedup, FIFO, delays, the rate limiter (with a
 * fake clock), shutdown and drain, metrics, and the worker pool. Real time is
 * only ever given lower bounds, or upper bounds of seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_queue.h"
#include "llm_log.h"

#define MS 1000000ull /* ns */

/* ---- Helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

struct fake_clock {
	uint64_t ms;
};

static uint64_t fake_now(void *data)
{
	return ((struct fake_clock *)data)->ms;
}

static kc_queue *new_queue(const struct kc_queue_opts *opts)
{
	kc_queue *q = NULL;

	assert_int_equal(kc_queue_new(opts, &q), LLM_OK);
	assert_non_null(q);
	return q;
}

static kc_queue_limiter *new_fake_limiter(struct fake_clock *clock)
{
	struct kc_queue_limiter_opts opts = {.now_ms = fake_now, .clock_data = clock};
	kc_queue_limiter *l = NULL;

	assert_int_equal(kc_queue_limiter_new(&opts, &l), LLM_OK);
	return l;
}

/* Gets a key that must be available, and checks it. */
static void expect_get(kc_queue *q, const char *want)
{
	const char *key = NULL;

	assert_true(kc_queue_get(q, &key));
	assert_string_equal(key, want);
}

static struct kc_queue_stats stats_of(kc_queue *q)
{
	struct kc_queue_stats s;

	kc_queue_stats(q, &s);
	return s;
}

/* A thread blocked in kc_queue_get(). */
struct getter {
	kc_queue *q;
	pthread_t thread;
	atomic_bool returned;
	bool got;
	char key[64];
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	const char *key;

	g->got = kc_queue_get(g->q, &key);
	if (g->got)
		snprintf(g->key, sizeof(g->key), "%s", key);
	atomic_store(&g->returned, true);
	return NULL;
}

static void getter_start(struct getter *g, kc_queue *q)
{
	memset(g, 0, sizeof(*g));
	g->q = q;
	atomic_init(&g->returned, false);
	assert_int_equal(pthread_create(&g->thread, NULL, getter_main, g), 0);
}

/* Waits until *counter reaches want, for at most timeout_ms of real time. */
static bool wait_for_count(atomic_int *counter, int want, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * MS;

	while (atomic_load(counter) < want) {
		if (now_ns() > deadline)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* ---- Queue basics ---- */

static void test_queue_keys_come_out_in_fifo_order(void **state)
{
	kc_queue *q = new_queue(NULL);
	const char *keys[] = {"ns/c", "ns/a", "ns/b", "other/a"};
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(kc_queue_add(q, keys[i]), LLM_OK);
	for (i = 0; i < 4; i++)
		expect_get(q, keys[i]);
	for (i = 0; i < 4; i++)
		kc_queue_done(q, keys[i]);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_key_added_twice_is_processed_once(void **state)
{
	kc_queue *q = new_queue(NULL);
	const char *key;

	(void)state;
	kc_queue_add(q, "ns/a");
	kc_queue_add(q, "ns/b");
	kc_queue_add(q, "ns/a");
	assert_int_equal(stats_of(q).depth, 2);
	expect_get(q, "ns/a");
	expect_get(q, "ns/b");
	kc_queue_done(q, "ns/a");
	kc_queue_done(q, "ns/b");
	assert_int_equal(stats_of(q).depth, 0);
	kc_queue_shutdown(q);
	assert_false(kc_queue_get(q, &key));
	kc_queue_destroy(q);
}

static void test_queue_key_is_copied_on_add(void **state)
{
	kc_queue *q = new_queue(NULL);
	char buf[16] = "ns/web";

	(void)state;
	kc_queue_add(q, buf);
	memset(buf, 'x', sizeof(buf) - 1);
	expect_get(q, "ns/web");
	kc_queue_done(q, "ns/web");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_rejects_empty_and_oversized_keys(void **state)
{
	kc_queue *q = new_queue(NULL);
	char *big = malloc(KC_QUEUE_KEY_MAX + 2);

	(void)state;
	assert_non_null(big);
	memset(big, 'k', KC_QUEUE_KEY_MAX + 1);
	big[KC_QUEUE_KEY_MAX + 1] = '\0';
	assert_int_equal(kc_queue_add(q, ""), LLM_EINVAL);
	assert_int_equal(kc_queue_add(q, NULL), LLM_EINVAL);
	assert_int_equal(kc_queue_add(q, big), LLM_ETOOLARGE);
	assert_int_equal(kc_queue_add_after(q, big, 10), LLM_ETOOLARGE);
	big[KC_QUEUE_KEY_MAX] = '\0';
	assert_int_equal(kc_queue_add(q, big), LLM_OK);
	assert_int_equal(stats_of(q).depth, 1);
	free(big);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_refuses_keys_past_max_keys(void **state)
{
	struct kc_queue_opts opts = {.max_keys = 2};
	kc_queue *q = new_queue(&opts);

	(void)state;
	assert_int_equal(kc_queue_add(q, "ns/a"), LLM_OK);
	assert_int_equal(kc_queue_add(q, "ns/b"), LLM_OK);
	assert_int_equal(kc_queue_add(q, "ns/a"), LLM_OK);
	assert_int_equal(kc_queue_add(q, "ns/c"), LLM_ETOOLARGE);
	expect_get(q, "ns/a");
	kc_queue_done(q, "ns/a");
	assert_int_equal(kc_queue_add(q, "ns/c"), LLM_OK);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_key_readded_while_processing_waits_for_done(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct kc_queue_stats s;

	(void)state;
	kc_queue_add(q, "ns/a");
	expect_get(q, "ns/a");
	kc_queue_add(q, "ns/a");
	kc_queue_add(q, "ns/b");
	assert_int_equal(stats_of(q).depth, 1);
	expect_get(q, "ns/b");
	kc_queue_done(q, "ns/b");
	s = stats_of(q);
	assert_int_equal(s.depth, 0);
	assert_int_equal(s.processing, 1);
	kc_queue_done(q, "ns/a");
	assert_int_equal(stats_of(q).depth, 1);
	expect_get(q, "ns/a");
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_key_readded_while_processing_is_not_given_to_another_getter(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct getter g;

	(void)state;
	kc_queue_add(q, "ns/a");
	expect_get(q, "ns/a");
	kc_queue_add(q, "ns/a");
	getter_start(&g, q);
	sleep_ms(150);
	assert_false(atomic_load(&g.returned));
	kc_queue_done(q, "ns/a");
	pthread_join(g.thread, NULL);
	assert_true(g.got);
	assert_string_equal(g.key, "ns/a");
	kc_queue_done(q, g.key);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_get_blocks_until_a_key_is_added(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct getter g;

	(void)state;
	getter_start(&g, q);
	sleep_ms(100);
	assert_false(atomic_load(&g.returned));
	kc_queue_add(q, "ns/late");
	pthread_join(g.thread, NULL);
	assert_true(g.got);
	assert_string_equal(g.key, "ns/late");
	kc_queue_done(q, g.key);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_done_for_unknown_key_is_logged_and_ignored(void **state)
{
	kc_queue *q = new_queue(NULL);
	FILE *log = tmpfile();
	char line[256] = "";

	(void)state;
	assert_non_null(log);
	llm_log_set_output(log);
	kc_queue_add(q, "ns/a");
	kc_queue_done(q, "ns/a"); /* queued, not handed out */
	kc_queue_done(q, "ns/never");
	llm_log_set_output(NULL);
	rewind(log);
	assert_non_null(fgets(line, sizeof(line), log));
	assert_non_null(strstr(line, "ns/a"));
	assert_non_null(strstr(line, "not being processed"));
	fclose(log);
	assert_int_equal(stats_of(q).depth, 1);
	expect_get(q, "ns/a");
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

/* ---- Concurrency stress: no key is ever held by two workers ---- */

#define STRESS_KEYS    50
#define STRESS_ADDS    10000
#define STRESS_WORKERS 4

struct stress {
	kc_queue *q;
	atomic_int in_flight[STRESS_KEYS];
	atomic_int processed[STRESS_KEYS];
	atomic_int overlaps;
	atomic_int total;
};

static void *stress_worker(void *arg)
{
	struct stress *st = arg;
	const char *key;
	long idx;
	int i;

	while (kc_queue_get(st->q, &key)) {
		idx = strtol(key + strlen("ns/key-"), NULL, 10);
		if (atomic_exchange(&st->in_flight[idx], 1) != 0)
			atomic_fetch_add(&st->overlaps, 1);
		for (i = 0; i < 3; i++)
			sched_yield();
		atomic_fetch_add(&st->processed[idx], 1);
		atomic_fetch_add(&st->total, 1);
		atomic_store(&st->in_flight[idx], 0);
		kc_queue_done(st->q, key);
	}
	return NULL;
}

static void test_queue_workers_never_process_a_key_concurrently(void **state)
{
	static struct stress st;
	pthread_t threads[STRESS_WORKERS];
	char key[32];
	int i;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.q = new_queue(NULL);
	for (i = 0; i < STRESS_WORKERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, stress_worker, &st), 0);
	for (i = 0; i < STRESS_ADDS; i++) {
		snprintf(key, sizeof(key), "ns/key-%d", i % STRESS_KEYS);
		assert_int_equal(kc_queue_add(st.q, key), LLM_OK);
		if (i % 64 == 0)
			sched_yield();
	}
	assert_int_equal(kc_queue_shutdown_drain(st.q, 30000), LLM_OK);
	for (i = 0; i < STRESS_WORKERS; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&st.overlaps), 0);
	for (i = 0; i < STRESS_KEYS; i++)
		assert_true(atomic_load(&st.processed[i]) >= 1);
	/* Every add that was not deduplicated was processed exactly once. */
	assert_int_equal(atomic_load(&st.total), stats_of(st.q).adds_total);
	assert_true(atomic_load(&st.total) <= STRESS_ADDS);
	kc_queue_destroy(st.q);
}

/* ---- Delayed adds ---- */

static void test_queue_add_after_hands_out_keys_in_ready_time_order(void **state)
{
	kc_queue *q = new_queue(NULL);

	(void)state;
	kc_queue_add_after(q, "ns/c", 300);
	kc_queue_add_after(q, "ns/a", 100);
	kc_queue_add_after(q, "ns/b", 200);
	assert_int_equal(stats_of(q).depth, 0);
	assert_int_equal(stats_of(q).waiting, 3);
	expect_get(q, "ns/a");
	expect_get(q, "ns/b");
	expect_get(q, "ns/c");
	kc_queue_shutdown(q);
	kc_queue_done(q, "ns/a");
	kc_queue_done(q, "ns/b");
	kc_queue_done(q, "ns/c");
	kc_queue_destroy(q);
}

static void test_queue_add_after_waits_at_least_the_delay(void **state)
{
	kc_queue *q = new_queue(NULL);
	uint64_t t0 = now_ns();

	(void)state;
	kc_queue_add_after(q, "ns/a", 250);
	expect_get(q, "ns/a");
	assert_true(now_ns() - t0 >= 250 * MS);
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_add_after_zero_delay_adds_at_once(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct kc_queue_stats s;

	(void)state;
	kc_queue_add_after(q, "ns/a", 0);
	s = stats_of(q);
	assert_int_equal(s.depth, 1);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(s.retries_total, 1);
	expect_get(q, "ns/a");
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_add_after_earlier_time_replaces_a_later_one(void **state)
{
	kc_queue *q = new_queue(NULL);
	uint64_t t0 = now_ns();

	(void)state;
	kc_queue_add_after(q, "ns/a", 60000);
	kc_queue_add_after(q, "ns/a", 50);
	assert_int_equal(stats_of(q).waiting, 1);
	expect_get(q, "ns/a");
	assert_true(now_ns() - t0 < 5000 * MS);
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_add_after_later_time_keeps_the_earlier_one(void **state)
{
	kc_queue *q = new_queue(NULL);
	uint64_t t0 = now_ns();

	(void)state;
	kc_queue_add_after(q, "ns/a", 50);
	kc_queue_add_after(q, "ns/a", 60000);
	assert_int_equal(stats_of(q).waiting, 1);
	expect_get(q, "ns/a");
	assert_true(now_ns() - t0 < 5000 * MS);
	kc_queue_done(q, "ns/a");
	/* The later time was not kept as a second entry either. */
	assert_int_equal(stats_of(q).waiting, 0);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

/* ---- Rate limiter, on a fake clock ---- */

static void test_limiter_backoff_stays_capped_after_many_failures(void **state)
{
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	uint64_t delay = 0;
	int i;

	(void)state;
	for (i = 0; i < 200; i++) /* 5 << 63 and beyond would overflow */
		assert_int_equal(kc_queue_limiter_backoff(l, "ns/a", &delay), LLM_OK);
	assert_int_equal(delay, 1000000);
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/a"), 200);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_backoff_doubles_from_5ms_and_caps_at_1000s(void **state)
{
	static const uint64_t seq[] = {5,     10,     20,     40,     80,      160,    320,
				       640,   1280,   2560,   5120,   10240,   20480,  40960,
				       81920, 163840, 327680, 655360, 1000000, 1000000};
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	uint64_t delay;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		assert_int_equal(kc_queue_limiter_backoff(l, "ns/a", &delay), LLM_OK);
		assert_int_equal(delay, seq[i]);
	}
	kc_queue_limiter_destroy(l);
}

static void test_limiter_bucket_gives_100_free_tokens_then_the_101st_waits_100ms(void **state)
{
	struct fake_clock clock = {1000};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_int_equal(kc_queue_limiter_reserve(l), 0);
	assert_int_equal(kc_queue_limiter_reserve(l), 100);
	assert_int_equal(kc_queue_limiter_reserve(l), 200);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_bucket_refills_10_tokens_per_second(void **state)
{
	struct fake_clock clock = {1000};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		kc_queue_limiter_reserve(l);
	clock.ms += 1000;
	for (i = 0; i < 10; i++)
		assert_int_equal(kc_queue_limiter_reserve(l), 0);
	assert_int_equal(kc_queue_limiter_reserve(l), 100);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_bucket_never_holds_more_than_burst(void **state)
{
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	int i;

	(void)state;
	kc_queue_limiter_reserve(l);
	clock.ms += 3600 * 1000;
	for (i = 0; i < 100; i++)
		assert_int_equal(kc_queue_limiter_reserve(l), 0);
	assert_int_equal(kc_queue_limiter_reserve(l), 100);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_when_is_the_max_of_backoff_and_bucket(void **state)
{
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	uint64_t delay;
	char key[32];
	int i;

	(void)state;
	/* 10 failures of one key: the bucket is not empty, backoff decides. */
	for (i = 0; i < 10; i++) {
		assert_int_equal(kc_queue_limiter_when(l, "ns/a", &delay), LLM_OK);
		assert_int_equal(delay, 5ull << i);
	}
	/* 90 more first failures empty the bucket. */
	for (i = 0; i < 90; i++) {
		snprintf(key, sizeof(key), "ns/x%d", i);
		assert_int_equal(kc_queue_limiter_when(l, key, &delay), LLM_OK);
		assert_int_equal(delay, 5);
	}
	/* Now the bucket decides a first failure (100 ms > 5 ms)... */
	assert_int_equal(kc_queue_limiter_when(l, "ns/b", &delay), LLM_OK);
	assert_int_equal(delay, 100);
	/* ...and the backoff a long-failing key (5120 ms > 200 ms). */
	assert_int_equal(kc_queue_limiter_when(l, "ns/a", &delay), LLM_OK);
	assert_int_equal(delay, 5120);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_forget_resets_backoff(void **state)
{
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	uint64_t delay;

	(void)state;
	kc_queue_limiter_backoff(l, "ns/a", &delay);
	kc_queue_limiter_backoff(l, "ns/a", &delay);
	kc_queue_limiter_backoff(l, "ns/a", &delay);
	assert_int_equal(delay, 20);
	kc_queue_limiter_forget(l, "ns/a");
	kc_queue_limiter_forget(l, "ns/unknown");
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/a"), 0);
	kc_queue_limiter_backoff(l, "ns/a", &delay);
	assert_int_equal(delay, 5);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_num_requeues_counts_failures_per_key(void **state)
{
	struct fake_clock clock = {0};
	kc_queue_limiter *l = new_fake_limiter(&clock);
	uint64_t delay;

	(void)state;
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/a"), 0);
	kc_queue_limiter_when(l, "ns/a", &delay);
	kc_queue_limiter_when(l, "ns/a", &delay);
	kc_queue_limiter_backoff(l, "ns/b", &delay);
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/a"), 2);
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/b"), 1);
	assert_int_equal(kc_queue_limiter_num_requeues(l, "ns/c"), 0);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_options_override_defaults(void **state)
{
	struct fake_clock clock = {0};
	struct kc_queue_limiter_opts opts = {.base_delay_ms = 100,
					     .max_delay_ms = 1000,
					     .qps = 1,
					     .burst = 1,
					     .now_ms = fake_now,
					     .clock_data = &clock};
	static const uint64_t backoff[] = {100, 200, 400, 800, 1000, 1000};
	kc_queue_limiter *l = NULL;
	uint64_t delay;
	size_t i;

	(void)state;
	assert_int_equal(kc_queue_limiter_new(&opts, &l), LLM_OK);
	for (i = 0; i < 6; i++) {
		kc_queue_limiter_backoff(l, "ns/a", &delay);
		assert_int_equal(delay, backoff[i]);
	}
	assert_int_equal(kc_queue_limiter_reserve(l), 0);
	assert_int_equal(kc_queue_limiter_reserve(l), 1000);
	assert_int_equal(kc_queue_limiter_reserve(l), 2000);
	clock.ms += 500; /* balance -2 + 0.5, then one more taken */
	assert_int_equal(kc_queue_limiter_reserve(l), 2500);
	kc_queue_limiter_destroy(l);
}

static void test_limiter_rejects_negative_options(void **state)
{
	struct kc_queue_limiter_opts bad_qps = {.qps = -1};
	struct kc_queue_limiter_opts bad_burst = {.burst = -5};
	struct kc_queue_opts qopts = {.limiter = {.qps = -1}};
	kc_queue_limiter *l = (kc_queue_limiter *)1;
	kc_queue *q = (kc_queue *)1;

	(void)state;
	assert_int_equal(kc_queue_limiter_new(&bad_qps, &l), LLM_EINVAL);
	assert_null(l);
	assert_int_equal(kc_queue_limiter_new(&bad_burst, &l), LLM_EINVAL);
	assert_int_equal(kc_queue_new(&qopts, &q), LLM_EINVAL);
	assert_null(q);
	kc_queue_destroy(NULL);
	kc_queue_limiter_destroy(NULL);
	kc_workers_join(NULL);
}

/* ---- Rate-limited adds on the queue ---- */

static void test_queue_add_rate_limited_counts_requeues_and_forget_resets(void **state)
{
	struct fake_clock clock = {0};
	struct kc_queue_opts opts = {
		.limiter = {.base_delay_ms = 60000, .now_ms = fake_now, .clock_data = &clock}};
	kc_queue *q = new_queue(&opts);
	struct kc_queue_stats s;

	(void)state;
	kc_queue_add_rate_limited(q, "ns/a");
	kc_queue_add_rate_limited(q, "ns/a");
	kc_queue_add_rate_limited(q, "ns/a");
	assert_int_equal(kc_queue_num_requeues(q, "ns/a"), 3);
	assert_int_equal(kc_queue_num_requeues(q, "ns/b"), 0);
	s = stats_of(q);
	assert_int_equal(s.waiting, 1);
	assert_int_equal(s.depth, 0);
	assert_int_equal(s.retries_total, 3);
	kc_queue_forget(q, "ns/a");
	assert_int_equal(kc_queue_num_requeues(q, "ns/a"), 0);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

static void test_queue_add_rate_limited_waits_for_the_backoff(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 300}};
	kc_queue *q = new_queue(&opts);
	uint64_t t0 = now_ns();

	(void)state;
	assert_int_equal(kc_queue_add_rate_limited(q, "ns/a"), LLM_OK);
	expect_get(q, "ns/a");
	assert_true(now_ns() - t0 >= 300 * MS);
	kc_queue_done(q, "ns/a");
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

/* ---- Shutdown and drain ---- */

static void test_queue_shutdown_wakes_a_blocked_get(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct getter g;

	(void)state;
	getter_start(&g, q);
	sleep_ms(100);
	assert_false(atomic_load(&g.returned));
	kc_queue_shutdown(q);
	pthread_join(g.thread, NULL);
	assert_false(g.got);
	assert_true(kc_queue_shutting_down(q));
	kc_queue_destroy(q);
}

static void test_queue_get_after_shutdown_returns_false_even_with_keys_queued(void **state)
{
	kc_queue *q = new_queue(NULL);
	const char *key = "x";

	(void)state;
	kc_queue_add(q, "ns/a");
	kc_queue_shutdown(q);
	assert_false(kc_queue_get(q, &key));
	assert_null(key);
	kc_queue_destroy(q);
}

static void test_queue_adds_after_shutdown_are_ignored(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct kc_queue_stats s;

	(void)state;
	kc_queue_add(q, "ns/a");
	kc_queue_shutdown(q);
	assert_int_equal(kc_queue_add(q, "ns/b"), LLM_OK);
	assert_int_equal(kc_queue_add_after(q, "ns/c", 0), LLM_OK);
	assert_int_equal(kc_queue_add_after(q, "ns/d", 10), LLM_OK);
	assert_int_equal(kc_queue_add_rate_limited(q, "ns/e"), LLM_OK);
	s = stats_of(q);
	assert_int_equal(s.adds_total, 1);
	assert_int_equal(s.retries_total, 0);
	assert_int_equal(s.depth, 1);
	assert_int_equal(s.waiting, 0);
	assert_int_equal(kc_queue_num_requeues(q, "ns/e"), 0);
	kc_queue_destroy(q);
}

static atomic_int slow_calls;

static struct kc_result process_slowly(const char *key, void *data)
{
	(void)key;
	(void)data;
	sleep_ms(20);
	atomic_fetch_add(&slow_calls, 1);
	return (struct kc_result){KC_DONE, 0};
}

static void test_queue_shutdown_drain_lets_workers_finish_queued_keys(void **state)
{
	kc_queue *q = new_queue(NULL);
	kc_workers *w = NULL;
	struct kc_queue_stats s;
	char key[16];
	int i;

	(void)state;
	atomic_store(&slow_calls, 0);
	for (i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "ns/k%d", i);
		kc_queue_add(q, key);
	}
	assert_int_equal(kc_queue_run_workers(q, 2, process_slowly, NULL, &w), LLM_OK);
	assert_int_equal(kc_queue_shutdown_drain(q, 10000), LLM_OK);
	assert_int_equal(atomic_load(&slow_calls), 6);
	s = stats_of(q);
	assert_int_equal(s.depth, 0);
	assert_int_equal(s.processing, 0);
	kc_workers_join(w);
	kc_queue_destroy(q);
}

struct drainer {
	kc_queue *q;
	uint64_t timeout_ms;
	llm_err err;
};

static void *drainer_main(void *arg)
{
	struct drainer *d = arg;

	d->err = kc_queue_shutdown_drain(d->q, d->timeout_ms);
	return NULL;
}

static void test_queue_shutdown_drain_hands_out_queued_keys_then_get_returns_false(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct drainer d = {q, 10000, LLM_EINTERNAL};
	const char *key;
	pthread_t t;

	(void)state;
	kc_queue_add(q, "ns/a");
	kc_queue_add(q, "ns/b");
	assert_int_equal(pthread_create(&t, NULL, drainer_main, &d), 0);
	expect_get(q, "ns/a");
	kc_queue_done(q, "ns/a");
	expect_get(q, "ns/b");
	kc_queue_done(q, "ns/b");
	assert_false(kc_queue_get(q, &key));
	pthread_join(t, NULL);
	assert_int_equal(d.err, LLM_OK);
	kc_queue_destroy(q);
}

static void test_queue_shutdown_drain_times_out_while_a_worker_holds_a_key(void **state)
{
	kc_queue *q = new_queue(NULL);
	uint64_t t0;

	(void)state;
	kc_queue_add(q, "ns/a");
	expect_get(q, "ns/a");
	t0 = now_ns();
	assert_int_equal(kc_queue_shutdown_drain(q, 300), LLM_ETIMEDOUT);
	assert_true(now_ns() - t0 >= 300 * MS);
	assert_non_null(strstr(llm_last_error(), "1 processing"));
	kc_queue_done(q, "ns/a");
	assert_int_equal(kc_queue_shutdown_drain(q, 1000), LLM_OK);
	kc_queue_destroy(q);
}

static void test_queue_shutdown_drain_drops_keys_still_waiting_for_their_delay(void **state)
{
	kc_queue *q = new_queue(NULL);
	uint64_t t0 = now_ns();
	const char *key;

	(void)state;
	kc_queue_add_after(q, "ns/a", 60000);
	assert_int_equal(kc_queue_shutdown_drain(q, 10000), LLM_OK);
	assert_true(now_ns() - t0 < 5000 * MS);
	assert_int_equal(stats_of(q).waiting, 0);
	assert_false(kc_queue_get(q, &key));
	kc_queue_destroy(q);
}

/* ---- Metrics ---- */

static void test_queue_stats_count_adds_retries_depth_and_processing(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 60000}};
	kc_queue *q = new_queue(&opts);
	struct kc_queue_stats s;

	(void)state;
	kc_queue_add(q, "ns/a");
	kc_queue_add(q, "ns/a");
	kc_queue_add(q, "ns/b");
	kc_queue_add_after(q, "ns/c", 60000);
	kc_queue_add_rate_limited(q, "ns/d");
	s = stats_of(q);
	assert_int_equal(s.adds_total, 2);
	assert_int_equal(s.retries_total, 2);
	assert_int_equal(s.depth, 2);
	assert_int_equal(s.processing, 0);
	expect_get(q, "ns/a");
	s = stats_of(q);
	assert_int_equal(s.depth, 1);
	assert_int_equal(s.processing, 1);
	kc_queue_add(q, "ns/a"); /* re-added while processing: counted, not queued */
	s = stats_of(q);
	assert_int_equal(s.adds_total, 3);
	assert_int_equal(s.depth, 1);
	kc_queue_shutdown(q);
	kc_queue_done(q, "ns/a");
	kc_queue_destroy(q);
}

static void test_queue_stats_report_longest_running_processor(void **state)
{
	kc_queue *q = new_queue(NULL);
	struct kc_queue_stats s;

	(void)state;
	assert_int_equal(stats_of(q).longest_running_ms, 0);
	kc_queue_add(q, "ns/old");
	expect_get(q, "ns/old");
	sleep_ms(500);
	kc_queue_add(q, "ns/new");
	expect_get(q, "ns/new");
	s = stats_of(q);
	assert_true(s.longest_running_ms >= 500);
	assert_true(s.unfinished_work_ms >= s.longest_running_ms);
	kc_queue_done(q, "ns/old"); /* now the younger key is the longest running */
	assert_true(stats_of(q).longest_running_ms < s.longest_running_ms);
	kc_queue_done(q, "ns/new");
	assert_int_equal(stats_of(q).longest_running_ms, 0);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

/* ---- Worker pool outcomes ---- */

#define SCRIPT_MAX 8

/* process() returns the scripted results in turn and records each call. */
struct script {
	kc_queue *q;
	struct kc_result results[SCRIPT_MAX];
	int nresults;
	atomic_int calls;
	uint64_t call_ns[SCRIPT_MAX];
	unsigned requeues_seen[SCRIPT_MAX];
};

static struct kc_result process_scripted(const char *key, void *data)
{
	struct script *s = data;
	int i = atomic_load(&s->calls);

	if (i < SCRIPT_MAX) {
		s->call_ns[i] = now_ns();
		s->requeues_seen[i] = kc_queue_num_requeues(s->q, key);
	}
	atomic_fetch_add(&s->calls, 1);
	return i < s->nresults ? s->results[i] : (struct kc_result){KC_DONE, 0};
}

/* Runs one worker over "ns/a" (added as given) until want calls were made,
 * waits extra_ms more, then drains and joins. */
static void run_script(struct script *s, bool rate_limited, int want, unsigned extra_ms)
{
	kc_workers *w = NULL;

	atomic_init(&s->calls, 0);
	if (rate_limited)
		assert_int_equal(kc_queue_add_rate_limited(s->q, "ns/a"), LLM_OK);
	else
		assert_int_equal(kc_queue_add(s->q, "ns/a"), LLM_OK);
	assert_int_equal(kc_queue_run_workers(s->q, 1, process_scripted, s, &w), LLM_OK);
	assert_true(wait_for_count(&s->calls, want, 20000));
	sleep_ms(extra_ms);
	assert_int_equal(kc_queue_shutdown_drain(s->q, 10000), LLM_OK);
	kc_workers_join(w);
}

static void test_workers_done_outcome_forgets_the_key(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 1}};
	struct script s = {.q = new_queue(&opts), .nresults = 1, .results = {{KC_DONE, 0}}};

	(void)state;
	run_script(&s, true, 1, 100);
	assert_int_equal(atomic_load(&s.calls), 1);
	assert_int_equal(s.requeues_seen[0], 1);
	assert_int_equal(kc_queue_num_requeues(s.q, "ns/a"), 0);
	kc_queue_destroy(s.q);
}

static void test_workers_retry_outcome_requeues_with_backoff(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 50}};
	struct script s = {.q = new_queue(&opts),
			   .nresults = 4,
			   .results = {{KC_RETRY, 0}, {KC_RETRY, 0}, {KC_RETRY, 0}, {KC_DONE, 0}}};

	(void)state;
	run_script(&s, false, 4, 100);
	assert_int_equal(atomic_load(&s.calls), 4);
	assert_true(s.call_ns[1] - s.call_ns[0] >= 50 * MS);
	assert_true(s.call_ns[2] - s.call_ns[1] >= 100 * MS);
	assert_true(s.call_ns[3] - s.call_ns[2] >= 200 * MS);
	assert_int_equal(s.requeues_seen[3], 3);
	assert_int_equal(kc_queue_num_requeues(s.q, "ns/a"), 0);
	assert_int_equal(stats_of(s.q).retries_total, 3);
	kc_queue_destroy(s.q);
}

static void test_workers_requeue_after_outcome_honours_the_delay(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 1}};
	struct script s = {.q = new_queue(&opts),
			   .nresults = 2,
			   .results = {{KC_REQUEUE_AFTER, 300}, {KC_DONE, 0}}};

	(void)state;
	run_script(&s, true, 2, 100);
	assert_int_equal(atomic_load(&s.calls), 2);
	assert_true(s.call_ns[1] - s.call_ns[0] >= 300 * MS);
	assert_int_equal(s.requeues_seen[0], 1);
	assert_int_equal(s.requeues_seen[1], 0); /* forgotten before the delayed add */
	kc_queue_destroy(s.q);
}

static void test_workers_terminal_outcome_forgets_and_does_not_requeue(void **state)
{
	struct kc_queue_opts opts = {.limiter = {.base_delay_ms = 1}};
	struct script s = {.q = new_queue(&opts), .nresults = 1, .results = {{KC_TERMINAL, 0}}};

	(void)state;
	run_script(&s, true, 1, 300);
	assert_int_equal(atomic_load(&s.calls), 1);
	assert_int_equal(s.requeues_seen[0], 1);
	assert_int_equal(kc_queue_num_requeues(s.q, "ns/a"), 0);
	assert_int_equal(stats_of(s.q).retries_total, 1);
	kc_queue_destroy(s.q);
}

static void test_workers_reject_a_bad_worker_count(void **state)
{
	kc_queue *q = new_queue(NULL);
	kc_workers *w = (kc_workers *)1;

	(void)state;
	assert_int_equal(kc_queue_run_workers(q, 0, process_slowly, NULL, &w), LLM_EINVAL);
	assert_null(w);
	assert_int_equal(kc_queue_run_workers(q, 100000, process_slowly, NULL, &w), LLM_EINVAL);
	assert_int_equal(kc_queue_run_workers(q, 1, NULL, NULL, &w), LLM_EINVAL);
	kc_queue_shutdown(q);
	kc_queue_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_keys_come_out_in_fifo_order),
		cmocka_unit_test(test_queue_key_added_twice_is_processed_once),
		cmocka_unit_test(test_queue_key_is_copied_on_add),
		cmocka_unit_test(test_queue_rejects_empty_and_oversized_keys),
		cmocka_unit_test(test_queue_refuses_keys_past_max_keys),
		cmocka_unit_test(test_queue_key_readded_while_processing_waits_for_done),
		cmocka_unit_test(
			test_queue_key_readded_while_processing_is_not_given_to_another_getter),
		cmocka_unit_test(test_queue_get_blocks_until_a_key_is_added),
		cmocka_unit_test(test_queue_done_for_unknown_key_is_logged_and_ignored),
		cmocka_unit_test(test_queue_workers_never_process_a_key_concurrently),
		cmocka_unit_test(test_queue_add_after_hands_out_keys_in_ready_time_order),
		cmocka_unit_test(test_queue_add_after_waits_at_least_the_delay),
		cmocka_unit_test(test_queue_add_after_zero_delay_adds_at_once),
		cmocka_unit_test(test_queue_add_after_earlier_time_replaces_a_later_one),
		cmocka_unit_test(test_queue_add_after_later_time_keeps_the_earlier_one),
		cmocka_unit_test(test_limiter_backoff_doubles_from_5ms_and_caps_at_1000s),
		cmocka_unit_test(test_limiter_backoff_stays_capped_after_many_failures),
		cmocka_unit_test(
			test_limiter_bucket_gives_100_free_tokens_then_the_101st_waits_100ms),
		cmocka_unit_test(test_limiter_bucket_refills_10_tokens_per_second),
		cmocka_unit_test(test_limiter_bucket_never_holds_more_than_burst),
		cmocka_unit_test(test_limiter_when_is_the_max_of_backoff_and_bucket),
		cmocka_unit_test(test_limiter_forget_resets_backoff),
		cmocka_unit_test(test_limiter_num_requeues_counts_failures_per_key),
		cmocka_unit_test(test_limiter_options_override_defaults),
		cmocka_unit_test(test_limiter_rejects_negative_options),
		cmocka_unit_test(test_queue_add_rate_limited_counts_requeues_and_forget_resets),
		cmocka_unit_test(test_queue_add_rate_limited_waits_for_the_backoff),
		cmocka_unit_test(test_queue_shutdown_wakes_a_blocked_get),
		cmocka_unit_test(test_queue_get_after_shutdown_returns_false_even_with_keys_queued),
		cmocka_unit_test(test_queue_adds_after_shutdown_are_ignored),
		cmocka_unit_test(test_queue_shutdown_drain_lets_workers_finish_queued_keys),
		cmocka_unit_test(
			test_queue_shutdown_drain_hands_out_queued_keys_then_get_returns_false),
		cmocka_unit_test(test_queue_shutdown_drain_times_out_while_a_worker_holds_a_key),
		cmocka_unit_test(
			test_queue_shutdown_drain_drops_keys_still_waiting_for_their_delay),
		cmocka_unit_test(test_queue_stats_count_adds_retries_depth_and_processing),
		cmocka_unit_test(test_queue_stats_report_longest_running_processor),
		cmocka_unit_test(test_workers_done_outcome_forgets_the_key),
		cmocka_unit_test(test_workers_retry_outcome_requeues_with_backoff),
		cmocka_unit_test(test_workers_requeue_after_outcome_honours_the_delay),
		cmocka_unit_test(test_workers_terminal_outcome_forgets_and_does_not_requeue),
		cmocka_unit_test(test_workers_reject_a_bad_worker_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
