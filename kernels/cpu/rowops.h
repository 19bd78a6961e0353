/* Row reductions shared by the CPU softmax and cross-entropy kernels
 * (internal to kernels/cpu/). */
#ifndef LLMOPS_CPU_ROWOPS_H
#define LLMOPS_CPU_ROWOPS_H

#include <math.h>

#include "vmath.h"

/* row_expsum adds ROW_BLOCK fp32 terms at a time, then the block into the
 * double total: the block sum vectorises, the total keeps double accuracy */
#define ROW_BLOCK 256

/* max of x (V); -INFINITY for V == 0 */
VM_INLINE float row_max(const float *x, int V)
{
	float m = -INFINITY;

#pragma omp simd reduction(max : m)
	for (int i = 0; i < V; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

/* sum over the row of exp(x - m), in double; out (V), if not NULL, receives
 * the terms (out may equal x) */
VM_INLINE double row_expsum(float *out, const float *x, int V, float m)
{
	double s = 0.0;

	for (int i0 = 0; i0 < V; i0 += ROW_BLOCK) {
		int i1 = V - i0 < ROW_BLOCK ? V : i0 + ROW_BLOCK;
		float b = 0.0f;

		if (out) {
#pragma omp simd reduction(+ : b)
			for (int i = i0; i < i1; i++) {
				out[i] = vm_expf(x[i] - m);
				b += out[i];
			}
		} else {
#pragma omp simd reduction(+ : b)
			for (int i = i0; i < i1; i++)
				b += vm_expf(x[i] - m);
		}
		s += b;
	}
	return s;
}

/* x (V) *= c */
VM_INLINE void row_scale(float *x, int V, float c)
{
#pragma omp simd
	for (int i = 0; i < V; i++)
		x[i] *= c;
}

#endif
