/* CPU scaled dot-product attention, forward and backward, fp32.
 *
 * Flash-attention style: each query row walks the keys in blocks of
 * ATT_BLOCK, keeping a running maximum m, a running sum l and an unnormalised
 * output accumulator (held in the output row itself), rescaled by
 * exp(m_old - m_new) whenever a block raises the maximum. Live memory is one
 * block of scores per row of a tile, so nothing of size (T,Tk) ever exists.
 * The forward pass saves lse = m + log(l) per row. Rows are processed in
 * tiles of ATT_LANES consecutive queries held in the lanes of one vector
 * (the tile's q transposed), so a key's scores against the whole tile are
 * one multiply-add per head dimension and the softmax runs across lanes.
 *
 * Backward (FlashAttention-2): probabilities are recomputed from q, k and
 * lse; D = rowsum(dout * out); dS = P * (dP - D). To stay race-free without
 * atomics it runs two passes: dk and dv split over (batch, kv head, key
 * block), where each task owns its key rows and loops over every query head
 * of the group; dq split over query tiles. Design limit: the two passes
 * recompute scores twice (about 7 instead of 5 dot-product sweeps), the price
 * of deterministic sums and parallelism that does not depend on NKV. */
#include "llmops_kernels.h"
#include "vmath.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* keys per block of the online softmax */
#define ATT_BLOCK 64
/* below this many query rows the kernels run on one thread */
#define ATT_PAR_MIN 16

VM_INLINE float dotf(const float *a, const float *b, int n)
{
	float s = 0.0f;

#pragma omp simd reduction(+ : s)
	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* y (n) += sum over r of c[r] * rows[r] (n) */
VM_INLINE void axpy4(float *y, const float *c, const float *const *rows, int n)
{
	const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];

#pragma omp simd
	for (int i = 0; i < n; i++)
		y[i] += c[0] * r0[i] + c[1] * r1[i] + c[2] * r2[i] + c[3] * r3[i];
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

/* Forward tiles hold ATT_LANES query rows in the lanes of one vector: the
 * scores of a key against all of them are one multiply-add per head
 * dimension, with no horizontal sum. */
#define ATT_LANES 8
/* head dimensions transposed at a time for the lane layout */
#define ATT_HSC 64
/* output dimensions accumulated at a time (a stack array of this many
 * vectors) */
#define ATT_HS_MAX 256

typedef float att_vec __attribute__((vector_size(ATT_LANES * sizeof(float))));

/* s[0..7] (lanes r) += sum over i < n of x_k[i * xinc] * rt[i][r] for the
 * eight vectors x_k = x + k * xstride: one load of rt feeds eight
 * independent accumulators, enough to hide the add latency. Scores: x_k
 * are keys (xinc 1); P.V: x_k are value columns (xstride 1, xinc the key
 * stride) and rt the probabilities. */
VM_INLINE void lane_dot8(att_vec *s, const att_vec *rt, const float *x, size_t xstride, size_t xinc,
			 int n)
{
	const float *x0 = x, *x1 = x + xstride, *x2 = x + 2 * xstride, *x3 = x + 3 * xstride;
	const float *x4 = x + 4 * xstride, *x5 = x + 5 * xstride, *x6 = x + 6 * xstride;
	const float *x7 = x + 7 * xstride;
	att_vec a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3];
	att_vec a4 = s[4], a5 = s[5], a6 = s[6], a7 = s[7];

	for (int i = 0; i < n; i++) {
		att_vec r = rt[i];
		size_t e = i * xinc;

		a0 += x0[e] * r;
		a1 += x1[e] * r;
		a2 += x2[e] * r;
		a3 += x3[e] * r;
		a4 += x4[e] * r;
		a5 += x5[e] * r;
		a6 += x6[e] * r;
		a7 += x7[e] * r;
	}
	s[0] = a0, s[1] = a1, s[2] = a2, s[3] = a3;
	s[4] = a4, s[5] = a5, s[6] = a6, s[7] = a7;
}

