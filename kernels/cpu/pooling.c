/* CPU mean pooling for sentence embeddings (sentence-transformers' Pooling
 * with mean tokens, then its Normalize module), fp32.
 *
 * One batch row per task: the first lengths[b] positions are summed in
 * order into the output row, divided by the count, then optionally divided
 * by max(L2 norm, 1e-12) as torch.nn.functional.normalize. Design limit:
 * parallelism is over B only, which is what embedding requests batch. */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* below this many input elements the kernel runs on one thread */
#define POOL_PAR_MIN (1L << 16)

/* out (C) /= max(||out||, 1e-12), the norm summed in double */
static void l2_normalize(float *o, int C)
{
	double ss = 0.0;

	for (int c = 0; c < C; c++)
		ss += (double)o[c] * o[c];
	double norm = sqrt(ss);
	float d = (float)(norm > 1e-12 ? norm : 1e-12);

	for (int c = 0; c < C; c++)
		o[c] /= d; /* a division, as torch, not a multiply by 1/d */
}

/* out (B,C) = mean of inp (B,T,C) over positions [0, lengths[b]) (all T when
 * lengths is NULL; lengths above T count as T), normalised if asked. */
void cpu_mean_pool_forward(float *out, const float *inp, const int *lengths, int B, int T, int C,
			   int normalize)
{
#pragma omp parallel for if ((long)B * T * C >= POOL_PAR_MIN)
	for (int b = 0; b < B; b++) {
		int len = lengths ? lengths[b] : T;
		float *o = out + (size_t)b * C;

		len = len < 0 ? 0 : len > T ? T : len;
		for (int c = 0; c < C; c++)
			o[c] = 0.0f;
		for (int t = 0; t < len; t++) {
			const float *x = inp + ((size_t)b * T + t) * C;

#pragma omp simd
			for (int c = 0; c < C; c++)
				o[c] += x[c];
		}
		for (int c = 0; c < C && len > 0; c++)
			o[c] /= (float)len;
		if (normalize)
			l2_normalize(o, C);
	}
}
