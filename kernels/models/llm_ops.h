/* The backend a model runs on: its kernels and its memory, as one table.
 *
 * Private to kernels/models/ and kernels/cuda/model_ops.cu. The decoder
 * models (llm_model.c, llm_model_io.c) call every kernel and every memory
 * operation through a `const struct llm_ops *`, so the same forward,
 * backward, optimizer and decoding code runs on host memory with the cpu_*
 * kernels (llm_ops_cpu) or on device memory with the cuda_* launchers
 * (llm_ops_cuda(), defined only when the CUDA objects are linked in).
 *
 * Kernel entries have the CPU kernels' signatures exactly (llmops_kernels.h
 * gives shapes and semantics), so the CPU table is the cpu_* functions
 * themselves and the CPU path costs one indirect call per kernel. A backend
 * whose kernels can fail (CUDA) records its first failure and skips the work
 * queued after it; sync() waits for the queued work and returns that failure
 * (with its detail for llm_last_error()) once, then clears it. Callers call
 * sync() at the end of every public operation.
 *
 * Memory: alloc() gives zeroed memory of the backend (host or device);
 * pointers into it are valid only for that backend's kernels and memory
 * operations. Host code reads and writes it through the llm_ops_host_*
 * helpers below, which alias the memory itself when host_memory is set (no
 * copy on the CPU) and go through a host staging buffer otherwise. Design
 * limit: one stream (CUDA's legacy default stream), one thread of control
 * per model. */
#ifndef LLM_OPS_H
#define LLM_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmops_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llm_ops {
	const char *name; /* "cpu", "cuda", "cuda-bf16" */
	bool host_memory; /* buffers are plain host memory */

	/* ---- memory ---- */
	/* bytes of zeroed backend memory, or NULL (detail recorded) */
	void *(*alloc)(size_t bytes);
	void (*free)(void *p); /* NULL is a no-op */
	void (*zero)(void *p, size_t bytes);
	/* rows rows of width bytes from src (row pitch spitch) to dst (row pitch
	 * dpitch), both in backend memory; the regions must not overlap */
	void (*copy2d)(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
		       size_t rows);
	/* host -> backend and backend -> host, complete when they return */
	llm_err (*upload)(void *dst, const void *host_src, size_t bytes);
	llm_err (*download)(void *host_dst, const void *src, size_t bytes);
	/* waits for queued work; the first failure since the last sync, or LLM_OK */
	llm_err (*sync)(void);

	/* ---- kernels (see the cpu_* twins in llmops_kernels.h) ---- */
	void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias,
			       int B, int T, int C, int OC);
	void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
				const float *inp, const float *weight, int B, int T, int C, int OC);
	void (*residual_forward)(float *out, const float *inp1, const float *inp2, int N);
	void (*embedding_forward)(float *out, const int *tokens, const float *wte, const float *wpe,
				  int B, int T, int C, int pos0);
	void (*embedding_backward)(float *dwte, float *dwpe, const float *dout, const int *tokens,
				   int B, int T, int C, int pos0);
	void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
				  const float *weight, const float *bias, int N, int C, float eps);
	void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
				   const float *inp, const float *weight, const float *mean,
				   const float *rstd, int N, int C);
	void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight,
				int N, int C, float eps);
	void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp,
				 const float *weight, const float *rstd, int N, int C);
	void (*rope_forward)(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
			     float theta);
	void (*rope_backward)(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
			      float theta);
	void (*attention_forward)(float *out, float *lse, const float *q, const float *k,
				  const float *v, const int *key_len, int causal, int B, int T,
				  int Tk, int Tcap, int NH, int NKV, int HS);
	void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout,
				   const float *q, const float *k, const float *v, const float *out,
				   const float *lse, int causal, int B, int T, int NH, int NKV,
				   int HS);
	void (*gelu_forward)(float *out, const float *inp, long N, enum llm_gelu kind);
	void (*gelu_backward)(float *dinp, const float *inp, const float *dout, long N,
			      enum llm_gelu kind);
	void (*swiglu_forward)(float *out, const float *gate, const float *up, long N);
	void (*swiglu_backward)(float *dgate, float *dup, const float *dout, const float *gate,
				const float *up, long N);
	int (*crossentropy_forward_backward)(float *dlogits, float *losses, const float *logits,
					     const int *targets, int N, int V, int ignore_index,
					     float dloss);
	void (*adamw_update)(float *param, const float *grad, float *m, float *v, size_t n,
			     float lr, float beta1, float beta2, float eps, float weight_decay,
			     int t);
	float (*clip_grad_norm)(float *grad, size_t n, float max_norm);
	void (*lora_forward)(float *out, float *hidden, const float *inp, const float *lora_a,
			     const float *lora_b, float *scratch, int B, int T, int C, int OC,
			     int r, float scaling, float dropout, uint64_t seed);
	void (*lora_backward)(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
			      const float *inp, const float *hidden, const float *lora_a,
			      const float *lora_b, float *scratch, int B, int T, int C, int OC,
			      int r, float scaling, float dropout, uint64_t seed);
	void (*sample_forward)(int *tokens, const float *logits, const struct llm_sampling *s,
			       void *scratch, int N, int V, uint64_t step);
	void (*grad_accumulate)(float *acc, const float *grad, float weight, size_t n);
	/* a residual add fused with the norm that reads its result */
	void (*residual_layernorm_forward)(float *res_out, float *out, float *mean, float *rstd,
					   const float *inp1, const float *inp2,
					   const float *weight, const float *bias, int N, int C,
					   float eps);
	void (*residual_rmsnorm_forward)(float *res_out, float *out, float *rstd, const float *inp1,
					 const float *inp2, const float *weight, int N, int C,
					 float eps);
	/* the BERT embedder's pooling (bert.c); lengths in backend memory */
	void (*mean_pool_forward)(float *out, const float *inp, const int *lengths, int B, int T,
				  int C, int normalize);
};

