/* GPU checks of the NCCL collectives backend (kernels/collectives/nccl.cu);
 * `make test-cuda`.
 *
 * NCCL allows one rank per GPU, so on a one-GPU machine this runs a
 * single-rank communicator end to end: the real rendezvous (rank 0 on
 * 127.0.0.1, a free port) hands out the NCCL unique id, the communicator is
 * created, and every operation runs on device buffers on a stream of our
 * own. Each result must equal, bit for bit, what the CPU backend returns for
 * the same call on a host copy of the same input (at world size 1 both are
 * the input itself, mean included: the sum over one rank divided by 1). Also
 * checked: each call has finished on the device when it returns; a host
 * buffer is refused with LLM_EINVAL and breaks the communicator; "auto"
 * picks "cpu" before llm_backend_select() chose CUDA and "nccl" after;
 * LLMOPS_COLL_BACKEND=nccl through llm_coll_config_from_env().
 *
 * With two or more GPUs, also 2 (or 4) ranks, one thread and GPU each,
 * against the CPU ring on as many threads: integer-valued inputs make every
 * sum exact (and the mean too, the world size being a power of two), so
 * both backends must agree bit for bit, including the padded
 * reduce-scatter and all-gather (n not a multiple of the world size) and a
 * broadcast from the last rank. On one GPU that part reports itself
 * skipped. Exits 1 on any failure or when there is no CUDA device. */
#include <cuda_runtime.h>
#include <nccl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llmops_kernels.h"
#include "harness.h"

extern "C" {
#include "llmops_collectives.h"
}

/* one operation of the communicator on a float buffer */
enum op { OP_SUM, OP_MEAN, OP_REDUCE_SCATTER, OP_ALL_GATHER, OP_BROADCAST, N_OP };

static const char *const op_name[N_OP] = {"all_reduce_sum", "all_reduce_mean", "reduce_scatter_sum",
					  "all_gather", "broadcast"};

/* A free TCP port on the loopback interface (bound, read back, released). */
static int free_port(void)
{
	struct sockaddr_in a = {};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	if (port == 0)
		die(__FILE__, __LINE__, "free_port", "no free loopback port");
	return port;
}

/* A one-rank communicator of backend on 127.0.0.1 and a fresh port. */
static llm_err open_comm(const char *backend, cudaStream_t s, struct llm_coll **c)
{
	struct llm_coll_config cfg = {};

	cfg.backend = backend;
	cfg.rank = 0;
	cfg.world_size = 1;
	cfg.master_addr = "127.0.0.1";
	cfg.master_port = free_port();
	cfg.job_id = "test/nccl/a1";
	cfg.timeout_s = 60;
	cfg.op_timeout_s = 60;
	cfg.stream = s;
	return llm_coll_new(&cfg, c);
}

/* op on buf; broadcasts come from the last rank */
static llm_err apply(struct llm_coll *c, enum op op, float *buf, size_t n)
{
	switch (op) {
	case OP_SUM: return llm_coll_all_reduce_sum(c, buf, n);
	case OP_MEAN: return llm_coll_all_reduce_mean(c, buf, n);
	case OP_REDUCE_SCATTER: return llm_coll_reduce_scatter_sum(c, buf, n);
	case OP_ALL_GATHER: return llm_coll_all_gather(c, buf, n);
	default: return llm_coll_broadcast(c, buf, n * sizeof(float), llm_coll_world_size(c) - 1);
	}
}

/* The part of the result that is defined on rank of world: after a
 * reduce-scatter the rank's shard, else everything. */
static void defined_part(enum op op, size_t n, int world, int rank, size_t *off, size_t *cnt)
{
	*off = 0;
	*cnt = n;
	if (op == OP_REDUCE_SCATTER)
		llm_coll_shard(n, world, rank, off, cnt);
}

/* op on n seeded floats, through nccl on the device and cpu on the host;
 * both results must be bitwise equal, and the stream idle on return. */
static void check_op(struct llm_coll *nccl, struct llm_coll *cpu, cudaStream_t s, enum op op,
		     size_t n)
{
	float *want = rnd_host(n, 40 + n), *dbuf = dev_copy(want, n), *got;
	llm_err cerr = apply(cpu, op, want, n), err = apply(nccl, op, dbuf, n);
	cudaError_t idle = cudaStreamQuery(s);
	size_t off, m, bad;

	defined_part(op, n, 1, 0, &off, &m);
	got = host_copy(dbuf, n);
	bad = count_unequal(got + off, want + off, m);
	report(err == LLM_OK && cerr == LLM_OK && bad == 0 && idle == cudaSuccess,
	       "nccl %s n=%zu: %zu of %zu differ from the cpu backend; stream %s on return%s",
	       op_name[op], n, bad, m, idle == cudaSuccess ? "idle" : cudaGetErrorName(idle),
	       detail(err ? err : cerr));
	free(got);
	CUDA_CHECK(cudaFree(dbuf));
	free(want);
}

