/* CUDA scaled dot-product attention, forward and backward, fp32
 * (flash-attention style: nothing of size (T, Tk) is ever stored).
 *
 * Forward: one block per tile of ATT_BQ query rows of one (b, head), one warp
 * per query row. The block walks the visible keys in tiles of ATT_BK = 32:
 * the K and V tile of the row's kv head (grouped-query: head h reads kv head
 * h / (NH/NKV)) is staged in shared memory, lane j scores key j against the
 * row's query (held in shared memory), the tile maximum and sum come from
 * warp shuffles, and each lane keeps HS/32 output dimensions, rescaled by
 * exp(m_old - m_new) as in the online softmax. Causal rows see keys up to
 * their absolute position Tk - T + t, key_len cuts right padding, k and v
 * rows are Tcap apart (a KV cache). lse = m + log(l) is saved per row.
 *
 * Backward (FlashAttention-2 recomputation, atomics-free in two kernels):
 * D = rowsum(dout * out), P = exp(s - lse), dS = P (dP - D) scale.
 *   dk/dv: one block per (b, kv head, tile of ATT_BKB = 16 keys); the tile's
 *     K and V sit in shared memory, the block loops over every query head of
 *     the group and every chunk of 8 query rows that can see the tile,
 *     computes P and dS for 8 x 16 (query, key) pairs, then each thread
 *     accumulates its own dK/dV elements in registers over the 8 rows in a
 *     fixed order. Each block owns its key rows, so no two blocks write the
 *     same element.
 *   dq: one block per 8 query rows, one warp per row, as the forward pass.
 * Design limits: HS <= ATT_HSMAX = 128 (LLM_EINVAL above; GPT-2, BERT and
 * Llama use 64..128), fp32 CUDA cores rather than tensor cores, and heads of
 * one GQA group re-load the same K/V tiles in the forward pass. */
#include <cuda_runtime.h>

#include <limits.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

#define ATT_HSMAX   128		     /* largest head size */
#define ATT_DPL	    (ATT_HSMAX / 32) /* output dimensions per lane */
#define ATT_BQ	    8		     /* query rows (warps) per block */
#define ATT_BK	    32		     /* keys per tile (one per lane) */
#define ATT_BKB	    16		     /* keys per dk/dv block */
#define ATT_THREADS (32 * ATT_BQ)
#define ATT_ACC	    (ATT_BKB * ATT_HSMAX / ATT_THREADS) /* dk/dv elements per thread */

/* ---- kernels ---- */

/* Keys visible to query t of batch row b (see cpu_attention_forward). */
static __device__ __forceinline__ int visible_keys(int b, int t, const int *key_len, int causal,
						   int T, int Tk)
{
	int nk = causal ? Tk - T + t + 1 : Tk;

	if (key_len && key_len[b] < nk)
		nk = key_len[b];
	return nk < 0 ? 0 : nk;
}

/* Stages keys [j0, j0 + nrows) of kv head kvh (rows kstride floats apart,
 * starting at base) into Ks, Vs; rows at or past jmax are zeroed. */
static __device__ void load_kv_tile(float (*Ks)[ATT_HSMAX + 1], float (*Vs)[ATT_HSMAX + 1],
				    const float *k, const float *v, size_t base, size_t kstride,
				    int j0, int nrows, int jmax, int HS)
{
	for (int e = threadIdx.x; e < nrows * HS; e += blockDim.x) {
		int jj = e / HS, d = e % HS, j = j0 + jj;
		size_t off = base + (size_t)j * kstride + d;

		Ks[jj][d] = j < jmax ? k[off] : 0.0f;
		Vs[jj][d] = j < jmax ? v[off] : 0.0f;
	}
}