/* The CPU kernels over host memory (calloc/free). */
extern const struct llm_ops llm_ops_cpu;

/* The same kernels and memory, but host_memory false, so every host read and
 * write of a model buffer takes the staged copies a device backend needs
 * (LLM_MODEL_STAGED). It exists to test those code paths on machines without
 * a GPU; results equal llm_ops_cpu's bit for bit. */
extern const struct llm_ops llm_ops_cpu_staged;

/* The CUDA launchers over memory of the device current on the calling
 * thread (kernels/cuda/model_ops.cu), or NULL with LLM_EUNSUPPORTED as the
 * detail when the program is built without CUDA (a weak stub in llm_ops.c).
 * Select and initialise the device first (llm_backend_select()). */
const struct llm_ops *llm_ops_cuda(void);

/* As llm_ops_cuda() with bf16 matmuls (LLM_MATMUL_BF16: bf16 products, fp32
 * accumulation and fp32 tensors); every other entry is the same. */
const struct llm_ops *llm_ops_cuda_bf16(void);

/* *out = the table for creation flags (llm_model's; the embedder's
 * LLM_EMBEDDER_* use the same bits): llm_ops_cpu, llm_ops_cpu_staged with
 * LLM_MODEL_STAGED, llm_ops_cuda() with LLM_MODEL_CUDA, llm_ops_cuda_bf16()
 * with LLM_MODEL_CUDA | LLM_MODEL_BF16. Details name src. LLM_EINVAL for
 * unknown flags or STAGED with CUDA; LLM_EUNSUPPORTED for BF16 without CUDA
 * (the CPU kernels are fp32 only) or CUDA in a program built without it. */
llm_err llm_ops_for_flags(unsigned flags, const char *src, const struct llm_ops **out);

/* ---- host access to backend memory ---- */

/* A host buffer that stages copies for backends without host memory; grows
 * on demand, freed by llm_stage_free(). Zero-initialise it. */
struct llm_stage {
	void *p;
	size_t cap;
};

void llm_stage_free(struct llm_stage *st);

/* *out = a host pointer to the bytes at src in ops' memory: src itself
 * when ops->host_memory, else a copy in st (valid until st's next use).
 * LLM_ENOMEM or the backend's copy failure. */
llm_err llm_ops_host_view(const struct llm_ops *ops, struct llm_stage *st, const void *src,
			  size_t bytes, const void **out);

/* *out = a host buffer of bytes that llm_ops_host_commit() then stores at
 * dst: dst itself when ops->host_memory (its contents as they are), else
 * st's buffer (contents undefined). LLM_ENOMEM. */
llm_err llm_ops_host_buffer(const struct llm_ops *ops, struct llm_stage *st, void *dst,
			    size_t bytes, void **out);

/* Stores host (from llm_ops_host_buffer()) at dst; nothing to do when they
 * are the same memory. */
llm_err llm_ops_host_commit(const struct llm_ops *ops, void *dst, const void *host, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
