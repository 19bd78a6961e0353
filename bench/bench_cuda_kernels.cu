/* Kernel-level CUDA benchmark (`make bench-cuda`): each CUDA kernel of
 * kernels/cuda/ at GPT-2 124M training shapes (B=8, T=1024, C=768, 12 heads,
 * V=50257), timed and set against the device's peak.
 *
 * Prints one JSON object per line, in the format of bench/run_cpu.py:
 *   {"bench", "metric", "value", "unit", "baseline", "baseline_value", "ratio"}
 * where baseline is "device peak", baseline_value the peak and ratio the
 * achieved fraction of it (value / peak; here higher is better and 1 is the
 * roof). Memory-bound kernels report "bandwidth" in GB/s: the compulsory
 * traffic (each input read once, each output written once, accumulated
 * outputs read and written) over the time, against the DRAM peak. GEMM-like
 * kernels report "fp32_throughput" in TFLOP/s against the fp32 CUDA-core
 * peak (fp32 cuBLASLt matmuls, CUDA-core attention). Our matmuls in the
 * bf16 precision (rows ending "_bf16": LLM_MATMUL_BF16, fp32 tensors with
 * bf16 products and fp32 accumulation) report "bf16_throughput" against
 * the bf16 dense tensor-core peak, as do the "cublaslt_bf16_*" rows, a
 * plain cuBLASLt GEMM with bf16 operands in memory (bf16 in and out): the
 * roof for a native-bf16 matmul, which reads half the bytes ours does.
 *
 * Peaks: DRAM and fp32 from the device's reported clocks (tests/cuda/
 * harness.h); bf16 from the table in bf16_peak(). `--peaks` prints only one
 * JSON object with the device's peaks (bench/run_cuda.py uses it for MFU and
 * bandwidth-bound figures). Timings are the mean of TIMING_REPS calls after
 * one warm-up (harness.h). Fails fast: any CUDA, cuBLAS or launcher error
 * ends the program with a message and exit status 1. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string.h>
#include <vector>

#include "llmops_kernels.h"
#include "../tests/cuda/harness.h"

/* GPT-2 124M; N_PARAM counts wte once (tied to the LM head) */
static const int B = 8, T = 1024, C = 768, NH = 12, HS = 64, V = 50257, N_ROWS = B * T;
static const long N_PARAM = 124439808L;
/* the vocabulary padded to a multiple of 64 for the bf16 GEMM, as llm.c does:
 * tensor-core GEMMs want 16-byte aligned leading dimensions */
static const int V_PAD = 50304;
static const size_t LT_WORKSPACE = 32u << 20;

static struct device_peaks peaks;
static double bf16_tflops;
static const char *bf16_source;

/* ---- peaks ---- */

/* Dense bf16 tensor-core peak in TFLOP/s. Source: the NVIDIA H100 Tensor
 * Core GPU datasheet and the H200 datasheet list BF16 Tensor Core 1,979
 * TFLOPS for SXM, 1,671 for NVL and 1,513 for PCIe, all "with sparsity";
 * dense is half: 989, 835 and 756. Other sm_90+ devices: SMs x 4096
 * bf16 FLOPs per clock per SM (989 TFLOP/s / (132 SMs x 1.83 GHz)) x the
 * reported SM clock, an estimate. */
static double bf16_peak(const cudaDeviceProp &prop, const char **source)
{
	bool hopper = strstr(prop.name, "H100") || strstr(prop.name, "H200");

	if (hopper && strstr(prop.name, "NVL")) {
		*source = "datasheet: H100/H200 NVL, 1671 sparse / 2";
		return 835.0;
	}
	if (hopper && strstr(prop.name, "PCIe")) {
		*source = "datasheet: H100 PCIe, 1513 sparse / 2";
		return 756.0;
	}
	if (hopper) {
		*source = "datasheet: H100/H200 SXM, 1979 sparse / 2";
		return 989.0;
	}
	*source = "estimate: SMs x 4096 FLOP/clock x SM clock";
	return (double)peaks.sms * 4096 * peaks.sm_khz * 1e3 / 1e12;
}

/* ---- output ---- */

static void fail(const char *what, llm_err err)
{
	fprintf(stderr, "bench_cuda_kernels: %s: %s: %s\n", what, llm_errname(err),
		llm_last_error());
	exit(1);
}