/* grid (ceil(T/ATT_BQ), NH, B), ATT_THREADS threads */
static __global__ void __launch_bounds__(ATT_THREADS)
	attention_forward_kernel(float *out, float *lse, const float *q, const float *k,
				 const float *v, const int *key_len, int causal, int T, int Tk,
				 int Tcap, int NH, int NKV, int HS, float scale)
{
	__shared__ float Ks[ATT_BK][ATT_HSMAX + 1], Vs[ATT_BK][ATT_HSMAX + 1];
	__shared__ float Qs[ATT_BQ][ATT_HSMAX];
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	int h = blockIdx.y, b = blockIdx.z, t0 = blockIdx.x * ATT_BQ, t = t0 + warp;
	int last = t0 + ATT_BQ - 1 < T - 1 ? t0 + ATT_BQ - 1 : T - 1;
	/* visible keys never decrease with t, so the last row sees the most */
	int maxnk = visible_keys(b, last, key_len, causal, T, Tk);
	int nk = t < T ? visible_keys(b, t, key_len, causal, T, Tk) : 0;
	size_t kstride = (size_t)NKV * HS;
	size_t kbase = (size_t)b * Tcap * kstride + (size_t)(h / (NH / NKV)) * HS;
	size_t qoff = (((size_t)b * T + (t < T ? t : 0)) * NH + h) * HS;
	float o[ATT_DPL] = {0.0f}, m = -INFINITY, l = 0.0f;

	for (int d = lane; d < HS; d += 32)
		Qs[warp][d] = t < T ? q[qoff + d] : 0.0f;
	for (int j0 = 0; j0 < maxnk; j0 += ATT_BK) {
		__syncthreads(); /* Qs written / previous tile consumed */
		load_kv_tile(Ks, Vs, k, v, kbase, kstride, j0, ATT_BK, maxnk, HS);
		__syncthreads();
		if (j0 >= nk) /* warp-uniform */
			continue;
		float sc = -INFINITY;
		if (j0 + lane < nk) {
			float acc = 0.0f;

			for (int d = 0; d < HS; d++)
				acc += Qs[warp][d] * Ks[lane][d];
			sc = acc * scale;
		}
		float mnew = fmaxf(m, warp_max(sc));
		float corr = expf(m - mnew); /* 0 on the row's first tile */
		float p = j0 + lane < nk ? expf(sc - mnew) : 0.0f;
		int nvalid = nk - j0 < ATT_BK ? nk - j0 : ATT_BK;

		l = l * corr + warp_sum(p);
#pragma unroll
		for (int i = 0; i < ATT_DPL; i++)
			o[i] *= corr;
		for (int jj = 0; jj < nvalid; jj++) {
			float pj = __shfl_sync(FULL_MASK, p, jj);

#pragma unroll
			for (int i = 0; i < ATT_DPL; i++)
				if (lane + 32 * i < HS)
					o[i] += pj * Vs[jj][lane + 32 * i];
		}
		m = mnew;
	}
	if (t >= T)
		return;
	float inv = nk > 0 ? 1.0f / l : 0.0f;
#pragma unroll
	for (int i = 0; i < ATT_DPL; i++)
		if (lane + 32 * i < HS)
			out[qoff + lane + 32 * i] = o[i] * inv;
	if (lse && lane == 0)
		lse[((size_t)b * NH + h) * T + t] = nk > 0 ? m + logf(l) : -INFINITY;
}

/* One query row's backward inputs staged by its warp: q and dout into Qs,
 * Gs; returns D = dot(dout, out) on every lane. Rows at or past T give
 * zeros. */
static __device__ float stage_query_row(float *Qs, float *Gs, const float *q, const float *dout,
					const float *out, size_t off, bool ok, int HS)
{
	float dp = 0.0f;

	for (int d = threadIdx.x % 32; d < HS; d += 32) {
		float g = ok ? dout[off + d] : 0.0f;

		Qs[d] = ok ? q[off + d] : 0.0f;
		Gs[d] = g;
		dp += ok ? g * out[off + d] : 0.0f;
	}
	return warp_sum(dp);
}

