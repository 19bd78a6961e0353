/* Unit tests for the API transport (lib/kc_http) against a local canned
 * HTTP server (lib/llm_httpd, plain HTTP): client-go's retry rules (5xx and
 * 429 with Retry-After for idempotent requests, bounded by max_retries), the
 * body cap, timeouts, cancellation, connection failures and the client-side
 * rate limit. Decoding and the real API server are covered elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kc_http.h"
#include "llm_httpd.h"

static llm_httpd *server;
static int port;
static atomic_int flaky_calls, throttle_calls;
static char dir[64], kubeconfig[128];

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static llm_err ok(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	return llm_buf_puts(&res->body, "{}");
}

/* 503 twice, then 200. */
static llm_err flaky(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	if (atomic_fetch_add(&flaky_calls, 1) < 2)
		res->status = 503;
	return llm_buf_puts(&res->body, "{}");
}

/* 429 with Retry-After: 2 once, then 200 (without the header the client
 * would wait 1 s). */
static llm_err throttle(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	if (atomic_fetch_add(&throttle_calls, 1) == 0) {
		res->status = 429;
		res->retry_after = 2;
	}
	return llm_buf_puts(&res->body, "{}");
}

static llm_err unavailable(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	res->status = 503;
	return LLM_OK;
}

static llm_err big(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	char chunk[1024];

	(void)req;
	(void)data;
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 10; i++)
		llm_buf_append(&res->body, chunk, sizeof(chunk));
	return LLM_OK;
}

static llm_err slow(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	sleep(2);
	return llm_buf_puts(&res->body, "{}");
}

static void write_kubeconfig(const char *path, int server_port)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f,
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		"    server: http://127.0.0.1:%d\nusers:\n- name: u\n  user:\n    token: t\n"
		"contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
		server_port);
	fclose(f);
}

/* A transport to the canned server (or to a closed port when port_override). */
static kc_http *connect_with(struct kc_http_opts *o, kc_config **cfg, int port_override)
{
	struct kc_config_opts co = {.kubeconfig = kubeconfig};
	kc_http *h;

	if (port_override)
		write_kubeconfig(kubeconfig, port_override);
	assert_int_equal(kc_config_load(&co, cfg), LLM_OK);
	assert_int_equal(kc_http_new(*cfg, o, &h), LLM_OK);
	write_kubeconfig(kubeconfig, port);
	return h;
}

static llm_err get(kc_http *h, const char *path, struct kc_http_resp *resp,
		   struct kc_cancel *cancel)
{
	struct kc_http_req req = {.method = "GET", .path = path, .cancel = cancel};

	return kc_http_do(h, &req, resp);
}

static void test_http_5xx_is_retried_for_idempotent_requests(void **state)
{
	struct kc_http_opts o = {.qps = -1};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);

	(void)state;
	atomic_store(&flaky_calls, 0);
	assert_int_equal(get(h, "/flaky", &resp, NULL), LLM_OK);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.retries, 2);
	assert_int_equal(atomic_load(&flaky_calls), 3);
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_429_waits_for_retry_after(void **state)
{
	struct kc_http_opts o = {.qps = -1};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);
	double t0 = now_s();

	(void)state;
	atomic_store(&throttle_calls, 0);
	assert_int_equal(get(h, "/throttle", &resp, NULL), LLM_OK);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.retries, 1);
	assert_true(now_s() - t0 >= 1.95); /* Retry-After: 2 was honoured */
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_retries_stop_at_max_retries(void **state)
{
	struct kc_http_opts o = {.qps = -1, .max_retries = 2};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);

	(void)state;
	assert_int_equal(get(h, "/unavailable", &resp, NULL), LLM_OK);
	assert_int_equal(resp.status, 503);
	assert_int_equal(resp.retries, 2);
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_body_over_the_cap_is_too_large(void **state)
{
	struct kc_http_opts o = {.qps = -1, .max_body = 4096};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);

	(void)state;
	assert_int_equal(get(h, "/big", &resp, NULL), LLM_ETOOLARGE);
	assert_non_null(strstr(llm_last_error(), "GET /big: response body over 4096 bytes"));
	kc_http_resp_free(&resp);
	assert_int_equal(get(h, "/ok", &resp, NULL), LLM_OK);
	assert_string_equal(llm_buf_str(&resp.body), "{}");
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_request_timeout_is_reported(void **state)
{
	struct kc_http_opts o = {.qps = -1, .request_timeout_ms = 300};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);

	(void)state;
	assert_int_equal(get(h, "/slow", &resp, NULL), LLM_ETIMEDOUT);
	assert_non_null(strstr(llm_last_error(), "GET /slow"));
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

