/* Unit tests for the CPU layer kernels: matmul backward, embedding,
 * LayerNorm, RMSNorm, RoPE, GELU, SwiGLU, softmax and cross-entropy.
 *
 * Forward passes are compared with naive loops written here in double; the
 * fused residual + norm kernels with the unfused pair, bit for bit.
 * Backward passes are compared with central finite differences (step 1e-6 in
 * double) of a double reference forward pass under the loss sum(out * dout),
 * or, for the linear kernels (matmul, embedding, RoPE), with the naive
 * transposed loops. Every backward test starts from non-zero gradient buffers
 * to check that gradients are accumulated, not overwritten.
 *
 * Tolerances are atol + rtol * |ref| and stated at each check: elementwise
 * kernels 1e-6 + 1e-5 |ref| (a few fp32 roundings); row reductions over
 * C <= 200 channels 1e-5 + 1e-4 |ref|; matmul gradients summed over up to 256
 * products 1e-4 + 1e-5 |ref|. */
#include "kernels_check.h"

#include <string.h>

#include "llmops_kernels.h"

/* ---- matmul backward ---- */

static void check_matmul_backward(int B, int T, int C, int OC, int with_dinp, int with_dw,
				  int with_db)
{
	int BT = B * T;
	size_t ni = (size_t)BT * C, nw = (size_t)OC * C, no = (size_t)BT * OC;
	float *inp = kc_rnd_array(ni, 1, 1.0f), *w = kc_rnd_array(nw, 2, 1.0f);
	float *dout = kc_rnd_array(no, 3, 1.0f);
	float *dinp = kc_rnd_array(ni, 4, 1.0f), *dw = kc_rnd_array(nw, 5, 1.0f);
	float *db = kc_rnd_array((size_t)OC, 6, 1.0f);
	double *ri = kc_to_double(dinp, ni), *rw = kc_to_double(dw, nw);
	double *rb = kc_to_double(db, (size_t)OC);

	for (int bt = 0; bt < BT && with_dinp; bt++)
		for (int c = 0; c < C; c++)
			for (int o = 0; o < OC; o++)
				ri[(size_t)bt * C + c] +=
					(double)dout[(size_t)bt * OC + o] * w[(size_t)o * C + c];
	for (int o = 0; o < OC && with_dw; o++)
		for (int c = 0; c < C; c++)
			for (int bt = 0; bt < BT; bt++)
				rw[(size_t)o * C + c] +=
					(double)dout[(size_t)bt * OC + o] * inp[(size_t)bt * C + c];
	for (int o = 0; o < OC && with_db; o++)
		for (int bt = 0; bt < BT; bt++)
			rb[o] += dout[(size_t)bt * OC + o];
	cpu_matmul_backward(with_dinp ? dinp : NULL, with_dw ? dw : NULL, with_db ? db : NULL, dout,
			    inp, w, B, T, C, OC);
	kc_check("dinp", dinp, ri, ni, 1e-4, 1e-5);
	kc_check("dweight", dw, rw, nw, 1e-4, 1e-5);
	kc_check("dbias", db, rb, (size_t)OC, 1e-4, 1e-5);
	free(rb), free(rw), free(ri), free(db), free(dw), free(dinp), free(dout), free(w);
	free(inp);
}

static void test_matmul_backward_accumulates_like_naive_loops(void **state)
{
	(void)state;
	check_matmul_backward(1, 1, 1, 1, 1, 1, 1);
	check_matmul_backward(2, 7, 33, 65, 1, 1, 1);
	check_matmul_backward(2, 128, 40, 129, 1, 1, 1); /* threaded dbias pass */
}

static void test_matmul_backward_skips_null_grads(void **state)
{
	(void)state;
	check_matmul_backward(2, 5, 17, 9, 1, 0, 0);
	check_matmul_backward(2, 5, 17, 9, 0, 1, 0);
	check_matmul_backward(2, 5, 17, 9, 0, 0, 1);
}

/* ---- embedding ---- */

