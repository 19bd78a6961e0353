/* CUDA matmul (fully connected layer forward and backward) via cuBLASLt.
 *
 * Every GEMM goes through cublasLtMatmul with fp32 tensors in memory and
 * fp32 accumulation, in one of two precisions (enum llm_matmul_precision):
 *   - LLM_MATMUL_FP32 (the default launchers): CUBLAS_COMPUTE_32F, true
 *     fp32 products, no TF32, so the results match the CPU's to rounding.
 *   - LLM_MATMUL_BF16: CUBLAS_COMPUTE_32F_FAST_16BF, which lets cuBLAS round
 *     the fp32 operands to bf16 on the fly and run the bf16 tensor cores
 *     with fp32 accumulation. Chosen over native bf16 operands (with
 *     conversion kernels and bf16 activation buffers) because it needs no
 *     extra buffer, no conversion pass and no change to the models' fp32
 *     memory plans; the price is that operands still travel as fp32, so a
 *     memory-bound GEMM moves twice the bytes a native bf16 one would.
 * The forward's bias is fused into the epilogue (CUBLASLT_EPILOGUE_BIAS).
 *
 * Backward: dinp and dweight are two GEMMs with beta = 1 (our kernels
 * accumulate). dbias stays a deterministic column-sum kernel: cuBLASLt's
 * bias-gradient epilogues (BGRADB) overwrite the bias buffer instead of
 * adding to it, and only come with the dweight GEMM, so using them would
 * need a scratch buffer and an add kernel anyway; the column sum is one
 * read of dout, small next to the GEMMs.
 *
 * GELU is not fused into the epilogue (CUBLASLT_EPILOGUE_GELU_AUX_BIAS):
 * the models call matmul and GELU as separate backend entries (llm_ops.h)
 * and keep the pre-activation for backward themselves; fusing needs new
 * entries and a different activation plan in llm_model.c, left for later.
 * Before fusing, check which GELU the epilogue computes: cublasLt.h only
 * says "GELU", and GPT-2 needs the tanh form (LLM_GELU_TANH) bit-close.
 *
 * Shapes and alignment: each call asks cuBLASLt's heuristic for an
 * algorithm that works with the actual pointer alignments
 * (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*) and leading dimensions. When it
 * finds none (odd C or OC that no tensor-core kernel takes, an unaligned
 * sub-buffer) the call falls back to cublasGemmEx in the same compute type
 * plus a bias kernel, so every shape works; only the speed differs. The
 * bias is fused only when its pointer is 16-byte aligned.
 *
 * Design limits: one process-wide cuBLAS handle and one cuBLASLt handle,
 * created lazily on the device current at the first call; every later call
 * must run with that device current (LLM_EUNSUPPORTED otherwise). A mutex
 * serialises the calls on them so any thread may call (the GEMMs still run
 * asynchronously). The heuristic's answer is cached per configuration
 * (shapes, leading dimensions, transposes, precision, bias, alignments; 64
 * entries, round robin), since asking costs more host time than a small
 * GEMM takes. One workspace of LT_WORKSPACE bytes (32 MiB, allocated at the
 * first GEMM that wants one) serves every GEMM; a GEMM queued on another
 * stream than the last one that used it first waits for that one (an
 * event), so streams never share it concurrently. Other files reach the
 * cuBLAS handle through cuda_cublas_acquire() / cuda_cublas_release(). */
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* gridDim.y limit; more rows are folded into the kernel's row loop */
#define BIAS_MAX_GRID_Y 65535
/* most workspace one GEMM may take (32 MiB, what Hopper's kernels use) */
#define LT_WORKSPACE ((size_t)32 << 20)

/* The heuristic's answer for one GEMM configuration (lt_key), cached
 * because asking costs more host time than a small GEMM takes. */
#define LT_CACHE_SIZE 64

struct lt_key { /* all int-sized, no padding: compared with memcmp */
	int ta, tb, m, n, k, lda, ldb, ldd, prec, bias;
	uint32_t align_a, align_b, align_d;
};

struct lt_entry {
	struct lt_key key;
	bool used, found; /* found false: no algorithm, use the fallback */
	cublasLtMatmulHeuristicResult_t heur;
};

