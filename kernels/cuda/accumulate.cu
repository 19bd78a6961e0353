/* CUDA gradient accumulation over micro batches: acc += weight * grad.
 *
 * Memory-bound (12 bytes moved per element); one grid-stride kernel. nvcc
 * contracts the multiply-add into an FMA, so results agree with the CPU twin
 * to one rounding, not bit for bit. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

static __global__ void grad_accumulate_kernel(float *acc, const float *grad, float weight, size_t n)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		acc[i] += weight * grad[i];
}

/* ---- launchers ---- */

llm_err cuda_grad_accumulate(float *acc, const float *grad, float weight, size_t n, void *stream)
{
	if (n && (!acc || !grad))
		return llm_fail(LLM_EINVAL, "cuda_grad_accumulate: n=%zu acc=%p grad=%p", n,
				(void *)acc, (const void *)grad);
	if (n == 0)
		return LLM_OK;
	grad_accumulate_kernel<<<grid_for(n), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(acc, grad,
										       weight, n);
	return cuda_check_launch("cuda_grad_accumulate", "grad_accumulate_kernel");
}
