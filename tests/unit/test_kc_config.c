/* Unit tests for lib/kc_config: kubeconfig selection and merging, TLS and
 * credential sources, file rotation, exec plugins (success, caching,
 * failures, timeouts), in-cluster configuration and error messages. Every
 * fixture is written into a fresh mkdtemp() directory; nothing depends on a
 * cluster or on the user's ~/.kube. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kc_config.h"
#include "llm_log.h"

#define CA_PEM	 "-----BEGIN CERTIFICATE-----\nY2EtYnVuZGxl\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nY2xpZW50LWNlcnQ=\n-----END CERTIFICATE-----\n"
#define KEY_PEM	 "-----BEGIN PRIVATE KEY-----\nY2xpZW50LWtleQ==\n-----END PRIVATE KEY-----\n"
#define EXEC_V1	 "client.authentication.k8s.io/v1"

/* Two contexts, dev (current, namespace team-a) and prod (no namespace). */
static const char *two_contexts = "apiVersion: v1\n"
				  "kind: Config\n"
				  "current-context: dev\n"
				  "clusters:\n"
				  "- name: dev-cluster\n"
				  "  cluster:\n"
				  "    server: https://dev.example:6443/\n"
				  "- name: prod-cluster\n"
				  "  cluster:\n"
				  "    server: https://prod.example:6443\n"
				  "contexts:\n"
				  "- name: dev\n"
				  "  context:\n"
				  "    cluster: dev-cluster\n"
				  "    user: dev-user\n"
				  "    namespace: team-a\n"
				  "- name: prod\n"
				  "  context:\n"
				  "    cluster: prod-cluster\n"
				  "    user: prod-user\n"
				  "users:\n"
				  "- name: dev-user\n"
				  "  user:\n"
				  "    token: dev-token\n"
				  "- name: prod-user\n"
				  "  user:\n"
				  "    token: prod-token\n";

/* One context "x" with cluster "c" and user "alice"; the two %s are extra
 * cluster fields and the user's fields (each line indented by 4). */
static const char *one_context = "current-context: x\n"
				 "clusters:\n"
				 "- name: c\n"
				 "  cluster:\n"
				 "    server: https://k.example:6443\n"
				 "%s"
				 "contexts:\n"
				 "- name: x\n"
				 "  context: {cluster: c, user: alice}\n"
				 "users:\n"
				 "- name: alice\n"
				 "  user:\n"
				 "%s";

struct fx {
	char dir[64];
	char *home, *path; /* saved environment */
};

static char *saved_env(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
	free(value);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/kc_config_test.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->home = saved_env("HOME");
	f->path = saved_env("PATH");
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	restore_env("HOME", f->home);
	restore_env("PATH", f->path);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	llm_log_set_output(NULL);
	free(f);
	return 0;
}

/* f->dir/name into out (PATH_MAX bytes); returns out. */
static char *at(const struct fx *f, const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", f->dir, name);
	return out;
}

static void put_path(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Writes printf-style text to f->dir/name. */
__attribute__((format(printf, 3, 4))) static void put(const struct fx *f, const char *name,
						      const char *fmt, ...)
{
	char path[PATH_MAX];
	char *text;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	put_path(at(f, name, path), text);
	free(text);
}

static void mkdir_in(const struct fx *f, const char *name)
{
	char path[PATH_MAX];

	assert_int_equal(mkdir(at(f, name, path), 0755), 0);
}

static void b64(const char *s, char *out, size_t n)
{
	assert_true((strlen(s) + 2) / 3 * 4 < n);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)strlen(s));
}

static llm_err load(const char *path, const char *context, kc_config **c)
{
	struct kc_config_opts o = {.kubeconfig = path, .context = context};

	return kc_config_load(&o, c);
}

/* Loads f->dir/name with opts (kubeconfig set here) and checks success. */
static kc_config *load_ok(const struct fx *f, const char *name, struct kc_config_opts o)
{
	char path[PATH_MAX];
	kc_config *c = NULL;
	llm_err rc;

	o.kubeconfig = at(f, name, path);
	rc = kc_config_load(&o, &c);
	if (rc)
		fail_msg("kc_config_load: %s: %s", llm_errname(rc), llm_last_error());
	assert_non_null(c);
	return c;
}

/* The bearer token kc_config_creds() returns now, copied into out. */
static void token_now(kc_config *c, char *out, size_t n)
{
	struct kc_creds cr;
	llm_err rc = kc_config_creds(c, &cr);

	if (rc)
		fail_msg("kc_config_creds: %s: %s", llm_errname(rc), llm_last_error());
	assert_non_null(cr.token);
	snprintf(out, n, "%s", cr.token);
	kc_creds_free(&cr);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* Loading name from f->dir fails with code and a message containing needle. */
static void assert_load_fails(const struct fx *f, const char *name, llm_err code,
			      const char *needle)
{
	char path[PATH_MAX];
	kc_config *c = (kc_config *)1;
	llm_err rc = load(at(f, name, path), NULL, &c);

	if (rc != code)
		fail_msg("got %s (%s), expected %s", llm_errname(rc), llm_last_error(),
			 llm_errname(code));
	assert_null(c);
	assert_contains(llm_last_error(), path);
	assert_contains(llm_last_error(), needle);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- context selection ---------------------------------------------------- */

static void test_load_uses_current_context(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "kc.yaml", "%s", two_contexts);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_string_equal(kc_config_server(c), "https://dev.example:6443");
	assert_string_equal(kc_config_namespace(c), "team-a");
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "dev-token");
	kc_config_destroy(c);
}

