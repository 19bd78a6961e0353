/* PromptVersion placeholders and rendering: one scanner for `{{name}}`
 * shared by the operator's validation and the renderer, and the layout of
 * few-shot examples and chain of thought (docs/promptversion.md,
 * Rendering). Everything works on the jansson spec object as stored; the
 * rendered text is capped (a shared byte budget over all messages). */
#include "llm_prompt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm_buf.h"

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

/* Parses the placeholder whose `{{` is at open; fills ph or fails. */
static llm_err parse_one(const char *text, const char *open, const char *where,
			 struct llm_prompt_ph *ph)
{
	const char *close = strstr(open + 2, "}}"), *a, *b;

	if (!close || memchr(open + 2, '{', (size_t)(close - open - 2)))
		return llm_fail(LLM_EINVAL, "%s: '{{' at offset %zu is not closed", where,
				(size_t)(open - text));
	for (a = open + 2; *a == ' '; a++)
		;
	for (b = close; b > a && b[-1] == ' '; b--)
		;
	if (b == a || strspn(a, NAME_CHARS) < (size_t)(b - a) || (*a >= '0' && *a <= '9'))
		return llm_fail(LLM_EINVAL, "%s: '%.*s' is not a variable name", where,
				(int)(close - open + 2), open);
	ph->start = (size_t)(open - text);
	ph->end = (size_t)(close + 2 - text);
	ph->name = a;
	ph->name_len = (size_t)(b - a);
	return LLM_OK;
}

llm_err llm_prompt_scan(const char *text, const char *where, llm_prompt_ph_cb cb, void *data)
{
	const char *p = text;
	struct llm_prompt_ph ph;
	llm_err rc;

	while ((p = strpbrk(p, "{}"))) {
		if (p[0] == '}' && p[1] == '}')
			return llm_fail(LLM_EINVAL, "%s: '}}' at offset %zu closes nothing", where,
					(size_t)(p - text));
		if (!(p[0] == '{' && p[1] == '{')) {
			p++;
			continue;
		}
		rc = parse_one(text, p, where, &ph);
		if (!rc && cb)
			rc = cb(&ph, data);
		if (rc)
			return rc;
		p = text + ph.end;
	}
	return LLM_OK;
}

/* The declaration of variable name (len bytes) in spec, or NULL. */
static const json_t *declaration(const json_t *spec, const char *name, size_t len)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(spec, "variables"), i, v)
	{
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && strlen(n) == len && strncmp(n, name, len) == 0)
			return v;
	}
	return NULL;
}

struct check_ctx {
	const json_t *spec;
	const char *where;
};

static llm_err check_declared(const struct llm_prompt_ph *ph, void *data)
{
	const struct check_ctx *c = data;

	if (declaration(c->spec, ph->name, ph->name_len))
		return LLM_OK;
	return llm_fail(LLM_EINVAL,
			"%s: variable '%.*s' is used but not declared in spec.variables", c->where,
			(int)ph->name_len, ph->name);
}

static llm_err check_text(const json_t *spec, const char *text, const char *where)
{
	struct check_ctx c = {spec, where};

	return llm_prompt_scan(text, where, check_declared, &c);
}

llm_err llm_prompt_check(const json_t *spec)
{
	const char *tmpl = json_string_value(json_object_get(spec, "template"));
	json_t *m;
	size_t i;
	llm_err rc = tmpl ? check_text(spec, tmpl, "spec.template") : LLM_OK;

	json_array_foreach(json_object_get(spec, "messages"), i, m)
	{
		char where[64];
		const char *content = json_string_value(json_object_get(m, "content"));

		snprintf(where, sizeof(where), "spec.messages[%zu].content", i);
		if (!rc)
			rc = check_text(spec, content ? content : "", where);
	}
	return rc;
}

/* --- rendering ------------------------------------------------------------- */

struct render_ctx {
	const json_t *spec;
	const json_t *vars; /* values of this rendering (input or example) */
	const char *text;   /* the text being rendered */
	size_t pos;	    /* bytes of text already copied */
	llm_buf *out;
};

/* The value of the placeholder's variable: given, default, or "". */
static llm_err value_of(const struct render_ctx *c, const struct llm_prompt_ph *ph,
			const char **val)
{
	const json_t *decl = declaration(c->spec, ph->name, ph->name_len);
	const json_t *given = NULL;
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)c->vars, key, v)
	{
		if (strlen(key) == ph->name_len && strncmp(key, ph->name, ph->name_len) == 0)
			given = v;
	}
	if (given)
		*val = json_string_value(given);
	else if (json_is_string(json_object_get(decl, "default")))
		*val = json_string_value(json_object_get(decl, "default"));
	else if (json_is_true(json_object_get(decl, "required")))
		return llm_fail(LLM_EINVAL, "required variable '%.*s' has no value",
				(int)ph->name_len, ph->name);
	else
		*val = "";
	return LLM_OK;
}

