/* YAML to JSON conversion for Kubernetes manifests and kubeconfig files.
 *
 * Built on libyaml's event parser and meant to produce what kubectl
 * (sigs.k8s.io/yaml over go-yaml v2, YAML 1.1) sends to the API server: plain
 * scalars resolve to null, booleans (yes/no/on/off too), integers (0x, 0o,
 * leading-0 octal, 0b, underscores) and floats; quoted and block scalars are
 * strings; anchors, aliases and `<<` merge keys are expanded. Mapping keys
 * are always the key scalar's text. Duplicate keys are an error, and so are
 * .inf/.nan, which JSON cannot hold. Empty (null) documents are skipped as
 * kubectl skips them.
 *
 * Design limit: hostile input is bounded, not trusted. Nesting is capped at
 * 256 levels and one call builds at most 1,000,000 JSON values, alias copies
 * included, so "billion laughs" fails fast with LLM_ETOOLARGE.
 *
 * Errors are LLM_EPARSE unless noted, with a detail (llm_last_error()) of the
 * form "name:line:column: problem", 1-based. */
#ifndef LLM_YAML_H
#define LLM_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "llm_err.h"

/* Deepest nesting of mappings and sequences accepted. */
#define LLM_YAML_MAX_DEPTH 256
/* Most JSON values one call may build, alias copies included. */
#define LLM_YAML_MAX_NODES 1000000

/* Parses every document in text[0..len) into a new JSON array, one element
 * per non-empty document (documents that are empty or null are skipped, so
 * an empty or comment-only input gives []). name labels error messages (a
 * file name). LLM_ETOOLARGE past the node budget, LLM_ENOMEM when allocation
 * fails. On success *docs_out holds a new reference; on failure it is NULL. */
llm_err llm_yaml_parse_all(const char *text, size_t len, const char *name, json_t **docs_out);

/* Like llm_yaml_parse_all() but exactly one non-empty document is expected:
 * zero or several give LLM_EPARSE saying how many were found. On success
 * *doc_out holds a new reference to that document; on failure it is NULL. */
llm_err llm_yaml_parse_one(const char *text, size_t len, const char *name, json_t **doc_out);

/* Reads the whole file at path (at most max bytes: LLM_ETOOLARGE beyond) and
 * parses all its documents as llm_yaml_parse_all() does, naming errors after
 * path. A missing file is LLM_ENOTFOUND, other open or read failures are
 * LLM_EIO; both details carry the path and strerror(). On failure *docs_out
 * is NULL. */
llm_err llm_yaml_load_file(const char *path, size_t max, json_t **docs_out);

#endif
