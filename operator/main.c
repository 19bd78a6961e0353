/* llmops-operator: the controller manager that reconciles the llmops custom
 * resources. This entry point owns the command line, logging, the
 * connection to the API server and the process lifecycle: it runs the
 * manager until SIGTERM or SIGINT (exit 0 after a graceful shutdown) or until
 * leadership is lost (exit 1, so Kubernetes restarts it as a candidate). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evalrun.h"
#include "finetunejob.h"
#include "kc_config.h"
#include "kc_events.h"
#include "kc_http.h"
#include "kc_manager.h"
#include "llm_log.h"
#include "llm_opts.h"
#include "modelendpoint.h"
#include "monitor.h"
#include "promptversion.h"
#include "ragindex.h"

#ifndef LLMOPS_VERSION
#define LLMOPS_VERSION "unknown"
#endif

static struct llm_opt options[] = {
	{"kubeconfig", 0, "FILE", NULL,
	 "kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)", NULL},
	{"namespace", 0, "NS", "", "watch only this namespace (default: all)", NULL},
	{"metrics-bind-address", 0, "ADDR", ":8080", "where /metrics listens; 0 disables", NULL},
	{"health-probe-bind-address", 0, "ADDR", ":8081",
	 "where /healthz and /readyz listen; 0 disables", NULL},
	{"leader-elect", 0, NULL, NULL, "elect a leader so only one replica reconciles", NULL},
	{"leader-election-namespace", 0, "NS", NULL,
	 "namespace of the leader Lease (default: the kubeconfig's namespace)", NULL},
	{"leader-election-id", 0, "NAME", "llmops-operator", "name of the leader Lease", NULL},
	{"leader-election-lease-duration", 0, "DURATION", "15s",
	 "how long a lease is valid without renewal", NULL},
	{"leader-election-renew-deadline", 0, "DURATION", "10s",
	 "how long the leader keeps trying to renew before giving up", NULL},
	{"leader-election-retry-period", 0, "DURATION", "2s", "time between election attempts",
	 NULL},
	{"workers", 0, "N", "2", "concurrent reconciles per controller", NULL},
	{"agent-image", 0, "IMAGE", "llmops/agent:" LLMOPS_VERSION,
	 "image of agent workloads unless a resource sets spec.image", NULL},
	{"agent-service-account", 0, "NAME", NULL,
	 "service account of agent Pods (default: the namespace's default)", NULL},
	{"agent-status-interval", 0, "DURATION", "5s",
	 "how often, at most, an agent writes its progress into a resource's status", NULL},
	{"kube-api-qps", 0, "QPS", "50", "client-side rate limit for API requests", NULL},
	{"kube-api-burst", 0, "N", "100", "client-side burst for API requests", NULL},
	{"shutdown-grace-period", 0, "DURATION", "30s",
	 "how long in-flight reconciles may take to finish on shutdown", NULL},
	{"log-level", 0, "LEVEL", "info", "debug, info, warn or error", NULL},
	{"log-format", 0, "FORMAT", "text", "text or json (one object per line)", NULL},
	{"version", 0, NULL, NULL, "print the version and exit", NULL},
	{"help", 'h', NULL, NULL, "print this help and exit", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static kc_manager *running_manager;

/* Every kind the operator reconciles: one reconciler each. */
static const struct op_reconciler *const reconcilers[] = {
	&promptversion_reconciler, &finetunejob_reconciler,   &ragindex_reconciler,
	&evalrun_reconciler,	   &modelendpoint_reconciler, &monitor_reconciler,
};

#define NRECONCILERS (sizeof(reconcilers) / sizeof(reconcilers[0]))

static void on_signal(int sig)
{
	(void)sig;
	if (running_manager)
		kc_manager_request_stop(running_manager);
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: llmops-operator [options]\n\n"
		     "Reconciles llmops.dev resources (PromptVersion, FineTuneJob, RagIndex,\n"
		     "EvalRun, ModelEndpoint, Monitor) in a Kubernetes cluster.\n\nOptions:\n");
	llm_opts_usage(out, options);
}

/* Applies --log-level and --log-format. */
static llm_err setup_logging(void)
{
	llm_log_level level;
	llm_log_format format;
	llm_err rc = llm_log_parse_level(llm_opts_get(options, "log-level"), &level);

	if (!rc)
		rc = llm_log_parse_format(llm_opts_get(options, "log-format"), &format);
	if (rc)
		return rc;
	llm_log_set_level(level);
	llm_log_set_format(format);
	return LLM_OK;
}

static llm_err duration_opt(const char *name, long *ms)
{
	char what[64];

	snprintf(what, sizeof(what), "--%s", name);
	return llm_parse_duration_ms(llm_opts_get(options, name), what, 1, 24L * 3600 * 1000, ms);
}

