/* GPT-2 and Llama decoders over a kernel backend (llm_ops.h: the CPU
 * kernels or the CUDA launchers): the parameter and activation plans,
 * forward, backward, AdamW, LoRA and KV-cached decoding.
 *
 * llm.c's shape: one arena per memory category carved by a plan, a forward
 * that keeps every activation backward needs, and a backward that walks the
 * layers in reverse accumulating into one residual-stream gradient. Every
 * buffer lives in the backend's memory; host code touches it only through
 * the llm_ops_host_* helpers (which alias it on the CPU) and the backend's
 * copies, and each public call ends with the backend's sync. Design limit:
 * fp32 and one thread of control; B*T times any layer width must fit in an
 * int (the kernels' sizes). */
#include "model_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IGNORE_INDEX (-100)

static const char *const site_module[SITE_COUNT_] = {
	[SITE_C_ATTN] = "attn.c_attn", [SITE_ATTN_C_PROJ] = "attn.c_proj",
	[SITE_C_FC] = "mlp.c_fc",      [SITE_MLP_C_PROJ] = "mlp.c_proj",
	[SITE_Q] = "self_attn.q_proj", [SITE_K] = "self_attn.k_proj",
	[SITE_V] = "self_attn.v_proj", [SITE_O] = "self_attn.o_proj",
	[SITE_GATE] = "mlp.gate_proj", [SITE_UP] = "mlp.up_proj",
	[SITE_DOWN] = "mlp.down_proj",
};

/* whether the architecture of m has linear layer `site` in each block */
static bool has_site(const llm_model *m, int site)
{
	if (m->cfg.arch == LLM_ARCH_GPT2)
		return site <= SITE_MLP_C_PROJ;
	return site >= SITE_Q;
}

/* in and out widths of a site */
static void site_dims(const llm_model *m, int site, int *in, int *out)
{
	int C = m->cfg.d_model;

	switch (site) {
	case SITE_C_ATTN: *in = C, *out = m->Q + 2 * m->KV; break;
	case SITE_ATTN_C_PROJ: *in = m->Q, *out = C; break;
	case SITE_C_FC: *in = C, *out = m->F; break;
	case SITE_MLP_C_PROJ: *in = m->F, *out = C; break;
	case SITE_Q: *in = C, *out = m->Q; break;
	case SITE_K:
	case SITE_V: *in = C, *out = m->KV; break;
	case SITE_O: *in = m->Q, *out = C; break;
	case SITE_GATE:
	case SITE_UP: *in = C, *out = m->F; break;
	default: *in = m->F, *out = C; break;
	}
}

void llm_model_config_default(struct llm_model_config *c, enum llm_arch arch)
{
	memset(c, 0, sizeof(*c));
	c->arch = arch;
	c->n_layer = 12;
	c->n_head = 12;
	c->d_model = 768;
	if (arch == LLM_ARCH_GPT2) {
		c->vocab_size = 50257;
		c->max_pos = 1024;
		c->norm_eps = 1e-5f;
		c->tie_embeddings = 1;
		c->gelu = LLM_GELU_TANH;
	} else {
		c->vocab_size = 32000;
		c->max_pos = 2048;
		c->d_ff = 2048;
		c->norm_eps = 1e-6f;
		c->rope_theta = 10000.0f;
	}
}

/* ---- configuration checks ---- */

enum field { F_VOCAB, F_POS, F_LAYER, F_HEAD, F_KV, F_EMBD, F_HEADDIM, F_FF, F_EPS, F_THETA };

static const char *field_name(enum llm_arch arch, enum field f)
{
	static const char *const gpt2[] = {"vocab_size", "n_positions", "n_layer",
					   "n_head",	 "n_head",	"n_embd",
					   "n_embd",	 "n_inner",	"layer_norm_epsilon",
					   "rope_theta"};
	static const char *const llama[] = {"vocab_size",
					    "max_position_embeddings",
					    "num_hidden_layers",
					    "num_attention_heads",
					    "num_key_value_heads",
					    "hidden_size",
					    "head_dim",
					    "intermediate_size",
					    "rms_norm_eps",
					    "rope_theta"};

	return arch == LLM_ARCH_GPT2 ? gpt2[f] : llama[f];
}

static llm_err bad_field(const struct llm_model_config *c, const char *src, enum field f, long v,
			 const char *why)
{
	return llm_fail(LLM_EINVAL, "%s: %s = %ld %s", src, field_name(c->arch, f), v, why);
}

/* Resolves the zero defaults in c and checks every size. */
static llm_err check_config(struct llm_model_config *c, const char *src)
{
	if (c->arch != LLM_ARCH_GPT2 && c->arch != LLM_ARCH_LLAMA)
		return llm_fail(LLM_EUNSUPPORTED, "%s: unknown architecture %d", src, (int)c->arch);
	if (c->vocab_size <= 0)
		return bad_field(c, src, F_VOCAB, c->vocab_size, "must be positive");
	if (c->max_pos <= 0)
		return bad_field(c, src, F_POS, c->max_pos, "must be positive");
	if (c->n_layer <= 0)
		return bad_field(c, src, F_LAYER, c->n_layer, "must be positive");
	if (c->n_head <= 0)
		return bad_field(c, src, F_HEAD, c->n_head, "must be positive");
	if (c->d_model <= 0)
		return bad_field(c, src, F_EMBD, c->d_model, "must be positive");
	if (c->n_kv_head == 0)
		c->n_kv_head = c->n_head;
	if (c->n_kv_head < 0)
		return bad_field(c, src, F_KV, c->n_kv_head, "must be positive");
	if (c->arch == LLM_ARCH_GPT2 && c->n_kv_head != c->n_head)
		return llm_fail(LLM_EINVAL, "%s: GPT-2 has as many key/value heads as heads", src);
	if (c->n_head % c->n_kv_head)
		return llm_fail(LLM_EINVAL, "%s: %s = %d is not a multiple of %s = %d", src,
				field_name(c->arch, F_HEAD), c->n_head, field_name(c->arch, F_KV),
				c->n_kv_head);
	if (c->head_dim == 0) {
		if (c->d_model % c->n_head)
			return llm_fail(LLM_EINVAL, "%s: %s = %d does not divide %s = %d", src,
					field_name(c->arch, F_HEAD), c->n_head,
					field_name(c->arch, F_EMBD), c->d_model);
		c->head_dim = c->d_model / c->n_head;
	}
	if (c->head_dim <= 0)
		return bad_field(c, src, F_HEADDIM, c->head_dim, "must be positive");
	if (c->arch == LLM_ARCH_GPT2 && c->head_dim * c->n_head != c->d_model)
		return llm_fail(LLM_EINVAL, "%s: GPT-2 head size times heads must equal n_embd",
				src);
	if (c->arch == LLM_ARCH_LLAMA && c->head_dim % 2)
		return bad_field(c, src, F_HEADDIM, c->head_dim, "must be even for RoPE");
	if (c->d_ff == 0 && c->arch == LLM_ARCH_GPT2)
		c->d_ff = 4 * c->d_model;
	if (c->d_ff <= 0)
		return bad_field(c, src, F_FF, c->d_ff, "must be positive");
	if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
		return llm_fail(LLM_EINVAL, "%s: %s = %g must be positive", src,
				field_name(c->arch, F_EPS), (double)c->norm_eps);
	if (c->arch == LLM_ARCH_LLAMA && (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)))
		return llm_fail(LLM_EINVAL, "%s: rope_theta = %g must be positive", src,
				(double)c->rope_theta);
	if (c->gelu != LLM_GELU_TANH && c->gelu != LLM_GELU_ERF)
		return llm_fail(LLM_EINVAL, "%s: unknown GELU variant %d", src, (int)c->gelu);
	return LLM_OK;
}

/* Rough float counts in double, so absurd configs fail before any size_t
 * or int arithmetic can wrap. The cap (2^40 floats, 4 TiB) is far beyond
 * any machine this runs on; the real limit is then the allocation. */