static llm_err substitute(const struct llm_prompt_ph *ph, void *data)
{
	struct render_ctx *c = data;
	const char *val = "";
	llm_err rc = value_of(c, ph, &val);

	if (!rc)
		rc = llm_buf_append(c->out, c->text + c->pos, ph->start - c->pos);
	if (!rc)
		rc = llm_buf_puts(c->out, val);
	c->pos = ph->end;
	return rc;
}

/* Appends text with its placeholders replaced by vars' values to out. */
static llm_err render_into(const json_t *spec, const json_t *vars, const char *text,
			   const char *where, llm_buf *out)
{
	struct render_ctx c = {spec, vars, text, 0, out};
	llm_err rc = llm_prompt_scan(text, where, substitute, &c);

	if (!rc)
		rc = llm_buf_puts(out, text + c.pos);
	if (rc == LLM_ETOOLARGE)
		return llm_fail(rc, "rendered prompt is longer than %zu bytes", out->max);
	return rc;
}

/* Every value is a string of a declared variable. where prefixes errors. */
static llm_err check_vars(const json_t *spec, const json_t *vars, const char *where)
{
	const char *key;
	json_t *v;

	if (vars && !json_is_object(vars))
		return llm_fail(LLM_ETYPE, "%svariables are not an object", where);
	json_object_foreach((json_t *)vars, key, v)
	{
		if (!declaration(spec, key, strlen(key)))
			return llm_fail(LLM_EINVAL, "%sunknown variable '%s'", where, key);
		if (!json_is_string(v))
			return llm_fail(LLM_ETYPE, "%svariable '%s' is not a string", where, key);
	}
	return LLM_OK;
}

/* How many examples the shots ask for; fails when there are fewer. */
static llm_err shot_count(const json_t *spec, size_t *n)
{
	const char *shots = json_string_value(json_object_get(spec, "shots"));
	size_t have = json_array_size(json_object_get(spec, "examples"));

	*n = 0;
	if (shots && strcmp(shots, "one") == 0)
		*n = 1;
	else if (shots && strcmp(shots, "few") == 0)
		*n = have < 2 ? 2 : have;
	if (have < *n)
		return llm_fail(LLM_EINVAL, "spec.shots is %s but spec.examples has %zu (need %zu)",
				shots, have, *n);
	return LLM_OK;
}

/* Checks the spec and the example inputs used by the shots. */
static llm_err check_all(const json_t *spec, const json_t *vars, size_t *shots)
{
	json_t *examples = json_object_get(spec, "examples");
	llm_err rc = llm_prompt_check(spec);

	if (!rc && !json_is_string(json_object_get(spec, "template")) ==
			   !json_is_array(json_object_get(spec, "messages")))
		rc = llm_fail(LLM_EINVAL, "spec needs exactly one of template and messages");
	if (!rc)
		rc = shot_count(spec, shots);
	for (size_t i = 0; !rc && i < *shots; i++) {
		char where[64];

		snprintf(where, sizeof(where), "spec.examples[%zu].inputs: ", i);
		rc = check_vars(spec, json_object_get(json_array_get(examples, i), "inputs"),
				where);
	}
	return rc ? rc : check_vars(spec, vars, "");
}

static const char *example_output(const json_t *spec, size_t i)
{
	const char *o = json_string_value(
		json_object_get(json_array_get(json_object_get(spec, "examples"), i), "output"));

	return o ? o : "";
}

/* Template layout: each example rendered and followed by its output and a
 * blank line, then the input, then "\n" chainOfThought "\n". */
static llm_err render_template(const json_t *spec, const json_t *vars, size_t shots, size_t max,
			       json_t **out)
{
	const char *tmpl = json_string_value(json_object_get(spec, "template"));
	const char *cot = json_string_value(json_object_get(spec, "chainOfThought"));
	json_t *examples = json_object_get(spec, "examples");
	llm_buf b;
	llm_err rc = LLM_OK;

	llm_buf_init(&b, max);
	for (size_t i = 0; !rc && i < shots; i++) {
		rc = render_into(spec, json_object_get(json_array_get(examples, i), "inputs"), tmpl,
				 "spec.template", &b);
		if (!rc)
			rc = llm_buf_printf(&b, "%s\n\n", example_output(spec, i));
	}
	if (!rc)
		rc = render_into(spec, vars, tmpl, "spec.template", &b);
	if (!rc && cot && *cot)
		rc = llm_buf_printf(&b, "\n%s\n", cot);
	if (rc == LLM_ETOOLARGE)
		rc = llm_fail(rc, "rendered prompt is longer than %zu bytes", max);
	if (!rc && !(*out = json_stringn(llm_buf_str(&b), b.len)))
		rc = llm_fail(LLM_EINVAL, "rendered prompt is not valid UTF-8");
	llm_buf_free(&b);
	return rc;
}

/* Appends {"role","content"[,"example":true]} to arr. */
static llm_err add_message(json_t *arr, const char *role, llm_buf *content, bool example)
{
	json_t *m = json_object();
	json_t *c = json_stringn(llm_buf_str(content), content->len);

	if (!m || !c) {
		json_decref(m);
		json_decref(c);
		return llm_fail(LLM_EINVAL, "rendered message is not valid UTF-8");
	}
	json_object_set_new(m, "role", json_string(role));
	json_object_set_new(m, "content", c);
	if (example)
		json_object_set_new(m, "example", json_true());
	json_array_append_new(arr, m);
	return LLM_OK;
}

