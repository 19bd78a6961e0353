/* HTTP/1.1 server on libwebsockets (see llm_httpd.h).
 *
 * One lws context with one vhost per listener (LWS_SERVER_OPTION_EXPLICIT_VHOSTS);
 * the vhost's user pointer is its listener. A request is answered in two
 * steps: LWS_CALLBACK_HTTP runs the handler and keeps the whole response body
 * in the connection's state, then LWS_CALLBACK_HTTP_WRITEABLE writes the
 * headers and the body one chunk per callback, so a large body never has to
 * fit in the socket at once. Design limit: one service thread, so a slow
 * handler delays every other request. */
#include "llm_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llm_log.h"

#define CHUNK	     (64 * 1024) /* body bytes per WRITEABLE callback */
#define PATH_MAX_LEN 2048
#define DEFAULT_TYPE "text/plain; charset=utf-8"

struct route {
	char *path;
	llm_httpd_handler fn;
	void *data;
};

/* lws keeps the vhost name and interface pointers, so they live here. */
struct listener {
	char *address;		     /* as given, for messages */
	char name[32];		     /* vhost name */
	char host[INET6_ADDRSTRLEN]; /* numeric interface address, or "" */
	struct lws_vhost *vhost;     /* NULL when disabled */
	struct route *routes;
	size_t nroutes;
};

struct llm_httpd {
	struct lws_context *ctx;
	struct listener **listeners;
	size_t nlisteners;
	pthread_t thread;
	bool started;
	atomic_bool stop;
};

/* Per-connection state (lws allocates and zeroes it). */
struct conn {
	char *body; /* whole response body, or NULL */
	size_t len; /* body length, also sent as Content-Length */
	size_t off; /* bytes of body written */
	unsigned status;
	int retry_after; /* seconds, 0: no Retry-After header */
	char type[128];
	bool head;	   /* HEAD: send headers only */
	bool headers_sent; /* headers written, body (if any) pending */
	bool close;	   /* close the connection after this response */
};

/* --- lws logging ------------------------------------------------------------ */

static void lws_emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	llm_log_kv(level == LLL_ERR ? LLM_LOG_ERROR : LLM_LOG_WARN, "lws", NULL, "%.*s", (int)n,
		   line);
}

static void quiet_lws(void)
{
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
}

/* --- responses --------------------------------------------------------------- */

static void conn_reset(struct conn *c)
{
	free(c->body);
	memset(c, 0, sizeof(*c));
}

/* Prepares a response with a constant text body. */
static void set_text(struct conn *c, unsigned status, const char *text)
{
	c->status = status;
	snprintf(c->type, sizeof(c->type), DEFAULT_TYPE);
	c->body = strdup(text);
	c->len = c->body ? strlen(text) : 0;
}

/* Runs the handler and moves its response into c; a failing handler or an
 * unusable content type becomes a 500 with the reason in the body. */
static void run_handler(struct conn *c, const struct route *rt, const llm_httpd_request *req)
{
	llm_httpd_response res = {.status = 200, .content_type = DEFAULT_TYPE};
	llm_err rc;
	char msg[1200];

	llm_buf_init(&res.body, LLM_HTTPD_BODY_MAX);
	rc = rt->fn(req, &res, rt->data);
	if (!rc && (res.status < 100 || res.status > 999))
		rc = llm_fail(LLM_EINVAL, "handler returned status %d", res.status);
	if (!rc && (!res.content_type || strpbrk(res.content_type, "\r\n") ||
		    strlen(res.content_type) >= sizeof(c->type)))
		rc = llm_fail(LLM_EINVAL, "handler returned an invalid content type");
	if (rc) {
		snprintf(msg, sizeof(msg), "%s: %s\n", llm_strerror(rc), llm_last_error());
		llm_warn("httpd", "%s %s: %s: %s", req->method, req->path, llm_strerror(rc),
			 llm_last_error());
		llm_buf_free(&res.body);
		set_text(c, 500, msg);
		return;
	}
	c->status = (unsigned)res.status;
	c->retry_after = res.retry_after > 0 ? res.retry_after : 0;
	snprintf(c->type, sizeof(c->type), "%s", res.content_type);
	c->len = res.body.len;
	c->body = llm_buf_steal(&res.body);
}

