/* Unit tests for lib/llm_httpd: a real server on loopback, fetched with
 * libcurl (and raw sockets where curl would hide the behaviour). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llm_httpd.h"
#include "llm_metrics.h"

#define BIG_LEN (5u * 1024 * 1024)

struct fixture {
	llm_httpd *s;
	int port;
	llm_metrics *metrics;
};

struct reply {
	long status;
	char type[128];
	curl_off_t length; /* Content-Length, -1 if none */
	llm_buf body;
	long connects; /* new connections curl opened for this request */
};

/* --- handlers ----------------------------------------------------------------- */

static llm_err hello(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	res->content_type = "application/json";
	return llm_buf_puts(&res->body, "{\"hello\":\"world\"}");
}

static llm_err echo_query(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)data;
	return llm_buf_printf(&res->body, "%s %s ?%s", req->method, req->path, req->query);
}

/* BIG_LEN bytes of a position-dependent pattern. */
static llm_err big(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	char block[4096];
	llm_err rc = LLM_OK;

	(void)req;
	(void)data;
	for (size_t off = 0; off < BIG_LEN && !rc; off += sizeof(block)) {
		for (size_t i = 0; i < sizeof(block); i++)
			block[i] = (char)('a' + (off + i) % 23);
		rc = llm_buf_append(&res->body, block, sizeof(block));
	}
	return rc;
}

/* Keeps appending until the body cap refuses, and passes the error on. */
static llm_err too_big(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	static char block[1024 * 1024];
	llm_err rc = LLM_OK;

	(void)req;
	(void)data;
	while (!rc)
		rc = llm_buf_append(&res->body, block, sizeof(block));
	return rc;
}

static llm_err unavailable(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	res->status = 503;
	return llm_buf_puts(&res->body, "not ready\n");
}

static llm_err metrics(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return llm_metrics_render(data, &res->body);
}

/* --- client helpers ---------------------------------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *data)
{
	return llm_buf_append(data, p, size * n) ? 0 : size * n;
}

/* Requests url with method on handle h (kept for connection reuse). */
static CURLcode fetch_on(CURL *h, const char *method, const char *url, struct reply *r)
{
	const char *type = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	llm_buf_init(&r->body, 32u * 1024 * 1024);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x=1");
	else if (strcmp(method, "HEAD") != 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
	snprintf(r->type, sizeof(r->type), "%s", type ? type : "");
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->length);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
	return rc;
}

static void fetch(const char *method, int port, const char *path, struct reply *r)
{
	char url[256];
	CURL *h = curl_easy_init();

	assert_non_null(h);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	assert_int_equal(fetch_on(h, method, url, r), CURLE_OK);
	curl_easy_cleanup(h);
}