struct canceller {
	kc_http *h;
	struct kc_cancel *c;
};

static void *cancel_soon(void *arg)
{
	struct canceller *x = arg;

	usleep(200000);
	kc_http_cancel(x->h, x->c);
	return NULL;
}

static void test_http_cancel_stops_a_request_in_flight(void **state)
{
	struct kc_http_opts o = {.qps = -1};
	struct kc_http_resp resp;
	struct kc_cancel cancel = {0};
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);
	struct canceller x = {h, &cancel};
	pthread_t t;

	(void)state;
	pthread_create(&t, NULL, cancel_soon, &x);
	assert_int_equal(get(h, "/slow", &resp, &cancel), LLM_ECANCELED);
	pthread_join(t, NULL);
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_connection_refused_is_retried_then_io_error(void **state)
{
	struct kc_http_opts o = {.qps = -1, .max_retries = 2};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 1); /* nothing listens on port 1 */

	(void)state;
	assert_int_equal(get(h, "/ok", &resp, NULL), LLM_EIO);
	assert_int_equal(resp.retries, 2);
	assert_non_null(strstr(llm_last_error(), "GET /ok"));
	kc_http_resp_free(&resp);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static void test_http_rate_limit_spaces_requests(void **state)
{
	struct kc_http_opts o = {.qps = 5, .burst = 1};
	struct kc_http_resp resp;
	kc_config *cfg;
	kc_http *h = connect_with(&o, &cfg, 0);
	double t0 = now_s();

	(void)state;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(get(h, "/ok", &resp, NULL), LLM_OK);
		kc_http_resp_free(&resp);
	}
	/* One token up front, then five more at 5 per second. */
	assert_true(now_s() - t0 >= 0.95);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
}

static int setup(void **state)
{
	int idx;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kc-http-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", dir);
	server = llm_httpd_new();
	if (!server || llm_httpd_listen(server, "127.0.0.1:0", &idx) ||
	    llm_httpd_route(server, idx, "/ok", ok, NULL) ||
	    llm_httpd_route(server, idx, "/flaky", flaky, NULL) ||
	    llm_httpd_route(server, idx, "/throttle", throttle, NULL) ||
	    llm_httpd_route(server, idx, "/unavailable", unavailable, NULL) ||
	    llm_httpd_route(server, idx, "/big", big, NULL) ||
	    llm_httpd_route(server, idx, "/slow", slow, NULL) || llm_httpd_start(server))
		return -1;
	port = llm_httpd_port(server, idx);
	write_kubeconfig(kubeconfig, port);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	llm_httpd_destroy(server);
	unlink(kubeconfig);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_5xx_is_retried_for_idempotent_requests),
		cmocka_unit_test(test_http_429_waits_for_retry_after),
		cmocka_unit_test(test_http_retries_stop_at_max_retries),
		cmocka_unit_test(test_http_body_over_the_cap_is_too_large),
		cmocka_unit_test(test_http_request_timeout_is_reported),
		cmocka_unit_test(test_http_cancel_stops_a_request_in_flight),
		cmocka_unit_test(test_http_connection_refused_is_retried_then_io_error),
		cmocka_unit_test(test_http_rate_limit_spaces_requests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
