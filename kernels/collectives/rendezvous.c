/* Rendezvous of a job's ranks over TCP and the control channel it leaves.
 *
 * Rank 0 accepts connections one at a time and reads each hello with a short
 * deadline, so a silent connection delays the others by at most
 * HELLO_TIMEOUT_S. Design limit: the table is sent once everyone has
 * arrived; a rank that dies afterwards is seen on the control channel, not
 * replaced (the operator restarts the whole gang as a new attempt). */
#include "rendezvous.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llmops_collectives.h"
#include "net.h"

#define RDZV_MAGIC	0x4c4c434fu /* "LLCO" */
#define RDZV_VERSION	2
#define HELLO_FIXED	26 /* magic, version, data port, rank, world, job length, backend */
#define BACKEND_FIELD	8  /* the backend's name, NUL-padded */
#define REPLY_HEAD	8  /* magic, status */
#define REPLY_OK_HEAD	16 /* world, session, blob length */
#define ENTRY_LEN	48 /* port (2) + NUL-padded numeric address (46) */
#define ADDR_FIELD	46
#define HELLO_TIMEOUT_S 5.0
#define REPLY_GRACE_S	2.0
#define MSG_MAX		512

enum { CTRL_FAILED = 1, CTRL_BYE = 2, CTRL_LEN = 8 };

struct peer {
	char host[NET_ADDR_LEN];
	int port;
};

struct rdzv {
	int rank, world;
	uint64_t session;
	struct peer *peers;
	unsigned char *blob;
	size_t blob_len;
	int *ctrl; /* rank 0: ctrl[k] is rank k's socket; others: ctrl[0]; -1 closed */
	unsigned char (*inbuf)[CTRL_LEN];
	int *inlen;
	int failed;
};

/* A parsed hello. */
struct hello {
	uint32_t magic, rank, world;
	uint16_t version, data_port;
	char backend[BACKEND_FIELD + 1];
	char job[LLM_COLL_MAX_JOB_ID + 1];
	char addr[NET_ADDR_LEN];
};

static struct rdzv *rdzv_alloc(int rank, int world)
{
	struct rdzv *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->rank = rank;
	r->world = world;
	r->failed = -1;
	r->peers = calloc((size_t)world, sizeof(*r->peers));
	r->ctrl = malloc((size_t)world * sizeof(*r->ctrl));
	r->inbuf = calloc((size_t)world, sizeof(*r->inbuf));
	r->inlen = calloc((size_t)world, sizeof(*r->inlen));
	if (!r->peers || !r->ctrl || !r->inbuf || !r->inlen) {
		rdzv_destroy(r);
		return NULL;
	}
	for (int k = 0; k < world; k++)
		r->ctrl[k] = -1;
	return r;
}

