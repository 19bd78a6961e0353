/* CUDA row softmax, fp32.
 *
 * One block per row. Each thread keeps an online (max, sum of exp(x - max))
 * pair over its strided elements, the pairs are merged by warp shuffles and
 * then across warps (block_maxsum in cuda_common.h), and a second pass
 * writes exp(x - max) / sum. Two reads and one write of the row instead of
 * the CPU's three reads; the sum is fp32 per thread and merged in a fixed
 * order (deterministic), within a few ulp of the CPU's double sum. Design
 * limit: a row shorter than the block leaves threads idle (256 threads for
 * rows up to 16k, 1024 above). */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

/* out (N,V) = softmax of each row of inp; out may equal inp (each thread
 * rewrites only elements it read, after the block-wide reduction) */
static __global__ void __launch_bounds__(1024)
	softmax_forward_kernel(float *out, const float *inp, int V)
{
	const float *x = inp + (size_t)blockIdx.x * V;
	float *o = out + (size_t)blockIdx.x * V;
	maxsum st = block_maxsum(thread_maxsum(x, V));
	float inv = (float)(1.0 / (double)st.s);

	for (int i = threadIdx.x; i < V; i += blockDim.x)
		o[i] = expf(x[i] - st.m) * inv;
}

/* ---- launchers ---- */

/* 256 threads per row up to 16k entries, 1024 above */
static unsigned row_threads(int V)
{
	return V > 16384 ? 1024 : 256;
}

llm_err cuda_softmax_forward(float *out, const float *inp, int N, int V, void *stream)
{
	if (N < 1 || V < 1 || !out || !inp)
		return llm_fail(LLM_EINVAL, "cuda_softmax_forward: N=%d V=%d out=%p inp=%p", N, V,
				(void *)out, (const void *)inp);
	softmax_forward_kernel<<<N, row_threads(V), 0, (cudaStream_t)stream>>>(out, inp, V);
	return cuda_check_launch("cuda_softmax_forward", "softmax_forward_kernel");
}
