/* llmops compute kernels: the one public header for the CPU and CUDA twins.
 *
 * Naming: every kernel exists as a CPU reference and a CUDA version with the
 * same name after a backend prefix and the same argument order, e.g.
 * cpu_matmul_forward() in kernels/cpu/matmul.c and cuda_matmul_forward() in
 * kernels/cuda/matmul.cu. The CUDA version takes device pointers and one extra
 * last argument, the cudaStream_t to launch on passed as `void *stream` (NULL
 * is the legacy default stream), so this header stays plain C.
 *
 * Errors: shapes are the caller's contract for the CPU kernels, which return
 * void. The CUDA launchers return an llm_err: LLM_OK once the work is queued
 * on the stream, LLM_EINVAL for a bad shape or a NULL pointer (nothing is
 * launched), LLM_EINTERNAL when CUDA or cuBLAS report a failure. A failure
 * records a detail (naming the launcher and the CUDA error string) that
 * llm_last_error() returns; launchers never print. Launches are asynchronous:
 * an error from the kernel's execution shows up at a later synchronisation.
 *
 * Tensors are dense, row-major fp32 and each comment gives its shape in the
 * style of llm.c: (B,T,C) is batch, time (sequence position), channels.
 *
 * The whole header is extern "C" so the .cu files and C++ tests can include it;
 * C++ code must include llm_err.h only through this header (or inside its own
 * extern "C" block), since llm_err.h has no C++ guards of its own. */
#ifndef LLMOPS_KERNELS_H
#define LLMOPS_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "llm_err.h"

/* ---- shared helpers (host and device) ---- */

#ifdef __CUDACC__
#define LLM_HD __host__ __device__
#else
#define LLM_HD
#endif

/* Counter-based random numbers: the value for (seed, counter) is the same on
 * every backend and thread count, so dropout masks and sampling draws can be
 * recomputed in backward passes and reproduced on the GPU. splitmix64 mixing
 * of seed and counter; llm_uniform() gives a float in [0, 1) from the top 24
 * bits. */