static void ctrl_send(int fd, uint32_t type, uint32_t rank)
{
	unsigned char m[CTRL_LEN];

	net_put_u32(m, type);
	net_put_u32(m + 4, rank);
	if (fd >= 0)
		(void)!send(fd, m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void rdzv_destroy(struct rdzv *r)
{
	if (!r)
		return;
	for (int k = 0; r->ctrl && k < r->world; k++) {
		if (r->ctrl[k] < 0)
			continue;
		ctrl_send(r->ctrl[k], CTRL_BYE, (uint32_t)r->rank);
		close(r->ctrl[k]);
	}
	free(r->peers);
	free(r->ctrl);
	free(r->inbuf);
	free(r->inlen);
	free(r->blob);
	free(r);
}

/* --- rank 0 ---------------------------------------------------------------------------- */

/* Sends a refusal with msg to fd (best effort) and closes it. */
static void refuse(int fd, llm_err code, const char *msg, double deadline)
{
	unsigned char buf[REPLY_HEAD + 2 + MSG_MAX];
	size_t len = strnlen(msg, MSG_MAX);

	net_put_u32(buf, RDZV_MAGIC);
	net_put_u32(buf + 4, (uint32_t)code);
	net_put_u16(buf + 8, (uint16_t)len);
	memcpy(buf + 10, msg, len);
	(void)net_send_all(fd, buf, 10 + len, deadline);
	close(fd);
}

/* Refuses every admitted rank with msg and fails with it. */
static llm_err fail_all(struct rdzv *r, llm_err code, const char *msg)
{
	double deadline = net_now() + 1.0;

	for (int k = 1; k < r->world; k++) {
		if (r->ctrl[k] >= 0)
			refuse(r->ctrl[k], code, msg, deadline);
		r->ctrl[k] = -1;
	}
	return llm_fail(code, "rendezvous: %s", msg);
}

/* Reads and parses one hello from fd. */
static llm_err read_hello(int fd, struct hello *h, double deadline)
{
	unsigned char b[HELLO_FIXED];
	uint16_t job_len;
	llm_err err = net_recv_all(fd, b, sizeof(b), deadline);

	if (err != LLM_OK)
		return err;
	h->magic = net_get_u32(b);
	h->version = net_get_u16(b + 4);
	h->data_port = net_get_u16(b + 6);
	h->rank = net_get_u32(b + 8);
	h->world = net_get_u32(b + 12);
	job_len = net_get_u16(b + 16);
	memcpy(h->backend, b + 18, BACKEND_FIELD);
	h->backend[BACKEND_FIELD] = '\0';
	if (h->magic != RDZV_MAGIC || job_len > LLM_COLL_MAX_JOB_ID)
		return llm_fail(LLM_EPARSE, "not a collectives hello");
	err = net_recv_all(fd, h->job, job_len, deadline);
	h->job[job_len] = '\0';
	if (err == LLM_OK)
		err = net_peer_addr(fd, h->addr);
	return err;
}

/* Why h cannot join (msg filled, *fatal set when the whole job must fail),
 * or false when it can. */
static bool hello_refused(const struct rdzv *r, const struct rdzv_config *cfg,
			  const struct hello *h, char *msg, bool *fatal)
{
	*fatal = true;
	if (h->version != RDZV_VERSION) {
		*fatal = false;
		snprintf(msg, MSG_MAX, "%s speaks protocol version %u, rank 0 speaks %d", h->addr,
			 h->version, RDZV_VERSION);
	} else if (strcmp(h->job, cfg->job_id) != 0) {
		*fatal = false;
		snprintf(msg, MSG_MAX,
			 "job id \"%s\" of rank %u at %s is not this job's \"%s\" (a worker of "
			 "another attempt?)",
			 h->job, h->rank, h->addr, cfg->job_id);
	} else if (strncmp(h->backend, cfg->backend, BACKEND_FIELD) != 0) {
		snprintf(msg, MSG_MAX,
			 "rank %u at %s uses the %s collectives, rank 0 %s: every rank needs the "
			 "same (LLMOPS_COLL_BACKEND; with auto, a rank whose GPU did not "
			 "initialise takes cpu)",
			 h->rank, h->addr, h->backend, cfg->backend);
	} else if (h->world != (uint32_t)r->world) {
		snprintf(msg, MSG_MAX, "world size mismatch: rank %u at %s says %u, rank 0 says %d",
			 h->rank, h->addr, h->world, r->world);
	} else if (h->rank == 0 || h->rank >= (uint32_t)r->world) {
		snprintf(msg, MSG_MAX, "rank %u at %s is out of range for world size %d%s", h->rank,
			 h->addr, r->world, h->rank == 0 ? " (rank 0 is taken)" : "");
	} else if (r->ctrl[h->rank] >= 0) {
		snprintf(msg, MSG_MAX, "duplicate rank %u: from %s and from %s", h->rank,
			 r->peers[h->rank].host, h->addr);
	} else {
		return false;
	}
	return true;
}

/* Reads fd's hello and admits it; LLM_OK also when a bad hello was refused
 * and dropped, an error when the whole rendezvous fails. */
static llm_err admit(struct rdzv *r, const struct rdzv_config *cfg, int fd, int *arrived)
{
	double until = net_now() + HELLO_TIMEOUT_S;
	struct hello h;
	char msg[MSG_MAX];
	bool fatal;

	if (read_hello(fd, &h, until < cfg->deadline ? until : cfg->deadline) != LLM_OK) {
		close(fd);
		return LLM_OK;
	}
	if (hello_refused(r, cfg, &h, msg, &fatal)) {
		refuse(fd, LLM_EINVAL, msg, net_now() + 1.0);
		return fatal ? fail_all(r, LLM_EINVAL, msg) : LLM_OK;
	}
	r->ctrl[h.rank] = fd;
	snprintf(r->peers[h.rank].host, NET_ADDR_LEN, "%s", h.addr);
	r->peers[h.rank].port = h.data_port;
	(*arrived)++;
	return LLM_OK;
}

/* The timeout error naming the ranks that never arrived. */
static llm_err fail_missing(struct rdzv *r, const struct rdzv_config *cfg, int arrived)
{
	char list[256] = "", msg[MSG_MAX];
	size_t used = 0;

	for (int k = 1; k < r->world && used < sizeof(list) - 16; k++) {
		if (r->ctrl[k] < 0)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d",
						 used ? ", " : "", k);
	}
	if (used >= sizeof(list) - 16)
		snprintf(list + used, sizeof(list) - used, ", ...");
	snprintf(msg, sizeof(msg), "%d of %d workers never arrived within %g s: ranks %s missing",
		 r->world - 1 - arrived, r->world, cfg->timeout_s, list);
	return fail_all(r, LLM_ETIMEDOUT, msg);
}

/* Sends rank k the table (with rank 0's address as k reached it) and blob. */
static llm_err send_table(struct rdzv *r, const struct rdzv_config *cfg, int k)
{
	size_t len = REPLY_HEAD + REPLY_OK_HEAD + (size_t)r->world * ENTRY_LEN + r->blob_len;
	unsigned char *buf = calloc(1, len), *e;
	char self[NET_ADDR_LEN];
	llm_err err;

	if (!buf)
		return llm_fail(LLM_ENOMEM, "rendezvous: out of memory");
	net_put_u32(buf, RDZV_MAGIC);
	net_put_u32(buf + 8, (uint32_t)r->world);
	net_put_u64(buf + 12, r->session);
	net_put_u32(buf + 20, (uint32_t)r->blob_len);
	e = buf + REPLY_HEAD + REPLY_OK_HEAD;
	/* rank 0's entry: its own address on the connection rank k reached */
	err = net_local_addr(r->ctrl[k], self);
	net_put_u16(e, (uint16_t)cfg->data_port);
	memcpy(e + 2, self, strnlen(self, ADDR_FIELD - 1));
	for (int j = 1; j < r->world; j++) {
		e += ENTRY_LEN;
		net_put_u16(e, (uint16_t)r->peers[j].port);
		memcpy(e + 2, r->peers[j].host, strnlen(r->peers[j].host, ADDR_FIELD - 1));
	}
	if (r->blob_len)
		memcpy(e + ENTRY_LEN, r->blob, r->blob_len);
	if (err == LLM_OK)
		err = net_send_all(r->ctrl[k], buf, len, cfg->deadline + HELLO_TIMEOUT_S);
	free(buf);
	return err == LLM_OK ? LLM_OK
			     : llm_wrap(err, "rendezvous: sending the table to rank %d", k);
}

static uint64_t new_session(void)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
		s = (uint64_t)(net_now() * 1e9) ^ ((uint64_t)getpid() << 32);
	return s;
}

