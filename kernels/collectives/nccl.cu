/* NCCL collectives backend ("nccl"): the collectives of llmops_collectives.h
 * on device buffers, one rank per GPU.
 *
 * Bootstrap: rank 0's prepare() calls ncclGetUniqueId and hands the 128-byte
 * id to every rank as the rendezvous blob; connect() creates the
 * communicator with ncclCommInitRankConfig on the device current at
 * llm_coll_new(). The communicator is non-blocking (config.blocking = 0), so
 * nothing waits inside NCCL: the host polls ncclCommGetAsyncError, a CUDA
 * event and the rendezvous control channel, and aborts the communicator
 * (ncclCommAbort) when the deadline passes, NCCL reports an error or another
 * rank is known to have failed. A failure here is reported on the control
 * channel as this rank's, so the other ranks stop at once too.
 *
 * Each operation is queued on the configured stream after the work already
 * queued there, and the call returns once it has completed on the device,
 * so buffers hold the result on return exactly as with the CPU backend.
 * Mean is ncclAvg. Reduce-scatter and all-gather keep llm_coll_shard()'s
 * layout: when n is a multiple of the world size they run in place on buf;
 * otherwise through a device scratch buffer of world * ceil(n / world)
 * floats (kept and grown as needed, so at most n + world floats), with one
 * extra device copy in and out.
 *
 * Design limit: one call at a time, each waited for on the host, so no
 * overlap of communication with computation across calls; polling adds up to
 * POLL_NS of latency per operation. */
#include <cuda_runtime.h>
#include <nccl.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "coll_backend.h"
#include "net.h"
}

#define POLL_NS 50000 /* between polls of an operation in flight */

struct nccl {
	int rank, world, device;
	double timeout_s, op_timeout_s; /* setup; each operation */
	double deadline, limit_s;	/* of the wait in progress, and its length */
	cudaStream_t stream;
	cudaEvent_t done;  /* recorded after each operation */
	ncclComm_t comm;   /* NULL until connected, and after an abort */
	struct rdzv *rdzv; /* the control channel */
	float *scratch;	   /* device, for padded shards; scratch_n floats */
	size_t scratch_n;
	float *one;	     /* device, one float for the barrier */
	const char *op;	     /* the running operation, for messages */
	struct pollfd *pfds; /* world entries */
};

/* --- errors ----------------------------------------------------------------------------- */

static llm_err llm_code_of(ncclResult_t r)
{
	switch (r) {
	case ncclInvalidArgument:
	case ncclInvalidUsage: return LLM_EINVAL;
	case ncclSystemError:
	case ncclRemoteError: return LLM_EIO;
	case ncclTimeout: return LLM_ETIMEDOUT;
	default: return LLM_EINTERNAL;
	}
}

/* "nccl <op>: <what>: <NCCL result> (<NCCL's last error>)" */
static llm_err nccl_fail(const struct nccl *g, const char *what, ncclResult_t r)
{
	const char *last = ncclGetLastError(g->comm);
	bool has = last && *last;

	return llm_fail(llm_code_of(r), "nccl %s: %s: %s%s%s%s", g->op, what, ncclGetErrorString(r),
			has ? " (" : "", has ? last : "", has ? ")" : "");
}

static llm_err cuda_err(const struct nccl *g, const char *what, cudaError_t e)
{
	return llm_fail(LLM_EINTERNAL, "nccl %s: %s: %s (%s)", g->op, what, cudaGetErrorName(e),
			cudaGetErrorString(e));
}

/* Ends the communicator after a failure: aborts it and tells the other ranks
 * this rank failed, so nobody waits for its share. Returns err. */
static llm_err give_up(struct nccl *g, llm_err err)
{
	if (g->comm) {
		ncclCommAbort(g->comm);
		g->comm = NULL;
	}
	if (g->rdzv)
		rdzv_ctrl_report(g->rdzv, g->rank);
	return err;
}

/* --- waiting ---------------------------------------------------------------------------- */

/* Starts a wait of limit_s seconds (the deadline the waits below check). */
static void wait_start(struct nccl *g, double limit_s)
{
	g->limit_s = limit_s;
	g->deadline = net_now() + limit_s;
}

