/* CUDA top-k per row, fp32: values descending, ties broken by lower index,
 * NaN above every number (as cpu_topk_forward and torch.topk).
 *
 * One block of SELECT_BLOCK threads per row, no global scratch:
 *   1. block_descent (select.cuh) finds the key of the k-th largest element
 *      in four histogram passes over the row, and how many rank above it;
 *   2. block_nth_tie finds the index of the last tie that still makes the
 *      cut (equal values go by lower index);
 *   3. the k winners are gathered into shared memory (in any order) and a
 *      bitonic sort on (key descending, index ascending) orders them, so the
 *      result does not depend on the gather order.
 * Work per row is about five reads of the row plus O(k log^2 k) in shared
 * memory. Design limit: k <= TOPK_MAX (2048), what fits the sort in shared
 * memory; larger k belongs to a segmented radix sort. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"
#include "select.cuh"

#define TOPK_MAX 2048

/* ---- kernels ---- */

/* true when (ka, ia) ranks before (kb, ib) */
static __device__ __forceinline__ bool ranks_before(uint32_t ka, int ia, uint32_t kb, int ib)
{
	return ka > kb || (ka == kb && ia < ib);
}

/* Sorts the P (a power of two) pairs of skey/sidx in ranking order. */
static __device__ void bitonic_sort(uint32_t *skey, int *sidx, int P)
{
	for (int size = 2; size <= P; size <<= 1)
		for (int stride = size / 2; stride > 0; stride >>= 1) {
			__syncthreads();
			for (int i = threadIdx.x; i < P; i += blockDim.x) {
				int l = i ^ stride;

				if (l <= i)
					continue;
				bool up = (i & size) == 0;
				bool swap = up ? ranks_before(skey[l], sidx[l], skey[i], sidx[i])
					       : ranks_before(skey[i], sidx[i], skey[l], sidx[l]);
				if (swap) {
					uint32_t tk = skey[i];
					int ti = sidx[i];

					skey[i] = skey[l], sidx[i] = sidx[l];
					skey[l] = tk, sidx[l] = ti;
				}
			}
		}
	__syncthreads();
}

static __global__ void __launch_bounds__(SELECT_BLOCK)
	topk_kernel(float *values, int *indices, const float *inp, int V, int k)
{
	__shared__ descent_shared sh;
	__shared__ uint32_t skey[TOPK_MAX];
	__shared__ int sidx[TOPK_MAX];
	__shared__ int slot;
	const float *x = inp + (size_t)blockIdx.x * V;
	row_filter all = {0, 1.0f, 0.0f, 0, 0, INT_MAX, 0, 0.0f, -1};
	descent d = block_descent(x, V, &all, (double)k, false, &sh);
	int cut = block_nth_tie(x, V, &all, d.key, k - d.above);
	int P = 1;

	while (P < k)
		P <<= 1;
	for (int i = threadIdx.x; i < P; i += blockDim.x)
		skey[i] = 0, sidx[i] = INT_MAX; /* ranks after every real pair */
	if (threadIdx.x == 0)
		slot = 0;
	__syncthreads();
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		uint32_t u = order_key(x[i]);

		if (u > d.key || (u == d.key && i <= cut)) {
			int at = atomicAdd(&slot, 1);

			if (at < k)
				skey[at] = u, sidx[at] = i;
		}
	}
	bitonic_sort(skey, sidx, P);
	for (int i = threadIdx.x; i < k; i += blockDim.x) {
		values[(size_t)blockIdx.x * k + i] = x[sidx[i]];
		indices[(size_t)blockIdx.x * k + i] = sidx[i];
	}
}

/* ---- launchers ---- */

llm_err cuda_topk_forward(float *values, int *indices, const float *inp, int N, int V, int k,
			  void *stream)
{
	if (N < 1 || V < 1 || k < 1 || k > V || k > TOPK_MAX || !values || !indices || !inp)
		return llm_fail(LLM_EINVAL, "cuda_topk_forward: N=%d V=%d k=%d (k <= %d)", N, V, k,
				TOPK_MAX);
	topk_kernel<<<N, SELECT_BLOCK, 0, (cudaStream_t)stream>>>(values, indices, inp, V, k);
	return cuda_check_launch("cuda_topk_forward", "topk_kernel");
}
