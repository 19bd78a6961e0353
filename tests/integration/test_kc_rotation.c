/* Token rotation under a running client: a kubeconfig whose user reads its
 * token from a file (as a projected service-account token is read), the file
 * rewritten with a new token and the old one made invalid at the same time;
 * every request keeps succeeding. Tokens come from the TokenRequest API,
 * bound to Secrets so deleting a Secret revokes its token.
 * Needs KUBECONFIG and LLMOPS_CLUSTER_DIR (set by e2e/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "llm_json.h"

static char NS[64], dir[256];
static kc_config *admin_cfg;
static kc_http *admin;

/* Creates obj (a JSON text) with the admin identity; returns the result. */
static json_t *create(const struct kc_gvr *r, const char *text)
{
	json_t *obj = json_loads(text, 0, NULL), *out = NULL;

	assert_non_null(obj);
	assert_rc(kc_create(admin, r, NS, obj, &out), LLM_OK);
	json_decref(obj);
	return out;
}

/* A token for ServiceAccount "rotator", valid while Secret `secret` exists. */
static char *token_bound_to(const char *secret)
{
	const struct kc_gvr token_req = {"", "v1", "serviceaccounts/rotator/token", true};
	char text[512];
	json_t *s, *tr;
	char *token;

	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\"}}",
		 secret);
	s = create(&KC_SECRETS, text);
	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
		 "\"spec\":{\"expirationSeconds\":3600,\"boundObjectRef\":{\"apiVersion\":\"v1\","
		 "\"kind\":\"Secret\",\"name\":\"%s\",\"uid\":\"%s\"}}}",
		 secret, llm_json_str_or(s, "metadata.uid", ""));
	tr = create(&token_req, text);
	token = strdup(llm_json_str_or(tr, "status.token", ""));
	assert_true(strlen(token) > 100);
	json_decref(tr);
	json_decref(s);
	return token;
}

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0); /* as the kubelet swaps projected files */
}

/* A kubeconfig for the same API server whose user reads tokenFile. */
static void write_kubeconfig(const char *path, const char *token_path)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		 "    server: %s\n    certificate-authority: %s/certs/ca.crt\n"
		 "users:\n- name: u\n  user:\n    tokenFile: %s\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: %s}\n"
		 "current-context: x\n",
		 kc_config_server(admin_cfg), getenv("LLMOPS_CLUSTER_DIR"), token_path, NS);
	write_file(path, text);
}

static llm_err list_as(kc_http *h)
{
	json_t *out = NULL;
	llm_err rc = kc_list(h, &KC_CONFIGMAPS, NS, NULL, &out);

	json_decref(out);
	return rc;
}

/* Waits until token is refused (the API server caches authentications for
 * a few seconds); true once it is. */
static bool wait_revoked(const char *kc_path, const char *token_path, const char *token)
{
	struct kc_config_opts co = {.kubeconfig = kc_path, .refresh_seconds = 1};
	struct kc_http_opts ho = {.qps = -1, .max_retries = -1};
	kc_config *cfg;
	kc_http *h;
	llm_err rc = LLM_OK;

	write_file(token_path, token);
	assert_rc(kc_config_load(&co, &cfg), LLM_OK);
	assert_rc(kc_http_new(cfg, &ho, &h), LLM_OK);
	for (int i = 0; i < 300 && rc != LLM_EUNAUTHORIZED; i++) {
		rc = list_as(h);
		usleep(100000);
	}
	kc_http_destroy(h);
	kc_config_destroy(cfg);
	return rc == LLM_EUNAUTHORIZED;
}

static void test_rotated_token_file_keeps_requests_succeeding(void **state)
{
	char kc_path[300], token_path[300], probe_kc[300], probe_token[300];
	struct kc_config_opts co = {.kubeconfig = kc_path, .refresh_seconds = 1};
	struct kc_http_opts ho = {.qps = -1};
	char *first = token_bound_to("bind-1"), *second = token_bound_to("bind-2");
	kc_config *cfg;
	kc_http *h;
	json_t *out;

	(void)state;
	snprintf(kc_path, sizeof(kc_path), "%s/kubeconfig", dir);
	snprintf(token_path, sizeof(token_path), "%s/token", dir);
	snprintf(probe_kc, sizeof(probe_kc), "%s/probe-kubeconfig", dir);
	snprintf(probe_token, sizeof(probe_token), "%s/probe-token", dir);
	write_file(token_path, first);
	write_kubeconfig(kc_path, token_path);
	write_kubeconfig(probe_kc, probe_token);
	assert_rc(kc_config_load(&co, &cfg), LLM_OK);
	assert_rc(kc_http_new(cfg, &ho, &h), LLM_OK);
	assert_rc(list_as(h), LLM_OK);

	/* Rotate: the new token goes into the file, the old one is revoked
	 * with its Secret, and a separate client proves the revocation. */
	write_file(token_path, second);
	assert_rc(kc_delete(admin, &KC_SECRETS, NS, "bind-1", NULL, &out), LLM_OK);
	json_decref(out);
	assert_true(wait_revoked(probe_kc, probe_token, first));

	/* The running client must have switched to the new token. */
	for (int i = 0; i < 20; i++) {
		assert_rc(list_as(h), LLM_OK);
		usleep(100000);
	}
	kc_http_destroy(h);
	kc_config_destroy(cfg);
	free(first);
	free(second);
}

static int setup(void **state)
{
	struct kc_config_opts co = {0};
	struct kc_http_opts fast = {.qps = -1};
	json_t *obj, *out;
	char text[1024];

	(void)state;
	snprintf(NS, sizeof(NS), "kc-rotation-%ld", (long)getpid());
	snprintf(dir, sizeof(dir), "/tmp/kc-rotation-XXXXXX");
	if (!getenv("LLMOPS_CLUSTER_DIR") || !mkdtemp(dir) || kc_config_load(&co, &admin_cfg) ||
	    kc_http_new(admin_cfg, &fast, &admin)) {
		fprintf(stderr, "setup: %s (run through e2e/run.sh)\n", llm_last_error());
		return -1;
	}
	snprintf(text, sizeof(text),
		 "[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}},"
		 "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
		 "\"rotator\"}},"
		 "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\","
		 "\"metadata\":{\"name\":\"rotator\"},\"roleRef\":{\"apiGroup\":"
		 "\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"view\"},"
		 "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"rotator\",\"namespace\":"
		 "\"%s\"}]}]",
		 NS, NS);
	obj = json_loads(text, 0, NULL);
	kc_create(admin, &KC_NAMESPACES, NULL, json_array_get(obj, 0), &out);
	json_decref(out);
	kc_create(admin, &(struct kc_gvr){"", "v1", "serviceaccounts", true}, NS,
		  json_array_get(obj, 1), &out);
	json_decref(out);
	kc_create(admin, &(struct kc_gvr){"rbac.authorization.k8s.io", "v1", "rolebindings", true},
		  NS, json_array_get(obj, 2), &out);
	json_decref(out);
	json_decref(obj);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	itest_namespace_delete(admin, NS);
	kc_http_destroy(admin);
	kc_config_destroy(admin_cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotated_token_file_keeps_requests_succeeding),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
