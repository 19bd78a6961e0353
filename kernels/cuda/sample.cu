/* CUDA token sampling: greedy, or temperature with top-k, top-p and min-p,
 * with the semantics and the draw of kernels/cpu/sample.c.
 *
 * One block of SELECT_BLOCK threads per row, no scratch and no sort. The
 * CPU twin sorts the candidates once and cuts the sorted list; here each cut
 * is found directly as "the element at a sorted position" by block_descent
 * (select.cuh), and the kept set is described by a row_filter:
 *   top-k   the k-th largest key (weights 1); every tie with it is kept;
 *   top-p   the position where the kept weight exp(x/temp - max/temp),
 *           summed in sorted order, first reaches top_p * total;
 *   min-p   a threshold on the weight (the weights fall along the sorted
 *           order), the top element always kept;
 *   draw    the position where the running weight first exceeds u * total
 *           of the kept set, u = llm_uniform(seed, step * N + n).
 * Greedy is a block argmax (lowest index on ties). Each descent reads the
 * row four times (L2-resident for V of 150k: 600 KB); a sampled row costs
 * about 16 reads. Design limit: prefix masses are histogram sums in double
 * in another order than the CPU's sorted-order sum, so a draw within ~1e-12
 * relative of a boundary between two tokens may pick the other one; NaN
 * logits give an unspecified token. */
#include <cuda_runtime.h>

#include <math.h>

#include "llmops_kernels.h"
#include "cuda_common.h"
#include "select.cuh"

/* ---- kernels ---- */

/* (value, index) of the row's maximum, lowest index on ties; all threads */
static __device__ void block_argmax(const float *x, int V, float *best, int *ibest)
{
	__shared__ float pv[32];
	__shared__ int pi[32];
	float v = -INFINITY;
	int vi = INT_MAX;
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

	for (int i = threadIdx.x; i < V; i += blockDim.x)
		if (x[i] > v || vi == INT_MAX) /* first element seen, then strictly larger */
			v = x[i], vi = i;
	for (int pass = 0; pass < 2; pass++) {
		for (int o = 16; o > 0; o >>= 1) {
			float ov = __shfl_xor_sync(FULL_MASK, v, o);
			int oi = __shfl_xor_sync(FULL_MASK, vi, o);

			if (ov > v || (ov == v && oi < vi) || (vi == INT_MAX && oi != INT_MAX))
				v = ov, vi = oi;
		}
		if (pass == 1)
			break;
		__syncthreads();
		if (lane == 0)
			pv[warp] = v, pi[warp] = vi;
		__syncthreads();
		v = lane < (int)blockDim.x / 32 ? pv[lane] : -INFINITY;
		vi = lane < (int)blockDim.x / 32 ? pi[lane] : INT_MAX;
	}
	*best = v;
	*ibest = vi;
}

/* Sum over the row of the weights of the kept elements, in double. */
static __device__ double kept_mass(const float *x, int V, const row_filter *f)
{
	double acc = 0.0;

	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float w = filter_weight(f, x[i]);

		if (filter_keeps(f, i, order_key(x[i]), w))
			acc += w;
	}
	return block_sum(acc);
}

/* Ties to take at the found key: the smallest j in [1, ties] with
 * mass_above + j * w reaching target (> when strict). */
static __device__ int ties_needed(const descent *d, float w, double target, bool strict)
{
	double q = (target - d->mass_above) / (double)w;
	double j = strict ? floor(q) + 1.0 : ceil(q);

	if (!(j >= 1.0))
		return 1;
	return j > d->ties ? d->ties : (int)j;
}

/* Index of the element at the position block_descent finds for target. */
static __device__ int find_position(const float *x, int V, const row_filter *f, double target,
				    bool strict, descent_shared *sh, descent *d)
{
	*d = block_descent(x, V, f, target, strict, sh);
	int j = ties_needed(d, filter_weight(f, key_float(d->key)), target, strict);

	return block_nth_tie(x, V, f, d->key, j);
}

static __global__ void __launch_bounds__(SELECT_BLOCK)
	sample_kernel(int *tokens, const float *logits, struct llm_sampling s, int N, int V,
		      uint64_t step)
{
	__shared__ descent_shared sh;
	const float *x = logits + (size_t)blockIdx.x * V;
	row_filter f = {0, 1.0f, 0.0f, 0, 0, INT_MAX, 0, 0.0f, -1};
	float top;
	int itop;
	descent d;

	block_argmax(x, V, &top, &itop);
	if (s.temperature <= 0.0f) {
		if (threadIdx.x == 0)
			tokens[blockIdx.x] = itop;
		return;
	}
	if (s.top_k > 0 && s.top_k < V) { /* every tie with the k-th stays */
		d = block_descent(x, V, &f, (double)s.top_k, false, &sh);
		f.kkey = d.key;
	}
	f.weighted = 1;
	f.temp = s.temperature;
	f.top_t = top / s.temperature;
	if (s.top_p < 1.0f) {
		double total = kept_mass(x, V, &f);

		f.pidx = find_position(x, V, &f, (double)s.top_p * total, false, &sh, &d);
		f.pkey = d.key;
	}
	if (s.min_p > 0.0f) {
		f.use_minp = 1;
		f.min_p = s.min_p;
		f.itop = itop;
	}
	double u = llm_uniform(s.seed, step * (uint64_t)N + blockIdx.x);
	int tok = find_position(x, V, &f, u * kept_mass(x, V, &f), true, &sh, &d);
	if (threadIdx.x == 0)
		tokens[blockIdx.x] = tok;
}

/* ---- launchers ---- */

llm_err cuda_sample_forward(int *tokens, const float *logits, const struct llm_sampling *s,
			    void *scratch, int N, int V, uint64_t step, void *stream)
{
	(void)scratch;
	if (N < 1 || V < 1 || !tokens || !logits || !s)
		return llm_fail(LLM_EINVAL,
				"cuda_sample_forward: N=%d V=%d tokens=%p logits=%p s=%p", N, V,
				(void *)tokens, (const void *)logits, (const void *)s);
	sample_kernel<<<N, SELECT_BLOCK, 0, (cudaStream_t)stream>>>(tokens, logits, *s, N, V, step);
	return cuda_check_launch("cuda_sample_forward", "sample_kernel");
}
