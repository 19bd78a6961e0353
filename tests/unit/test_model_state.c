/* Unit tests for the models' training state (llm_model_train_state and the
 * counters): restoring the arrays and counters of a model into a fresh one
 * gives bit for bit the next step of the original, full and LoRA (with
 * dropout, whose masks follow the forward counter). And the operations on
 * the model's memory a training loop uses (llm_model_state_*), on the CPU
 * and on the staged CPU table that stands in for device memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmops_model.h"

static const struct llm_adamw OPT = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f};

static llm_model *tiny_on(bool lora, unsigned flags)
{
	struct llm_model_config c;
	struct llm_lora_config lc = {
		.r = 2, .alpha = 4, .dropout = 0.2f, .n_targets = 1, .seed = 3};
	llm_model *m;

	llm_model_config_default(&c, LLM_ARCH_GPT2);
	c.vocab_size = 50;
	c.max_pos = 16;
	c.n_layer = 2;
	c.n_head = 2;
	c.d_model = 16;
	assert_int_equal(llm_model_new(&c, 2, 8, flags, 42, &m), LLM_OK);
	snprintf(lc.targets[0], sizeof(lc.targets[0]), "c_attn");
	if (lora)
		assert_int_equal(llm_model_lora_add(m, &lc), LLM_OK);
	return m;
}

static llm_model *tiny(bool lora)
{
	return tiny_on(lora, 0);
}

static void step(llm_model *m, int shift)
{
	int tokens[16];

	for (int i = 0; i < 16; i++)
		tokens[i] = (i * 7 + shift) % 50;
	assert_int_equal(llm_model_zero_grad(m), LLM_OK);
	assert_int_equal(llm_model_forward(m, tokens, tokens, 2, 8, NULL), LLM_OK);
	assert_int_equal(llm_model_backward(m), LLM_OK);
	assert_int_equal(llm_model_step(m, &OPT, NULL), LLM_OK);
}

static void resume_equals_uninterrupted(bool lora)
{
	llm_model *a = tiny(lora), *b = tiny(lora);
	struct llm_model_state sa, sb;
	struct llm_model_counters k;

	for (int i = 0; i < 3; i++)
		step(a, i);
	assert_int_equal(llm_model_train_state(a, &sa), LLM_OK);
	assert_int_equal(llm_model_train_state(b, &sb), LLM_OK);
	assert_int_equal(sa.n, sb.n);
	memcpy(sb.params, sa.params, sa.n * sizeof(float));
	memcpy(sb.exp_avg, sa.exp_avg, sa.n * sizeof(float));
	memcpy(sb.exp_avg_sq, sa.exp_avg_sq, sa.n * sizeof(float));
	llm_model_get_counters(a, &k);
	assert_int_equal(k.adam_steps, 3);
	assert_int_equal(k.forwards, 3);
	llm_model_set_counters(b, &k);
	step(a, 3);
	step(b, 3);
	assert_memory_equal(sa.params, sb.params, sa.n * sizeof(float));
	llm_model_destroy(a);
	llm_model_destroy(b);
}

static void test_model_state_full_resume_is_exact(void **state)
{
	(void)state;
	resume_equals_uninterrupted(false);
}

static void test_model_state_lora_resume_with_dropout_is_exact(void **state)
{
	(void)state;
	resume_equals_uninterrupted(true);
}

static void test_model_state_lora_state_is_the_adapters(void **state)
{
	llm_model *m = tiny(true);
	struct llm_model_state s;

	(void)state;
	assert_int_equal(llm_model_train_state(m, &s), LLM_OK);
	/* c_attn of 2 layers: A (2,16) and B (48,2) each */
	assert_int_equal(s.n, 2 * (2 * 16 + 48 * 2));
	assert_true(s.grads == s.params + s.n && s.exp_avg_sq == s.params + 3 * s.n);
	llm_model_destroy(m);
}

/* llm_model_eval() is the loss without dropout: what the prefill's logits
 * give through the cross-entropy kernel, summed in the same order; and it
 * leaves the counters (the dropout masks' seed) alone. */
