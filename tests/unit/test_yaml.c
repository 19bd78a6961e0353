/* Unit tests for llm_yaml: YAML to JSON as kubectl would send it, anchors and
 * merge keys, located errors, and the caps that keep hostile input bounded.
 * Expected values are JSON documents compared with json_equal(), so integer
 * vs real and string vs number differences fail the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm_yaml.h"

/* A non-NULL value the functions under test must overwrite with NULL. */
static json_t *const sentinel = (json_t *)&sentinel;

/* Fails the test unless got equals the JSON text want. */
static void assert_json(const json_t *got, const char *want_text)
{
	json_error_t jerr;
	json_t *want = json_loads(want_text, JSON_DECODE_ANY, &jerr);
	char *dump;
	bool equal;

	if (!want)
		fail_msg("bad expected JSON: %s", jerr.text);
	equal = got && json_equal(got, want);
	if (!equal) {
		dump = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		print_error("got:  %s\nwant: %s\n", dump ? dump : "(null)", want_text);
		free(dump);
	}
	json_decref(want);
	assert_true(equal);
}

/* All documents of yaml; fails the test on a parse error. */
static json_t *parse_all(const char *yaml)
{
	json_t *docs = sentinel;
	llm_err rc = llm_yaml_parse_all(yaml, strlen(yaml), "t.yaml", &docs);

	if (rc)
		fail_msg("%s: %s", llm_errname(rc), llm_last_error());
	return docs;
}

/* The single document of yaml; fails the test on any error. */
static json_t *parse_one(const char *yaml)
{
	json_t *doc = sentinel;
	llm_err rc = llm_yaml_parse_one(yaml, strlen(yaml), "t.yaml", &doc);

	if (rc)
		fail_msg("%s: %s", llm_errname(rc), llm_last_error());
	return doc;
}

/* Asserts yaml (one document) converts to the JSON text want. */
static void assert_yaml_json(const char *yaml, const char *want)
{
	json_t *doc = parse_one(yaml);

	assert_json(doc, want);
	json_decref(doc);
}

/* Asserts parsing yaml fails with code, a NULL result and exactly msg. */
static void assert_parse_error(const char *yaml, size_t len, llm_err code, const char *msg)
{
	json_t *docs = sentinel;
	llm_err rc = llm_yaml_parse_all(yaml, len, "t.yaml", &docs);

	assert_int_equal(rc, code);
	assert_null(docs);
	assert_string_equal(llm_last_error(), msg);
}

static void assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

