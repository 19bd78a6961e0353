/* Unit tests for the collectives (kernels/collectives/): the shard layout,
 * world size 1, the ring all-reduce, broadcast, barrier, reduce-scatter and
 * all-gather on 2 to 4 ranks, and every rendezvous and failure path.
 *
 * Each rank is a thread with its own communicator on 127.0.0.1, except the
 * killed-peer test, which forks one process per rank so a rank can be
 * SIGKILLed. Integer-valued floats make the expected sums exact, so the
 * result must equal the sequential sum bit for bit; random floats check that
 * every rank ends with the same bits and stays close to a double sum.
 * Timeouts are short so the whole file runs in a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "llmops_collectives.h"

#define MAX_RANKS 6
#define LARGE_N	  (2 * 1000 * 1000 + 17)

/* A free TCP port on the loopback interface (bound, read back, released). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

struct worker;
typedef llm_err (*work_fn)(struct worker *w, struct llm_coll *c);

/* One rank: its config, what it runs once joined, and what came back. */
struct worker {
	pthread_t tid;
	struct llm_coll_config cfg;
	int delay_ms; /* before joining */
	work_fn work; /* NULL: join and leave */
	const void *arg;
	float *buf;
	size_t n;
	double t_enter, t_exit;
	llm_err err; /* of the join, else of the work */
	char msg[1024];
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct llm_coll *c = NULL;

	sleep_ms(w->delay_ms);
	w->err = llm_coll_new(&w->cfg, &c);
	if (w->err == LLM_OK && w->work)
		w->err = w->work(w, c);
	if (w->err != LLM_OK && !w->msg[0])
		snprintf(w->msg, sizeof(w->msg), "%s", llm_last_error());
	llm_coll_destroy(c);
	return NULL;
}

/* Fills w[0..world) with one job's config on a fresh port. */
static void job_init(struct worker *w, int world, work_fn work, const void *arg)
{
	int port = free_port();

	memset(w, 0, sizeof(*w) * MAX_RANKS);
	for (int r = 0; r < world; r++) {
		w[r].cfg = (struct llm_coll_config){.backend = "cpu",
						    .rank = r,
						    .world_size = world,
						    .master_addr = "127.0.0.1",
						    .master_port = port,
						    .job_id = "default/ftj/a1",
						    .timeout_s = 5,
						    .op_timeout_s = 5};
		w[r].work = work;
		w[r].arg = arg;
	}
}

static void job_run(struct worker *w, int nthreads)
{
	for (int r = 0; r < nthreads; r++)
		assert_int_equal(pthread_create(&w[r].tid, NULL, worker_main, &w[r]), 0);
	for (int r = 0; r < nthreads; r++)
		assert_int_equal(pthread_join(w[r].tid, NULL), 0);
}

static void expect_ok(const struct worker *w, int n)
{
	for (int r = 0; r < n; r++) {
		if (w[r].err != LLM_OK)
			fail_msg("rank %d: %s: %s", r, llm_errname(w[r].err), w[r].msg);
	}
}

static void expect_fail(const struct worker *w, llm_err code, const char *needle)
{
	if (w->err != code || !strstr(w->msg, needle))
		fail_msg("rank %d: got %s \"%s\", want %s containing \"%s\"", w->cfg.rank,
			 llm_errname(w->err), w->msg, llm_errname(code), needle);
}

/* Rank r's integer-valued input element i: exact in fp32, and so are sums of
 * up to MAX_RANKS of them. */
static float int_input(int r, size_t i)
{
	return (float)((long)((i * 7919u + (size_t)r * 104729u) % 2001u) - 1000);
}

/* Rank r's random input element i in [-1, 1). */
static float rnd_input(int r, size_t i)
{
	uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)r + 1) * 0xbf58476d1ce4e5b9ULL;

	z ^= z >> 31;
	z *= 0x94d049bb133111ebULL;
	z ^= z >> 29;
	return (float)(z >> 40) * (1.0f / (1 << 23)) - 1.0f;
}

/* ---- shard layout and world size 1 ---- */

