/* GPT-2 (GPT2LMHeadModel) in kernels/models against transformers and peft:
 * logits, loss, every gradient, 10 AdamW steps, 10 LoRA steps and the final
 * adapter, greedy decoding with the KV cache, save/load round trips, sharded
 * checkpoints and BF16 weights, and malformed configs and weights. Tolerances:
 * tests/unit/model_golden.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "model_files.h"
#include "tmpdir.h"

static void test_gpt2_logits_and_loss_match_transformers(void **state)
{
	(void)state;
	check_logits_and_loss("gpt2");
}

static void test_gpt2_gradients_match_torch(void **state)
{
	(void)state;
	check_gradients("gpt2");
}

static void test_gpt2_adamw_losses_match_torch(void **state)
{
	(void)state;
	check_full_training("gpt2");
}

static void test_gpt2_lora_training_matches_peft(void **state)
{
	(void)state;
	check_lora_training("gpt2", tmpdir);
}

static void test_gpt2_greedy_tokens_match(void **state)
{
	(void)state;
	check_greedy("gpt2");
}

static void test_gpt2_kv_cache_matches_recompute(void **state)
{
	(void)state;
	check_kv_cache("gpt2");
}

static void test_gpt2_inference_only_model(void **state)
{
	(void)state;
	check_inference_mode("gpt2");
}

static void test_gpt2_save_load_round_trip(void **state)
{
	(void)state;
	check_save_roundtrip("gpt2", tmpdir);
}

static void test_gpt2_bad_configs_name_the_field(void **state)
{
	(void)state;
	expect_config_error("gpt2", tmpdir, "n_head", "5", LLM_EINVAL, "n_head");
	expect_config_error("gpt2", tmpdir, "n_layer", "0", LLM_EINVAL, "n_layer");
	expect_config_error("gpt2", tmpdir, "n_embd", "-64", LLM_EINVAL, "n_embd");
	expect_config_error("gpt2", tmpdir, "n_embd", NULL, LLM_ENOTFOUND, "n_embd");
	expect_config_error("gpt2", tmpdir, "n_head", "\"four\"", LLM_ETYPE, "n_head");
	expect_config_error("gpt2", tmpdir, "vocab_size", "0", LLM_EINVAL, "vocab_size");
	expect_config_error("gpt2", tmpdir, "model_type", "\"bert\"", LLM_EUNSUPPORTED,
			    "model_type");
	expect_config_error("gpt2", tmpdir, "model_type", NULL, LLM_ENOTFOUND, "model_type");
	expect_config_error("gpt2", tmpdir, "activation_function", "\"relu\"", LLM_EUNSUPPORTED,
			    "activation_function");
	expect_config_error("gpt2", tmpdir, "layer_norm_epsilon", "-1", LLM_EINVAL,
			    "layer_norm_epsilon");
	expect_config_error("gpt2", tmpdir, "n_positions", "8", LLM_EINVAL, "n_positions");
	expect_config_error("gpt2", tmpdir, "n_layer", "100000000", LLM_ETOOLARGE, "parameters");
	expect_config_error("gpt2", tmpdir, "n_embd", "3000000000", LLM_EINVAL, "n_embd");
}

/* The golden weights split over two shards with an index load to the same
 * model; a shard that lacks a tensor its index names is an error. */
