/* llmops-agent: the node agent that runs one role (training, indexing,
 * search, evaluation, serving, routing, monitoring) for one resource, either
 * from the cluster (--resource Kind/namespace/name) or from a spec file (-f,
 * no cluster needed). This entry point owns the command line and dispatches
 * to the roles; a role not in this build exits with status 64, which the
 * operator reports on the resource as RoleUnavailable. */
#include <stdio.h>
#include <string.h>

#include "finetune.h"
#include "llm_log.h"
#include "llm_opts.h"
#include "llm_yaml.h"
#include "role.h"

#ifndef LLMOPS_VERSION
#define LLMOPS_VERSION "unknown"
#endif

/* sysexits.h EX_USAGE, also meaning "role unavailable" to the operator. */
#define EXIT_ROLE_UNAVAILABLE 64
#define SPEC_FILE_MAX	      (4u << 20)

struct agent_role {
	const char *name;
	const char *kind; /* the resource kind it serves */
	const char *summary;
	int (*run)(const struct agent_job *job); /* NULL: not in this build */
};

static const struct agent_role roles[] = {
	{"finetune", "FineTuneJob", "full or LoRA fine-tuning", finetune_run},
	{"index", "RagIndex", "build a vector index", NULL},
	{"search", "RagIndex", "serve vector search", NULL},
	{"eval", "EvalRun", "compute evaluation metrics", NULL},
	{"serve", "ModelEndpoint", "serve a model", NULL},
	{"route", "ModelEndpoint", "split traffic between variants", NULL},
	{"monitor", "Monitor", "watch an endpoint or index for drift", NULL},
};

#define NROLES (sizeof(roles) / sizeof(roles[0]))