/* s[j] (lanes r) = scale * dot(rows[r], key j) for keys j < n of x (xstride
 * apart), over HS dimensions. */
VM_INLINE void lane_scores(att_vec *s, const float *const *rows, const float *x, size_t xstride,
			   int n, int HS, float scale)
{
	att_vec rt[ATT_HSC];

	for (int j = 0; j < n; j++)
		s[j] = (att_vec){0};
	for (int i0 = 0; i0 < HS; i0 += ATT_HSC) {
		int ni = HS - i0 < ATT_HSC ? HS - i0 : ATT_HSC;

		for (int i = 0; i < ni; i++)
			for (int r = 0; r < ATT_LANES; r++)
				rt[i][r] = rows[r][i0 + i];
		int j = 0;

		for (; j + 8 <= n; j += 8)
			lane_dot8(s + j, rt, x + j * xstride + i0, xstride, 1, ni);
		for (; j < n; j++) {
			const float *xj = x + j * xstride + i0;
			att_vec acc = s[j];

			for (int i = 0; i < ni; i++)
				acc += xj[i] * rt[i];
			s[j] = acc;
		}
	}
	for (int j = 0; j < n; j++)
		s[j] *= scale;
}

/* Online-softmax state of a tile, one lane per query row: running maximum
 * m, running sum l. */
struct lane_state {
	float m[ATT_LANES];
	att_vec l;
};

/* Folds a block of n scores s (n lanes-vectors, -inf where a row does not
 * see the key) into the state: s becomes the probabilities exp(s - m'),
 * *corr receives exp(m - m'), by which each row's accumulator is rescaled.
 * A row that has seen no key yet keeps m = -inf and gets zeros. */
VM_INLINE void lane_softmax(att_vec *s, att_vec *corr, struct lane_state *st, int n)
{
	float *f = (float *)s, *m = st->m;
	float bm[ATT_LANES], base[ATT_LANES], c[ATT_LANES];
	att_vec sum = {0};

	for (int r = 0; r < ATT_LANES; r++)
		bm[r] = m[r];
	for (int j = 0; j < n; j++)
#pragma omp simd
		for (int r = 0; r < ATT_LANES; r++)
			bm[r] = vm_select(f[j * ATT_LANES + r] > bm[r], f[j * ATT_LANES + r],
					  bm[r]);
#pragma omp simd
	for (int r = 0; r < ATT_LANES; r++) {
		base[r] = vm_select(bm[r] == -INFINITY, 0.0f, bm[r]);
		c[r] = vm_expf(m[r] - base[r]);
		m[r] = bm[r];
	}
	for (int j = 0; j < n; j++) {
#pragma omp simd
		for (int r = 0; r < ATT_LANES; r++)
			f[j * ATT_LANES + r] = vm_expf(f[j * ATT_LANES + r] - base[r]);
		sum += s[j];
	}
	memcpy(corr, c, sizeof(*corr));
	st->l = st->l * *corr + sum;
}

/* Sets s[j] (lanes r) to -inf where key j0 + j is not below lim[r], the
 * number of keys row r sees. */
VM_INLINE void lane_mask(att_vec *s, const int *lim, int j0, int n)
{
	float *f = (float *)s;

	for (int j = 0; j < n; j++)
#pragma omp simd
		for (int r = 0; r < ATT_LANES; r++)
			f[j * ATT_LANES + r] =
				vm_select(j0 + j < lim[r], f[j * ATT_LANES + r], -INFINITY);
}

/* acc[i] (lanes r) += sum over keys j < n of v_j[i] * p[j][r] for the nd
 * value dimensions i (rows v_j kstride apart). */
