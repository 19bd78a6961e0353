/* CUDA LayerNorm forward and backward, fp32 storage, double row statistics.
 *
 * Forward and the input gradient run one warp per row (8 rows per 256-thread
 * block): each lane strides over the row, partial sums are double and
 * combined with warp shuffles, so results track kernels/cpu/layernorm.c to
 * about one ulp. The row is read two or three times; for the C of GPT-2 and
 * BERT (768..1600) it stays in L1/L2 between passes. The fused residual +
 * LayerNorm forward does the add in the first pass and writes its result,
 * which the later passes read back. dweight and dbias use a deterministic
 * column reduction: one block per 32 channels, 32 row lanes each summing a
 * strided subset of the rows, then a fixed-order add. Design
 * limit: that reduction has only C/32 blocks, so it under-fills the GPU for
 * small C (a two-stage version would split the rows over more blocks). */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* rows per 256-thread block in the one-warp-per-row kernels */
#define LN_ROWS 8

/* ---- kernels ---- */

/* The rest of row n once its warp has the row's sum in each lane's partial
 * `sum`: variance, o (C) = normalised x (C), mean[n] and rstd[n] (when set).
 * Shared by the plain and the fused forward. */
static __device__ void layernorm_row(float *o, float *mean, float *rstd, const float *x, double sum,
				     const float *weight, const float *bias, int n, int C,
				     float eps)
{
	int lane = threadIdx.x % 32;
	double mu = warp_sum(sum) / C, var = 0.0;

	for (int c = lane; c < C; c += 32)
		var += (x[c] - mu) * (x[c] - mu);
	var = warp_sum(var);
	float m = (float)mu, r = (float)(1.0 / sqrt(var / C + eps));
	for (int c = lane; c < C; c += 32)
		o[c] = (x[c] - m) * r * weight[c] + bias[c];
	if (lane == 0 && mean)
		mean[n] = m;
	if (lane == 0 && rstd)
		rstd[n] = r;
}

static __global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd,
						const float *inp, const float *weight,
						const float *bias, int N, int C, float eps)
{
	int n = blockIdx.x * LN_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double sum = 0.0;

	if (n >= N)
		return;
	const float *x = inp + (size_t)n * C;

	for (int c = lane; c < C; c += 32)
		sum += x[c];
	layernorm_row(out + (size_t)n * C, mean, rstd, x, sum, weight, bias, n, C, eps);
}

/* res_out = inp1 + inp2 and out = LayerNorm(res_out), row n per warp. The
 * add shares the mean's loop; later passes read back only the elements the
 * same lane wrote, so res_out may be inp1 or inp2 (no __restrict__). */
static __global__ void residual_layernorm_forward_kernel(float *res_out, float *out, float *mean,
							 float *rstd, const float *inp1,
							 const float *inp2, const float *weight,
							 const float *bias, int N, int C, float eps)
{
	int n = blockIdx.x * LN_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double sum = 0.0;

	if (n >= N)
		return;
	const float *a = inp1 + (size_t)n * C, *b = inp2 + (size_t)n * C;
	float *x = res_out + (size_t)n * C;

	for (int c = lane; c < C; c += 32) {
		float v = a[c] + b[c];

		x[c] = v;
		sum += v;
	}
	layernorm_row(out + (size_t)n * C, mean, rstd, x, sum, weight, bias, n, C, eps);
}

/* dinp (N,C) += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = weight * dout */
static __global__ void layernorm_dinp_kernel(float *dinp, const float *dout, const float *inp,
					     const float *weight, const float *mean,
					     const float *rstd, int N, int C)
{
	int n = blockIdx.x * LN_ROWS + threadIdx.x / 32, lane = threadIdx.x % 32;
	double gsum = 0.0, gxsum = 0.0;

	if (n >= N)
		return;
	const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
	float *dx = dinp + (size_t)n * C;
	float m = mean[n], r = rstd[n];

	for (int c = lane; c < C; c += 32) {
		float g = weight[c] * d[c];

		gsum += g;
		gxsum += g * ((x[c] - m) * r);
	}
	float gmean = (float)(warp_sum(gsum) / C), gxmean = (float)(warp_sum(gxsum) / C);
	for (int c = lane; c < C; c += 32) {
		float xhat = (x[c] - m) * r;

		dx[c] += (weight[c] * d[c] - gmean - xhat * gxmean) * r;
	}
}

