/* Vectorisable fp32 exp, erfc and tanh for the CPU kernels (internal to
 * kernels/cpu/).
 *
 * glibc's expf, erff/erfcf and tanhf are opaque calls, so a loop that uses them
 * runs one element at a time. These are written with arithmetic, comparisons
 * and bit casts only; inlined into a `#pragma omp simd` loop, GCC turns them
 * into SIMD code at -O2. Measured maximum errors against double libm are in
 * tests/unit/test_vmath.c. NaN inputs give NaN.
 *
 * The build has no -march flag, so such a loop alone gets 128-bit SSE.
 * VM_CLONES on the function that holds it has GCC compile the function twice,
 * for x86-64-v3 (AVX2 and FMA, 256-bit vectors) and for baseline x86-64, and
 * the dynamic loader pick one for the CPU (an ifunc); OpenMP regions inside
 * are cloned with it. Helpers the function calls must be VM_INLINE. */
#ifndef LLMOPS_CPU_VMATH_H
#define LLMOPS_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VM_CLONES
#endif

/* For helpers that a VM_CLONES function calls: GCC does not inline a plain
 * function into a clone of another -march unless forced, and a call would
 * run the helper's baseline code. */
#define VM_INLINE static inline __attribute__((always_inline))

VM_INLINE uint32_t vm_bits(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof u);
	return u;
}

VM_INLINE float vm_float(uint32_t u)
{
	float x;

	memcpy(&x, &u, sizeof x);
	return x;
}

/* c ? a : b without a branch: GCC keeps a float ?: as control flow under
 * -ftrapping-math (the default), which stops vectorisation */
VM_INLINE float vm_select(int c, float a, float b)
{
	uint32_t m = -(uint32_t)c;

	return vm_float((vm_bits(a) & m) | (vm_bits(b) & ~m));
}

/* 2^n for integer n in [-126, 127], built in the exponent field */
VM_INLINE float vm_pow2i(int32_t n)
{
	return vm_float((uint32_t)(n + 127) << 23);
}

/* exp(x) (Cephes expf): n = round(x log2 e), r = x - n ln2 with ln2 in two
 * parts, a degree-6 polynomial for e^r on |r| <= ln2/2, then a scale by 2^n
 * in two halves so that results down to the subnormals come out right.
 * exp(x) = +inf for x > 88.72284, 0 for x < -104 (including -inf). */
VM_INLINE float vm_expf(float x)
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

/* erfc(x) (Numerical Recipes' erfcc): t = 1 / (1 + |x|/2),
 * erfc(|x|) = t exp(-x^2 - 1.26551223 + t P(t)) with P of degree 8
 * (relative error under 1.2e-7 in exact arithmetic), erfc(x) = 2 - erfc(|x|)
 * for x < 0. In fp32 the rounding of x^2 adds about x^2 * 6e-8 relative,
 * see tests/unit/test_vmath.c. Unlike 1 + erf(x), erfc(-x) keeps its
 * relative accuracy in the negative tail, which the erf GELU needs. */
VM_INLINE float vm_erfcf(float x)
{
	float a = vm_float(vm_bits(x) & 0x7fffffffu);
	float t = 1.0f / (1.0f + 0.5f * a);
	float p = 0.17087277f;

	p = p * t + -0.82215223f;
	p = p * t + 1.48851587f;
	p = p * t + -1.13520398f;
	p = p * t + 0.27886807f;
	p = p * t + -0.18628806f;
	p = p * t + 0.09678418f;
	p = p * t + 0.37409196f;
	p = p * t + 1.00002368f;
	p = p * t + -1.26551223f;
	float y = t * vm_expf(p - a * a);

	return vm_select(x < 0.0f, 2.0f - y, y);
}

/* tanh(x) (Cephes tanhf): an odd polynomial for |x| < 0.625, where
 * 1 - 2 / (e^2|x| + 1) would cancel, else that formula with x's sign;
 * |x| is clamped to 10 (tanh(10) rounds to 1). Both branches are computed and
 * one selected, so the loop stays branch-free. */
VM_INLINE float vm_tanhf(float x)
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