static void test_embedding_forward_adds_token_and_position_rows(void **state)
{
	enum { B = 2, T = 3, C = 5, V = 7, MAXT = 10, POS0 = 4 };
	const int tokens[B * T] = {6, 0, 3, 3, 1, 6};
	float *wte = kc_rnd_array(V * C, 7, 1.0f), *wpe = kc_rnd_array(MAXT * C, 8, 1.0f);
	float out[B * T * C];

	(void)state;
	cpu_embedding_forward(out, tokens, wte, wpe, B, T, C, POS0);
	for (int bt = 0; bt < B * T; bt++)
		for (int c = 0; c < C; c++)
			assert_true(out[bt * C + c] ==
				    wte[tokens[bt] * C + c] + wpe[(POS0 + bt % T) * C + c]);
	cpu_embedding_forward(out, tokens, wte, NULL, B, T, C, POS0);
	for (int bt = 0; bt < B * T; bt++)
		for (int c = 0; c < C; c++)
			assert_true(out[bt * C + c] == wte[tokens[bt] * C + c]);
	free(wpe);
	free(wte);
}

/* repeated tokens and positions shared across the batch must all add up */
static void test_embedding_backward_accumulates_repeated_tokens(void **state)
{
	enum { B = 3, T = 40, C = 300, V = 5, MAXT = 50, POS0 = 7 }; /* threaded, 10 blocks */
	int tokens[B * T];
	float *dout = kc_rnd_array(B * T * C, 9, 1.0f);
	float *dwte = kc_rnd_array(V * C, 10, 1.0f), *dwpe = kc_rnd_array(MAXT * C, 11, 1.0f);
	double *rte = kc_to_double(dwte, V * C), *rpe = kc_to_double(dwpe, MAXT * C);

	(void)state;
	for (int i = 0; i < B * T; i++)
		tokens[i] = (i * 7 + i / 3) % V;
	for (int bt = 0; bt < B * T; bt++)
		for (int c = 0; c < C; c++) {
			rte[tokens[bt] * C + c] += dout[bt * C + c];
			rpe[(POS0 + bt % T) * C + c] += dout[bt * C + c];
		}
	cpu_embedding_backward(dwte, dwpe, dout, tokens, B, T, C, POS0);
	kc_check("dwte", dwte, rte, V * C, 1e-5, 1e-5);
	kc_check("dwpe", dwpe, rpe, MAXT * C, 1e-5, 1e-5);
	/* dwpe NULL: dwte gets the same rows once more, dwpe stays as it is */
	for (int bt = 0; bt < B * T; bt++)
		for (int c = 0; c < C; c++)
			rte[tokens[bt] * C + c] += dout[bt * C + c];
	cpu_embedding_backward(dwte, NULL, dout, tokens, B, T, C, POS0);
	kc_check("dwte twice", dwte, rte, V * C, 1e-5, 1e-5);
	kc_check("dwpe untouched", dwpe, rpe, MAXT * C, 1e-5, 1e-5);
	free(rpe), free(rte), free(dwpe), free(dwte), free(dout);
}

/* ---- norms: double references and their finite-difference gradients ---- */

struct norm_ctx {
	int N, C, rms;
	double *x, *w, *b; /* b unused for RMSNorm */
	const float *dout;
	double eps;
};

static void ref_norm(double *out, const struct norm_ctx *n)
{
	for (int r = 0; r < n->N; r++) {
		const double *x = n->x + (size_t)r * n->C;
		double mu = 0.0, var = 0.0;

		for (int c = 0; c < n->C; c++)
			mu += x[c] / n->C;
		for (int c = 0; c < n->C; c++)
			var += n->rms ? x[c] * x[c] / n->C : (x[c] - mu) * (x[c] - mu) / n->C;
		double rstd = 1.0 / sqrt(var + n->eps);
		for (int c = 0; c < n->C; c++)
			out[(size_t)r * n->C + c] = n->rms ? n->w[c] * x[c] * rstd
							   : (x[c] - mu) * rstd * n->w[c] + n->b[c];
	}
}

static double norm_loss(void *ctx)
{
	struct norm_ctx *n = ctx;
	size_t sz = (size_t)n->N * n->C;
	double *out = kc_dalloc(sz), l = 0.0;

	ref_norm(out, n);
	for (size_t i = 0; i < sz; i++)
		l += out[i] * n->dout[i];
	free(out);
	return l;
}

static void run_norm_forward(float *out, float *stat1, float *stat2, const float *x, const float *w,
			     const float *b, const struct norm_ctx *n)
{
	if (n->rms)
		cpu_rmsnorm_forward(out, stat2, x, w, n->N, n->C, (float)n->eps);
	else
		cpu_layernorm_forward(out, stat1, stat2, x, w, b, n->N, n->C, (float)n->eps);
}

