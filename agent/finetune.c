/* The finetune role: reads a FineTuneJob (from the cluster or a file),
 * loads the base model, its tokenizer and the dataset, and trains full
 * weights or a LoRA adapter with AdamW on this data-parallel rank. Every
 * rank computes gradients on its shard of each global batch; the token-
 * weighted gradients are summed across ranks before the optimizer step, so
 * every rank holds the same weights. Rank 0 writes checkpoints, the output
 * and the status. A restarted run resumes from the newest valid checkpoint
 * and continues exactly where it stopped. docs/finetune.md describes the
 * behaviour; design limit: one model replica, on the CPU or one GPU, per
 * rank. */
#include "finetune.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "kc_client.h"
#include "kc_config.h"
#include "kc_events.h"
#include "llm_json.h"
#include "llm_log.h"
#include "llm_safetensors.h"
#include "llm_time.h"
#include "llm_tokenizer.h"
#include "llmops_collectives.h"
#include "llmops_kernels.h"
#include "llmops_model.h"
#include "replica.h"
#include "schedule.h"
#include "status.h"
#include "uri.h"

#define PATH_CAP      4096
#define OPTIM_FILE    "optimizer.safetensors"
#define CKPT_SUBDIR   "checkpoints"
#define PROGRESS_MS   1000
#define COUNT_SPLIT   65536.0f /* token counts travel as hi/lo floats, exact below 2^40 */
#define TERM_LOG_PATH "/dev/termination-log"

/* Set by SIGTERM/SIGINT: every rank stops after the step in progress (the
 * flag is summed across ranks with the step's loss, so all ranks stop at
 * the same step). */
static volatile sig_atomic_t stop_requested;

static const struct kc_gvr FTJ_GVR = {"llmops.dev", "v1alpha1", "finetunejobs", true};
static const struct kc_gvr PV_GVR = {"llmops.dev", "v1alpha1", "promptversions", true};

/* The job's spec, with the CRD's defaults filled in. */
struct ft_spec {
	const char *base_uri, *train_uri, *val_uri, *out_uri;
	char base[PATH_CAP], train[PATH_CAP], val[PATH_CAP], out[PATH_CAP];
	struct ds_config data; /* spec.dataset and the lengths, as the dataset reads them */
	const char *prompt_name;
	bool lora;
	struct llm_lora_config lcfg;
	long long epochs, max_steps, gbs, mbs, seq, warmup, seed, interval, keep;
	double lr, wd, clip;
	enum sched_kind sched;
	bool bf16; /* hyperparameters.precision: bf16 matmuls on a GPU */
};

struct ft_run {
	const struct agent_job *job;
	json_t *object; /* the FineTuneJob (owned) */
	struct ft_spec sp;
	json_t *prompt; /* the PromptVersion, or NULL */
	kc_config *kcfg;
	kc_http *h;
	agent_status *status;
	llm_tok *tok;
	ds_dataset *ds;
	llm_model *m;
	struct llm_coll *coll;
	int rank, world, accum;
	ds_cursor *cur;
	unsigned model_flags; /* the backend: 0 (CPU), LLM_MODEL_CUDA or LLM_MODEL_STAGED */
	struct replica rp;    /* the trainable state and its moves across ranks */
	size_t *idx;	      /* this rank's sequence indices of one step */
	size_t *counts;	      /* loss tokens of each micro batch of the step */
	int *ids, *labels;    /* accum micro batches (mbs, seq) */
	long long step, total, spe;
	char ckroot[PATH_CAP], ckuri[PATH_CAP];
	double eval_loss, last_loss, loss_sum;
	long loss_n;
	long long step0;
	uint64_t t0_ms, last_progress_ms;
	bool dataerr; /* the failure is in the input: exit FT_EXIT_DATAERR */
	bool stop;    /* some rank was asked to stop */
};

/* Fails with code and the detail "<fmt ...>: <the current detail>". */
/* ---- spec ---- */

static llm_err bad_input(struct ft_run *r, llm_err rc)
{
	r->dataerr = true;
	return rc;
}

/* spec.<path> as an integer in [min, max], def when absent. */
static llm_err spec_int(json_t *spec, const char *path, long long def, long long min, long long max,
			long long *out)
{
	json_int_t v;
	llm_err rc = llm_json_get_int(spec, path, &v);

	if (rc == LLM_ENOTFOUND) {
		*out = def;
		return LLM_OK;
	}
	if (rc)
		return llm_wrap(rc, "spec.%s", path);
	if (v < min || v > max)
		return llm_fail(LLM_EINVAL, "spec.%s: %lld is outside [%lld, %lld]", path,
				(long long)v, min, max);
	*out = v;
	return LLM_OK;
}

static llm_err spec_num(json_t *spec, const char *path, double def, double min, double max,
			double *out)
{
	llm_err rc = llm_json_get_num(spec, path, out);

	if (rc == LLM_ENOTFOUND) {
		*out = def;
		return LLM_OK;
	}
	if (rc)
		return llm_wrap(rc, "spec.%s", path);
	if (!(*out >= min && *out <= max))
		return llm_fail(LLM_EINVAL, "spec.%s: %g is outside [%g, %g]", path, *out, min,
				max);
	return LLM_OK;
}

/* A URI field mapped to a local path; required fields fail when absent. */
static llm_err spec_uri(json_t *spec, const char *path, bool required, const char **uri, char *buf)
{
	*uri = llm_json_str_or(spec, path, NULL);
	buf[0] = '\0';
	if (!*uri)
		return required ? llm_fail(LLM_EINVAL, "spec.%s is required", path) : LLM_OK;
	if (uri_to_path(*uri, buf, PATH_CAP))
		return llm_wrap(LLM_EINVAL, "spec.%s", path);
	return LLM_OK;
}

