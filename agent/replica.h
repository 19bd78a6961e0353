/* One data-parallel replica's trainable state, wherever it lives.
 *
 * The model keeps its parameters, gradients and AdamW moments in its own
 * memory: the host's on the CPU, the GPU's with LLM_MODEL_CUDA (and a
 * staged stand-in for it with LLM_MODEL_STAGED). The collectives take host
 * buffers ("cpu") or device buffers ("nccl"). This module moves values
 * between the two so the training loop reads the same either way:
 *   - the step's gradient sum (acc) stays in the model's memory and is
 *     accumulated there (llm_model_state_accumulate());
 *   - summing it across ranks goes straight to the collectives when they
 *     take the model's memory (the CPU, or a GPU with nccl), and through
 *     a host copy otherwise (a GPU with the cpu ring);
 *   - small host values (token counts, the loss) take a few floats of the
 *     model's memory when the collectives want device buffers;
 *   - checkpoints read and write the state through host views.
 * A CPU model with nccl is refused: nccl cannot take host memory. */
#ifndef AGENT_REPLICA_H
#define AGENT_REPLICA_H

#include <stdbool.h>
#include <stddef.h>

#include "llm_err.h"
#include "llmops_collectives.h"
#include "llmops_model.h"

#define REPLICA_SCALARS 8 /* floats one replica_sum_host() call may sum */
#define REPLICA_VIEWS	3 /* model arrays that may be staged on the host at once */

struct replica {
	llm_model *m;
	struct llm_coll *coll;
	bool coll_device;	    /* the collectives take device buffers (nccl) */
	struct llm_model_state st;  /* the model's arrays (its memory) */
	float *acc;		    /* st.n floats of the model's memory: the step's gradient sum */
	bool staged;		    /* the model's memory is not the host's */
	float *host[REPLICA_VIEWS]; /* st.n host floats each staging it, made on first use */
	float *scalars;		    /* REPLICA_SCALARS floats of the model's memory for host values
				       summed by device collectives, or NULL */
};

/* Takes m's training state (llm_model_train_state()) and the buffers the
 * moves above need. LLM_EINVAL for a model whose memory nccl cannot take,
 * LLM_ENOMEM. */
llm_err replica_init(struct replica *rp, llm_model *m, struct llm_coll *coll);
void replica_free(struct replica *rp);

/* acc = 0; acc += weight * the model's gradients (a micro batch's). */
llm_err replica_clear(struct replica *rp);
llm_err replica_accumulate(struct replica *rp, float weight);

/* Sums acc over the ranks into the model's gradients (st.grads), ready for
 * llm_model_step(). */
llm_err replica_reduce(struct replica *rp);

/* Sums n <= REPLICA_SCALARS host floats over the ranks, in place. */
llm_err replica_sum_host(struct replica *rp, float *buf, size_t n);

/* Broadcasts host bytes (at most REPLICA_SCALARS floats' worth), or a
 * model array of st.n floats (st.params, ...), from rank 0. */
llm_err replica_broadcast_host(struct replica *rp, void *buf, size_t bytes);
llm_err replica_broadcast_state(struct replica *rp, float *p);

/* *out = host floats holding the model array src (st.n floats): src itself
 * when the model's memory is the host's, else a copy in host[slot] (valid
 * until that slot's next use; replica_reduce() and
 * replica_broadcast_state() use slot 0). LLM_ENOMEM. */
llm_err replica_view(struct replica *rp, int slot, const float *src, const float **out);

/* For writing a model array dst from the host: *out = where to put its
 * st.n floats (dst itself, or host[slot]); replica_store() then stores
 * them. LLM_ENOMEM. */
llm_err replica_buffer(struct replica *rp, int slot, float *dst, float **out);
llm_err replica_store(struct replica *rp, float *dst, const float *host);

#endif