static void test_shard_layout_contiguous_last_shorter(void **state)
{
	static const size_t want[][2] = {{0, 3}, {3, 3}, {6, 3}, {9, 1}};
	size_t off, cnt;

	(void)state;
	for (int r = 0; r < 4; r++) {
		llm_coll_shard(10, 4, r, &off, &cnt);
		assert_int_equal(off, want[r][0]);
		assert_int_equal(cnt, want[r][1]);
	}
	llm_coll_shard(5, 4, 3, &off, &cnt); /* chunk 2: the last shard is empty */
	assert_int_equal(off, 5);
	assert_int_equal(cnt, 0);
	llm_coll_shard(0, 3, 1, &off, &cnt);
	assert_int_equal(cnt, 0);
}

/* Open file descriptors of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_world_one_needs_no_socket(void **state)
{
	struct llm_coll_config cfg = {.rank = 0, .world_size = 1}; /* no master address */
	struct llm_coll *c;
	float buf[3] = {1.5f, -2.0f, 3.25f};
	unsigned char bytes[2] = {7, 9};

	int fds = count_fds();

	(void)state;
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_OK);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(llm_coll_world_size(c), 1);
	assert_int_equal(llm_coll_all_reduce_sum(c, buf, 3), LLM_OK);
	assert_int_equal(llm_coll_all_reduce_mean(c, buf, 3), LLM_OK);
	assert_int_equal(llm_coll_broadcast(c, bytes, 2, 0), LLM_OK);
	assert_int_equal(llm_coll_barrier(c), LLM_OK);
	assert_int_equal(llm_coll_reduce_scatter_sum(c, buf, 3), LLM_OK);
	assert_int_equal(llm_coll_all_gather(c, buf, 3), LLM_OK);
	assert_true(buf[0] == 1.5f && buf[1] == -2.0f && buf[2] == 3.25f);
	assert_true(bytes[0] == 7 && bytes[1] == 9);
	llm_coll_destroy(c);
	llm_coll_destroy(NULL);
}

static void test_invalid_arguments_are_refused(void **state)
{
	struct llm_coll_config cfg = {.rank = 2, .world_size = 2};
	struct llm_coll *c;

	(void)state;
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_EINVAL);
	assert_null(c);
	cfg = (struct llm_coll_config){.rank = 0, .world_size = 2, .master_port = 1};
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_EINVAL); /* no master address */
	cfg = (struct llm_coll_config){.backend = "gloo", .world_size = 1};
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_EUNSUPPORTED);
	assert_non_null(strstr(llm_last_error(), "gloo"));
	cfg = (struct llm_coll_config){.world_size = 1};
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_OK);
	assert_int_equal(llm_coll_all_reduce_sum(c, NULL, 4), LLM_EINVAL);
	assert_int_equal(llm_coll_broadcast(c, NULL, 0, 1), LLM_EINVAL);
	llm_coll_destroy(c);
}

static void test_nccl_without_cuda_objects_is_refused_clearly(void **state)
{
	struct llm_coll_config cfg = {.backend = "nccl", .world_size = 1};
	struct llm_coll *c;

	(void)state;
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_EUNSUPPORTED);
	assert_null(c);
	assert_non_null(strstr(llm_last_error(), "\"nccl\" is not in this program"));
	assert_non_null(strstr(llm_last_error(), "without the CUDA objects"));
}

/* Without the CUDA objects "auto" is "cpu": host buffers work, as on 2 ranks. */
static llm_err work_sum_small(struct worker *w, struct llm_coll *c)
{
	w->buf[0] = 1.0f + (float)llm_coll_rank(c);
	w->buf[1] = 2.0f;
	return llm_coll_all_reduce_sum(c, w->buf, w->n);
}

static void test_auto_without_cuda_is_cpu(void **state)
{
	float bufs[2][2];
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, work_sum_small, NULL);
	for (int r = 0; r < 2; r++) {
		w[r].cfg.backend = "auto";
		w[r].buf = bufs[r];
		w[r].n = 2;
	}
	job_run(w, 2);
	expect_ok(w, 2);
	for (int r = 0; r < 2; r++)
		assert_true(bufs[r][0] == 3.0f && bufs[r][1] == 4.0f);
}

