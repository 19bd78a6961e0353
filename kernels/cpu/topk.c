/* CPU top-k per row, fp32: values descending, ties broken by lower index.
 *
 * Each row keeps a binary min-heap of its k best (value, index) pairs in the
 * output arrays themselves, so the kernel needs no scratch: O(V log k) per
 * row, then an in-place heap sort puts the k pairs in descending order. NaN
 * ranks above every number, as in torch.topk. Rows are split over threads;
 * design limit: a single row is sequential. */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* below this many elements the kernel runs on one thread */
#define TOPK_PAR_MIN (1L << 15)

/* true when (a, ia) ranks before (b, ib): larger value, NaN first, then the
 * lower index */
static inline int ranks_before(float a, int ia, float b, int ib)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && (!isnan(b) || ia < ib);
	return a > b || (a == b && ia < ib);
}

/* Restores the heap below slot i of (val, idx) (n): the worst pair at the
 * root. */
static void sift_down(float *val, int *idx, int n, int i)
{
	for (;;) {
		int w = i, l = 2 * i + 1, r = l + 1;

		if (l < n && ranks_before(val[w], idx[w], val[l], idx[l]))
			w = l;
		if (r < n && ranks_before(val[w], idx[w], val[r], idx[r]))
			w = r;
		if (w == i)
			return;
		float tv = val[i];
		int ti = idx[i];
		val[i] = val[w], idx[i] = idx[w];
		val[w] = tv, idx[w] = ti;
		i = w;
	}
}

/* The k best of x (V) into val, idx (k), best first. */
static void topk_row(float *val, int *idx, const float *x, int V, int k)
{
	for (int i = 0; i < k; i++)
		val[i] = x[i], idx[i] = i;
	for (int i = k / 2 - 1; i >= 0; i--)
		sift_down(val, idx, k, i);
	for (int i = k; i < V; i++) {
		if (!ranks_before(x[i], i, val[0], idx[0]))
			continue;
		val[0] = x[i], idx[0] = i;
		sift_down(val, idx, k, 0);
	}
	for (int n = k - 1; n > 0; n--) { /* the worst goes to the back */
		float tv = val[0];
		int ti = idx[0];
		val[0] = val[n], idx[0] = idx[n];
		val[n] = tv, idx[n] = ti;
		sift_down(val, idx, n, 0);
	}
}

/* values (N,k), indices (N,k) = top k of each row of inp (N,V). */
void cpu_topk_forward(float *values, int *indices, const float *inp, int N, int V, int k)
{
#pragma omp parallel for if ((long)N * V >= TOPK_PAR_MIN)
	for (int n = 0; n < N; n++)
		topk_row(values + (size_t)n * k, indices + (size_t)n * k, inp + (size_t)n * V, V,
			 k);
}
