/* Hugging Face and PEFT files for the decoder models: config.json parsing
 * and checking, weights from model.safetensors (single or sharded), saving a
 * directory transformers loads, and LoRA adapters in PEFT's layout.
 *
 * Every error names the file and the field or tensor. Design limit: configs
 * are read whole into memory and capped at 1 MiB; only the options of the
 * two architectures' default forms are accepted (no rope scaling, no
 * biases in Llama, no DoRA or rsLoRA adapters). */
#include "model_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_json.h"
#include "llm_safetensors.h"

#define CONFIG_MAX ((size_t)1 << 20)

/* ---- small file helpers ---- */

/* A JSON object file (config.json, adapter_config.json, the shard index). */
static llm_err read_json_file(const char *path, json_t **out)
{
	llm_err err = llm_json_load_file(path, CONFIG_MAX, out);

	if (!err && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		err = llm_fail(LLM_EPARSE, "%s: not a JSON object", path);
	}
	return err;
}

/* Writes text to path through path.tmp and a rename. */
static llm_err write_text_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *fp;
	size_t n = strlen(text);
	bool ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "wb");
	if (!fp)
		return llm_fail(LLM_EIO, "%s: %s", tmp, strerror(errno));
	ok = fwrite(text, 1, n, fp) == n;
	ok = fflush(fp) == 0 && ok;
	ok = fsync(fileno(fp)) == 0 && ok;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return llm_fail(LLM_EIO, "%s: write failed: %s", path, strerror(errno));
	}
	return LLM_OK;
}

static llm_err write_json_atomic(const char *path, const json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	llm_err err;

	if (!text)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", path);
	err = write_text_atomic(path, text);
	free(text);
	return err;
}

static llm_err make_dir(const char *dir)
{
	if (mkdir(dir, 0755) && errno != EEXIST)
		return llm_fail(LLM_EIO, "%s: %s", dir, strerror(errno));
	return LLM_OK;
}

/* ---- config fields ---- */

/* An int field; absent or null gives def, or LLM_ENOTFOUND when required. */
static llm_err cfg_int(const json_t *root, const char *file, const char *key, bool required,
		       int def, int *out)
{
	json_t *v = json_object_get(root, key);
	json_int_t x;

	*out = def;
	if (!v || json_is_null(v)) {
		if (required)
			return llm_fail(LLM_ENOTFOUND, "%s: missing field %s", file, key);
		return LLM_OK;
	}
	if (!json_is_integer(v))
		return llm_fail(LLM_ETYPE, "%s: field %s must be an integer", file, key);
	x = json_integer_value(v);
	if (x < INT_MIN || x > INT_MAX)
		return llm_fail(LLM_EINVAL, "%s: field %s = %lld is out of range", file, key,
				(long long)x);
	*out = (int)x;
	return LLM_OK;
}

static llm_err cfg_num(const json_t *root, const char *file, const char *key, double def,
		       float *out)
{
	json_t *v = json_object_get(root, key);

	*out = (float)def;
	if (!v || json_is_null(v))
		return LLM_OK;
	if (!json_is_number(v))
		return llm_fail(LLM_ETYPE, "%s: field %s must be a number", file, key);
	*out = (float)json_number_value(v);
	return LLM_OK;
}

static llm_err cfg_bool(const json_t *root, const char *file, const char *key, bool def, bool *out)
{
	json_t *v = json_object_get(root, key);

	*out = def;
	if (!v || json_is_null(v))
		return LLM_OK;
	if (!json_is_boolean(v))
		return llm_fail(LLM_ETYPE, "%s: field %s must be true or false", file, key);
	*out = json_is_true(v);
	return LLM_OK;
}

/* A field that must hold want (or be absent) for this module to be exact. */
static llm_err cfg_require_bool(const json_t *root, const char *file, const char *key, bool want)
{
	bool v;
	llm_err err = cfg_bool(root, file, key, want, &v);

	if (!err && v != want)
		err = llm_fail(LLM_EUNSUPPORTED, "%s: %s = %s is not supported", file, key,
			       v ? "true" : "false");
	return err;
}

