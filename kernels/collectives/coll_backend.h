/* The interface every collectives backend implements (internal).
 *
 * A backend is one file exporting one const struct coll_backend. coll.c
 * validates arguments, handles world size 1 without a backend (unless the
 * backend sets single_rank) and runs the rendezvous between prepare() and
 * connect(); the backend moves the data. Operations are only called with
 * world size >= 2 (or any size for single_rank backends), buffers non-NULL
 * when their size is non-zero and root in range. A failing call records a
 * detail with llm_fail(); coll.c then marks the communicator broken.
 *
 * C++ (the NCCL backend is a .cu file) includes this header inside an
 * extern "C" block, like every header without its own guards. */
#ifndef LLMOPS_COLL_BACKEND_H
#define LLMOPS_COLL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "llm_err.h"
#include "llmops_collectives.h"
#include "rendezvous.h"

struct coll_backend {
	const char *name;
	/* true: also used at world size 1, rendezvous included, so a one-rank
	 * job runs the same code as a larger one (NCCL on one GPU) */
	bool single_rank;
	/* Before the rendezvous: makes the backend state for cfg (rank, world,
	 * timeouts) in *state, writes the data-plane port this rank announces
	 * (0 for none) and, on rank 0, up to LLM_COLL_MAX_BLOB bytes of bootstrap
	 * data into blob with its size in *blob_len (the NCCL unique id). */
	llm_err (*prepare)(void **state, const struct llm_coll_config *cfg, int *data_port,
			   void *blob, size_t *blob_len);
	/* After it: connects to the peers before deadline. r (peer table, blob,
	 * control channel) outlives the state; the backend may keep it. */
	llm_err (*connect)(void *state, struct rdzv *r, double deadline);
	llm_err (*all_reduce_sum)(void *state, float *buf, size_t n);
	/* NULL: coll.c runs all_reduce_sum and divides on the host (host buffers) */
	llm_err (*all_reduce_mean)(void *state, float *buf, size_t n);
	llm_err (*reduce_scatter_sum)(void *state, float *buf, size_t n);
	llm_err (*all_gather)(void *state, float *buf, size_t n);
	llm_err (*broadcast)(void *state, void *buf, size_t nbytes, int root);
	llm_err (*barrier)(void *state);
	/* Frees the state (after prepare, with or without connect). */
	void (*destroy)(void *state);
};

extern const struct coll_backend coll_cpu_ring;
/* Defined by kernels/collectives/nccl.cu, which only programs built with the
 * CUDA objects link; coll.c refers to it weakly. */
extern const struct coll_backend coll_nccl;

#endif
