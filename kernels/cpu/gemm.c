/* The CPU SGEMM behind the kernels: a small dispatch between OpenBLAS and
 * our own packed-panel GEMM (BLIS-style loops: NC columns of B, KC deep,
 * packed once and shared; MC rows of A packed per thread; a register tile
 * of MR x NR in the innermost loop), plus a GEMV path for one-row products
 * (batch-1 decode). The tiles come from gemm_tile.h, built per vector width
 * with function-level target attributes so the rest of the build keeps its
 * flags; the CPU is asked at run time which ones it can run. Threading is
 * OpenMP over the MC row blocks, and over B's panels when the rows are too
 * few to go round. Design limit: sizes are ints, like cblas. */
#include "gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int imin(int a, int b)
{
	return a < b ? a : b;
}

static int round_up(int x, int to)
{
	return (x + to - 1) / to * to;
}

/* c (m,n) = tile (m,n) + beta * c: the rows and columns of a partial tile */
static void gemm_tile_edge(float *c, int ldc, const float *tile, int ldt, int m, int n, float beta)
{
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float *p = c + (long)i * ldc + j;

			*p = beta == 0.0f ? tile[i * ldt + j] : tile[i * ldt + j] + beta * *p;
		}
}

#define GT_NAME	  avx2
#define GT_TARGET "avx2,fma"
#define GT_VW	  8
#define GT_MR	  6
#define GT_NV	  2
#include "gemm_tile.h"
#undef GT_NAME
#undef GT_TARGET
#undef GT_VW
#undef GT_MR
#undef GT_NV

#define GT_NAME	  avx512
#define GT_TARGET "avx512f,fma"
#define GT_VW	  16
#define GT_MR	  6
#define GT_NV	  4
#include "gemm_tile.h"
#undef GT_NAME
#undef GT_TARGET

/* the same 6x64 tile built for AVX2 (each zmm becomes two ymm): slow, but
 * it runs the AVX-512 blocking and edge handling on any AVX2 machine */
#define GT_NAME	  avx512_on_avx2
#define GT_TARGET "avx2,fma"
#include "gemm_tile.h"
#undef GT_NAME
#undef GT_TARGET
#undef GT_VW
#undef GT_MR
#undef GT_NV

/* One product's arguments, as in llm_sgemm. */
struct gemm_args {
	bool ta, tb;
	int M, N, K;
	float alpha, beta;
	const float *A, *B;
	float *C;
	int lda, ldb, ldc;
};

/* tile: see gemm_tile.h. mr x nr tile; kc, mc, nc the cache blocks. */
typedef void gemm_tile_fn(int kc, const float *restrict a, const float *restrict b,
			  float *restrict c, int ldc, int m, int n, float alpha, float beta);

struct gemm_variant {
	gemm_tile_fn *tile;
	int mr, nr, kc, mc, nc;
};

/* KC keeps a B micro-panel (kc x nr) in L1 and MC an A block in L2; NC a
 * B block (kc x nc) in L3. Measured on the 2-core EPYC (Zen 3, 32 KB L1d,
 * 512 KB L2). */
static const struct gemm_variant variants[LLM_SGEMM_IMPL_COUNT] = {
	[LLM_SGEMM_AVX2] = {gemm_tile_avx2, 6, 16, 384, 144, 4080},
	[LLM_SGEMM_AVX512] = {gemm_tile_avx512, 6, 64, 192, 144, 4096},
	[LLM_SGEMM_AVX512_ON_AVX2] = {gemm_tile_avx512_on_avx2, 6, 64, 192, 144, 4096},
};

/* eight floats, for copying rows of B into the (64-byte aligned) packed panels */
typedef float pack_vec __attribute__((vector_size(32)));
typedef float pack_uvec __attribute__((vector_size(32), aligned(4)));

/* dst (kc, nr) = columns j0 .. j0+nn of op(B) rows p0 .. p0+kc, zero-padded */
static void pack_b(float *dst, const struct gemm_args *g, int p0, int kc, int j0, int nn, int nr)
{
	if (!g->tb && nn == nr && nr % 8 == 0) {
		for (int k = 0; k < kc; k++, dst += nr) {
			const float *src = g->B + (long)(p0 + k) * g->ldb + j0;

			for (int j = 0; j < nr; j += 8)
				*(pack_vec *)(dst + j) = *(const pack_uvec *)(src + j);
		}
		return;
	}
	if (!g->tb) {
		for (int k = 0; k < kc; k++, dst += nr) {
			memcpy(dst, g->B + (long)(p0 + k) * g->ldb + j0, (size_t)nn * sizeof(*dst));
			memset(dst + nn, 0, (size_t)(nr - nn) * sizeof(*dst));
		}
		return;
	}
	for (int j = 0; j < nr; j++) {
		const float *src = g->B + (long)(j0 + imin(j, nn - 1)) * g->ldb + p0;

		for (int k = 0; k < kc; k++)
			dst[k * nr + j] = j < nn ? src[k] : 0.0f;
	}
}

