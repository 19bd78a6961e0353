/* Block-level selection over one row of floats, shared by topk.cu and
 * sample.cu (internal, not API).
 *
 * Rows are ranked as cpu_topk_forward ranks them: larger value first, NaN
 * above everything, equal values by lower index. order_key() maps a float to
 * a uint32 whose unsigned order is that value order (NaN the largest, -0
 * equal to +0), so "the element at sorted position p" can be found without
 * sorting: block_descent() walks the key's four bytes from the top, each
 * time building a 256-bin histogram (count, and a double mass of weights) of
 * the elements still in play, and picks the bin where the running prefix
 * reaches the target; block_nth_tie() then picks among equal keys by index.
 * One block per row, one pass over the row per byte. Counts use shared
 * integer atomics (exact); masses use shared double atomics, so their
 * rounding depends on the order the atomics land (last-bit differences). */
#ifndef LLMOPS_SELECT_CUH
#define LLMOPS_SELECT_CUH

#include <climits>
#include <cstdint>

#include "cuda_common.h"

/* threads per block of the selection kernels */
#define SELECT_BLOCK 1024

/* unsigned key whose order is the ranking order of x (NaN largest) */
static __device__ __forceinline__ uint32_t order_key(float x)
{
	uint32_t u = __float_as_uint(x);

	if (isnan(x))
		return 0xffffffffu;
	if (x == 0.0f)
		u = 0; /* -0 ranks as +0 */
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* the float a (non-NaN) key came from */
static __device__ __forceinline__ float key_float(uint32_t k)
{
	if (k == 0xffffffffu)
		return __uint_as_float(0x7fc00000u);
	return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

/* Which elements of a row are in play, and their weights. Real keys are at
 * least 0x007fffff, so kkey = pkey = 0 keeps everything. */
struct row_filter {
	int weighted;	   /* weight expf(x / temp - top_t), else 1 */
	float temp, top_t; /* top_t = max / temp */
	uint32_t kkey;	   /* top-k: key >= kkey */
	uint32_t pkey;	   /* top-p: key > pkey, or key == pkey and index <= pidx */
	int pidx;
	int use_minp; /* min-p: weight >= min_p, or index == itop */
	float min_p;
	int itop;
};

static __device__ __forceinline__ float filter_weight(const row_filter *f, float x)
{
	return f->weighted ? expf(x / f->temp - f->top_t) : 1.0f;
}

static __device__ __forceinline__ bool filter_keeps(const row_filter *f, int i, uint32_t u, float w)
{
	if (u < f->kkey)
		return false;
	if (u < f->pkey || (u == f->pkey && i > f->pidx))
		return false;
	return !f->use_minp || w >= f->min_p || i == f->itop;
}

/* Result of a descent: the key at the found position, how many kept
 * elements rank strictly above it and their weight, and how many kept
 * elements share that key. */
struct descent {
	uint32_t key;
	int above, ties;
	double mass_above;
};

/* Shared state of block_descent (declared by the kernel, passed down). */
struct descent_shared {
	int cnt[256];
	double mass[256];
	int digit, above, ties;
	double mass_above;
};

/* Picks the bin where the prefix reaches target (>= or > when strict),
 * walking the bins from the top; the lowest non-empty bin when rounding
 * keeps the prefix short of target. Run by one thread. */
static __device__ void pick_bin(descent_shared *sh, double base, double target, bool strict)
{
	int pick = -1, above = 0;
	bool found = false;
	double acc = base;

	for (int d = 255; d >= 0 && !found; d--) {
		if (sh->cnt[d] == 0)
			continue;
		double next = acc + sh->mass[d];

		pick = d;
		found = strict ? next > target : next >= target;
		if (!found) {
			acc = next;
			above += sh->cnt[d];
		}
	}
	if (!found && pick >= 0) { /* the last non-empty bin, not counted above */
		acc -= sh->mass[pick];
		above -= sh->cnt[pick];
	}
	sh->digit = pick < 0 ? 0 : pick;
	sh->above = above;
	sh->mass_above = acc - base;
	sh->ties = pick < 0 ? 0 : sh->cnt[pick];
}

/* Finds the kept element at the smallest sorted position whose inclusive
 * prefix of weights reaches target (>=, or > when strict). With weights 1
 * and target k that is the k-th largest. Call from every thread. */
static __device__ descent block_descent(const float *x, int V, const row_filter *f, double target,
					bool strict, descent_shared *sh)
{
	uint32_t prefix = 0, mask = 0;
	descent r = {0, 0, 0, 0.0};

	for (int shift = 24; shift >= 0; shift -= 8) {
		__syncthreads(); /* sh is free */
		for (int d = threadIdx.x; d < 256; d += blockDim.x)
			sh->cnt[d] = 0, sh->mass[d] = 0.0;
		__syncthreads();
		for (int i = threadIdx.x; i < V; i += blockDim.x) {
			float xi = x[i], w = filter_weight(f, xi);
			uint32_t u = order_key(xi);

			if ((u & mask) != prefix || !filter_keeps(f, i, u, w))
				continue;
			atomicAdd(&sh->cnt[(u >> shift) & 255u], 1);
			atomicAdd(&sh->mass[(u >> shift) & 255u], (double)w);
		}
		__syncthreads();
		if (threadIdx.x == 0)
			pick_bin(sh, r.mass_above, target, strict);
		__syncthreads();
		prefix |= (uint32_t)sh->digit << shift;
		mask |= 255u << shift;
		r.above += sh->above;
		r.mass_above += sh->mass_above;
		r.ties = sh->ties;
	}
	r.key = prefix;
	return r;
}

/* Index of the j-th (1-based) kept element with key `key`, in index order;
 * -1 if there are fewer. Call from every thread. */
static __device__ int block_nth_tie(const float *x, int V, const row_filter *f, uint32_t key, int j)
{
	__shared__ int warp_cnt[32];
	__shared__ int result;
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, base = 0;

	__syncthreads(); /* result may still be read by a previous call */
	if (threadIdx.x == 0)
		result = -1;
	for (int i0 = 0; i0 < V; i0 += blockDim.x) {
		int i = i0 + threadIdx.x;
		bool hit = false;

		if (i < V) {
			float xi = x[i];
			uint32_t u = order_key(xi);

			hit = u == key && filter_keeps(f, i, u, filter_weight(f, xi));
		}
		int total = __syncthreads_count(hit);
		if (base + total < j) {
			base += total;
			continue;
		}
		unsigned bal = __ballot_sync(FULL_MASK, hit);
		if (lane == 0)
			warp_cnt[warp] = __popc(bal);
		__syncthreads();
		int rank = base + __popc(bal & ((1u << lane) - 1u)) + 1;
		for (int w = 0; w < warp; w++)
			rank += warp_cnt[w];
		if (hit && rank == j)
			result = i;
		__syncthreads();
		return result;
	}
	return -1;
}

#endif
