/* Unit tests for cpu_attention_forward and cpu_attention_backward.
 *
 * The reference is a naive attention written here in double: the full score
 * row, its softmax, the weighted sum of values; backward from the explicit
 * probabilities (dS = P * (dP - rowsum(P * dP))). The reference gradient is
 * itself checked against central finite differences of its own forward pass.
 * Shapes exercise several key blocks (T > 64), grouped-query heads (NH = 4,
 * NKV = 2), a KV cache (T < Tk < Tcap) and right padding (key_len).
 *
 * Tolerances (atol + rtol * |ref|): forward 1e-5 + 1e-4 |ref| (fp32 dot
 * products of length 16 and softmax over <= 150 keys, about 1e-6 observed
 * error); backward 1e-5 + 1e-3 |ref| (sums over up to 150 rows of fp32
 * products); finite differences 1e-7 + 1e-5 |ref| (step 1e-5 in double). */
#include "kernels_check.h"

#include <string.h>

#include "llmops_kernels.h"

struct att {
	int B, T, Tk, Tcap, NH, NKV, HS, causal;
	const int *key_len;
};

static size_t qsize(const struct att *a)
{
	return (size_t)a->B * a->T * a->NH * a->HS;
}

static size_t ksize(const struct att *a)
{
	return (size_t)a->B * a->Tcap * a->NKV * a->HS;
}

static int ref_visible(const struct att *a, int b, int t)
{
	int nk = a->causal ? a->Tk - a->T + t + 1 : a->Tk;

	if (a->key_len && a->key_len[b] < nk)
		nk = a->key_len[b];
	return nk < 0 ? 0 : nk;
}

static const float *kv_row(const struct att *a, const float *x, int b, int j, int h)
{
	int kvh = h / (a->NH / a->NKV);

	return x + (((size_t)b * a->Tcap + j) * a->NKV + kvh) * a->HS;
}

/* probabilities p (nk) of query row (b,t,h); returns nk, sets *lse */
static int ref_probs(double *p, double *lse, const struct att *a, const double *q, const float *k,
		     int b, int t, int h)
{
	int nk = ref_visible(a, b, t);
	const double *qt = q + (((size_t)b * a->T + t) * a->NH + h) * a->HS;
	double m = -INFINITY, sum = 0.0;

	for (int j = 0; j < nk; j++) {
		const float *kj = kv_row(a, k, b, j, h);

		p[j] = 0.0;
		for (int i = 0; i < a->HS; i++)
			p[j] += qt[i] * kj[i];
		p[j] /= sqrt(a->HS);
		m = p[j] > m ? p[j] : m;
	}
	for (int j = 0; j < nk; j++)
		sum += exp(p[j] - m);
	for (int j = 0; j < nk; j++)
		p[j] = exp(p[j] - m) / sum;
	*lse = nk ? m + log(sum) : -INFINITY;
	return nk;
}

/* out (B,T,NH,HS) and lse (B,NH,T) in double; q given in double so finite
 * differences can perturb it finely */
static void ref_forward(double *out, double *lse, const struct att *a, const double *q,
			const float *k, const float *v)
{
	double *p = kc_dalloc((size_t)a->Tk);

	for (int b = 0; b < a->B; b++)
		for (int t = 0; t < a->T; t++)
			for (int h = 0; h < a->NH; h++) {
				double *o = out + (((size_t)b * a->T + t) * a->NH + h) * a->HS;
				int nk = ref_probs(p, &lse[((size_t)b * a->NH + h) * a->T + t], a,
						   q, k, b, t, h);

				for (int i = 0; i < a->HS; i++) {
					o[i] = 0.0;
					for (int j = 0; j < nk; j++)
						o[i] += p[j] * kv_row(a, v, b, j, h)[i];
				}
			}
	free(p);
}