static llm_err parse_gpt2(const json_t *root, const char *file, struct llm_model_config *c)
{
	const char *act = llm_json_str_or(root, "activation_function", "gelu_new");
	bool tie;
	llm_err err;

	c->arch = LLM_ARCH_GPT2;
	if ((err = cfg_int(root, file, "vocab_size", true, 0, &c->vocab_size)) ||
	    (err = cfg_int(root, file, "n_positions", false, 1024, &c->max_pos)) ||
	    (err = cfg_int(root, file, "n_embd", true, 0, &c->d_model)) ||
	    (err = cfg_int(root, file, "n_layer", true, 0, &c->n_layer)) ||
	    (err = cfg_int(root, file, "n_head", true, 0, &c->n_head)) ||
	    (err = cfg_int(root, file, "n_inner", false, 0, &c->d_ff)) ||
	    (err = cfg_num(root, file, "layer_norm_epsilon", 1e-5, &c->norm_eps)) ||
	    (err = cfg_bool(root, file, "tie_word_embeddings", true, &tie)) ||
	    (err = cfg_require_bool(root, file, "scale_attn_weights", true)) ||
	    (err = cfg_require_bool(root, file, "scale_attn_by_inverse_layer_idx", false)))
		return err;
	if (c->d_ff == 0 && json_integer_value(json_object_get(root, "n_inner")) == 0 &&
	    json_is_integer(json_object_get(root, "n_inner")))
		return llm_fail(LLM_EINVAL, "%s: n_inner = 0 must be positive", file);
	c->tie_embeddings = tie;
	if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh"))
		c->gelu = LLM_GELU_TANH;
	else if (!strcmp(act, "gelu"))
		c->gelu = LLM_GELU_ERF;
	else
		return llm_fail(LLM_EUNSUPPORTED, "%s: activation_function %s is not supported",
				file, act);
	return LLM_OK;
}

/* rope_theta at the top level or in rope_parameters (newer transformers);
 * any scaling other than the default is refused. */
static llm_err parse_rope(const json_t *root, const char *file, struct llm_model_config *c)
{
	const char *keys[] = {"rope_scaling", "rope_parameters"};
	llm_err err = cfg_num(root, file, "rope_theta", 10000.0, &c->rope_theta);

	for (int i = 0; !err && i < 2; i++) {
		json_t *o = json_object_get(root, keys[i]);
		const char *type;

		if (!o || json_is_null(o))
			continue;
		if (!json_is_object(o))
			return llm_fail(LLM_ETYPE, "%s: field %s must be an object", file, keys[i]);
		type = llm_json_str_or(o, "rope_type", llm_json_str_or(o, "type", "default"));
		if (strcmp(type, "default"))
			return llm_fail(LLM_EUNSUPPORTED, "%s: %s.rope_type %s is not supported",
					file, keys[i], type);
		if (json_object_get(o, "rope_theta"))
			err = cfg_num(o, file, "rope_theta", 10000.0, &c->rope_theta);
	}
	return err;
}

static llm_err parse_llama(const json_t *root, const char *file, struct llm_model_config *c)
{
	const char *act = llm_json_str_or(root, "hidden_act", "silu");
	bool tie;
	llm_err err;

	c->arch = LLM_ARCH_LLAMA;
	if ((err = cfg_int(root, file, "vocab_size", true, 0, &c->vocab_size)) ||
	    (err = cfg_int(root, file, "max_position_embeddings", false, 2048, &c->max_pos)) ||
	    (err = cfg_int(root, file, "hidden_size", true, 0, &c->d_model)) ||
	    (err = cfg_int(root, file, "intermediate_size", true, 0, &c->d_ff)) ||
	    (err = cfg_int(root, file, "num_hidden_layers", true, 0, &c->n_layer)) ||
	    (err = cfg_int(root, file, "num_attention_heads", true, 0, &c->n_head)) ||
	    (err = cfg_int(root, file, "num_key_value_heads", false, c->n_head, &c->n_kv_head)) ||
	    (err = cfg_int(root, file, "head_dim", false, 0, &c->head_dim)) ||
	    (err = cfg_num(root, file, "rms_norm_eps", 1e-6, &c->norm_eps)) ||
	    (err = cfg_bool(root, file, "tie_word_embeddings", false, &tie)) ||
	    (err = cfg_require_bool(root, file, "attention_bias", false)) ||
	    (err = cfg_require_bool(root, file, "mlp_bias", false)) ||
	    (err = parse_rope(root, file, c)))
		return err;
	/* an explicit zero must not turn into a default */
	if (c->n_kv_head == 0)
		return llm_fail(LLM_EINVAL, "%s: num_key_value_heads = 0 must be positive", file);
	if (c->head_dim == 0 && json_is_integer(json_object_get(root, "head_dim")))
		return llm_fail(LLM_EINVAL, "%s: head_dim = 0 must be positive", file);
	if (strcmp(act, "silu"))
		return llm_fail(LLM_EUNSUPPORTED, "%s: hidden_act %s is not supported", file, act);
	c->tie_embeddings = tie;
	return LLM_OK;
}

