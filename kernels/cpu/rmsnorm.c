/* CPU RMSNorm forward and backward (Llama), fp32 storage.
 *
 * Forward follows LlamaRMSNorm in fp32: rstd = rsqrt(mean(x^2) + eps) with
 * the mean of squares summed in double, out = weight * (x * rstd). Backward
 * runs in two passes like LayerNorm's: input gradients split over rows, then
 * weight gradients split over blocks of channels, so no two threads write
 * the same element. The fused residual + RMSNorm forward adds the two
 * inputs in the loop that sums the squares and shares the rest of the row
 * code. Design limit: the backward's second pass re-reads inp. */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* below this many elements the kernels run on one thread */
#define RMS_PAR_MIN (1 << 14)
/* channels owned by one dweight task */
#define RMS_COLS 64

/* Finishes one row x (C) whose sum of squares is ss: o (C) = weight * x *
 * rstd, *rstd (may be NULL) the row's rstd. Shared by both forwards, so the
 * fused one rounds exactly as the plain one does. */
static inline void rmsnorm_row(float *o, float *rstd, const float *x, double ss,
			       const float *weight, int C, float eps)
{
	float var = (float)(ss / C);
	float r = (float)(1.0 / sqrt((double)(var + eps))); /* fp32 add, as HF */

#pragma omp simd
	for (int c = 0; c < C; c++)
		o[c] = weight[c] * (x[c] * r);
	if (rstd)
		*rstd = r;
}

/* out (N,C) = weight (C) * (inp * rstd); rstd (N) may be NULL; out may equal
 * inp. */
void cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
			 int C, float eps)
{
#pragma omp parallel for if ((long long)N * C >= RMS_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		double ss = 0.0;

#pragma omp simd reduction(+ : ss)
		for (int c = 0; c < C; c++)
			ss += (double)x[c] * x[c];
		rmsnorm_row(out + (size_t)n * C, rstd ? rstd + n : NULL, x, ss, weight, C, eps);
	}
}

/* res_out (N,C) = inp1 + inp2, out (N,C) = RMSNorm(res_out), one row per
 * iteration: the add and the sum of squares share one loop, so inp1 and inp2
 * are read once and the row is still in L1 for the output. Same order as
 * cpu_residual_forward + cpu_rmsnorm_forward, so the same bits. */
void cpu_residual_rmsnorm_forward(float *res_out, float *out, float *rstd, const float *inp1,
				  const float *inp2, const float *weight, int N, int C, float eps)
{
#pragma omp parallel for if ((long long)N * C >= RMS_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *a = inp1 + (size_t)n * C, *b = inp2 + (size_t)n * C;
		float *x = res_out + (size_t)n * C;
		double ss = 0.0;

#pragma omp simd reduction(+ : ss)
		for (int c = 0; c < C; c++) {
			float v = a[c] + b[c];

			x[c] = v;
			ss += (double)v * v;
		}
		rmsnorm_row(out + (size_t)n * C, rstd ? rstd + n : NULL, x, ss, weight, C, eps);
	}
}

/* dinp (N,C) += r * g - x * r^3 * mean(g * x), g = weight * dout. */
static void rmsnorm_dinp(float *dinp, const float *dout, const float *inp, const float *weight,
			 const float *rstd, int N, int C)
{
#pragma omp parallel for if ((long long)N * C >= RMS_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		const float *d = dout + (size_t)n * C;
		float *dx = dinp + (size_t)n * C;
		float r = rstd[n];
		double gx = 0.0;

#pragma omp simd reduction(+ : gx)
		for (int c = 0; c < C; c++)
			gx += (double)weight[c] * d[c] * x[c];
		float k = (float)(gx / C * r * r * r);
#pragma omp simd
		for (int c = 0; c < C; c++)
			dx[c] += weight[c] * d[c] * r - x[c] * k;
	}
}

/* dweight (C) += sum_n dout * inp * rstd; each task owns RMS_COLS channels. */
static void rmsnorm_dweight(float *dweight, const float *dout, const float *inp, const float *rstd,
			    int N, int C)
{
	int nblk = (C + RMS_COLS - 1) / RMS_COLS;

#pragma omp parallel for if ((long long)N * C >= RMS_PAR_MIN)
	for (int blk = 0; blk < nblk; blk++) {
		int c0 = blk * RMS_COLS, c1 = c0 + RMS_COLS < C ? c0 + RMS_COLS : C;
		float dw[RMS_COLS] = {0};

		for (int n = 0; n < N; n++) {
			const float *x = inp + (size_t)n * C;
			const float *d = dout + (size_t)n * C;
			float r = rstd[n];

#pragma omp simd
			for (int c = c0; c < c1; c++)
				dw[c - c0] += d[c] * (x[c] * r);
		}
		for (int c = c0; c < c1; c++)
			dweight[c] += dw[c - c0];
	}
}

/* Backward of cpu_rmsnorm_forward: accumulates dinp (N,C) and dweight (C),
 * either may be NULL; needs the forward pass's rstd (N). */
void cpu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
			  const float *weight, const float *rstd, int N, int C)
{
	if (dinp)
		rmsnorm_dinp(dinp, dout, inp, weight, rstd, N, C);
	if (dweight)
		rmsnorm_dweight(dweight, dout, inp, rstd, N, C);
}