static llm_err parse_lora(json_t *spec, struct ft_spec *sp)
{
	json_t *targets = json_object_get(json_object_get(spec, "lora"), "targetModules");
	double alpha, dropout;
	long long r;
	llm_err rc = spec_int(spec, "lora.r", 8, 1, 1024, &r);
	size_t i;
	json_t *t;

	if (!rc)
		rc = spec_num(spec, "lora.alpha", 8, 1e-9, 4096, &alpha);
	if (!rc)
		rc = spec_num(spec, "lora.dropout", 0, 0, 0.999999, &dropout);
	if (rc)
		return rc;
	sp->lcfg = (struct llm_lora_config){.r = (int)r,
					    .alpha = (float)alpha,
					    .dropout = (float)dropout,
					    .seed = (uint64_t)sp->seed};
	if (json_array_size(targets) > LLM_LORA_MAX_TARGETS)
		return llm_fail(LLM_EUNSUPPORTED, "spec.lora.targetModules: at most %d modules",
				LLM_LORA_MAX_TARGETS);
	json_array_foreach(targets, i, t)
	{
		const char *s = json_string_value(t);

		if (!s || strlen(s) >= sizeof(sp->lcfg.targets[0]))
			return llm_fail(LLM_EINVAL,
					"spec.lora.targetModules[%zu] is not a short "
					"module name",
					i);
		snprintf(sp->lcfg.targets[sp->lcfg.n_targets++], sizeof(sp->lcfg.targets[0]), "%s",
			 s);
	}
	return LLM_OK;
}

static llm_err parse_precision(const char *s, bool *bf16)
{
	*bf16 = !strcmp(s, "bf16");
	if (*bf16 || !strcmp(s, "fp32"))
		return LLM_OK;
	return llm_fail(LLM_EINVAL, "spec.hyperparameters.precision: \"%s\" is not fp32 or bf16",
			s);
}

static llm_err parse_hparams(json_t *spec, struct ft_spec *sp)
{
	llm_err rc = spec_int(spec, "hyperparameters.epochs", 1, 1, 1000, &sp->epochs);

	if (!rc)
		rc = spec_int(spec, "hyperparameters.maxSteps", 0, 1, INT32_MAX, &sp->max_steps);
	if (!rc)
		rc = spec_int(spec, "hyperparameters.globalBatchSize", 8, 1, 65536, &sp->gbs);
	if (!rc)
		rc = spec_int(spec, "hyperparameters.microBatchSize", 1, 1, 4096, &sp->mbs);
	if (!rc)
		rc = spec_int(spec, "hyperparameters.sequenceLength", 512, 8, 131072, &sp->seq);
	if (!rc)
		rc = spec_num(spec, "hyperparameters.learningRate", 2e-4, 1e-30, 1, &sp->lr);
	if (!rc)
		rc = sched_parse(llm_json_str_or(spec, "hyperparameters.schedule", NULL),
				 &sp->sched);
	if (!rc)
		rc = spec_int(spec, "hyperparameters.warmupSteps", 0, 0, INT32_MAX, &sp->warmup);
	if (!rc)
		rc = spec_num(spec, "hyperparameters.weightDecay", 0, 0, 1, &sp->wd);
	if (!rc)
		rc = spec_num(spec, "hyperparameters.gradClip", 1.0, 0, 1e30, &sp->clip);
	if (!rc)
		rc = spec_int(spec, "hyperparameters.seed", 42, 0, INT64_MAX, &sp->seed);
	if (!rc)
		rc = parse_precision(llm_json_str_or(spec, "hyperparameters.precision", "fp32"),
				     &sp->bf16);
	if (!rc)
		rc = spec_int(spec, "checkpoint.intervalSteps", 100, 1, INT32_MAX, &sp->interval);
	if (!rc)
		rc = spec_int(spec, "checkpoint.keep", 3, 1, 100, &sp->keep);
	return rc;
}

static llm_err parse_dataset(json_t *spec, struct ft_spec *sp)
{
	llm_err rc = spec_uri(spec, "dataset.train", true, &sp->train_uri, sp->train);

	if (!rc)
		rc = spec_uri(spec, "dataset.validation", false, &sp->val_uri, sp->val);
	if (!rc)
		rc = ds_config_from_spec(spec, &sp->data);
	if (rc)
		return rc;
	sp->data.train = sp->train;
	sp->data.validation = sp->val[0] ? sp->val : NULL;
	sp->prompt_name = llm_json_str_or(spec, "dataset.promptRef.name", NULL);
	return LLM_OK;
}

static llm_err parse_spec(json_t *object, struct ft_spec *sp)
{
	json_t *spec = json_object_get(object, "spec");
	const char *method = llm_json_str_or(spec, "method", "lora");
	llm_err rc;

	if (!json_is_object(spec))
		return llm_fail(LLM_EINVAL, "the FineTuneJob has no spec");
	rc = spec_uri(spec, "baseModel", true, &sp->base_uri, sp->base);
	if (!rc)
		rc = spec_uri(spec, "output", true, &sp->out_uri, sp->out);
	if (!rc)
		rc = parse_dataset(spec, sp);
	if (!rc)
		rc = parse_hparams(spec, sp);
	if (rc)
		return rc;
	if (strcmp(method, "lora") && strcmp(method, "full"))
		return llm_fail(LLM_EINVAL, "spec.method: '%s' is not lora or full", method);
	sp->lora = strcmp(method, "lora") == 0;
	if (!sp->lora && json_object_get(spec, "lora"))
		return llm_fail(LLM_EINVAL, "spec.lora is only allowed with spec.method lora");
	if (sp->max_steps && sp->warmup >= sp->max_steps)
		return llm_fail(LLM_EINVAL, "hyperparameters.warmupSteps must be less than "
					    "hyperparameters.maxSteps");
	return sp->lora ? parse_lora(spec, sp) : LLM_OK;
}

/* ---- inputs ---- */

static llm_err connect_cluster(struct ft_run *r)
{
	struct kc_config_opts co = {.kubeconfig = r->job->kubeconfig};
	struct kc_http_opts ho = {0};
	llm_err rc = kc_config_load(&co, &r->kcfg);

	return rc ? rc : kc_http_new(r->kcfg, &ho, &r->h);
}

/* The PromptVersion named by spec.dataset.promptRef: from the cluster, or
 * from another document of the -f file. */
