/* libFuzzer harness for PromptVersion rendering: the input is a spec and a
 * variables object as two JSON documents separated by a NUL byte. Rendering
 * must either fail with an error or return a string or an array of
 * messages; checking and scanning must agree with it. Build and run with
 * `make fuzz-prompt` (scripts/fuzz.sh). */
#include "llm_prompt.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t n1 = nul ? (size_t)(nul - data) : size;
	json_t *spec = json_loadb((const char *)data, n1, 0, NULL);
	json_t *vars = nul ? json_loadb((const char *)nul + 1, size - n1 - 1, 0, NULL) : NULL;
	json_t *out = NULL;
	const char *tmpl = json_string_value(json_object_get(spec, "template"));

	if (tmpl)
		(void)llm_prompt_scan(tmpl, "spec.template", NULL, NULL);
	if (llm_prompt_render(spec, vars, 1 << 16, &out) == LLM_OK) {
		if (!json_is_string(out) && !json_is_array(out))
			__builtin_trap();
		if (llm_prompt_check(spec) != LLM_OK)
			__builtin_trap();
	}
	json_decref(out);
	json_decref(vars);
	json_decref(spec);
	return 0;
}