static std::mutex handle_lock; /* guards everything below */
static cublasHandle_t handle;  /* NULL until the first cuBLAS call */
static cublasLtHandle_t lt_handle;
static int handle_device; /* device the handles were created on */
static lt_entry lt_cache[LT_CACHE_SIZE];
static unsigned lt_cache_next; /* the slot replaced next (round robin) */
/* LT_WORKSPACE bytes shared by every GEMM that wants a workspace; a GEMM on
 * another stream than the last user waits for ws_done first */
static void *lt_ws;
static cudaEvent_t lt_ws_done;
static cudaStream_t lt_ws_stream;
static bool lt_ws_used;

/* ---- kernels ---- */

/* out (BT,OC) += bias (OC), the same bias row added to each of the BT rows.
 * grid.x covers OC, grid.y strides over the rows; unsigned indices, since
 * col and row + gridDim.y may pass INT_MAX. */
static __global__ void add_bias_kernel(float *out, const float *bias, int BT, int OC)
{
	unsigned col = blockIdx.x * blockDim.x + threadIdx.x;
	float b;

	if (col >= (unsigned)OC)
		return;
	b = bias[col];
	for (unsigned row = blockIdx.y; row < (unsigned)BT; row += gridDim.y)
		out[(size_t)row * OC + col] += b;
}

/* dbias (OC) += column sums of dout (BT,OC). Block (32, 32): threadIdx.x
 * picks the column, threadIdx.y strides over rows; the 32 partial sums are
 * then added in a fixed order, so the result is deterministic. */
static __global__ void __launch_bounds__(1024)
	dbias_kernel(float *dbias, const float *dout, int BT, int OC)
{
	__shared__ float part[32][33];
	int col = blockIdx.x * 32 + threadIdx.x;
	float acc = 0.0f;

	if (col < OC)
		for (int row = threadIdx.y; row < BT; row += 32)
			acc += dout[(size_t)row * OC + col];
	part[threadIdx.y][threadIdx.x] = acc;
	__syncthreads();
	if (threadIdx.y != 0 || col >= OC)
		return;
	for (int y = 1; y < 32; y++)
		acc += part[y][threadIdx.x];
	dbias[col] += acc;
}

/* ---- handles ---- */

llm_err cuda_cublas_fail(const char *fn, const char *what, cublasStatus_t st)
{
	return llm_fail(LLM_EINTERNAL, "%s: %s: %s (%s)", fn, what, cublasGetStatusName(st),
			cublasGetStatusString(st));
}

/* Creates both handles on device dev if there are none; caller holds
 * handle_lock. */
static llm_err ensure_handle_locked(const char *fn, int dev)
{
	cublasStatus_t st;

	if (handle) {
		if (handle_device == dev)
			return LLM_OK;
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: cuBLAS handle is on device %d, called on device %d", fn,
				handle_device, dev);
	}
	st = cublasCreate(&handle);
	if (st != CUBLAS_STATUS_SUCCESS) {
		handle = NULL;
		return cuda_cublas_fail(fn, "cublasCreate", st);
	}
	st = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtCreate(&lt_handle);
	if (st != CUBLAS_STATUS_SUCCESS) {
		cublasDestroy(handle);
		handle = NULL;
		lt_handle = NULL;
		return cuda_cublas_fail(fn, "cublasSetMathMode or cublasLtCreate", st);
	}
	handle_device = dev;
	return LLM_OK;
}

llm_err cuda_cublas_acquire(const char *fn, cudaStream_t stream, cublasHandle_t *h)
{
	cublasStatus_t st;
	llm_err err;
	int dev;
	cudaError_t cerr = cudaGetDevice(&dev);

	if (cerr != cudaSuccess)
		return cuda_fail(fn, "cudaGetDevice", cerr);
	handle_lock.lock();
	err = ensure_handle_locked(fn, dev);
	if (err)
		goto out_unlock;
	st = cublasSetStream(handle, stream);
	if (st != CUBLAS_STATUS_SUCCESS) {
		err = cuda_cublas_fail(fn, "cublasSetStream", st);
		goto out_unlock;
	}
	*h = handle;
	return LLM_OK;
out_unlock:
	handle_lock.unlock();
	return err;
}

void cuda_cublas_release(void)
{
	handle_lock.unlock();
}

/* ---- one GEMM through cuBLASLt, or cublasGemmEx when it has no algorithm ---- */

/* Column-major D (m x n) = op(A) (m x k) . op(B) (k x n) + beta * D, plus
 * bias (m) broadcast over the columns when bias is set. A is stored m x k
 * (ta N) or k x m (ta T) with leading dimension lda; B likewise k x n or
 * n x k. D is both the C and the D matrix of cuBLASLt (in place). */
