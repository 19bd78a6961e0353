/* Unit tests for kernels/cpu/vmath.h against double-precision libm.
 *
 * Each function is swept over 4 * 10^6 evenly spaced points of its useful
 * range, plus edge cases. Every value is computed as the kernels compute it:
 * in a `#pragma omp simd` loop of a VM_CLONES function, built with the
 * kernels' -ffp-contract=fast (Makefile), so on an AVX2 machine this checks
 * the 256-bit FMA code and elsewhere the baseline code. Measured maxima
 * (Zen 3, AVX2 clone, GCC 12 -O2):
 *	vm_expf on [-87.3, 88.7]: relative error 8.4e-8 (bound 3e-7);
 *	  below that (subnormal results) absolute error <= 1 subnormal step
 *	vm_erfcf on [-10, 9.19] (erfc(9.19) ~ FLT_MIN): relative error within
 *	  0.74 of the bound 5e-7 + 1.2e-7 x^2 (the rounding of x^2 in the
 *	  exponent), 4.1e-6 at worst; below FLT_MIN the same bound plus one
 *	  subnormal step
 *	vm_tanhf on [-10, 10] and 1e-30..1: relative error 1.4e-7 (bound 3e-7) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>

#include "../../kernels/cpu/vmath.h"

#define SWEEP 4000000

enum vfn { F_EXP, F_ERFC, F_TANH };

/* y (n) = f(x (n)), vectorised as in the kernels */
VM_CLONES static void vmap(enum vfn f, float *y, const float *x, long n)
{
	switch (f) {
	case F_EXP:
#pragma omp simd
		for (long i = 0; i < n; i++)
			y[i] = vm_expf(x[i]);
		break;
	case F_ERFC:
#pragma omp simd
		for (long i = 0; i < n; i++)
			y[i] = vm_erfcf(x[i]);
		break;
	case F_TANH:
#pragma omp simd
		for (long i = 0; i < n; i++)
			y[i] = vm_tanhf(x[i]);
		break;
	}
}

/* f(x) computed in the vector body of vmap's loop */
static float at(enum vfn f, float x)
{
	float xs[16], ys[16];

	for (int i = 0; i < 16; i++)
		xs[i] = x;
	vmap(f, ys, xs, 16);
	return ys[0];
}

static double rel_err(float got, double want)
{
	return fabs((double)got - want) / fabs(want);
}

static void test_expf_relative_error_normal_range(void **state)
{
	double worst = 0.0;

	(void)state;
	for (long i = 0; i <= SWEEP; i++) {
		float x = (float)(-87.3 + (88.7 + 87.3) * i / SWEEP);
		double e = rel_err(at(F_EXP, x), exp((double)x));

		worst = e > worst ? e : worst;
	}
	printf("vm_expf max relative error %.3g\n", worst);
	assert_true(worst < 3e-7);
}

static void test_expf_subnormal_results_within_one_step(void **state)
{
	(void)state;
	for (long i = 0; i <= SWEEP / 10; i++) {
		float x = (float)(-104.0 + (104.0 - 87.3) * i / (SWEEP / 10));
		double d = fabs((double)at(F_EXP, x) - exp((double)x));

		assert_true(d <= 0x1p-149);
	}
}

static void test_expf_edges(void **state)
{
	(void)state;
	assert_true(at(F_EXP, 0.0f) == 1.0f);
	assert_true(at(F_EXP, -INFINITY) == 0.0f);
	assert_true(at(F_EXP, -1000.0f) == 0.0f);
	assert_true(at(F_EXP, 89.0f) == INFINITY);
	assert_true(at(F_EXP, INFINITY) == INFINITY);
	assert_true(isnan(at(F_EXP, NAN)));
	assert_true(rel_err(at(F_EXP, 88.72f), exp((double)88.72f)) < 3e-7);
	assert_true(isfinite(at(F_EXP, 88.7228f)));
}

/* relative error bound of vm_erfcf at x: the approximation's own error plus
 * the rounding of x^2 in the exponent */
static double erfc_bound(double x)
{
	return 5e-7 + 1.2e-7 * x * x;
}

static void test_erfcf_relative_error(void **state)
{
	double worst = 0.0, worst_scaled = 0.0;

	(void)state;
	for (long i = 0; i <= SWEEP; i++) {
		float x = (float)(-10.0 + 19.19 * i / SWEEP); /* erfc(9.19) ~ FLT_MIN */
		double e = rel_err(at(F_ERFC, x), erfc((double)x));

		worst = e > worst ? e : worst;
		e /= erfc_bound(x);
		worst_scaled = e > worst_scaled ? e : worst_scaled;
	}
	for (float x = 1e-30f; x < 1.0f; x *= 1.01f) {
		double e = rel_err(at(F_ERFC, -x), erfc(-(double)x));

		worst = e > worst ? e : worst;
		assert_true(rel_err(at(F_ERFC, x), erfc((double)x)) < erfc_bound(x));
		assert_true(e < erfc_bound(x));
	}
	printf("vm_erfcf max relative error %.3g (%.2f of the bound)\n", worst, worst_scaled);
	assert_true(worst_scaled < 1.0);
}

static void test_erfcf_subnormal_results(void **state)
{
	(void)state;
	for (long i = 0; i <= SWEEP / 10; i++) {
		float x = (float)(9.19 + 1.0 * i / (SWEEP / 10));
		double want = erfc((double)x);

		assert_true(fabs((double)at(F_ERFC, x) - want) <= want * erfc_bound(x) + 0x1p-149);
	}
}

static void test_erfcf_edges(void **state)
{
	(void)state;
	assert_true(at(F_ERFC, 0.0f) == 1.0f);
	assert_true(at(F_ERFC, -0.0f) == 1.0f);
	assert_true(at(F_ERFC, 11.0f) == 0.0f);
	assert_true(at(F_ERFC, INFINITY) == 0.0f);
	assert_true(at(F_ERFC, -10.0f) == 2.0f);
	assert_true(at(F_ERFC, -INFINITY) == 2.0f);
	assert_true(isnan(at(F_ERFC, NAN)));
	assert_true(at(F_ERFC, FLT_TRUE_MIN) == 1.0f);
}

static void test_tanhf_relative_error(void **state)
{
	double worst = 0.0;

	(void)state;
	for (long i = 0; i <= SWEEP; i++) {
		float x = (float)(-10.0 + 20.0 * i / SWEEP);

		if (x == 0.0f)
			continue;
		double e = rel_err(at(F_TANH, x), tanh((double)x));

		worst = e > worst ? e : worst;
	}
	for (float x = 1e-30f; x < 1.0f; x *= 1.01f) {
		double e = rel_err(at(F_TANH, x), tanh((double)x));

		worst = e > worst ? e : worst;
	}
	printf("vm_tanhf max relative error %.3g\n", worst);
	assert_true(worst < 3e-7);
	assert_true(at(F_TANH, 0.0f) == 0.0f);
	assert_true(at(F_TANH, 50.0f) == 1.0f && at(F_TANH, -INFINITY) == -1.0f);
	assert_true(isnan(at(F_TANH, NAN)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expf_relative_error_normal_range),
		cmocka_unit_test(test_expf_subnormal_results_within_one_step),
		cmocka_unit_test(test_expf_edges),
		cmocka_unit_test(test_erfcf_relative_error),
		cmocka_unit_test(test_erfcf_subnormal_results),
		cmocka_unit_test(test_erfcf_edges),
		cmocka_unit_test(test_tanhf_relative_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