/* Writes len bytes of data to a new temporary file; returns its path. */
static char *temp_file(const char *data, size_t len)
{
	char *path = strdup("/tmp/test_yaml_XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* ---- documents ---- */

static const char manifest[] = "# web tier\n"
			       "apiVersion: apps/v1\n"
			       "kind: Deployment\n"
			       "metadata:\n"
			       "  name: web\n"
			       "  labels:\n"
			       "    app.kubernetes.io/name: web\n"
			       "spec:\n"
			       "  replicas: 3\n"
			       "  selector:\n"
			       "    matchLabels: {app: web}\n"
			       "  template:\n"
			       "    metadata:\n"
			       "      labels: {app: web}\n"
			       "    spec:\n"
			       "      containers:\n"
			       "      - name: web\n"
			       "        image: nginx:1.25\n"
			       "        args: [\"--port\", \"8080\"]\n"
			       "        ports:\n"
			       "        - containerPort: 8080\n"
			       "          name: http\n"
			       "        env:\n"
			       "        - name: DEBUG\n"
			       "          value: \"true\"\n"
			       "        resources:\n"
			       "          limits: {cpu: 500m, memory: 128Mi}\n"
			       "      volumes:\n"
			       "      - name: cfg\n"
			       "        secret:\n"
			       "          secretName: web\n"
			       "          defaultMode: 0644\n"
			       "---\n"
			       "apiVersion: v1\n"
			       "kind: Service\n"
			       "metadata:\n"
			       "  name: web\n"
			       "spec:\n"
			       "  type: ClusterIP\n"
			       "  selector:\n"
			       "    app: web\n"
			       "  ports:\n"
			       "  - port: 80\n"
			       "    targetPort: http\n"
			       "---\n"
			       "---\n"
			       "# nothing but a comment\n";

static const char manifest_json[] =
	"[{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\","
	"  \"metadata\": {\"name\": \"web\","
	"    \"labels\": {\"app.kubernetes.io/name\": \"web\"}},"
	"  \"spec\": {\"replicas\": 3,"
	"    \"selector\": {\"matchLabels\": {\"app\": \"web\"}},"
	"    \"template\": {\"metadata\": {\"labels\": {\"app\": \"web\"}},"
	"      \"spec\": {\"containers\": [{\"name\": \"web\","
	"          \"image\": \"nginx:1.25\", \"args\": [\"--port\", \"8080\"],"
	"          \"ports\": [{\"containerPort\": 8080, \"name\": \"http\"}],"
	"          \"env\": [{\"name\": \"DEBUG\", \"value\": \"true\"}],"
	"          \"resources\": {\"limits\": {\"cpu\": \"500m\","
	"                                     \"memory\": \"128Mi\"}}}],"
	"        \"volumes\": [{\"name\": \"cfg\", \"secret\": {"
	"          \"secretName\": \"web\", \"defaultMode\": 420}}]}}}},"
	" {\"apiVersion\": \"v1\", \"kind\": \"Service\","
	"  \"metadata\": {\"name\": \"web\"},"
	"  \"spec\": {\"type\": \"ClusterIP\", \"selector\": {\"app\": \"web\"},"
	"    \"ports\": [{\"port\": 80, \"targetPort\": \"http\"}]}}]";

static void test_yaml_multi_document_manifest_skips_empty_documents(void **s)
{
	json_t *docs = parse_all(manifest);

	(void)s;
	assert_json(docs, manifest_json);
	json_decref(docs);
}

static void test_yaml_comment_only_input_gives_no_documents(void **s)
{
	json_t *docs = parse_all("# just a comment\n---\n...\n--- # again\n");

	(void)s;
	assert_json(docs, "[]");
	json_decref(docs);
}

static void test_yaml_empty_input_gives_no_documents(void **s)
{
	json_t *docs = sentinel;

	(void)s;
	assert_int_equal(llm_yaml_parse_all("", 0, "t.yaml", &docs), LLM_OK);
	assert_json(docs, "[]");
	json_decref(docs);
}

static void test_yaml_explicit_null_document_is_skipped(void **s)
{
	json_t *docs = parse_all("--- ~\n--- a\n--- null\n");

	(void)s;
	assert_json(docs, "[\"a\"]");
	json_decref(docs);
}

static void test_yaml_parse_one_returns_the_only_document(void **s)
{
	(void)s;
	assert_yaml_json("---\nkind: Pod\n...\n", "{\"kind\": \"Pod\"}");
}

static void test_yaml_parse_one_rejects_two_documents(void **s)
{
	json_t *doc = sentinel;
	const char *yaml = "a: 1\n---\nb: 2\n";

	(void)s;
	assert_int_equal(llm_yaml_parse_one(yaml, strlen(yaml), "t.yaml", &doc), LLM_EPARSE);
	assert_null(doc);
	assert_string_equal(llm_last_error(), "t.yaml: expected exactly one YAML document, "
					      "found 2");
}

static void test_yaml_parse_one_rejects_no_document(void **s)
{
	json_t *doc = sentinel;

	(void)s;
	assert_int_equal(llm_yaml_parse_one("# empty\n", 8, "t.yaml", &doc), LLM_EPARSE);
	assert_null(doc);
	assert_string_equal(llm_last_error(), "t.yaml: expected exactly one YAML document, "
					      "found 0");
}

/* ---- scalars ---- */

static void test_yaml_plain_null_forms_resolve_to_null(void **s)
{
	(void)s;
	assert_yaml_json("[~, null, Null, NULL, nulL]", "[null, null, null, null, \"nulL\"]");
	assert_yaml_json("a:\nb: ~\nc: {d: }\n",
			 "{\"a\": null, \"b\": null, \"c\": {\"d\": null}}");
}

static void test_yaml_plain_boolean_forms_resolve_to_booleans(void **s)
{
	(void)s;
	assert_yaml_json("[y, Y, yes, Yes, YES, true, True, TRUE, on, On, ON]",
			 "[true, true, true, true, true, true, true, true,"
			 " true, true, true]");
	assert_yaml_json("[n, N, no, No, NO, false, False, FALSE, off, Off,"
			 " OFF]",
			 "[false, false, false, false, false, false, false,"
			 " false, false, false, false]");
	assert_yaml_json("[yEs, tRUE, 'yes']", "[\"yEs\", \"tRUE\", \"yes\"]");
}

static void test_yaml_plain_integers_resolve_in_every_base(void **s)
{
	(void)s;
	assert_yaml_json("[0, 42, -17, +5, 0x1F, -0x10, 0o17, 0644, 0b101,"
			 " -0b11, 1_000_000, 0x_ff]",
			 "[0, 42, -17, 5, 31, -16, 15, 420, 5, -3, 1000000,"
			 " 255]");
	assert_yaml_json("[9223372036854775807, -9223372036854775808]",
			 "[9223372036854775807, -9223372036854775808]");
}

static void test_yaml_integers_beyond_int64_become_reals(void **s)
{
	(void)s;
	assert_yaml_json("[9223372036854775808, -9223372036854775809,"
			 " 0xFFFFFFFFFFFFFFFF]",
			 "[9.223372036854775808e18, -9.223372036854775809e18,"
			 " 1.8446744073709551615e19]");
}

static void test_yaml_plain_floats_resolve_to_reals(void **s)
{
	(void)s;
	assert_yaml_json("[1.5, -2e3, .5, 1., +1.25E-2, 1_0.5, 08]",
			 "[1.5, -2000.0, 0.5, 1.0, 0.0125, 10.5, 8.0]");
}

static void test_yaml_other_plain_scalars_stay_strings(void **s)
{
	(void)s;
	assert_yaml_json("[2001-12-14, '12:30', 0x, 1e400, 0x1FFFFFFFFFFFFFFFF,"
			 " -, 1.2.3, v1, 5Gi, 500m, _1, <<]",
			 "[\"2001-12-14\", \"12:30\", \"0x\", \"1e400\","
			 " \"0x1FFFFFFFFFFFFFFFF\", \"-\", \"1.2.3\", \"v1\","
			 " \"5Gi\", \"500m\", \"_1\", \"<<\"]");
}

static void test_yaml_quoted_scalars_are_strings(void **s)
{
	(void)s;
	assert_yaml_json("['1', \"2\", 'true', \"null\", '', \"~\", '0x10',"
			 " \".inf\", \"a\\tb\", 'it''s']",
			 "[\"1\", \"2\", \"true\", \"null\", \"\", \"~\","
			 " \"0x10\", \".inf\", \"a\\tb\", \"it's\"]");
}

static void test_yaml_block_scalars_are_strings(void **s)
{
	(void)s;
	assert_yaml_json("lit: |\n  123\n  line two\nfold: >\n  true\n  more\n"
			 "strip: |-\n  no newline\nkeep: |+\n  x\n\nnum: |\n"
			 "  42\n",
			 "{\"lit\": \"123\\nline two\\n\","
			 " \"fold\": \"true more\\n\","
			 " \"strip\": \"no newline\", \"keep\": \"x\\n\\n\","
			 " \"num\": \"42\\n\"}");
}

static void test_yaml_str_tag_keeps_text(void **s)
{
	(void)s;
	assert_yaml_json("[!!str 123, !!str true, !!str ~, ! 12, !!str 0x10]",
			 "[\"123\", \"true\", \"~\", \"12\", \"0x10\"]");
}

static void test_yaml_typed_tags_convert_quoted_text(void **s)
{
	(void)s;
	assert_yaml_json("[!!int \"12\", !!float 1, !!float '2.5', !!bool yes,"
			 " !!bool 'false', !!null '', !!null ~]",
			 "[12, 1.0, 2.5, true, false, null, null]");
}

static void test_yaml_unknown_tags_are_ignored(void **s)
{
	(void)s;
	assert_yaml_json("[!foo 12, !foo '12', !k8s {a: 1}]", "[12, \"12\", {\"a\": 1}]");
}

static void test_yaml_flow_collections(void **s)
{
	(void)s;
	assert_yaml_json("{a: [1, two, {b: [], c: {}}], 'd': [[x]], e: [],"
			 " f: {g: ~}}",
			 "{\"a\": [1, \"two\", {\"b\": [], \"c\": {}}],"
			 " \"d\": [[\"x\"]], \"e\": [], \"f\": {\"g\": null}}");
}

static void test_yaml_non_string_keys_use_their_text(void **s)
{
	(void)s;
	assert_yaml_json("1: a\ntrue: x\n0x10: h\n1.5: f\n~: nil\n\"q\": s\n",
			 "{\"1\": \"a\", \"true\": \"x\", \"0x10\": \"h\","
			 " \"1.5\": \"f\", \"~\": \"nil\", \"q\": \"s\"}");
}

/* ---- anchors, aliases, merge keys ---- */

static void test_yaml_alias_reproduces_anchored_value(void **s)
{
	(void)s;
	assert_yaml_json("a: &x {k: [1, two]}\nb: *x\nn: &n 7\nm: *n\n",
			 "{\"a\": {\"k\": [1, \"two\"]},"
			 " \"b\": {\"k\": [1, \"two\"]}, \"n\": 7, \"m\": 7}");
}

static void test_yaml_alias_is_a_deep_copy(void **s)
{
	json_t *doc = parse_one("a: &x {k: [1]}\nb: *x\n");
	json_t *a = json_object_get(doc, "a"), *b = json_object_get(doc, "b");

	(void)s;
	assert_true(a != b);
	assert_true(json_object_get(a, "k") != json_object_get(b, "k"));
	assert_int_equal(json_array_append_new(json_object_get(b, "k"), json_integer(2)), 0);
	assert_int_equal(json_object_set_new(b, "extra", json_true()), 0);
	assert_json(doc, "{\"a\": {\"k\": [1]},"
			 " \"b\": {\"k\": [1, 2], \"extra\": true}}");
	json_decref(doc);
}

static void test_yaml_anchor_redefinition_takes_the_latest(void **s)
{
	(void)s;
	assert_yaml_json("a: &x 1\nb: *x\nc: &x 2\nd: *x\n",
			 "{\"a\": 1, \"b\": 1, \"c\": 2, \"d\": 2}");
}

static void test_yaml_alias_of_a_scalar_can_be_a_key(void **s)
{
	(void)s;
	assert_yaml_json("a: &k 10\n*k : v\n", "{\"a\": 10, \"10\": \"v\"}");
}

static void test_yaml_merge_key_explicit_keys_win(void **s)
{
	(void)s;
	assert_yaml_json("base: &b {a: 1, b: 2}\n"
			 "m:\n  a: 10\n  <<: *b\n  c: 3\n",
			 "{\"base\": {\"a\": 1, \"b\": 2},"
			 " \"m\": {\"a\": 10, \"b\": 2, \"c\": 3}}");
}

static void test_yaml_merge_key_list_earlier_entries_win(void **s)
{
	(void)s;
	assert_yaml_json("x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\n"
			 "m:\n  <<: [*y, *x, {d: 4, c: 9}]\n  c: 3\n",
			 "{\"x\": {\"a\": 1, \"b\": 1},"
			 " \"y\": {\"b\": 2, \"c\": 2},"
			 " \"m\": {\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4}}");
}

static void test_yaml_merged_keys_are_not_duplicates(void **s)
{
	(void)s;
	assert_yaml_json("x: &x {a: 1}\nm:\n  <<: *x\n  a: 2\n  <<: {a: 3}\n",
			 "{\"x\": {\"a\": 1}, \"m\": {\"a\": 2}}");
}

static void test_yaml_quoted_merge_key_is_an_ordinary_key(void **s)
{
	(void)s;
	assert_yaml_json("\"<<\": {a: 1}\n", "{\"<<\": {\"a\": 1}}");
}

static void test_yaml_merge_of_a_scalar_is_rejected(void **s)
{
	(void)s;
	assert_parse_error("a:\n  <<: 5\n", 11, LLM_EPARSE,
			   "t.yaml:2:7: merge key \"<<\" needs a mapping or "
			   "a sequence of mappings");
}

static void test_yaml_anchors_do_not_outlive_their_document(void **s)
{
	(void)s;
	assert_parse_error("--- &a 1\n--- *a\n", 16, LLM_EPARSE,
			   "t.yaml:2:5: undefined alias \"*a\"");
}

/* ---- realistic documents ---- */

static void test_yaml_kubeconfig_document(void **s)
{
	(void)s;
	assert_yaml_json("apiVersion: v1\n"
			 "kind: Config\n"
			 "clusters:\n"
			 "- cluster:\n"
			 "    certificate-authority-data: LS0tLS1CRUdJTg==\n"
			 "    server: https://127.0.0.1:6443\n"
			 "  name: kind-kind\n"
			 "contexts:\n"
			 "- context:\n"
			 "    cluster: kind-kind\n"
			 "    user: kind-kind\n"
			 "    namespace: default\n"
			 "  name: kind-kind\n"
			 "current-context: kind-kind\n"
			 "preferences: {}\n"
			 "users:\n"
			 "- name: kind-kind\n"
			 "  user:\n"
			 "    token: abc.def\n"
			 "    insecure-skip-tls-verify: true\n",
			 "{\"apiVersion\": \"v1\", \"kind\": \"Config\","
			 " \"clusters\": [{\"cluster\": {"
			 "   \"certificate-authority-data\": \"LS0tLS1CRUdJTg==\","
			 "   \"server\": \"https://127.0.0.1:6443\"},"
			 "  \"name\": \"kind-kind\"}],"
			 " \"contexts\": [{\"context\": {\"cluster\": \"kind-kind\","
			 "   \"user\": \"kind-kind\", \"namespace\": \"default\"},"
			 "  \"name\": \"kind-kind\"}],"
			 " \"current-context\": \"kind-kind\", \"preferences\": {},"
			 " \"users\": [{\"name\": \"kind-kind\", \"user\": {"
			 "   \"token\": \"abc.def\", \"insecure-skip-tls-verify\": true}}]}");
}

/* ---- malformed input ---- */

static void test_yaml_bad_indentation_is_rejected_with_location(void **s)
{
	const char *yaml = "a:\n  b: 1\n c: 2\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:3:2: did not find expected key "
			   "(while parsing a block mapping)");
}

static void test_yaml_unclosed_flow_sequence_is_rejected(void **s)
{
	const char *yaml = "a: [1, 2\nb: 3\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:2:2: did not find expected ',' or ']' "
			   "(while parsing a flow sequence)");
}