struct gemm {
	cublasOperation_t ta, tb;
	int m, n, k;
	const float *a, *b, *bias;
	int lda, ldb, ldd;
	float *d;
	float beta;
};

/* the descriptors of one cuBLASLt call, destroyed together by lt_free() */
struct lt_call {
	cublasLtMatmulDesc_t desc;
	cublasLtMatrixLayout_t la, lb, ld;
	cublasLtMatmulPreference_t pref;
};

static void lt_free(struct lt_call *c)
{
	if (c->pref)
		cublasLtMatmulPreferenceDestroy(c->pref);
	if (c->ld)
		cublasLtMatrixLayoutDestroy(c->ld);
	if (c->lb)
		cublasLtMatrixLayoutDestroy(c->lb);
	if (c->la)
		cublasLtMatrixLayoutDestroy(c->la);
	if (c->desc)
		cublasLtMatmulDescDestroy(c->desc);
}

static cublasComputeType_t compute_type(enum llm_matmul_precision prec)
{
	return prec == LLM_MATMUL_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
}

/* largest power of two (at most 256) dividing the address: the alignment
 * cuBLASLt may assume */
static uint32_t align_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uint32_t al = 256;

	while (al > 1 && a % al)
		al /= 2;
	return al;
}

/* The operation descriptor: compute type, transposes and, with g->bias, the
 * bias epilogue. */
static cublasStatus_t lt_desc(struct lt_call *c, const struct gemm *g,
			      enum llm_matmul_precision prec)
{
	cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
	cublasStatus_t st = cublasLtMatmulDescCreate(&c->desc, compute_type(prec), CUDA_R_32F);

	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSA, &g->ta,
						    sizeof(g->ta));
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_TRANSB, &g->tb,
						    sizeof(g->tb));
	if (st != CUBLAS_STATUS_SUCCESS || !g->bias)
		return st;
	st = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
					    sizeof(epi));
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulDescSetAttribute(c->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
						    &g->bias, sizeof(g->bias));
	return st;
}

/* The three layouts (fp32, column-major; stored shapes before the ops). */
static cublasStatus_t lt_layouts(struct lt_call *c, const struct gemm *g)
{
	bool an = g->ta == CUBLAS_OP_N, bn = g->tb == CUBLAS_OP_N;
	cublasStatus_t st;

	st = cublasLtMatrixLayoutCreate(&c->la, CUDA_R_32F, an ? g->m : g->k, an ? g->k : g->m,
					g->lda);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatrixLayoutCreate(&c->lb, CUDA_R_32F, bn ? g->k : g->n,
						bn ? g->n : g->k, g->ldb);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatrixLayoutCreate(&c->ld, CUDA_R_32F, g->m, g->n, g->ldd);
	return st;
}

/* Heuristic preferences: the workspace cap and the real pointer alignments,
 * so only algorithms that can run on these buffers are offered. */
