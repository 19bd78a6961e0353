/* GPU checks of every CUDA twin against its CPU reference; `make test-cuda`.
 *
 * For each kernel: seeded random inputs, the CPU twin (kernels/cpu/) and the
 * CUDA launcher on copies of the same data (gradients start from the same
 * random values, so accumulation is checked too), a comparison with
 * |gpu - cpu| <= atol + rtol * |cpu| per element, then a timing line with the
 * achieved GB/s and, for GEMM-like kernels, TFLOP/s against the device's
 * nominal peaks. Bitwise where both sides do the same correctly rounded
 * operations; tolerances elsewhere are stated at each call and come from:
 *   - fp32 sums in another order: about 1e-7 * sqrt(K) relative for K terms,
 *     so GEMM-based checks use 1e-4 * sqrt(max(K, 64) / 64) as
 *     test_cuda.cu does, and column sums 1e-5 * sqrt(rows);
 *   - CUDA's expf, tanhf, erff (2 ulp) against glibc's (< 1 ulp), and
 *     fused multiply-adds: 1e-5 relative for transcendental elementwise
 *     kernels, 1e-6 atol for outputs near 0.
 *   - bf16 matmuls (LLM_MATMUL_BF16): operands rounded to 8 significant
 *     bits, atol 2^-7 * sqrt(K) and rtol 2^-7 (derived at mm_atol()).
 * The matmuls run in both precisions on shapes cuBLASLt's fast kernels take
 * (fused bias epilogue) and on odd C, OC and 4-byte aligned buffers (the
 * cublasGemmEx fallback). Mixed-precision AdamW's bf16 copy must be its
 * master correctly rounded, exactly.
 * Selection kernels (top-k, greedy and sampled tokens) must match exactly.
 * Exits 1 on any failure or when there is no CUDA device. */
#include <cuda_runtime.h>

#include <vector>

#include "llmops_kernels.h"
#include "harness.h"

/* ---- bookkeeping: every buffer of one check is freed by release() ---- */

static std::vector<void *> dev_bufs, host_bufs;

template <typename T> static T *D(const T *h, size_t n)
{
	T *d = dev_copy_of(h, n);

	dev_bufs.push_back(d);
	return d;
}

template <typename T> static T *H(size_t n)
{
	T *h = (T *)xmalloc((n ? n : 1) * sizeof(T));

	host_bufs.push_back(h);
	return h;
}

/* n seeded floats in [-1, 1) times scale */
static float *R(size_t n, uint64_t seed, float scale = 1.0f)
{
	float *a = rnd_host(n, seed);

	for (size_t i = 0; i < n; i++)
		a[i] *= scale;
	host_bufs.push_back(a);
	return a;
}

static int *tokens_of(size_t n, int V, uint64_t seed)
{
	int *t = H<int>(n);

	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		t[i] = (int)((seed >> 33) % (uint64_t)V);
	}
	return t;
}

static void release(void)
{
	for (void *d : dev_bufs)
		CUDA_CHECK(cudaFree(d));
	for (void *h : host_bufs)
		free(h);
	dev_bufs.clear();
	host_bufs.clear();
}

static double gemm_tol(long K)
{
	return 1e-4 * sqrt((K > 64 ? K : 64) / 64.0);
}

/* ---- matmul (cuBLASLt, fp32 and bf16) ---- */

static const char *prec_name(enum llm_matmul_precision prec)
{
	return prec == LLM_MATMUL_BF16 ? "bf16" : "fp32";
}

/* Absolute and relative tolerance of a GEMM over K terms of inputs in [-1, 1). fp32: as
 * gemm_tol(). bf16: each operand is rounded to an 8-bit significand (unit
 * roundoff u = 2^-8), so a product is off by at most 2u relative and by
 * u * sqrt(2/3) in rms; K such errors with random signs sum to about
 * u * sqrt(2/3) * sqrt(K) * rms(a*b) = 1.1e-3 * sqrt(K) (rms(a*b) = 1/3
 * here). atol = 2u * sqrt(K) is seven of those standard deviations, safe
 * over a million outputs, and still 40 times below the typical |output|
 * (sqrt(K) / 3), so a wrong operand or transposition cannot pass. rtol =
 * 2u covers the fp32 values the GEMM adds to (bias, accumulated
 * gradients), which are not rounded to bf16 but scale the comparison. */
static double mm_atol(long K, enum llm_matmul_precision prec)
{
	return prec == LLM_MATMUL_BF16 ? 0x1p-7 * sqrt((double)K) : gemm_tol(K);
}

static double mm_rtol(long K, enum llm_matmul_precision prec)
{
	return prec == LLM_MATMUL_BF16 ? 0x1p-7 : gemm_tol(K);
}

/* check_close() with the check named "<name><what>" */
static void check_close_in(const char *name, const char *what, const float *dgot, const float *want,
			   size_t n, double atol, double rtol, llm_err err)
{
	char full[256];

	snprintf(full, sizeof(full), "%s%s", name, what);
	check_close(full, dgot, want, n, atol, rtol, err);
}

/* device copy of h (n + off floats) advanced by off floats: off = 1 gives
 * buffers only 4-byte aligned, which cuBLASLt's faster kernels refuse */
static float *D_off(const float *h, size_t n, int off)
{
	return D(h, n + off) + off;
}

/* Forward with and without bias against cpu_matmul_forward. Odd C and OC
 * and off = 1 reach the cublasGemmEx fallback and the separate bias
 * kernel; multiples of 16 with off = 0 the fused-bias epilogue. */
static void check_matmul_forward(int B, int T, int C, int OC, enum llm_matmul_precision prec,
				 int off)
{
	size_t BT = (size_t)B * T;
	float *inp = R(BT * C + off, 70), *w = R((size_t)OC * C + off, 71), *bias = R(OC + off, 72);
	float *out = H<float>(BT * OC), *out_nb = H<float>(BT * OC);
	float *ginp = D_off(inp, BT * C, off), *gw = D_off(w, (size_t)OC * C, off);
	float *gbias = D_off(bias, OC, off), *gout = dev_nan(BT * OC + off) + off;
	char name[160];
	llm_err err;

	dev_bufs.push_back(gout - off);
	cpu_matmul_forward(out, inp + off, w + off, bias + off, B, T, C, OC);
	cpu_matmul_forward(out_nb, inp + off, w + off, NULL, B, T, C, OC);
	err = cuda_matmul_forward_prec(gout, ginp, gw, gbias, B, T, C, OC, prec, NULL);
	snprintf(name, sizeof(name), "matmul forward %s B=%d T=%d C=%d OC=%d%s", prec_name(prec), B,
		 T, C, OC, off ? " (buffers 4-byte aligned)" : "");
	check_close(name, gout, out, BT * OC, mm_atol(C, prec), mm_rtol(C, prec), err);
	err = cuda_matmul_forward_prec(gout, ginp, gw, NULL, B, T, C, OC, prec, NULL);
	check_close_in(name, ", bias NULL", gout, out_nb, BT * OC, mm_atol(C, prec),
		       mm_rtol(C, prec), err);
	timing(name, 4.0 * (BT * C + (double)OC * C + BT * OC), 2.0 * BT * C * OC, [&] {
		return cuda_matmul_forward_prec(gout, ginp, gw, gbias, B, T, C, OC, prec, NULL);
	});
	release();
}

