/* Unit tests for the CPU reference kernels (kernels/cpu/).
 *
 * cpu_matmul_forward is checked against a naive triple loop written here,
 * accumulated in double. Tolerance: the classic bound for an fp32 dot product
 * of length K in any summation order (with or without FMA),
 *	|fl(x) - x| <= gamma(K + 1) * (sum_c |inp * weight| + |bias|),
 *	gamma(n) = n*u / (1 - n*u), u = 2^-24 (fp32 unit roundoff),
 * with K + 2 instead of K + 1 to absorb the double reference's own rounding.
 * For K = 33 and inputs in [-1, 1) that is about 1.7e-6 per element, so a
 * wrong index, transpose or bias shows up at once.
 *
 * cpu_residual_forward must match inp1[i] + inp2[i] bit for bit (one
 * correctly rounded fp32 add on both sides), aliased or not. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmops_kernels.h"

/* xorshift64: deterministic uniform floats in [-1, 1) */
static float rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (float)(*s >> 40) * (1.0f / (1 << 23)) - 1.0f;
}

static float *rnd_array(size_t n, uint64_t seed)
{
	float *a = malloc(n * sizeof(*a));

	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		a[i] = rnd(&seed);
	return a;
}

struct shape {
	int B, T, C, OC;
};

/* odd sizes on purpose: nothing is a multiple of a SIMD width or block */
static const struct shape shapes[] = {
	{1, 1, 1, 1},	 {2, 7, 33, 65},    {3, 5, 17, 9}, {1, 3, 130, 7},
	{2, 64, 96, 40}, {2, 128, 40, 129}, /* B*T*OC >= 2^15: the bias pass runs threaded */
};

/* Checks one output row against the naive loop and the bound above. */
static void check_row(const float *got, const float *inp, const float *weight, const float *bias,
		      int C, int OC)
{
	const double u = 0x1p-24;
	const double gamma = (C + 2) * u / (1.0 - (C + 2) * u);

	for (int o = 0; o < OC; o++) {
		double ref = bias ? bias[o] : 0.0;
		double mag = bias ? fabs(bias[o]) : 0.0;

		for (int c = 0; c < C; c++) {
			ref += (double)inp[c] * weight[(size_t)o * C + c];
			mag += fabs((double)inp[c] * weight[(size_t)o * C + c]);
		}
		/* written so that a NaN in got fails too */
		if (!(fabs(got[o] - ref) <= gamma * mag))
			fail_msg("out[%d] = %.9g, want %.9g (tol %.3g)", o, got[o], ref,
				 gamma * mag);
	}
}

static void check_matmul(const struct shape *s, int with_bias, float prefill)
{
	int BT = s->B * s->T;
	float *inp = rnd_array((size_t)BT * s->C, 1);
	float *weight = rnd_array((size_t)s->OC * s->C, 2);
	float *bias = with_bias ? rnd_array((size_t)s->OC, 3) : NULL;
	float *out = malloc((size_t)BT * s->OC * sizeof(*out));

	assert_non_null(out);
	for (size_t i = 0; i < (size_t)BT * s->OC; i++)
		out[i] = prefill;
	cpu_matmul_forward(out, inp, weight, bias, s->B, s->T, s->C, s->OC);
	for (int bt = 0; bt < BT; bt++)
		check_row(out + (size_t)bt * s->OC, inp + (size_t)bt * s->C, weight, bias, s->C,
			  s->OC);
	free(out);
	free(bias);
	free(weight);
	free(inp);
}

static void test_matmul_matches_naive_loop_with_bias(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		check_matmul(&shapes[i], 1, 0.0f);
}

static void test_matmul_matches_naive_loop_without_bias(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		check_matmul(&shapes[i], 0, 0.0f);
}

/* beta = 0: NaN or garbage already in out must not leak into the result */
static void test_matmul_ignores_previous_out_contents(void **state)
{
	(void)state;
	check_matmul(&shapes[1], 1, NAN);
	check_matmul(&shapes[2], 0, NAN);
	check_matmul(&shapes[3], 0, 1e4f);
}

static void check_residual_sum(const float *out, const float *a, const float *b, int N)
{
	for (int i = 0; i < N; i++) {
		float want = a[i] + b[i];

		if (memcmp(&out[i], &want, sizeof(want)) != 0)
			fail_msg("out[%d] = %.9g, want %.9g", i, out[i], want);
	}
}

/* N above the OpenMP threshold and odd, so the tail after the SIMD body runs */
#define RES_N 100003

static void test_residual_adds_elementwise(void **state)
{
	float *a = rnd_array(RES_N, 7);
	float *b = rnd_array(RES_N, 8);
	float *out = malloc(RES_N * sizeof(*out));

	(void)state;
	assert_non_null(out);
	cpu_residual_forward(out, a, b, RES_N);
	check_residual_sum(out, a, b, RES_N);
	cpu_residual_forward(out, a, b, 5); /* small N: single-thread path */
	check_residual_sum(out, a, b, 5);
	free(out);
	free(b);
	free(a);
}

/* out == inp1, then out == inp2, then out == inp1 == inp2 (doubling) */
static void test_residual_out_may_alias_inputs(void **state)
{
	float *a = rnd_array(RES_N, 9);
	float *b = rnd_array(RES_N, 10);
	float *a0 = malloc(RES_N * sizeof(*a0));
	float *b0 = malloc(RES_N * sizeof(*b0));

	(void)state;
	assert_non_null(a0);
	assert_non_null(b0);
	memcpy(a0, a, RES_N * sizeof(*a));
	memcpy(b0, b, RES_N * sizeof(*b));
	cpu_residual_forward(a, a, b, RES_N);
	check_residual_sum(a, a0, b0, RES_N);
	memcpy(a, a0, RES_N * sizeof(*a));
	cpu_residual_forward(b, a, b, RES_N);
	check_residual_sum(b, a0, b0, RES_N);
	cpu_residual_forward(a, a, a, RES_N);
	check_residual_sum(a, a0, a0, RES_N);
	free(b0);
	free(a0);
	free(b);
	free(a);
}

static void test_residual_zero_length_writes_nothing(void **state)
{
	float a[1] = {1.0f}, b[1] = {2.0f}, out[1] = {-7.0f};

	(void)state;
	cpu_residual_forward(out, a, b, 0);
	assert_float_equal(out[0], -7.0f, 0.0f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matmul_matches_naive_loop_with_bias),
		cmocka_unit_test(test_matmul_matches_naive_loop_without_bias),
		cmocka_unit_test(test_matmul_ignores_previous_out_contents),
		cmocka_unit_test(test_residual_adds_elementwise),
		cmocka_unit_test(test_residual_out_may_alias_inputs),
		cmocka_unit_test(test_residual_zero_length_writes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
