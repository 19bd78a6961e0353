/* The finetune role of llmops-agent: full or LoRA fine-tuning of a
 * FineTuneJob on one data-parallel rank (docs/finetune.md). */
#ifndef AGENT_FINETUNE_H
#define AGENT_FINETUNE_H

#include "role.h"

/* Exit statuses of the role, read by the operator from the Pod. */
#define FT_EXIT_OK	0   /* trained, output written */
#define FT_EXIT_FAILED	1   /* a failure a restart may fix (I/O, a lost peer, memory) */
#define FT_EXIT_USAGE	2   /* bad command line (agent/main.c) */
#define FT_EXIT_DATAERR 65  /* bad spec, dataset or base model: a restart cannot help */
#define FT_EXIT_STOPPED 143 /* SIGTERM/SIGINT: stopped after checkpointing that step */

/* Runs the job on the rank given by LLMOPS_RANK/LLMOPS_WORLD_SIZE (one rank
 * when unset); returns one of the exit statuses above. */
int finetune_run(const struct agent_job *job);

#endif
