/* BERT sentence embedder: Hugging Face BertModel (post-LN encoder) with
 * sentence-transformers mean pooling and optional L2 normalisation, in fp32
 * on a kernel backend (llm_ops.h: the cpu_* kernels on host memory, or the
 * cuda_* launchers on device memory with LLM_EMBEDDER_CUDA).
 *
 * Loading reads the JSON files with caps, validates every size and tensor
 * shape, and copies the weights (F32, F16 or BF16) into one arena of backend
 * memory that also holds the activations for max_batch x max_len tokens, so
 * encoding never allocates. Every kernel call goes through the backend
 * table; token ids and lengths go up and the embeddings come down through
 * its copies (no copy at all on the CPU, whose kernels read the caller's
 * arrays and write the caller's output). Design limit: fp32 only and one
 * batch at a time per embedder; attention is bidirectional with a per-row
 * key length (right padding). */
#include "llmops_embedder.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"
#include "llm_json.h"
#include "llm_ops.h"
#include "llm_safetensors.h"
#include "llmops_model.h"

/* llm_ops_for_flags() reads the embedder's flags as the model's */
_Static_assert(LLM_EMBEDDER_CUDA == LLM_MODEL_CUDA && LLM_EMBEDDER_STAGED == LLM_MODEL_STAGED,
	       "embedder and model flags share their bits");

#define JSON_MAX       ((size_t)1 << 20) /* config files are a few KiB */
#define PATH_CAP       4096
#define ARENA_ALIGN    64 /* bytes; every tensor starts on a cache line */
#define ARENA_MAX      ((size_t)64 << 30)
#define MAX_HIDDEN     16384
#define MAX_LAYERS     512
#define MAX_FFN	       65536
#define MAX_POSITIONS  (1 << 20)
#define MAX_TYPES      (1 << 16)
#define MAX_VOCAB      (1 << 23)
#define MAX_BATCH      (1 << 20)
#define DEFAULT_LN_EPS 1e-12

_Static_assert(sizeof(int) == sizeof(float), "token ids share the float arena");

struct bert_config {
	int C;	  /* hidden_size */
	int L;	  /* num_hidden_layers */
	int NH;	  /* num_attention_heads */
	int I;	  /* intermediate_size */
	int maxT; /* max_position_embeddings */
	int TV;	  /* type_vocab_size */
	int V;	  /* vocab_size */
	float eps;
	enum llm_gelu act;
};

/* One encoder layer's parameters, all pointing into the arena. Linear
 * weights are (out, in) as torch.nn.Linear stores them. */
struct bert_layer {
	float *qw, *qb, *kw, *kb, *vw, *vb; /* (C,C), (C) */
	float *ow, *ob;			    /* attention output (C,C), (C) */
	float *ln1w, *ln1b;		    /* (C) */
	float *iw, *ib;			    /* intermediate (I,C), (I) */
	float *fw, *fb;			    /* output (C,I), (C) */
	float *ln2w, *ln2b;		    /* (C) */
};

struct llm_embedder {
	const struct llm_ops *ops; /* the backend the arena lives on */
	struct llm_stage *stage;   /* host copies of arena memory (not the CPU's) */
	struct bert_config cfg;
	int max_batch, max_len, max_seq_length;
	int pool_dim; /* Pooling word_embedding_dimension, 0 if not given */
	bool normalize;
	void *arena_mem; /* what ops->alloc() gave; the arena is its aligned start */
	size_t arena_bytes, param_count;
	/* parameters */
	float *wte, *wpe, *wtt; /* (V,C) with type row 0 added, (maxT,C), (TV,C) */
	float *lnw, *lnb;	/* embeddings LayerNorm (C) */
	struct bert_layer *layers;
	/* activations, N = max_batch * max_len rows */
	float *x;		/* (N,C) residual stream */
	float *q, *k, *v, *att; /* (N,C) each */
	float *t;		/* (N,C) sublayer output before the residual */
	float *h;		/* (N,I) feed-forward hidden */
	int *ids;		/* (N) packed token ids */
	int *lens;		/* (max_batch) lengths, for backends without host memory */
	float *pooled;		/* (max_batch,C) embeddings, likewise */
	int last_B, last_T;
};

/* ---- errors and files ---- */

static llm_err join_path(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, PATH_CAP, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_CAP)
		return llm_fail(LLM_ETOOLARGE, "%s/%s: path too long", dir, name);
	return LLM_OK;
}

/* dir/name parsed into *root (path, PATH_CAP, receives the file's path), or
 * *root NULL when there is no such file. */
