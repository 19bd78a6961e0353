/* CPU reference matmul (fully connected layer forward), fp32.
 *
 * The GEMM is OpenBLAS cblas_sgemm, so threading follows OpenBLAS's own
 * settings (OPENBLAS_NUM_THREADS); the bias is added in a second pass split
 * over rows with OpenMP. Design limit: cblas takes int sizes, so B*T, C and
 * OC must each fit in an int. */
#include "llmops_kernels.h"

#include <cblas.h>
#include <stddef.h>

/* below this many outputs the bias pass runs on the calling thread only */
#define BIAS_PAR_MIN (1 << 15)

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC); bias may be NULL.
 * Row-major: out[bt][o] = sum_c inp[bt][c] * weight[o][c] + bias[o]. */
void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
			int T, int C, int OC)
{
	int BT = B * T;

	/* beta = 0: BLAS does not read out, so its old contents may be NaN */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, C, 1.0f, inp, C, weight, C,
		    0.0f, out, OC);
	if (!bias)
		return;
#pragma omp parallel for if ((long long)BT * OC >= BIAS_PAR_MIN)
	for (int bt = 0; bt < BT; bt++) {
		float *row = out + (size_t)bt * OC;

		for (int o = 0; o < OC; o++)
			row[o] += bias[o];
	}
}
