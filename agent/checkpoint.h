/* Checkpoint directories of a training run, written atomically and rotated.
 *
 * Layout: <root>/step-<8+ digits>/ holds whatever the trainer wrote there,
 * always with a trainer_state.json (ckpt_write_json()). A checkpoint is
 * built in a hidden temporary directory <root>/.step-<n>.tmp, every file
 * and the directory are fsynced, and only then is it renamed to its final
 * name and <root> fsynced: a crash at any point leaves either the complete
 * checkpoint or no directory named step-<n>. Deleting goes the other way
 * (renamed to a hidden name first, then removed), so a half-deleted
 * checkpoint never looks valid either. Only one process writes a root. */
#ifndef AGENT_CHECKPOINT_H
#define AGENT_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"

#define CKPT_STATE_FILE "trainer_state.json"
#define CKPT_MAX	1024 /* checkpoints one root can list */

/* The final directory of checkpoint step under root. LLM_ETOOLARGE. */
llm_err ckpt_path(const char *root, int64_t step, char *buf, size_t size);

/* Creates root when missing and an empty temporary directory for step
 * (removing a stale one), whose path goes to tmp. LLM_EIO. */
llm_err ckpt_begin(const char *root, int64_t step, char *tmp, size_t size);

/* Makes tmp (from ckpt_begin()) the checkpoint step: fsyncs its files and
 * itself, renames it (replacing an older checkpoint of the same step) and
 * fsyncs root. LLM_EINVAL when tmp has no trainer_state.json, LLM_EIO. */
llm_err ckpt_commit(const char *root, int64_t step, const char *tmp);

/* The steps of the valid checkpoints in root (named step-<n> and holding a
 * trainer_state.json that parses), ascending, at most cap; *n gets the
 * count. A missing root is an empty list. LLM_EIO, LLM_ETOOLARGE past cap. */
llm_err ckpt_list(const char *root, int64_t *steps, size_t cap, size_t *n);

/* Removes every checkpoint but the newest keep (>= 1) valid ones, and the
 * temporary directories a crash left behind. LLM_EIO. */
llm_err ckpt_prune(const char *root, size_t keep);

/* Writes doc as dir/name with fsync (through a temporary file and a
 * rename). LLM_EIO. */
llm_err ckpt_write_json(const char *dir, const char *name, const json_t *doc);

/* Reads dir/name (at most 1 MiB of JSON). LLM_ENOTFOUND, LLM_EPARSE,
 * LLM_EIO. The caller json_decref()s *out. */
llm_err ckpt_read_json(const char *dir, const char *name, json_t **out);

#endif