static void test_explicit_context_overrides_current(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "kc.yaml", "%s", two_contexts);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){.context = "prod"});
	assert_string_equal(kc_config_server(c), "https://prod.example:6443");
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "prod-token");
	kc_config_destroy(c);
}

static void test_namespace_defaults_to_default(void **state)
{
	struct fx *f = *state;
	kc_config *c;

	put(f, "kc.yaml", "%s", two_contexts);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){.context = "prod"});
	assert_string_equal(kc_config_namespace(c), "default");
	kc_config_destroy(c);
}

static void test_plain_cluster_has_no_tls_overrides(void **state)
{
	struct fx *f = *state;
	kc_config *c;

	put(f, "kc.yaml", "%s", two_contexts);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_null(kc_config_ca_pem(c));
	assert_null(kc_config_tls_server_name(c));
	assert_false(kc_config_insecure(c));
	kc_config_destroy(c);
}

/* --- TLS and client certificates ------------------------------------------ */

static void test_files_are_relative_to_the_kubeconfig_dir(void **state)
{
	struct fx *f = *state;
	struct kc_creds cr;
	kc_config *c;

	mkdir_in(f, "sub");
	mkdir_in(f, "sub/pki");
	put(f, "sub/ca.crt", "%s", CA_PEM);
	put(f, "sub/pki/client.crt", "%s", CERT_PEM);
	put(f, "sub/pki/client.key", "%s", KEY_PEM);
	put(f, "sub/kc.yaml", one_context, "    certificate-authority: ca.crt\n",
	    "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n");
	c = load_ok(f, "sub/kc.yaml", (struct kc_config_opts){0});
	assert_string_equal(kc_config_ca_pem(c), CA_PEM);
	assert_int_equal(kc_config_creds(c, &cr), LLM_OK);
	assert_string_equal(cr.cert_pem, CERT_PEM);
	assert_string_equal(cr.key_pem, KEY_PEM);
	assert_null(cr.token);
	kc_creds_free(&cr);
	kc_config_destroy(c);
}

static void test_data_fields_are_base64_pem(void **state)
{
	struct fx *f = *state;
	char ca[256], cert[256], key[256], cluster[512], user[1024];
	struct kc_creds cr;
	kc_config *c;

	b64(CA_PEM, ca, sizeof ca);
	b64(CERT_PEM, cert, sizeof cert);
	b64(KEY_PEM, key, sizeof key);
	snprintf(cluster, sizeof cluster, "    certificate-authority-data: %s\n", ca);
	snprintf(user, sizeof user, "    client-certificate-data: %s\n    client-key-data: %s\n",
		 cert, key);
	put(f, "kc.yaml", one_context, cluster, user);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_string_equal(kc_config_ca_pem(c), CA_PEM);
	assert_int_equal(kc_config_creds(c, &cr), LLM_OK);
	assert_string_equal(cr.cert_pem, CERT_PEM);
	assert_string_equal(cr.key_pem, KEY_PEM);
	kc_creds_free(&cr);
	kc_config_destroy(c);
}

