/* Unit tests for the CPU optimizer and adapter kernels: AdamW, gradient-norm
 * clipping and the LoRA branch.
 *
 * AdamW is checked against torch.optim.AdamW's update written out here in
 * double for two steps; clipping against a double norm; LoRA forward and
 * backward against naive double loops with the same counter-based dropout
 * mask. The mixed-precision AdamW must reproduce cpu_adamw_update bit for
 * bit and round its bf16 copy correctly (checked against a rounding done by
 * comparing neighbours in double). Tolerances (atol + rtol * |ref|): AdamW 1e-6 + 1e-6 |ref| (a
 * handful of fp32 roundings per step); norm 1e-6 relative; LoRA 1e-5 + 1e-5 |ref| (sgemm sums over
 * at most C = 40 products). */
#include "kernels_check.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "llmops_kernels.h"

/* ---- AdamW ---- */

struct adam_cfg {
	float lr, beta1, beta2, eps, wd;
};

/* One torch.optim.AdamW step on a double parameter, as its documentation
 * writes it. */
static void ref_adamw(double *p, double *m, double *v, double g, const struct adam_cfg *c, int t)
{
	*p *= 1.0 - (double)c->lr * c->wd;
	*m = c->beta1 * *m + (1.0 - c->beta1) * g;
	*v = c->beta2 * *v + (1.0 - c->beta2) * g * g;
	double mhat = *m / (1.0 - pow(c->beta1, t));
	double vhat = *v / (1.0 - pow(c->beta2, t));
	*p -= c->lr * mhat / (sqrt(vhat) + c->eps);
}

static void test_adamw_two_steps_match_torch_update(void **state)
{
	enum { N = 5 };
	const struct adam_cfg c = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f};
	float p[N] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f}, m[N] = {0}, v[N] = {0};
	const float g1[N] = {0.1f, -0.3f, 0.0f, 2.0f, -1e-3f};
	const float g2[N] = {-0.2f, -0.3f, 0.5f, 1.0f, 4.0f};
	double rp[N], rm[N] = {0}, rv[N] = {0};

	(void)state;
	for (int i = 0; i < N; i++)
		rp[i] = p[i];
	cpu_adamw_update(p, g1, m, v, N, c.lr, c.beta1, c.beta2, c.eps, c.wd, 1);
	cpu_adamw_update(p, g2, m, v, N, c.lr, c.beta1, c.beta2, c.eps, c.wd, 2);
	for (int i = 0; i < N; i++) {
		ref_adamw(&rp[i], &rm[i], &rv[i], g1[i], &c, 1);
		ref_adamw(&rp[i], &rm[i], &rv[i], g2[i], &c, 2);
	}
	kc_check("param", p, rp, N, 1e-6, 1e-6);
	kc_check("m", m, rm, N, 1e-7, 1e-6);
	kc_check("v", v, rv, N, 1e-9, 1e-6);
}

/* Step 1 with bias correction and no decay moves each parameter by
 * lr * g / (|g| + eps): about lr against the gradient's sign. */
static void test_adamw_first_step_moves_by_lr(void **state)
{
	float p[3] = {1.0f, 1.0f, 1.0f}, m[3] = {0}, v[3] = {0};
	const float g[3] = {5.0f, -1e-3f, 0.0f};

	(void)state;
	cpu_adamw_update(p, g, m, v, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
	assert_float_equal(p[0], 0.9f, 1e-6f);
	assert_float_equal(p[1], 1.0 + 0.1 * 1e-3 / (1e-3 + 1e-8), 1e-6); /* eps shows */
	assert_true(p[2] == 1.0f); /* zero gradient, no decay: unchanged */
}

/* above the threading threshold, with decay, against the double reference */
static void test_adamw_large_buffer_matches_reference(void **state)
{
	const size_t n = 100003;
	const struct adam_cfg c = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.01f};
	float *p = kc_rnd_array(n, 40, 1.0f), *g = kc_rnd_array(n, 41, 1.0f);
	float *m = kc_falloc(n), *v = kc_falloc(n);
	double *rp = kc_to_double(p, n), *rm = kc_dalloc(n), *rv = kc_dalloc(n);

	(void)state;
	for (int t = 1; t <= 3; t++) {
		cpu_adamw_update(p, g, m, v, n, c.lr, c.beta1, c.beta2, c.eps, c.wd, t);
		for (size_t i = 0; i < n; i++)
			ref_adamw(&rp[i], &rm[i], &rv[i], g[i], &c, t);
	}
	kc_check("param", p, rp, n, 1e-6, 1e-6);
	free(rv), free(rm), free(rp), free(v), free(m), free(g), free(p);
}