static llm_err parse_config(const json_t *root, const char *file, struct llm_model_config *c)
{
	json_t *v = json_object_get(root, "model_type");
	const char *type;

	memset(c, 0, sizeof(*c));
	if (!v)
		return llm_fail(LLM_ENOTFOUND, "%s: missing field model_type", file);
	if (!json_is_string(v))
		return llm_fail(LLM_ETYPE, "%s: field model_type must be a string", file);
	type = json_string_value(v);
	if (!strcmp(type, "gpt2"))
		return parse_gpt2(root, file, c);
	if (!strcmp(type, "llama"))
		return parse_llama(root, file, c);
	return llm_fail(LLM_EUNSUPPORTED, "%s: model_type %s is not supported (gpt2, llama)", file,
			type);
}

/* ---- weights ---- */

static void hf_shape(const struct mtensor *t, int *ndim, int64_t shape[2])
{
	*ndim = t->cols ? 2 : 1;
	shape[0] = t->conv1d ? t->cols : t->rows;
	shape[1] = t->conv1d ? t->rows : t->cols;
}

static const struct llm_st_tensor *find_weight(const llm_st_set *set, const char *name)
{
	const struct llm_st_tensor *t = llm_st_set_get(set, name);

	/* the original GPT-2 checkpoints have no "transformer." prefix */
	if (!t && !strncmp(name, "transformer.", 12))
		t = llm_st_set_get(set, name + 12);
	return t;
}

static llm_err check_shape(const struct mtensor *want, const struct llm_st_tensor *got,
			   const char *file)
{
	int ndim;
	int64_t shape[2];
	bool ok;

	hf_shape(want, &ndim, shape);
	ok = got->ndim == ndim && got->shape[0] == shape[0] &&
	     (ndim == 1 || got->shape[1] == shape[1]);
	if (ok)
		return LLM_OK;
	if (ndim == 1)
		return llm_fail(LLM_EINVAL,
				"%s: tensor %s has %d dims / %lld elements, config "
				"says [%lld]",
				file, want->name, got->ndim,
				(long long)(got->ndim ? got->shape[0] : 1), (long long)shape[0]);
	return llm_fail(LLM_EINVAL,
			"%s: tensor %s has shape [%lld, %lld] (%d dims), config says "
			"[%lld, %lld]",
			file, want->name, (long long)(got->ndim > 0 ? got->shape[0] : 0),
			(long long)(got->ndim > 1 ? got->shape[1] : 0), got->ndim,
			(long long)shape[0], (long long)shape[1]);
}

static llm_err load_weights(llm_model *m, const char *dir)
{
	char file[4096];
	llm_st_set *set;
	float *tmp = NULL;
	llm_err err;

	snprintf(file, sizeof(file), "%s/%s", dir, LLM_ST_INDEX_FILENAME);
	if (access(file, F_OK))
		snprintf(file, sizeof(file), "%s/%s", dir, LLM_ST_SINGLE_FILENAME);
	err = llm_st_open_index(dir, &set);
	if (err)
		return err;
	for (int i = 0; !err && i < m->n_tensors; i++) {
		const struct mtensor *t = &m->tensors[i];
		const struct llm_st_tensor *st = find_weight(set, t->name);
		size_t bytes = t->n * sizeof(float);
		void *dst;

		if (!st) {
			err = llm_fail(LLM_ENOTFOUND, "%s: missing tensor %s", file, t->name);
			break;
		}
		err = check_shape(t, st, file);
		if (!err && t->conv1d && !(tmp = malloc(bytes)))
			err = llm_fail(LLM_ENOMEM, "%s: out of memory", file);
		if (!err) /* the tensor's host image: the parameters themselves on the CPU */
			err = llm_ops_host_buffer(m->ops, m->stage, m->params + t->off, bytes,
						  &dst);
		if (err) {
			free(tmp);
			break;
		}
		err = llm_st_read_f32(st, t->conv1d ? tmp : dst, t->n);
		if (err)
			llm_wrap(err, "%s: tensor %s", file, t->name);
		else if (t->conv1d)
			llm_model_from_hf(t, tmp, dst);
		if (!err)
			err = llm_ops_host_commit(m->ops, m->params + t->off, dst, bytes);
		free(tmp);
		tmp = NULL;
	}
	llm_st_set_close(set);
	return err;
}

