/* PromptVersion placeholders and rendering.
 *
 * A PromptVersion spec (the CRD's spec object, see docs/promptversion.md) is
 * a completion-style `template` or chat `messages` with `{{name}}`
 * placeholders, declared `variables` (required, default), `examples` with
 * `shots` (zero, one, few) and an optional `chainOfThought`. This module
 * holds the one placeholder scanner (the operator's validation uses it too)
 * and the renderer the agent roles use. Substitution is a single pass: a
 * value that itself contains `{{x}}` is inserted literally. The rendered
 * prompt has a byte cap; going over it is LLM_ETOOLARGE. */
#ifndef LLM_PROMPT_H
#define LLM_PROMPT_H

#include <jansson.h>
#include <stddef.h>

#include "llm_err.h"

/* Default cap on a rendered prompt, in bytes. */
#define LLM_PROMPT_MAX_RENDERED ((size_t)4 << 20)

/* One placeholder found by llm_prompt_scan(): the `{{ name }}` spans bytes
 * [start, end) of the text; the name (surrounding spaces removed) is
 * name_len bytes at name, pointing into the text. */
struct llm_prompt_ph {
	size_t start;
	size_t end;
	const char *name;
	size_t name_len;
};

/* Called for each placeholder in order; data is the caller's. A non-zero
 * return stops the scan and is returned by llm_prompt_scan(). */
typedef llm_err (*llm_prompt_ph_cb)(const struct llm_prompt_ph *ph, void *data);

/* Scans text for placeholders. Each `{{` must be closed by a `}}` with no
 * `{` in between, no `}}` may appear unopened, and the name must be letters,
 * digits and `_`, not starting with a digit. Fails with LLM_EINVAL and a
 * detail prefixed by where ("spec.template: '{{' at offset 9 is not
 * closed", "...: '}}' at offset 40 closes nothing", "...: '{{ 1st }}' is
 * not a variable name"). cb may be NULL (syntax check only). */
llm_err llm_prompt_scan(const char *text, const char *where, llm_prompt_ph_cb cb, void *data);

/* Checks every placeholder of spec's template and messages[i].content:
 * syntax as llm_prompt_scan(), and each name declared in spec.variables
 * ("spec.template: variable 'topic' is used but not declared in
 * spec.variables"). LLM_EINVAL on the first problem. */
llm_err llm_prompt_check(const json_t *spec);

/* Renders spec with vars (an object of strings, borrowed; NULL for none)
 * into *out (a new reference): a JSON string for a template spec, or an
 * array of {"role","content"} objects for a messages spec, where turns that
 * come from few-shot examples also carry "example": true. The layout of
 * examples and chainOfThought is documented in docs/promptversion.md
 * (Rendering). A variable without a value takes its default, else "" when
 * optional. Fails with LLM_EINVAL for a required variable without a value
 * ("required variable 'question' has no value"), a value for an undeclared
 * variable ("unknown variable 'x'") or a bad spec (as llm_prompt_check());
 * LLM_ETYPE for a value that is not a string ("variable 'x' is not a
 * string"); LLM_ETOOLARGE past max bytes of text (0: the default cap). */
llm_err llm_prompt_render(const json_t *spec, const json_t *vars, size_t max, json_t **out);

#endif