static void test_insecure_skip_tls_verify_is_reported(void **state)
{
	struct fx *f = *state;
	kc_config *c;

	put(f, "kc.yaml", one_context, "    insecure-skip-tls-verify: true\n", "    token: t\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_true(kc_config_insecure(c));
	kc_config_destroy(c);
}

static void test_tls_server_name_is_reported(void **state)
{
	struct fx *f = *state;
	kc_config *c;

	put(f, "kc.yaml", one_context, "    tls-server-name: api.internal\n", "    token: t\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_string_equal(kc_config_tls_server_name(c), "api.internal");
	kc_config_destroy(c);
}

/* --- $KUBECONFIG merging -------------------------------------------------- */

/* Three files in their own directories, listed in $KUBECONFIG with empty
 * entries and a missing file between them. */
static void write_three(const struct fx *f)
{
	char a[PATH_MAX], b[PATH_MAX], cc[PATH_MAX], missing[PATH_MAX], list[5 * PATH_MAX];

	mkdir_in(f, "a");
	mkdir_in(f, "b");
	mkdir_in(f, "c");
	put(f, "a/a.yaml",
	    "current-context: \"\"\n"
	    "clusters:\n"
	    "- {name: shared, cluster: {server: \"https://a.example\"}}\n"
	    "users:\n"
	    "- {name: u1, user: {token: token-from-a}}\n"
	    "contexts:\n"
	    "- {name: c1, context: {cluster: shared, user: u1, namespace: from-a}}\n");
	put(f, "b/b.yaml",
	    "current-context: c2\n"
	    "clusters:\n"
	    "- {name: shared, cluster: {server: \"https://b.example\"}}\n"
	    "- {name: only-b, cluster: {server: \"https://only-b.example\", "
	    "certificate-authority: ca.crt}}\n"
	    "users:\n"
	    "- {name: u1, user: {token: token-from-b}}\n"
	    "contexts:\n"
	    "- {name: c1, context: {cluster: shared, user: u1, namespace: from-b}}\n"
	    "- {name: c2, context: {cluster: only-b, user: u1}}\n");
	put(f, "b/ca.crt", "%s", CA_PEM);
	put(f, "c/c.yaml",
	    "current-context: c1\n"
	    "contexts:\n"
	    "- {name: c3, context: {cluster: shared, user: u1, namespace: from-c}}\n");
	snprintf(list, sizeof list, "::%s:%s:%s::%s", at(f, "missing.yaml", missing),
		 at(f, "a/a.yaml", a), at(f, "b/b.yaml", b), at(f, "c/c.yaml", cc));
	setenv("KUBECONFIG", list, 1);
}

static void test_kubeconfig_env_current_context_from_first_file_setting_it(void **state)
{
	struct fx *f = *state;
	struct kc_config_opts o = {0};
	kc_config *c = NULL;

	write_three(f);
	assert_int_equal(kc_config_load(&o, &c), LLM_OK);
	assert_string_equal(kc_config_server(c), "https://only-b.example");
	kc_config_destroy(c);
}

static void test_kubeconfig_env_first_definition_wins(void **state)
{
	struct fx *f = *state;
	struct kc_config_opts o = {.context = "c1"};
	kc_config *c = NULL;
	char tok[64];

	write_three(f);
	assert_int_equal(kc_config_load(&o, &c), LLM_OK);
	assert_string_equal(kc_config_server(c), "https://a.example");
	assert_string_equal(kc_config_namespace(c), "from-a");
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "token-from-a");
	kc_config_destroy(c);
}

static void test_kubeconfig_env_later_files_add_new_entries(void **state)
{
	struct fx *f = *state;
	struct kc_config_opts o = {.context = "c3"};
	kc_config *c = NULL;

	write_three(f);
	assert_int_equal(kc_config_load(&o, &c), LLM_OK);
	assert_string_equal(kc_config_namespace(c), "from-c");
	kc_config_destroy(c);
}

static void test_kubeconfig_env_paths_relative_to_defining_file(void **state)
{
	struct fx *f = *state;
	struct kc_config_opts o = {.context = "c2"};
	kc_config *c = NULL;

	write_three(f);
	assert_int_equal(kc_config_load(&o, &c), LLM_OK);
	assert_non_null(kc_config_ca_pem(c));
	assert_string_equal(kc_config_ca_pem(c), CA_PEM);
	kc_config_destroy(c);
}

static void test_home_kube_config_used_without_kubeconfig_env(void **state)
{
	struct fx *f = *state;
	kc_config *c = NULL;

	mkdir_in(f, ".kube");
	put(f, ".kube/config", "%s", two_contexts);
	setenv("HOME", f->dir, 1);
	assert_int_equal(kc_config_load(NULL, &c), LLM_OK);
	assert_string_equal(kc_config_server(c), "https://dev.example:6443");
	kc_config_destroy(c);
}

static void test_kubeconfig_env_without_files_does_not_fall_back_to_home(void **state)
{
	struct fx *f = *state;
	char missing[PATH_MAX];
	kc_config *c = NULL;

	mkdir_in(f, ".kube");
	put(f, ".kube/config", "%s", two_contexts);
	setenv("HOME", f->dir, 1);
	setenv("KUBECONFIG", at(f, "missing.yaml", missing), 1);
	assert_int_equal(kc_config_load(NULL, &c), LLM_ENOTFOUND);
	assert_null(c);
	assert_contains(llm_last_error(), "$KUBECONFIG");
	assert_contains(llm_last_error(), missing);
}

static void test_no_source_at_all_lists_what_was_tried(void **state)
{
	struct fx *f = *state;
	kc_config *c = (kc_config *)1;

	setenv("HOME", f->dir, 1);
	assert_int_equal(kc_config_load(NULL, &c), LLM_ENOTFOUND);
	assert_null(c);
	assert_string_equal(llm_last_error(),
			    "no kubeconfig: --kubeconfig not given, $KUBECONFIG unset, "
			    "~/.kube/config missing, and not running in a cluster "
			    "(KUBERNETES_SERVICE_HOST unset)");
}

static void test_explicit_kubeconfig_must_exist(void **state)
{
	struct fx *f = *state;

	assert_load_fails(f, "nope.yaml", LLM_ENOTFOUND, "No such file");
}

/* --- tokens and token files ----------------------------------------------- */

static void test_token_wins_over_token_file(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "tok", "from-file\n");
	put(f, "kc.yaml", one_context, "", "    token: inline\n    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "inline");
	kc_config_destroy(c);
}

static void test_token_file_unused_when_token_is_set(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "kc.yaml", one_context, "", "    token: inline\n    tokenFile: no-such-file\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "inline");
	kc_config_destroy(c);
}

static void test_token_file_is_read_and_trimmed(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "tok", "  from-file\n\n");
	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "from-file");
	kc_config_destroy(c);
}

static void test_token_file_rotation_picked_up_after_refresh(void **state)
{
	struct fx *f = *state;
	const struct timespec wait = {1, 100000000};
	kc_config *c;
	char tok[64];

	put(f, "tok", "first\n");
	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){.refresh_seconds = 1});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "first");
	put(f, "tok", "second\n");
	nanosleep(&wait, NULL);
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "second");
	kc_config_destroy(c);
}

static void test_token_file_not_reread_within_refresh_interval(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "tok", "first\n");
	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){.refresh_seconds = 60});
	put(f, "tok", "second\n");
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "first");
	kc_config_destroy(c);
}

static void test_invalidate_rereads_token_file(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	put(f, "tok", "first\n");
	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){.refresh_seconds = 60});
	put(f, "tok", "second\n");
	kc_config_invalidate(c);
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "second");
	kc_config_destroy(c);
}

static void test_deleted_token_file_keeps_old_token_with_warning(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], log[4096] = "", tok[64];
	FILE *out = tmpfile();
	kc_config *c;
	size_t n;

	assert_non_null(out);
	put(f, "tok", "first\n");
	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_int_equal(unlink(at(f, "tok", path)), 0);
	llm_log_set_output(out);
	kc_config_invalidate(c);
	token_now(c, tok, sizeof tok);
	llm_log_set_output(NULL);
	assert_string_equal(tok, "first");
	rewind(out);
	n = fread(log, 1, sizeof log - 1, out);
	log[n] = '\0';
	fclose(out);
	assert_contains(log, "WARN");
	assert_contains(log, path);
	kc_config_destroy(c);
}

