/* CPU collectives benchmark: ring all-reduce over loopback TCP, one thread
 * per rank in this process (make build/bench/bench_collectives).
 *   allreduce  seconds per all_reduce_sum of N floats and the algorithm
 *              bandwidth N * 4 bytes / time, median of REPS after one warm-up
 * The first rank's result is also checked against the exact sum (the inputs
 * are integer-valued), so a wrong result never reports a time.
 * On a machine with fewer cores than ranks the ranks share the cores and
 * the figure is CPU-bound, not network-bound.
 * One JSON object per line: {"bench","metric","world","floats","value","unit"}.
 * Usage: bench_collectives [world (default 2)] [floats (default 16777216)] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "llmops_collectives.h"
#include "bench.h"

#define REPS	  5
#define MAX_WORLD 16

static int world = 2, port;
static size_t nfloats = 16u << 20;
static double secs[REPS];

static void die(const char *what)
{
	fprintf(stderr, "bench_collectives: %s: %s\n", what, llm_last_error());
	exit(1);
}

/* A free loopback port for the rendezvous. */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("bench_collectives: free port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

static void *rank_main(void *p)
{
	int r = (int)(long)p;
	struct llm_coll_config cfg = {.rank = r,
				      .world_size = world,
				      .master_addr = "127.0.0.1",
				      .master_port = port,
				      .timeout_s = 30,
				      .op_timeout_s = 120};
	struct llm_coll *c;
	float *buf = malloc(nfloats * sizeof(float));

	if (!buf || llm_coll_new(&cfg, &c) != LLM_OK)
		die("join");
	for (int i = -1; i < REPS; i++) {
		double t0;

		for (size_t k = 0; k < nfloats; k++)
			buf[k] = (float)((k + (size_t)r) % 100);
		t0 = bench_now_s();
		if (llm_coll_all_reduce_sum(c, buf, nfloats) != LLM_OK)
			die("all_reduce_sum");
		if (r == 0 && i >= 0)
			secs[i] = bench_now_s() - t0;
	}
	for (size_t k = 0; r == 0 && k < nfloats; k++) {
		float want = 0;

		for (int q = 0; q < world; q++)
			want += (float)((k + (size_t)q) % 100);
		if (buf[k] != want) {
			fprintf(stderr, "bench_collectives: wrong sum at %zu\n", k);
			exit(1);
		}
	}
	llm_coll_destroy(c);
	free(buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	pthread_t tid[MAX_WORLD];
	double med;

	if (argc > 1)
		world = (int)strtol(argv[1], NULL, 10);
	if (argc > 2)
		nfloats = (size_t)strtoull(argv[2], NULL, 10);
	if (world < 1 || world > MAX_WORLD || nfloats == 0) {
		fprintf(stderr, "usage: bench_collectives [world 1..%d] [floats > 0]\n", MAX_WORLD);
		return 2;
	}
	port = free_port();
	for (long r = 0; r < world; r++)
		pthread_create(&tid[r], NULL, rank_main, (void *)r);
	for (int r = 0; r < world; r++)
		pthread_join(tid[r], NULL);
	qsort(secs, REPS, sizeof(double), cmp_double);
	med = secs[REPS / 2];
	printf("{\"bench\":\"collectives\",\"metric\":\"allreduce_time\",\"world\":%d,"
	       "\"floats\":%zu,\"value\":%.6f,\"unit\":\"s\"}\n",
	       world, nfloats, med);
	printf("{\"bench\":\"collectives\",\"metric\":\"allreduce_algbw\",\"world\":%d,"
	       "\"floats\":%zu,\"value\":%.3f,\"unit\":\"GB/s\"}\n",
	       world, nfloats, (double)nfloats * sizeof(float) / med / 1e9);
	return 0;
}
