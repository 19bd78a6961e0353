/* Helpers shared by the .cu files in kernels/cuda/ (internal, not API).
 *
 * Includes llmops_kernels.h first, so llm_fail() keeps its C linkage. Holds
 * the error helpers, the warp and block reductions every row kernel uses,
 * and the accessor for the process-wide cuBLAS handle owned by matmul.cu. */
#ifndef LLMOPS_CUDA_COMMON_H
#define LLMOPS_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "llmops_kernels.h"

/* threads per block for the simple elementwise kernels */
#define LLMOPS_BLOCK 256
/* blocks beyond this are folded into grid-stride loops */
#define LLMOPS_MAX_GRID 65536
#define FULL_MASK	0xffffffffu

/* ceil(a / b) for a >= 0, b > 0 */
static inline size_t ceil_div(size_t a, size_t b)
{
	return (a + b - 1) / b;
}

/* grid for a grid-stride loop over n elements with LLMOPS_BLOCK threads */
static inline unsigned grid_for(size_t n)
{
	size_t g = ceil_div(n, LLMOPS_BLOCK);

	return (unsigned)(g < 1 ? 1 : g > LLMOPS_MAX_GRID ? LLMOPS_MAX_GRID : g);
}

/* Records "fn: what: cudaErrorName (text)" as the detail of an LLM_EINTERNAL. */
static inline llm_err cuda_fail(const char *fn, const char *what, cudaError_t err)
{
	return llm_fail(LLM_EINTERNAL, "%s: %s: %s (%s)", fn, what, cudaGetErrorName(err),
			cudaGetErrorString(err));
}

/* Checks the launch just queued (bad configuration, no device, a sticky error
 * left by earlier work); LLM_OK or the failure recorded by cuda_fail(). */
static inline llm_err cuda_check_launch(const char *fn, const char *kernel)
{
	cudaError_t err = cudaGetLastError();

	return err == cudaSuccess ? LLM_OK : cuda_fail(fn, kernel, err);
}

/* Records "fn: what: CUBLAS_STATUS_X (text)" as the detail of an LLM_EINTERNAL. */
llm_err cuda_cublas_fail(const char *fn, const char *what, cublasStatus_t st);

/* Locks the process-wide cuBLAS handle (created on the first call, on the
 * current device) and binds it to stream; on LLM_OK *h is the handle and the
 * caller must call cuda_cublas_release() after its last cuBLAS call. On an
 * error nothing is held. fn names the caller in error details. */
llm_err cuda_cublas_acquire(const char *fn, cudaStream_t stream, cublasHandle_t *h);
void cuda_cublas_release(void);

/* ---- device reductions ---- */

/* sum / max over the 32 lanes of a warp; every lane gets the result */
template <typename T> static __device__ __forceinline__ T warp_sum(T v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
	return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. The order is fixed by the block shape, so the
 * result is deterministic. Contains __syncthreads(): call from all threads. */
template <typename T> static __device__ T block_sum(T v)
{
	__shared__ T part[32];
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;

	v = warp_sum(v);
	__syncthreads(); /* part[] may still be read by a previous call */
	if (lane == 0)
		part[warp] = v;
	__syncthreads();
	v = lane < nw ? part[lane] : (T)0;
	return warp_sum(v);
}

/* Online-softmax state (running max m, sum s of exp(x - m)) merged over the
 * block; every thread gets the result. */
struct maxsum {
	float m, s;
};

static __device__ __forceinline__ maxsum maxsum_merge(maxsum a, maxsum b)
{
	float m = fmaxf(a.m, b.m);

	if (m == -INFINITY)
		return {m, 0.0f};
	return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

/* Online (max, sum) of one thread's strided share of x (V). */
static __device__ maxsum thread_maxsum(const float *x, int V)
{
	maxsum st = {-INFINITY, 0.0f};

	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float v = x[i];

		if (v > st.m) {
			st.s = st.s * expf(st.m - v) + 1.0f;
			st.m = v;
		} else if (v != -INFINITY) {
			st.s += expf(v - st.m);
		}
	}
	return st;
}

static __device__ maxsum block_maxsum(maxsum v)
{
	__shared__ maxsum part[32];
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;

	for (int o = 16; o > 0; o >>= 1) {
		maxsum w = {__shfl_xor_sync(FULL_MASK, v.m, o), __shfl_xor_sync(FULL_MASK, v.s, o)};
		v = maxsum_merge(v, w);
	}
	__syncthreads();
	if (lane == 0)
		part[warp] = v;
	__syncthreads();
	v = lane < nw ? part[lane] : maxsum{-INFINITY, 0.0f};
	for (int o = 16; o > 0; o >>= 1) {
		maxsum w = {__shfl_xor_sync(FULL_MASK, v.m, o), __shfl_xor_sync(FULL_MASK, v.s, o)};
		v = maxsum_merge(v, w);
	}
	return v;
}

#endif