static void check_norm_forward(int rms, int N, int C)
{
	size_t sz = (size_t)N * C;
	float *x = kc_rnd_array(sz, 12, 2.0f), *w = kc_rnd_array((size_t)C, 13, 1.0f);
	float *b = kc_rnd_array((size_t)C, 14, 1.0f), *out = kc_falloc(sz);
	float *mean = kc_falloc((size_t)N), *rstd = kc_falloc((size_t)N);
	struct norm_ctx n = {N,
			     C,
			     rms,
			     kc_to_double(x, sz),
			     kc_to_double(w, (size_t)C),
			     kc_to_double(b, (size_t)C),
			     NULL,
			     1e-5};
	double *ref = kc_dalloc(sz);

	for (size_t i = 0; i < sz; i += 3)
		x[i] += 3.0f, n.x[i] += 3.0; /* a non-zero mean */
	ref_norm(ref, &n);
	run_norm_forward(out, mean, rstd, x, w, b, &n);
	kc_check("out", out, ref, sz, 1e-5, 1e-4);
	for (int r = 0; r < N && !rms; r++) {
		double mu = 0.0;

		for (int c = 0; c < C; c++)
			mu += n.x[(size_t)r * C + c] / C;
		kc_check("mean", &mean[r], &mu, 1, 1e-6, 1e-6);
	}
	run_norm_forward(x, NULL, NULL, x, w, b, &n); /* in place, no statistics */
	kc_check("in-place out", x, ref, sz, 1e-5, 1e-4);
	free(ref), free(n.b), free(n.w), free(n.x), free(rstd), free(mean), free(out), free(b);
	free(w), free(x);
}

static void test_layernorm_forward_matches_biased_variance_formula(void **state)
{
	(void)state;
	check_norm_forward(0, 5, 37);
	check_norm_forward(0, 300, 96); /* threaded */
}

static void test_rmsnorm_forward_matches_llama_formula(void **state)
{
	(void)state;
	check_norm_forward(1, 5, 37);
	check_norm_forward(1, 300, 96);
}

/* Backward with all, then each, gradient; accumulated onto prefilled buffers
 * and compared with prefill + finite differences (1e-5 + 1e-4 |ref|). */
static void check_norm_backward(int rms, int N, int C, int mask)
{
	size_t sz = (size_t)N * C;
	float *x = kc_rnd_array(sz, 15, 2.0f), *w = kc_rnd_array((size_t)C, 16, 1.0f);
	float *b = kc_rnd_array((size_t)C, 17, 1.0f), *dout = kc_rnd_array(sz, 18, 1.0f);
	float *out = kc_falloc(sz), *mean = kc_falloc((size_t)N), *rstd = kc_falloc((size_t)N);
	float *dx = kc_rnd_array(sz, 19, 1.0f), *dw = kc_rnd_array((size_t)C, 20, 1.0f);
	float *db = kc_rnd_array((size_t)C, 21, 1.0f);
	struct norm_ctx n = {N,
			     C,
			     rms,
			     kc_to_double(x, sz),
			     kc_to_double(w, (size_t)C),
			     kc_to_double(b, (size_t)C),
			     dout,
			     1e-5};
	double *gx = kc_dalloc(sz), *gw = kc_dalloc((size_t)C), *gb = kc_dalloc((size_t)C);

	if (mask & 1)
		kc_fd_grad(gx, n.x, sz, norm_loss, &n, 1e-6);
	if (mask & 2)
		kc_fd_grad(gw, n.w, (size_t)C, norm_loss, &n, 1e-6);
	if ((mask & 4) && !rms)
		kc_fd_grad(gb, n.b, (size_t)C, norm_loss, &n, 1e-6);
	double *ex = kc_plus(dx, gx, sz), *ew = kc_plus(dw, gw, (size_t)C);
	double *eb = kc_plus(db, gb, (size_t)C);

	run_norm_forward(out, mean, rstd, x, w, b, &n);
	if (rms)
		cpu_rmsnorm_backward(mask & 1 ? dx : NULL, mask & 2 ? dw : NULL, dout, x, w, rstd,
				     N, C);
	else
		cpu_layernorm_backward(mask & 1 ? dx : NULL, mask & 2 ? dw : NULL,
				       mask & 4 ? db : NULL, dout, x, w, mean, rstd, N, C);
	kc_check("dinp", dx, ex, sz, 1e-5, 1e-4);
	kc_check("dweight", dw, ew, (size_t)C, 1e-5, 1e-4);
	kc_check("dbias", db, eb, (size_t)C, 1e-5, 1e-4);
	free(eb), free(ew), free(ex), free(gb), free(gw), free(gx), free(n.b), free(n.w);
	free(n.x), free(db), free(dw), free(dx), free(rstd), free(mean), free(out), free(dout);
	free(b), free(w), free(x);
}