/* ---- mixed-precision AdamW ---- */

/* bf16 bits of the value nearest to x (finite), ties to the even
 * significand, found by comparing the two bf16 neighbours in double rather
 * than by llm_bf16_from_float's bit trick. */
static uint16_t ref_bf16_round(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof(u));
	uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1); /* hi: away from 0 */
	double dlo = fabs((double)x - llm_bf16_to_float(lo));
	double dhi = fabs((double)llm_bf16_to_float(hi) - x);

	if (dlo != dhi)
		return dlo < dhi ? lo : hi;
	return (lo & 1) ? hi : lo;
}

/* Three steps: the master, m and v of the mixed step are bit for bit those
 * of cpu_adamw_update, and every bf16 copy is the master correctly rounded. */
static void test_adamw_mixed_master_bitwise_and_bf16_rounded(void **state)
{
	const size_t n = 100003;
	const struct adam_cfg c = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.01f};
	float *p = kc_rnd_array(n, 43, 1.0f), *g = kc_rnd_array(n, 44, 1.0f);
	float *master = kc_copy(p, n), *m = kc_falloc(n), *v = kc_falloc(n);
	float *m2 = kc_falloc(n), *v2 = kc_falloc(n);
	uint16_t *bf = malloc(n * sizeof(*bf));
	size_t wrong = 0;

	(void)state;
	assert_non_null(bf);
	for (int t = 1; t <= 3; t++) {
		cpu_adamw_update(p, g, m, v, n, c.lr, c.beta1, c.beta2, c.eps, c.wd, t);
		cpu_adamw_update_mixed(master, bf, g, m2, v2, n, c.lr, c.beta1, c.beta2, c.eps,
				       c.wd, t);
	}
	assert_memory_equal(master, p, n * sizeof(*p));
	assert_memory_equal(m2, m, n * sizeof(*m));
	assert_memory_equal(v2, v, n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		wrong += bf[i] != ref_bf16_round(master[i]);
	assert_int_equal(wrong, 0);
	free(bf), free(v2), free(m2), free(v), free(m), free(master), free(g), free(p);
}

/* Ties go to the even significand; infinities stay, NaN stays NaN, and a
 * value past the largest bf16 by more than half an ulp becomes infinity. */