static void test_yaml_tab_indentation_is_rejected_with_location(void **s)
{
	const char *yaml = "a:\n\tb: 1\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:2:1: found character that cannot start "
			   "any token (while scanning for the next token)");
}

static void test_yaml_undefined_alias_is_rejected_with_location(void **s)
{
	const char *yaml = "a: 1\nb: [x, *nope]\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE, "t.yaml:2:8: undefined alias \"*nope\"");
}

static void test_yaml_self_referencing_anchor_is_undefined(void **s)
{
	const char *yaml = "a: &s [*s]\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE, "t.yaml:1:8: undefined alias \"*s\"");
}

static void test_yaml_duplicate_key_is_rejected_with_location(void **s)
{
	const char *yaml = "metadata:\n  name: a\n  labels: {}\n  name: b\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE, "t.yaml:4:3: duplicate key \"name\"");
}

static void test_yaml_mapping_as_key_is_rejected_with_location(void **s)
{
	const char *yaml = "a: 1\n? {b: 1}\n: x\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:2:3: mapping key must be a scalar, found a "
			   "mapping");
}

static void test_yaml_sequence_as_key_is_rejected_with_location(void **s)
{
	const char *yaml = "[a, b]: x\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:1:1: mapping key must be a scalar, found a "
			   "sequence");
}

