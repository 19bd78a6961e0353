/* YAML to JSON over libyaml's event parser (see llm_yaml.h).
 *
 * A recursive descent over parser events: each node becomes a json_t as soon
 * as its events have been read, so no YAML tree is kept. An anchor records the
 * finished value with the number of JSON values it took to build, so an alias
 * charges its full expanded size against the node budget before it is copied
 * (and "billion laughs" fails after at most LLM_YAML_MAX_NODES copies).
 * Recursion is bounded by LLM_YAML_MAX_DEPTH.
 *
 * Scalar resolution follows go-yaml v2, which kubectl uses; where it differs
 * from the YAML 1.1 spec the difference is noted at the function. */
#include "llm_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "llm_buf.h"

#define MERGE_TAG "tag:yaml.org,2002:merge"
/* Longest piece of a scalar quoted in an error message. */
#define QUOTE_MAX 64

/* Parser state for one call. */
struct ctx {
	yaml_parser_t parser;
	const char *text; /* the input, to locate reader errors */
	size_t len;
	const char *name; /* labels errors */
	size_t nodes;	  /* JSON values built so far, alias copies included */
	int depth;	  /* mappings and sequences now open */
	json_t *anchors;  /* name -> [value, node count, scalar text or null] */
};

/* What a scalar resolved to. */
enum kind { K_STR, K_NULL, K_BOOL, K_INT, K_REAL };

/* Tags that change resolution; every other tag is ignored. */
enum tag { T_NONE, T_STR, T_NULL, T_BOOL, T_INT, T_FLOAT };

struct scalar {
	enum kind kind;
	bool b;
	json_int_t i;
	double d;
};

/* A mapping key. text borrows from the key event or from hold, an anchor
 * record kept alive while the pair is parsed. */
struct key {
	const char *text;
	size_t len;
	bool merge;
	yaml_mark_t mark;
	json_t *hold;
};

static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"y",	 "Y",	 "yes", "Yes", "YES", "true",
					 "True", "TRUE", "on",	"On",  "ON",  NULL};
static const char *const false_words[] = {"n",	   "N",	    "no",  "No",  "NO",	 "false",
					  "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const inf_words[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
static const char *const neg_inf_words[] = {"-.inf", "-.Inf", "-.INF", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};

static llm_err parse_node(struct ctx *c, const yaml_event_t *ev, json_t **out);

/* Fails with code and a detail "name:line:col: what" located at m. */
__attribute__((format(printf, 4, 5))) static llm_err fail_at(const struct ctx *c, llm_err code,
							     yaml_mark_t m, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return llm_fail(code, "%s:%zu:%zu: %s", c->name, m.line + 1, m.column + 1, msg);
}

static llm_err nomem(const struct ctx *c)
{
	return llm_fail(LLM_ENOMEM, "%s: out of memory while parsing YAML", c->name);
}

/* How much of an n-byte scalar to quote in a message. */
static int quote_len(size_t n)
{
	return n > QUOTE_MAX ? QUOTE_MAX : (int)n;
}

/* The position of byte offset in the input (libyaml's reader errors carry
 * only an offset). Columns count characters, as libyaml's marks do. */
static yaml_mark_t mark_at(const struct ctx *c, size_t offset)
{
	yaml_mark_t m = {0};
	size_t k;

	if (offset > c->len)
		offset = c->len;
	for (k = 0; k < offset; k++) {
		unsigned char ch = (unsigned char)c->text[k];

		if (ch == '\n') {
			m.line++;
			m.column = 0;
		} else if ((ch & 0xC0) != 0x80) {
			m.column++;
		}
	}
	m.index = offset;
	return m;
}

/* Turns libyaml's error state into an llm_err with a located detail. */
static llm_err parser_error(const struct ctx *c)
{
	const yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	switch (p->error) {
	case YAML_MEMORY_ERROR: return nomem(c);
	case YAML_READER_ERROR:
		if (p->problem_value != -1)
			return fail_at(c, LLM_EPARSE, mark_at(c, p->problem_offset), "%s (0x%02X)",
				       problem, (unsigned)p->problem_value);
		return fail_at(c, LLM_EPARSE, mark_at(c, p->problem_offset), "%s", problem);
	default:
		if (p->context)
			return fail_at(c, LLM_EPARSE, p->problem_mark, "%s (%s)", problem,
				       p->context);
		return fail_at(c, LLM_EPARSE, p->problem_mark, "%s", problem);
	}
}

static llm_err next_event(struct ctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev))
		return parser_error(c);
	return LLM_OK;
}

