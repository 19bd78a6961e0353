/* Table-driven option parsing (see llm_opts.h). Linear lookups: option
 * tables are a few dozen entries at most. */
#include "llm_opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct llm_opt *find_long(struct llm_opt *opts, const char *name, size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static struct llm_opt *find_short(struct llm_opt *opts, char c)
{
	for (; opts->name; opts++)
		if (opts->short_name && opts->short_name == c)
			return opts;
	return NULL;
}

/* Sets a flag from "--name" (inline NULL) or "--name=true|false". */
static llm_err set_flag(struct llm_opt *o, const char *inline_value)
{
	if (!inline_value || strcmp(inline_value, "true") == 0)
		o->value = "true";
	else if (strcmp(inline_value, "false") == 0)
		o->value = "false";
	else
		return llm_fail(LLM_EINVAL, "--%s takes true or false, not '%s'", o->name,
				inline_value);
	return LLM_OK;
}

/* Consumes argv[*i] (and its value) for a known option. */
static llm_err take(struct llm_opt *o, const char *inline_value, int argc, char **argv, int *i)
{
	if (!o->metavar)
		return set_flag(o, inline_value);
	if (inline_value) {
		o->value = inline_value;
		return LLM_OK;
	}
	if (*i + 1 >= argc)
		return llm_fail(LLM_EINVAL, "--%s needs a value (%s)", o->name, o->metavar);
	o->value = argv[++*i];
	return LLM_OK;
}

llm_err llm_opts_parse(struct llm_opt *opts, int argc, char **argv, int first, int *next)
{
	struct llm_opt *o;
	int i;

	for (o = opts; o->name; o++)
		o->value = o->def;
	for (i = first; i < argc; i++) {
		const char *arg = argv[i], *eq;
		llm_err rc;

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (arg[1] == '-') {
			eq = strchr(arg + 2, '=');
			o = find_long(opts, arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
			eq = eq ? eq + 1 : NULL;
		} else {
			o = arg[2] == '\0' ? find_short(opts, arg[1]) : NULL;
			eq = NULL;
		}
		if (!o)
			return llm_fail(LLM_EINVAL, "unknown option '%s' (see --help)", arg);
		rc = take(o, eq, argc, argv, &i);
		if (rc)
			return rc;
	}
	*next = i;
	return LLM_OK;
}

const char *llm_opts_get(const struct llm_opt *opts, const char *name)
{
	for (; opts->name; opts++)
		if (strcmp(opts->name, name) == 0)
			return opts->value;
	return NULL;
}

bool llm_opts_flag(const struct llm_opt *opts, const char *name)
{
	const char *v = llm_opts_get(opts, name);

	return v && strcmp(v, "true") == 0;
}

llm_err llm_parse_long(const char *s, const char *what, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return llm_fail(LLM_EINVAL, "%s: empty value, expected an integer", what);
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || end == s)
		return llm_fail(LLM_EINVAL, "%s: '%s' is not an integer", what, s);
	if (errno == ERANGE || v < min || v > max)
		return llm_fail(LLM_EINVAL, "%s: %s is outside [%ld, %ld]", what, s, min, max);
	*out = v;
	return LLM_OK;
}

llm_err llm_opts_long(const struct llm_opt *opts, const char *name, long min, long max, long *out)
{
	char what[128];

	snprintf(what, sizeof(what), "--%s", name);
	return llm_parse_long(llm_opts_get(opts, name), what, min, max, out);
}

llm_err llm_parse_duration_ms(const char *s, const char *what, long min_ms, long max_ms, long *out)
{
	static const struct {
		const char *suffix;
		long ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || end == s || errno || v < 0)
		return llm_fail(LLM_EINVAL, "%s: '%s' is not a duration (like 15s or 500ms)", what,
				s ? s : "");
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > max_ms / units[i].ms || v * units[i].ms < min_ms)
			return llm_fail(LLM_EINVAL, "%s: %s is outside [%ldms, %ldms]", what, s,
					min_ms, max_ms);
		*out = v * units[i].ms;
		return LLM_OK;
	}
	return llm_fail(LLM_EINVAL, "%s: '%s' has an unknown unit (use ms, s, m or h)", what, s);
}

void llm_opts_usage(FILE *out, const struct llm_opt *opts)
{
	for (; opts->name; opts++) {
		char head[96];

		if (opts->short_name)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", opts->short_name, opts->name,
				 opts->metavar ? " " : "", opts->metavar ? opts->metavar : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s", opts->name,
				 opts->metavar ? " " : "", opts->metavar ? opts->metavar : "");
		fprintf(out, "  %-34s %s", head, opts->help);
		if (opts->def && opts->metavar)
			fprintf(out, " (default: %s)", opts->def);
		fputc('\n', out);
	}
}