static void row(const char *bench, const char *metric, double value, const char *unit, double peak)
{
	printf("{\"bench\": \"%s\", \"metric\": \"%s\", \"value\": %.4g, \"unit\": \"%s\", "
	       "\"baseline\": \"device peak\", \"baseline_value\": %.4g, \"ratio\": %.3f}\n",
	       bench, metric, value, unit, peak, value / peak);
	fflush(stdout);
}

/* Times launch; prints a bandwidth row for bytes > 0, a throughput row
 * (fp32 unless bf16) for flops > 0. */
template <typename Launch>
static void measure(const char *bench, double bytes, double flops, bool bf16, Launch launch)
{
	llm_err err;
	float ms = time_ms(NULL, &err, launch);
	double s = ms * 1e-3;

	if (err != LLM_OK)
		fail(bench, err);
	if (bytes > 0)
		row(bench, "bandwidth", bytes / s / 1e9, "GB/s", peaks.dram_gbs);
	if (flops > 0 && bf16)
		row(bench, "bf16_throughput", flops / s / 1e12, "TFLOP/s", bf16_tflops);
	else if (flops > 0)
		row(bench, "fp32_throughput", flops / s / 1e12, "TFLOP/s", peaks.fp32_tflops);
}

/* ---- device buffers, freed after each case ---- */

static std::vector<void *> bufs;

/* uniform in [-scale, scale) from a splitmix64 hash of (seed, i) */
static __global__ void fill_kernel(float *p, size_t n, uint64_t seed, float scale)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		uint64_t z = seed + i * 0x9e3779b97f4a7c15ULL;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		p[i] = ((float)(z >> 40) * (1.0f / (1 << 23)) - 1.0f) * scale;
	}
}

static __global__ void tokens_kernel(int *p, size_t n, int vocab)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		p[i] = (int)((i * 2654435761ULL) % (uint64_t)vocab);
}

static __global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		dst[i] = __float2bfloat16(src[i]);
}

static void *dalloc(size_t bytes)
{
	void *p;

	CUDA_CHECK(cudaMalloc(&p, bytes));
	bufs.push_back(p);
	return p;
}

static float *rnd(size_t n, uint64_t seed, float scale = 1.0f)
{
	float *p = (float *)dalloc(n * sizeof(float));

	fill_kernel<<<1024, 256>>>(p, n, seed, scale);
	CUDA_CHECK(cudaGetLastError());
	return p;
}

static int *tokens(size_t n, int vocab)
{
	int *p = (int *)dalloc(n * sizeof(int));

	tokens_kernel<<<1024, 256>>>(p, n, vocab);
	CUDA_CHECK(cudaGetLastError());
	return p;
}

static __nv_bfloat16 *bf16_of(size_t n, uint64_t seed)
{
	__nv_bfloat16 *p = (__nv_bfloat16 *)dalloc(n * sizeof(__nv_bfloat16));
	float *f = rnd(n, seed);

	to_bf16_kernel<<<1024, 256>>>(p, f, n);
	CUDA_CHECK(cudaGetLastError());
	return p;
}

static void release(void)
{
	CUDA_CHECK(cudaDeviceSynchronize());
	for (void *p : bufs)
		CUDA_CHECK(cudaFree(p));
	bufs.clear();
}

/* ---- cases: GEMMs ---- */

/* name, with "_bf16" appended for the bf16 precision */
static const char *prec_label(char *buf, size_t len, const char *name,
			      enum llm_matmul_precision prec)
{
	snprintf(buf, len, "%s%s", name, prec == LLM_MATMUL_BF16 ? "_bf16" : "");
	return buf;
}

/* fp32 rows against the fp32 peak, bf16 rows against the bf16 dense peak */
static void bench_matmul(const char *name, int OC_, int C_, bool bias,
			 enum llm_matmul_precision prec)
{
	float *inp = rnd((size_t)N_ROWS * C_, 1), *w = rnd((size_t)OC_ * C_, 2, 0.05f);
	float *b = bias ? rnd(OC_, 3) : NULL, *out = rnd((size_t)N_ROWS * OC_, 4);
	char label[96];

	measure(prec_label(label, sizeof(label), name, prec), 0, 2.0 * N_ROWS * C_ * OC_,
		prec == LLM_MATMUL_BF16, [&] {
			return cuda_matmul_forward_prec(out, inp, w, b, B, T, C_, OC_, prec, NULL);
		});
	release();
}

