/* TCP helpers for the collectives: listen, accept and connect with deadlines,
 * exact sends and receives, address formatting, big-endian fields.
 *
 * Design limit: one socket at a time; the ring backend multiplexes its two
 * data sockets with its own poll() loop and uses only the setup helpers. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_S 0.05
#define BACKOFF_MAX_S 1.0
#define CONNECT_TRY_S 5.0 /* one connect attempt to one address */

double net_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int net_ms_left(double deadline)
{
	double ms = (deadline - net_now()) * 1000.0;

	if (ms <= 0)
		return 0;
	return ms >= INT_MAX ? INT_MAX : (int)ms + 1;
}

llm_err net_tune(int fd)
{
	int one = 1;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return llm_fail(LLM_EIO, "fcntl O_NONBLOCK: %s", strerror(errno));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return llm_fail(LLM_EIO, "setsockopt TCP_NODELAY: %s", strerror(errno));
	return LLM_OK;
}

/* A socket of family bound to the wildcard address and port. */
static int bind_any(int family, int port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int one = 1, zero = 0;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons((uint16_t)port);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		a->sin_port = htons((uint16_t)port);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

llm_err net_listen(int port, int backlog, int *fd, int *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s = bind_any(AF_INET6, port);

	if (s < 0 && errno != EADDRINUSE)
		s = bind_any(AF_INET, port);
	if (s < 0)
		return llm_fail(LLM_EIO, "bind port %d: %s", port, strerror(errno));
	if (listen(s, backlog) < 0 || getsockname(s, (struct sockaddr *)&ss, &len) < 0) {
		llm_err err = llm_fail(LLM_EIO, "listen on port %d: %s", port, strerror(errno));

		close(s);
		return err;
	}
	if (fcntl(s, F_SETFL, O_NONBLOCK) < 0) {
		close(s);
		return llm_fail(LLM_EIO, "fcntl O_NONBLOCK: %s", strerror(errno));
	}
	*fd = s;
	*bound_port = sockaddr_port(&ss);
	return LLM_OK;
}

llm_err net_accept(int lfd, double deadline, int *fd)
{
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int n = poll(&p, 1, net_ms_left(deadline));
		int s;

		if (n < 0 && errno != EINTR)
			return llm_fail(LLM_EIO, "poll: %s", strerror(errno));
		if (n == 0)
			return llm_fail(LLM_ETIMEDOUT, "no connection arrived in time");
		s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			return llm_fail(LLM_EIO, "accept: %s", strerror(errno));
		}
		if (net_tune(s) != LLM_OK) {
			close(s);
			return LLM_EIO;
		}
		*fd = s;
		return LLM_OK;
	}
}

/* Waits for a non-blocking connect on s to finish; 0 or an errno value. */
static int connect_wait(int s, double deadline)
{
	struct pollfd p = {.fd = s, .events = POLLOUT};
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	int n;

	do
		n = poll(&p, 1, net_ms_left(deadline));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? ETIMEDOUT : errno;
	if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return errno;
	return soerr;
}

/* One try at every address of host:port; the fd, or -1 with *why set. */
static int connect_once(const char *host, int port, double deadline, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char service[16];
	int rc, s = -1;

	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0) {
		snprintf(why, whylen, "resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	if (deadline > net_now() + CONNECT_TRY_S)
		deadline = net_now() + CONNECT_TRY_S; /* an address that drops SYNs */
	for (ai = res; ai && s < 0; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (s < 0 || net_tune(s) != LLM_OK) {
			snprintf(why, whylen, "socket: %s", strerror(errno));
		} else if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0 ||
			   (errno == EINPROGRESS && (errno = connect_wait(s, deadline)) == 0)) {
			break;
		} else {
			snprintf(why, whylen, "connect %s:%d: %s", host, port, strerror(errno));
		}
		if (s >= 0)
			close(s);
		s = -1;
	}
	freeaddrinfo(res);
	return s;
}

llm_err net_connect_retry(const char *host, int port, double deadline, int *fd)
{
	double backoff = BACKOFF_MIN_S;
	char why[256] = "deadline passed before the first try";

	for (;;) {
		int s = connect_once(host, port, deadline, why, sizeof(why));
		double left;

		if (s >= 0) {
			*fd = s;
			return LLM_OK;
		}
		left = deadline - net_now();
		if (left <= 0)
			return llm_fail(LLM_ETIMEDOUT, "%s", why);
		nanosleep(&(struct timespec){.tv_sec = 0,
					     .tv_nsec = (long)((backoff < left ? backoff : left) *
							       1e9)},
			  NULL);
		backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
	}
}

/* Waits for events on fd; LLM_OK when ready. */
static llm_err wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n = poll(&p, 1, net_ms_left(deadline));

	if (n < 0 && errno != EINTR)
		return llm_fail(LLM_EIO, "poll: %s", strerror(errno));
	if (n == 0)
		return llm_fail(LLM_ETIMEDOUT, "timed out");
	return LLM_OK;
}

llm_err net_send_all(int fd, const void *buf, size_t len, double deadline)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			llm_err err = wait_fd(fd, POLLOUT, deadline);

			if (err != LLM_OK)
				return err;
		} else {
			return llm_fail(LLM_EIO, "send: %s", strerror(errno));
		}
	}
	return LLM_OK;
}

llm_err net_recv_all(int fd, void *buf, size_t len, double deadline)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n == 0) {
			return llm_fail(LLM_EIO, "connection closed by peer");
		} else if (errno == EAGAIN || errno == EINTR) {
			llm_err err = wait_fd(fd, POLLIN, deadline);

			if (err != LLM_OK)
				return err;
		} else {
			return llm_fail(LLM_EIO, "recv: %s", strerror(errno));
		}
	}
	return LLM_OK;
}

/* Formats ss numerically, unwrapping IPv4-mapped IPv6 addresses. */
static llm_err format_addr(const struct sockaddr_storage *ss, char *out)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			if (!inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, NET_ADDR_LEN))
				return llm_fail(LLM_EIO, "inet_ntop: %s", strerror(errno));
		} else if (!inet_ntop(AF_INET6, &a->sin6_addr, out, NET_ADDR_LEN)) {
			return llm_fail(LLM_EIO, "inet_ntop: %s", strerror(errno));
		}
		return LLM_OK;
	}
	if (ss->ss_family != AF_INET ||
	    !inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, NET_ADDR_LEN))
		return llm_fail(LLM_EIO, "address of family %d", ss->ss_family);
	return LLM_OK;
}

llm_err net_peer_addr(int fd, char *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return llm_fail(LLM_EIO, "getpeername: %s", strerror(errno));
	return format_addr(&ss, out);
}

llm_err net_local_addr(int fd, char *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return llm_fail(LLM_EIO, "getsockname: %s", strerror(errno));
	return format_addr(&ss, out);
}

void net_put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

void net_put_u32(unsigned char *p, uint32_t v)
{
	net_put_u16(p, (uint16_t)(v >> 16));
	net_put_u16(p + 2, (uint16_t)v);
}

void net_put_u64(unsigned char *p, uint64_t v)
{
	net_put_u32(p, (uint32_t)(v >> 32));
	net_put_u32(p + 4, (uint32_t)v);
}

uint16_t net_get_u16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t net_get_u32(const unsigned char *p)
{
	return ((uint32_t)net_get_u16(p) << 16) | net_get_u16(p + 2);
}

uint64_t net_get_u64(const unsigned char *p)
{
	return ((uint64_t)net_get_u32(p) << 32) | net_get_u32(p + 4);
}