static void test_model_state_eval_is_the_dropout_free_loss(void **state)
{
	llm_model *m = tiny(true); /* LoRA with dropout 0.2 */
	struct llm_model_counters k0, k1;
	int tokens[16], targets[16], count = -1, want_count;
	float losses[16];
	double sum = -1.0, want = 0.0;

	(void)state;
	for (int i = 0; i < 16; i++)
		tokens[i] = (i * 5 + 3) % 50;
	step(m, 0);
	llm_model_get_counters(m, &k0);
	assert_int_equal(llm_model_eval(m, tokens, tokens, 2, 8, &sum, &count), LLM_OK);
	llm_model_get_counters(m, &k1);
	assert_memory_equal(&k0, &k1, sizeof(k0));
	assert_int_equal(llm_model_prefill(m, tokens, 2, 8), LLM_OK);
	for (int i = 0; i < 16; i++)
		targets[i] = i % 8 + 1 < 8 ? tokens[i + 1] : -100;
	want_count = cpu_crossentropy_forward_backward(NULL, losses, llm_model_logits(m), targets,
						       16, 50, -100, 0.0f);
	for (int i = 0; i < 16; i++)
		want += losses[i];
	assert_int_equal(count, 14);
	assert_int_equal(count, want_count);
	assert_true(sum == want);
	llm_model_destroy(m);
}

/* alloc, upload, accumulate, copy, zero and download on flags' memory
 * against the same arithmetic on the host */
static void memory_ops(unsigned flags, const char *backend)
{
	enum { N = 70000 }; /* past the threshold where the CPU loop goes parallel */
	llm_model *m = tiny_on(false, flags);
	static float g[N], acc[N], want[N], got[N];
	float *dg, *dacc, *dcopy;

	assert_string_equal(llm_model_backend(m), backend);
	assert_int_equal(llm_model_host_memory(m), flags == 0);
	for (int i = 0; i < N; i++) {
		g[i] = (float)((i * 37) % 101) / 7.0f - 5.0f;
		acc[i] = (float)(i % 13) * 0.1f;
		want[i] = acc[i] + 0.3f * g[i];
	}
	assert_int_equal(llm_model_state_alloc(m, N, &dg), LLM_OK);
	assert_int_equal(llm_model_state_alloc(m, N, &dacc), LLM_OK);
	assert_int_equal(llm_model_state_alloc(m, N, &dcopy), LLM_OK);
	assert_int_equal(llm_model_state_download(m, got, dacc, N), LLM_OK);
	for (int i = 0; i < N; i++)
		assert_true(got[i] == 0.0f); /* allocations start zeroed */
	assert_int_equal(llm_model_state_upload(m, dg, g, N), LLM_OK);
	assert_int_equal(llm_model_state_upload(m, dacc, acc, N), LLM_OK);
	assert_int_equal(llm_model_state_accumulate(m, dacc, dg, 0.3f, N), LLM_OK);
	assert_int_equal(llm_model_state_copy(m, dcopy, dacc, N), LLM_OK);
	assert_int_equal(llm_model_state_zero(m, dacc, N), LLM_OK);
	assert_int_equal(llm_model_state_download(m, got, dcopy, N), LLM_OK);
	assert_memory_equal(got, want, sizeof(got));
	assert_int_equal(llm_model_state_download(m, got, dacc, N), LLM_OK);
	for (int i = 0; i < N; i++)
		assert_true(got[i] == 0.0f);
	llm_model_state_free(m, dg);
	assert_int_equal(llm_model_state_alloc(m, SIZE_MAX / 2, &dg), LLM_ETOOLARGE);
	assert_null(dg);
	llm_model_state_free(m, dacc);
	llm_model_state_free(m, dcopy);
	llm_model_destroy(m);
}

static void test_model_state_memory_ops_on_the_cpu(void **state)
{
	(void)state;
	memory_ops(0, "cpu");
}

static void test_model_state_memory_ops_on_staged_memory(void **state)
{
	(void)state;
	memory_ops(LLM_MODEL_STAGED, "cpu-staged");
}

/* Staged memory is the CPU's stand-in for a device: never with CUDA. */
static void test_model_state_staged_is_not_combined_with_cuda(void **state)
{
	struct llm_model_config c;
	llm_model *m = NULL;

	(void)state;
	llm_model_config_default(&c, LLM_ARCH_GPT2);
	assert_int_equal(llm_model_new(&c, 1, 8, LLM_MODEL_STAGED | LLM_MODEL_CUDA, 1, &m),
			 LLM_EINVAL);
	assert_null(m);
	assert_non_null(strstr(llm_last_error(), "LLM_MODEL_STAGED"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_state_full_resume_is_exact),
		cmocka_unit_test(test_model_state_lora_resume_with_dropout_is_exact),
		cmocka_unit_test(test_model_state_lora_state_is_the_adapters),
		cmocka_unit_test(test_model_state_eval_is_the_dropout_free_loss),
		cmocka_unit_test(test_model_state_memory_ops_on_the_cpu),
		cmocka_unit_test(test_model_state_memory_ops_on_staged_memory),
		cmocka_unit_test(test_model_state_staged_is_not_combined_with_cuda),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