static void check_matmul_backward(int B, int T, int C, int OC, enum llm_matmul_precision prec,
				  int off)
{
	size_t BT = (size_t)B * T;
	float *inp = R(BT * C + off, 1), *w = R((size_t)OC * C + off, 2),
	      *dout = R(BT * OC + off, 3);
	float *dinp = R(BT * C + off, 4), *dw = R((size_t)OC * C + off, 5), *db = R(OC + off, 6);
	float *gdinp = D_off(dinp, BT * C, off), *gdw = D_off(dw, (size_t)OC * C, off);
	float *gdb = D_off(db, OC, off), *ginp = D_off(inp, BT * C, off);
	float *gw = D_off(w, (size_t)OC * C, off), *gdout = D_off(dout, BT * OC, off);
	long K = (long)BT;
	char name[160];
	llm_err err;

	cpu_matmul_backward(dinp + off, dw + off, db + off, dout + off, inp + off, w + off, B, T, C,
			    OC);
	err = cuda_matmul_backward_prec(gdinp, gdw, gdb, gdout, ginp, gw, B, T, C, OC, prec, NULL);
	snprintf(name, sizeof(name), "matmul backward %s B=%d T=%d C=%d OC=%d%s", prec_name(prec),
		 B, T, C, OC, off ? " (buffers 4-byte aligned)" : "");
	check_close_in(name, " dinp", gdinp, dinp + off, BT * C, mm_atol(OC, prec),
		       mm_rtol(OC, prec), err);
	check_close_in(name, " dweight", gdw, dw + off, (size_t)OC * C, mm_atol(K, prec),
		       mm_rtol(K, prec), err);
	/* dbias is an fp32 column sum in both precisions */
	check_close_in(name, " dbias", gdb, db + off, OC, gemm_tol(K), gemm_tol(K), err);
	/* frozen input and bias: only dweight, and weight may be NULL */
	float *dw2 = R((size_t)OC * C, 68), *gdw2 = D(dw2, (size_t)OC * C);
	cpu_matmul_backward(NULL, dw2, NULL, dout + off, inp + off, w + off, B, T, C, OC);
	err = cuda_matmul_backward_prec(NULL, gdw2, NULL, gdout, ginp, NULL, B, T, C, OC, prec,
					NULL);
	check_close_in(name, " dweight only (dinp, dbias NULL)", gdw2, dw2, (size_t)OC * C,
		       mm_atol(K, prec), mm_rtol(K, prec), err);
	timing(name, 4.0 * (BT * OC + 2 * BT * C + 2.0 * OC * C), 4.0 * BT * C * OC, [&] {
		return cuda_matmul_backward_prec(gdinp, gdw, gdb, gdout, ginp, gw, B, T, C, OC,
						 prec, NULL);
	});
	release();
}

/* The fp32 launchers are the _prec ones in LLM_MATMUL_FP32: bit for bit. */
static void check_matmul_default_is_fp32(void)
{
	const int B = 2, T = 16, C = 64, OC = 96;
	size_t BT = (size_t)B * T;
	float *inp = R(BT * C, 73), *w = R((size_t)OC * C, 74), *bias = R(OC, 75);
	float *ginp = D(inp, BT * C), *gw = D(w, (size_t)OC * C), *gbias = D(bias, OC);
	float *a = dev_nan(BT * OC), *b = dev_nan(BT * OC);
	llm_err e1, e2;

	dev_bufs.push_back(a);
	dev_bufs.push_back(b);
	e1 = cuda_matmul_forward(a, ginp, gw, gbias, B, T, C, OC, NULL);
	e2 = cuda_matmul_forward_prec(b, ginp, gw, gbias, B, T, C, OC, LLM_MATMUL_FP32, NULL);
	float *ha = host_copy(a, BT * OC), *hb = host_copy(b, BT * OC);
	size_t bad = count_unequal(ha, hb, BT * OC);

	host_bufs.push_back(ha);
	host_bufs.push_back(hb);
	report(e1 == LLM_OK && e2 == LLM_OK && bad == 0,
	       "cuda_matmul_forward is the fp32 precision: %zu of %zu differ%s", bad, BT * OC,
	       detail(e1 ? e1 : e2));
	release();
}

static void check_matmuls(void)
{
	static const enum llm_matmul_precision precs[] = {LLM_MATMUL_FP32, LLM_MATMUL_BF16};

	check_matmul_default_is_fp32();
	for (enum llm_matmul_precision p : precs) {
		check_matmul_forward(2, 16, 64, 96, p, 0); /* multiples of 16: fused bias */
		check_matmul_forward(2, 7, 33, 65, p, 0);  /* odd C and OC */
		check_matmul_forward(2, 7, 33, 65, p, 1);  /* and 4-byte aligned buffers */
		check_matmul_forward(1, 3, 1, 1, p, 0);	   /* degenerate */
		check_matmul_backward(2, 16, 64, 96, p, 0);
		check_matmul_backward(2, 7, 33, 65, p, 0);
		check_matmul_backward(2, 7, 33, 65, p, 1);
	}
}

/* model-sized: GPT-2's c_fc forward and c_proj-sized backward, both precisions */
static void check_matmuls_large(void)
{
	static const enum llm_matmul_precision precs[] = {LLM_MATMUL_FP32, LLM_MATMUL_BF16};

	for (enum llm_matmul_precision p : precs) {
		check_matmul_forward(4, 256, 768, 3072, p, 0);
		check_matmul_backward(4, 256, 768, 768, p, 0);
	}
}

/* ---- embedding ---- */

static void check_embedding(int B, int T, int C, int V, int pos0)
{
	size_t BT = (size_t)B * T, maxT = (size_t)pos0 + T;
	int *tok = tokens_of(BT, V, 7), *gtok = D(tok, BT);
	float *wte = R((size_t)V * C, 8), *wpe = R(maxT * C, 9), *dout = R(BT * C, 10);
	float *dwte = R((size_t)V * C, 11), *dwpe = R(maxT * C, 12), *out = H<float>(BT * C);
	float *gwte = D(wte, (size_t)V * C), *gwpe = D(wpe, maxT * C), *gout = D(out, BT * C);
	float *gdout = D(dout, BT * C), *gdwte = D(dwte, (size_t)V * C), *gdwpe = D(dwpe, maxT * C);
	double tol = 1e-5 * sqrt((double)BT);
	llm_err err;
	float *got;
	size_t bad;

	cpu_embedding_forward(out, tok, wte, wpe, B, T, C, pos0);
	err = cuda_embedding_forward(gout, gtok, gwte, gwpe, B, T, C, pos0, NULL);
	got = host_copy(gout, BT * C);
	bad = count_unequal(got, out, BT * C);
	free(got);
	report(err == LLM_OK && bad == 0, "embedding forward B=%d T=%d C=%d: %zu differ bitwise%s",
	       B, T, C, bad, detail(err));
	cpu_embedding_backward(dwte, dwpe, dout, tok, B, T, C, pos0);
	err = cuda_embedding_backward(gdwte, gdwpe, gdout, gtok, B, T, C, pos0, NULL);
	check_close("embedding backward dwte", gdwte, dwte, (size_t)V * C, tol, tol, err);
	check_close("embedding backward dwpe", gdwpe, dwpe, maxT * C, tol, tol, err);
	timing("embedding forward", 4.0 * BT * C * 3, 0,
	       [&] { return cuda_embedding_forward(gout, gtok, gwte, gwpe, B, T, C, pos0, NULL); });
	timing("embedding backward", 4.0 * BT * C * 3, 0, [&] {
		return cuda_embedding_backward(gdwte, gdwpe, gdout, gtok, B, T, C, pos0, NULL);
	});
	release();
}