static llm_err find_prompt(struct ft_run *r)
{
	const char *ns = r->job->ns ? r->job->ns : "default";
	size_t i;
	json_t *d;
	llm_err rc;

	if (!r->sp.prompt_name)
		return LLM_OK;
	if (r->h) {
		rc = kc_get(r->h, &PV_GVR, ns, r->sp.prompt_name, KC_MAIN, &r->prompt);
		if (rc)
			return llm_wrap(rc, "PromptVersion %s/%s", ns, r->sp.prompt_name);
		return LLM_OK;
	}
	json_array_foreach(r->job->docs, i, d)
	{
		if (!strcmp(llm_json_str_or(d, "kind", ""), "PromptVersion") &&
		    !strcmp(llm_json_str_or(d, "metadata.name", ""), r->sp.prompt_name)) {
			r->prompt = json_incref(d);
			return LLM_OK;
		}
	}
	return llm_fail(LLM_ENOTFOUND,
			"PromptVersion %s (spec.dataset.promptRef) is not a document of the file",
			r->sp.prompt_name);
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void catch_stop_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* The base model directory must hold a config.json: say so plainly. */
static llm_err check_base(struct ft_run *r)
{
	char path[PATH_CAP];
	struct stat st;

	if (uri_join(r->sp.base, "config.json", path, sizeof(path)))
		return LLM_ETOOLARGE;
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return llm_fail(LLM_ENOTFOUND,
				"spec.baseModel %s: %s is missing (a Hugging Face model directory "
				"holds config.json, *.safetensors and tokenizer files)",
				r->sp.base_uri, path);
	return LLM_OK;
}

static llm_err load_data(struct ft_run *r)
{
	llm_err rc = check_base(r);

	if (rc)
		return rc;
	rc = llm_tok_load(r->sp.base, &r->tok);
	if (rc)
		return llm_wrap(rc, "base model %s: no usable tokenizer", r->sp.base_uri);
	r->sp.data.prompt = r->prompt ? json_object_get(r->prompt, "spec") : NULL;
	return ds_load(&r->sp.data, r->tok, &r->ds);
}

/* PEFT's default targets for the family: the attention projections. */
static void default_targets(enum llm_arch arch, struct llm_lora_config *c)
{
	static const char *const gpt2[] = {"c_attn"}, *const llama[] = {"q_proj", "v_proj"};
	const char *const *t = arch == LLM_ARCH_GPT2 ? gpt2 : llama;

	c->n_targets = arch == LLM_ARCH_GPT2 ? 1 : 2;
	for (int i = 0; i < c->n_targets; i++)
		snprintf(c->targets[i], sizeof(c->targets[i]), "%s", t[i]);
}

/* Loads dir (the base model, or a full checkpoint) and checks it fits the
 * job: sequence length within its positions, the tokenizer's ids in its
 * vocabulary. */
static llm_err load_model(struct ft_run *r, const char *dir)
{
	const struct llm_model_config *c;
	llm_err rc = llm_model_load(dir, (int)r->sp.mbs, (int)r->sp.seq, r->model_flags, &r->m);

	if (rc)
		return llm_wrap(rc, "spec.baseModel %s (sequenceLength %lld, microBatchSize %lld)",
				r->sp.base_uri, r->sp.seq, r->sp.mbs);
	c = llm_model_get_config(r->m);
	if (c->arch == LLM_ARCH_GPT2 && r->sp.seq > c->max_pos)
		return llm_fail(
			LLM_EINVAL,
			"base model %s: sequenceLength %lld is longer than its %d positions", dir,
			r->sp.seq, c->max_pos);
	if (llm_tok_vocab_size(r->tok) > (size_t)c->vocab_size)
		return llm_fail(
			LLM_EINVAL,
			"base model %s: the tokenizer has %zu ids, the model's vocabulary %d", dir,
			llm_tok_vocab_size(r->tok), c->vocab_size);
	if (r->sp.lora && r->sp.lcfg.n_targets == 0)
		default_targets(c->arch, &r->sp.lcfg);
	if (r->sp.lora) {
		rc = llm_model_lora_add(r->m, &r->sp.lcfg);
		if (rc)
			return llm_wrap(rc, "spec.lora");
	}
	return LLM_OK;
}

/* ---- layout of the run ---- */

static llm_err plan(struct ft_run *r)
{
	long long per_rank = r->sp.mbs * r->world;
	struct ds_shard sh;
	struct ds_pos pos;
	size_t n;

	if (r->sp.gbs % per_rank)
		return llm_fail(LLM_EINVAL,
				"hyperparameters.globalBatchSize %lld is not a multiple of "
				"microBatchSize %lld x %d ranks",
				r->sp.gbs, r->sp.mbs, r->world);
	r->accum = (int)(r->sp.gbs / per_rank);
	r->spe = (long long)ds_steps_per_epoch(r->ds, (size_t)r->sp.gbs);
	if (r->spe < 1)
		return llm_fail(LLM_EINVAL,
				"the training set has %zu sequences of %lld tokens, fewer than one "
				"global batch of %lld",
				ds_num_sequences(r->ds, DS_TRAIN), r->sp.seq, r->sp.gbs);
	r->total = r->spe * r->sp.epochs;
	if (r->sp.max_steps && r->sp.max_steps < r->total)
		r->total = r->sp.max_steps;
	sh = (struct ds_shard){(size_t)r->sp.gbs, (size_t)r->sp.mbs, (size_t)r->world,
			       (size_t)r->rank};
	pos = (struct ds_pos){(uint64_t)(r->step / r->spe), (uint64_t)(r->step % r->spe)};
	n = (size_t)(r->accum * r->sp.mbs);
	r->idx = calloc(n, sizeof(*r->idx));
	r->counts = calloc((size_t)r->accum, sizeof(*r->counts));
	r->ids = calloc(n * (size_t)r->sp.seq, sizeof(int));
	r->labels = calloc(n * (size_t)r->sp.seq, sizeof(int));
	if (!r->idx || !r->counts || !r->ids || !r->labels)
		return llm_fail(LLM_ENOMEM, "out of memory for the batch buffers");
	return ds_cursor_new(r->ds, &sh, pos, &r->cur);
}

/* ---- checkpoints ---- */

/* A JSON number, or null for NaN and infinities (JSON has neither). */
static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *trainer_state(struct ft_run *r)
{
	struct llm_model_counters k;
	struct ds_pos pos = ds_cursor_pos(r->cur);
	char now[40];

	llm_model_get_counters(r->m, &k);
	llm_micro_time(now, sizeof(now));
	return json_pack("{s:I, s:I, s:f, s:{s:I, s:I}, s:i, s:I, s:o, s:o, s:s, s:s, s:I, s:I, "
			 "s:I, s:I, s:s}",
			 "step", (json_int_t)r->step, "totalSteps", (json_int_t)r->total, "epoch",
			 (double)r->step / (double)r->spe, "dataPosition", "epoch",
			 (json_int_t)pos.epoch, "step", (json_int_t)pos.step, "adamSteps",
			 k.adam_steps, "forwards", (json_int_t)k.forwards, "loss",
			 num_or_null(r->last_loss), "evalLoss", num_or_null(r->eval_loss), "time",
			 now, "method", r->sp.lora ? "lora" : "full", "trainableFloats",
			 (json_int_t)r->rp.st.n, "globalBatchSize", (json_int_t)r->sp.gbs,
			 "sequenceLength", (json_int_t)r->sp.seq, "seed", (json_int_t)r->sp.seed,
			 "baseModel", r->sp.base_uri);
}

static llm_err write_optimizer(struct ft_run *r, const char *dir)
{
	char path[PATH_CAP];
	int64_t shape[1] = {(int64_t)r->rp.st.n};
	const float *src[3] = {r->rp.st.exp_avg, r->rp.st.exp_avg_sq, r->rp.st.params};
	struct llm_st_out t[3] = {
		{"exp_avg", LLM_ST_F32, 1, shape, NULL},
		{"exp_avg_sq", LLM_ST_F32, 1, shape, NULL},
		{"params", LLM_ST_F32, 1, shape, NULL},
	};
	/* Full weights are in model.safetensors already; adapters are small. */
	int n = r->sp.lora ? 3 : 2;
	llm_err rc = LLM_OK;

	if (uri_join(dir, OPTIM_FILE, path, sizeof(path)))
		return LLM_ETOOLARGE;
	for (int i = 0; !rc && i < n; i++) {
		const float *host;

		rc = replica_view(&r->rp, i, src[i], &host);
		t[i].data = host;
	}
	return rc ? rc : llm_st_write(path, t, n, NULL);
}

static llm_err report_checkpoints(struct ft_run *r);

/* Rank 0: writes checkpoint r->step atomically and drops the oldest. */
static llm_err save_checkpoint(struct ft_run *r)
{
	char tmp[PATH_CAP];
	json_t *state;
	llm_err rc = ckpt_begin(r->ckroot, r->step, tmp, sizeof(tmp));

	if (!rc)
		rc = r->sp.lora ? llm_model_lora_save(r->m, tmp) : llm_model_save(r->m, tmp);
	if (!rc)
		rc = write_optimizer(r, tmp);
	if (!rc) {
		state = trainer_state(r);
		rc = state ? ckpt_write_json(tmp, CKPT_STATE_FILE, state)
			   : llm_fail(LLM_ENOMEM, "out of memory");
		json_decref(state);
	}
	if (!rc)
		rc = ckpt_commit(r->ckroot, r->step, tmp);
	if (!rc)
		rc = ckpt_prune(r->ckroot, (size_t)r->sp.keep);
	if (rc)
		return llm_wrap(rc, "checkpoint at step %lld", r->step);
	llm_info("finetune", "checkpoint at step %lld in %s", r->step, r->ckroot);
	return report_checkpoints(r);
}

/* Checks that the checkpoint state was written by a run of this job. */
static llm_err check_state(struct ft_run *r, const char *dir, json_t *st)
{
	const char *method = llm_json_str_or(st, "method", "");
	json_int_t n = 0, gbs = 0, seq = 0;

	llm_json_get_int(st, "trainableFloats", &n);
	llm_json_get_int(st, "globalBatchSize", &gbs);
	llm_json_get_int(st, "sequenceLength", &seq);
	if (strcmp(method, r->sp.lora ? "lora" : "full") || gbs != r->sp.gbs || seq != r->sp.seq)
		return llm_fail(LLM_EINVAL,
				"checkpoint %s was written with other settings (method %s, "
				"globalBatchSize %lld, sequenceLength %lld); move it away to start "
				"over",
				dir, method, (long long)gbs, (long long)seq);
	if ((size_t)n != r->rp.st.n)
		return llm_fail(LLM_EINVAL,
				"checkpoint %s holds %lld trainable values, the job %zu", dir,
				(long long)n, r->rp.st.n);
	return LLM_OK;
}

/* The model array dst (st.n floats) from the tensor name of f. */
static llm_err read_floats(struct ft_run *r, llm_st_file *f, const char *name, float *dst)
{
	const struct llm_st_tensor *t = llm_st_get(f, name);
	float *host;
	llm_err rc;

	if (!t)
		return llm_fail(LLM_ENOTFOUND, "%s has no tensor %s", OPTIM_FILE, name);
	rc = replica_buffer(&r->rp, 0, dst, &host);
	if (!rc)
		rc = llm_st_read_f32(t, host, r->rp.st.n);
	return rc ? rc : replica_store(&r->rp, dst, host);
}

/* Rank 0: restores optimizer state, counters and (LoRA) adapters from dir. */
static llm_err restore(struct ft_run *r, const char *dir, json_t *st)
{
	char path[PATH_CAP];
	struct llm_model_counters k = {0};
	json_int_t v = 0;
	llm_st_file *f = NULL;
	llm_err rc = check_state(r, dir, st);

	if (!rc)
		rc = uri_join(dir, OPTIM_FILE, path, sizeof(path));
	if (!rc)
		rc = llm_st_open(path, &f);
	if (!rc)
		rc = read_floats(r, f, "exp_avg", r->rp.st.exp_avg);
	if (!rc)
		rc = read_floats(r, f, "exp_avg_sq", r->rp.st.exp_avg_sq);
	if (!rc && r->sp.lora)
		rc = read_floats(r, f, "params", r->rp.st.params);
	llm_st_close(f);
	if (rc)
		return rc;
	llm_json_get_int(st, "adamSteps", &v);
	k.adam_steps = (int)v;
	llm_json_get_int(st, "forwards", &v);
	k.forwards = (uint64_t)v;
	llm_model_set_counters(r->m, &k);
	llm_json_get_int(st, "step", &v);
	r->step = v;
	llm_json_get_num(st, "loss", &r->last_loss);
	if (llm_json_get_num(st, "evalLoss", &r->eval_loss))
		r->eval_loss = NAN;
	return LLM_OK;
}

/* Rank 0: the newest valid checkpoint's directory and state, or none. */
static llm_err find_resume(struct ft_run *r, char *dir, json_t **st)
{
	static int64_t steps[CKPT_MAX];
	size_t n;
	llm_err rc = ckpt_list(r->ckroot, steps, CKPT_MAX, &n);

	*st = NULL;
	dir[0] = '\0';
	if (rc || n == 0)
		return rc;
	rc = ckpt_path(r->ckroot, steps[n - 1], dir, PATH_CAP);
	return rc ? rc : ckpt_read_json(dir, CKPT_STATE_FILE, st);
}

/* Loads the model (rank 0 from the newest checkpoint when there is one) and
 * makes every rank's trainable state and counters equal to rank 0's. */
static llm_err setup_model(struct ft_run *r)
{
	char dir[PATH_CAP];
	json_t *st = NULL;
	int64_t hdr[3] = {0};
	struct llm_model_counters k;
	llm_err rc = r->rank == 0 ? find_resume(r, dir, &st) : LLM_OK;

	if (!rc)
		rc = load_model(r, st && !r->sp.lora ? dir : r->sp.base);
	if (!rc)
		rc = replica_init(&r->rp, r->m, r->coll);
	if (!rc && st) {
		rc = restore(r, dir, st);
		if (!rc)
			llm_info("finetune", "resuming from %s (step %lld)", dir, r->step);
	}
	json_decref(st);
	if (rc || r->world == 1)
		return rc;
	llm_model_get_counters(r->m, &k);
	hdr[0] = r->step;
	hdr[1] = k.adam_steps;
	hdr[2] = (int64_t)k.forwards;
	rc = replica_broadcast_host(&r->rp, hdr, sizeof(hdr));
	if (!rc)
		rc = replica_broadcast_state(&r->rp, r->rp.st.params);
	if (!rc && hdr[0] > 0)
		rc = replica_broadcast_state(&r->rp, r->rp.st.exp_avg);
	if (!rc && hdr[0] > 0)
		rc = replica_broadcast_state(&r->rp, r->rp.st.exp_avg_sq);
	r->step = hdr[0];
	k = (struct llm_model_counters){(int)hdr[1], (uint64_t)hdr[2]};
	llm_model_set_counters(r->m, &k);
	return rc;
}

/* ---- training ---- */

/* Positions of a (B,T) batch that carry a loss after the shift. */
static size_t count_targets(const int *labels, long long B, long long T)
{
	size_t n = 0;

	for (long long b = 0; b < B; b++)
		for (long long t = 1; t < T; t++)
			n += labels[b * T + t] != DS_IGNORE;
	return n;
}

/* The sum over ranks of a count, exact through hi/lo float halves. */
static llm_err sum_count(struct ft_run *r, double *count)
{
	float buf[2] = {floorf((float)(*count / COUNT_SPLIT)), 0};
	llm_err rc;

	if (r->world == 1)
		return LLM_OK;
	buf[1] = (float)(*count - (double)buf[0] * COUNT_SPLIT);
	rc = replica_sum_host(&r->rp, buf, 2);
	*count = (double)buf[0] * COUNT_SPLIT + buf[1];
	return rc;
}

/* One micro batch: forward and backward, then the step's gradient sum +=
 * weight * its gradients and *loss_sum += weight * its loss. */
static llm_err micro_step(struct ft_run *r, int i, double weight, float *loss_sum)
{
	size_t bt = (size_t)(r->sp.mbs * r->sp.seq);
	struct llm_model_counters k;
	float loss = 0;
	llm_err rc;

	llm_model_get_counters(r->m, &k);
	/* dropout masks follow the global micro batch, not the rank */
	k.forwards = (uint64_t)(r->step * r->accum * r->world + r->rank * r->accum + i);
	llm_model_set_counters(r->m, &k);
	rc = llm_model_forward(r->m, r->ids + i * bt, r->labels + i * bt, (int)r->sp.mbs,
			       (int)r->sp.seq, &loss);
	if (!rc && weight > 0)
		rc = llm_model_zero_grad(r->m);
	if (!rc && weight > 0)
		rc = llm_model_backward(r->m);
	if (rc || weight <= 0)
		return rc;
	*loss_sum += (float)(weight * loss);
	return replica_accumulate(&r->rp, (float)weight);
}

/* One optimizer step over this rank's share of a global batch. */
static llm_err train_step(struct ft_run *r, float *loss)
{
	size_t bt = (size_t)(r->sp.mbs * r->sp.seq);
	double total = 0;
	float sums[2] = {0, stop_requested ? 1.0f : 0.0f}; /* the loss, the stop flag */
	struct llm_adamw opt;
	llm_err rc = ds_cursor_next(r->cur, r->idx);

	for (int i = 0; !rc && i < r->accum; i++) {
		rc = ds_gather(r->ds, DS_TRAIN, r->idx + (size_t)i * r->sp.mbs, (size_t)r->sp.mbs,
			       r->ids + i * bt, r->labels + i * bt);
		r->counts[i] = count_targets(r->labels + i * bt, r->sp.mbs, r->sp.seq);
		total += (double)r->counts[i];
	}
	if (!rc)
		rc = sum_count(r, &total);
	if (!rc)
		rc = replica_clear(&r->rp);
	for (int i = 0; !rc && i < r->accum; i++)
		rc = micro_step(r, i, total > 0 ? (double)r->counts[i] / total : 0, &sums[0]);
	if (!rc)
		rc = replica_sum_host(&r->rp, sums, 2);
	if (!rc)
		rc = replica_reduce(&r->rp);
	if (rc)
		return rc;
	opt = (struct llm_adamw){
		.lr = (float)sched_lr(
			&(struct sched){r->sp.sched, r->sp.lr, r->sp.warmup, r->total}, r->step),
		.beta1 = 0.9f,
		.beta2 = 0.999f,
		.eps = 1e-8f,
		.weight_decay = (float)r->sp.wd,
		.max_grad_norm = (float)r->sp.clip,
		.no_decay_1d = 1};
	*loss = sums[0];
	r->stop = sums[1] > 0;
	return llm_model_step(r->m, &opt, NULL);
}

/* Loss of one validation batch of b sequences: *sum of token losses, *n. */
static llm_err eval_batch(struct ft_run *r, const size_t *idx, size_t b, double *sum, double *n)
{
	double s = 0;
	int cnt = 0;
	llm_err rc = ds_gather(r->ds, DS_VALIDATION, idx, b, r->ids, r->labels);

	if (!rc)
		rc = llm_model_eval(r->m, r->ids, r->labels, (int)b, (int)r->sp.seq, &s, &cnt);
	*sum += s;
	*n += cnt;
	return rc;
}

/* Mean token loss over the validation set (rank r takes every world-th
 * sequence), without dropout; NaN when there is no validation set. */
static llm_err evaluate(struct ft_run *r)
{
	size_t nval = ds_num_sequences(r->ds, DS_VALIDATION), idx[4096], b = 0;
	double sum = 0, n = 0;
	float buf[3];
	llm_err rc = LLM_OK;

	if (nval == 0)
		return LLM_OK;
	for (size_t i = (size_t)r->rank; !rc && i < nval; i += (size_t)r->world) {
		idx[b++] = i;
		if (b == (size_t)r->sp.mbs || i + (size_t)r->world >= nval) {
			rc = eval_batch(r, idx, b, &sum, &n);
			b = 0;
		}
	}
	buf[0] = (float)sum;
	buf[1] = floorf((float)(n / COUNT_SPLIT));
	buf[2] = (float)(n - (double)buf[1] * COUNT_SPLIT);
	if (!rc)
		rc = replica_sum_host(&r->rp, buf, 3);
	n = (double)buf[1] * COUNT_SPLIT + buf[2];
	r->eval_loss = n > 0 ? buf[0] / n : NAN;
	return rc;
}

/* ---- reporting ---- */

static void fmt_duration(double s, char *buf, size_t size)
{
	long long t = (long long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, size, "%lldh%lldm", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, size, "%lldm%llds", t / 60, t % 60);
	else
		snprintf(buf, size, "%llds", t);
}

static void report_progress(struct ft_run *r, bool force)
{
	uint64_t now = llm_mono_ms();
	double el = (double)(now - r->t0_ms) / 1000.0, done = (double)(r->step - r->step0);
	double tps = el > 0 ? done * (double)(r->sp.gbs * r->sp.seq) / el : 0;
	double eta = done > 0 ? el / done * (double)(r->total - r->step) : 0;
	double loss = r->loss_n ? r->loss_sum / (double)r->loss_n : r->last_loss;
	double lr = sched_lr(&(struct sched){r->sp.sched, r->sp.lr, r->sp.warmup, r->total},
			     r->step > 0 ? r->step - 1 : 0);
	char etas[32];
	json_t *p;

	if (r->rank != 0 || (!force && now - r->last_progress_ms < PROGRESS_MS))
		return;
	r->last_progress_ms = now;
	fmt_duration(eta, etas, sizeof(etas));
	fprintf(stderr, "step %lld/%lld  epoch %.2f  loss %.4f  lr %.3e  %.0f tok/s  eta %s%s",
		r->step, r->total, (double)r->step / (double)r->spe, loss, lr, tps, etas,
		isatty(2) && !force ? "\r" : "\n");
	r->loss_sum = 0;
	r->loss_n = 0;
	if (!r->status)
		return;
	p = json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:s}", "step", (json_int_t)r->step,
		      "totalSteps", (json_int_t)r->total, "epoch", (double)r->step / (double)r->spe,
		      "loss", isfinite(loss) ? loss : 0.0, "learningRate", lr, "tokensPerSecond",
		      tps, "eta", etas);
	if (p && !isnan(r->eval_loss))
		json_object_set_new(p, "evalLoss", json_real(r->eval_loss));
	if (p)
		agent_status_set(r->status, "progress", p);
	json_decref(p);
	if (r->step == r->step0 + 1) /* shown at once: the run has started training */
		agent_status_flush(r->status);
}