llm_err llm_model_load(const char *dir, int max_B, int max_T, unsigned flags, llm_model **out)
{
	char file[4096];
	struct llm_model_config c;
	json_t *root;
	llm_err err;

	*out = NULL;
	snprintf(file, sizeof(file), "%s/config.json", dir);
	err = read_json_file(file, &root);
	if (err)
		return err;
	err = parse_config(root, file, &c);
	if (!err)
		err = llm_model_create(&c, max_B, max_T, flags, file, out);
	if (err) {
		json_decref(root);
		return err;
	}
	(*out)->hf_config = root;
	err = load_weights(*out, dir);
	if (!err)
		err = (*out)->ops->sync();
	if (err) {
		llm_model_destroy(*out);
		*out = NULL;
	}
	return err;
}

/* ---- saving ---- */

static json_t *config_json(const llm_model *m)
{
	const struct llm_model_config *c = &m->cfg;
	json_t *o = json_object();
	bool gpt2 = c->arch == LLM_ARCH_GPT2;

	if (!o)
		return NULL;
	json_object_set_new(o, "model_type", json_string(gpt2 ? "gpt2" : "llama"));
	json_object_set_new(o, "architectures",
			    json_pack("[s]", gpt2 ? "GPT2LMHeadModel" : "LlamaForCausalLM"));
	json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
	json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_embeddings));
	if (gpt2) {
		json_object_set_new(o, "n_positions", json_integer(c->max_pos));
		json_object_set_new(o, "n_embd", json_integer(c->d_model));
		json_object_set_new(o, "n_layer", json_integer(c->n_layer));
		json_object_set_new(o, "n_head", json_integer(c->n_head));
		json_object_set_new(o, "n_inner", json_integer(c->d_ff));
		json_object_set_new(o, "layer_norm_epsilon", json_real(c->norm_eps));
		json_object_set_new(o, "activation_function",
				    json_string(c->gelu == LLM_GELU_ERF ? "gelu" : "gelu_new"));
		json_object_set_new(o, "resid_pdrop", json_real(0.0));
		json_object_set_new(o, "embd_pdrop", json_real(0.0));
		json_object_set_new(o, "attn_pdrop", json_real(0.0));
	} else {
		json_object_set_new(o, "max_position_embeddings", json_integer(c->max_pos));
		json_object_set_new(o, "hidden_size", json_integer(c->d_model));
		json_object_set_new(o, "intermediate_size", json_integer(c->d_ff));
		json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layer));
		json_object_set_new(o, "num_attention_heads", json_integer(c->n_head));
		json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_head));
		json_object_set_new(o, "head_dim", json_integer(c->head_dim));
		json_object_set_new(o, "rms_norm_eps", json_real(c->norm_eps));
		json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
		json_object_set_new(o, "hidden_act", json_string("silu"));
		json_object_set_new(o, "attention_bias", json_false());
		json_object_set_new(o, "mlp_bias", json_false());
	}
	return o;
}

static llm_err save_config(const llm_model *m, const char *dir)
{
	char path[4096];
	json_t *doc = m->hf_config ? json_deep_copy(m->hf_config) : config_json(m);
	llm_err err;

	if (!doc)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", dir);
	/* the weights are written as F32 whatever they were read as; newer
	 * transformers name the field dtype, older ones torch_dtype */
	if (json_object_get(doc, "dtype"))
		json_object_set_new(doc, "dtype", json_string("float32"));
	if (json_object_get(doc, "torch_dtype") || !json_object_get(doc, "dtype"))
		json_object_set_new(doc, "torch_dtype", json_string("float32"));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	err = write_json_atomic(path, doc);
	json_decref(doc);
	return err;
}

/* Writes the tensors of a table (kernel layout in base) in Hugging Face
 * layout to path. */
