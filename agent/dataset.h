/* The fine-tuning dataset: JSONL records (text, prompt-completion or chat,
 * optionally rendered through a PromptVersion) tokenised into examples with
 * loss masks, a validation split, packing into fixed-length sequences, a
 * seeded per-epoch shuffle and data-parallel sharding of global batches.
 * docs/finetune.md documents the formats, the chat layout, truncation,
 * packing, sharding and every error message.
 *
 * Everything is held in memory (ids and labels as int32): the total is
 * capped by ds_config.max_bytes, and each input line by max_line. Labels
 * follow the Hugging Face convention: labels[i] == ids[i] where token i is
 * a target (the trainer shifts), DS_IGNORE (-100) where it is not. A loaded
 * dataset is immutable; cursors over it may run on many threads. */
#ifndef AGENT_DATASET_H
#define AGENT_DATASET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"
#include "llm_tokenizer.h"

#define DS_IGNORE	     (-100)
#define DS_MAX_LINE_DEFAULT  ((size_t)1 << 20) /* bytes in one JSONL line */
#define DS_MAX_BYTES_DEFAULT ((size_t)4 << 30) /* examples and sequences in memory */
#define DS_MAX_FILES	     4096	       /* *.jsonl files in a directory */
#define DS_MAX_MESSAGES	     1024	       /* turns in one chat record */

enum ds_format { DS_TEXT = 0, DS_PROMPT_COMPLETION = 1, DS_CHAT = 2 };

/* What to load and how (FineTuneJob spec.dataset and hyperparameters). */
struct ds_config {
	const char *train;	 /* a .jsonl file or a directory of *.jsonl files */
	const char *validation;	 /* the same, or NULL */
	double validation_split; /* fraction of train held out (0 ... 0.5); 0: none */
	enum ds_format format;
	const json_t *prompt; /* PromptVersion spec rendering each record, or NULL */
	bool skip_invalid;    /* skip and count malformed records instead of failing */
	bool drop_long;	      /* drop examples longer than seq_len instead of truncating */
	size_t seq_len;	      /* tokens per packed sequence, at least 2 */
	uint64_t seed;
	size_t max_line;  /* 0: DS_MAX_LINE_DEFAULT */
	size_t max_bytes; /* 0: DS_MAX_BYTES_DEFAULT */
};

/* Counts for status reporting. */
struct ds_counts {
	size_t records;	       /* non-blank lines read, every file */
	size_t examples;       /* kept examples, train and validation */
	size_t train_examples; /* examples in the training set */
	size_t val_examples;   /* examples in the validation set */
	size_t skipped;	       /* malformed records skipped (skipInvalid) */
	size_t truncated;      /* examples cut to seq_len */
	size_t dropped;	       /* examples longer than seq_len left out (truncate: drop) */
	size_t tokens;	       /* tokens in kept examples, special tokens included */
	size_t loss_tokens;    /* of which carry a loss */
	size_t sequences;      /* packed training sequences */
	size_t val_sequences;  /* packed validation sequences */
};

enum ds_split { DS_TRAIN = 0, DS_VALIDATION = 1 };

typedef struct ds_dataset ds_dataset;

/* Parses a FineTuneJob spec.dataset.format ("text", "prompt-completion",
 * "chat"; NULL means text). LLM_EINVAL for anything else. */
llm_err ds_format_parse(const char *s, enum ds_format *out);

/* Fills the settings of cfg that a FineTuneJob spec holds: format,
 * skip_invalid, drop_long (truncate), validation_split (spec.dataset),
 * seq_len and seed (spec.hyperparameters), with the CRD's defaults for
 * what is unset. train, validation (the role resolves their URIs), prompt
 * and the caps are left as they are. LLM_EINVAL or LLM_ETYPE for a bad
 * value, naming the field. */
llm_err ds_config_from_spec(const json_t *spec, struct ds_config *cfg);