/* ---- LayerNorm and RMSNorm ---- */

static void check_layernorm(int N, int C)
{
	size_t n = (size_t)N * C;
	float *x = R(n, 13, 3.0f), *w = R(C, 14), *b = R(C, 15), *dout = R(n, 16);
	float *out = H<float>(n), *mean = H<float>(N), *rstd = H<float>(N);
	float *dinp = R(n, 17), *dw = R(C, 18), *db = R(C, 19);
	float *gx = D(x, n), *gw = D(w, C), *gb = D(b, C), *gdout = D(dout, n);
	float *gout = D(out, n), *gmean = D(mean, N), *grstd = D(rstd, N);
	float *gdinp = D(dinp, n), *gdw = D(dw, C), *gdb = D(db, C);
	double ptol = 1e-5 * sqrt((double)N);
	llm_err err;

	cpu_layernorm_forward(out, mean, rstd, x, w, b, N, C, 1e-5f);
	err = cuda_layernorm_forward(gout, gmean, grstd, gx, gw, gb, N, C, 1e-5f, NULL);
	check_close("layernorm forward out", gout, out, n, 1e-5, 1e-5, err);
	check_close("layernorm forward mean", gmean, mean, N, 1e-6, 1e-5, err);
	check_close("layernorm forward rstd", grstd, rstd, N, 1e-6, 1e-5, err);
	/* backward from the CPU's statistics on both sides */
	CUDA_CHECK(cudaMemcpy(gmean, mean, N * sizeof(float), cudaMemcpyHostToDevice));
	CUDA_CHECK(cudaMemcpy(grstd, rstd, N * sizeof(float), cudaMemcpyHostToDevice));
	cpu_layernorm_backward(dinp, dw, db, dout, x, w, mean, rstd, N, C);
	err = cuda_layernorm_backward(gdinp, gdw, gdb, gdout, gx, gw, gmean, grstd, N, C, NULL);
	check_close("layernorm backward dinp", gdinp, dinp, n, 1e-5, 1e-4, err);
	check_close("layernorm backward dweight", gdw, dw, C, ptol, ptol, err);
	check_close("layernorm backward dbias", gdb, db, C, ptol, ptol, err);
	timing("layernorm forward", 4.0 * 2 * n, 0, [&] {
		return cuda_layernorm_forward(gout, gmean, grstd, gx, gw, gb, N, C, 1e-5f, NULL);
	});
	timing("layernorm backward", 4.0 * 5 * n, 0, [&] {
		return cuda_layernorm_backward(gdinp, gdw, gdb, gdout, gx, gw, gmean, grstd, N, C,
					       NULL);
	});
	release();
}

static void check_rmsnorm(int N, int C)
{
	size_t n = (size_t)N * C;
	float *x = R(n, 20, 3.0f), *w = R(C, 21), *dout = R(n, 22);
	float *out = H<float>(n), *rstd = H<float>(N), *dinp = R(n, 23), *dw = R(C, 24);
	float *gx = D(x, n), *gw = D(w, C), *gdout = D(dout, n), *gout = D(out, n);
	float *grstd = D(rstd, N), *gdinp = D(dinp, n), *gdw = D(dw, C);
	double ptol = 1e-5 * sqrt((double)N);
	llm_err err;

	cpu_rmsnorm_forward(out, rstd, x, w, N, C, 1e-6f);
	err = cuda_rmsnorm_forward(gout, grstd, gx, gw, N, C, 1e-6f, NULL);
	check_close("rmsnorm forward out", gout, out, n, 1e-5, 1e-5, err);
	check_close("rmsnorm forward rstd", grstd, rstd, N, 1e-6, 1e-5, err);
	CUDA_CHECK(cudaMemcpy(grstd, rstd, N * sizeof(float), cudaMemcpyHostToDevice));
	cpu_rmsnorm_backward(dinp, dw, dout, x, w, rstd, N, C);
	err = cuda_rmsnorm_backward(gdinp, gdw, gdout, gx, gw, grstd, N, C, NULL);
	check_close("rmsnorm backward dinp", gdinp, dinp, n, 1e-5, 1e-4, err);
	check_close("rmsnorm backward dweight", gdw, dw, C, ptol, ptol, err);
	timing("rmsnorm forward", 4.0 * 2 * n, 0,
	       [&] { return cuda_rmsnorm_forward(gout, grstd, gx, gw, N, C, 1e-6f, NULL); });
	timing("rmsnorm backward", 4.0 * 4 * n, 0,
	       [&] { return cuda_rmsnorm_backward(gdinp, gdw, gdout, gx, gw, grstd, N, C, NULL); });
	release();
}

/* ---- residual add fused with the norms ---- */

/* One bitwise check line for device dgot (n) against the host want. */
static void check_bitwise(const char *name, const float *dgot, const float *want, size_t n,
			  llm_err err)
{
	float *got = host_copy(dgot, n);
	size_t bad = count_unequal(got, want, n);

	free(got);
	report(err == LLM_OK && bad == 0, "%s: %zu of %zu differ bitwise%s", name, bad, n,
	       detail(err));
}

/* The fused kernels against the CPU fused kernels (which give the unfused
 * pair's bits). res_out is one correctly rounded fp32 add on both sides, so
 * bitwise; out, mean and rstd with the plain norms' tolerances (1e-5 +
 * 1e-5 |ref|, statistics 1e-6 + 1e-5 |ref|), the row sums being in another
 * order. Then in place: res_out == inp1, no statistics. */
static void check_residual_norms(int N, int C)
{
	size_t n = (size_t)N * C;
	float *x1 = R(n, 60, 3.0f), *x2 = R(n, 61), *w = R(C, 62), *b = R(C, 63);
	float *res = H<float>(n), *out = H<float>(n), *mean = H<float>(N), *rstd = H<float>(N);
	float *g1 = D(x1, n), *g2 = D(x2, n), *gw = D(w, C), *gb = D(b, C), *gres = D(res, n);
	float *gout = D(out, n), *gmean = D(mean, N), *grstd = D(rstd, N);
	llm_err err;

	cpu_residual_layernorm_forward(res, out, mean, rstd, x1, x2, w, b, N, C, 1e-5f);
	err = cuda_residual_layernorm_forward(gres, gout, gmean, grstd, g1, g2, gw, gb, N, C, 1e-5f,
					      NULL);
	check_bitwise("residual layernorm forward res_out", gres, res, n, err);
	check_close("residual layernorm forward out", gout, out, n, 1e-5, 1e-5, err);
	check_close("residual layernorm forward mean", gmean, mean, N, 1e-6, 1e-5, err);
	check_close("residual layernorm forward rstd", grstd, rstd, N, 1e-6, 1e-5, err);
	timing("residual layernorm forward", 4.0 * 4 * n, 0, [&] {
		return cuda_residual_layernorm_forward(gres, gout, gmean, grstd, g1, g2, gw, gb, N,
						       C, 1e-5f, NULL);
	});
	float *gin = D(x1, n);
	err = cuda_residual_layernorm_forward(gin, gout, NULL, NULL, gin, g2, gw, gb, N, C, 1e-5f,
					      NULL);
	check_bitwise("residual layernorm in place res_out", gin, res, n, err);
	check_close("residual layernorm in place out", gout, out, n, 1e-5, 1e-5, err);

	cpu_residual_rmsnorm_forward(res, out, rstd, x1, x2, w, N, C, 1e-6f);
	err = cuda_residual_rmsnorm_forward(gres, gout, grstd, g1, g2, gw, N, C, 1e-6f, NULL);
	check_bitwise("residual rmsnorm forward res_out", gres, res, n, err);
	check_close("residual rmsnorm forward out", gout, out, n, 1e-5, 1e-5, err);
	check_close("residual rmsnorm forward rstd", grstd, rstd, N, 1e-6, 1e-5, err);
	timing("residual rmsnorm forward", 4.0 * 4 * n, 0, [&] {
		return cuda_residual_rmsnorm_forward(gres, gout, grstd, g1, g2, gw, N, C, 1e-6f,
						     NULL);
	});
	gin = D(x1, n);
	err = cuda_residual_rmsnorm_forward(gin, gout, NULL, gin, g2, gw, N, C, 1e-6f, NULL);
	check_bitwise("residual rmsnorm in place res_out", gin, res, n, err);
	check_close("residual rmsnorm in place out", gout, out, n, 1e-5, 1e-5, err);
	release();
}