/* dq, dk, dv (double, zeroed by the caller) of loss = sum(out * dout) */
static void ref_backward(double *dq, double *dk, double *dv, const struct att *a, const float *dout,
			 const double *q, const float *k, const float *v)
{
	double *p = kc_dalloc((size_t)a->Tk), *dp = kc_dalloc((size_t)a->Tk), lse;
	double sc = 1.0 / sqrt(a->HS);

	for (int b = 0; b < a->B; b++)
		for (int t = 0; t < a->T; t++)
			for (int h = 0; h < a->NH; h++) {
				size_t qo = (((size_t)b * a->T + t) * a->NH + h) * a->HS;
				int nk = ref_probs(p, &lse, a, q, k, b, t, h);
				double D = 0.0;

				for (int j = 0; j < nk; j++) {
					dp[j] = 0.0;
					for (int i = 0; i < a->HS; i++)
						dp[j] += dout[qo + i] * kv_row(a, v, b, j, h)[i];
					D += p[j] * dp[j];
				}
				for (int j = 0; j < nk; j++) {
					size_t ko = kv_row(a, k, b, j, h) - k;
					double ds = p[j] * (dp[j] - D) * sc;

					for (int i = 0; i < a->HS; i++) {
						dq[qo + i] += ds * k[ko + i];
						dk[ko + i] += ds * q[qo + i];
						dv[ko + i] += p[j] * dout[qo + i];
					}
				}
			}
	free(dp);
	free(p);
}

/* Runs the forward kernel on random inputs and compares with the reference. */
static void check_forward(const struct att *a, uint64_t seed)
{
	size_t nq = qsize(a), nkv = ksize(a), nl = (size_t)a->B * a->NH * a->T;
	float *q = kc_rnd_array(nq, seed, 1.0f), *k = kc_rnd_array(nkv, seed + 1, 1.0f);
	float *v = kc_rnd_array(nkv, seed + 2, 1.0f), *out = kc_falloc(nq), *lse = kc_falloc(nl);
	double *qd = kc_to_double(q, nq), *rout = kc_dalloc(nq), *rlse = kc_dalloc(nl);

	/* keys the kernel must not read: cache rows past Tk and padded keys */
	for (int b = 0; b < a->B; b++)
		for (int j = 0; j < a->Tcap; j++)
			if (j >= a->Tk || (a->key_len && j >= a->key_len[b]))
				for (size_t i = 0; i < (size_t)a->NKV * a->HS; i++) {
					size_t o = ((size_t)b * a->Tcap + j) * a->NKV * a->HS + i;

					k[o] = NAN;
					v[o] = NAN;
				}
	for (size_t i = 0; i < nq; i++)
		out[i] = NAN; /* forward overwrites */
	cpu_attention_forward(out, lse, q, k, v, a->key_len, a->causal, a->B, a->T, a->Tk, a->Tcap,
			      a->NH, a->NKV, a->HS);
	ref_forward(rout, rlse, a, qd, k, v);
	kc_check("out", out, rout, nq, 1e-5, 1e-4);
	for (size_t i = 0; i < nl; i++)
		if (isinf(rlse[i]))
			assert_true(isinf(lse[i]) && lse[i] < 0);
		else
			kc_check("lse", &lse[i], &rlse[i], 1, 1e-5, 1e-4);
	free(rlse);
	free(rout);
	free(qd);
	free(lse);
	free(out);
	free(v);
	free(k);
	free(q);
}

static void test_attention_matches_naive_causal_over_several_blocks(void **state)
{
	struct att a = {2, 150, 150, 150, 2, 2, 16, 1, NULL};

	(void)state;
	check_forward(&a, 11);
}

static void test_attention_matches_naive_non_causal(void **state)
{
	struct att a = {2, 130, 130, 130, 2, 1, 16, 0, NULL};

	(void)state;
	check_forward(&a, 12);
}

static void test_attention_matches_naive_with_gqa_and_cache(void **state)
{
	struct att prefill = {2, 5, 100, 130, 4, 2, 16, 1, NULL};
	struct att decode = {1, 1, 70, 80, 4, 2, 16, 1, NULL};
	struct att chunk = {1, 70, 140, 150, 4, 2, 8, 1, NULL};

	(void)state;
	check_forward(&prefill, 13);
	check_forward(&decode, 14);
	check_forward(&chunk, 15);
}