/* Work queued on the stream before a collective has finished when it
 * returns: the buffer (ones) is zeroed by a memset queued on the stream,
 * all-reduced, and then read through another non-blocking stream, which
 * does not wait for the first one. */
static void check_stream_order(struct llm_coll *nccl, cudaStream_t s)
{
	const size_t n = 1 << 24;
	float *ones = (float *)xmalloc(n * sizeof(float)),
	      *got = (float *)xmalloc(n * sizeof(float));
	float *d;
	cudaStream_t other;
	cudaError_t idle;
	size_t bad = 0;
	llm_err err;

	for (size_t i = 0; i < n; i++)
		ones[i] = 1.0f;
	d = dev_copy(ones, n);
	CUDA_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
	CUDA_CHECK(cudaMemsetAsync(d, 0, n * sizeof(float), s));
	err = llm_coll_all_reduce_sum(nccl, d, n);
	idle = cudaStreamQuery(s);
	CUDA_CHECK(cudaMemcpyAsync(got, d, n * sizeof(float), cudaMemcpyDeviceToHost, other));
	CUDA_CHECK(cudaStreamSynchronize(other));
	for (size_t i = 0; i < n; i++)
		bad += got[i] != 0.0f;
	report(err == LLM_OK && bad == 0 && idle == cudaSuccess,
	       "nccl all_reduce_sum returns after the memset queued before it: %zu of %zu not 0, "
	       "stream %s%s",
	       bad, n, idle == cudaSuccess ? "idle" : cudaGetErrorName(idle), detail(err));
	CUDA_CHECK(cudaStreamDestroy(other));
	CUDA_CHECK(cudaFree(d));
	free(got);
	free(ones);
}

/* An odd byte count from root 0, and a barrier. */
static void check_bytes_and_barrier(struct llm_coll *nccl)
{
	unsigned char want[13], *d, got[13];
	llm_err err, berr;

	for (int i = 0; i < 13; i++)
		want[i] = (unsigned char)(7 * i + 3);
	CUDA_CHECK(cudaMalloc(&d, sizeof(want)));
	CUDA_CHECK(cudaMemcpy(d, want, sizeof(want), cudaMemcpyHostToDevice));
	err = llm_coll_broadcast(nccl, d, sizeof(want), 0);
	CUDA_CHECK(cudaMemcpy(got, d, sizeof(got), cudaMemcpyDeviceToHost));
	report(err == LLM_OK && memcmp(got, want, sizeof(want)) == 0,
	       "nccl broadcast of 13 bytes: %s%s", memcmp(got, want, 13) ? "differ" : "equal",
	       detail(err));
	CUDA_CHECK(cudaFree(d));
	berr = llm_coll_barrier(nccl);
	report(berr == LLM_OK, "nccl barrier%s", detail(berr));
}

/* A host buffer is refused, and the communicator is broken afterwards. */
static void check_host_buffer_refused(cudaStream_t s)
{
	struct llm_coll *c = NULL;
	float host[4] = {1, 2, 3, 4};
	llm_err err = open_comm("nccl", s, &c), first = LLM_OK, later = LLM_OK;
	bool named = false;

	if (err == LLM_OK) {
		first = llm_coll_all_reduce_sum(c, host, 4);
		named = strstr(llm_last_error(), "device pointers") != NULL;
		later = llm_coll_barrier(c);
	}
	report(err == LLM_OK && first == LLM_EINVAL && named && later == LLM_ECANCELED,
	       "nccl refuses a host buffer (%s, names device pointers: %s), then is broken "
	       "(%s)%s",
	       llm_errname(first), named ? "yes" : "no", llm_errname(later), detail(err));
	llm_coll_destroy(c);
}

/* "auto" is cpu (host buffers accepted) until llm_backend_select() picks
 * CUDA, then nccl (host buffers refused). */
