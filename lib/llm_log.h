/* Levelled logging to stderr, one line per record, in a human format or as
 * one JSON object per line (for log collectors).
 *
 * Human:  2026-11-27T20:49:56.123Z INFO  operator: started version=v0.1
 * JSON:   {"ts":"2026-11-27T20:49:56.123Z","level":"info","logger":"operator",
 *          "msg":"started","version":"v0.1"}
 * Records are written whole with one locked write, so lines from different
 * threads never interleave. Configuration is process-wide and meant to be
 * set once at start-up. */
#ifndef LLM_LOG_H
#define LLM_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "llm_err.h"

typedef enum llm_log_level {
	LLM_LOG_DEBUG = 0,
	LLM_LOG_INFO = 1,
	LLM_LOG_WARN = 2,
	LLM_LOG_ERROR = 3,
} llm_log_level;

typedef enum llm_log_format {
	LLM_LOG_TEXT = 0,
	LLM_LOG_JSON = 1,
} llm_log_format;

/* Records below level are dropped. Default: LLM_LOG_INFO. */
void llm_log_set_level(llm_log_level level);
/* Default: LLM_LOG_TEXT. */
void llm_log_set_format(llm_log_format format);
/* Where records go; NULL restores stderr. For tests. */
void llm_log_set_output(FILE *out);

/* "debug", "info", "warn" (or "warning"), "error"; LLM_EINVAL otherwise. */
llm_err llm_log_parse_level(const char *s, llm_log_level *out);
/* "text" or "json"; LLM_EINVAL otherwise. */
llm_err llm_log_parse_format(const char *s, llm_log_format *out);

/* True when a record at level would be written. */
bool llm_log_enabled(llm_log_level level);

/* Writes one record. logger names the component ("operator", "watch").
 * kv is NULL or a NULL-terminated list of alternating key and value strings
 * attached as fields; msg is printf-style. */
void llm_log_kv(llm_log_level level, const char *logger, const char *const *kv, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

#define LLM_LOG(level, logger, ...) llm_log_kv(level, logger, NULL, __VA_ARGS__)
#define llm_debug(logger, ...)	    LLM_LOG(LLM_LOG_DEBUG, logger, __VA_ARGS__)
#define llm_info(logger, ...)	    LLM_LOG(LLM_LOG_INFO, logger, __VA_ARGS__)
#define llm_warn(logger, ...)	    LLM_LOG(LLM_LOG_WARN, logger, __VA_ARGS__)
#define llm_error(logger, ...)	    LLM_LOG(LLM_LOG_ERROR, logger, __VA_ARGS__)

#endif