/* Loads, tokenises with tok (borrowed; only used during the call), splits
 * and packs. Fails with LLM_EPARSE/LLM_EINVAL/LLM_ETYPE and a detail
 * "file.jsonl:17: missing \"completion\"" on the first malformed record
 * (unless skip_invalid), LLM_ENOTFOUND/LLM_EIO for unreadable inputs,
 * LLM_ETOOLARGE over max_bytes or for an over-long line, LLM_EINVAL for a
 * bad config. The caller frees *out with ds_destroy(). */
llm_err ds_load(const struct ds_config *cfg, const llm_tok *tok, ds_dataset **out);

/* Frees d; NULL is a no-op. */
void ds_destroy(ds_dataset *d);

/* Copies the counts of d into *out. */
void ds_get_counts(const ds_dataset *d, struct ds_counts *out);

/* Tokens per packed sequence. */
size_t ds_seq_len(const ds_dataset *d);

/* Number of examples of a split, and example i: *len ids and labels
 * (borrowed from d), before packing. LLM_EINVAL when i is out of range. */
size_t ds_num_examples(const ds_dataset *d, enum ds_split s);
llm_err ds_example(const ds_dataset *d, enum ds_split s, size_t i, const int32_t **ids,
		   const int32_t **labels, size_t *len);

/* Number of packed sequences of a split, and sequence i: ds_seq_len() ids
 * and labels (borrowed). LLM_EINVAL when i is out of range. */
size_t ds_num_sequences(const ds_dataset *d, enum ds_split s);
llm_err ds_sequence(const ds_dataset *d, enum ds_split s, size_t i, const int32_t **ids,
		    const int32_t **labels);

/* Copies the n sequences idx[] of a split into ids and labels, each
 * n * ds_seq_len() values (one micro batch, row-major). */
llm_err ds_gather(const ds_dataset *d, enum ds_split s, const size_t *idx, size_t n, int32_t *ids,
		  int32_t *labels);

/* The order of the training sequences in epoch: perm holds
 * ds_num_sequences(d, DS_TRAIN) indices, a permutation that depends only on
 * the seed and the epoch. */
void ds_epoch_order(const ds_dataset *d, uint64_t epoch, size_t *perm);

/* Data-parallel layout: each optimizer step consumes global_batch
 * sequences; rank r of world takes the r-th contiguous slice of
 * global_batch / world of them, in micro batches of micro_batch. */
struct ds_shard {
	size_t global_batch;
	size_t micro_batch;
	size_t world;
	size_t rank;
};

/* A training position: the next step to run. Saved with checkpoints. */
struct ds_pos {
	uint64_t epoch;
	uint64_t step; /* within the epoch */
};

/* Optimizer steps in one epoch: the training sequences / global_batch,
 * rounded down (the remainder waits for another epoch's order). */
size_t ds_steps_per_epoch(const ds_dataset *d, size_t global_batch);

typedef struct ds_cursor ds_cursor;

/* A reader of rank sh->rank's share, starting at pos (resuming costs one
 * permutation, not a replay). LLM_EINVAL when global_batch is not a
 * multiple of micro_batch * world, rank >= world, pos.step is past the
 * epoch, or the training set has fewer sequences than one global batch.
 * d must outlive the cursor; free it with ds_cursor_destroy(). */
llm_err ds_cursor_new(const ds_dataset *d, const struct ds_shard *sh, struct ds_pos pos,
		      ds_cursor **out);

/* Frees c; NULL is a no-op. */
void ds_cursor_destroy(ds_cursor *c);

/* The position of the next step (what to save with a checkpoint). */
struct ds_pos ds_cursor_pos(const ds_cursor *c);

/* Fills idx with this rank's global_batch / world training sequence
 * indices for the current step, micro batch after micro batch, then moves
 * to the next step (and epoch). Returns LLM_OK. */
llm_err ds_cursor_next(ds_cursor *c, size_t *idx);

#endif
