/* Helpers shared by the CPU kernel tests: deterministic inputs and a
 * comparison with a tolerance of the form atol + rtol * |ref|.
 * Header-only (static functions) because each test file is its own program. */
#ifndef KERNELS_CHECK_H
#define KERNELS_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

/* xorshift64: deterministic uniform floats in [-1, 1) */
static inline float kc_rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (float)(*s >> 40) * (1.0f / (1 << 23)) - 1.0f;
}

/* n floats uniform in [-scale, scale), from seed (never 0) */
static inline float *kc_rnd_array(size_t n, uint64_t seed, float scale)
{
	float *a = malloc((n ? n : 1) * sizeof(*a));

	assert_non_null(a);
	seed = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (size_t i = 0; i < n; i++)
		a[i] = kc_rnd(&seed) * scale;
	return a;
}

static inline double *kc_dalloc(size_t n)
{
	double *a = calloc(n ? n : 1, sizeof(*a));

	assert_non_null(a);
	return a;
}

static inline float *kc_falloc(size_t n)
{
	float *a = calloc(n ? n : 1, sizeof(*a));

	assert_non_null(a);
	return a;
}

/* Fails unless |got[i] - ref[i]| <= atol + rtol * |ref[i]| for every i; the
 * comparison is written so that a NaN in got fails too. */
static inline void kc_check(const char *what, const float *got, const double *ref, size_t n,
			    double atol, double rtol)
{
	for (size_t i = 0; i < n; i++) {
		double tol = atol + rtol * fabs(ref[i]);

		if (!(fabs(got[i] - ref[i]) <= tol))
			fail_msg("%s[%zu] = %.9g, want %.9g (tol %.3g)", what, i, got[i], ref[i],
				 tol);
	}
}

/* base[i] + add[i] as doubles: the expected value of an accumulated gradient */
static inline double *kc_plus(const float *base, const double *add, size_t n)
{
	double *r = kc_dalloc(n);

	for (size_t i = 0; i < n; i++)
		r[i] = (double)base[i] + add[i];
	return r;
}

static inline float *kc_copy(const float *a, size_t n)
{
	float *c = kc_falloc(n);

	for (size_t i = 0; i < n; i++)
		c[i] = a[i];
	return c;
}

#endif

/* A scalar loss of the double arrays a context points at. */
typedef double (*kc_loss_fn)(void *ctx);

/* g (n) = central differences of f with respect to x (n), one of the arrays
 * f reads through ctx; x is restored afterwards. */
static inline void kc_fd_grad(double *g, double *x, size_t n, kc_loss_fn f, void *ctx, double h)
{
	for (size_t i = 0; i < n; i++) {
		double x0 = x[i], lp, lm;

		x[i] = x0 + h;
		lp = f(ctx);
		x[i] = x0 - h;
		lm = f(ctx);
		x[i] = x0;
		g[i] = (lp - lm) / (2 * h);
	}
}

static inline double *kc_to_double(const float *x, size_t n)
{
	double *d = kc_dalloc(n);

	for (size_t i = 0; i < n; i++)
		d[i] = x[i];
	return d;
}
