/* CPU scaled dot-product attention, forward and backward, fp32.
 *
 * Flash-attention style: each query row walks the keys in blocks of
 * ATT_BLOCK, keeping a running maximum m, a running sum l and an unnormalised
 * output accumulator (held in the output row itself), rescaled by
 * exp(m_old - m_new) whenever a block raises the maximum. Live memory is one
 * block of scores per thread, so nothing of size (T,Tk) ever exists. The
 * forward pass saves lse = m + log(l) per row.
 *
 * Backward (FlashAttention-2): probabilities are recomputed from q, k and
 * lse; D = rowsum(dout * out); dS = P * (dP - D). To stay race-free without
 * atomics it runs two passes: dk and dv split over (batch, kv head, key
 * block), where each task owns its key rows and loops over every query head
 * of the group; dq split over query rows. Design limit: the two passes
 * recompute scores twice (about 7 instead of 5 dot-product sweeps), the price
 * of deterministic sums and parallelism that does not depend on NKV. */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* keys per block of the online softmax */
#define ATT_BLOCK 64
/* below this many query rows the kernels run on one thread */
#define ATT_PAR_MIN 16

static inline float dotf(const float *a, const float *b, int n)
{
	float s = 0.0f;

#pragma omp simd reduction(+ : s)
	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* y (n) = y * a + p * x, the accumulator update of the online softmax */
static inline void axpby(float *y, float a, float p, const float *x, int n)
{
#pragma omp simd
	for (int i = 0; i < n; i++)
		y[i] = y[i] * a + p * x[i];
}

/* Keys visible to query t of batch row b: causal rows see up to their own
 * absolute position Tk - T + t, key_len cuts the right padding. */
static int visible_keys(int b, int t, const int *key_len, int causal, int T, int Tk)
{
	int nk = causal ? Tk - T + t + 1 : Tk;

	if (key_len && key_len[b] < nk)
		nk = key_len[b];
	return nk < 0 ? 0 : nk;
}

/* One query row against keys [0, nk): o (HS) = softmax(q . k^T * scale) . v.
 * k and v point at key 0 of this kv head; consecutive keys are kstride floats
 * apart. Returns the row's log-sum-exp (-inf when nk == 0, o = 0). */
static float attn_row(float *o, const float *q, const float *k, const float *v, int nk,
		      size_t kstride, int HS, float scale)
{
	float s[ATT_BLOCK];
	float m = -INFINITY, l = 0.0f;

	for (int i = 0; i < HS; i++)
		o[i] = 0.0f;
	for (int j0 = 0; j0 < nk; j0 += ATT_BLOCK) {
		int n = nk - j0 < ATT_BLOCK ? nk - j0 : ATT_BLOCK;
		float bm = -INFINITY;

		for (int jj = 0; jj < n; jj++) {
			s[jj] = dotf(q, k + (j0 + jj) * kstride, HS) * scale;
			bm = s[jj] > bm ? s[jj] : bm;
		}
		float mnew = bm > m ? bm : m;
		float corr = expf(m - mnew); /* 0 on the first block */

		l *= corr;
		for (int jj = 0; jj < n; jj++) {
			float p = expf(s[jj] - mnew);

			l += p;
			axpby(o, jj == 0 ? corr : 1.0f, p, v + (j0 + jj) * kstride, HS);
		}
		m = mnew;
	}
	if (nk == 0)
		return -INFINITY;
	float inv = 1.0f / l;
	for (int i = 0; i < HS; i++)
		o[i] *= inv;
	return m + logf(l);
}

/* out, q (B,T,NH,HS); k, v (B,Tcap,NKV,HS) valid in [0,Tk); lse (B,NH,T) or
 * NULL; key_len (B) or NULL. One task per (b, h, t) query row. */
void cpu_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
			   const int *key_len, int causal, int B, int T, int Tk, int Tcap, int NH,
			   int NKV, int HS)
{
	long rows = (long)B * NH * T;
	int group = NH / NKV;
	size_t kstride = (size_t)NKV * HS;
	float scale = 1.0f / sqrtf((float)HS);

#pragma omp parallel for schedule(dynamic, 8) if (rows >= ATT_PAR_MIN)
	for (long r = 0; r < rows; r++) {
		int t = (int)(r % T), h = (int)(r / T % NH), b = (int)(r / T / NH);
		size_t qoff = (((size_t)b * T + t) * NH + h) * HS;
		size_t koff = (size_t)b * Tcap * kstride + (size_t)(h / group) * HS;
		int nk = visible_keys(b, t, key_len, causal, T, Tk);
		float l =
			attn_row(out + qoff, q + qoff, k + koff, v + koff, nk, kstride, HS, scale);

		if (lse)
			lse[((size_t)b * NH + h) * T + t] = l;
	}
}