/* Sleeps up to POLL_NS watching the control channel, then fails when a rank
 * is known to have failed or the deadline passed; what names the wait. */
static llm_err still_waiting(struct nccl *g, const char *what)
{
	struct timespec ts = {0, POLL_NS};
	int n = g->rdzv ? rdzv_ctrl_pollfds(g->rdzv, g->pfds, g->world) : 0;
	int failed;

	if (ppoll(n ? g->pfds : NULL, (nfds_t)n, &ts, NULL) > 0)
		rdzv_ctrl_check(g->rdzv, g->pfds, n);
	failed = g->rdzv ? rdzv_failed_rank(g->rdzv) : -1;
	if (failed >= 0)
		return llm_fail(LLM_EIO,
				"nccl %s: rank %d failed or left the job (see that rank's log)",
				g->op, failed);
	if (net_now() > g->deadline)
		return llm_fail(LLM_ETIMEDOUT, "nccl %s: %s took longer than %g s", g->op, what,
				g->limit_s);
	return LLM_OK;
}

/* After an NCCL call returned r: waits while the non-blocking communicator
 * is in progress (init, enqueue, finalize); LLM_OK once it is ready. */
static llm_err settle(struct nccl *g, const char *what, ncclResult_t r)
{
	llm_err err = LLM_OK;

	while (r == ncclInProgress && err == LLM_OK) {
		ncclResult_t q = ncclCommGetAsyncError(g->comm, &r);

		if (q != ncclSuccess)
			r = q;
		else if (r == ncclInProgress)
			err = still_waiting(g, what);
	}
	if (err == LLM_OK && r != ncclSuccess)
		err = nccl_fail(g, what, r);
	return err;
}

/* Waits until everything queued on the stream so far has run on the device,
 * watching NCCL's asynchronous errors and the control channel. */
static llm_err complete(struct nccl *g)
{
	cudaError_t e = cudaEventRecord(g->done, g->stream);

	if (e != cudaSuccess)
		return cuda_err(g, "cudaEventRecord", e);
	for (;;) {
		ncclResult_t r = ncclSuccess, q;
		llm_err err;

		e = cudaEventQuery(g->done);
		if (e == cudaSuccess)
			return LLM_OK;
		if (e != cudaErrorNotReady)
			return cuda_err(g, "running the operation", e);
		q = ncclCommGetAsyncError(g->comm, &r);
		if (q != ncclSuccess || (r != ncclSuccess && r != ncclInProgress))
			return nccl_fail(g, "asynchronous error", q != ncclSuccess ? q : r);
		err = still_waiting(g, "the operation");
		if (err != LLM_OK)
			return err;
	}
}

/* --- operations ------------------------------------------------------------------------- */

/* Checks that buf is device memory of the communicator's device. */
static llm_err check_buffer(struct nccl *g, const void *buf)
{
	struct cudaPointerAttributes a;
	cudaError_t e = cudaPointerGetAttributes(&a, buf);

	if (e != cudaSuccess)
		return cuda_err(g, "cudaPointerGetAttributes", e);
	if ((a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) ||
	    a.device != g->device)
		return llm_fail(LLM_EINVAL,
				"nccl %s: buffer %p is not memory of CUDA device %d: the nccl "
				"backend takes device pointers",
				g->op, buf, g->device);
	return LLM_OK;
}

/* Starts an operation on buf (count elements, NULL for none): names it,
 * starts its deadline, and fails if the communicator was aborted, a rank is
 * known to have failed, another device is current or buf is not memory of
 * this device. */
static llm_err op_begin(struct nccl *g, const char *op, const void *buf, size_t count)
{
	cudaError_t e;
	int dev;

	g->op = op;
	wait_start(g, g->op_timeout_s);
	if (!g->comm)
		return llm_fail(LLM_ECANCELED, "nccl %s: the communicator was aborted", op);
	if (g->rdzv && rdzv_failed_rank(g->rdzv) >= 0)
		return llm_fail(LLM_EIO, "nccl %s: rank %d failed or left the job", op,
				rdzv_failed_rank(g->rdzv));
	if ((e = cudaGetDevice(&dev)) != cudaSuccess)
		return cuda_err(g, "cudaGetDevice", e);
	if (dev != g->device)
		return llm_fail(LLM_EINVAL,
				"nccl %s: called with CUDA device %d current; the communicator "
				"is on device %d",
				op, dev, g->device);
	return buf && count ? check_buffer(g, buf) : LLM_OK;
}