static llm_err save_tensors(const struct mtensor *ts, int n, const float *base, size_t total,
			    const char *path)
{
	static const char *const meta[] = {"format", "pt", NULL};
	struct llm_st_out *outs = calloc((size_t)n, sizeof(*outs));
	int64_t *shapes = calloc((size_t)n * 2, sizeof(int64_t));
	float *stage = malloc(total * sizeof(float));
	llm_err err = LLM_OK;

	if (!outs || !shapes || !stage) {
		err = llm_fail(LLM_ENOMEM, "%s: out of memory", path);
		goto out_free;
	}
	for (int i = 0; i < n; i++) {
		hf_shape(&ts[i], &outs[i].ndim, shapes + 2 * i);
		llm_model_to_hf(&ts[i], base + ts[i].off, stage + ts[i].off);
		outs[i].name = ts[i].name;
		outs[i].dtype = LLM_ST_F32;
		outs[i].shape = shapes + 2 * i;
		outs[i].data = stage + ts[i].off;
	}
	err = llm_st_write(path, outs, (size_t)n, meta);
out_free:
	free(stage);
	free(shapes);
	free(outs);
	return err;
}

llm_err llm_model_save(const llm_model *m, const char *dir)
{
	char path[4096];
	const void *host;
	llm_err err = make_dir(dir);

	if (!err)
		err = save_config(m, dir);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/%s", dir, LLM_ST_SINGLE_FILENAME);
	err = llm_ops_host_view(m->ops, m->stage, m->params, m->n_params * sizeof(float), &host);
	if (!err)
		err = save_tensors(m->tensors, m->n_tensors, host, m->n_params, path);
	if (err)
		return err;
	/* an older sharded checkpoint's index would shadow the new file */
	snprintf(path, sizeof(path), "%s/%s", dir, LLM_ST_INDEX_FILENAME);
	if (unlink(path) && errno != ENOENT)
		return llm_fail(LLM_EIO, "%s: %s", path, strerror(errno));
	return LLM_OK;
}

/* ---- LoRA adapters ---- */

static json_t *adapter_config_json(const llm_model *m)
{
	const struct llm_lora_config *c = &m->lora->cfg;
	json_t *o = json_object(), *targets = json_array();

	if (!o || !targets) {
		json_decref(o);
		json_decref(targets);
		return NULL;
	}
	for (int i = 0; i < c->n_targets; i++)
		json_array_append_new(targets, json_string(c->targets[i]));
	json_object_set_new(o, "peft_type", json_string("LORA"));
	json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
	json_object_set_new(o, "base_model_name_or_path", json_null());
	json_object_set_new(o, "r", json_integer(c->r));
	if (c->alpha == floorf(c->alpha) && fabsf(c->alpha) < 1e9f)
		json_object_set_new(o, "lora_alpha", json_integer((json_int_t)c->alpha));
	else
		json_object_set_new(o, "lora_alpha", json_real(c->alpha));
	json_object_set_new(o, "lora_dropout", json_real(c->dropout));
	json_object_set_new(o, "target_modules", targets);
	json_object_set_new(o, "fan_in_fan_out", json_boolean(m->cfg.arch == LLM_ARCH_GPT2));
	json_object_set_new(o, "bias", json_string("none"));
	json_object_set_new(o, "inference_mode", json_true());
	json_object_set_new(o, "init_lora_weights", json_true());
	json_object_set_new(o, "use_rslora", json_false());
	json_object_set_new(o, "use_dora", json_false());
	json_object_set_new(o, "modules_to_save", json_null());
	return o;
}

llm_err llm_model_lora_save(const llm_model *m, const char *dir)
{
	char path[4096];
	const void *host;
	json_t *doc;
	llm_err err;

	if (!m->lora)
		return llm_fail(LLM_EINVAL, "lora: the model has no adapters to save");
	err = make_dir(dir);
	if (err)
		return err;
	doc = adapter_config_json(m);
	if (!doc)
		return llm_fail(LLM_ENOMEM, "%s: out of memory", dir);
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	err = write_json_atomic(path, doc);
	json_decref(doc);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	err = llm_ops_host_view(m->ops, m->stage, m->lora->mem, m->lora->n * sizeof(float), &host);
	if (err)
		return err;
	return save_tensors(m->lora->tensors, m->lora->n_tensors, host, m->lora->n, path);
}

/* Reads the settings of adapter_config.json that this module honours and
 * refuses the ones it cannot. */