static void test_relative_token_file_survives_chdir(void **state)
{
	struct fx *f = *state;
	char old[PATH_MAX], tok[64];
	kc_config *c = NULL;

	mkdir_in(f, "sub");
	put(f, "sub/tok", "first\n");
	put(f, "sub/kc.yaml", one_context, "", "    tokenFile: tok\n");
	assert_non_null(getcwd(old, sizeof old));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(load("sub/kc.yaml", NULL, &c), LLM_OK);
	assert_int_equal(chdir(old), 0);
	put(f, "sub/tok", "second\n");
	kc_config_invalidate(c);
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "second");
	kc_config_destroy(c);
}

static void test_missing_token_file_fails_at_load(void **state)
{
	struct fx *f = *state;
	char tok[PATH_MAX];

	put(f, "kc.yaml", one_context, "", "    tokenFile: tok\n");
	assert_load_fails(f, "kc.yaml", LLM_ENOTFOUND, at(f, "tok", tok));
	assert_contains(llm_last_error(), "user \"alice\": tokenFile");
}

/* --- exec plugins --------------------------------------------------------- */

/* Writes plugin.sh (the body after "#!/bin/sh") and kc.yaml running it with
 * args [arg-one], env COUNTER=<dir>/count and GREETING=hello. */
static void exec_setup(const struct fx *f, const char *body, const char *extra)
{
	char plugin[PATH_MAX], count[PATH_MAX], ca[256], cluster[512], *user;

	put(f, "plugin.sh", "#!/bin/sh\n%s", body);
	assert_int_equal(chmod(at(f, "plugin.sh", plugin), 0755), 0);
	b64(CA_PEM, ca, sizeof ca);
	snprintf(cluster, sizeof cluster,
		 "    certificate-authority-data: %s\n    tls-server-name: api.internal\n", ca);
	assert_true(
		asprintf(&user,
			 "    exec:\n"
			 "      apiVersion: " EXEC_V1 "\n"
			 "      command: %s\n"
			 "      args: [arg-one]\n"
			 "      installHint: 'install the plugin with: apt-get install kc-plugin'\n"
			 "      env:\n"
			 "      - {name: COUNTER, value: %s}\n"
			 "      - {name: GREETING, value: hello}\n"
			 "%s",
			 plugin, at(f, "count", count), extra) > 0);
	put(f, "kc.yaml", one_context, cluster, user);
	free(user);
}

/* Prints an ExecCredential with token "<GREETING>-<first arg>". */
static const char *token_plugin =
	"echo run >> \"$COUNTER\"\n"
	"printf '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\","
	"\"status\":{\"token\":\"%s-%s\"}}' \"$GREETING\" \"$1\"\n";

/* Echoes KUBERNETES_EXEC_INFO back as the token (quotes escaped). */
static const char *info_plugin =
	"info=$(printf '%s' \"$KUBERNETES_EXEC_INFO\" | sed 's/\"/\\\\\"/g')\n"
	"printf '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\","
	"\"status\":{\"token\":\"%s\"}}' \"$info\"\n";

static int runs(const struct fx *f)
{
	char path[PATH_MAX];
	FILE *fp = fopen(at(f, "count", path), "r");
	int n = 0, ch;

	if (!fp)
		return 0;
	while ((ch = fgetc(fp)) != EOF)
		n += ch == '\n';
	fclose(fp);
	return n;
}

/* Loads kc.yaml with the given exec timeout and expects kc_config_creds()
 * to fail with code; returns the message through msg. */
static void creds_fail(const struct fx *f, int timeout, llm_err code, char *msg, size_t n)
{
	kc_config *c =
		load_ok(f, "kc.yaml", (struct kc_config_opts){.exec_timeout_seconds = timeout});
	struct kc_creds cr;
	llm_err rc = kc_config_creds(c, &cr);

	snprintf(msg, n, "%s", llm_last_error());
	if (rc != code)
		fail_msg("got %s (%s), expected %s", llm_errname(rc), msg, llm_errname(code));
	assert_null(cr.token);
	kc_config_destroy(c);
}

static void test_exec_plugin_gets_args_and_env(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	exec_setup(f, token_plugin, "");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "hello-arg-one");
	kc_config_destroy(c);
}

static void test_exec_plugin_gets_exec_info(void **state)
{
	struct fx *f = *state;
	char tok[1024];
	json_t *info;
	kc_config *c;

	exec_setup(f, info_plugin, "");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	info = json_loads(tok, 0, NULL);
	assert_non_null(info);
	assert_string_equal(json_string_value(json_object_get(info, "apiVersion")), EXEC_V1);
	assert_string_equal(json_string_value(json_object_get(info, "kind")), "ExecCredential");
	assert_true(json_is_false(json_object_get(json_object_get(info, "spec"), "interactive")));
	assert_null(json_object_get(info, "cluster"));
	json_decref(info);
	kc_config_destroy(c);
}

