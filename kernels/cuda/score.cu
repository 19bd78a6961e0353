/* CUDA similarity scores between queries and a matrix of stored vectors.
 *
 * One fp32 SGEMM on the process-wide cuBLAS handle gives every inner
 * product; for the cosine metric a norms kernel (one warp per vector, sum of
 * squares in double) fills a stream-ordered workspace of Q + N doubles and
 * a grid-stride kernel divides each score by both norms (0 where either
 * vector is zero), as kernels/cpu/score.c does. Design limit: the workspace
 * comes from cudaMallocAsync on the caller's stream and is freed there. */
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* vectors per 256-thread block of the norms kernel */
#define SCORE_ROWS 8

/* ---- kernels ---- */

/* norms (Q + N): L2 norms of queries (Q,D) then of matrix (N,D) */
static __global__ void norms_kernel(double *norms, const float *queries, const float *matrix, int Q,
				    int N, int D)
{
	long long row = (long long)blockIdx.x * SCORE_ROWS + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	double ss = 0.0;

	if (row >= (long long)Q + N)
		return;
	const float *x = row < Q ? queries + (size_t)row * D : matrix + (size_t)(row - Q) * D;

	for (int i = lane; i < D; i += 32)
		ss += (double)x[i] * x[i];
	ss = warp_sum(ss);
	if (lane == 0)
		norms[row] = sqrt(ss);
}

/* scores (Q,N) /= |query| |matrix row|, 0 where that is 0 */
static __global__ void cosine_kernel(float *scores, const double *norms, int Q, int N)
{
	size_t n = (size_t)Q * N, stride = (size_t)gridDim.x * blockDim.x;

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
		double den = norms[i / N] * norms[Q + i % N];

		scores[i] = den > 0.0 ? (float)(scores[i] / den) : 0.0f;
	}
}

/* ---- launchers ---- */

/* scores (Q,N) = queries (Q,D) . matrix (N,D)^T: column-major (T, N, m = N,
 * n = Q, k = D), as cuda_matmul_forward */
static llm_err score_gemm(float *scores, const float *queries, const float *matrix, int Q, int N,
			  int D, cudaStream_t s)
{
	const float one = 1.0f, zero = 0.0f;
	cublasHandle_t h;
	cublasStatus_t st;
	llm_err err = cuda_cublas_acquire("cuda_score_forward", s, &h);

	if (err)
		return err;
	st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, N, Q, D, &one, matrix, D, queries, D, &zero,
			 scores, N);
	cuda_cublas_release();
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail("cuda_score_forward", "cublasSgemm", st);
	return LLM_OK;
}

llm_err cuda_score_forward(float *scores, const float *queries, const float *matrix, int Q, int N,
			   int D, enum llm_metric metric, void *stream)
{
	const char *fn = "cuda_score_forward";
	cudaStream_t s = (cudaStream_t)stream;
	size_t nvec = (size_t)Q + N;
	double *norms = NULL;
	cudaError_t cerr;
	llm_err err;

	if (Q < 1 || N < 1 || D < 1 || !scores || !queries || !matrix ||
	    (metric != LLM_METRIC_DOT && metric != LLM_METRIC_COSINE))
		return llm_fail(LLM_EINVAL, "%s: Q=%d N=%d D=%d metric=%d", fn, Q, N, D,
				(int)metric);
	if ((err = score_gemm(scores, queries, matrix, Q, N, D, s)) || metric != LLM_METRIC_COSINE)
		return err;
	cerr = cudaMallocAsync((void **)&norms, nvec * sizeof(double), s);
	if (cerr != cudaSuccess)
		return cuda_fail(fn, "cudaMallocAsync", cerr);
	norms_kernel<<<(unsigned)ceil_div(nvec, SCORE_ROWS), 32 * SCORE_ROWS, 0, s>>>(
		norms, queries, matrix, Q, N, D);
	err = cuda_check_launch(fn, "norms_kernel");
	if (!err) {
		cosine_kernel<<<grid_for((size_t)Q * N), LLMOPS_BLOCK, 0, s>>>(scores, norms, Q, N);
		err = cuda_check_launch(fn, "cosine_kernel");
	}
	cerr = cudaFreeAsync(norms, s);
	if (!err && cerr != cudaSuccess)
		err = cuda_fail(fn, "cudaFreeAsync", cerr);
	return err;
}
