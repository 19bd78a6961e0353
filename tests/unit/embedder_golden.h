/* Parity checks of the BERT sentence embedder (kernels/models/bert.c)
 * against transformers and sentence-transformers, shared by
 * test_embedder.c (CPU), test_model_backends.c (the CPU kernels behind the
 * staged host copies a device backend uses) and
 * tests/cuda/test_cuda_models.cu (LLM_EMBEDDER_CUDA). The references are
 * the files tests/golden/embedder/make_reference.py wrote with the real
 * libraries; nothing here is a number we chose:
 *   tiny/    a small random BertModel: its last hidden state and pooled,
 *            normalised embeddings for a right-padded batch of three rows
 *   minilm/  all-MiniLM-L6-v2 (weights in build/assets, from `make deps`):
 *            the tokenizer's ids and sentence-transformers' embeddings of
 *            200 sentences
 *
 * Valid C and C++. The includer provides cmocka's assert_true,
 * assert_int_equal and assert_non_null (cmocka itself, or the CUDA
 * harness's stand-ins), and may set emb_golden_flags (load flags) and
 * emb_golden_tol before the first check.
 *
 * CPU tolerances (emb_golden_tol_cpu):
 *   tiny hidden state and embeddings  |got - ref| <= 1e-5 + 1e-5 |ref|
 *                                     (valid positions only)
 *   MiniLM embeddings                 cosine >= 0.9999, every sentence
 *   MiniLM batch of 32 against the same sentences one at a time
 *                                     max abs difference 1e-6
 * Each check prints the largest error it saw. */
#ifndef TEST_EMBEDDER_GOLDEN_H
#define TEST_EMBEDDER_GOLDEN_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_safetensors.h"
#include "llmops_embedder.h"

#define EMB_TINY     "tests/golden/embedder/tiny/"
#define EMB_MINILM   "tests/golden/embedder/minilm/"
#define EMB_ASSET    "build/assets/all-MiniLM-L6-v2"
#define EMB_TINY_C   64
#define EMB_MINILM_C 384
#define EMB_MINILM_N 200
#define EMB_BATCH    32

struct emb_golden_tol {
	double atol, rtol; /* tiny hidden state and embeddings */
	double min_cos;	   /* each MiniLM sentence against sentence-transformers */
	double batch_diff; /* MiniLM batch against one at a time, absolute */
};

static const struct emb_golden_tol emb_golden_tol_cpu = {1e-5, 1e-5, 0.9999, 1e-6};
static const struct emb_golden_tol *emb_golden_tol = &emb_golden_tol_cpu;
static unsigned emb_golden_flags; /* passed to every load here */

/* ---- references ---- */

static json_t *emb_json(const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);

	if (!doc)
		fprintf(stderr, "%s: %s\n", path, jerr.text);
	assert_non_null(doc);
	return doc;
}

/* The F32 tensor called name in the safetensors file path, as n floats
 * (caller frees). */
static float *emb_ref(const char *path, const char *name, size_t n)
{
	llm_st_file *f;
	const struct llm_st_tensor *t;
	float *out = (float *)malloc(n * sizeof(float));

	assert_non_null(out);
	assert_int_equal(llm_st_open(path, &f), LLM_OK);
	t = llm_st_get(f, name);
	assert_non_null(t);
	assert_int_equal(llm_st_numel(t), n);
	assert_int_equal(llm_st_read_f32(t, out, n), LLM_OK);
	llm_st_close(f);
	return out;
}

/* The tiny reference batch: ids (B,T) and lengths (B) from reference.json. */
struct emb_batch {
	int B, T;
	int *ids, *lengths;
};

static struct emb_batch emb_tiny_batch(void)
{
	json_t *doc = emb_json(EMB_TINY "reference.json");
	json_t *ids = json_object_get(doc, "input_ids"), *lens = json_object_get(doc, "lengths");
	struct emb_batch b;