static const struct route *find_route(const struct listener *l, const char *path)
{
	for (size_t i = 0; l && i < l->nroutes; i++)
		if (strcmp(l->routes[i].path, path) == 0)
			return &l->routes[i];
	return NULL;
}

/* The decoded query arguments joined with '&' ("" if none); arguments that
 * do not fit in buf are dropped. */
static void copy_query(struct lws *wsi, char *buf, size_t size)
{
	char arg[PATH_MAX_LEN];
	size_t pos = 0;

	buf[0] = '\0';
	for (int i = 0;
	     lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++) {
		int n = snprintf(buf + pos, size - pos, "%s%s", pos ? "&" : "", arg);

		if (n < 0 || (size_t)n >= size - pos) {
			buf[pos] = '\0';
			break;
		}
		pos += (size_t)n;
	}
}

/* LWS_CALLBACK_HTTP: decide the response, then wait for writability. */
static int on_request(struct lws *wsi, struct conn *c)
{
	const struct listener *l = lws_vhost_user(lws_get_vhost(wsi));
	char path[PATH_MAX_LEN], query[PATH_MAX_LEN] = "";
	char *uri;
	int ulen, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	const struct route *rt;

	conn_reset(c);
	if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD) {
		set_text(c, 405, "method not allowed\n");
		c->close = true; /* the request body, if any, is never read */
	} else if (ulen < 0 || ulen >= (int)sizeof(path)) {
		set_text(c, 414, "request URI too long\n");
	} else {
		memcpy(path, uri, (size_t)ulen);
		path[ulen] = '\0';
		copy_query(wsi, query, sizeof(query));
		c->head = method == LWSHUMETH_HEAD;
		rt = find_route(l, path);
		if (rt)
			run_handler(c, rt,
				    &(llm_httpd_request){c->head ? "HEAD" : "GET", path, query});
		else
			set_text(c, 404, "404 page not found\n");
	}
	lws_callback_on_writable(wsi);
	return 0;
}

