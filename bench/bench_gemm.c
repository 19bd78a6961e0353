/* CPU SGEMM at the shapes the CPU models run: OpenBLAS (as installed), BLIS
 * (Debian's libblis-dev, linked into this benchmark only and only when
 * installed) and our own kernels
 * (kernels/cpu/gemm.c), with 1 and 2 threads, in GFLOP/s side by side.
 * Each figure is the best of several samples (the machine may be shared).
 *   bench_gemm --list         prints the shapes ("name ta tb M N K beta")
 *   bench_gemm [--torch FILE] times them; FILE holds "name threads gflops"
 *                             lines from bench_gemm_torch.py for a torch column
 *   bench_gemm WORD           only the shapes whose name contains WORD
 *   bench_gemm mlp[=IMPL]     only the MLP block (IMPL: one implementation)
 * Also prints the largest difference from OpenBLAS relative to its largest
 * entry. Then "mlp": one GPT-2 MLP block forward and backward (4 GEMM
 * calls of each kind around the OpenMP GELU kernels) per GEMM
 * implementation, in ms: how each GEMM's threads share the 2 cores with the
 * OpenMP kernels between them. */
#include "../kernels/cpu/gemm.h"
#include "llmops_kernels.h"

/* OpenBLAS first: both headers guard their cblas part with CBLAS_H */
#include <cblas.h>
#ifdef HAVE_BLIS
#include <blis.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                          \
		}                                                                         \
	} while (0)

struct shape {
	const char *name;
	bool ta, tb;
	int M, N, K;
	float beta;
};

/* GPT-2 small-ish training step (C=384, B*T=2048, vocab 50257): forward
 * out = inp . W^T (NT), backward dinp += dout . W (NN), dW += dout^T . inp
 * (TN); llama 15M decode at batch 1 (dim 288, hidden 768, vocab 32000);
 * all-MiniLM-L6-v2 embedding 4096 tokens (dim 384, FFN 1536). */
static const struct shape shapes[] = {
	{"gpt2.fwd.qkv", 0, 1, 2048, 1152, 384, 0},
	{"gpt2.fwd.attproj", 0, 1, 2048, 384, 384, 0},
	{"gpt2.fwd.fc", 0, 1, 2048, 1536, 384, 0},
	{"gpt2.fwd.fcproj", 0, 1, 2048, 384, 1536, 0},
	{"gpt2.fwd.lmhead", 0, 1, 2048, 50257, 384, 0},
	{"gpt2.dinp.qkv", 0, 0, 2048, 384, 1152, 1},
	{"gpt2.dinp.attproj", 0, 0, 2048, 384, 384, 1},
	{"gpt2.dinp.fc", 0, 0, 2048, 384, 1536, 1},
	{"gpt2.dinp.fcproj", 0, 0, 2048, 1536, 384, 1},
	{"gpt2.dinp.lmhead", 0, 0, 2048, 384, 50257, 1},
	{"gpt2.dw.qkv", 1, 0, 1152, 384, 2048, 1},
	{"gpt2.dw.attproj", 1, 0, 384, 384, 2048, 1},
	{"gpt2.dw.fc", 1, 0, 1536, 384, 2048, 1},
	{"gpt2.dw.fcproj", 1, 0, 384, 1536, 2048, 1},
	{"gpt2.dw.lmhead", 1, 0, 50257, 384, 2048, 1},
	{"llama.dec.qkvo", 0, 1, 1, 288, 288, 0},
	{"llama.dec.w13", 0, 1, 1, 768, 288, 0},
	{"llama.dec.w2", 0, 1, 1, 288, 768, 0},
	{"llama.dec.cls", 0, 1, 1, 32000, 288, 0},
	{"minilm.qkvo", 0, 1, 4096, 384, 384, 0},
	{"minilm.ffn1", 0, 1, 4096, 1536, 384, 0},
	{"minilm.ffn2", 0, 1, 4096, 384, 1536, 0},
};
#define NSHAPES (int)(sizeof(shapes) / sizeof(shapes[0]))

enum impl { IMPL_OPENBLAS, IMPL_BLIS, IMPL_OWN_AVX2, IMPL_OWN_AVX512, IMPL_OWN_GEMV, NIMPL };
static const char *const impl_names[NIMPL] = {"openblas", "blis", "own-avx2", "own-avx512",
					      "own-gemv"};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#ifdef HAVE_BLIS
static void run_blis(const struct shape *s, const float *A, const float *B, float *C)
{
	float alpha = 1.0f, beta = s->beta;
	int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;

	bli_sgemm(s->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
		  s->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, s->M, s->N, s->K, &alpha, (float *)A,
		  lda, 1, (float *)B, ldb, 1, &beta, C, s->N, 1);
}

static void blis_describe(char *buf, size_t n)
{
	bli_init();
	snprintf(buf, n, "BLIS %s arch %s", bli_info_get_version_str(),
		 bli_arch_string(bli_arch_query_id()));
}
#else
static void run_blis(const struct shape *s, const float *A, const float *B, float *C)
{
	(void)s, (void)A, (void)B, (void)C;
}