static void test_config_from_env(void **state)
{
	struct llm_coll_config cfg;

	(void)state;
	setenv("LLMOPS_RANK", "2", 1);
	setenv("LLMOPS_WORLD_SIZE", "4", 1);
	setenv("LLMOPS_MASTER_ADDR", "ftj-w0.ftj-workers.default.svc", 1);
	setenv("LLMOPS_MASTER_PORT", "29500", 1);
	setenv("LLMOPS_JOB_ID", "default/ftj/a3", 1);
	setenv("LLMOPS_COLL_BACKEND", "auto", 1);
	assert_int_equal(llm_coll_config_from_env(&cfg), LLM_OK);
	assert_string_equal(cfg.backend, "auto");
	assert_int_equal(cfg.rank, 2);
	assert_int_equal(cfg.world_size, 4);
	assert_int_equal(cfg.master_port, 29500);
	assert_string_equal(cfg.master_addr, "ftj-w0.ftj-workers.default.svc");
	assert_string_equal(cfg.job_id, "default/ftj/a3");
	setenv("LLMOPS_RANK", "4", 1);
	assert_int_equal(llm_coll_config_from_env(&cfg), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "LLMOPS_RANK"));
	setenv("LLMOPS_RANK", "1", 1);
	setenv("LLMOPS_MASTER_PORT", "29500x", 1);
	assert_int_equal(llm_coll_config_from_env(&cfg), LLM_EINVAL);
	assert_non_null(strstr(llm_last_error(), "LLMOPS_MASTER_PORT"));
	unsetenv("LLMOPS_RANK");
	unsetenv("LLMOPS_WORLD_SIZE");
	unsetenv("LLMOPS_MASTER_ADDR");
	unsetenv("LLMOPS_MASTER_PORT");
	unsetenv("LLMOPS_JOB_ID");
	unsetenv("LLMOPS_COLL_BACKEND");
}

/* ---- all-reduce ---- */

static const size_t sizes[] = {0, 1, 7, 1001, 4 * 5 + 3, LARGE_N};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* All-reduces every size in turn with integer inputs; keeps the last. */
static llm_err work_all_reduce_sizes(struct worker *w, struct llm_coll *c)
{
	int r = llm_coll_rank(c);
	llm_err err = LLM_OK;

	for (size_t k = 0; k < NSIZES && err == LLM_OK; k++) {
		w->n = sizes[k];
		w->buf = realloc(w->buf, (w->n ? w->n : 1) * sizeof(float));
		for (size_t i = 0; i < w->n; i++)
			w->buf[i] = int_input(r, i);
		err = llm_coll_all_reduce_sum(c, w->buf, w->n);
		for (size_t i = 0; err == LLM_OK && i < w->n; i++) {
			float want = 0;

			for (int q = 0; q < llm_coll_world_size(c); q++)
				want += int_input(q, i);
			if (w->buf[i] != want)
				return llm_fail(LLM_EINTERNAL, "n=%zu: [%zu] = %g, want %g", w->n,
						i, w->buf[i], want);
		}
	}
	return err;
}

static void run_all_reduce_sizes(int world)
{
	struct worker w[MAX_RANKS];

	job_init(w, world, work_all_reduce_sizes, NULL);
	job_run(w, world);
	expect_ok(w, world);
	for (int r = 0; r < world; r++)
		free(w[r].buf);
}

static void test_all_reduce_exact_world_2(void **state)
{
	(void)state;
	run_all_reduce_sizes(2);
}

static void test_all_reduce_exact_world_3(void **state)
{
	(void)state;
	run_all_reduce_sizes(3);
}

static void test_all_reduce_exact_world_4(void **state)
{
	(void)state;
	run_all_reduce_sizes(4);
}

/* Random inputs, then the mean. */
static llm_err work_random_sum_then_mean(struct worker *w, struct llm_coll *c)
{
	int r = llm_coll_rank(c);
	llm_err err;

	w->n = 100003;
	w->buf = malloc(2 * w->n * sizeof(float));
	if (!w->buf)
		return LLM_ENOMEM;
	for (size_t i = 0; i < w->n; i++)
		w->buf[i] = w->buf[w->n + i] = rnd_input(r, i);
	err = llm_coll_all_reduce_sum(c, w->buf, w->n);
	return err == LLM_OK ? llm_coll_all_reduce_mean(c, w->buf + w->n, w->n) : err;
}

