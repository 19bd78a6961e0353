/* CPU token sampling: greedy, or temperature with top-k, top-p and min-p.
 *
 * One row per task. Greedy is an argmax (lowest index on ties). Otherwise
 * the row's candidates are ranked with cpu_topk_forward (k = top_k, or V
 * when top_k is off) into the caller's scratch, so each filter is a cut of
 * one sorted list: top-k keeps the first k and any token tied with the k-th
 * (as transformers' TopKLogitsWarper, which keeps every value >= the k-th);
 * top-p keeps tokens while the probability mass before them is < top_p;
 * min-p keeps tokens whose probability is >= min_p times the top one. The
 * draw u = llm_uniform(seed, step * N + n) picks by inverse CDF over the kept
 * tokens in that order. Design limit: without top_k a row is fully sorted,
 * O(V log V). */
#include "llmops_kernels.h"

#include <math.h>
#include <stddef.h>

/* first index of the largest logit */
static int argmax(const float *x, int V)
{
	int best = 0;

	for (int i = 1; i < V; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/* Ranks the row into val/idx (descending, lower index first on ties) and
 * returns how many survive top_k, ties with the k-th included. */
static int rank_candidates(float *val, int *idx, const float *x, int V, int top_k)
{
	int k = top_k > 0 && top_k < V ? top_k : V;

	cpu_topk_forward(val, idx, x, 1, V, k);
	if (k == V)
		return k;
	/* tokens tied with the k-th value that lost the index tie-break */
	for (int i = idx[k - 1] + 1; i < V; i++)
		if (x[i] == val[k - 1]) {
			val[k] = x[i];
			idx[k++] = i;
		}
	return k;
}

/* Turns val (n, descending logits) into weights exp((v - v0) / temp) and
 * returns how many survive top_p and min_p. */
static int filter_probs(float *val, int n, const struct llm_sampling *s)
{
	double total = 0.0, before = 0.0;
	float top = val[0];

	for (int i = 0; i < n; i++) {
		val[i] = expf(val[i] / s->temperature - top / s->temperature);
		total += val[i];
	}
	if (s->top_p < 1.0f) {
		int keep = 1;

		before = val[0];
		while (keep < n && before / total < s->top_p)
			before += val[keep++];
		n = keep;
	}
	if (s->min_p > 0.0f) { /* val[0] = 1 is the top weight */
		int keep = 1;

		while (keep < n && val[keep] >= s->min_p * val[0])
			keep++;
		n = keep;
	}
	return n;
}

/* Inverse CDF over weights w (n): the first i whose running sum exceeds
 * u * sum(w). */
static int draw(const float *w, int n, float u)
{
	double total = 0.0, acc = 0.0;

	for (int i = 0; i < n; i++)
		total += w[i];
	double target = u * total;
	for (int i = 0; i < n; i++) {
		acc += w[i];
		if (acc > target)
			return i;
	}
	return n - 1;
}

/* tokens (N) from logits (N,V); scratch: N*V floats then N*V ints. */
void cpu_sample_forward(int *tokens, const float *logits, const struct llm_sampling *s,
			void *scratch, int N, int V, uint64_t step)
{
	float *vals = scratch;
	/* the int half starts after N*V 4-byte float slots */
	int *idxs = (int *)((unsigned char *)scratch + (size_t)N * V * sizeof(float));

#pragma omp parallel for if (N > 1)
	for (int n = 0; n < N; n++) {
		const float *x = logits + (size_t)n * V;
		float *val = vals + (size_t)n * V;
		int *idx = idxs + (size_t)n * V;

		if (s->temperature <= 0.0f) {
			tokens[n] = argmax(x, V);
			continue;
		}
		int kept = rank_candidates(val, idx, x, V, s->top_k);
		kept = filter_probs(val, kept, s);
		tokens[n] = idx[draw(val, kept, llm_uniform(s->seed, step * N + n))];
	}
}
