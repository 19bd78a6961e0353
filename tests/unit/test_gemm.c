/* Unit tests for the SGEMM dispatch (kernels/cpu/gemm.c).
 *
 * Every implementation (OpenBLAS, the AVX2 and AVX-512 packed tiles, the
 * AVX-512 tile built for AVX2, the one-row GEMV, and the automatic choice)
 * is checked against a naive triple loop accumulated in double, over the
 * four transpose combinations and odd sizes that cross the tile (6 x 16,
 * 6 x 64) and cache blocks (KC 384, MC 144, NC 4080). An implementation
 * this CPU lacks runs OpenBLAS, so the tests pass on any x86-64.
 * Tolerance per element: the fp32 dot-product bound gamma(K + 2) times
 * |alpha| sum |a b| + |beta c|, about (K + 2) * 6e-8 of the magnitudes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../kernels/cpu/gemm.h"
#include "kernels_check.h"

static const enum llm_sgemm_impl impls[] = {
	LLM_SGEMM_AUTO,	  LLM_SGEMM_BLAS,	    LLM_SGEMM_AVX2,
	LLM_SGEMM_AVX512, LLM_SGEMM_AVX512_ON_AVX2, LLM_SGEMM_GEMV_AVX2,
};
#define NIMPLS (int)(sizeof(impls) / sizeof(impls[0]))

struct case_ {
	bool ta, tb;
	int M, N, K;
	int pad; /* added to each leading dimension */
	float alpha, beta;
};

/* C (as given) = alpha op(A) op(B) + beta C0 through impl, checked against double */
static void check_case(enum llm_sgemm_impl impl, const struct case_ *c, uint64_t seed)
{
	int lda = (c->ta ? c->M : c->K) + c->pad, ldb = (c->tb ? c->K : c->N) + c->pad;
	int ldc = c->N + c->pad;
	size_t na = (size_t)(c->ta ? c->K : c->M) * lda, nb = (size_t)(c->tb ? c->N : c->K) * ldb;
	size_t nc = (size_t)c->M * ldc;
	float *A = kc_rnd_array(na, seed, 1.0f), *B = kc_rnd_array(nb, seed + 1, 1.0f);
	float *C = kc_rnd_array(nc, seed + 2, 1.0f);
	float *C0 = kc_falloc(nc);

	for (size_t i = 0; i < nc; i++)
		C0[i] = C[i] = c->beta == 0.0f ? NAN : C[i];
	llm_sgemm_with(impl, c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, B, ldb, c->beta, C,
		       ldc);
	for (int i = 0; i < c->M; i++)
		for (int j = 0; j < c->N; j++) {
			double s = 0.0, mag = 0.0, ref, tol;

			for (int k = 0; k < c->K; k++) {
				double a = c->ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
				double b = c->tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];

				s += a * b;
				mag += fabs(a * b);
			}
			ref = c->alpha * s;
			mag = fabs(c->alpha) * mag;
			if (c->beta != 0.0f) {
				ref += c->beta * (double)C0[(size_t)i * ldc + j];
				mag += fabs(c->beta * (double)C0[(size_t)i * ldc + j]);
			}
			tol = (c->K + 2) * 6.0e-8 * mag / (1 - (c->K + 2) * 6.0e-8) + 1e-30;
			if (!(fabs(C[(size_t)i * ldc + j] - ref) <= tol))
				fail_msg("%s %c%c M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = "
					 "%.9g, "
					 "want %.9g (tol %.3g)",
					 llm_sgemm_name(impl), c->ta ? 'T' : 'N', c->tb ? 'T' : 'N',
					 c->M, c->N, c->K, c->alpha, c->beta, i, j,
					 C[(size_t)i * ldc + j], ref, tol);
		}
	/* the padding between rows of C is never written */
	for (int i = 0; i < c->M; i++)
		for (int j = c->N; j < ldc; j++)
			assert_true(isnan(C0[(size_t)i * ldc + j])
					    ? isnan(C[(size_t)i * ldc + j])
					    : C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
	free(A);
	free(B);
	free(C);
	free(C0);
}

/* every implementation, every transpose combination, one (M, N, K) */
static void check_all(int M, int N, int K, int pad, float alpha, float beta)
{
	for (int im = 0; im < NIMPLS; im++)
		for (int t = 0; t < 4; t++) {
			struct case_ c = {t & 1, t >> 1, M, N, K, pad, alpha, beta};

			check_case(impls[im], &c, (uint64_t)(M * 131 + N * 17 + K + t));
		}
}

static void test_odd_sizes_match_reference_for_every_transpose(void **state)
{
	static const int sizes[] = {1, 3, 17, 33, 65};

	(void)state;
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			for (int k = 0; k < 5; k++)
				check_all(sizes[i], sizes[j], sizes[k], 0, 1.0f, 0.0f);
}

static void test_sizes_crossing_the_cache_blocks_match_reference(void **state)
{
	(void)state;
	check_all(257, 65, 33, 0, 1.0f, 0.0f); /* M over MC, N over the tile */
	check_all(33, 257, 17, 0, 1.0f, 0.0f);
	check_all(17, 33, 400, 0, 1.0f, 0.0f);	/* K over KC: beta 1 on later blocks */
	check_all(7, 4100, 5, 0, 1.0f, 0.0f);	/* N over NC */
	check_all(150, 20, 800, 0, 1.0f, 0.5f); /* two K blocks with beta */
}

