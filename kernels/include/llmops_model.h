/* Decoder language models over the CPU kernel API: GPT-2 (GPT2LMHeadModel)
 * and Llama (LlamaForCausalLM), fp32.
 *
 * A model owns one allocation per memory category (parameters, parameter
 * gradients, AdamW moments, activations, LoRA adapters), each sized from a
 * plan computed when the model is created for a maximum batch max_B and
 * sequence length max_T the caller gives; no call after creation allocates
 * except the first training call (gradients, moments), adding LoRA adapters,
 * and the save functions (a staging copy). docs/internals/models.md describes
 * the layout.
 *
 * Parameters keep the kernels' layout (linear weights (OC,C)); names and
 * shapes in every file this module reads or writes are the Hugging Face ones
 * (GPT-2's Conv1D weights are (in,out) there and transposed on the way in and
 * out). A model is not thread-safe; the kernels it calls use OpenMP inside.
 * Every failure returns an llm_err with a detail for llm_last_error() that
 * names the file and the field or tensor at fault. */
#ifndef LLMOPS_MODEL_H
#define LLMOPS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"
#include "llmops_kernels.h"

enum llm_arch { LLM_ARCH_GPT2 = 0, LLM_ARCH_LLAMA = 1 };

/* Hyperparameters, in the models' own terms. Zero in n_kv_head, head_dim or
 * d_ff means the architecture's default (n_head, d_model / n_head, 4 * d_model
 * for GPT-2; Llama needs d_ff). */
struct llm_model_config {
	enum llm_arch arch;
	int vocab_size;	    /* V */
	int max_pos;	    /* n_positions / max_position_embeddings */
	int n_layer;	    /* L */
	int n_head;	    /* NH, query heads */
	int n_kv_head;	    /* NKV, key/value heads (GPT-2: NH) */
	int d_model;	    /* C */
	int head_dim;	    /* HS */
	int d_ff;	    /* MLP width: n_inner / intermediate_size */
	float norm_eps;	    /* layer_norm_epsilon / rms_norm_eps */
	float rope_theta;   /* Llama only */
	int tie_embeddings; /* lm_head shares the token embedding */
	enum llm_gelu gelu; /* GPT-2 only: gelu_new (tanh) or gelu (erf) */
};

/* A model with its buffers (opaque). */
typedef struct llm_model llm_model;

/* Fills c with the defaults of arch: GPT-2 small's sizes (V 50257, 1024
 * positions, 12 layers, 12 heads, 768 wide, eps 1e-5, tied, gelu_new) or a
 * Llama shape (V 32000, 2048 positions, 12 layers, 12 heads, 768 wide, d_ff
 * 2048, eps 1e-6, theta 10000, untied). Callers then change what they need. */
void llm_model_config_default(struct llm_model_config *c, enum llm_arch arch);

/* Creation flags. LLM_MODEL_INFERENCE: forward, prefill, decode and generate
 * only; the blocks share one set of activation buffers (each keeps its own
 * KV cache) and no backward scratch is planned, so memory is about the
 * parameters plus the cache; zero_grad, backward and step fail with
 * LLM_EINVAL. 0 plans for training. */
#define LLM_MODEL_INFERENCE 1u

/* LLM_MODEL_CUDA: keep every buffer on the CUDA device current on the
 * calling thread (pick and initialise it first, e.g. with
 * llm_backend_select()) and run the cuda_* kernels there. The API is the
 * same; pointers the model returns from llm_model_logits() are host copies
 * made on each call, those in llm_model_train_state() are device pointers.
 * LLM_EUNSUPPORTED when the program is built without CUDA; CUDA failures
 * come back as LLM_EINTERNAL from the call during which they surface.
 * Without it the model runs on the CPU. docs/internals/models.md
 * ("Backends") lists what runs where. */
#define LLM_MODEL_CUDA 2u

/* LLM_MODEL_STAGED: the CPU kernels, but the model treats its memory as a
 * device's: every host read or write of a model buffer is a staged copy
 * and llm_model_train_state() points at memory the caller may only reach
 * through the llm_model_state_* functions below, exactly as with
 * LLM_MODEL_CUDA. Results equal the plain CPU model's bit for bit. It
 * exists so that code written for device memory (the agent's training loop,
 * checkpoints) is tested on machines without a GPU. Not with
 * LLM_MODEL_CUDA. */
