/* Unit tests for kernels/models/bert.c (llmops_embedder.h): parity with
 * transformers on a tiny random BertModel and with sentence-transformers on
 * all-MiniLM-L6-v2 (the checks and their tolerances are embedder_golden.h,
 * shared with the backend tests), padding invariance, and clear errors for
 * malformed configs, weights and inputs (broken copies of the tiny model in
 * a temp dir). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_safetensors.h"
#include "llmops_embedder.h"
#include "tmpdir.h"

#include "embedder_golden.h"

#define TINY EMB_TINY

/* ---- tiny model: transformers parity ---- */

static void test_tiny_matches_transformers(void **state)
{
	(void)state;
	check_embedder_tiny();
}

/* Padding ids are never read, and a wider T (row stride) changes nothing. */
static void test_tiny_padding_and_width_do_not_change_results(void **state)
{
	struct emb_batch b = emb_tiny_batch();
	int W = b.T + 9, *wide = malloc(sizeof(int) * b.B * W);
	float a[3 * 64], w[3 * 64];
	llm_embedder *e;

	(void)state;
	assert_int_equal(b.B, 3);
	assert_non_null(wide);
	for (int i = 0; i < b.B * W; i++)
		wide[i] = -7; /* out of range: must be ignored */
	for (int i = 0; i < b.B; i++)
		memcpy(wide + i * W, b.ids + i * b.T, sizeof(int) * b.lengths[i]);
	assert_int_equal(llm_embedder_load(TINY "model", 3, 64, 0, &e), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, a), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, wide, b.lengths, b.B, W, w), LLM_OK);
	assert_memory_equal(a, w, sizeof(a));
	llm_embedder_destroy(e);
	free(wide);
	emb_batch_free(&b);
}

static void test_tiny_info_describes_the_model(void **state)
{
	struct llm_embedder_info info;
	llm_embedder *e;

	(void)state;
	assert_int_equal(llm_embedder_load(TINY "model", 2, 16, 0, &e), LLM_OK);
	llm_embedder_info(e, &info);
	assert_int_equal(info.dim, 64);
	assert_int_equal(info.layers, 2);
	assert_int_equal(info.heads, 4);
	assert_int_equal(info.ffn, 128);
	assert_int_equal(info.vocab, 320);
	assert_int_equal(info.max_positions, 64);
	assert_int_equal(info.max_seq_length, 0);
	assert_int_equal(info.max_batch, 2);
	assert_int_equal(info.max_len, 16);
	assert_true(info.normalize); /* no modules.json: mean + normalize */
	/* embeddings (320 + 64 + 2 + 2) x 64, layers 2 x (4x64x64 + 2x128x64 + 9x64 + 128) */
	assert_int_equal(info.param_count, 24832 + 2 * 33472);
	assert_true(info.arena_bytes >= info.param_count * sizeof(float));
	llm_embedder_destroy(e);
}

/* ---- all-MiniLM-L6-v2: sentence-transformers parity ---- */

static void test_minilm_matches_sentence_transformers(void **state)
{
	(void)state;
	check_embedder_minilm();
}

static void test_minilm_info_reads_sentence_transformers_config(void **state)
{
	struct llm_embedder_info info;
	llm_embedder *e;

	(void)state;
	assert_int_equal(llm_embedder_load(EMB_ASSET, 1, 128, 0, &e), LLM_OK);
	llm_embedder_info(e, &info);
	assert_int_equal(info.dim, 384);
	assert_int_equal(info.layers, 6);
	assert_int_equal(info.heads, 12);
	assert_int_equal(info.vocab, 30522);
	assert_int_equal(info.max_seq_length, 256);
	assert_true(info.normalize);
	/* 22,713,216 parameters in BertModel less the pooler's 384 x 384 + 384 */
	assert_int_equal(info.param_count, 22713216 - 147840);
	llm_embedder_destroy(e);
}

