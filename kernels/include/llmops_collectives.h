/* llmops collectives: the communicator for data-parallel training.
 *
 * One communicator per worker process (or per thread in tests) joins a job of
 * `world_size` ranks. llm_coll_new() runs the rendezvous (rank 0 listens on
 * the master address and port; the others connect to it) and then connects
 * the chosen backend. Every collective must be called by all ranks in the
 * same order with the same sizes (and root); a mismatch is detected where the
 * backend can (the CPU backend compares a small header with its neighbour
 * before each operation) and returns LLM_EINVAL.
 *
 * Backends (docs/internals/collectives.md):
 *   "cpu"  ring algorithms over TCP on host buffers (kernels/collectives/cpu_ring.c);
 *   "nccl" NCCL on device buffers (kernels/collectives/nccl.cu), only in programs
 *          that link the CUDA objects; elsewhere asking for it is LLM_EUNSUPPORTED;
 *   "auto" "nccl" when NCCL is linked in and llm_backend_current() is CUDA,
 *          else "cpu".
 * With "nccl" every buffer is a device pointer on the CUDA device that was
 * current when llm_coll_new() ran, and each call is queued on cfg->stream
 * after the work already queued there, then waited for: when a call returns
 * LLM_OK the result is in buf, as with "cpu". "nccl" also runs at world size
 * 1 (rendezvous and a one-rank NCCL communicator), "cpu" does not need to.
 *
 * Determinism: the CPU backend adds in an order fixed by world size and
 * buffer length, so a run repeated with the same inputs gives bitwise the same
 * result, and every rank ends with bitwise-identical buffers. NCCL promises
 * neither (its algorithm choice may change with size and topology).
 *
 * Errors: every call returns an llm_err and records a detail that
 * llm_last_error() returns on the same thread: LLM_ETIMEDOUT when a deadline
 * passed (naming the ranks waited for), LLM_EIO when a peer closed or reset
 * its connection (naming the peer rank), LLM_EINVAL for bad arguments,
 * refused rendezvous (wrong world size, duplicate rank) or mismatched calls.
 * After a failed collective the communicator is broken: every later
 * collective fails at once with LLM_ECANCELED; destroy it. A communicator is
 * used by one thread at a time. */
#ifndef LLMOPS_COLLECTIVES_H
#define LLMOPS_COLLECTIVES_H

#include <stddef.h>

#include "llm_err.h"

/* Caps, checked by llm_coll_new(). */
#define LLM_COLL_MAX_WORLD  4096	/* ranks in one job */
#define LLM_COLL_MAX_JOB_ID 255		/* bytes of the job identifier */
#define LLM_COLL_MAX_BLOB   (64 * 1024) /* bytes of backend bootstrap data */

/* Defaults used when a timeout in struct llm_coll_config is <= 0. */
#define LLM_COLL_DEFAULT_TIMEOUT_S    300.0
#define LLM_COLL_DEFAULT_OP_TIMEOUT_S 300.0

/* How to join a job. Only read during llm_coll_new(); only the stream handle
 * is kept. */
struct llm_coll_config {
	const char *backend;	 /* "cpu", "nccl" or "auto"; NULL means "cpu" */
	int rank;		 /* 0 .. world_size - 1 */
	int world_size;		 /* 1 .. LLM_COLL_MAX_WORLD */
	const char *master_addr; /* rank 0's host name or IP (ignored when world_size is 1) */
	int master_port;	 /* rank 0's rendezvous port, 1 .. 65535; at world size 1
				    (nccl) 0 means any free port */
	const char *job_id;	 /* job and attempt, e.g. "ns/name/a3"; ranks from another
				    attempt are refused. NULL means "" */
	double timeout_s;	 /* rendezvous and connection setup deadline; <= 0: default */
	double op_timeout_s;	 /* deadline of each collective; <= 0: default */
	void *stream;		 /* nccl: the cudaStream_t the operations are queued on;
				    NULL is the legacy default stream. Kept until destroy */
};

/* Opaque communicator. */
struct llm_coll;

/* Joins the job described by cfg and returns the communicator in *out, or
 * NULL and an error: LLM_EINVAL (bad config, or refused by rank 0 with the
 * reason), LLM_ETIMEDOUT (rank 0 unreachable, or on rank 0 the ranks that
 * never arrived), LLM_EIO, LLM_ENOMEM, LLM_EUNSUPPORTED (unknown backend, or
 * "nccl" in a program without NCCL). World size 1 opens no socket with "cpu".
 * Blocks up to cfg->timeout_s. Free the result with llm_coll_destroy(). */
llm_err llm_coll_new(const struct llm_coll_config *cfg, struct llm_coll **out);

/* Fills cfg from the environment the operator sets on every worker:
 * LLMOPS_RANK, LLMOPS_WORLD_SIZE, LLMOPS_MASTER_ADDR, LLMOPS_MASTER_PORT and,
 * if present, LLMOPS_JOB_ID and LLMOPS_COLL_BACKEND. Timeouts are set to 0
 * (defaults). The strings point into the environment. LLM_EINVAL names a
 * missing or malformed variable. */
llm_err llm_coll_config_from_env(struct llm_coll_config *cfg);

/* Leaves the job: tells rank 0 this rank closes on purpose, closes every
 * socket and frees c. NULL is a no-op. */
void llm_coll_destroy(struct llm_coll *c);

/* This rank and the world size. */
int llm_coll_rank(const struct llm_coll *c);
int llm_coll_world_size(const struct llm_coll *c);

/* The backend's name, "cpu" or "nccl" ("auto" resolved): "nccl" takes
 * device buffers, "cpu" host ones. */
const char *llm_coll_backend(const struct llm_coll *c);

/* The shard layout of reduce_scatter and all_gather: a buffer of n elements
 * is cut into world_size contiguous chunks of ceil(n / world_size) elements,
 * rank r owning [r * chunk, min(n, (r + 1) * chunk)); the last chunks may be
 * shorter or empty. Writes rank's offset and count. */
void llm_coll_shard(size_t n, int world_size, int rank, size_t *offset, size_t *count);

/* In place: every rank's buf (n floats) becomes the element-wise sum over all
 * ranks, bitwise identical on every rank. n == 0 still synchronises with the
 * neighbours' headers but moves no data. buf may be NULL only when n == 0. */
llm_err llm_coll_all_reduce_sum(struct llm_coll *c, float *buf, size_t n);

/* As llm_coll_all_reduce_sum(), then each element is divided by the world
 * size (the same division on every rank, so results stay identical). */
llm_err llm_coll_all_reduce_mean(struct llm_coll *c, float *buf, size_t n);

/* Copies root's buf (nbytes) into every other rank's buf. For floats pass
 * n * sizeof(float). */
llm_err llm_coll_broadcast(struct llm_coll *c, void *buf, size_t nbytes, int root);

/* Returns on each rank only after every rank has entered the barrier. */
llm_err llm_coll_barrier(struct llm_coll *c);

/* In place: on return this rank's shard of buf (see llm_coll_shard()) holds
 * the element-wise sum over all ranks of that shard; the rest of buf is
 * scratch with unspecified contents. Same summation order as all_reduce, so
 * reduce_scatter followed by all_gather equals all_reduce_sum bit for bit. */
llm_err llm_coll_reduce_scatter_sum(struct llm_coll *c, float *buf, size_t n);

/* In place: each rank contributes its shard of buf (see llm_coll_shard());
 * on return every rank's buf holds all shards. Other elements are
 * overwritten. */
llm_err llm_coll_all_gather(struct llm_coll *c, float *buf, size_t n);

#endif
