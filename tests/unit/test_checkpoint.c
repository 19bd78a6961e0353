/* Unit tests for agent/checkpoint: a checkpoint exists only once committed,
 * interrupted writes and deletes never look valid, rotation keeps the
 * newest, and the newest valid one is what a resume finds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"

struct fx {
	char root[256];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test_checkpoint.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	snprintf(f->root, sizeof(f->root), "%s/out/checkpoints", tmpl);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[300];

	*strstr(f->root, "/out/checkpoints") = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* A complete checkpoint of step with a weights file holding tag. */
static void save(struct fx *f, int64_t step, const char *tag)
{
	char tmp[512];
	json_t *st = json_pack("{s:I}", "step", (json_int_t)step);

	assert_int_equal(ckpt_begin(f->root, step, tmp, sizeof(tmp)), LLM_OK);
	write_file(tmp, "weights", tag);
	assert_int_equal(ckpt_write_json(tmp, CKPT_STATE_FILE, st), LLM_OK);
	assert_int_equal(ckpt_commit(f->root, step, tmp), LLM_OK);
	json_decref(st);
}

static size_t list(struct fx *f, int64_t *steps)
{
	size_t n = 99;

	assert_int_equal(ckpt_list(f->root, steps, 16, &n), LLM_OK);
	return n;
}

static void test_checkpoint_missing_root_lists_nothing(void **state)
{
	int64_t steps[16];

	assert_int_equal(list(*state, steps), 0);
}

static void test_checkpoint_exists_only_after_commit(void **state)
{
	struct fx *f = *state;
	char tmp[512], path[512];
	int64_t steps[16];
	struct stat st;

	assert_int_equal(ckpt_begin(f->root, 50, tmp, sizeof(tmp)), LLM_OK);
	write_file(tmp, CKPT_STATE_FILE, "{\"step\": 50}");
	assert_int_equal(list(f, steps), 0); /* a crash here leaves no step-50 */
	assert_int_equal(ckpt_commit(f->root, 50, tmp), LLM_OK);
	assert_int_equal(list(f, steps), 1);
	assert_int_equal(steps[0], 50);
	assert_int_equal(ckpt_path(f->root, 50, path, sizeof(path)), LLM_OK);
	assert_non_null(strstr(path, "/step-00000050"));
	assert_int_equal(stat(tmp, &st), -1);
}

static void test_checkpoint_commit_without_state_is_refused(void **state)
{
	struct fx *f = *state;
	char tmp[512];
	int64_t steps[16];

	assert_int_equal(ckpt_begin(f->root, 7, tmp, sizeof(tmp)), LLM_OK);
	write_file(tmp, "weights", "half");
	assert_int_equal(ckpt_commit(f->root, 7, tmp), LLM_EINVAL);
	assert_int_equal(list(f, steps), 0);
}

static void test_checkpoint_broken_state_falls_back_to_an_older_one(void **state)
{
	struct fx *f = *state;
	char dir[512];
	int64_t steps[16];

	save(f, 10, "a");
	save(f, 20, "b");
	assert_int_equal(ckpt_path(f->root, 20, dir, sizeof(dir)), LLM_OK);
	write_file(dir, CKPT_STATE_FILE, "{\"step\": 2"); /* torn by hand */
	assert_int_equal(list(f, steps), 1);
	assert_int_equal(steps[0], 10);
}

static void test_checkpoint_prune_keeps_the_newest_and_clears_leftovers(void **state)
{
	struct fx *f = *state;
	char tmp[512];
	int64_t steps[16];
	struct stat st;

	save(f, 5, "a");
	save(f, 100, "b");
	save(f, 15, "c");
	save(f, 20, "d");
	assert_int_equal(ckpt_begin(f->root, 25, tmp, sizeof(tmp)), LLM_OK); /* crashed write */
	assert_int_equal(ckpt_prune(f->root, 2), LLM_OK);
	assert_int_equal(list(f, steps), 2);
	assert_int_equal(steps[0], 20);
	assert_int_equal(steps[1], 100);
	assert_int_equal(stat(tmp, &st), -1);
}

static void test_checkpoint_same_step_is_replaced_whole(void **state)
{
	struct fx *f = *state;
	char dir[512], path[600], buf[8] = {0};
	int64_t steps[16];
	FILE *fp;

	save(f, 30, "old");
	save(f, 30, "new");
	assert_int_equal(list(f, steps), 1);
	assert_int_equal(ckpt_path(f->root, 30, dir, sizeof(dir)), LLM_OK);
	snprintf(path, sizeof(path), "%s/weights", dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fread(buf, 1, 3, fp), 3);
	fclose(fp);
	assert_string_equal(buf, "new");
}

static void test_checkpoint_state_round_trips(void **state)
{
	struct fx *f = *state;
	char dir[512];
	json_t *got = NULL;

	save(f, 42, "x");
	assert_int_equal(ckpt_path(f->root, 42, dir, sizeof(dir)), LLM_OK);
	assert_int_equal(ckpt_read_json(dir, CKPT_STATE_FILE, &got), LLM_OK);
	assert_int_equal(json_integer_value(json_object_get(got, "step")), 42);
	json_decref(got);
	assert_int_equal(ckpt_read_json(dir, "absent.json", &got), LLM_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_checkpoint_missing_root_lists_nothing),
		T(test_checkpoint_exists_only_after_commit),
		T(test_checkpoint_commit_without_state_is_refused),
		T(test_checkpoint_broken_state_falls_back_to_an_older_one),
		T(test_checkpoint_prune_keeps_the_newest_and_clears_leftovers),
		T(test_checkpoint_same_step_is_replaced_whole),
		T(test_checkpoint_state_round_trips),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
