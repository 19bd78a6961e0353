/* Unit tests for the backend probe (kernels/cpu/backend.c) in a build
 * without the CUDA objects: the weak cuda_device_init() stub answers, so the
 * probe must pick the CPU and say why. The CUDA side of the probe is checked
 * by tests/cuda/test_cuda_kernels.cu on a GPU machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "llmops_kernels.h"

static void test_backend_without_cuda_picks_cpu_and_says_why(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(llm_backend_current(), LLM_BACKEND_CPU);
	assert_int_equal(llm_backend_select(0, why, sizeof(why)), LLM_BACKEND_CPU);
	assert_non_null(strstr(why, "backend: cpu"));
	assert_non_null(strstr(why, "built without CUDA"));
	assert_int_equal(llm_backend_current(), LLM_BACKEND_CPU);
}

static void test_backend_stub_device_init_is_unsupported(void **state)
{
	char desc[16] = "unchanged";

	(void)state;
	assert_int_equal(cuda_device_init(0, desc, sizeof(desc)), LLM_EUNSUPPORTED);
	assert_string_equal(desc, "");
}

static void test_backend_accepts_no_or_short_buffers(void **state)
{
	char why[8];

	(void)state;
	assert_int_equal(llm_backend_select(0, NULL, 0), LLM_BACKEND_CPU);
	assert_int_equal(llm_backend_select(0, why, sizeof(why)), LLM_BACKEND_CPU);
	assert_int_equal(strlen(why), sizeof(why) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_without_cuda_picks_cpu_and_says_why),
		cmocka_unit_test(test_backend_stub_device_init_is_unsupported),
		cmocka_unit_test(test_backend_accepts_no_or_short_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