/* ---- RoPE ---- */

static void check_rope(int B, int T, int H_, int HS, int pos0, float theta)
{
	size_t n = (size_t)B * T * H_ * HS;
	float *x = R(n, 25), *dout = R(n, 26), *out = H<float>(n), *dinp = R(n, 27);
	float *gx = D(x, n), *gdout = D(dout, n), *gout = D(out, n), *gdinp = D(dinp, n);
	char name[128];
	llm_err err;

	snprintf(name, sizeof(name), "rope B=%d T=%d H=%d HS=%d pos0=%d theta=%g", B, T, H_, HS,
		 pos0, (double)theta);
	cpu_rope_forward(out, x, B, T, H_, HS, pos0, theta);
	err = cuda_rope_forward(gout, gx, B, T, H_, HS, pos0, theta, NULL);
	check_close("rope forward", gout, out, n, 1e-6, 1e-5, err);
	cpu_rope_backward(dinp, dout, B, T, H_, HS, pos0, theta);
	err = cuda_rope_backward(gdinp, gdout, B, T, H_, HS, pos0, theta, NULL);
	check_close("rope backward", gdinp, dinp, n, 1e-6, 1e-5, err);
	err = cuda_rope_forward(gx, gx, B, T, H_, HS, pos0, theta, NULL);
	check_close("rope forward in place", gx, out, n, 1e-6, 1e-5, err);
	timing(name, 4.0 * 2 * n, 0,
	       [&] { return cuda_rope_forward(gout, gdout, B, T, H_, HS, pos0, theta, NULL); });
	release();
}

/* ---- attention ---- */

struct att_case {
	int B, T, Tk, Tcap, NH, NKV, HS, causal, use_len;
};

static void check_attention_forward(const att_case *c)
{
	size_t nq = (size_t)c->B * c->T * c->NH * c->HS;
	size_t nk = (size_t)c->B * c->Tcap * c->NKV * c->HS, nl = (size_t)c->B * c->NH * c->T;
	float *q = R(nq, 28, 2.0f), *k = R(nk, 29, 2.0f), *v = R(nk, 30);
	float *out = H<float>(nq), *lse = H<float>(nl);
	int *len = H<int>(c->B);
	float *gq = D(q, nq), *gk = D(k, nk), *gv = D(v, nk), *gout = D(out, nq),
	      *glse = D(lse, nl);
	char name[160];
	llm_err err;

	for (int b = 0; b < c->B; b++) /* the last row sees nothing when B > 2 */
		len[b] = b == 2 ? 0 : c->Tk - (b * 7) % (c->Tk > 1 ? c->Tk - 1 : 1);
	int *glen = D(len, c->B);
	snprintf(name, sizeof(name),
		 "attention forward B=%d T=%d Tk=%d Tcap=%d NH=%d NKV=%d HS=%d causal=%d len=%d",
		 c->B, c->T, c->Tk, c->Tcap, c->NH, c->NKV, c->HS, c->causal, c->use_len);
	cpu_attention_forward(out, lse, q, k, v, c->use_len ? len : NULL, c->causal, c->B, c->T,
			      c->Tk, c->Tcap, c->NH, c->NKV, c->HS);
	err = cuda_attention_forward(gout, glse, gq, gk, gv, c->use_len ? glen : NULL, c->causal,
				     c->B, c->T, c->Tk, c->Tcap, c->NH, c->NKV, c->HS, NULL);
	check_close(name, gout, out, nq, 2e-5, 1e-4, err);
	check_close("attention forward lse", glse, lse, nl, 2e-5, 1e-5, err);
	double pairs = (double)c->B * c->NH * c->T * c->Tk * (c->causal ? 0.5 : 1.0);
	timing("attention forward", 4.0 * (2 * nq + 2 * nk), 4.0 * pairs * c->HS, [&] {
		return cuda_attention_forward(gout, glse, gq, gk, gv, c->use_len ? glen : NULL,
					      c->causal, c->B, c->T, c->Tk, c->Tcap, c->NH, c->NKV,
					      c->HS, NULL);
	});
	release();
}

static void check_attention_backward(int B, int T, int NH, int NKV, int HS, int causal)
{
	size_t nq = (size_t)B * T * NH * HS, nk = (size_t)B * T * NKV * HS, nl = (size_t)B * NH * T;
	float *q = R(nq, 31, 2.0f), *k = R(nk, 32, 2.0f), *v = R(nk, 33), *dout = R(nq, 34);
	float *out = H<float>(nq), *lse = H<float>(nl);
	float *dq = R(nq, 35), *dk = R(nk, 36), *dv = R(nk, 37);
	char name[128];
	llm_err err;

	cpu_attention_forward(out, lse, q, k, v, NULL, causal, B, T, T, T, NH, NKV, HS);
	float *gq = D(q, nq), *gk = D(k, nk), *gv = D(v, nk), *gdout = D(dout, nq);
	float *gout = D(out, nq), *glse = D(lse, nl);
	float *gdq = D(dq, nq), *gdk = D(dk, nk), *gdv = D(dv, nk);
	snprintf(name, sizeof(name), "attention backward B=%d T=%d NH=%d NKV=%d HS=%d causal=%d", B,
		 T, NH, NKV, HS, causal);
	cpu_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, causal, B, T, NH, NKV, HS);
	err = cuda_attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse, causal, B, T,
				      NH, NKV, HS, NULL);
	check_close(name, gdq, dq, nq, 5e-5, 5e-4, err);
	check_close("attention backward dk", gdk, dk, nk, 5e-5, 5e-4, err);
	check_close("attention backward dv", gdv, dv, nk, 5e-5, 5e-4, err);
	/* dq alone (dk, dv NULL), then dk and dv alone: each pass on its own */
	float *dq2 = R(nq, 69), *dk2 = R(nk, 70), *dv2 = R(nk, 71);
	float *gdq2 = D(dq2, nq), *gdk2 = D(dk2, nk), *gdv2 = D(dv2, nk);
	cpu_attention_backward(dq2, NULL, NULL, dout, q, k, v, out, lse, causal, B, T, NH, NKV, HS);
	err = cuda_attention_backward(gdq2, NULL, NULL, gdout, gq, gk, gv, gout, glse, causal, B, T,
				      NH, NKV, HS, NULL);
	check_close("attention backward dq only", gdq2, dq2, nq, 5e-5, 5e-4, err);
	cpu_attention_backward(NULL, dk2, dv2, dout, q, k, v, out, lse, causal, B, T, NH, NKV, HS);
	err = cuda_attention_backward(NULL, gdk2, gdv2, gdout, gq, gk, gv, gout, glse, causal, B, T,
				      NH, NKV, HS, NULL);
	check_close("attention backward dk only", gdk2, dk2, nk, 5e-5, 5e-4, err);
	check_close("attention backward dv only", gdv2, dv2, nk, 5e-5, 5e-4, err);
	double pairs = (double)B * NH * T * T * (causal ? 0.5 : 1.0);
	timing("attention backward", 4.0 * (4 * nq + 4 * nk), 2.0 * 7 * pairs * HS, [&] {
		return cuda_attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse, causal,
					       B, T, NH, NKV, HS, NULL);
	});
	release();
}