static void test_minilm_batch_of_32_equals_one_at_a_time(void **state)
{
	(void)state;
	check_embedder_minilm_batch();
}

/* ---- malformed models ---- */

/* What to break in a copy of the tiny model. */
struct breakage {
	const char *key;	/* config.json key to change (NULL: none) */
	const char *json;	/* its new value as JSON text (NULL: delete the key) */
	const char *drop;	/* tensor to leave out */
	const char *reshape;	/* tensor whose shape is swapped, (a) to (1, a) */
	const char *retype;	/* tensor written as I32 */
	const char *prefix;	/* prefix added to every tensor name */
	const char *modules;	/* modules.json text */
	const char *pooling;	/* 1_Pooling/config.json text */
	const char *raw_config; /* config.json text, instead of the edited one */
	bool bf16;		/* every tensor converted to BF16 */
};

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
}

static void write_config(const char *dir, const struct breakage *k)
{
	char path[256];
	json_t *cfg = emb_json(TINY "model/config.json"), *v;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (k->raw_config) {
		write_text(path, k->raw_config);
		json_decref(cfg);
		return;
	}
	if (k->key && k->json) {
		v = json_loads(k->json, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		json_object_set_new(cfg, k->key, v);
	} else if (k->key) {
		json_object_del(cfg, k->key);
	}
	assert_int_equal(json_dump_file(cfg, path, 0), 0);
	json_decref(cfg);
}

/* out, with t's F32 data rounded to BF16 in a buffer stored in *owned. */
static struct llm_st_out to_bf16(const struct llm_st_out *out, const struct llm_st_tensor *t,
				 void **owned)
{
	size_t n = llm_st_numel(t);
	float *f = malloc(n * sizeof(float));
	uint16_t *h = malloc(n * sizeof(uint16_t));
	struct llm_st_out r = *out;

	assert_non_null(f);
	assert_non_null(h);
	assert_int_equal(llm_st_read_f32(t, f, n), LLM_OK);
	assert_int_equal(llm_st_f32_to_bf16(f, h, n), LLM_OK);
	free(f);
	*owned = h;
	r.dtype = LLM_ST_BF16;
	r.data = h;
	return r;
}

static void write_weights(const char *dir, const struct breakage *k)
{
	struct llm_st_out outs[64];
	void *owned[64] = {NULL};
	char names[64][160], path[256];
	int64_t shapes[64][2];
	llm_st_file *f;
	size_t n = 0;

	assert_int_equal(llm_st_open(TINY "model/model.safetensors", &f), LLM_OK);
	assert_true(llm_st_count(f) <= 64);
	for (size_t i = 0; i < llm_st_count(f); i++) {
		const struct llm_st_tensor *t = llm_st_at(f, i);

		if (k->drop && strcmp(t->name, k->drop) == 0)
			continue;
		snprintf(names[n], sizeof(names[n]), "%s%s", k->prefix ? k->prefix : "", t->name);
		shapes[n][0] = t->shape[0];
		shapes[n][1] = t->ndim > 1 ? t->shape[1] : 0;
		outs[n] = (struct llm_st_out){names[n], t->dtype, t->ndim, shapes[n], t->data};
		if (k->reshape && strcmp(t->name, k->reshape) == 0) {
			/* (a, b) becomes (b, a); (a) becomes (1, a) */
			shapes[n][0] = t->ndim > 1 ? t->shape[1] : 1;
			shapes[n][1] = t->shape[0];
			outs[n].ndim = 2;
		}
		if (k->retype && strcmp(t->name, k->retype) == 0)
			outs[n].dtype = LLM_ST_I32;
		if (k->bf16 && t->dtype == LLM_ST_F32)
			outs[n] = to_bf16(&outs[n], t, &owned[n]);
		n++;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_int_equal(llm_st_write(path, outs, n, NULL), LLM_OK);
	for (size_t i = 0; i < n; i++)
		free(owned[i]);
	llm_st_close(f);
}

/* Writes a copy of the tiny model broken as k says into tmpdir/name. */
static void make_model(char *dir, size_t len, const char *name, const struct breakage *k)
{
	char path[256];

	snprintf(dir, len, "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_config(dir, k);
	write_weights(dir, k);
	if (k->modules) {
		snprintf(path, sizeof(path), "%s/modules.json", dir);
		write_text(path, k->modules);
	}
	if (k->pooling) {
		snprintf(path, sizeof(path), "%s/1_Pooling", dir);
		assert_int_equal(mkdir(path, 0755), 0);
		snprintf(path, sizeof(path), "%s/1_Pooling/config.json", dir);
		write_text(path, k->pooling);
	}
}

/* Loading the broken model fails with code and a detail naming file and
 * what (a field or tensor). */
static void expect_load_error(const char *name, const struct breakage *k, llm_err code,
			      const char *file, const char *what)
{
	char dir[256];
	llm_embedder *e = NULL;
	llm_err err;

	make_model(dir, sizeof(dir), name, k);
	err = llm_embedder_load(dir, 2, 16, 0, &e);
	if (err != code)
		fail_msg("%s: got %s (%s), want %s", name, llm_errname(err), llm_last_error(),
			 llm_errname(code));
	assert_null(e);
	if (!strstr(llm_last_error(), file) || !strstr(llm_last_error(), what))
		fail_msg("%s: detail \"%s\" lacks \"%s\" or \"%s\"", name, llm_last_error(), file,
			 what);
}

static void test_bad_config_fields_are_named(void **state)
{
	(void)state;
	expect_load_error("no_hidden", &(struct breakage){.key = "hidden_size"}, LLM_ENOTFOUND,
			  "config.json", "hidden_size");
	expect_load_error("str_layers",
			  &(struct breakage){.key = "num_hidden_layers", .json = "\"2\""},
			  LLM_ETYPE, "config.json", "num_hidden_layers");
	expect_load_error("neg_ffn", &(struct breakage){.key = "intermediate_size", .json = "-4"},
			  LLM_EINVAL, "config.json", "intermediate_size");
	expect_load_error("huge_vocab", &(struct breakage){.key = "vocab_size", .json = "1e12"},
			  LLM_ETYPE, "config.json", "vocab_size");
	expect_load_error("big_vocab",
			  &(struct breakage){.key = "vocab_size", .json = "100000000000"},
			  LLM_ETOOLARGE, "config.json", "vocab_size");
	expect_load_error("heads", &(struct breakage){.key = "num_attention_heads", .json = "5"},
			  LLM_EINVAL, "config.json", "num_attention_heads");
	expect_load_error("gpt2", &(struct breakage){.key = "model_type", .json = "\"gpt2\""},
			  LLM_EUNSUPPORTED, "config.json", "model_type");
	expect_load_error("relu", &(struct breakage){.key = "hidden_act", .json = "\"relu\""},
			  LLM_EUNSUPPORTED, "config.json", "hidden_act");
	expect_load_error("eps", &(struct breakage){.key = "layer_norm_eps", .json = "0"},
			  LLM_EINVAL, "config.json", "layer_norm_eps");
	expect_load_error("syntax", &(struct breakage){.raw_config = "{\"hidden_size\": 64,"},
			  LLM_EPARSE, "config.json", "");
}

static void test_config_disagreeing_with_weights_names_the_tensor(void **state)
{
	(void)state;
	/* config says 3 layers, the file has 2 */
	expect_load_error("layers", &(struct breakage){.key = "num_hidden_layers", .json = "3"},
			  LLM_ENOTFOUND, "model.safetensors", "encoder.layer.2.");
	/* config says 96 channels: the embeddings have the wrong shape */
	expect_load_error("hidden", &(struct breakage){.key = "hidden_size", .json = "96"},
			  LLM_EINVAL, "model.safetensors", "embeddings.word_embeddings.weight");
}

static void test_bad_weights_are_named(void **state)
{
	(void)state;
	expect_load_error(
		"drop", &(struct breakage){.drop = "encoder.layer.1.output.LayerNorm.bias"},
		LLM_ENOTFOUND, "model.safetensors", "encoder.layer.1.output.LayerNorm.bias");
	expect_load_error(
		"reshape",
		&(struct breakage){.reshape = "encoder.layer.0.intermediate.dense.weight"},
		LLM_EINVAL, "model.safetensors",
		"encoder.layer.0.intermediate.dense.weight has shape [64, 128], expected [128, "
		"64]");
	expect_load_error("reshape1", &(struct breakage){.reshape = "embeddings.LayerNorm.bias"},
			  LLM_EINVAL, "model.safetensors",
			  "embeddings.LayerNorm.bias has shape [1, 64], expected [64]");
	expect_load_error(
		"retype", &(struct breakage){.retype = "encoder.layer.0.attention.self.key.bias"},
		LLM_EUNSUPPORTED, "model.safetensors", "encoder.layer.0.attention.self.key.bias");
}

static void test_garbage_weights_file_is_a_parse_error(void **state)
{
	char dir[256], path[300];
	llm_embedder *e = NULL;

	(void)state;
	make_model(dir, sizeof(dir), "garbage", &(struct breakage){0});
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	write_text(path, "\x10\0\0\0\0\0\0\0{not json at all}");
	assert_int_equal(llm_embedder_load(dir, 1, 8, 0, &e), LLM_EPARSE);
	assert_null(e);
	assert_non_null(strstr(llm_last_error(), "model.safetensors"));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(llm_embedder_load(dir, 1, 8, 0, &e), LLM_ENOTFOUND);
	assert_non_null(strstr(llm_last_error(), "config.json"));
}

/* Checkpoints saved from BertForMaskedLM and friends prefix "bert.". */
static void test_bert_prefix_loads_the_same_model(void **state)
{
	struct emb_batch b = emb_tiny_batch();
	float a[3 * 64], p[3 * 64];
	char dir[256];
	llm_embedder *e;

	(void)state;
	make_model(dir, sizeof(dir), "prefixed", &(struct breakage){.prefix = "bert."});
	assert_int_equal(llm_embedder_load(dir, 3, 32, 0, &e), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, p), LLM_OK);
	llm_embedder_destroy(e);
	assert_int_equal(llm_embedder_load(TINY "model", 3, 32, 0, &e), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, a), LLM_OK);
	llm_embedder_destroy(e);
	assert_memory_equal(a, p, sizeof(a));
	emb_batch_free(&b);
}

/* BF16 checkpoints are converted at load: the embeddings stay close to the
 * fp32 reference (BF16 keeps 8 bits of mantissa). */
static void test_bf16_weights_load_and_stay_close(void **state)
{
	struct emb_batch b = emb_tiny_batch();
	float *ref = emb_ref(TINY "reference.safetensors", "embeddings", 3 * 64), out[3 * 64];
	char dir[256];
	llm_embedder *e;
	double min_cos = 1;

	(void)state;
	make_model(dir, sizeof(dir), "bf16", &(struct breakage){.bf16 = true});
	assert_int_equal(llm_embedder_load(dir, 3, 32, 0, &e), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, out), LLM_OK);
	for (int i = 0; i < 3; i++)
		min_cos = fmin(min_cos, emb_cosine(out + i * 64, ref + i * 64, 64));
	printf("tiny bf16: min cosine %.6f\n", min_cos);
	assert_true(min_cos > 0.99);
	assert_true(min_cos < 1 - 1e-9); /* the weights really were rounded */
	llm_embedder_destroy(e);
	free(ref);
	emb_batch_free(&b);
}