static void bench_matmul_backward(enum llm_matmul_precision prec)
{
	const int OC_ = 4 * C;
	float *inp = rnd((size_t)N_ROWS * C, 1), *w = rnd((size_t)OC_ * C, 2, 0.05f);
	float *dout = rnd((size_t)N_ROWS * OC_, 3), *dinp = rnd((size_t)N_ROWS * C, 4);
	float *dw = rnd((size_t)OC_ * C, 5), *db = rnd(OC_, 6);
	char label[96];

	measure(prec_label(label, sizeof(label), "matmul_backward_fc", prec), 0,
		4.0 * N_ROWS * C * OC_, prec == LLM_MATMUL_BF16, [&] {
			return cuda_matmul_backward_prec(dinp, dw, db, dout, inp, w, B, T, C, OC_,
							 prec, NULL);
		});
	release();
}

static void bench_matmuls(enum llm_matmul_precision prec)
{
	bench_matmul("matmul_forward_qkv", 3 * C, C, true, prec);
	bench_matmul("matmul_forward_fc", 4 * C, C, true, prec);
	bench_matmul("matmul_forward_fcproj", C, 4 * C, true, prec);
	bench_matmul("matmul_forward_lm_head", V, C, false, prec);
	bench_matmul_backward(prec);
}

static void lt_check(cublasStatus_t st, const char *what)
{
	if (st != CUBLAS_STATUS_SUCCESS) {
		fprintf(stderr, "bench_cuda_kernels: %s: %s (%s)\n", what, cublasGetStatusName(st),
			cublasGetStatusString(st));
		exit(1);
	}
}

/* out (N_ROWS, OC) = inp (N_ROWS, K) . w (OC, K)^T in bf16 with fp32
 * accumulation. Row-major out is column-major out^T (OC x N_ROWS) =
 * w^T(op T of a column-major K x OC) . inp (column-major K x N_ROWS). */
static void bench_bf16_gemm(const char *name, int OC_, int K)
{
	__nv_bfloat16 *inp = bf16_of((size_t)N_ROWS * K, 1), *w = bf16_of((size_t)OC_ * K, 2);
	__nv_bfloat16 *out = (__nv_bfloat16 *)dalloc((size_t)N_ROWS * OC_ * 2);
	void *ws = dalloc(LT_WORKSPACE);
	cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
	cublasLtMatmulHeuristicResult_t heur = {};
	cublasLtMatrixLayout_t la, lb, lc;
	cublasLtMatmulPreference_t pref;
	cublasLtMatmulDesc_t desc;
	cublasLtHandle_t lt;
	size_t wsize = LT_WORKSPACE;
	float alpha = 1.0f, beta = 0.0f;
	int found = 0;

	lt_check(cublasLtCreate(&lt), "cublasLtCreate");
	lt_check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
		 "MatmulDescCreate");
	lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
		 "set TRANSA");
	lt_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
		 "set TRANSB");
	lt_check(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, K, OC_, K), "layout A");
	lt_check(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, K, N_ROWS, K), "layout B");
	lt_check(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, OC_, N_ROWS, OC_), "layout C");
	lt_check(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
	lt_check(cublasLtMatmulPreferenceSetAttribute(
			 pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsize, sizeof(wsize)),
		 "set workspace");
	lt_check(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, &heur, &found),
		 "AlgoGetHeuristic");
	if (found == 0)
		fprintf(stderr,
			"bench_cuda_kernels: %s: cuBLASLt found no bf16 algorithm; skipped\n",
			name);
	else
		measure(name, 0, 2.0 * N_ROWS * K * OC_, true, [&] {
			cublasStatus_t st =
				cublasLtMatmul(lt, desc, &alpha, w, la, inp, lb, &beta, out, lc,
					       out, lc, &heur.algo, ws, wsize, NULL);

			return st == CUBLAS_STATUS_SUCCESS
				       ? LLM_OK
				       : llm_fail(LLM_EINTERNAL, "cublasLtMatmul: %s",
						  cublasGetStatusName(st));
		});
	cublasLtMatmulPreferenceDestroy(pref);
	cublasLtMatrixLayoutDestroy(lc);
	cublasLtMatrixLayoutDestroy(lb);
	cublasLtMatrixLayoutDestroy(la);
	cublasLtMatmulDescDestroy(desc);
	cublasLtDestroy(lt);
	release();
}

/* ---- cases: attention (causal, q/k/v (B,T,NH,HS)) ---- */

