/* The CUDA backend table of kernels/models/llm_ops.h: the cuda_* launchers
 * and device memory (cudaMalloc) for the decoder models.
 *
 * Each entry has the CPU kernel's signature and calls its cuda_* twin on
 * the legacy default stream. Where the twins differ:
 *   - launchers return an llm_err, the CPU kernels nothing: the first
 *     failure (launch, shape or cuBLAS error) is kept with its detail, later
 *     entries are skipped until sync(), which returns it once (LLM_EINTERNAL
 *     for CUDA failures) and clears it. Per thread, like llm_last_error().
 *   - crossentropy_forward_backward and clip_grad_norm return a host value
 *     (the count, the norm), so those two synchronise the stream.
 *   - sample_forward ignores scratch; tokens is a device array.
 *   - layernorm_forward and residual_layernorm_forward need a bias (every
 *     GPT-2 norm has one).
 * Numerics: every GEMM is a cuBLASLt fp32 GEMM without TF32 and every
 * reduction is deterministic, but orders differ from the CPU's, so results
 * agree to rounding, not bit for bit. The second table, llm_ops_cuda_bf16()
 * (LLM_MODEL_BF16), differs only in its two matmul entries, which multiply
 * in bf16 with fp32 accumulation (LLM_MATMUL_BF16); tensors stay fp32. upload, download and
 * allocation are synchronous. Design limit: one stream and the device current at each call; the
 * model is driven by one thread. */
#include <cuda_runtime.h>

#include <stdio.h>

#include "llmops_kernels.h"
#include "cuda_common.h"
#include "../models/llm_ops.h"

#define STREAM NULL /* the legacy default stream */

static thread_local llm_err pending;	      /* first failure since the last sync */
static thread_local char pending_detail[512]; /* its llm_last_error() */

/* Keeps err as the pending failure unless one is already kept. */
static void note(llm_err err)
{
	if (err == LLM_OK || pending != LLM_OK)
		return;
	pending = err;
	snprintf(pending_detail, sizeof(pending_detail), "%s", llm_last_error());
}

/* Keeps a failed CUDA runtime call (what) and clears CUDA's last error. */
static void note_cuda(const char *what, cudaError_t err)
{
	if (err == cudaSuccess)
		return;
	(void)cudaGetLastError();
	note(cuda_fail("cuda model ops", what, err));
}

/* The pending failure, restored as the thread's error detail, and cleared. */
static llm_err take_pending(void)
{
	llm_err err = pending;

	if (err == LLM_OK)
		return LLM_OK;
	pending = LLM_OK;
	return llm_fail(err, "%s", pending_detail);
}

/* Runs a launcher unless an earlier one failed since the last sync. */
#define LAUNCH(call)                   \
	do {                           \
		if (pending == LLM_OK) \
			note(call);    \
	} while (0)

/* ---- memory ---- */

static void *cu_alloc(size_t bytes)
{
	void *p = NULL;
	cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);

	if (err != cudaSuccess) {
		(void)cudaGetLastError();
		llm_fail(err == cudaErrorMemoryAllocation ? LLM_ENOMEM : LLM_EINTERNAL,
			 "cudaMalloc of %zu bytes: %s (%s)", bytes, cudaGetErrorName(err),
			 cudaGetErrorString(err));
		return NULL;
	}
	err = cudaMemset(p, 0, bytes);
	if (err != cudaSuccess) {
		(void)cudaGetLastError();
		cudaFree(p);
		cuda_fail("cuda model ops", "cudaMemset of a new buffer", err);
		return NULL;
	}
	return p;
}

static void cu_free(void *p)
{
	if (p)
		note_cuda("cudaFree", cudaFree(p));
}

static void cu_zero(void *p, size_t bytes)
{
	if (pending == LLM_OK && bytes)
		note_cuda("cudaMemsetAsync", cudaMemsetAsync(p, 0, bytes, STREAM));
}

static void cu_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
		      size_t rows)
{
	if (pending != LLM_OK || !width || !rows)
		return;
	note_cuda("cudaMemcpy2DAsync (device to device)",
		  cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice,
				    STREAM));
}

static llm_err cu_upload(void *dst, const void *host_src, size_t bytes)
{
	cudaError_t err;

	if (pending != LLM_OK)
		return take_pending();
	if (!bytes)
		return LLM_OK;
	err = cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice);
	if (err == cudaSuccess)
		return LLM_OK;
	(void)cudaGetLastError();
	return cuda_fail("cuda model ops", "cudaMemcpy host to device", err);
}

static llm_err cu_download(void *host_dst, const void *src, size_t bytes)
{
	cudaError_t err;

	if (pending != LLM_OK)
		return take_pending();
	if (!bytes)
		return LLM_OK;
	err = cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost);
	if (err == cudaSuccess)
		return LLM_OK;
	(void)cudaGetLastError();
	return cuda_fail("cuda model ops", "cudaMemcpy device to host", err);
}

