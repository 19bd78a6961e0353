/* CUDA RMSNorm forward and backward (Llama), fp32 storage.
 *
 * Same layout as layernorm.cu: forward and the input gradient one warp per
 * row with double partial sums combined by warp shuffles, the fp32 add of
 * eps as LlamaRMSNorm does it; dweight by a deterministic column reduction
 * (one block per 32 channels, fixed-order combination). The fused residual +
 * RMSNorm forward does the add in the sum-of-squares pass and reads its
 * result back for the output. Design limit: the dweight reduction has C/32
 * blocks, few for small C. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* rows per 256-thread block in the one-warp-per-row kernels */
#define RMS_ROWS 8

/* ---- kernels ---- */

/* The rest of row n once each lane holds its partial sum of squares ss:
 * o (C) = weight * x (C) * rstd and rstd[n] (when set). Shared by the plain
 * and the fused forward. */
static __device__ void rmsnorm_row(float *o, float *rstd, const float *x, double ss,
				   const float *weight, int n, int C, float eps)
{
	int lane = threadIdx.x % 32;
	float var = (float)(warp_sum(ss) / C);
	float r = (float)(1.0 / sqrt((double)(var + eps))); /* fp32 add, as HF */

	for (int c = lane; c < C; c += 32)
		o[c] = weight[c] * (x[c] * r);
	if (lane == 0 && rstd)
		rstd[n] = r;
}

static __global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
					      const float *weight, int N, int C, float eps)
{
	int n = blockIdx.x * RMS_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double ss = 0.0;

	if (n >= N)
		return;
	const float *x = inp + (size_t)n * C;

	for (int c = lane; c < C; c += 32)
		ss += (double)x[c] * x[c];
	rmsnorm_row(out + (size_t)n * C, rstd, x, ss, weight, n, C, eps);
}

/* res_out = inp1 + inp2 and out = RMSNorm(res_out), row n per warp. The add
 * shares the sum of squares' loop; the output pass reads back only the
 * elements the same lane wrote, so res_out may be inp1 or inp2. */
static __global__ void residual_rmsnorm_forward_kernel(float *res_out, float *out, float *rstd,
						       const float *inp1, const float *inp2,
						       const float *weight, int N, int C, float eps)
{
	int n = blockIdx.x * RMS_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double ss = 0.0;

	if (n >= N)
		return;
	const float *a = inp1 + (size_t)n * C, *b = inp2 + (size_t)n * C;
	float *x = res_out + (size_t)n * C;

	for (int c = lane; c < C; c += 32) {
		float v = a[c] + b[c];

		x[c] = v;
		ss += (double)v * v;
	}
	rmsnorm_row(out + (size_t)n * C, rstd, x, ss, weight, n, C, eps);
}

/* dinp (N,C) += r * g - x * r^3 * mean(g * x), g = weight * dout */
static __global__ void rmsnorm_dinp_kernel(float *dinp, const float *dout, const float *inp,
					   const float *weight, const float *rstd, int N, int C)
{
	int n = blockIdx.x * RMS_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double gx = 0.0;

	if (n >= N)
		return;
	const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
	float *dx = dinp + (size_t)n * C;
	float r = rstd[n];

	for (int c = lane; c < C; c += 32)
		gx += (double)weight[c] * d[c] * x[c];
	float k = (float)(warp_sum(gx) / C * r * r * r);
	for (int c = lane; c < C; c += 32)
		dx[c] += weight[c] * d[c] * r - x[c] * k;
}

/* dweight (C) += sum_n dout * inp * rstd; block (32, 32) per 32 channels */
static __global__ void __launch_bounds__(1024)
	rmsnorm_dweight_kernel(float *dweight, const float *dout, const float *inp,
			       const float *rstd, int N, int C)
{
	__shared__ float pw[32][33];
	int c = blockIdx.x * 32 + threadIdx.x;
	float dw = 0.0f;

	if (c < C)
		for (int n = threadIdx.y; n < N; n += 32) {
			size_t i = (size_t)n * C + c;

			dw += dout[i] * (inp[i] * rstd[n]);
		}
	pw[threadIdx.y][threadIdx.x] = dw;
	__syncthreads();
	if (threadIdx.y != 0 || c >= C)
		return;
	for (int y = 1; y < 32; y++)
		dw += pw[y][threadIdx.x];
	dweight[c] += dw;
}

/* ---- launchers ---- */

llm_err cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
			     int C, float eps, void *stream)
{
	if (N < 1 || C < 1 || !out || !inp || !weight)
		return llm_fail(LLM_EINVAL,
				"cuda_rmsnorm_forward: N=%d C=%d out=%p inp=%p weight=%p", N, C,
				(void *)out, (const void *)inp, (const void *)weight);
	rmsnorm_forward_kernel<<<(unsigned)ceil_div((size_t)N, RMS_ROWS), 32 * RMS_ROWS, 0,
				 (cudaStream_t)stream>>>(out, rstd, inp, weight, N, C, eps);
	return cuda_check_launch("cuda_rmsnorm_forward", "rmsnorm_forward_kernel");
}

llm_err cuda_residual_rmsnorm_forward(float *res_out, float *out, float *rstd, const float *inp1,
				      const float *inp2, const float *weight, int N, int C,
				      float eps, void *stream)
{
	if (N < 1 || C < 1 || !res_out || !out || !inp1 || !inp2 || !weight)
		return llm_fail(LLM_EINVAL,
				"cuda_residual_rmsnorm_forward: N=%d C=%d res_out=%p out=%p "
				"inp1=%p inp2=%p weight=%p",
				N, C, (void *)res_out, (void *)out, (const void *)inp1,
				(const void *)inp2, (const void *)weight);
	residual_rmsnorm_forward_kernel<<<(unsigned)ceil_div((size_t)N, RMS_ROWS), 32 * RMS_ROWS, 0,
					  (cudaStream_t)stream>>>(res_out, out, rstd, inp1, inp2,
								  weight, N, C, eps);
	return cuda_check_launch("cuda_residual_rmsnorm_forward",
				 "residual_rmsnorm_forward_kernel");
}

llm_err cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
			      const float *weight, const float *rstd, int N, int C, void *stream)
{
	const char *fn = "cuda_rmsnorm_backward";
	cudaStream_t s = (cudaStream_t)stream;
	llm_err err;

	if (N < 1 || C < 1 || !dout || !inp || !rstd || (dinp && !weight))
		return llm_fail(LLM_EINVAL, "%s: N=%d C=%d dout=%p inp=%p weight=%p rstd=%p", fn, N,
				C, (const void *)dout, (const void *)inp, (const void *)weight,
				(const void *)rstd);
	if (dinp) {
		rmsnorm_dinp_kernel<<<(unsigned)ceil_div((size_t)N, RMS_ROWS), 32 * RMS_ROWS, 0,
				      s>>>(dinp, dout, inp, weight, rstd, N, C);
		if ((err = cuda_check_launch(fn, "rmsnorm_dinp_kernel")))
			return err;
	}
	if (!dweight)
		return LLM_OK;
	rmsnorm_dweight_kernel<<<(unsigned)ceil_div((size_t)C, 32), dim3(32, 32), 0, s>>>(
		dweight, dout, inp, rstd, N, C);
	return cuda_check_launch(fn, "rmsnorm_dweight_kernel");
}