/* Forgets admitted ranks whose connection closed while waiting (a worker
 * that gave up): they count as missing again. Workers send nothing after
 * their hello, so any event on an admitted socket means it closed. */
static void drop_departed(struct rdzv *r, struct pollfd *pfds, int *arrived)
{
	int n = rdzv_ctrl_pollfds(r, pfds, r->world);

	if (n == 0 || poll(pfds, (nfds_t)n, 0) <= 0)
		return;
	for (int i = 0; i < n; i++) {
		for (int k = 1; pfds[i].revents && k < r->world; k++) {
			if (r->ctrl[k] != pfds[i].fd)
				continue;
			close(r->ctrl[k]);
			r->ctrl[k] = -1;
			(*arrived)--;
		}
	}
}

static llm_err serve(struct rdzv *r, const struct rdzv_config *cfg)
{
	struct pollfd *pfds = calloc((size_t)r->world, sizeof(*pfds));
	int lfd, port, arrived = 0;
	llm_err err;

	if (!pfds)
		return llm_fail(LLM_ENOMEM, "rendezvous: out of memory");
	err = net_listen(cfg->master_port, r->world + 16, &lfd, &port);
	if (err != LLM_OK) {
		free(pfds);
		return llm_wrap(err, "rendezvous: rank 0 cannot listen");
	}
	for (;;) {
		int fd;

		drop_departed(r, pfds, &arrived);
		if (arrived == r->world - 1)
			break;
		if (net_accept(lfd, cfg->deadline, &fd) == LLM_OK) {
			err = admit(r, cfg, fd, &arrived);
		} else {
			drop_departed(r, pfds, &arrived);
			err = fail_missing(r, cfg, arrived);
		}
		if (err != LLM_OK)
			break;
	}
	close(lfd);
	free(pfds);
	for (int k = 1; err == LLM_OK && k < r->world; k++)
		err = send_table(r, cfg, k);
	return err;
}

/* --- other ranks ------------------------------------------------------------------------ */

