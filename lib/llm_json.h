/* JSON helpers over jansson: bounded parsing with located errors, and typed
 * getters by path that return errors instead of crashing on missing or
 * mistyped fields.
 *
 * Path syntax: dot-separated object keys, "[N]" for array elements and
 * "[\"key\"]" for keys that contain dots or brackets, for example
 *   spec.template.spec.containers[0].image
 *   metadata.labels["app.kubernetes.io/name"]
 * Getters return LLM_ENOTFOUND when any step is missing, LLM_ETYPE when a step
 * or the final value has the wrong type, LLM_EINVAL for a malformed path; each
 * failure records a detail naming the path (llm_last_error()). Returned
 * pointers borrow from the document: they live as long as it does. */
#ifndef LLM_JSON_H
#define LLM_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm_err.h"

/* Parses len bytes of text as one JSON value. name labels errors (a file
 * name or "response body"). Inputs longer than max fail with LLM_ETOOLARGE;
 * syntax errors fail with LLM_EPARSE and a detail "name:line:column: what".
 * On success *out holds a new reference. */
llm_err llm_json_parse(const char *text, size_t len, size_t max, const char *name, json_t **out);

/* Reads and parses the JSON file at path, at most max bytes; errors as
 * llm_buf_read_file() and llm_json_parse(), named by path. */
llm_err llm_json_load_file(const char *path, size_t max, json_t **out);

/* The value at path (borrowed), any type. */
llm_err llm_json_get(const json_t *root, const char *path, json_t **out);

llm_err llm_json_get_str(const json_t *root, const char *path, const char **out);
/* Integers only: a real such as 1.5 is LLM_ETYPE. */
llm_err llm_json_get_int(const json_t *root, const char *path, json_int_t *out);
/* Integers are accepted and converted. */
llm_err llm_json_get_num(const json_t *root, const char *path, double *out);
llm_err llm_json_get_bool(const json_t *root, const char *path, bool *out);
llm_err llm_json_get_obj(const json_t *root, const char *path, json_t **out);
llm_err llm_json_get_arr(const json_t *root, const char *path, json_t **out);

/* Convenience for optional fields: the string at path, or def when the path
 * is missing or not a string. */
const char *llm_json_str_or(const json_t *root, const char *path, const char *def);

#endif
