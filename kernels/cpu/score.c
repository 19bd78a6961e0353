/* CPU similarity scores between queries and a matrix of stored vectors.
 *
 * One llm_sgemm (gemm.c) gives all inner products; for the cosine metric
 * each score is then divided by both L2 norms (summed in double). Query norms
 * live in a stack array for SCORE_QCHUNK queries at a time, so only the GEMM's
 * packing buffers touch the heap; matrix norms are recomputed once per chunk of queries. Design
 * limit: with many queries the matrix norms are recomputed Q / SCORE_QCHUNK times, a small fraction
 * of the GEMM's own work. */
#include "llmops_kernels.h"

#include "gemm.h"

#include <math.h>
#include <stddef.h>

/* queries whose norms are held at once */
#define SCORE_QCHUNK 256
/* below this many scores the cosine pass runs on one thread */
#define SCORE_PAR_MIN (1L << 14)

static double l2_norm(const float *x, int D)
{
	double ss = 0.0;

	for (int i = 0; i < D; i++)
		ss += (double)x[i] * x[i];
	return sqrt(ss);
}

/* scores rows [q0, q0 + nq) (of N columns) divided by |query| |matrix row|;
 * 0 where either vector is zero */
static void cosine_chunk(float *scores, const float *queries, const float *matrix, int q0, int nq,
			 int N, int D)
{
	double qn[SCORE_QCHUNK];

	for (int i = 0; i < nq; i++)
		qn[i] = l2_norm(queries + (size_t)(q0 + i) * D, D);
#pragma omp parallel for if ((long)nq * N >= SCORE_PAR_MIN)
	for (int j = 0; j < N; j++) {
		double mn = l2_norm(matrix + (size_t)j * D, D);

		for (int i = 0; i < nq; i++) {
			float *s = scores + (size_t)(q0 + i) * N + j;
			double den = qn[i] * mn;

			*s = den > 0.0 ? (float)(*s / den) : 0.0f;
		}
	}
}

/* scores (Q,N) = queries (Q,D) . matrix (N,D)^T, or the cosine. */
void cpu_score_forward(float *scores, const float *queries, const float *matrix, int Q, int N,
		       int D, enum llm_metric metric)
{
	llm_sgemm(false, true, Q, N, D, 1.0f, queries, D, matrix, D, 0.0f, scores, N);
	if (metric != LLM_METRIC_COSINE)
		return;
	for (int q0 = 0; q0 < Q; q0 += SCORE_QCHUNK)
		cosine_chunk(scores, queries, matrix, q0,
			     Q - q0 < SCORE_QCHUNK ? Q - q0 : SCORE_QCHUNK, N, D);
}
