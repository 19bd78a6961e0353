/* Smoke test against the local control plane: with libcurl and the
 * operator's client certificate (read from its kubeconfig through the
 * project's YAML and JSON helpers), create, read and delete a ConfigMap, and
 * see RBAC answer Forbidden, with the server's message, for Secrets, which
 * the operator's role does not grant. Needs LLMOPS_OPERATOR_KUBECONFIG (set
 * by e2e/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_buf.h"
#include "llm_json.h"
#include "llm_yaml.h"

struct identity {
	char server[256], ca[512], cert[512], key[512];
};

struct reply {
	long status;
	json_t *body;
};

static struct identity id;

/* Copies the string at path in the kubeconfig into out; -1 if missing. */
static int kc_field(const json_t *kc, const char *path, char *out, size_t n)
{
	const char *v;

	if (llm_json_get_str(kc, path, &v) != LLM_OK) {
		fprintf(stderr, "kubeconfig: %s\n", llm_last_error());
		return -1;
	}
	snprintf(out, n, "%s", v);
	return 0;
}

static int load_identity(void **state)
{
	const char *path = getenv("LLMOPS_OPERATOR_KUBECONFIG");
	json_t *docs, *kc;
	int rc;

	(void)state;
	if (!path) {
		fprintf(stderr, "LLMOPS_OPERATOR_KUBECONFIG is not set (run via e2e/run.sh)\n");
		return -1;
	}
	if (llm_yaml_load_file(path, 1 << 20, &docs) != LLM_OK) {
		fprintf(stderr, "%s\n", llm_last_error());
		return -1;
	}
	kc = json_array_get(docs, 0);
	rc = kc_field(kc, "clusters[0].cluster.server", id.server, sizeof(id.server)) ||
	     kc_field(kc, "clusters[0].cluster.certificate-authority", id.ca, sizeof(id.ca)) ||
	     kc_field(kc, "users[0].user.client-certificate", id.cert, sizeof(id.cert)) ||
	     kc_field(kc, "users[0].user.client-key", id.key, sizeof(id.key));
	json_decref(docs);
	return rc ? -1 : 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
	return llm_buf_append(data, p, size * n) == LLM_OK ? size * n : 0;
}

/* Sends one request as the operator; the reply body is parsed as JSON. */
static struct reply call(const char *method, const char *path, const char *body)
{
	struct reply r = {0, NULL};
	struct curl_slist *hdrs = NULL;
	char url[1024];
	llm_buf buf;
	CURL *c = curl_easy_init();
	CURLcode rc;

	llm_buf_init(&buf, 1 << 20);
	snprintf(url, sizeof(url), "%s%s", id.server, path);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_CAINFO, id.ca);
	curl_easy_setopt(c, CURLOPT_SSLCERT, id.cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, id.key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	if (llm_json_parse(llm_buf_str(&buf), buf.len, buf.max, "response", &r.body))
		fail_msg("%s %s: %s", method, url, llm_last_error());
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	llm_buf_free(&buf);
	return r;
}

static void test_operator_creates_reads_and_deletes_a_configmap(void **state)
{
	const char *ns = "/api/v1/namespaces/default/configmaps";
	char name[64], path[256], body[256];
	struct reply r;

	(void)state;
	snprintf(name, sizeof(name), "llmops-smoke-%ld", (long)getpid());
	snprintf(path, sizeof(path), "%s/%s", ns, name);
	snprintf(body, sizeof(body),
		 "{\"metadata\":{\"name\":\"%s\"},\"data\":{\"greeting\":\"hello\"}}", name);

	r = call("POST", ns, body);
	assert_int_equal(r.status, 201);
	assert_string_equal(llm_json_str_or(r.body, "metadata.name", ""), name);
	json_decref(r.body);

	r = call("GET", path, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(llm_json_str_or(r.body, "data.greeting", ""), "hello");
	json_decref(r.body);

	r = call("DELETE", path, NULL);
	assert_int_equal(r.status, 200);
	json_decref(r.body);

	r = call("GET", path, NULL);
	assert_int_equal(r.status, 404);
	assert_string_equal(llm_json_str_or(r.body, "reason", ""), "NotFound");
	json_decref(r.body);
}

static void test_operator_is_forbidden_to_list_secrets(void **state)
{
	struct reply r;
	const char *msg;

	(void)state;
	r = call("GET", "/api/v1/namespaces/default/secrets", NULL);
	assert_int_equal(r.status, 403);
	assert_string_equal(llm_json_str_or(r.body, "kind", ""), "Status");
	assert_string_equal(llm_json_str_or(r.body, "reason", ""), "Forbidden");
	msg = llm_json_str_or(r.body, "message", "");
	assert_non_null(strstr(msg, "User \"llmops-operator\" cannot list resource \"secrets\""));
	json_decref(r.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operator_creates_reads_and_deletes_a_configmap),
		cmocka_unit_test(test_operator_is_forbidden_to_list_secrets),
	};
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests(tests, load_identity, NULL);
	curl_global_cleanup();
	return failed;
}
