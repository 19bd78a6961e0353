/* CUDA SwiGLU (Llama MLP gate), fp32, elementwise: out = silu(gate) * up.
 *
 * Same formulas as kernels/cpu/swiglu.c; the sigmoid is 1 / (1 + exp(-x)),
 * which saturates to 0 or 1 without NaN. Memory-bound grid-stride kernels
 * (12 bytes per element forward, up to 20 backward). Design limit: scalar
 * loads, since out may alias gate or up. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

static __device__ __forceinline__ float sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* out (N) = gate * sigmoid(gate) * up; out may equal gate or up */
static __global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, long N)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N; i += stride) {
		float g = gate[i];

		out[i] = g * sigmoid(g) * up[i];
	}
}

/* dgate (N) += dout * up * silu'(gate); dup (N) += dout * silu(gate); either
 * may be NULL */
static __global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout,
					      const float *gate, const float *up, long N)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N; i += stride) {
		float g = gate[i], sg = sigmoid(g);

		if (dgate)
			dgate[i] += dout[i] * up[i] * (sg * (1.0f + g * (1.0f - sg)));
		if (dup)
			dup[i] += dout[i] * (g * sg);
	}
}

/* ---- launchers ---- */

llm_err cuda_swiglu_forward(float *out, const float *gate, const float *up, long N, void *stream)
{
	if (N < 0 || !out || !gate || !up)
		return llm_fail(LLM_EINVAL, "cuda_swiglu_forward: N=%ld out=%p gate=%p up=%p", N,
				(void *)out, (const void *)gate, (const void *)up);
	if (N == 0)
		return LLM_OK;
	swiglu_forward_kernel<<<grid_for((size_t)N), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		out, gate, up, N);
	return cuda_check_launch("cuda_swiglu_forward", "swiglu_forward_kernel");
}

llm_err cuda_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
			     const float *up, long N, void *stream)
{
	if (N < 0 || !dout || !gate || (dgate && !up))
		return llm_fail(LLM_EINVAL, "cuda_swiglu_backward: N=%ld dout=%p gate=%p up=%p", N,
				(const void *)dout, (const void *)gate, (const void *)up);
	if (N == 0 || (!dgate && !dup))
		return LLM_OK;
	swiglu_backward_kernel<<<grid_for((size_t)N), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		dgate, dup, dout, gate, up, N);
	return cuda_check_launch("cuda_swiglu_backward", "swiglu_backward_kernel");
}