/* status.checkpoints and status.latestCheckpoint from what is on disk. */
static llm_err report_checkpoints(struct ft_run *r)
{
	static int64_t steps[CKPT_MAX];
	char dir[PATH_CAP], uri[PATH_CAP];
	json_t *list, *st, *item;
	size_t n;

	if (!r->status || ckpt_list(r->ckroot, steps, CKPT_MAX, &n) || n == 0)
		return LLM_OK;
	list = json_array();
	for (size_t i = n > 100 ? n - 100 : 0; i < n; i++) {
		ckpt_path(r->ckuri, steps[i], uri, sizeof(uri));
		ckpt_path(r->ckroot, steps[i], dir, sizeof(dir));
		item = json_pack("{s:I, s:s}", "step", (json_int_t)steps[i], "uri", uri);
		if (!ckpt_read_json(dir, CKPT_STATE_FILE, &st)) {
			json_object_set(item, "loss", json_object_get(st, "loss"));
			if (json_is_number(json_object_get(st, "evalLoss")))
				json_object_set(item, "evalLoss", json_object_get(st, "evalLoss"));
			json_object_set(item, "time", json_object_get(st, "time"));
			json_decref(st);
		}
		json_array_append_new(list, item);
	}
	agent_status_set(r->status, "checkpoints", list);
	json_decref(list);
	list = json_string(uri);
	agent_status_set(r->status, "latestCheckpoint", list);
	json_decref(list);
	return LLM_OK;
}