#define LLM_MODEL_STAGED 8u

/* LLM_MODEL_BF16, with LLM_MODEL_CUDA: every matmul multiplies in bf16 with
 * fp32 accumulation (cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF) while weights,
 * activations, gradients and the optimizer stay fp32; attention, norms and
 * the loss are unchanged. Faster matmuls on tensor cores, results within
 * bf16 tolerances of the fp32 ones (docs/internals/models.md). Without
 * LLM_MODEL_CUDA: LLM_EUNSUPPORTED (the CPU kernels are fp32 only). */
#define LLM_MODEL_BF16 4u

/* A model from c with seeded random weights as transformers initialises them
 * (normal(0, 0.02) weights and embeddings, GPT-2's residual projections
 * scaled by 1/sqrt(2 L), zero biases, unit norm weights). max_B and max_T
 * (>= 1; GPT-2: max_T <= max_pos) bound every later call. LLM_EINVAL for a
 * config that cannot work (detail names the field) or unknown flags,
 * LLM_ETOOLARGE when the sizes overflow, LLM_ENOMEM. The caller frees *out
 * with llm_model_destroy(). */
llm_err llm_model_new(const struct llm_model_config *c, int max_B, int max_T, unsigned flags,
		      uint64_t seed, llm_model **out);

/* Loads a Hugging Face model directory: dir/config.json (model_type "gpt2"
 * or "llama") and dir/model.safetensors or the sharded
 * dir/model.safetensors.index.json (F32, F16 or BF16 tensors); max_B, max_T
 * and flags as llm_model_new(). Extra tensors in the files are ignored.
 * LLM_ENOTFOUND for a missing file, field or tensor, LLM_ETYPE for a field of
 * the wrong JSON type, LLM_EINVAL for a config that cannot work or a tensor
 * of the wrong shape, LLM_EUNSUPPORTED for a model type or option this module
 * does not implement, LLM_EPARSE for malformed files, LLM_ETOOLARGE,
 * LLM_ENOMEM. Details name the file and the field or tensor. */
llm_err llm_model_load(const char *dir, int max_B, int max_T, unsigned flags, llm_model **out);

/* Frees m and all its buffers; NULL is a no-op. */
void llm_model_destroy(llm_model *m);

/* The resolved configuration (defaults filled in); borrowed from m. */
const struct llm_model_config *llm_model_get_config(const llm_model *m);

/* Number of base model parameters (floats). */
size_t llm_model_num_params(const llm_model *m);

/* Bytes m holds now in its blocks (parameters, activations, and gradients,
 * AdamW moments and adapters once allocated). */
size_t llm_model_memory_bytes(const llm_model *m);

/* Writes m as a directory transformers loads: dir/config.json and
 * dir/model.safetensors (F32, Hugging Face names and layouts, tied weights
 * stored once). dir is created if missing; files are replaced atomically,
 * and a model.safetensors.index.json left there is removed so the new file
 * is what loads. LLM_EIO, LLM_ENOMEM. */
llm_err llm_model_save(const llm_model *m, const char *dir);

/* ---- training ---- */

/* Forward pass over tokens (B,T), 1 <= B <= max_B, 1 <= T <= max_T, ids in
 * [0, V). Logits (B,T,V) are then readable with llm_model_logits() until the
 * next forward or backward. When labels (B,T) is not NULL, *loss receives the
 * loss as transformers computes it: labels shifted by one inside (position t
 * predicts labels[t+1]), entries equal to -100 ignored, mean over the rest
 * (NaN when every label is ignored); loss may be NULL otherwise. Training
 * mode: LoRA dropout is applied. LLM_EINVAL for bad sizes or ids. */
llm_err llm_model_forward(llm_model *m, const int *tokens, const int *labels, int B, int T,
			  float *loss);

/* Evaluation: the loss of tokens (B,T) under labels (B,T) as
 * llm_model_forward() computes it, but without dropout and without touching
 * the training counters, and summed rather than averaged: *sum (in double)
 * of the per-position losses and *count of positions that carry one, so
 * batches add up. Only the losses leave the backend (no logits copy on a
 * GPU). The logits stay readable as after a forward; no backward follows. */
llm_err llm_model_eval(llm_model *m, const int *tokens, const int *labels, int B, int T,
		       double *sum, int *count);