static void test_exec_plugin_gets_cluster_info_when_asked(void **state)
{
	struct fx *f = *state;
	char tok[2048], ca[256];
	json_t *info, *cl;
	kc_config *c;

	exec_setup(f, info_plugin, "      provideClusterInfo: true\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	info = json_loads(tok, 0, NULL);
	assert_non_null(info);
	cl = json_object_get(info, "cluster");
	b64(CA_PEM, ca, sizeof ca);
	assert_string_equal(json_string_value(json_object_get(cl, "server")),
			    "https://k.example:6443");
	assert_string_equal(json_string_value(json_object_get(cl, "certificate-authority-data")),
			    ca);
	assert_string_equal(json_string_value(json_object_get(cl, "tls-server-name")),
			    "api.internal");
	json_decref(info);
	kc_config_destroy(c);
}

static void test_exec_plugin_client_certificate(void **state)
{
	struct fx *f = *state;
	struct kc_creds cr;
	kc_config *c;

	exec_setup(f,
		   "cat <<'EOF'\n"
		   "{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\",\"status\":{"
		   "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nY2xpZW50LWNlcnQ=\\n"
		   "-----END CERTIFICATE-----\\n\","
		   "\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nY2xpZW50LWtleQ==\\n"
		   "-----END PRIVATE KEY-----\\n\"}}\n"
		   "EOF\n",
		   "");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	assert_int_equal(kc_config_creds(c, &cr), LLM_OK);
	assert_string_equal(cr.cert_pem, CERT_PEM);
	assert_string_equal(cr.key_pem, KEY_PEM);
	assert_null(cr.token);
	kc_creds_free(&cr);
	kc_config_destroy(c);
}

static void test_exec_credential_cached_until_invalidate(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	exec_setup(f, token_plugin, "");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 1);
	kc_config_invalidate(c);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 2);
	kc_config_destroy(c);
}

/* A plugin printing a token that expires at `when` (RFC 3339). */
static void expiring_plugin(const struct fx *f, const char *when)
{
	char body[1024];

	snprintf(body, sizeof body,
		 "echo run >> \"$COUNTER\"\n"
		 "cat <<'EOF'\n"
		 "{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\","
		 "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"%s\"}}\n"
		 "EOF\n",
		 when);
	exec_setup(f, body, "");
}

static void test_exec_expired_credential_runs_every_time(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	expiring_plugin(f, "2000-01-01T00:00:00Z");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 3);
	kc_config_destroy(c);
}

static void test_exec_credential_expiring_within_10s_is_renewed(void **state)
{
	struct fx *f = *state;
	time_t soon = time(NULL) + 5;
	char when[64], tok[64];
	struct tm tm;
	kc_config *c;

	gmtime_r(&soon, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	expiring_plugin(f, when);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 2);
	kc_config_destroy(c);
}

static void test_exec_future_expiry_with_fraction_and_offset_is_cached(void **state)
{
	struct fx *f = *state;
	/* in an hour, written as local time two hours east of UTC */
	time_t later = time(NULL) + 3600 + 2 * 3600;
	char when[64], tok[64];
	struct tm tm;
	kc_config *c;

	gmtime_r(&later, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.123456+02:00", &tm);
	expiring_plugin(f, when);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 1);
	kc_config_destroy(c);
}

static void test_exec_offset_is_applied_to_expiry(void **state)
{
	struct fx *f = *state;
	/* wall clock says an hour ahead, but +02:00 puts it an hour in the past */
	time_t wall = time(NULL) + 3600;
	char when[64], tok[64];
	struct tm tm;
	kc_config *c;

	gmtime_r(&wall, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+02:00", &tm);
	expiring_plugin(f, when);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	token_now(c, tok, sizeof tok);
	assert_int_equal(runs(f), 2);
	kc_config_destroy(c);
}

static void test_exec_bad_expiration_timestamp_fails(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	expiring_plugin(f, "tomorrow");
	creds_fail(f, 0, LLM_EINVAL, msg, sizeof msg);
	assert_contains(msg, "expirationTimestamp");
}

static void *creds_thread(void *arg)
{
	struct kc_creds cr;
	llm_err rc = kc_config_creds(arg, &cr);

	kc_creds_free(&cr);
	return (void *)(intptr_t)rc;
}

static void test_exec_concurrent_callers_run_plugin_once(void **state)
{
	struct fx *f = *state;
	pthread_t t[4];
	void *rc;
	kc_config *c;
	char body[512];

	snprintf(body, sizeof body, "sleep 0.3\n%s", token_plugin);
	exec_setup(f, body, "");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, creds_thread, c), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_int_equal((intptr_t)rc, LLM_OK);
	}
	assert_int_equal(runs(f), 1);
	kc_config_destroy(c);
}

static void test_exec_failure_reports_status_and_stderr(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f, "echo 'token endpoint said no' >&2\nexit 3\n", "");
	creds_fail(f, 0, LLM_EIO, msg, sizeof msg);
	assert_contains(msg, "exited with status 3");
	assert_contains(msg, "token endpoint said no");
	assert_contains(msg, "plugin.sh");
	assert_contains(msg, "user \"alice\"");
}