/* dst (kc, mr) = src (mm, kc; row stride lda) transposed, rows mm .. mr zero */
static void pack_a_rows(float *dst, const float *src, int lda, int mm, int kc, int mr)
{
	if (mm == 6 && mr == 6) {
		const float *r0 = src, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
		const float *r4 = r3 + lda, *r5 = r4 + lda;

		for (int k = 0; k < kc; k++, dst += 6) {
			dst[0] = r0[k];
			dst[1] = r1[k];
			dst[2] = r2[k];
			dst[3] = r3[k];
			dst[4] = r4[k];
			dst[5] = r5[k];
		}
		return;
	}
	for (int k = 0; k < kc; k++)
		for (int i = 0; i < mr; i++)
			dst[k * mr + i] = i < mm ? src[(long)i * lda + k] : 0.0f;
}

/* dst = rows i0 .. i0+mc of op(A), columns p0 .. p0+kc, as mr-row panels
 * (kc, mr) one after another, the last zero-padded */
static void pack_a(float *dst, const struct gemm_args *g, int i0, int mc, int p0, int kc, int mr)
{
	for (int ir = 0; ir < mc; ir += mr, dst += (long)mr * kc) {
		int mm = imin(mr, mc - ir);

		if (g->ta && mm == 6 && mr == 6) {
			/* one 24-byte copy per k: two moves instead of six */
			for (int k = 0; k < kc; k++)
				memcpy(dst + k * 6, g->A + (long)(p0 + k) * g->lda + i0 + ir,
				       6 * sizeof(*dst));
			continue;
		}
		if (g->ta) {
			for (int k = 0; k < kc; k++) {
				const float *src = g->A + (long)(p0 + k) * g->lda + i0 + ir;

				for (int i = 0; i < mr; i++)
					dst[k * mr + i] = i < mm ? src[i] : 0.0f;
			}
			continue;
		}
		pack_a_rows(dst, g->A + (long)(i0 + ir) * g->lda + p0, g->lda, mm, kc, mr);
	}
}

/* below this many multiply-adds a packed product runs on the calling thread */
#define GEMM_PAR_MIN (1L << 20)

/* How one packed product is split: row blocks of mc rows, each cut into
 * nsplit ranges of B panels so that a few rows still feed every thread. */
struct gemm_plan {
	int nt, mc, nblk, nsplit, kcb, ncb;
	size_t astride; /* floats between the threads' A buffers */
};

static struct gemm_plan gemm_plan_of(const struct gemm_variant *v, const struct gemm_args *g)
{
	struct gemm_plan p;
	double work = (double)g->M * g->N * g->K; /* can pass 2^63 */

	p.nt = omp_in_parallel() || work < GEMM_PAR_MIN ? 1 : omp_get_max_threads();
	p.nblk = round_up((g->M + v->mc - 1) / v->mc, p.nt);
	p.mc = round_up((g->M + p.nblk - 1) / p.nblk, v->mr);
	p.nblk = (g->M + p.mc - 1) / p.mc;
	p.nsplit = p.nblk < p.nt ? p.nt : 1;
	p.kcb = imin(v->kc, g->K);
	p.ncb = imin(v->nc, round_up(g->N, v->nr));
	p.astride = ((size_t)p.mc * p.kcb + 15) / 16 * 16; /* 64-byte aligned */
	return p;
}

/* C rows i0 .. i0+mc, B panels p0 .. p1 of the packed block (kc, nc) at jc */
static void gemm_block(const struct gemm_variant *v, const struct gemm_args *g, const float *ap,
		       const float *bp, int i0, int mc, int jc, int nc, int p0, int p1, int kc,
		       float beta)
{
	for (int jp = p0; jp < p1; jp++) {
		const float *b = bp + (long)jp * v->nr * kc;
		int j = jc + jp * v->nr, n = imin(v->nr, nc - jp * v->nr);

		for (int ir = 0; ir < mc; ir += v->mr)
			v->tile(kc, ap + (long)ir * kc, b, g->C + (long)(i0 + ir) * g->ldc + j,
				g->ldc, imin(v->mr, mc - ir), n, g->alpha, beta);
	}
}

/* One (jc, pc) step: pack B (kc, nc) together, then each work item packs
 * its rows of A into its thread's buffer and runs its share of panels. */