static llm_err cu_sync(void)
{
	note_cuda("cudaStreamSynchronize", cudaStreamSynchronize(STREAM));
	note_cuda("a kernel queued earlier", cudaGetLastError());
	return take_pending();
}

/* ---- kernels ---- */

static void cu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
			      int B, int T, int C, int OC)
{
	LAUNCH(cuda_matmul_forward(out, inp, weight, bias, B, T, C, OC, STREAM));
}

static void cu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			       const float *inp, const float *weight, int B, int T, int C, int OC)
{
	LAUNCH(cuda_matmul_backward(dinp, dweight, dbias, dout, inp, weight, B, T, C, OC, STREAM));
}

/* the bf16 table's matmuls: CUBLAS_COMPUTE_32F_FAST_16BF on fp32 tensors */
static void cu_matmul_forward_bf16(float *out, const float *inp, const float *weight,
				   const float *bias, int B, int T, int C, int OC)
{
	LAUNCH(cuda_matmul_forward_prec(out, inp, weight, bias, B, T, C, OC, LLM_MATMUL_BF16,
					STREAM));
}

static void cu_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout,
				    const float *inp, const float *weight, int B, int T, int C,
				    int OC)
{
	LAUNCH(cuda_matmul_backward_prec(dinp, dweight, dbias, dout, inp, weight, B, T, C, OC,
					 LLM_MATMUL_BF16, STREAM));
}

static void cu_residual_forward(float *out, const float *inp1, const float *inp2, int N)
{
	LAUNCH(cuda_residual_forward(out, inp1, inp2, N, STREAM));
}

static void cu_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe,
				 int B, int T, int C, int pos0)
{
	LAUNCH(cuda_embedding_forward(out, tokens, wte, wpe, B, T, C, pos0, STREAM));
}

static void cu_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
				  int B, int T, int C, int pos0)
{
	LAUNCH(cuda_embedding_backward(dwte, dwpe, dout, tokens, B, T, C, pos0, STREAM));
}

static void cu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
				 const float *weight, const float *bias, int N, int C, float eps)
{
	LAUNCH(cuda_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps, STREAM));
}

static void cu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
				  const float *inp, const float *weight, const float *mean,
				  const float *rstd, int N, int C)
{
	LAUNCH(cuda_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C,
				       STREAM));
}

static void cu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
			       int N, int C, float eps)
{
	LAUNCH(cuda_rmsnorm_forward(out, rstd, inp, weight, N, C, eps, STREAM));
}

static void cu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
				const float *weight, const float *rstd, int N, int C)
{
	LAUNCH(cuda_rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, STREAM));
}

static void cu_rope_forward(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
			    float theta)
{
	LAUNCH(cuda_rope_forward(out, inp, B, T, H, HS, pos0, theta, STREAM));
}

static void cu_rope_backward(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
			     float theta)
{
	LAUNCH(cuda_rope_backward(dinp, dout, B, T, H, HS, pos0, theta, STREAM));
}

static void cu_attention_forward(float *out, float *lse, const float *q, const float *k,
				 const float *v, const int *key_len, int causal, int B, int T,
				 int Tk, int Tcap, int NH, int NKV, int HS)
{
	LAUNCH(cuda_attention_forward(out, lse, q, k, v, key_len, causal, B, T, Tk, Tcap, NH, NKV,
				      HS, STREAM));
}

static void cu_attention_backward(float *dq, float *dk, float *dv, const float *dout,
				  const float *q, const float *k, const float *v, const float *out,
				  const float *lse, int causal, int B, int T, int NH, int NKV,
				  int HS)
{
	LAUNCH(cuda_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, causal, B, T, NH, NKV,
				       HS, STREAM));
}

static void cu_gelu_forward(float *out, const float *inp, long N, enum llm_gelu kind)
{
	LAUNCH(cuda_gelu_forward(out, inp, N, kind, STREAM));
}

static void cu_gelu_backward(float *dinp, const float *inp, const float *dout, long N,
			     enum llm_gelu kind)
{
	LAUNCH(cuda_gelu_backward(dinp, inp, dout, N, kind, STREAM));
}

static void cu_swiglu_forward(float *out, const float *gate, const float *up, long N)
{
	LAUNCH(cuda_swiglu_forward(out, gate, up, N, STREAM));
}

static void cu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
			       const float *up, long N)
{
	LAUNCH(cuda_swiglu_backward(dgate, dup, dout, gate, up, N, STREAM));
}

/* the count comes back to the host: synchronises */
static int cu_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
					    const int *targets, int N, int V, int ignore_index,
					    float dloss)
{
	int count = 0;

	LAUNCH(cuda_crossentropy_forward_backward(dlogits, losses, logits, targets, N, V,
						  ignore_index, dloss, &count, STREAM));
	return count;
}

static void cu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
			    float beta1, float beta2, float eps, float weight_decay, int t)
{
	LAUNCH(cuda_adamw_update(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, t,
				 STREAM));
}

