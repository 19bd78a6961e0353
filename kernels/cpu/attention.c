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
/* query rows scored together by one forward task (they share key loads) */
#define ATT_QT 4
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

/* Online-softmax state of one query row: running maximum and sum. */
struct row_state {
	float m, l;
};

/* s (nr,ATT_BLOCK) = scale * scores of nr <= ATT_QT query rows (qstride
 * apart) against keys k[0, n) (kstride apart). A full tile shares each key
 * load between four rows with four independent accumulators. */
static void tile_scores(float s[][ATT_BLOCK], const float *q, size_t qstride, int nr,
			const float *k, size_t kstride, int n, int HS, float scale)
{
	const float *q0 = q, *q1 = q + qstride, *q2 = q1 + qstride, *q3 = q2 + qstride;

	for (int jj = 0; jj < n; jj++) {
		const float *kj = k + jj * kstride;

		if (nr < ATT_QT) {
			for (int r = 0; r < nr; r++)
				s[r][jj] = dotf(q + r * qstride, kj, HS) * scale;
			continue;
		}
		float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
		for (int i = 0; i < HS; i++) {
			a0 += q0[i] * kj[i];
			a1 += q1[i] * kj[i];
			a2 += q2[i] * kj[i];
			a3 += q3[i] * kj[i];
		}
		s[0][jj] = a0 * scale, s[1][jj] = a1 * scale;
		s[2][jj] = a2 * scale, s[3][jj] = a3 * scale;
	}
}

/* Folds one block of n scores s (n) with values v[0, n) (kstride apart) into
 * a row's state and its unnormalised output o (HS). */
static void online_update(float *o, struct row_state *st, const float *s, const float *v,
			  size_t kstride, int n, int HS)
{
	float bm = -INFINITY;

	if (n <= 0)
		return;
	for (int jj = 0; jj < n; jj++)
		bm = s[jj] > bm ? s[jj] : bm;
	float mnew = bm > st->m ? bm : st->m;
	float corr = expf(st->m - mnew); /* 0 on the row's first block */

	st->l *= corr;
	for (int jj = 0; jj < n; jj++) {
		float p = expf(s[jj] - mnew);

		st->l += p;
		axpby(o, jj == 0 ? corr : 1.0f, p, v + jj * kstride, HS);
	}
	st->m = mnew;
}

/* nr consecutive query rows of one head: row r (q and o rows qstride apart)
 * sees keys [0, nk[r]) of k, v (kstride apart). Writes o and, if lse is not
 * NULL, lse[r] (-inf and o = 0 for a row that sees no key). */
static void attn_tile(float *o, float *lse, const float *q, size_t qstride, const float *k,
		      const float *v, size_t kstride, const int *nk, int nr, int HS, float scale)
{
	float s[ATT_QT][ATT_BLOCK];
	struct row_state st[ATT_QT];
	int maxnk = 0;

	for (int r = 0; r < nr; r++) {
		st[r].m = -INFINITY, st[r].l = 0.0f;
		maxnk = nk[r] > maxnk ? nk[r] : maxnk;
		for (int i = 0; i < HS; i++)
			o[r * qstride + i] = 0.0f;
	}
	for (int j0 = 0; j0 < maxnk; j0 += ATT_BLOCK) {
		int n = maxnk - j0 < ATT_BLOCK ? maxnk - j0 : ATT_BLOCK;

		tile_scores(s, q, qstride, nr, k + j0 * kstride, kstride, n, HS, scale);
		for (int r = 0; r < nr; r++)
			online_update(o + r * qstride, &st[r], s[r], v + j0 * kstride, kstride,
				      nk[r] - j0 < n ? nk[r] - j0 : n, HS);
	}
	for (int r = 0; r < nr; r++) {
		float inv = nk[r] > 0 ? 1.0f / st[r].l : 0.0f;

		for (int i = 0; i < HS; i++)
			o[r * qstride + i] *= inv;
		if (lse)
			lse[r] = nk[r] > 0 ? st[r].m + logf(st[r].l) : -INFINITY;
	}
}

/* out, q (B,T,NH,HS); k, v (B,Tcap,NKV,HS) valid in [0,Tk); lse (B,NH,T) or
 * NULL; key_len (B) or NULL. One task per tile of ATT_QT consecutive query
 * rows of one (b, h). */
void cpu_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
			   const int *key_len, int causal, int B, int T, int Tk, int Tcap, int NH,
			   int NKV, int HS)
{
	int ntile = (T + ATT_QT - 1) / ATT_QT, group = NH / NKV;
	long tasks = (long)B * NH * ntile;
	size_t kstride = (size_t)NKV * HS, qstride = (size_t)NH * HS;
	float scale = 1.0f / sqrtf((float)HS);

#pragma omp parallel for schedule(dynamic, 2) if ((long)B * NH * T >= ATT_PAR_MIN)
	for (long r = 0; r < tasks; r++) {
		int h = (int)(r / ntile % NH), b = (int)(r / ntile / NH);
		int t0 = (int)(r % ntile) * ATT_QT, nr = T - t0 < ATT_QT ? T - t0 : ATT_QT;
		size_t qoff = (((size_t)b * T + t0) * NH + h) * HS;
		size_t koff = (size_t)b * Tcap * kstride + (size_t)(h / group) * HS;
		int nk[ATT_QT];

		for (int i = 0; i < nr; i++)
			nk[i] = visible_keys(b, t0 + i, key_len, causal, T, Tk);
		attn_tile(out + qoff, lse ? lse + ((size_t)b * NH + h) * T + t0 : NULL, q + qoff,
			  qstride, k + koff, v + koff, kstride, nk, nr, HS, scale);
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