static llm_err check_totals(const struct llm_model_config *c, int max_B, int max_T, const char *src)
{
	const double cap = 1099511627776.0;
	double C = c->d_model, Q = (double)c->n_head * c->head_dim,
	       KV = (double)c->n_kv_head * c->head_dim, F = c->d_ff, L = c->n_layer;
	double BT = (double)max_B * max_T, params, acts;

	params = (double)c->vocab_size * C * 2 + (double)c->max_pos * C +
		 L * (C * (Q + 2 * KV) + Q * C + 3 * C * F + 2 * (Q + 2 * KV) + F + 6 * C);
	acts = BT * (L * (12 * C + 4 * Q + 6 * KV + c->n_head + 4 * F) + 16 * C + 4 * F +
		     2 * (double)c->vocab_size);
	if (Q > INT_MAX || KV > INT_MAX || params > cap || acts > cap)
		return llm_fail(LLM_ETOOLARGE,
				"%s: about %.3g parameters and %.3g activation floats for max_B "
				"%d, max_T %d is over the limit",
				src, params, acts, max_B, max_T);
	return LLM_OK;
}

/* ---- parameter plan ---- */

struct planner {
	llm_model *m;
	float *base; /* NULL while counting */
	bool record; /* fill m->tensors */
	size_t off;
};

static void add(struct planner *p, float **slot, const char *name, int rows, int cols, bool conv1d)
{
	size_t n = (size_t)rows * (size_t)(cols ? cols : 1);

	if (p->base)
		*slot = p->base + p->off;
	if (p->record) {
		struct mtensor *t = &p->m->tensors[p->m->n_tensors++];

		snprintf(t->name, sizeof(t->name), "%s", name);
		t->rows = rows;
		t->cols = cols;
		t->conv1d = conv1d;
		t->off = p->off;
		t->n = n;
	} else if (!p->base) {
		p->m->n_tensors++;
	}
	p->off += n;
}

void llm_model_block_name(const llm_model *m, char *buf, size_t len, int layer, const char *rest)
{
	if (m->cfg.arch == LLM_ARCH_GPT2)
		snprintf(buf, len, "transformer.h.%d.%s", layer, rest);
	else
		snprintf(buf, len, "model.layers.%d.%s", layer, rest);
}

static void plan_block(struct planner *p, struct layer_w *lw, int l)
{
	llm_model *m = p->m;
	int C = m->cfg.d_model;
	bool gpt2 = m->cfg.arch == LLM_ARCH_GPT2;
	char name[96], rest[64];

	llm_model_block_name(m, name, sizeof(name), l,
			     gpt2 ? "ln_1.weight" : "input_layernorm.weight");
	add(p, &lw->ln1_w, name, C, 0, false);
	if (gpt2) {
		llm_model_block_name(m, name, sizeof(name), l, "ln_1.bias");
		add(p, &lw->ln1_b, name, C, 0, false);
	}
	for (int s = 0; s < SITE_COUNT_; s++) {
		int in, out;

		if (!has_site(m, s))
			continue;
		if (s == SITE_C_FC || s == SITE_GATE) { /* second norm sits before the MLP */
			llm_model_block_name(m, name, sizeof(name), l,
					     gpt2 ? "ln_2.weight"
						  : "post_attention_layernorm.weight");
			add(p, &lw->ln2_w, name, C, 0, false);
			if (gpt2) {
				llm_model_block_name(m, name, sizeof(name), l, "ln_2.bias");
				add(p, &lw->ln2_b, name, C, 0, false);
			}
		}
		site_dims(m, s, &in, &out);
		snprintf(rest, sizeof(rest), "%s.weight", site_module[s]);
		llm_model_block_name(m, name, sizeof(name), l, rest);
		add(p, &lw->site[s].w, name, out, in, gpt2);
		if (gpt2) {
			snprintf(rest, sizeof(rest), "%s.bias", site_module[s]);
			llm_model_block_name(m, name, sizeof(name), l, rest);
			add(p, &lw->site[s].b, name, out, 0, false);
		}
	}
}

/* Walks the parameter plan: counts (base NULL, record false), records the
 * tensor table (record), or points w into base. Returns the float count. */
static size_t plan_params(llm_model *m, float *base, bool record, struct weights *w)
{
	struct planner p = {.m = m, .base = base, .record = record};
	struct llm_model_config *c = &m->cfg;
	bool gpt2 = c->arch == LLM_ARCH_GPT2;

	add(&p, &w->wte, gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight",
	    c->vocab_size, c->d_model, false);
	if (gpt2)
		add(&p, &w->wpe, "transformer.wpe.weight", c->max_pos, c->d_model, false);
	for (int l = 0; l < c->n_layer; l++)
		plan_block(&p, &w->layer[l], l);
	add(&p, &w->lnf_w, gpt2 ? "transformer.ln_f.weight" : "model.norm.weight", c->d_model, 0,
	    false);
	if (gpt2)
		add(&p, &w->lnf_b, "transformer.ln_f.bias", c->d_model, 0, false);
	if (!c->tie_embeddings)
		add(&p, &w->lm_head, "lm_head.weight", c->vocab_size, c->d_model, false);
	else if (base)
		w->lm_head = w->wte;
	return p.off;
}

/* ---- activation plan ---- */

struct carver {
	float *base;
	size_t off;
};

/* n 4-byte slots (floats or ints) from the arena, or NULL while counting */
static void *carve(struct carver *cv, size_t n)
{
	void *p = cv->base ? cv->base + cv->off : NULL;

	cv->off += (n + 15) & ~(size_t)15; /* 64-byte aligned pieces */
	return p;
}

static size_t plan_acts(llm_model *m, float *base)
{
	struct carver cv = {.base = base};
	struct acts *a = &m->a;
	const struct llm_model_config *c = &m->cfg;
	size_t BT = (size_t)m->max_B * m->max_T, C = c->d_model, Q = m->Q, KV = m->KV, F = m->F;
	size_t V = c->vocab_size, NH = c->n_head, QKV = Q + 2 * KV;
	bool gpt2 = c->arch == LLM_ARCH_GPT2;
	size_t maxin = C > Q ? C : Q;

	maxin = maxin > F ? maxin : F;
	a->encoded = carve(&cv, BT * C);
	for (int l = 0; l < c->n_layer; l++) {
		struct layer_acts *la = &a->layer[l];

		if (m->inference && l > 0) { /* only the KV cache is per layer */
			*la = a->layer[0];
			la->kc = carve(&cv, BT * KV);
			la->vc = carve(&cv, BT * KV);
			continue;
		}
		la->ln1 = carve(&cv, BT * C);
		la->ln1_mean = gpt2 ? carve(&cv, BT) : NULL;
		la->ln1_rstd = carve(&cv, BT);
		la->qkv = gpt2 ? carve(&cv, BT * QKV) : NULL;
		la->q = carve(&cv, BT * Q);
		la->kc = carve(&cv, BT * KV);
		la->vc = carve(&cv, BT * KV);
		la->att = carve(&cv, BT * Q);
		la->lse = carve(&cv, BT * NH);
		la->res2 = carve(&cv, BT * C);
		la->ln2 = carve(&cv, BT * C);
		la->ln2_mean = gpt2 ? carve(&cv, BT) : NULL;
		la->ln2_rstd = carve(&cv, BT);
		la->fc1 = carve(&cv, BT * F);
		la->fc2 = gpt2 ? NULL : carve(&cv, BT * F);
		la->fact = carve(&cv, BT * F);
		la->res3 = carve(&cv, BT * C);
	}
	a->lnf = carve(&cv, BT * C);
	a->lnf_mean = gpt2 ? carve(&cv, BT) : NULL;
	a->lnf_rstd = carve(&cv, BT);
	a->logits = carve(&cv, BT * V);
	a->losses = carve(&cv, BT);
	a->proj = carve(&cv, BT * C);
	a->knew = carve(&cv, BT * KV);
	a->vnew = carve(&cv, BT * KV);
	if (!m->inference) {
		a->dres = carve(&cv, BT * C);
		a->dx = carve(&cv, BT * C);
		a->datt = carve(&cv, BT * Q);
		a->dq = carve(&cv, BT * Q);
		a->dk = carve(&cv, BT * KV);
		a->dv = carve(&cv, BT * KV);
		a->dqkv = gpt2 ? carve(&cv, BT * QKV) : NULL;
		a->df1 = carve(&cv, BT * F);
		a->df2 = gpt2 ? NULL : carve(&cv, BT * F);
		a->dfact = carve(&cv, BT * F);
	}
	a->lora_scratch = NULL; /* carved with the adapters, whose rank it needs */
	a->last = carve(&cv, (size_t)m->max_B * V);
	a->sample_scratch = carve(&cv, 2 * (size_t)m->max_B * V);
	a->targets = carve(&cv, BT);
	a->tokens = carve(&cv, BT);
	return cv.off;
}

