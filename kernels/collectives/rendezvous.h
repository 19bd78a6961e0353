/* Rendezvous of the ranks of one job, and the control channel it leaves open
 * (internal to kernels/collectives/).
 *
 * Rank 0 listens on the master port on every interface; every other rank
 * connects (retrying while rank 0 is not up yet) and sends a hello with its
 * rank, world size, job identifier and data-plane port. Rank 0 checks them,
 * then sends each rank the table of every rank's data-plane address and
 * port and an opaque blob of backend bootstrap data (the NCCL unique id, for
 * instance). The wire format is in docs/internals/collectives.md.
 *
 * The connections stay open as a control channel: rank 0 sees at once when
 * any rank's process dies (its connection closes without a goodbye) and
 * tells every other rank, so a failure anywhere in the job names the rank
 * that failed everywhere. Backends poll the channel during each operation. */
#ifndef LLMOPS_COLL_RENDEZVOUS_H
#define LLMOPS_COLL_RENDEZVOUS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "llm_err.h"

struct rdzv_config {
	int rank, world; /* world >= 1 (1: rank 0 listens and returns at once) */
	const char *master_addr;
	int master_port;
	const char *job_id;  /* at most LLM_COLL_MAX_JOB_ID bytes */
	const char *backend; /* the collectives backend's name, every rank's the same */
	double timeout_s;    /* for the messages, as given by the user */
	double deadline;     /* absolute, net_now() seconds */
	int data_port;	     /* this rank's data-plane listening port, 0 if none */
	const void *blob;    /* rank 0 only: bootstrap data for every rank */
	size_t blob_len;     /* at most LLM_COLL_MAX_BLOB */
};

struct rdzv;

/* Runs the rendezvous for cfg->rank; on success *out holds the peer table,
 * the blob and the control channel. Errors as llm_coll_new(), with a
 * "rendezvous: ..." detail. Free with rdzv_destroy(). */
llm_err rdzv_run(const struct rdzv_config *cfg, struct rdzv **out);

/* Sends a goodbye on the control channel (this rank closes on purpose),
 * closes it and frees r. NULL is a no-op. */
void rdzv_destroy(struct rdzv *r);

/* Rank k's data-plane address (numeric) and port, as the table gave them.
 * Rank 0's own entry is empty on rank 0. */
const char *rdzv_peer_host(const struct rdzv *r, int k);
int rdzv_peer_port(const struct rdzv *r, int k);

/* The bootstrap blob rank 0 sent (rank 0: its own copy); *len its size. */
const void *rdzv_blob(const struct rdzv *r, size_t *len);

/* A random identifier rank 0 chose for this rendezvous; the same on every
 * rank, so data-plane connections from another job can be told apart. */
uint64_t rdzv_session(const struct rdzv *r);

/* Writes up to max pollfd entries (POLLIN) for the open control sockets and
 * returns how many. At most the world size. */
int rdzv_ctrl_pollfds(const struct rdzv *r, struct pollfd *fds, int max);

/* Reads what arrived on the control sockets that poll() marked in fds[0..n)
 * and returns the rank known to have failed, or -1. On rank 0 a closed
 * connection without goodbye, or a report from a rank, marks that rank
 * failed and is relayed to every other rank. */
int rdzv_ctrl_check(struct rdzv *r, const struct pollfd *fds, int n);

/* Tells the job that rank k failed (seen as a closed or reset data
 * connection). Best effort, never blocks; the first failure sticks. */
void rdzv_ctrl_report(struct rdzv *r, int k);

/* The rank known to have failed, or -1. */
int rdzv_failed_rank(const struct rdzv *r);

#endif