static void test_all_reduce_random_identical_on_every_rank(void **state)
{
	const int world = 3;
	const double u = 0x1p-24;
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, world, work_random_sum_then_mean, NULL);
	job_run(w, world);
	expect_ok(w, world);
	for (int r = 1; r < world; r++)
		assert_memory_equal(w[r].buf, w[0].buf, 2 * w[0].n * sizeof(float));
	for (size_t i = 0; i < w[0].n; i++) {
		double ref = 0, mag = 0;

		for (int q = 0; q < world; q++) {
			ref += rnd_input(q, i);
			mag += fabs(rnd_input(q, i));
		}
		/* world-1 roundings of partial sums, plus the division */
		if (!(fabs(w[0].buf[i] - ref) <= world * u * mag) ||
		    !(fabs(w[0].buf[w[0].n + i] - ref / world) <= (world + 1) * u * mag))
			fail_msg("[%zu] sum %.9g mean %.9g, want %.9g", i, w[0].buf[i],
				 w[0].buf[w[0].n + i], ref);
	}
	for (int r = 0; r < world; r++)
		free(w[r].buf);
}

/* ---- broadcast, reduce-scatter, all-gather, barrier ---- */

static llm_err work_broadcast(struct worker *w, struct llm_coll *c)
{
	int r = llm_coll_rank(c), world = llm_coll_world_size(c);
	llm_err err = LLM_OK;

	w->n = 3 * 100001;
	w->buf = calloc(w->n, sizeof(float)); /* used as bytes: one region per root */
	if (!w->buf)
		return LLM_ENOMEM;
	for (int root = 0; root < world && err == LLM_OK; root++) {
		unsigned char *b = (unsigned char *)w->buf + (size_t)root * 100001;

		for (size_t i = 0; r == root && i < 100001; i++)
			b[i] = (unsigned char)(i * 31 + (size_t)root);
		err = llm_coll_broadcast(c, b, 100001, root);
	}
	return err == LLM_OK ? llm_coll_broadcast(c, NULL, 0, world - 1) : err;
}

static void test_broadcast_from_every_root(void **state)
{
	const int world = 3;
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, world, work_broadcast, NULL);
	job_run(w, world);
	expect_ok(w, world);
	for (int r = 0; r < world; r++) {
		const unsigned char *b = (const unsigned char *)w[r].buf;

		for (size_t i = 0; i < 3 * 100001; i++) {
			if (b[i] != (unsigned char)((i % 100001) * 31 + i / 100001))
				fail_msg("rank %d byte %zu", r, i);
		}
		free(w[r].buf);
	}
}

/* buf[0..n): reduce-scatter then all-gather; buf[n..2n): all-reduce. */
static llm_err work_rs_ag(struct worker *w, struct llm_coll *c)
{
	int r = llm_coll_rank(c);
	size_t off, cnt;
	llm_err err;

	w->buf = malloc(2 * w->n * sizeof(float) + sizeof(float));
	if (!w->buf)
		return LLM_ENOMEM;
	for (size_t i = 0; i < w->n; i++)
		w->buf[i] = w->buf[w->n + i] = rnd_input(r, i);
	err = llm_coll_reduce_scatter_sum(c, w->buf, w->n);
	llm_coll_shard(w->n, llm_coll_world_size(c), r, &off, &cnt);
	for (size_t i = off; err == LLM_OK && i < off + cnt; i++) {
		float want = 0;

		for (int q = 0; q < llm_coll_world_size(c); q++)
			want += rnd_input(q, i);
		if (fabsf(w->buf[i] - want) > 1e-5f)
			return llm_fail(LLM_EINTERNAL, "shard [%zu] = %g, want %g", i, w->buf[i],
					want);
	}
	if (err == LLM_OK)
		err = llm_coll_all_gather(c, w->buf, w->n);
	return err == LLM_OK ? llm_coll_all_reduce_sum(c, w->buf + w->n, w->n) : err;
}

static void run_rs_ag(int world, size_t n)
{
	struct worker w[MAX_RANKS];

	job_init(w, world, work_rs_ag, NULL);
	for (int r = 0; r < world; r++)
		w[r].n = n;
	job_run(w, world);
	expect_ok(w, world);
	for (int r = 0; r < world; r++) {
		/* the round trip equals the all-reduce bit for bit, on every rank */
		assert_memory_equal(w[r].buf, w[r].buf + n, n * sizeof(float));
		assert_memory_equal(w[r].buf, w[0].buf, n * sizeof(float));
	}
	for (int r = 0; r < world; r++)
		free(w[r].buf);
}

static void test_reduce_scatter_all_gather_round_trip(void **state)
{
	(void)state;
	run_rs_ag(3, 10);    /* shards of 4, 4, 2 */
	run_rs_ag(4, 5);     /* shards of 2, 2, 1, 0 */
	run_rs_ag(2, 65537); /* more than one scratch slice per shard */
}

