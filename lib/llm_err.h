/* The project's one error type, with a thread-local detail message.
 *
 * Action functions return an llm_err; LLM_OK is 0 and every other value is a
 * failure whose meaning never changes (numbers are part of the ABI and of log
 * output). A failing function may also record a human-readable detail with
 * llm_fail(), which the caller reads with llm_last_error() on the same thread
 * (like errno, it is only meaningful right after a failure). */
#ifndef LLM_ERR_H
#define LLM_ERR_H

typedef enum llm_err {
	LLM_OK = 0,
	LLM_ENOMEM = 1,	       /* allocation failed */
	LLM_EINVAL = 2,	       /* invalid argument or input */
	LLM_ETOOLARGE = 3,     /* a size cap was exceeded */
	LLM_ENOTFOUND = 4,     /* no such object, field or file (HTTP 404) */
	LLM_EEXIST = 5,	       /* already exists (HTTP 409 AlreadyExists) */
	LLM_ECONFLICT = 6,     /* version conflict (HTTP 409 Conflict) */
	LLM_EFORBIDDEN = 7,    /* authenticated but not allowed (HTTP 403) */
	LLM_EUNAUTHORIZED = 8, /* not authenticated (HTTP 401) */
	LLM_EGONE = 9,	       /* resource version expired (HTTP 410) */
	LLM_ETOOMANY = 10,     /* throttled (HTTP 429) */
	LLM_ETIMEDOUT = 11,    /* a deadline passed */
	LLM_EIO = 12,	       /* I/O or transport failure */
	LLM_EPARSE = 13,       /* malformed JSON, YAML or other syntax */
	LLM_ETYPE = 14,	       /* a value has the wrong type */
	LLM_EINTERNAL = 15,    /* server-side or unexpected internal failure */
	LLM_EUNSUPPORTED = 16, /* not available in this build or version */
	LLM_ECANCELED = 17,    /* stopped on request (shutdown, cancel) */
	LLM_ERR_COUNT_	       /* number of codes; not an error */
} llm_err;

/* Short constant description of code ("not found"); never NULL. Unknown codes
 * give "unknown error". */
const char *llm_strerror(int code);

/* Stable symbolic name of code ("LLM_ENOTFOUND"), for logs and tests. */
const char *llm_errname(int code);

/* Records a printf-style detail for the current thread and returns code, so a
 * failing function can `return llm_fail(LLM_EPARSE, "%s:%d: ...", ...)`. The
 * detail is truncated to 1 KiB. */
llm_err llm_fail(llm_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records "<context>: <the current detail>", context printf-style, and
 * returns code: how a caller says where a callee's failure happened
 * (`return llm_wrap(rc, "%s", path);`). Truncated to 1 KiB like llm_fail(). */
llm_err llm_wrap(llm_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The detail recorded by the last llm_fail() on this thread, or "" if none. */
const char *llm_last_error(void);

/* Forgets the current thread's detail. */
void llm_clear_error(void);

#endif