static inline LLM_HD uint64_t llm_hash64(uint64_t seed, uint64_t counter)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (counter + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline LLM_HD float llm_uniform(uint64_t seed, uint64_t counter)
{
	return (float)(llm_hash64(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

/* GELU variants: tanh approximation (GPT-2 "gelu_new") and the exact erf form
 * (BERT "gelu"). */
enum llm_gelu { LLM_GELU_TANH = 0, LLM_GELU_ERF = 1 };

/* Precision of a CUDA matmul (cuda_matmul_forward_prec and friends); the
 * tensors are fp32 in memory either way and sums are fp32.
 *   LLM_MATMUL_FP32: fp32 products (no TF32), the CPU's numerics.
 *   LLM_MATMUL_BF16: operands rounded to bf16 (8-bit significand) for the
 *     products, as cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF does; each output
 *     is off by about 2^-8 * sqrt(K) times the typical |a*b| for K terms. */
enum llm_matmul_precision { LLM_MATMUL_FP32 = 0, LLM_MATMUL_BF16 = 1 };

/* bf16 bits of f rounded to nearest, ties to even (the top 16 bits of the
 * fp32 pattern after rounding); a NaN stays a quiet NaN of the same sign.
 * Shared by cpu_adamw_update_mixed and its CUDA twin so both round alike. */
static inline LLM_HD uint16_t llm_bf16_from_float(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x0040u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

/* The float a bf16 pattern stands for (exact). */
static inline LLM_HD float llm_bf16_to_float(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Query scoring metrics. */
enum llm_metric { LLM_METRIC_DOT = 0, LLM_METRIC_COSINE = 1 };

/* Sampling settings for one draw per row. temperature <= 0 means greedy
 * (argmax, lowest index on ties; the other fields are ignored). Otherwise the
 * logits are divided by temperature, then filtered in this order, as
 * transformers' logits processors do: top_k (0 = off), top_p (1 = off; keep
 * the smallest set of most likely tokens whose probability reaches top_p),
 * min_p (0 = off; drop tokens below min_p times the top probability). The
 * draw for row n of decoding step `step` uses llm_uniform(seed, step * N + n). */
struct llm_sampling {
	float temperature;
	int top_k;
	float top_p;
	float min_p;
	uint64_t seed;
};

/* ---- CPU reference kernels (kernels/cpu/) ----
 *
 * Conventions. Shapes: B batch, T positions in this call, C channels, OC
 * output channels, V vocabulary, NH query heads, NKV key/value heads
 * (NH % NKV == 0, grouped-query attention), HS head size, N rows (usually
 * B*T). Forward kernels overwrite their outputs unless the contract says
 * "accumulates". Backward kernels ACCUMULATE (+=) into every gradient they
 * produce, parameter and input gradients alike (llm.c's convention), so the
 * caller zeroes gradient buffers once per step; a NULL gradient pointer skips
 * that gradient (frozen weights, no input gradient needed). Outputs must not
 * overlap inputs unless the contract allows it. Kernels never allocate on the
 * heap except where a contract says so (the GEMM inside the matmul, LoRA
 * and score kernels may allocate packing buffers, freed before it returns),
 * and parallelise with OpenMP. */

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC).
 * bias may be NULL (no bias). out must not overlap inp, weight or bias; its
 * previous contents are never read. All of B, T, C, OC must be >= 1 and
 * B*T must fit in an int. Uses the internal SGEMM dispatch
 * (kernels/cpu/gemm.h: own kernels or OpenBLAS; fp32 accumulation). */
void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
			int T, int C, int OC);

/* Backward of cpu_matmul_forward. Accumulates dinp (B,T,C) += dout . weight,
 * dweight (OC,C) += dout^T . inp, dbias (OC) += sum over B,T of dout. Any of
 * dinp, dweight, dbias may be NULL. */
void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			 const float *inp, const float *weight, int B, int T, int C, int OC);

/* out (N) = inp1 (N) + inp2 (N), N >= 0. out may be the same pointer as inp1
 * and/or inp2 but must not overlap them otherwise. */
void cpu_residual_forward(float *out, const float *inp1, const float *inp2, int N);

/* out (B,T,C) = wte[tokens[b,t]] (V,C) + wpe[pos0 + t] (maxT,C).
 * tokens (B,T) must be in [0, V); wpe may be NULL (no learned positions, as in
 * Llama); pos0 is the position of the first token (0 except when decoding
 * with a KV cache). */
void cpu_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe, int B,
			   int T, int C, int pos0);

/* Backward: accumulates dwte (V,C) and dwpe (maxT,C) from dout (B,T,C).
 * dwpe may be NULL. Deterministic (no atomics; fixed summation order). */
void cpu_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
			    int T, int C, int pos0);

/* out (N,C) = (inp - mean) * rstd * weight (C) + bias (C), per row, where
 * rstd = 1/sqrt(var + eps) with the biased variance, as torch.nn.LayerNorm.
 * mean (N) and rstd (N) are saved for backward and may be NULL. out may equal
 * inp. */
void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
			   const float *weight, const float *bias, int N, int C, float eps);

/* Backward of cpu_layernorm_forward; accumulates dinp (N,C), dweight (C),
 * dbias (C). Needs the mean and rstd saved by the forward pass. */
void cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			    const float *inp, const float *weight, const float *mean,
			    const float *rstd, int N, int C);

/* Residual add fused with the LayerNorm that reads its result, one pass over
 * each row: res_out (N,C) = inp1 (N,C) + inp2 (N,C), then out (N,C), mean (N)
 * and rstd (N) as cpu_layernorm_forward(out, mean, rstd, res_out, weight,
 * bias, N, C, eps). The same bits as cpu_residual_forward followed by
 * cpu_layernorm_forward. mean and rstd may be NULL. res_out may be the same
 * pointer as inp1 and/or inp2 (the residual stream updated in place); out
 * must not overlap res_out, inp1, inp2 or the parameters. */