/* Charges n JSON values against the budget. */
static llm_err count_nodes(struct ctx *c, yaml_mark_t m, size_t n)
{
	if (n > LLM_YAML_MAX_NODES - c->nodes)
		return fail_at(c, LLM_ETOOLARGE, m,
			       "document expands to more than %d values "
			       "(aliases nested too deeply?)",
			       LLM_YAML_MAX_NODES);
	c->nodes += n;
	return LLM_OK;
}

/* Opens a mapping or sequence: checks depth and charges one value. */
static llm_err enter(struct ctx *c, yaml_mark_t m)
{
	if (c->depth >= LLM_YAML_MAX_DEPTH)
		return fail_at(c, LLM_EPARSE, m, "nesting deeper than %d", LLM_YAML_MAX_DEPTH);
	c->depth++;
	return count_nodes(c, m, 1);
}

/* ---- scalar resolution ---- */

static bool in_list(const char *s, size_t len, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == len && memcmp(*list, s, len) == 0)
			return true;
	return false;
}

/* Null, boolean and the special floats, which are looked up by name. */
static bool resolve_word(const char *s, size_t len, struct scalar *out)
{
	out->kind = K_NULL;
	if (len == 0 || in_list(s, len, null_words))
		return true;
	out->kind = K_BOOL;
	out->b = in_list(s, len, true_words);
	if (out->b || in_list(s, len, false_words))
		return true;
	out->kind = K_REAL;
	if (in_list(s, len, inf_words))
		out->d = INFINITY;
	else if (in_list(s, len, neg_inf_words))
		out->d = -INFINITY;
	else if (in_list(s, len, nan_words))
		out->d = NAN;
	else
		return false;
	return true;
}

static size_t count_digits(const char *s, const char *end)
{
	const char *p = s;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return (size_t)(p - s);
}

/* go-yaml v2's float syntax:
 * [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float_syntax(const char *s, size_t len)
{
	const char *end = s + len;
	size_t n;

	if (s < end && (*s == '+' || *s == '-'))
		s++;
	n = count_digits(s, end);
	s += n;
	if (s < end && *s == '.') {
		s++;
		if (n == 0 && count_digits(s, end) == 0)
			return false;
		s += count_digits(s, end);
	} else if (n == 0) {
		return false;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		n = count_digits(s, end);
		if (n == 0)
			return false;
		s += n;
	}
	return s == end;
}

/* s[0..len) as a finite real, if it has float syntax. Go's ParseFloat
 * rejects out-of-range values, so an overflow leaves a string. */
static bool parse_real(const char *s, size_t len, struct scalar *out)
{
	double d;

	if (!is_float_syntax(s, len))
		return false;
	d = strtod(s, NULL); /* s is NUL-terminated right after the syntax */
	if (isinf(d))
		return false;
	out->kind = K_REAL;
	out->d = d;
	return true;
}

static int digit_value(char ch, int base)
{
	int v;

	if (ch >= '0' && ch <= '9')
		v = ch - '0';
	else if (ch >= 'a' && ch <= 'f')
		v = ch - 'a' + 10;
	else if (ch >= 'A' && ch <= 'F')
		v = ch - 'A' + 10;
	else
		return -1;
	return v < base ? v : -1;
}

/* Reads s[0..len), all digits of base, into *mag; *overflow when the value
 * does not fit 64 bits. False when empty or a character is not a digit. */
