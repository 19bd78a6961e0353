/* Llama (LlamaForCausalLM) in kernels/models against transformers and peft:
 * an untied model with grouped-query heads and a non-default RoPE theta
 * (logits, loss, gradients, 10 AdamW steps, 10 LoRA steps over all seven
 * projections, greedy decoding, KV cache, round trips), a tied model with
 * one key/value head (logits, loss, gradients, greedy), and malformed
 * configs, weights and adapters. Tolerances: tests/unit/model_golden.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "model_files.h"
#include "tmpdir.h"

static void test_llama_logits_and_loss_match_transformers(void **state)
{
	(void)state;
	check_logits_and_loss("llama");
}

static void test_llama_gradients_match_torch(void **state)
{
	(void)state;
	check_gradients("llama");
}

static void test_llama_adamw_losses_match_torch(void **state)
{
	(void)state;
	check_full_training("llama");
}

static void test_llama_lora_training_matches_peft(void **state)
{
	(void)state;
	check_lora_training("llama", tmpdir);
}

static void test_llama_greedy_tokens_match(void **state)
{
	(void)state;
	check_greedy("llama");
}

static void test_llama_kv_cache_matches_recompute(void **state)
{
	(void)state;
	check_kv_cache("llama");
}

static void test_llama_inference_only_model(void **state)
{
	(void)state;
	check_inference_mode("llama");
}

static void test_llama_save_load_round_trip(void **state)
{
	(void)state;
	check_save_roundtrip("llama", tmpdir);
}

static void test_llama_tied_logits_loss_gradients(void **state)
{
	(void)state;
	check_logits_and_loss("llama_tied");
	check_gradients("llama_tied");
}

static void test_llama_tied_greedy_and_round_trip(void **state)
{
	(void)state;
	check_greedy("llama_tied");
	check_kv_cache("llama_tied");
	check_save_roundtrip("llama_tied", tmpdir);
}

static void test_llama_bad_configs_name_the_field(void **state)
{
	(void)state;
	expect_config_error("llama", tmpdir, "num_key_value_heads", "3", LLM_EINVAL,
			    "num_key_value_heads");
	expect_config_error("llama", tmpdir, "num_key_value_heads", "0", LLM_EINVAL,
			    "num_key_value_heads");
	expect_config_error("llama", tmpdir, "num_attention_heads", "-4", LLM_EINVAL,
			    "num_attention_heads");
	expect_config_error("llama", tmpdir, "head_dim", "15", LLM_EINVAL, "head_dim");
	expect_config_error("llama", tmpdir, "hidden_size", NULL, LLM_ENOTFOUND, "hidden_size");
	expect_config_error("llama", tmpdir, "intermediate_size", "0", LLM_EINVAL,
			    "intermediate_size");
	expect_config_error("llama", tmpdir, "num_hidden_layers", "1.5", LLM_ETYPE,
			    "num_hidden_layers");
	expect_config_error("llama", tmpdir, "rms_norm_eps", "0", LLM_EINVAL, "rms_norm_eps");
	expect_config_error("llama", tmpdir, "attention_bias", "true", LLM_EUNSUPPORTED,
			    "attention_bias");
	expect_config_error("llama", tmpdir, "mlp_bias", "true", LLM_EUNSUPPORTED, "mlp_bias");
	expect_config_error("llama", tmpdir, "hidden_act", "\"gelu\"", LLM_EUNSUPPORTED,
			    "hidden_act");
	expect_config_error("llama", tmpdir, "rope_parameters",
			    "{\"rope_type\": \"linear\", \"factor\": 2.0}", LLM_EUNSUPPORTED,
			    "rope_parameters");
	expect_config_error("llama", tmpdir, "rope_parameters", "{\"rope_theta\": -1}", LLM_EINVAL,
			    "rope_theta");
	expect_config_error("llama", tmpdir, "model_type", "\"mistral\"", LLM_EUNSUPPORTED,
			    "model_type");
}

static void test_llama_weights_that_disagree_with_config(void **state)
{
	char dir[128];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/vocab", tmpdir);
	variant_dir("llama", dir, "vocab_size", json_integer(300));
	expect_load_error(dir, LLM_EINVAL, "model.embed_tokens.weight", "model.safetensors");
	snprintf(dir, sizeof(dir), "%s/kv", tmpdir);
	variant_dir("llama", dir, "num_key_value_heads", json_integer(4));
	expect_load_error(dir, LLM_EINVAL, "model.layers.0.self_attn.k_proj.weight",
			  "model.safetensors");
	/* untied config over tied weights: no lm_head in the file */
	snprintf(dir, sizeof(dir), "%s/untied", tmpdir);
	variant_dir("llama_tied", dir, "tie_word_embeddings", json_false());
	expect_load_error(dir, LLM_ENOTFOUND, "lm_head.weight", "model.safetensors");
}