	b.B = (int)json_array_size(ids);
	b.T = (int)json_array_size(json_array_get(ids, 0));
	b.ids = (int *)calloc((size_t)b.B * b.T, sizeof(int));
	b.lengths = (int *)calloc((size_t)b.B, sizeof(int));
	assert_non_null(b.ids);
	assert_non_null(b.lengths);
	for (int i = 0; i < b.B; i++) {
		b.lengths[i] = (int)json_integer_value(json_array_get(lens, (size_t)i));
		for (int t = 0; t < b.T; t++)
			b.ids[i * b.T + t] = (int)json_integer_value(
				json_array_get(json_array_get(ids, (size_t)i), (size_t)t));
	}
	json_decref(doc);
	return b;
}

static void emb_batch_free(struct emb_batch *b)
{
	free(b->ids);
	free(b->lengths);
}

/* Worst |a - r| and worst |a - r| / (atol + rtol |r|) over n values. */
struct emb_diff {
	double abs, ratio;
};

static void emb_diff_add(struct emb_diff *d, const float *a, const float *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - r[i]);
		double allow = emb_golden_tol->atol + emb_golden_tol->rtol * fabs((double)r[i]);

		d->abs = e > d->abs || isnan(e) ? e : d->abs;
		d->ratio = e / allow > d->ratio || isnan(e) ? e / allow : d->ratio;
	}
}

static double emb_cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;

	for (int i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

static llm_embedder *emb_golden_embedder(const char *dir, int max_batch, int max_len)
{
	llm_embedder *e = NULL;
	llm_err err = llm_embedder_load(dir, max_batch, max_len, emb_golden_flags, &e);

	if (err)
		fprintf(stderr, "load %s: %s (run `make deps` for the model assets)\n", dir,
			llm_last_error());
	assert_int_equal(err, LLM_OK);
	return e;
}

/* ---- all-MiniLM-L6-v2 ---- */

struct emb_minilm {
	json_t *doc;
	json_t *ids; /* per sentence, the tokenizer's ids */
	size_t n;
	float *ref; /* (n,384) */
	llm_embedder *e;
};

static struct emb_minilm emb_minilm_open(int max_batch)
{
	struct emb_minilm m;

	m.doc = emb_json(EMB_MINILM "reference.json");
	m.ids = json_object_get(m.doc, "input_ids");
	m.n = json_array_size(m.ids);
	assert_int_equal(m.n, EMB_MINILM_N);
	m.ref = emb_ref(EMB_MINILM "reference.safetensors", "embeddings", m.n * EMB_MINILM_C);
	m.e = emb_golden_embedder(EMB_ASSET, max_batch, 256);
	return m;
}

static void emb_minilm_close(struct emb_minilm *m)
{
	llm_embedder_destroy(m->e);
	free(m->ref);
	json_decref(m->doc);
}

/* Encodes sentences [first, first + B) as one right-padded batch into out. */
static void emb_minilm_encode(const struct emb_minilm *m, size_t first, int B, float *out)
{
	int T = 0, lengths[EMB_BATCH], *ids;

	assert_true(B <= EMB_BATCH);
	for (int b = 0; b < B; b++) {
		lengths[b] = (int)json_array_size(json_array_get(m->ids, first + (size_t)b));
		T = lengths[b] > T ? lengths[b] : T;
	}
	ids = (int *)calloc((size_t)B * T, sizeof(int));
	assert_non_null(ids);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < lengths[b]; t++)
			ids[b * T + t] = (int)json_integer_value(json_array_get(
				json_array_get(m->ids, first + (size_t)b), (size_t)t));
	assert_int_equal(llm_embedder_encode(m->e, ids, lengths, B, T, out), LLM_OK);
	free(ids);
}

/* ---- checks ---- */

/* The tiny BertModel's last hidden state (valid positions) and embeddings
 * match transformers. */