/* Waits for an NCCL call that returned r to be queued, then for everything
 * queued so far to complete. */
static llm_err run(struct nccl *g, ncclResult_t r)
{
	llm_err err = settle(g, "enqueue", r);

	return err == LLM_OK ? complete(g) : err;
}

/* An operation's result: on failure the communicator is aborted. */
static llm_err op_end(struct nccl *g, llm_err err)
{
	return err == LLM_OK ? LLM_OK : give_up(g, err);
}

/* Makes the scratch buffer hold at least n floats. Only called between
 * operations, when nothing on the device uses it. */
static llm_err scratch_reserve(struct nccl *g, size_t n)
{
	cudaError_t e;

	if (g->scratch_n >= n)
		return LLM_OK;
	if (g->scratch && (e = cudaFree(g->scratch)) != cudaSuccess)
		return cuda_err(g, "cudaFree", e);
	g->scratch = NULL;
	g->scratch_n = 0;
	if ((e = cudaMalloc((void **)&g->scratch, n * sizeof(float))) != cudaSuccess) {
		g->scratch = NULL;
		return llm_fail(LLM_ENOMEM, "nccl %s: cudaMalloc of %zu floats of scratch: %s",
				g->op, n, cudaGetErrorString(e));
	}
	g->scratch_n = n;
	return LLM_OK;
}

/* Queues a device-to-device copy of n floats on the stream. */
static llm_err copy_async(struct nccl *g, float *dst, const float *src, size_t n)
{
	cudaError_t e;

	if (n == 0)
		return LLM_OK;
	e = cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, g->stream);
	return e == cudaSuccess ? LLM_OK : cuda_err(g, "cudaMemcpyAsync", e);
}

static llm_err all_reduce(struct nccl *g, float *buf, size_t n, ncclRedOp_t op, const char *name)
{
	llm_err err = op_begin(g, name, buf, n);

	if (err == LLM_OK && n)
		err = run(g, ncclAllReduce(buf, buf, n, ncclFloat, op, g->comm, g->stream));
	return op_end(g, err);
}

static llm_err nccl_all_reduce_sum(void *state, float *buf, size_t n)
{
	return all_reduce((struct nccl *)state, buf, n, ncclSum, "all_reduce_sum");
}

static llm_err nccl_all_reduce_mean(void *state, float *buf, size_t n)
{
	return all_reduce((struct nccl *)state, buf, n, ncclAvg, "all_reduce_mean");
}

/* ceil(n / world): the shard size NCCL sees (every shard padded to it) */
static size_t chunk_of(const struct nccl *g, size_t n)
{
	return (n + (size_t)g->world - 1) / (size_t)g->world;
}

/* Padded reduce-scatter: buf into scratch, zeros after it, the NCCL call in
 * place on scratch, then this rank's shard back into buf. */
static llm_err reduce_scatter_padded(struct nccl *g, float *buf, size_t n, size_t chunk)
{
	size_t total = chunk * (size_t)g->world, off, cnt;
	float *s;
	cudaError_t e;
	llm_err err = scratch_reserve(g, total);

	if (err == LLM_OK)
		err = copy_async(g, g->scratch, buf, n);
	if (err != LLM_OK)
		return err;
	s = g->scratch;
	e = cudaMemsetAsync(s + n, 0, (total - n) * sizeof(float), g->stream);
	if (e != cudaSuccess)
		return cuda_err(g, "cudaMemsetAsync", e);
	err = run(g, ncclReduceScatter(s, s + (size_t)g->rank * chunk, chunk, ncclFloat, ncclSum,
				       g->comm, g->stream));
	llm_coll_shard(n, g->world, g->rank, &off, &cnt);
	if (err == LLM_OK)
		err = copy_async(g, buf + off, s + off, cnt);
	return err == LLM_OK ? complete(g) : err;
}