static llm_err work_barrier(struct worker *w, struct llm_coll *c)
{
	if (llm_coll_rank(c) == 2)
		sleep_ms(300);
	w->t_enter = now_s();
	llm_err err = llm_coll_barrier(c);
	w->t_exit = now_s();
	return err;
}

static void test_barrier_waits_for_the_last_rank(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 3, work_barrier, NULL);
	job_run(w, 3);
	expect_ok(w, 3);
	for (int r = 0; r < 3; r++)
		assert_true(w[r].t_exit >= w[2].t_enter);
	assert_true(w[0].t_enter < w[2].t_enter - 0.2);
}

/* ---- rendezvous ---- */

static llm_err work_small_all_reduce(struct worker *w, struct llm_coll *c)
{
	float v = (float)(llm_coll_rank(c) + 1);

	(void)w;
	llm_err err = llm_coll_all_reduce_sum(c, &v, 1);
	int world = llm_coll_world_size(c);

	if (err == LLM_OK && v != (float)(world * (world + 1) / 2))
		return llm_fail(LLM_EINTERNAL, "sum %g", v);
	return err;
}

static void test_ranks_start_in_reverse_order(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 4, work_small_all_reduce, NULL);
	for (int r = 0; r < 4; r++)
		w[r].delay_ms = (3 - r) * 150; /* rank 0 last, 450 ms after rank 3 */
	job_run(w, 4);
	expect_ok(w, 4);
}

static void test_missing_rank_times_out_naming_it(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 4, NULL, NULL);
	for (int r = 0; r < 4; r++)
		w[r].cfg.timeout_s = 1;
	job_run(w, 3); /* rank 3 never starts */
	expect_fail(&w[0], LLM_ETIMEDOUT,
		    "1 of 4 workers never arrived within 1 s: ranks 3 missing");
	expect_fail(&w[1], LLM_ETIMEDOUT, "ranks 3 missing");
	expect_fail(&w[2], LLM_ETIMEDOUT, "ranks 3 missing");
}

static void test_rank_that_gave_up_counts_as_missing(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 3, NULL, NULL);
	w[0].cfg.timeout_s = 1.2;
	w[1].cfg.timeout_s = 0.2; /* leaves after 0.4 s; rank 2 never starts */
	job_run(w, 2);
	expect_fail(&w[0], LLM_ETIMEDOUT, "2 of 3 workers never arrived within 1.2 s: ranks 1, 2");
	expect_fail(&w[1], LLM_ETIMEDOUT, "got no peer table within 0.2 s");
}

static void test_rank_zero_never_up_times_out(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, NULL, NULL);
	w[1].cfg.timeout_s = 0.5;
	job_run(w + 1, 1);
	expect_fail(&w[1], LLM_ETIMEDOUT, "could not reach rank 0 at 127.0.0.1");
}

static void test_world_size_mismatch_fails_everyone(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 3, NULL, NULL);
	w[2].cfg.world_size = 4;
	w[2].delay_ms = 100;
	job_run(w, 3);
	for (int r = 0; r < 3; r++)
		expect_fail(&w[r], LLM_EINVAL,
			    "world size mismatch: rank 2 at 127.0.0.1 says 4, rank 0 says 3");
}

static void test_duplicate_rank_fails_everyone(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 3, NULL, NULL);
	w[2].cfg.rank = 1;
	w[2].delay_ms = 100;
	job_run(w, 3);
	for (int r = 0; r < 3; r++)
		expect_fail(&w[r], LLM_EINVAL, "duplicate rank 1");
}

/* Connects to 127.0.0.1:port (retrying while nobody listens), sends a
 * hand-made hello (protocol 2) with rank, world, backend and job, and
 * returns the reply's status. */
static uint32_t raw_hello(int port, uint32_t rank, uint32_t world, const char *backend,
			  const char *job)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	unsigned char b[26 + 64] = {0x4c, 0x4c, 0x43, 0x4f, 0, 2, 0, 0};
	uint32_t status = 0;
	size_t len = strlen(job);
	int fd = -1;

	for (int i = 0; i < 100 && fd < 0; i++, sleep_ms(20)) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			close(fd);
			fd = -1;
		}
	}
	assert_true(fd >= 0);
	rank = htonl(rank);
	world = htonl(world);
	memcpy(b + 8, &rank, 4);
	memcpy(b + 12, &world, 4);
	b[17] = (unsigned char)len;
	memcpy(b + 18, backend, strlen(backend));
	memcpy(b + 26, job, len);
	assert_int_equal(send(fd, b, 26 + len, MSG_NOSIGNAL), (ssize_t)(26 + len));
	assert_int_equal(recv(fd, b, 8, MSG_WAITALL), 8);
	memcpy(&status, b + 4, 4);
	close(fd);
	return ntohl(status);
}

