/* Unit tests for kernels/cpu/vmath.h against double-precision libm.
 *
 * Each function is swept over 4 * 10^6 evenly spaced points of its useful
 * range, plus edge cases. The functions are elementwise and built without FMA
 * contraction, so the 128-bit and 256-bit loops of the kernels give the same
 * bits as these scalar calls. Measured maxima (x86-64, GCC -O2):
 *	vm_expf on [-87.3, 88.7]: relative error 8.2e-8 (bound 3e-7);
 *	  below that (subnormal results) absolute error <= 1 subnormal step
 *	vm_erfcf on [-10, 9.19] (erfc(9.19) ~ FLT_MIN): relative error 4.5e-7
 *	  near 0 growing to 7.8e-6 at 9, bound 5e-7 + 1.2e-7 x^2 (the rounding
 *	  of x^2 in the exponent); below FLT_MIN the same bound plus one
 *	  subnormal step
 *	vm_tanhf on [-10, 10] and 1e-30..1: relative error 1.3e-7 (bound 3e-7) */
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
		double e = rel_err(vm_expf(x), exp((double)x));

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
		double d = fabs((double)vm_expf(x) - exp((double)x));

		assert_true(d <= 0x1p-149);
	}
}

static void test_expf_edges(void **state)
{
	(void)state;
	assert_true(vm_expf(0.0f) == 1.0f);
	assert_true(vm_expf(-INFINITY) == 0.0f);
	assert_true(vm_expf(-1000.0f) == 0.0f);
	assert_true(vm_expf(89.0f) == INFINITY);
	assert_true(vm_expf(INFINITY) == INFINITY);
	assert_true(isnan(vm_expf(NAN)));
	assert_true(rel_err(vm_expf(88.72f), exp((double)88.72f)) < 3e-7);
	assert_true(isfinite(vm_expf(88.7228f)));
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
		double e = rel_err(vm_erfcf(x), erfc((double)x));

		worst = e > worst ? e : worst;
		e /= erfc_bound(x);
		worst_scaled = e > worst_scaled ? e : worst_scaled;
	}
	for (float x = 1e-30f; x < 1.0f; x *= 1.01f) {
		double e = rel_err(vm_erfcf(-x), erfc(-(double)x));

		worst = e > worst ? e : worst;
		assert_true(rel_err(vm_erfcf(x), erfc((double)x)) < erfc_bound(x));
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

		assert_true(fabs((double)vm_erfcf(x) - want) <= want * erfc_bound(x) + 0x1p-149);
	}
}

static void test_erfcf_edges(void **state)
{
	(void)state;
	assert_true(vm_erfcf(0.0f) == 1.0f);
	assert_true(vm_erfcf(-0.0f) == 1.0f);
	assert_true(vm_erfcf(11.0f) == 0.0f);
	assert_true(vm_erfcf(INFINITY) == 0.0f);
	assert_true(vm_erfcf(-10.0f) == 2.0f);
	assert_true(vm_erfcf(-INFINITY) == 2.0f);
	assert_true(isnan(vm_erfcf(NAN)));
	assert_true(vm_erfcf(FLT_TRUE_MIN) == 1.0f);
}

static void test_tanhf_relative_error(void **state)
{
	double worst = 0.0;

	(void)state;
	for (long i = 0; i <= SWEEP; i++) {
		float x = (float)(-10.0 + 20.0 * i / SWEEP);

		if (x == 0.0f)
			continue;
		double e = rel_err(vm_tanhf(x), tanh((double)x));

		worst = e > worst ? e : worst;
	}
	for (float x = 1e-30f; x < 1.0f; x *= 1.01f) {
		double e = rel_err(vm_tanhf(x), tanh((double)x));

		worst = e > worst ? e : worst;
	}
	printf("vm_tanhf max relative error %.3g\n", worst);
	assert_true(worst < 3e-7);
	assert_true(vm_tanhf(0.0f) == 0.0f);
	assert_true(vm_tanhf(50.0f) == 1.0f && vm_tanhf(-INFINITY) == -1.0f);
	assert_true(isnan(vm_tanhf(NAN)));
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
