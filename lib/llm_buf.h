/* A growable byte buffer with a hard size cap.
 *
 * The content is always NUL-terminated (the terminator is not counted in len
 * and does not count against the cap). Appending past max fails with
 * LLM_ETOOLARGE and leaves the buffer unchanged, so an oversized HTTP body or
 * file is an error the caller sees, never an unbounded allocation. */
#ifndef LLM_BUF_H
#define LLM_BUF_H

#include <stddef.h>

#include "llm_err.h"

typedef struct llm_buf {
	char *data; /* NULL until the first append; then NUL-terminated */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated, terminator included */
	size_t max; /* largest len allowed */
} llm_buf;

/* Prepares an empty buffer that may hold at most max bytes. Allocates nothing. */
void llm_buf_init(llm_buf *b, size_t max);

/* Appends n bytes. LLM_ETOOLARGE past the cap, LLM_ENOMEM if allocation fails;
 * on failure the buffer is unchanged. */
llm_err llm_buf_append(llm_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. */
llm_err llm_buf_puts(llm_buf *b, const char *s);

/* Appends printf-style formatted text. */
llm_err llm_buf_printf(llm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The content as a C string; "" for a buffer never appended to. */
const char *llm_buf_str(const llm_buf *b);

/* Appends the whole file at path to b, whose max is the size limit.
 * LLM_ENOTFOUND when it does not exist, LLM_EIO, LLM_ETOOLARGE ("<path>:
 * file is larger than the limit of N bytes"), LLM_ENOMEM; details name path. */
llm_err llm_buf_read_file(llm_buf *b, const char *path);

/* Empties the buffer, keeping its allocation and cap. */
void llm_buf_reset(llm_buf *b);

/* Hands the allocation to the caller (free() it; NULL if nothing was ever
 * appended) and leaves the buffer empty. */
char *llm_buf_steal(llm_buf *b);

/* Releases the allocation; the buffer may be reused after llm_buf_init. */
void llm_buf_free(llm_buf *b);

#endif