#define MOD_T "{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"}"
#define MOD_P "{\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"}"
#define MOD_N "{\"type\": \"sentence_transformers.models.Normalize\", \"path\": \"2_Normalize\"}"
#define POOL_MEAN                                                                \
	"{\"word_embedding_dimension\": 64, \"pooling_mode_cls_token\": false, " \
	"\"pooling_mode_mean_tokens\": true, \"pooling_mode_max_tokens\": false}"

/* Without a Normalize module the embedding is the plain mean: the reference
 * direction with a norm other than 1. */
static void test_modules_without_normalize_give_the_plain_mean(void **state)
{
	struct emb_batch b = emb_tiny_batch();
	float *ref = emb_ref(TINY "reference.safetensors", "embeddings", 3 * 64), out[3 * 64];
	char dir[256];
	llm_embedder *e;

	(void)state;
	make_model(dir, sizeof(dir), "mean_only",
		   &(struct breakage){.modules = "[" MOD_T ", " MOD_P "]", .pooling = POOL_MEAN});
	assert_int_equal(llm_embedder_load(dir, 3, 32, 0, &e), LLM_OK);
	assert_int_equal(llm_embedder_encode(e, b.ids, b.lengths, b.B, b.T, out), LLM_OK);
	for (int i = 0; i < 3; i++) {
		double sq = 0;

		for (int j = 0; j < 64; j++)
			sq += (double)out[i * 64 + j] * out[i * 64 + j];
		assert_true(fabs(sqrt(sq) - 1) > 1e-3);
		assert_true(emb_cosine(out + i * 64, ref + i * 64, 64) > 1 - 1e-6);
	}
	llm_embedder_destroy(e);
	free(ref);
	emb_batch_free(&b);
}