/* A TCP connection to 127.0.0.1:port, or -1. */
static int connect_raw(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* --- fixture ------------------------------------------------------------------ */

static int start_server(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int idx;

	if (!f)
		return -1;
	*state = f;
	f->metrics = llm_metrics_new();
	f->s = llm_httpd_new();
	if (!f->metrics || !f->s || llm_httpd_listen(f->s, "127.0.0.1:0", &idx))
		return -1;
	if (llm_httpd_route(f->s, idx, "/hello", hello, NULL) ||
	    llm_httpd_route(f->s, idx, "/echo", echo_query, NULL) ||
	    llm_httpd_route(f->s, idx, "/big", big, NULL) ||
	    llm_httpd_route(f->s, idx, "/too-big", too_big, NULL) ||
	    llm_httpd_route(f->s, idx, "/readyz", unavailable, NULL) ||
	    llm_httpd_route(f->s, idx, "/metrics", metrics, f->metrics))
		return -1;
	f->port = llm_httpd_port(f->s, idx);
	return f->port > 0 && llm_httpd_start(f->s) == LLM_OK ? 0 : -1;
}

static int stop_server(void **state)
{
	struct fixture *f = *state;

	llm_httpd_destroy(f->s);
	llm_metrics_destroy(f->metrics);
	free(f);
	return 0;
}

/* --- tests -------------------------------------------------------------------- */

static void test_httpd_get_returns_body_status_and_content_type(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("GET", f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.type, "application/json");
	assert_string_equal(llm_buf_str(&r.body), "{\"hello\":\"world\"}");
	assert_int_equal(r.length, 17);
	llm_buf_free(&r.body);
}

static void test_httpd_handler_status_is_sent(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("GET", f->port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.type, "text/plain; charset=utf-8");
	assert_string_equal(llm_buf_str(&r.body), "not ready\n");
	llm_buf_free(&r.body);
}

static void test_httpd_unknown_path_is_404(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("GET", f->port, "/nope", &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(llm_buf_str(&r.body), "404 page not found\n");
	llm_buf_free(&r.body);
	/* Routes match whole paths only. */
	fetch("GET", f->port, "/hello/x", &r);
	assert_int_equal(r.status, 404);
	llm_buf_free(&r.body);
}

static void test_httpd_post_is_405(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("POST", f->port, "/hello", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(llm_buf_str(&r.body), "method not allowed\n");
	llm_buf_free(&r.body);
	/* The server still answers afterwards. */
	fetch("GET", f->port, "/hello", &r);
	assert_int_equal(r.status, 200);
	llm_buf_free(&r.body);
}

static void test_httpd_head_sends_length_but_no_body(void **state)
{
	struct fixture *f = *state;
	char url[128];
	struct reply r;
	CURL *h = curl_easy_init();

	assert_non_null(h);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", f->port);
	assert_int_equal(fetch_on(h, "HEAD", url, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.length, 17);
	assert_int_equal(r.body.len, 0);
	llm_buf_free(&r.body);
	/* No stray body bytes: a GET on the same kept-alive connection parses. */
	assert_int_equal(fetch_on(h, "GET", url, &r), CURLE_OK);
	assert_int_equal(r.connects, 0);
	assert_string_equal(llm_buf_str(&r.body), "{\"hello\":\"world\"}");
	llm_buf_free(&r.body);
	curl_easy_cleanup(h);
}

static void test_httpd_keep_alive_reuses_the_connection(void **state)
{
	struct fixture *f = *state;
	char url[128];
	struct reply r;
	CURL *h = curl_easy_init();

	assert_non_null(h);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", f->port);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fetch_on(h, "GET", url, &r), CURLE_OK);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.connects, i == 0 ? 1 : 0);
		llm_buf_free(&r.body);
	}
	curl_easy_cleanup(h);
}

static void test_httpd_query_reaches_the_handler(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("GET", f->port, "/echo?a=1&b=two", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(llm_buf_str(&r.body), "GET /echo ?a=1&b=two");
	llm_buf_free(&r.body);
	fetch("GET", f->port, "/echo", &r);
	assert_string_equal(llm_buf_str(&r.body), "GET /echo ?");
	llm_buf_free(&r.body);
}

static void test_httpd_five_mib_body_arrives_intact(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	size_t bad = 0;

	fetch("GET", f->port, "/big", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.length, BIG_LEN);
	assert_int_equal(r.body.len, BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		bad += r.body.data[i] != (char)('a' + i % 23);
	assert_int_equal(bad, 0);
	llm_buf_free(&r.body);
}

static void test_httpd_body_over_cap_is_500_with_message(void **state)
{
	struct fixture *f = *state;
	struct reply r;

	fetch("GET", f->port, "/too-big", &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(llm_buf_str(&r.body), "buffer cap of 16777216 bytes exceeded"));
	llm_buf_free(&r.body);
}

static void test_httpd_metrics_route_serves_exposition_text(void **state)
{
	struct fixture *f = *state;
	llm_counter *c;
	struct reply r;

	assert_int_equal(llm_metrics_counter(f->metrics, "controller_runtime_reconcile_total",
					     "Total number of reconciliations per controller",
					     (const char *[]){"controller", "result", NULL}, &c),
			 LLM_OK);
	assert_int_equal(llm_counter_add(c, (const char *[]){"finetunejob", "success"}, 2), LLM_OK);
	fetch("GET", f->port, "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(llm_buf_str(&r.body),
			    "# HELP controller_runtime_reconcile_total Total number of "
			    "reconciliations per controller\n"
			    "# TYPE controller_runtime_reconcile_total counter\n"
			    "controller_runtime_reconcile_total{controller=\"finetunejob\","
			    "result=\"success\"} 2\n");
	llm_buf_free(&r.body);
}

static void test_httpd_two_listeners_serve_their_own_routes(void **state)
{
	llm_httpd *s = llm_httpd_new();
	int a, b;
	struct reply r;

	(void)state;
	assert_non_null(s);
	assert_int_equal(llm_httpd_listen(s, "127.0.0.1:0", &a), LLM_OK);
	assert_int_equal(llm_httpd_listen(s, ":0", &b), LLM_OK);
	assert_int_equal(llm_httpd_route(s, a, "/metrics", hello, NULL), LLM_OK);
	assert_int_equal(llm_httpd_route(s, b, "/readyz", unavailable, NULL), LLM_OK);
	assert_true(llm_httpd_port(s, a) > 0 && llm_httpd_port(s, b) > 0);
	assert_int_not_equal(llm_httpd_port(s, a), llm_httpd_port(s, b));
	assert_int_equal(llm_httpd_start(s), LLM_OK);
	fetch("GET", llm_httpd_port(s, a), "/metrics", &r);
	assert_int_equal(r.status, 200);
	llm_buf_free(&r.body);
	fetch("GET", llm_httpd_port(s, a), "/readyz", &r);
	assert_int_equal(r.status, 404);
	llm_buf_free(&r.body);
	fetch("GET", llm_httpd_port(s, b), "/readyz", &r);
	assert_int_equal(r.status, 503);
	llm_buf_free(&r.body);
	fetch("GET", llm_httpd_port(s, b), "/metrics", &r);
	assert_int_equal(r.status, 404);
	llm_buf_free(&r.body);
	llm_httpd_destroy(s);
}

static void test_httpd_ipv6_loopback_listener(void **state)
{
	llm_httpd *s = llm_httpd_new();
	int i, probe = socket(AF_INET6, SOCK_STREAM, 0);
	char url[128];
	struct reply r;
	CURL *h;

	(void)state;
	if (probe < 0) {
		llm_httpd_destroy(s);
		skip();
	}
	close(probe);
	assert_int_equal(llm_httpd_listen(s, "[::1]:0", &i), LLM_OK);
	assert_int_equal(llm_httpd_route(s, i, "/hello", hello, NULL), LLM_OK);
	assert_int_equal(llm_httpd_start(s), LLM_OK);
	h = curl_easy_init();
	snprintf(url, sizeof(url), "http://[::1]:%d/hello", llm_httpd_port(s, i));
	assert_int_equal(fetch_on(h, "GET", url, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	llm_buf_free(&r.body);
	curl_easy_cleanup(h);
	llm_httpd_destroy(s);
}

static void test_httpd_zero_address_disables_the_listener(void **state)
{
	llm_httpd *s = llm_httpd_new();
	int a, b;

	(void)state;
	assert_non_null(s);
	assert_int_equal(llm_httpd_listen(s, "0", &a), LLM_OK);
	assert_int_equal(llm_httpd_listen(s, "", &b), LLM_OK);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(llm_httpd_port(s, a), 0);
	assert_int_equal(llm_httpd_port(s, b), 0);
	assert_int_equal(llm_httpd_port(s, 2), -1);
	assert_int_equal(llm_httpd_route(s, a, "/metrics", hello, NULL), LLM_OK);
	assert_int_equal(llm_httpd_start(s), LLM_OK);
	llm_httpd_destroy(s);
}

static void test_httpd_bad_bind_address_is_invalid(void **state)
{
	static const char *const bad[] = {
		"nohost:abc", "127.0.0.1:99999",	"127.0.0.1", "::1:80", "127.0.0.1:-1",
		"127.0.0.1:", "no.such.host.invalid:80"};
	llm_httpd *s = llm_httpd_new();
	int idx = 7;

	(void)state;
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(llm_httpd_listen(s, bad[i], &idx), LLM_EINVAL);
		assert_non_null(strstr(llm_last_error(), bad[i]));
		assert_int_equal(idx, -1);
	}
	assert_int_equal(llm_httpd_port(s, 0), -1);
	llm_httpd_destroy(s);
}

static void test_httpd_port_in_use_is_eio(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), idx;
	char addr[64];
	llm_httpd *s = llm_httpd_new();

	(void)state;
	assert_non_null(s);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(llm_httpd_listen(s, addr, &idx), LLM_EIO);
	assert_non_null(strstr(llm_last_error(), addr));
	assert_non_null(strstr(llm_last_error(), "Address already in use"));
	/* The server is still usable. */
	assert_int_equal(llm_httpd_listen(s, "127.0.0.1:0", &idx), LLM_OK);
	assert_int_equal(idx, 0);
	close(fd);
	llm_httpd_destroy(s);
}

static void test_httpd_route_errors(void **state)
{
	struct fixture *f = *state;
	llm_httpd *s = llm_httpd_new();
	int idx;

	assert_non_null(s);
	assert_int_equal(llm_httpd_listen(s, "127.0.0.1:0", &idx), LLM_OK);
	assert_int_equal(llm_httpd_route(s, idx, "metrics", hello, NULL), LLM_EINVAL);
	assert_int_equal(llm_httpd_route(s, 5, "/metrics", hello, NULL), LLM_EINVAL);
	assert_int_equal(llm_httpd_route(s, idx, "/metrics", hello, NULL), LLM_OK);
	assert_int_equal(llm_httpd_route(s, idx, "/metrics", hello, NULL), LLM_EEXIST);
	llm_httpd_destroy(s);
	/* Routes and listeners are fixed once started. */
	assert_int_equal(llm_httpd_route(f->s, 0, "/late", hello, NULL), LLM_EINVAL);
	assert_int_equal(llm_httpd_listen(f->s, "127.0.0.1:0", &idx), LLM_EINVAL);
	assert_int_equal(llm_httpd_start(f->s), LLM_EINVAL);
}

static void test_httpd_destroy_with_clients_connected(void **state)
{
	struct fixture *f = *state;
	const char *get_big = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
	int idle = connect_raw(f->port), partial = connect_raw(f->port);
	int reader = connect_raw(f->port);
	char buf[256];

	assert_true(idle >= 0 && partial >= 0 && reader >= 0);
	assert_int_equal(write(partial, "GET /hel", 8), 8);
	/* A 5 MiB response that nobody reads fills the socket and stays pending. */
	assert_int_equal(write(reader, get_big, strlen(get_big)), (ssize_t)strlen(get_big));
	assert_true(read(reader, buf, sizeof(buf)) > 0);
	llm_httpd_destroy(f->s);
	f->s = NULL;
	/* Every connection was closed by the server. */
	while (read(reader, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(read(idle, buf, sizeof(buf)), 0);
	assert_int_equal(read(partial, buf, sizeof(buf)), 0);
	close(idle);
	close(partial);
	close(reader);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, start_server, stop_server)
	const struct CMUnitTest tests[] = {
		T(test_httpd_get_returns_body_status_and_content_type),
		T(test_httpd_handler_status_is_sent),
		T(test_httpd_unknown_path_is_404),
		T(test_httpd_post_is_405),
		T(test_httpd_head_sends_length_but_no_body),
		T(test_httpd_keep_alive_reuses_the_connection),
		T(test_httpd_query_reaches_the_handler),
		T(test_httpd_five_mib_body_arrives_intact),
		T(test_httpd_body_over_cap_is_500_with_message),
		T(test_httpd_metrics_route_serves_exposition_text),
		cmocka_unit_test(test_httpd_two_listeners_serve_their_own_routes),
		cmocka_unit_test(test_httpd_ipv6_loopback_listener),
		cmocka_unit_test(test_httpd_zero_address_disables_the_listener),
		cmocka_unit_test(test_httpd_bad_bind_address_is_invalid),
		cmocka_unit_test(test_httpd_port_in_use_is_eio),
		T(test_httpd_route_errors),
		T(test_httpd_destroy_with_clients_connected),
	};
	int failed;
#undef T

	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