/* ---- random init ---- */

static float gaussian(uint64_t seed, uint64_t i)
{
	float u1 = llm_uniform(seed, 2 * i), u2 = llm_uniform(seed, 2 * i + 1);

	return sqrtf(-2.0f * logf(1.0f - u1)) * cosf(6.28318530718f * u2);
}

static bool is_norm_or_bias(const struct mtensor *t)
{
	return t->cols == 0;
}

static bool is_residual_proj(const struct mtensor *t)
{
	return strstr(t->name, "c_proj.weight") != NULL;
}

/* Fills p with the initial values of tensor t; the draws are counter-based,
 * so the values are the same on any number of threads. */
static void init_tensor(const llm_model *m, const struct mtensor *t, float *p, uint64_t seed)
{
	float std = 0.02f, fill = strstr(t->name, "bias") ? 0.0f : 1.0f;

	if (is_norm_or_bias(t)) {
		for (size_t j = 0; j < t->n; j++)
			p[j] = fill;
		return;
	}
	if (m->cfg.arch == LLM_ARCH_GPT2 && is_residual_proj(t))
		std /= sqrtf(2.0f * (float)m->cfg.n_layer);
#pragma omp parallel for schedule(static) if (t->n > 65536)
	for (size_t j = 0; j < t->n; j++)
		p[j] = std * gaussian(seed, t->off + j);
}

/* Every parameter drawn on the host, one tensor at a time. */
static llm_err init_random(llm_model *m, uint64_t seed)
{
	for (int i = 0; i < m->n_tensors; i++) {
		const struct mtensor *t = &m->tensors[i];
		float *dst = m->params + t->off;
		void *p;
		llm_err err = llm_ops_host_buffer(m->ops, m->stage, dst, t->n * sizeof(float), &p);

		if (err)
			return err;
		init_tensor(m, t, p, seed);
		err = llm_ops_host_commit(m->ops, dst, p, t->n * sizeof(float));
		if (err)
			return err;
	}
	return LLM_OK;
}

/* ---- lifecycle ---- */

/* max_B and max_T against the resolved config: positions, overflow, and the
 * kernels' int sizes (B*T times any width). */
static llm_err check_limits(const struct llm_model_config *c, int max_B, int max_T, const char *src)
{
	size_t BT = (size_t)max_B * (size_t)max_T, widest;
	llm_err err;

	if (max_B < 1 || max_T < 1)
		return llm_fail(LLM_EINVAL, "%s: max_B %d and max_T %d must be >= 1", src, max_B,
				max_T);
	if (c->arch == LLM_ARCH_GPT2 && max_T > c->max_pos)
		return llm_fail(LLM_EINVAL, "%s: max_T %d is over n_positions = %d", src, max_T,
				c->max_pos);
	err = check_totals(c, max_B, max_T, src);
	if (err)
		return err;
	widest = ((size_t)c->n_head + 2 * (size_t)c->n_kv_head) * (size_t)c->head_dim;
	widest = widest > (size_t)c->d_ff ? widest : (size_t)c->d_ff;
	widest = widest > (size_t)c->d_model ? widest : (size_t)c->d_model;
	if (BT * widest > INT_MAX)
		return llm_fail(LLM_ETOOLARGE,
				"%s: max_B * max_T = %zu is too large for this width", src, BT);
	return LLM_OK;
}

/* Builds the parameter table and allocates the parameter and activation
 * blocks from the plans. */
static llm_err alloc_plans(llm_model *m, const char *src)
{
	size_t nact;

	m->w.layer = calloc((size_t)m->cfg.n_layer, sizeof(struct layer_w));
	m->g.layer = calloc((size_t)m->cfg.n_layer, sizeof(struct layer_w));
	m->a.layer = calloc((size_t)m->cfg.n_layer, sizeof(struct layer_acts));
	if (!m->w.layer || !m->g.layer || !m->a.layer)
		goto out_nomem;
	m->n_params = plan_params(m, NULL, false, &m->w);
	m->tensors = calloc((size_t)m->n_tensors, sizeof(*m->tensors));
	if (!m->tensors)
		goto out_nomem;
	m->n_tensors = 0;
	plan_params(m, NULL, true, &m->w);
	m->params = m->ops->alloc(m->n_params * sizeof(float));
	if (!m->params)
		goto out_nomem;
	plan_params(m, m->params, false, &m->w);
	nact = plan_acts(m, NULL);
	m->n_act = nact;
	m->act_mem = m->ops->alloc(nact * sizeof(float));
	if (!m->act_mem)
		goto out_nomem;
	plan_acts(m, m->act_mem);
	return LLM_OK;

out_nomem:
	return llm_fail(LLM_ENOMEM, "%s: out of memory for the model's buffers", src);
}

llm_err llm_model_create(const struct llm_model_config *c, int max_B, int max_T, unsigned flags,
			 const char *src, llm_model **out)
{
	const struct llm_ops *ops;
	llm_model *m;
	llm_err err;

	*out = NULL;
	err = llm_ops_for_flags(flags, src, &ops);
	if (err)
		return err;
	m = calloc(1, sizeof(*m));
	if (!m)
		return llm_fail(LLM_ENOMEM, "model: out of memory");
	m->ops = ops;
	m->stage = calloc(1, sizeof(*m->stage));
	if (!m->stage) {
		err = llm_fail(LLM_ENOMEM, "model: out of memory");
		goto out_free;
	}
	m->cfg = *c;
	m->inference = flags & LLM_MODEL_INFERENCE;
	err = check_config(&m->cfg, src);
	if (!err)
		err = check_limits(&m->cfg, max_B, max_T, src);
	if (err)
		goto out_free;
	m->max_B = max_B;
	m->max_T = max_T;
	m->Q = m->cfg.n_head * m->cfg.head_dim;
	m->KV = m->cfg.n_kv_head * m->cfg.head_dim;
	m->F = m->cfg.d_ff;
	err = alloc_plans(m, src);
	if (!err)
		err = m->ops->sync();
	if (err)
		goto out_free;
	*out = m;
	return LLM_OK;

out_free:
	llm_model_destroy(m);
	return err;
}

llm_err llm_model_new(const struct llm_model_config *c, int max_B, int max_T, unsigned flags,
		      uint64_t seed, llm_model **out)
{
	llm_err err = llm_model_create(c, max_B, max_T, flags, "config", out);

	if (err)
		return err;
	err = init_random(*out, seed);
	if (!err)
		err = (*out)->ops->sync();
	if (err) {
		llm_model_destroy(*out);
		*out = NULL;
	}
	return err;
}

static void lora_free(const struct llm_ops *ops, struct lora *lo)
{
	if (!lo)
		return;
	free(lo->tensors);
	ops->free(lo->mem);
	free(lo->site);
	free(lo);
}

void llm_model_destroy(llm_model *m)
{
	if (!m)
		return;
	lora_free(m->ops, m->lora);
	if (m->hf_config)
		json_decref(m->hf_config);
	m->ops->free(m->act_mem);
	m->ops->free(m->adam_m);
	m->ops->free(m->adam_v);
	m->ops->free(m->grads);
	m->ops->free(m->params);
	if (m->stage) {
		llm_stage_free(m->stage);
		free(m->stage);
	}
	free(m->tensors);
	free(m->a.layer);
	free(m->g.layer);
	free(m->w.layer);
	free(m);
}

const struct llm_model_config *llm_model_get_config(const llm_model *m)
{
	return &m->cfg;
}

size_t llm_model_num_params(const llm_model *m)
{
	return m->n_params;
}

size_t llm_model_memory_bytes(const llm_model *m)
{
	size_t n = m->n_params + m->n_act;

	n += m->grads ? m->n_params : 0;
	n += m->adam_m ? 2 * m->n_params : 0;
	n += m->lora ? m->lora->total : 0;
	return n * sizeof(float);
}