/* the norm comes back to the host: synchronises */
static float cu_clip_grad_norm(float *grad, size_t n, float max_norm)
{
	float norm = 0.0f;

	LAUNCH(cuda_clip_grad_norm(grad, n, max_norm, &norm, STREAM));
	return norm;
}

static void cu_lora_forward(float *out, float *hidden, const float *inp, const float *lora_a,
			    const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
			    float scaling, float dropout, uint64_t seed)
{
	LAUNCH(cuda_lora_forward(out, hidden, inp, lora_a, lora_b, scratch, B, T, C, OC, r, scaling,
				 dropout, seed, STREAM));
}

static void cu_lora_backward(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
			     const float *inp, const float *hidden, const float *lora_a,
			     const float *lora_b, float *scratch, int B, int T, int C, int OC,
			     int r, float scaling, float dropout, uint64_t seed)
{
	LAUNCH(cuda_lora_backward(dinp, dlora_a, dlora_b, dout, inp, hidden, lora_a, lora_b,
				  scratch, B, T, C, OC, r, scaling, dropout, seed, STREAM));
}

static void cu_sample_forward(int *tokens, const float *logits, const struct llm_sampling *s,
			      void *scratch, int N, int V, uint64_t step)
{
	LAUNCH(cuda_sample_forward(tokens, logits, s, scratch, N, V, step, STREAM));
}

static void cu_grad_accumulate(float *acc, const float *grad, float weight, size_t n)
{
	LAUNCH(cuda_grad_accumulate(acc, grad, weight, n, STREAM));
}

static void cu_residual_layernorm_forward(float *res_out, float *out, float *mean, float *rstd,
					  const float *inp1, const float *inp2, const float *weight,
					  const float *bias, int N, int C, float eps)
{
	LAUNCH(cuda_residual_layernorm_forward(res_out, out, mean, rstd, inp1, inp2, weight, bias,
					       N, C, eps, STREAM));
}

static void cu_residual_rmsnorm_forward(float *res_out, float *out, float *rstd, const float *inp1,
					const float *inp2, const float *weight, int N, int C,
					float eps)
{
	LAUNCH(cuda_residual_rmsnorm_forward(res_out, out, rstd, inp1, inp2, weight, N, C, eps,
					     STREAM));
}

static void cu_mean_pool_forward(float *out, const float *inp, const int *lengths, int B, int T,
				 int C, int normalize)
{
	LAUNCH(cuda_mean_pool_forward(out, inp, lengths, B, T, C, normalize, STREAM));
}

/* ---- the table ---- */

static struct llm_ops make_ops(void)
{
	struct llm_ops o = {};

	o.name = "cuda";
	o.host_memory = false;
	o.alloc = cu_alloc;
	o.free = cu_free;
	o.zero = cu_zero;
	o.copy2d = cu_copy2d;
	o.upload = cu_upload;
	o.download = cu_download;
	o.sync = cu_sync;
	o.matmul_forward = cu_matmul_forward;
	o.matmul_backward = cu_matmul_backward;
	o.residual_forward = cu_residual_forward;
	o.embedding_forward = cu_embedding_forward;
	o.embedding_backward = cu_embedding_backward;
	o.layernorm_forward = cu_layernorm_forward;
	o.layernorm_backward = cu_layernorm_backward;
	o.rmsnorm_forward = cu_rmsnorm_forward;
	o.rmsnorm_backward = cu_rmsnorm_backward;
	o.rope_forward = cu_rope_forward;
	o.rope_backward = cu_rope_backward;
	o.attention_forward = cu_attention_forward;
	o.attention_backward = cu_attention_backward;
	o.gelu_forward = cu_gelu_forward;
	o.gelu_backward = cu_gelu_backward;
	o.swiglu_forward = cu_swiglu_forward;
	o.swiglu_backward = cu_swiglu_backward;
	o.crossentropy_forward_backward = cu_crossentropy_forward_backward;
	o.adamw_update = cu_adamw_update;
	o.clip_grad_norm = cu_clip_grad_norm;
	o.lora_forward = cu_lora_forward;
	o.lora_backward = cu_lora_backward;
	o.sample_forward = cu_sample_forward;
	o.grad_accumulate = cu_grad_accumulate;
	o.residual_layernorm_forward = cu_residual_layernorm_forward;
	o.residual_rmsnorm_forward = cu_residual_rmsnorm_forward;
	o.mean_pool_forward = cu_mean_pool_forward;
	return o;
}

/* The fp32 table with bf16 matmuls; everything else is shared. */
static struct llm_ops make_ops_bf16(void)
{
	struct llm_ops o = make_ops();

	o.name = "cuda-bf16";
	o.matmul_forward = cu_matmul_forward_bf16;
	o.matmul_backward = cu_matmul_backward_bf16;
	return o;
}

static const struct llm_ops cuda_ops = make_ops();
static const struct llm_ops cuda_ops_bf16 = make_ops_bf16();

const struct llm_ops *llm_ops_cuda(void)
{
	return &cuda_ops;
}

const struct llm_ops *llm_ops_cuda_bf16(void)
{
	return &cuda_ops_bf16;
}
