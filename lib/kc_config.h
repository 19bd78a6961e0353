/* Where and how to reach a Kubernetes API server: kubeconfig files (as kubectl
 * reads them) and in-cluster service-account configuration, plus the
 * credentials that go with them, refreshed as they rotate.
 *
 * Loading resolves one context into a server URL, TLS trust, and a source of
 * credentials: a static or file-backed bearer token, a client certificate and
 * key (inline data or files), or an exec credential plugin speaking
 * client.authentication.k8s.io/v1 (or v1beta1) ExecCredential. File-backed
 * material (token files, certificate and key files) is re-read when older
 * than the refresh interval (60 s by default), so rotated service-account
 * tokens are picked up; exec credentials are cached until their
 * expirationTimestamp or until kc_config_invalidate().
 *
 * A kc_config is thread-safe: kc_config_creds() may be called from any thread.
 * Design limit: one context per kc_config; auth-provider plugins (removed in
 * kubectl 1.26) are rejected with a message pointing to exec plugins. */
#ifndef KC_CONFIG_H
#define KC_CONFIG_H

#include <stdbool.h>

#include "llm_err.h"

typedef struct kc_config kc_config;

/* Options for kc_config_load(); zero-initialise and set what you need. */
struct kc_config_opts {
	const char *kubeconfig;	  /* explicit file (--kubeconfig); NULL: see below */
	const char *context;	  /* context name; NULL: current-context */
	int refresh_seconds;	  /* re-read file-backed credentials; 0: 60 */
	int exec_timeout_seconds; /* exec plugin deadline; 0: 30 */
};

/* Loads configuration the way kubectl and client-go do:
 *  1. opts->kubeconfig when set (the file must exist);
 *  2. otherwise every path in $KUBECONFIG (':'-separated, empty entries and
 *     missing files skipped), merged so that the first file to define a
 *     cluster, user, context or current-context wins;
 *  3. otherwise ~/.kube/config if it exists;
 *  4. otherwise in-cluster configuration (kc_config_in_cluster()).
 * Relative file paths inside a kubeconfig are relative to that file's
 * directory. Errors name the file and, for YAML problems, line and column;
 * a missing context, cluster or user names what was asked for. */
llm_err kc_config_load(const struct kc_config_opts *opts, kc_config **out);

/* In-cluster configuration: server https://$KUBERNETES_SERVICE_HOST:
 * $KUBERNETES_SERVICE_PORT, CA and token from sa_dir (NULL means
 * /var/run/secrets/kubernetes.io/serviceaccount: files ca.crt, token,
 * namespace). The token file is re-read every refresh_seconds (0: 60).
 * LLM_ENOTFOUND when the environment variables or files are missing. */
llm_err kc_config_in_cluster(const char *sa_dir, int refresh_seconds, kc_config **out);

/* Frees the configuration; NULL is a no-op. */
void kc_config_destroy(kc_config *c);

/* Base URL of the API server, without a trailing slash ("https://h:6443"). */
const char *kc_config_server(const kc_config *c);

/* The context's namespace, the service account's namespace in-cluster, or
 * "default". */
const char *kc_config_namespace(const kc_config *c);

/* PEM bundle of trusted CAs (certificate-authority-data, or the contents of
 * certificate-authority), or NULL to use the system trust store. */
const char *kc_config_ca_pem(const kc_config *c);

/* TLS server name to verify instead of the URL's host (tls-server-name), or
 * NULL. */
const char *kc_config_tls_server_name(const kc_config *c);

/* True when insecure-skip-tls-verify is set for the cluster. */
bool kc_config_insecure(const kc_config *c);

/* Credentials for one request. Every field may be NULL; all are owned by the
 * struct and released by kc_creds_free(). */
struct kc_creds {
	char *token;	/* bearer token */
	char *cert_pem; /* client certificate chain, PEM */
	char *key_pem;	/* client private key, PEM */
};

/* Fills *out with the current credentials, refreshing file-backed ones older
 * than the refresh interval and running the exec plugin when its credential
 * is missing or expired. Failures of the plugin (non-zero exit, timeout,
 * malformed or wrong-kind output) are reported with its stderr excerpt. */
llm_err kc_config_creds(kc_config *c, struct kc_creds *out);

/* Releases what kc_config_creds() returned; safe on a zeroed struct. */
void kc_creds_free(struct kc_creds *creds);

/* Forgets cached credentials so the next kc_config_creds() re-reads files
 * and re-runs the exec plugin: call after the server answers 401. */
void kc_config_invalidate(kc_config *c);

#endif