static llm_err read_optional_json(const char *dir, const char *name, char *path, json_t **root)
{
	llm_err err = join_path(path, dir, name);

	*root = NULL;
	if (!err)
		err = llm_json_load_file(path, JSON_MAX, root);
	if (err == LLM_ENOTFOUND) {
		llm_clear_error();
		return LLM_OK;
	}
	return err;
}

/* ---- config.json ---- */

/* *out = the integer at key, which must lie in [lo, hi]. */
static llm_err cfg_int(const json_t *root, const char *label, const char *key, int lo, int hi,
		       int *out)
{
	json_int_t v;
	llm_err err = llm_json_get_int(root, key, &v);

	if (err)
		return llm_wrap(err, "%s", label);
	if (v < lo)
		return llm_fail(LLM_EINVAL, "%s: %s = %lld, must be at least %d", label, key,
				(long long)v, lo);
	if (v > hi)
		return llm_fail(LLM_ETOOLARGE, "%s: %s = %lld exceeds the limit %d", label, key,
				(long long)v, hi);
	*out = (int)v;
	return LLM_OK;
}

/* The string at key must be one of the accepted values when present. */
static llm_err cfg_str_is(const json_t *root, const char *label, const char *key, const char *want,
			  bool required)
{
	const char *s;
	llm_err err = llm_json_get_str(root, key, &s);

	if (err == LLM_ENOTFOUND && !required) {
		llm_clear_error();
		return LLM_OK;
	}
	if (err)
		return llm_wrap(err, "%s", label);
	if (strcmp(s, want) != 0)
		return llm_fail(LLM_EUNSUPPORTED, "%s: %s \"%s\" is not supported (only \"%s\")",
				label, key, s, want);
	return LLM_OK;
}

static llm_err cfg_act(const json_t *root, const char *label, enum llm_gelu *act)
{
	const char *s;
	llm_err err = llm_json_get_str(root, "hidden_act", &s);

	if (err)
		return llm_wrap(err, "%s", label);
	if (strcmp(s, "gelu") == 0)
		*act = LLM_GELU_ERF;
	else if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0)
		*act = LLM_GELU_TANH;
	else
		return llm_fail(LLM_EUNSUPPORTED, "%s: hidden_act \"%s\" is not supported", label,
				s);
	return LLM_OK;
}

static llm_err cfg_eps(const json_t *root, const char *label, float *eps)
{
	double v = DEFAULT_LN_EPS;
	llm_err err = llm_json_get_num(root, "layer_norm_eps", &v);

	if (err == LLM_ENOTFOUND)
		llm_clear_error();
	else if (err)
		return llm_wrap(err, "%s", label);
	if (!(v > 0 && v < 1))
		return llm_fail(LLM_EINVAL, "%s: layer_norm_eps = %g, must be in (0, 1)", label, v);
	*eps = (float)v;
	return LLM_OK;
}

static llm_err parse_config(const json_t *root, const char *label, struct bert_config *c)
{
	llm_err err;

	if ((err = cfg_str_is(root, label, "model_type", "bert", true)) ||
	    (err = cfg_str_is(root, label, "position_embedding_type", "absolute", false)) ||
	    (err = cfg_int(root, label, "hidden_size", 1, MAX_HIDDEN, &c->C)) ||
	    (err = cfg_int(root, label, "num_hidden_layers", 1, MAX_LAYERS, &c->L)) ||
	    (err = cfg_int(root, label, "num_attention_heads", 1, MAX_HIDDEN, &c->NH)) ||
	    (err = cfg_int(root, label, "intermediate_size", 1, MAX_FFN, &c->I)) ||
	    (err = cfg_int(root, label, "max_position_embeddings", 1, MAX_POSITIONS, &c->maxT)) ||
	    (err = cfg_int(root, label, "type_vocab_size", 1, MAX_TYPES, &c->TV)) ||
	    (err = cfg_int(root, label, "vocab_size", 1, MAX_VOCAB, &c->V)) ||
	    (err = cfg_act(root, label, &c->act)) || (err = cfg_eps(root, label, &c->eps)))
		return err;
	if (c->C % c->NH != 0)
		return llm_fail(LLM_EINVAL,
				"%s: hidden_size %d is not a multiple of num_attention_heads %d",
				label, c->C, c->NH);
	return LLM_OK;
}

static llm_err load_config(const char *dir, struct bert_config *c)
{
	char path[PATH_CAP];
	json_t *root;
	llm_err err;

	if ((err = join_path(path, dir, "config.json")) ||
	    (err = llm_json_load_file(path, JSON_MAX, &root)))
		return err;
	err = parse_config(root, path, c);
	json_decref(root);
	return err;
}

