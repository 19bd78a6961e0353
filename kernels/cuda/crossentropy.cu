/* CUDA fused softmax + cross-entropy loss + logits gradient, fp32.
 *
 * One block per row, the same online (max, sum) reduction as softmax.cu: one
 * pass over the row for the statistics, one for the gradient (two reads and
 * one write instead of the CPU's three reads). The loss is m + log(sum) -
 * x[target] evaluated in double. Ignored rows get loss 0 and a zero gradient.
 * The count of rows that were not ignored is an integer atomicAdd (exact,
 * order-independent) into a 4-byte stream-ordered workspace, copied back only
 * when the caller asks for it. Design limit: a target outside [0, V) that is
 * not ignore_index is the caller's bug; here it gives a NaN loss and no
 * gradient correction instead of an out-of-bounds read. */
#include <cuda_runtime.h>

#include <math.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

static __global__ void __launch_bounds__(1024)
	crossentropy_kernel(float *dlogits, float *losses, const float *logits, const int *targets,
			    int V, int ignore_index, float dloss, int *count)
{
	int n = blockIdx.x, target = targets[n];
	const float *x = logits + (size_t)n * V;
	float *d = dlogits ? dlogits + (size_t)n * V : NULL;
	maxsum st;

	if (target == ignore_index) { /* uniform over the block */
		if (threadIdx.x == 0)
			losses[n] = 0.0f;
		for (int i = threadIdx.x; d && i < V; i += blockDim.x)
			d[i] = 0.0f;
		return;
	}
	bool valid = target >= 0 && target < V;
	float xt = valid ? x[target] : NAN; /* read before d (maybe == x) is written */

	st = thread_maxsum(x, V);
	st = block_maxsum(st);
	if (threadIdx.x == 0) {
		losses[n] = (float)(st.m + log((double)st.s) - xt);
		if (count)
			atomicAdd(count, 1);
	}
	if (!d)
		return;
	float scale = (float)(dloss / (double)st.s);
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float g = expf(x[i] - st.m) * scale;

		if (i == target)
			g -= dloss;
		d[i] = g;
	}
}

/* ---- launchers ---- */

/* 256 threads per row up to 16k entries, 1024 above */
static unsigned row_threads(int V)
{
	return V > 16384 ? 1024 : 256;
}

llm_err cuda_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
					   const int *targets, int N, int V, int ignore_index,
					   float dloss, int *count, void *stream)
{
	const char *fn = "cuda_crossentropy_forward_backward";
	cudaStream_t s = (cudaStream_t)stream;
	int *dcount = NULL;
	cudaError_t cerr;
	llm_err err;

	if (N < 1 || V < 1 || !losses || !logits || !targets)
		return llm_fail(LLM_EINVAL, "%s: N=%d V=%d losses=%p logits=%p targets=%p", fn, N,
				V, (void *)losses, (const void *)logits, (const void *)targets);
	if (count) {
		cerr = cudaMallocAsync((void **)&dcount, sizeof(int), s);
		if (cerr == cudaSuccess)
			cerr = cudaMemsetAsync(dcount, 0, sizeof(int), s);
		if (cerr != cudaSuccess) {
			if (dcount)
				cudaFreeAsync(dcount, s);
			return cuda_fail(fn, "count workspace", cerr);
		}
	}
	crossentropy_kernel<<<N, row_threads(V), 0, s>>>(dlogits, losses, logits, targets, V,
							 ignore_index, dloss, dcount);
	err = cuda_check_launch(fn, "crossentropy_kernel");
	if (!count)
		return err;
	if (!err) {
		cerr = cudaMemcpyAsync(count, dcount, sizeof(int), cudaMemcpyDeviceToHost, s);
		if (cerr == cudaSuccess)
			cerr = cudaStreamSynchronize(s);
		if (cerr != cudaSuccess)
			err = cuda_fail(fn, "copying the count back", cerr);
	}
	cerr = cudaFreeAsync(dcount, s);
	if (!err && cerr != cudaSuccess)
		err = cuda_fail(fn, "cudaFreeAsync", cerr);
	return err;
}