static void test_exec_timeout_kills_and_reaps_plugin(void **state)
{
	struct fx *f = *state;
	char msg[1024];
	double t0, took;

	exec_setup(f, "sleep 100\n", "");
	t0 = now_s();
	creds_fail(f, 1, LLM_ETIMEDOUT, msg, sizeof msg);
	took = now_s() - t0;
	assert_true(took >= 0.9 && took < 5.0);
	assert_contains(msg, "plugin.sh");
	assert_contains(msg, "1 s");
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* True once pid is gone or a zombie (its parent, not us, may reap it late). */
static bool process_dead(pid_t pid)
{
	char path[64], stat[256] = "";
	const char *end;
	FILE *fp;
	size_t n;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return true;
	n = fread(stat, 1, sizeof stat - 1, fp);
	stat[n] = '\0';
	fclose(fp);
	end = strrchr(stat, ')');
	return end && end[1] == ' ' && end[2] == 'Z';
}

static void test_exec_timeout_kills_the_plugins_children(void **state)
{
	struct fx *f = *state;
	const struct timespec nap = {0, 20000000};
	char msg[1024], path[PATH_MAX];
	long pid = 0;
	FILE *fp;
	int i;

	exec_setup(f, "sleep 100 &\necho $! > \"$COUNTER.pid\"\nwait\n", "");
	creds_fail(f, 1, LLM_ETIMEDOUT, msg, sizeof msg);
	fp = fopen(at(f, "count.pid", path), "r");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld", &pid), 1);
	fclose(fp);
	assert_true(pid > 1);
	for (i = 0; i < 100 && !process_dead((pid_t)pid); i++)
		nanosleep(&nap, NULL);
	assert_true(process_dead((pid_t)pid));
}

static void test_exec_wrong_kind_is_rejected(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f,
		   "echo 'about to print' >&2\n"
		   "echo '{\"apiVersion\":\"" EXEC_V1
		   "\",\"kind\":\"Pod\",\"status\":{\"token\":\"t\"}}'\n",
		   "");
	creds_fail(f, 0, LLM_EINVAL, msg, sizeof msg);
	assert_contains(msg, "kind \"Pod\"");
	assert_contains(msg, "about to print");
}

static void test_exec_wrong_api_version_is_rejected(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f,
		   "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
		   "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
		   "");
	creds_fail(f, 0, LLM_EINVAL, msg, sizeof msg);
	assert_contains(msg, "apiVersion \"client.authentication.k8s.io/v1beta1\"");
}

static void test_exec_malformed_output_is_a_parse_error(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f, "echo 'not json {'\n", "");
	creds_fail(f, 0, LLM_EPARSE, msg, sizeof msg);
	assert_contains(msg, "did not print JSON");
	assert_contains(msg, "plugin.sh");
}

static void test_exec_output_without_credential_is_rejected(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f, "echo '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\"}'\n", "");
	creds_fail(f, 0, LLM_EINVAL, msg, sizeof msg);
	assert_contains(msg, "neither status.token");
}

static void test_exec_missing_command_shows_install_hint(void **state)
{
	struct fx *f = *state;
	char msg[1024];

	exec_setup(f, "", "");
	put(f, "kc.yaml", one_context, "",
	    "    exec:\n"
	    "      apiVersion: " EXEC_V1 "\n"
	    "      command: kc-config-test-no-such-plugin\n"
	    "      installHint: 'install the plugin with: apt-get install kc-plugin'\n");
	creds_fail(f, 0, LLM_EIO, msg, sizeof msg);
	assert_contains(msg, "status 127");
	assert_contains(msg, "apt-get install kc-plugin");
	assert_contains(msg, "kc-config-test-no-such-plugin");
}

static void test_exec_command_is_looked_up_in_path(void **state)
{
	struct fx *f = *state;
	char path[3 * PATH_MAX], tok[64];
	kc_config *c;

	exec_setup(f, token_plugin, "");
	put(f, "kc.yaml", one_context, "",
	    "    exec:\n"
	    "      apiVersion: " EXEC_V1 "\n"
	    "      command: plugin.sh\n"
	    "      args: [from-path]\n"
	    "      env: [{name: COUNTER, value: /dev/null}, {name: GREETING, value: hi}]\n");
	snprintf(path, sizeof path, "%s:%s", f->dir, f->path ? f->path : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "hi-from-path");
	kc_config_destroy(c);
}

static void test_exec_relative_command_is_relative_to_kubeconfig(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	exec_setup(f, token_plugin, "");
	put(f, "kc.yaml", one_context, "",
	    "    exec:\n"
	    "      apiVersion: " EXEC_V1 "\n"
	    "      command: ./plugin.sh\n"
	    "      args: [relative]\n"
	    "      env: [{name: COUNTER, value: /dev/null}, {name: GREETING, value: hi}]\n");
	c = load_ok(f, "kc.yaml", (struct kc_config_opts){0});
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "hi-relative");
	kc_config_destroy(c);
}

static void test_exec_unsupported_api_version_rejected_at_load(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", one_context, "",
	    "    exec:\n"
	    "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
	    "      command: some-plugin\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL, "v1alpha1");
}

static void test_exec_interactive_always_rejected_at_load(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", one_context, "",
	    "    exec:\n"
	    "      apiVersion: " EXEC_V1 "\n"
	    "      command: kubelogin\n"
	    "      interactiveMode: Always\n");
	assert_load_fails(f, "kc.yaml", LLM_EUNSUPPORTED, "interactiveMode Always");
}

/* --- in-cluster ----------------------------------------------------------- */

static void write_sa_dir(const struct fx *f)
{
	mkdir_in(f, "sa");
	put(f, "sa/token", "sa-token\n");
	put(f, "sa/ca.crt", "%s", CA_PEM);
	put(f, "sa/namespace", "ops\n");
}

static kc_config *in_cluster_ok(const struct fx *f, const char *host)
{
	char sa[PATH_MAX];
	kc_config *c = NULL;
	llm_err rc;

	setenv("KUBERNETES_SERVICE_HOST", host, 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	rc = kc_config_in_cluster(at(f, "sa", sa), 0, &c);
	if (rc)
		fail_msg("kc_config_in_cluster: %s: %s", llm_errname(rc), llm_last_error());
	return c;
}

static void test_in_cluster_reads_service_account(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	write_sa_dir(f);
	c = in_cluster_ok(f, "10.96.0.1");
	assert_string_equal(kc_config_server(c), "https://10.96.0.1:443");
	assert_string_equal(kc_config_namespace(c), "ops");
	assert_string_equal(kc_config_ca_pem(c), CA_PEM);
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "sa-token");
	kc_config_destroy(c);
}

