/* The golden model checks (tests/unit/model_golden.h) with the models on a
 * backend table that claims not to have host memory: the CPU kernels, but
 * every host read and write of a model buffer staged through the copies a
 * device backend uses (llm_ops_host_view/_buffer/_commit, token uploads).
 * A host access that skips a commit or reads a stale stage shows up here as
 * a parity failure, on machines without a GPU. Tolerances: the CPU's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "model_golden.h"
#include "tmpdir.h"

#include "../../kernels/models/model_internal.h"

static struct llm_ops staged;

/* Moves a freshly loaded CPU model onto the staged table; its buffers were
 * calloc'd, which the staged table frees the same way. */
static void use_staged(llm_model *m)
{
	assert_true(m->ops == &llm_ops_cpu);
	m->ops = &staged;
}

static int setup(void **state)
{
	staged = llm_ops_cpu;
	staged.name = "cpu-staged";
	staged.host_memory = false;
	golden_prepare = use_staged;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpt2_parity_through_host_staging),
		cmocka_unit_test(test_llama_parity_through_host_staging),
	};

	return cmocka_run_group_tests(tests, setup, remove_tmpdir);
}