static void test_layernorm_backward_matches_finite_differences(void **state)
{
	(void)state;
	check_norm_backward(0, 4, 37, 7);
	check_norm_backward(0, 200, 100, 7); /* threaded, several column blocks */
	check_norm_backward(0, 4, 37, 1);
	check_norm_backward(0, 4, 37, 2);
	check_norm_backward(0, 4, 37, 4);
}

static void test_rmsnorm_backward_matches_finite_differences(void **state)
{
	(void)state;
	check_norm_backward(1, 4, 37, 3);
	check_norm_backward(1, 200, 100, 3);
	check_norm_backward(1, 4, 37, 1);
	check_norm_backward(1, 4, 37, 2);
}

/* ---- residual add fused with the norms ---- */

/* Fails unless got and want (n) hold the same bits. */
static void check_bits(const char *what, const float *got, const float *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&got[i], &want[i], sizeof(got[i])) != 0)
			fail_msg("%s[%zu] = %.9g, unfused %.9g", what, i, got[i], want[i]);
}

/* The fused kernel of a norm (rms or LayerNorm) into res_out, out and its
 * statistics (mean unused for RMSNorm). */
static void run_residual_norm(int rms, float *res_out, float *out, float *mean, float *rstd,
			      const float *a, const float *b, const float *w, const float *bias,
			      int N, int C)
{
	if (rms)
		cpu_residual_rmsnorm_forward(res_out, out, rstd, a, b, w, N, C, 1e-6f);
	else
		cpu_residual_layernorm_forward(res_out, out, mean, rstd, a, b, w, bias, N, C,
					       1e-5f);
}

/* Fused against cpu_residual_forward followed by the plain norm, bit for
 * bit: into separate buffers with statistics, then in place on inp1 and on
 * inp2 without statistics. */
static void check_residual_norm(int rms, int N, int C)
{
	size_t sz = (size_t)N * C;
	float *a = kc_rnd_array(sz, 30, 2.0f), *b = kc_rnd_array(sz, 31, 1.0f);
	float *w = kc_rnd_array((size_t)C, 32, 1.0f), *bias = kc_rnd_array((size_t)C, 33, 1.0f);
	float *res = kc_falloc(sz), *out = kc_falloc(sz), *fres = kc_falloc(sz);
	float *fout = kc_falloc(sz), *mean = kc_falloc((size_t)N), *rstd = kc_falloc((size_t)N);
	float *fmean = kc_falloc((size_t)N), *frstd = kc_falloc((size_t)N);

	for (size_t i = 0; i < sz; i += 3)
		a[i] += 3.0f; /* a non-zero mean */
	float *a2 = kc_copy(a, sz), *b2 = kc_copy(b, sz);
	cpu_residual_forward(res, a, b, (int)sz);
	if (rms)
		cpu_rmsnorm_forward(out, rstd, res, w, N, C, 1e-6f);
	else
		cpu_layernorm_forward(out, mean, rstd, res, w, bias, N, C, 1e-5f);
	run_residual_norm(rms, fres, fout, fmean, frstd, a, b, w, bias, N, C);
	check_bits("res_out", fres, res, sz);
	check_bits("out", fout, out, sz);
	check_bits("rstd", frstd, rstd, (size_t)N);
	if (!rms)
		check_bits("mean", fmean, mean, (size_t)N);
	memset(fout, 0, sz * sizeof(*fout));
	run_residual_norm(rms, a2, fout, NULL, NULL, a2, b, w, bias, N, C);
	check_bits("res_out == inp1", a2, res, sz);
	check_bits("out, res_out == inp1", fout, out, sz);
	memset(fout, 0, sz * sizeof(*fout));
	run_residual_norm(rms, b2, fout, NULL, NULL, a, b2, w, bias, N, C);
	check_bits("res_out == inp2", b2, res, sz);
	check_bits("out, res_out == inp2", fout, out, sz);
	free(b2), free(a2), free(frstd), free(fmean), free(rstd), free(mean), free(fout);
	free(fres), free(out), free(res), free(bias), free(w), free(b), free(a);
}