static int write_headers(struct lws *wsi, struct conn *c)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);

	if (lws_add_http_common_headers(wsi, c->status, c->type, c->len, &p, end))
		return -1;
	if (c->status == 405 &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW,
					 (const unsigned char *)"GET, HEAD", 9, &p, end))
		return -1;
	if (c->retry_after) {
		char secs[16];
		int n = snprintf(secs, sizeof(secs), "%d", c->retry_after);

		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
						 (const unsigned char *)secs, n, &p, end))
			return -1;
	}
	if (c->close && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						     (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	c->headers_sent = true;
	return 0;
}

/* Writes the next chunk of the body, setting *done after the last one. */
static int write_chunk(struct lws *wsi, struct conn *c, bool *done)
{
	unsigned char buf[LWS_PRE + CHUNK];
	size_t n = c->len - c->off < CHUNK ? c->len - c->off : CHUNK;
	bool last = c->off + n == c->len;

	memcpy(buf + LWS_PRE, c->body + c->off, n);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
		return -1;
	c->off += n;
	*done = last;
	return 0;
}

/* LWS_CALLBACK_HTTP_WRITEABLE: headers first, then one body chunk per call;
 * after the last, free the body and wait for the next request (or close). */
static int on_writeable(struct lws *wsi, struct conn *c)
{
	bool done = false, must_close;

	if (!c->status)
		return 0; /* nothing pending */
	if (!c->headers_sent) {
		if (write_headers(wsi, c))
			return -1;
		done = c->head || c->len == 0;
	} else if (write_chunk(wsi, c, &done)) {
		return -1;
	}
	if (!done) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	must_close = c->close;
	conn_reset(c);
	if (must_close || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP: return c ? on_request(wsi, c) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE: return c ? on_writeable(wsi, c) : -1;
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: return 0; /* request bodies are ignored */
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (c)
			conn_reset(c);
		return 0;
	default: return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
	{"http", http_callback, sizeof(struct conn), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* --- server ----------------------------------------------------------------- */

llm_httpd *llm_httpd_new(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct lws_context_creation_info info;
	llm_httpd *s = calloc(1, sizeof(*s));

	if (!s) {
		llm_fail(LLM_ENOMEM, "httpd: out of memory");
		return NULL;
	}
	pthread_once(&once, quiet_lws);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.gid = -1;
	info.uid = -1;
	info.server_string = "llmops";
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		free(s);
		llm_fail(LLM_EIO, "httpd: cannot create the libwebsockets context");
		return NULL;
	}
	return s;
}

static void listener_free(struct listener *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nroutes; i++)
		free(l->routes[i].path);
	free(l->routes);
	free(l->address);
	free(l);
}

void llm_httpd_destroy(llm_httpd *s)
{
	if (!s)
		return;
	if (s->started) {
		atomic_store(&s->stop, true);
		lws_cancel_service(s->ctx);
		pthread_join(s->thread, NULL);
	}
	lws_context_destroy(s->ctx); /* closes connections: CLOSED_HTTP frees bodies */
	for (size_t i = 0; i < s->nlisteners; i++)
		listener_free(s->listeners[i]);
	free(s->listeners);
	free(s);
}

/* A parsed bind address: host (numeric, "" for all interfaces) and port. */
struct bind_addr {
	char host[INET6_ADDRSTRLEN];
	int family; /* AF_INET, AF_INET6, or AF_UNSPEC for all interfaces */
	int port;
};

/* Resolves name to a numeric address, IPv4 first as Go's listener does. */
static bool resolve_host(const char *name, struct bind_addr *a)
{
	static const int families[] = {AF_INET, AF_INET6};

	for (size_t i = 0; i < 2; i++) {
		struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM};
		struct addrinfo *res;
		const void *ip;

		if (getaddrinfo(name, NULL, &hints, &res) != 0)
			continue;
		if (res->ai_family == AF_INET)
			ip = &((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
		else
			ip = &((const struct sockaddr_in6 *)(const void *)res->ai_addr)->sin6_addr;
		a->family = res->ai_family;
		inet_ntop(res->ai_family, ip, a->host, sizeof(a->host));
		freeaddrinfo(res);
		return true;
	}
	return false;
}

/* Parses "host:port", "[v6]:port" or ":port". */
static llm_err parse_bind(const char *addr, struct bind_addr *a)
{
	const char *colon = strrchr(addr, ':');
	char host[256], *end;
	size_t hlen;
	long port;

	if (!colon)
		return llm_fail(LLM_EINVAL, "bind address '%s': want host:port", addr);
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		addr++;
		hlen -= 2;
	} else if (memchr(addr, ':', hlen)) {
		return llm_fail(LLM_EINVAL, "bind address '%s': put an IPv6 host in brackets",
				addr);
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 0 || port > 65535 || colon[1] == '-' ||
	    colon[1] == '+')
		return llm_fail(LLM_EINVAL, "bind address '%s': invalid port '%s'", addr,
				colon + 1);
	if (hlen >= sizeof(host))
		return llm_fail(LLM_EINVAL, "bind address '%s': host too long", addr);
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	a->port = (int)port;
	a->family = AF_UNSPEC;
	a->host[0] = '\0';
	if (hlen && !resolve_host(host, a))
		return llm_fail(LLM_EINVAL, "bind address '%s': cannot resolve host '%s'", addr,
				host);
	return LLM_OK;
}

/* Explains why binding a failed, by trying it ourselves for errno. */
static llm_err bind_error(const char *address, const struct bind_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, err = 0;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)a->port);
		inet_pton(AF_INET, a->host, &in->sin_addr);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)a->port);
		in6->sin6_addr = in6addr_any;
		if (a->family == AF_INET6)
			inet_pton(AF_INET6, a->host, &in6->sin6_addr);
		sl = sizeof(*in6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		err = errno;
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		 bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1))
		err = errno;
	if (fd >= 0)
		close(fd);
	return llm_fail(LLM_EIO, "cannot listen on '%s': %s", address,
			err ? strerror(err) : "libwebsockets refused the address");
}