/* grid (ceil(T/ATT_BKB), NKV, B), ATT_THREADS threads; see the file comment */
static __global__ void __launch_bounds__(ATT_THREADS)
	attention_dkdv_kernel(float *dk, float *dv, const float *dout, const float *q,
			      const float *k, const float *v, const float *out, const float *lse,
			      int causal, int T, int NH, int NKV, int HS, float scale)
{
	__shared__ float Ks[ATT_BKB][ATT_HSMAX + 1], Vs[ATT_BKB][ATT_HSMAX + 1];
	__shared__ float Qs[ATT_BQ][ATT_HSMAX], Gs[ATT_BQ][ATT_HSMAX];
	__shared__ float Ps[ATT_BQ][ATT_BKB], Ss[ATT_BQ][ATT_BKB];
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32, jj = lane % ATT_BKB;
	int half = lane / ATT_BKB, kvh = blockIdx.y, b = blockIdx.z, j0 = blockIdx.x * ATT_BKB;
	int group = NH / NKV;
	size_t kstride = (size_t)NKV * HS, kbase = (size_t)b * T * kstride + (size_t)kvh * HS;
	float adk[ATT_ACC] = {0.0f}, adv[ATT_ACC] = {0.0f};

	load_kv_tile(Ks, Vs, k, v, kbase, kstride, j0, ATT_BKB, T, HS);
	for (int h = kvh * group; h < (kvh + 1) * group; h++) {
		for (int t0 = causal ? j0 / ATT_BQ * ATT_BQ : 0; t0 < T; t0 += ATT_BQ) {
			int t = t0 + warp, nk = t < T ? (causal ? t + 1 : T) : 0;
			size_t off = (((size_t)b * T + (t < T ? t : 0)) * NH + h) * HS;

			__syncthreads(); /* K/V loaded, previous chunk consumed */
			float D = stage_query_row(Qs[warp], Gs[warp], q, dout, out, off, t < T, HS);
			float L = t < T ? lse[((size_t)b * NH + h) * T + t] : 0.0f;
			__syncwarp();
			float s = 0.0f, dp = 0.0f;
			for (int d = half; d < HS; d += 2) {
				s += Qs[warp][d] * Ks[jj][d];
				dp += Gs[warp][d] * Vs[jj][d];
			}
			s += __shfl_xor_sync(FULL_MASK, s, ATT_BKB);
			dp += __shfl_xor_sync(FULL_MASK, dp, ATT_BKB);
			bool sees = j0 + jj < nk;
			float p = sees ? expf(s * scale - L) : 0.0f;
			if (half == 0) {
				Ps[warp][jj] = p;
				Ss[warp][jj] = sees ? p * (dp - D) * scale : 0.0f;
			}
			__syncthreads();
#pragma unroll
			for (int r = 0; r < ATT_ACC; r++) {
				int e = threadIdx.x + r * ATT_THREADS, kj = e / HS, d = e % HS;

				if (e >= ATT_BKB * HS)
					break;
				for (int w = 0; w < ATT_BQ; w++) {
					adv[r] += Ps[w][kj] * Gs[w][d];
					adk[r] += Ss[w][kj] * Qs[w][d];
				}
			}
		}
	}
#pragma unroll
	for (int r = 0; r < ATT_ACC; r++) {
		int e = threadIdx.x + r * ATT_THREADS, kj = e / HS, d = e % HS;
		size_t off = kbase + (size_t)(j0 + kj) * kstride + d;

		if (e >= ATT_BKB * HS || j0 + kj >= T)
			break;
		if (dk)
			dk[off] += adk[r];
		if (dv)
			dv[off] += adv[r];
	}
}

/* grid (ceil(T/ATT_BQ), NH, B), ATT_THREADS threads: dq of one query row per
 * warp, dq += scale * sum_j dS_j k_j over the row's visible keys */
static __global__ void __launch_bounds__(ATT_THREADS)
	attention_dq_kernel(float *dq, const float *dout, const float *q, const float *k,
			    const float *v, const float *out, const float *lse, int causal, int T,
			    int NH, int NKV, int HS, float scale)
{
	__shared__ float Ks[ATT_BK][ATT_HSMAX + 1], Vs[ATT_BK][ATT_HSMAX + 1];
	__shared__ float Qs[ATT_BQ][ATT_HSMAX], Gs[ATT_BQ][ATT_HSMAX];
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	int h = blockIdx.y, b = blockIdx.z, t0 = blockIdx.x * ATT_BQ, t = t0 + warp;
	int nk = t < T ? (causal ? t + 1 : T) : 0;
	int maxnk = causal ? (t0 + ATT_BQ < T ? t0 + ATT_BQ : T) : T;
	size_t kstride = (size_t)NKV * HS;
	size_t kbase = (size_t)b * T * kstride + (size_t)(h / (NH / NKV)) * HS;
	size_t off = (((size_t)b * T + (t < T ? t : 0)) * NH + h) * HS;
	float D = stage_query_row(Qs[warp], Gs[warp], q, dout, out, off, t < T, HS);
	float L = t < T ? lse[((size_t)b * NH + h) * T + t] : 0.0f;
	float acc[ATT_DPL] = {0.0f};

	for (int j0 = 0; j0 < maxnk; j0 += ATT_BK) {
		__syncthreads();
		load_kv_tile(Ks, Vs, k, v, kbase, kstride, j0, ATT_BK, maxnk, HS);
		__syncthreads();
		if (j0 >= nk)
			continue;
		float ds = 0.0f;
		if (j0 + lane < nk) {
			float s = 0.0f, dp = 0.0f;

			for (int d = 0; d < HS; d++) {
				s += Qs[warp][d] * Ks[lane][d];
				dp += Gs[warp][d] * Vs[lane][d];
			}
			ds = expf(s * scale - L) * (dp - D) * scale;
		}
		int nvalid = nk - j0 < ATT_BK ? nk - j0 : ATT_BK;
		for (int jj = 0; jj < nvalid; jj++) {
			float dsj = __shfl_sync(FULL_MASK, ds, jj);

#pragma unroll
			for (int i = 0; i < ATT_DPL; i++)
				if (lane + 32 * i < HS)
					acc[i] += dsj * Ks[jj][lane + 32 * i];
		}
	}
	if (t >= T)
		return;
#pragma unroll
	for (int i = 0; i < ATT_DPL; i++)
		if (lane + 32 * i < HS)
			dq[off + lane + 32 * i] += acc[i];
}