/* past 2^20 multiply-adds the packed product is threaded: row blocks, and
 * with fewer blocks than threads each block's panels split between them */
static void test_threaded_products_match_reference(void **state)
{
	(void)state;
	check_all(5, 1000, 300, 0, 1.0f, 0.0f); /* one row block, panels split */
	check_all(301, 41, 100, 1, 0.5f, 1.0f); /* several row blocks */
	check_all(13, 4200, 20, 0, 1.0f, 0.0f); /* split past NC */
}

static void test_alpha_and_beta_scale_product_and_c(void **state)
{
	(void)state;
	check_all(17, 33, 65, 0, 0.5f, 1.0f);
	check_all(33, 17, 9, 0, -2.0f, 0.25f);
	check_all(1, 65, 33, 0, 3.0f, -1.0f);
}

static void test_leading_dimensions_may_exceed_rows(void **state)
{
	(void)state;
	check_all(17, 33, 65, 3, 1.0f, 0.0f);
	check_all(1, 70, 33, 5, 1.0f, 1.0f);
}

/* one-row products (batch-1 decode) take the GEMV path: trans_a reads a
 * strided column, NN sums rows in blocks of 64 columns plus a tail */
static void test_one_row_products_match_reference(void **state)
{
	static const int ns[] = {1, 63, 64, 65, 257, 288, 1000};

	(void)state;
	for (int i = 0; i < 7; i++) {
		check_all(1, ns[i], 288, 0, 1.0f, 0.0f);
		check_all(1, ns[i], 31, 2, 0.5f, 2.0f);
	}
}

/* alpha 0 or K 0: C = beta C, and with beta 0 a NaN in C becomes 0 */
static void test_zero_k_or_alpha_scales_c(void **state)
{
	(void)state;
	for (int im = 0; im < NIMPLS; im++) {
		float C[6] = {1, 2, 3, 4, NAN, 6}, A[1] = {NAN}, B[1] = {NAN};

		llm_sgemm_with(impls[im], false, false, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
		assert_true(C[0] == 0.5f && C[3] == 2.0f && isnan(C[4]));
		llm_sgemm_with(impls[im], false, false, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
		for (int i = 0; i < 6; i++)
			assert_true(C[i] == 0.0f);
		C[2] = 7.0f;
		llm_sgemm_with(impls[im], false, true, 2, 3, 1, 0.0f, A, 1, B, 1, 2.0f, C, 3);
		assert_true(C[2] == 14.0f && C[0] == 0.0f);
	}
}

/* an implementation the CPU lacks, or an unknown one, runs OpenBLAS */
static void test_unavailable_impl_falls_back_to_blas(void **state)
{
	struct case_ c = {false, true, 33, 17, 65, 0, 1.0f, 0.0f};

	(void)state;
	assert_false(llm_sgemm_available(LLM_SGEMM_IMPL_COUNT));
	assert_true(llm_sgemm_available(LLM_SGEMM_BLAS));
	assert_string_equal(llm_sgemm_name(LLM_SGEMM_IMPL_COUNT), "?");
	check_case(LLM_SGEMM_IMPL_COUNT, &c, 7);
	check_case((enum llm_sgemm_impl) - 1, &c, 8);
	if (!llm_sgemm_available(LLM_SGEMM_AVX512))
		check_case(LLM_SGEMM_AVX512, &c, 9);
}

/* called from inside a parallel region, the packed GEMM runs on one thread */
static void test_call_inside_parallel_region(void **state)
{
	int failures = 0;

	(void)state;
#pragma omp parallel for reduction(+ : failures)
	for (int t = 0; t < 4; t++) {
		float A[6 * 40], B[40 * 20], C[6 * 20];
		double ref;

		for (int i = 0; i < 6 * 40; i++)
			A[i] = (float)((i * 7 + t) % 11) - 5.0f;
		for (int i = 0; i < 40 * 20; i++)
			B[i] = (float)((i * 3 + t) % 13) - 6.0f;
		llm_sgemm(false, false, 6, 20, 40, 1.0f, A, 40, B, 20, 0.0f, C, 20);
		for (int i = 0; i < 6; i++)
			for (int j = 0; j < 20; j++) {
				ref = 0.0;
				for (int k = 0; k < 40; k++)
					ref += (double)A[i * 40 + k] * B[k * 20 + j];
				failures += C[i * 20 + j] != (float)ref; /* small integers: exact */
			}
	}
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_odd_sizes_match_reference_for_every_transpose),
		cmocka_unit_test(test_sizes_crossing_the_cache_blocks_match_reference),
		cmocka_unit_test(test_threaded_products_match_reference),
		cmocka_unit_test(test_alpha_and_beta_scale_product_and_c),
		cmocka_unit_test(test_leading_dimensions_may_exceed_rows),
		cmocka_unit_test(test_one_row_products_match_reference),
		cmocka_unit_test(test_zero_k_or_alpha_scales_c),
		cmocka_unit_test(test_unavailable_impl_falls_back_to_blas),
		cmocka_unit_test(test_call_inside_parallel_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