static llm_err parse_adapter_config(const json_t *root, const char *file, struct llm_lora_config *c)
{
	const char *type = llm_json_str_or(root, "peft_type", "");
	const char *bias = llm_json_str_or(root, "bias", "none");
	json_t *targets = json_object_get(root, "target_modules"), *v;
	bool b;
	size_t i;
	llm_err err;

	memset(c, 0, sizeof(*c));
	if (strcmp(type, "LORA"))
		return llm_fail(LLM_EUNSUPPORTED, "%s: peft_type %s is not LORA", file, type);
	if ((err = cfg_int(root, file, "r", true, 0, &c->r)) ||
	    (err = cfg_num(root, file, "lora_alpha", 8.0, &c->alpha)) ||
	    (err = cfg_num(root, file, "lora_dropout", 0.0, &c->dropout)) ||
	    (err = cfg_bool(root, file, "use_dora", false, &b)) ||
	    (b && (err = LLM_EUNSUPPORTED)) ||
	    (err = cfg_bool(root, file, "use_rslora", false, &b)) ||
	    (b && (err = LLM_EUNSUPPORTED)))
		return err == LLM_EUNSUPPORTED
			       ? llm_fail(err, "%s: use_dora / use_rslora are not supported", file)
			       : err;
	if (strcmp(bias, "none"))
		return llm_fail(LLM_EUNSUPPORTED, "%s: bias %s is not supported", file, bias);
	if (!json_is_array(targets))
		return llm_fail(json_is_string(targets) ? LLM_EUNSUPPORTED : LLM_ENOTFOUND,
				"%s: target_modules must be a list of module names", file);
	if (json_array_size(targets) < 1 || json_array_size(targets) > LLM_LORA_MAX_TARGETS)
		return llm_fail(LLM_EINVAL, "%s: target_modules has %zu entries (1 to %d)", file,
				json_array_size(targets), LLM_LORA_MAX_TARGETS);
	json_array_foreach(targets, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) >= sizeof(c->targets[0]))
			return llm_fail(LLM_EINVAL, "%s: target_modules[%zu] is not a short string",
					file, i);
		snprintf(c->targets[i], sizeof(c->targets[i]), "%s", json_string_value(v));
	}
	c->n_targets = (int)json_array_size(targets);
	return LLM_OK;
}

/* Reads one adapter tensor through its host image into the adapters. */
static llm_err read_adapter_tensor(llm_model *m, const struct mtensor *t,
				   const struct llm_st_tensor *st, const char *file)
{
	float *dst = m->lora->mem + t->off;
	void *host;
	llm_err err = llm_ops_host_buffer(m->ops, m->stage, dst, t->n * sizeof(float), &host);

	if (!err && (err = llm_st_read_f32(st, host, t->n)))
		llm_wrap(err, "%s: tensor %s", file, t->name);
	if (!err)
		err = llm_ops_host_commit(m->ops, dst, host, t->n * sizeof(float));
	return err;
}

static llm_err load_adapter_tensors(llm_model *m, const char *file)
{
	const struct lora *lo = m->lora;
	llm_st_file *f;
	llm_err err = llm_st_open(file, &f);

	if (err)
		return err;
	for (int i = 0; !err && i < lo->n_tensors; i++) {
		const struct mtensor *t = &lo->tensors[i];
		const struct llm_st_tensor *st = llm_st_get(f, t->name);

		if (!st)
			err = llm_fail(LLM_ENOTFOUND, "%s: missing tensor %s", file, t->name);
		else if (st->ndim != 2 || st->shape[0] != t->rows || st->shape[1] != t->cols)
			err = llm_fail(LLM_EINVAL, "%s: tensor %s is not [%d, %d]", file, t->name,
				       t->rows, t->cols);
		else
			err = read_adapter_tensor(m, t, st, file);
	}
	if (!err && llm_st_count(f) != (size_t)lo->n_tensors)
		err = llm_fail(LLM_EINVAL, "%s: %zu tensors, but the targets match %d modules",
			       file, llm_st_count(f), lo->n_sites);
	llm_st_close(f);
	return err;
}

llm_err llm_model_lora_load(llm_model *m, const char *dir)
{
	char file[4096];
	struct llm_lora_config c;
	json_t *root;
	llm_err err;

	snprintf(file, sizeof(file), "%s/adapter_config.json", dir);
	err = read_json_file(file, &root);
	if (err)
		return err;
	err = parse_adapter_config(root, file, &c);
	json_decref(root);
	if (!err)
		err = llm_model_lora_add(m, &c);
	if (err)
		return err;
	snprintf(file, sizeof(file), "%s/adapter_model.safetensors", dir);
	err = load_adapter_tensors(m, file);
	if (err)
		llm_model_lora_drop(m);
	return err;
}
