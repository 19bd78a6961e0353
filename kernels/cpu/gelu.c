/* CPU GELU forward and backward, fp32, elementwise.
 *
 * Two variants: the tanh approximation (GPT-2 "gelu_new", torch's
 * approximate="tanh") and the exact erf form (BERT, torch's default), with
 * the same formulas as torch's CPU kernels. vmath.h's tanh, erfc and exp keep
 * the loops vectorised, 256 bits wide on AVX2 machines (VM_CLONES). The erf
 * form is written 0.5 x erfc(-x / sqrt 2): that equals 0.5 x (1 + erf(x /
 * sqrt 2)) but keeps its relative accuracy for x << 0, where 1 + erf
 * cancels. OpenMP over elements with a threshold so short vectors stay on one
 * thread. */
#include "llmops_kernels.h"
#include "vmath.h"

#include <math.h>

/* below this many elements the kernels run on one thread */
#define GELU_PAR_MIN (1L << 15)

#define GELU_BETA   0.7978845608028654f /* sqrt(2/pi) */
#define GELU_KAPPA  0.044715f
#define INV_SQRT2   0.7071067811865476f
#define INV_SQRT2PI 0.3989422804014327f /* 1/sqrt(2*pi) */

VM_INLINE float gelu_tanh(float x)
{
	float inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);

	return 0.5f * x * (1.0f + vm_tanhf(inner));
}

/* d/dx of 0.5 x (1 + tanh(u)), u = beta (x + kappa x^3) */
VM_INLINE float gelu_tanh_grad(float x)
{
	float inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);
	float th = vm_tanhf(inner);
	float du = GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x * x);

	return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

VM_INLINE float gelu_erf(float x)
{
	return 0.5f * x * vm_erfcf(-x * INV_SQRT2);
}

/* Phi(x) + x phi(x) */
VM_INLINE float gelu_erf_grad(float x)
{
	float cdf = 0.5f * vm_erfcf(-x * INV_SQRT2);
	float pdf = vm_expf(-0.5f * x * x) * INV_SQRT2PI;

	return cdf + x * pdf;
}

/* out (N) = gelu(inp (N)); out may equal inp. */
VM_CLONES void cpu_gelu_forward(float *out, const float *inp, long N, enum llm_gelu kind)
{
	if (kind == LLM_GELU_ERF) {
#pragma omp parallel for simd if (N >= GELU_PAR_MIN)
		for (long i = 0; i < N; i++)
			out[i] = gelu_erf(inp[i]);
	} else {
#pragma omp parallel for simd if (N >= GELU_PAR_MIN)
		for (long i = 0; i < N; i++)
			out[i] = gelu_tanh(inp[i]);
	}
}

/* dinp (N) += gelu'(inp) * dout. */
VM_CLONES void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, long N,
				 enum llm_gelu kind)
{
	if (kind == LLM_GELU_ERF) {
#pragma omp parallel for simd if (N >= GELU_PAR_MIN)
		for (long i = 0; i < N; i++)
			dinp[i] += gelu_erf_grad(inp[i]) * dout[i];
	} else {
#pragma omp parallel for simd if (N >= GELU_PAR_MIN)
		for (long i = 0; i < N; i++)
			dinp[i] += gelu_tanh_grad(inp[i]) * dout[i];
	}
}
