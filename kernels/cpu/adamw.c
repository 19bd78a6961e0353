/* CPU AdamW optimizer step and global gradient-norm clipping.
 *
 * cpu_adamw_update follows torch.optim.AdamW's single-tensor path operation
 * by operation (decoupled decay first, lerp for the first moment, bias
 * corrections in double, denominator sqrt(v)/sqrt(bc2) + eps) so parameters
 * track torch's within a few ulp per step. Elementwise and memory-bound:
 * OpenMP over elements. Design limit: one contiguous buffer per call; the
 * caller loops over parameter tensors. cpu_adamw_update_mixed adds a bf16
 * copy of the updated parameters (round to nearest even). */
#include "llmops_kernels.h"
#include "vmath.h"

#include <math.h>

/* below this many elements the kernels run on one thread */
#define ADAM_PAR_MIN ((size_t)1 << 15)

/* param, grad, m, v (n); t is the 1-based step. */
VM_CLONES void cpu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
				float lr, float beta1, float beta2, float eps, float weight_decay,
				int t)
{
	double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
	float decay = (float)(1.0 - (double)lr * weight_decay);
	float step_size = (float)(lr / bc1);
	float bc2_sqrt = (float)sqrt(bc2);
	float w1 = (float)(1.0 - beta1), w2 = (float)(1.0 - beta2);

#pragma omp parallel for simd if (n >= ADAM_PAR_MIN)
	for (size_t i = 0; i < n; i++) {
		float g = grad[i];
		float p = param[i] * decay;
		float mi = m[i] + w1 * (g - m[i]); /* torch: m.lerp_(g, 1 - beta1) */
		float vi = v[i] * beta2 + w2 * g * g;
		float denom = sqrtf(vi) / bc2_sqrt + eps;

		m[i] = mi;
		v[i] = vi;
		param[i] = p - step_size * (mi / denom);
	}
}

/* master, grad, m, v, param_bf16 (n): cpu_adamw_update on the master, then
 * its bf16 copy. Two passes on purpose: the master is cpu_adamw_update's
 * result by construction, so the mixed step can never drift from the fp32
 * one. */
void cpu_adamw_update_mixed(float *master, uint16_t *param_bf16, const float *grad, float *m,
			    float *v, size_t n, float lr, float beta1, float beta2, float eps,
			    float weight_decay, int t)
{
	cpu_adamw_update(master, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
#pragma omp parallel for simd if (n >= ADAM_PAR_MIN)
	for (size_t i = 0; i < n; i++)
		param_bf16[i] = llm_bf16_from_float(master[i]);
}

/* grad (n): returns the L2 norm (summed in double); scales grad by
 * max_norm / (norm + 1e-6) when max_norm > 0 and that factor is below 1. */
float cpu_clip_grad_norm(float *grad, size_t n, float max_norm)
{
	double ss = 0.0;

#pragma omp parallel for simd reduction(+ : ss) if (n >= ADAM_PAR_MIN)
	for (size_t i = 0; i < n; i++)
		ss += (double)grad[i] * grad[i];
	double norm = sqrt(ss);
	double coef = max_norm / (norm + 1e-6);

	if (max_norm > 0 && coef < 1.0) {
		float c = (float)coef;

#pragma omp parallel for simd if (n >= ADAM_PAR_MIN)
		for (size_t i = 0; i < n; i++)
			grad[i] *= c;
	}
	return (float)norm;
}