static void test_rank_out_of_range_on_the_wire_fails_the_job(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, NULL, NULL);
	assert_int_equal(pthread_create(&w[0].tid, NULL, worker_main, &w[0]), 0);
	assert_int_equal(raw_hello(w[0].cfg.master_port, 0xffffffffu, 2, "cpu", "default/ftj/a1"),
			 LLM_EINVAL);
	assert_int_equal(pthread_join(w[0].tid, NULL), 0);
	expect_fail(&w[0], LLM_EINVAL, "rank 4294967295 at 127.0.0.1 is out of range");
}

/* A rank whose GPU did not come up takes the cpu collectives under "auto"
 * while the others take nccl: the job must fail at once, saying so, rather
 * than time out in two halves that cannot talk. */
static void test_other_backend_on_the_wire_fails_the_job(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, NULL, NULL);
	assert_int_equal(pthread_create(&w[0].tid, NULL, worker_main, &w[0]), 0);
	assert_int_equal(raw_hello(w[0].cfg.master_port, 1, 2, "nccl", "default/ftj/a1"),
			 LLM_EINVAL);
	assert_int_equal(pthread_join(w[0].tid, NULL), 0);
	expect_fail(&w[0], LLM_EINVAL,
		    "rank 1 at 127.0.0.1 uses the nccl collectives, rank 0 cpu: every rank needs "
		    "the same");
}

static void test_stale_job_id_is_refused_and_the_job_goes_on(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, work_small_all_reduce, NULL);
	w[2] = w[1];
	w[2].cfg.job_id = "default/ftj/a0"; /* a worker of the previous attempt */
	w[1].delay_ms = 300;
	job_run(w, 3);
	expect_ok(w, 2);
	expect_fail(&w[2], LLM_EINVAL, "job id \"default/ftj/a0\" of rank 1");
	assert_non_null(strstr(w[2].msg, "another attempt"));
}

/* ---- failures during operations ---- */

/* Rank 0 all-reduces 10 floats, rank 1 12; then a barrier must be refused. */
static llm_err work_mismatched_sizes(struct worker *w, struct llm_coll *c)
{
	float buf[12] = {0};
	llm_err err = llm_coll_all_reduce_sum(c, buf, llm_coll_rank(c) == 0 ? 10 : 12);

	snprintf(w->msg, sizeof(w->msg), "%s", llm_last_error());
	if (err == LLM_OK || llm_coll_barrier(c) != LLM_ECANCELED)
		return LLM_EINTERNAL;
	return err;
}

static void test_mismatched_calls_fail_clearly(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, work_mismatched_sizes, NULL);
	job_run(w, 2);
	/* each rank either saw the mismatch itself or was told its peer failed */
	for (int r = 0; r < 2; r++) {
		if (w[r].err != LLM_EINVAL && w[r].err != LLM_EIO)
			fail_msg("rank %d: %s: %s", r, llm_errname(w[r].err), w[r].msg);
		if (!strstr(w[r].msg, "every rank must make the same calls") &&
		    !strstr(w[r].msg, "failed or left"))
			fail_msg("rank %d: %s", r, w[r].msg);
	}
}

static llm_err work_idle_rank_one(struct worker *w, struct llm_coll *c)
{
	float v = 1;

	(void)w;
	if (llm_coll_rank(c) == 1) {
		sleep_ms(1200);
		return LLM_OK;
	}
	return llm_coll_all_reduce_sum(c, &v, 1);
}

static void test_operation_times_out_naming_the_peer(void **state)
{
	struct worker w[MAX_RANKS];

	(void)state;
	job_init(w, 2, work_idle_rank_one, NULL);
	w[0].cfg.op_timeout_s = 0.5;
	job_run(w, 2);
	expect_fail(&w[0], LLM_ETIMEDOUT, "no data from rank 1 (left neighbour) within 0.5 s");
	assert_int_equal(w[1].err, LLM_OK);
}

