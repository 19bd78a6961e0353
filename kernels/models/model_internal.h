/* Private to kernels/models/: the model struct shared by the compute code
 * (llm_model.c) and the file formats (llm_model_io.c). See
 * docs/internals/models.md for the memory layout. */
#ifndef LLM_MODEL_INTERNAL_H
#define LLM_MODEL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_ops.h"
#include "llmops_model.h"

/* Linear layers of one block. GPT-2 uses the first four, Llama the rest. */
enum site {
	SITE_C_ATTN = 0,
	SITE_ATTN_C_PROJ,
	SITE_C_FC,
	SITE_MLP_C_PROJ,
	SITE_Q,
	SITE_K,
	SITE_V,
	SITE_O,
	SITE_GATE,
	SITE_UP,
	SITE_DOWN,
	SITE_COUNT_
};

struct lin {
	float *w; /* (out,in) */
	float *b; /* (out) or NULL */
};

struct layer_w {
	float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* biases NULL for Llama */
	struct lin site[SITE_COUNT_];
};

/* Pointers into one arena laid out by the parameter plan; the same struct
 * serves parameters and their gradients. */
struct weights {
	float *wte, *wpe, *lnf_w, *lnf_b, *lm_head; /* wpe, lnf_b: GPT-2; lm_head = wte if tied */
	struct layer_w *layer;
};

/* One named tensor of the plan. rows x cols in the kernels' layout; conv1d
 * marks a GPT-2 weight stored transposed, (cols,rows), in files. */
struct mtensor {
	char name[160];
	int rows, cols; /* cols == 0: a vector of rows */
	bool conv1d;
	size_t off;
	size_t n;
};

struct layer_acts {
	float *ln1, *ln1_mean, *ln1_rstd; /* (BT,C), (BT), (BT) */
	float *qkv;			  /* GPT-2: (BT, Q+2KV) */
	float *q;			  /* (BT,Q), after RoPE */
	float *kc, *vc;			  /* (B,Tcap,KV): keys and values, the KV cache */
	float *att, *lse;		  /* (BT,Q), (B,NH,T) */
	float *res2;			  /* (BT,C) */
	float *ln2, *ln2_mean, *ln2_rstd;
	float *fc1, *fc2, *fact; /* (BT,F): GPT-2 pre-GELU, -, GELU; Llama gate, up, SwiGLU */
	float *res3;		 /* (BT,C) */
};

struct acts {
	float *encoded;			  /* (BT,C) */
	float *lnf, *lnf_mean, *lnf_rstd; /* (BT,C), (BT), (BT) */
	float *logits;			  /* (BT,V) */
	float *losses;			  /* (BT) */
	float *proj;			  /* (BT,C) scratch: attention/MLP output projection */
	float *knew, *vnew;		  /* (BT,KV) scratch: this call's keys and values */
	/* backward scratch */
	float *dres, *dx;	  /* (BT,C) */
	float *datt, *dq;	  /* (BT,Q) */
	float *dk, *dv;		  /* (BT,KV) */
	float *dqkv;		  /* GPT-2 (BT,Q+2KV) */
	float *df1, *df2, *dfact; /* (BT,F) */
	float *lora_scratch;	  /* (BT, max in + r) */
	float *last;		  /* (B,V) last-position logits for sampling */
	void *sample_scratch;	  /* 2*B*V slots */
	int *targets;		  /* (BT) shifted labels */
	int *tokens;		  /* (BT) inputs of the last training forward */
	struct layer_acts *layer;
};

struct lora_site {
	bool on;
	float *a, *b, *da, *db; /* (r,in), (out,r) */
	float *hidden;		/* (BT,r) */
	uint64_t seed;		/* dropout seed of the last training forward */
};

struct lora {
	struct llm_lora_config cfg;
	float scaling;
	int t;			 /* AdamW steps taken */
	int n_sites;		 /* enabled (layer, site) pairs */
	struct mtensor *tensors; /* A and B of each enabled pair, in order */
	int n_tensors;
	size_t n;		/* floats in the parameter block */
	size_t total;		/* floats in mem */
	float *mem;		/* params | grads | m | v | hidden */
	struct lora_site *site; /* [L][SITE_COUNT_] */
};

struct llm_model {
	const struct llm_ops *ops; /* the backend every buffer below lives on */
	struct llm_stage *stage;   /* host copies of backend memory (not the CPU's) */
	struct llm_model_config cfg;
	int max_B, max_T;
	bool inference; /* LLM_MODEL_INFERENCE: no backward buffers */
	int Q, KV, F;
	json_t *hf_config; /* the loaded config.json, written back on save; or NULL */

	struct mtensor *tensors;
	int n_tensors;
	size_t n_params;
	float *params, *grads, *adam_m, *adam_v;
	struct weights w, g;
	int t; /* AdamW steps taken */

	float *act_mem;
	size_t n_act;
	struct acts a;

	struct lora *lora;

	/* state of the last call */
	enum { ST_NONE, ST_TRAIN, ST_DECODE } state;
	int B, T; /* last forward sizes */
	bool have_labels;
	int count; /* non-ignored targets of the last forward */
	int pos;   /* decode: tokens in the cache */
	uint64_t n_forward;
};

/* Validates c (resolving zeros to defaults) and builds m's plan and arenas;
 * src names the origin in error details ("config" or a file path). */
llm_err llm_model_create(const struct llm_model_config *c, int max_B, int max_T, unsigned flags,
			 const char *src, llm_model **out);

/* Removes the LoRA adapters (after a failed adapter load). */
void llm_model_lora_drop(llm_model *m);

/* Full Hugging Face name of a block tensor ("transformer.h.3." + rest). */
void llm_model_block_name(const llm_model *m, char *buf, size_t len, int layer, const char *rest);

/* The plan tensor called name, or NULL. */
const struct mtensor *llm_model_find(const llm_model *m, const char *name);

/* Copies between a kernel-layout tensor and a Hugging Face-layout buffer. */
void llm_model_to_hf(const struct mtensor *t, const float *src, float *dst);
void llm_model_from_hf(const struct mtensor *t, const float *src, float *dst);

#endif