/* Training calls need the backward buffers an inference model lacks. */
static llm_err check_trainable(const llm_model *m, const char *what)
{
	if (m->inference)
		return llm_fail(LLM_EINVAL,
				"model: %s needs a model created without "
				"LLM_MODEL_INFERENCE",
				what);
	return LLM_OK;
}

const float *llm_model_logits(const llm_model *m)
{
	size_t n = (size_t)m->B * m->T * m->cfg.vocab_size;
	const void *p;

	if (llm_ops_host_view(m->ops, m->stage, m->a.logits, n * sizeof(float), &p))
		return NULL;
	return p;
}

/* ---- tensors by name ---- */

const struct mtensor *llm_model_find(const llm_model *m, const char *name)
{
	for (int i = 0; i < m->n_tensors; i++)
		if (!strcmp(m->tensors[i].name, name))
			return &m->tensors[i];
	return NULL;
}

void llm_model_to_hf(const struct mtensor *t, const float *src, float *dst)
{
	if (!t->conv1d) {
		memcpy(dst, src, t->n * sizeof(float));
		return;
	}
	for (int r = 0; r < t->rows; r++) /* src (rows,cols) -> dst (cols,rows) */
		for (int c = 0; c < t->cols; c++)
			dst[(size_t)c * t->rows + r] = src[(size_t)r * t->cols + c];
}

void llm_model_from_hf(const struct mtensor *t, const float *src, float *dst)
{
	if (!t->conv1d) {
		memcpy(dst, src, t->n * sizeof(float));
		return;
	}
	for (int c = 0; c < t->cols; c++)
		for (int r = 0; r < t->rows; r++)
			dst[(size_t)r * t->cols + c] = src[(size_t)c * t->rows + r];
}

llm_err llm_model_get_tensor(const llm_model *m, const char *name, int grad, float *out, size_t n)
{
	const struct mtensor *t = llm_model_find(m, name);
	const float *base = grad ? m->grads : m->params;
	const void *host;
	llm_err err;

	if (!t)
		return llm_fail(LLM_ENOTFOUND, "model: no tensor %s", name);
	if (!base)
		return llm_fail(LLM_ENOTFOUND, "model: no gradients allocated for %s", name);
	if (n != t->n)
		return llm_fail(LLM_EINVAL, "model: %s has %zu elements, not %zu", name, t->n, n);
	err = llm_ops_host_view(m->ops, m->stage, base + t->off, n * sizeof(float), &host);
	if (err)
		return err;
	llm_model_to_hf(t, host, out);
	return LLM_OK;
}

int llm_model_tensor_count(const llm_model *m)
{
	return m->n_tensors;
}

llm_err llm_model_tensor_info(const llm_model *m, int i, const char **name, int *ndim,
			      int64_t shape[2])
{
	const struct mtensor *t;

	if (i < 0 || i >= m->n_tensors)
		return llm_fail(LLM_EINVAL, "model: tensor index %d out of range", i);
	t = &m->tensors[i];
	*name = t->name;
	*ndim = t->cols ? 2 : 1;
	shape[0] = t->conv1d ? t->cols : t->rows;
	shape[1] = t->conv1d ? t->rows : t->cols;
	return LLM_OK;
}

/* ---- forward ---- */

/* The parameters of a site, or their gradients (NULL when frozen). */
static const struct lin *grad_site(const llm_model *m, int l, int s)
{
	if (!m->grads || m->lora)
		return NULL;
	return &m->g.layer[l].site[s];
}

static struct lora_site *lora_at(const llm_model *m, int l, int s)
{
	struct lora_site *ls;

	if (!m->lora)
		return NULL;
	ls = &m->lora->site[l * SITE_COUNT_ + s];
	return ls->on ? ls : NULL;
}

/* out (BT,out) = inp (BT,in) . W^T + b, plus the LoRA branch when present. */
static void linear_forward(llm_model *m, int l, int s, float *out, const float *inp, int B, int T,
			   bool train)
{
	const struct lin *p = &m->w.layer[l].site[s];
	struct lora_site *ls = lora_at(m, l, s);
	int in, o;

	site_dims(m, s, &in, &o);
	m->ops->matmul_forward(out, inp, p->w, p->b, B, T, in, o);
	if (ls) {
		float drop = train ? m->lora->cfg.dropout : 0.0f;

		ls->seed = llm_hash64(m->lora->cfg.seed, (m->n_forward * (uint64_t)m->cfg.n_layer +
							  (uint64_t)l) * SITE_COUNT_ +
								 (uint64_t)s);
		m->ops->lora_forward(out, ls->hidden, inp, ls->a, ls->b, m->a.lora_scratch, B, T,
				     in, o, m->lora->cfg.r, m->lora->scaling, drop, ls->seed);
	}
}

/* Accumulates dinp (BT,in) and the trainable gradients of site s. */
static void linear_backward(llm_model *m, int l, int s, float *dinp, const float *dout,
			    const float *inp, int B, int T)
{
	const struct lin *p = &m->w.layer[l].site[s], *g = grad_site(m, l, s);
	struct lora_site *ls = lora_at(m, l, s);
	int in, o;

	site_dims(m, s, &in, &o);
	m->ops->matmul_backward(dinp, g ? g->w : NULL, g ? g->b : NULL, dout, inp, p->w, B, T, in,
				o);
	if (ls)
		m->ops->lora_backward(dinp, ls->da, ls->db, dout, inp, ls->hidden, ls->a, ls->b,
				      m->a.lora_scratch, B, T, in, o, m->lora->cfg.r,
				      m->lora->scaling, m->lora->cfg.dropout, ls->seed);
}

static void norm_forward(const llm_model *m, float *out, float *mean, float *rstd, const float *inp,
			 const float *w, const float *b, int N)
{
	if (m->cfg.arch == LLM_ARCH_GPT2)
		m->ops->layernorm_forward(out, mean, rstd, inp, w, b, N, m->cfg.d_model,
					  m->cfg.norm_eps);
	else
		m->ops->rmsnorm_forward(out, rstd, inp, w, N, m->cfg.d_model, m->cfg.norm_eps);
}

/* res_out = inp1 + inp2 (N rows of the residual stream) and out = the
 * model's norm of res_out, in one pass over each row. */
static void residual_norm_forward(const llm_model *m, float *res_out, float *out, float *mean,
				  float *rstd, const float *inp1, const float *inp2, const float *w,
				  const float *b, int N)
{
	if (m->cfg.arch == LLM_ARCH_GPT2)
		m->ops->residual_layernorm_forward(res_out, out, mean, rstd, inp1, inp2, w, b, N,
						   m->cfg.d_model, m->cfg.norm_eps);
	else
		m->ops->residual_rmsnorm_forward(res_out, out, rstd, inp1, inp2, w, N,
						 m->cfg.d_model, m->cfg.norm_eps);
}

static void norm_backward(const llm_model *m, float *dinp, float *dw, float *db, const float *dout,
			  const float *inp, const float *w, const float *mean, const float *rstd,
			  int N)
{
	if (m->cfg.arch == LLM_ARCH_GPT2)
		m->ops->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N,
					   m->cfg.d_model);
	else
		m->ops->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->cfg.d_model);
}

/* Copies rows of width w from src (B,T,w) into dst (B,Tcap,w) at pos0. */
static void scatter_rows(const llm_model *m, float *dst, const float *src, int B, int T, int Tcap,
			 int pos0, int w)
{
	size_t row = (size_t)T * w * sizeof(float);

	m->ops->copy2d(dst + (size_t)pos0 * w, (size_t)Tcap * w * sizeof(float), src, row, row,
		       (size_t)B);
}

/* Copies columns [col, col + w) of src (N,W) into dst (N,w), or back with
 * to_wide, into the same columns of dst (N,W). */
static void copy_cols(const llm_model *m, float *dst, const float *src, int N, int W, int col,
		      int w, bool to_wide)
{
	size_t wide = (size_t)W * sizeof(float), narrow = (size_t)w * sizeof(float);

	if (to_wide)
		m->ops->copy2d(dst + col, wide, src, narrow, narrow, (size_t)N);
	else
		m->ops->copy2d(dst, narrow, src + col, wide, narrow, (size_t)N);
}

