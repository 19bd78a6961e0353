/* CPU LoRA branch of a linear layer (PEFT semantics), forward and backward.
 *
 * out += scaling * (drop(x) . A^T) . B^T with inverted dropout whose mask
 * comes from llm_uniform(seed, i) over the flat index i of x, so backward
 * rebuilds the same mask without storing it. All products are llm_sgemm
 * calls (gemm.c); the mask passes are elementwise OpenMP loops. Design limit:
 * with dropout the masked input is materialised in the caller's scratch
 * (B*T*C floats) rather than fused into the GEMM. */
#include "llmops_kernels.h"

#include "gemm.h"

#include <stddef.h>

/* below this many elements the mask passes run on one thread */
#define LORA_PAR_MIN (1L << 15)

/* xd (n) = drop(x): x / (1 - p) where llm_uniform(seed, i) >= p, else 0 */
static void lora_dropout(float *xd, const float *x, long n, float p, uint64_t seed)
{
	float scale = 1.0f / (1.0f - p);

#pragma omp parallel for if (n >= LORA_PAR_MIN)
	for (long i = 0; i < n; i++)
		xd[i] = llm_uniform(seed, (uint64_t)i) >= p ? x[i] * scale : 0.0f;
}

/* hidden (B,T,r) = drop(inp) (B,T,C) . lora_a^T (r,C);
 * out (B,T,OC) += scaling * hidden . lora_b^T (OC,r). */
void cpu_lora_forward(float *out, float *hidden, const float *inp, const float *lora_a,
		      const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
		      float scaling, float dropout, uint64_t seed)
{
	int BT = B * T;
	const float *x = inp;

	if (dropout > 0.0f) {
		lora_dropout(scratch, inp, (long)BT * C, dropout, seed);
		x = scratch;
	}
	llm_sgemm(false, true, BT, r, C, 1.0f, x, C, lora_a, C, 0.0f, hidden, r);
	llm_sgemm(false, true, BT, OC, r, scaling, hidden, r, lora_b, r, 1.0f, out, OC);
}

/* dinp (n) += mask * g / (1 - p): the dropout's backward */
static void lora_dropout_backward(float *dinp, const float *g, long n, float p, uint64_t seed)
{
	float scale = 1.0f / (1.0f - p);

#pragma omp parallel for if (n >= LORA_PAR_MIN)
	for (long i = 0; i < n; i++)
		if (llm_uniform(seed, (uint64_t)i) >= p)
			dinp[i] += g[i] * scale;
}

/* Backward of cpu_lora_forward, with dh = scaling * dout . lora_b:
 *   dlora_b (OC,r) += scaling * dout^T (OC,BT) . hidden (BT,r)
 *   dlora_a (r,C) += dh^T (r,BT) . drop(inp) (BT,C)
 *   dinp (BT,C) += drop'(dh . lora_a)
 * scratch: dh in the first B*T*r floats, then B*T*C for drop(inp) and the
 * input gradient before the mask. */
void cpu_lora_backward(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
		       const float *inp, const float *hidden, const float *lora_a,
		       const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
		       float scaling, float dropout, uint64_t seed)
{
	int BT = B * T;
	float *dh = scratch, *xs = scratch + (size_t)BT * r;
	int drop = dropout > 0.0f;

	if (dlora_b)
		llm_sgemm(true, false, OC, r, BT, scaling, dout, OC, hidden, r, 1.0f, dlora_b, r);
	if (!dlora_a && !dinp)
		return;
	llm_sgemm(false, false, BT, r, OC, scaling, dout, OC, lora_b, r, 0.0f, dh, r);
	if (dlora_a) {
		if (drop)
			lora_dropout(xs, inp, (long)BT * C, dropout, seed);
		llm_sgemm(true, false, r, C, BT, 1.0f, dh, r, drop ? xs : inp, C, 1.0f, dlora_a, C);
	}
	if (dinp && !drop)
		llm_sgemm(false, false, BT, C, r, 1.0f, dh, r, lora_a, C, 1.0f, dinp, C);
	if (dinp && drop) {
		llm_sgemm(false, false, BT, C, r, 1.0f, dh, r, lora_a, C, 0.0f, xs, C);
		lora_dropout_backward(dinp, xs, (long)BT * C, dropout, seed);
	}
}