static void test_unsupported_modules_are_named(void **state)
{
	(void)state;
	expect_load_error("dense",
			  &(struct breakage){.modules = "[" MOD_T ", " MOD_P ", {\"type\": "
							"\"sentence_transformers.models.Dense\", "
							"\"path\": \"2_Dense\"}]",
					     .pooling = POOL_MEAN},
			  LLM_EUNSUPPORTED, "modules.json", "models.Dense");
	expect_load_error("cls",
			  &(struct breakage){.modules = "[" MOD_T ", " MOD_P ", " MOD_N "]",
					     .pooling = "{\"pooling_mode_cls_token\": true, "
							"\"pooling_mode_mean_tokens\": true}"},
			  LLM_EUNSUPPORTED, "1_Pooling/config.json", "pooling_mode_cls_token");
	expect_load_error("no_pool_file",
			  &(struct breakage){.modules = "[" MOD_T ", " MOD_P ", " MOD_N "]"},
			  LLM_ENOTFOUND, "1_Pooling/config.json", "");
	expect_load_error("no_pool", &(struct breakage){.modules = "[" MOD_T ", " MOD_N "]"},
			  LLM_EUNSUPPORTED, "modules.json", "Pooling");
	expect_load_error("not_array", &(struct breakage){.modules = "{}"}, LLM_ETYPE,
			  "modules.json", "array");
	expect_load_error("pool_dim",
			  &(struct breakage){.modules = "[" MOD_T ", " MOD_P "]",
					     .pooling = "{\"word_embedding_dimension\": 32, "
							"\"pooling_mode_mean_tokens\": true}"},
			  LLM_EINVAL, "", "word_embedding_dimension");
}

