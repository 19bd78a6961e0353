/* CPU SwiGLU (Llama MLP gate), fp32, elementwise: out = silu(gate) * up.
 *
 * Memory-bound; OpenMP over elements with a threshold for short vectors. The
 * sigmoid is 1 / (1 + exp(-x)), which saturates cleanly to 0 or 1 for large
 * |x| without NaN. */
#include "llmops_kernels.h"

#include <math.h>

/* below this many elements the kernels run on one thread */
#define SWIGLU_PAR_MIN (1L << 15)

static inline float sigmoidf(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* out (N) = gate * sigmoid(gate) * up; out may equal gate or up. */
void cpu_swiglu_forward(float *out, const float *gate, const float *up, long N)
{
#pragma omp parallel for simd if (N >= SWIGLU_PAR_MIN)
	for (long i = 0; i < N; i++) {
		float g = gate[i];

		out[i] = g * sigmoidf(g) * up[i];
	}
}

/* dgate (N) += dout * up * silu'(gate), silu'(g) = s (1 + g (1 - s));
 * dup (N) += dout * silu(gate). Either gradient may be NULL. */
void cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
			 const float *up, long N)
{
#pragma omp parallel for simd if (N >= SWIGLU_PAR_MIN)
	for (long i = 0; i < N; i++) {
		float g = gate[i], s = sigmoidf(g);

		if (dgate)
			dgate[i] += dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
		if (dup)
			dup[i] += dout[i] * (g * s);
	}
}