static void test_in_cluster_ipv6_host_is_bracketed(void **state)
{
	struct fx *f = *state;
	kc_config *c;

	write_sa_dir(f);
	c = in_cluster_ok(f, "fd00:10:96::1");
	assert_string_equal(kc_config_server(c), "https://[fd00:10:96::1]:443");
	kc_config_destroy(c);
}

static void test_in_cluster_token_is_file_backed(void **state)
{
	struct fx *f = *state;
	kc_config *c;
	char tok[64];

	write_sa_dir(f);
	c = in_cluster_ok(f, "10.96.0.1");
	put(f, "sa/token", "rotated\n");
	kc_config_invalidate(c);
	token_now(c, tok, sizeof tok);
	assert_string_equal(tok, "rotated");
	kc_config_destroy(c);
}

static void test_in_cluster_without_env_is_not_found(void **state)
{
	struct fx *f = *state;
	kc_config *c = (kc_config *)1;
	char sa[PATH_MAX];

	write_sa_dir(f);
	assert_int_equal(kc_config_in_cluster(at(f, "sa", sa), 0, &c), LLM_ENOTFOUND);
	assert_null(c);
	assert_contains(llm_last_error(), "KUBERNETES_SERVICE_HOST");
}

static void test_in_cluster_missing_token_is_not_found(void **state)
{
	struct fx *f = *state;
	kc_config *c = (kc_config *)1;
	char sa[PATH_MAX], tok[PATH_MAX];

	write_sa_dir(f);
	assert_int_equal(unlink(at(f, "sa/token", tok)), 0);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kc_config_in_cluster(at(f, "sa", sa), 0, &c), LLM_ENOTFOUND);
	assert_null(c);
	assert_contains(llm_last_error(), tok);
}

static void test_load_falls_back_to_in_cluster(void **state)
{
	struct fx *f = *state;
	kc_config *c = (kc_config *)1;

	setenv("HOME", f->dir, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	/* the default service-account directory does not exist on a build machine */
	if (access("/var/run/secrets/kubernetes.io/serviceaccount/token", F_OK) == 0)
		skip();
	assert_int_equal(kc_config_load(NULL, &c), LLM_ENOTFOUND);
	assert_null(c);
	assert_contains(llm_last_error(), "in-cluster");
	assert_contains(llm_last_error(), "/var/run/secrets/kubernetes.io/serviceaccount");
}

/* --- malformed kubeconfigs ------------------------------------------------ */

static void test_yaml_syntax_error_has_file_line_column(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], prefix[PATH_MAX + 8];
	int line = 0, col = 0;
	kc_config *c = NULL;

	put(f, "kc.yaml", "clusters:\n- name: a\n  cluster: {server: x\n");
	assert_int_equal(load(at(f, "kc.yaml", path), NULL, &c), LLM_EPARSE);
	snprintf(prefix, sizeof prefix, "%s:", path);
	assert_int_equal(strncmp(llm_last_error(), prefix, strlen(prefix)), 0);
	assert_int_equal(sscanf(llm_last_error() + strlen(prefix), "%d:%d:", &line, &col), 2);
	assert_true(line >= 3);
	assert_true(col >= 1);
}

static void test_unknown_context_lists_available_ones(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], want[PATH_MAX + 128];
	kc_config *c = NULL;

	put(f, "kc.yaml", "%s", two_contexts);
	assert_int_equal(load(at(f, "kc.yaml", path), "staging", &c), LLM_ENOTFOUND);
	snprintf(want, sizeof want, "%s: context \"staging\" not found (available: dev, prod)",
		 path);
	assert_string_equal(llm_last_error(), want);
}

static void test_current_context_unset_is_an_error(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", "clusters: []\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL,
			  "current-context is not set and no context was given");
}

static void test_context_with_missing_cluster_is_not_found(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml",
	    "current-context: x\n"
	    "contexts: [{name: x, context: {cluster: ghost, user: u}}]\n"
	    "users: [{name: u, user: {token: t}}]\n");
	assert_load_fails(f, "kc.yaml", LLM_ENOTFOUND,
			  "context \"x\": cluster \"ghost\" not found");
}

static void test_context_with_missing_user_is_not_found(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml",
	    "current-context: x\n"
	    "clusters: [{name: c, cluster: {server: \"https://h\"}}]\n"
	    "contexts: [{name: x, context: {cluster: c, user: nobody}}]\n");
	assert_load_fails(f, "kc.yaml", LLM_ENOTFOUND, "user \"nobody\" not found");
}

static void test_cluster_without_server_is_rejected(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml",
	    "current-context: x\n"
	    "clusters: [{name: c, cluster: {insecure-skip-tls-verify: true}}]\n"
	    "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
	    "users: [{name: u, user: {token: t}}]\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL, "cluster \"c\": server is not set");
}

static void test_invalid_base64_names_field_and_file(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], want[PATH_MAX + 128], cert[256], user[512];
	kc_config *c = NULL;

	b64(CERT_PEM, cert, sizeof cert);
	snprintf(user, sizeof user,
		 "    client-certificate-data: %s\n    client-key-data: 'a*b='\n", cert);
	put(f, "kc.yaml", one_context, "", user);
	assert_int_equal(load(at(f, "kc.yaml", path), NULL, &c), LLM_EINVAL);
	snprintf(want, sizeof want, "%s: user \"alice\": client-key-data is not valid base64",
		 path);
	assert_string_equal(llm_last_error(), want);
}

static void test_base64_without_padding_is_invalid(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", one_context, "    certificate-authority-data: YWJjZA\n",
	    "    token: t\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL,
			  "certificate-authority-data is not valid base64");
}

