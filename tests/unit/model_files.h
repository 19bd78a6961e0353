/* File and mode checks of kernels/models shared by test_model_gpt2.c and
 * test_model_llama.c (CPU only): save/load round trips, inference-only
 * models, and configs and weights that must fail to load with a detail
 * naming the field or tensor. The parity checks are in model_golden.h. */
#ifndef TEST_MODEL_FILES_H
#define TEST_MODEL_FILES_H

#include "model_golden.h"

/* save -> load gives the same tensors and bit-identical logits. */
static void check_save_roundtrip(const char *arch, const char *tmpdir)
{
	struct golden g;
	llm_model *m, *again;
	char path[320];
	size_t n;
	float *before;

	golden_open(&g, arch);
	m = golden_model(&g);
	n = (size_t)g.B * g.T * llm_model_get_config(m)->vocab_size;
	before = malloc(n * sizeof(float));
	assert_non_null(before);
	assert_int_equal(llm_model_forward(m, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	memcpy(before, llm_model_logits(m), n * sizeof(float));
	snprintf(path, sizeof(path), "%s/%s-saved", tmpdir, arch);
	assert_int_equal(llm_model_save(m, path), LLM_OK);
	assert_int_equal(llm_model_load(path, MAX_B, MAX_T, 0, &again), LLM_OK);
	assert_int_equal(llm_model_num_params(again), llm_model_num_params(m));
	assert_memory_equal(llm_model_get_config(again), llm_model_get_config(m),
			    sizeof(struct llm_model_config));
	assert_int_equal(llm_model_forward(again, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_memory_equal(llm_model_logits(again), before, n * sizeof(float));
	printf("%s: saved model reloads to identical logits\n", arch);
	free(before);
	llm_model_destroy(again);
	llm_model_destroy(m);
	golden_close(&g);
}

/* A model loaded for inference only computes the same logits and greedy
 * tokens with less memory, and refuses training calls. */
static void check_inference_mode(const char *arch)
{
	struct golden g;
	llm_model *train, *infer;
	char path[320];
	size_t n;
	int out[2][32], prompt[4];
	struct llm_adamw opt = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f};

	golden_open(&g, arch);
	train = golden_model(&g);
	snprintf(path, sizeof(path), "%s/model", g.dir);
	assert_int_equal(llm_model_load(path, MAX_B, MAX_T, LLM_MODEL_INFERENCE, &infer), LLM_OK);
	n = (size_t)g.B * g.T * llm_model_get_config(train)->vocab_size;
	assert_int_equal(llm_model_forward(train, g.ids, g.labels, g.B, g.T, NULL), LLM_OK);
	assert_int_equal(llm_model_forward(infer, g.ids, g.labels, g.B, g.T, NULL), LLM_OK);
	assert_memory_equal(llm_model_logits(infer), llm_model_logits(train), n * sizeof(float));
	memcpy(prompt, g.ids, sizeof(prompt));
	assert_int_equal(llm_model_generate(train, prompt, 1, 4, 20, NULL, out[0]), LLM_OK);
	assert_int_equal(llm_model_generate(infer, prompt, 1, 4, 20, NULL, out[1]), LLM_OK);
	assert_memory_equal(out[0], out[1], 20 * sizeof(int));
	printf("%s: inference-only model %zu bytes, training model %zu bytes before gradients\n",
	       arch, llm_model_memory_bytes(infer), llm_model_memory_bytes(train));
	assert_true(llm_model_memory_bytes(infer) < llm_model_memory_bytes(train));
	assert_int_equal(llm_model_zero_grad(infer), LLM_EINVAL);
	assert_int_equal(llm_model_forward(infer, g.ids, g.labels, g.B, g.T, NULL), LLM_OK);
	assert_int_equal(llm_model_backward(infer), LLM_EINVAL);
	assert_int_equal(llm_model_step(infer, &opt, NULL), LLM_EINVAL);
	llm_model_destroy(infer);
	llm_model_destroy(train);
	golden_close(&g);
}

/* ---- malformed inputs ---- */

/* Makes dir/ with the golden config of arch edited (key set to value, or
 * removed when value is NULL; value is stolen) and a link to its weights. */
static void variant_dir(const char *arch, const char *dir, const char *key, json_t *value)
{
	char src[320], dst[320], weights[PATH_MAX];
	json_error_t jerr;
	json_t *cfg;

	snprintf(src, sizeof(src), GOLDEN_MODELS "%s/model/config.json", arch);
	cfg = json_load_file(src, 0, &jerr);
	assert_non_null(cfg);
	if (value)
		json_object_set_new(cfg, key, value);
	else if (key)
		json_object_del(cfg, key);
	assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
	snprintf(dst, sizeof(dst), "%s/config.json", dir);
	assert_int_equal(json_dump_file(cfg, dst, JSON_INDENT(2)), 0);
	json_decref(cfg);
	snprintf(src, sizeof(src), GOLDEN_MODELS "%s/model/model.safetensors", arch);
	assert_non_null(realpath(src, weights));
	snprintf(dst, sizeof(dst), "%s/model.safetensors", dir);
	unlink(dst);
	assert_int_equal(symlink(weights, dst), 0);
}

/* Loading dir fails with code and a detail that names what and where. */
static void expect_load_error(const char *dir, llm_err code, const char *what, const char *where)
{
	llm_model *m = (llm_model *)1;
	llm_err err = llm_model_load(dir, MAX_B, MAX_T, 0, &m);
	const char *detail = llm_last_error();

	if (err != code || !strstr(detail, what) || !strstr(detail, where))
		fprintf(stderr, "load %s: got %s \"%s\", want %s naming %s in %s\n", dir,
			llm_errname(err), detail, llm_errname(code), what, where);
	assert_int_equal(err, code);
	assert_null(m);
	assert_non_null(strstr(detail, what));
	assert_non_null(strstr(detail, where));
}

/* One edited config: key = value (JSON text, or NULL to remove key). */
static void expect_config_error(const char *arch, const char *tmpdir, const char *key,
				const char *value, llm_err code, const char *what)
{
	static int serial;
	char dir[320];
	json_t *v = NULL;
	json_error_t jerr;

	if (value) {
		v = json_loads(value, JSON_DECODE_ANY, &jerr);
		assert_non_null(v);
	}
	snprintf(dir, sizeof(dir), "%s/bad%d", tmpdir, serial++);
	variant_dir(arch, dir, key, v);
	expect_load_error(dir, code, what, "config.json");
}

#endif
