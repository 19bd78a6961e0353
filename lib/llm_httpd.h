/* A tiny HTTP/1.1 server for probes and metrics (/healthz, /readyz, /metrics),
 * built on libwebsockets and served from one background thread.
 *
 * One server holds several listeners, each bound to its own address with its
 * own routes, like controller-runtime's --metrics-bind-address :8080 and
 * --health-probe-bind-address :8081. Only GET and HEAD are served: POST, PUT,
 * PATCH, DELETE, OPTIONS and CONNECT get 405 and the connection is closed
 * (methods libwebsockets does not know it refuses itself with 403, before any
 * handler runs). A path matches a route exactly (no prefixes; the query
 * string is not part of the path); unknown paths get 404 "404 page not
 * found". Responses carry Content-Type and Content-Length; HTTP/1.1
 * connections are kept alive. Plain HTTP only: no TLS yet.
 *
 * Lifecycle: llm_httpd_new, then llm_httpd_listen and llm_httpd_route as
 * needed, then llm_httpd_start; the set of listeners and routes is fixed from
 * then on. llm_httpd_destroy stops the thread, closes every connection and
 * frees everything. */
#ifndef LLM_HTTPD_H
#define LLM_HTTPD_H

#include "llm_buf.h"
#include "llm_err.h"

/* Largest response body a handler may produce (16 MiB). */
#define LLM_HTTPD_BODY_MAX (16u * 1024 * 1024)

typedef struct llm_httpd llm_httpd;

typedef struct llm_httpd_request {
	const char *method; /* "GET" or "HEAD" */
	const char *path;   /* decoded path, e.g. "/metrics" */
	const char *query;  /* decoded query without '?' ("a=1&b=2"), or "" */
} llm_httpd_request;

typedef struct llm_httpd_response {
	int status;		  /* HTTP status code; 200 unless the handler sets it */
	const char *content_type; /* a string constant; "text/plain; charset=utf-8" by default */
	llm_buf body;		  /* capped at LLM_HTTPD_BODY_MAX; the server frees it */
	int retry_after;	  /* seconds for a Retry-After header (429, 503); 0: none */
} llm_httpd_response;

/* Fills res for req. Returning an error (for instance the LLM_ETOOLARGE of a
 * body append past the cap) makes the server answer 500 with the error's
 * detail instead. For HEAD the body is computed and only its length sent.
 * Handlers run on the server thread: they must be quick and thread-safe with
 * respect to whatever else touches data. */
typedef llm_err (*llm_httpd_handler)(const llm_httpd_request *req, llm_httpd_response *res,
				     void *data);

/* A new server with no listeners, or NULL (with llm_last_error set) when
 * libwebsockets cannot create its context. */
llm_httpd *llm_httpd_new(void);

/* Adds a listener and binds it now, so a port in use fails here. The address
 * is "host:port", "[ipv6]:port" or ":port" (all interfaces, IPv4 and IPv6);
 * host may be a name ("localhost"). Port 0 picks a free port (see
 * llm_httpd_port). "0" or "" adds a disabled listener: it gets an index and
 * accepts routes but serves nothing. *index (if not NULL) receives the
 * listener's index for llm_httpd_route and llm_httpd_port. LLM_EINVAL naming
 * the address when it cannot be parsed or resolved, or after start; LLM_EIO
 * when it cannot be bound (in use, not a local address). */
llm_err llm_httpd_listen(llm_httpd *s, const char *bind_address, int *index);

/* The port listener index is bound to (the real one when 0 was asked), 0 for
 * a disabled listener, -1 for an index that does not exist. */
int llm_httpd_port(const llm_httpd *s, int index);

/* Serves path (which must start with '/') on listener index with fn(data).
 * LLM_EINVAL for a bad index or path, or after start; LLM_EEXIST when the
 * listener already has that path. */
llm_err llm_httpd_route(llm_httpd *s, int index, const char *path, llm_httpd_handler fn,
			void *data);

/* Starts serving on a new thread. LLM_EINVAL if already started, LLM_EIO if
 * the thread cannot be created. */
llm_err llm_httpd_start(llm_httpd *s);

/* Stops the server thread (waiting for a running handler to return), closes
 * all connections and frees the server. NULL is a no-op. */
void llm_httpd_destroy(llm_httpd *s);

#endif