static void test_client_certificate_without_key_is_rejected(void **state)
{
	struct fx *f = *state;

	put(f, "crt", "%s", CERT_PEM);
	put(f, "kc.yaml", one_context, "", "    client-certificate: crt\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL, "client key");
}

static void test_auth_provider_is_rejected_pointing_to_exec(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", one_context, "", "    auth-provider: {name: gcp}\n");
	assert_load_fails(f, "kc.yaml", LLM_EUNSUPPORTED, "auth-provider \"gcp\"");
	assert_contains(llm_last_error(), "exec");
}

static void test_basic_auth_is_rejected(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", one_context, "", "    username: admin\n    password: hunter2\n");
	assert_load_fails(f, "kc.yaml", LLM_EUNSUPPORTED, "username/password");
	assert_contains(llm_last_error(), "user \"alice\"");
}

static void test_kubeconfig_over_4_mib_is_too_large(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];
	FILE *fp = fopen(at(f, "kc.yaml", path), "w");

	assert_non_null(fp);
	for (int i = 0; i < 4 * 1024 + 1; i++)
		fprintf(fp, "#%01022d\n", 0);
	assert_int_equal(fclose(fp), 0);
	assert_load_fails(f, "kc.yaml", LLM_ETOOLARGE, "limit");
}

static void test_clusters_not_a_list_is_invalid(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", "clusters: {c: {server: x}}\ncurrent-context: x\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL, "clusters is a mapping, not a list");
}

static void test_document_not_a_mapping_is_invalid(void **state)
{
	struct fx *f = *state;

	put(f, "kc.yaml", "- clusters\n- users\n");
	assert_load_fails(f, "kc.yaml", LLM_EINVAL, "a kubeconfig is a mapping");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_load_uses_current_context),
		T(test_explicit_context_overrides_current),
		T(test_namespace_defaults_to_default),
		T(test_plain_cluster_has_no_tls_overrides),
		T(test_files_are_relative_to_the_kubeconfig_dir),
		T(test_data_fields_are_base64_pem),
		T(test_insecure_skip_tls_verify_is_reported),
		T(test_tls_server_name_is_reported),
		T(test_kubeconfig_env_current_context_from_first_file_setting_it),
		T(test_kubeconfig_env_first_definition_wins),
		T(test_kubeconfig_env_later_files_add_new_entries),
		T(test_kubeconfig_env_paths_relative_to_defining_file),
		T(test_home_kube_config_used_without_kubeconfig_env),
		T(test_kubeconfig_env_without_files_does_not_fall_back_to_home),
		T(test_no_source_at_all_lists_what_was_tried),
		T(test_explicit_kubeconfig_must_exist),
		T(test_token_wins_over_token_file),
		T(test_token_file_unused_when_token_is_set),
		T(test_token_file_is_read_and_trimmed),
		T(test_token_file_rotation_picked_up_after_refresh),
		T(test_token_file_not_reread_within_refresh_interval),
		T(test_invalidate_rereads_token_file),
		T(test_deleted_token_file_keeps_old_token_with_warning),
		T(test_relative_token_file_survives_chdir),
		T(test_missing_token_file_fails_at_load),
		T(test_exec_plugin_gets_args_and_env),
		T(test_exec_plugin_gets_exec_info),
		T(test_exec_plugin_gets_cluster_info_when_asked),
		T(test_exec_plugin_client_certificate),
		T(test_exec_credential_cached_until_invalidate),
		T(test_exec_expired_credential_runs_every_time),
		T(test_exec_credential_expiring_within_10s_is_renewed),
		T(test_exec_future_expiry_with_fraction_and_offset_is_cached),
		T(test_exec_offset_is_applied_to_expiry),
		T(test_exec_bad_expiration_timestamp_fails),
		T(test_exec_concurrent_callers_run_plugin_once),
		T(test_exec_failure_reports_status_and_stderr),
		T(test_exec_timeout_kills_and_reaps_plugin),
		T(test_exec_timeout_kills_the_plugins_children),
		T(test_exec_wrong_kind_is_rejected),
		T(test_exec_wrong_api_version_is_rejected),
		T(test_exec_malformed_output_is_a_parse_error),
		T(test_exec_output_without_credential_is_rejected),
		T(test_exec_missing_command_shows_install_hint),
		T(test_exec_command_is_looked_up_in_path),
		T(test_exec_relative_command_is_relative_to_kubeconfig),
		T(test_exec_unsupported_api_version_rejected_at_load),
		T(test_exec_interactive_always_rejected_at_load),
		T(test_in_cluster_reads_service_account),
		T(test_in_cluster_ipv6_host_is_bracketed),
		T(test_in_cluster_token_is_file_backed),
		T(test_in_cluster_without_env_is_not_found),
		T(test_in_cluster_missing_token_is_not_found),
		T(test_load_falls_back_to_in_cluster),
		T(test_yaml_syntax_error_has_file_line_column),
		T(test_unknown_context_lists_available_ones),
		T(test_current_context_unset_is_an_error),
		T(test_context_with_missing_cluster_is_not_found),
		T(test_context_with_missing_user_is_not_found),
		T(test_cluster_without_server_is_rejected),
		T(test_invalid_base64_names_field_and_file),
		T(test_base64_without_padding_is_invalid),
		T(test_client_certificate_without_key_is_rejected),
		T(test_auth_provider_is_rejected_pointing_to_exec),
		T(test_basic_auth_is_rejected),
		T(test_kubeconfig_over_4_mib_is_too_large),
		T(test_clusters_not_a_list_is_invalid),
		T(test_document_not_a_mapping_is_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
