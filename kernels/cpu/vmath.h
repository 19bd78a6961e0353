/* Vectorisable fp32 exp, erf and tanh for the CPU kernels (internal to
 * kernels/cpu/).
 *
 * glibc's expf, erff and tanhf are opaque calls, so a loop that uses them
 * runs one element at a time. These are written with arithmetic, comparisons
 * and bit casts only; inlined into a `#pragma omp simd` loop, GCC turns them
 * into SIMD code at -O2. Measured maximum errors against double libm are in
 * tests/unit/test_vmath.c: exp and tanh within 1.4e-7 relative, erf within 5e-7
 * absolute. NaN inputs give NaN. */
#ifndef LLMOPS_CPU_VMATH_H
#define LLMOPS_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t vm_bits(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof u);
	return u;
}

static inline float vm_float(uint32_t u)
{
	float x;

	memcpy(&x, &u, sizeof x);
	return x;
}

/* c ? a : b without a branch: GCC keeps a float ?: as control flow under
 * -ftrapping-math (the default), which stops vectorisation */
static inline float vm_select(int c, float a, float b)
{
	uint32_t m = -(uint32_t)c;

	return vm_float((vm_bits(a) & m) | (vm_bits(b) & ~m));
}

/* 2^n for integer n in [-126, 127], built in the exponent field */
static inline float vm_pow2i(int32_t n)
{
	return vm_float((uint32_t)(n + 127) << 23);
}

/* exp(x) (Cephes expf): n = round(x log2 e), r = x - n ln2 with ln2 in two
 * parts, a degree-6 polynomial for e^r on |r| <= ln2/2, then a scale by 2^n
 * in two halves so that results down to the subnormals come out right.
 * exp(x) = +inf for x > 88.72284, 0 for x < -104 (including -inf). */
static inline float vm_expf(float x)
{
	const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
	float xc = vm_select(x > 88.8f, 88.8f, x);

	xc = vm_select(xc < -104.0f, -104.0f, xc);
	float t = xc * 1.44269504088896341f + magic;
	int32_t n = (int32_t)(vm_bits(t) - vm_bits(magic)); /* round(xc log2 e) */
	float fn = t - magic;
	float r = xc - fn * 0.693359375f;

	r = r - fn * -2.12194440e-4f;
	float p = 1.9875691500e-4f;

	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	int32_t n1 = n / 2;
	float y = p * vm_pow2i(n1) * vm_pow2i(n - n1);

	y = vm_select(x > 88.72284f, INFINITY, y);
	y = vm_select(x < -104.0f, 0.0f, y);
	return vm_select(x != x, x, y);
}

/* erf(x): Eigen's rational approximation x P(x^2) / Q(x^2) on x clamped to
 * [-4, 4] (erf(4) rounds to 1 in fp32). Absolute error up to 4.5e-7, so
 * 1 + erf(x) for x < -3 has no correct digits: not for the erf GELU's tail. */
static inline float vm_erff(float x)
{
	float xc = vm_select(x > 4.0f, 4.0f, x);

	xc = vm_select(xc < -4.0f, -4.0f, xc);
	float z = xc * xc;
	float p = -2.72614225801306e-10f;

	p = p * z + 2.77068142495902e-08f;
	p = p * z + -2.10102402082508e-06f;
	p = p * z + -5.69250639462346e-05f;
	p = p * z + -7.34990630326855e-04f;
	p = p * z + -2.95459980854025e-03f;
	p = p * z + -1.60960333262415e-02f;
	float q = -1.45660718464996e-05f;

	q = q * z + -2.13374055278905e-04f;
	q = q * z + -1.68282697438203e-03f;
	q = q * z + -7.37332916720468e-03f;
	q = q * z + -1.42647390514189e-02f;
	return xc * p / q;
}

/* tanh(x) (Cephes tanhf): an odd polynomial for |x| < 0.625, where
 * 1 - 2 / (e^2|x| + 1) would cancel, else that formula with x's sign;
 * |x| is clamped to 10 (tanh(10) rounds to 1). Both branches are computed and
 * one selected, so the loop stays branch-free. */
static inline float vm_tanhf(float x)
{
	float ax = vm_float(vm_bits(x) & 0x7fffffffu);
	float z = x * x;
	float p = -5.70498872745e-3f;

	p = p * z + 2.06390887954e-2f;
	p = p * z + -5.37397155531e-2f;
	p = p * z + 1.33314422036e-1f;
	p = p * z + -3.33332819422e-1f;
	float small = p * z * x + x;

	ax = vm_select(ax > 10.0f, 10.0f, ax);
	float big = 1.0f - 2.0f / (vm_expf(2.0f * ax) + 1.0f);

	big = vm_float(vm_bits(big) | (vm_bits(x) & 0x80000000u));
	return vm_select(ax < 0.625f, small, big);
}

#endif