/* ---- elementwise ---- */

static void check_gelu(long N, enum llm_gelu kind)
{
	float *x = R(N, 38, 4.0f), *dout = R(N, 39), *out = H<float>(N), *dinp = R(N, 40);
	float *gx = D(x, N), *gdout = D(dout, N), *gout = D(out, N), *gdinp = D(dinp, N);
	const char *kn = kind == LLM_GELU_ERF ? "erf" : "tanh";
	char name[64];
	llm_err err;

	cpu_gelu_forward(out, x, N, kind);
	err = cuda_gelu_forward(gout, gx, N, kind, NULL);
	snprintf(name, sizeof(name), "gelu %s forward N=%ld", kn, N);
	check_close(name, gout, out, N, 1e-6, 1e-5, err);
	cpu_gelu_backward(dinp, x, dout, N, kind);
	err = cuda_gelu_backward(gdinp, gx, gdout, N, kind, NULL);
	snprintf(name, sizeof(name), "gelu %s backward N=%ld", kn, N);
	check_close(name, gdinp, dinp, N, 1e-6, 1e-5, err);
	timing("gelu forward", 8.0 * N, 0,
	       [&] { return cuda_gelu_forward(gout, gx, N, kind, NULL); });
	timing("gelu backward", 16.0 * N, 0,
	       [&] { return cuda_gelu_backward(gdinp, gx, gdout, N, kind, NULL); });
	release();
}

static void check_swiglu(long N)
{
	float *g = R(N, 41, 6.0f), *u = R(N, 42), *dout = R(N, 43), *out = H<float>(N);
	float *dg = R(N, 44), *du = R(N, 45);
	float *gg = D(g, N), *gu = D(u, N), *gdout = D(dout, N), *gout = D(out, N);
	float *gdg = D(dg, N), *gdu = D(du, N);
	llm_err err;

	cpu_swiglu_forward(out, g, u, N);
	err = cuda_swiglu_forward(gout, gg, gu, N, NULL);
	check_close("swiglu forward", gout, out, N, 1e-6, 1e-5, err);
	cpu_swiglu_backward(dg, du, dout, g, u, N);
	err = cuda_swiglu_backward(gdg, gdu, gdout, gg, gu, N, NULL);
	check_close("swiglu backward dgate", gdg, dg, N, 1e-6, 1e-5, err);
	check_close("swiglu backward dup", gdu, du, N, 1e-6, 1e-5, err);
	timing("swiglu forward", 12.0 * N, 0,
	       [&] { return cuda_swiglu_forward(gout, gg, gu, N, NULL); });
	timing("swiglu backward", 28.0 * N, 0,
	       [&] { return cuda_swiglu_backward(gdg, gdu, gdout, gg, gu, N, NULL); });
	release();
}

/* ---- softmax and cross-entropy ---- */

static void check_softmax(int N, int V)
{
	size_t n = (size_t)N * V;
	float *x = R(n, 46, 8.0f), *out = H<float>(n), *gx = D(x, n), *gout = D(out, n);
	char name[64];
	llm_err err;

	cpu_softmax_forward(out, x, N, V);
	err = cuda_softmax_forward(gout, gx, N, V, NULL);
	snprintf(name, sizeof(name), "softmax N=%d V=%d", N, V);
	check_close(name, gout, out, n, 1e-9, 1e-5, err);
	err = cuda_softmax_forward(gx, gx, N, V, NULL);
	check_close("softmax in place", gx, out, n, 1e-9, 1e-5, err);
	timing(name, 8.0 * n, 0, [&] { return cuda_softmax_forward(gout, gout, N, V, NULL); });
	release();
}

static void check_crossentropy(int N, int V)
{
	size_t n = (size_t)N * V;
	float *x = R(n, 47, 8.0f), *d = H<float>(n), *loss = H<float>(N);
	int *tgt = tokens_of(N, V, 48);
	float *gx = D(x, n), *gd = D(d, n), *gloss = D(loss, N);
	int count = -1, want, *gtgt;
	char name[64];
	llm_err err;

	tgt[0] = -100, tgt[N - 1] = -100; /* ignored rows */
	gtgt = D(tgt, N);
	want = cpu_crossentropy_forward_backward(d, loss, x, tgt, N, V, -100, 1.0f / (N - 2));
	err = cuda_crossentropy_forward_backward(gd, gloss, gx, gtgt, N, V, -100, 1.0f / (N - 2),
						 &count, NULL);
	snprintf(name, sizeof(name), "crossentropy N=%d V=%d losses", N, V);
	check_close(name, gloss, loss, N, 1e-5, 1e-5, err);
	check_close("crossentropy dlogits", gd, d, n, 1e-9, 1e-5, err);
	report(count == want, "crossentropy count: %d, CPU %d", count, want);
	err = cuda_crossentropy_forward_backward(gx, gloss, gx, gtgt, N, V, -100, 1.0f / (N - 2),
						 NULL, NULL);
	check_close("crossentropy in place (dlogits == logits)", gx, d, n, 1e-9, 1e-5, err);
	timing(name, 8.0 * n, 0, [&] {
		return cuda_crossentropy_forward_backward(gd, gloss, gd, gtgt, N, V, -100, 1.0f,
							  NULL, NULL);
	});
	release();
}

/* ---- optimizer ---- */

static void check_adamw(size_t n)
{
	float *p = R(n, 49), *g = R(n, 50), *m = R(n, 51, 0.1f), *v = R(n, 52, 0.01f);

	for (size_t i = 0; i < n; i++)
		v[i] = fabsf(v[i]);
	float *gp = D(p, n), *gg = D(g, n), *gm = D(m, n), *gv = D(v, n);
	llm_err err;

	cpu_adamw_update(p, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5);
	err = cuda_adamw_update(gp, gg, gm, gv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5, NULL);
	check_close("adamw param", gp, p, n, 1e-7, 1e-6, err);
	check_close("adamw m", gm, m, n, 1e-8, 1e-6, err);
	check_close("adamw v", gv, v, n, 1e-10, 1e-6, err);
	timing("adamw", 28.0 * n, 0, [&] {
		return cuda_adamw_update(gp, gg, gm, gv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5,
					 NULL);
	});
	release();
}

/* The mixed step against its CPU twin: master, m and v to the fp32
 * step's tolerances; the master also bit for bit against cuda_adamw_update
 * on the same data, and each bf16 copy exactly llm_bf16_from_float of the
 * GPU's own master (which may be a few ulp from the CPU's, so against the
 * CPU's bf16 copy it may differ by one bf16 ulp where that crosses a
 * rounding boundary: counted, at most 1 ulp allowed). */
