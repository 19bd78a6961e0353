/* Parity checks of kernels/models against torch/transformers/peft, shared by
 * test_model_gpt2.c and test_model_llama.c (CPU) and
 * tests/cuda/test_cuda_models.cu (the same checks on the CUDA backend). The
 * references are the files tests/golden/models/make_reference.py wrote with
 * the real libraries (tests/golden/models/<arch>/); nothing here is a number
 * we chose.
 *
 * Valid C and C++. The includer provides cmocka's assert_true,
 * assert_int_equal and assert_non_null (cmocka itself, or the CUDA
 * harness's stand-ins), and may set golden_flags (model creation flags)
 * and golden_tol (tolerances) before the first check.
 *
 * CPU tolerances (golden_tol_cpu), all of the form
 * |got - ref| <= atol + rtol * |ref|:
 *   logits            atol 1e-5, rtol 1e-5 (KV-cached vs recomputed: same)
 *   loss              1e-5 absolute
 *   every gradient    atol 1e-6, rtol 1e-4
 *   training losses   1e-4 absolute, each of the 10 AdamW and 10 LoRA steps
 *   final LoRA A, B   atol 1e-4, rtol 1e-3 (ten steps of float rounding)
 *   greedy tokens     exact
 * Each check prints the largest error it saw. */
#ifndef TEST_MODEL_GOLDEN_H
#define TEST_MODEL_GOLDEN_H

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_safetensors.h"
#include "llmops_model.h"

#define GOLDEN_MODELS "tests/golden/models/"
#define MAX_B	      2
#define MAX_T	      64

#define LOGITS_ATOL 1e-5
#define LOGITS_RTOL 1e-5
#define LOSS_TOL    1e-5
#define GRAD_ATOL   1e-6
#define GRAD_RTOL   1e-4
#define STEP_TOL    1e-4
#define LORA_ATOL   1e-4
#define LORA_RTOL   1e-3

struct golden_tol {
	double logits_atol, logits_rtol; /* also KV-cached vs recomputed */
	double loss;			 /* absolute */
	double grad_atol, grad_rtol;
	double step; /* absolute, each training loss */
	double lora_atol, lora_rtol;
};

static const struct golden_tol golden_tol_cpu = {
	LOGITS_ATOL, LOGITS_RTOL, LOSS_TOL, GRAD_ATOL, GRAD_RTOL, STEP_TOL, LORA_ATOL, LORA_RTOL,
};
static const struct golden_tol *golden_tol = &golden_tol_cpu;
static unsigned golden_flags; /* added to every llm_model_load() here */

struct golden {
	char dir[256];
	json_t *ref;
	llm_st_file *st;
	int B, T;
	int *ids, *labels;
};

static int *json_ids(const json_t *rows, int *B, int *T)
{
	int *out;
	size_t b, t;
	json_t *row, *v;

	*B = (int)json_array_size(rows);
	*T = (int)json_array_size(json_array_get(rows, 0));
	out = (int *)malloc((size_t)*B * *T * sizeof(int));
	assert_non_null(out);
	json_array_foreach(rows, b, row)
	{
		assert_int_equal(json_array_size(row), (size_t)*T);
		json_array_foreach(row, t, v) out[b * *T + t] = (int)json_integer_value(v);
	}
	return out;
}

static void golden_open(struct golden *g, const char *arch)
{
	char path[320];
	json_error_t jerr;
	int B, T;

	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), GOLDEN_MODELS "%s", arch);
	snprintf(path, sizeof(path), "%s/reference.json", g->dir);
	g->ref = json_load_file(path, 0, &jerr);
	assert_non_null(g->ref);
	snprintf(path, sizeof(path), "%s/reference.safetensors", g->dir);
	assert_int_equal(llm_st_open(path, &g->st), LLM_OK);
	g->ids = json_ids(json_object_get(g->ref, "input_ids"), &g->B, &g->T);
	if (json_object_get(g->ref, "labels")) {
		g->labels = json_ids(json_object_get(g->ref, "labels"), &B, &T);
		assert_int_equal(B, g->B);
		assert_int_equal(T, g->T);
	}
}

static void golden_close(struct golden *g)
{
	json_decref(g->ref);
	llm_st_close(g->st);
	free(g->ids);
	free(g->labels);
}

