/* Helpers shared by the .cu files in kernels/cuda/ (internal, not API).
 *
 * Includes llmops_kernels.h first, so llm_fail() keeps its C linkage. */
#ifndef LLMOPS_CUDA_COMMON_H
#define LLMOPS_CUDA_COMMON_H

#include <cuda_runtime.h>

#include "llmops_kernels.h"

/* threads per block for the simple elementwise kernels */
#define LLMOPS_BLOCK 256

/* ceil(a / b) for a >= 0, b > 0 */
static inline size_t ceil_div(size_t a, size_t b)
{
	return (a + b - 1) / b;
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

#endif