static void check_adamw_mixed(size_t n)
{
	float *p = R(n, 76), *g = R(n, 77), *m = R(n, 78, 0.1f), *v = R(n, 79, 0.01f);

	for (size_t i = 0; i < n; i++)
		v[i] = fabsf(v[i]);
	float *gp = D(p, n), *gg = D(g, n), *gm = D(m, n), *gv = D(v, n);
	float *gp2 = D(p, n), *gm2 = D(m, n), *gv2 = D(v, n);
	uint16_t *bf = H<uint16_t>(n);

	memset(bf, 0, n * sizeof(*bf));
	uint16_t *gbf = D(bf, n);
	llm_err err, err2;

	cpu_adamw_update_mixed(p, bf, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5);
	err = cuda_adamw_update_mixed(gp, gbf, gg, gm, gv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5,
				      NULL);
	err2 = cuda_adamw_update(gp2, gg, gm2, gv2, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 5, NULL);
	check_close("adamw mixed master", gp, p, n, 1e-7, 1e-6, err);
	check_close("adamw mixed m", gm, m, n, 1e-8, 1e-6, err);
	check_close("adamw mixed v", gv, v, n, 1e-10, 1e-6, err);
	float *hp = host_copy(gp, n), *hp2 = host_copy(gp2, n);
	uint16_t *hbf = host_copy_of(gbf, n);
	size_t same_bad = count_unequal(hp, hp2, n), round_bad = 0, cpu_far = 0, cpu_off = 0;

	host_bufs.push_back(hp);
	host_bufs.push_back(hp2);
	host_bufs.push_back(hbf);
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)hbf[i] - (int)bf[i]);

		round_bad += hbf[i] != llm_bf16_from_float(hp[i]);
		cpu_off += d != 0;
		cpu_far += d > 1;
	}
	report(err2 == LLM_OK && same_bad == 0,
	       "adamw mixed master equals cuda_adamw_update: %zu of %zu differ%s", same_bad, n,
	       detail(err2));
	report(round_bad == 0, "adamw mixed bf16 is the master rounded to nearest even: %zu bad",
	       round_bad);
	report(cpu_far == 0, "adamw mixed bf16 vs CPU twin: %zu differ by 1 ulp, %zu by more",
	       cpu_off - cpu_far, cpu_far);
	timing("adamw mixed", 30.0 * n, 0, [&] {
		return cuda_adamw_update_mixed(gp, gbf, gg, gm, gv, n, 1e-3f, 0.9f, 0.95f, 1e-8f,
					       0.1f, 5, NULL);
	});
	release();
}

static void check_clip(size_t n, float max_norm)
{
	float *g = R(n, 53), *gg = D(g, n), norm = -1.0f, want;
	char name[64];
	llm_err err;

	want = cpu_clip_grad_norm(g, n, max_norm);
	err = cuda_clip_grad_norm(gg, n, max_norm, &norm, NULL);
	snprintf(name, sizeof(name), "clip n=%zu max_norm=%g grad", n, (double)max_norm);
	check_close(name, gg, g, n, 1e-9, 1e-6, err);
	report(fabs((double)norm - want) <= 1e-6 * want, "clip norm %.9g, CPU %.9g", (double)norm,
	       (double)want);
	timing("clip (norm returned)", 8.0 * n, 0,
	       [&] { return cuda_clip_grad_norm(gg, n, 1e30f, &norm, NULL); });
	release();
}

/* acc += weight * grad: one FMA on the device, a rounded product and an
 * add on the CPU, so one rounding of the sum apart */
static void check_grad_accumulate(size_t n)
{
	float *acc = R(n, 54), *g = R(n, 55), *gacc = D(acc, n), *gg = D(g, n);
	llm_err err;

	cpu_grad_accumulate(acc, g, 0.375f, n);
	err = cuda_grad_accumulate(gacc, gg, 0.375f, n, NULL);
	check_close("grad accumulate", gacc, acc, n, 1e-7, 1e-6, err);
	timing("grad accumulate", 12.0 * n, 0,
	       [&] { return cuda_grad_accumulate(gacc, gg, 0.375f, n, NULL); });
	release();
}

/* ---- LoRA ---- */

static void check_lora(int B, int T, int C, int OC, int r, float dropout)
{
	size_t BT = (size_t)B * T;
	float *x = R(BT * C, 54), *A = R((size_t)r * C, 55), *Bw = R((size_t)OC * r, 56);
	float *out = R(BT * OC, 57), *hid = H<float>(BT * r), *dout = R(BT * OC, 58);
	float *dinp = R(BT * C, 59), *dA = R((size_t)r * C, 60), *dB = R((size_t)OC * r, 61);
	float *scratch = H<float>(BT * (r + C));
	float *gx = D(x, BT * C), *gA = D(A, (size_t)r * C), *gB = D(Bw, (size_t)OC * r);
	float *gout = D(out, BT * OC), *ghid = D(hid, BT * r), *gdout = D(dout, BT * OC);
	float *gdinp = D(dinp, BT * C), *gdA = D(dA, (size_t)r * C), *gdB = D(dB, (size_t)OC * r);
	float *gscratch = D(scratch, BT * (r + C));
	double tol = gemm_tol(BT > (size_t)C ? (long)BT : C);
	char name[96];
	llm_err err;

	snprintf(name, sizeof(name), "lora forward B=%d T=%d C=%d OC=%d r=%d dropout=%g out", B, T,
		 C, OC, r, (double)dropout);
	cpu_lora_forward(out, hid, x, A, Bw, scratch, B, T, C, OC, r, 2.0f, dropout, 62);
	err = cuda_lora_forward(gout, ghid, gx, gA, gB, gscratch, B, T, C, OC, r, 2.0f, dropout, 62,
				NULL);
	check_close(name, gout, out, BT * OC, tol, tol, err);
	check_close("lora forward hidden", ghid, hid, BT * r, tol, tol, err);
	CUDA_CHECK(cudaMemcpy(ghid, hid, BT * r * sizeof(float), cudaMemcpyHostToDevice));
	cpu_lora_backward(dinp, dA, dB, dout, x, hid, A, Bw, scratch, B, T, C, OC, r, 2.0f, dropout,
			  62);
	err = cuda_lora_backward(gdinp, gdA, gdB, gdout, gx, ghid, gA, gB, gscratch, B, T, C, OC, r,
				 2.0f, dropout, 62, NULL);
	check_close("lora backward dinp", gdinp, dinp, BT * C, tol, tol, err);
	check_close("lora backward dlora_a", gdA, dA, (size_t)r * C, tol, tol, err);
	check_close("lora backward dlora_b", gdB, dB, (size_t)OC * r, tol, tol, err);
	timing("lora forward", 4.0 * (BT * C + 2 * BT * OC), 2.0 * BT * r * (C + OC), [&] {
		return cuda_lora_forward(gout, ghid, gx, gA, gB, gscratch, B, T, C, OC, r, 2.0f,
					 dropout, 62, NULL);
	});
	release();
}

/* ---- retrieval: pooling, scores, top-k ---- */