static void report_dataset(struct ft_run *r)
{
	struct ds_counts c;
	json_t *d;

	ds_get_counts(r->ds, &c);
	llm_info("finetune",
		 "dataset: %zu records, %zu training and %zu validation examples, %zu skipped, "
		 "%zu truncated, %zu dropped, %zu training sequences of %lld tokens",
		 c.records, c.train_examples, c.val_examples, c.skipped, c.truncated, c.dropped,
		 c.sequences, r->sp.seq);
	if (!r->status)
		return;
	d = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "records", (json_int_t)c.records,
		      "trainExamples", (json_int_t)c.train_examples, "validationExamples",
		      (json_int_t)c.val_examples, "skipped", (json_int_t)c.skipped, "truncated",
		      (json_int_t)c.truncated, "dropped", (json_int_t)c.dropped, "tokens",
		      (json_int_t)c.tokens, "sequences", (json_int_t)c.sequences);
	agent_status_set(r->status, "dataset", d);
	json_decref(d);
}

/* ---- output ---- */

/* Copies the base model's tokenizer files next to a full model's weights. */
static llm_err copy_tokenizer(struct ft_run *r)
{
	static const char *const files[] = {
		"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
		"merges.txt",	  "generation_config.json"};
	char src[PATH_CAP], dst[PATH_CAP];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *in, *out;
		char buf[65536];
		size_t n;
		int bad = 0;

		uri_join(r->sp.base, files[i], src, sizeof(src));
		uri_join(r->sp.out, files[i], dst, sizeof(dst));
		in = fopen(src, "rb");
		if (!in)
			continue;
		out = fopen(dst, "wb");
		while (out && !bad && (n = fread(buf, 1, sizeof(buf), in)) > 0)
			bad = fwrite(buf, 1, n, out) != n;
		fclose(in);
		if (!out || fclose(out) || bad)
			return llm_fail(LLM_EIO, "cannot copy %s to %s", src, dst);
	}
	return LLM_OK;
}