static void check_auto(cudaStream_t s)
{
	struct llm_coll *c = NULL;
	float host[2] = {1, 2};
	char why[256];
	llm_err open1 = open_comm("auto", s, &c), before = LLM_OK, after = LLM_OK, open2;
	enum llm_backend be;

	if (open1 == LLM_OK)
		before = llm_coll_all_reduce_sum(c, host, 2);
	llm_coll_destroy(c);
	c = NULL;
	be = llm_backend_select(0, why, sizeof(why));
	open2 = open_comm("auto", s, &c);
	if (open2 == LLM_OK)
		after = llm_coll_all_reduce_sum(c, host, 2);
	report(open1 == LLM_OK && before == LLM_OK && be == LLM_BACKEND_CUDA && open2 == LLM_OK &&
		       after == LLM_EINVAL,
	       "auto: cpu before the CUDA backend is chosen (%s), nccl after (%s; %s)%s",
	       llm_errname(before), llm_errname(after), why, detail(open1 ? open1 : open2));
	llm_coll_destroy(c);
}

/* LLMOPS_COLL_BACKEND=nccl, world size 1, no master port: any free port. */
static void check_env(cudaStream_t s)
{
	struct llm_coll_config cfg;
	struct llm_coll *c = NULL;
	float *d = dev_nan(8);
	llm_err err;

	setenv("LLMOPS_COLL_BACKEND", "nccl", 1);
	setenv("LLMOPS_WORLD_SIZE", "1", 1);
	setenv("LLMOPS_RANK", "0", 1);
	err = llm_coll_config_from_env(&cfg);
	cfg.stream = s;
	if (err == LLM_OK)
		err = llm_coll_new(&cfg, &c);
	if (err == LLM_OK)
		err = llm_coll_all_reduce_mean(c, d, 8);
	report(err == LLM_OK, "LLMOPS_COLL_BACKEND=nccl from the environment%s", detail(err));
	llm_coll_destroy(c);
	unsetenv("LLMOPS_COLL_BACKEND");
	unsetenv("LLMOPS_WORLD_SIZE");
	unsetenv("LLMOPS_RANK");
	CUDA_CHECK(cudaFree(d));
}

/* ---- several ranks, one GPU each (needs two or more GPUs) ---- */

#define MAX_RANKS 4

/* One rank of a job: runs op on n integer-valued floats with backend and
 * keeps the result on the host. */
struct rank_job {
	pthread_t tid;
	const char *backend;
	int rank, world, port;
	enum op op;
	size_t n;
	float *result; /* host, n floats */
	llm_err err;
	char msg[512];
};

/* Rank r's input element i: a small integer, so sums over 4 ranks are exact. */
static float int_input(int r, size_t i)
{
	return (float)((int)((i * 7 + (size_t)r * 13) % 41) - 20);
}

/* The op on device memory of this rank's GPU, the result copied back. */
static llm_err run_on_device(struct rank_job *j, struct llm_coll_config *cfg)
{
	struct llm_coll *c = NULL;
	cudaStream_t s;
	float *d;
	llm_err err;

	CUDA_CHECK(cudaSetDevice(j->rank));
	CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	d = dev_copy(j->result, j->n);
	cfg->stream = s;
	err = llm_coll_new(cfg, &c);
	if (err == LLM_OK)
		err = apply(c, j->op, d, j->n);
	if (err != LLM_OK)
		snprintf(j->msg, sizeof(j->msg), "%s", llm_last_error());
	llm_coll_destroy(c);
	CUDA_CHECK(cudaMemcpy(j->result, d, j->n * sizeof(float), cudaMemcpyDeviceToHost));
	CUDA_CHECK(cudaFree(d));
	CUDA_CHECK(cudaStreamDestroy(s));
	return err;
}

static void *rank_main(void *p)
{
	struct rank_job *j = (struct rank_job *)p;
	struct llm_coll_config cfg = {};
	struct llm_coll *c = NULL;

	for (size_t i = 0; i < j->n; i++)
		j->result[i] = int_input(j->rank, i);
	cfg.backend = j->backend;
	cfg.rank = j->rank;
	cfg.world_size = j->world;
	cfg.master_addr = "127.0.0.1";
	cfg.master_port = j->port;
	cfg.job_id = "test/nccl-ranks/a1";
	cfg.timeout_s = 60;
	cfg.op_timeout_s = 60;
	if (strcmp(j->backend, "nccl") == 0) {
		j->err = run_on_device(j, &cfg);
		return NULL;
	}
	j->err = llm_coll_new(&cfg, &c);
	if (j->err == LLM_OK)
		j->err = apply(c, j->op, j->result, j->n);
	if (j->err != LLM_OK)
		snprintf(j->msg, sizeof(j->msg), "%s", llm_last_error());
	llm_coll_destroy(c);
	return NULL;
}

