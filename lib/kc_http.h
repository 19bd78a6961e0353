/* HTTP transport to the Kubernetes API server, shared by every request a
 * process makes: one libcurl multi handle driven by one I/O thread, so all
 * requests and watch streams share pooled connections (multiplexed over
 * HTTP/2 when the server offers it), with TLS through OpenSSL.
 *
 * Every request passes a client-side token bucket (QPS and burst), has
 * connect and total timeouts and a cap on the response body, and is retried
 * where client-go retries: 429 honouring Retry-After, 5xx and connection
 * failures for idempotent methods with exponential backoff, and one retry
 * after 401 with refreshed credentials. Streams (watches) are not retried
 * here; their owner reconnects.
 *
 * Design limit: stream callbacks run on the I/O thread, so they must be
 * quick and must not call back into this transport. */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "kc_config.h"
#include "llm_buf.h"
#include "llm_err.h"

typedef struct kc_http kc_http;

/* Transport options; zero fields take the defaults in brackets. */
struct kc_http_opts {
	double qps;		/* requests per second [5]; negative: unlimited */
	int burst;		/* bucket size [10] */
	int connect_timeout_ms; /* TCP + TLS handshake [10000] */
	int request_timeout_ms; /* whole non-stream request [60000] */
	size_t max_body;	/* response body cap [64 MiB] */
	int max_retries;	/* retries per request [5]; negative: none */
	const char *user_agent; /* [llmops/<version>] */
};

/* Creates the transport and starts its I/O thread. cfg is borrowed and must
 * outlive the transport. */
llm_err kc_http_new(kc_config *cfg, const struct kc_http_opts *opts, kc_http **out);

/* Cancels everything in flight (those calls return LLM_ECANCELED), stops the
 * I/O thread and frees the transport. NULL is a no-op. */
void kc_http_destroy(kc_http *h);

/* A cancellation token for kc_http_do(): zero-initialise, pass in the
 * request, fire with kc_http_cancel() from any thread. */
struct kc_cancel {
	atomic_bool fired;
};

/* Fires c: a request using it stops as soon as possible with LLM_ECANCELED,
 * including while it waits for the rate limiter or a retry. */
void kc_http_cancel(kc_http *h, struct kc_cancel *c);

/* Receives a chunk of a streamed response body; returns false to stop the
 * stream (the call then returns LLM_ECANCELED). */
typedef bool (*kc_http_chunk_fn)(const char *p, size_t n, void *data);

struct kc_http_req {
	const char *method;	  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;	  /* path and query: "/api/v1/pods?limit=500" */
	const char *content_type; /* of body; NULL: application/json */
	const char *body;	  /* NULL for none */
	size_t body_len;
	kc_http_chunk_fn on_chunk; /* non-NULL: stream a 2xx body to it */
	void *data;		   /* for on_chunk */
	int timeout_ms;		   /* overrides the request timeout; streams: 0 = none */
	struct kc_cancel *cancel;  /* optional */
};

struct kc_http_resp {
	long status;  /* HTTP status of the final attempt */
	llm_buf body; /* body (for streams: only a non-2xx one); NUL-terminated */
	int retries;  /* attempts made beyond the first */
};

/* Performs req and waits for its end. LLM_OK whenever the server answered,
 * whatever the status; transport failures are LLM_EIO (with libcurl's
 * message), LLM_ETIMEDOUT, LLM_ECANCELED, or LLM_ETOOLARGE for a body over
 * the cap. resp is initialised here; free it with kc_http_resp_free(). */
llm_err kc_http_do(kc_http *h, const struct kc_http_req *req, struct kc_http_resp *resp);

/* Releases the response body. */
void kc_http_resp_free(struct kc_http_resp *resp);

/* The configuration the transport was created with. */
kc_config *kc_http_config(const kc_http *h);

#endif
