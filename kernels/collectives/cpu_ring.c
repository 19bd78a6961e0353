/* CPU collectives backend: ring algorithms over TCP.
 *
 * Rank r connects to its right neighbour r+1 and accepts from its left
 * neighbour r-1 (mod world). All-reduce is a reduce-scatter then an
 * all-gather around the ring, each world-1 steps over the shard layout of
 * llm_coll_shard(), so every rank sends and receives 2(world-1)/world of the
 * buffer. Within a step the send of one chunk and the receive of another run
 * at once over non-blocking sockets and poll(); received data goes through
 * a SLICE_BYTES scratch buffer and is added into place slice by slice, so
 * memory stays bounded whatever the buffer size. Chunk c is summed in the
 * fixed order c+1, c+2, ..., c (mod world), then copied, so every rank ends
 * with the same bits and repeated runs give the same result.
 *
 * Each operation starts by exchanging a small header with the neighbours
 * (operation, size, root, sequence number), so mismatched calls fail with a
 * clear error instead of mixing up the byte streams. Design limit: steps run
 * one after another (a step's send is the previous step's result), so the
 * pipeline depth is one step; there is no overlap between steps. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coll_backend.h"
#include "net.h"

#define SLICE_BYTES	(256 * 1024)
#define DATA_MAGIC	0x4c4c4344u /* "LLCD" */
#define DATA_HELLO_LEN	16
#define OP_HDR_LEN	24
#define HELLO_TIMEOUT_S 5.0
#define GRACE_MS	200 /* wait for the control channel to name the failed rank */

enum ring_op { OP_ALL_REDUCE = 1, OP_REDUCE_SCATTER, OP_ALL_GATHER, OP_BROADCAST, OP_BARRIER };

#define N_OPS 6 /* entries of op_names */

static const char *const op_names[N_OPS] = {
	"?", "all_reduce_sum", "reduce_scatter_sum", "all_gather", "broadcast", "barrier",
};

struct ring {
	int rank, world, left, right;
	int lfd, sfd, rfd; /* listener, to the right, from the left */
	struct rdzv *rdzv;
	double op_timeout_s;
	uint64_t seq;
	const char *op; /* name of the running operation, for messages */
	unsigned char *scratch;
	struct pollfd *pfds; /* world + 2 */
};

/* One step: send send_len bytes to the right while receiving recv_len from
 * the left, into recv or, when reduce is set, added into reduce[]. With
 * forward set, send == recv and only bytes already received are sent. */
struct xfer {
	const unsigned char *send;
	size_t send_len, sent;
	unsigned char *recv;
	size_t recv_len, got;
	float *reduce;
	size_t fill; /* bytes in scratch not yet added */
	bool forward;
};

static int mod(int a, int m)
{
	return ((a % m) + m) % m;
}

/* --- failures --------------------------------------------------------------------------- */

/* Rank k's data connection broke (errnum 0: closed). Names the rank that
 * failed first anywhere in the job if the control channel says so. */
static llm_err peer_fail(struct ring *g, int k, int errnum)
{
	int n = rdzv_ctrl_pollfds(g->rdzv, g->pfds, g->world), failed;

	if (rdzv_failed_rank(g->rdzv) < 0 && n > 0 && poll(g->pfds, (nfds_t)n, GRACE_MS) > 0)
		rdzv_ctrl_check(g->rdzv, g->pfds, n);
	failed = rdzv_failed_rank(g->rdzv);
	if (failed < 0 || failed == k) {
		rdzv_ctrl_report(g->rdzv, k);
		return llm_fail(LLM_EIO, "%s: lost rank %d (%s neighbour): %s", g->op, k,
				k == g->left ? "left" : "right",
				errnum ? strerror(errnum) : "connection closed");
	}
	return llm_fail(LLM_EIO, "%s: rank %d failed or left the job (then rank %d closed)", g->op,
			failed, k);
}

static llm_err gone_fail(struct ring *g, int failed)
{
	return llm_fail(LLM_EIO, "%s: rank %d failed or left the job (see that rank's log)", g->op,
			failed);
}

static llm_err timeout_fail(struct ring *g, const struct xfer *x)
{
	if (x->got < x->recv_len)
		return llm_fail(LLM_ETIMEDOUT,
				"%s: no data from rank %d (left neighbour) within %g s (%zu of %zu "
				"bytes of this step arrived)",
				g->op, g->left, g->op_timeout_s, x->got, x->recv_len);
	return llm_fail(LLM_ETIMEDOUT, "%s: rank %d (right neighbour) took no data within %g s",
			g->op, g->right, g->op_timeout_s);
}