static void bli_thread_set_num_threads(int n)
{
	(void)n;
}

static void blis_describe(char *buf, size_t n)
{
	snprintf(buf, n, "BLIS not installed (apt-get install libblis-dev)");
}
#endif

static void run(enum impl im, const struct shape *s, const float *A, const float *B, float *C)
{
	static const enum llm_sgemm_impl own[NIMPL] = {[IMPL_OPENBLAS] = LLM_SGEMM_BLAS,
						       [IMPL_OWN_AVX2] = LLM_SGEMM_AVX2,
						       [IMPL_OWN_AVX512] = LLM_SGEMM_AVX512,
						       [IMPL_OWN_GEMV] = LLM_SGEMM_GEMV_AVX2};
	int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;

	if (im == IMPL_BLIS)
		run_blis(s, A, B, C);
	else
		llm_sgemm_with(own[im], s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb,
			       s->beta, C, s->N);
}

static bool impl_applies(enum impl im, const struct shape *s)
{
	if (im == IMPL_OWN_AVX2)
		return llm_sgemm_available(LLM_SGEMM_AVX2);
	if (im == IMPL_OWN_AVX512)
		return llm_sgemm_available(LLM_SGEMM_AVX512);
	if (im == IMPL_OWN_GEMV)
		return s->M == 1 && llm_sgemm_available(LLM_SGEMM_GEMV_AVX2);
#ifndef HAVE_BLIS
	if (im == IMPL_BLIS)
		return false;
#endif
	return true;
}

/* best GFLOP/s over samples of at least 20 ms each */
static double time_impl(enum impl im, const struct shape *s, const float *A, const float *B,
			float *C)
{
	double flop = 2.0 * s->M * s->N * s->K, best = 1e30;
	int iters = 1, samples;
	double t;

	run(im, s, A, B, C);
	t = now();
	run(im, s, A, B, C);
	t = now() - t;
	if (t < 0.02)
		iters = (int)(0.02 / (t > 1e-7 ? t : 1e-7)) + 1;
	samples = t > 0.5 ? 3 : t > 0.1 ? 7 : 15;
	for (int r = 0; r < samples; r++) {
		double t0 = now();

		for (int i = 0; i < iters; i++)
			run(im, s, A, B, C);
		t = (now() - t0) / iters;
		if (t < best)
			best = t;
	}
	return flop / best * 1e-9;
}

/* largest |C_im - C_openblas| over the largest |C_openblas|, with beta 0 */
static double rel_diff(enum impl im, const struct shape *s, const float *A, const float *B,
		       float *C, float *ref)
{
	struct shape s0 = *s;
	double d = 0.0, m = 0.0;
	size_t n = (size_t)s->M * s->N;

	s0.beta = 0.0f;
	run(IMPL_OPENBLAS, &s0, A, B, ref);
	run(im, &s0, A, B, C);
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)C[i] - ref[i]));
		m = fmax(m, fabs((double)ref[i]));
	}
	return d / (m > 0 ? m : 1);
}

static double torch_figure(FILE *f, const char *name, int threads)
{
	char line[256], nm[128];
	int t;
	double g;

	if (!f)
		return -1;
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %d %lf", nm, &t, &g) == 3 && !strcmp(nm, name) &&
		    t == threads)
			return g;
	return -1;
}

static void bench_shape(const struct shape *s, FILE *torch)
{
	size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
	float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
	float *C = calloc(nc, sizeof(float)), *ref = calloc(nc, sizeof(float));

	CHECK(A && B && C && ref);
	for (size_t i = 0; i < na; i++)
		A[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
	for (size_t i = 0; i < nb; i++)
		B[i] = (float)((i * 40503u) % 1999) / 1000.0f - 1.0f;
	for (int threads = 1; threads <= 2; threads++) {
		openblas_set_num_threads(threads);
		bli_thread_set_num_threads(threads);
		omp_set_num_threads(threads);
		printf("%-18s %s%s %5d %5d %5d %dT", s->name, s->ta ? "T" : "N", s->tb ? "T" : "N",
		       s->M, s->N, s->K, threads);
		for (int im = 0; im < NIMPL; im++) {
			if (impl_applies(im, s))
				printf(" %9.1f", time_impl(im, s, A, B, C));
			else
				printf(" %9s", "-");
		}
		printf(" %9.1f", torch_figure(torch, s->name, threads));
		if (threads == 1) {
			double d = 0;

			for (int im = IMPL_BLIS; im < NIMPL; im++)
				if (impl_applies(im, s))
					d = fmax(d, rel_diff(im, s, A, B, C, ref));
			printf("  %.1e", d);
		}
		printf("\n");
		fflush(stdout);
	}
	free(A);
	free(B);
	free(C);
	free(ref);
}

/* The GPT-2 MLP block (B*T = 2048, C = 384, 4C = 1536): fc, GELU, fcproj
 * forward; fcproj and fc backward (dinp and dweight each), GELU backward. */
struct mlp {
	float *x, *w1, *h, *g, *w2, *y, *dy, *dg, *dh, *dx, *dw1, *dw2;
};

static void mlp_step(enum llm_sgemm_impl im, const struct mlp *m)
{
	const int N = 2048, C = 384, H = 1536;

	llm_sgemm_with(im, false, true, N, H, C, 1.0f, m->x, C, m->w1, C, 0.0f, m->h, H);
	cpu_gelu_forward(m->g, m->h, (long)N * H, LLM_GELU_TANH);
	llm_sgemm_with(im, false, true, N, C, H, 1.0f, m->g, H, m->w2, H, 0.0f, m->y, C);
	llm_sgemm_with(im, false, false, N, H, C, 1.0f, m->dy, C, m->w2, H, 0.0f, m->dg, H);
	llm_sgemm_with(im, true, false, C, H, N, 1.0f, m->dy, C, m->g, H, 1.0f, m->dw2, H);
	memset(m->dh, 0, sizeof(float) * N * H);
	cpu_gelu_backward(m->dh, m->h, m->dg, (long)N * H, LLM_GELU_TANH);
	llm_sgemm_with(im, false, false, N, C, H, 1.0f, m->dh, H, m->w1, C, 0.0f, m->dx, C);
	llm_sgemm_with(im, true, false, H, C, N, 1.0f, m->dh, H, m->x, C, 1.0f, m->dw1, C);
}

/* user + system CPU seconds of the whole process, all threads */
static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec * 1e-6;
}