static llm_err nccl_reduce_scatter_sum(void *state, float *buf, size_t n)
{
	struct nccl *g = (struct nccl *)state;
	size_t chunk = chunk_of(g, n);
	llm_err err = op_begin(g, "reduce_scatter_sum", buf, n);

	if (err != LLM_OK || n == 0)
		return op_end(g, err);
	if (chunk * (size_t)g->world != n)
		return op_end(g, reduce_scatter_padded(g, buf, n, chunk));
	return op_end(g, run(g, ncclReduceScatter(buf, buf + (size_t)g->rank * chunk, chunk,
						  ncclFloat, ncclSum, g->comm, g->stream)));
}

/* Padded all-gather: this rank's shard into scratch, the NCCL call in place
 * on scratch, then the first n floats back into buf. */
static llm_err all_gather_padded(struct nccl *g, float *buf, size_t n, size_t chunk)
{
	size_t off, cnt;
	float *s;
	llm_err err = scratch_reserve(g, chunk * (size_t)g->world);

	llm_coll_shard(n, g->world, g->rank, &off, &cnt);
	if (err == LLM_OK)
		err = copy_async(g, g->scratch + off, buf + off, cnt);
	if (err != LLM_OK)
		return err;
	s = g->scratch;
	err = run(g, ncclAllGather(s + (size_t)g->rank * chunk, s, chunk, ncclFloat, g->comm,
				   g->stream));
	if (err == LLM_OK)
		err = copy_async(g, buf, s, n);
	return err == LLM_OK ? complete(g) : err;
}

static llm_err nccl_all_gather(void *state, float *buf, size_t n)
{
	struct nccl *g = (struct nccl *)state;
	size_t chunk = chunk_of(g, n);
	llm_err err = op_begin(g, "all_gather", buf, n);

	if (err != LLM_OK || n == 0)
		return op_end(g, err);
	if (chunk * (size_t)g->world != n)
		return op_end(g, all_gather_padded(g, buf, n, chunk));
	return op_end(g, run(g, ncclAllGather(buf + (size_t)g->rank * chunk, buf, chunk, ncclFloat,
					      g->comm, g->stream)));
}

static llm_err nccl_broadcast(void *state, void *buf, size_t nbytes, int root)
{
	struct nccl *g = (struct nccl *)state;
	llm_err err = op_begin(g, "broadcast", buf, nbytes);

	if (err == LLM_OK && nbytes)
		err = run(g, ncclBroadcast(buf, buf, nbytes, ncclUint8, root, g->comm, g->stream));
	return op_end(g, err);
}

/* An all-reduce of one device float, waited for: nobody's finishes before
 * every rank has queued its own. */
static llm_err nccl_barrier(void *state)
{
	struct nccl *g = (struct nccl *)state;
	llm_err err = op_begin(g, "barrier", NULL, 0);

	if (err == LLM_OK)
		err = run(g,
			  ncclAllReduce(g->one, g->one, 1, ncclFloat, ncclSum, g->comm, g->stream));
	return op_end(g, err);
}

/* --- setup ------------------------------------------------------------------------------ */

static void nccl_destroy(void *state)
{
	struct nccl *g = (struct nccl *)state;

	if (!g)
		return;
	g->op = "destroy";
	if (g->comm) {
		ncclComm_t comm = g->comm;

		/* finalize waits for the peers; abort when that fails or times out */
		wait_start(g, g->op_timeout_s);
		if (settle(g, "ncclCommFinalize", ncclCommFinalize(comm)) == LLM_OK)
			ncclCommDestroy(comm);
		else
			ncclCommAbort(comm);
		g->comm = NULL;
	}
	cudaFree(g->scratch);
	cudaFree(g->one);
	if (g->done)
		cudaEventDestroy(g->done);
	free(g->pfds);
	free(g);
}

