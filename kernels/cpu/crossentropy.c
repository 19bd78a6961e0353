/* CPU fused softmax + cross-entropy loss + logits gradient, fp32.
 *
 * Numerically stable: the loss is m + log(sum exp(x - m)) - x[target] with m
 * the row maximum, the sum taken in double. Rows are independent and split
 * over threads; the design limit is three passes over a row (max, exp-sum
 * writing the exps into the gradient, scale), fine while a row fits in
 * cache. */
#include "llmops_kernels.h"
#include "rowops.h"

#include <math.h>
#include <stddef.h>

/* below this many elements the kernel runs on one thread */
#define CE_PAR_MIN (1L << 15)

/* One row: returns the loss logsumexp(x) - x[target]; writes
 * (softmax(x) - onehot(target)) * dloss into d if d is not NULL (d may
 * equal x: x[target] is read before anything is written). */
VM_CLONES static float ce_row(float *d, const float *x, int target, int V, float dloss)
{
	float m = row_max(x, V);
	float xt = x[target];
	double sum = row_expsum(d, x, V, m);

	if (d) {
		row_scale(d, V, (float)(dloss / sum));
		d[target] -= dloss;
	}
	return (float)(m + log(sum) - xt);
}

/* losses (N), dlogits (N,V) or NULL, from logits (N,V) and targets (N).
 * Returns the number of rows whose target is not ignore_index. */
int cpu_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
				      const int *targets, int N, int V, int ignore_index,
				      float dloss)
{
	int count = 0;

#pragma omp parallel for reduction(+ : count) if ((long)N * V >= CE_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = logits + (size_t)n * V;
		float *d = dlogits ? dlogits + (size_t)n * V : NULL;

		if (targets[n] == ignore_index) {
			losses[n] = 0.0f;
			for (int i = 0; d && i < V; i++)
				d[i] = 0.0f;
			continue;
		}
		losses[n] = ce_row(d, x, targets[n], V, dloss);
		count++;
	}
	return count;
}