/* Copies the golden lora_init adapter with its config edited. */
static void adapter_variant(const char *dir, const char *key, const char *value)
{
	char src[256], dst[256], weights[PATH_MAX];
	json_error_t jerr;
	json_t *cfg = json_load_file(GOLDEN_MODELS "llama/lora_init/adapter_config.json", 0, &jerr);

	assert_non_null(cfg);
	json_object_set_new(cfg, key, json_loads(value, JSON_DECODE_ANY, &jerr));
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(dst, sizeof(dst), "%s/adapter_config.json", dir);
	assert_int_equal(json_dump_file(cfg, dst, 0), 0);
	json_decref(cfg);
	snprintf(src, sizeof(src), GOLDEN_MODELS "llama/lora_init/adapter_model.safetensors");
	assert_non_null(realpath(src, weights));
	snprintf(dst, sizeof(dst), "%s/adapter_model.safetensors", dir);
	assert_int_equal(symlink(weights, dst), 0);
}

static void expect_adapter_error(llm_model *m, const char *dir, llm_err code, const char *what)
{
	llm_err err = llm_model_lora_load(m, dir);

	if (err != code || !strstr(llm_last_error(), what))
		fprintf(stderr, "adapter %s: got %s \"%s\"\n", dir, llm_errname(err),
			llm_last_error());
	assert_int_equal(err, code);
	assert_non_null(strstr(llm_last_error(), what));
}

static void test_llama_bad_adapters_are_refused(void **state)
{
	struct golden g;
	llm_model *m;
	char dir[128];
	float loss, base;

	(void)state;
	golden_open(&g, "llama");
	m = golden_model(&g);
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &base), LLM_OK);
	snprintf(dir, sizeof(dir), "%s/a_rank", tmpdir);
	adapter_variant(dir, "r", "8");
	expect_adapter_error(m, dir, LLM_EINVAL, "lora_A.weight");
	snprintf(dir, sizeof(dir), "%s/a_targets", tmpdir);
	adapter_variant(dir, "target_modules", "[\"q_proj\"]");
	expect_adapter_error(m, dir, LLM_EINVAL, "adapter_model.safetensors");
	snprintf(dir, sizeof(dir), "%s/a_dora", tmpdir);
	adapter_variant(dir, "use_dora", "true");
	expect_adapter_error(m, dir, LLM_EUNSUPPORTED, "use_dora");
	snprintf(dir, sizeof(dir), "%s/a_regex", tmpdir);
	adapter_variant(dir, "target_modules", "\".*proj\"");
	expect_adapter_error(m, dir, LLM_EUNSUPPORTED, "target_modules");
	snprintf(dir, sizeof(dir), "%s/a_none", tmpdir);
	adapter_variant(dir, "target_modules", "[\"c_attn\"]");
	expect_adapter_error(m, dir, LLM_EINVAL, "c_attn");
	/* failed loads leave the base model as it was */
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &loss), LLM_OK);
	assert_true(loss == base);
	/* and the golden adapter (B = 0) does not change the loss either */
	assert_int_equal(llm_model_lora_load(m, GOLDEN_MODELS "llama/lora_init"), LLM_OK);
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &loss), LLM_OK);
	assert_true(fabsf(loss - base) < 1e-6f);
	llm_model_destroy(m);
	golden_close(&g);
}

/* LoRA dropout draws a new mask each training forward and none when
 * decoding; training through it still fits the batch. */