static void test_yaml_int_tag_on_text_is_rejected_with_location(void **s)
{
	const char *yaml = "replicas: !!int abc\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:1:11: cannot parse \"abc\" as !!int");
}

static void test_yaml_bool_tag_on_number_is_rejected(void **s)
{
	const char *yaml = "- !!bool 1\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:1:3: cannot parse \"1\" as !!bool");
}

static void test_yaml_infinity_is_rejected_with_location(void **s)
{
	const char *yaml = "limit: .inf\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:1:8: JSON cannot represent \".inf\" "
			   "(infinity or NaN)");
}

static void test_yaml_nan_is_rejected_with_location(void **s)
{
	const char *yaml = "- 1\n- -.Inf\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:2:3: JSON cannot represent \"-.Inf\" "
			   "(infinity or NaN)");
	yaml = "x: !!float .NaN\n";
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:1:4: JSON cannot represent \".NaN\" "
			   "(infinity or NaN)");
}

/* n opening brackets, then n closing ones when closed is set. */
static char *brackets(size_t n, bool closed)
{
	char *s = malloc(2 * n + 1);
	size_t k = 0;

	assert_non_null(s);
	memset(s, '[', n);
	k = n;
	if (closed) {
		memset(s + n, ']', n);
		k += n;
	}
	s[k] = '\0';
	return s;
}