static void gemm_step(const struct gemm_variant *v, const struct gemm_args *g,
		      const struct gemm_plan *p, float *ap, float *bp, int jc, int nc, int pc,
		      int kc)
{
	int npan = (nc + v->nr - 1) / v->nr;
	float beta = pc == 0 ? g->beta : 1.0f;

#pragma omp parallel num_threads(p->nt)
	{
		float *a = ap + p->astride * (size_t)omp_get_thread_num();

#pragma omp for schedule(static)
		for (int jp = 0; jp < npan; jp++)
			pack_b(bp + (long)jp * v->nr * kc, g, pc, kc, jc + jp * v->nr,
			       imin(v->nr, nc - jp * v->nr), v->nr);
#pragma omp for schedule(dynamic)
		for (int w = 0; w < p->nblk * p->nsplit; w++) {
			int ib = w / p->nsplit, s = w % p->nsplit;
			int i0 = ib * p->mc, m = imin(p->mc, g->M - i0);
			int p0 = npan * s / p->nsplit, p1 = npan * (s + 1) / p->nsplit;

			if (p0 == p1)
				continue;
			pack_a(a, g, i0, m, pc, kc, v->mr);
			gemm_block(v, g, a, bp, i0, m, jc, nc, p0, p1, kc, beta);
		}
	}
}

/* The packed product; false (nothing written) when the buffers cannot be had. */
static bool gemm_packed(const struct gemm_variant *v, const struct gemm_args *g)
{
	struct gemm_plan p = gemm_plan_of(v, g);
	float *ap = aligned_alloc(64, p.astride * p.nt * sizeof(float));
	float *bp = aligned_alloc(64, ((size_t)p.kcb * p.ncb + 15) / 16 * 16 * sizeof(float));

	if (!ap || !bp) {
		free(ap);
		free(bp);
		return false;
	}
	for (int jc = 0; jc < g->N; jc += p.ncb)
		for (int pc = 0; pc < g->K; pc += p.kcb)
			gemm_step(v, g, &p, ap, bp, jc, imin(p.ncb, g->N - jc), pc,
				  imin(p.kcb, g->K - pc));
	free(ap);
	free(bp);
	return true;
}

typedef float gemv_vec __attribute__((vector_size(32)));
typedef float gemv_uvec __attribute__((vector_size(32), aligned(4)));

/* sum over k < K of x[k] * w[k], four vector accumulators */
__attribute__((target("avx2,fma"))) static float gemv_dot(const float *x, const float *w, int K)
{
	gemv_vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	float s = 0.0f;
	int k = 0;

	for (; k + 32 <= K; k += 32) {
		s0 += *(const gemv_uvec *)(x + k) * *(const gemv_uvec *)(w + k);
		s1 += *(const gemv_uvec *)(x + k + 8) * *(const gemv_uvec *)(w + k + 8);
		s2 += *(const gemv_uvec *)(x + k + 16) * *(const gemv_uvec *)(w + k + 16);
		s3 += *(const gemv_uvec *)(x + k + 24) * *(const gemv_uvec *)(w + k + 24);
	}
	for (; k + 8 <= K; k += 8)
		s0 += *(const gemv_uvec *)(x + k) * *(const gemv_uvec *)(w + k);
	s0 += s1 + s2 + s3;
	for (int i = 0; i < 8; i++)
		s += s0[i];
	for (; k < K; k++)
		s += x[k] * w[k];
	return s;
}

/* columns per task of the row-sum GEMV: eight ymm accumulators */
#define GEMV_COLS 64
/* below this many multiply-adds a GEMV runs on the calling thread */
#define GEMV_PAR_MIN (1L << 20)

/* y (n) = alpha * x (K) . B (K, n; row stride ldb) + beta * y, n <= GEMV_COLS */
__attribute__((target("avx2,fma"))) static void
gemv_cols(float *y, const float *x, const float *B, int ldb, int K, int n, float alpha, float beta)
{
	gemv_vec acc[GEMV_COLS / 8] = {0};
	float part[GEMV_COLS] __attribute__((aligned(32)));

	if (n == GEMV_COLS) {
		for (int k = 0; k < K; k++) {
			gemv_vec xv = x[k] - (gemv_vec){0};

#pragma GCC unroll 8
			for (int v = 0; v < GEMV_COLS / 8; v++)
				acc[v] += xv * *(const gemv_uvec *)(B + (long)k * ldb + v * 8);
		}
		for (int v = 0; v < GEMV_COLS / 8; v++)
			*(gemv_vec *)(part + v * 8) = acc[v];
	} else {
		memset(part, 0, sizeof(part));
		for (int k = 0; k < K; k++)
			for (int j = 0; j < n; j++)
				part[j] += x[k] * B[(long)k * ldb + j];
	}
	for (int j = 0; j < n; j++)
		y[j] = beta == 0.0f ? alpha * part[j] : alpha * part[j] + beta * y[j];
}

