/* URI to local path mapping (see uri.h). Pure string work plus two
 * environment lookups; no file is touched. */
#include "uri.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when path has a ".." segment. */
static int has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, "..")) != NULL) {
		bool start = p == path || p[-1] == '/';
		bool end = p[2] == '\0' || p[2] == '/';

		if (start && end)
			return 1;
		p += 2;
	}
	return 0;
}

static llm_err put(char *buf, size_t size, const char *uri, const char *a, const char *b)
{
	int n = snprintf(buf, size, "%s%s", a, b);

	if (n < 0 || (size_t)n >= size)
		return llm_fail(LLM_ETOOLARGE, "%s: the local path is too long", uri);
	return LLM_OK;
}

/* The directory of claim (len bytes): LLMOPS_MOUNT_PVC_<CLAIM>, else
 * $LLMOPS_PVC_ROOT/<claim>, else /llmops/pvc/<claim>. */
static llm_err claim_dir(const char *uri, const char *claim, size_t len, char *buf, size_t size)
{
	char var[96] = "LLMOPS_MOUNT_PVC_";
	size_t k = strlen(var);
	const char *dir, *root;
	int n;

	if (len > 63)
		return llm_fail(LLM_EINVAL, "%s: the claim name is longer than 63 characters", uri);
	for (size_t i = 0; i < len; i++)
		var[k++] = isalnum((unsigned char)claim[i]) ? (char)toupper((unsigned char)claim[i])
							    : '_';
	var[k] = '\0';
	dir = getenv(var);
	if (dir && *dir)
		return put(buf, size, uri, dir, "");
	root = getenv("LLMOPS_PVC_ROOT");
	n = snprintf(buf, size, "%s/%.*s", root && *root ? root : URI_PVC_ROOT, (int)len, claim);
	if (n < 0 || (size_t)n >= size)
		return llm_fail(LLM_ETOOLARGE, "%s: the local path is too long", uri);
	return LLM_OK;
}

llm_err uri_to_path(const char *uri, char *buf, size_t size)
{
	const char *claim, *rest;
	size_t len, used;
	llm_err rc;

	if (!uri || !*uri)
		return llm_fail(LLM_EINVAL, "empty URI");
	if (has_dotdot(uri))
		return llm_fail(LLM_EINVAL, "%s: must not contain '..' path segments", uri);
	if (strncmp(uri, "file://", 7) == 0) {
		if (uri[7] != '/' || !uri[8])
			return llm_fail(LLM_EINVAL, "%s: a file URI is file:///<absolute path>",
					uri);
		return put(buf, size, uri, uri + 7, "");
	}
	if (strncmp(uri, "pvc://", 6) != 0) {
		if (strstr(uri, "://"))
			return llm_fail(LLM_EINVAL,
					"%s: only pvc:// and file:/// URIs are supported", uri);
		return put(buf, size, uri, uri, "");
	}
	claim = uri + 6;
	len = strcspn(claim, "/");
	rest = claim + len;
	if (len == 0)
		return llm_fail(LLM_EINVAL, "%s: no claim name after pvc://", uri);
	rc = claim_dir(uri, claim, len, buf, size);
	if (rc)
		return rc;
	used = strlen(buf);
	return put(buf + used, size - used, uri, rest, "");
}

llm_err uri_join(const char *base, const char *rel, char *buf, size_t size)
{
	size_t n = strlen(base);
	int w;

	while (n > 1 && base[n - 1] == '/')
		n--;
	w = snprintf(buf, size, "%.*s/%s", (int)n, base, rel);
	if (w < 0 || (size_t)w >= size)
		return llm_fail(LLM_ETOOLARGE, "%s/%s: too long", base, rel);
	return LLM_OK;
}