static void test_yaml_nesting_deeper_than_256_is_rejected(void **s)
{
	char *yaml = brackets(300, false);

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE, "t.yaml:1:257: nesting deeper than 256");
	free(yaml);
}

static void test_yaml_nesting_of_256_is_accepted(void **s)
{
	char *yaml = brackets(256, true);
	json_t *docs = parse_all(yaml);
	json_t *v = json_array_get(docs, 0);
	int depth = 0;

	(void)s;
	while (json_is_array(v)) {
		depth++;
		v = json_array_get(v, 0);
	}
	assert_int_equal(depth, 256);
	json_decref(docs);
	free(yaml);
}

static void test_yaml_billion_laughs_is_rejected_quickly(void **s)
{
	static const char names[] = "abcdefghi";
	char yaml[2048];
	size_t len = 0, i, j;
	struct timespec t0, t1;
	double secs;

	(void)s;
	len += (size_t)snprintf(yaml + len, sizeof yaml - len, "a: &a [lol");
	for (j = 1; j < 9; j++)
		len += (size_t)snprintf(yaml + len, sizeof yaml - len, ", lol");
	len += (size_t)snprintf(yaml + len, sizeof yaml - len, "]\n");
	for (i = 1; i < 9; i++) {
		len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%c: &%c [*%c", names[i],
					names[i], names[i - 1]);
		for (j = 1; j < 9; j++)
			len += (size_t)snprintf(yaml + len, sizeof yaml - len, ", *%c",
						names[i - 1]);
		len += (size_t)snprintf(yaml + len, sizeof yaml - len, "]\n");
	}
	assert_true(len < sizeof yaml);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a..f build 672,603 values; g's first *f would add 597,871 more */
	assert_parse_error(yaml, len, LLM_ETOOLARGE,
			   "t.yaml:7:8: document expands to more than 1000000 "
			   "values (aliases nested too deeply?)");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs >= 5.0)
		fail_msg("took %.2f s", secs);
}

