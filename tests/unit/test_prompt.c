/* Unit tests for lib/llm_prompt: the placeholder scanner and the rendering
 * of templates and messages with defaults, shots and chain of thought. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llm_prompt.h"

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, 0, &err);

	if (!v)
		fail_msg("bad test JSON: %s: %s", err.text, text);
	return v;
}

/* Renders spec_text with vars_text and returns the new result. */
static json_t *render_ok(const char *spec_text, const char *vars_text)
{
	json_t *spec = parse(spec_text), *vars = parse(vars_text), *out = NULL;
	llm_err rc = llm_prompt_render(spec, vars, 0, &out);

	if (rc)
		fail_msg("render failed: %s", llm_last_error());
	json_decref(spec);
	json_decref(vars);
	return out;
}

static void expect_text(const char *spec_text, const char *vars_text, const char *want)
{
	json_t *out = render_ok(spec_text, vars_text);

	assert_true(json_is_string(out));
	assert_string_equal(json_string_value(out), want);
	json_decref(out);
}

static void expect_error(const char *spec_text, const char *vars_text, llm_err code,
			 const char *message)
{
	json_t *spec = parse(spec_text), *vars = parse(vars_text), *out = NULL;

	assert_int_equal(llm_prompt_render(spec, vars, 0, &out), code);
	assert_null(out);
	if (!strstr(llm_last_error(), message))
		fail_msg("'%s' does not contain '%s'", llm_last_error(), message);
	json_decref(spec);
	json_decref(vars);
}

struct seen {
	char names[4][16];
	size_t start[4], end[4], n;
};

static llm_err record(const struct llm_prompt_ph *ph, void *data)
{
	struct seen *s = data;

	snprintf(s->names[s->n], sizeof(s->names[0]), "%.*s", (int)ph->name_len, ph->name);
	s->start[s->n] = ph->start;
	s->end[s->n++] = ph->end;
	return LLM_OK;
}

static void test_scan_reports_names_and_offsets(void **state)
{
	struct seen s = {0};

	(void)state;
	assert_int_equal(llm_prompt_scan("a {{ x }} {b} {{y_2}}", "t", record, &s), LLM_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "x");
	assert_int_equal(s.start[0], 2);
	assert_int_equal(s.end[0], 9);
	assert_string_equal(s.names[1], "y_2");
	assert_int_equal(s.start[1], 14);
}

static void test_scan_errors_name_where_and_offset(void **state)
{
	(void)state;
	assert_int_equal(llm_prompt_scan("Hi {{who", "spec.template", NULL, NULL), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "spec.template: '{{' at offset 3 is not closed");
	assert_int_equal(llm_prompt_scan("Hi who}}", "w", NULL, NULL), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "w: '}}' at offset 6 closes nothing");
	assert_int_equal(llm_prompt_scan("{{ 1st }}", "w", NULL, NULL), LLM_EINVAL);
	assert_string_equal(llm_last_error(), "w: '{{ 1st }}' is not a variable name");
}

static const char *tmpl_spec =
	"{\"template\":\"Q: {{q}} ({{topic}}{{note}})\\nA: \",\"variables\":["
	"{\"name\":\"q\",\"required\":true},{\"name\":\"topic\",\"default\":\"general\"},"
	"{\"name\":\"note\"}],\"examples\":[{\"inputs\":{\"q\":\"1+1\"},\"output\":\"2\"},"
	"{\"inputs\":{\"q\":\"2+2\",\"topic\":\"math\"},\"output\":\"4\"}]";

static void test_template_zero_shot_uses_defaults(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s}", tmpl_spec);
	expect_text(spec, "{\"q\":\"why\"}", "Q: why (general)\nA: ");
	expect_text(spec, "{\"q\":\"why\",\"note\":\"!\"}", "Q: why (general!)\nA: ");
}

static void test_template_one_shot_puts_first_example_before_input(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s,\"shots\":\"one\"}", tmpl_spec);
	expect_text(spec, "{\"q\":\"why\"}", "Q: 1+1 (general)\nA: 2\n\nQ: why (general)\nA: ");
}

static void test_template_few_shot_puts_every_example_before_input(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s,\"shots\":\"few\"}", tmpl_spec);
	expect_text(spec, "{\"q\":\"why\"}",
		    "Q: 1+1 (general)\nA: 2\n\nQ: 2+2 (math)\nA: 4\n\nQ: why (general)\nA: ");
}

static void test_template_chain_of_thought_ends_the_prompt(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s,\"chainOfThought\":\"Think step by step.\"}", tmpl_spec);
	expect_text(spec, "{\"q\":\"why\"}", "Q: why (general)\nA: \nThink step by step.\n");
}

