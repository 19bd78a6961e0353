/* CPU token + position embedding, forward and backward, fp32.
 *
 * Forward is a gather split over rows. Backward is a scatter-add: two rows
 * with the same token add into the same dwte row, so instead of atomics each
 * thread owns a block of channels and walks every (b,t) in order. That keeps
 * the sum deterministic; the design limit is that parallelism comes from C
 * alone (C / EMB_COLS tasks). */
#include "llmops_kernels.h"

#include <stddef.h>

/* below this many output elements the kernels run on one thread */
#define EMB_PAR_MIN (1 << 15)
/* channels owned by one backward task */
#define EMB_COLS 32

/* out (B,T,C) = wte[tokens[b,t]] (V,C) + wpe[pos0 + t] (maxT,C); wpe may be
 * NULL. */
void cpu_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe, int B,
			   int T, int C, int pos0)
{
	int BT = B * T;

#pragma omp parallel for if ((long long)BT * C >= EMB_PAR_MIN)
	for (int bt = 0; bt < BT; bt++) {
		float *o = out + (size_t)bt * C;
		const float *e = wte + (size_t)tokens[bt] * C;
		const float *p = wpe ? wpe + (size_t)(pos0 + bt % T) * C : NULL;

		if (p) {
#pragma omp simd
			for (int c = 0; c < C; c++)
				o[c] = e[c] + p[c];
		} else {
			for (int c = 0; c < C; c++)
				o[c] = e[c];
		}
	}
}

/* dwte (V,C) += dout rows scattered by token; dwpe (maxT,C) += dout summed over
 * the batch at row pos0 + t. dwpe may be NULL (and so may dwte). */
void cpu_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
			    int T, int C, int pos0)
{
	int nblk = (C + EMB_COLS - 1) / EMB_COLS;

#pragma omp parallel for if ((long long)B * T * C >= EMB_PAR_MIN)
	for (int blk = 0; blk < nblk; blk++) {
		int c0 = blk * EMB_COLS;
		int c1 = c0 + EMB_COLS < C ? c0 + EMB_COLS : C;

		for (int b = 0; b < B; b++) {
			for (int t = 0; t < T; t++) {
				size_t bt = (size_t)b * T + t;
				const float *d = dout + bt * C;

				if (dwte) {
					float *w = dwte + (size_t)tokens[bt] * C;

					for (int c = c0; c < c1; c++)
						w[c] += d[c];
				}
				if (dwpe) {
					float *p = dwpe + (size_t)(pos0 + t) * C;

					for (int c = c0; c < c1; c++)
						p[c] += d[c];
				}
			}
		}
	}
}
