/* Error codes and the per-thread detail message (see llm_err.h). */
#include "llm_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	const char *text;
} errtab[LLM_ERR_COUNT_] = {
	[LLM_OK] = {"LLM_OK", "success"},
	[LLM_ENOMEM] = {"LLM_ENOMEM", "out of memory"},
	[LLM_EINVAL] = {"LLM_EINVAL", "invalid argument"},
	[LLM_ETOOLARGE] = {"LLM_ETOOLARGE", "size limit exceeded"},
	[LLM_ENOTFOUND] = {"LLM_ENOTFOUND", "not found"},
	[LLM_EEXIST] = {"LLM_EEXIST", "already exists"},
	[LLM_ECONFLICT] = {"LLM_ECONFLICT", "conflict"},
	[LLM_EFORBIDDEN] = {"LLM_EFORBIDDEN", "forbidden"},
	[LLM_EUNAUTHORIZED] = {"LLM_EUNAUTHORIZED", "unauthorized"},
	[LLM_EGONE] = {"LLM_EGONE", "gone (resource version expired)"},
	[LLM_ETOOMANY] = {"LLM_ETOOMANY", "too many requests"},
	[LLM_ETIMEDOUT] = {"LLM_ETIMEDOUT", "timed out"},
	[LLM_EIO] = {"LLM_EIO", "input/output error"},
	[LLM_EPARSE] = {"LLM_EPARSE", "parse error"},
	[LLM_ETYPE] = {"LLM_ETYPE", "wrong type"},
	[LLM_EINTERNAL] = {"LLM_EINTERNAL", "internal error"},
	[LLM_EUNSUPPORTED] = {"LLM_EUNSUPPORTED", "not supported"},
	[LLM_ECANCELED] = {"LLM_ECANCELED", "canceled"},
};

static _Thread_local char detail[1024];

static int known(int code)
{
	return code >= 0 && code < LLM_ERR_COUNT_;
}

const char *llm_strerror(int code)
{
	return known(code) ? errtab[code].text : "unknown error";
}

const char *llm_errname(int code)
{
	return known(code) ? errtab[code].name : "LLM_EUNKNOWN";
}

llm_err llm_fail(llm_err code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return code;
}

llm_err llm_wrap(llm_err code, const char *fmt, ...)
{
	char prev[sizeof(detail)];
	size_t n;
	va_list ap;

	memcpy(prev, detail, sizeof(prev));
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	n = strlen(detail);
	if (n + 2 < sizeof(detail)) { /* ": " and what fits of prev */
		size_t len = strnlen(prev, sizeof(detail) - n - 3);

		memcpy(detail + n, ": ", 2);
		memcpy(detail + n + 2, prev, len);
		detail[n + 2 + len] = '\0';
	}
	return code;
}

const char *llm_last_error(void)
{
	return detail;
}

void llm_clear_error(void)
{
	detail[0] = '\0';
}