void cpu_residual_layernorm_forward(float *res_out, float *out, float *mean, float *rstd,
				    const float *inp1, const float *inp2, const float *weight,
				    const float *bias, int N, int C, float eps);

/* out (N,C) = weight (C) * inp * rstd, rstd = 1/sqrt(mean(inp^2) + eps) per
 * row, as LlamaRMSNorm (computed in fp32). rstd (N) may be NULL. out may equal
 * inp. */
void cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
			 int C, float eps);

/* Backward of cpu_rmsnorm_forward; accumulates dinp (N,C) and dweight (C). */
void cpu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
			  const float *weight, const float *rstd, int N, int C);

/* Residual add fused with the RMSNorm that reads its result, one pass over
 * each row: res_out (N,C) = inp1 (N,C) + inp2 (N,C), then out (N,C) and
 * rstd (N) as cpu_rmsnorm_forward(out, rstd, res_out, weight, N, C, eps).
 * The same bits as cpu_residual_forward followed by cpu_rmsnorm_forward.
 * rstd may be NULL. res_out may be the same pointer as inp1 and/or inp2; out
 * must not overlap res_out, inp1, inp2 or weight. */
void cpu_residual_rmsnorm_forward(float *res_out, float *out, float *rstd, const float *inp1,
				  const float *inp2, const float *weight, int N, int C, float eps);

/* Rotary position embedding in the Hugging Face Llama layout ("rotate_half":
 * element i pairs with i + HS/2, not interleaved). inp and out are (B,T,H,HS)
 * with H heads (NH for queries, NKV for keys); token t has position pos0 + t;
 * pair i turns by angle pos * theta^(-2i/HS). out may equal inp. HS even. */
void cpu_rope_forward(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
		      float theta);

/* Backward: rotates dout by the opposite angle and accumulates into dinp
 * (B,T,H,HS). */
void cpu_rope_backward(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
		       float theta);

/* Scaled dot-product attention, 1/sqrt(HS) scale, grouped-query heads (query
 * head h reads key/value head h / (NH/NKV)), computed in key blocks with an
 * online softmax so memory is O(T * block), never a (T,Tk) matrix.
 *   out (B,T,NH,HS), q (B,T,NH,HS)
 *   k, v (B,Tcap,NKV,HS) of which positions [0, Tk) are valid; Tcap >= Tk is
 *        the row capacity of a KV cache (Tcap == Tk without one)
 *   lse (B,NH,T) receives each row's log-sum-exp of the scaled scores, for
 *        backward; may be NULL
 *   causal: query t (absolute position Tk - T + t) sees keys up to its own
 *        position; otherwise every valid key
 *   key_len (B) or NULL: batch row b sees only keys [0, key_len[b]) (right
 *        padding, as BERT's attention mask); a query that sees no key gets 0.
 * T >= 1, Tk >= T when causal. */
void cpu_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
			   const int *key_len, int causal, int B, int T, int Tk, int Tcap, int NH,
			   int NKV, int HS);

/* Backward of cpu_attention_forward for training (no cache, no key_len:
 * Tk == Tcap == T). Accumulates dq (B,T,NH,HS), dk and dv (B,T,NKV,HS) from
 * dout, recomputing probabilities from q, k and the saved lse; out is the
 * forward output. Uses O(T * block) scratch per thread, allocated inside. */
void cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
			    const float *k, const float *v, const float *out, const float *lse,
			    int causal, int B, int T, int NH, int NKV, int HS);

/* out (N) = gelu(inp (N)) in the chosen variant. out may equal inp. */
void cpu_gelu_forward(float *out, const float *inp, long N, enum llm_gelu kind);

/* Accumulates dinp (N) += gelu'(inp) * dout. */
void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, long N,
		       enum llm_gelu kind);