static void bench_attention(void)
{
	size_t n = (size_t)B * T * C;
	float *q = rnd(n, 1), *k = rnd(n, 2), *v = rnd(n, 3), *out = rnd(n, 4),
	      *lse = rnd((size_t)B * NH * T, 5);
	float *dout = rnd(n, 6), *dq = rnd(n, 7), *dk = rnd(n, 8), *dv = rnd(n, 9);
	double fwd = 2.0 * B * NH * (double)T * T * HS; /* QK^T and PV, causal half */

	measure("attention_forward", 0, fwd, false, [&] {
		return cuda_attention_forward(out, lse, q, k, v, NULL, 1, B, T, T, T, NH, NH, HS,
					      NULL);
	});
	measure("attention_backward", 0, 2.5 * fwd, false, [&] {
		return cuda_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, 1, B, T, NH, NH,
					       HS, NULL);
	});
	release();
}

/* ---- cases: normalisation ---- */

static void bench_norms(void)
{
	size_t n = (size_t)N_ROWS * C;
	float *inp = rnd(n, 1), *out = rnd(n, 2), *w = rnd(C, 3), *bias = rnd(C, 4);
	float *mean = rnd(N_ROWS, 5), *rstd = rnd(N_ROWS, 6), *dout = rnd(n, 7), *dinp = rnd(n, 8);
	float *dw = rnd(C, 9), *db = rnd(C, 10);

	measure("layernorm_forward", (2.0 * n + 2.0 * N_ROWS + 2.0 * C) * 4, 0, false, [&] {
		return cuda_layernorm_forward(out, mean, rstd, inp, w, bias, N_ROWS, C, 1e-5f,
					      NULL);
	});
	measure("layernorm_backward", (4.0 * n + 2.0 * N_ROWS + 5.0 * C) * 4, 0, false, [&] {
		return cuda_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N_ROWS, C,
					       NULL);
	});
	measure("rmsnorm_forward", (2.0 * n + N_ROWS + C) * 4, 0, false,
		[&] { return cuda_rmsnorm_forward(out, rstd, inp, w, N_ROWS, C, 1e-5f, NULL); });
	measure("rmsnorm_backward", (4.0 * n + N_ROWS + 3.0 * C) * 4, 0, false, [&] {
		return cuda_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N_ROWS, C, NULL);
	});
	/* fused with the residual add: reads inp and dout, writes dinp (the
	 * residual stream) and out */
	measure("residual_layernorm_forward", (4.0 * n + 2.0 * N_ROWS + 2.0 * C) * 4, 0, false,
		[&] {
			return cuda_residual_layernorm_forward(dinp, out, mean, rstd, inp, dout, w,
							       bias, N_ROWS, C, 1e-5f, NULL);
		});
	measure("residual_rmsnorm_forward", (4.0 * n + N_ROWS + C) * 4, 0, false, [&] {
		return cuda_residual_rmsnorm_forward(dinp, out, rstd, inp, dout, w, N_ROWS, C,
						     1e-5f, NULL);
	});
	release();
}

/* ---- cases: elementwise ---- */

static void bench_elementwise(void)
{
	long n = (long)N_ROWS * 4 * C; /* the MLP's hidden activations */
	float *a = rnd(n, 1), *b = rnd(n, 2), *out = rnd(n, 3), *d = rnd(n, 4), *da = rnd(n, 5),
	      *db = rnd(n, 6);
	size_t nr = (size_t)N_ROWS * C;

	measure("gelu_forward", 2.0 * n * 4, 0, false,
		[&] { return cuda_gelu_forward(out, a, n, LLM_GELU_TANH, NULL); });
	measure("gelu_backward", 4.0 * n * 4, 0, false,
		[&] { return cuda_gelu_backward(da, a, d, n, LLM_GELU_TANH, NULL); });
	measure("swiglu_forward", 3.0 * n * 4, 0, false,
		[&] { return cuda_swiglu_forward(out, a, b, n, NULL); });
	measure("swiglu_backward", 7.0 * n * 4, 0, false,
		[&] { return cuda_swiglu_backward(da, db, d, a, b, n, NULL); });
	measure("residual_forward", 3.0 * nr * 4, 0, false,
		[&] { return cuda_residual_forward(out, a, b, (int)nr, NULL); });
	measure("rope_forward", 2.0 * nr * 4, 0, false,
		[&] { return cuda_rope_forward(out, a, B, T, NH, HS, 0, 10000.0f, NULL); });
	release();
}

/* ---- cases: vocabulary-sized rows ---- */

