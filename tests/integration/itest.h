/* What the integration tests share: connecting as the admin or the operator
 * identity, a namespace per run, and an assert that prints the library's
 * error detail. Header-only, since each test file is its own program;
 * include it after <cmocka.h>. */
#ifndef ITEST_H
#define ITEST_H

#include <jansson.h>
#include <stdio.h>

#include "kc_client.h"
#include "kc_config.h"

/* Asserts that an llm_err expression equals want, showing the detail. */
#define assert_rc(rc, want)                                                               \
	do {                                                                              \
		llm_err rc_ = (rc);                                                       \
		if (rc_ != (want))                                                        \
			fail_msg("%s: got %s, want %s: %s", #rc, llm_errname(rc_), #want, \
				 llm_last_error());                                       \
	} while (0)

/* Connects with kubeconfig (NULL: $KUBECONFIG, the admin) and no client-side
 * rate limit; 0 on success, -1 after printing why. */
static inline int itest_connect(const char *kubeconfig, kc_config **cfg, kc_http **h)
{
	struct kc_config_opts co = {.kubeconfig = kubeconfig};
	struct kc_http_opts ho = {.qps = -1};

	*cfg = NULL;
	*h = NULL;
	if (kc_config_load(&co, cfg) || kc_http_new(*cfg, &ho, h)) {
		fprintf(stderr, "cannot connect: %s (run the tests through e2e/run.sh)\n",
			llm_last_error());
		return -1;
	}
	return 0;
}

/* Creates namespace ns (an existing one is fine). */
static inline void itest_namespace_create(kc_http *h, const char *ns)
{
	json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
				"metadata", "name", ns),
	       *out = NULL;

	kc_create(h, &KC_NAMESPACES, NULL, obj, &out);
	json_decref(out);
	json_decref(obj);
}

/* Deletes namespace ns and everything in it (in the background). */
static inline void itest_namespace_delete(kc_http *h, const char *ns)
{
	json_t *out = NULL;

	if (h)
		kc_delete(h, &KC_NAMESPACES, NULL, ns, NULL, &out);
	json_decref(out);
}

#endif