VM_INLINE void lane_pv(att_vec *acc, const att_vec *p, const float *v, size_t kstride, int n,
		       int nd)
{
	int i = 0;

	for (; i + 8 <= nd; i += 8)
		lane_dot8(acc + i, p, v + i, 1, kstride, n);
	for (; i < nd; i++)
		for (int j = 0; j < n; j++)
			acc[i] += v[j * kstride + i] * p[j];
}

/* Output dimensions [d0, d0 + nd) of nr <= ATT_LANES consecutive query rows
 * of one head: row r (q and o rows qstride apart) sees keys [0, nk[r]) of
 * k, v (kstride apart). The accumulator acc (nd, lanes) is o transposed.
 * Writes o and, if lse is not NULL, lse[r] (-inf and o = 0 for a row that
 * sees no key). */
VM_INLINE void attn_tile_dims(float *o, float *lse, const float *const *rows, size_t qstride,
			      const float *k, const float *v, size_t kstride, const int *nk, int nr,
			      int maxnk, int HS, int d0, int nd, float scale)
{
	att_vec s[ATT_BLOCK], acc[ATT_HS_MAX], corr;
	struct lane_state st = {.l = {0}};
	int lim[ATT_LANES], minnk = maxnk;

	for (int r = 0; r < ATT_LANES; r++) { /* spare lanes copy row 0 */
		st.m[r] = -INFINITY;
		lim[r] = nk[r < nr ? r : 0];
		minnk = lim[r] < minnk ? lim[r] : minnk;
	}
	for (int i = 0; i < nd; i++)
		acc[i] = (att_vec){0};
	for (int j0 = 0; j0 < maxnk; j0 += ATT_BLOCK) {
		int n = maxnk - j0 < ATT_BLOCK ? maxnk - j0 : ATT_BLOCK;

		lane_scores(s, rows, k + j0 * kstride, kstride, n, HS, scale);
		if (j0 + n > minnk)
			lane_mask(s, lim, j0, n);
		lane_softmax(s, &corr, &st, n);
		for (int i = 0; i < nd; i++)
			acc[i] *= corr;
		lane_pv(acc, s, v + j0 * kstride + d0, kstride, n, nd);
	}
	for (int r = 0; r < nr; r++) {
		float inv = nk[r] > 0 ? 1.0f / st.l[r] : 0.0f;

		for (int i = 0; i < nd; i++)
			o[r * qstride + d0 + i] = acc[i][r] * inv;
		if (lse && d0 == 0)
			lse[r] = nk[r] > 0 ? st.m[r] + logf(st.l[r]) : -INFINITY;
	}
}

/* nr <= ATT_LANES consecutive query rows of one head (attn_tile_dims),
 * ATT_HS_MAX output dimensions at a time: a head larger than that computes
 * its scores once per slice. */
VM_CLONES static void attn_tile(float *o, float *lse, const float *q, size_t qstride,
				const float *k, const float *v, size_t kstride, const int *nk,
				int nr, int HS, float scale)
{
	const float *rows[ATT_LANES];
	int maxnk = 0;

	for (int r = 0; r < ATT_LANES; r++) { /* a short tile repeats row 0, unused */
		rows[r] = q + (r < nr ? r : 0) * qstride;
		maxnk = r < nr && nk[r] > maxnk ? nk[r] : maxnk;
	}
	for (int d0 = 0; d0 < HS; d0 += ATT_HS_MAX)
		attn_tile_dims(o, lse, rows, qstride, k, v, kstride, nk, nr, maxnk, HS, d0,
			       HS - d0 < ATT_HS_MAX ? HS - d0 : ATT_HS_MAX, scale);
}

/* out, q (B,T,NH,HS); k, v (B,Tcap,NKV,HS) valid in [0,Tk); lse (B,NH,T) or
 * NULL; key_len (B) or NULL. One task per tile of ATT_LANES consecutive
 * query rows of one (b, h). */