static void check_mean_pool(int B, int T, int C, int normalize)
{
	size_t n = (size_t)B * T * C;
	float *x = R(n, 63), *out = H<float>((size_t)B * C);
	int *len = H<int>(B);

	for (int b = 0; b < B; b++)
		len[b] = b == 0 ? T : b == 1 ? T / 3 : b == 2 ? 0 : T + 5;
	float *gx = D(x, n), *gout = D(out, (size_t)B * C);
	int *glen = D(len, B);
	char name[96];
	llm_err err;

	snprintf(name, sizeof(name), "mean pool B=%d T=%d C=%d normalize=%d", B, T, C, normalize);
	cpu_mean_pool_forward(out, x, len, B, T, C, normalize);
	err = cuda_mean_pool_forward(gout, gx, glen, B, T, C, normalize, NULL);
	check_close(name, gout, out, (size_t)B * C, 1e-6, 1e-5, err);
	timing(name, 4.0 * n, 0,
	       [&] { return cuda_mean_pool_forward(gout, gx, NULL, B, T, C, normalize, NULL); });
	release();
}

static void check_score(int Q, int N, int Dm, enum llm_metric metric)
{
	float *q = R((size_t)Q * Dm, 64), *m = R((size_t)N * Dm, 65), *s = H<float>((size_t)Q * N);

	memset(m, 0, Dm * sizeof(float)); /* a zero row scores 0 under cosine */
	float *gq = D(q, (size_t)Q * Dm), *gm = D(m, (size_t)N * Dm), *gs = D(s, (size_t)Q * N);
	char name[96];
	llm_err err;

	snprintf(name, sizeof(name), "score Q=%d N=%d D=%d %s", Q, N, Dm,
		 metric == LLM_METRIC_COSINE ? "cosine" : "dot");
	cpu_score_forward(s, q, m, Q, N, Dm, metric);
	err = cuda_score_forward(gs, gq, gm, Q, N, Dm, metric, NULL);
	check_close(name, gs, s, (size_t)Q * N, gemm_tol(Dm), gemm_tol(Dm), err);
	timing(name, 4.0 * ((size_t)N * Dm + (size_t)Q * N), 2.0 * Q * N * Dm,
	       [&] { return cuda_score_forward(gs, gq, gm, Q, N, Dm, metric, NULL); });
	release();
}

/* rows of values quantised to 1/8 (many ties) with a NaN in row 1 */
static float *tie_rows(int N, int V, uint64_t seed)
{
	float *x = R((size_t)N * V, seed, 8.0f);

	for (size_t i = 0; i < (size_t)N * V; i++)
		x[i] = roundf(x[i]) / 8.0f;
	if (N > 1)
		x[V + V / 2] = NAN;
	return x;
}

static void check_topk(int N, int V, int k)
{
	float *x = tie_rows(N, V, 66), *val = H<float>((size_t)N * k);
	int *idx = H<int>((size_t)N * k);
	float *gx = D(x, (size_t)N * V), *gval = D(val, (size_t)N * k);
	int *gidx = D(idx, (size_t)N * k);
	llm_err err;

	cpu_topk_forward(val, idx, x, N, V, k);
	err = cuda_topk_forward(gval, gidx, gx, N, V, k, NULL);
	float *v2 = host_copy(gval, (size_t)N * k);
	int *i2 = host_copy_of(gidx, (size_t)N * k);
	size_t bad = count_unequal(v2, val, (size_t)N * k);

	for (size_t i = 0; i < (size_t)N * k; i++)
		bad += i2[i] != idx[i];
	free(v2);
	free(i2);
	report(err == LLM_OK && bad == 0, "topk N=%d V=%d k=%d (ties, NaN): %zu differ%s", N, V, k,
	       bad, detail(err));
	timing("topk", 4.0 * N * V, 0,
	       [&] { return cuda_topk_forward(gval, gidx, gx, N, V, k, NULL); });
	release();
}

/* ---- sampling ---- */

static void check_sample(int N, int V, struct llm_sampling s, const char *what)
{
	float *x = R((size_t)N * V, 67, 6.0f);
	int *tok = H<int>(N), *gtok;
	void *scratch = H<char>((size_t)N * V * 8);
	float *gx = D(x, (size_t)N * V);
	size_t bad = 0;
	llm_err err = LLM_OK;

	gtok = D(tok, N);
	for (uint64_t step = 0; step < 4 && err == LLM_OK; step++) {
		cpu_sample_forward(tok, x, &s, scratch, N, V, step);
		err = cuda_sample_forward(gtok, gx, &s, NULL, N, V, step, NULL);
		int *got = host_copy_of(gtok, N);

		for (int n = 0; n < N; n++)
			bad += got[n] != tok[n];
		free(got);
	}
	report(err == LLM_OK && bad == 0, "sample %s N=%d V=%d, 4 steps: %zu of %d tokens differ%s",
	       what, N, V, bad, 4 * N, detail(err));
	timing("sample", 4.0 * N * V, 0,
	       [&] { return cuda_sample_forward(gtok, gx, &s, NULL, N, V, 9, NULL); });
	release();
}

