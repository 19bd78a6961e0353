/* CUDA AdamW optimizer step and global gradient-norm clipping.
 *
 * AdamW is elementwise and memory-bound (16 bytes read, 12 written per
 * parameter): the bias corrections and step size are computed on the host
 * in double exactly as kernels/cpu/adamw.c does, and the kernel applies the
 * same float operations per element (nvcc may fuse multiply-adds, so results
 * match the CPU within a few ulp rather than bitwise).
 *
 * cuda_adamw_update_mixed is the same step on fp32 master weights (one
 * shared per-element function, so its master equals cuda_adamw_update's)
 * that also writes a bf16 copy of the parameters in the same pass, rounded
 * to nearest even by llm_bf16_from_float (deterministic, so the CPU twin
 * can be compared; no stochastic rounding): 30 bytes of traffic per
 * parameter instead of 28 plus a separate 6-byte conversion pass.
 *
 * Clipping is a two-stage reduction with no atomics, so the norm is the same
 * on every run: stage 1 has a fixed number of blocks (a function of n only)
 * each writing a double partial sum of squares; stage 2, one block, adds the
 * partials in a fixed order and stores the norm on the device; stage 3
 * scales the gradient by the coefficient it reads from device memory, so the
 * clipping itself never waits for the host. Design limit: the partials live
 * in a small workspace taken from the stream-ordered pool (cudaMallocAsync)
 * and freed on the same stream; returning the norm to the host needs a
 * stream synchronisation, done only when the caller asks for it. */
#include <cuda_runtime.h>

#include <math.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* stage-1 blocks at most, and the threads of the stage-2 block */
#define CLIP_PARTS 1024

/* ---- kernels ---- */

/* per-step constants, computed on the host in double as the CPU does */
struct adamw_k {
	float decay, step_size, bc2_sqrt, w1, beta2, w2, eps;
};

/* One element's step: updates m[i], v[i] and returns the new parameter.
 * Shared by both kernels so the fp32 and mixed steps agree bit for bit. */
static __device__ __forceinline__ float adamw_elem(float param, const float *grad, float *m,
						   float *v, size_t i, const adamw_k &k)
{
	float g = grad[i], mi0 = m[i];
	float p = param * k.decay;
	float mi = mi0 + k.w1 * (g - mi0); /* torch: m.lerp_(g, 1 - beta1) */
	float vi = v[i] * k.beta2 + k.w2 * g * g;
	float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;

	m[i] = mi;
	v[i] = vi;
	return p - k.step_size * (mi / denom);
}

static __global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t n,
				    adamw_k k)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		param[i] = adamw_elem(param[i], grad, m, v, i, k);
}

/* As adamw_kernel on the fp32 master, also storing its bf16 rounding. */
static __global__ void adamw_mixed_kernel(float *master, uint16_t *param_bf16, const float *grad,
					  float *m, float *v, size_t n, adamw_k k)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
		float p = adamw_elem(master[i], grad, m, v, i, k);

		master[i] = p;
		param_bf16[i] = llm_bf16_from_float(p);
	}
}

/* part[blockIdx.x] = this block's share of sum(grad^2), in double */
static __global__ void sumsq_kernel(double *part, const float *grad, size_t n)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	double acc = 0.0;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		acc += (double)grad[i] * grad[i];
	acc = block_sum(acc);
	if (threadIdx.x == 0)
		part[blockIdx.x] = acc;
}

/* part[CLIP_PARTS] = sqrt(sum of part[0, nparts)); one block of CLIP_PARTS */
static __global__ void __launch_bounds__(1024) norm_kernel(double *part, int nparts)
{
	double v = (int)threadIdx.x < nparts ? part[threadIdx.x] : 0.0;

	v = block_sum(v);
	if (threadIdx.x == 0)
		part[CLIP_PARTS] = sqrt(v);
}

/* grad *= max_norm / (norm + 1e-6) when that is below 1 (norm at *normp) */
static __global__ void clip_scale_kernel(float *grad, size_t n, const double *normp, float max_norm)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	double coef = max_norm / (*normp + 1e-6);
	float c = (float)coef;

	if (!(coef < 1.0))
		return;
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		grad[i] *= c;
}

/* ---- launchers ---- */