void cpu_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
			   const int *key_len, int causal, int B, int T, int Tk, int Tcap, int NH,
			   int NKV, int HS)
{
	int ntile = (T + ATT_LANES - 1) / ATT_LANES, group = NH / NKV;
	long tasks = (long)B * NH * ntile;
	size_t kstride = (size_t)NKV * HS, qstride = (size_t)NH * HS;
	float scale = 1.0f / sqrtf((float)HS);

#pragma omp parallel for schedule(dynamic, 2) if ((long)B * NH * T >= ATT_PAR_MIN)
	for (long r = 0; r < tasks; r++) {
		int h = (int)(r / ntile % NH), b = (int)(r / ntile / NH);
		int t0 = (int)(r % ntile) * ATT_LANES, nr = T - t0 < ATT_LANES ? T - t0 : ATT_LANES;
		size_t qoff = (((size_t)b * T + t0) * NH + h) * HS;
		size_t koff = (size_t)b * Tcap * kstride + (size_t)(h / group) * HS;
		int nk[ATT_LANES];

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

/* A tile of ATT_LANES consecutive query rows of one (b, h) for backward, one
 * row per lane: row pointers, D = rowsum(dout * out), lse and visible keys
 * per row. Lanes past T repeat the first row with no visible key, so they
 * contribute nothing. */
struct lane_tile {
	const float *q[ATT_LANES], *g[ATT_LANES];
	float *dq[ATT_LANES];
	float D[ATT_LANES], L[ATT_LANES];
	int nk[ATT_LANES], maxnk;
};

VM_INLINE void lane_tile_init(struct lane_tile *lt, float *dq, const float *dout, const float *q,
			      const float *out, const float *lse, const struct attn_dims *d, int b,
			      int h, int t0)
{
	lt->maxnk = 0;
	for (int r = 0; r < ATT_LANES; r++) {
		int t = t0 + r < d->T ? t0 + r : t0;
		size_t off = (((size_t)b * d->T + t) * d->NH + h) * d->HS;

		lt->q[r] = q + off, lt->g[r] = dout + off;
		lt->dq[r] = dq ? dq + off : NULL;
		lt->D[r] = dotf(dout + off, out + off, d->HS);
		lt->L[r] = lse[((size_t)b * d->NH + h) * d->T + t];
		lt->nk[r] = t0 + r >= d->T ? 0 : d->causal ? t + 1 : d->T;
		lt->maxnk = lt->nk[r] > lt->maxnk ? lt->nk[r] : lt->maxnk;
	}
}

/* For keys j0 + j, j < n (rows of k and v, kstride apart, from key 0):
 * p[j] = exp(s - lse) and ds[j] = p * (dP - D) * scale in each row's lane,
 * 0 where the row does not see the key. */
VM_INLINE void lane_coeffs(att_vec *p, att_vec *ds, const struct lane_tile *lt, const float *k,
			   const float *v, size_t kstride, int j0, int n, int HS, float scale)
{
	lane_scores(p, lt->q, k + j0 * kstride, kstride, n, HS, scale);
	lane_scores(ds, lt->g, v + j0 * kstride, kstride, n, HS, 1.0f);
	for (int j = 0; j < n; j++) {
		float *pj = (float *)&p[j], *dj = (float *)&ds[j];

#pragma omp simd
		for (int r = 0; r < ATT_LANES; r++) {
			int sees = j0 + j < lt->nk[r];
			float e = vm_expf(pj[r] - lt->L[r]);

			dj[r] = vm_select(sees, e * (dj[r] - lt->D[r]) * scale, 0.0f);
			pj[r] = vm_select(sees, e, 0.0f);
		}
	}
}

/* y (n) += sum over the lanes r of c[r] * rows[r] (n) */
VM_INLINE void axpy_lanes(float *y, const att_vec *c, const float *const *rows, int n)
{
	const float *cf = (const float *)c;

	axpy4(y, cf, rows, n);
	axpy4(y, cf + 4, rows + 4, n);
}

/* dk, dv rows [j0, j1) of kv head kvh, batch b: accumulates over every query
 * head of the group and every query tile that sees those keys. */
VM_CLONES static void attn_dkdv_block(float *dk, float *dv, const float *dout, const float *q,
				      const float *k, const float *v, const float *out,
				      const float *lse, const struct attn_dims *d, int b, int kvh,
				      int j0, int j1)
{
	int group = d->NH / d->NKV;
	size_t kstride = (size_t)d->NKV * d->HS;
	size_t kbase = (size_t)b * d->T * kstride + (size_t)kvh * d->HS;
	struct lane_tile lt;
	att_vec p[ATT_BLOCK], ds[ATT_BLOCK];

	for (int h = kvh * group; h < (kvh + 1) * group; h++)
		for (int t0 = d->causal ? j0 / ATT_LANES * ATT_LANES : 0; t0 < d->T;
		     t0 += ATT_LANES) {
			lane_tile_init(&lt, NULL, dout, q, out, lse, d, b, h, t0);
			int n = (j1 < lt.maxnk ? j1 : lt.maxnk) - j0;

			if (n <= 0)
				continue;
			lane_coeffs(p, ds, &lt, k + kbase, v + kbase, kstride, j0, n, d->HS,
				    d->scale);
			for (int j = 0; j < n; j++) {
				size_t kj = kbase + (j0 + j) * kstride;

				if (dv)
					axpy_lanes(dv + kj, &p[j], lt.g, d->HS);
				if (dk)
					axpy_lanes(dk + kj, &ds[j], lt.q, d->HS);
			}
		}
}

/* dq of the query tile starting at row t0 of head h, batch b:
 * dq += scale * sum_j dS_j k_j over each row's visible keys, accumulated
 * transposed (dimensions, lanes) ATT_HS_MAX dimensions at a time. */
VM_CLONES static void attn_dq_tile(float *dq, const float *dout, const float *q, const float *k,
				   const float *v, const float *out, const float *lse,
				   const struct attn_dims *d, int b, int h, int t0)
{
	size_t kstride = (size_t)d->NKV * d->HS;
	size_t kbase = (size_t)b * d->T * kstride + (size_t)(h / (d->NH / d->NKV)) * d->HS;
	int nr = d->T - t0 < ATT_LANES ? d->T - t0 : ATT_LANES;
	struct lane_tile lt;
	att_vec p[ATT_BLOCK], ds[ATT_BLOCK], acc[ATT_HS_MAX];

	lane_tile_init(&lt, dq, dout, q, out, lse, d, b, h, t0);
	for (int d0 = 0; d0 < d->HS; d0 += ATT_HS_MAX) {
		int nd = d->HS - d0 < ATT_HS_MAX ? d->HS - d0 : ATT_HS_MAX;

		for (int i = 0; i < nd; i++)
			acc[i] = (att_vec){0};
		for (int j0 = 0; j0 < lt.maxnk; j0 += ATT_BLOCK) {
			int n = lt.maxnk - j0 < ATT_BLOCK ? lt.maxnk - j0 : ATT_BLOCK;

			lane_coeffs(p, ds, &lt, k + kbase, v + kbase, kstride, j0, n, d->HS,
				    d->scale);
			lane_pv(acc, ds, k + kbase + j0 * kstride + d0, kstride, n, nd);
		}
		for (int r = 0; r < nr; r++)
			for (int i = 0; i < nd; i++)
				lt.dq[r][d0 + i] += acc[i][r];
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
		int ntile = (T + ATT_LANES - 1) / ATT_LANES;

#pragma omp parallel for schedule(dynamic, 2) if (rows >= ATT_PAR_MIN)
		for (long r = 0; r < (long)B * NH * ntile; r++)
			attn_dq_tile(dq, dout, q, k, v, out, lse, &d, (int)(r / ntile / NH),
				     (int)(r / ntile % NH), (int)(r % ntile) * ATT_LANES);
	}
}