/* ---- sentence-transformers modules ---- */

/* A pooling flag that must be false (or absent) for mean pooling. */
static llm_err pool_flag_off(const json_t *root, const char *label, const char *key)
{
	bool on = false;
	llm_err err = llm_json_get_bool(root, key, &on);

	if (err == LLM_ENOTFOUND) {
		llm_clear_error();
		return LLM_OK;
	}
	if (err)
		return llm_wrap(err, "%s", label);
	if (on)
		return llm_fail(LLM_EUNSUPPORTED, "%s: %s is not supported (mean pooling only)",
				label, key);
	return LLM_OK;
}

static llm_err parse_pooling(const json_t *root, const char *label, int *dim)
{
	static const char *const off[] = {
		"pooling_mode_cls_token",
		"pooling_mode_max_tokens",
		"pooling_mode_mean_sqrt_len_tokens",
		"pooling_mode_weightedmean_tokens",
		"pooling_mode_lasttoken",
	};
	json_int_t d;
	bool mean = false;
	llm_err err = llm_json_get_bool(root, "pooling_mode_mean_tokens", &mean);

	if (err)
		return llm_wrap(err, "%s", label);
	if (!mean)
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: pooling_mode_mean_tokens is false (mean pooling only)", label);
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		if ((err = pool_flag_off(root, label, off[i])))
			return err;
	*dim = 0;
	err = llm_json_get_int(root, "word_embedding_dimension", &d);
	if (err == LLM_ENOTFOUND) {
		llm_clear_error();
		return LLM_OK;
	}
	if (err)
		return llm_wrap(err, "%s", label);
	if (d < 1 || d > MAX_HIDDEN)
		return llm_fail(LLM_EINVAL, "%s: word_embedding_dimension = %lld is impossible",
				label, (long long)d);
	*dim = (int)d;
	return LLM_OK;
}

