/* The controller runtime end to end on the local control plane: a manager
 * runs a controller whose primary objects are ConfigMaps labelled
 * role=parent and whose children are ConfigMaps it owns; the tests check the
 * state reached (children created and re-created when deleted), the reconcile
 * outcomes (retry with backoff, terminal errors, requeue after a delay), the
 * metrics under controller-runtime's names, /readyz, and that a shutdown lets
 * an in-flight reconcile finish. Needs KUBECONFIG (set by e2e/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "kc_manager.h"
#include "kc_meta.h"
#include "llm_json.h"

static char NS[64];
static kc_config *cfg;
static kc_http *http;

/* What the reconciler saw; the tests read it. */
static atomic_int reconciles, failing_attempts, terminal_attempts, slow_done;
static atomic_int slow_started;

static bool wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 20) {
		if (cond(arg))
			return true;
		usleep(20000);
	}
	return cond(arg);
}

/* Applies the child "<name>-child" owned by the parent. */
static struct kc_result ensure_child(json_t *parent, const char *ns, const char *name)
{
	char child_name[300];
	json_t *child, *out = NULL;
	llm_err rc;

	snprintf(child_name, sizeof(child_name), "%s-child", name);
	child = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
			  "ConfigMap", "metadata", "name", child_name, "namespace", ns, "data",
			  "from", name);
	kc_meta_set_controller_ref(child, parent, NULL);
	rc = kc_apply(http, &KC_CONFIGMAPS, ns, child, "kc-manager-test", true, KC_MAIN, &out);
	json_decref(out);
	json_decref(child);
	return (struct kc_result){rc ? KC_RETRY : KC_DONE, 0};
}

static struct kc_result reconcile(const char *ns, const char *name, void *data)
{
	json_t *parent = NULL;
	struct kc_result r = {KC_DONE, 0};
	const char *mode;

	(void)data;
	atomic_fetch_add(&reconciles, 1);
	if (kc_get(http, &KC_CONFIGMAPS, ns, name, KC_MAIN, &parent) == LLM_ENOTFOUND)
		goto out; /* deleted: the garbage collector removes the children */
	if (strcmp(llm_json_str_or(parent, "metadata.labels.role", ""), "parent") != 0)
		goto out; /* children and other ConfigMaps are not parents */
	mode = llm_json_str_or(parent, "data.mode", "");
	if (strcmp(mode, "fail") == 0) {
		atomic_fetch_add(&failing_attempts, 1);
		llm_fail(LLM_EINTERNAL, "failing on purpose");
		r.outcome = KC_RETRY;
	} else if (strcmp(mode, "terminal") == 0) {
		atomic_fetch_add(&terminal_attempts, 1);
		llm_fail(LLM_EINVAL, "spec cannot work");
		r.outcome = KC_TERMINAL;
	} else if (strcmp(mode, "slow") == 0) {
		atomic_store(&slow_started, 1);
		sleep(2);
		atomic_store(&slow_done, 1);
	} else {
		r = ensure_child(parent, ns, name);
	}
out:
	json_decref(parent);
	return r;
}

static const struct kc_controller_def parent_controller = {
	.name = "parent",
	.gvr = &KC_CONFIGMAPS,
	.kind = "ConfigMap",
	.api_group = "",
	.owns = {&KC_CONFIGMAPS},
	.reconcile = reconcile,
	.workers = 2,
};

struct running {
	kc_manager *m;
	pthread_t thread;
	llm_err result;
};

static void *run_manager(void *arg)
{
	struct running *r = arg;

	r->result = kc_manager_run(r->m);
	return NULL;
}

static void start_manager(struct running *r)
{
	struct kc_manager_opts o = {.namespace = NS,
				    .metrics_addr = "127.0.0.1:0",
				    .probe_addr = "127.0.0.1:0",
				    .shutdown_grace_ms = 10000};

	assert_rc(kc_manager_new(http, &o, &r->m), LLM_OK);
	assert_rc(kc_manager_add(r->m, &parent_controller), LLM_OK);
	assert_int_equal(pthread_create(&r->thread, NULL, run_manager, r), 0);
}

static llm_err stop_manager(struct running *r)
{
	kc_manager_request_stop(r->m);
	pthread_join(r->thread, NULL);
	kc_manager_destroy(r->m);
	return r->result;
}