/* out (N) = silu(gate) * up = gate * sigmoid(gate) * up (Llama MLP).
 * out may equal gate or up. */
void cpu_swiglu_forward(float *out, const float *gate, const float *up, long N);

/* Accumulates dgate (N) and dup (N) from dout (N). */
void cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
			 const float *up, long N);

/* out (N,V) = softmax over each row of inp (N,V), max-subtracted, fp32.
 * out may equal inp. */
void cpu_softmax_forward(float *out, const float *inp, int N, int V);

/* Fused softmax + cross-entropy + gradient. For each row n of logits (N,V)
 * with targets[n] != ignore_index: losses[n] = logsumexp(row) - row[target],
 * and, if dlogits is not NULL, dlogits[n] = (softmax(row) - onehot(target)) *
 * dloss. Ignored rows get loss 0 and zero gradient. Returns the number of
 * rows that were not ignored. dlogits may equal logits (in place; it is
 * overwritten, not accumulated). A target outside [0,V) that is not
 * ignore_index is the caller's bug. The mean loss as torch computes it is
 * sum(losses) / returned count, with dloss = 1 / count. */
int cpu_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
				      const int *targets, int N, int V, int ignore_index,
				      float dloss);

/* One AdamW step over n parameters, as torch.optim.AdamW: param -= lr * wd *
 * param; m = beta1 m + (1-beta1) g; v = beta2 v + (1-beta2) g^2; param -= lr *
 * (m / (1-beta1^t)) / (sqrt(v / (1-beta2^t)) + eps). t is the 1-based step
 * number. m and v start as zeros. */
void cpu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
		      float beta1, float beta2, float eps, float weight_decay, int t);

/* Mixed-precision AdamW: the step of cpu_adamw_update on the fp32 master
 * weights master (n), bit for bit (it calls it), then param_bf16 (n) = the
 * updated master rounded to bf16 by llm_bf16_from_float (nearest, ties to
 * even; no stochastic rounding). The CPU version makes two passes; it is
 * the reference for cuda_adamw_update_mixed. */
void cpu_adamw_update_mixed(float *master, uint16_t *param_bf16, const float *grad, float *m,
			    float *v, size_t n, float lr, float beta1, float beta2, float eps,
			    float weight_decay, int t);

/* Global-norm clipping over one contiguous gradient buffer (n): computes the
 * L2 norm in double, and if max_norm > 0 and c = max_norm / (norm + 1e-6) is
 * below 1 scales grad by c, as torch.nn.utils.clip_grad_norm_. Returns the
 * norm before clipping. */
float cpu_clip_grad_norm(float *grad, size_t n, float max_norm);

/* Gradient accumulation over micro batches: acc (n) += weight * grad (n),
 * each product rounded before the add. */
void cpu_grad_accumulate(float *acc, const float *grad, float weight, size_t n);

/* LoRA branch of a linear layer (PEFT semantics), added to the base output:
 *   out (B,T,OC) += scaling * (drop(inp) . lora_a^T) . lora_b^T   (accumulates)
 *   hidden (B,T,r) = drop(inp) . lora_a^T, saved for backward
 * inp (B,T,C), lora_a (r,C), lora_b (OC,r). drop() is inverted dropout with
 * probability `dropout`: element i of inp is kept, scaled by 1/(1-dropout),
 * when llm_uniform(seed, i) >= dropout; dropout == 0 means identity. scratch
 * holds B*T*C floats when dropout > 0 and may be NULL otherwise. */
void cpu_lora_forward(float *out, float *hidden, const float *inp, const float *lora_a,
		      const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
		      float scaling, float dropout, uint64_t seed);

/* Backward of cpu_lora_forward with the same seed and dropout: accumulates
 * dinp (B,T,C) (may be NULL), dlora_a (r,C), dlora_b (OC,r). scratch holds
 * B*T*(r + C) floats. */
