/* Kubernetes API transport (see kc_http.h).
 *
 * Callers build an easy handle, queue it for the I/O thread and sleep on a
 * condition variable until the I/O thread, which alone drives the multi
 * handle, marks it done. Cancellation and shutdown are requests to the I/O
 * thread too (curl_multi_wakeup), so no other thread ever touches an easy
 * handle while it is attached to the multi handle. */
#include "kc_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_queue.h"
#include "llm_log.h"

#ifndef LLMOPS_VERSION
#define LLMOPS_VERSION "unknown"
#endif

#define DEFAULT_MAX_BODY   (64u << 20)
#define MAX_RETRY_DELAY_MS 30000
#define POLL_INTERVAL_MS   500

/* One attempt of one request, owned by the calling thread's stack. */
struct call {
	const struct kc_http_req *req;
	struct kc_http_resp *resp;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to; /* tls-server-name redirection */
	CURLU *url;		       /* only with tls-server-name */
	char retry_after[32];	       /* Retry-After header value, if any */
	char errbuf[CURL_ERROR_SIZE];
	CURLcode curl_rc;
	bool too_large;	   /* body cap hit */
	bool stopped;	   /* on_chunk asked to stop, or canceled */
	bool canceled;	   /* by token or shutdown */
	bool done;	   /* set by the I/O thread, under lock */
	struct call *next; /* in pending or active list */
};

struct kc_http {
	kc_config *cfg;
	struct kc_http_opts opts;
	CURLM *multi;
	pthread_t io;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	struct call *pending; /* queued by callers, not yet attached */
	struct call *active;  /* attached to the multi handle */
	bool stopping;
	kc_queue_limiter *bucket; /* client-side QPS and burst; NULL: unlimited */
};

static bool fired(const struct kc_cancel *c)
{
	return c && atomic_load(&c->fired);
}

/* Sleeps up to ms, in slices, returning LLM_ECANCELED as soon as c fires. */
static llm_err sleep_unless_canceled(uint64_t ms, const struct kc_cancel *c)
{
	while (ms > 0) {
		uint64_t slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)(slice * 1000000)};

		if (fired(c))
			return llm_fail(LLM_ECANCELED, "request canceled");
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return fired(c) ? llm_fail(LLM_ECANCELED, "request canceled") : LLM_OK;
}

/* Takes one token from the bucket, waiting for it if the bucket is empty. */
static llm_err rate_wait(kc_http *h, const struct kc_cancel *c)
{
	if (!h->bucket)
		return LLM_OK;
	return sleep_unless_canceled(kc_queue_limiter_reserve(h->bucket), c);
}

/* --- the I/O thread ------------------------------------------------------ */

/* Detaches call and wakes its waiter. Called with h->lock held. */
static void finish(kc_http *h, struct call *call, CURLcode rc)
{
	struct call **pp;

	for (pp = &h->active; *pp; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			break;
		}
	}
	curl_multi_remove_handle(h->multi, call->easy);
	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &call->resp->status);
	call->curl_rc = rc;
	call->done = true;
	pthread_cond_broadcast(&h->done_cond);
}

/* Attaches queued calls and aborts canceled ones. Called with h->lock held. */
static void sync_calls(kc_http *h)
{
	struct call *call, *next;

	while ((call = h->pending)) {
		h->pending = call->next;
		call->next = h->active;
		h->active = call;
		curl_multi_add_handle(h->multi, call->easy);
	}
	for (call = h->active; call; call = next) {
		next = call->next;
		if (h->stopping || fired(call->req->cancel)) {
			call->canceled = true;
			finish(h, call, CURLE_ABORTED_BY_CALLBACK);
		}
	}
}

