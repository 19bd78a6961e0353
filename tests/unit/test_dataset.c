/* Unit tests for agent/dataset: masks of each format, rendering through a
 * PromptVersion, truncation and dropping, malformed records, packing, the
 * validation split, seeded orders, sharding and resuming. Tokens come from
 * a small WordPiece vocabulary written to a temporary directory ([CLS] is
 * the BOS and [SEP] the EOS), and from GPT-2's files when `make deps` put
 * them in build/assets/gpt2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"

/* Ids of the test vocabulary (its line numbers). */
enum { PAD, UNK, CLS, SEP, MASK, USER, ASSISTANT, SYSTEM, COLON, A, B, C, D, E, F, G, Q };
#define IGN DS_IGNORE

static const char *vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nuser\nassistant\nsystem\n:\n"
			   "a\nb\nc\nd\ne\nf\ng\nq\n";

struct fixture {
	char dir[64];
	char path[128];
	llm_tok *tok;
	struct ds_config cfg;
	ds_dataset *d;
};

static void write_file(struct fixture *f, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* A fixture with train.jsonl holding text; cfg points at it. */
static void use_train(struct fixture *f, const char *text)
{
	write_file(f, "train.jsonl", text);
	snprintf(f->path, sizeof(f->path), "%s/train.jsonl", f->dir);
	f->cfg.train = f->path;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_dataset.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	write_file(f, "vocab.txt", vocab);
	snprintf(path, sizeof(path), "%s/vocab.txt", f->dir);
	assert_int_equal(llm_tok_load_wordpiece_file(path, true, &f->tok), LLM_OK);
	f->cfg.seq_len = 16;
	f->cfg.seed = 42;
	*state = f;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ds_destroy(f->d);
	llm_tok_destroy(f->tok);
	nftw(f->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void load_ok(struct fixture *f)
{
	llm_err rc = ds_load(&f->cfg, f->tok, &f->d);

	if (rc)
		fail_msg("ds_load: %s", llm_last_error());
}

static void load_fails(struct fixture *f, llm_err code, const char *message)
{
	assert_int_equal(ds_load(&f->cfg, f->tok, &f->d), code);
	assert_null(f->d);
	if (!strstr(llm_last_error(), message))
		fail_msg("'%s' does not contain '%s'", llm_last_error(), message);
}

static void expect_example(struct fixture *f, size_t i, const int32_t *ids, const int32_t *labels,
			   size_t n)
{
	const int32_t *gi, *gl;
	size_t len;

	assert_int_equal(ds_example(f->d, DS_TRAIN, i, &gi, &gl, &len), LLM_OK);
	assert_int_equal(len, n);
	assert_memory_equal(gi, ids, n * sizeof(int32_t));
	assert_memory_equal(gl, labels, n * sizeof(int32_t));
}

static void test_text_has_loss_on_every_token(void **state)
{
	struct fixture *f = *state;
	int32_t ids[] = {CLS, A, B, C, SEP}, labels[] = {IGN, A, B, C, SEP};
	struct ds_counts c;

	use_train(f, "{\"text\":\"a b c\"}\n");
	load_ok(f);
	expect_example(f, 0, ids, labels, 5);
	ds_get_counts(f->d, &c);
	assert_int_equal(c.examples, 1);
	assert_int_equal(c.tokens, 5);
	assert_int_equal(c.loss_tokens, 4);
}

static void test_prompt_completion_has_loss_on_completion_only(void **state)
{
	struct fixture *f = *state;
	int32_t ids[] = {CLS, A, B, C, D, SEP}, labels[] = {IGN, IGN, IGN, C, D, SEP};

	f->cfg.format = DS_PROMPT_COMPLETION;
	use_train(f, "{\"prompt\":\"a b\",\"completion\":\"c d\"}\n");
	load_ok(f);
	expect_example(f, 0, ids, labels, 6);
}

static void test_chat_has_loss_on_assistant_turns_only(void **state)
{
	struct fixture *f = *state;
	int32_t ids[] = {CLS, SYSTEM, COLON, G, USER, COLON, A, ASSISTANT, COLON, B, C, SEP};
	int32_t labels[] = {IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, B, C, SEP};

	f->cfg.format = DS_CHAT;
	use_train(f, "{\"messages\":[{\"role\":\"system\",\"content\":\"g\"},{\"role\":\"user\","
		     "\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b c\"}]}\n");
	load_ok(f);
	expect_example(f, 0, ids, labels, 12);
}

static void test_prompt_version_renders_the_prompt_side(void **state)
{
	struct fixture *f = *state;
	json_t *pv = json_loads("{\"template\":\"q: {{x}}\",\"variables\":[{\"name\":\"x\","
				"\"required\":true}]}",
				0, NULL);
	int32_t ids[] = {CLS, Q, COLON, A, B, C, SEP}, labels[] = {IGN, IGN, IGN, IGN, IGN, C, SEP};

	f->cfg.format = DS_PROMPT_COMPLETION;
	f->cfg.prompt = pv;
	use_train(f, "{\"x\":\"a b\",\"completion\":\"c\"}\n");
	load_ok(f);
	expect_example(f, 0, ids, labels, 7);
	ds_destroy(f->d);
	f->d = NULL;
	use_train(f, "{\"x\":\"a\",\"completion\":\"c\"}\n{\"x\":\"a\",\"y\":\"b\",\"completion\":"
		     "\"c\"}\n");
	load_fails(f, LLM_EINVAL, "train.jsonl:2: unknown variable 'y'");
	use_train(f, "{\"completion\":\"c\"}\n");
	load_fails(f, LLM_EINVAL, "train.jsonl:1: required variable 'x' has no value");
	json_decref(pv);
	pv = json_loads("{\"template\":\"{{y}}\"}", 0, NULL);
	f->cfg.prompt = pv;
	load_fails(f, LLM_EINVAL,
		   "dataset: PromptVersion: spec.template: variable 'y' is used but not declared");
	json_decref(pv);
}

static void test_chat_prompt_version_examples_carry_no_loss(void **state)
{
	struct fixture *f = *state;
	json_t *pv = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"{{x}}\"}],"
				"\"variables\":[{\"name\":\"x\"}],\"shots\":\"one\",\"examples\":"
				"[{\"inputs\":{\"x\":\"d\"},\"output\":\"e\"}]}",
				0, NULL);
	int32_t ids[] = {CLS,  USER,  COLON, D,		ASSISTANT, COLON, E,
			 USER, COLON, A,     ASSISTANT, COLON,	   B,	  SEP};
	int32_t labels[] = {IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN, B, SEP};

	f->cfg.format = DS_CHAT;
	f->cfg.prompt = pv;
	use_train(f, "{\"x\":\"a\",\"messages\":[{\"role\":\"assistant\",\"content\":\"b\"}]}\n");
	load_ok(f);
	expect_example(f, 0, ids, labels, 14);
	json_decref(pv);
}

static void test_long_examples_are_truncated_or_dropped(void **state)
{
	struct fixture *f = *state;
	int32_t ids[] = {CLS, A, B, C}, labels[] = {IGN, A, B, C};
	struct ds_counts c;

	f->cfg.seq_len = 4;
	use_train(f, "{\"text\":\"a\"}\n{\"text\":\"a b c d e\"}\n");
	load_ok(f);
	ds_get_counts(f->d, &c);
	assert_int_equal(c.examples, 2);
	assert_int_equal(c.truncated, 1);
	assert_int_equal(c.dropped, 0);
	expect_example(f, 1, ids, labels, 4);
	ds_destroy(f->d);
	f->cfg.drop_long = true;
	load_ok(f);
	ds_get_counts(f->d, &c);
	assert_int_equal(c.examples, 1);
	assert_int_equal(c.truncated, 0);
	assert_int_equal(c.dropped, 1);
}

static void test_malformed_records_name_file_and_line(void **state)
{
	struct fixture *f = *state;

	f->cfg.format = DS_PROMPT_COMPLETION;
	use_train(f, "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"prompt\":\"a\"}\n");
	load_fails(f, LLM_EINVAL, "train.jsonl:3: missing \"completion\"");
	use_train(f, "{\"prompt\":\"a\",\"completion\":\"b\"\n");
	load_fails(f, LLM_EPARSE, "train.jsonl:1: invalid JSON");
	use_train(f, "{\"prompt\":1,\"completion\":\"b\"}\n");
	load_fails(f, LLM_ETYPE, "train.jsonl:1: \"prompt\" is not a string");
	use_train(f, "[1]\n");
	load_fails(f, LLM_ETYPE, "train.jsonl:1: not a JSON object");
	f->cfg.format = DS_CHAT;
	use_train(f, "{\"messages\":[{\"role\":\"bot\",\"content\":\"a\"}]}\n");
	load_fails(f, LLM_EINVAL,
		   "train.jsonl:1: messages[0]: role \"bot\" is not system, user or assistant");
	use_train(f, "{\"messages\":[{\"role\":\"user\"}]}\n");
	load_fails(f, LLM_EINVAL, "train.jsonl:1: messages[0]: missing \"content\"");
	use_train(f, "{\"messages\":\"hi\"}\n");
	load_fails(f, LLM_ETYPE, "train.jsonl:1: \"messages\" is not an array");
}

static void test_skip_invalid_counts_skipped_records(void **state)
{
	struct fixture *f = *state;
	struct ds_counts c;

	f->cfg.skip_invalid = true;
	f->cfg.max_line = 40;
	use_train(f,
		  "{\"text\":\"a\"}\nnot json\n{\"txt\":\"a\"}\n{\"text\":\"a b a b a b a b a b a "
		  "b a b a b a b\"}\n{\"text\":\"b\"}\n");
	load_ok(f);
	ds_get_counts(f->d, &c);
	assert_int_equal(c.records, 5);
	assert_int_equal(c.skipped, 3);
	assert_int_equal(c.examples, 2);
}

static void test_long_line_is_an_error(void **state)
{
	struct fixture *f = *state;

	f->cfg.max_line = 20;
	use_train(f, "{\"text\":\"a\"}\n{\"text\":\"a b c d e f g\"}\n");
	load_fails(f, LLM_ETOOLARGE, "train.jsonl:2: line is longer than 20 bytes");
}

static void test_directory_is_read_in_name_order(void **state)
{
	struct fixture *f = *state;
	int32_t first[] = {CLS, A, SEP}, labels[] = {IGN, A, SEP};

	write_file(f, "b.jsonl", "{\"text\":\"b\"}\n{\"text\":\"b\"}\n{\"text\":7}\n");
	write_file(f, "a.jsonl", "{\"text\":\"a\"}\n");
	write_file(f, "notes.txt", "not a record\n");
	f->cfg.train = f->dir;
	load_fails(f, LLM_ETYPE, "b.jsonl:3: \"text\" is not a string");
	write_file(f, "b.jsonl", "{\"text\":\"b\"}\n");
	load_ok(f);
	assert_int_equal(ds_num_examples(f->d, DS_TRAIN), 2);
	expect_example(f, 0, first, labels, 3);
}

static void test_memory_cap_is_a_clear_error(void **state)
{
	struct fixture *f = *state;

	f->cfg.max_bytes = 1000;
	use_train(f, "{\"text\":\"a\"}\n");
	load_fails(f, LLM_ETOOLARGE, "dataset needs more than 1000 bytes of memory");
}

static void test_packing_keeps_examples_whole_and_masks_boundaries(void **state)
{
	struct fixture *f = *state;
	int32_t ids0[] = {CLS, A, SEP, CLS, B, C, SEP, SEP};
	int32_t lab0[] = {IGN, A, SEP, IGN, B, C, SEP, IGN};
	int32_t ids1[] = {CLS, D, SEP, SEP, SEP, SEP, SEP, SEP};
	int32_t lab1[] = {IGN, D, SEP, IGN, IGN, IGN, IGN, IGN};
	const int32_t *ids, *labels;

	f->cfg.seq_len = 8;
	use_train(f, "{\"text\":\"a\"}\n{\"text\":\"b c\"}\n{\"text\":\"d\"}\n");
	load_ok(f);
	assert_int_equal(ds_num_sequences(f->d, DS_TRAIN), 2);
	assert_int_equal(ds_sequence(f->d, DS_TRAIN, 0, &ids, &labels), LLM_OK);
	assert_memory_equal(ids, ids0, sizeof(ids0));
	assert_memory_equal(labels, lab0, sizeof(lab0));
	assert_int_equal(ds_sequence(f->d, DS_TRAIN, 1, &ids, &labels), LLM_OK);
	assert_memory_equal(ids, ids1, sizeof(ids1));
	assert_memory_equal(labels, lab1, sizeof(lab1));
	assert_int_equal(ds_sequence(f->d, DS_TRAIN, 2, &ids, &labels), LLM_EINVAL);
}

/* n text records "a", "a b", ... (lengths vary so examples are distinct). */
static void many_records(struct fixture *f, size_t n)
{
	char *text = calloc(n, 64), *p = text;

	for (size_t i = 0; i < n; i++) {
		p += snprintf(p, 64, "{\"text\":\"");
		for (size_t k = 0; k <= i % 5; k++)
			p += snprintf(p, 8, "%s%c", k ? " " : "", 'a' + (int)(i / 5 % 7));
		p += snprintf(p, 8, "\"}\n");
	}
	use_train(f, text);
	free(text);
}

/* The first token after [CLS] and the length of every example of a split. */
static void signature(const ds_dataset *d, enum ds_split s, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ds_num_examples(d, s) && n < size; i++) {
		const int32_t *ids, *labels;
		size_t len;

		assert_int_equal(ds_example(d, s, i, &ids, &labels, &len), LLM_OK);
		n += snprintf(out + n, size - n, "%d/%zu ", ids[1], len);
	}
}

static void test_validation_split_is_seeded(void **state)
{
	struct fixture *f = *state;
	char a[1024], b[1024];
	struct ds_counts c;

	many_records(f, 20);
	f->cfg.validation_split = 0.25;
	load_ok(f);
	ds_get_counts(f->d, &c);
	assert_int_equal(c.val_examples, 5);
	assert_int_equal(c.train_examples, 15);
	assert_true(c.val_sequences > 0);
	signature(f->d, DS_VALIDATION, a, sizeof(a));
	ds_destroy(f->d);
	load_ok(f);
	signature(f->d, DS_VALIDATION, b, sizeof(b));
	assert_string_equal(a, b);
	ds_destroy(f->d);
	f->cfg.seed = 7;
	load_ok(f);
	signature(f->d, DS_VALIDATION, b, sizeof(b));
	assert_string_not_equal(a, b);
}

static void test_validation_file_is_kept_apart(void **state)
{
	struct fixture *f = *state;
	char path[128];

	write_file(f, "val.jsonl", "{\"text\":\"g\"}\n{\"text\":\"f\"}\n");
	snprintf(path, sizeof(path), "%s/val.jsonl", f->dir);
	f->cfg.validation = path;
	use_train(f, "{\"text\":\"a\"}\n");
	load_ok(f);
	assert_int_equal(ds_num_examples(f->d, DS_TRAIN), 1);
	assert_int_equal(ds_num_examples(f->d, DS_VALIDATION), 2);
	ds_destroy(f->d);
	f->d = NULL;
	f->cfg.validation_split = 0.1;
	load_fails(f, LLM_EINVAL, "set at most one of validation and validationSplit");
}

static bool is_permutation(const size_t *p, size_t n)
{
	bool seen[256] = {0};

	for (size_t i = 0; i < n; i++) {
		if (p[i] >= n || seen[p[i]])
			return false;
		seen[p[i]] = true;
	}
	return true;
}

static void test_epoch_order_depends_on_seed_and_epoch_only(void **state)
{
	struct fixture *f = *state;
	size_t a[64], b[64], n;

	f->cfg.seq_len = 8;
	many_records(f, 60);
	load_ok(f);
	n = ds_num_sequences(f->d, DS_TRAIN);
	assert_true(n > 16 && n <= 64);
	ds_epoch_order(f->d, 3, a);
	ds_epoch_order(f->d, 3, b);
	assert_true(is_permutation(a, n));
	assert_memory_equal(a, b, n * sizeof(size_t));
	ds_epoch_order(f->d, 4, b);
	assert_true(is_permutation(b, n));
	assert_memory_not_equal(a, b, n * sizeof(size_t));
}

/* Runs steps of rank's cursor from pos and appends its indices to out. */
static void take(const ds_dataset *d, struct ds_shard sh, struct ds_pos pos, size_t steps,
		 size_t *out)
{
	ds_cursor *c;
	size_t per = sh.global_batch / sh.world;

	assert_int_equal(ds_cursor_new(d, &sh, pos, &c), LLM_OK);
	for (size_t s = 0; s < steps; s++)
		assert_int_equal(ds_cursor_next(c, out + s * per), LLM_OK);
	ds_cursor_destroy(c);
}

static void test_rank_shards_partition_the_global_batch(void **state)
{
	struct fixture *f = *state;
	struct ds_shard one = {8, 2, 1, 0}, four = {8, 2, 4, 0};
	size_t whole[5 * 8], part[4][5 * 2], steps = 5;
	struct ds_pos start = {0, 0};

	f->cfg.seq_len = 8;
	many_records(f, 60);
	load_ok(f);
	assert_int_equal(ds_steps_per_epoch(f->d, 8), ds_num_sequences(f->d, DS_TRAIN) / 8);
	take(f->d, one, start, steps, whole);
	for (size_t r = 0; r < 4; r++) {
		four.rank = r;
		take(f->d, four, start, steps, part[r]);
	}
	for (size_t s = 0; s < steps; s++) {
		bool seen[256] = {0};

		for (size_t r = 0; r < 4; r++) {
			for (size_t k = 0; k < 2; k++) {
				size_t i = part[r][s * 2 + k];

				assert_false(seen[i]);
				seen[i] = true;
				assert_int_equal(i, whole[s * 8 + r * 2 + k]);
			}
		}
	}
}

static void test_cursor_resumes_from_a_saved_position(void **state)
{
	struct fixture *f = *state;
	struct ds_shard sh = {4, 1, 2, 1};
	size_t all[40 * 2], resumed[40 * 2], per_epoch, k;
	struct ds_pos pos;
	ds_cursor *c;

	f->cfg.seq_len = 8;
	many_records(f, 60);
	load_ok(f);
	per_epoch = ds_steps_per_epoch(f->d, 4);
	assert_true(per_epoch > 1 && per_epoch + 3 < 40);
	k = per_epoch + 3; /* resume inside the second epoch */
	take(f->d, sh, (struct ds_pos){0, 0}, 40, all);
	assert_int_equal(ds_cursor_new(f->d, &sh, (struct ds_pos){0, 0}, &c), LLM_OK);
	for (size_t s = 0; s < k; s++)
		assert_int_equal(ds_cursor_next(c, resumed), LLM_OK);
	pos = ds_cursor_pos(c);
	ds_cursor_destroy(c);
	assert_int_equal(pos.epoch, 1);
	assert_int_equal(pos.step, 3);
	take(f->d, sh, pos, 40 - k, resumed);
	assert_memory_equal(resumed, all + k * 2, (40 - k) * 2 * sizeof(size_t));
	pos.step = per_epoch;
	assert_int_equal(ds_cursor_new(f->d, &sh, pos, &c), LLM_EINVAL);
	sh.global_batch = 5; /* not a multiple of micro batch x world */
	assert_int_equal(ds_cursor_new(f->d, &sh, (struct ds_pos){0, 0}, &c), LLM_EINVAL);
}

static void test_gpt2_text_ends_with_endoftext(void **state)
{
	struct fixture *f = *state;
	int32_t ids[] = {15496, 995, 50256}, labels[] = {15496, 995, 50256};
	const int32_t *seq, *seq_labels;

	if (access("build/assets/gpt2/encoder.json", R_OK) != 0)
		skip();
	llm_tok_destroy(f->tok);
	f->tok = NULL;
	assert_int_equal(llm_tok_load("build/assets/gpt2", &f->tok), LLM_OK);
	use_train(f, "{\"text\":\"Hello world\"}\n");
	load_ok(f);
	/* No BOS: the first token is a target in the example, not once packed. */
	expect_example(f, 0, ids, labels, 3);
	assert_int_equal(ds_sequence(f->d, DS_TRAIN, 0, &seq, &seq_labels), LLM_OK);
	assert_int_equal(seq[0], 15496);
	assert_int_equal(seq_labels[0], IGN);
	assert_int_equal(seq[3], 50256); /* padding is the EOS, without loss */
	assert_int_equal(seq_labels[3], IGN);
}

static void test_config_from_a_finetunejob_spec(void **state)
{
	struct ds_config cfg = {0};
	json_t *spec = json_loads("{\"dataset\":{\"train\":\"pvc://d/t.jsonl\",\"format\":"
				  "\"chat\",\"truncate\":\"drop\",\"skipInvalid\":true,"
				  "\"validationSplit\":0.1},\"hyperparameters\":{"
				  "\"sequenceLength\":256,\"seed\":7}}",
				  0, NULL);

	(void)state;
	assert_int_equal(ds_config_from_spec(spec, &cfg), LLM_OK);
	assert_int_equal(cfg.format, DS_CHAT);
	assert_true(cfg.drop_long);
	assert_true(cfg.skip_invalid);
	assert_true(cfg.validation_split > 0.09 && cfg.validation_split < 0.11);
	assert_int_equal(cfg.seq_len, 256);
	assert_int_equal(cfg.seed, 7);
	json_decref(spec);
	spec = json_loads("{\"dataset\":{\"train\":\"x\"}}", 0, NULL);
	assert_int_equal(ds_config_from_spec(spec, &cfg), LLM_OK);
	assert_int_equal(cfg.format, DS_TEXT);
	assert_false(cfg.drop_long);
	assert_false(cfg.skip_invalid);
	assert_int_equal(cfg.seq_len, 512);
	assert_int_equal(cfg.seed, 42);
	assert_true(cfg.validation_split == 0);
	json_decref(spec);
	spec = json_loads("{\"dataset\":{\"format\":\"csv\"}}", 0, NULL);
	assert_int_equal(ds_config_from_spec(spec, &cfg), LLM_EINVAL);
	assert_string_equal(llm_last_error(),
			    "dataset format \"csv\" is not text, prompt-completion or chat");
	json_decref(spec);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_text_has_loss_on_every_token),
		T(test_prompt_completion_has_loss_on_completion_only),
		T(test_chat_has_loss_on_assistant_turns_only),
		T(test_prompt_version_renders_the_prompt_side),
		T(test_chat_prompt_version_examples_carry_no_loss),
		T(test_long_examples_are_truncated_or_dropped),
		T(test_malformed_records_name_file_and_line),
		T(test_skip_invalid_counts_skipped_records),
		T(test_long_line_is_an_error),
		T(test_directory_is_read_in_name_order),
		T(test_memory_cap_is_a_clear_error),
		T(test_packing_keeps_examples_whole_and_masks_boundaries),
		T(test_validation_split_is_seeded),
		T(test_validation_file_is_kept_apart),
		T(test_epoch_order_depends_on_seed_and_epoch_only),
		T(test_rank_shards_partition_the_global_batch),
		T(test_cursor_resumes_from_a_saved_position),
		T(test_gpt2_text_ends_with_endoftext),
		cmocka_unit_test(test_config_from_a_finetunejob_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
