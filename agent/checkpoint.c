/* Atomic checkpoint directories (see checkpoint.h). POSIX only: rename(2)
 * within one directory is atomic and fsync of a directory makes the rename
 * durable. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm_json.h"

#define STATE_MAX ((size_t)1 << 20)

/* root/<prefix><step, 8 digits at least><suffix> into buf. */
static llm_err fmt(char *buf, size_t size, const char *root, const char *prefix, int64_t step,
		   const char *suffix)
{
	int n = snprintf(buf, size, "%s/%s%08" PRId64 "%s", root, prefix, step, suffix);

	if (n < 0 || (size_t)n >= size)
		return llm_fail(LLM_ETOOLARGE, "checkpoint under %s: path too long", root);
	return LLM_OK;
}

llm_err ckpt_path(const char *root, int64_t step, char *buf, size_t size)
{
	return fmt(buf, size, root, "step-", step, "");
}

/* mkdir -p path. */
static llm_err mkdirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n >= sizeof(tmp))
		return llm_fail(LLM_ETOOLARGE, "%s: path too long", path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return llm_fail(LLM_EIO, "cannot create %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return llm_fail(LLM_EIO, "cannot create %s: %s", tmp, strerror(errno));
	return LLM_OK;
}

/* rm -r path (files and directories; no symlink is followed). */
static llm_err remove_tree(const char *path)
{
	struct dirent *e;
	char child[4096];
	DIR *d = opendir(path);
	llm_err rc = LLM_OK;

	if (!d)
		return errno == ENOENT || (errno == ENOTDIR && !unlink(path))
			       ? LLM_OK
			       : llm_fail(LLM_EIO, "cannot remove %s: %s", path, strerror(errno));
	while (!rc && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child))
			rc = llm_fail(LLM_ETOOLARGE, "%s: path too long", path);
		else if (e->d_type == DT_DIR)
			rc = remove_tree(child);
		else if (unlink(child))
			rc = llm_fail(LLM_EIO, "cannot remove %s: %s", child, strerror(errno));
	}
	closedir(d);
	if (!rc && rmdir(path))
		rc = llm_fail(LLM_EIO, "cannot remove %s: %s", path, strerror(errno));
	return rc;
}

static llm_err fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	int bad;

	if (fd < 0)
		return llm_fail(LLM_EIO, "cannot open %s: %s", path, strerror(errno));
	bad = fsync(fd) && errno != EINVAL;
	close(fd);
	if (bad)
		return llm_fail(LLM_EIO, "cannot fsync %s: %s", path, strerror(errno));
	return LLM_OK;
}