/* One rank of the killed-peer job, in its own process: loops all-reduces of
 * a large buffer until one fails, then writes the error to fd. */
static void killed_peer_child(int rank, int world, int port, int ready_fd, int result_fd)
{
	struct llm_coll_config cfg = {.rank = rank,
				      .world_size = world,
				      .master_addr = "127.0.0.1",
				      .master_port = port,
				      .job_id = "default/ftj/a1",
				      .timeout_s = 5,
				      .op_timeout_s = 8};
	struct llm_coll *c;
	size_t n = 1 << 20;
	float *buf = calloc(n, sizeof(float));
	char out[1100];
	llm_err err = buf ? llm_coll_new(&cfg, &c) : LLM_ENOMEM;

	(void)!write(ready_fd, "r", 1);
	for (int i = 0; err == LLM_OK && i < 100000; i++)
		err = llm_coll_all_reduce_sum(c, buf, n);
	snprintf(out, sizeof(out), "%d %s", (int)err, llm_last_error());
	(void)!write(result_fd, out, strlen(out) + 1);
	_exit(0);
}

static void test_peer_killed_mid_all_reduce_is_named(void **state)
{
	const int world = 4, victim = 2;
	int port = free_port(), ready[2], results[MAX_RANKS][2];
	pid_t pid[MAX_RANKS];
	double t_kill;
	char c;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	for (int r = 0; r < world; r++) {
		assert_int_equal(pipe(results[r]), 0);
		pid[r] = fork();
		assert_true(pid[r] >= 0);
		if (pid[r] == 0)
			killed_peer_child(r, world, port, ready[1], results[r][1]);
		close(results[r][1]);
	}
	for (int r = 0; r < world; r++)
		assert_int_equal(read(ready[0], &c, 1), 1);
	sleep_ms(300);
	t_kill = now_s();
	assert_int_equal(kill(pid[victim], SIGKILL), 0);
	for (int r = 0; r < world; r++) {
		char msg[1100] = "";
		ssize_t got = read(results[r][0], msg, sizeof(msg) - 1);

		waitpid(pid[r], NULL, 0);
		close(results[r][0]);
		if (r == victim)
			continue;
		assert_true(got > 0);
		if (strtol(msg, NULL, 10) != LLM_EIO || !strstr(msg, "rank 2"))
			fail_msg("rank %d: %s", r, msg);
	}
	assert_true(now_s() - t_kill < 4.0); /* well before the 8 s operation timeout */
	close(ready[0]);
	close(ready[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shard_layout_contiguous_last_shorter),
		cmocka_unit_test(test_world_one_needs_no_socket),
		cmocka_unit_test(test_invalid_arguments_are_refused),
		cmocka_unit_test(test_nccl_without_cuda_objects_is_refused_clearly),
		cmocka_unit_test(test_auto_without_cuda_is_cpu),
		cmocka_unit_test(test_config_from_env),
		cmocka_unit_test(test_all_reduce_exact_world_2),
		cmocka_unit_test(test_all_reduce_exact_world_3),
		cmocka_unit_test(test_all_reduce_exact_world_4),
		cmocka_unit_test(test_all_reduce_random_identical_on_every_rank),
		cmocka_unit_test(test_broadcast_from_every_root),
		cmocka_unit_test(test_reduce_scatter_all_gather_round_trip),
		cmocka_unit_test(test_barrier_waits_for_the_last_rank),
		cmocka_unit_test(test_ranks_start_in_reverse_order),
		cmocka_unit_test(test_missing_rank_times_out_naming_it),
		cmocka_unit_test(test_rank_that_gave_up_counts_as_missing),
		cmocka_unit_test(test_rank_zero_never_up_times_out),
		cmocka_unit_test(test_world_size_mismatch_fails_everyone),
		cmocka_unit_test(test_duplicate_rank_fails_everyone),
		cmocka_unit_test(test_rank_out_of_range_on_the_wire_fails_the_job),
		cmocka_unit_test(test_other_backend_on_the_wire_fails_the_job),
		cmocka_unit_test(test_stale_job_id_is_refused_and_the_job_goes_on),
		cmocka_unit_test(test_mismatched_calls_fail_clearly),
		cmocka_unit_test(test_operation_times_out_naming_the_peer),
		cmocka_unit_test(test_peer_killed_mid_all_reduce_is_named),
	};

	signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test: sends must not raise it */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