/* q, new keys and values of block l from la->ln1, into la->q, a->knew, a->vnew. */
static void qkv_forward(llm_model *m, int l, int B, int T, int pos0, bool train)
{
	struct layer_acts *la = &m->a.layer[l];
	struct acts *a = &m->a;
	int BT = B * T, Q = m->Q, KV = m->KV, W = Q + 2 * KV;

	if (m->cfg.arch == LLM_ARCH_GPT2) {
		linear_forward(m, l, SITE_C_ATTN, la->qkv, la->ln1, B, T, train);
		copy_cols(m, la->q, la->qkv, BT, W, 0, Q, false);
		copy_cols(m, a->knew, la->qkv, BT, W, Q, KV, false);
		copy_cols(m, a->vnew, la->qkv, BT, W, Q + KV, KV, false);
		return;
	}
	linear_forward(m, l, SITE_Q, la->q, la->ln1, B, T, train);
	linear_forward(m, l, SITE_K, a->knew, la->ln1, B, T, train);
	linear_forward(m, l, SITE_V, a->vnew, la->ln1, B, T, train);
	m->ops->rope_forward(la->q, la->q, B, T, m->cfg.n_head, m->cfg.head_dim, pos0,
			     m->cfg.rope_theta);
	m->ops->rope_forward(a->knew, a->knew, B, T, m->cfg.n_kv_head, m->cfg.head_dim, pos0,
			     m->cfg.rope_theta);
}

/* The blocks and the head over tokens (B,T) at positions [pos0, pos0+T),
 * with keys and values kept in rows of capacity Tcap. Logits in a->logits.
 * Each residual add is fused with the norm that reads its result: ln2 of
 * the same block, then ln1 of the next block or ln_f after the last. */
static void forward_all(llm_model *m, const int *tokens, int B, int T, int pos0, int Tcap,
			bool train)
{
	const struct llm_model_config *c = &m->cfg;
	struct acts *a = &m->a;
	int BT = B * T, C = c->d_model, o = m->cfg.arch == LLM_ARCH_GPT2;
	const float *res = a->encoded;

	m->ops->embedding_forward(a->encoded, tokens, m->w.wte, m->w.wpe, B, T, C, pos0);
	norm_forward(m, a->layer[0].ln1, a->layer[0].ln1_mean, a->layer[0].ln1_rstd, res,
		     m->w.layer[0].ln1_w, m->w.layer[0].ln1_b, BT);
	for (int l = 0; l < c->n_layer; l++) {
		struct layer_acts *la = &a->layer[l];
		const struct layer_w *lw = &m->w.layer[l];

		qkv_forward(m, l, B, T, pos0, train);
		scatter_rows(m, la->kc, a->knew, B, T, Tcap, pos0, m->KV);
		scatter_rows(m, la->vc, a->vnew, B, T, Tcap, pos0, m->KV);
		m->ops->attention_forward(la->att, la->lse, la->q, la->kc, la->vc, NULL, 1, B, T,
					  pos0 + T, Tcap, c->n_head, c->n_kv_head, c->head_dim);
		linear_forward(m, l, o ? SITE_ATTN_C_PROJ : SITE_O, a->proj, la->att, B, T, train);
		residual_norm_forward(m, la->res2, la->ln2, la->ln2_mean, la->ln2_rstd, res,
				      a->proj, lw->ln2_w, lw->ln2_b, BT);
		if (o) {
			linear_forward(m, l, SITE_C_FC, la->fc1, la->ln2, B, T, train);
			m->ops->gelu_forward(la->fact, la->fc1, (long)BT * m->F, c->gelu);
			linear_forward(m, l, SITE_MLP_C_PROJ, a->proj, la->fact, B, T, train);
		} else {
			linear_forward(m, l, SITE_GATE, la->fc1, la->ln2, B, T, train);
			linear_forward(m, l, SITE_UP, la->fc2, la->ln2, B, T, train);
			m->ops->swiglu_forward(la->fact, la->fc1, la->fc2, (long)BT * m->F);
			linear_forward(m, l, SITE_DOWN, a->proj, la->fact, B, T, train);
		}
		if (l + 1 < c->n_layer) {
			struct layer_acts *nla = &a->layer[l + 1];
			const struct layer_w *nlw = &m->w.layer[l + 1];

			residual_norm_forward(m, la->res3, nla->ln1, nla->ln1_mean, nla->ln1_rstd,
					      la->res2, a->proj, nlw->ln1_w, nlw->ln1_b, BT);
		} else {
			residual_norm_forward(m, la->res3, a->lnf, a->lnf_mean, a->lnf_rstd,
					      la->res2, a->proj, m->w.lnf_w, m->w.lnf_b, BT);
		}
		res = la->res3;
	}
	m->ops->matmul_forward(a->logits, a->lnf, m->w.lm_head, NULL, B, T, C, c->vocab_size);
}

static llm_err check_tokens(const llm_model *m, const int *tokens, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
			return llm_fail(LLM_EINVAL, "model: %s[%d] = %d is outside [0, %d)", what,
					i, tokens[i], m->cfg.vocab_size);
	return LLM_OK;
}

static llm_err check_sizes(const llm_model *m, int B, int T)
{
	if (B < 1 || B > m->max_B || T < 1 || T > m->max_T)
		return llm_fail(LLM_EINVAL, "model: B %d, T %d outside [1, %d] x [1, %d]", B, T,
				m->max_B, m->max_T);
	return LLM_OK;
}

/* Shifted targets: position t predicts labels[t+1]; the last one is ignored. */
static llm_err set_targets(llm_model *m, const int *labels, int B, int T)
{
	size_t bytes = (size_t)B * T * sizeof(int);
	void *buf;
	int *tg;
	llm_err err = llm_ops_host_buffer(m->ops, m->stage, m->a.targets, bytes, &buf);

	if (err)
		return err;
	tg = buf;
	for (int b = 0; b < B; b++) {
		for (int t = 0; t < T; t++) {
			int y = t + 1 < T ? labels[b * T + t + 1] : IGNORE_INDEX;

			if (y != IGNORE_INDEX && (y < 0 || y >= m->cfg.vocab_size))
				return llm_fail(LLM_EINVAL,
						"model: labels[%d] = %d is outside [0, %d) and not "
						"-100",
						b * T + t + 1, y, m->cfg.vocab_size);
			tg[b * T + t] = y;
		}
	}
	return llm_ops_host_commit(m->ops, m->a.targets, tg, bytes);
}

/* The checked tokens (n) where the backend's kernels can read them: the
 * caller's array on the CPU, a copy in a->tokens otherwise. */
static llm_err tokens_in(llm_model *m, const int *tokens, int n, const int **out)
{
	*out = tokens;
	if (m->ops->host_memory)
		return LLM_OK;
	*out = m->a.tokens;
	return m->ops->upload(m->a.tokens, tokens, (size_t)n * sizeof(int));
}

/* *sum = the sum in double of the losses (BT) of the last forward. */
static llm_err loss_sum(llm_model *m, int BT, double *sum)
{
	const void *p;
	const float *losses;
	llm_err err =
		llm_ops_host_view(m->ops, m->stage, m->a.losses, (size_t)BT * sizeof(float), &p);

	*sum = 0.0;
	if (err)
		return err;
	losses = p;
	for (int i = 0; i < BT; i++)
		*sum += losses[i];
	return LLM_OK;
}

/* The forward pass over tokens (B,T) and, with labels, the losses of every
 * position (a->losses) and their count. train: LoRA dropout, and the tokens
 * kept for the backward. Leaves no state a backward or decode step may use. */
static llm_err forward_losses(llm_model *m, const int *tokens, const int *labels, int B, int T,
			      bool train)
{
	llm_err err = check_sizes(m, B, T);
	int BT = B * T;
	const int *tk = m->a.tokens;

	if (!err)
		err = check_tokens(m, tokens, BT, "tokens");
	if (!err && labels)
		err = set_targets(m, labels, B, T);
	if (err)
		return err;
	m->state = ST_NONE;
	if (train)
		err = m->ops->upload(m->a.tokens, tokens, (size_t)BT * sizeof(int));
	else
		err = tokens_in(m, tokens, BT, &tk);
	if (err)
		return err;
	if (train)
		m->n_forward++;
	forward_all(m, tk, B, T, 0, T, train);
	m->B = B;
	m->T = T;
	m->have_labels = labels != NULL;
	if (labels)
		m->count = m->ops->crossentropy_forward_backward(
			NULL, m->a.losses, m->a.logits, m->a.targets, BT, m->cfg.vocab_size,
			IGNORE_INDEX, 0.0f);
	return m->ops->sync();
}

