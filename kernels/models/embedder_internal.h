/* Private to kernels/models/bert.c and its tests: the embedder loaded on a
 * given backend table rather than one chosen by flags. */
#ifndef LLM_EMBEDDER_INTERNAL_H
#define LLM_EMBEDDER_INTERNAL_H

#include "llm_ops.h"
#include "llmops_embedder.h"

/* llm_embedder_load() with every buffer on ops and every kernel from it;
 * ops must outlive the embedder. The tests use it to run the embedder on
 * tables of their own (the CPU kernels behind staged host copies). */
llm_err llm_embedder_load_ops(const char *dir, int max_batch, int max_len,
			      const struct llm_ops *ops, llm_embedder **out);

#endif
