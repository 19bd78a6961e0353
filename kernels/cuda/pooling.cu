/* CUDA mean pooling for sentence embeddings (sentence-transformers' mean
 * Pooling, then its Normalize module), fp32.
 *
 * One block per batch row: each thread owns channels c = tid, tid + 256, ...
 * and sums positions [0, len) in order (coalesced across the block), divides
 * by len, and, if asked, the block sums squares in double (block_sum) and
 * divides by max(norm, 1e-12) as torch.nn.functional.normalize. Design
 * limit: parallelism is B blocks, which is what embedding requests batch;
 * a handful of rows leaves most SMs idle. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

#define POOL_BLOCK 256

/* ---- kernels ---- */

static __global__ void mean_pool_kernel(float *out, const float *inp, const int *lengths, int T,
					int C, int normalize)
{
	int b = blockIdx.x, len = lengths ? lengths[b] : T;
	float *o = out + (size_t)b * C;
	double ss = 0.0;

	len = len < 0 ? 0 : len > T ? T : len;
	for (int c = threadIdx.x; c < C; c += blockDim.x) {
		float acc = 0.0f;

		for (int t = 0; t < len; t++)
			acc += inp[((size_t)b * T + t) * C + c];
		if (len > 0)
			acc /= (float)len;
		o[c] = acc;
		ss += (double)acc * acc;
	}
	if (!normalize)
		return;
	double norm = sqrt(block_sum(ss));
	float den = (float)(norm > 1e-12 ? norm : 1e-12);
	for (int c = threadIdx.x; c < C; c += blockDim.x)
		o[c] /= den; /* a division, as torch */
}

/* ---- launchers ---- */

llm_err cuda_mean_pool_forward(float *out, const float *inp, const int *lengths, int B, int T,
			       int C, int normalize, void *stream)
{
	if (B < 1 || T < 1 || C < 1 || !out || !inp)
		return llm_fail(LLM_EINVAL, "cuda_mean_pool_forward: B=%d T=%d C=%d out=%p inp=%p",
				B, T, C, (void *)out, (const void *)inp);
	mean_pool_kernel<<<B, POOL_BLOCK, 0, (cudaStream_t)stream>>>(out, inp, lengths, T, C,
								     normalize);
	return cuda_check_launch("cuda_mean_pool_forward", "mean_pool_kernel");
}
