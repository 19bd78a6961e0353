/* CUDA residual connection forward: an elementwise fp32 add.
 *
 * Memory-bound (12 bytes moved per element); one scalar grid-stride kernel,
 * since unaligned or aliased pointers must work. Design limit: N is an int,
 * as in the CPU twin. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* blocks beyond this are folded into the grid-stride loop */
#define RESIDUAL_MAX_GRID 65536

/* ---- kernels ---- */

/* out (N) = inp1 (N) + inp2 (N); out may be inp1 and/or inp2 (each thread
 * reads and writes only its own indices). 64-bit indices: i + stride may pass
 * INT_MAX. */
static __global__ void residual_forward_kernel(float *out, const float *inp1, const float *inp2,
					       int N)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N; i += stride)
		out[i] = inp1[i] + inp2[i];
}

/* ---- launchers ---- */

llm_err cuda_residual_forward(float *out, const float *inp1, const float *inp2, int N, void *stream)
{
	size_t grid;

	if (N < 0 || !out || !inp1 || !inp2)
		return llm_fail(LLM_EINVAL, "cuda_residual_forward: N=%d out=%p inp1=%p inp2=%p", N,
				(void *)out, (const void *)inp1, (const void *)inp2);
	if (N == 0)
		return LLM_OK;
	grid = ceil_div((size_t)N, LLMOPS_BLOCK);
	if (grid > RESIDUAL_MAX_GRID)
		grid = RESIDUAL_MAX_GRID;
	residual_forward_kernel<<<(unsigned)grid, LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		out, inp1, inp2, N);
	return cuda_check_launch("cuda_residual_forward", "residual_forward_kernel");
}
