/* JSON parsing with caps and typed path getters (see llm_json.h). Paths are
 * walked while they are parsed, so no segment list is allocated. */
#include "llm_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"

llm_err llm_json_parse(const char *text, size_t len, size_t max, const char *name, json_t **out)
{
	json_error_t jerr;

	*out = NULL;
	if (len > max)
		return llm_fail(LLM_ETOOLARGE, "%s: %zu bytes is over the limit of %zu bytes", name,
				len, max);
	*out = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return llm_fail(LLM_EPARSE, "%s:%d:%d: %s", name, jerr.line, jerr.column,
				jerr.text);
	return LLM_OK;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* One step of a path: an object key (copied into key) or an array index. */
struct step {
	char key[256];
	bool is_index;
	size_t index;
};

/* Parses the step at *p and advances *p to just after it; a step must be
 * followed by the end of the path, '.' or '['. */
static llm_err next_step(const char *path, const char **p, struct step *st)
{
	const char *s = *p, *end;
	size_t n;

	st->is_index = false;
	if (*s == '[' && s[1] == '"') {
		end = strchr(s + 2, '"');
		if (!end || end[1] != ']')
			goto bad;
		s += 2;
		n = (size_t)(end - s);
		end += 2;
	} else if (*s == '[') {
		char *num_end;
		unsigned long long v;

		errno = 0;
		v = strtoull(s + 1, &num_end, 10);
		if (num_end == s + 1 || *num_end != ']' || errno || s[1] == '-')
			goto bad;
		st->is_index = true;
		st->index = (size_t)v;
		end = num_end + 1;
		goto check_end;
	} else {
		end = s + strcspn(s, ".[");
		n = (size_t)(end - s);
		if (n == 0)
			goto bad;
	}
	if (n >= sizeof(st->key))
		goto bad;
	memcpy(st->key, s, n);
	st->key[n] = '\0';
check_end:
	if (*end != '\0' && *end != '.' && *end != '[')
		goto bad;
	*p = end;
	return LLM_OK;
bad:
	return llm_fail(LLM_EINVAL, "malformed JSON path '%s' at offset %zu", path,
			(size_t)(s - path));
}

/* Checks the syntax of the whole path, so a malformed path is reported as
 * such even when an earlier step is missing from the document. */
static llm_err check_path(const char *path)
{
	const char *p = path;
	struct step st;
	llm_err rc;

	while (*p) {
		if (*p == '.' && p != path)
			p++;
		rc = next_step(path, &p, &st);
		if (rc)
			return rc;
	}
	return LLM_OK;
}

llm_err llm_json_get(const json_t *root, const char *path, json_t **out)
{
	const json_t *cur = root;
	const char *p = path;
	struct step st;
	llm_err rc;

	*out = NULL;
	if (!root)
		return llm_fail(LLM_EINVAL, "JSON path '%s' on a NULL document", path);
	rc = check_path(path);
	if (rc)
		return rc;
	while (*p) {
		const char *at = p;
		const json_t *next;

		if (*p == '.' && p != path)
			p++;
		rc = next_step(path, &p, &st);
		if (rc)
			return rc;
		if (st.is_index && !json_is_array(cur))
			return llm_fail(LLM_ETYPE, "'%.*s' in '%s' is %s, not an array",
					(int)(at - path), path, path, type_name(cur));
		if (!st.is_index && !json_is_object(cur))
			return llm_fail(LLM_ETYPE, "'%.*s' in '%s' is %s, not an object",
					(int)(at - path), path, path, type_name(cur));
		next = st.is_index ? json_array_get(cur, st.index) : json_object_get(cur, st.key);
		if (!next)
			return llm_fail(LLM_ENOTFOUND, "'%s' has no '%.*s'", path, (int)(p - path),
					path);
		cur = next;
	}
	*out = (json_t *)cur;
	return LLM_OK;
}

/* Gets path and checks that its value has the expected type. */
static llm_err get_typed(const json_t *root, const char *path, bool ok_type(const json_t *),
			 const char *want, json_t **out)
{
	llm_err rc = llm_json_get(root, path, out);

	if (rc)
		return rc;
	if (!ok_type(*out)) {
		rc = llm_fail(LLM_ETYPE, "'%s' is %s, expected %s", path, type_name(*out), want);
		*out = NULL;
	}
	return rc;
}

static bool is_string(const json_t *v)
{
	return json_is_string(v);
}
static bool is_integer(const json_t *v)
{
	return json_is_integer(v);
}
static bool is_number(const json_t *v)
{
	return json_is_number(v);
}
static bool is_boolean(const json_t *v)
{
	return json_is_boolean(v);
}
static bool is_object(const json_t *v)
{
	return json_is_object(v);
}
static bool is_array(const json_t *v)
{
	return json_is_array(v);
}

llm_err llm_json_get_str(const json_t *root, const char *path, const char **out)
{
	json_t *v;
	llm_err rc = get_typed(root, path, is_string, "a string", &v);

	*out = rc ? NULL : json_string_value(v);
	return rc;
}

llm_err llm_json_get_int(const json_t *root, const char *path, json_int_t *out)
{
	json_t *v;
	llm_err rc = get_typed(root, path, is_integer, "an integer", &v);

	*out = rc ? 0 : json_integer_value(v);
	return rc;
}

llm_err llm_json_get_num(const json_t *root, const char *path, double *out)
{
	json_t *v;
	llm_err rc = get_typed(root, path, is_number, "a number", &v);

	*out = rc ? 0 : json_number_value(v);
	return rc;
}

llm_err llm_json_get_bool(const json_t *root, const char *path, bool *out)
{
	json_t *v;
	llm_err rc = get_typed(root, path, is_boolean, "a boolean", &v);

	*out = rc ? false : json_is_true(v);
	return rc;
}

llm_err llm_json_get_obj(const json_t *root, const char *path, json_t **out)
{
	return get_typed(root, path, is_object, "an object", out);
}

llm_err llm_json_get_arr(const json_t *root, const char *path, json_t **out)
{
	return get_typed(root, path, is_array, "an array", out);
}

const char *llm_json_str_or(const json_t *root, const char *path, const char *def)
{
	json_t *v;

	if (llm_json_get(root, path, &v) || !json_is_string(v))
		return def;
	return json_string_value(v);
}

llm_err llm_json_load_file(const char *path, size_t max, json_t **out)
{
	llm_buf buf;
	llm_err err;

	*out = NULL;
	llm_buf_init(&buf, max);
	err = llm_buf_read_file(&buf, path);
	if (!err)
		err = llm_json_parse(llm_buf_str(&buf), buf.len, max, path, out);
	llm_buf_free(&buf);
	return err;
}