void cpu_lora_backward(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
		       const float *inp, const float *hidden, const float *lora_a,
		       const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
		       float scaling, float dropout, uint64_t seed);

/* Sentence embeddings: out (B,C) = mean of inp (B,T,C) over positions
 * [0, lengths[b]) (lengths NULL = all T; a zero length gives zeros), then,
 * if normalize, divided by max(L2 norm, 1e-12) as torch.nn.functional
 * .normalize (sentence-transformers' Normalize module). */
void cpu_mean_pool_forward(float *out, const float *inp, const int *lengths, int B, int T, int C,
			   int normalize);

/* Top k of each row of inp (N,V), 1 <= k <= V: values (N,k) descending and
 * their indices (N,k); equal values keep the lower index first. */
void cpu_topk_forward(float *values, int *indices, const float *inp, int N, int V, int k);

/* scores (Q,N) = similarity of each query (Q,D) with each row of matrix (N,D):
 * the inner product, or the cosine (each side divided by its L2 norm; a zero
 * vector scores 0). One sgemm plus norms. */
void cpu_score_forward(float *scores, const float *queries, const float *matrix, int Q, int N,
		       int D, enum llm_metric metric);

/* Draws one token per row of logits (N,V) with the settings in s (see struct
 * llm_sampling) into tokens (N). step numbers the decoding step so every draw
 * has its own counter. scratch holds N*V floats and N*V ints (as one buffer of
 * 2*N*V 4-byte slots). logits are not modified. */
void cpu_sample_forward(int *tokens, const float *logits, const struct llm_sampling *s,
			void *scratch, int N, int V, uint64_t step);

/* ---- CUDA kernels (kernels/cuda/); device pointers, async on stream ---- */

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC) by one cuBLASLt
 * GEMM in fp32 (CUBLAS_COMPUTE_32F, no TF32) with the bias fused into its
 * epilogue; bias may be NULL. Shapes or alignments no cuBLASLt algorithm
 * takes fall back to cublasGemmEx plus a bias kernel (kernels/cuda/
 * matmul.cu), so any shape works. GEMMs that want a workspace share one of
 * 32 MiB, allocated at the first such call and ordered across streams by an
 * event. Returns LLM_EINVAL
 * unless B, T, C, OC >= 1, B*T fits in an int and out, inp, weight are
 * non-NULL. The first cuBLAS-based call (this one, matmul backward, LoRA,
 * scores) creates one process-wide cuBLAS handle and one cuBLASLt handle on
 * the device current at that time; calls are serialised on it by a mutex so any thread may call,
 * but every later call must run with that same device current (otherwise
 * LLM_EUNSUPPORTED). out must not overlap the inputs. */
llm_err cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
			    int B, int T, int C, int OC, void *stream);

/* As cuda_matmul_forward in the given precision (LLM_EINVAL for another
 * value): LLM_MATMUL_BF16 runs CUBLAS_COMPUTE_32F_FAST_16BF, bf16 tensor-core
 * products of the fp32 tensors with fp32 accumulation. */
llm_err cuda_matmul_forward_prec(float *out, const float *inp, const float *weight,
				 const float *bias, int B, int T, int C, int OC,
				 enum llm_matmul_precision prec, void *stream);

/* out (N) = inp1 (N) + inp2 (N). N == 0 queues nothing. Returns LLM_EINVAL if
 * N < 0 or a pointer is NULL. out may be the same pointer as inp1 and/or inp2
 * but must not overlap them otherwise. */
llm_err cuda_residual_forward(float *out, const float *inp1, const float *inp2, int N,
			      void *stream);

/* Backward of cuda_matmul_forward: dinp (B,T,C) += dout . weight and
 * dweight (OC,C) += dout^T . inp by two fp32 cuBLASLt GEMMs with beta = 1 on
 * the shared handles (same device rule and fallback as
 * cuda_matmul_forward), dbias (OC)
 * += column sums of dout by a deterministic kernel (no atomics). Any gradient
 * may be NULL; weight may be NULL when dinp is, inp when dweight is.
 * LLM_EINVAL unless B, T, C, OC >= 1, B*T fits in an int and dout is set. */