static llm_err load_pooling(const char *dir, const char *sub, int *dim)
{
	char pdir[PATH_CAP], path[PATH_CAP];
	json_t *root;
	llm_err err;

	if ((err = join_path(pdir, dir, sub)) || (err = join_path(path, pdir, "config.json")) ||
	    (err = llm_json_load_file(path, JSON_MAX, &root)))
		return err;
	err = parse_pooling(root, path, dim);
	json_decref(root);
	return err;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One modules.json entry: a Transformer (whose path, when not empty, holds
 * the model), a Pooling or a Normalize module. */
static llm_err parse_module(llm_embedder *e, const json_t *m, const char *label, size_t i,
			    const char *dir, char *model_dir, bool *pooled)
{
	const char *type = llm_json_str_or(m, "type", NULL);
	const char *sub = llm_json_str_or(m, "path", "");

	if (!type)
		return llm_fail(LLM_ETYPE, "%s: module %zu has no string \"type\"", label, i);
	if (ends_with(type, "models.Transformer"))
		return sub[0] ? join_path(model_dir, dir, sub) : LLM_OK;
	if (ends_with(type, "models.Pooling")) {
		*pooled = true;
		return load_pooling(dir, sub, &e->pool_dim);
	}
	if (ends_with(type, "models.Normalize")) {
		if (!*pooled)
			return llm_fail(LLM_EUNSUPPORTED, "%s: Normalize before Pooling", label);
		e->normalize = true;
		return LLM_OK;
	}
	return llm_fail(LLM_EUNSUPPORTED,
			"%s: module %zu type \"%s\" is not supported (Transformer, Pooling, "
			"Normalize)",
			label, i, type);
}

/* Reads dir/modules.json when present; without it the model is in dir and
 * pools by mean + normalize. model_dir (PATH_CAP) receives the model's dir. */
static llm_err load_modules(llm_embedder *e, const char *dir, char *model_dir)
{
	char path[PATH_CAP];
	json_t *root, *m;
	bool pooled = false;
	size_t i;
	llm_err err;

	snprintf(model_dir, PATH_CAP, "%s", dir);
	e->normalize = true;
	if ((err = read_optional_json(dir, "modules.json", path, &root)) || !root)
		return err;
	if (!json_is_array(root)) {
		json_decref(root);
		return llm_fail(LLM_ETYPE, "%s: expected an array of modules", path);
	}
	e->normalize = false;
	json_array_foreach(root, i, m)
	{
		if ((err = parse_module(e, m, path, i, dir, model_dir, &pooled)))
			break;
	}
	if (!err && !pooled)
		err = llm_fail(LLM_EUNSUPPORTED, "%s: no Pooling module", path);
	json_decref(root);
	return err;
}

/* sentence_bert_config.json's max_seq_length, 0 when the file is absent. */
static llm_err load_st_config(const char *dir, int *max_seq_length)
{
	char path[PATH_CAP];
	json_t *root;
	llm_err err;

	*max_seq_length = 0;
	if ((err = read_optional_json(dir, "sentence_bert_config.json", path, &root)) || !root)
		return err;
	err = cfg_int(root, path, "max_seq_length", 1, MAX_POSITIONS, max_seq_length);
	json_decref(root);
	return err;
}

/* ---- arena ---- */

struct carver {
	char *base; /* NULL while sizing */
	size_t off; /* bytes used so far */
};

/* Room for n 4-byte elements (floats or token ids) on the next 64-byte
 * boundary; NULL while sizing. */
static void *carve(struct carver *cv, size_t n)
{
	void *p = cv->base ? cv->base + cv->off : NULL;

	cv->off += (n * sizeof(float) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	return p;
}

/* Lays out parameters then activations from cv->base (or only counts bytes
 * when it is NULL); returns the parameter floats (without alignment). */
static size_t layout(llm_embedder *e, struct carver *cv)
{
	const struct bert_config *c = &e->cfg;
	size_t C = (size_t)c->C, I = (size_t)c->I, N = (size_t)e->max_batch * e->max_len;

	e->wte = carve(cv, (size_t)c->V * C);
	e->wpe = carve(cv, (size_t)c->maxT * C);
	e->wtt = carve(cv, (size_t)c->TV * C);
	e->lnw = carve(cv, C);
	e->lnb = carve(cv, C);
	for (int l = 0; l < c->L; l++) {
		struct bert_layer *y = &e->layers[l];

		y->qw = carve(cv, C * C), y->qb = carve(cv, C);
		y->kw = carve(cv, C * C), y->kb = carve(cv, C);
		y->vw = carve(cv, C * C), y->vb = carve(cv, C);
		y->ow = carve(cv, C * C), y->ob = carve(cv, C);
		y->ln1w = carve(cv, C), y->ln1b = carve(cv, C);
		y->iw = carve(cv, I * C), y->ib = carve(cv, I);
		y->fw = carve(cv, C * I), y->fb = carve(cv, C);
		y->ln2w = carve(cv, C), y->ln2b = carve(cv, C);
	}
	e->x = carve(cv, N * C);
	e->q = carve(cv, N * C);
	e->k = carve(cv, N * C);
	e->v = carve(cv, N * C);
	e->att = carve(cv, N * C);
	e->t = carve(cv, N * C);
	e->h = carve(cv, N * I);
	e->ids = carve(cv, N);
	e->lens = carve(cv, (size_t)e->max_batch);
	e->pooled = carve(cv, (size_t)e->max_batch * C);
	return ((size_t)c->V + c->maxT + c->TV + 2) * C +
	       (size_t)c->L * (4 * C * C + 2 * I * C + 9 * C + I);
}

/* Checks the run-time sizes against the kernels' int arithmetic and the arena
 * cap, then allocates the arena (zeroed backend memory, started on a 64-byte
 * boundary) and points every tensor into it. */
static llm_err alloc_arena(llm_embedder *e, const char *dir)
{
	const struct bert_config *c = &e->cfg;
	size_t N = (size_t)e->max_batch * e->max_len;
	size_t widest = (size_t)(c->I > c->C ? c->I : c->C);
	struct carver cv = {NULL, 0};

	if (N * widest > INT_MAX)
		return llm_fail(LLM_ETOOLARGE,
				"%s: max_batch %d x max_len %d x %zu channels exceeds INT_MAX", dir,
				e->max_batch, e->max_len, widest);
	e->layers = calloc((size_t)c->L, sizeof(*e->layers));
	if (!e->layers)
		return llm_fail(LLM_ENOMEM, "%s: out of memory for %d layers", dir, c->L);
	e->param_count = layout(e, &cv);
	e->arena_bytes = cv.off;
	if (e->arena_bytes > ARENA_MAX)
		return llm_fail(LLM_ETOOLARGE, "%s: arena of %zu bytes exceeds the cap %zu", dir,
				e->arena_bytes, ARENA_MAX);
	e->arena_mem = e->ops->alloc(e->arena_bytes + ARENA_ALIGN);
	if (!e->arena_mem)
		return llm_wrap(LLM_ENOMEM, "%s: cannot allocate the %zu-byte arena", dir,
				e->arena_bytes);
	cv.base = (char *)e->arena_mem + (-(uintptr_t)e->arena_mem & (uintptr_t)(ARENA_ALIGN - 1));
	cv.off = 0;
	layout(e, &cv);
	return LLM_OK;
}

/* ---- weights ---- */

struct wspec {
	const char *name; /* without the "bert." prefix */
	float *dst;
	int64_t d0, d1; /* shape (d0) when d1 == 0, else (d0, d1) */
};

/* "[d0, d1, ...]" into buf (cap bytes). */
static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
	size_t n = 0;

	n += (size_t)snprintf(buf, cap, "[");
	for (int i = 0; i < ndim && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "",
				      (long long)shape[i]);
	if (n < cap)
		snprintf(buf + n, cap - n, "]");
}

/* Reads tensor w into its place in the arena, through a host buffer when
 * the backend has no host memory. */
static llm_err load_tensor(const llm_embedder *e, const llm_st_set *set, const char *label,
			   const struct wspec *w)
{
	char alt[256], have[128], want[64];
	int64_t shape[2] = {w->d0, w->d1};
	int ndim = w->d1 ? 2 : 1;
	const struct llm_st_tensor *t = llm_st_set_get(set, w->name);
	size_t bytes;
	void *host;
	llm_err err;

	snprintf(alt, sizeof(alt), "bert.%s", w->name);
	if (!t)
		t = llm_st_set_get(set, alt);
	if (!t)
		return llm_fail(LLM_ENOTFOUND, "%s: tensor %s is missing", label, w->name);
	if (t->ndim != ndim || t->shape[0] != w->d0 || (ndim == 2 && t->shape[1] != w->d1)) {
		fmt_shape(have, sizeof(have), t->ndim, t->shape);
		fmt_shape(want, sizeof(want), ndim, shape);
		return llm_fail(LLM_EINVAL, "%s: tensor %s has shape %s, expected %s", label,
				t->name, have, want);
	}
	bytes = llm_st_numel(t) * sizeof(float);
	if ((err = llm_ops_host_buffer(e->ops, e->stage, w->dst, bytes, &host)))
		return err;
	err = llm_st_read_f32(t, host, llm_st_numel(t));
	if (err)
		return llm_fail(err, "%s: tensor %s has dtype %s (F32, F16 or BF16 only)", label,
				t->name, llm_st_dtype_name(t->dtype));
	return llm_ops_host_commit(e->ops, w->dst, host, bytes);
}

static llm_err load_specs(const llm_embedder *e, const llm_st_set *set, const char *label,
			  const struct wspec *w, size_t n)
{
	llm_err err;

	for (size_t i = 0; i < n; i++)
		if ((err = load_tensor(e, set, label, &w[i])))
			return err;
	return LLM_OK;
}

static llm_err load_layer(const llm_embedder *e, const llm_st_set *set, const char *label, int l)
{
	static const char *const names[16] = {
		"attention.self.query.weight",
		"attention.self.query.bias",
		"attention.self.key.weight",
		"attention.self.key.bias",
		"attention.self.value.weight",
		"attention.self.value.bias",
		"attention.output.dense.weight",
		"attention.output.dense.bias",
		"attention.output.LayerNorm.weight",
		"attention.output.LayerNorm.bias",
		"intermediate.dense.weight",
		"intermediate.dense.bias",
		"output.dense.weight",
		"output.dense.bias",
		"output.LayerNorm.weight",
		"output.LayerNorm.bias",
	};
	const struct bert_layer *y = &e->layers[l];
	float *dst[16] = {y->qw,   y->qb,   y->kw, y->kb, y->vw, y->vb, y->ow,	 y->ob,
			  y->ln1w, y->ln1b, y->iw, y->ib, y->fw, y->fb, y->ln2w, y->ln2b};
	int64_t C = e->cfg.C, I = e->cfg.I;
	int64_t d0[16] = {C, C, C, C, C, C, C, C, C, C, I, I, C, C, C, C};
	int64_t d1[16] = {C, 0, C, 0, C, 0, C, 0, 0, 0, C, 0, I, 0, 0, 0};
	char full[16][128];
	struct wspec w[16];

	for (int i = 0; i < 16; i++) {
		snprintf(full[i], sizeof(full[i]), "encoder.layer.%d.%s", l, names[i]);
		w[i] = (struct wspec){full[i], dst[i], d0[i], d1[i]};
	}
	return load_specs(e, set, label, w, 16);
}

/* BertEmbeddings sums (word + token type) + position. Every token has type
 * 0, so the first sum is made here, once: wte (V,C) += wtt row 0, rounded
 * as BERT rounds it, and the forward pass is one embedding_forward() of
 * the folded table and wpe. */
static llm_err fold_type_row(const llm_embedder *e)
{
	size_t C = (size_t)e->cfg.C, n = (size_t)e->cfg.V * C;
	float *type0 = malloc(C * sizeof(float)), *w;
	const void *p;
	llm_err err;

	if (!type0)
		return llm_fail(LLM_ENOMEM, "embedder: out of memory for a %zu-float row", C);
	err = llm_ops_host_view(e->ops, e->stage, e->wtt, C * sizeof(float), &p);
	if (!err) {
		memcpy(type0, p, C * sizeof(float));
		err = llm_ops_host_view(e->ops, e->stage, e->wte, n * sizeof(float), &p);
	}
	if (!err) {
		w = (float *)p; /* the table itself or a host copy: either is ours to change */
		for (size_t v = 0; v < n; v += C)
			for (size_t i = 0; i < C; i++)
				w[v + i] += type0[i];
		err = llm_ops_host_commit(e->ops, e->wte, w, n * sizeof(float));
	}
	free(type0);
	return err;
}

static llm_err load_weights(llm_embedder *e, const char *model_dir)
{
	const struct bert_config *c = &e->cfg;
	const struct wspec emb[] = {
		{"embeddings.word_embeddings.weight", e->wte, c->V, c->C},
		{"embeddings.position_embeddings.weight", e->wpe, c->maxT, c->C},
		{"embeddings.token_type_embeddings.weight", e->wtt, c->TV, c->C},
		{"embeddings.LayerNorm.weight", e->lnw, c->C, 0},
		{"embeddings.LayerNorm.bias", e->lnb, c->C, 0},
	};
	char label[PATH_CAP], probe[PATH_CAP];
	llm_st_set *set;
	FILE *fp;
	llm_err err;

	/* name the index when there is one, else the single file */
	if ((err = join_path(probe, model_dir, LLM_ST_INDEX_FILENAME)) ||
	    (err = join_path(label, model_dir, LLM_ST_SINGLE_FILENAME)))
		return err;
	fp = fopen(probe, "rb");
	if (fp) {
		fclose(fp);
		snprintf(label, sizeof(label), "%s", probe);
	}
	if ((err = llm_st_open_index(model_dir, &set)))
		return err;
	err = load_specs(e, set, label, emb, sizeof(emb) / sizeof(emb[0]));
	for (int l = 0; !err && l < c->L; l++)
		err = load_layer(e, set, label, l);
	llm_st_set_close(set);
	if (!err)
		err = fold_type_row(e);
	return err;
}

/* ---- load ---- */

static llm_err check_load_args(const char *dir, int max_batch, int max_len, llm_embedder **out)
{
	if (!dir || !out)
		return llm_fail(LLM_EINVAL, "llm_embedder_load: NULL %s", dir ? "out" : "dir");
	if (max_batch < 1 || max_len < 1)
		return llm_fail(LLM_EINVAL, "%s: max_batch %d and max_len %d must be >= 1", dir,
				max_batch, max_len);
	if (max_batch > MAX_BATCH)
		return llm_fail(LLM_ETOOLARGE, "%s: max_batch %d exceeds the limit %d", dir,
				max_batch, MAX_BATCH);
	return LLM_OK;
}

/* Checks that the caller's sizes and the pooling agree with config.json. */
static llm_err check_model(const llm_embedder *e, const char *model_dir)
{
	if (e->max_len > e->cfg.maxT)
		return llm_fail(LLM_ETOOLARGE,
				"%s/config.json: max_len %d exceeds max_position_embeddings %d",
				model_dir, e->max_len, e->cfg.maxT);
	if (e->pool_dim && e->pool_dim != e->cfg.C)
		return llm_fail(LLM_EINVAL,
				"%s: Pooling word_embedding_dimension %d != hidden_size %d",
				model_dir, e->pool_dim, e->cfg.C);
	return LLM_OK;
}

llm_err llm_embedder_load(const char *dir, int max_batch, int max_len, unsigned flags,
			  llm_embedder **out)
{
	const struct llm_ops *ops;
	char model_dir[PATH_CAP];
	llm_embedder *e;
	llm_err err;

	if (out)
		*out = NULL;
	if ((err = check_load_args(dir, max_batch, max_len, out)))
		return err;
	if (flags & ~(unsigned)(LLM_EMBEDDER_CUDA | LLM_EMBEDDER_STAGED))
		return llm_fail(LLM_EINVAL, "%s: unknown embedder flags 0x%x", dir, flags);
	if ((err = llm_ops_for_flags(flags, dir, &ops)))
		return err;
	e = calloc(1, sizeof(*e));
	if (!e)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", dir);
	e->ops = ops;
	e->stage = calloc(1, sizeof(*e->stage));
	if (!e->stage) {
		err = llm_fail(LLM_ENOMEM, "%s: out of memory", dir);
		goto out_destroy;
	}
	e->max_batch = max_batch;
	e->max_len = max_len;
	if ((err = load_modules(e, dir, model_dir)) ||
	    (err = load_st_config(dir, &e->max_seq_length)) ||
	    (err = load_config(model_dir, &e->cfg)) || (err = check_model(e, model_dir)) ||
	    (err = alloc_arena(e, model_dir)) || (err = load_weights(e, model_dir)) ||
	    (err = ops->sync()))
		goto out_destroy;
	llm_stage_free(e->stage); /* the weights' host copies: encoding needs far less */
	*out = e;
	return LLM_OK;

out_destroy:
	llm_embedder_destroy(e);
	return err;
}

void llm_embedder_destroy(llm_embedder *e)
{
	if (!e)
		return;
	if (e->ops)
		e->ops->free(e->arena_mem);
	if (e->stage) {
		llm_stage_free(e->stage);
		free(e->stage);
	}
	free(e->layers);
	free(e);
}

/* ---- forward ---- */

/* The encoder over e->ids (B,T), queued on the backend: leaves the last
 * hidden state in e->x. lengths (B, backend memory) masks padded keys in
 * every attention. */
static void forward(llm_embedder *e, const int *lengths, int B, int T)
{
	const struct llm_ops *o = e->ops;
	const struct bert_config *c = &e->cfg;
	int C = c->C, I = c->I, NH = c->NH, HS = C / NH, N = B * T;

	/* (word + type 0) + position: wte holds the first sum (fold_type_row) */
	o->embedding_forward(e->x, e->ids, e->wte, e->wpe, B, T, C, 0);
	o->layernorm_forward(e->x, NULL, NULL, e->x, e->lnw, e->lnb, N, C, c->eps);
	for (int l = 0; l < c->L; l++) {
		const struct bert_layer *y = &e->layers[l];

		/* x = LayerNorm(x + Wo . attention(Wq x, Wk x, Wv x)) */
		o->matmul_forward(e->q, e->x, y->qw, y->qb, B, T, C, C);
		o->matmul_forward(e->k, e->x, y->kw, y->kb, B, T, C, C);
		o->matmul_forward(e->v, e->x, y->vw, y->vb, B, T, C, C);
		o->attention_forward(e->att, NULL, e->q, e->k, e->v, lengths, 0, B, T, T, T, NH, NH,
				     HS);
		o->matmul_forward(e->t, e->att, y->ow, y->ob, B, T, C, C);
		o->residual_forward(e->t, e->t, e->x, N * C);
		o->layernorm_forward(e->x, NULL, NULL, e->t, y->ln1w, y->ln1b, N, C, c->eps);
		/* x = LayerNorm(x + W2 . gelu(W1 x)) */
		o->matmul_forward(e->h, e->x, y->iw, y->ib, B, T, C, I);
		o->gelu_forward(e->h, e->h, (long)N * I, c->act);
		o->matmul_forward(e->t, e->h, y->fw, y->fb, B, T, I, C);
		o->residual_forward(e->t, e->t, e->x, N * C);
		o->layernorm_forward(e->x, NULL, NULL, e->t, y->ln2w, y->ln2b, N, C, c->eps);
	}
}

/* Validates one encode call; *T_run receives the longest length. */
static llm_err check_encode(const llm_embedder *e, const int *ids, const int *lengths, int B, int T,
			    const float *out, int *T_run)
{
	if (!e || !ids || !lengths || !out)
		return llm_fail(LLM_EINVAL, "llm_embedder_encode: NULL argument");
	if (B < 1 || T < 1)
		return llm_fail(LLM_EINVAL, "llm_embedder_encode: B %d and T %d must be >= 1", B,
				T);
	if (B > e->max_batch || T > e->max_len)
		return llm_fail(
			LLM_ETOOLARGE,
			"llm_embedder_encode: B %d x T %d exceeds max_batch %d x max_len %d", B, T,
			e->max_batch, e->max_len);
	*T_run = 0;
	for (int b = 0; b < B; b++) {
		int n = lengths[b];

		if (n > e->max_len)
			return llm_fail(LLM_ETOOLARGE,
					"llm_embedder_encode: lengths[%d] = %d exceeds max_len %d",
					b, n, e->max_len);
		if (n < 1 || n > T)
			return llm_fail(LLM_EINVAL,
					"llm_embedder_encode: lengths[%d] = %d not in [1, T = %d]",
					b, n, T);
		for (int t = 0; t < n; t++) {
			int id = ids[(size_t)b * T + t];

			if (id < 0 || id >= e->cfg.V)
				return llm_fail(LLM_EINVAL,
						"llm_embedder_encode: id %d at row %d position %d "
						"is not in [0, vocab_size %d)",
						id, b, t, e->cfg.V);
		}
		if (n > *T_run)
			*T_run = n;
	}
	return LLM_OK;
}

/* Packs ids (B,T) to e->ids (B,Tr): the columns past every row's length
 * are never computed, and the padding ids (any values) are replaced by 0.
 * Written in place on the CPU, staged and uploaded otherwise. */
static llm_err pack_ids(llm_embedder *e, const int *ids, const int *lengths, int B, int T, int Tr)
{
	size_t bytes = (size_t)B * Tr * sizeof(int);
	void *p;
	int *dst;
	llm_err err = llm_ops_host_buffer(e->ops, e->stage, e->ids, bytes, &p);

	if (err)
		return err;
	dst = p;
	for (int b = 0; b < B; b++)
		for (int t = 0; t < Tr; t++)
			dst[(size_t)b * Tr + t] = t < lengths[b] ? ids[(size_t)b * T + t] : 0;
	return llm_ops_host_commit(e->ops, e->ids, dst, bytes);
}

/* The encoder and the pooling of one checked batch; out (B,C) is host
 * memory. On the CPU the kernels read lengths and write out themselves;
 * elsewhere lengths go up to e->lens and the embeddings come down from
 * e->pooled. */
static llm_err encode_batch(llm_embedder *e, const int *ids, const int *lengths, int B, int T,
			    int Tr, float *out)
{
	const struct llm_ops *o = e->ops;
	const int *lens = lengths;
	float *pooled = out;
	size_t out_bytes = (size_t)B * e->cfg.C * sizeof(float);
	llm_err err = pack_ids(e, ids, lengths, B, T, Tr);

	if (!err && !o->host_memory) {
		lens = e->lens;
		pooled = e->pooled;
		err = o->upload(e->lens, lengths, (size_t)B * sizeof(int));
	}
	if (err)
		return err;
	forward(e, lens, B, Tr);
	o->mean_pool_forward(pooled, e->x, lens, B, Tr, e->cfg.C, e->normalize);
	err = o->sync();
	if (!err && pooled != out)
		err = o->download(out, pooled, out_bytes);
	return err;
}

llm_err llm_embedder_encode(llm_embedder *e, const int *ids, const int *lengths, int B, int T,
			    float *out)
{
	int Tr = 0;
	llm_err err = check_encode(e, ids, lengths, B, T, out, &Tr);

	if (e)
		e->last_B = e->last_T = 0;
	if (!err)
		err = encode_batch(e, ids, lengths, B, T, Tr, out);
	if (err)
		return err;
	e->last_B = B;
	e->last_T = Tr;
	return LLM_OK;
}

const float *llm_embedder_hidden(const llm_embedder *e, int *B, int *T_run)
{
	size_t bytes = (size_t)e->last_B * e->last_T * e->cfg.C * sizeof(float);
	const void *p;

	*B = e->last_B;
	*T_run = e->last_T;
	if (!e->last_B || llm_ops_host_view(e->ops, e->stage, e->x, bytes, &p))
		return NULL;
	return p;
}

int llm_embedder_dim(const llm_embedder *e)
{
	return e->cfg.C;
}

void llm_embedder_info(const llm_embedder *e, struct llm_embedder_info *info)
{
	*info = (struct llm_embedder_info){
		.dim = e->cfg.C,
		.layers = e->cfg.L,
		.heads = e->cfg.NH,
		.ffn = e->cfg.I,
		.vocab = e->cfg.V,
		.max_positions = e->cfg.maxT,
		.max_seq_length = e->max_seq_length,
		.max_batch = e->max_batch,
		.max_len = e->max_len,
		.normalize = e->normalize,
		.arena_bytes = e->arena_bytes,
		.param_count = e->param_count,
	};
}
