/* The collectives communicator: config checks, the backend table and the
 * choice of "auto", world size 1, and the broken state after a failure.
 *
 * The NCCL backend lives in a .cu file that only CUDA programs link, so it is
 * referred to weakly: in a program without it, &coll_nccl is NULL and asking
 * for "nccl" fails with a message that says so.
 *
 * Design limit: one communicator per job per process; a failed collective
 * cannot be retried on the same communicator (the byte streams between the
 * ranks are out of step), so it is marked broken and must be rebuilt. */
#include "llmops_collectives.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll_backend.h"
#include "llmops_kernels.h"
#include "net.h"
#include "rendezvous.h"

/* NULL (the address of an undefined weak symbol) without the CUDA objects */
extern const struct coll_backend coll_nccl __attribute__((weak));

struct llm_coll {
	int rank, world;
	const struct coll_backend *be;
	bool joined; /* the backend runs the operations (else world 1: nothing to do) */
	void *state;
	struct rdzv *rdzv;
	bool broken;
	char why[512]; /* the failure that broke it */
};

/* The backend named by cfg ("auto" resolved), or NULL with an error recorded. */
static const struct coll_backend *find_backend(const struct llm_coll_config *cfg)
{
	const char *name = cfg->backend ? cfg->backend : "cpu";
	const struct coll_backend *nccl = &coll_nccl;

	if (strcmp(name, "auto") == 0)
		name = nccl && llm_backend_current() == LLM_BACKEND_CUDA ? "nccl" : "cpu";
	if (strcmp(name, "cpu") == 0)
		return &coll_cpu_ring;
	if (strcmp(name, "nccl") == 0 && nccl)
		return nccl;
	if (strcmp(name, "nccl") == 0)
		llm_fail(LLM_EUNSUPPORTED,
			 "collectives: backend \"nccl\" is not in this program: it was built "
			 "without the CUDA objects (kernels/collectives/nccl.cu); use \"cpu\"");
	else
		llm_fail(LLM_EUNSUPPORTED,
			 "collectives: no backend \"%s\" in this build (cpu, nccl, auto)", name);
	return NULL;
}

static llm_err check_config(const struct llm_coll_config *cfg)
{
	const char *job = cfg->job_id ? cfg->job_id : "";

	if (cfg->world_size < 1 || cfg->world_size > LLM_COLL_MAX_WORLD)
		return llm_fail(LLM_EINVAL, "collectives: world size %d is not in 1..%d",
				cfg->world_size, LLM_COLL_MAX_WORLD);
	if (cfg->rank < 0 || cfg->rank >= cfg->world_size)
		return llm_fail(LLM_EINVAL, "collectives: rank %d is not in 0..%d", cfg->rank,
				cfg->world_size - 1);
	if (strlen(job) > LLM_COLL_MAX_JOB_ID)
		return llm_fail(LLM_ETOOLARGE, "collectives: job id is over %d bytes",
				LLM_COLL_MAX_JOB_ID);
	if (cfg->world_size > 1 && (!cfg->master_addr || !cfg->master_addr[0]))
		return llm_fail(LLM_EINVAL, "collectives: no master address");
	if (cfg->world_size > 1 && (cfg->master_port < 1 || cfg->master_port > 65535))
		return llm_fail(LLM_EINVAL, "collectives: master port %d is not in 1..65535",
				cfg->master_port);
	if (cfg->master_port < 0 || cfg->master_port > 65535)
		return llm_fail(LLM_EINVAL, "collectives: master port %d is not in 0..65535",
				cfg->master_port);
	return LLM_OK;
}

/* Prepares the backend, runs the rendezvous and connects. */
static llm_err join(struct llm_coll *c, const struct llm_coll_config *cfg)
{
	/* the bootstrap data comes from rank 0's backend; rdzv_run copies it */
	unsigned char *blob = c->rank == 0 ? malloc(LLM_COLL_MAX_BLOB) : NULL;
	struct rdzv_config rc = {.rank = c->rank,
				 .world = c->world,
				 .master_addr = cfg->master_addr,
				 .master_port = cfg->master_port,
				 .job_id = cfg->job_id ? cfg->job_id : "",
				 .backend = c->be->name,
				 .blob = blob};
	llm_err err;

	if (c->rank == 0 && !blob)
		return llm_fail(LLM_ENOMEM, "collectives: out of memory");
	rc.timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : LLM_COLL_DEFAULT_TIMEOUT_S;
	rc.deadline = net_now() + rc.timeout_s;
	err = c->be->prepare(&c->state, cfg, &rc.data_port, blob, &rc.blob_len);
	if (err == LLM_OK)
		err = rdzv_run(&rc, &c->rdzv);
	free(blob);
	if (err == LLM_OK)
		err = c->be->connect(c->state, c->rdzv, rc.deadline);
	return err;
}

llm_err llm_coll_new(const struct llm_coll_config *cfg, struct llm_coll **out)
{
	const struct coll_backend *be;
	struct llm_coll *c;
	llm_err err;

	*out = NULL;
	err = check_config(cfg);
	if (err != LLM_OK)
		return err;
	be = find_backend(cfg);
	if (!be)
		return LLM_EUNSUPPORTED;
	c = calloc(1, sizeof(*c));
	if (!c)
		return llm_fail(LLM_ENOMEM, "collectives: out of memory");
	c->rank = cfg->rank;
	c->world = cfg->world_size;
	c->be = be;
	c->joined = c->world > 1 || be->single_rank;
	if (c->joined && (err = join(c, cfg)) != LLM_OK) {
		llm_coll_destroy(c);
		return err;
	}
	*out = c;
	return LLM_OK;
}