static void test_values_are_not_rendered_again(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s}", tmpl_spec);
	expect_text(spec, "{\"q\":\"{{topic}}\"}", "Q: {{topic}} (general)\nA: ");
}

static void test_bad_values_are_refused(void **state)
{
	char spec[1024];

	(void)state;
	snprintf(spec, sizeof(spec), "%s}", tmpl_spec);
	expect_error(spec, "{}", LLM_EINVAL, "required variable 'q' has no value");
	expect_error(spec, "{\"q\":\"a\",\"who\":\"b\"}", LLM_EINVAL, "unknown variable 'who'");
	expect_error(spec, "{\"q\":3}", LLM_ETYPE, "variable 'q' is not a string");
	expect_error("{\"template\":\"{{x}}\"}", "{}", LLM_EINVAL,
		     "spec.template: variable 'x' is used but not declared in spec.variables");
	expect_error("{\"template\":\"x\",\"shots\":\"one\"}", "{}", LLM_EINVAL,
		     "spec.shots is one but spec.examples has 0 (need 1)");
}

static void test_render_cap_is_an_error(void **state)
{
	json_t *spec = parse("{\"template\":\"{{a}}{{a}}\",\"variables\":[{\"name\":\"a\"}]}");
	json_t *vars = parse("{\"a\":\"0123456789\"}"), *out = NULL;

	(void)state;
	assert_int_equal(llm_prompt_render(spec, vars, 15, &out), LLM_ETOOLARGE);
	assert_int_equal(llm_prompt_render(spec, vars, 20, &out), LLM_OK);
	json_decref(out);
	json_decref(spec);
	json_decref(vars);
}

static const char *chat_spec =
	"{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
	"{\"role\":\"user\",\"content\":\"Q: {{q}}\"}],\"variables\":[{\"name\":\"q\","
	"\"required\":true}],\"examples\":[{\"inputs\":{\"q\":\"1+1\"},\"output\":\"2\"}]";

static void expect_turn(json_t *msgs, size_t i, const char *role, const char *content, bool example)
{
	json_t *m = json_array_get(msgs, i);

	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "role")), role);
	assert_string_equal(json_string_value(json_object_get(m, "content")), content);
	assert_int_equal(json_is_true(json_object_get(m, "example")), example);
}

static void test_messages_zero_shot(void **state)
{
	char spec[1024];
	json_t *out;

	(void)state;
	snprintf(spec, sizeof(spec), "%s}", chat_spec);
	out = render_ok(spec, "{\"q\":\"why\"}");
	assert_int_equal(json_array_size(out), 2);
	expect_turn(out, 0, "system", "Be brief.", false);
	expect_turn(out, 1, "user", "Q: why", false);
	json_decref(out);
}

static void test_messages_examples_are_user_assistant_pairs_after_system(void **state)
{
	char spec[1024];
	json_t *out;

	(void)state;
	snprintf(spec, sizeof(spec), "%s,\"shots\":\"one\",\"chainOfThought\":\"Think.\"}",
		 chat_spec);
	out = render_ok(spec, "{\"q\":\"why\"}");
	assert_int_equal(json_array_size(out), 4);
	expect_turn(out, 0, "system", "Be brief.", false);
	expect_turn(out, 1, "user", "Q: 1+1", true);
	expect_turn(out, 2, "assistant", "2", true);
	expect_turn(out, 3, "user", "Q: why\n\nThink.", false);
	json_decref(out);
}

static void test_messages_chain_of_thought_without_user_turn(void **state)
{
	json_t *out = render_ok("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}],"
				"\"chainOfThought\":\"Think.\"}",
				"{}");

	(void)state;
	assert_int_equal(json_array_size(out), 2);
	expect_turn(out, 1, "user", "Think.", false);
	json_decref(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_reports_names_and_offsets),
		cmocka_unit_test(test_scan_errors_name_where_and_offset),
		cmocka_unit_test(test_template_zero_shot_uses_defaults),
		cmocka_unit_test(test_template_one_shot_puts_first_example_before_input),
		cmocka_unit_test(test_template_few_shot_puts_every_example_before_input),
		cmocka_unit_test(test_template_chain_of_thought_ends_the_prompt),
		cmocka_unit_test(test_values_are_not_rendered_again),
		cmocka_unit_test(test_bad_values_are_refused),
		cmocka_unit_test(test_render_cap_is_an_error),
		cmocka_unit_test(test_messages_zero_shot),
		cmocka_unit_test(test_messages_examples_are_user_assistant_pairs_after_system),
		cmocka_unit_test(test_messages_chain_of_thought_without_user_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