/* padded keys hold NaN in check_forward, so reading one would show */
static void test_attention_masks_padded_keys(void **state)
{
	const int len[3] = {70, 3, 100};
	const int len_causal[2] = {40, 100};
	struct att a = {3, 100, 100, 100, 4, 2, 16, 0, len};
	struct att c = {2, 100, 100, 100, 2, 2, 16, 1, len_causal};

	(void)state;
	check_forward(&a, 16);
	check_forward(&c, 17);
}

static void test_attention_query_with_no_key_gets_zero(void **state)
{
	const int len[2] = {0, 5};
	struct att a = {2, 3, 8, 8, 2, 1, 8, 0, len};
	size_t nq = qsize(&a), nkv = ksize(&a);
	float *q = kc_rnd_array(nq, 18, 1.0f), *k = kc_rnd_array(nkv, 19, 1.0f);
	float *v = kc_rnd_array(nkv, 20, 1.0f), *out = kc_falloc(nq);
	float lse[2 * 2 * 3];

	(void)state;
	for (size_t i = 0; i < nq; i++)
		out[i] = NAN;
	cpu_attention_forward(out, lse, q, k, v, len, 0, 2, 3, 8, 8, 2, 1, 8);
	for (size_t i = 0; i < nq / 2; i++) /* batch row 0 sees nothing */
		assert_true(out[i] == 0.0f);
	for (size_t i = nq / 2; i < nq; i++)
		assert_true(out[i] != 0.0f && !isnan(out[i]));
	free(out);
	free(v);
	free(k);
	free(q);
}

/* Backward: grads accumulated onto non-zero buffers, compared with
 * prefill + reference. */
static void check_backward(const struct att *a, uint64_t seed, int with_dq, int with_dkv)
{
	size_t nq = qsize(a), nkv = ksize(a), nl = (size_t)a->B * a->NH * a->T;
	float *q = kc_rnd_array(nq, seed, 1.0f), *k = kc_rnd_array(nkv, seed + 1, 1.0f);
	float *v = kc_rnd_array(nkv, seed + 2, 1.0f), *dout = kc_rnd_array(nq, seed + 3, 1.0f);
	float *out = kc_falloc(nq), *lse = kc_falloc(nl);
	float *dq = kc_rnd_array(nq, seed + 4, 1.0f), *dk = kc_rnd_array(nkv, seed + 5, 1.0f);
	float *dv = kc_rnd_array(nkv, seed + 6, 1.0f);
	float *dq0 = kc_copy(dq, nq), *dk0 = kc_copy(dk, nkv), *dv0 = kc_copy(dv, nkv);
	double *qd = kc_to_double(q, nq), *rq = kc_dalloc(nq), *rk = kc_dalloc(nkv);
	double *rv = kc_dalloc(nkv);

	cpu_attention_forward(out, lse, q, k, v, NULL, a->causal, a->B, a->T, a->T, a->T, a->NH,
			      a->NKV, a->HS);
	cpu_attention_backward(with_dq ? dq : NULL, with_dkv ? dk : NULL, with_dkv ? dv : NULL,
			       dout, q, k, v, out, lse, a->causal, a->B, a->T, a->NH, a->NKV,
			       a->HS);
	ref_backward(rq, rk, rv, a, dout, qd, k, v);
	double *eq = with_dq ? kc_plus(dq0, rq, nq) : kc_to_double(dq0, nq);
	double *ek = with_dkv ? kc_plus(dk0, rk, nkv) : kc_to_double(dk0, nkv);
	double *ev = with_dkv ? kc_plus(dv0, rv, nkv) : kc_to_double(dv0, nkv);

	kc_check("dq", dq, eq, nq, 1e-5, 1e-3);
	kc_check("dk", dk, ek, nkv, 1e-5, 1e-3);
	kc_check("dv", dv, ev, nkv, 1e-5, 1e-3);
	free(ev), free(ek), free(eq), free(rv), free(rk), free(rq), free(qd);
	free(dv0), free(dk0), free(dq0), free(dv), free(dk), free(dq);
	free(lse), free(out), free(dout), free(v), free(k), free(q);
}