/* ---- launchers ---- */

static bool heads_ok(int B, int NH, int NKV, int HS)
{
	return B >= 1 && B <= 65535 && NH >= 1 && NH <= 65535 && NKV >= 1 && NH % NKV == 0 &&
	       HS >= 1 && HS <= ATT_HSMAX;
}

llm_err cuda_attention_forward(float *out, float *lse, const float *q, const float *k,
			       const float *v, const int *key_len, int causal, int B, int T, int Tk,
			       int Tcap, int NH, int NKV, int HS, void *stream)
{
	dim3 grid;

	if (!out || !q || !k || !v || !heads_ok(B, NH, NKV, HS) || T < 1 || Tk < 1 || Tcap < Tk ||
	    (causal && Tk < T))
		return llm_fail(LLM_EINVAL,
				"cuda_attention_forward: B=%d T=%d Tk=%d Tcap=%d NH=%d NKV=%d "
				"HS=%d causal=%d (HS <= %d)",
				B, T, Tk, Tcap, NH, NKV, HS, causal, ATT_HSMAX);
	grid = dim3((unsigned)ceil_div((size_t)T, ATT_BQ), (unsigned)NH, (unsigned)B);
	attention_forward_kernel<<<grid, ATT_THREADS, 0, (cudaStream_t)stream>>>(
		out, lse, q, k, v, key_len, causal, T, Tk, Tcap, NH, NKV, HS,
		1.0f / sqrtf((float)HS));
	return cuda_check_launch("cuda_attention_forward", "attention_forward_kernel");
}

llm_err cuda_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
				const float *k, const float *v, const float *out, const float *lse,
				int causal, int B, int T, int NH, int NKV, int HS, void *stream)
{
	const char *fn = "cuda_attention_backward";
	cudaStream_t s = (cudaStream_t)stream;
	float scale = 1.0f / sqrtf((float)HS);
	llm_err err;

	if (!dout || !q || !k || !v || !out || !lse || !heads_ok(B, NH, NKV, HS) || T < 1)
		return llm_fail(LLM_EINVAL, "%s: B=%d T=%d NH=%d NKV=%d HS=%d (HS <= %d)", fn, B, T,
				NH, NKV, HS, ATT_HSMAX);
	if (dk || dv) {
		dim3 grid((unsigned)ceil_div((size_t)T, ATT_BKB), (unsigned)NKV, (unsigned)B);

		attention_dkdv_kernel<<<grid, ATT_THREADS, 0, s>>>(dk, dv, dout, q, k, v, out, lse,
								   causal, T, NH, NKV, HS, scale);
		if ((err = cuda_check_launch(fn, "attention_dkdv_kernel")))
			return err;
	}
	if (!dq)
		return LLM_OK;
	dim3 grid((unsigned)ceil_div((size_t)T, ATT_BQ), (unsigned)NH, (unsigned)B);
	attention_dq_kernel<<<grid, ATT_THREADS, 0, s>>>(dq, dout, q, k, v, out, lse, causal, T, NH,
							 NKV, HS, scale);
	return cuda_check_launch(fn, "attention_dq_kernel");
}
