/* Model backends (kernels/models/llm_ops.h) on machines without a GPU.
 *
 * The golden model checks (tests/unit/model_golden.h) and the BERT
 * embedder's (tests/unit/embedder_golden.h) run on llm_ops_cpu_staged
 * (LLM_MODEL_STAGED, LLM_EMBEDDER_STAGED): the CPU kernels behind a table that
 * claims not to have host memory, so every host read and write of a model
 * buffer is staged through the copies a device backend uses
 * (llm_ops_host_view/_buffer/_commit, token and length uploads, embedding
 * downloads). A host access that skips a commit or reads a stale stage
 * shows up here as a parity failure. Tolerances: the CPU's. And a program
 * built without CUDA refuses LLM_MODEL_CUDA and LLM_EMBEDDER_CUDA instead
 * of running elsewhere, and every build refuses LLM_MODEL_BF16 without
 * LLM_MODEL_CUDA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "embedder_golden.h"
#include "model_golden.h"
#include "tmpdir.h"

static int setup(void **state)
{
	golden_flags = LLM_MODEL_STAGED;
	emb_golden_flags = LLM_EMBEDDER_STAGED;
	return make_tmpdir(state);
}

static void test_gpt2_parity_through_host_staging(void **state)
{
	(void)state;
	check_logits_and_loss("gpt2");
	check_gradients("gpt2");
	check_full_training("gpt2");
	check_lora_training("gpt2", tmpdir);
	check_greedy("gpt2");
	check_kv_cache("gpt2");
}

static void test_llama_parity_through_host_staging(void **state)
{
	(void)state;
	check_logits_and_loss("llama");
	check_gradients("llama");
	check_lora_training("llama", tmpdir);
	check_greedy("llama_tied");
	check_kv_cache("llama_tied");
}

static void test_bert_parity_through_host_staging(void **state)
{
	(void)state;
	check_embedder_tiny();
	check_embedder_minilm();
	check_embedder_minilm_batch();
}

/* A one-layer GPT-2 small enough to create in a flash. */
static void tiny_config(struct llm_model_config *c)
{
	llm_model_config_default(c, LLM_ARCH_GPT2);
	c->vocab_size = 50;
	c->max_pos = 8;
	c->n_layer = 1;
	c->n_head = 2;
	c->d_model = 8;
}

/* This binary links no CUDA objects: the weak llm_ops_cuda() answers. */
static void test_cuda_flag_without_cuda_is_unsupported(void **state)
{
	struct llm_model_config c;
	llm_model *m = (llm_model *)1;

	(void)state;
	tiny_config(&c);
	assert_int_equal(llm_model_new(&c, 1, 8, LLM_MODEL_CUDA, 1, &m), LLM_EUNSUPPORTED);
	assert_null(m);
	assert_non_null(strstr(llm_last_error(), "built without CUDA"));
	assert_int_equal(llm_model_new(&c, 1, 8, 0, 1, &m), LLM_OK);
	llm_model_destroy(m);
}

/* bf16 matmuls exist only on CUDA: the CPU refuses the flag on its own, and
 * with LLM_MODEL_CUDA this binary answers as for LLM_MODEL_CUDA alone. */
static void test_bf16_flag_is_cuda_only(void **state)
{
	struct llm_model_config c;
	llm_model *m = (llm_model *)1;

	(void)state;
	tiny_config(&c);
	assert_int_equal(llm_model_new(&c, 1, 8, LLM_MODEL_BF16, 1, &m), LLM_EUNSUPPORTED);
	assert_null(m);
	assert_non_null(strstr(llm_last_error(), "LLM_MODEL_BF16 needs LLM_MODEL_CUDA"));
	m = (llm_model *)1;
	assert_int_equal(llm_model_new(&c, 1, 8, LLM_MODEL_CUDA | LLM_MODEL_BF16, 1, &m),
			 LLM_EUNSUPPORTED);
	assert_null(m);
	assert_non_null(strstr(llm_last_error(), "built without CUDA"));
}

static void test_embedder_cuda_flag_without_cuda_is_unsupported(void **state)
{
	llm_embedder *e = (llm_embedder *)1;

	(void)state;
	assert_int_equal(llm_embedder_load(EMB_TINY "model", 1, 8, LLM_EMBEDDER_CUDA, &e),
			 LLM_EUNSUPPORTED);
	assert_null(e);
	assert_non_null(strstr(llm_last_error(), "built without CUDA"));
	assert_int_equal(llm_embedder_load(EMB_TINY "model", 1, 8, 4, &e), LLM_EINVAL);
	assert_null(e);
	assert_int_equal(llm_embedder_load(EMB_TINY "model", 1, 8, 0, &e), LLM_OK);
	llm_embedder_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cuda_flag_without_cuda_is_unsupported),
		cmocka_unit_test(test_bf16_flag_is_cuda_only),
		cmocka_unit_test(test_embedder_cuda_flag_without_cuda_is_unsupported),
		cmocka_unit_test(test_bert_parity_through_host_staging),
		cmocka_unit_test(test_gpt2_parity_through_host_staging),
		cmocka_unit_test(test_llama_parity_through_host_staging),
	};

	return cmocka_run_group_tests(tests, setup, remove_tmpdir);
}
