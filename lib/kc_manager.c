/* The controller manager (see kc_manager.h). kc_manager_run() is a small
 * state machine on the calling thread, woken by a self-pipe (stop requests)
 * or every 100 ms: start workers once caches have synced and leadership is
 * held, stop on request or when leadership is lost. Leader election and the
 * HTTP endpoints run on threads of their own. */
#include "kc_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_leader.h"
#include "llm_httpd.h"
#include "llm_log.h"

#define MAX_CONTROLLERS 16
#define MAX_INFORMERS	32

struct shared_informer {
	struct kc_gvr gvr;
	kc_informer *inf;
};

struct kc_manager {
	kc_http *h;
	struct kc_manager_opts o;
	char *ns, *leader_ns, *identity;
	llm_metrics *metrics;
	struct kc_controller_metrics cm;
	llm_gauge *leader_status;
	kc_controller *ctrls[MAX_CONTROLLERS];
	int nctrls;
	struct shared_informer infs[MAX_INFORMERS];
	int ninfs;
	llm_httpd *httpd;
	int listener[2]; /* metrics, probes */
	kc_leader *leader;
	int stop_pipe[2];
	atomic_bool stop;
	atomic_bool running;
};

/* --- endpoints ------------------------------------------------------------------ */

static bool all_synced(kc_manager *m)
{
	for (int i = 0; i < m->ninfs; i++)
		if (!kc_informer_has_synced(m->infs[i].inf))
			return false;
	return true;
}

static llm_err serve_metrics(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return llm_metrics_render(((kc_manager *)data)->metrics, &res->body);
}

static llm_err serve_healthz(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	(void)req;
	(void)data;
	return llm_buf_puts(&res->body, "ok");
}

/* Ready once every informer has synced, as controller-runtime's cache
 * readiness check. */
static llm_err serve_readyz(const llm_httpd_request *req, llm_httpd_response *res, void *data)
{
	kc_manager *m = data;

	(void)req;
	if (all_synced(m))
		return llm_buf_puts(&res->body, "ok");
	res->status = 503;
	return llm_buf_puts(&res->body, "informers have not synced yet");
}

static llm_err start_endpoints(kc_manager *m)
{
	llm_err rc;

	m->httpd = llm_httpd_new();
	if (!m->httpd)
		return llm_fail(LLM_ENOMEM, "manager: cannot create the HTTP server");
	rc = llm_httpd_listen(m->httpd, m->o.metrics_addr, &m->listener[0]);
	if (!rc)
		rc = llm_httpd_listen(m->httpd, m->o.probe_addr, &m->listener[1]);
	if (!rc)
		rc = llm_httpd_route(m->httpd, m->listener[0], "/metrics", serve_metrics, m);
	if (!rc)
		rc = llm_httpd_route(m->httpd, m->listener[1], "/healthz", serve_healthz, m);
	if (!rc)
		rc = llm_httpd_route(m->httpd, m->listener[1], "/readyz", serve_readyz, m);
	if (!rc)
		rc = llm_httpd_start(m->httpd);
	return rc;
}

/* --- metrics ---------------------------------------------------------------------- */

static llm_err register_metrics(kc_manager *m)
{
	static const char *const ctrl_result[] = {"controller", "result", NULL};
	static const char *const ctrl[] = {"controller", NULL};
	static const char *const name[] = {"name", NULL};
	llm_metrics *r = m->metrics;
	llm_err rc = llm_metrics_register_process(r);

	if (!rc)
		rc = llm_metrics_counter(r, "controller_runtime_reconcile_total",
					 "Total number of reconciliations per controller",
					 ctrl_result, &m->cm.reconcile_total);
	if (!rc)
		rc = llm_metrics_counter(r, "controller_runtime_reconcile_errors_total",
					 "Total number of reconciliation errors per controller",
					 ctrl, &m->cm.reconcile_errors);
	if (!rc)
		rc = llm_metrics_histogram(r, "controller_runtime_reconcile_time_seconds",
					   "Length of time per reconciliation per controller", ctrl,
					   llm_metrics_reconcile_buckets,
					   LLM_METRICS_RECONCILE_BUCKETS_LEN,
					   &m->cm.reconcile_time);
	if (!rc)
		rc = llm_metrics_gauge(r, "workqueue_depth", "Current depth of workqueue", name,
				       &m->cm.depth);
	if (!rc)
		rc = llm_metrics_counter(r, "workqueue_adds_total",
					 "Total number of adds handled by workqueue", name,
					 &m->cm.adds);
	if (!rc)
		rc = llm_metrics_counter(r, "workqueue_retries_total",
					 "Total number of retries handled by workqueue", name,
					 &m->cm.retries);
	if (!rc)
		rc = llm_metrics_gauge(r, "leader_election_master_status",
				       "Gauge of if the reporting system is master of the relevant "
				       "lease, 0 indicates backup, 1 indicates master.",
				       name, &m->leader_status);
	return rc;
}