static bool is_role(const json_t *m, const char *role)
{
	const char *r = json_string_value(json_object_get(m, "role"));

	return r && strcmp(r, role) == 0;
}

struct msg_ctx {
	const json_t *spec;
	json_t *arr;
	size_t budget; /* bytes of content left */
};

/* Renders spec.messages[from, to) with vars and appends them to c->arr. */
static llm_err render_turns(struct msg_ctx *c, const json_t *vars, size_t from, size_t to,
			    bool example)
{
	json_t *msgs = json_object_get(c->spec, "messages");
	llm_err rc = LLM_OK;

	for (size_t i = from; !rc && i < to; i++) {
		json_t *m = json_array_get(msgs, i);
		const char *content = json_string_value(json_object_get(m, "content"));
		const char *role = json_string_value(json_object_get(m, "role"));
		char where[64];
		llm_buf b;

		snprintf(where, sizeof(where), "spec.messages[%zu].content", i);
		llm_buf_init(&b, c->budget);
		rc = render_into(c->spec, vars, content ? content : "", where, &b);
		if (!rc)
			rc = add_message(c->arr, role ? role : "user", &b, example);
		c->budget -= rc ? 0 : b.len;
		llm_buf_free(&b);
	}
	return rc;
}

/* Appends an example's output as an assistant turn. */
static llm_err add_output(struct msg_ctx *c, size_t i)
{
	llm_buf b;
	llm_err rc;

	llm_buf_init(&b, c->budget);
	rc = llm_buf_puts(&b, example_output(c->spec, i));
	if (rc == LLM_ETOOLARGE)
		rc = llm_fail(rc, "rendered prompt is too long");
	if (!rc)
		rc = add_message(c->arr, "assistant", &b, true);
	c->budget -= rc ? 0 : b.len;
	llm_buf_free(&b);
	return rc;
}

/* chainOfThought goes after a blank line at the end of the last user turn
 * from index from on, or in a user turn of its own when there is none. */
static llm_err add_cot(struct msg_ctx *c, size_t from)
{
	const char *cot = json_string_value(json_object_get(c->spec, "chainOfThought"));
	size_t n = json_array_size(c->arr);

	if (!cot || !*cot)
		return LLM_OK;
	if (strlen(cot) + 2 > c->budget)
		return llm_fail(LLM_ETOOLARGE, "rendered prompt is too long");
	for (size_t i = n; i-- > from;) {
		json_t *m = json_array_get(c->arr, i);
		char *joined;

		if (!is_role(m, "user"))
			continue;
		if (asprintf(&joined, "%s\n\n%s", json_string_value(json_object_get(m, "content")),
			     cot) < 0)
			return llm_fail(LLM_ENOMEM, "out of memory rendering a prompt");
		json_object_set_new(m, "content", json_string(joined));
		free(joined);
		c->budget -= strlen(cot) + 2;
		return LLM_OK;
	}
	json_array_append_new(c->arr, json_pack("{s:s,s:s}", "role", "user", "content", cot));
	return LLM_OK;
}

/* Messages layout: the leading system messages, then per example the other
 * messages rendered with its inputs and its output as an assistant turn,
 * then the other messages rendered with vars, then chainOfThought. */
static llm_err render_messages(const json_t *spec, const json_t *vars, size_t shots, size_t max,
			       json_t **out)
{
	json_t *msgs = json_object_get(spec, "messages");
	struct msg_ctx c = {spec, json_array(), max};
	size_t n = json_array_size(msgs), sys = 0, input_at;
	llm_err rc;

	while (sys < n && is_role(json_array_get(msgs, sys), "system"))
		sys++;
	rc = render_turns(&c, vars, 0, sys, false);
	for (size_t i = 0; !rc && i < shots; i++) {
		rc = render_turns(
			&c,
			json_object_get(json_array_get(json_object_get(spec, "examples"), i),
					"inputs"),
			sys, n, true);
		if (!rc)
			rc = add_output(&c, i);
	}
	input_at = json_array_size(c.arr);
	if (!rc)
		rc = render_turns(&c, vars, sys, n, false);
	if (!rc)
		rc = add_cot(&c, input_at);
	if (rc)
		json_decref(c.arr);
	else
		*out = c.arr;
	return rc;
}

llm_err llm_prompt_render(const json_t *spec, const json_t *vars, size_t max, json_t **out)
{
	size_t shots = 0;
	llm_err rc = check_all(spec, vars, &shots);

	if (rc)
		return rc;
	if (!max)
		max = LLM_PROMPT_MAX_RENDERED;
	if (json_is_string(json_object_get(spec, "template")))
		return render_template(spec, vars, shots, max, out);
	return render_messages(spec, vars, shots, max, out);
}
