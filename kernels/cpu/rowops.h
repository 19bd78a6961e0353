/* Row reductions shared by the CPU softmax and cross-entropy kernels
 * (internal to kernels/cpu/). */
#ifndef LLMOPS_CPU_ROWOPS_H
#define LLMOPS_CPU_ROWOPS_H

#include <math.h>

/* max of x (V); -INFINITY for V == 0 */
static inline float row_max(const float *x, int V)
{
	float m = -INFINITY;

	for (int i = 0; i < V; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

/* sum over the row of exp(x - m), in double */
static inline double row_expsum(const float *x, int V, float m)
{
	double s = 0.0;

	for (int i = 0; i < V; i++)
		s += expf(x[i] - m);
	return s;
}

#endif
