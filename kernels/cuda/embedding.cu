/* CUDA token + position embedding, forward and backward, fp32.
 *
 * Forward is a grid-stride gather over the B*T*C outputs. Backward is a
 * scatter-add made deterministic without atomics or a sort: the block of
 * row bt first checks whether any earlier row has the same token (a
 * block-wide __syncthreads_or over the earlier tokens, 256 at a time) and
 * quits if so; otherwise it is its token's leader and walks the later rows
 * in (b,t) order, 256 tokens at a time, adding every row that matches, then
 * adds the total into dwte once. Chunks without a match cost one
 * __syncthreads_count, so the work is B*T*C data plus about (B*T)^2 / 256
 * token comparisons per channel block: cheap up to B*T of a few tens of
 * thousands, the design limit (a sorted index, e.g. a radix sort of
 * (token, bt) pairs, would remove the quadratic term but needs a workspace
 * the CPU contract does not have). dwpe: one thread per (t, c) sums the
 * batch in order. */
#include <cuda_runtime.h>

#include <limits.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* threads per block of the backward kernels, also the token chunk length */
#define EMB_BLOCK 256

/* ---- kernels ---- */

/* out (B,T,C) = wte[tokens[b,t]] + wpe[pos0 + t] (wpe may be NULL) */
static __global__ void embedding_forward_kernel(float *out, const int *tokens, const float *wte,
						const float *wpe, int BT, int T, int C, int pos0)
{
	size_t n = (size_t)BT * C, stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
		size_t bt = i / C, c = i % C;
		float e = wte[(size_t)tokens[bt] * C + c];

		if (wpe)
			e += wpe[(size_t)(pos0 + (int)(bt % T)) * C + c];
		out[i] = e;
	}
}

/* Block (bt, channel block y): if bt is the first row with its token, adds
 * the sum of every row with that token into dwte (see the file comment). */
static __global__ void embedding_dwte_kernel(float *dwte, const float *dout, const int *tokens,
					     int BT, int C)
{
	__shared__ int match[EMB_BLOCK];
	int bt = blockIdx.x, tok = tokens[bt];
	int c = blockIdx.y * EMB_BLOCK + threadIdx.x;
	float acc = 0.0f;

	for (int j0 = 0; j0 < bt; j0 += EMB_BLOCK) {
		int j = j0 + threadIdx.x;

		if (__syncthreads_or(j < bt && tokens[j] == tok))
			return; /* an earlier row leads this token; uniform exit */
	}
	for (int j0 = bt; j0 < BT; j0 += EMB_BLOCK) {
		int j = j0 + threadIdx.x, hit = j < BT && tokens[j] == tok;
		int n = BT - j0 < EMB_BLOCK ? BT - j0 : EMB_BLOCK;

		match[threadIdx.x] = hit;
		if (__syncthreads_count(hit) > 0 && c < C)
			for (int jj = 0; jj < n; jj++)
				if (match[jj])
					acc += dout[(size_t)(j0 + jj) * C + c];
		__syncthreads(); /* match[] is rewritten next chunk */
	}
	if (c < C)
		dwte[(size_t)tok * C + c] += acc;
}

/* dwpe[pos0 + t] (C) += sum over b of dout[b,t]; one thread per (t, c) */
static __global__ void embedding_dwpe_kernel(float *dwpe, const float *dout, int B, int T, int C,
					     int pos0)
{
	size_t n = (size_t)T * C, stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
		size_t t = i / C, c = i % C;
		float acc = 0.0f;

		for (int b = 0; b < B; b++)
			acc += dout[((size_t)b * T + t) * C + c];
		dwpe[(size_t)(pos0 + t) * C + c] += acc;
	}
}

/* ---- launchers ---- */

llm_err cuda_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe,
			       int B, int T, int C, int pos0, void *stream)
{
	long long BT = (long long)B * T;

	if (B < 1 || T < 1 || C < 1 || pos0 < 0 || BT > INT_MAX || !out || !tokens || !wte)
		return llm_fail(LLM_EINVAL,
				"cuda_embedding_forward: B=%d T=%d C=%d pos0=%d out=%p tokens=%p "
				"wte=%p",
				B, T, C, pos0, (void *)out, (const void *)tokens,
				(const void *)wte);
	embedding_forward_kernel<<<grid_for((size_t)BT * C), LLMOPS_BLOCK, 0,
				   (cudaStream_t)stream>>>(out, tokens, wte, wpe, (int)BT, T, C,
							   pos0);
	return cuda_check_launch("cuda_embedding_forward", "embedding_forward_kernel");
}

llm_err cuda_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
				int B, int T, int C, int pos0, void *stream)
{
	const char *fn = "cuda_embedding_backward";
	cudaStream_t s = (cudaStream_t)stream;
	long long BT = (long long)B * T;
	size_t cblocks = ceil_div((size_t)(C > 0 ? C : 1), EMB_BLOCK);
	llm_err err;

	if (B < 1 || T < 1 || C < 1 || pos0 < 0 || BT > INT_MAX || cblocks > 65535 || !dout ||
	    (dwte && !tokens))
		return llm_fail(LLM_EINVAL, "%s: B=%d T=%d C=%d pos0=%d dout=%p tokens=%p", fn, B,
				T, C, pos0, (const void *)dout, (const void *)tokens);
	if (dwte) {
		embedding_dwte_kernel<<<dim3((unsigned)BT, (unsigned)cblocks), EMB_BLOCK, 0, s>>>(
			dwte, dout, tokens, (int)BT, C);
		if ((err = cuda_check_launch(fn, "embedding_dwte_kernel")))
			return err;
	}
	if (!dwpe)
		return LLM_OK;
	embedding_dwpe_kernel<<<grid_for((size_t)T * C), LLMOPS_BLOCK, 0, s>>>(dwpe, dout, B, T, C,
									       pos0);
	return cuda_check_launch(fn, "embedding_dwpe_kernel");
}