static void bench_vocab(void)
{
	size_t n = (size_t)N_ROWS * V;
	float *logits = rnd(n, 1, 4.0f), *dlogits = rnd(n, 2), *losses = rnd(N_ROWS, 3);
	int *targets = tokens(N_ROWS, V);

	measure("softmax_forward", 2.0 * n * 4, 0, false,
		[&] { return cuda_softmax_forward(dlogits, logits, N_ROWS, V, NULL); });
	measure("crossentropy_forward_backward", (2.0 * n + 2.0 * N_ROWS) * 4, 0, false, [&] {
		return cuda_crossentropy_forward_backward(dlogits, losses, logits, targets, N_ROWS,
							  V, -100, 1.0f / N_ROWS, NULL, NULL);
	});
	release();
}

/* ---- cases: embedding and optimizer ---- */

static void bench_embedding(void)
{
	size_t n = (size_t)N_ROWS * C;
	float *wte = rnd((size_t)V * C, 1), *wpe = rnd((size_t)T * C, 2), *out = rnd(n, 3);
	float *dout = rnd(n, 4), *dwte = rnd((size_t)V * C, 5), *dwpe = rnd((size_t)T * C, 6);
	int *tok = tokens(N_ROWS, V);

	measure("embedding_forward", (2.0 * n + (double)T * C + N_ROWS) * 4, 0, false,
		[&] { return cuda_embedding_forward(out, tok, wte, wpe, B, T, C, 0, NULL); });
	measure("embedding_backward", (3.0 * n + 2.0 * T * C + N_ROWS) * 4, 0, false,
		[&] { return cuda_embedding_backward(dwte, dwpe, dout, tok, B, T, C, 0, NULL); });
	release();
}

static void bench_optimizer(void)
{
	float *p = rnd(N_PARAM, 1), *g = rnd(N_PARAM, 2, 1e-3f), *m = rnd(N_PARAM, 3, 1e-3f);
	float *v = rnd(N_PARAM, 4, 1e-6f);
	uint16_t *pbf = (uint16_t *)dalloc(N_PARAM * sizeof(uint16_t));
	int t = 0;

	CUDA_CHECK(cudaMemset(v, 0, N_PARAM * sizeof(float))); /* v >= 0 */
	measure("adamw_update", 7.0 * N_PARAM * 4, 0, false, [&] {
		return cuda_adamw_update(p, g, m, v, N_PARAM, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++t,
					 NULL);
	});
	/* master, grad, m, v read; master, m, v written (fp32); the bf16 copy written */
	measure("adamw_update_mixed", 7.0 * N_PARAM * 4 + 2.0 * N_PARAM, 0, false, [&] {
		return cuda_adamw_update_mixed(p, pbf, g, m, v, N_PARAM, 1e-4f, 0.9f, 0.95f, 1e-8f,
					       0.1f, ++t, NULL);
	});
	measure("clip_grad_norm", 3.0 * N_PARAM * 4, 0, false,
		[&] { return cuda_clip_grad_norm(g, N_PARAM, 1e-3f, NULL, NULL); });
	release();
}

int main(int argc, char **argv)
{
	bool only_peaks = argc > 1 && strcmp(argv[1], "--peaks") == 0;
	cudaDeviceProp prop;
	char desc[256];
	llm_err err = cuda_device_init(0, desc, sizeof(desc));

	if (err != LLM_OK)
		fail("no usable CUDA device", err);
	CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
	peaks = device_peaks_of(0);
	bf16_tflops = bf16_peak(prop, &bf16_source);
	if (only_peaks) {
		printf("{\"device\": \"%s\", \"peak_dram_gbs\": %.1f, \"peak_fp32_tflops\": %.2f, "
		       "\"peak_bf16_tflops\": %.1f, \"peak_bf16_source\": \"%s\"}\n",
		       prop.name, peaks.dram_gbs, peaks.fp32_tflops, bf16_tflops, bf16_source);
		return 0;
	}
	fprintf(stderr,
		"bench_cuda_kernels: %s; peaks %.0f GB/s DRAM, %.1f fp32 TFLOP/s, %.0f bf16 "
		"TFLOP/s (%s)\n",
		desc, peaks.dram_gbs, peaks.fp32_tflops, bf16_tflops, bf16_source);

	bench_matmuls(LLM_MATMUL_FP32);
	bench_matmuls(LLM_MATMUL_BF16);
	bench_bf16_gemm("cublaslt_bf16_matmul_fc", 4 * C, C);
	bench_bf16_gemm("cublaslt_bf16_matmul_lm_head_padded", V_PAD, C);
	bench_attention();
	bench_norms();
	bench_elementwise();
	bench_vocab();
	bench_embedding();
	bench_optimizer();
	cuda_kernels_free();
	return 0;
}