static void test_llama_lora_dropout_trains(void **state)
{
	static const char *const targets[] = {"q_proj",	   "k_proj",  "v_proj",	  "o_proj",
					      "gate_proj", "up_proj", "down_proj"};
	struct llm_lora_config c = {.r = 4, .alpha = 8, .dropout = 0.3f, .n_targets = 7, .seed = 5};
	struct llm_adamw opt = {.lr = 2e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
	struct golden g;
	llm_model *m;
	float first = 0.0f, loss = 0.0f, again;
	static float logits[16 * 320];

	(void)state;
	for (int i = 0; i < 7; i++)
		snprintf(c.targets[i], sizeof(c.targets[i]), "%s", targets[i]);
	golden_open(&g, "llama");
	assert_int_equal(g.T, 16);
	m = golden_model(&g);
	assert_int_equal(llm_model_lora_add(m, &c), LLM_OK);
	for (int step = 0; step < 8; step++) {
		assert_int_equal(llm_model_zero_grad(m), LLM_OK);
		assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &loss), LLM_OK);
		if (!step)
			first = loss;
		assert_int_equal(llm_model_backward(m), LLM_OK);
		assert_int_equal(llm_model_step(m, &opt, NULL), LLM_OK);
	}
	assert_true(loss < first - 0.5f);
	/* masks differ between forwards once B is no longer zero */
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &loss), LLM_OK);
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &again), LLM_OK);
	assert_true(loss != again);
	/* decoding applies no dropout: the same prompt gives the same logits */
	assert_int_equal(llm_model_prefill(m, g.ids, 1, g.T), LLM_OK);
	memcpy(logits, llm_model_logits(m), sizeof(logits));
	assert_int_equal(llm_model_prefill(m, g.ids, 1, g.T), LLM_OK);
	assert_memory_equal(llm_model_logits(m), logits, sizeof(logits));
	llm_model_destroy(m);
	golden_close(&g);
}

static void test_llama_sampling_is_seeded(void **state)
{
	struct golden g;
	llm_model *m;
	struct llm_sampling s = {.temperature = 1.0f, .top_k = 50, .top_p = 0.9f, .seed = 11};
	int a[2 * 12], b[2 * 12], prompt[2 * 4];

	(void)state;
	golden_open(&g, "llama");
	m = golden_model(&g);
	for (int i = 0; i < 8; i++)
		prompt[i] = g.ids[i];
	assert_int_equal(llm_model_generate(m, prompt, 2, 4, 12, &s, a), LLM_OK);
	assert_int_equal(llm_model_generate(m, prompt, 2, 4, 12, &s, b), LLM_OK);
	assert_memory_equal(a, b, sizeof(a));
	for (int i = 0; i < 24; i++)
		assert_true(a[i] >= 0 && a[i] < 320);
	/* the cache holds max_T positions */
	assert_int_equal(llm_model_generate(m, prompt, 2, 4, MAX_T, &s, a), LLM_EINVAL);
	assert_int_equal(llm_model_decode(m, prompt), LLM_OK);
	llm_model_destroy(m);
	golden_close(&g);
}

static void test_llama_random_init_from_config(void **state)
{
	struct llm_model_config c;
	llm_model *m;
	int tokens[4] = {1, 2, 3, 4}, out[4];
	float loss;

	(void)state;
	llm_model_config_default(&c, LLM_ARCH_LLAMA);
	c.vocab_size = 64;
	c.n_layer = 2;
	c.n_head = 4;
	c.n_kv_head = 2;
	c.d_model = 32;
	c.d_ff = 48;
	assert_int_equal(llm_model_new(&c, 1, 16, 0, 3, &m), LLM_OK);
	assert_int_equal(llm_model_get_config(m)->head_dim, 8);
	assert_int_equal(llm_model_forward(m, tokens, tokens, 1, 4, &loss), LLM_OK);
	assert_true(fabsf(loss - logf(64.0f)) < 0.5f);
	assert_int_equal(llm_model_generate(m, tokens, 1, 4, 4, NULL, out), LLM_OK);
	llm_model_destroy(m);
	c.n_kv_head = 3;
	assert_int_equal(llm_model_new(&c, 1, 16, 0, 3, &m), LLM_EINVAL);
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llama_logits_and_loss_match_transformers),
		cmocka_unit_test(test_llama_gradients_match_torch),
		cmocka_unit_test(test_llama_adamw_losses_match_torch),
		cmocka_unit_test(test_llama_lora_training_matches_peft),
		cmocka_unit_test(test_llama_greedy_tokens_match),
		cmocka_unit_test(test_llama_kv_cache_matches_recompute),
		cmocka_unit_test(test_llama_save_load_round_trip),
		cmocka_unit_test(test_llama_inference_only_model),
		cmocka_unit_test(test_llama_tied_logits_loss_gradients),
		cmocka_unit_test(test_llama_tied_greedy_and_round_trip),
		cmocka_unit_test(test_llama_bad_configs_name_the_field),
		cmocka_unit_test(test_llama_weights_that_disagree_with_config),
		cmocka_unit_test(test_llama_bad_adapters_are_refused),
		cmocka_unit_test(test_llama_lora_dropout_trains),
		cmocka_unit_test(test_llama_sampling_is_seeded),
		cmocka_unit_test(test_llama_random_init_from_config),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