static void check_samples(void)
{
	static const struct {
		struct llm_sampling s;
		const char *what;
	} cases[] = {
		{{0.0f, 0, 1.0f, 0.0f, 1}, "greedy"},
		{{1.0f, 0, 1.0f, 0.0f, 2}, "temperature 1"},
		{{0.7f, 50, 1.0f, 0.0f, 3}, "top_k 50"},
		{{0.9f, 0, 0.9f, 0.0f, 4}, "top_p 0.9"},
		{{1.0f, 0, 1.0f, 0.05f, 5}, "min_p 0.05"},
		{{0.7f, 40, 0.95f, 0.02f, 6}, "top_k 40 top_p 0.95 min_p 0.02"},
		{{0.8f, -1, 1.0f, 0.0f, 7}, "top_k -1 (off)"},
		{{1.0f, 0, 0.0f, 0.0f, 8}, "top_p 0 (top token only)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_sample(8, 1000, cases[i].s, cases[i].what);
		if (!quick())
			check_sample(4, 151936, cases[i].s, cases[i].what);
	}
}

/* ---- argument checks and device selection ---- */

static void expect_einval(const char *what, llm_err got)
{
	report(got == LLM_EINVAL, "rejects %s: %s (%s)", what, llm_errname(got), llm_last_error());
}

static void check_rejects(void)
{
	float *d = dev_nan(64);
	int *di = (int *)d;
	struct llm_sampling s = {1.0f, 0, 1.0f, 0.0f, 0};

	expect_einval("matmul backward dout=NULL",
		      cuda_matmul_backward(d, d, d, NULL, d, d, 1, 2, 2, 2, NULL));
	expect_einval("matmul precision=7",
		      cuda_matmul_forward_prec(d, d, d, d, 1, 2, 2, 2, (enum llm_matmul_precision)7,
					       NULL));
	expect_einval("matmul backward precision=-1",
		      cuda_matmul_backward_prec(d, d, d, d, d, d, 1, 2, 2, 2,
						(enum llm_matmul_precision) - 1, NULL));
	expect_einval("adamw mixed param_bf16=NULL",
		      cuda_adamw_update_mixed(d, NULL, d, d, d, 4, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f,
					      1, NULL));
	expect_einval("embedding B=0", cuda_embedding_forward(d, di, d, d, 0, 1, 1, 0, NULL));
	expect_einval("layernorm C=0", cuda_layernorm_forward(d, d, d, d, d, d, 2, 0, 1e-5f, NULL));
	expect_einval(
		"residual layernorm inp2=NULL",
		cuda_residual_layernorm_forward(d, d, d, d, d, NULL, d, d, 2, 2, 1e-5f, NULL));
	expect_einval("residual rmsnorm N=0",
		      cuda_residual_rmsnorm_forward(d, d, d, d, d, d, 0, 2, 1e-6f, NULL));
	expect_einval("rmsnorm backward rstd=NULL",
		      cuda_rmsnorm_backward(d, d, d, d, d, NULL, 2, 2, NULL));
	expect_einval("rope odd HS", cuda_rope_forward(d, d, 1, 1, 1, 3, 0, 1e4f, NULL));
	expect_einval("attention HS=129",
		      cuda_attention_forward(d, d, d, d, d, NULL, 0, 1, 1, 1, 1, 1, 1, 129, NULL));
	expect_einval("attention NH % NKV",
		      cuda_attention_forward(d, d, d, d, d, NULL, 0, 1, 1, 1, 1, 3, 2, 8, NULL));
	expect_einval("attention causal Tk < T",
		      cuda_attention_forward(d, d, d, d, d, NULL, 1, 1, 4, 2, 2, 1, 1, 8, NULL));
	expect_einval(
		"attention backward lse=NULL",
		cuda_attention_backward(d, d, d, d, d, d, d, d, NULL, 1, 1, 2, 1, 1, 8, NULL));
	expect_einval("gelu N=-1", cuda_gelu_forward(d, d, -1, LLM_GELU_TANH, NULL));
	expect_einval("swiglu gate=NULL", cuda_swiglu_forward(d, NULL, d, 4, NULL));
	expect_einval("softmax V=0", cuda_softmax_forward(d, d, 1, 0, NULL));
	expect_einval(
		"crossentropy targets=NULL",
		cuda_crossentropy_forward_backward(d, d, d, NULL, 1, 4, -100, 1.0f, NULL, NULL));
	expect_einval("adamw t=0",
		      cuda_adamw_update(d, d, d, d, 4, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 0, NULL));
	expect_einval("clip grad=NULL", cuda_clip_grad_norm(NULL, 4, 1.0f, NULL, NULL));
	expect_einval("grad accumulate acc=NULL", cuda_grad_accumulate(NULL, d, 1.0f, 4, NULL));
	expect_einval("lora dropout=1",
		      cuda_lora_forward(d, d, d, d, d, d, 1, 1, 2, 2, 1, 1.0f, 1.0f, 0, NULL));
	expect_einval("mean pool T=0", cuda_mean_pool_forward(d, d, NULL, 1, 0, 4, 0, NULL));
	expect_einval("topk k > V", cuda_topk_forward(d, di, d, 1, 4, 5, NULL));
	expect_einval("topk k=2049", cuda_topk_forward(d, di, d, 1, 4096, 2049, NULL));
	expect_einval("score D=0", cuda_score_forward(d, d, d, 1, 1, 0, LLM_METRIC_DOT, NULL));
	expect_einval("sample s=NULL", cuda_sample_forward(di, d, NULL, NULL, 1, 4, 0, NULL));
	expect_einval("sample V=0", cuda_sample_forward(di, d, &s, NULL, 1, 0, 0, NULL));
	CUDA_CHECK(cudaFree(d));
}

static void check_device(int ndev)
{
	char desc[256], why[512];
	llm_err err = cuda_device_init(0, desc, sizeof(desc));
	enum llm_backend be;

	report(err == LLM_OK, "cuda_device_init(0): %s%s", desc, detail(err));
	err = cuda_device_init(ndev, desc, sizeof(desc));
	report(err == LLM_ENOTFOUND, "cuda_device_init(%d) is LLM_ENOTFOUND: %s", ndev,
	       llm_errname(err));
	be = llm_backend_select(0, why, sizeof(why));
	report(be == LLM_BACKEND_CUDA, "llm_backend_select(0): %s", why);
	CUDA_CHECK(cudaSetDevice(0));
}

int main(void)
{
	static const att_case att[] = {
		{2, 37, 37, 37, 4, 2, 64, 1, 0},	 {2, 37, 37, 37, 4, 4, 64, 0, 0},
		{3, 5, 40, 48, 4, 1, 32, 1, 1},		 {3, 70, 70, 80, 2, 2, 128, 0, 1},
		{1, 1, 200, 256, 8, 2, 80, 1, 0},	 {2, 33, 33, 33, 2, 1, 24, 1, 1},
		{4, 1024, 1024, 1024, 12, 12, 64, 1, 0},
	};
	int ndev = 0;
	cudaError_t err = cudaGetDeviceCount(&ndev);

	if (err != cudaSuccess || ndev == 0) {
		printf("no CUDA device: %s\n",
		       err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	query_peaks(0);
	check_device(ndev);
	check_matmuls();
	check_embedding(4, 64, 96, 50, 3);
	check_layernorm(7, 33);
	check_rmsnorm(7, 33);
	check_residual_norms(7, 33);
	check_residual_norms(1, 1);
	check_rope(2, 17, 4, 64, 1000, 10000.0f);
	for (size_t i = 0; i + 1 < sizeof(att) / sizeof(att[0]); i++)
		check_attention_forward(&att[i]);
	check_attention_backward(2, 67, 4, 2, 64, 1);
	check_attention_backward(2, 67, 4, 4, 64, 0);
	check_attention_backward(1, 40, 2, 1, 128, 1);
	check_gelu(100003, LLM_GELU_TANH);
	check_gelu(100003, LLM_GELU_ERF);
	check_swiglu(100003);
	check_softmax(64, 100);
	check_crossentropy(64, 100);
	check_adamw(100003);
	check_adamw_mixed(100003);
	check_clip(100003, 1.0f);
	check_clip(1000, 1e9f);
	check_grad_accumulate(100003);
	check_lora(2, 33, 128, 96, 8, 0.0f);
	check_lora(2, 33, 128, 96, 8, 0.1f);
	check_mean_pool(4, 33, 384, 0);
	check_mean_pool(4, 33, 384, 1);
	check_score(5, 1000, 384, LLM_METRIC_DOT);
	check_score(5, 1000, 384, LLM_METRIC_COSINE);
	check_topk(4, 1000, 1);
	check_topk(4, 1000, 7);
	check_topk(4, 1000, 1000);
	check_topk(2, 151936, 50);
	check_samples();
	if (!quick()) { /* model-sized cases: accuracy at scale and the timings */
		check_matmuls_large();
		check_embedding(8, 1024, 768, 50257, 0);
		check_layernorm(8192, 768);
		check_rmsnorm(8192, 4096);
		check_residual_norms(8192, 768);
		check_rope(4, 1024, 32, 128, 0, 500000.0f);
		check_attention_forward(&att[sizeof(att) / sizeof(att[0]) - 1]);
		check_attention_backward(4, 512, 12, 12, 64, 1);
		check_gelu((1 << 24) + 3, LLM_GELU_TANH);
		check_gelu((1 << 24) + 3, LLM_GELU_ERF);
		check_swiglu((1 << 24) + 3);
		check_softmax(256, 50257);
		check_crossentropy(256, 50257);
		check_adamw((1 << 24) + 3);
		check_adamw_mixed((1 << 24) + 3);
		check_clip((1 << 24) + 3, 1.0f);
		check_grad_accumulate((1 << 24) + 3);
		check_topk(2, 151936, 2048);
	}
	check_rejects();
	cuda_kernels_free();
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed ? 1 : 0;
}
