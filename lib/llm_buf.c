/* Growable capped buffer (see llm_buf.h). Grows by doubling, so appends are
 * amortised O(1); the cap bounds both len and the allocation. */
#include "llm_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llm_buf_init(llm_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Makes room for `extra` more bytes plus the terminator. */
static llm_err reserve(llm_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max - b->len)
		return llm_fail(LLM_ETOOLARGE, "buffer cap of %zu bytes exceeded", b->max);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return LLM_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p)
		return llm_fail(LLM_ENOMEM, "buffer: cannot allocate %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return LLM_OK;
}

llm_err llm_buf_append(llm_buf *b, const void *p, size_t n)
{
	llm_err rc = reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return LLM_OK;
}

llm_err llm_buf_puts(llm_buf *b, const char *s)
{
	return llm_buf_append(b, s, strlen(s));
}

llm_err llm_buf_printf(llm_buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;
	llm_err rc;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return llm_fail(LLM_EINVAL, "buffer: bad format string");
	}
	rc = reserve(b, (size_t)n);
	if (rc == LLM_OK) {
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
		b->len += (size_t)n;
	}
	va_end(ap2);
	return rc;
}

const char *llm_buf_str(const llm_buf *b)
{
	return b->data ? b->data : "";
}

void llm_buf_reset(llm_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *llm_buf_steal(llm_buf *b)
{
	char *p = b->data;

	llm_buf_init(b, b->max);
	return p;
}

void llm_buf_free(llm_buf *b)
{
	free(b->data);
	llm_buf_init(b, b->max);
}

llm_err llm_buf_read_file(llm_buf *buf, const char *path)
{
	char chunk[16384];
	llm_err rc = LLM_OK;
	FILE *f;
	size_t n;
	int err;

	f = fopen(path, "rb");
	if (!f) {
		err = errno;
		return llm_fail(err == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s: %s", path,
				strerror(err));
	}
	while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = llm_buf_append(buf, chunk, n);
	if (rc == LLM_ETOOLARGE)
		rc = llm_fail(rc,
			      "%s: file is larger than the limit of %zu "
			      "bytes",
			      path, buf->max);
	else if (!rc && ferror(f))
		rc = llm_fail(LLM_EIO, "%s: %s", path, strerror(errno));
	fclose(f);
	return rc;
}