static bool parse_digits(const char *s, size_t len, unsigned base, uint64_t *mag, bool *overflow)
{
	uint64_t v = 0;
	size_t k;

	*overflow = false;
	for (k = 0; k < len; k++) {
		int d = digit_value(s[k], (int)base);

		if (d < 0)
			return false;
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			*overflow = true;
		else
			v = v * base + (uint64_t)d;
	}
	*mag = v;
	return len > 0;
}

/* Go's strconv.ParseInt(s, 0, 64) as go-yaml v2 applies it: optional sign,
 * then 0x, 0o or 0b, a leading 0 meaning octal (YAML 1.1: `mode: 0644` is
 * 420), or decimal. Past int64, a positive prefixed value that fits 64 bits
 * becomes a real (go-yaml gives a uint64) and a decimal is left to the float
 * rule; anything else is no number. */
static bool parse_int(const char *s, size_t len, struct scalar *out)
{
	bool neg = false, overflow;
	unsigned base = 10;
	size_t skip = 0;
	uint64_t mag;

	if (len && (*s == '+' || *s == '-')) {
		neg = *s == '-';
		s++;
		len--;
	}
	if (len >= 2 && s[0] == '0') {
		char p = (char)(s[1] | 0x20);

		base = p == 'x' ? 16 : p == 'b' ? 2 : 8;
		skip = p == 'x' || p == 'o' || p == 'b' ? 2 : 1;
	}
	if (!parse_digits(s + skip, len - skip, base, &mag, &overflow))
		return false;
	if (!overflow && mag <= (uint64_t)INT64_MAX + neg) {
		out->kind = K_INT;
		out->i = neg ? (json_int_t)(0 - mag) : (json_int_t)mag;
		return true;
	}
	if (base == 10 || neg || overflow)
		return false;
	out->kind = K_REAL;
	out->d = (double)mag;
	return true;
}

/* Numbers whose first character is a sign or digit: underscores are
 * dropped (go-yaml v2 allows them anywhere), then int, then float. */
static llm_err resolve_number(const char *s, size_t len, struct scalar *out)
{
	char *plain = malloc(len + 1);
	size_t k, n = 0;

	if (!plain)
		return LLM_ENOMEM;
	for (k = 0; k < len; k++)
		if (s[k] != '_')
			plain[n++] = s[k];
	plain[n] = '\0';
	if (!parse_int(plain, n, out) && !parse_real(plain, n, out))
		out->kind = K_STR;
	free(plain);
	return LLM_OK;
}

/* Resolves a plain scalar; out->kind is K_STR when nothing else fits.
 * Timestamps and sexagesimal numbers stay strings, as in go-yaml v2. Fails
 * only with LLM_ENOMEM (no detail). */
