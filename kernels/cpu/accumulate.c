/* CPU gradient accumulation over micro batches: acc += weight * grad.
 *
 * Elementwise and memory-bound; OpenMP threads plus SIMD, one thread for
 * small buffers. Each element is one multiply and one add (the product is
 * rounded before the add), so the result does not depend on the thread
 * count. */
#include "llmops_kernels.h"

/* below this many elements the loop runs on the calling thread only */
#define ACCUMULATE_PAR_MIN (1 << 15)

void cpu_grad_accumulate(float *acc, const float *grad, float weight, size_t n)
{
#pragma omp parallel for simd if (n >= ACCUMULATE_PAR_MIN)
	for (size_t i = 0; i < n; i++)
		acc[i] += weight * grad[i];
}
