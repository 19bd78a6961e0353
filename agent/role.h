/* What agent/main.c hands to a role: the resource it works for, read from
 * the cluster (--resource) or from a spec file (-f). */
#ifndef AGENT_ROLE_H
#define AGENT_ROLE_H

#include <jansson.h>

struct agent_job {
	const char *kind, *ns, *name; /* from --resource, or the file's metadata */
	json_t *object;		      /* from -f, else NULL (the role fetches it) */
	json_t *docs;		      /* from -f: every document of the file, else NULL */
	const char *kubeconfig;	      /* --kubeconfig, or NULL */
};

#endif