static void *io_main(void *arg)
{
	kc_http *h = arg;
	int running;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping || h->active || h->pending) {
		CURLMsg *msg;
		int left;

		sync_calls(h);
		pthread_mutex_unlock(&h->lock);
		curl_multi_perform(h->multi, &running);
		pthread_mutex_lock(&h->lock);
		while ((msg = curl_multi_info_read(h->multi, &left))) {
			struct call *call;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
			finish(h, call, msg->data.result);
		}
		if (h->stopping && !h->active && !h->pending)
			break;
		pthread_mutex_unlock(&h->lock);
		curl_multi_poll(h->multi, NULL, 0, POLL_INTERVAL_MS, NULL);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* --- building one attempt -------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
	struct call *call = data;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
	if (call->req->on_chunk && status / 100 == 2) {
		if (!call->req->on_chunk(p, len, call->req->data)) {
			call->stopped = true;
			return 0;
		}
		return len;
	}
	if (llm_buf_append(&call->resp->body, p, len) != LLM_OK) {
		call->too_large = true;
		return 0;
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
	struct call *call = data;
	size_t len = size * n;

	if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		size_t v = 12;

		while (v < len && (p[v] == ' ' || p[v] == '\t'))
			v++;
		snprintf(call->retry_after, sizeof(call->retry_after), "%.*s", (int)(len - v),
			 p + v);
		call->retry_after[strcspn(call->retry_after, "\r\n")] = '\0';
	}
	return len;
}

static llm_err add_header(struct call *call, const char *fmt, const char *value)
{
	char line[8192];
	struct curl_slist *l;

	snprintf(line, sizeof(line), fmt, value);
	l = curl_slist_append(call->headers, line);
	if (!l)
		return llm_fail(LLM_ENOMEM, "cannot allocate a request header");
	call->headers = l;
	return LLM_OK;
}

static void set_blob(CURL *easy, CURLoption opt, const char *pem)
{
	struct curl_blob blob = {(void *)pem, strlen(pem), CURL_BLOB_COPY};

	curl_easy_setopt(easy, opt, &blob);
}