static llm_model *golden_model(const struct golden *g)
{
	char path[320];
	llm_model *m = NULL;
	llm_err err;

	snprintf(path, sizeof(path), "%s/model", g->dir);
	err = llm_model_load(path, MAX_B, MAX_T, golden_flags, &m);
	if (err)
		fprintf(stderr, "load %s: %s\n", path, llm_last_error());
	assert_int_equal(err, LLM_OK);
	return m;
}

static double ref_num(const json_t *root, const char *a, const char *b)
{
	const json_t *v = json_object_get(root, a);

	if (b)
		v = json_object_get(v, b);
	assert_true(json_is_number(v));
	return json_number_value(v);
}

/* The reference tensor called name as floats (caller frees). */
static float *ref_tensor(const llm_st_file *st, const char *name, size_t *n)
{
	const struct llm_st_tensor *t = llm_st_get(st, name);
	float *out;

	if (!t)
		fprintf(stderr, "reference has no %s\n", name);
	assert_non_null(t);
	*n = llm_st_numel(t);
	out = (float *)malloc(*n * sizeof(float));
	assert_non_null(out);
	assert_int_equal(llm_st_read_f32(t, out, *n), LLM_OK);
	return out;
}

/* Asserts |got - ref| <= atol + rtol |ref| everywhere; returns the largest
 * absolute error and raises *worst_ratio to the largest error / allowance. */
static double expect_close(const char *what, const float *got, const float *ref, size_t n,
			   double atol, double rtol, double *worst_ratio)
{
	double max_err = 0.0, ratio = 0.0;
	size_t bad = n;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref[i]), allow = atol + rtol * fabs(ref[i]);

		if (!(d <= allow) && bad == n)
			bad = i;
		max_err = d > max_err || isnan(d) ? d : max_err;
		ratio = d / allow > ratio ? d / allow : ratio;
	}
	if (bad != n)
		fprintf(stderr, "%s: element %zu is %.9g, reference %.9g\n", what, bad,
			(double)got[bad], (double)ref[bad]);
	assert_true(bad == n);
	if (worst_ratio && ratio > *worst_ratio)
		*worst_ratio = ratio;
	return max_err;
}

/* ---- parity checks ---- */

static void check_logits_and_loss(const char *arch)
{
	struct golden g;
	llm_model *m;
	float loss, *ref;
	size_t n;
	double err, ref_loss, worst = 0.0;

	golden_open(&g, arch);
	m = golden_model(&g);
	ref = ref_tensor(g.st, "logits", &n);
	assert_int_equal(n, (size_t)g.B * g.T * llm_model_get_config(m)->vocab_size);
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, &loss), LLM_OK);
	err = expect_close("logits", llm_model_logits(m), ref, n, golden_tol->logits_atol,
			   golden_tol->logits_rtol, &worst);
	ref_loss = ref_num(g.ref, "loss", NULL);
	printf("%s: logits max abs err %.3g, worst err/allowance %.3g; loss %.8f vs %.8f (err "
	       "%.3g)\n",
	       arch, err, worst, (double)loss, ref_loss, fabs(loss - ref_loss));
	assert_true(fabs(loss - ref_loss) <= golden_tol->loss);
	free(ref);
	llm_model_destroy(m);
	golden_close(&g);
}

static void check_gradients(const char *arch)
{
	struct golden g;
	llm_model *m;
	double worst = 0.0, max_err = 0.0;
	int count = 0;

	golden_open(&g, arch);
	m = golden_model(&g);
	assert_int_equal(llm_model_zero_grad(m), LLM_OK);
	assert_int_equal(llm_model_forward(m, g.ids, g.labels, g.B, g.T, NULL), LLM_OK);
	assert_int_equal(llm_model_backward(m), LLM_OK);
	for (int i = 0; i < llm_model_tensor_count(m); i++) {
		const char *name;
		char key[256];
		int ndim;
		int64_t shape[2];
		size_t n;
		float *ref, *got;
		double e;

		assert_int_equal(llm_model_tensor_info(m, i, &name, &ndim, shape), LLM_OK);
		snprintf(key, sizeof(key), "grad.%s", name);
		ref = ref_tensor(g.st, key, &n);
		got = (float *)malloc(n * sizeof(float));
		assert_non_null(got);
		assert_int_equal(llm_model_get_tensor(m, name, 1, got, n), LLM_OK);
		e = expect_close(key, got, ref, n, golden_tol->grad_atol, golden_tol->grad_rtol,
				 &worst);
		max_err = e > max_err ? e : max_err;
		free(ref);
		free(got);
		count++;
	}
	/* every parameter the reference has a gradient for was compared */
	assert_int_equal((size_t)count + 1, llm_st_count(g.st));
	printf("%s: %d gradients, max abs err %.3g, worst err/allowance %.3g\n", arch, count,
	       max_err, worst);
	llm_model_destroy(m);
	golden_close(&g);
}