static void set_leader_gauge(kc_manager *m, bool leading)
{
	if (m->o.leader_elect)
		llm_gauge_set(m->leader_status, (const char *[]){m->o.leader_name},
			      leading ? 1 : 0);
}

/* --- setup ------------------------------------------------------------------------- */

static void apply_defaults(struct kc_manager_opts *o)
{
	o->metrics_addr = o->metrics_addr ? o->metrics_addr : ":8080";
	o->probe_addr = o->probe_addr ? o->probe_addr : ":8081";
	o->leader_name = o->leader_name && o->leader_name[0] ? o->leader_name : "llmops-operator";
	o->workers = o->workers > 0 ? o->workers : 2;
	o->shutdown_grace_ms = o->shutdown_grace_ms > 0 ? o->shutdown_grace_ms : 30000;
	o->lease_ms = o->lease_ms > 0 ? o->lease_ms : 15000;
	o->renew_ms = o->renew_ms > 0 ? o->renew_ms : 10000;
	o->retry_ms = o->retry_ms > 0 ? o->retry_ms : 2000;
}

/* <pod or host name>_<16 hex digits>, unique per process like client-go's
 * default; $POD_NAME (from the downward API) names the Pod even where the
 * host name is not the Pod's. */
static char *default_identity(void)
{
	char host[256] = "unknown", id[320];
	const char *pod = getenv("POD_NAME");
	unsigned char rnd[8] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (pod && pod[0])
		snprintf(host, sizeof(host), "%s", pod);
	else
		gethostname(host, sizeof(host) - 1);
	if (fd >= 0) {
		if (read(fd, rnd, sizeof(rnd)) < 0)
			memset(rnd, 0, sizeof(rnd));
		close(fd);
	}
	snprintf(id, sizeof(id), "%s_%02x%02x%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	return strdup(id);
}

static llm_err create_leader(kc_manager *m)
{
	struct kc_leader_opts lo = {.ns = m->leader_ns,
				    .name = m->o.leader_name,
				    .identity = m->identity,
				    .lease_ms = m->o.lease_ms,
				    .renew_ms = m->o.renew_ms,
				    .retry_ms = m->o.retry_ms};

	return kc_leader_new(m->h, &lo, &m->leader);
}

llm_err kc_manager_new(kc_http *h, const struct kc_manager_opts *opts, kc_manager **out)
{
	kc_manager *m = calloc(1, sizeof(*m));
	llm_err rc;

	*out = NULL;
	if (!m)
		return llm_fail(LLM_ENOMEM, "manager: out of memory");
	m->h = h;
	m->o = *opts;
	apply_defaults(&m->o);
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	m->ns = strdup(m->o.namespace ? m->o.namespace : "");
	m->leader_ns = strdup(m->o.leader_ns && m->o.leader_ns[0]
				      ? m->o.leader_ns
				      : kc_config_namespace(kc_http_config(h)));
	m->identity = m->o.identity ? strdup(m->o.identity) : default_identity();
	m->metrics = llm_metrics_new();
	if (!m->ns || !m->leader_ns || !m->identity || !m->metrics) {
		rc = llm_fail(LLM_ENOMEM, "manager: out of memory");
		goto fail;
	}
	if (pipe2(m->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = llm_fail(LLM_EIO, "manager: pipe: %s", strerror(errno));
		goto fail;
	}
	rc = register_metrics(m);
	if (!rc && m->o.leader_elect)
		rc = create_leader(m);
	if (rc)
		goto fail;
	*out = m;
	return LLM_OK;
fail:
	kc_manager_destroy(m);
	return rc;
}

llm_err kc_manager_informer(kc_manager *m, const struct kc_gvr *r, kc_informer **out)
{
	struct kc_informer_opts io = {
		.gvr = r, .namespace = m->ns, .resync_seconds = m->o.resync_seconds};
	struct shared_informer *s;
	llm_err rc;

	for (int i = 0; i < m->ninfs; i++) {
		s = &m->infs[i];
		if (strcmp(s->gvr.group, r->group) == 0 &&
		    strcmp(s->gvr.version, r->version) == 0 &&
		    strcmp(s->gvr.resource, r->resource) == 0) {
			*out = s->inf;
			return LLM_OK;
		}
	}
	if (m->ninfs == MAX_INFORMERS)
		return llm_fail(LLM_ETOOLARGE, "manager: at most %d informers", MAX_INFORMERS);
	s = &m->infs[m->ninfs];
	s->gvr = *r;
	rc = kc_informer_new(m->h, &io, &s->inf);
	if (rc)
		return rc;
	m->ninfs++;
	*out = s->inf;
	return LLM_OK;
}

llm_err kc_manager_add(kc_manager *m, const struct kc_controller_def *def)
{
	kc_controller *c;
	kc_informer *inf;
	llm_err rc;

	if (m->nctrls == MAX_CONTROLLERS)
		return llm_fail(LLM_ETOOLARGE, "manager: at most %d controllers", MAX_CONTROLLERS);
	rc = kc_controller_new(def, &m->cm, &c);
	if (rc)
		return rc;
	m->ctrls[m->nctrls++] = c;
	rc = kc_manager_informer(m, def->gvr, &inf);
	if (!rc)
		rc = kc_controller_watch_primary(c, inf);
	for (int i = 0; !rc && i < KC_CONTROLLER_MAX_OWNED && def->owns[i]; i++) {
		rc = kc_manager_informer(m, def->owns[i], &inf);
		if (!rc)
			rc = kc_controller_watch_owned(c, inf);
	}
	return rc;
}

/* --- running ------------------------------------------------------------------------- */

void kc_manager_request_stop(kc_manager *m)
{
	ssize_t n;

	atomic_store(&m->stop, true);
	n = write(m->stop_pipe[1], "x", 1);
	(void)n; /* a full pipe already holds a wake-up */
}

static llm_err start_workers(kc_manager *m)
{
	for (int i = 0; i < m->nctrls; i++) {
		const struct kc_controller_def *d = kc_controller_def(m->ctrls[i]);
		llm_err rc = kc_controller_start(m->ctrls[i],
						 d->workers > 0 ? d->workers : m->o.workers);

		if (rc)
			return rc;
	}
	llm_info("manager", "caches synced; %d controller(s) started", m->nctrls);
	return LLM_OK;
}

/* Waits on the stop pipe for up to ms; true when a stop was requested. */
static bool wait_stop(kc_manager *m, int ms)
{
	struct pollfd p = {.fd = m->stop_pipe[0], .events = POLLIN};
	char drain[16];

	if (poll(&p, 1, ms) > 0)
		while (read(m->stop_pipe[0], drain, sizeof(drain)) > 0)
			;
	return atomic_load(&m->stop);
}

/* The main loop; returns why it ended. */
static llm_err supervise(kc_manager *m)
{
	bool working = false, leading = false;

	while (!wait_stop(m, 100)) {
		bool lead_now = !m->leader || kc_leader_is_leader(m->leader);

		if (lead_now != leading) {
			leading = lead_now;
			set_leader_gauge(m, leading);
		}
		if (working && !leading)
			return llm_fail(LLM_ECANCELED, "leader election lost");
		if (!working && leading && all_synced(m)) {
			llm_err rc = start_workers(m);

			if (rc)
				return rc;
			working = true;
		}
	}
	return LLM_OK;
}

/* Grace period for in-flight reconciles. After losing leadership only the
 * time left before another replica may take the lease is allowed. */
static int grace_ms(kc_manager *m, llm_err why)
{
	int left = m->o.lease_ms - m->o.renew_ms;

	if (why == LLM_ECANCELED && left < m->o.shutdown_grace_ms)
		return left;
	return m->o.shutdown_grace_ms;
}

static llm_err shut_down(kc_manager *m, llm_err why)
{
	int grace = grace_ms(m, why);
	llm_err rc = LLM_OK;

	llm_info("manager", "shutting down (grace period %d ms)", grace);
	for (int i = 0; i < m->nctrls; i++)
		if (kc_controller_stop(m->ctrls[i], grace))
			rc = LLM_ETIMEDOUT;
	if (m->leader)
		kc_leader_stop(m->leader, why == LLM_OK);
	set_leader_gauge(m, false);
	for (int i = 0; i < m->ninfs; i++)
		kc_informer_stop(m->infs[i].inf);
	llm_httpd_destroy(m->httpd);
	m->httpd = NULL;
	return why ? why : rc;
}

llm_err kc_manager_run(kc_manager *m)
{
	llm_err rc;

	if (atomic_exchange(&m->running, true))
		return llm_fail(LLM_EINVAL, "manager: already running");
	rc = start_endpoints(m);
	for (int i = 0; !rc && i < m->ninfs; i++)
		rc = kc_informer_start(m->infs[i].inf);
	if (!rc && m->leader)
		rc = kc_leader_start(m->leader);
	if (!rc)
		rc = supervise(m);
	return shut_down(m, rc);
}

int kc_manager_port(kc_manager *m, int which)
{
	if (!m->httpd || which < 0 || which > 1)
		return 0;
	return llm_httpd_port(m->httpd, m->listener[which]);
}

llm_metrics *kc_manager_metrics(kc_manager *m)
{
	return m->metrics;
}

void kc_manager_destroy(kc_manager *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nctrls; i++)
		kc_controller_destroy(m->ctrls[i]);
	for (int i = 0; i < m->ninfs; i++)
		kc_informer_destroy(m->infs[i].inf);
	kc_leader_destroy(m->leader);
	llm_httpd_destroy(m->httpd);
	llm_metrics_destroy(m->metrics);
	if (m->stop_pipe[0] >= 0) {
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
	}
	free(m->ns);
	free(m->leader_ns);
	free(m->identity);
	free(m);
}