/* --- the transfer loop ------------------------------------------------------------------ */

static llm_err do_send(struct ring *g, struct xfer *x)
{
	size_t limit = x->forward ? x->got : x->send_len;
	ssize_t n = send(g->sfd, x->send + x->sent, limit - x->sent, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n >= 0) {
		x->sent += (size_t)n;
		return LLM_OK;
	}
	if (errno == EAGAIN || errno == EINTR)
		return LLM_OK;
	return peer_fail(g, g->right, errno);
}

/* Adds the floats waiting in scratch into place. */
static void reduce_slice(struct ring *g, struct xfer *x)
{
	const float *s = (const float *)(void *)g->scratch;
	float *dst = x->reduce + (x->got - x->fill) / sizeof(float);
	size_t n = x->fill / sizeof(float);

	for (size_t i = 0; i < n; i++)
		dst[i] += s[i];
	x->fill = 0;
}

static llm_err do_recv(struct ring *g, struct xfer *x)
{
	size_t want = x->recv_len - x->got;
	unsigned char *to;
	ssize_t n;

	if (x->reduce) {
		want = want < SLICE_BYTES - x->fill ? want : SLICE_BYTES - x->fill;
		to = g->scratch + x->fill;
	} else {
		to = x->recv + x->got;
	}
	n = recv(g->rfd, to, want, MSG_DONTWAIT);
	if (n == 0)
		return peer_fail(g, g->left, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? LLM_OK : peer_fail(g, g->left, errno);
	x->got += (size_t)n;
	if (x->reduce) {
		x->fill += (size_t)n;
		if (x->fill == SLICE_BYTES || x->got == x->recv_len)
			reduce_slice(g, x);
	}
	return LLM_OK;
}

/* Runs x to completion before deadline, watching the control channel. */
static llm_err ring_xfer(struct ring *g, struct xfer *x, double deadline)
{
	llm_err err = LLM_OK;

	while (err == LLM_OK && (x->sent < x->send_len || x->got < x->recv_len)) {
		int n = 0, is = -1, ir = -1, nctrl, rc;

		if (x->sent < x->send_len && (!x->forward || x->sent < x->got)) {
			is = n;
			g->pfds[n++] = (struct pollfd){.fd = g->sfd, .events = POLLOUT};
		}
		if (x->got < x->recv_len) {
			ir = n;
			g->pfds[n++] = (struct pollfd){.fd = g->rfd, .events = POLLIN};
		}
		nctrl = rdzv_ctrl_pollfds(g->rdzv, g->pfds + n, g->world);
		rc = poll(g->pfds, (nfds_t)(n + nctrl), net_ms_left(deadline));
		if (rc < 0 && errno != EINTR)
			return llm_fail(LLM_EIO, "%s: poll: %s", g->op, strerror(errno));
		if (rc == 0)
			return timeout_fail(g, x);
		if (rc > 0 && rdzv_ctrl_check(g->rdzv, g->pfds + n, nctrl) >= 0)
			return gone_fail(g, rdzv_failed_rank(g->rdzv));
		if (is >= 0 && g->pfds[is].revents)
			err = do_send(g, x);
		if (err == LLM_OK && ir >= 0 && g->pfds[ir].revents)
			err = do_recv(g, x);
	}
	return err;
}

/* --- operations ------------------------------------------------------------------------- */

/* Starts an operation: sets its name and deadline, fails at once if a rank is
 * known to have failed, and checks the left neighbour called the same. */
static llm_err op_begin(struct ring *g, enum ring_op op, size_t n, int root, double *deadline)
{
	unsigned char mine[OP_HDR_LEN], theirs[OP_HDR_LEN] = {0};
	struct xfer x = {
		.send = mine, .send_len = OP_HDR_LEN, .recv = theirs, .recv_len = OP_HDR_LEN};
	llm_err err;

	g->op = op_names[op];
	*deadline = net_now() + g->op_timeout_s;
	if (rdzv_failed_rank(g->rdzv) >= 0)
		return gone_fail(g, rdzv_failed_rank(g->rdzv));
	net_put_u32(mine, (uint32_t)op);
	net_put_u32(mine + 4, (uint32_t)root);
	net_put_u64(mine + 8, (uint64_t)n);
	net_put_u64(mine + 16, g->seq++);
	err = ring_xfer(g, &x, *deadline);
	if (err != LLM_OK || memcmp(mine, theirs, OP_HDR_LEN) == 0)
		return err;
	rdzv_ctrl_report(g->rdzv, g->rank);
	return llm_fail(LLM_EINVAL,
			"%s: rank %d (left neighbour) called %s(size %" PRIu64 ", root %" PRIu32
			") as call #%" PRIu64 " while this rank called %s(size %zu, root %d) as "
			"call #%" PRIu64 ": every rank must make the same calls",
			g->op, g->left, op_names[net_get_u32(theirs) % N_OPS],
			net_get_u64(theirs + 8), net_get_u32(theirs + 4), net_get_u64(theirs + 16),
			g->op, n, root, g->seq - 1);
}

/* world-1 steps; afterwards this rank's shard holds the sum of all ranks'. */
static llm_err ring_reduce_scatter(struct ring *g, float *buf, size_t n, double deadline)
{
	llm_err err = LLM_OK;

	for (int s = 0; err == LLM_OK && s < g->world - 1; s++) {
		size_t so, sn, ro, rn;
		struct xfer x = {0};

		llm_coll_shard(n, g->world, mod(g->rank - s - 1, g->world), &so, &sn);
		llm_coll_shard(n, g->world, mod(g->rank - s - 2, g->world), &ro, &rn);
		x.send = (const unsigned char *)(buf + so);
		x.send_len = sn * sizeof(float);
		x.reduce = buf + ro;
		x.recv_len = rn * sizeof(float);
		err = ring_xfer(g, &x, deadline);
	}
	return err;
}

/* world-1 steps; afterwards every shard is everywhere. */
static llm_err ring_all_gather(struct ring *g, float *buf, size_t n, double deadline)
{
	llm_err err = LLM_OK;

	for (int s = 0; err == LLM_OK && s < g->world - 1; s++) {
		size_t so, sn, ro, rn;
		struct xfer x = {0};

		llm_coll_shard(n, g->world, mod(g->rank - s, g->world), &so, &sn);
		llm_coll_shard(n, g->world, mod(g->rank - s - 1, g->world), &ro, &rn);
		x.send = (const unsigned char *)(buf + so);
		x.send_len = sn * sizeof(float);
		x.recv = (unsigned char *)(buf + ro);
		x.recv_len = rn * sizeof(float);
		err = ring_xfer(g, &x, deadline);
	}
	return err;
}

static llm_err cpu_all_reduce_sum(void *state, float *buf, size_t n)
{
	struct ring *g = state;
	double deadline;
	llm_err err = op_begin(g, OP_ALL_REDUCE, n, 0, &deadline);

	if (err == LLM_OK)
		err = ring_reduce_scatter(g, buf, n, deadline);
	if (err == LLM_OK)
		err = ring_all_gather(g, buf, n, deadline);
	return err;
}

static llm_err cpu_reduce_scatter_sum(void *state, float *buf, size_t n)
{
	struct ring *g = state;
	double deadline;
	llm_err err = op_begin(g, OP_REDUCE_SCATTER, n, 0, &deadline);

	return err == LLM_OK ? ring_reduce_scatter(g, buf, n, deadline) : err;
}

static llm_err cpu_all_gather(void *state, float *buf, size_t n)
{
	struct ring *g = state;
	double deadline;
	llm_err err = op_begin(g, OP_ALL_GATHER, n, 0, &deadline);

	return err == LLM_OK ? ring_all_gather(g, buf, n, deadline) : err;
}

/* A pipeline from root around the ring: each rank forwards bytes as they
 * arrive, except the root (sends only) and the root's left (receives only). */
static llm_err cpu_broadcast(void *state, void *buf, size_t nbytes, int root)
{
	struct ring *g = state;
	struct xfer x = {.send = buf, .recv = buf};
	double deadline;
	llm_err err = op_begin(g, OP_BROADCAST, nbytes, root, &deadline);

	if (err != LLM_OK)
		return err;
	if (g->rank != mod(root - 1, g->world))
		x.send_len = nbytes;
	if (g->rank != root)
		x.recv_len = nbytes;
	x.forward = g->rank != root;
	return ring_xfer(g, &x, deadline);
}

/* An all-reduce of one float: rank 0 cannot finish the reduce-scatter before
 * every rank entered, and nobody finishes the all-gather before rank 0 has. */
static llm_err cpu_barrier(void *state)
{
	struct ring *g = state;
	float one = 0.0f;
	double deadline;
	llm_err err = op_begin(g, OP_BARRIER, 1, 0, &deadline);

	if (err == LLM_OK)
		err = ring_reduce_scatter(g, &one, 1, deadline);
	if (err == LLM_OK)
		err = ring_all_gather(g, &one, 1, deadline);
	return err;
}

/* --- setup ------------------------------------------------------------------------------ */

static void cpu_destroy(void *state)
{
	struct ring *g = state;

	if (!g)
		return;
	if (g->lfd >= 0)
		close(g->lfd);
	if (g->sfd >= 0)
		close(g->sfd);
	if (g->rfd >= 0)
		close(g->rfd);
	free(g->scratch);
	free(g->pfds);
	free(g);
}

static llm_err cpu_prepare(void **state, const struct llm_coll_config *cfg, int *data_port,
			   void *blob, size_t *blob_len)
{
	struct ring *g = calloc(1, sizeof(*g));
	llm_err err;

	(void)blob;
	*blob_len = 0;
	*state = g;
	if (!g)
		return llm_fail(LLM_ENOMEM, "cpu collectives: out of memory");
	g->lfd = g->sfd = g->rfd = -1;
	g->rank = cfg->rank;
	g->world = cfg->world_size;
	g->left = mod(g->rank - 1, g->world);
	g->right = mod(g->rank + 1, g->world);
	g->op_timeout_s = cfg->op_timeout_s > 0 ? cfg->op_timeout_s : LLM_COLL_DEFAULT_OP_TIMEOUT_S;
	g->op = "connect";
	g->scratch = malloc(SLICE_BYTES);
	g->pfds = calloc((size_t)g->world + 2, sizeof(*g->pfds));
	if (!g->scratch || !g->pfds)
		return llm_fail(LLM_ENOMEM, "cpu collectives: out of memory");
	err = net_listen(0, 8, &g->lfd, data_port);
	return err == LLM_OK ? LLM_OK : llm_wrap(err, "cpu collectives: data-plane listener");
}

/* Connects to the right neighbour and introduces this rank. */
static llm_err connect_right(struct ring *g, double deadline)
{
	unsigned char hello[DATA_HELLO_LEN];
	const char *host = rdzv_peer_host(g->rdzv, g->right);
	int port = rdzv_peer_port(g->rdzv, g->right);
	llm_err err = net_connect_retry(host, port, deadline, &g->sfd);

	if (err != LLM_OK)
		return llm_wrap(err, "cpu collectives: rank %d cannot connect to rank %d at %s:%d",
				g->rank, g->right, host, port);
	net_put_u32(hello, DATA_MAGIC);
	net_put_u32(hello + 4, (uint32_t)g->rank);
	net_put_u64(hello + 8, rdzv_session(g->rdzv));
	err = net_send_all(g->sfd, hello, sizeof(hello), deadline);
	return err == LLM_OK ? LLM_OK
			     : llm_wrap(err, "cpu collectives: hello to rank %d", g->right);
}

/* Accepts connections until the left neighbour of this session introduces
 * itself; others (stale jobs, scanners) are closed. */
static llm_err accept_left(struct ring *g, double deadline)
{
	while (g->rfd < 0) {
		unsigned char h[DATA_HELLO_LEN];
		double until = net_now() + HELLO_TIMEOUT_S;
		int fd;

		if (net_accept(g->lfd, deadline, &fd) != LLM_OK)
			return llm_fail(LLM_ETIMEDOUT,
					"cpu collectives: rank %d (left neighbour) did not connect "
					"to rank %d",
					g->left, g->rank);
		if (net_recv_all(fd, h, sizeof(h), until < deadline ? until : deadline) == LLM_OK &&
		    net_get_u32(h) == DATA_MAGIC && (int)net_get_u32(h + 4) == g->left &&
		    net_get_u64(h + 8) == rdzv_session(g->rdzv))
			g->rfd = fd;
		else
			close(fd);
	}
	close(g->lfd);
	g->lfd = -1;
	return LLM_OK;
}

static llm_err cpu_connect(void *state, struct rdzv *r, double deadline)
{
	struct ring *g = state;
	llm_err err;

	g->rdzv = r;
	err = connect_right(g, deadline);
	return err == LLM_OK ? accept_left(g, deadline) : err;
}

const struct coll_backend coll_cpu_ring = {
	.name = "cpu",
	.single_rank = false,
	.prepare = cpu_prepare,
	.connect = cpu_connect,
	.all_reduce_sum = cpu_all_reduce_sum,
	.all_reduce_mean = NULL,
	.reduce_scatter_sum = cpu_reduce_scatter_sum,
	.all_gather = cpu_all_gather,
	.broadcast = cpu_broadcast,
	.barrier = cpu_barrier,
	.destroy = cpu_destroy,
};
