/* CUDA rotary position embedding (Hugging Face Llama "rotate_half" layout).
 *
 * One thread per rotated pair (b, t, head, i < HS/2). The angle is computed
 * as kernels/cpu/rope.c does (fp32 inv_freq from a double pow, fp32 angle,
 * cos and sin in double then rounded), so tables agree with the CPU's to the
 * last bit or one ulp. Design limit: every head recomputes its (t, i) angle
 * in double instead of sharing a table; the kernel is still memory-bound on
 * H100 for HS >= 64, and a cached cos/sin table is the next step. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

/* sign = +1: out = rotate(inp) (out may equal inp); sign = -1: out +=
 * rotate(inp) by the opposite angle (backward). x, y (B,T,H,HS). */
template <int SIGN>
static __global__ void rope_kernel(float *y, const float *x, int T, int H, int HS, int pos0,
				   float theta, size_t npairs)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	int half = HS / 2;

	for (size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x; p < npairs; p += stride) {
		int i = (int)(p % half);
		size_t bth = p / half, bt = bth / H;
		int pos = pos0 + (int)(bt % T);
		float expo = (float)(2 * i) / (float)HS;
		float inv_freq = 1.0f / (float)pow((double)theta, (double)expo);
		float angle = (float)pos * inv_freq;
		float cs = (float)cos((double)angle), sn = (float)sin((double)angle);
		size_t a = bth * HS + i, b = a + half;
		float x1 = x[a], x2 = x[b];

		if (SIGN > 0) { /* HF: x * cos + rotate_half(x) * sin */
			y[a] = x1 * cs + -x2 * sn;
			y[b] = x2 * cs + x1 * sn;
		} else {
			y[a] += x1 * cs + x2 * sn;
			y[b] += x2 * cs - x1 * sn;
		}
	}
}

/* ---- launchers ---- */

static bool rope_args_ok(const void *y, const void *x, int B, int T, int H, int HS, int pos0,
			 float theta)
{
	return y && x && B >= 1 && T >= 1 && H >= 1 && HS >= 2 && HS % 2 == 0 && pos0 >= 0 &&
	       theta > 0.0f;
}

llm_err cuda_rope_forward(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
			  float theta, void *stream)
{
	size_t npairs = (size_t)B * T * H * (HS / 2);

	if (!rope_args_ok(out, inp, B, T, H, HS, pos0, theta))
		return llm_fail(LLM_EINVAL,
				"cuda_rope_forward: B=%d T=%d H=%d HS=%d pos0=%d theta=%g", B, T, H,
				HS, pos0, (double)theta);
	rope_kernel<1><<<grid_for(npairs), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		out, inp, T, H, HS, pos0, theta, npairs);
	return cuda_check_launch("cuda_rope_forward", "rope_kernel");
}

llm_err cuda_rope_backward(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
			   float theta, void *stream)
{
	size_t npairs = (size_t)B * T * H * (HS / 2);

	if (!rope_args_ok(dinp, dout, B, T, H, HS, pos0, theta))
		return llm_fail(LLM_EINVAL,
				"cuda_rope_backward: B=%d T=%d H=%d HS=%d pos0=%d theta=%g", B, T,
				H, HS, pos0, (double)theta);
	rope_kernel<-1><<<grid_for(npairs), LLMOPS_BLOCK, 0, (cudaStream_t)stream>>>(
		dinp, dout, T, H, HS, pos0, theta, npairs);
	return cuda_check_launch("cuda_rope_backward", "rope_kernel");
}