/* The device, the stream, and the event and barrier float every rank needs. */
static llm_err device_setup(struct nccl *g, void *stream)
{
	cudaError_t e = cudaGetDevice(&g->device);

	if (e != cudaSuccess)
		return llm_fail(LLM_ENOTFOUND, "nccl collectives: no usable CUDA device: %s (%s)",
				cudaGetErrorName(e), cudaGetErrorString(e));
	g->stream = (cudaStream_t)stream;
	if ((e = cudaEventCreateWithFlags(&g->done, cudaEventDisableTiming)) != cudaSuccess)
		return cuda_err(g, "cudaEventCreateWithFlags", e);
	if ((e = cudaMalloc((void **)&g->one, sizeof(float))) != cudaSuccess)
		return cuda_err(g, "cudaMalloc", e);
	if ((e = cudaMemset(g->one, 0, sizeof(float))) != cudaSuccess)
		return cuda_err(g, "cudaMemset", e);
	return LLM_OK;
}

static llm_err nccl_prepare(void **state, const struct llm_coll_config *cfg, int *data_port,
			    void *blob, size_t *blob_len)
{
	struct nccl *g = (struct nccl *)calloc(1, sizeof(*g));
	ncclUniqueId id;
	ncclResult_t r;
	llm_err err;

	*state = g;
	*data_port = 0; /* NCCL opens its own connections */
	*blob_len = 0;
	if (!g)
		return llm_fail(LLM_ENOMEM, "nccl collectives: out of memory");
	g->rank = cfg->rank;
	g->world = cfg->world_size;
	g->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : LLM_COLL_DEFAULT_TIMEOUT_S;
	g->op_timeout_s = cfg->op_timeout_s > 0 ? cfg->op_timeout_s : LLM_COLL_DEFAULT_OP_TIMEOUT_S;
	g->op = "setup";
	g->pfds = (struct pollfd *)calloc((size_t)g->world, sizeof(*g->pfds));
	if (!g->pfds)
		return llm_fail(LLM_ENOMEM, "nccl collectives: out of memory");
	err = device_setup(g, cfg->stream);
	if (err != LLM_OK || g->rank != 0)
		return err;
	r = ncclGetUniqueId(&id);
	if (r != ncclSuccess)
		return nccl_fail(g, "ncclGetUniqueId", r);
	memcpy(blob, &id, sizeof(id));
	*blob_len = sizeof(id);
	return LLM_OK;
}

/* Creates the communicator from rank 0's unique id before deadline. */
static llm_err nccl_connect(void *state, struct rdzv *r, double deadline)
{
	struct nccl *g = (struct nccl *)state;
	ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
	ncclUniqueId id;
	size_t len;
	const void *blob = rdzv_blob(r, &len);
	llm_err err;

	g->rdzv = r;
	g->op = "init";
	g->limit_s = g->timeout_s;
	g->deadline = deadline;
	if (len != sizeof(id))
		return give_up(g, llm_fail(LLM_EINVAL,
					   "nccl collectives: rank 0 sent %zu bytes of bootstrap "
					   "data, not an NCCL unique id (%zu): does rank 0 run "
					   "another backend?",
					   len, sizeof(id)));
	memcpy(&id, blob, sizeof(id));
	config.blocking = 0; /* every wait is ours, with a deadline */
	err = settle(g, "ncclCommInitRankConfig",
		     ncclCommInitRankConfig(&g->comm, g->world, id, g->rank, &config));
	return err == LLM_OK ? LLM_OK : give_up(g, err);
}

/* Positional: nvcc's C++17 has no designated initializers. */
extern "C" const struct coll_backend coll_nccl = {
	"nccl",			 /* name */
	true,			 /* single_rank */
	nccl_prepare,		 /* prepare */
	nccl_connect,		 /* connect */
	nccl_all_reduce_sum,	 /* all_reduce_sum */
	nccl_all_reduce_mean,	 /* all_reduce_mean */
	nccl_reduce_scatter_sum, /* reduce_scatter_sum */
	nccl_all_gather,	 /* all_gather */
	nccl_broadcast,		 /* broadcast */
	nccl_barrier,		 /* barrier */
	nccl_destroy,		 /* destroy */
};