static void test_residual_layernorm_equals_add_then_layernorm(void **state)
{
	(void)state;
	check_residual_norm(0, 1, 1);
	check_residual_norm(0, 1, 37);
	check_residual_norm(0, 5, 7);
	check_residual_norm(0, 3, 64);
	check_residual_norm(0, 300, 100); /* threaded */
	check_residual_norm(0, 20, 1027);
}

static void test_residual_rmsnorm_equals_add_then_rmsnorm(void **state)
{
	(void)state;
	check_residual_norm(1, 1, 1);
	check_residual_norm(1, 1, 37);
	check_residual_norm(1, 5, 7);
	check_residual_norm(1, 3, 64);
	check_residual_norm(1, 300, 100);
	check_residual_norm(1, 20, 1027);
}

/* ---- RoPE ---- */

/* out = rotate_half rotation of x (B,T,H,HS) with exact double angles */
static void ref_rope(double *out, const float *x, int B, int T, int H, int HS, int pos0,
		     double theta, int inverse)
{
	int half = HS / 2;

	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int h = 0; h < H; h++)
				for (int i = 0; i < half; i++) {
					size_t o = (((size_t)b * T + t) * H + h) * HS;
					double a = (pos0 + t) * pow(theta, -2.0 * i / HS);
					double c = cos(a), s = inverse ? -sin(a) : sin(a);

					out[o + i] = x[o + i] * c - x[o + i + half] * s;
					out[o + i + half] = x[o + i + half] * c + x[o + i] * s;
				}
}

static void check_rope_forward(int B, int T, int H, int HS, int pos0)
{
	size_t n = (size_t)B * T * H * HS;
	float *x = kc_rnd_array(n, 22, 1.0f), *out = kc_falloc(n);
	double *ref = kc_dalloc(n);

	ref_rope(ref, x, B, T, H, HS, pos0, 10000.0, 0);
	cpu_rope_forward(out, x, B, T, H, HS, pos0, 10000.0f);
	/* the fp32 angle pos * inv_freq (as HF computes it) is off by up to
	 * pos * 2^-24 rad from the exact one, plus fp32 inv_freq: 3e-5 covers
	 * positions below 200 */
	kc_check("out", out, ref, n, 3e-5, 1e-5);
	cpu_rope_forward(x, x, B, T, H, HS, pos0, 10000.0f);
	kc_check("in-place out", x, ref, n, 3e-5, 1e-5);
	free(ref), free(out), free(x);
}

static void test_rope_forward_rotates_half_pairs(void **state)
{
	(void)state;
	check_rope_forward(2, 9, 3, 16, 150);
	check_rope_forward(1, 30, 2, 260, 0); /* 130 pairs: three cos/sin chunks, threaded */
}

/* backward is the inverse rotation, accumulated */
static void test_rope_backward_accumulates_inverse_rotation(void **state)
{
	enum { B = 1, T = 70, H = 2, HS = 8, POS0 = 3 };
	size_t n = B * T * H * HS;
	float *dout = kc_rnd_array(n, 23, 1.0f), *dx = kc_rnd_array(n, 24, 1.0f);
	double *g = kc_dalloc(n);

	(void)state;
	ref_rope(g, dout, B, T, H, HS, POS0, 500000.0, 1);
	double *e = kc_plus(dx, g, n);
	cpu_rope_backward(dx, dout, B, T, H, HS, POS0, 500000.0f);
	kc_check("dinp", dx, e, n, 3e-5, 1e-5);
	free(e), free(g), free(dx), free(dout);
}

/* ---- GELU and SwiGLU ---- */