/* The logits (B,T,V) of the last forward, prefill or decode step, readable
 * until the next call on m. On the CPU this is the model's own buffer; with
 * LLM_MODEL_CUDA a host copy (NULL when it cannot be made: see
 * llm_last_error()). */
const float *llm_model_logits(const llm_model *m);

/* Sets every trainable gradient to zero (allocating the gradient buffer on
 * first use): the base parameters, or only the LoRA adapters once added. */
llm_err llm_model_zero_grad(llm_model *m);

/* Backward of the last llm_model_forward() with labels: accumulates the
 * gradient of its mean loss into the trainable gradients (call
 * llm_model_zero_grad() first). Overwrites the logits. LLM_EINVAL when the
 * last call was not a forward with labels. */
llm_err llm_model_backward(llm_model *m);

/* AdamW settings (torch.optim.AdamW); max_grad_norm > 0 clips the global
 * gradient norm first (torch.nn.utils.clip_grad_norm_). no_decay_1d skips
 * weight decay for biases and norm weights; 0 decays every parameter. */
struct llm_adamw {
	float lr;
	float beta1;
	float beta2;
	float eps;
	float weight_decay;
	float max_grad_norm;
	int no_decay_1d;
};

/* One AdamW step over the trainable parameters with their gradients
 * (moments allocated on first use). *grad_norm (may be NULL) receives the
 * norm before clipping. */
llm_err llm_model_step(llm_model *m, const struct llm_adamw *opt, float *grad_norm);

/* Copies the parameter (grad 0) or its gradient (grad 1) with Hugging Face
 * name and layout (e.g. "transformer.h.0.attn.c_attn.weight" as (in,out))
 * into out, which holds n floats, the tensor's size. LLM_ENOTFOUND for an
 * unknown name or a gradient never allocated, LLM_EINVAL when n differs. */
llm_err llm_model_get_tensor(const llm_model *m, const char *name, int grad, float *out, size_t n);

/* Number of named parameter tensors, and the Hugging Face name and shape
 * (ndim 1 or 2; dims as stored in Hugging Face files) of the i-th. */
int llm_model_tensor_count(const llm_model *m);
llm_err llm_model_tensor_info(const llm_model *m, int i, const char **name, int *ndim,
			      int64_t shape[2]);

/* ---- training state (checkpoints, data parallelism) ---- */

/* The trainable values as flat arrays of n floats each: the base
 * parameters, or only the LoRA adapters once added. Order and layout are
 * this module's own (the same for models of the same config and adapters),
 * so they suit all-reducing gradients and saving optimizer state, not file
 * formats. */
struct llm_model_state {
	float *params;
	float *grads;
	float *exp_avg;	   /* AdamW first moment */
	float *exp_avg_sq; /* AdamW second moment */
	size_t n;
};

/* Fills *out, allocating gradients and moments (zeros) when missing. The
 * pointers (device pointers with LLM_MODEL_CUDA) are borrowed from m and stay valid until adapters
 * are added or removed or m is destroyed. LLM_EINVAL for an inference model, LLM_ENOMEM. */
llm_err llm_model_train_state(llm_model *m, struct llm_model_state *out);

/* The counters training depends on besides the arrays above: AdamW steps
 * taken (the bias correction's t) and training forward passes run (they seed
 * the LoRA dropout masks). Restoring both with the state gives the same
 * next step as an uninterrupted run. */
struct llm_model_counters {
	int adam_steps;
	uint64_t forwards;
};
void llm_model_get_counters(const llm_model *m, struct llm_model_counters *out);
void llm_model_set_counters(llm_model *m, const struct llm_model_counters *c);

/* Memory on the model's backend beside its training state, and the few
 * operations a training loop needs on it. All counts are floats; pointers
 * are the model's (llm_model_train_state() arrays, or buffers from
 * llm_model_state_alloc()). On the plain CPU these are host memory and
 * plain loops; with LLM_MODEL_CUDA device memory and kernels, with errors
 * as the rest of the API (LLM_EINTERNAL for CUDA failures). */

/* The backend the model runs on: "cpu", "cpu-staged" (LLM_MODEL_STAGED),
 * "cuda" or "cuda-bf16" (LLM_MODEL_BF16). */
const char *llm_model_backend(const llm_model *m);

/* true when the model's memory is plain host memory the caller may read and
 * write directly (the CPU without LLM_MODEL_STAGED) */
