/* CUDA GELU forward and backward, fp32, elementwise.
 *
 * The same two variants and formulas as kernels/cpu/gelu.c (tanh
 * approximation, exact erf). Memory-bound: one grid-stride kernel per
 * direction and variant, 8 (forward) or 12 (backward) bytes per element.
 * Design limit: scalar loads, since out may alias inp and pointers need not
 * be 16-byte aligned. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

#define GELU_BETA   0.7978845608028654f /* sqrt(2/pi) */
#define GELU_KAPPA  0.044715f
#define INV_SQRT2   0.7071067811865476f
#define INV_SQRT2PI 0.3989422804014327f /* 1/sqrt(2*pi) */

/* ---- kernels ---- */

static __device__ __forceinline__ float gelu_fwd(float x, int erf_kind)
{
	if (erf_kind)
		return 0.5f * x * (1.0f + erff(x * INV_SQRT2));
	return 0.5f * x * (1.0f + tanhf(GELU_BETA * (x + GELU_KAPPA * x * x * x)));
}

static __device__ __forceinline__ float gelu_grad(float x, int erf_kind)
{
	if (erf_kind) {
		float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));

		return cdf + x * expf(-0.5f * x * x) * INV_SQRT2PI;
	}
	float th = tanhf(GELU_BETA * (x + GELU_KAPPA * x * x * x));
	float du = GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x * x);

	return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

/* out (N) = gelu(inp (N)); out may equal inp */
template <int ERF> static __global__ void gelu_forward_kernel(float *out, const float *inp, long N)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N; i += stride)
		out[i] = gelu_fwd(inp[i], ERF);
}

/* dinp (N) += gelu'(inp) * dout */
template <int ERF>
static __global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout,
					    long N)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N; i += stride)
		dinp[i] += gelu_grad(inp[i], ERF) * dout[i];
}

/* ---- launchers ---- */

llm_err cuda_gelu_forward(float *out, const float *inp, long N, enum llm_gelu kind, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;

	if (N < 0 || !out || !inp || (kind != LLM_GELU_TANH && kind != LLM_GELU_ERF))
		return llm_fail(LLM_EINVAL, "cuda_gelu_forward: N=%ld kind=%d out=%p inp=%p", N,
				(int)kind, (void *)out, (const void *)inp);
	if (N == 0)
		return LLM_OK;
	if (kind == LLM_GELU_ERF)
		gelu_forward_kernel<1><<<grid_for((size_t)N), LLMOPS_BLOCK, 0, s>>>(out, inp, N);
	else
		gelu_forward_kernel<0><<<grid_for((size_t)N), LLMOPS_BLOCK, 0, s>>>(out, inp, N);
	return cuda_check_launch("cuda_gelu_forward", "gelu_forward_kernel");
}

llm_err cuda_gelu_backward(float *dinp, const float *inp, const float *dout, long N,
			   enum llm_gelu kind, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;

	if (N < 0 || !dinp || !inp || !dout || (kind != LLM_GELU_TANH && kind != LLM_GELU_ERF))
		return llm_fail(LLM_EINVAL,
				"cuda_gelu_backward: N=%ld kind=%d dinp=%p inp=%p dout=%p", N,
				(int)kind, (void *)dinp, (const void *)inp, (const void *)dout);
	if (N == 0)
		return LLM_OK;
	if (kind == LLM_GELU_ERF)
		gelu_backward_kernel<1>
			<<<grid_for((size_t)N), LLMOPS_BLOCK, 0, s>>>(dinp, inp, dout, N);
	else
		gelu_backward_kernel<0>
			<<<grid_for((size_t)N), LLMOPS_BLOCK, 0, s>>>(dinp, inp, dout, N);
	return cuda_check_launch("cuda_gelu_backward", "gelu_backward_kernel");
}