static llm_err send_hello(int fd, const struct rdzv_config *cfg)
{
	unsigned char b[HELLO_FIXED + LLM_COLL_MAX_JOB_ID];
	size_t job_len = strlen(cfg->job_id);

	net_put_u32(b, RDZV_MAGIC);
	net_put_u16(b + 4, RDZV_VERSION);
	net_put_u16(b + 6, (uint16_t)cfg->data_port);
	net_put_u32(b + 8, (uint32_t)cfg->rank);
	net_put_u32(b + 12, (uint32_t)cfg->world);
	net_put_u16(b + 16, (uint16_t)job_len);
	memset(b + 18, 0, BACKEND_FIELD);
	memcpy(b + 18, cfg->backend, strnlen(cfg->backend, BACKEND_FIELD));
	memcpy(b + HELLO_FIXED, cfg->job_id, job_len);
	return net_send_all(fd, b, HELLO_FIXED + job_len, cfg->deadline);
}

/* Reads a refusal's text after its header and fails with it. */
static llm_err read_refusal(int fd, uint32_t status, const struct rdzv_config *cfg)
{
	unsigned char lenb[2];
	char msg[MSG_MAX + 1] = "";
	uint16_t len = 0;

	if (net_recv_all(fd, lenb, 2, cfg->deadline) == LLM_OK) {
		len = net_get_u16(lenb);
		len = len > MSG_MAX ? MSG_MAX : len;
		if (net_recv_all(fd, msg, len, cfg->deadline) != LLM_OK)
			len = 0;
	}
	msg[len] = '\0';
	if (status == 0 || status >= LLM_ERR_COUNT_)
		status = LLM_EINVAL;
	return llm_fail((llm_err)status, "rendezvous: from rank 0: %s", msg);
}

/* Reads the accepted reply's table and blob. */
static llm_err read_table(struct rdzv *r, int fd, const struct rdzv_config *cfg)
{
	unsigned char h[REPLY_OK_HEAD], e[ENTRY_LEN];
	llm_err err = net_recv_all(fd, h, sizeof(h), cfg->deadline);

	if (err != LLM_OK)
		return err;
	r->session = net_get_u64(h + 4);
	r->blob_len = net_get_u32(h + 12);
	if ((int)net_get_u32(h) != r->world || r->blob_len > LLM_COLL_MAX_BLOB)
		return llm_fail(LLM_EPARSE, "malformed table");
	for (int j = 0; j < r->world && err == LLM_OK; j++) {
		err = net_recv_all(fd, e, sizeof(e), cfg->deadline);
		r->peers[j].port = net_get_u16(e);
		memcpy(r->peers[j].host, e + 2, ADDR_FIELD - 1);
		r->peers[j].host[ADDR_FIELD - 1] = '\0';
	}
	r->blob = malloc(r->blob_len ? r->blob_len : 1);
	if (!r->blob)
		return llm_fail(LLM_ENOMEM, "out of memory");
	return err == LLM_OK ? net_recv_all(fd, r->blob, r->blob_len, cfg->deadline) : err;
}

static llm_err join(struct rdzv *r, const struct rdzv_config *cfg)
{
	struct rdzv_config late = *cfg;
	unsigned char h[REPLY_HEAD];
	llm_err err =
		net_connect_retry(cfg->master_addr, cfg->master_port, cfg->deadline, &r->ctrl[0]);

	if (err != LLM_OK)
		return llm_wrap(err,
				"rendezvous: rank %d could not reach rank 0 at %s:%d within %g s",
				cfg->rank, cfg->master_addr, cfg->master_port, cfg->timeout_s);
	err = send_hello(r->ctrl[0], cfg);
	/* rank 0 answers by its own deadline, failure included: wait a little
	 * longer than ours so its verdict (who is missing) arrives */
	late.deadline += cfg->timeout_s < REPLY_GRACE_S ? cfg->timeout_s : REPLY_GRACE_S;
	if (err == LLM_OK)
		err = net_recv_all(r->ctrl[0], h, sizeof(h), late.deadline);
	if (err == LLM_OK && net_get_u32(h) != RDZV_MAGIC)
		err = llm_fail(LLM_EPARSE, "the reply is not a collectives reply");
	if (err == LLM_OK && net_get_u32(h + 4) != 0)
		return read_refusal(r->ctrl[0], net_get_u32(h + 4), &late);
	if (err == LLM_OK)
		err = read_table(r, r->ctrl[0], &late);
	if (err == LLM_ETIMEDOUT)
		return llm_fail(err,
				"rendezvous: rank %d reached rank 0 at %s:%d but got no peer table "
				"within %g s (are all %d workers up?)",
				cfg->rank, cfg->master_addr, cfg->master_port, cfg->timeout_s,
				cfg->world);
	return err == LLM_OK ? LLM_OK : llm_wrap(err, "rendezvous: rank %d", cfg->rank);
}