static void test_bf16_rounding_ties_and_specials(void **state)
{
	(void)state;
	assert_int_equal(llm_bf16_from_float(1.0f), 0x3f80);
	assert_int_equal(llm_bf16_from_float(1.0f + 0x1p-8f), 0x3f80);	   /* tie, to even */
	assert_int_equal(llm_bf16_from_float(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie, to even */
	assert_int_equal(llm_bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
	assert_int_equal(llm_bf16_from_float(-1.0f - 0x1p-8f), 0xbf80);
	assert_int_equal(llm_bf16_from_float(INFINITY), 0x7f80);
	assert_int_equal(llm_bf16_from_float(-INFINITY), 0xff80);
	assert_int_equal(llm_bf16_from_float(FLT_MAX), 0x7f80);
	assert_true(isnan(llm_bf16_to_float(llm_bf16_from_float(NAN))));
	assert_true(llm_bf16_to_float(0x3f80) == 1.0f);
}

/* ---- gradient clipping ---- */

static void test_clip_grad_norm_scales_only_above_max(void **state)
{
	const size_t n = 100003;
	float *g = kc_rnd_array(n, 42, 1.0f), *g0 = kc_copy(g, n);
	double ss = 0.0;

	(void)state;
	for (size_t i = 0; i < n; i++)
		ss += (double)g[i] * g[i];
	double norm = sqrt(ss), coef = (norm / 2) / (norm + 1e-6);
	double *want = kc_dalloc(n);

	for (size_t i = 0; i < n; i++)
		want[i] = g0[i] * coef;
	assert_float_equal(cpu_clip_grad_norm(g, n, (float)(norm * 2)), norm, norm * 1e-6);
	assert_memory_equal(g, g0, n * sizeof(*g)); /* below max: untouched */
	assert_float_equal(cpu_clip_grad_norm(g, n, 0.0f), norm, norm * 1e-6);
	assert_memory_equal(g, g0, n * sizeof(*g)); /* max_norm 0: no clipping */
	assert_float_equal(cpu_clip_grad_norm(g, n, (float)(norm / 2)), norm, norm * 1e-6);
	kc_check("clipped", g, want, n, 1e-7, 1e-6);
	free(want), free(g0), free(g);
}

/* ---- LoRA ---- */

struct lora_case {
	int B, T, C, OC, r;
	float scaling, dropout;
	uint64_t seed;
};

/* drop(x) in double, with the kernel's counter-based mask */
static double *ref_drop(const float *x, size_t n, float p, uint64_t seed)
{
	double *xd = kc_dalloc(n);

	for (size_t i = 0; i < n; i++)
		xd[i] = p == 0.0f || llm_uniform(seed, i) >= p ? x[i] / (1.0 - p) : 0.0;
	return xd;
}

static void check_lora(const struct lora_case *L)
{
	int BT = L->B * L->T, C = L->C, OC = L->OC, r = L->r;
	size_t nx = (size_t)BT * C, no = (size_t)BT * OC, nh = (size_t)BT * r;
	float *x = kc_rnd_array(nx, 43, 1.0f), *A = kc_rnd_array((size_t)r * C, 44, 1.0f);
	float *Bw = kc_rnd_array((size_t)OC * r, 45, 1.0f), *out = kc_rnd_array(no, 46, 1.0f);
	float *dout = kc_rnd_array(no, 47, 1.0f), *dx = kc_rnd_array(nx, 48, 1.0f);
	float *dA = kc_rnd_array((size_t)r * C, 49, 1.0f),
	      *dB = kc_rnd_array((size_t)OC * r, 50, 1.0f);
	float *hidden = kc_falloc(nh), *scratch = kc_falloc(nh + nx);
	double *xd = ref_drop(x, nx, L->dropout, L->seed), *h = kc_dalloc(nh);
	double *eo = kc_to_double(out, no), *dh = kc_dalloc(nh), *ex = kc_to_double(dx, nx);
	double *eA = kc_to_double(dA, (size_t)r * C), *eB = kc_to_double(dB, (size_t)OC * r);

	for (int i = 0; i < BT; i++) {
		for (int j = 0; j < r; j++)
			for (int c = 0; c < C; c++)
				h[i * r + j] += xd[(size_t)i * C + c] * A[j * C + c];
		for (int o = 0; o < OC; o++)
			for (int j = 0; j < r; j++) {
				eo[(size_t)i * OC + o] += L->scaling * h[i * r + j] * Bw[o * r + j];
				eB[o * r + j] +=
					L->scaling * dout[(size_t)i * OC + o] * h[i * r + j];
				dh[i * r + j] +=
					L->scaling * dout[(size_t)i * OC + o] * Bw[o * r + j];
			}
		for (int j = 0; j < r; j++)
			for (int c = 0; c < C; c++) {
				size_t k = (size_t)i * C + c;
				int keep =
					L->dropout == 0.0f || llm_uniform(L->seed, k) >= L->dropout;

				eA[j * C + c] += dh[i * r + j] * xd[k];
				ex[k] += keep ? dh[i * r + j] * A[j * C + c] / (1.0 - L->dropout)
					      : 0.0;
			}
	}
	cpu_lora_forward(out, hidden, x, A, Bw, scratch, L->B, L->T, C, OC, r, L->scaling,
			 L->dropout, L->seed);
	kc_check("out", out, eo, no, 1e-5, 1e-5);
	kc_check("hidden", hidden, h, nh, 1e-5, 1e-5);
	cpu_lora_backward(dx, dA, dB, dout, x, hidden, A, Bw, scratch, L->B, L->T, C, OC, r,
			  L->scaling, L->dropout, L->seed);
	kc_check("dinp", dx, ex, nx, 1e-5, 1e-5);
	kc_check("dlora_a", dA, eA, (size_t)r * C, 1e-5, 1e-5);
	kc_check("dlora_b", dB, eB, (size_t)OC * r, 1e-5, 1e-5);
	free(eB), free(eA), free(ex), free(dh), free(eo), free(h), free(xd), free(scratch);
	free(hidden), free(dB), free(dA), free(dx), free(dout), free(out), free(Bw), free(A),
		free(x);
}

static void test_lora_matches_naive_without_dropout(void **state)
{
	const struct lora_case L = {2, 5, 40, 24, 4, 2.0f, 0.0f, 7};

	(void)state;
	check_lora(&L);
}

static void test_lora_matches_naive_with_counter_dropout(void **state)
{
	const struct lora_case L = {2, 300, 40, 24, 8, 0.5f, 0.3f, 1234}; /* threaded mask */

	(void)state;
	check_lora(&L);
}

/* frozen input: dinp NULL leaves the adapter gradients unchanged in value */
static void test_lora_backward_skips_null_dinp(void **state)
{
	enum { BT = 6, C = 8, OC = 5, R = 2 };
	float *x = kc_rnd_array(BT * C, 51, 1.0f), *A = kc_rnd_array(R * C, 52, 1.0f);
	float *Bw = kc_rnd_array(OC * R, 53, 1.0f), *dout = kc_rnd_array(BT * OC, 54, 1.0f);
	float out[BT * OC] = {0}, hidden[BT * R], scratch[BT * (R + C)];
	float dA1[R * C] = {0}, dB1[OC * R] = {0}, dA2[R * C] = {0}, dB2[OC * R] = {0};
	float dx[BT * C] = {0};

	(void)state;
	cpu_lora_forward(out, hidden, x, A, Bw, scratch, 1, BT, C, OC, R, 1.0f, 0.2f, 9);
	cpu_lora_backward(dx, dA1, dB1, dout, x, hidden, A, Bw, scratch, 1, BT, C, OC, R, 1.0f,
			  0.2f, 9);
	cpu_lora_backward(NULL, dA2, dB2, dout, x, hidden, A, Bw, scratch, 1, BT, C, OC, R, 1.0f,
			  0.2f, 9);
	assert_memory_equal(dA1, dA2, sizeof(dA1));
	assert_memory_equal(dB1, dB2, sizeof(dB1));
	free(dout), free(Bw), free(A), free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adamw_two_steps_match_torch_update),
		cmocka_unit_test(test_adamw_first_step_moves_by_lr),
		cmocka_unit_test(test_adamw_large_buffer_matches_reference),
		cmocka_unit_test(test_adamw_mixed_master_bitwise_and_bf16_rounded),
		cmocka_unit_test(test_bf16_rounding_ties_and_specials),
		cmocka_unit_test(test_clip_grad_norm_scales_only_above_max),
		cmocka_unit_test(test_lora_matches_naive_without_dropout),
		cmocka_unit_test(test_lora_matches_naive_with_counter_dropout),
		cmocka_unit_test(test_lora_backward_skips_null_dinp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
