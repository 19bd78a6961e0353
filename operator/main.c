/* llmops-operator: the controller manager that reconciles the llmops custom
 * resources. This entry point owns the command line, logging set-up and the
 * process lifecycle (runs until SIGTERM or SIGINT, then exits 0). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_log.h"
#include "llm_opts.h"

#ifndef LLMOPS_VERSION
#define LLMOPS_VERSION "unknown"
#endif

static struct llm_opt options[] = {
	{"log-level", 0, "LEVEL", "info", "debug, info, warn or error", NULL},
	{"log-format", 0, "FORMAT", "text", "text or json (one object per line)", NULL},
	{"version", 0, NULL, NULL, "print the version and exit", NULL},
	{"help", 'h', NULL, NULL, "print this help and exit", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: llmops-operator [options]\n\n"
		     "Reconciles llmops.dev resources (PromptVersion, FineTuneJob, "
		     "RagIndex,\nEvalRun, ModelEndpoint, Monitor) in a Kubernetes "
		     "cluster.\n\nOptions:\n");
	llm_opts_usage(out, options);
}

/* Applies --log-level and --log-format; prints the problem on failure. */
static int setup_logging(void)
{
	llm_log_level level;
	llm_log_format format;

	if (llm_log_parse_level(llm_opts_get(options, "log-level"), &level) ||
	    llm_log_parse_format(llm_opts_get(options, "log-format"), &format)) {
		fprintf(stderr, "llmops-operator: %s\n", llm_last_error());
		return -1;
	}
	llm_log_set_level(level);
	llm_log_set_format(format);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
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
	if (setup_logging())
		return 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	llm_info("operator",
		 "llmops-operator %s started; no controllers are "
		 "registered in this version yet",
		 LLMOPS_VERSION);
	while (!stop_signal)
		pause();
	llm_info("operator", "received signal %d, shutting down", (int)stop_signal);
	return 0;
}