bool llm_model_host_memory(const llm_model *m);

/* *out = n zeroed floats of the model's memory; free with
 * llm_model_state_free() before destroying m. LLM_ENOMEM. */
llm_err llm_model_state_alloc(llm_model *m, size_t n, float **out);
void llm_model_state_free(llm_model *m, float *p);

/* host (n) <- src (n) of the model's memory, and dst <- host. */
llm_err llm_model_state_download(llm_model *m, float *host, const float *src, size_t n);
llm_err llm_model_state_upload(llm_model *m, float *dst, const float *host, size_t n);

/* dst (n) = src (n), both the model's memory, not overlapping; and p = 0. */
llm_err llm_model_state_copy(llm_model *m, float *dst, const float *src, size_t n);
llm_err llm_model_state_zero(llm_model *m, float *p, size_t n);

/* acc (n) += weight * grad (n), both the model's memory: gradient
 * accumulation over micro batches (cpu_grad_accumulate). */
llm_err llm_model_state_accumulate(llm_model *m, float *acc, const float *grad, float weight,
				   size_t n);

/* ---- LoRA (PEFT semantics) ---- */

#define LLM_LORA_MAX_TARGETS 8

/* r >= 1; scaling = alpha / r; dropout in [0, 1); targets are module names
 * matched as PEFT does (equal to the module path or its last components:
 * "c_proj" is both GPT-2 attn.c_proj and mlp.c_proj). seed draws the initial
 * A and the dropout masks. */
struct llm_lora_config {
	int r;
	float alpha;
	float dropout;
	int n_targets;
	char targets[LLM_LORA_MAX_TARGETS][32];
	uint64_t seed;
};

/* Adds LoRA adapters on every matching linear layer and freezes the base
 * model: training then updates only A (Kaiming-uniform a=sqrt(5), i.e.
 * uniform(+-1/sqrt(in))) and B (zeros). LLM_EINVAL for bad settings or no
 * matching module, LLM_EEXIST when adapters are already present. */
llm_err llm_model_lora_add(llm_model *m, const struct llm_lora_config *c);

/* Writes the adapters as PEFT does: dir/adapter_config.json and
 * dir/adapter_model.safetensors with base_model.model.<module>.lora_A.weight
 * (r,in) and .lora_B.weight (out,r). LLM_EINVAL without adapters. */
llm_err llm_model_lora_save(const llm_model *m, const char *dir);

/* Reads a PEFT LoRA adapter directory written by PEFT or lora_save and adds
 * it to m (as llm_model_lora_add() with the file's settings, then the file's
 * A and B). LLM_EUNSUPPORTED for options not implemented here (DoRA,
 * rsLoRA, trained biases, a regex string as target_modules), LLM_EINVAL or
 * LLM_ENOTFOUND for wrong, extra or missing tensors; on failure m keeps no
 * adapters. */
llm_err llm_model_lora_load(llm_model *m, const char *dir);

/* Copies the adapter tensor with PEFT name (e.g.
 * "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight") into out
 * (n floats). LLM_ENOTFOUND, LLM_EINVAL as llm_model_get_tensor(). */
llm_err llm_model_lora_get(const llm_model *m, const char *name, float *out, size_t n);

/* ---- inference with a KV cache ---- */

/* Starts a sequence: runs tokens (B,T) at positions [0, T) and keeps their
 * keys and values; logits (B,T,V) as llm_model_forward() (no dropout). */
llm_err llm_model_prefill(llm_model *m, const int *tokens, int B, int T);

/* Runs one more token per row, tokens (B) with the B of the prefill, at the
 * next position, attending to the cache; logits (B,1,V). LLM_ETOOLARGE when
 * the sequence would pass max_T, LLM_EINVAL without a prefill. */
llm_err llm_model_decode(llm_model *m, const int *tokens);

/* Generates n_new tokens per row after prompt (B,T): prefill, then one
 * decode step per token, each drawn from the last position's logits with s
 * (NULL or temperature <= 0: greedy) by cpu_sample_forward() with step
 * number i for the i-th new token. out (B,n_new). T + n_new - 1 <= max_T. */
llm_err llm_model_generate(llm_model *m, const int *prompt, int B, int T, int n_new,
			   const struct llm_sampling *s, int *out);

#endif