static void test_yaml_invalid_utf8_is_rejected_with_location(void **s)
{
	const char *yaml = "a: 1\nb: x\xff\n";

	(void)s;
	assert_parse_error(yaml, strlen(yaml), LLM_EPARSE,
			   "t.yaml:2:5: invalid leading UTF-8 octet (0xFF)");
}

static void test_yaml_truncated_input_is_rejected(void **s)
{
	char *cut = strndup(manifest, (size_t)(strstr(manifest, "[\"--port\"") - manifest + 5));

	(void)s;
	assert_non_null(cut);
	/* the text ends inside the quoted "--port" of the args flow list */
	assert_parse_error(cut, strlen(cut), LLM_EPARSE,
			   "t.yaml:19:20: found unexpected end of stream "
			   "(while scanning a quoted scalar)");
	free(cut);
}

static void test_yaml_embedded_nul_is_rejected(void **s)
{
	static const char yaml[] = "a: b\0c\n";

	(void)s;
	assert_parse_error(yaml, sizeof yaml - 1, LLM_EPARSE,
			   "t.yaml:1:5: control characters are not allowed "
			   "(0x00)");
}

/* ---- files ---- */

static void test_yaml_load_file_parses_every_document(void **s)
{
	char *path = temp_file(manifest, strlen(manifest));
	json_t *docs = sentinel;

	(void)s;
	assert_int_equal(llm_yaml_load_file(path, strlen(manifest), &docs), LLM_OK);
	assert_json(docs, manifest_json);
	json_decref(docs);
	unlink(path);
	free(path);
}