static void test_gpt2_sharded_checkpoint_loads(void **state)
{
	char dir[128], path[192], weights[PATH_MAX];
	llm_st_file *f;
	struct llm_st_out *outs;
	json_t *index, *map;
	size_t n;
	llm_model *a, *b;
	struct golden g;

	(void)state;
	golden_open(&g, "gpt2");
	snprintf(dir, sizeof(dir), "%s/sharded", tmpdir);
	variant_dir("gpt2", dir, NULL, NULL);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_non_null(realpath(path, weights));
	assert_int_equal(llm_st_open(weights, &f), LLM_OK);
	assert_int_equal(unlink(path), 0);
	n = llm_st_count(f);
	outs = calloc(n, sizeof(*outs));
	assert_non_null(outs);
	index = json_object();
	map = json_object();
	for (size_t i = 0; i < n; i++) {
		const struct llm_st_tensor *t = llm_st_at(f, i);

		outs[i] = (struct llm_st_out){t->name, t->dtype, t->ndim, t->shape, t->data};
		json_object_set_new(map, t->name,
				    json_string(i < n / 2 ? "a.safetensors" : "b.safetensors"));
	}
	json_object_set_new(index, "weight_map", map);
	snprintf(path, sizeof(path), "%s/a.safetensors", dir);
	assert_int_equal(llm_st_write(path, outs, n / 2, NULL), LLM_OK);
	snprintf(path, sizeof(path), "%s/b.safetensors", dir);
	assert_int_equal(llm_st_write(path, outs + n / 2, n - n / 2, NULL), LLM_OK);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	assert_int_equal(json_dump_file(index, path, 0), 0);
	assert_int_equal(llm_model_load(dir, MAX_B, MAX_T, 0, &a), LLM_OK);
	b = golden_model(&g);
	assert_int_equal(llm_model_forward(a, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_int_equal(llm_model_forward(b, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_memory_equal(llm_model_logits(a), llm_model_logits(b),
			    (size_t)g.B * g.T * 320 * sizeof(float));
	/* saving over the sharded checkpoint leaves the new single file in charge */
	assert_int_equal(llm_model_save(b, dir), LLM_OK);
	assert_int_equal(access(path, F_OK), -1); /* path: the index */
	llm_model_destroy(a);
	assert_int_equal(llm_model_load(dir, MAX_B, MAX_T, 0, &a), LLM_OK);
	assert_int_equal(llm_model_forward(a, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_memory_equal(llm_model_logits(a), llm_model_logits(b),
			    (size_t)g.B * g.T * 320 * sizeof(float));
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	assert_int_equal(json_dump_file(index, path, 0), 0);
	json_decref(index);
	/* a shard missing a tensor its index names */
	snprintf(path, sizeof(path), "%s/b.safetensors", dir);
	assert_int_equal(llm_st_write(path, outs + n / 2, n - n / 2 - 1, NULL), LLM_OK);
	llm_model_destroy(a);
	assert_int_not_equal(llm_model_load(dir, MAX_B, MAX_T, 0, &a), LLM_OK);
	assert_null(a);
	llm_model_destroy(b);
	free(outs);
	llm_st_close(f);
	golden_close(&g);
}

static void test_gpt2_weights_that_disagree_with_config(void **state)
{
	char dir[128];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/vocab", tmpdir);
	variant_dir("gpt2", dir, "vocab_size", json_integer(321));
	expect_load_error(dir, LLM_EINVAL, "transformer.wte.weight", "model.safetensors");
	snprintf(dir, sizeof(dir), "%s/layers", tmpdir);
	variant_dir("gpt2", dir, "n_layer", json_integer(3));
	expect_load_error(dir, LLM_ENOTFOUND, "transformer.h.2.ln_1.weight", "model.safetensors");
	snprintf(dir, sizeof(dir), "%s/inner", tmpdir);
	variant_dir("gpt2", dir, "n_inner", json_integer(128));
	expect_load_error(dir, LLM_EINVAL, "transformer.h.0.mlp.c_fc.weight", "model.safetensors");
}

/* Writes the golden weights to dir/model.safetensors rounded to BF16, as
 * BF16 tensors (bf16) or as the same values in F32. */
static void write_rounded(const char *dir, bool bf16)
{
	llm_st_file *f;
	struct llm_st_out *outs;
	void **bufs;
	size_t n;
	char path[192];

	assert_int_equal(llm_st_open(GOLDEN_MODELS "gpt2/model/model.safetensors", &f), LLM_OK);
	n = llm_st_count(f);
	outs = calloc(n, sizeof(*outs));
	bufs = calloc(n, sizeof(*bufs));
	assert_true(outs && bufs);
	for (size_t i = 0; i < n; i++) {
		const struct llm_st_tensor *t = llm_st_at(f, i);
		size_t k = llm_st_numel(t);
		float *x = malloc(k * sizeof(float));
		uint16_t *h = malloc(k * sizeof(uint16_t));

		assert_true(x && h);
		assert_int_equal(llm_st_read_f32(t, x, k), LLM_OK);
		assert_int_equal(llm_st_f32_to_bf16(x, h, k), LLM_OK);
		for (size_t j = 0; j < k; j++) { /* BF16 is the top half of an F32 */
			uint32_t u = (uint32_t)h[j] << 16;

			memcpy(&x[j], &u, sizeof(u));
		}
		outs[i] = (struct llm_st_out){t->name, bf16 ? LLM_ST_BF16 : LLM_ST_F32, t->ndim,
					      t->shape, bf16 ? (void *)h : (void *)x};
		bufs[i] = bf16 ? (void *)h : (void *)x;
		free(bf16 ? (void *)x : (void *)h);
	}
	assert_true(mkdir(dir, 0755) == 0);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	{
		json_error_t jerr;
		json_t *cfg = json_load_file(GOLDEN_MODELS "gpt2/model/config.json", 0, &jerr);

		assert_non_null(cfg);
		assert_int_equal(json_dump_file(cfg, path, 0), 0);
		json_decref(cfg);
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_int_equal(llm_st_write(path, outs, n, NULL), LLM_OK);
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(outs);
	llm_st_close(f);
}

/* BF16 weights load (Conv1D transposes included) to the same model as
 * their F32 values. */
static void test_gpt2_bf16_weights_load(void **state)
{
	char a_dir[128], b_dir[128];
	llm_model *a, *b;
	struct golden g;

	(void)state;
	golden_open(&g, "gpt2");
	snprintf(a_dir, sizeof(a_dir), "%s/bf16", tmpdir);
	snprintf(b_dir, sizeof(b_dir), "%s/bf16-as-f32", tmpdir);
	write_rounded(a_dir, true);
	write_rounded(b_dir, false);
	assert_int_equal(llm_model_load(a_dir, MAX_B, MAX_T, 0, &a), LLM_OK);
	assert_int_equal(llm_model_load(b_dir, MAX_B, MAX_T, 0, &b), LLM_OK);
	assert_int_equal(llm_model_forward(a, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_int_equal(llm_model_forward(b, g.ids, NULL, g.B, g.T, NULL), LLM_OK);
	assert_memory_equal(llm_model_logits(a), llm_model_logits(b),
			    (size_t)g.B * g.T * 320 * sizeof(float));
	llm_model_destroy(a);
	llm_model_destroy(b);
	golden_close(&g);
}

static void test_gpt2_missing_or_broken_files(void **state)
{
	char dir[128], path[160];
	FILE *fp;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/nothing", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	expect_load_error(dir, LLM_ENOTFOUND, "config.json", dir);
	snprintf(dir, sizeof(dir), "%s/noweights", tmpdir);
	variant_dir("gpt2", dir, NULL, NULL);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_int_equal(unlink(path), 0);
	expect_load_error(dir, LLM_ENOTFOUND, "model.safetensors", dir);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"model_type\": \"gpt2\",", fp);
	fclose(fp);
	expect_load_error(dir, LLM_EPARSE, "config.json", dir);
}

static void test_gpt2_lora_targets_and_settings(void **state)
{
	struct golden g;
	llm_model *m;
	struct llm_lora_config c = {.r = 4, .alpha = 8, .n_targets = 1, .seed = 7};
	float a[4 * 64];

	(void)state;
	golden_open(&g, "gpt2");
	m = golden_model(&g);
	snprintf(c.targets[0], sizeof(c.targets[0]), "q_proj");
	assert_int_equal(llm_model_lora_add(m, &c), LLM_EINVAL);
	c.r = 0;
	snprintf(c.targets[0], sizeof(c.targets[0]), "c_attn");
	assert_int_equal(llm_model_lora_add(m, &c), LLM_EINVAL);
	c.r = 4;
	assert_int_equal(llm_model_lora_add(m, &c), LLM_OK);
	assert_int_equal(llm_model_lora_add(m, &c), LLM_EEXIST);
	/* A is Kaiming-uniform: inside +-1/sqrt(in) and not all zero */
	assert_int_equal(llm_model_lora_get(m,
					    "base_model.model.transformer.h.1.attn.c_attn.lora_A."
					    "weight",
					    a, 4 * 64),
			 LLM_OK);
	for (int i = 0; i < 4 * 64; i++)
		assert_true(fabsf(a[i]) <= 0.125f);
	assert_true(a[0] != 0.0f || a[1] != 0.0f);
	/* only attn.c_attn was targeted */
	assert_int_equal(llm_model_lora_get(m,
					    "base_model.model.transformer.h.0.mlp.c_fc.lora_A."
					    "weight",
					    a, 4 * 64),
			 LLM_ENOTFOUND);
	llm_model_destroy(m);
	golden_close(&g);
}

static void test_gpt2_random_init_trains(void **state)
{
	struct llm_model_config c;
	struct llm_adamw opt = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f};
	llm_model *m;
	int tokens[2 * 8];
	float first = 0.0f, loss = 0.0f;

	(void)state;
	llm_model_config_default(&c, LLM_ARCH_GPT2);
	c.vocab_size = 50;
	c.max_pos = 16;
	c.n_layer = 2;
	c.n_head = 2;
	c.d_model = 16;
	assert_int_equal(llm_model_new(&c, 2, 8, 0, 42, &m), LLM_OK);
	for (int i = 0; i < 16; i++)
		tokens[i] = (i * 7) % 50;
	for (int step = 0; step < 20; step++) {
		assert_int_equal(llm_model_zero_grad(m), LLM_OK);
		assert_int_equal(llm_model_forward(m, tokens, tokens, 2, 8, &loss), LLM_OK);
		if (!step)
			first = loss;
		assert_int_equal(llm_model_backward(m), LLM_OK);
		assert_int_equal(llm_model_step(m, &opt, NULL), LLM_OK);
	}
	/* ln(50) at a random start; memorising one batch drives it down */
	assert_true(fabsf(first - logf(50.0f)) < 0.5f);
	assert_true(loss < 0.5f * first);
	assert_int_equal(llm_model_forward(m, tokens, NULL, 3, 8, NULL), LLM_EINVAL);
	tokens[3] = 50;
	assert_int_equal(llm_model_forward(m, tokens, NULL, 2, 8, NULL), LLM_EINVAL);
	llm_model_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpt2_logits_and_loss_match_transformers),
		cmocka_unit_test(test_gpt2_gradients_match_torch),
		cmocka_unit_test(test_gpt2_adamw_losses_match_torch),
		cmocka_unit_test(test_gpt2_lora_training_matches_peft),
		cmocka_unit_test(test_gpt2_greedy_tokens_match),
		cmocka_unit_test(test_gpt2_kv_cache_matches_recompute),
		cmocka_unit_test(test_gpt2_save_load_round_trip),
		cmocka_unit_test(test_gpt2_inference_only_model),
		cmocka_unit_test(test_gpt2_bad_configs_name_the_field),
		cmocka_unit_test(test_gpt2_weights_that_disagree_with_config),
		cmocka_unit_test(test_gpt2_sharded_checkpoint_loads),
		cmocka_unit_test(test_gpt2_bf16_weights_load),
		cmocka_unit_test(test_gpt2_missing_or_broken_files),
		cmocka_unit_test(test_gpt2_lora_targets_and_settings),
		cmocka_unit_test(test_gpt2_random_init_trains),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