static llm_err write_output(struct ft_run *r)
{
	llm_err rc =
		r->sp.lora ? llm_model_lora_save(r->m, r->sp.out) : llm_model_save(r->m, r->sp.out);

	if (!rc && !r->sp.lora)
		rc = copy_tokenizer(r);
	if (rc)
		return llm_wrap(rc, "output %s", r->sp.out_uri);
	llm_info("finetune", "wrote the %s to %s", r->sp.lora ? "adapter" : "model", r->sp.out_uri);
	return LLM_OK;
}

/* ---- the run ---- */

static llm_err train(struct ft_run *r)
{
	float loss;
	llm_err rc = LLM_OK;

	r->t0_ms = llm_mono_ms();
	r->step0 = r->step;
	if (r->step > r->total)
		r->step = r->total;
	while (!rc && r->step < r->total) {
		rc = train_step(r, &loss);
		if (rc)
			break;
		r->step++;
		r->last_loss = loss;
		r->loss_sum += loss;
		r->loss_n++;
		if (r->step % r->sp.interval == 0 || r->step == r->total || r->stop) {
			rc = evaluate(r);
			if (!rc && !isnan(r->eval_loss) && r->rank == 0)
				fprintf(stderr, "step %lld/%lld  eval loss %.4f  perplexity %.3f\n",
					r->step, r->total, r->eval_loss, exp(r->eval_loss));
			if (!rc && r->rank == 0)
				rc = save_checkpoint(r);
		}
		report_progress(r, r->step == r->total || r->stop);
		if (!rc && r->stop && r->step < r->total)
			return llm_fail(LLM_ECANCELED,
					"stopped by a signal at step %lld of %lld; the "
					"checkpoint of that step resumes the run",
					r->step, r->total);
	}
	return rc;
}