static double ref_gelu(double x, enum llm_gelu kind)
{
	if (kind == LLM_GELU_ERF)
		return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
	return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void check_gelu(enum llm_gelu kind, long n)
{
	float *x = kc_rnd_array((size_t)n, 25, 6.0f), *out = kc_falloc((size_t)n);
	float *dout = kc_rnd_array((size_t)n, 26, 1.0f), *dx = kc_rnd_array((size_t)n, 27, 1.0f);
	double *ref = kc_dalloc((size_t)n), *eg = kc_to_double(dx, (size_t)n);
	const double h = 1e-6;

	for (long i = 0; i < n; i++) {
		ref[i] = ref_gelu(x[i], kind);
		eg[i] += dout[i] * (ref_gelu(x[i] + h, kind) - ref_gelu(x[i] - h, kind)) / (2 * h);
	}
	cpu_gelu_forward(out, x, n, kind);
	kc_check("out", out, ref, (size_t)n, 1e-6, 1e-5);
	cpu_gelu_backward(dx, x, dout, n, kind);
	kc_check("dinp", dx, eg, (size_t)n, 1e-6, 1e-5);
	cpu_gelu_forward(x, x, n, kind);
	kc_check("in-place out", x, ref, (size_t)n, 1e-6, 1e-5);
	free(eg), free(ref), free(dx), free(dout), free(out), free(x);
}

static void test_gelu_tanh_matches_formula_and_derivative(void **state)
{
	(void)state;
	check_gelu(LLM_GELU_TANH, 1001);
	check_gelu(LLM_GELU_TANH, 100003); /* threaded */
}

static void test_gelu_erf_matches_formula_and_derivative(void **state)
{
	(void)state;
	check_gelu(LLM_GELU_ERF, 1001);
	check_gelu(LLM_GELU_ERF, 100003);
}

static double ref_silu(double g)
{
	return g / (1.0 + exp(-g));
}

static void test_swiglu_matches_formula_and_derivative(void **state)
{
	const long n = 40001;
	float *g = kc_rnd_array((size_t)n, 28, 8.0f), *u = kc_rnd_array((size_t)n, 29, 2.0f);
	float *dout = kc_rnd_array((size_t)n, 30, 1.0f), *out = kc_falloc((size_t)n);
	float *dg = kc_rnd_array((size_t)n, 31, 1.0f), *du = kc_rnd_array((size_t)n, 32, 1.0f);
	double *ref = kc_dalloc((size_t)n), *eg = kc_to_double(dg, (size_t)n);
	double *eu = kc_to_double(du, (size_t)n);
	const double h = 1e-6;

	(void)state;
	for (long i = 0; i < n; i++) {
		ref[i] = ref_silu(g[i]) * u[i];
		eg[i] += dout[i] * u[i] * (ref_silu(g[i] + h) - ref_silu(g[i] - h)) / (2 * h);
		eu[i] += dout[i] * ref_silu(g[i]);
	}
	cpu_swiglu_forward(out, g, u, n);
	kc_check("out", out, ref, (size_t)n, 1e-6, 1e-5);
	cpu_swiglu_backward(dg, du, dout, g, u, n);
	kc_check("dgate", dg, eg, (size_t)n, 1e-6, 1e-5);
	kc_check("dup", du, eu, (size_t)n, 1e-6, 1e-5);
	cpu_swiglu_backward(NULL, du, dout, g, u, n); /* dgate skipped, dup again */
	for (long i = 0; i < n; i++)
		eu[i] += dout[i] * ref_silu(g[i]);
	kc_check("dup twice", du, eu, (size_t)n, 1e-6, 1e-5);
	cpu_swiglu_forward(u, g, u, n); /* out == up */
	kc_check("in-place out", u, ref, (size_t)n, 1e-6, 1e-5);
	free(eu), free(eg), free(ref), free(du), free(dg), free(out), free(dout), free(u), free(g);
}

/* ---- softmax and cross-entropy ---- */

/* softmax of row x (V) in double; returns logsumexp */
static double ref_softmax(double *p, const float *x, int V)
{
	double m = x[0], s;

	for (int i = 1; i < V; i++)
		m = x[i] > m ? x[i] : m;
	s = exp(x[0] - m); /* the sum holds exp(0) = 1: log(s) is finite */
	for (int i = 1; i < V; i++)
		s += exp(x[i] - m);
	for (int i = 0; i < V && p; i++)
		p[i] = exp(x[i] - m) / s;
	return m + log(s);
}

static void test_softmax_rows_match_naive_and_survive_large_logits(void **state)
{
	enum { N = 7, V = 5003 }; /* N*V above the threading threshold */
	float *x = kc_rnd_array(N * V, 33, 10.0f), *out = kc_falloc(N * V);
	double *ref = kc_dalloc(N * V);

	(void)state;
	for (int i = 0; i < V; i++)
		x[V + i] += 1000.0f; /* exp(1000) overflows unless the max is subtracted */
	for (int n = 0; n < N; n++)
		ref_softmax(ref + n * V, x + n * V, V);
	cpu_softmax_forward(out, x, N, V);
	kc_check("out", out, ref, N * V, 1e-7, 1e-5);
	cpu_softmax_forward(x, x, N, V);
	kc_check("in-place out", x, ref, N * V, 1e-7, 1e-5);
	free(ref), free(out), free(x);
}

static void check_crossentropy(const int *targets, int N, int V, int want_count)
{
	float *x = kc_rnd_array((size_t)N * V, 34, 8.0f),
	      *d = kc_rnd_array((size_t)N * V, 35, 1.0f);
	float *losses = kc_falloc((size_t)N);
	double *rl = kc_dalloc((size_t)N), *rd = kc_dalloc((size_t)N * V),
	       *p = kc_dalloc((size_t)V);
	const float dloss = 0.25f;

	for (int n = 0; n < N; n++) {
		rl[n] = 0.0;
		if (targets[n] == -100)
			continue;
		rl[n] = ref_softmax(p, x + n * V, V) - x[n * V + targets[n]];
		for (int i = 0; i < V; i++)
			rd[n * V + i] = (p[i] - (i == targets[n])) * dloss;
	}
	assert_int_equal(
		cpu_crossentropy_forward_backward(d, losses, x, targets, N, V, -100, dloss),
		want_count);
	kc_check("loss", losses, rl, N, 1e-6, 1e-5);
	kc_check("dlogits", d, rd, (size_t)N * V, 1e-7, 1e-5); /* ignored rows: exactly 0 */
	for (size_t i = 0; i < (size_t)N * V; i++)
		d[i] = NAN;
	assert_int_equal(
		cpu_crossentropy_forward_backward(NULL, losses, x, targets, N, V, -100, dloss),
		want_count);
	kc_check("loss without grad", losses, rl, N, 1e-6, 1e-5);
	assert_int_equal(
		cpu_crossentropy_forward_backward(x, losses, x, targets, N, V, -100, dloss),
		want_count);
	kc_check("in-place dlogits", x, rd, (size_t)N * V, 1e-7, 1e-5);
	kc_check("in-place loss", losses, rl, N, 1e-6, 1e-5);
	free(p), free(rd), free(rl), free(losses), free(d), free(x);
}

static void test_crossentropy_matches_naive_and_skips_ignored_rows(void **state)
{
	const int targets[6] = {3, -100, 49, 0, -100, 7};
	const int many[8] = {4999, 0, -100, 17, 2500, -100, -100, 1};

	(void)state;
	check_crossentropy(targets, 6, 50, 4);
	check_crossentropy(many, 8, 5000, 5); /* threaded: the count is a reduction */
}

static void test_crossentropy_loss_is_finite_for_large_logits(void **state)
{
	float x[4] = {1e4f, -1e4f, 0.0f, 9990.0f};
	int target = 3;
	float loss;

	(void)state;
	assert_int_equal(cpu_crossentropy_forward_backward(NULL, &loss, x, &target, 1, 4, -1, 1.0f),
			 1);
	assert_float_equal(loss, 10.0f, 1e-3f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matmul_backward_accumulates_like_naive_loops),
		cmocka_unit_test(test_matmul_backward_skips_null_grads),
		cmocka_unit_test(test_embedding_forward_adds_token_and_position_rows),
		cmocka_unit_test(test_embedding_backward_accumulates_repeated_tokens),
		cmocka_unit_test(test_layernorm_forward_matches_biased_variance_formula),
		cmocka_unit_test(test_layernorm_backward_matches_finite_differences),
		cmocka_unit_test(test_rmsnorm_forward_matches_llama_formula),
		cmocka_unit_test(test_rmsnorm_backward_matches_finite_differences),
		cmocka_unit_test(test_residual_layernorm_equals_add_then_layernorm),
		cmocka_unit_test(test_residual_rmsnorm_equals_add_then_rmsnorm),
		cmocka_unit_test(test_rope_forward_rotates_half_pairs),
		cmocka_unit_test(test_rope_backward_accumulates_inverse_rotation),
		cmocka_unit_test(test_gelu_tanh_matches_formula_and_derivative),
		cmocka_unit_test(test_gelu_erf_matches_formula_and_derivative),
		cmocka_unit_test(test_swiglu_matches_formula_and_derivative),
		cmocka_unit_test(test_softmax_rows_match_naive_and_survive_large_logits),
		cmocka_unit_test(test_crossentropy_matches_naive_and_skips_ignored_rows),
		cmocka_unit_test(test_crossentropy_loss_is_finite_for_large_logits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