llm_err llm_model_forward(llm_model *m, const int *tokens, const int *labels, int B, int T,
			  float *loss)
{
	llm_err err = forward_losses(m, tokens, labels, B, T, true);
	double sum;

	if (!err && labels && loss) {
		err = loss_sum(m, B * T, &sum);
		*loss = m->count ? (float)(sum / m->count) : NAN;
	}
	if (!err)
		m->state = ST_TRAIN;
	return err;
}

llm_err llm_model_eval(llm_model *m, const int *tokens, const int *labels, int B, int T,
		       double *sum, int *count)
{
	llm_err err = forward_losses(m, tokens, labels, B, T, false);

	*count = err ? 0 : m->count;
	return err ? err : loss_sum(m, B * T, sum);
}

/* ---- backward ---- */

static void attn_backward(llm_model *m, int l, const float *res_in, int B, int T)
{
	const struct llm_model_config *c = &m->cfg;
	struct acts *a = &m->a;
	struct layer_acts *la = &a->layer[l];
	const struct layer_w *lw = &m->w.layer[l];
	struct layer_w *gw = m->grads && !m->lora ? &m->g.layer[l] : NULL;
	int BT = B * T, Q = m->Q, KV = m->KV, W = Q + 2 * KV;
	bool gpt2 = c->arch == LLM_ARCH_GPT2;

	m->ops->zero(a->datt, (size_t)BT * Q * sizeof(float));
	linear_backward(m, l, gpt2 ? SITE_ATTN_C_PROJ : SITE_O, a->datt, a->dres, la->att, B, T);
	m->ops->zero(a->dq, (size_t)BT * Q * sizeof(float));
	m->ops->zero(a->dk, (size_t)BT * KV * sizeof(float));
	m->ops->zero(a->dv, (size_t)BT * KV * sizeof(float));
	m->ops->attention_backward(a->dq, a->dk, a->dv, a->datt, la->q, la->kc, la->vc, la->att,
				   la->lse, 1, B, T, c->n_head, c->n_kv_head, c->head_dim);
	m->ops->zero(a->dx, (size_t)BT * c->d_model * sizeof(float));
	if (gpt2) {
		copy_cols(m, a->dqkv, a->dq, BT, W, 0, Q, true);
		copy_cols(m, a->dqkv, a->dk, BT, W, Q, KV, true);
		copy_cols(m, a->dqkv, a->dv, BT, W, Q + KV, KV, true);
		linear_backward(m, l, SITE_C_ATTN, a->dx, a->dqkv, la->ln1, B, T);
	} else {
		/* undo RoPE: datt and knew are free now */
		m->ops->zero(a->datt, (size_t)BT * Q * sizeof(float));
		m->ops->zero(a->knew, (size_t)BT * KV * sizeof(float));
		m->ops->rope_backward(a->datt, a->dq, B, T, c->n_head, c->head_dim, 0,
				      c->rope_theta);
		m->ops->rope_backward(a->knew, a->dk, B, T, c->n_kv_head, c->head_dim, 0,
				      c->rope_theta);
		linear_backward(m, l, SITE_Q, a->dx, a->datt, la->ln1, B, T);
		linear_backward(m, l, SITE_K, a->dx, a->knew, la->ln1, B, T);
		linear_backward(m, l, SITE_V, a->dx, a->dv, la->ln1, B, T);
	}
	norm_backward(m, a->dres, gw ? gw->ln1_w : NULL, gw ? gw->ln1_b : NULL, a->dx, res_in,
		      lw->ln1_w, la->ln1_mean, la->ln1_rstd, BT);
}

static void mlp_backward(llm_model *m, int l, int B, int T)
{
	struct acts *a = &m->a;
	struct layer_acts *la = &a->layer[l];
	const struct layer_w *lw = &m->w.layer[l];
	struct layer_w *gw = m->grads && !m->lora ? &m->g.layer[l] : NULL;
	int BT = B * T;
	size_t nf = (size_t)BT * m->F;

	m->ops->zero(a->dfact, nf * sizeof(float));
	m->ops->zero(a->df1, nf * sizeof(float));
	m->ops->zero(a->dx, (size_t)BT * m->cfg.d_model * sizeof(float));
	if (m->cfg.arch == LLM_ARCH_GPT2) {
		linear_backward(m, l, SITE_MLP_C_PROJ, a->dfact, a->dres, la->fact, B, T);
		m->ops->gelu_backward(a->df1, la->fc1, a->dfact, (long)nf, m->cfg.gelu);
		linear_backward(m, l, SITE_C_FC, a->dx, a->df1, la->ln2, B, T);
	} else {
		m->ops->zero(a->df2, nf * sizeof(float));
		linear_backward(m, l, SITE_DOWN, a->dfact, a->dres, la->fact, B, T);
		m->ops->swiglu_backward(a->df1, a->df2, a->dfact, la->fc1, la->fc2, (long)nf);
		linear_backward(m, l, SITE_GATE, a->dx, a->df1, la->ln2, B, T);
		linear_backward(m, l, SITE_UP, a->dx, a->df2, la->ln2, B, T);
	}
	norm_backward(m, a->dres, gw ? gw->ln2_w : NULL, gw ? gw->ln2_b : NULL, a->dx, la->res2,
		      lw->ln2_w, la->ln2_mean, la->ln2_rstd, BT);
}

llm_err llm_model_backward(llm_model *m)
{
	const struct llm_model_config *c = &m->cfg;
	struct acts *a = &m->a;
	int B = m->B, T = m->T, BT = B * T, C = c->d_model, L = c->n_layer;
	bool full = !m->lora;
	const float *last;

	if (check_trainable(m, "backward"))
		return LLM_EINVAL;
	if (m->state != ST_TRAIN || !m->have_labels)
		return llm_fail(LLM_EINVAL, "model: backward needs a forward with labels first");
	if (!m->grads && !m->lora)
		return llm_fail(LLM_EINVAL, "model: call llm_model_zero_grad() before backward");
	m->have_labels = false; /* the logits become their gradient */
	m->ops->crossentropy_forward_backward(a->logits, a->losses, a->logits, a->targets, BT,
					      c->vocab_size, IGNORE_INDEX,
					      m->count ? 1.0f / (float)m->count : 0.0f);
	m->ops->zero(a->dx, (size_t)BT * C * sizeof(float));
	m->ops->matmul_backward(a->dx, full ? m->g.lm_head : NULL, NULL, a->logits, a->lnf,
				m->w.lm_head, B, T, C, c->vocab_size);
	m->ops->zero(a->dres, (size_t)BT * C * sizeof(float));
	last = a->layer[L - 1].res3;
	norm_backward(m, a->dres, full ? m->g.lnf_w : NULL, full ? m->g.lnf_b : NULL, a->dx, last,
		      m->w.lnf_w, a->lnf_mean, a->lnf_rstd, BT);
	for (int l = L - 1; l >= 0; l--) {
		const float *res_in = l ? a->layer[l - 1].res3 : a->encoded;

		mlp_backward(m, l, B, T);
		attn_backward(m, l, res_in, B, T);
	}
	if (full)
		m->ops->embedding_backward(m->g.wte, m->g.wpe, a->dres, a->tokens, B, T, C, 0);
	return m->ops->sync();
}

/* ---- optimizer ---- */

llm_err llm_model_zero_grad(llm_model *m)
{
	if (check_trainable(m, "zero_grad"))
		return LLM_EINVAL;
	if (m->lora) {
		m->ops->zero(m->lora->mem + m->lora->n, m->lora->n * sizeof(float));
		return m->ops->sync();
	}
	if (!m->grads) {
		m->grads = m->ops->alloc(m->n_params * sizeof(float));
		if (!m->grads)
			return llm_wrap(LLM_ENOMEM,
					"model: out of memory for gradients (%zu floats)",
					m->n_params);
		plan_params(m, m->grads, false, &m->g);
		return LLM_OK;
	}
	m->ops->zero(m->grads, m->n_params * sizeof(float));
	return m->ops->sync();
}