llm_err cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			     const float *inp, const float *weight, int B, int T, int C, int OC,
			     void *stream);

/* As cuda_matmul_backward with both GEMMs in the given precision; dbias is
 * summed in fp32 from the fp32 dout either way. */
llm_err cuda_matmul_backward_prec(float *dinp, float *dweight, float *dbias, const float *dout,
				  const float *inp, const float *weight, int B, int T, int C,
				  int OC, enum llm_matmul_precision prec, void *stream);

/* As cpu_embedding_forward; tokens (B,T) is a device array whose values are
 * not checked (out-of-range tokens read out of bounds, as on the CPU).
 * LLM_EINVAL unless B, T, C >= 1, pos0 >= 0 and out, tokens, wte are set. */
llm_err cuda_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe,
			       int B, int T, int C, int pos0, void *stream);

/* As cpu_embedding_backward, deterministic without atomics: the first
 * occurrence of each token in tokens sums every later row with that token in
 * (b,t) order and adds once into dwte; dwpe sums over b in order. Work grows
 * with (B*T)^2 / 1024 token comparisons on top of the B*T*C data. */
llm_err cuda_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
				int B, int T, int C, int pos0, void *stream);

/* As cpu_layernorm_forward, one warp per row, statistics in double. LLM_EINVAL
 * unless N, C >= 1 and out, inp, weight, bias are set. */
llm_err cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
			       const float *weight, const float *bias, int N, int C, float eps,
			       void *stream);

/* As cpu_layernorm_backward (accumulates; NULL gradients skipped); dinp by
 * one warp per row, dweight and dbias by a deterministic column reduction. */
llm_err cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
				const float *inp, const float *weight, const float *mean,
				const float *rstd, int N, int C, void *stream);

/* As cpu_residual_layernorm_forward (same aliasing rules), one warp per
 * row, statistics in double. LLM_EINVAL unless N, C >= 1 and res_out, out,
 * inp1, inp2, weight, bias are set. */
llm_err cuda_residual_layernorm_forward(float *res_out, float *out, float *mean, float *rstd,
					const float *inp1, const float *inp2, const float *weight,
					const float *bias, int N, int C, float eps, void *stream);

/* As cpu_rmsnorm_forward, one warp per row, sum of squares in double. */
llm_err cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
			     int C, float eps, void *stream);

/* As cpu_residual_rmsnorm_forward (same aliasing rules), one warp per row,
 * sum of squares in double. LLM_EINVAL unless N, C >= 1 and res_out, out,
 * inp1, inp2, weight are set. */
llm_err cuda_residual_rmsnorm_forward(float *res_out, float *out, float *rstd, const float *inp1,
				      const float *inp2, const float *weight, int N, int C,
				      float eps, void *stream);

/* As cpu_rmsnorm_backward (accumulates; NULL gradients skipped). */
llm_err cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
			      const float *weight, const float *rstd, int N, int C, void *stream);

/* As cpu_rope_forward (HF rotate_half layout, cos/sin as HF computes them).
 * LLM_EINVAL unless B, T, H >= 1, HS >= 2 even, pos0 >= 0 and theta > 0. */
llm_err cuda_rope_forward(float *out, const float *inp, int B, int T, int H, int HS, int pos0,
			  float theta, void *stream);

/* As cpu_rope_backward (accumulates into dinp). */
llm_err cuda_rope_backward(float *dinp, const float *dout, int B, int T, int H, int HS, int pos0,
			   float theta, void *stream);