/* The model's backend from LLMOPS_BACKEND: "auto" (the default: the first
 * GPU when CUDA works here, else the CPU), "cuda" or "cuda:<n>" (that GPU,
 * or fail), "cpu", or "cpu-staged" (the CPU kernels behind the code paths
 * of device memory, which lets machines without a GPU test them). Chosen
 * before the collectives, whose "auto" follows it; rank 0 logs it. */
static llm_err select_backend(struct ft_run *r)
{
	const char *want = getenv("LLMOPS_BACKEND");
	char why[512], *end = NULL;
	long device = 0;
	bool gpu = false;

	if (!want || !*want)
		want = "auto";
	if (!strncmp(want, "cuda:", 5)) {
		errno = 0;
		device = strtol(want + 5, &end, 10);
	}
	if (!strcmp(want, "cpu") || !strcmp(want, "cpu-staged")) {
		snprintf(why, sizeof(why), "backend: %s (LLMOPS_BACKEND)", want);
	} else if (strcmp(want, "auto") && strcmp(want, "cuda") &&
		   (!end || end == want + 5 || *end || errno || device < 0 || device > INT_MAX)) {
		return llm_fail(LLM_EINVAL,
				"LLMOPS_BACKEND=%s: use auto, cuda, cuda:<device number>, cpu or "
				"cpu-staged",
				want);
	} else {
		gpu = llm_backend_select((int)device, why, sizeof(why)) == LLM_BACKEND_CUDA;
		if (!gpu && strcmp(want, "auto"))
			return llm_fail(LLM_EUNSUPPORTED, "LLMOPS_BACKEND=%s, but %s", want, why);
	}
	if (gpu)
		r->model_flags = LLM_MODEL_CUDA | (r->sp.bf16 ? LLM_MODEL_BF16 : 0);
	else if (!strcmp(want, "cpu-staged"))
		r->model_flags = LLM_MODEL_STAGED;
	if (r->rank != 0)
		return LLM_OK;
	llm_info("finetune", "%s, %s matmuls", why, gpu && r->sp.bf16 ? "bf16" : "fp32");
	if (!gpu && r->sp.bf16)
		llm_warn("finetune", "hyperparameters.precision bf16 needs a GPU; the CPU trains "
				     "in fp32");
	return LLM_OK;
}