static struct llm_opt global_opts[] = {
	{"version", 0, NULL, NULL, "print the version and exit", NULL},
	{"help", 'h', NULL, NULL, "print this help and exit", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static struct llm_opt role_opts[] = {
	{"resource", 0, "KIND/NS/NAME", NULL, "the resource to work for, read from the cluster",
	 NULL},
	{"file", 'f', "SPEC.yaml", NULL, "the resource, read from a file (no cluster needed)",
	 NULL},
	{"kubeconfig", 0, "FILE", NULL, "kubeconfig (default: $KUBECONFIG, in-cluster)", NULL},
	{"log-level", 0, "LEVEL", "info", "debug, info, warn or error", NULL},
	{"help", 'h', NULL, NULL, "print this role's help and exit", NULL},
	{NULL, 0, NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: llmops-agent <role> --resource KIND/NAMESPACE/NAME\n"
		     "       llmops-agent <role> -f SPEC.yaml\n\nRoles:\n");
	for (size_t i = 0; i < NROLES; i++)
		fprintf(out, "  %-10s %s (%s)%s\n", roles[i].name, roles[i].summary, roles[i].kind,
			roles[i].run ? "" : " [not in this version]");
	fprintf(out, "\nOptions:\n");
	llm_opts_usage(out, global_opts);
	fprintf(out, "\n'llmops-agent <role> --help' shows a role's options.\n");
}

static void role_usage(FILE *out, const struct agent_role *r)
{
	fprintf(out,
		"Usage: llmops-agent %s --resource %s/NAMESPACE/NAME\n"
		"       llmops-agent %s -f SPEC.yaml\n\nRole %s: %s, for %s resources.%s\n\n"
		"Options:\n",
		r->name, r->kind, r->name, r->name, r->summary, r->kind,
		r->run ? "" : "\nThis role is not in this version of llmops-agent.");
	llm_opts_usage(out, role_opts);
}

static const struct agent_role *find_role(const char *name)
{
	for (size_t i = 0; i < NROLES; i++)
		if (strcmp(roles[i].name, name) == 0)
			return &roles[i];
	return NULL;
}

/* Splits "Kind/ns/name" into job (pointing into buf). */
static int parse_resource(const char *ref, char *buf, size_t size, struct agent_job *job)
{
	char *a, *b;

	snprintf(buf, size, "%s", ref);
	a = strchr(buf, '/');
	b = a ? strchr(a + 1, '/') : NULL;
	if (!a || !b || a == buf || b == a + 1 || !b[1] || strchr(b + 1, '/'))
		return -1;
	*a = *b = '\0';
	job->kind = buf;
	job->ns = a + 1;
	job->name = b + 1;
	return 0;
}

/* Reads the resource from a spec file; prints the problem on failure. */
static int load_file(const char *path, struct agent_job *job)
{
	json_t *docs;

	if (llm_yaml_load_file(path, SPEC_FILE_MAX, &docs)) {
		fprintf(stderr, "llmops-agent: %s\n", llm_last_error());
		return -1;
	}
	job->object = json_incref(json_array_get(docs, 0));
	job->docs = docs;
	if (!json_is_object(job->object)) {
		fprintf(stderr, "llmops-agent: %s: no resource in the file\n", path);
		return -1;
	}
	job->kind = json_string_value(json_object_get(job->object, "kind"));
	job->ns = json_string_value(
		json_object_get(json_object_get(job->object, "metadata"), "namespace"));
	job->name = json_string_value(
		json_object_get(json_object_get(job->object, "metadata"), "name"));
	if (!job->kind) {
		fprintf(stderr, "llmops-agent: %s: the resource has no kind\n", path);
		return -1;
	}
	return 0;
}

/* Parses the role's arguments into job; returns an exit status, or -1 to go on. */
static int parse_role_args(const struct agent_role *r, int argc, char **argv, char *buf,
			   size_t size, struct agent_job *job)
{
	const char *res, *file;
	llm_log_level level;
	int next;

	if (llm_opts_parse(role_opts, argc, argv, 1, &next)) {
		fprintf(stderr, "llmops-agent %s: %s\n", r->name, llm_last_error());
		return 2;
	}
	if (llm_opts_flag(role_opts, "help")) {
		role_usage(stdout, r);
		return 0;
	}
	res = llm_opts_get(role_opts, "resource");
	file = llm_opts_get(role_opts, "file");
	if (next < argc || !res == !file) {
		fprintf(stderr,
			"llmops-agent %s: give exactly one of --resource and -f (see --help)\n",
			r->name);
		return 2;
	}
	if (res && parse_resource(res, buf, size, job)) {
		fprintf(stderr, "llmops-agent %s: --resource '%s' is not KIND/NAMESPACE/NAME\n",
			r->name, res);
		return 2;
	}
	if (file && load_file(file, job))
		return 2;
	if (strcmp(job->kind, r->kind) != 0) {
		fprintf(stderr, "llmops-agent %s: works for %s, not %s\n", r->name, r->kind,
			job->kind);
		return 2;
	}
	job->kubeconfig = llm_opts_get(role_opts, "kubeconfig");
	if (llm_log_parse_level(llm_opts_get(role_opts, "log-level"), &level)) {
		fprintf(stderr, "llmops-agent %s: %s\n", r->name, llm_last_error());
		return 2;
	}
	llm_log_set_level(level);
	return -1;
}

static int run_role(const struct agent_role *r, int argc, char **argv)
{
	struct agent_job job = {0};
	char buf[768];
	int status = parse_role_args(r, argc, argv, buf, sizeof(buf), &job);

	if (status < 0 && !r->run) {
		fprintf(stderr, "llmops-agent: role '%s' is not available in version %s\n", r->name,
			LLMOPS_VERSION);
		status = EXIT_ROLE_UNAVAILABLE;
	} else if (status < 0) {
		status = r->run(&job);
	}
	json_decref(job.object);
	json_decref(job.docs);
	return status;
}

int main(int argc, char **argv)
{
	const struct agent_role *role;
	int next;

	if (llm_opts_parse(global_opts, argc, argv, 1, &next)) {
		fprintf(stderr, "llmops-agent: %s\n", llm_last_error());
		return 2;
	}
	if (llm_opts_flag(global_opts, "help")) {
		usage(stdout);
		return 0;
	}
	if (llm_opts_flag(global_opts, "version")) {
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
	return run_role(role, argc - next, argv + next);
}