static void test_yaml_load_file_errors_name_the_file(void **s)
{
	const char *yaml = "a: 1\na: 2\n";
	char *path = temp_file(yaml, strlen(yaml));
	json_t *docs = sentinel;
	char want[256];

	(void)s;
	assert_int_equal(llm_yaml_load_file(path, 1024, &docs), LLM_EPARSE);
	assert_null(docs);
	snprintf(want, sizeof want, "%s:2:1: duplicate key \"a\"", path);
	assert_string_equal(llm_last_error(), want);
	unlink(path);
	free(path);
}

static void test_yaml_load_file_missing_file_is_not_found(void **s)
{
	const char *path = "/nonexistent-dir/kubeconfig.yaml";
	json_t *docs = sentinel;
	char want[256];

	(void)s;
	assert_int_equal(llm_yaml_load_file(path, 1024, &docs), LLM_ENOTFOUND);
	assert_null(docs);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	assert_string_equal(llm_last_error(), want);
}

static void test_yaml_load_file_over_the_cap_is_too_large(void **s)
{
	char *path = temp_file(manifest, strlen(manifest));
	json_t *docs = sentinel;
	char want[256];

	(void)s;
	assert_int_equal(llm_yaml_load_file(path, 100, &docs), LLM_ETOOLARGE);
	assert_null(docs);
	snprintf(want, sizeof want, "%s: file is larger than the limit of 100 bytes", path);
	assert_string_equal(llm_last_error(), want);
	assert_int_equal(llm_yaml_load_file(path, strlen(manifest) - 1, &docs), LLM_ETOOLARGE);
	assert_null(docs);
	assert_prefix(llm_last_error(), path);
	unlink(path);
	free(path);
}