static void test_load_arguments_are_checked(void **state)
{
	llm_embedder *e = NULL;

	(void)state;
	assert_int_equal(llm_embedder_load(TINY "model", 1, 65, 0, &e), LLM_ETOOLARGE);
	assert_non_null(strstr(llm_last_error(), "max_position_embeddings"));
	assert_int_equal(llm_embedder_load(TINY "model", 0, 8, 0, &e), LLM_EINVAL);
	assert_int_equal(llm_embedder_load(TINY "model", 1, 0, 0, &e), LLM_EINVAL);
	assert_int_equal(llm_embedder_load(NULL, 1, 8, 0, &e), LLM_EINVAL);
	assert_int_equal(llm_embedder_load("/nonexistent/model", 1, 8, 0, &e), LLM_ENOTFOUND);
	assert_null(e);
	llm_embedder_destroy(NULL);
}

/* ---- bad inputs ---- */

static void expect_encode_error(llm_embedder *e, const int *ids, const int *lengths, int B, int T,
				llm_err code, const char *what)
{
	float out[4 * 64];
	int hb, ht;

	for (int i = 0; i < 4 * 64; i++)
		out[i] = 42;
	assert_int_equal(llm_embedder_encode(e, ids, lengths, B, T, out), code);
	if (!strstr(llm_last_error(), what))
		fail_msg("detail \"%s\" lacks \"%s\"", llm_last_error(), what);
	for (int i = 0; i < 4 * 64; i++)
		assert_true(out[i] == 42);
	assert_null(llm_embedder_hidden(e, &hb, &ht));
	assert_int_equal(hb, 0);
}

