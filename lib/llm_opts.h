/* Command-line options from one table, so that parsing, defaults and --help
 * always agree (STYLE.md §10).
 *
 * A table is an array of struct llm_opt ended by an entry whose name is NULL.
 * Accepted forms: --name=value, --name value, -s value (when short is set),
 * and for flags (metavar NULL) --name, --name=true, --name=false. Parsing
 * stops at the first argument that is not an option, or after "--". */
#ifndef LLM_OPTS_H
#define LLM_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "llm_err.h"

struct llm_opt {
	const char *name;    /* long name without dashes, e.g. "log-level" */
	char short_name;     /* single-letter alias, or 0 */
	const char *metavar; /* shown in help ("LEVEL"); NULL makes a flag */
	const char *def;     /* default value text, or NULL for none */
	const char *help;    /* one line for --help */
	const char *value;   /* result: def, the argument, or "true"/"false" */
};

/* Parses argv[first..argc) into opts, setting every value (defaults first).
 * *next receives the index of the first argument not consumed. Unknown
 * options and missing or invalid values fail with LLM_EINVAL and a detail
 * that names the option. Values point into argv or the table. */
llm_err llm_opts_parse(struct llm_opt *opts, int argc, char **argv, int first, int *next);

/* The value of option name (NULL when it has neither default nor argument).
 * Asking for a name missing from the table is a programming error: NULL. */
const char *llm_opts_get(const struct llm_opt *opts, const char *name);

/* True when flag name was given (or defaults to "true"). */
bool llm_opts_flag(const struct llm_opt *opts, const char *name);

/* Parses option name as a base-10 integer within [min, max]. */
llm_err llm_opts_long(const struct llm_opt *opts, const char *name, long min, long max, long *out);

/* Parses s as a whole base-10 integer within [min, max]; what names the value
 * in the error detail. */
llm_err llm_parse_long(const char *s, const char *what, long min, long max, long *out);

/* Parses a duration such as "15s", "500ms", "2m" or "1h" (a bare number is
 * seconds) into milliseconds within [min_ms, max_ms]; what names the value in
 * the error detail. */
llm_err llm_parse_duration_ms(const char *s, const char *what, long min_ms, long max_ms, long *out);

/* Prints one line per option: names, metavar, help and default. */
void llm_opts_usage(FILE *out, const struct llm_opt *opts);

#endif