static llm_err setup(struct ft_run *r)
{
	struct llm_coll_config cc = {.rank = 0, .world_size = 1, .master_port = 1};
	llm_err rc;

	if (getenv("LLMOPS_WORLD_SIZE") && llm_coll_config_from_env(&cc))
		return bad_input(r, LLM_EINVAL);
	r->rank = cc.rank;
	r->world = cc.world_size;
	rc = parse_spec(r->object, &r->sp);
	if (!rc)
		rc = uri_join(r->sp.out, CKPT_SUBDIR, r->ckroot, sizeof(r->ckroot));
	if (!rc)
		rc = uri_join(r->sp.out_uri, CKPT_SUBDIR, r->ckuri, sizeof(r->ckuri));
	if (!rc)
		rc = find_prompt(r);
	if (!rc)
		rc = load_data(r);
	if (rc)
		return bad_input(r, rc);
	rc = select_backend(r);
	if (rc)
		return rc;
	rc = llm_coll_new(&cc, &r->coll);
	if (rc)
		return llm_wrap(rc, "rendezvous as rank %d of %d", cc.rank, cc.world_size);
	rc = setup_model(r);
	if (rc == LLM_EINVAL || rc == LLM_EPARSE || rc == LLM_EUNSUPPORTED || rc == LLM_ENOTFOUND)
		return bad_input(r, rc);
	if (!rc)
		rc = plan(r);
	return rc == LLM_EINVAL ? bad_input(r, rc) : rc;
}

/* The FineTuneJob object: from the file, or fetched from the cluster. */
static llm_err get_object(struct ft_run *r)
{
	char api[64];
	llm_err rc;

	if (r->job->object) {
		r->object = json_incref(r->job->object);
		return LLM_OK;
	}
	rc = connect_cluster(r);
	if (!rc)
		rc = kc_get(r->h, &FTJ_GVR, r->job->ns, r->job->name, KC_MAIN, &r->object);
	if (rc)
		return llm_wrap(rc, "FineTuneJob %s/%s", r->job->ns, r->job->name);
	snprintf(api, sizeof(api), "%s/%s", FTJ_GVR.group, FTJ_GVR.version);
	if (getenv("LLMOPS_RANK") && strcmp(getenv("LLMOPS_RANK"), "0"))
		return LLM_OK;
	return agent_status_new(r->h, &FTJ_GVR, api, "FineTuneJob", r->job->ns, r->job->name, 0,
				&r->status);
}

/* Kubernetes shows /dev/termination-log in the Pod's status; written only
 * where it exists (inside a container). */
static void termination_message(const char *msg)
{
	int fd = open(TERM_LOG_PATH, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg)) < 0)
		llm_debug("finetune", "cannot write %s", TERM_LOG_PATH);
	close(fd);
}

/* In a cluster, an Event on the FineTuneJob keeps the reason of a failure
 * after the operator has deleted the worker Pods (and their logs). */
static void failure_event(struct ft_run *r, int status, const char *msg)
{
	const char *pod = getenv("POD_NAME");
	kc_events *ev = NULL;

	if (!r->h || !r->object)
		return;
	if (kc_events_new(r->h, "llmops.dev/agent", pod && *pod ? pod : "llmops-agent", &ev))
		return;
	kc_events_record(ev, r->object, status == FT_EXIT_STOPPED ? "Normal" : "Warning",
			 status == FT_EXIT_DATAERR   ? "InvalidInput"
			 : status == FT_EXIT_STOPPED ? "Stopped"
						     : "TrainingFailed",
			 "Train", "rank %d: %s", r->rank, msg);
	kc_events_destroy(ev);
}

static void run_free(struct ft_run *r)
{
	agent_status_destroy(r->status);
	kc_http_destroy(r->h);
	kc_config_destroy(r->kcfg);
	ds_cursor_destroy(r->cur);
	replica_free(&r->rp);
	llm_model_destroy(r->m);
	ds_destroy(r->ds);
	llm_tok_destroy(r->tok);
	llm_coll_destroy(r->coll);
	json_decref(r->prompt);
	json_decref(r->object);
	free(r->idx);
	free(r->counts);
	free(r->ids);
	free(r->labels);
}

int finetune_run(const struct agent_job *job)
{
	struct ft_run r = {.job = job, .eval_loss = NAN, .last_loss = NAN};
	char msg[1200];
	llm_err rc;
	int status;

	catch_stop_signals();
	rc = get_object(&r);
	if (rc)
		r.dataerr = rc == LLM_ENOTFOUND || rc == LLM_EINVAL;
	else
		rc = setup(&r);
	if (!rc && r.rank == 0)
		report_dataset(&r);
	if (!rc && r.rank == 0) /* a resumed run keeps reporting the kept checkpoints */
		rc = report_checkpoints(&r);
	if (!rc && r.rank == 0)
		fprintf(stderr,
			"finetune: %s, %lld steps (%lld per epoch), %d micro batches of %lld "
			"x %d ranks per step, resuming at step %lld\n",
			r.sp.lora ? "LoRA" : "full", r.total, r.spe, r.accum, r.sp.mbs, r.world,
			r.step);
	if (!rc)
		rc = train(&r);
	if (!rc && r.rank == 0)
		rc = write_output(&r);
	if (!rc && r.world > 1)
		rc = llm_coll_barrier(r.coll);
	status = !rc		       ? FT_EXIT_OK
		 : rc == LLM_ECANCELED ? FT_EXIT_STOPPED
		 : r.dataerr	       ? FT_EXIT_DATAERR
				       : FT_EXIT_FAILED;
	if (rc) {
		snprintf(msg, sizeof(msg), "%s: %s", llm_errname(rc), llm_last_error());
		fprintf(stderr, "llmops-agent finetune: %s\n", msg);
		termination_message(msg);
		failure_event(&r, status, msg);
	}
	if (r.status)
		agent_status_flush(r.status);
	run_free(&r);
	return status;
}
