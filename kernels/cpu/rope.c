/* CPU rotary position embedding (Hugging Face Llama "rotate_half" layout).
 *
 * Element i of a head pairs with element i + HS/2 and turns by the angle
 * pos * inv_freq[i]. The angle is computed the way transformers computes it
 * in fp32 (inv_freq = 1 / theta^(float(2i)/HS) rounded to fp32, angle =
 * fp32 product pos * inv_freq), then cos and sin are evaluated in double and
 * rounded, so our cos/sin tables equal HF's to the last bit or one ulp, which
 * matters at positions in the thousands where the fp32 angle itself is off
 * by ~1e-4 rad. Cos/sin are made per (b,t) for ROPE_CHUNK pairs at a time
 * and reused for every head; design limit: recomputed per call (no cache). */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* pairs whose cos/sin are computed at once (stack arrays) */
#define ROPE_CHUNK 64
/* below this many elements the kernels run on one thread */
#define ROPE_PAR_MIN (1L << 14)

/* cos/sin of pos * inv_freq[i] for pairs [i0, i0 + n), as HF computes them */
static void rope_table(float *cs, float *sn, int pos, int i0, int n, int HS, float theta)
{
	for (int i = 0; i < n; i++) {
		float expo = (float)(2 * (i0 + i)) / (float)HS;
		float inv_freq = 1.0f / (float)pow((double)theta, (double)expo);
		float angle = (float)pos * inv_freq;

		cs[i] = (float)cos((double)angle);
		sn[i] = (float)sin((double)angle);
	}
}

/* Rotates every head of one (b,t) row: x (H,HS) into y (H,HS). sign = +1
 * turns forward; sign = -1 turns back and accumulates into y (the
 * backward pass). */
static void rope_row(float *y, const float *x, int H, int HS, int pos, float theta, int sign)
{
	int half = HS / 2;
	float cs[ROPE_CHUNK], sn[ROPE_CHUNK];

	for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
		int n = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;

		rope_table(cs, sn, pos, i0, n, HS, theta);
		for (int h = 0; h < H; h++) {
			const float *a = x + (size_t)h * HS + i0, *b = a + half;
			float *ya = y + (size_t)h * HS + i0, *yb = ya + half;

			for (int i = 0; i < n; i++) {
				float x1 = a[i], x2 = b[i];

				if (sign > 0) { /* HF: x * cos + rotate_half(x) * sin */
					ya[i] = x1 * cs[i] + -x2 * sn[i];
					yb[i] = x2 * cs[i] + x1 * sn[i];
				} else {
					ya[i] += x1 * cs[i] + x2 * sn[i];
					yb[i] += x2 * cs[i] - x1 * sn[i];
				}
			}
		}
	}
}

/* out, inp (B,T,H,HS); out may equal inp (each pair is read before it is
 * written). */
void cpu_rope_forward(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
		      float theta)
{
	size_t row = (size_t)H * HS;

#pragma omp parallel for if ((long)B * T * H * HS >= ROPE_PAR_MIN)
	for (long bt = 0; bt < (long)B * T; bt++)
		rope_row(out + bt * row, inp + bt * row, H, HS, pos0 + (int)(bt % T), theta, 1);
}

/* dinp (B,T,H,HS) += dout turned by the opposite angle (the transpose of the
 * forward rotation). */
void cpu_rope_backward(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
		       float theta)
{
	size_t row = (size_t)H * HS;

#pragma omp parallel for if ((long)B * T * H * HS >= ROPE_PAR_MIN)
	for (long bt = 0; bt < (long)B * T; bt++)
		rope_row(dinp + bt * row, dout + bt * row, H, HS, pos0 + (int)(bt % T), theta, -1);
}