static llm_err resolve_plain(const char *s, size_t len, struct scalar *out)
{
	if (resolve_word(s, len, out))
		return LLM_OK;
	out->kind = K_STR;
	if (s[0] == '.') {
		/* go-yaml: ParseFloat on the text as written */
		parse_real(s, len, out);
		return LLM_OK;
	}
	if (s[0] == '+' || s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
		return resolve_number(s, len, out);
	return LLM_OK;
}

static enum tag scalar_tag(const yaml_event_t *ev)
{
	const char *t = (const char *)ev->data.scalar.tag;

	if (!t)
		return T_NONE;
	if (!strcmp(t, "!") || !strcmp(t, YAML_STR_TAG))
		return T_STR;
	if (!strcmp(t, YAML_NULL_TAG))
		return T_NULL;
	if (!strcmp(t, YAML_BOOL_TAG))
		return T_BOOL;
	if (!strcmp(t, YAML_INT_TAG))
		return T_INT;
	if (!strcmp(t, YAML_FLOAT_TAG))
		return T_FLOAT;
	return T_NONE;
}

/* Resolves a scalar event honouring its tag: untagged plain scalars by
 * resolve_plain(), other untagged styles as strings, !!str (and the
 * non-specific "!") as strings, and !!null/!!bool/!!int/!!float by resolving
 * the text and requiring the matching kind (!!float also takes integers). */
static llm_err classify(const struct ctx *c, const yaml_event_t *ev, struct scalar *out)
{
	static const enum kind want[] = {
		[T_NULL] = K_NULL, [T_BOOL] = K_BOOL, [T_INT] = K_INT, [T_FLOAT] = K_REAL};
	static const char *const tag_name[] = {
		[T_NULL] = "!!null", [T_BOOL] = "!!bool", [T_INT] = "!!int", [T_FLOAT] = "!!float"};
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	enum tag tag = scalar_tag(ev);

	out->kind = K_STR;
	if (tag == T_STR || (tag == T_NONE && ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE))
		return LLM_OK;
	if (resolve_plain(s, len, out))
		return nomem(c);
	if (tag == T_NONE)
		return LLM_OK;
	if (tag == T_FLOAT && out->kind == K_INT) {
		out->kind = K_REAL;
		out->d = (double)out->i;
	}
	if (out->kind != want[tag])
		return fail_at(c, LLM_EPARSE, ev->start_mark, "cannot parse \"%.*s\" as %s",
			       quote_len(len), s, tag_name[tag]);
	return LLM_OK;
}

/* The JSON value of a classified scalar (a new reference). */
static llm_err scalar_json(const struct ctx *c, const yaml_event_t *ev, const struct scalar *s,
			   json_t **out)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	switch (s->kind) {
	case K_NULL: *out = json_null(); break;
	case K_BOOL: *out = json_boolean(s->b); break;
	case K_INT: *out = json_integer(s->i); break;
	case K_REAL:
		if (!isfinite(s->d))
			return fail_at(c, LLM_EPARSE, ev->start_mark,
				       "JSON cannot represent \"%.*s\" "
				       "(infinity or NaN)",
				       quote_len(len), text);
		*out = json_real(s->d);
		break;
	default: *out = json_stringn(text, len); break;
	}
	return *out ? LLM_OK : nomem(c);
}

/* ---- anchors and aliases ---- */

/* Records value under anchor (if any) with the number of values it took to
 * build; scalar is the scalar event it came from, whose text an alias used
 * as a mapping key needs, or NULL for a collection. */
static llm_err remember(struct ctx *c, const yaml_char_t *anchor, json_t *value, size_t count,
			const yaml_event_t *scalar)
{
	json_t *rec;

	if (!anchor)
		return LLM_OK;
	if (scalar)
		rec = json_pack("[OIs%]", value, (json_int_t)count,
				(const char *)scalar->data.scalar.value,
				scalar->data.scalar.length);
	else
		rec = json_pack("[OIn]", value, (json_int_t)count);
	if (!rec || json_object_set_new(c->anchors, (const char *)anchor, rec))
		return nomem(c);
	return LLM_OK;
}

/* The record of the anchor an alias event names (borrowed). */
static llm_err lookup_anchor(const struct ctx *c, const yaml_event_t *ev, json_t **rec)
{
	const char *name = (const char *)ev->data.alias.anchor;

	*rec = json_object_get(c->anchors, name);
	if (!*rec)
		return fail_at(c, LLM_EPARSE, ev->start_mark, "undefined alias \"*%s\"", name);
	return LLM_OK;
}

/* An alias: a deep copy of the anchored value, charged at its full size. */
static llm_err parse_alias(struct ctx *c, const yaml_event_t *ev, json_t **out)
{
	json_t *rec;
	llm_err rc;

	rc = lookup_anchor(c, ev, &rec);
	if (rc)
		return rc;
	rc = count_nodes(c, ev->start_mark, (size_t)json_integer_value(json_array_get(rec, 1)));
	if (rc)
		return rc;
	*out = json_deep_copy(json_array_get(rec, 0));
	return *out ? LLM_OK : nomem(c);
}

