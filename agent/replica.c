/* One data-parallel replica's trainable state across host and device memory
 * (replica.h). */
#include "replica.h"

#include <stdlib.h>
#include <string.h>

static int world(const struct replica *rp)
{
	return llm_coll_world_size(rp->coll);
}

llm_err replica_init(struct replica *rp, llm_model *m, struct llm_coll *coll)
{
	llm_err rc;

	*rp = (struct replica){.m = m, .coll = coll};
	rp->coll_device = !strcmp(llm_coll_backend(coll), "nccl");
	if (rp->coll_device && strncmp(llm_model_backend(m), "cuda", 4))
		return llm_fail(LLM_EINVAL,
				"the nccl collectives need the model on a GPU, and it runs on "
				"%s; set LLMOPS_COLL_BACKEND=cpu or run where CUDA works",
				llm_model_backend(m));
	rc = llm_model_train_state(m, &rp->st);
	if (!rc)
		rc = llm_model_state_alloc(m, rp->st.n, &rp->acc);
	if (!rc && rp->coll_device)
		rc = llm_model_state_alloc(m, REPLICA_SCALARS, &rp->scalars);
	rp->staged = !llm_model_host_memory(m);
	return rc;
}

/* host[slot], made on first use */
static llm_err stage(struct replica *rp, int slot, float **out)
{
	if (!rp->host[slot])
		rp->host[slot] = malloc(rp->st.n ? rp->st.n * sizeof(float) : 1);
	*out = rp->host[slot];
	if (!*out)
		return llm_fail(LLM_ENOMEM, "out of memory for a host copy of %zu trainable values",
				rp->st.n);
	return LLM_OK;
}

void replica_free(struct replica *rp)
{
	if (rp->m) {
		llm_model_state_free(rp->m, rp->acc);
		llm_model_state_free(rp->m, rp->scalars);
	}
	for (int i = 0; i < REPLICA_VIEWS; i++)
		free(rp->host[i]);
	*rp = (struct replica){0};
}

llm_err replica_clear(struct replica *rp)
{
	return llm_model_state_zero(rp->m, rp->acc, rp->st.n);
}

llm_err replica_accumulate(struct replica *rp, float weight)
{
	return llm_model_state_accumulate(rp->m, rp->acc, rp->st.grads, weight, rp->st.n);
}

llm_err replica_reduce(struct replica *rp)
{
	size_t n = rp->st.n;
	float *host;
	llm_err rc = LLM_OK;

	if (world(rp) == 1 || rp->coll_device || !rp->staged) {
		if (world(rp) > 1)
			rc = llm_coll_all_reduce_sum(rp->coll, rp->acc, n);
		return rc ? rc : llm_model_state_copy(rp->m, rp->st.grads, rp->acc, n);
	}
	rc = stage(rp, 0, &host);
	if (!rc)
		rc = llm_model_state_download(rp->m, host, rp->acc, n);
	if (!rc)
		rc = llm_coll_all_reduce_sum(rp->coll, host, n);
	return rc ? rc : llm_model_state_upload(rp->m, rp->st.grads, host, n);
}

llm_err replica_sum_host(struct replica *rp, float *buf, size_t n)
{
	llm_err rc;

	if (n > REPLICA_SCALARS)
		return llm_fail(LLM_EINVAL, "replica_sum_host: %zu floats, at most %d", n,
				REPLICA_SCALARS);
	if (world(rp) == 1)
		return LLM_OK;
	if (!rp->coll_device)
		return llm_coll_all_reduce_sum(rp->coll, buf, n);
	rc = llm_model_state_upload(rp->m, rp->scalars, buf, n);
	if (!rc)
		rc = llm_coll_all_reduce_sum(rp->coll, rp->scalars, n);
	return rc ? rc : llm_model_state_download(rp->m, buf, rp->scalars, n);
}

llm_err replica_broadcast_host(struct replica *rp, void *buf, size_t bytes)
{
	size_t n = bytes / sizeof(float);
	llm_err rc;

	if (bytes % sizeof(float) || n > REPLICA_SCALARS)
		return llm_fail(LLM_EINVAL,
				"replica_broadcast_host: %zu bytes, at most %d whole floats", bytes,
				REPLICA_SCALARS);
	if (world(rp) == 1)
		return LLM_OK;
	if (!rp->coll_device)
		return llm_coll_broadcast(rp->coll, buf, bytes, 0);
	rc = llm_model_state_upload(rp->m, rp->scalars, buf, n);
	if (!rc)
		rc = llm_coll_broadcast(rp->coll, rp->scalars, bytes, 0);
	return rc ? rc : llm_model_state_download(rp->m, buf, rp->scalars, n);
}

llm_err replica_broadcast_state(struct replica *rp, float *p)
{
	size_t n = rp->st.n;
	float *host;
	llm_err rc;

	if (world(rp) == 1)
		return LLM_OK;
	if (rp->coll_device || !rp->staged)
		return llm_coll_broadcast(rp->coll, p, n * sizeof(float), 0);
	rc = stage(rp, 0, &host);
	if (!rc && llm_coll_rank(rp->coll) == 0)
		rc = llm_model_state_download(rp->m, host, p, n);
	if (!rc)
		rc = llm_coll_broadcast(rp->coll, host, n * sizeof(float), 0);
	return rc ? rc : llm_model_state_upload(rp->m, p, host, n);
}

llm_err replica_view(struct replica *rp, int slot, const float *src, const float **out)
{
	float *host;
	llm_err rc;

	*out = src;
	if (!rp->staged)
		return LLM_OK;
	rc = stage(rp, slot, &host);
	*out = host;
	return rc ? rc : llm_model_state_download(rp->m, host, src, rp->st.n);
}

llm_err replica_buffer(struct replica *rp, int slot, float *dst, float **out)
{
	*out = dst;
	return rp->staged ? stage(rp, slot, out) : LLM_OK;
}

llm_err replica_store(struct replica *rp, float *dst, const float *host)
{
	return host == dst ? LLM_OK : llm_model_state_upload(rp->m, dst, host, rp->st.n);
}