/* TLS trust and client credentials for this attempt. */
static llm_err set_auth(kc_http *h, struct call *call)
{
	struct kc_creds creds = {0};
	const char *ca = kc_config_ca_pem(h->cfg);
	llm_err rc;

	if (ca)
		set_blob(call->easy, CURLOPT_CAINFO_BLOB, ca);
	if (kc_config_insecure(h->cfg)) {
		curl_easy_setopt(call->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(call->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	rc = kc_config_creds(h->cfg, &creds);
	if (rc)
		return rc;
	if (creds.cert_pem && creds.key_pem) {
		curl_easy_setopt(call->easy, CURLOPT_SSLCERTTYPE, "PEM");
		set_blob(call->easy, CURLOPT_SSLCERT_BLOB, creds.cert_pem);
		set_blob(call->easy, CURLOPT_SSLKEY_BLOB, creds.key_pem);
	}
	if (creds.token)
		rc = add_header(call, "Authorization: Bearer %s", creds.token);
	kc_creds_free(&creds);
	return rc;
}

/* Points the URL at tls-server-name and connects to the real host, so the
 * server certificate is verified against that name. */
static llm_err set_url(kc_http *h, struct call *call)
{
	const char *tls_name = kc_config_tls_server_name(h->cfg);
	char url[4096], connect_to[512];
	char *host = NULL, *port = NULL;
	llm_err rc = LLM_OK;

	snprintf(url, sizeof(url), "%s%s", kc_config_server(h->cfg), call->req->path);
	if (!tls_name) {
		curl_easy_setopt(call->easy, CURLOPT_URL, url);
		return LLM_OK;
	}
	call->url = curl_url();
	if (!call->url || curl_url_set(call->url, CURLUPART_URL, url, 0) ||
	    curl_url_get(call->url, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(call->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
	    curl_url_set(call->url, CURLUPART_HOST, tls_name, 0)) {
		rc = llm_fail(LLM_EINVAL, "cannot parse server URL %s", url);
		goto out;
	}
	snprintf(connect_to, sizeof(connect_to), "%s:%s:%s:%s", tls_name, port, host, port);
	call->connect_to = curl_slist_append(NULL, connect_to);
	if (!call->connect_to) {
		rc = llm_fail(LLM_ENOMEM, "cannot allocate connect-to entry");
		goto out;
	}
	curl_easy_setopt(call->easy, CURLOPT_CURLU, call->url);
	curl_easy_setopt(call->easy, CURLOPT_CONNECT_TO, call->connect_to);
out:
	curl_free(host);
	curl_free(port);
	return rc;
}

static void set_method_and_body(struct call *call)
{
	const struct kc_http_req *req = call->req;

	if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(call->easy, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body) {
		curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
	}
}

static void set_transfer_opts(kc_http *h, struct call *call)
{
	const struct kc_http_req *req = call->req;
	CURL *e = call->easy;
	long timeout = req->timeout_ms ? req->timeout_ms
				       : (req->on_chunk ? 0 : h->opts.request_timeout_ms);

	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, h->opts.user_agent);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
}

static void call_free(struct call *call)
{
	curl_easy_cleanup(call->easy);
	curl_slist_free_all(call->headers);
	curl_slist_free_all(call->connect_to);
	curl_url_cleanup(call->url);
}

static llm_err call_setup(kc_http *h, struct call *call)
{
	const struct kc_http_req *req = call->req;
	llm_err rc;

	call->easy = curl_easy_init();
	if (!call->easy)
		return llm_fail(LLM_ENOMEM, "cannot create a curl handle");
	set_transfer_opts(h, call);
	set_method_and_body(call);
	rc = set_url(h, call);
	if (!rc)
		rc = set_auth(h, call);
	if (!rc)
		rc = add_header(call, "Accept: %s", "application/json");
	if (!rc && req->body)
		rc = add_header(call, "Content-Type: %s",
				req->content_type ? req->content_type : "application/json");
	curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
	return rc;
}

/* Runs one attempt on the I/O thread and waits for it. */
static llm_err perform_once(kc_http *h, struct call *call)
{
	llm_err rc = call_setup(h, call);

	if (rc)
		return rc;
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return llm_fail(LLM_ECANCELED, "transport is shutting down");
	}
	call->next = h->pending;
	h->pending = call;
	pthread_mutex_unlock(&h->lock);
	curl_multi_wakeup(h->multi);

	pthread_mutex_lock(&h->lock);
	while (!call->done)
		pthread_cond_wait(&h->done_cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	return LLM_OK;
}

/* Maps the end of an attempt to the transport result. */
static llm_err attempt_result(const struct call *call)
{
	const struct kc_http_req *req = call->req;

	if (call->canceled || call->stopped)
		return llm_fail(LLM_ECANCELED, "%s %s: canceled", req->method, req->path);
	if (call->too_large)
		return llm_fail(LLM_ETOOLARGE, "%s %s: response body over %zu bytes", req->method,
				req->path, call->resp->body.max);
	if (call->curl_rc == CURLE_OPERATION_TIMEDOUT)
		return llm_fail(LLM_ETIMEDOUT, "%s %s: %s", req->method, req->path,
				call->errbuf[0] ? call->errbuf : "timed out");
	if (call->curl_rc != CURLE_OK)
		return llm_fail(LLM_EIO, "%s %s: %s", req->method, req->path,
				call->errbuf[0] ? call->errbuf : curl_easy_strerror(call->curl_rc));
	return LLM_OK;
}

static bool idempotent(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	       strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
}

/* Delay in ms before retrying, or -1 when the attempt must not be retried.
 * Retry-After is honoured for 429 and 5xx; otherwise backoff doubles from
 * 200 ms. */
static long retry_delay(const struct call *call, llm_err rc, int attempt)
{
	const struct kc_http_req *req = call->req;
	long status = call->resp->status, backoff = 200L << (attempt < 7 ? attempt : 7);
	char *end;
	long after;

	if (req->on_chunk)
		return -1;
	if (rc == LLM_OK && status != 429 &&
	    !(idempotent(req->method) &&
	      (status == 500 || status == 502 || status == 503 || status == 504)))
		return -1;
	if (rc != LLM_OK && !(rc == LLM_EIO && idempotent(req->method)))
		return -1;
	after = strtol(call->retry_after, &end, 10);
	if (rc == LLM_OK && end != call->retry_after && *end == '\0' && after >= 0)
		backoff = after * 1000 > MAX_RETRY_DELAY_MS ? MAX_RETRY_DELAY_MS : after * 1000;
	else if (status == 429)
		backoff = 1000;
	return backoff > MAX_RETRY_DELAY_MS ? MAX_RETRY_DELAY_MS : backoff;
}

llm_err kc_http_do(kc_http *h, const struct kc_http_req *req, struct kc_http_resp *resp)
{
	bool reauthed = false;
	llm_err rc;

	memset(resp, 0, sizeof(*resp));
	llm_buf_init(&resp->body, h->opts.max_body);
	for (int attempt = 0;; attempt++) {
		struct call call = {.req = req, .resp = resp};
		long delay;

		llm_buf_reset(&resp->body);
		resp->status = 0;
		rc = rate_wait(h, req->cancel);
		if (!rc)
			rc = perform_once(h, &call);
		if (!rc)
			rc = attempt_result(&call);
		delay = attempt < h->opts.max_retries ? retry_delay(&call, rc, attempt) : -1;
		if (rc == LLM_OK && resp->status == 401 && !reauthed && !req->on_chunk) {
			kc_config_invalidate(h->cfg);
			reauthed = true;
			delay = 0;
		}
		call_free(&call);
		if (delay < 0)
			return rc;
		llm_debug("kc_http", "%s %s: retrying in %ld ms (status %ld)", req->method,
			  req->path, delay, resp->status);
		resp->retries++;
		rc = sleep_unless_canceled((uint64_t)delay, req->cancel);
		if (rc)
			return rc;
	}
}

void kc_http_resp_free(struct kc_http_resp *resp)
{
	llm_buf_free(&resp->body);
}

void kc_http_cancel(kc_http *h, struct kc_cancel *c)
{
	atomic_store(&c->fired, true);
	curl_multi_wakeup(h->multi);
}

kc_config *kc_http_config(const kc_http *h)
{
	return h->cfg;
}

static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void apply_defaults(struct kc_http_opts *o)
{
	if (o->qps == 0)
		o->qps = 5;
	if (o->burst <= 0)
		o->burst = 10;
	if (o->connect_timeout_ms <= 0)
		o->connect_timeout_ms = 10000;
	if (o->request_timeout_ms <= 0)
		o->request_timeout_ms = 60000;
	if (o->max_body == 0)
		o->max_body = DEFAULT_MAX_BODY;
	if (o->max_retries == 0)
		o->max_retries = 5;
	else if (o->max_retries < 0)
		o->max_retries = 0;
	if (!o->user_agent)
		o->user_agent = "llmops/" LLMOPS_VERSION;
}

llm_err kc_http_new(kc_config *cfg, const struct kc_http_opts *opts, kc_http **out)
{
	static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
	kc_http *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return llm_fail(LLM_ENOMEM, "cannot allocate the transport");
	pthread_once(&curl_once, init_curl);
	h->cfg = cfg;
	if (opts)
		h->opts = *opts;
	apply_defaults(&h->opts);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->done_cond, NULL);
	if (h->opts.qps > 0) {
		struct kc_queue_limiter_opts lo = {.qps = h->opts.qps, .burst = h->opts.burst};

		if (kc_queue_limiter_new(&lo, &h->bucket))
			goto out_free;
	}
	h->multi = curl_multi_init();
	if (!h->multi)
		goto out_free;
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	if (pthread_create(&h->io, NULL, io_main, h) != 0)
		goto out_multi;
	*out = h;
	return LLM_OK;
out_multi:
	curl_multi_cleanup(h->multi);
out_free:
	pthread_cond_destroy(&h->done_cond);
	pthread_mutex_destroy(&h->lock);
	kc_queue_limiter_destroy(h->bucket);
	free(h);
	return llm_fail(LLM_ENOMEM, "cannot start the transport");
}

void kc_http_destroy(kc_http *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_mutex_unlock(&h->lock);
	curl_multi_wakeup(h->multi);
	pthread_join(h->io, NULL);
	curl_multi_cleanup(h->multi);
	pthread_cond_destroy(&h->done_cond);
	pthread_mutex_destroy(&h->lock);
	kc_queue_limiter_destroy(h->bucket);
	free(h);
}
