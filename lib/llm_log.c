/* Logging (see llm_log.h). JSON records are built with jansson so every
 * string is escaped correctly; a record that cannot be built falls back to
 * the text format rather than being lost. */
#include "llm_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_buf.h"

#define LOG_LINE_MAX (64 * 1024)

static llm_log_level min_level = LLM_LOG_INFO;
static llm_log_format format = LLM_LOG_TEXT;
static FILE *output;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void llm_log_set_level(llm_log_level level)
{
	min_level = level;
}

void llm_log_set_format(llm_log_format f)
{
	format = f;
}

void llm_log_set_output(FILE *out)
{
	output = out;
}

llm_err llm_log_parse_level(const char *s, llm_log_level *out)
{
	for (int i = 0; i <= LLM_LOG_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (llm_log_level)i;
			return LLM_OK;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LLM_LOG_WARN;
		return LLM_OK;
	}
	return llm_fail(LLM_EINVAL, "unknown log level '%s' (use debug, info, warn or error)", s);
}

llm_err llm_log_parse_format(const char *s, llm_log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LLM_LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LLM_LOG_JSON;
	else
		return llm_fail(LLM_EINVAL, "unknown log format '%s' (use text or json)", s);
	return LLM_OK;
}

bool llm_log_enabled(llm_log_level level)
{
	return level >= min_level && level <= LLM_LOG_ERROR;
}

/* RFC 3339 UTC timestamp with milliseconds; out holds at least 32 bytes. */
static void timestamp(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + len, n - len, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

static char *format_json(const char *ts, llm_log_level level, const char *logger,
			 const char *const *kv, const char *msg)
{
	json_t *rec = json_object();
	char *line;

	json_object_set_new(rec, "ts", json_string(ts));
	json_object_set_new(rec, "level", json_string(level_names[level]));
	json_object_set_new(rec, "logger", json_string(logger));
	json_object_set_new(rec, "msg", json_string(msg));
	for (; kv && kv[0] && kv[1]; kv += 2)
		json_object_set_new(rec, kv[0], json_string(kv[1]));
	line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	return line;
}

static char *format_text(const char *ts, llm_log_level level, const char *logger,
			 const char *const *kv, const char *msg)
{
	llm_buf b;

	llm_buf_init(&b, LOG_LINE_MAX);
	llm_buf_printf(&b, "%s %s %s: %s", ts, level_tags[level], logger, msg);
	for (; kv && kv[0] && kv[1]; kv += 2)
		llm_buf_printf(&b, " %s=%s", kv[0], kv[1]);
	return llm_buf_steal(&b);
}

void llm_log_kv(llm_log_level level, const char *logger, const char *const *kv, const char *fmt,
		...)
{
	char ts[40], msg[4096], *line = NULL;
	FILE *out = output ? output : stderr;
	va_list ap;

	if (!llm_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timestamp(ts, sizeof(ts));
	if (format == LLM_LOG_JSON)
		line = format_json(ts, level, logger, kv, msg);
	if (!line)
		line = format_text(ts, level, logger, kv, msg);
	flockfile(out);
	fputs(line ? line : msg, out);
	fputc('\n', out);
	fflush(out);
	funlockfile(out);
	free(line);
}
