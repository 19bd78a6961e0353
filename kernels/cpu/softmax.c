/* CPU row softmax, fp32.
 *
 * Subtracts the row maximum before exponentiating, so large logits never
 * overflow; the row sum is taken in double so a 50k-entry vocabulary loses
 * no precision to summation order. Rows are independent and split over
 * threads; the design limit is three passes over a row (max, exp-sum
 * writing the exps, scale), which is fine while a row fits in cache. */
#include "llmops_kernels.h"
#include "rowops.h"

#include <math.h>
#include <stddef.h>

/* below this many elements the kernels run on one thread */
#define SOFTMAX_PAR_MIN (1L << 15)

/* out (N,V) = softmax of each row of inp (N,V); out may equal inp. */
VM_CLONES void cpu_softmax_forward(float *out, const float *inp, int N, int V)
{
#pragma omp parallel for if ((long)N * V >= SOFTMAX_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * V;
		float *o = out + (size_t)n * V;
		float m = row_max(x, V);

		row_scale(o, V, (float)(1.0 / row_expsum(o, x, V, m)));
	}
}
