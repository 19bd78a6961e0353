/* PromptVersion: validation and content hashing, exposed for unit tests. */
#ifndef OP_PROMPTVERSION_H
#define OP_PROMPTVERSION_H

#include <jansson.h>

#include "llm_err.h"
#include "op.h"

extern const struct op_reconciler promptversion_reconciler;

/* Checks a PromptVersion spec: placeholders {{name}} well formed and
 * balanced, every one declared in spec.variables, enough examples for
 * spec.shots (one: 1, few: 2) and each giving every required variable
 * without a default and an output. LLM_EINVAL with the first problem in
 * the detail, naming where it is. */
llm_err pv_validate(const json_t *spec);

/* "sha256:<64 hex>" of the canonical JSON of spec (keys sorted, compact,
 * UTF-8). out holds at least 72 bytes. */
void pv_content_hash(const json_t *spec, char *out, size_t size);

#endif