static llm_err check_adamw(const struct llm_adamw *o)
{
	if (!(o->lr >= 0.0f) || !(o->beta1 >= 0.0f && o->beta1 < 1.0f) ||
	    !(o->beta2 >= 0.0f && o->beta2 < 1.0f) || !(o->eps >= 0.0f) ||
	    !(o->weight_decay >= 0.0f) || !isfinite(o->max_grad_norm))
		return llm_fail(LLM_EINVAL,
				"model: AdamW settings out of range (lr %g, betas %g "
				"%g, eps %g, weight decay %g)",
				(double)o->lr, (double)o->beta1, (double)o->beta2, (double)o->eps,
				(double)o->weight_decay);
	return LLM_OK;
}

/* AdamW over the tensors of a table whose params, grads and moments share
 * offsets in four arenas. */
static void adamw_tensors(const struct llm_ops *ops, const struct mtensor *ts, int n, float *p,
			  const float *g, float *mm, float *vv, const struct llm_adamw *o, int t)
{
	for (int i = 0; i < n; i++) {
		const struct mtensor *x = &ts[i];
		float wd = o->no_decay_1d && x->cols == 0 ? 0.0f : o->weight_decay;

		ops->adamw_update(p + x->off, g + x->off, mm + x->off, vv + x->off, x->n, o->lr,
				  o->beta1, o->beta2, o->eps, wd, t);
	}
}

static llm_err alloc_moments(llm_model *m)
{
	if (m->adam_m)
		return LLM_OK;
	m->adam_m = m->ops->alloc(m->n_params * sizeof(float));
	m->adam_v = m->adam_m ? m->ops->alloc(m->n_params * sizeof(float)) : NULL;
	if (!m->adam_m || !m->adam_v) {
		m->ops->free(m->adam_m);
		m->adam_m = NULL;
		return llm_wrap(LLM_ENOMEM, "model: out of memory for AdamW state");
	}
	return LLM_OK;
}

llm_err llm_model_step(llm_model *m, const struct llm_adamw *opt, float *grad_norm)
{
	llm_err err = check_adamw(opt);
	float norm;

	if (!err)
		err = check_trainable(m, "step");
	if (err)
		return err;
	if (m->lora) {
		struct lora *lo = m->lora;
		float *g = lo->mem + lo->n;

		norm = m->ops->clip_grad_norm(g, lo->n, opt->max_grad_norm);
		lo->t++;
		adamw_tensors(m->ops, lo->tensors, lo->n_tensors, lo->mem, g, g + lo->n,
			      g + 2 * lo->n, opt, lo->t);
	} else {
		if (!m->grads)
			return llm_fail(LLM_EINVAL, "model: step before any gradient");
		err = alloc_moments(m);
		if (err)
			return err;
		norm = m->ops->clip_grad_norm(m->grads, m->n_params, opt->max_grad_norm);
		m->t++;
		adamw_tensors(m->ops, m->tensors, m->n_tensors, m->params, m->grads, m->adam_m,
			      m->adam_v, opt, m->t);
	}
	if (grad_norm)
		*grad_norm = norm;
	return m->ops->sync();
}

/* ---- training state ---- */

llm_err llm_model_train_state(llm_model *m, struct llm_model_state *out)
{
	llm_err err = check_trainable(m, "train_state");

	if (!err && !m->lora && !m->grads)
		err = llm_model_zero_grad(m);
	if (!err && !m->lora)
		err = alloc_moments(m);
	if (err)
		return err;
	if (m->lora) {
		float *p = m->lora->mem;
		size_t n = m->lora->n;

		*out = (struct llm_model_state){p, p + n, p + 2 * n, p + 3 * n, n};
	} else {
		*out = (struct llm_model_state){m->params, m->grads, m->adam_m, m->adam_v,
						m->n_params};
	}
	return LLM_OK;
}

void llm_model_get_counters(const llm_model *m, struct llm_model_counters *out)
{
	out->adam_steps = m->lora ? m->lora->t : m->t;
	out->forwards = m->n_forward;
}

void llm_model_set_counters(llm_model *m, const struct llm_model_counters *c)
{
	if (m->lora)
		m->lora->t = c->adam_steps;
	else
		m->t = c->adam_steps;
	m->n_forward = c->forwards;
}

const char *llm_model_backend(const llm_model *m)
{
	return m->ops->name;
}

bool llm_model_host_memory(const llm_model *m)
{
	return m->ops->host_memory;
}

llm_err llm_model_state_alloc(llm_model *m, size_t n, float **out)
{
	*out = NULL;
	if (n > SIZE_MAX / sizeof(float))
		return llm_fail(LLM_ETOOLARGE, "model: %zu floats of training state", n);
	*out = m->ops->alloc(n * sizeof(float));
	return *out ? LLM_OK : llm_wrap(LLM_ENOMEM, "model: %zu floats of training state", n);
}

void llm_model_state_free(llm_model *m, float *p)
{
	m->ops->free(p);
}

llm_err llm_model_state_download(llm_model *m, float *host, const float *src, size_t n)
{
	return m->ops->download(host, src, n * sizeof(float));
}

llm_err llm_model_state_upload(llm_model *m, float *dst, const float *host, size_t n)
{
	return m->ops->upload(dst, host, n * sizeof(float));
}

llm_err llm_model_state_copy(llm_model *m, float *dst, const float *src, size_t n)
{
	m->ops->copy2d(dst, n * sizeof(float), src, n * sizeof(float), n * sizeof(float), 1);
	return m->ops->sync();
}

llm_err llm_model_state_zero(llm_model *m, float *p, size_t n)
{
	m->ops->zero(p, n * sizeof(float));
	return m->ops->sync();
}

llm_err llm_model_state_accumulate(llm_model *m, float *acc, const float *grad, float weight,
				   size_t n)
{
	m->ops->grad_accumulate(acc, grad, weight, n);
	return m->ops->sync();
}

/* ---- LoRA ---- */

/* PEFT's match: the target equals the module path or is a dotted suffix. */
static bool target_matches(const char *path, const char *target)
{
	size_t lp = strlen(path), lt = strlen(target);

	if (!lt || lt > lp)
		return false;
	if (lt == lp)
		return !strcmp(path, target);
	return path[lp - lt - 1] == '.' && !strcmp(path + lp - lt, target);
}

static bool site_targeted(const llm_model *m, const struct llm_lora_config *c, int l, int s)
{
	char path[96];

	if (!has_site(m, s))
		return false;
	llm_model_block_name(m, path, sizeof(path), l, site_module[s]);
	for (int i = 0; i < c->n_targets; i++)
		if (target_matches(path, c->targets[i]))
			return true;
	return false;
}

static llm_err check_lora(const struct llm_lora_config *c)
{
	if (c->r < 1)
		return llm_fail(LLM_EINVAL, "lora: r = %d must be >= 1", c->r);
	if (!isfinite(c->alpha))
		return llm_fail(LLM_EINVAL, "lora: alpha must be finite");
	if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
		return llm_fail(LLM_EINVAL, "lora: dropout %g outside [0, 1)", (double)c->dropout);
	if (c->n_targets < 1 || c->n_targets > LLM_LORA_MAX_TARGETS)
		return llm_fail(LLM_EINVAL, "lora: %d target modules (1 to %d)", c->n_targets,
				LLM_LORA_MAX_TARGETS);
	return LLM_OK;
}

/* Records the A and B tensors of every targeted site; returns their floats. */
static size_t lora_plan(llm_model *m, struct lora *lo)
{
	size_t off = 0;
	int r = lo->cfg.r;

	for (int l = 0; l < m->cfg.n_layer; l++) {
		for (int s = 0; s < SITE_COUNT_; s++) {
			struct mtensor *t;
			char path[96];
			int in, o;

			if (!site_targeted(m, &lo->cfg, l, s))
				continue;
			site_dims(m, s, &in, &o);
			llm_model_block_name(m, path, sizeof(path), l, site_module[s]);
			lo->site[l * SITE_COUNT_ + s].on = true;
			lo->n_sites++;
			for (int ab = 0; ab < 2; ab++) {
				t = &lo->tensors[lo->n_tensors++];
				snprintf(t->name, sizeof(t->name),
					 "base_model.model.%s.lora_%c.weight", path,
					 ab ? 'B' : 'A');
				t->rows = ab ? o : r;
				t->cols = ab ? r : in;
				t->off = off;
				t->n = (size_t)t->rows * t->cols;
				off += t->n;
			}
		}
	}
	return off;
}