static void create_parent(const char *name, const char *mode)
{
	json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
			       "ConfigMap", "metadata", "name", name, "labels", "role", "parent",
			       "data", "mode", mode),
	       *out;

	assert_rc(kc_create(http, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
	json_decref(out);
	json_decref(cm);
}

static void delete_parent(const char *name)
{
	json_t *out = NULL;

	kc_delete(http, &KC_CONFIGMAPS, NS, name, NULL, &out);
	json_decref(out);
}

static bool exists(void *name)
{
	json_t *out = NULL;
	llm_err rc = kc_get(http, &KC_CONFIGMAPS, NS, name, KC_MAIN, &out);

	json_decref(out);
	return rc == LLM_OK;
}

/* GETs a path from the manager's listener which (0 metrics, 1 probes). */
static long http_get(struct running *r, int which, const char *path, char *body, size_t n)
{
	char url[128];
	long status = 0;
	FILE *f = fmemopen(body, n, "w");
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", kc_manager_port(r->m, which), path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	fclose(f);
	body[n - 1] = '\0';
	return status;
}

static bool port_bound(void *arg)
{
	return kc_manager_port(((struct running *)arg)->m, 1) > 0;
}

static bool ready(void *arg)
{
	char body[256] = "";

	return http_get(arg, 1, "/readyz", body, sizeof(body)) == 200;
}

static void test_manager_creates_and_recreates_owned_children(void **state)
{
	struct running r;
	json_t *out;

	(void)state;
	create_parent("p1", "ok");
	start_manager(&r);
	assert_true(wait_until(exists, "p1-child", 30000));
	/* Deleting a child enqueues its owner, which puts it back. */
	assert_rc(kc_delete(http, &KC_CONFIGMAPS, NS, "p1-child", NULL, &out), LLM_OK);
	json_decref(out);
	assert_true(wait_until(exists, "p1-child", 30000));
	assert_rc(stop_manager(&r), LLM_OK);
	delete_parent("p1");
}

static bool failed_thrice(void *arg)
{
	(void)arg;
	return atomic_load(&failing_attempts) >= 3;
}

static void test_manager_retries_errors_and_reports_metrics(void **state)
{
	struct running r;
	char text[65536] = "";

	(void)state;
	atomic_store(&failing_attempts, 0);
	create_parent("p2", "fail");
	start_manager(&r);
	assert_true(wait_until(failed_thrice, NULL, 30000));
	assert_true(wait_until(port_bound, &r, 5000));
	assert_true(wait_until(ready, &r, 30000));
	assert_int_equal(http_get(&r, 0, "/metrics", text, sizeof(text)), 200);
	assert_non_null(strstr(text, "controller_runtime_reconcile_total{controller=\"parent\","
				     "result=\"error\"}"));
	assert_non_null(strstr(text, "controller_runtime_reconcile_errors_total{controller="
				     "\"parent\"}"));
	assert_non_null(strstr(text, "controller_runtime_reconcile_time_seconds_bucket{controller="
				     "\"parent\",le=\"0.005\"}"));
	assert_non_null(strstr(text, "workqueue_retries_total{name=\"parent\"}"));
	assert_non_null(strstr(text, "workqueue_depth{name=\"parent\"}"));
	assert_non_null(strstr(text, "process_resident_memory_bytes "));
	assert_rc(stop_manager(&r), LLM_OK);
	delete_parent("p2");
}

static bool terminal_once(void *arg)
{
	(void)arg;
	return atomic_load(&terminal_attempts) >= 1;
}

static void test_manager_does_not_retry_terminal_errors(void **state)
{
	struct running r;

	(void)state;
	create_parent("p3", "terminal");
	start_manager(&r);
	assert_true(wait_until(terminal_once, NULL, 30000));
	sleep(1); /* a retry, were there one, would come after 5 ms */
	assert_int_equal(atomic_load(&terminal_attempts), 1);
	/* Only an update enqueues it again: a terminal error is not retried. */
	{
		json_t *patch = json_pack("{s:{s:s}}", "data", "touched", "yes"), *out;

		assert_rc(kc_patch(http, &KC_CONFIGMAPS, NS, "p3", KC_PATCH_MERGE, patch, KC_MAIN,
				   &out),
			  LLM_OK);
		json_decref(out);
		json_decref(patch);
	}
	sleep(2);
	assert_int_equal(atomic_load(&terminal_attempts), 2);
	assert_rc(stop_manager(&r), LLM_OK);
	delete_parent("p3");
}

static bool slow_running(void *arg)
{
	(void)arg;
	return atomic_load(&slow_started) == 1;
}

static void test_manager_shutdown_lets_an_inflight_reconcile_finish(void **state)
{
	struct running r;

	(void)state;
	create_parent("p4", "slow");
	start_manager(&r);
	assert_true(wait_until(slow_running, NULL, 30000));
	assert_rc(stop_manager(&r), LLM_OK);
	assert_int_equal(atomic_load(&slow_done), 1);
	delete_parent("p4");
}

static int setup(void **state)
{
	(void)state;
	snprintf(NS, sizeof(NS), "kc-manager-%ld", (long)getpid());
	if (itest_connect(NULL, &cfg, &http))
		return -1;
	itest_namespace_create(http, NS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(http, NS);
	kc_http_destroy(http);
	kc_config_destroy(cfg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manager_creates_and_recreates_owned_children),
		cmocka_unit_test(test_manager_retries_errors_and_reports_metrics),
		cmocka_unit_test(test_manager_does_not_retry_terminal_errors),
		cmocka_unit_test(test_manager_shutdown_lets_an_inflight_reconcile_finish),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