static void read_adamw(const json_t *o, struct llm_adamw *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->lr = (float)ref_num(o, "lr", NULL);
	opt->beta1 = (float)json_number_value(json_array_get(json_object_get(o, "betas"), 0));
	opt->beta2 = (float)json_number_value(json_array_get(json_object_get(o, "betas"), 1));
	opt->eps = (float)ref_num(o, "eps", NULL);
	opt->weight_decay = (float)ref_num(o, "weight_decay", NULL);
	if (json_object_get(o, "max_grad_norm"))
		opt->max_grad_norm = (float)ref_num(o, "max_grad_norm", NULL);
}

/* Ten steps on the reference batch; each forward's loss against losses[i]. */
static void train_and_compare(const char *what, llm_model *m, const struct golden *g,
			      const json_t *o)
{
	struct llm_adamw opt;
	const json_t *losses = json_object_get(o, "losses");
	double worst = 0.0;

	read_adamw(o, &opt);
	assert_int_equal(json_array_size(losses), 10);
	for (size_t i = 0; i < json_array_size(losses); i++) {
		float loss;
		double d;

		assert_int_equal(llm_model_zero_grad(m), LLM_OK);
		assert_int_equal(llm_model_forward(m, g->ids, g->labels, g->B, g->T, &loss),
				 LLM_OK);
		d = fabs(loss - json_number_value(json_array_get(losses, i)));
		if (d > golden_tol->step)
			fprintf(stderr, "%s step %zu: loss %.8f, reference %.8f\n", what, i,
				(double)loss, json_number_value(json_array_get(losses, i)));
		assert_true(d <= golden_tol->step);
		worst = d > worst ? d : worst;
		assert_int_equal(llm_model_backward(m), LLM_OK);
		assert_int_equal(llm_model_step(m, &opt, NULL), LLM_OK);
	}
	printf("%s: 10 steps, max loss err %.3g\n", what, worst);
}

static void check_full_training(const char *arch)
{
	struct golden g;
	llm_model *m;
	char what[64];

	golden_open(&g, arch);
	m = golden_model(&g);
	snprintf(what, sizeof(what), "%s AdamW", arch);
	train_and_compare(what, m, &g, json_object_get(g.ref, "train"));
	llm_model_destroy(m);
	golden_close(&g);
}

/* Compares every tensor of an adapter file with the model's adapters. */
static double compare_adapter(const llm_model *m, const char *file, double atol, double rtol)
{
	llm_st_file *f;
	double max_err = 0.0;

	assert_int_equal(llm_st_open(file, &f), LLM_OK);
	for (size_t i = 0; i < llm_st_count(f); i++) {
		const struct llm_st_tensor *t = llm_st_at(f, i);
		size_t n;
		float *ref = ref_tensor(f, t->name, &n), *got = (float *)malloc(n * sizeof(float));
		double e;

		assert_non_null(got);
		assert_int_equal(llm_model_lora_get(m, t->name, got, n), LLM_OK);
		e = expect_close(t->name, got, ref, n, atol, rtol, NULL);
		max_err = e > max_err ? e : max_err;
		free(ref);
		free(got);
	}
	llm_st_close(f);
	return max_err;
}