static void check_embedder_tiny(void)
{
	struct emb_batch b = emb_tiny_batch();
	size_t C = EMB_TINY_C;
	float *ref_h = emb_ref(EMB_TINY "reference.safetensors", "last_hidden_state",
			       (size_t)b.B * b.T * C);
	float *ref_e = emb_ref(EMB_TINY "reference.safetensors", "embeddings", (size_t)b.B * C);
	float *emb = (float *)calloc((size_t)b.B * C, sizeof(float));
	struct emb_diff dh = {0, 0}, de = {0, 0};
	llm_embedder *e = emb_golden_embedder(EMB_TINY "model", 4, 64);
	const float *h;
	int hb, ht;

	assert_non_null(emb);
	assert_int_equal(llm_embedder_dim(e), (int)C);
	assert_true(llm_embedder_hidden(e, &hb, &ht) == NULL);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, emb), LLM_OK);
	h = llm_embedder_hidden(e, &hb, &ht);
	assert_non_null(h);
	assert_int_equal(hb, b.B);
	assert_int_equal(ht, b.T); /* the longest row fills the batch */
	for (int i = 0; i < b.B; i++)
		emb_diff_add(&dh, h + (size_t)i * ht * C, ref_h + (size_t)i * b.T * C,
			     (size_t)b.lengths[i] * C);
	emb_diff_add(&de, emb, ref_e, (size_t)b.B * C);
	printf("tiny: hidden max abs err %.3g (%.3g of tol), embeddings %.3g (%.3g of tol)\n",
	       dh.abs, dh.ratio, de.abs, de.ratio);
	assert_true(dh.ratio <= 1.0);
	assert_true(de.ratio <= 1.0);
	llm_embedder_destroy(e);
	free(emb);
	free(ref_h);
	free(ref_e);
	emb_batch_free(&b);
}

/* all-MiniLM-L6-v2 embeds the 200 reference sentences, in batches of 32, in
 * the directions sentence-transformers gives. */
static void check_embedder_minilm(void)
{
	struct emb_minilm m = emb_minilm_open(EMB_BATCH);
	float *out = (float *)malloc(m.n * EMB_MINILM_C * sizeof(float));
	double min_cos = 1, max_abs = 0;
	size_t worst = 0;

	assert_non_null(out);
	assert_int_equal(llm_embedder_dim(m.e), EMB_MINILM_C);
	for (size_t i = 0; i < m.n; i += EMB_BATCH)
		emb_minilm_encode(&m, i, (int)(m.n - i < EMB_BATCH ? m.n - i : EMB_BATCH),
				  out + i * EMB_MINILM_C);
	for (size_t i = 0; i < m.n; i++) {
		const float *o = out + i * EMB_MINILM_C, *r = m.ref + i * EMB_MINILM_C;
		double c = emb_cosine(o, r, EMB_MINILM_C);

		if (!(c >= min_cos))
			min_cos = c, worst = i;
		for (int j = 0; j < EMB_MINILM_C; j++)
			max_abs = fmax(max_abs, fabs((double)o[j] - r[j]));
	}
	printf("minilm: min cosine %.9f (1 - min %.3g, sentence %zu), max abs err %.3g over %zu "
	       "sentences\n",
	       min_cos, 1 - min_cos, worst, max_abs, m.n);
	assert_true(min_cos >= emb_golden_tol->min_cos);
	free(out);
	emb_minilm_close(&m);
}

/* A batch of 32 (including the 256-token texts) gives the embeddings of the
 * same sentences encoded one at a time. */
static void check_embedder_minilm_batch(void)
{
	struct emb_minilm m = emb_minilm_open(EMB_BATCH);
	size_t first = 150; /* includes the truncated 256-token texts */
	float *batch = (float *)malloc(EMB_BATCH * EMB_MINILM_C * sizeof(float));
	float single[EMB_MINILM_C];
	double worst = 0;

	assert_non_null(batch);
	emb_minilm_encode(&m, first, EMB_BATCH, batch);
	for (int b = 0; b < EMB_BATCH; b++) {
		emb_minilm_encode(&m, first + (size_t)b, 1, single);
		for (int j = 0; j < EMB_MINILM_C; j++) {
			double d = fabs((double)single[j] - batch[b * EMB_MINILM_C + j]);

			worst = d <= worst ? worst : d; /* NaN sticks */
		}
	}
	printf("minilm: batch %d vs one at a time, max abs diff %.3g\n", EMB_BATCH, worst);
	assert_true(worst <= emb_golden_tol->batch_diff);
	free(batch);
	emb_minilm_close(&m);
}

#endif
