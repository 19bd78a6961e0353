/* Artifact URIs of the resources' specs mapped to local paths, the way the
 * operator mounts them (operator/op.c op_mount_pvcs()):
 *   pvc://<claim>/<path>  ->  /llmops/pvc/<claim>/<path>
 *   file:///<path>        ->  /<path>
 * A run outside a Pod may move the claims: LLMOPS_MOUNT_PVC_<CLAIM> (the
 * claim upper-cased, every other character than A-Z and 0-9 as '_', as the
 * test node exports it when it cannot bind-mount) names one claim's
 * directory, else LLMOPS_PVC_ROOT replaces /llmops/pvc. A string without a
 * scheme is taken as a local path (for -f runs). ".." segments are refused,
 * as the CRDs refuse them. */
#ifndef AGENT_URI_H
#define AGENT_URI_H

#include <stddef.h>

#include "llm_err.h"

#define URI_PVC_ROOT "/llmops/pvc"

/* Writes the local path of uri into buf (size bytes). LLM_EINVAL for an
 * unknown scheme, an empty claim or path, or a ".." segment; LLM_ETOOLARGE
 * when the path does not fit. */
llm_err uri_to_path(const char *uri, char *buf, size_t size);

/* Writes base + "/" + rel into buf (URIs and paths alike; a trailing '/' of
 * base is not doubled). LLM_ETOOLARGE when it does not fit. */
llm_err uri_join(const char *base, const char *rel, char *buf, size_t size);

#endif