/* C (1,N) = alpha * x (K) . op(B) + beta * C, x contiguous */
static void gemv(const struct gemm_args *g, const float *x)
{
	bool par = (long)g->N * g->K >= GEMV_PAR_MIN && !omp_in_parallel();

	if (g->tb) {
#pragma omp parallel for schedule(static) if (par)
		for (int j = 0; j < g->N; j++) {
			float d = g->alpha * gemv_dot(x, g->B + (long)j * g->ldb, g->K);

			g->C[j] = g->beta == 0.0f ? d : d + g->beta * g->C[j];
		}
		return;
	}
#pragma omp parallel for schedule(static) if (par)
	for (int j = 0; j < g->N; j += GEMV_COLS)
		gemv_cols(g->C + j, x, g->B + j, g->ldb, g->K, imin(GEMV_COLS, g->N - j), g->alpha,
			  g->beta);
}

/* the one-row product; false (nothing written) when x cannot be gathered */
static bool gemm_gemv(const struct gemm_args *g)
{
	float *x;

	if (!g->ta || g->lda == 1) {
		gemv(g, g->A);
		return true;
	}
	x = malloc((size_t)g->K * sizeof(*x));
	if (!x)
		return false;
	for (int k = 0; k < g->K; k++)
		x[k] = g->A[(long)k * g->lda];
	gemv(g, x);
	free(x);
	return true;
}

static void gemm_blas(const struct gemm_args *g)
{
	cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
		    g->tb ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, g->alpha, g->A, g->lda,
		    g->B, g->ldb, g->beta, g->C, g->ldc);
}

/* C = beta * C: the whole product when K or alpha is 0 */
static void gemm_scale(const struct gemm_args *g)
{
	for (int i = 0; i < g->M; i++)
		for (int j = 0; j < g->N; j++) {
			float *p = g->C + (long)i * g->ldc + j;

			*p = g->beta == 0.0f ? 0.0f : g->beta * *p;
		}
}

bool llm_sgemm_available(enum llm_sgemm_impl impl)
{
	__builtin_cpu_init();
	switch (impl) {
	case LLM_SGEMM_AUTO:
	case LLM_SGEMM_BLAS: return true;
	case LLM_SGEMM_AVX2:
	case LLM_SGEMM_AVX512_ON_AVX2:
	case LLM_SGEMM_GEMV_AVX2:
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case LLM_SGEMM_AVX512:
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
	default: return false;
	}
}

const char *llm_sgemm_name(enum llm_sgemm_impl impl)
{
	static const char *const names[LLM_SGEMM_IMPL_COUNT] = {
		[LLM_SGEMM_AUTO] = "auto",
		[LLM_SGEMM_BLAS] = "openblas",
		[LLM_SGEMM_AVX2] = "own-avx2-6x16",
		[LLM_SGEMM_AVX512] = "own-avx512-6x64",
		[LLM_SGEMM_AVX512_ON_AVX2] = "own-6x64-on-avx2",
		[LLM_SGEMM_GEMV_AVX2] = "own-gemv-avx2",
	};

	return (unsigned)impl < LLM_SGEMM_IMPL_COUNT ? names[impl] : "?";
}

/* The implementation AUTO runs for this shape on this CPU. */
static enum llm_sgemm_impl gemm_choose(const struct gemm_args *g)
{
	if (g->M == 1 && llm_sgemm_available(LLM_SGEMM_GEMV_AVX2))
		return LLM_SGEMM_GEMV_AVX2;
	if (llm_sgemm_available(LLM_SGEMM_AVX512))
		return LLM_SGEMM_AVX512;
	if (llm_sgemm_available(LLM_SGEMM_AVX2))
		return LLM_SGEMM_AVX2;
	return LLM_SGEMM_BLAS;
}

static void gemm_run(enum llm_sgemm_impl impl, const struct gemm_args *g)
{
	if (g->M <= 0 || g->N <= 0)
		return;
	if (g->K <= 0 || g->alpha == 0.0f) {
		gemm_scale(g);
		return;
	}
	if (impl == LLM_SGEMM_AUTO)
		impl = gemm_choose(g);
	if (!llm_sgemm_available(impl))
		impl = LLM_SGEMM_BLAS;
	if (impl == LLM_SGEMM_GEMV_AVX2 && g->M == 1 && gemm_gemv(g))
		return;
	if (impl != LLM_SGEMM_BLAS && impl != LLM_SGEMM_GEMV_AVX2 &&
	    gemm_packed(&variants[impl], g))
		return;
	gemm_blas(g);
}

void llm_sgemm_with(enum llm_sgemm_impl impl, bool trans_a, bool trans_b, int M, int N, int K,
		    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
		    float *C, int ldc)
{
	struct gemm_args g = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};

	gemm_run(impl, &g);
}

void llm_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
	       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	llm_sgemm_with(LLM_SGEMM_AUTO, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
		       ldc);
}