/* Reads the manager and transport settings from the options. */
static llm_err read_settings(struct kc_manager_opts *mo, struct kc_http_opts *ho)
{
	long workers, qps, burst, lease, renew, retry, grace, status;
	llm_err rc = llm_opts_long(options, "workers", 1, 256, &workers);

	if (!rc)
		rc = llm_opts_long(options, "kube-api-qps", 1, 100000, &qps);
	if (!rc)
		rc = llm_opts_long(options, "kube-api-burst", 1, 100000, &burst);
	if (!rc)
		rc = duration_opt("leader-election-lease-duration", &lease);
	if (!rc)
		rc = duration_opt("leader-election-renew-deadline", &renew);
	if (!rc)
		rc = duration_opt("leader-election-retry-period", &retry);
	if (!rc)
		rc = duration_opt("shutdown-grace-period", &grace);
	if (!rc) /* checked here; agents parse it again from their environment */
		rc = duration_opt("agent-status-interval", &status);
	if (rc)
		return rc;
	*ho = (struct kc_http_opts){.qps = (double)qps, .burst = (int)burst};
	*mo = (struct kc_manager_opts){
		.namespace = llm_opts_get(options, "namespace"),
		.metrics_addr = llm_opts_get(options, "metrics-bind-address"),
		.probe_addr = llm_opts_get(options, "health-probe-bind-address"),
		.leader_elect = llm_opts_flag(options, "leader-elect"),
		.leader_ns = llm_opts_get(options, "leader-election-namespace"),
		.leader_name = llm_opts_get(options, "leader-election-id"),
		.lease_ms = (int)lease,
		.renew_ms = (int)renew,
		.retry_ms = (int)retry,
		.workers = (int)workers,
		.shutdown_grace_ms = (int)grace,
	};
	return LLM_OK;
}

static void handle_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Adds a controller per reconciler, all sharing ctx. */
static llm_err add_controllers(kc_manager *m, struct op_ctx *ctx)
{
	for (size_t i = 0; i < NRECONCILERS; i++) {
		struct kc_controller_def def;
		llm_err rc;

		op_controller_def(reconcilers[i], ctx, &def);
		rc = kc_manager_add(m, &def);
		if (rc)
			return rc;
	}
	return LLM_OK;
}

static llm_err new_recorder(kc_http *h, kc_events **out)
{
	char host[256] = "llmops-operator";

	gethostname(host, sizeof(host) - 1);
	return kc_events_new(h, "llmops.dev/operator", host, out);
}

/* Connects, builds the manager and runs it; returns the exit status. */
static int run(const struct kc_manager_opts *mo, const struct kc_http_opts *ho)
{
	struct kc_config_opts co = {.kubeconfig = llm_opts_get(options, "kubeconfig")};
	struct op_ctx ctx = {
		.agent_image = llm_opts_get(options, "agent-image"),
		.agent_service_account = llm_opts_get(options, "agent-service-account"),
		.agent_status_interval = llm_opts_get(options, "agent-status-interval")};
	kc_config *cfg = NULL;
	kc_http *h = NULL;
	kc_manager *m = NULL;
	llm_err rc = kc_config_load(&co, &cfg);

	if (!rc)
		rc = kc_http_new(cfg, ho, &h);
	if (!rc)
		rc = kc_manager_new(h, mo, &m);
	if (!rc)
		rc = new_recorder(h, &ctx.events);
	ctx.h = h;
	ctx.manager = m;
	if (!rc)
		rc = add_controllers(m, &ctx);
	if (rc) {
		llm_error("operator", "cannot start: %s", llm_last_error());
		goto out;
	}
	/* handlers first: a SIGTERM right after the first log line must stop cleanly */
	running_manager = m;
	handle_signals();
	llm_info("operator", "llmops-operator %s starting; API server %s", LLMOPS_VERSION,
		 kc_config_server(cfg));
	rc = kc_manager_run(m);
	running_manager = NULL;
	if (rc)
		llm_error("operator", "stopped: %s", llm_last_error());
	else
		llm_info("operator", "stopped cleanly");
out:
	kc_manager_destroy(m);
	kc_events_destroy(ctx.events);
	kc_http_destroy(h);
	kc_config_destroy(cfg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct kc_manager_opts mo;
	struct kc_http_opts ho;
	int next;

	if (llm_opts_parse(options, argc, argv, 1, &next)) {
		fprintf(stderr, "llmops-operator: %s\n", llm_last_error());
		return 2;
	}
	if (llm_opts_flag(options, "help")) {
		usage(stdout);
		return 0;
	}
	if (llm_opts_flag(options, "version")) {
		printf("llmops-operator %s\n", LLMOPS_VERSION);
		return 0;
	}
	if (next < argc) {
		fprintf(stderr, "llmops-operator: unexpected argument '%s' (see --help)\n",
			argv[next]);
		return 2;
	}
	if (setup_logging() || read_settings(&mo, &ho)) {
		fprintf(stderr, "llmops-operator: %s\n", llm_last_error());
		return 2;
	}
	return run(&mo, &ho);
}