static void test_bad_inputs_are_refused(void **state)
{
	int ids[4 * 8] = {0}, lengths[4] = {8, 3, 8, 1};
	float out[4 * 64];
	llm_embedder *e;

	(void)state;
	assert_int_equal(llm_embedder_load(TINY "model", 3, 8, 0, &e), LLM_OK);
	ids[1 * 8 + 2] = 320;
	expect_encode_error(e, ids, lengths, 2, 8, LLM_EINVAL, "row 1 position 2");
	ids[1 * 8 + 2] = -1;
	expect_encode_error(e, ids, lengths, 2, 8, LLM_EINVAL, "row 1 position 2");
	ids[1 * 8 + 2] = 319;
	assert_int_equal(llm_embedder_encode(e, ids, lengths, 2, 8, out), LLM_OK);
	expect_encode_error(e, ids, lengths, 4, 8, LLM_ETOOLARGE, "max_batch");
	lengths[0] = 9;
	expect_encode_error(e, ids, lengths, 2, 8, LLM_ETOOLARGE, "lengths[0]");
	lengths[0] = 0;
	expect_encode_error(e, ids, lengths, 2, 8, LLM_EINVAL, "lengths[0]");
	lengths[0] = 5;
	expect_encode_error(e, ids, lengths, 2, 4, LLM_EINVAL, "lengths[0]");
	expect_encode_error(e, ids, lengths, 1, 9, LLM_ETOOLARGE, "max_len");
	expect_encode_error(e, ids, lengths, 0, 8, LLM_EINVAL, "B 0");
	expect_encode_error(e, NULL, lengths, 1, 8, LLM_EINVAL, "NULL");
	llm_embedder_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_matches_transformers),
		cmocka_unit_test(test_tiny_padding_and_width_do_not_change_results),
		cmocka_unit_test(test_tiny_info_describes_the_model),
		cmocka_unit_test(test_minilm_matches_sentence_transformers),
		cmocka_unit_test(test_minilm_info_reads_sentence_transformers_config),
		cmocka_unit_test(test_minilm_batch_of_32_equals_one_at_a_time),
		cmocka_unit_test(test_bad_config_fields_are_named),
		cmocka_unit_test(test_config_disagreeing_with_weights_names_the_tensor),
		cmocka_unit_test(test_bad_weights_are_named),
		cmocka_unit_test(test_garbage_weights_file_is_a_parse_error),
		cmocka_unit_test(test_bert_prefix_loads_the_same_model),
		cmocka_unit_test(test_bf16_weights_load_and_stay_close),
		cmocka_unit_test(test_modules_without_normalize_give_the_plain_mean),
		cmocka_unit_test(test_unsupported_modules_are_named),
		cmocka_unit_test(test_load_arguments_are_checked),
		cmocka_unit_test(test_bad_inputs_are_refused),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