static void check_lora_training(const char *arch, const char *tmpdir)
{
	struct golden g;
	llm_model *m, *again;
	char path[320], what[64];
	double err;

	golden_open(&g, arch);
	m = golden_model(&g);
	snprintf(path, sizeof(path), "%s/lora_init", g.dir);
	assert_int_equal(llm_model_lora_load(m, path), LLM_OK);
	snprintf(what, sizeof(what), "%s LoRA", arch);
	train_and_compare(what, m, &g, json_object_get(g.ref, "lora"));
	snprintf(path, sizeof(path), "%s/lora_final/adapter_model.safetensors", g.dir);
	err = compare_adapter(m, path, golden_tol->lora_atol, golden_tol->lora_rtol);
	printf("%s: final adapter vs peft, max abs err %.3g\n", arch, err);

	/* saved adapter equals what was trained, and reads back into a model */
	snprintf(path, sizeof(path), "%s/%s-adapter", tmpdir, arch);
	assert_int_equal(llm_model_lora_save(m, path), LLM_OK);
	again = golden_model(&g);
	assert_int_equal(llm_model_lora_load(again, path), LLM_OK);
	snprintf(path, sizeof(path), "%s/%s-adapter/adapter_model.safetensors", tmpdir, arch);
	assert_true(compare_adapter(m, path, 0.0, 0.0) == 0.0);
	assert_true(compare_adapter(again, path, 0.0, 0.0) == 0.0);
	llm_model_destroy(again);
	llm_model_destroy(m);
	golden_close(&g);
}

static void check_greedy(const char *arch)
{
	struct golden g;
	llm_model *m;
	const json_t *gr, *prompt_j, *tokens_j;
	int prompt[16], out[32], n_prompt, n_new;

	golden_open(&g, arch);
	m = golden_model(&g);
	gr = json_object_get(g.ref, "greedy");
	prompt_j = json_object_get(gr, "prompt");
	tokens_j = json_object_get(gr, "tokens");
	n_prompt = (int)json_array_size(prompt_j);
	n_new = (int)json_array_size(tokens_j);
	assert_true(n_prompt <= 16 && n_new <= 32);
	for (int i = 0; i < n_prompt; i++)
		prompt[i] = (int)json_integer_value(json_array_get(prompt_j, (size_t)i));
	assert_int_equal(llm_model_generate(m, prompt, 1, n_prompt, n_new, NULL, out), LLM_OK);
	for (int i = 0; i < n_new; i++)
		assert_int_equal(out[i], json_integer_value(json_array_get(tokens_j, (size_t)i)));
	printf("%s: %d greedy tokens match\n", arch, n_new);
	llm_model_destroy(m);
	golden_close(&g);
}

/* Prefill + decode one token at a time gives the logits of one forward over
 * the whole sequence. */
static void check_kv_cache(const char *arch)
{
	struct golden g;
	llm_model *m;
	const json_t *gr;
	int seq[48], n_prompt, n, V;
	float *full;
	double err = 0.0, e;

	golden_open(&g, arch);
	m = golden_model(&g);
	V = llm_model_get_config(m)->vocab_size;
	gr = json_object_get(g.ref, "greedy");
	n_prompt = (int)json_array_size(json_object_get(gr, "prompt"));
	n = n_prompt + (int)json_array_size(json_object_get(gr, "tokens"));
	assert_true(n <= 48);
	for (int i = 0; i < n; i++)
		seq[i] = (int)json_integer_value(
			i < n_prompt ? json_array_get(json_object_get(gr, "prompt"), (size_t)i)
				     : json_array_get(json_object_get(gr, "tokens"),
						      (size_t)(i - n_prompt)));
	full = (float *)malloc((size_t)n * V * sizeof(float));
	assert_non_null(full);
	assert_int_equal(llm_model_forward(m, seq, NULL, 1, n, NULL), LLM_OK);
	memcpy(full, llm_model_logits(m), (size_t)n * V * sizeof(float));
	assert_int_equal(llm_model_prefill(m, seq, 1, n_prompt), LLM_OK);
	err = expect_close("prefill logits", llm_model_logits(m), full, (size_t)n_prompt * V,
			   golden_tol->logits_atol, golden_tol->logits_rtol, NULL);
	for (int i = n_prompt; i < n; i++) {
		assert_int_equal(llm_model_decode(m, &seq[i]), LLM_OK);
		e = expect_close("decode logits", llm_model_logits(m), full + (size_t)i * V,
				 (size_t)V, golden_tol->logits_atol, golden_tol->logits_rtol, NULL);
		err = e > err ? e : err;
	}
	printf("%s: KV-cached vs recomputed logits over %d positions, max abs err %.3g\n", arch, n,
	       err);
	free(full);
	llm_model_destroy(m);
	golden_close(&g);
}

#endif