/* As cpu_attention_forward: fused flash-attention forward, one block per
 * tile of query rows of one (b, head), K/V tiles in shared memory, online
 * softmax; lse may be NULL. key_len is a device array (B) or NULL. Design
 * limit: HS <= 128 (LLM_EINVAL above). LLM_EINVAL also unless B, T, Tk, NH,
 * NKV, HS >= 1, NH % NKV == 0, Tcap >= Tk, and Tk >= T when causal. */
llm_err cuda_attention_forward(float *out, float *lse, const float *q, const float *k,
			       const float *v, const int *key_len, int causal, int B, int T, int Tk,
			       int Tcap, int NH, int NKV, int HS, void *stream);

/* As cpu_attention_backward (Tk == Tcap == T, accumulates, NULL gradients
 * skipped): probabilities recomputed from q, k and lse; dk and dv by one
 * block per (b, kv head, key tile), dq by one block per query tile, so no
 * two blocks write the same element (no atomics, deterministic). HS <= 128. */
llm_err cuda_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
				const float *k, const float *v, const float *out, const float *lse,
				int causal, int B, int T, int NH, int NKV, int HS, void *stream);

/* As cpu_gelu_forward / cpu_gelu_backward; N == 0 queues nothing. */
llm_err cuda_gelu_forward(float *out, const float *inp, long N, enum llm_gelu kind, void *stream);
llm_err cuda_gelu_backward(float *dinp, const float *inp, const float *dout, long N,
			   enum llm_gelu kind, void *stream);

/* As cpu_swiglu_forward / cpu_swiglu_backward; N == 0 queues nothing. */
llm_err cuda_swiglu_forward(float *out, const float *gate, const float *up, long N, void *stream);
llm_err cuda_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
			     const float *up, long N, void *stream);

/* As cpu_softmax_forward: one block per row, a single online (max, sum)
 * pass then the write pass. LLM_EINVAL unless N, V >= 1. */
llm_err cuda_softmax_forward(float *out, const float *inp, int N, int V, void *stream);

/* As cpu_crossentropy_forward_backward, one block per row. The count of rows
 * not ignored, which the CPU twin returns, goes to *count (a host pointer)
 * when count is not NULL: that needs a small stream-ordered workspace and a
 * synchronisation of the stream before returning. With count NULL the call
 * is fully asynchronous. */
llm_err cuda_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
					   const int *targets, int N, int V, int ignore_index,
					   float dloss, int *count, void *stream);

/* As cpu_adamw_update; LLM_EINVAL if t < 1 or a pointer is NULL. */
llm_err cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
			  float beta1, float beta2, float eps, float weight_decay, int t,
			  void *stream);

/* As cpu_adamw_update_mixed in one pass over the data (master, grad, m, v
 * read; master, m, v and param_bf16 written: 30 bytes per parameter). The
 * master matches cuda_adamw_update bit for bit and the CPU twin within a
 * few ulp (fused multiply-adds); param_bf16 is the updated master rounded
 * by llm_bf16_from_float. LLM_EINVAL if t < 1 or a pointer is NULL. */
llm_err cuda_adamw_update_mixed(float *master, uint16_t *param_bf16, const float *grad, float *m,
				float *v, size_t n, float lr, float beta1, float beta2, float eps,
				float weight_decay, int t, void *stream);

/* As cpu_clip_grad_norm, deterministic (two-stage reduction, no atomics);
 * the clipping is decided on the device. The norm the CPU twin returns goes
 * to *norm (a host pointer) when norm is not NULL, which synchronises the
 * stream; with norm NULL the call is fully asynchronous. Uses a workspace of
 * about 8 KiB from the stream-ordered pool (cudaMallocAsync). */
llm_err cuda_clip_grad_norm(float *grad, size_t n, float max_norm, float *norm, void *stream);

/* As cpu_grad_accumulate, with the multiply-add fused (one rounding);
 * LLM_EINVAL for a NULL pointer when n > 0. */
llm_err cuda_grad_accumulate(float *acc, const float *grad, float weight, size_t n, void *stream);