static void test_attention_backward_matches_naive_with_gqa(void **state)
{
	struct att causal = {2, 130, 130, 130, 4, 2, 8, 1, NULL};
	struct att full = {1, 70, 70, 70, 4, 2, 8, 0, NULL};
	struct att mha = {1, 65, 65, 65, 3, 3, 4, 1, NULL};

	(void)state;
	check_backward(&causal, 21, 1, 1);
	check_backward(&full, 22, 1, 1);
	check_backward(&mha, 23, 1, 1);
}

static void test_attention_backward_skips_null_grads(void **state)
{
	struct att a = {1, 70, 70, 70, 4, 2, 8, 1, NULL};

	(void)state;
	check_backward(&a, 24, 1, 0);
	check_backward(&a, 25, 0, 1);
}

/* head sizes past the kernels' internal slices (64 dimensions transposed at
 * a time, 256 accumulated at a time) and not a multiple of the vector width */
static void test_attention_matches_naive_with_wide_heads(void **state)
{
	struct att mid = {1, 21, 21, 21, 2, 1, 68, 1, NULL};
	struct att wide = {1, 21, 21, 21, 2, 1, 300, 1, NULL};
	struct att wide_full = {1, 13, 13, 13, 1, 1, 300, 0, NULL};

	(void)state;
	check_forward(&mid, 41);
	check_forward(&wide, 42);
	check_forward(&wide_full, 43);
	check_backward(&mid, 44, 1, 1);
	check_backward(&wide, 45, 1, 1);
	check_backward(&wide_full, 46, 1, 1);
}

/* The reference backward itself, against central differences of
 * sum(ref_forward(q) * dout) with respect to q (k and v enter the same code
 * path in ref_backward through the same p and dp). */
static void test_attention_reference_gradient_matches_finite_differences(void **state)
{
	struct att a = {1, 9, 9, 9, 4, 2, 4, 1, NULL};
	size_t nq = qsize(&a), nkv = ksize(&a), nl = (size_t)a.NH * a.T;
	float *q = kc_rnd_array(nq, 31, 1.0f), *k = kc_rnd_array(nkv, 32, 1.0f);
	float *v = kc_rnd_array(nkv, 33, 1.0f), *dout = kc_rnd_array(nq, 34, 1.0f);
	double *qd = kc_to_double(q, nq), *rq = kc_dalloc(nq), *rk = kc_dalloc(nkv);
	double *rv = kc_dalloc(nkv), *o = kc_dalloc(nq), *l = kc_dalloc(nl);
	const double h = 1e-5;

	(void)state;
	ref_backward(rq, rk, rv, &a, dout, qd, k, v);
	for (size_t i = 0; i < nq; i++) {
		double lp = 0.0, lm = 0.0, x = qd[i];

		qd[i] = x + h;
		ref_forward(o, l, &a, qd, k, v);
		for (size_t j = 0; j < nq; j++)
			lp += o[j] * dout[j];
		qd[i] = x - h;
		ref_forward(o, l, &a, qd, k, v);
		for (size_t j = 0; j < nq; j++)
			lm += o[j] * dout[j];
		qd[i] = x;
		double fd = (lp - lm) / (2 * h);
		if (!(fabs(fd - rq[i]) <= 1e-7 + 1e-5 * fabs(fd)))
			fail_msg("dq[%zu]: reference %.9g, finite differences %.9g", i, rq[i], fd);
	}
	free(l), free(o), free(rv), free(rk), free(rq), free(qd);
	free(dout), free(v), free(k), free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attention_matches_naive_causal_over_several_blocks),
		cmocka_unit_test(test_attention_matches_naive_non_causal),
		cmocka_unit_test(test_attention_matches_naive_with_gqa_and_cache),
		cmocka_unit_test(test_attention_masks_padded_keys),
		cmocka_unit_test(test_attention_query_with_no_key_gets_zero),
		cmocka_unit_test(test_attention_backward_matches_naive_with_gqa),
		cmocka_unit_test(test_attention_backward_skips_null_grads),
		cmocka_unit_test(test_attention_matches_naive_with_wide_heads),
		cmocka_unit_test(test_attention_reference_gradient_matches_finite_differences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
