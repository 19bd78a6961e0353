/* Unit tests for how coll.c drives a backend that also runs at world size 1
 * (as the NCCL backend does), without CUDA: this file defines the strong
 * coll_nccl that coll.c refers to weakly, as a recording stand-in. Checked:
 * the rendezvous runs for one rank (on a free port when none is given) and
 * hands rank 0's bootstrap blob to connect(); every operation reaches the
 * backend; mean uses the backend's own hook instead of dividing on the host;
 * a failing operation breaks the communicator; destroy frees the state. The
 * real NCCL backend is checked by tests/cuda/test_nccl.cu on a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "llmops_collectives.h"
#include "../../kernels/collectives/coll_backend.h"

#define BLOB "bootstrap-id"

/* What the stand-in saw. */
static struct {
	int prepared, destroyed, sums, means, scatters, gathers, broadcasts, barriers;
	char blob[64];
	llm_err fail_with; /* returned by the next operation, then cleared */
} seen;

static int state_token;

static llm_err fake_prepare(void **state, const struct llm_coll_config *cfg, int *data_port,
			    void *blob, size_t *blob_len)
{
	seen.prepared++;
	*state = &state_token;
	*data_port = 0;
	*blob_len = 0;
	if (cfg->rank == 0) {
		memcpy(blob, BLOB, sizeof(BLOB));
		*blob_len = sizeof(BLOB);
	}
	return LLM_OK;
}

static llm_err fake_connect(void *state, struct rdzv *r, double deadline)
{
	size_t len;
	const char *blob = rdzv_blob(r, &len);

	(void)state;
	(void)deadline;
	if (len <= sizeof(seen.blob))
		memcpy(seen.blob, blob, len);
	return LLM_OK;
}

/* Counts the call and returns the armed failure, if any. */
static llm_err count(int *counter)
{
	llm_err err = seen.fail_with;

	(*counter)++;
	seen.fail_with = LLM_OK;
	return err == LLM_OK ? LLM_OK : llm_fail(err, "stand-in failure");
}

static llm_err fake_sum(void *state, float *buf, size_t n)
{
	(void)state;
	(void)buf;
	(void)n;
	return count(&seen.sums);
}

static llm_err fake_mean(void *state, float *buf, size_t n)
{
	(void)state;
	(void)buf;
	(void)n;
	return count(&seen.means);
}

static llm_err fake_scatter(void *state, float *buf, size_t n)
{
	(void)state;
	(void)buf;
	(void)n;
	return count(&seen.scatters);
}

static llm_err fake_gather(void *state, float *buf, size_t n)
{
	(void)state;
	(void)buf;
	(void)n;
	return count(&seen.gathers);
}

static llm_err fake_broadcast(void *state, void *buf, size_t nbytes, int root)
{
	(void)state;
	(void)buf;
	(void)nbytes;
	(void)root;
	return count(&seen.broadcasts);
}

static llm_err fake_barrier(void *state)
{
	(void)state;
	return count(&seen.barriers);
}

static void fake_destroy(void *state)
{
	assert_ptr_equal(state, &state_token);
	seen.destroyed++;
}

const struct coll_backend coll_nccl = {
	.name = "nccl",
	.single_rank = true,
	.prepare = fake_prepare,
	.connect = fake_connect,
	.all_reduce_sum = fake_sum,
	.all_reduce_mean = fake_mean,
	.reduce_scatter_sum = fake_scatter,
	.all_gather = fake_gather,
	.broadcast = fake_broadcast,
	.barrier = fake_barrier,
	.destroy = fake_destroy,
};

static struct llm_coll *open_one_rank(void)
{
	struct llm_coll_config cfg = {.backend = "nccl", .world_size = 1, .timeout_s = 5};
	struct llm_coll *c = NULL;

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_OK);
	assert_non_null(c);
	return c;
}

static void test_one_rank_runs_the_rendezvous_and_hands_over_the_blob(void **state)
{
	struct llm_coll *c;

	(void)state;
	c = open_one_rank();
	assert_int_equal(seen.prepared, 1);
	assert_string_equal(seen.blob, BLOB);
	llm_coll_destroy(c);
	assert_int_equal(seen.destroyed, 1);
}

static void test_one_rank_operations_reach_the_backend(void **state)
{
	float buf[4] = {1, 2, 3, 4};
	struct llm_coll *c;

	(void)state;
	c = open_one_rank();
	assert_int_equal(llm_coll_all_reduce_sum(c, buf, 4), LLM_OK);
	assert_int_equal(llm_coll_reduce_scatter_sum(c, buf, 4), LLM_OK);
	assert_int_equal(llm_coll_all_gather(c, buf, 4), LLM_OK);
	assert_int_equal(llm_coll_broadcast(c, buf, sizeof(buf), 0), LLM_OK);
	assert_int_equal(llm_coll_barrier(c), LLM_OK);
	assert_true(seen.sums == 1 && seen.scatters == 1 && seen.gathers == 1 &&
		    seen.broadcasts == 1 && seen.barriers == 1);
	llm_coll_destroy(c);
}

/* Device buffers must not be touched on the host: mean is the backend's. */
static void test_mean_uses_the_backend_hook(void **state)
{
	float buf[2] = {3, 5};
	struct llm_coll *c;

	(void)state;
	c = open_one_rank();
	assert_int_equal(llm_coll_all_reduce_mean(c, buf, 2), LLM_OK);
	assert_int_equal(seen.means, 1);
	assert_int_equal(seen.sums, 0);
	assert_true(buf[0] == 3 && buf[1] == 5);
	llm_coll_destroy(c);
}

static void test_failed_operation_breaks_the_communicator(void **state)
{
	float buf[1] = {0};
	struct llm_coll *c;

	(void)state;
	c = open_one_rank();
	seen.fail_with = LLM_EIO;
	assert_int_equal(llm_coll_all_reduce_mean(c, buf, 1), LLM_EIO);
	assert_int_equal(llm_coll_barrier(c), LLM_ECANCELED);
	assert_non_null(strstr(llm_last_error(), "stand-in failure"));
	assert_int_equal(seen.barriers, 0);
	llm_coll_destroy(c);
}

static void test_auto_is_cpu_until_the_cuda_backend_is_chosen(void **state)
{
	struct llm_coll_config cfg = {.backend = "auto", .world_size = 1};
	struct llm_coll *c = NULL;

	(void)state;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(llm_coll_new(&cfg, &c), LLM_OK);
	assert_int_equal(seen.prepared, 0); /* llm_backend_current() is the CPU */
	llm_coll_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_rank_runs_the_rendezvous_and_hands_over_the_blob),
		cmocka_unit_test(test_one_rank_operations_reach_the_backend),
		cmocka_unit_test(test_mean_uses_the_backend_hook),
		cmocka_unit_test(test_failed_operation_breaks_the_communicator),
		cmocka_unit_test(test_auto_is_cpu_until_the_cuda_backend_is_chosen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