/* As cpu_lora_forward / cpu_lora_backward (same scratch sizes and layout,
 * same dropout mask from llm_uniform): fp32 SGEMMs on the shared cuBLAS
 * handle, dropout as elementwise kernels. */
llm_err cuda_lora_forward(float *out, float *hidden, const float *inp, const float *lora_a,
			  const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
			  float scaling, float dropout, uint64_t seed, void *stream);
llm_err cuda_lora_backward(float *dinp, float *dlora_a, float *dlora_b, const float *dout,
			   const float *inp, const float *hidden, const float *lora_a,
			   const float *lora_b, float *scratch, int B, int T, int C, int OC, int r,
			   float scaling, float dropout, uint64_t seed, void *stream);

/* As cpu_mean_pool_forward (lengths is a device array or NULL), one block
 * per batch row; the L2 norm is summed in double. */
llm_err cuda_mean_pool_forward(float *out, const float *inp, const int *lengths, int B, int T,
			       int C, int normalize, void *stream);

/* As cpu_topk_forward (NaN first, ties by lower index), one block per row:
 * a radix select finds the k-th key, the k winners are gathered and sorted
 * in shared memory. Design limit: k <= 2048 (LLM_EINVAL above). */
llm_err cuda_topk_forward(float *values, int *indices, const float *inp, int N, int V, int k,
			  void *stream);

/* As cpu_score_forward: one SGEMM on the shared cuBLAS handle, then for the
 * cosine metric the norms (in double) into a stream-ordered workspace of
 * Q + N doubles and a scaling kernel. */
llm_err cuda_score_forward(float *scores, const float *queries, const float *matrix, int Q, int N,
			   int D, enum llm_metric metric, void *stream);

/* As cpu_sample_forward; s is a host pointer, scratch is unused here (it may
 * be NULL) since one block per row finds each cut (top-k, top-p, the draw)
 * by a radix descent over the row without sorting it. Sums of weights are
 * taken in double in another order than the CPU's, so a draw that lands
 * within ~1e-12 of a boundary may pick the neighbour. */
llm_err cuda_sample_forward(int *tokens, const float *logits, const struct llm_sampling *s,
			    void *scratch, int N, int V, uint64_t step, void *stream);

/* ---- backend selection (kernels/cuda/device.cu; CPU-only stubs in
 * kernels/cpu/backend.c when CUDA is not linked in) ---- */

enum llm_backend { LLM_BACKEND_CPU = 0, LLM_BACKEND_CUDA = 1 };

/* Makes device the current CUDA device on this thread and creates its
 * context. Writes "NAME, sm_XY, N GiB" into desc (desclen bytes, may be
 * NULL/0). LLM_ENOTFOUND when there is no such device, LLM_EUNSUPPORTED when
 * it is older than sm_90 or CUDA is not linked in, LLM_EINTERNAL when CUDA
 * fails to initialise. */
llm_err cuda_device_init(int device, char *desc, size_t desclen);

/* Picks the backend a program should run on: LLM_BACKEND_CUDA when
 * cuda_device_init(device) succeeds, else LLM_BACKEND_CPU. why (whylen
 * bytes, may be NULL) receives one line saying which backend and why, for the
 * program's log. Never fails. */
enum llm_backend llm_backend_select(int device, char *why, size_t whylen);

/* The backend the last llm_backend_select() call in this process picked;
 * LLM_BACKEND_CPU before any call. The collectives' "auto" backend asks it. */
enum llm_backend llm_backend_current(void);

/* Destroys the process-wide cuBLAS and cuBLASLt handles, the matmul
 * workspace and the cached cuBLASLt algorithm choices if they were created
 * (the next
 * cuBLAS-based launcher creates a new one). Call it with no kernel calls in
 * flight on other threads, and before cudaDeviceReset(); calling it when no
 * handle exists is a no-op. */
void cuda_kernels_free(void);

#ifdef __cplusplus
}
#endif

#endif