static llm_err parse_scalar(struct ctx *c, const yaml_event_t *ev, json_t **out)
{
	struct scalar s;
	llm_err rc;

	*out = NULL;
	rc = classify(c, ev, &s);
	if (!rc)
		rc = count_nodes(c, ev->start_mark, 1);
	if (!rc)
		rc = scalar_json(c, ev, &s, out);
	if (!rc)
		rc = remember(c, ev->data.scalar.anchor, *out, 1, ev);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- collections ---- */

static llm_err parse_sequence(struct ctx *c, const yaml_event_t *start, json_t **out)
{
	yaml_event_t ev;
	json_t *arr, *item;
	llm_err rc;

	rc = enter(c, start->start_mark);
	if (rc)
		return rc;
	arr = json_array();
	if (!arr)
		return nomem(c);
	for (;;) {
		rc = next_event(c, &ev);
		if (rc)
			goto out_free_arr;
		if (ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		rc = parse_node(c, &ev, &item);
		yaml_event_delete(&ev);
		if (rc)
			goto out_free_arr;
		if (json_array_append_new(arr, item)) {
			rc = nomem(c);
			goto out_free_arr;
		}
	}
	yaml_event_delete(&ev);
	c->depth--;
	*out = arr;
	return LLM_OK;

out_free_arr:
	json_decref(arr);
	return rc;
}

static bool is_merge_key(const yaml_event_t *ev)
{
	const char *tag = (const char *)ev->data.scalar.tag;

	if (tag)
		return !strcmp(tag, MERGE_TAG);
	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.length == 2 &&
	       !memcmp(ev->data.scalar.value, "<<", 2);
}

/* A scalar key: its tag is checked and its anchor, if any, recorded. */
static llm_err check_key_scalar(struct ctx *c, const yaml_event_t *ev)
{
	struct scalar s;
	json_t *value;
	llm_err rc;

	if (!ev->data.scalar.anchor)
		return classify(c, ev, &s);
	rc = parse_scalar(c, ev, &value);
	json_decref(value);
	return rc;
}

/* Reads the key whose first event is ev. Keys are the scalar's text whatever
 * it resolves to (`1: a` gives "1"); an alias key must name a scalar. On
 * success the caller releases k->hold. */
static llm_err read_key(struct ctx *c, const yaml_event_t *ev, struct key *k)
{
	json_t *rec, *text;
	llm_err rc;

	k->text = "";
	k->len = 0;
	k->mark = ev->start_mark;
	k->merge = false;
	k->hold = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		k->text = (const char *)ev->data.scalar.value;
		k->len = ev->data.scalar.length;
		k->merge = is_merge_key(ev);
		return check_key_scalar(c, ev);
	case YAML_ALIAS_EVENT:
		rc = lookup_anchor(c, ev, &rec);
		if (rc)
			return rc;
		text = json_array_get(rec, 2);
		if (!json_is_string(text))
			return fail_at(c, LLM_EPARSE, ev->start_mark,
				       "mapping key must be a scalar, found an "
				       "alias to a collection");
		k->text = json_string_value(text);
		k->len = json_string_length(text);
		k->hold = json_incref(rec);
		return LLM_OK;
	case YAML_MAPPING_START_EVENT:
		return fail_at(c, LLM_EPARSE, ev->start_mark,
			       "mapping key must be a scalar, found a mapping");
	default:
		return fail_at(c, LLM_EPARSE, ev->start_mark,
			       "mapping key must be a scalar, found a sequence");
	}
}

/* Copies the keys of src that *merged lacks into *merged (created on first
 * use), so the first source to supply a key wins. */
static llm_err merge_one(const struct ctx *c, json_t **merged, json_t *src)
{
	const char *key;
	size_t klen;
	json_t *v;

	if (!*merged && !(*merged = json_object()))
		return nomem(c);
	json_object_keylen_foreach(src, key, klen, v)
	{
		if (json_object_getn(*merged, key, klen))
			continue;
		if (json_object_setn(*merged, key, klen, v))
			return nomem(c);
	}
	return LLM_OK;
}

/* Folds the value of a `<<` key (a mapping, or a sequence of mappings where
 * earlier entries win, as YAML 1.1 says) into *merged. Takes val. */
static llm_err merge_value(const struct ctx *c, yaml_mark_t m, json_t **merged, json_t *val)
{
	llm_err rc = LLM_OK;
	json_t *item;
	size_t i;

	if (json_is_object(val)) {
		rc = merge_one(c, merged, val);
	} else if (json_is_array(val)) {
		json_array_foreach(val, i, item)
		{
			if (!json_is_object(item))
				break;
			rc = merge_one(c, merged, item);
			if (rc)
				break;
		}
		if (!rc && i < json_array_size(val))
			rc = fail_at(c, LLM_EPARSE, m,
				     "merge key \"<<\" needs a mapping or a "
				     "sequence of mappings");
	} else {
		rc = fail_at(c, LLM_EPARSE, m,
			     "merge key \"<<\" needs a mapping or a sequence "
			     "of mappings");
	}
	json_decref(val);
	return rc;
}

/* Adds the merged keys that obj does not set explicitly. */
static llm_err apply_merged(const struct ctx *c, json_t *obj, json_t *merged)
{
	const char *key;
	size_t klen;
	json_t *v;

	if (!merged)
		return LLM_OK;
	json_object_keylen_foreach(merged, key, klen, v)
	{
		if (json_object_getn(obj, key, klen))
			continue;
		if (json_object_setn(obj, key, klen, v))
			return nomem(c);
	}
	return LLM_OK;
}

/* One key and its value, kev being the key's first event. */
static llm_err parse_pair(struct ctx *c, const yaml_event_t *kev, json_t *obj, json_t **merged)
{
	yaml_event_t vev;
	yaml_mark_t vmark;
	struct key k;
	json_t *val;
	llm_err rc;

	rc = read_key(c, kev, &k);
	if (rc)
		return rc;
	if (!k.merge && json_object_getn(obj, k.text, k.len)) {
		rc = fail_at(c, LLM_EPARSE, k.mark, "duplicate key \"%.*s\"", quote_len(k.len),
			     k.text);
		goto out_release_key;
	}
	rc = next_event(c, &vev);
	if (rc)
		goto out_release_key;
	vmark = vev.start_mark;
	rc = parse_node(c, &vev, &val);
	yaml_event_delete(&vev);
	if (rc)
		goto out_release_key;
	if (k.merge)
		rc = merge_value(c, vmark, merged, val);
	else if (json_object_setn_new(obj, k.text, k.len, val))
		rc = nomem(c);

out_release_key:
	json_decref(k.hold);
	return rc;
}

static llm_err parse_mapping(struct ctx *c, const yaml_event_t *start, json_t **out)
{
	json_t *obj, *merged = NULL;
	yaml_event_t ev;
	llm_err rc;

	rc = enter(c, start->start_mark);
	if (rc)
		return rc;
	obj = json_object();
	if (!obj)
		return nomem(c);
	for (;;) {
		rc = next_event(c, &ev);
		if (rc)
			goto out_free;
		if (ev.type == YAML_MAPPING_END_EVENT)
			break;
		rc = parse_pair(c, &ev, obj, &merged);
		yaml_event_delete(&ev);
		if (rc)
			goto out_free;
	}
	yaml_event_delete(&ev);
	rc = apply_merged(c, obj, merged);
	if (rc)
		goto out_free;
	json_decref(merged);
	c->depth--;
	*out = obj;
	return LLM_OK;

out_free:
	json_decref(merged);
	json_decref(obj);
	return rc;
}

/* Any node; ev is its first event, which the caller still owns. On success
 * *out is a new reference; on failure it is NULL. */
static llm_err parse_node(struct ctx *c, const yaml_event_t *ev, json_t **out)
{
	size_t before = c->nodes;
	const yaml_char_t *anchor;
	llm_err rc;

	*out = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return parse_scalar(c, ev, out);
	case YAML_ALIAS_EVENT: return parse_alias(c, ev, out);
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		rc = parse_sequence(c, ev, out);
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		rc = parse_mapping(c, ev, out);
		break;
	default:
		return fail_at(c, LLM_EINTERNAL, ev->start_mark, "unexpected YAML event %d",
			       (int)ev->type);
	}
	if (!rc)
		rc = remember(c, anchor, *out, c->nodes - before, NULL);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- documents and the stream ---- */

/* Reads one document after its DOCUMENT-START event, through its
 * DOCUMENT-END. Anchors do not outlive their document. */
static llm_err parse_document(struct ctx *c, json_t **doc)
{
	yaml_event_t ev;
	llm_err rc;

	rc = next_event(c, &ev);
	if (rc)
		return rc;
	rc = parse_node(c, &ev, doc);
	yaml_event_delete(&ev);
	if (rc)
		return rc;
	rc = next_event(c, &ev);
	if (rc)
		goto out_free_doc;
	if (ev.type != YAML_DOCUMENT_END_EVENT)
		rc = fail_at(c, LLM_EINTERNAL, ev.start_mark, "expected the end of the document");
	yaml_event_delete(&ev);
	if (rc)
		goto out_free_doc;
	json_object_clear(c->anchors);
	c->depth = 0;
	return LLM_OK;

out_free_doc:
	json_decref(*doc);
	*doc = NULL;
	return rc;
}

/* Reads the whole stream, appending each non-null document to docs. */
static llm_err parse_stream(struct ctx *c, json_t *docs)
{
	yaml_event_type_t type;
	yaml_event_t ev;
	json_t *doc;
	llm_err rc;

	for (;;) {
		rc = next_event(c, &ev);
		if (rc)
			return rc;
		type = ev.type;
		yaml_event_delete(&ev);
		if (type == YAML_STREAM_START_EVENT)
			continue;
		if (type == YAML_STREAM_END_EVENT)
			return LLM_OK;
		if (type != YAML_DOCUMENT_START_EVENT)
			return llm_fail(LLM_EINTERNAL, "%s: unexpected YAML event %d", c->name,
					(int)type);
		rc = parse_document(c, &doc);
		if (rc)
			return rc;
		if (json_is_null(doc)) /* kubectl skips empty documents */
			json_decref(doc);
		else if (json_array_append_new(docs, doc))
			return nomem(c);
	}
}

llm_err llm_yaml_parse_all(const char *text, size_t len, const char *name, json_t **docs_out)
{
	struct ctx c = {0};
	json_t *docs;
	llm_err rc;

	*docs_out = NULL;
	c.name = name ? name : "<yaml>";
	if (!text && len)
		return llm_fail(LLM_EINVAL, "%s: no text", c.name);
	c.text = text ? text : "";
	c.len = len;
	c.anchors = json_object();
	docs = json_array();
	if (!c.anchors || !docs) {
		rc = nomem(&c);
		goto out_free_json;
	}
	if (!yaml_parser_initialize(&c.parser)) {
		rc = nomem(&c);
		goto out_free_json;
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.text, c.len);
	rc = parse_stream(&c, docs);
	yaml_parser_delete(&c.parser);
	if (rc)
		goto out_free_json;
	json_decref(c.anchors);
	*docs_out = docs;
	return LLM_OK;

out_free_json:
	json_decref(c.anchors);
	json_decref(docs);
	return rc;
}

llm_err llm_yaml_parse_one(const char *text, size_t len, const char *name, json_t **doc_out)
{
	json_t *docs;
	size_t n;
	llm_err rc;

	*doc_out = NULL;
	rc = llm_yaml_parse_all(text, len, name, &docs);
	if (rc)
		return rc;
	n = json_array_size(docs);
	if (n == 1)
		*doc_out = json_incref(json_array_get(docs, 0));
	else
		rc = llm_fail(LLM_EPARSE, "%s: expected exactly one YAML document, found %zu",
			      name ? name : "<yaml>", n);
	json_decref(docs);
	return rc;
}

llm_err llm_yaml_load_file(const char *path, size_t max, json_t **docs_out)
{
	llm_buf buf;
	llm_err rc;

	*docs_out = NULL;
	llm_buf_init(&buf, max);
	rc = llm_buf_read_file(&buf, path);
	if (!rc)
		rc = llm_yaml_parse_all(llm_buf_str(&buf), buf.len, path, docs_out);
	llm_buf_free(&buf);
	return rc;
}