static void test_yaml_load_file_on_a_directory_is_io_error(void **s)
{
	json_t *docs = sentinel;
	char want[256];

	(void)s;
	assert_int_equal(llm_yaml_load_file("/tmp", 1024, &docs), LLM_EIO);
	assert_null(docs);
	snprintf(want, sizeof want, "/tmp: %s", strerror(EISDIR));
	assert_string_equal(llm_last_error(), want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_multi_document_manifest_skips_empty_documents),
		cmocka_unit_test(test_yaml_comment_only_input_gives_no_documents),
		cmocka_unit_test(test_yaml_empty_input_gives_no_documents),
		cmocka_unit_test(test_yaml_explicit_null_document_is_skipped),
		cmocka_unit_test(test_yaml_parse_one_returns_the_only_document),
		cmocka_unit_test(test_yaml_parse_one_rejects_two_documents),
		cmocka_unit_test(test_yaml_parse_one_rejects_no_document),
		cmocka_unit_test(test_yaml_plain_null_forms_resolve_to_null),
		cmocka_unit_test(test_yaml_plain_boolean_forms_resolve_to_booleans),
		cmocka_unit_test(test_yaml_plain_integers_resolve_in_every_base),
		cmocka_unit_test(test_yaml_integers_beyond_int64_become_reals),
		cmocka_unit_test(test_yaml_plain_floats_resolve_to_reals),
		cmocka_unit_test(test_yaml_other_plain_scalars_stay_strings),
		cmocka_unit_test(test_yaml_quoted_scalars_are_strings),
		cmocka_unit_test(test_yaml_block_scalars_are_strings),
		cmocka_unit_test(test_yaml_str_tag_keeps_text),
		cmocka_unit_test(test_yaml_typed_tags_convert_quoted_text),
		cmocka_unit_test(test_yaml_unknown_tags_are_ignored),
		cmocka_unit_test(test_yaml_flow_collections),
		cmocka_unit_test(test_yaml_non_string_keys_use_their_text),
		cmocka_unit_test(test_yaml_alias_reproduces_anchored_value),
		cmocka_unit_test(test_yaml_alias_is_a_deep_copy),
		cmocka_unit_test(test_yaml_anchor_redefinition_takes_the_latest),
		cmocka_unit_test(test_yaml_alias_of_a_scalar_can_be_a_key),
		cmocka_unit_test(test_yaml_merge_key_explicit_keys_win),
		cmocka_unit_test(test_yaml_merge_key_list_earlier_entries_win),
		cmocka_unit_test(test_yaml_merged_keys_are_not_duplicates),
		cmocka_unit_test(test_yaml_quoted_merge_key_is_an_ordinary_key),
		cmocka_unit_test(test_yaml_merge_of_a_scalar_is_rejected),
		cmocka_unit_test(test_yaml_anchors_do_not_outlive_their_document),
		cmocka_unit_test(test_yaml_kubeconfig_document),
		cmocka_unit_test(test_yaml_bad_indentation_is_rejected_with_location),
		cmocka_unit_test(test_yaml_unclosed_flow_sequence_is_rejected),
		cmocka_unit_test(test_yaml_tab_indentation_is_rejected_with_location),
		cmocka_unit_test(test_yaml_undefined_alias_is_rejected_with_location),
		cmocka_unit_test(test_yaml_self_referencing_anchor_is_undefined),
		cmocka_unit_test(test_yaml_duplicate_key_is_rejected_with_location),
		cmocka_unit_test(test_yaml_mapping_as_key_is_rejected_with_location),
		cmocka_unit_test(test_yaml_sequence_as_key_is_rejected_with_location),
		cmocka_unit_test(test_yaml_int_tag_on_text_is_rejected_with_location),
		cmocka_unit_test(test_yaml_bool_tag_on_number_is_rejected),
		cmocka_unit_test(test_yaml_infinity_is_rejected_with_location),
		cmocka_unit_test(test_yaml_nan_is_rejected_with_location),
		cmocka_unit_test(test_yaml_nesting_deeper_than_256_is_rejected),
		cmocka_unit_test(test_yaml_nesting_of_256_is_accepted),
		cmocka_unit_test(test_yaml_billion_laughs_is_rejected_quickly),
		cmocka_unit_test(test_yaml_invalid_utf8_is_rejected_with_location),
		cmocka_unit_test(test_yaml_truncated_input_is_rejected),
		cmocka_unit_test(test_yaml_embedded_nul_is_rejected),
		cmocka_unit_test(test_yaml_load_file_parses_every_document),
		cmocka_unit_test(test_yaml_load_file_errors_name_the_file),
		cmocka_unit_test(test_yaml_load_file_missing_file_is_not_found),
		cmocka_unit_test(test_yaml_load_file_over_the_cap_is_too_large),
		cmocka_unit_test(test_yaml_load_file_on_a_directory_is_io_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