static cublasStatus_t lt_pref(struct lt_call *c, const struct gemm *g)
{
	const cublasLtMatmulPreferenceAttributes_t attr[4] = {
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
		CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
	const uint32_t al[4] = {align_of(g->a), align_of(g->b), align_of(g->d), align_of(g->d)};
	size_t ws = LT_WORKSPACE;
	cublasStatus_t st = cublasLtMatmulPreferenceCreate(&c->pref);

	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasLtMatmulPreferenceSetAttribute(
			c->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
	for (int i = 0; i < 4 && st == CUBLAS_STATUS_SUCCESS; i++)
		st = cublasLtMatmulPreferenceSetAttribute(c->pref, attr[i], &al[i], sizeof(al[i]));
	return st;
}

/* The shared workspace, allocated on first use, made safe to use on
 * stream: if the last GEMM that used it ran on another stream, stream
 * waits for it. Caller holds handle_lock. */
static llm_err ws_acquire(const char *fn, cudaStream_t stream)
{
	cudaError_t cerr;

	if (!lt_ws) {
		cerr = cudaEventCreateWithFlags(&lt_ws_done, cudaEventDisableTiming);
		if (cerr != cudaSuccess)
			return cuda_fail(fn, "cudaEventCreate (cuBLASLt workspace)", cerr);
		cerr = cudaMalloc(&lt_ws, LT_WORKSPACE);
		if (cerr != cudaSuccess) {
			cudaEventDestroy(lt_ws_done);
			lt_ws = NULL;
			return cuda_fail(fn, "cudaMalloc (cuBLASLt workspace)", cerr);
		}
		lt_ws_used = false;
	}
	if (!lt_ws_used || lt_ws_stream == stream)
		return LLM_OK;
	cerr = cudaStreamWaitEvent(stream, lt_ws_done, 0);
	return cerr == cudaSuccess ? LLM_OK : cuda_fail(fn, "cudaStreamWaitEvent", cerr);
}

/* Marks the workspace as in use by the work just queued on stream. */
static llm_err ws_release(const char *fn, cudaStream_t stream)
{
	cudaError_t cerr = cudaEventRecord(lt_ws_done, stream);

	if (cerr != cudaSuccess)
		return cuda_fail(fn, "cudaEventRecord (cuBLASLt workspace)", cerr);
	lt_ws_stream = stream;
	lt_ws_used = true;
	return LLM_OK;
}

/* Runs the chosen algorithm, with the shared workspace when it wants one. */
static llm_err lt_run(cublasLtHandle_t lt, const struct lt_call *c, const struct gemm *g,
		      const cublasLtMatmulHeuristicResult_t *heur, const char *fn,
		      cudaStream_t stream)
{
	const float alpha = 1.0f;
	size_t wsize = heur->workspaceSize;
	cublasStatus_t st;
	llm_err err;

	if (wsize > 0 && (err = ws_acquire(fn, stream)))
		return err;
	st = cublasLtMatmul(lt, c->desc, &alpha, g->a, c->la, g->b, c->lb, &g->beta, g->d, c->ld,
			    g->d, c->ld, &heur->algo, wsize > 0 ? lt_ws : NULL, wsize, stream);
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail(fn, "cublasLtMatmul", st);
	return wsize > 0 ? ws_release(fn, stream) : LLM_OK;
}

static struct lt_key key_of(const struct gemm *g, enum llm_matmul_precision prec)
{
	struct lt_key k;

	memset(&k, 0, sizeof(k));
	k.ta = g->ta, k.tb = g->tb, k.m = g->m, k.n = g->n, k.k = g->k;
	k.lda = g->lda, k.ldb = g->ldb, k.ldd = g->ldd;
	k.prec = prec, k.bias = g->bias != NULL;
	k.align_a = align_of(g->a), k.align_b = align_of(g->b), k.align_d = align_of(g->d);
	return k;
}

/* The cached heuristic answer for g, or NULL; caller holds handle_lock. */
static const struct lt_entry *cache_find(const struct lt_key *k)
{
	for (int i = 0; i < LT_CACHE_SIZE; i++)
		if (lt_cache[i].used && !memcmp(&lt_cache[i].key, k, sizeof(*k)))
			return &lt_cache[i];
	return NULL;
}

/* Asks the heuristic for c's best algorithm and caches the answer. Any
 * status but success with an algorithm (CUBLAS_STATUS_NOT_SUPPORTED for a
 * configuration without one, or another refusal) is cached as "none", so
 * such GEMMs take the cublasGemmEx fallback instead of failing. */
static const struct lt_entry *cache_fill(cublasLtHandle_t lt, const struct lt_call *c,
					 const struct lt_key *k)
{
	struct lt_entry e = {};
	unsigned slot;
	int found = 0;
	cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, c->desc, c->la, c->lb, c->ld, c->ld,
							   c->pref, 1, &e.heur, &found);

	e.key = *k;
	e.used = true;
	e.found = st == CUBLAS_STATUS_SUCCESS && found > 0 &&
		  e.heur.state == CUBLAS_STATUS_SUCCESS && e.heur.workspaceSize <= LT_WORKSPACE;
	slot = lt_cache_next;
	lt_cache[slot] = e;
	lt_cache_next = (slot + 1) % LT_CACHE_SIZE;
	return &lt_cache[slot];
}

/* Queues g through cuBLASLt. *done is false (and nothing is queued) when the
 * heuristic has no algorithm for these shapes and alignments. */
static llm_err lt_gemm(cublasLtHandle_t lt, const struct gemm *g, enum llm_matmul_precision prec,
		       const char *fn, cudaStream_t stream, bool *done)
{
	struct lt_call c = {};
	struct lt_key k = key_of(g, prec);
	const struct lt_entry *e = cache_find(&k);
	cublasStatus_t st;
	llm_err err = LLM_OK;

	*done = false;
	if (e && !e->found)
		return LLM_OK; /* known: no algorithm, the caller falls back */
	st = lt_desc(&c, g, prec);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = lt_layouts(&c, g);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = lt_pref(&c, g);
	if (st != CUBLAS_STATUS_SUCCESS) {
		err = cuda_cublas_fail(fn, "setting up the cuBLASLt descriptors", st);
		goto out_free;
	}
	if (!e)
		e = cache_fill(lt, &c, &k);
	if (!e->found)
		goto out_free; /* the caller falls back */
	err = lt_run(lt, &c, g, &e->heur, fn, stream);
	*done = err == LLM_OK;
out_free:
	lt_free(&c);
	return err;
}

/* The fallback: cublasGemmEx in the same compute type, then the bias by a
 * kernel. The caller holds the handle (bound to stream). */
static llm_err gemmex(cublasHandle_t h, const struct gemm *g, enum llm_matmul_precision prec,
		      const char *fn, cudaStream_t stream)
{
	const float alpha = 1.0f;
	cublasStatus_t st;
	dim3 grid;

	st = cublasGemmEx(h, g->ta, g->tb, g->m, g->n, g->k, &alpha, g->a, CUDA_R_32F, g->lda, g->b,
			  CUDA_R_32F, g->ldb, &g->beta, g->d, CUDA_R_32F, g->ldd,
			  compute_type(prec), CUBLAS_GEMM_DEFAULT);
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail(fn, "cublasGemmEx", st);
	if (!g->bias)
		return LLM_OK;
	/* D is column-major m x n: row-major (n, m), bias over the m columns */
	grid.x = (unsigned)ceil_div((size_t)g->m, LLMOPS_BLOCK);
	grid.y = g->n < BIAS_MAX_GRID_Y ? (unsigned)g->n : BIAS_MAX_GRID_Y;
	add_bias_kernel<<<grid, LLMOPS_BLOCK, 0, stream>>>(g->d, g->bias, g->n, g->m);
	return cuda_check_launch(fn, "add_bias_kernel");
}

/* Queues the GEMMs g[0, n) (NULL d skipped) on the shared handles, each
 * through cuBLASLt or, where it has no algorithm, cublasGemmEx. A bias is
 * fused only when 16-byte aligned (the epilogue's vector loads); otherwise
 * the fallback's bias kernel adds it. */
static llm_err run_gemms(struct gemm *g, int n, enum llm_matmul_precision prec, const char *fn,
			 cudaStream_t stream)
{
	cublasHandle_t h;
	llm_err err = cuda_cublas_acquire(fn, stream, &h);
	bool done;

	if (err)
		return err;
	for (int i = 0; i < n && !err; i++) {
		if (!g[i].d)
			continue;
		done = false;
		if (!g[i].bias || align_of(g[i].bias) >= 16)
			err = lt_gemm(lt_handle, &g[i], prec, fn, stream, &done);
		if (!err && !done)
			err = gemmex(h, &g[i], prec, fn, stream);
	}
	cuda_cublas_release();
	return err;
}

/* ---- launchers ---- */

static bool bad_precision(enum llm_matmul_precision prec)
{
	return prec != LLM_MATMUL_FP32 && prec != LLM_MATMUL_BF16;
}

/* Row-major out (BT,OC) = inp (BT,C) . weight (OC,C)^T. cuBLAS is column-major:
 * read that way the buffers hold weight^T (C x OC), inp^T (C x BT) and out^T
 * (OC x BT), and out^T = weight . inp^T, so A = weight with op T, B = inp with
 * op N, m = OC, n = BT, k = C, and the bias (OC) runs along m as the
 * epilogue wants (the same call as llm.c's matmul_forward). */
llm_err cuda_matmul_forward_prec(float *out, const float *inp, const float *weight,
				 const float *bias, int B, int T, int C, int OC,
				 enum llm_matmul_precision prec, void *stream)
{
	long long BT = (long long)B * T;
	struct gemm g = {};

	if (!out || !inp || !weight || B < 1 || T < 1 || C < 1 || OC < 1 || BT > INT_MAX ||
	    bad_precision(prec))
		return llm_fail(LLM_EINVAL,
				"cuda_matmul_forward: B=%d T=%d C=%d OC=%d precision=%d out=%p "
				"inp=%p weight=%p",
				B, T, C, OC, (int)prec, (void *)out, (const void *)inp,
				(const void *)weight);
	g.ta = CUBLAS_OP_T, g.tb = CUBLAS_OP_N;
	g.m = OC, g.n = (int)BT, g.k = C;
	g.a = weight, g.lda = C;
	g.b = inp, g.ldb = C;
	g.d = out, g.ldd = OC;
	g.bias = bias;
	g.beta = 0.0f;
	return run_gemms(&g, 1, prec, "cuda_matmul_forward", (cudaStream_t)stream);
}

llm_err cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
			    int B, int T, int C, int OC, void *stream)
{
	return cuda_matmul_forward_prec(out, inp, weight, bias, B, T, C, OC, LLM_MATMUL_FP32,
					stream);
}