/* Runs one job of world ranks on threads; jobs[r].result holds rank r's. */
static void run_job(struct rank_job *jobs, const char *backend, int world, enum op op, size_t n)
{
	int port = free_port();

	for (int r = 0; r < world; r++) {
		jobs[r] = {};
		jobs[r].backend = backend;
		jobs[r].rank = r;
		jobs[r].world = world;
		jobs[r].port = port;
		jobs[r].op = op;
		jobs[r].n = n;
		jobs[r].result = (float *)xmalloc((n ? n : 1) * sizeof(float));
		if (pthread_create(&jobs[r].tid, NULL, rank_main, &jobs[r]) != 0)
			die(__FILE__, __LINE__, "pthread_create", "failed");
	}
	for (int r = 0; r < world; r++)
		pthread_join(jobs[r].tid, NULL);
}

/* op on n floats over world ranks: nccl and cpu agree on every rank. */
static void check_ranks(int world, enum op op, size_t n)
{
	struct rank_job nccl[MAX_RANKS], cpu[MAX_RANKS];
	size_t bad = 0, off, cnt;
	llm_err err = LLM_OK;
	const char *msg = "";

	run_job(nccl, "nccl", world, op, n);
	run_job(cpu, "cpu", world, op, n);
	for (int r = 0; r < world; r++) {
		defined_part(op, n, world, r, &off, &cnt);
		bad += count_unequal(nccl[r].result + off, cpu[r].result + off, cnt);
		if (err == LLM_OK && (nccl[r].err != LLM_OK || cpu[r].err != LLM_OK)) {
			err = nccl[r].err != LLM_OK ? nccl[r].err : cpu[r].err;
			msg = nccl[r].err != LLM_OK ? nccl[r].msg : cpu[r].msg;
		}
	}
	report(err == LLM_OK && bad == 0,
	       "%d ranks, nccl %s n=%zu: %zu elements differ from the cpu ring%s%s%s", world,
	       op_name[op], n, bad, err ? "; " : "", err ? llm_errname(err) : "", msg);
	for (int r = 0; r < world; r++) {
		free(nccl[r].result);
		free(cpu[r].result);
	}
}

static void check_several_ranks(int ndev)
{
	static const size_t sizes[] = {1, 3, 1001, (1 << 20) + 5};
	int world = ndev >= 4 ? 4 : 2;

	if (ndev < 2) {
		printf("SKIP several ranks: %d GPU (NCCL runs one rank per GPU)\n", ndev);
		return;
	}
	for (int op = 0; op < N_OP; op++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (!quick() || sizes[i] < 100000)
				check_ranks(world, (enum op)op, sizes[i]);
}

int main(void)
{
	static const size_t sizes[] = {1, 7, 1001, (1 << 20) + 5, 25 * 1000 * 1000};
	struct llm_coll *nccl = NULL, *cpu = NULL;
	cudaStream_t s;
	int ndev = 0, ver = 0;
	cudaError_t e = cudaGetDeviceCount(&ndev);
	llm_err err;

	if (e != cudaSuccess || ndev == 0) {
		printf("no CUDA device: %s\n",
		       e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	CUDA_CHECK(cudaSetDevice(0));
	ncclGetVersion(&ver);
	printf("NCCL %d.%d.%d, %d device(s)\n", ver / 10000, ver / 100 % 100, ver % 100, ndev);
	CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

	check_auto(s); /* first: before anything chose the CUDA backend */
	err = open_comm("nccl", s, &nccl);
	if (err == LLM_OK)
		err = open_comm("cpu", NULL, &cpu);
	report(err == LLM_OK, "one-rank nccl communicator through the rendezvous%s", detail(err));
	for (int op = 0; err == LLM_OK && op < N_OP; op++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (!quick() || sizes[i] < 100000)
				check_op(nccl, cpu, s, (enum op)op, sizes[i]);
	if (err == LLM_OK) {
		check_stream_order(nccl, s);
		check_bytes_and_barrier(nccl);
	}
	llm_coll_destroy(nccl);
	llm_coll_destroy(cpu);
	check_host_buffer_refused(s);
	check_env(s);
	check_several_ranks(ndev);
	CUDA_CHECK(cudaSetDevice(0));

	CUDA_CHECK(cudaStreamDestroy(s));
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed ? 1 : 0;
}