/* Shapes and strides shared by the two backward passes. */
struct attn_dims {
	int B, T, NH, NKV, HS, causal;
	float scale;
};

/* dk, dv rows [j0, j1) of kv head kvh, batch b: accumulates over every query
 * head of the group and every query row that sees those keys. */
static void attn_dkdv_block(float *dk, float *dv, const float *dout, const float *q, const float *k,
			    const float *v, const float *out, const float *lse,
			    const struct attn_dims *d, int b, int kvh, int j0, int j1)
{
	int T = d->T, NH = d->NH, HS = d->HS, group = NH / d->NKV;
	size_t kstride = (size_t)d->NKV * HS, qstride = (size_t)NH * HS;
	size_t kbase = (size_t)b * T * kstride + (size_t)kvh * HS;

	for (int h = kvh * group; h < (kvh + 1) * group; h++) {
		size_t qbase = (size_t)b * T * qstride + (size_t)h * HS;

		for (int t = d->causal ? j0 : 0; t < T; t++) {
			const float *qt = q + qbase + t * qstride,
				    *dor = dout + qbase + t * qstride;
			float D = dotf(dor, out + qbase + t * qstride, HS);
			float L = lse[((size_t)b * NH + h) * T + t];
			int jend = d->causal && t + 1 < j1 ? t + 1 : j1;

			for (int j = j0; j < jend; j++) {
				size_t kj = kbase + j * kstride;
				float p = expf(dotf(qt, k + kj, HS) * d->scale - L);
				float ds = p * (dotf(dor, v + kj, HS) - D) * d->scale;

				if (dv)
					axpby(dv + kj, 1.0f, p, dor, HS);
				if (dk)
					axpby(dk + kj, 1.0f, ds, qt, HS);
			}
		}
	}
}

/* dq row t of head h, batch b: dq += scale * sum_j dS_j k_j. */
static void attn_dq_row(float *dq, const float *dout, const float *q, const float *k,
			const float *v, const float *out, const float *lse,
			const struct attn_dims *d, int b, int h, int t)
{
	int T = d->T, NH = d->NH, HS = d->HS;
	size_t kstride = (size_t)d->NKV * HS;
	size_t qoff = (((size_t)b * T + t) * NH + h) * HS;
	size_t kbase = (size_t)b * T * kstride + (size_t)(h / (NH / d->NKV)) * HS;
	const float *qt = q + qoff, *dor = dout + qoff;
	float D = dotf(dor, out + qoff, HS);
	float L = lse[((size_t)b * NH + h) * T + t];
	int nk = d->causal ? t + 1 : T;

	for (int j = 0; j < nk; j++) {
		size_t kj = kbase + j * kstride;
		float p = expf(dotf(qt, k + kj, HS) * d->scale - L);
		float ds = p * (dotf(dor, v + kj, HS) - D) * d->scale;

		axpby(dq + qoff, 1.0f, ds, k + kj, HS);
	}
}

/* Training backward (Tk == Tcap == T, no key_len). Accumulates dq
 * (B,T,NH,HS), dk and dv (B,T,NKV,HS); any may be NULL. */
void cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
			    const float *k, const float *v, const float *out, const float *lse,
			    int causal, int B, int T, int NH, int NKV, int HS)
{
	struct attn_dims d = {B, T, NH, NKV, HS, causal, 1.0f / sqrtf((float)HS)};
	int nblk = (T + ATT_BLOCK - 1) / ATT_BLOCK;
	long tasks = (long)B * NKV * nblk, rows = (long)B * NH * T;

	if (dk || dv) {
#pragma omp parallel for schedule(dynamic, 1) if (rows >= ATT_PAR_MIN)
		for (long r = 0; r < tasks; r++) {
			int blk = (int)(r % nblk), kvh = (int)(r / nblk % NKV);
			int b = (int)(r / nblk / NKV), j0 = blk * ATT_BLOCK;
			int j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T;

			attn_dkdv_block(dk, dv, dout, q, k, v, out, lse, &d, b, kvh, j0, j1);
		}
	}
	if (dq) {
#pragma omp parallel for schedule(dynamic, 8) if (rows >= ATT_PAR_MIN)
		for (long r = 0; r < rows; r++)
			attn_dq_row(dq, dout, q, k, v, out, lse, &d, (int)(r / T / NH),
				    (int)(r / T % NH), (int)(r % T));
	}
}
