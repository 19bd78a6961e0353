/* CPU reference residual connection forward: an elementwise fp32 add.
 *
 * Memory-bound; OpenMP threads plus SIMD. Small inputs stay on one thread,
 * where starting the team would cost more than the add. */
#include "llmops_kernels.h"

/* below this many elements the add runs on the calling thread only */
#define RESIDUAL_PAR_MIN (1 << 15)

/* out (N) = inp1 (N) + inp2 (N). out may equal inp1 and/or inp2: each
 * iteration reads and writes only index i, so the simd loop stays correct. */
void cpu_residual_forward(float *out, const float *inp1, const float *inp2, int N)
{
#pragma omp parallel for simd if (N >= RESIDUAL_PAR_MIN)
	for (int i = 0; i < N; i++)
		out[i] = inp1[i] + inp2[i];
}