/* Reads the environment variable name as an int in [lo, hi]. */
static llm_err env_int(const char *name, long lo, long hi, int *out)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return llm_fail(LLM_EINVAL, "collectives: %s is not set", name);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return llm_fail(LLM_EINVAL, "collectives: %s=\"%s\" is not an integer in %ld..%ld",
				name, s, lo, hi);
	*out = (int)v;
	return LLM_OK;
}

llm_err llm_coll_config_from_env(struct llm_coll_config *cfg)
{
	llm_err err;

	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = getenv("LLMOPS_COLL_BACKEND");
	cfg->job_id = getenv("LLMOPS_JOB_ID");
	cfg->master_addr = getenv("LLMOPS_MASTER_ADDR");
	err = env_int("LLMOPS_WORLD_SIZE", 1, LLM_COLL_MAX_WORLD, &cfg->world_size);
	if (err == LLM_OK)
		err = env_int("LLMOPS_RANK", 0, cfg->world_size - 1, &cfg->rank);
	if (err == LLM_OK && cfg->world_size > 1)
		err = env_int("LLMOPS_MASTER_PORT", 1, 65535, &cfg->master_port);
	if (err == LLM_OK && cfg->world_size > 1 && (!cfg->master_addr || !*cfg->master_addr))
		err = llm_fail(LLM_EINVAL, "collectives: LLMOPS_MASTER_ADDR is not set");
	return err;
}

void llm_coll_destroy(struct llm_coll *c)
{
	if (!c)
		return;
	if (c->state)
		c->be->destroy(c->state);
	rdzv_destroy(c->rdzv);
	free(c);
}

int llm_coll_rank(const struct llm_coll *c)
{
	return c->rank;
}

int llm_coll_world_size(const struct llm_coll *c)
{
	return c->world;
}

const char *llm_coll_backend(const struct llm_coll *c)
{
	return c->be->name;
}

void llm_coll_shard(size_t n, int world_size, int rank, size_t *offset, size_t *count)
{
	size_t chunk = (n + (size_t)world_size - 1) / (size_t)world_size;
	size_t lo = chunk * (size_t)rank, hi = lo + chunk;

	lo = lo < n ? lo : n;
	hi = hi < n ? hi : n;
	*offset = lo;
	*count = hi - lo;
}

/* LLM_OK when an operation may run on c with a buffer of size n. */
static llm_err usable(struct llm_coll *c, const char *op, const void *buf, size_t n)
{
	if (c->broken)
		return llm_fail(LLM_ECANCELED,
				"%s: the communicator is broken by an earlier failure: %s", op,
				c->why);
	if (n && !buf)
		return llm_fail(LLM_EINVAL, "%s: NULL buffer of %zu elements", op, n);
	return LLM_OK;
}

/* Marks c broken when err is a failure of a started operation. */
static llm_err done(struct llm_coll *c, llm_err err)
{
	if (err != LLM_OK) {
		c->broken = true;
		snprintf(c->why, sizeof(c->why), "%s", llm_last_error());
	}
	return err;
}

llm_err llm_coll_all_reduce_sum(struct llm_coll *c, float *buf, size_t n)
{
	llm_err err = usable(c, "all_reduce_sum", buf, n);

	if (err != LLM_OK || !c->joined)
		return err;
	return done(c, c->be->all_reduce_sum(c->state, buf, n));
}

llm_err llm_coll_all_reduce_mean(struct llm_coll *c, float *buf, size_t n)
{
	llm_err err;
	float w = (float)c->world;

	if (c->joined && c->be->all_reduce_mean) {
		err = usable(c, "all_reduce_mean", buf, n);
		return err != LLM_OK ? err : done(c, c->be->all_reduce_mean(c->state, buf, n));
	}
	err = llm_coll_all_reduce_sum(c, buf, n);
	for (size_t i = 0; err == LLM_OK && c->world > 1 && i < n; i++)
		buf[i] /= w;
	return err;
}

llm_err llm_coll_broadcast(struct llm_coll *c, void *buf, size_t nbytes, int root)
{
	llm_err err = usable(c, "broadcast", buf, nbytes);

	if (err == LLM_OK && (root < 0 || root >= c->world))
		err = llm_fail(LLM_EINVAL, "broadcast: root %d is not in 0..%d", root,
			       c->world - 1);
	if (err != LLM_OK || !c->joined)
		return err;
	return done(c, c->be->broadcast(c->state, buf, nbytes, root));
}

llm_err llm_coll_barrier(struct llm_coll *c)
{
	llm_err err = usable(c, "barrier", NULL, 0);

	if (err != LLM_OK || !c->joined)
		return err;
	return done(c, c->be->barrier(c->state));
}

llm_err llm_coll_reduce_scatter_sum(struct llm_coll *c, float *buf, size_t n)
{
	llm_err err = usable(c, "reduce_scatter_sum", buf, n);

	if (err != LLM_OK || !c->joined)
		return err;
	return done(c, c->be->reduce_scatter_sum(c->state, buf, n));
}

llm_err llm_coll_all_gather(struct llm_coll *c, float *buf, size_t n)
{
	llm_err err = usable(c, "all_gather", buf, n);

	if (err != LLM_OK || !c->joined)
		return err;
	return done(c, c->be->all_gather(c->state, buf, n));
}
