/* llmops-agent: the node agent that runs one role (training, indexing,
 * search, evaluation, serving, routing, monitoring) for one resource, either
 * from the cluster (--resource kind/namespace/name) or from a spec file (-f).
 * This entry point owns the command line and dispatches to the roles. */
#include <stdio.h>
#include <string.h>

#include "llm_opts.h"

#ifndef LLMOPS_VERSION
#define LLMOPS_VERSION "unknown"
#endif

/* sysexits.h EX_USAGE: the operator reports this code as "role unavailable". */
#define EXIT_ROLE_UNAVAILABLE 64

struct agent_role {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* NULL: not in this build yet */
};

static const struct agent_role roles[] = {
	{"finetune", "full or LoRA fine-tuning for a FineTuneJob", NULL},
	{"index", "build a vector index for a RagIndex", NULL},
	{"search", "serve vector search for a RagIndex", NULL},
	{"eval", "compute metrics for an EvalRun", NULL},
	{"serve", "serve a model for a ModelEndpoint", NULL},
	{"route", "split traffic between ModelEndpoint variants", NULL},
	{"monitor", "watch an endpoint or index for a Monitor", NULL},
};

#define NROLES (sizeof(roles) / sizeof(roles[0]))

static struct llm_opt options[] = {
	{"version", 0, NULL, NULL, "print the version and exit", NULL},
	{"help", 'h', NULL, NULL, "print this help and exit", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: llmops-agent <role> --resource KIND/NAMESPACE/NAME\n"
		     "       llmops-agent <role> -f SPEC.yaml\n\nRoles:\n");
	for (size_t i = 0; i < NROLES; i++)
		fprintf(out, "  %-10s %s%s\n", roles[i].name, roles[i].summary,
			roles[i].run ? "" : " (not available in this version)");
	fprintf(out, "\nOptions:\n");
	llm_opts_usage(out, options);
}

static const struct agent_role *find_role(const char *name)
{
	for (size_t i = 0; i < NROLES; i++)
		if (strcmp(roles[i].name, name) == 0)
			return &roles[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct agent_role *role;
	int next;

	if (llm_opts_parse(options, argc, argv, 1, &next)) {
		fprintf(stderr, "llmops-agent: %s\n", llm_last_error());
		return 2;
	}
	if (llm_opts_flag(options, "help")) {
		usage(stdout);
		return 0;
	}
	if (llm_opts_flag(options, "version")) {
		printf("llmops-agent %s\n", LLMOPS_VERSION);
		return 0;
	}
	if (next >= argc) {
		usage(stderr);
		return 2;
	}
	role = find_role(argv[next]);
	if (!role) {
		fprintf(stderr, "llmops-agent: unknown role '%s' (see --help)\n", argv[next]);
		return EXIT_ROLE_UNAVAILABLE;
	}
	if (!role->run) {
		fprintf(stderr, "llmops-agent: role '%s' is not available in version %s\n",
			role->name, LLMOPS_VERSION);
		return EXIT_ROLE_UNAVAILABLE;
	}
	return role->run(argc - next, argv + next);
}
