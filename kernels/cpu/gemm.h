/* Internal SGEMM dispatch for the CPU kernels (not part of the public
 * kernels header). Row-major, fp32 accumulation:
 *   C (M,N) = alpha * op(A) (M,K) . op(B) (K,N) + beta * C
 * where op(A) = A (M,K, row stride lda) or, with trans_a, A^T for A (K,M);
 * likewise op(B) = B (K,N, stride ldb) or, with trans_b, B^T for B (N,K).
 * With beta == 0, C is not read (its old contents may be NaN). The call may
 * allocate packing buffers, freed before it returns; when it cannot, it
 * falls back to OpenBLAS, so it never fails. */
#ifndef LLMOPS_GEMM_H
#define LLMOPS_GEMM_H

#include <stdbool.h>

/* The implementations behind llm_sgemm; LLM_SGEMM_AUTO picks per shape. */
enum llm_sgemm_impl {
	LLM_SGEMM_AUTO = 0,
	LLM_SGEMM_BLAS,		  /* OpenBLAS cblas_sgemm, as installed */
	LLM_SGEMM_AVX2,		  /* packed panels, 6x16 ymm tile (AVX2 + FMA) */
	LLM_SGEMM_AVX512,	  /* packed panels, 6x64 zmm tile (AVX-512F) */
	LLM_SGEMM_AVX512_ON_AVX2, /* the 6x64 tile built for AVX2: tests its blocking */
	LLM_SGEMM_GEMV_AVX2,	  /* one-row products as dot products or row sums; else BLAS */
	LLM_SGEMM_IMPL_COUNT
};

/* C = alpha * op(A) . op(B) + beta * C with the implementation chosen for
 * this CPU and shape (see llm_sgemm_with). M, N, K >= 0. */
void llm_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
	       int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The same product with a given implementation; one this CPU lacks (see
 * llm_sgemm_available) runs OpenBLAS instead. For benchmarks and tests. */
void llm_sgemm_with(enum llm_sgemm_impl impl, bool trans_a, bool trans_b, int M, int N, int K,
		    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
		    float *C, int ldc);

/* true when this CPU can run impl (AUTO and BLAS always) */
bool llm_sgemm_available(enum llm_sgemm_impl impl);

/* short name of impl ("blas", "avx2", ...), "?" when out of range */
const char *llm_sgemm_name(enum llm_sgemm_impl impl);

#endif