/* Creates the vhost that listens on a for listener l. */
static llm_err open_vhost(llm_httpd *s, struct listener *l, const struct bind_addr *a)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	snprintf(l->name, sizeof(l->name), "llm-httpd-%zu", s->nlisteners);
	snprintf(l->host, sizeof(l->host), "%s", a->host);
	info.vhost_name = l->name;
	info.port = a->port;
	info.iface = l->host[0] ? l->host : NULL;
	info.protocols = protocols;
	info.user = l;
	info.keepalive_timeout = 60;
	if (a->family == AF_INET)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	l->vhost = lws_create_vhost(s->ctx, &info);
	if (!l->vhost || lws_get_vhost_listen_port(l->vhost) <= 0)
		return bind_error(l->address, a);
	return LLM_OK;
}

llm_err llm_httpd_listen(llm_httpd *s, const char *bind_address, int *index)
{
	struct bind_addr a;
	struct listener *l, **grown;
	const char *addr = bind_address ? bind_address : "";
	bool disabled = !*addr || strcmp(addr, "0") == 0;
	llm_err rc = LLM_OK;

	if (index)
		*index = -1;
	if (!s || s->started)
		return llm_fail(LLM_EINVAL, "httpd: listen '%s' after start", addr);
	if (!disabled && (rc = parse_bind(addr, &a)) != LLM_OK)
		return rc;
	grown = realloc(s->listeners, (s->nlisteners + 1) * sizeof(*grown));
	if (!grown)
		return llm_fail(LLM_ENOMEM, "httpd: out of memory");
	s->listeners = grown;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->address = strdup(addr))) {
		listener_free(l);
		return llm_fail(LLM_ENOMEM, "httpd: out of memory");
	}
	if (!disabled && (rc = open_vhost(s, l, &a)) != LLM_OK) {
		if (l->vhost)
			lws_vhost_destroy(l->vhost);
		listener_free(l);
		return rc;
	}
	s->listeners[s->nlisteners] = l;
	if (index)
		*index = (int)s->nlisteners;
	s->nlisteners++;
	return LLM_OK;
}

int llm_httpd_port(const llm_httpd *s, int index)
{
	if (!s || index < 0 || (size_t)index >= s->nlisteners)
		return -1;
	if (!s->listeners[index]->vhost)
		return 0;
	return lws_get_vhost_listen_port(s->listeners[index]->vhost);
}

llm_err llm_httpd_route(llm_httpd *s, int index, const char *path, llm_httpd_handler fn, void *data)
{
	struct listener *l;
	struct route *grown;

	if (!s || s->started || index < 0 || (size_t)index >= s->nlisteners)
		return llm_fail(LLM_EINVAL, "httpd: cannot add a route to listener %d", index);
	if (!path || path[0] != '/' || !fn)
		return llm_fail(LLM_EINVAL, "httpd: route path '%s' must start with '/'",
				path ? path : "(null)");
	l = s->listeners[index];
	if (find_route(l, path))
		return llm_fail(LLM_EEXIST, "httpd: %s already has a route for %s", l->address,
				path);
	grown = realloc(l->routes, (l->nroutes + 1) * sizeof(*grown));
	if (!grown)
		return llm_fail(LLM_ENOMEM, "httpd: out of memory");
	l->routes = grown;
	grown[l->nroutes].path = strdup(path);
	if (!grown[l->nroutes].path)
		return llm_fail(LLM_ENOMEM, "httpd: out of memory");
	grown[l->nroutes].fn = fn;
	grown[l->nroutes].data = data;
	l->nroutes++;
	return LLM_OK;
}

static void *serve(void *arg)
{
	llm_httpd *s = arg;

	while (!atomic_load(&s->stop)) {
		if (lws_service(s->ctx, 0) < 0) {
			llm_error("httpd", "event loop failed; no longer serving");
			break;
		}
	}
	return NULL;
}

llm_err llm_httpd_start(llm_httpd *s)
{
	int err;

	if (!s || s->started)
		return llm_fail(LLM_EINVAL, "httpd: already started");
	err = pthread_create(&s->thread, NULL, serve, s);
	if (err)
		return llm_fail(LLM_EIO, "httpd: cannot start thread: %s", strerror(err));
	s->started = true;
	return LLM_OK;
}