/* Column-major reading as in the forward: dinp^T (C x BT) += weight^T
 * (C x OC) . dout^T (OC x BT) is (N, N, m = C, n = BT, k = OC); dweight^T
 * (C x OC) += inp^T (C x BT) . dout (BT x OC) is (N, T, m = C, n = OC,
 * k = BT). Both with beta = 1. */
static void backward_gemms(struct gemm g[2], float *dinp, float *dweight, const float *dout,
			   const float *inp, const float *weight, int BT, int C, int OC)
{
	g[0].ta = CUBLAS_OP_N, g[0].tb = CUBLAS_OP_N;
	g[0].m = C, g[0].n = BT, g[0].k = OC;
	g[0].a = weight, g[0].lda = C;
	g[0].b = dout, g[0].ldb = OC;
	g[0].d = dinp, g[0].ldd = C;
	g[0].beta = 1.0f;
	g[1].ta = CUBLAS_OP_N, g[1].tb = CUBLAS_OP_T;
	g[1].m = C, g[1].n = OC, g[1].k = BT;
	g[1].a = inp, g[1].lda = C;
	g[1].b = dout, g[1].ldb = OC;
	g[1].d = dweight, g[1].ldd = C;
	g[1].beta = 1.0f;
}

llm_err cuda_matmul_backward_prec(float *dinp, float *dweight, float *dbias, const float *dout,
				  const float *inp, const float *weight, int B, int T, int C,
				  int OC, enum llm_matmul_precision prec, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	long long BT = (long long)B * T;
	struct gemm g[2] = {};
	llm_err err;

	if (!dout || (dinp && !weight) || (dweight && !inp) || B < 1 || T < 1 || C < 1 || OC < 1 ||
	    BT > INT_MAX || bad_precision(prec))
		return llm_fail(LLM_EINVAL,
				"cuda_matmul_backward: B=%d T=%d C=%d OC=%d precision=%d dout=%p "
				"inp=%p weight=%p",
				B, T, C, OC, (int)prec, (const void *)dout, (const void *)inp,
				(const void *)weight);
	if (dinp || dweight) {
		backward_gemms(g, dinp, dweight, dout, inp, weight, (int)BT, C, OC);
		err = run_gemms(g, 2, prec, "cuda_matmul_backward", s);
		if (err)
			return err;
	}
	if (!dbias)
		return LLM_OK;
	dbias_kernel<<<(unsigned)ceil_div((size_t)OC, 32), dim3(32, 32), 0, s>>>(dbias, dout,
										 (int)BT, OC);
	return cuda_check_launch("cuda_matmul_backward", "dbias_kernel");
}

llm_err cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			     const float *inp, const float *weight, int B, int T, int C, int OC,
			     void *stream)
{
	return cuda_matmul_backward_prec(dinp, dweight, dbias, dout, inp, weight, B, T, C, OC,
					 LLM_MATMUL_FP32, stream);
}

void cuda_kernels_free(void)
{
	std::lock_guard<std::mutex> guard(handle_lock);

	if (!handle)
		return;
	if (lt_ws) {
		cudaFree(lt_ws); /* waits for the GEMMs that use it */
		cudaEventDestroy(lt_ws_done);
		lt_ws = NULL;
	}
	memset(lt_cache, 0, sizeof(lt_cache)); /* algorithms belong to the handle */
	lt_cache_next = 0;
	cublasLtDestroy(lt_handle);
	cublasDestroy(handle);
	lt_handle = NULL;
	handle = NULL;
}