/* The step's constants exactly as kernels/cpu/adamw.c computes them. */
static adamw_k adamw_constants(float lr, float beta1, float beta2, float eps, float weight_decay,
			       int t)
{
	double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
	adamw_k k;

	k.decay = (float)(1.0 - (double)lr * weight_decay);
	k.step_size = (float)(lr / bc1);
	k.bc2_sqrt = (float)sqrt(bc2);
	k.w1 = (float)(1.0 - beta1);
	k.beta2 = beta2;
	k.w2 = (float)(1.0 - beta2);
	k.eps = eps;
	return k;
}

llm_err cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
			  float beta1, float beta2, float eps, float weight_decay, int t,
			  void *stream)
{
	if (!param || !grad || !m || !v || t < 1)
		return llm_fail(LLM_EINVAL, "cuda_adamw_update: n=%zu t=%d param=%p grad=%p", n, t,
				(void *)param, (const void *)grad);
	if (n == 0)
		return LLM_OK;
	adamw_kernel<<<grid_for(n), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		param, grad, m, v, n, adamw_constants(lr, beta1, beta2, eps, weight_decay, t));
	return cuda_check_launch("cuda_adamw_update", "adamw_kernel");
}

llm_err cuda_adamw_update_mixed(float *master, uint16_t *param_bf16, const float *grad, float *m,
				float *v, size_t n, float lr, float beta1, float beta2, float eps,
				float weight_decay, int t, void *stream)
{
	if (!master || !param_bf16 || !grad || !m || !v || t < 1)
		return llm_fail(LLM_EINVAL,
				"cuda_adamw_update_mixed: n=%zu t=%d master=%p param_bf16=%p "
				"grad=%p",
				n, t, (void *)master, (void *)param_bf16, (const void *)grad);
	if (n == 0)
		return LLM_OK;
	adamw_mixed_kernel<<<grid_for(n), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		master, param_bf16, grad, m, v, n,
		adamw_constants(lr, beta1, beta2, eps, weight_decay, t));
	return cuda_check_launch("cuda_adamw_update_mixed", "adamw_mixed_kernel");
}

/* Queues the three stages into workspace ws (CLIP_PARTS + 1 doubles). */
static llm_err clip_queue(float *grad, size_t n, float max_norm, double *ws, cudaStream_t s)
{
	const char *fn = "cuda_clip_grad_norm";
	size_t g = ceil_div(n, (size_t)LLMOPS_BLOCK * 16);
	int nparts = (int)(g < 1 ? 1 : g > CLIP_PARTS ? CLIP_PARTS : g);
	llm_err err;

	sumsq_kernel<<<nparts, LLMOPS_BLOCK, 0, s>>>(ws, grad, n);
	if ((err = cuda_check_launch(fn, "sumsq_kernel")))
		return err;
	norm_kernel<<<1, CLIP_PARTS, 0, s>>>(ws, nparts);
	if ((err = cuda_check_launch(fn, "norm_kernel")))
		return err;
	if (!(max_norm > 0.0f))
		return LLM_OK;
	clip_scale_kernel<<<grid_for(n), LLMOPS_BLOCK, 0, s>>>(grad, n, ws + CLIP_PARTS, max_norm);
	return cuda_check_launch(fn, "clip_scale_kernel");
}

llm_err cuda_clip_grad_norm(float *grad, size_t n, float max_norm, float *norm, void *stream)
{
	const char *fn = "cuda_clip_grad_norm";
	cudaStream_t s = (cudaStream_t)stream;
	double *ws = NULL, host_norm = 0.0;
	cudaError_t cerr;
	llm_err err;

	if (!grad && n > 0)
		return llm_fail(LLM_EINVAL, "cuda_clip_grad_norm: n=%zu grad=NULL", n);
	if (n == 0) {
		if (norm)
			*norm = 0.0f;
		return LLM_OK;
	}
	cerr = cudaMallocAsync((void **)&ws, (CLIP_PARTS + 1) * sizeof(double), s);
	if (cerr != cudaSuccess)
		return cuda_fail(fn, "cudaMallocAsync", cerr);
	err = clip_queue(grad, n, max_norm, ws, s);
	if (!err && norm) {
		cerr = cudaMemcpyAsync(&host_norm, ws + CLIP_PARTS, sizeof(double),
				       cudaMemcpyDeviceToHost, s);
		if (cerr == cudaSuccess)
			cerr = cudaStreamSynchronize(s);
		if (cerr != cudaSuccess)
			err = cuda_fail(fn, "copying the norm back", cerr);
		else
			*norm = (float)host_norm;
	}
	cerr = cudaFreeAsync(ws, s);
	if (!err && cerr != cudaSuccess)
		err = cuda_fail(fn, "cudaFreeAsync", cerr);
	return err;
}