llm_err rdzv_run(const struct rdzv_config *cfg, struct rdzv **out)
{
	struct rdzv *r = rdzv_alloc(cfg->rank, cfg->world);
	llm_err err;

	*out = NULL;
	if (!r)
		return llm_fail(LLM_ENOMEM, "rendezvous: out of memory");
	if (cfg->rank == 0) {
		r->session = new_session();
		r->blob_len = cfg->blob_len;
		r->blob = malloc(cfg->blob_len ? cfg->blob_len : 1);
		if (!r->blob) {
			rdzv_destroy(r);
			return llm_fail(LLM_ENOMEM, "rendezvous: out of memory");
		}
		if (cfg->blob_len)
			memcpy(r->blob, cfg->blob, cfg->blob_len);
		err = serve(r, cfg);
	} else {
		err = join(r, cfg);
	}
	if (err != LLM_OK) {
		for (int k = 0; k < r->world; k++) {
			if (r->ctrl[k] >= 0)
				close(r->ctrl[k]);
			r->ctrl[k] = -1;
		}
		rdzv_destroy(r);
		return err;
	}
	*out = r;
	return LLM_OK;
}

const char *rdzv_peer_host(const struct rdzv *r, int k)
{
	return r->peers[k].host;
}

int rdzv_peer_port(const struct rdzv *r, int k)
{
	return r->peers[k].port;
}

const void *rdzv_blob(const struct rdzv *r, size_t *len)
{
	*len = r->blob_len;
	return r->blob;
}

uint64_t rdzv_session(const struct rdzv *r)
{
	return r->session;
}

/* --- control channel --------------------------------------------------------------------- */

int rdzv_ctrl_pollfds(const struct rdzv *r, struct pollfd *fds, int max)
{
	int n = 0;

	for (int k = 0; k < r->world && n < max; k++) {
		if (r->ctrl[k] >= 0)
			fds[n++] = (struct pollfd){.fd = r->ctrl[k], .events = POLLIN};
	}
	return n;
}

/* Marks rank k failed (the first failure sticks); rank 0 tells the others. */
static void mark_failed(struct rdzv *r, int k)
{
	if (r->failed >= 0)
		return;
	r->failed = k;
	for (int j = 1; r->rank == 0 && j < r->world; j++) {
		if (j != k)
			ctrl_send(r->ctrl[j], CTRL_FAILED, (uint32_t)k);
	}
}

/* Handles one whole control message from socket slot k. */
static void ctrl_message(struct rdzv *r, int k, const unsigned char *m)
{
	uint32_t type = net_get_u32(m), who = net_get_u32(m + 4);

	if (type == CTRL_FAILED && who < (uint32_t)r->world)
		mark_failed(r, (int)who);
	if (type == CTRL_BYE) {
		close(r->ctrl[k]);
		r->ctrl[k] = -1;
	}
}

/* Reads what is waiting on control slot k. */
static void ctrl_read(struct rdzv *r, int k)
{
	while (r->ctrl[k] >= 0) {
		ssize_t n = recv(r->ctrl[k], r->inbuf[k] + r->inlen[k],
				 (size_t)(CTRL_LEN - r->inlen[k]), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* closed without goodbye: that process is gone */
			close(r->ctrl[k]);
			r->ctrl[k] = -1;
			mark_failed(r, k);
			return;
		}
		r->inlen[k] += (int)n;
		if (r->inlen[k] == CTRL_LEN) {
			r->inlen[k] = 0;
			ctrl_message(r, k, r->inbuf[k]);
		}
	}
}

int rdzv_ctrl_check(struct rdzv *r, const struct pollfd *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (!fds[i].revents)
			continue;
		for (int k = 0; k < r->world; k++) {
			if (r->ctrl[k] == fds[i].fd)
				ctrl_read(r, k);
		}
	}
	return r->failed;
}

void rdzv_ctrl_report(struct rdzv *r, int k)
{
	if (r->failed >= 0)
		return;
	if (r->rank == 0) {
		mark_failed(r, k);
		return;
	}
	r->failed = k;
	ctrl_send(r->ctrl[0], CTRL_FAILED, (uint32_t)k);
}

int rdzv_failed_rank(const struct rdzv *r)
{
	return r->failed;
}