/* dweight (C) += sum_n dout * xhat, dbias (C) += sum_n dout; block (32, 32)
 * per 32 channels, fixed-order combination of the 32 row lanes */
static __global__ void __launch_bounds__(1024)
	layernorm_dparams_kernel(float *dweight, float *dbias, const float *dout, const float *inp,
				 const float *mean, const float *rstd, int N, int C)
{
	__shared__ float pw[32][33], pb[32][33];
	int c = blockIdx.x * 32 + threadIdx.x;
	float dw = 0.0f, db = 0.0f;

	if (c < C)
		for (int n = threadIdx.y; n < N; n += 32) {
			size_t i = (size_t)n * C + c;

			dw += dout[i] * ((inp[i] - mean[n]) * rstd[n]);
			db += dout[i];
		}
	pw[threadIdx.y][threadIdx.x] = dw;
	pb[threadIdx.y][threadIdx.x] = db;
	__syncthreads();
	if (threadIdx.y != 0 || c >= C)
		return;
	for (int y = 1; y < 32; y++) {
		dw += pw[y][threadIdx.x];
		db += pb[y][threadIdx.x];
	}
	if (dweight)
		dweight[c] += dw;
	if (dbias)
		dbias[c] += db;
}

/* ---- launchers ---- */

llm_err cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
			       const float *weight, const float *bias, int N, int C, float eps,
			       void *stream)
{
	if (N < 1 || C < 1 || !out || !inp || !weight || !bias)
		return llm_fail(LLM_EINVAL,
				"cuda_layernorm_forward: N=%d C=%d out=%p inp=%p weight=%p "
				"bias=%p",
				N, C, (void *)out, (const void *)inp, (const void *)weight,
				(const void *)bias);
	layernorm_forward_kernel<<<(unsigned)ceil_div((size_t)N, LN_ROWS), 32 * LN_ROWS, 0,
				   (cudaStream_t)stream>>>(out, mean, rstd, inp, weight, bias, N, C,
							   eps);
	return cuda_check_launch("cuda_layernorm_forward", "layernorm_forward_kernel");
}

llm_err cuda_residual_layernorm_forward(float *res_out, float *out, float *mean, float *rstd,
					const float *inp1, const float *inp2, const float *weight,
					const float *bias, int N, int C, float eps, void *stream)
{
	if (N < 1 || C < 1 || !res_out || !out || !inp1 || !inp2 || !weight || !bias)
		return llm_fail(LLM_EINVAL,
				"cuda_residual_layernorm_forward: N=%d C=%d res_out=%p out=%p "
				"inp1=%p inp2=%p weight=%p bias=%p",
				N, C, (void *)res_out, (void *)out, (const void *)inp1,
				(const void *)inp2, (const void *)weight, (const void *)bias);
	residual_layernorm_forward_kernel<<<(unsigned)ceil_div((size_t)N, LN_ROWS), 32 * LN_ROWS, 0,
					    (cudaStream_t)stream>>>(res_out, out, mean, rstd, inp1,
								    inp2, weight, bias, N, C, eps);
	return cuda_check_launch("cuda_residual_layernorm_forward",
				 "residual_layernorm_forward_kernel");
}

llm_err cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
				const float *inp, const float *weight, const float *mean,
				const float *rstd, int N, int C, void *stream)
{
	const char *fn = "cuda_layernorm_backward";
	cudaStream_t s = (cudaStream_t)stream;
	llm_err err;

	if (N < 1 || C < 1 || !dout || !inp || !mean || !rstd || (dinp && !weight))
		return llm_fail(LLM_EINVAL,
				"%s: N=%d C=%d dout=%p inp=%p weight=%p mean=%p rstd=%p", fn, N, C,
				(const void *)dout, (const void *)inp, (const void *)weight,
				(const void *)mean, (const void *)rstd);
	if (dinp) {
		layernorm_dinp_kernel<<<(unsigned)ceil_div((size_t)N, LN_ROWS), 32 * LN_ROWS, 0,
					s>>>(dinp, dout, inp, weight, mean, rstd, N, C);
		if ((err = cuda_check_launch(fn, "layernorm_dinp_kernel")))
			return err;
	}
	if (!dweight && !dbias)
		return LLM_OK;
	layernorm_dparams_kernel<<<(unsigned)ceil_div((size_t)C, 32), dim3(32, 32), 0, s>>>(
		dweight, dbias, dout, inp, mean, rstd, N, C);
	return cuda_check_launch(fn, "layernorm_dparams_kernel");
}
