/* CPU reference matmul (fully connected layer forward), fp32.
 *
 * The GEMM is llm_sgemm (gemm.c), which picks our own kernels or OpenBLAS
 * per shape and CPU; the bias is added in a second pass split over rows
 * with OpenMP. Design limit: the GEMM takes int sizes, so B*T, C and OC must
 * each fit in an int. */
#include "llmops_kernels.h"

#include "gemm.h"

#include <stddef.h>

/* below this many outputs the bias pass runs on the calling thread only */
#define BIAS_PAR_MIN (1 << 15)

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC); bias may be NULL.
 * Row-major: out[bt][o] = sum_c inp[bt][c] * weight[o][c] + bias[o]. */
void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
			int T, int C, int OC)
{
	int BT = B * T;

	/* beta = 0: the GEMM does not read out, so its old contents may be NaN */
	llm_sgemm(false, true, BT, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
	if (!bias)
		return;
#pragma omp parallel for if ((long long)BT * OC >= BIAS_PAR_MIN)
	for (int bt = 0; bt < BT; bt++) {
		float *row = out + (size_t)bt * OC;

#pragma omp simd
		for (int o = 0; o < OC; o++)
			row[o] += bias[o];
	}
}

/* columns of dbias summed per task: enough to stream a row segment */
#define DBIAS_COLS 64

/* dbias (OC) += sum over rows of dout (BT,OC). Each task owns a block of
 * columns and walks the rows in order, so the sum is deterministic. */
static void dbias_accumulate(float *dbias, const float *dout, int BT, int OC)
{
	int nblk = (OC + DBIAS_COLS - 1) / DBIAS_COLS;

#pragma omp parallel for if ((long long)BT * OC >= BIAS_PAR_MIN)
	for (int blk = 0; blk < nblk; blk++) {
		int o0 = blk * DBIAS_COLS;
		int o1 = o0 + DBIAS_COLS < OC ? o0 + DBIAS_COLS : OC;
		float acc[DBIAS_COLS] = {0};

		for (int bt = 0; bt < BT; bt++) {
			const float *row = dout + (size_t)bt * OC;

#pragma omp simd
			for (int o = o0; o < o1; o++)
				acc[o - o0] += row[o];
		}
		for (int o = o0; o < o1; o++)
			dbias[o] += acc[o - o0];
	}
}

/* Backward of cpu_matmul_forward, two sgemms with beta = 1 (accumulate):
 *   dinp (BT,C) += dout (BT,OC) . weight (OC,C)
 *   dweight (OC,C) += dout^T (OC,BT) . inp (BT,C)
 *   dbias (OC) += column sums of dout. */
void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			 const float *inp, const float *weight, int B, int T, int C, int OC)
{
	int BT = B * T;

	if (dinp)
		llm_sgemm(false, false, BT, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
	if (dweight)
		llm_sgemm(true, false, OC, C, BT, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
	if (dbias)
		dbias_accumulate(dbias, dout, BT, OC);
}
