/* TCP helpers shared by the rendezvous and the CPU ring backend (internal).
 *
 * Every wait is bounded by an absolute deadline on the monotonic clock
 * (seconds from net_now()); nothing here blocks without one. Sockets are
 * non-blocking after they are made, sends use MSG_NOSIGNAL so a dead peer is
 * an error, never SIGPIPE. Failures return an llm_err with a detail naming
 * the host or the system error; callers add their context with
 * llm_wrap(). */
#ifndef LLMOPS_COLL_NET_H
#define LLMOPS_COLL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "llm_err.h"

/* size of a buffer holding a numeric IPv4 or IPv6 address and its NUL */
#define NET_ADDR_LEN 64

/* Monotonic time in seconds. */
double net_now(void);

/* Milliseconds left until deadline for poll(): 0 once passed, never more than
 * INT_MAX. */
int net_ms_left(double deadline);

/* Listens on every interface (IPv6 dual-stack, else IPv4) on port (0 = any
 * free port), SO_REUSEADDR, non-blocking. Writes the fd and the bound port. */
llm_err net_listen(int port, int backlog, int *fd, int *bound_port);

/* Accepts one connection on lfd before deadline; the new fd is non-blocking
 * with TCP_NODELAY. LLM_ETIMEDOUT when none came. */
llm_err net_accept(int lfd, double deadline, int *fd);

/* Resolves host with getaddrinfo and connects to port, retrying with backoff
 * (50 ms doubling to 1 s) while the host is unknown or refuses, until
 * deadline. The fd is non-blocking with TCP_NODELAY. LLM_ETIMEDOUT names the
 * last error. */
llm_err net_connect_retry(const char *host, int port, double deadline, int *fd);

/* Sends or receives exactly len bytes before deadline. LLM_EIO when the peer
 * closed (detail "connection closed by peer") or reset the connection,
 * LLM_ETIMEDOUT when the deadline passed. */
llm_err net_send_all(int fd, const void *buf, size_t len, double deadline);
llm_err net_recv_all(int fd, void *buf, size_t len, double deadline);

/* The numeric address of a socket's peer (getpeername) or of its local end
 * (getsockname) into out (NET_ADDR_LEN bytes); IPv4-mapped IPv6 addresses
 * are written as plain IPv4. */
llm_err net_peer_addr(int fd, char *out);
llm_err net_local_addr(int fd, char *out);

/* Sets O_NONBLOCK and TCP_NODELAY on fd. */
llm_err net_tune(int fd);

/* Big-endian encoding of the wire formats. */
void net_put_u16(unsigned char *p, uint16_t v);
void net_put_u32(unsigned char *p, uint32_t v);
void net_put_u64(unsigned char *p, uint64_t v);
uint16_t net_get_u16(const unsigned char *p);
uint32_t net_get_u32(const unsigned char *p);
uint64_t net_get_u64(const unsigned char *p);

#endif
