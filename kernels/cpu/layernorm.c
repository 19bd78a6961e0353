/* CPU LayerNorm forward and backward, fp32 storage, double row statistics.
 *
 * Forward: one row per iteration; mean and biased variance are summed in
 * double so the result matches torch.nn.LayerNorm to about one ulp however
 * long the row. Backward runs in two passes: input gradients split over rows,
 * then weight and bias gradients split over blocks of channels, so no two
 * threads write the same element and sums are deterministic. The fused
 * residual + LayerNorm forward adds the two inputs in the loop that sums the
 * mean, sharing the rest of the row code with the plain forward. Design
 * limit: the backward's second pass re-reads inp once more. */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* below this many elements the kernels run on one thread */
#define LN_PAR_MIN (1 << 14)
/* channels owned by one dweight/dbias task */
#define LN_COLS 64

/* Finishes one row x (C) whose element sum is `sum`: o (C) = normalised x,
 * *mean and *rstd (each may be NULL) its statistics. Both forwards use it, so
 * the fused one rounds exactly as the plain one does. */
static inline void layernorm_row(float *o, float *mean, float *rstd, const float *x, double sum,
				 const float *weight, const float *bias, int C, float eps)
{
	double mu = sum / C, var = 0.0;

#pragma omp simd reduction(+ : var)
	for (int c = 0; c < C; c++)
		var += (x[c] - mu) * (x[c] - mu);
	float m = (float)mu;
	float r = (float)(1.0 / sqrt(var / C + eps));
#pragma omp simd
	for (int c = 0; c < C; c++)
		o[c] = (x[c] - m) * r * weight[c] + bias[c];
	if (mean)
		*mean = m;
	if (rstd)
		*rstd = r;
}

/* out (N,C) = (inp - mean) * rstd * weight (C) + bias (C); mean (N) and
 * rstd (N) may be NULL; out may equal inp. */
void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
			   const float *weight, const float *bias, int N, int C, float eps)
{
#pragma omp parallel for if ((long long)N * C >= LN_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		double sum = 0.0;

#pragma omp simd reduction(+ : sum)
		for (int c = 0; c < C; c++)
			sum += x[c];
		layernorm_row(out + (size_t)n * C, mean ? mean + n : NULL, rstd ? rstd + n : NULL,
			      x, sum, weight, bias, C, eps);
	}
}

/* res_out (N,C) = inp1 + inp2, out (N,C) = LayerNorm(res_out), one row per
 * iteration: the add and the mean's sum share one loop, so inp1 and inp2 are
 * read once and the row is still in L1 for the variance and the output.
 * Summed in the same order as cpu_residual_forward + cpu_layernorm_forward,
 * so the results are the same bits. */
void cpu_residual_layernorm_forward(float *res_out, float *out, float *mean, float *rstd,
				    const float *inp1, const float *inp2, const float *weight,
				    const float *bias, int N, int C, float eps)
{
#pragma omp parallel for if ((long long)N * C >= LN_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *a = inp1 + (size_t)n * C, *b = inp2 + (size_t)n * C;
		float *x = res_out + (size_t)n * C;
		double sum = 0.0;

#pragma omp simd reduction(+ : sum)
		for (int c = 0; c < C; c++) {
			float v = a[c] + b[c];

			x[c] = v;
			sum += v;
		}
		layernorm_row(out + (size_t)n * C, mean ? mean + n : NULL, rstd ? rstd + n : NULL,
			      x, sum, weight, bias, C, eps);
	}
}

/* dinp (N,C) += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = weight * dout,
 * xhat = (inp - mean) * rstd, one row per task. */
static void layernorm_dinp(float *dinp, const float *dout, const float *inp, const float *weight,
			   const float *mean, const float *rstd, int N, int C)
{
#pragma omp parallel for if ((long long)N * C >= LN_PAR_MIN)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		const float *d = dout + (size_t)n * C;
		float *dx = dinp + (size_t)n * C;
		float m = mean[n], r = rstd[n];
		double gsum = 0.0, gxsum = 0.0;

#pragma omp simd reduction(+ : gsum, gxsum)
		for (int c = 0; c < C; c++) {
			float g = weight[c] * d[c];

			gsum += g;
			gxsum += g * ((x[c] - m) * r);
		}
		float gmean = (float)(gsum / C), gxmean = (float)(gxsum / C);
#pragma omp simd
		for (int c = 0; c < C; c++) {
			float xhat = (x[c] - m) * r;

			dx[c] += (weight[c] * d[c] - gmean - xhat * gxmean) * r;
		}
	}
}

/* dweight (C) += sum_n dout * xhat, dbias (C) += sum_n dout; each task owns
 * LN_COLS channels and walks the rows in order. Either pointer may be NULL. */
static void layernorm_dparams(float *dweight, float *dbias, const float *dout, const float *inp,
			      const float *mean, const float *rstd, int N, int C)
{
	int nblk = (C + LN_COLS - 1) / LN_COLS;

#pragma omp parallel for if ((long long)N * C >= LN_PAR_MIN)
	for (int blk = 0; blk < nblk; blk++) {
		int c0 = blk * LN_COLS, c1 = c0 + LN_COLS < C ? c0 + LN_COLS : C;
		float dw[LN_COLS] = {0}, db[LN_COLS] = {0};

		for (int n = 0; n < N; n++) {
			const float *x = inp + (size_t)n * C;
			const float *d = dout + (size_t)n * C;
			float m = mean[n], r = rstd[n];

#pragma omp simd
			for (int c = c0; c < c1; c++) {
				dw[c - c0] += d[c] * ((x[c] - m) * r);
				db[c - c0] += d[c];
			}
		}
		for (int c = c0; c < c1; c++) {
			if (dweight)
				dweight[c] += dw[c - c0];
			if (dbias)
				dbias[c] += db[c - c0];
		}
	}
}

/* Backward of cpu_layernorm_forward: accumulates dinp (N,C), dweight (C),
 * dbias (C); any may be NULL. */
void cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			    const float *inp, const float *weight, const float *mean,
			    const float *rstd, int N, int C)
{
	if (dinp)
		layernorm_dinp(dinp, dout, inp, weight, mean, rstd, N, C);
	if (dweight || dbias)
		layernorm_dparams(dweight, dbias, dout, inp, mean, rstd, N, C);
}
