/* CUDA LoRA branch of a linear layer (PEFT semantics), forward and backward.
 *
 * The products are fp32 SGEMMs on the process-wide cuBLAS handle (taken once
 * per call for the whole sequence), in the same order and with the same
 * alpha/beta as kernels/cpu/lora.c; the dropout mask comes from
 * llm_uniform(seed, i) over the flat index of inp, so backward rebuilds it
 * and it equals the CPU's mask bit for bit. Row-major products map to
 * column-major cuBLAS as in matmul.cu: Y (M,N) = X (M,K) . W (N,K)^T is
 * (T, N, m = N, n = M, k = K, W, X). Design limit: with dropout the masked
 * input is materialised in the caller's scratch, as on the CPU. */
#include <cuda_runtime.h>

#include <limits.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* ---- kernels ---- */

/* xd (n) = x / (1 - p) where llm_uniform(seed, i) >= p, else 0 */
static __global__ void lora_dropout_kernel(float *xd, const float *x, size_t n, float p,
					   uint64_t seed)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	float scale = 1.0f / (1.0f - p);

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		xd[i] = llm_uniform(seed, (uint64_t)i) >= p ? x[i] * scale : 0.0f;
}

/* dinp (n) += g / (1 - p) where the element was kept */
static __global__ void lora_dropout_backward_kernel(float *dinp, const float *g, size_t n, float p,
						    uint64_t seed)
{
	size_t stride = (size_t)gridDim.x * blockDim.x;
	float scale = 1.0f / (1.0f - p);

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
		if (llm_uniform(seed, (uint64_t)i) >= p)
			dinp[i] += g[i] * scale;
}

/* ---- launchers ---- */

static bool lora_shapes_ok(int B, int T, int C, int OC, int r, float dropout)
{
	return B >= 1 && T >= 1 && C >= 1 && OC >= 1 && r >= 1 && (long long)B * T <= INT_MAX &&
	       dropout >= 0.0f && dropout < 1.0f;
}

llm_err cuda_lora_forward(float *out, float *hidden, const float *inp, const float *lora_a,
			  const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
			  float scaling, float dropout, uint64_t seed, void *stream)
{
	const char *fn = "cuda_lora_forward";
	cudaStream_t s = (cudaStream_t)stream;
	const float one = 1.0f, zero = 0.0f;
	const float *x = inp;
	int BT = B * T;
	cublasHandle_t h;
	cublasStatus_t st;
	llm_err err;

	if (!lora_shapes_ok(B, T, C, OC, r, dropout) || !out || !hidden || !inp || !lora_a ||
	    !lora_b || (dropout > 0.0f && !scratch))
		return llm_fail(LLM_EINVAL, "%s: B=%d T=%d C=%d OC=%d r=%d dropout=%g scratch=%p",
				fn, B, T, C, OC, r, (double)dropout, (void *)scratch);
	if (dropout > 0.0f) {
		lora_dropout_kernel<<<grid_for((size_t)BT * C), LLMOPS_BLOCK, 0, s>>>(
			scratch, inp, (size_t)BT * C, dropout, seed);
		if ((err = cuda_check_launch(fn, "lora_dropout_kernel")))
			return err;
		x = scratch;
	}
	if ((err = cuda_cublas_acquire(fn, s, &h)))
		return err;
	st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, r, BT, C, &one, lora_a, C, x, C, &zero,
			 hidden, r);
	if (st == CUBLAS_STATUS_SUCCESS)
		st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, BT, r, &scaling, lora_b, r,
				 hidden, r, &one, out, OC);
	cuda_cublas_release();
	return st == CUBLAS_STATUS_SUCCESS ? LLM_OK : cuda_cublas_fail(fn, "cublasSgemm", st);
}

/* The GEMMs of the backward pass (see cpu_lora_backward); caller holds h. */
static cublasStatus_t lora_backward_gemms(cublasHandle_t h, float *dinp, float *dlora_a,
					  float *dlora_b, const float *dout, const float *inp,
					  const float *hidden, const float *lora_a,
					  const float *lora_b, float *scratch, int BT, int C,
					  int OC, int r, float scaling, float dropout,
					  uint64_t seed, cudaStream_t s)
{
	const float one = 1.0f, zero = 0.0f;
	float *dh = scratch, *xs = scratch + (size_t)BT * r;
	bool drop = dropout > 0.0f;
	cublasStatus_t st = CUBLAS_STATUS_SUCCESS;

	if (dlora_b) /* dlora_b (OC,r) += scaling * dout^T . hidden */
		st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, r, OC, BT, &scaling, hidden, r, dout,
				 OC, &one, dlora_b, r);
	if (st != CUBLAS_STATUS_SUCCESS || (!dlora_a && !dinp))
		return st;
	/* dh (BT,r) = scaling * dout . lora_b */
	st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, r, BT, OC, &scaling, lora_b, r, dout, OC,
			 &zero, dh, r);
	if (st == CUBLAS_STATUS_SUCCESS && dlora_a) { /* dlora_a (r,C) += dh^T . drop(inp) */
		if (drop)
			lora_dropout_kernel<<<grid_for((size_t)BT * C), LLMOPS_BLOCK, 0, s>>>(
				xs, inp, (size_t)BT * C, dropout, seed);
		st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, C, r, BT, &one, drop ? xs : inp, C,
				 dh, r, &one, dlora_a, C);
	}
	if (st != CUBLAS_STATUS_SUCCESS || !dinp)
		return st;
	/* dinp (BT,C) += drop'(dh . lora_a) */
	st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, C, BT, r, &one, lora_a, C, dh, r,
			 drop ? &zero : &one, drop ? xs : dinp, C);
	if (st == CUBLAS_STATUS_SUCCESS && drop)
		lora_dropout_backward_kernel<<<grid_for((size_t)BT * C), LLMOPS_BLOCK, 0, s>>>(
			dinp, xs, (size_t)BT * C, dropout, seed);
	return st;
}

llm_err cuda_lora_backward(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
			   const float *inp, const float *hidden, const float *lora_a,
			   const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
			   float scaling, float dropout, uint64_t seed, void *stream)
{
	const char *fn = "cuda_lora_backward";
	cudaStream_t s = (cudaStream_t)stream;
	cublasHandle_t h;
	cublasStatus_t st;
	llm_err err;

	if (!lora_shapes_ok(B, T, C, OC, r, dropout) || !dout || (dlora_b && !hidden) ||
	    ((dlora_a || dinp) && (!lora_b || !scratch)) || (dlora_a && !inp) || (dinp && !lora_a))
		return llm_fail(
			LLM_EINVAL, "%s: B=%d T=%d C=%d OC=%d r=%d dropout=%g dout=%p scratch=%p",
			fn, B, T, C, OC, r, (double)dropout, (const void *)dout, (void *)scratch);
	if (!dinp && !dlora_a && !dlora_b)
		return LLM_OK;
	if ((err = cuda_cublas_acquire(fn, s, &h)))
		return err;
	st = lora_backward_gemms(h, dinp, dlora_a, dlora_b, dout, inp, hidden, lora_a, lora_b,
				 scratch, B * T, C, OC, r, scaling, dropout, seed, s);
	cuda_cublas_release();
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail(fn, "cublasSgemm", st);
	return cuda_check_launch(fn, "lora_dropout kernels");
}