/* fsyncs every regular file directly in dir, then dir. */
static llm_err fsync_dir_files(const char *dir)
{
	struct dirent *e;
	char child[4096];
	DIR *d = opendir(dir);
	llm_err rc = LLM_OK;

	if (!d)
		return llm_fail(LLM_EIO, "cannot open %s: %s", dir, strerror(errno));
	while (!rc && (e = readdir(d)) != NULL) {
		if (e->d_type != DT_REG)
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", dir, e->d_name) >= (int)sizeof(child))
			rc = llm_fail(LLM_ETOOLARGE, "%s: path too long", dir);
		else
			rc = fsync_path(child, O_RDONLY);
	}
	closedir(d);
	return rc ? rc : fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

llm_err ckpt_begin(const char *root, int64_t step, char *tmp, size_t size)
{
	llm_err rc = mkdirs(root);

	if (!rc)
		rc = fmt(tmp, size, root, ".step-", step, ".tmp");
	if (!rc)
		rc = remove_tree(tmp);
	if (!rc && mkdir(tmp, 0755))
		rc = llm_fail(LLM_EIO, "cannot create %s: %s", tmp, strerror(errno));
	return rc;
}

/* Moves dir out of the way under a hidden name, then deletes it. */
static llm_err discard(const char *root, const char *dir, int64_t step)
{
	char gone[4096];
	llm_err rc = fmt(gone, sizeof(gone), root, ".step-", step, ".del");

	if (!rc)
		rc = remove_tree(gone);
	if (!rc && rename(dir, gone) && errno != ENOENT)
		rc = llm_fail(LLM_EIO, "cannot move %s aside: %s", dir, strerror(errno));
	if (!rc)
		rc = fsync_path(root, O_RDONLY | O_DIRECTORY);
	return rc ? rc : remove_tree(gone);
}

llm_err ckpt_commit(const char *root, int64_t step, const char *tmp)
{
	char final[4096], state[4096];
	struct stat st;
	llm_err rc = ckpt_path(root, step, final, sizeof(final));

	if (rc)
		return rc;
	if (snprintf(state, sizeof(state), "%s/%s", tmp, CKPT_STATE_FILE) >= (int)sizeof(state))
		return llm_fail(LLM_ETOOLARGE, "%s: path too long", tmp);
	if (stat(state, &st))
		return llm_fail(LLM_EINVAL, "checkpoint %s has no %s", tmp, CKPT_STATE_FILE);
	rc = fsync_dir_files(tmp);
	if (!rc && stat(final, &st) == 0)
		rc = discard(root, final, step);
	if (!rc && rename(tmp, final))
		rc = llm_fail(LLM_EIO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
	return rc ? rc : fsync_path(root, O_RDONLY | O_DIRECTORY);
}

/* The step of a checkpoint directory name "step-<digits>", or -1. */
static int64_t parse_name(const char *name)
{
	int64_t v = 0;

	if (strncmp(name, "step-", 5) != 0 || !name[5])
		return -1;
	for (const char *p = name + 5; *p; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

static bool valid(const char *root, const char *name)
{
	char dir[4096];
	json_t *doc = NULL;

	if (snprintf(dir, sizeof(dir), "%s/%s", root, name) >= (int)sizeof(dir))
		return false;
	if (ckpt_read_json(dir, CKPT_STATE_FILE, &doc))
		return false;
	json_decref(doc);
	return true;
}

static int cmp_step(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

llm_err ckpt_list(const char *root, int64_t *steps, size_t cap, size_t *n)
{
	struct dirent *e;
	DIR *d = opendir(root);
	llm_err rc = LLM_OK;

	*n = 0;
	if (!d)
		return errno == ENOENT
			       ? LLM_OK
			       : llm_fail(LLM_EIO, "cannot list %s: %s", root, strerror(errno));
	while (!rc && (e = readdir(d)) != NULL) {
		int64_t s = parse_name(e->d_name);

		if (s < 0 || !valid(root, e->d_name))
			continue;
		if (*n == cap)
			rc = llm_fail(LLM_ETOOLARGE, "%s holds more than %zu checkpoints", root,
				      cap);
		else
			steps[(*n)++] = s;
	}
	closedir(d);
	qsort(steps, *n, sizeof(*steps), cmp_step);
	return rc;
}

/* Removes the hidden .step-* leftovers of interrupted writes and deletes. */
static llm_err remove_leftovers(const char *root)
{
	struct dirent *e;
	char path[4096];
	DIR *d = opendir(root);
	llm_err rc = LLM_OK;

	if (!d)
		return LLM_OK;
	while (!rc && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".step-", 6) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", root, e->d_name) >= (int)sizeof(path))
			rc = llm_fail(LLM_ETOOLARGE, "%s: path too long", root);
		else
			rc = remove_tree(path);
	}
	closedir(d);
	return rc;
}

llm_err ckpt_prune(const char *root, size_t keep)
{
	static int64_t steps[CKPT_MAX];
	char dir[4096];
	size_t n;
	llm_err rc = ckpt_list(root, steps, CKPT_MAX, &n);

	for (size_t i = 0; !rc && n > keep && i < n - keep; i++) {
		rc = ckpt_path(root, steps[i], dir, sizeof(dir));
		if (!rc)
			rc = discard(root, dir, steps[i]);
	}
	return rc ? rc : remove_leftovers(root);
}

llm_err ckpt_write_json(const char *dir, const char *name, const json_t *doc)
{
	char path[4096], tmp[4200];
	FILE *f;
	int bad;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return llm_fail(LLM_ETOOLARGE, "%s/%s: path too long", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return llm_fail(LLM_EIO, "cannot write %s: %s", tmp, strerror(errno));
	bad = json_dumpf(doc, f, JSON_INDENT(2) | JSON_SORT_KEYS) || fputc('\n', f) == EOF ||
	      fflush(f) || fsync(fileno(f));
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path)) {
		unlink(tmp);
		return llm_fail(LLM_EIO, "cannot write %s: %s", path, strerror(errno));
	}
	return LLM_OK;
}

llm_err ckpt_read_json(const char *dir, const char *name, json_t **out)
{
	char path[4096], *text;
	FILE *f;
	size_t n;
	llm_err rc;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return llm_fail(LLM_ETOOLARGE, "%s/%s: path too long", dir, name);
	f = fopen(path, "r");
	if (!f)
		return llm_fail(errno == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "cannot read %s: %s",
				path, strerror(errno));
	text = malloc(STATE_MAX + 1);
	if (!text) {
		fclose(f);
		return llm_fail(LLM_ENOMEM, "out of memory reading %s", path);
	}
	n = fread(text, 1, STATE_MAX + 1, f);
	fclose(f);
	rc = llm_json_parse(text, n, STATE_MAX, path, out);
	free(text);
	return rc;
}