/* Points every enabled site into lo->mem: params | grads | m | v | hidden |
 * scratch. */
static void lora_bind(llm_model *m, struct lora *lo)
{
	size_t BT = (size_t)m->max_B * m->max_T, n = lo->n;
	float *hidden = lo->mem + 4 * n;
	int k = 0;

	for (int i = 0; i < m->cfg.n_layer * SITE_COUNT_; i++) {
		struct lora_site *ls = &lo->site[i];

		if (!ls->on)
			continue;
		ls->a = lo->mem + lo->tensors[k].off;
		ls->b = lo->mem + lo->tensors[k + 1].off;
		ls->da = ls->a + n;
		ls->db = ls->b + n;
		ls->hidden = hidden;
		hidden += BT * lo->cfg.r;
		k += 2;
	}
	m->a.lora_scratch = hidden;
}

/* A Kaiming-uniform(a=sqrt(5)), B zeros: the parameter block drawn on the
 * host and stored at once. */
static llm_err lora_init(llm_model *m, struct lora *lo)
{
	size_t bytes = lo->n * sizeof(float);
	void *buf;
	float *p;
	llm_err err = llm_ops_host_buffer(m->ops, m->stage, lo->mem, bytes, &buf);

	if (err)
		return err;
	p = buf;
	for (int i = 0; i < lo->n_tensors; i++) {
		const struct mtensor *t = &lo->tensors[i];
		float bound = 1.0f / sqrtf((float)t->cols);
		bool is_a = i % 2 == 0;

		for (size_t j = 0; j < t->n; j++)
			p[t->off + j] =
				is_a ? bound * (2.0f * llm_uniform(lo->cfg.seed, t->off + j) - 1.0f)
				     : 0.0f;
	}
	return llm_ops_host_commit(m->ops, lo->mem, p, bytes);
}

llm_err llm_model_lora_add(llm_model *m, const struct llm_lora_config *c)
{
	size_t BT = (size_t)m->max_B * m->max_T, maxin, total;
	struct lora *lo;
	llm_err err = check_lora(c);

	if (err)
		return err;
	if (m->lora)
		return llm_fail(LLM_EEXIST, "lora: the model already has adapters");
	lo = calloc(1, sizeof(*lo));
	if (!lo)
		return llm_fail(LLM_ENOMEM, "lora: out of memory");
	lo->cfg = *c;
	lo->scaling = c->alpha / (float)c->r;
	lo->site = calloc((size_t)m->cfg.n_layer * SITE_COUNT_, sizeof(*lo->site));
	lo->tensors = calloc((size_t)m->cfg.n_layer * SITE_COUNT_ * 2, sizeof(*lo->tensors));
	if (!lo->site || !lo->tensors)
		goto out_nomem;
	lo->n = lora_plan(m, lo);
	if (!lo->n_sites) {
		lora_free(m->ops, lo);
		return llm_fail(LLM_EINVAL, "lora: no module of the model matches target %s%s",
				c->targets[0], c->n_targets > 1 ? " or the others" : "");
	}
	maxin = (size_t)(m->F > m->Q ? m->F : m->Q);
	maxin = maxin > (size_t)m->cfg.d_model ? maxin : (size_t)m->cfg.d_model;
	total = 4 * lo->n + BT * c->r * lo->n_sites + BT * (maxin + c->r);
	lo->total = total;
	lo->mem = m->ops->alloc(total * sizeof(float));
	if (!lo->mem)
		goto out_nomem;
	lora_bind(m, lo);
	err = lora_init(m, lo);
	if (!err)
		err = m->ops->sync();
	if (err) {
		lora_free(m->ops, lo);
		return err;
	}
	m->lora = lo;
	m->state = ST_NONE;
	return LLM_OK;

out_nomem:
	lora_free(m->ops, lo);
	return llm_fail(LLM_ENOMEM, "lora: out of memory for adapters");
}

void llm_model_lora_drop(llm_model *m)
{
	lora_free(m->ops, m->lora);
	m->lora = NULL;
	m->a.lora_scratch = NULL;
	m->state = ST_NONE;
}

llm_err llm_model_lora_get(const llm_model *m, const char *name, float *out, size_t n)
{
	if (!m->lora)
		return llm_fail(LLM_ENOTFOUND, "lora: the model has no adapters");
	for (int i = 0; i < m->lora->n_tensors; i++) {
		const struct mtensor *t = &m->lora->tensors[i];

		if (strcmp(t->name, name))
			continue;
		const void *host;
		llm_err err;

		if (n != t->n)
			return llm_fail(LLM_EINVAL, "lora: %s has %zu elements, not %zu", name,
					t->n, n);
		err = llm_ops_host_view(m->ops, m->stage, m->lora->mem + t->off, n * sizeof(float),
					&host);
		if (!err)
			memcpy(out, host, n * sizeof(float));
		return err;
	}
	return llm_fail(LLM_ENOTFOUND, "lora: no adapter tensor %s", name);
}

/* ---- decoding ---- */

llm_err llm_model_prefill(llm_model *m, const int *tokens, int B, int T)
{
	llm_err err = check_sizes(m, B, T);
	const int *dtok;

	if (!err)
		err = check_tokens(m, tokens, B * T, "tokens");
	if (!err)
		err = tokens_in(m, tokens, B * T, &dtok);
	if (err)
		return err;
	m->state = ST_NONE;
	forward_all(m, dtok, B, T, 0, m->max_T, false);
	m->B = B;
	m->T = T;
	err = m->ops->sync();
	if (err)
		return err;
	m->state = ST_DECODE;
	m->pos = T;
	return LLM_OK;
}

llm_err llm_model_decode(llm_model *m, const int *tokens)
{
	llm_err err;

	if (m->state != ST_DECODE)
		return llm_fail(LLM_EINVAL, "model: decode needs a prefill first");
	if (m->pos >= m->max_T)
		return llm_fail(LLM_ETOOLARGE, "model: the KV cache holds %d positions", m->max_T);
	const int *dtok;

	err = check_tokens(m, tokens, m->B, "tokens");
	if (!err)
		err = tokens_in(m, tokens, m->B, &dtok);
	if (err)
		return err;
	forward_all(m, dtok, m->B, 1, m->pos, m->max_T, false);
	m->T = 1;
	m->pos++;
	err = m->ops->sync();
	if (err)
		m->state = ST_NONE;
	return err;
}

llm_err llm_model_generate(llm_model *m, const int *prompt, int B, int T, int n_new,
			   const struct llm_sampling *s, int *out)
{
	static const struct llm_sampling greedy = {0};
	size_t row = (size_t)m->cfg.vocab_size * sizeof(float);
	int V = m->cfg.vocab_size;
	llm_err err;

	if (n_new < 1 || (long)T + n_new - 1 > m->max_T)
		return llm_fail(LLM_EINVAL, "model: %d prompt and %d new tokens exceed max_T %d", T,
				n_new, m->max_T);
	err = llm_model_prefill(m, prompt, B, T);
	for (int i = 0; !err && i < n_new; i++) {
		const void *host;
		const int *next;

		/* the last position of each row, then one draw per row */
		m->ops->copy2d(m->a.last, row, m->a.logits + (size_t)(m->T - 1) * V,
			       (size_t)m->T * row, row, (size_t)B);
		m->ops->sample_forward(m->a.targets, m->a.last, s ? s : &greedy,
				       m->a.sample_scratch, B, V, (uint64_t)i);
		err = m->ops->sync();
		if (!err)
			err = llm_ops_host_view(m->ops, m->stage, m->a.targets,
						(size_t)B * sizeof(int), &host);
		if (err)
			break;
		next = host;
		for (int b = 0; b < B; b++)
			out[b * n_new + i] = next[b];
		if (i + 1 < n_new) /* decode reads next before anything reuses the stage */
			err = llm_model_decode(m, next);
	}
	return err;
}