/* only: an implementation name to run alone (its own process keeps another
 * library's idle threads out of the CPU time), or NULL for all */
static void bench_mlp(const char *only)
{
	static const enum llm_sgemm_impl ims[] = {LLM_SGEMM_BLAS, LLM_SGEMM_AVX2, LLM_SGEMM_AVX512,
						  LLM_SGEMM_AUTO};
	const size_t N = 2048, H = 1536;
	float *bufs[12];
	struct mlp m;

	for (int i = 0; i < 12; i++) {
		bufs[i] = calloc(N * H, sizeof(float));
		CHECK(bufs[i] != NULL);
		for (size_t j = 0; j < N * H; j++)
			bufs[i][j] = (float)((j * 2654435761u + i) % 2001) / 2000.0f - 0.5f;
	}
	m = (struct mlp){bufs[0], bufs[1], bufs[2], bufs[3], bufs[4],  bufs[5],
			 bufs[6], bufs[7], bufs[8], bufs[9], bufs[10], bufs[11]};
	printf("# mlp: GPT-2 MLP block fwd+bwd (B*T 2048, C 384): wall ms best of 7 / "
	       "process CPU ms per step\n");
	for (int threads = 1; threads <= 2; threads++) {
		openblas_set_num_threads(threads);
		omp_set_num_threads(threads);
		printf("mlp %dT", threads);
		for (size_t k = 0; k < sizeof(ims) / sizeof(ims[0]); k++) {
			double best = 1e30, cpu;

			if (!llm_sgemm_available(ims[k]) ||
			    (only && strcmp(only, llm_sgemm_name(ims[k]))))
				continue;
			mlp_step(ims[k], &m);
			cpu = cpu_seconds();
			for (int r = 0; r < 7; r++) {
				double t = now();

				mlp_step(ims[k], &m);
				t = now() - t;
				best = t < best ? t : best;
			}
			cpu = (cpu_seconds() - cpu) / 7;
			printf("  %s %.1f / %.1f", llm_sgemm_name(ims[k]), best * 1e3, cpu * 1e3);
		}
		printf("\n");
		fflush(stdout);
	}
	for (int i = 0; i < 12; i++)
		free(bufs[i]);
}

int main(int argc, char **argv)
{
	FILE *torch = NULL;
	char blis[128];

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (int i = 0; i < NSHAPES; i++)
			printf("%s %d %d %d %d %d %g\n", shapes[i].name, shapes[i].ta, shapes[i].tb,
			       shapes[i].M, shapes[i].N, shapes[i].K, shapes[i].beta);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--torch"))
		CHECK((torch = fopen(argv[2], "r")) != NULL);
	blis_describe(blis, sizeof(blis));
	printf("# OpenBLAS %s core %s; %s; OPENBLAS_CORETYPE=%s; avx512f %s\n",
	       openblas_get_config(), openblas_get_corename(), blis,
	       getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
	       llm_sgemm_available(LLM_SGEMM_AVX512) ? "yes" : "no");
	printf("# GFLOP/s, best of several samples; maxrel: largest difference from OpenBLAS\n");
	printf("%-18s %2s %5s %5s %5s %2s", "shape", "op", "M", "N", "K", "th");
	for (int im = 0; im < NIMPL; im++)
		printf(" %9s", impl_names[im]);
	printf(" %9s  %s\n", "torch", "maxrel");
	for (int i = 0; i < NSHAPES; i++)
		if (argc < 2 || torch || strstr(shapes[i].name, argv[1]))
			bench_shape(&shapes[i], torch);
	if (argc < 2 || torch || !strcmp(argv[1], "mlp"))
		bench_mlp(NULL);
	else if (!strncmp(argv[1], "mlp=", 4))
		bench_mlp(argv[1] + 4);
	if (torch)
		fclose(torch);
	return 0;
}
