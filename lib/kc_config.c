/* Kubernetes client configuration (see kc_config.h): kubeconfig files loaded
 * and merged the way client-go's clientcmd does it, in-cluster
 * service-account configuration, and credentials that refresh themselves.
 *
 * Loading resolves one context eagerly (files named by the kubeconfig are
 * read at load, so mistakes surface there). File-backed credentials are
 * re-read on a CLOCK_MONOTONIC interval and survive a failed re-read; exec
 * plugins run under fork/execvpe with a deadline, in their own process group
 * so a timeout kills everything they started. One mutex per kc_config guards
 * the cached credentials and is held while a plugin runs, so concurrent
 * callers never run it twice.
 *
 * Design limit: what a controller needs. auth-provider, basic auth,
 * impersonation and interactive plugins are rejected with a message. */
#include "kc_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "llm_buf.h"
#include "llm_json.h"
#include "llm_log.h"
#include "llm_yaml.h"

#define KUBECONFIG_MAX	     (4u << 20)
#define TOKEN_FILE_MAX	     (64u << 10)
#define PEM_FILE_MAX	     (1u << 20)
#define NAMESPACE_FILE_MAX   4096u
#define EXEC_STDOUT_MAX	     (1u << 20)
#define EXEC_STDERR_KEEP     2048
#define EXEC_EXPIRY_SLACK_S  10
#define DEFAULT_REFRESH_S    60
#define DEFAULT_EXEC_TIMEOUT 30
#define LABEL_MAX	     1024
#define NS_PER_S	     1000000000LL
#define SA_DIR_DEFAULT	     "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_V1		     "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1	     "client.authentication.k8s.io/v1beta1"
#define EXEC_INFO_VAR	     "KUBERNETES_EXEC_INFO"
#define LOGGER		     "kc_config"

/* A credential kept in a file (token file, client certificate or key). */
struct file_src {
	char *path;	 /* NULL when not configured */
	char *label;	 /* "kc.yaml: user \"alice\": tokenFile", for messages */
	char *data;	 /* last contents read successfully, or NULL */
	size_t max;	 /* size cap */
	bool token;	 /* trim whitespace; an empty file is an error */
	bool stale;	 /* invalidated: re-read on next use */
	int64_t read_ns; /* CLOCK_MONOTONIC time of the last read attempt */
};

/* An exec credential plugin and its cached ExecCredential. */
struct exec_src {
	char *label;	    /* "kc.yaml: user \"alice\"" */
	char *api_version;  /* EXEC_V1 or EXEC_V1BETA1 */
	char **argv;	    /* command then args, NULL-terminated */
	char **env;	    /* "NAME=VALUE" added to the environment */
	size_t nenv;	    /* entries in env */
	char *info_env;	    /* "KUBERNETES_EXEC_INFO=<json>" */
	char *install_hint; /* shown when the command is missing, or NULL */
	bool cluster_info;  /* provideClusterInfo */
	char *token, *cert, *key;
	bool cached;  /* token/cert/key hold a credential */
	bool expires; /* expiry is set */
	time_t expiry;
};

struct kc_config {
	char *server, *ns, *ca_pem, *tls_name;
	bool insecure;
	int refresh_s, exec_timeout_s;
	char *token, *cert_pem, *key_pem; /* inline credentials */
	struct file_src token_file, cert_file, key_file;
	struct exec_src *exec;
	pthread_mutex_t lock; /* guards the file sources and the exec cache */
};

/* A running (or finished) exec plugin. */
struct proc {
	pid_t pid; /* -1 once reaped */
	int out_fd, err_fd;
	int status;
	llm_buf out;			/* stdout, capped at EXEC_STDOUT_MAX */
	char err[EXEC_STDERR_KEEP + 1]; /* the first bytes of stderr */
	size_t err_len;
};

/* --- small helpers -------------------------------------------------------- */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static llm_err nomem(void)
{
	return llm_fail(LLM_ENOMEM, "out of memory");
}

/* *out = a copy of s, or NULL when s is NULL. */
static llm_err dup_str(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return LLM_OK;
	*out = strdup(s);
	return *out ? LLM_OK : nomem();
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Strips leading and trailing whitespace in place. */
static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
}

static const char *json_kind(const json_t *v)
{
	if (!v)
		return "missing";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "a mapping";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

static bool present(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v));
}

/* The string at key, or NULL when absent, null or empty; LLM_EINVAL naming
 * label and key for another type. */
static llm_err opt_str(const json_t *obj, const char *key, const char *label, const char **out)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return LLM_OK;
	if (!json_is_string(v))
		return llm_fail(LLM_EINVAL, "%s: %s is %s, not a string", label, key, json_kind(v));
	if (*json_string_value(v))
		*out = json_string_value(v);
	return LLM_OK;
}

static llm_err opt_bool(const json_t *obj, const char *key, const char *label, bool *out)
{
	const json_t *v = json_object_get(obj, key);

	*out = false;
	if (!v || json_is_null(v))
		return LLM_OK;
	if (!json_is_boolean(v))
		return llm_fail(LLM_EINVAL, "%s: %s is %s, not a boolean", label, key,
				json_kind(v));
	*out = json_is_true(v);
	return LLM_OK;
}

/* Reads path (at most max bytes) into a new string. Errors name label and
 * path: LLM_ENOTFOUND when missing, LLM_ETOOLARGE over max, LLM_EINVAL for a
 * NUL byte, LLM_EIO otherwise. */
static llm_err read_text_file(const char *path, size_t max, const char *label, char **out)
{
	char chunk[16384];
	llm_err rc = LLM_OK;
	llm_buf b;
	size_t n;
	FILE *f;
	int err;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		err = errno;
		return llm_fail(err == ENOENT ? LLM_ENOTFOUND : LLM_EIO, "%s %s: %s", label, path,
				strerror(err));
	}
	llm_buf_init(&b, max);
	while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = llm_buf_append(&b, chunk, n);
	if (rc == LLM_ETOOLARGE)
		rc = llm_fail(rc, "%s %s: file is larger than the limit of %zu bytes", label, path,
			      max);
	else if (!rc && ferror(f))
		rc = llm_fail(LLM_EIO, "%s %s: read error", label, path);
	else if (!rc && memchr(llm_buf_str(&b), '\0', b.len))
		rc = llm_fail(LLM_EINVAL, "%s %s: file contains a NUL byte", label, path);
	fclose(f);
	if (!rc)
		rc = dup_str(llm_buf_str(&b), out);
	llm_buf_free(&b);
	return rc;
}

/* rel resolved against the directory of file, made absolute, as client-go
 * does for paths inside a kubeconfig; absolute paths are kept. */
static llm_err resolve_path(const char *file, const char *rel, char **out)
{
	const char *slash = strrchr(file, '/');
	int dir_len = slash ? (int)(slash - file) + 1 : 0;
	char cwd[PATH_MAX] = "";
	const char *sep = "";
	size_t n;

	*out = NULL;
	if (rel[0] == '/')
		return dup_str(rel, out);
	if (file[0] != '/') {
		if (!getcwd(cwd, sizeof cwd))
			return llm_fail(LLM_EIO, "getcwd: %s", strerror(errno));
		sep = "/";
	}
	n = strlen(cwd) + strlen(sep) + (size_t)dir_len + strlen(rel) + 1;
	*out = malloc(n);
	if (!*out)
		return nomem();
	snprintf(*out, n, "%s%s%.*s%s", cwd, sep, dir_len, file, rel);
	return LLM_OK;
}

/* --- base64 --------------------------------------------------------------- */

static int b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	return ch == '/' ? 63 : -1;
}

/* Decodes the quartets of t[0..n) (n a multiple of 4, validated) into o. */
static size_t b64_quartets(const char *t, size_t n, char *o)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;

		for (int j = 0; j < 4; j++)
			v = v << 6 | (uint32_t)(t[i + j] == '=' ? 0 : b64_val(t[i + j]));
		o[len++] = (char)(v >> 16);
		if (t[i + 2] != '=')
			o[len++] = (char)(v >> 8 & 0xff);
		if (t[i + 3] != '=')
			o[len++] = (char)(v & 0xff);
	}
	o[len] = '\0';
	return len;
}

/* Strict standard base64 with padding; CR and LF are ignored, as Go's
 * decoder does. LLM_EINVAL (no detail) when s is not valid base64. */
static llm_err b64_decode(const char *s, char **out, size_t *len)
{
	size_t n = 0, pad = 0;
	llm_err rc = LLM_EINVAL;
	char *t = malloc(strlen(s) + 1);

	*out = NULL;
	if (!t)
		return nomem();
	for (const char *p = s; *p; p++)
		if (*p != '\r' && *p != '\n')
			t[n++] = *p;
	while (pad < 2 && n > pad && t[n - 1 - pad] == '=')
		pad++;
	if (n % 4)
		goto out_free;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_val(t[i]) < 0)
			goto out_free;
	*out = malloc(n / 4 * 3 + 1);
	rc = *out ? LLM_OK : nomem();
	if (*out)
		*len = b64_quartets(t, n, *out);
out_free:
	free(t);
	return rc;
}

/* The base64 PEM at key (a *-data field) decoded into *out, or NULL when
 * the field is not set. */
static llm_err pem_data(const json_t *obj, const char *key, const char *label, char **out)
{
	const char *s;
	size_t len = 0;
	llm_err rc;

	*out = NULL;
	rc = opt_str(obj, key, label, &s);
	if (rc || !s)
		return rc;
	rc = b64_decode(s, out, &len);
	if (rc == LLM_EINVAL)
		return llm_fail(rc, "%s: %s is not valid base64", label, key);
	if (!rc && strlen(*out) != len) {
		free(*out);
		*out = NULL;
		rc = llm_fail(LLM_EINVAL, "%s: %s does not decode to PEM text", label, key);
	}
	return rc;
}

static char *b64_encode(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc((n + 2) / 3 * 4 + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* --- file-backed credentials ---------------------------------------------- */

static llm_err file_src_read(struct file_src *f, char **out)
{
	llm_err rc = read_text_file(f->path, f->max, f->label, out);

	if (rc || !f->token)
		return rc;
	trim(*out);
	if (**out)
		return LLM_OK;
	free(*out);
	*out = NULL;
	return llm_fail(LLM_EINVAL, "%s %s: file is empty", f->label, f->path);
}

/* Sets f up for path (taken over) and reads it once; errors name the file. */
static llm_err file_src_open(struct file_src *f, char *path, const char *label, size_t max,
			     bool token)
{
	f->path = path;
	f->max = max;
	f->token = token;
	f->read_ns = mono_ns();
	if (dup_str(label, &f->label))
		return nomem();
	return file_src_read(f, &f->data);
}

/* Like file_src_open() for a path field of a kubeconfig entry, resolved
 * against that entry's file; nothing to do when the field is unset. */
static llm_err file_src_field(struct file_src *f, const json_t *obj, const char *key,
			      const char *file, const char *label, size_t max, bool token)
{
	char what[LABEL_MAX];
	const char *rel;
	char *path;
	llm_err rc;

	rc = opt_str(obj, key, label, &rel);
	if (rc || !rel)
		return rc;
	rc = resolve_path(file, rel, &path);
	if (rc)
		return rc;
	snprintf(what, sizeof what, "%s: %s", label, key);
	return file_src_open(f, path, what, max, token);
}

/* Re-reads f when its copy is older than refresh_ns or was invalidated. A
 * failed re-read keeps the old copy (the file may be mid-rotation) with a
 * warning, and is retried after another interval. */
static llm_err file_src_refresh(struct file_src *f, int64_t now, int64_t refresh_ns)
{
	char *data;
	llm_err rc;

	if (!f->path || (f->data && !f->stale && now - f->read_ns < refresh_ns))
		return LLM_OK;
	rc = file_src_read(f, &data);
	f->read_ns = now;
	f->stale = false;
	if (!rc) {
		free(f->data);
		f->data = data;
		return LLM_OK;
	}
	if (!f->data)
		return rc;
	llm_warn(LOGGER, "%s; keeping the copy read earlier", llm_last_error());
	return LLM_OK;
}

static void file_src_free(struct file_src *f)
{
	free(f->path);
	free(f->label);
	free(f->data);
}

/* --- kubeconfig merging --------------------------------------------------- */

enum { SEC_CLUSTERS, SEC_USERS, SEC_CONTEXTS, SEC_COUNT };

static const struct {
	const char *list; /* top-level key */
	const char *item; /* key of each entry's body; also its name in messages */
} sections[SEC_COUNT] = {
	{"clusters", "cluster"},
	{"users", "user"},
	{"contexts", "context"},
};

/* One or more kubeconfig files merged: the first to define a name wins. */
struct merged {
	json_t *sec[SEC_COUNT]; /* name -> {"v": body, "file": path} */
	char *current;		/* first non-empty current-context */
	llm_buf files;		/* "a.yaml, b.yaml", for messages */
	int nfiles;
};

static llm_err merged_init(struct merged *m)
{
	memset(m, 0, sizeof *m);
	llm_buf_init(&m->files, 4096);
	for (int s = 0; s < SEC_COUNT; s++) {
		m->sec[s] = json_object();
		if (!m->sec[s])
			return nomem();
	}
	return LLM_OK;
}

static void merged_free(struct merged *m)
{
	for (int s = 0; s < SEC_COUNT; s++)
		json_decref(m->sec[s]);
	free(m->current);
	llm_buf_free(&m->files);
}

static llm_err merge_entry(json_t *dst, const json_t *item, size_t i, const char *file, int s)
{
	const json_t *body = json_object_get(item, sections[s].item);
	const char *name = json_string_value(json_object_get(item, "name"));
	json_t *rec;

	if (!json_is_object(item))
		return llm_fail(LLM_EINVAL, "%s: %s[%zu] is %s, not a mapping", file,
				sections[s].list, i, json_kind(item));
	if (!name || !*name)
		return llm_fail(LLM_EINVAL, "%s: %s[%zu] has no name", file, sections[s].list, i);
	if (json_object_get(dst, name))
		return LLM_OK; /* defined by an earlier file, which wins */
	if (body && !json_is_null(body) && !json_is_object(body))
		return llm_fail(LLM_EINVAL, "%s: %s \"%s\": %s is %s, not a mapping", file,
				sections[s].item, name, sections[s].item, json_kind(body));
	if (json_is_object(body))
		rec = json_pack("{s:O,s:s}", "v", body, "file", file);
	else
		rec = json_pack("{s:{},s:s}", "v", "file", file);
	if (!rec || json_object_set_new(dst, name, rec))
		return nomem();
	return LLM_OK;
}

static llm_err merge_section(struct merged *m, const json_t *doc, const char *file, int s)
{
	const json_t *list = json_object_get(doc, sections[s].list);
	llm_err rc = LLM_OK;

	if (!list || json_is_null(list))
		return LLM_OK;
	if (!json_is_array(list))
		return llm_fail(LLM_EINVAL, "%s: %s is %s, not a list", file, sections[s].list,
				json_kind(list));
	for (size_t i = 0; !rc && i < json_array_size(list); i++)
		rc = merge_entry(m->sec[s], json_array_get(list, i), i, file, s);
	return rc;
}

static llm_err merge_doc(struct merged *m, const json_t *doc, const char *file)
{
	const char *cur;
	llm_err rc = LLM_OK;

	if (!json_is_object(doc))
		return llm_fail(LLM_EINVAL,
				"%s: a kubeconfig is a mapping, but this document is %s", file,
				json_kind(doc));
	for (int s = 0; !rc && s < SEC_COUNT; s++)
		rc = merge_section(m, doc, file, s);
	if (!rc)
		rc = opt_str(doc, "current-context", file, &cur);
	if (!rc && cur && !m->current)
		rc = dup_str(cur, &m->current);
	return rc;
}

/* Loads and merges one file. A missing file is skipped when optional. */
static llm_err merge_file(struct merged *m, const char *path, bool optional)
{
	json_t *docs;
	size_t n;
	llm_err rc;

	rc = llm_yaml_load_file(path, KUBECONFIG_MAX, &docs);
	if (rc == LLM_ENOTFOUND && optional)
		return LLM_OK;
	if (rc)
		return rc;
	n = json_array_size(docs);
	if (n > 1)
		rc = llm_fail(LLM_EINVAL, "%s: has %zu YAML documents; a kubeconfig is one", path,
			      n);
	else if (n == 1)
		rc = merge_doc(m, json_array_get(docs, 0), path);
	json_decref(docs);
	if (rc)
		return rc;
	llm_buf_printf(&m->files, "%s%s", m->nfiles ? ", " : "", path); /* best effort */
	m->nfiles++;
	return LLM_OK;
}

/* Every file of a ':'-separated list; empty entries and missing files are
 * skipped. */
static llm_err merge_list(struct merged *m, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	llm_err rc = LLM_OK;

	if (!copy)
		return nomem();
	for (char *p = strtok_r(copy, ":", &save); p && !rc; p = strtok_r(NULL, ":", &save))
		rc = merge_file(m, p, true);
	free(copy);
	return rc;
}

/* Loads what kubectl would: --kubeconfig, else $KUBECONFIG, else
 * ~/.kube/config. m->nfiles stays 0 when there is none; tried then says
 * what was looked at. */
static llm_err gather(const struct kc_config_opts *o, struct merged *m, char *tried, size_t n)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char path[PATH_MAX];

	if (o->kubeconfig && *o->kubeconfig)
		return merge_file(m, o->kubeconfig, false);
	if (env && *env) {
		snprintf(tried, n,
			 "--kubeconfig not given, no file named in $KUBECONFIG (%s) exists", env);
		return merge_list(m, env);
	}
	snprintf(tried, n, "--kubeconfig not given, $KUBECONFIG unset, ~/.kube/config missing");
	if (!home || !*home)
		return LLM_OK;
	snprintf(path, sizeof path, "%s/.kube/config", home);
	return merge_file(m, path, true);
}

/* --- resolving the context ------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, comma-separated names of obj into b; "none" when empty. */
static void list_names(json_t *obj, llm_buf *b)
{
	size_t n = json_object_size(obj), i = 0;
	const char **names = calloc(n + 1, sizeof *names);

	if (!names)
		return;
	for (void *it = json_object_iter(obj); it && i < n; it = json_object_iter_next(obj, it))
		names[i++] = json_object_iter_key(it);
	qsort(names, i, sizeof *names, cmp_str);
	for (size_t k = 0; k < i; k++)
		llm_buf_printf(b, "%s%s", k ? ", " : "", names[k]);
	if (!i)
		llm_buf_puts(b, "none");
	free(names);
}

static const json_t *rec_body(const json_t *rec)
{
	return json_object_get(rec, "v");
}

static const char *rec_file(const json_t *rec)
{
	return json_string_value(json_object_get(rec, "file"));
}

static llm_err select_context(struct merged *m, const char *want, const json_t **rec,
			      const char **name)
{
	const char *files = llm_buf_str(&m->files);
	llm_buf names;
	llm_err rc;

	*name = want && *want ? want : m->current;
	if (!*name)
		return llm_fail(LLM_EINVAL,
				"%s: current-context is not set and no context was given", files);
	*rec = json_object_get(m->sec[SEC_CONTEXTS], *name);
	if (*rec)
		return LLM_OK;
	llm_buf_init(&names, 768);
	list_names(m->sec[SEC_CONTEXTS], &names);
	rc = llm_fail(LLM_ENOTFOUND, "%s: context \"%s\" not found (available: %s)", files, *name,
		      llm_buf_str(&names));
	llm_buf_free(&names);
	return rc;
}

/* The cluster or user entry that a context names in field key. */
static llm_err context_ref(struct merged *m, const json_t *ctx, const char *label, int s,
			   const json_t **rec, const char **name)
{
	llm_err rc = opt_str(ctx, sections[s].item, label, name);

	if (rc)
		return rc;
	if (!*name)
		return llm_fail(LLM_EINVAL, "%s: %s is not set", label, sections[s].item);
	*rec = json_object_get(m->sec[s], *name);
	if (!*rec)
		return llm_fail(LLM_ENOTFOUND, "%s: %s \"%s\" not found", label, sections[s].item,
				*name);
	return LLM_OK;
}

static llm_err set_server(kc_config *c, const char *server, const char *label)
{
	size_t n;

	if (!server)
		return llm_fail(LLM_EINVAL, "%s: server is not set", label);
	if (dup_str(server, &c->server))
		return nomem();
	n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	if (!n)
		return llm_fail(LLM_EINVAL, "%s: server \"%s\" is not a URL", label, server);
	return LLM_OK;
}

static llm_err apply_cluster(kc_config *c, const json_t *rec, const char *name)
{
	const json_t *v = rec_body(rec);
	const char *file = rec_file(rec), *s;
	char label[LABEL_MAX];
	llm_err rc;

	snprintf(label, sizeof label, "%s: cluster \"%s\"", file, name);
	rc = opt_str(v, "server", label, &s);
	if (!rc)
		rc = set_server(c, s, label);
	if (!rc)
		rc = opt_str(v, "tls-server-name", label, &s);
	if (!rc)
		rc = dup_str(s, &c->tls_name);
	if (!rc)
		rc = opt_bool(v, "insecure-skip-tls-verify", label, &c->insecure);
	if (!rc)
		rc = pem_data(v, "certificate-authority-data", label, &c->ca_pem);
	if (!rc && !c->ca_pem) {
		struct file_src ca = {0};

		/* read once: a CA bundle is trust configuration, not a credential */
		rc = file_src_field(&ca, v, "certificate-authority", file, label, PEM_FILE_MAX,
				    false);
		c->ca_pem = ca.data;
		ca.data = NULL;
		file_src_free(&ca);
	}
	return rc;
}

static llm_err user_unsupported(const json_t *v, const char *label)
{
	static const char *const imp[] = {"as", "as-uid", "as-groups", "as-user-extra"};
	const json_t *ap = json_object_get(v, "auth-provider");
	const char *apn;

	if (ap && !json_is_null(ap)) {
		apn = json_string_value(json_object_get(ap, "name"));
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: auth-provider \"%s\" is not supported (auth-provider plugins "
				"were removed in kubectl 1.26); configure an exec credential "
				"plugin (user.exec) instead",
				label, apn ? apn : "");
	}
	if (present(v, "username") || present(v, "password"))
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: basic authentication (username/password) is not supported; "
				"use a token, a client certificate or an exec plugin",
				label);
	for (size_t i = 0; i < sizeof imp / sizeof imp[0]; i++)
		if (present(v, imp[i]))
			return llm_fail(LLM_EUNSUPPORTED, "%s: impersonation (%s) is not supported",
					label, imp[i]);
	return LLM_OK;
}

static llm_err user_token(kc_config *c, const json_t *v, const char *file, const char *label)
{
	const char *tok;
	llm_err rc = opt_str(v, "token", label, &tok);

	if (!rc)
		rc = dup_str(tok, &c->token);
	if (rc || c->token)
		return rc; /* token wins over tokenFile, as in client-go */
	return file_src_field(&c->token_file, v, "tokenFile", file, label, TOKEN_FILE_MAX, true);
}

static llm_err user_cert(kc_config *c, const json_t *v, const char *file, const char *label)
{
	bool have_cert, have_key;
	llm_err rc;

	rc = pem_data(v, "client-certificate-data", label, &c->cert_pem);
	if (!rc && !c->cert_pem)
		rc = file_src_field(&c->cert_file, v, "client-certificate", file, label,
				    PEM_FILE_MAX, false);
	if (!rc)
		rc = pem_data(v, "client-key-data", label, &c->key_pem);
	if (!rc && !c->key_pem)
		rc = file_src_field(&c->key_file, v, "client-key", file, label, PEM_FILE_MAX,
				    false);
	if (rc)
		return rc;
	have_cert = c->cert_pem || c->cert_file.path;
	have_key = c->key_pem || c->key_file.path;
	if (have_cert != have_key)
		return llm_fail(LLM_EINVAL, "%s: %s is set but %s is not", label,
				have_cert ? "a client certificate" : "a client key",
				have_cert ? "a client key" : "a client certificate");
	return LLM_OK;
}

/* --- exec plugin configuration -------------------------------------------- */

static llm_err exec_api_version(struct exec_src *e, const json_t *ex, const char *label)
{
	const char *api;
	llm_err rc = opt_str(ex, "apiVersion", label, &api);

	if (rc)
		return rc;
	if (!api)
		return llm_fail(LLM_EINVAL, "%s: exec: apiVersion is not set (use %s)", label,
				EXEC_V1);
	if (strcmp(api, EXEC_V1) && strcmp(api, EXEC_V1BETA1))
		return llm_fail(LLM_EINVAL,
				"%s: exec: apiVersion \"%s\" is not supported (use %s or %s)",
				label, api, EXEC_V1, EXEC_V1BETA1);
	return dup_str(api, &e->api_version);
}

/* argv = command (resolved against the kubeconfig's directory when it is a
 * relative path with a '/', like client-go) followed by args. */
static llm_err exec_argv(struct exec_src *e, const json_t *ex, const char *file, const char *label)
{
	const json_t *args = json_object_get(ex, "args");
	const char *cmd;
	llm_err rc = opt_str(ex, "command", label, &cmd);

	if (!rc && !cmd)
		rc = llm_fail(LLM_EINVAL, "%s: exec: command is not set", label);
	if (!rc && args && !json_is_null(args) && !json_is_array(args))
		rc = llm_fail(LLM_EINVAL, "%s: exec: args is %s, not a list", label,
			      json_kind(args));
	if (rc)
		return rc;
	e->argv = calloc(json_array_size(args) + 2, sizeof *e->argv);
	if (!e->argv)
		return nomem();
	rc = strchr(cmd, '/') ? resolve_path(file, cmd, &e->argv[0]) : dup_str(cmd, &e->argv[0]);
	for (size_t i = 0; !rc && i < json_array_size(args); i++) {
		const char *a = json_string_value(json_array_get(args, i));

		if (!a)
			return llm_fail(LLM_EINVAL, "%s: exec: args[%zu] is not a string", label,
					i);
		rc = dup_str(a, &e->argv[i + 1]);
	}
	return rc;
}

static llm_err exec_env_item(struct exec_src *e, const json_t *item, size_t i, const char *label)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	const json_t *val = json_object_get(item, "value");
	const char *value = json_is_string(val) ? json_string_value(val) : "";
	size_t n;

	if (!name || !*name || strchr(name, '='))
		return llm_fail(LLM_EINVAL, "%s: exec: env[%zu] needs a name without '='", label,
				i);
	if (val && !json_is_null(val) && !json_is_string(val))
		return llm_fail(LLM_EINVAL, "%s: exec: env \"%s\": value is %s, not a string",
				label, name, json_kind(val));
	n = strlen(name) + strlen(value) + 2;
	e->env[e->nenv] = malloc(n);
	if (!e->env[e->nenv])
		return nomem();
	snprintf(e->env[e->nenv++], n, "%s=%s", name, value);
	return LLM_OK;
}

static llm_err exec_env(struct exec_src *e, const json_t *ex, const char *label)
{
	const json_t *env = json_object_get(ex, "env");
	llm_err rc = LLM_OK;

	if (env && !json_is_null(env) && !json_is_array(env))
		return llm_fail(LLM_EINVAL, "%s: exec: env is %s, not a list", label,
				json_kind(env));
	e->env = calloc(json_array_size(env) + 1, sizeof *e->env);
	if (!e->env)
		return nomem();
	for (size_t i = 0; !rc && i < json_array_size(env); i++)
		rc = exec_env_item(e, json_array_get(env, i), i, label);
	return rc;
}

static llm_err exec_mode(struct exec_src *e, const json_t *ex, const char *label)
{
	const char *mode, *hint;
	llm_err rc = opt_str(ex, "interactiveMode", label, &mode);

	if (!rc && mode && !strcmp(mode, "Always"))
		rc = llm_fail(LLM_EUNSUPPORTED,
			      "%s: exec: interactiveMode Always needs a terminal, and plugins run "
			      "here never get one (use Never or IfAvailable)",
			      label);
	else if (!rc && mode && strcmp(mode, "Never") && strcmp(mode, "IfAvailable"))
		rc = llm_fail(
			LLM_EINVAL,
			"%s: exec: interactiveMode \"%s\" is not Never, IfAvailable or Always",
			label, mode);
	if (!rc)
		rc = opt_str(ex, "installHint", label, &hint);
	if (!rc)
		rc = dup_str(hint, &e->install_hint);
	if (!rc && e->install_hint)
		trim(e->install_hint);
	if (!rc)
		rc = opt_bool(ex, "provideClusterInfo", label, &e->cluster_info);
	return rc;
}

/* The cluster part of KUBERNETES_EXEC_INFO (provideClusterInfo). */
static llm_err exec_cluster_info(const kc_config *c, json_t *info)
{
	json_t *cl = json_pack("{s:s}", "server", c->server);
	char *ca = c->ca_pem ? b64_encode(c->ca_pem) : NULL;
	int bad = !cl || (c->ca_pem && !ca);

	if (!bad && c->tls_name)
		bad |= json_object_set_new(cl, "tls-server-name", json_string(c->tls_name));
	if (!bad && c->insecure)
		bad |= json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
	if (!bad && ca)
		bad |= json_object_set_new(cl, "certificate-authority-data", json_string(ca));
	free(ca);
	if (!bad)
		return json_object_set_new(info, "cluster", cl) ? nomem() : LLM_OK;
	json_decref(cl);
	return nomem();
}

/* Builds "KUBERNETES_EXEC_INFO=<ExecCredential JSON>" for the plugin. */
static llm_err exec_info(const kc_config *c, struct exec_src *e)
{
	json_t *info = json_pack("{s:s,s:s,s:{s:b}}", "apiVersion", e->api_version, "kind",
				 "ExecCredential", "spec", "interactive", 0);
	char *text = NULL;
	llm_err rc = info ? LLM_OK : nomem();
	size_t n;

	if (!rc && e->cluster_info)
		rc = exec_cluster_info(c, info);
	if (!rc && !(text = json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = nomem();
	json_decref(info);
	if (rc)
		return rc;
	n = strlen(EXEC_INFO_VAR) + strlen(text) + 2;
	e->info_env = malloc(n);
	if (e->info_env)
		snprintf(e->info_env, n, "%s=%s", EXEC_INFO_VAR, text);
	free(text);
	return e->info_env ? LLM_OK : nomem();
}

static void exec_cache_clear(struct exec_src *e)
{
	free(e->token);
	free(e->cert);
	free(e->key);
	e->token = e->cert = e->key = NULL;
	e->cached = e->expires = false;
}

static void exec_src_free(struct exec_src *e)
{
	if (!e)
		return;
	exec_cache_clear(e);
	free(e->label);
	free(e->api_version);
	free_strv(e->argv);
	free_strv(e->env);
	free(e->info_env);
	free(e->install_hint);
	free(e);
}

static llm_err user_exec(kc_config *c, const json_t *v, const char *file, const char *label)
{
	const json_t *ex = json_object_get(v, "exec");
	struct exec_src *e;
	llm_err rc;

	if (!ex || json_is_null(ex))
		return LLM_OK;
	if (!json_is_object(ex))
		return llm_fail(LLM_EINVAL, "%s: exec is %s, not a mapping", label, json_kind(ex));
	e = calloc(1, sizeof *e);
	if (!e)
		return nomem();
	c->exec = e; /* freed with c */
	rc = dup_str(label, &e->label);
	if (!rc)
		rc = exec_api_version(e, ex, label);
	if (!rc)
		rc = exec_argv(e, ex, file, label);
	if (!rc)
		rc = exec_env(e, ex, label);
	if (!rc)
		rc = exec_mode(e, ex, label);
	if (!rc)
		rc = exec_info(c, e);
	return rc;
}

static llm_err apply_user(kc_config *c, const json_t *rec, const char *name)
{
	const json_t *v = rec_body(rec);
	const char *file = rec_file(rec);
	char label[LABEL_MAX];
	llm_err rc;

	snprintf(label, sizeof label, "%s: user \"%s\"", file, name);
	rc = user_unsupported(v, label);
	if (!rc)
		rc = user_token(c, v, file, label);
	if (!rc)
		rc = user_cert(c, v, file, label);
	if (!rc)
		rc = user_exec(c, v, file, label);
	return rc;
}

/* Fills c from the selected context of m. */
static llm_err resolve(struct merged *m, const char *want, kc_config *c)
{
	const json_t *rec, *crec, *urec, *ctx;
	const char *name, *cname, *uname, *ns;
	char label[LABEL_MAX];
	llm_err rc;

	rc = select_context(m, want, &rec, &name);
	if (rc)
		return rc;
	ctx = rec_body(rec);
	snprintf(label, sizeof label, "%s: context \"%s\"", rec_file(rec), name);
	rc = context_ref(m, ctx, label, SEC_CLUSTERS, &crec, &cname);
	if (!rc)
		rc = context_ref(m, ctx, label, SEC_USERS, &urec, &uname);
	if (!rc)
		rc = opt_str(ctx, "namespace", label, &ns);
	if (!rc)
		rc = dup_str(ns ? ns : "default", &c->ns);
	if (!rc)
		rc = apply_cluster(c, crec, cname);
	if (!rc)
		rc = apply_user(c, urec, uname);
	return rc;
}

/* --- lifecycle ------------------------------------------------------------ */

static llm_err config_new(int refresh_s, int exec_timeout_s, kc_config **out)
{
	kc_config *c = calloc(1, sizeof *c);

	*out = NULL;
	if (!c)
		return nomem();
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return nomem();
	}
	c->refresh_s = refresh_s > 0 ? refresh_s : DEFAULT_REFRESH_S;
	c->exec_timeout_s = exec_timeout_s > 0 ? exec_timeout_s : DEFAULT_EXEC_TIMEOUT;
	*out = c;
	return LLM_OK;
}

void kc_config_destroy(kc_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ns);
	free(c->ca_pem);
	free(c->tls_name);
	free(c->token);
	free(c->cert_pem);
	free(c->key_pem);
	file_src_free(&c->token_file);
	file_src_free(&c->cert_file);
	file_src_free(&c->key_file);
	exec_src_free(c->exec);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static llm_err no_kubeconfig(const struct kc_config_opts *o, const char *tried, kc_config **out)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");

	if (host && *host)
		return kc_config_in_cluster(NULL, o->refresh_seconds, out);
	return llm_fail(LLM_ENOTFOUND,
			"no kubeconfig: %s, and not running in a cluster "
			"(KUBERNETES_SERVICE_HOST unset)",
			tried);
}

llm_err kc_config_load(const struct kc_config_opts *opts, kc_config **out)
{
	static const struct kc_config_opts none;
	char tried[512] = "";
	kc_config *c = NULL;
	struct merged m;
	llm_err rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	rc = merged_init(&m);
	if (!rc)
		rc = gather(opts, &m, tried, sizeof tried);
	if (rc)
		goto out_free_merged;
	if (!m.nfiles) {
		rc = no_kubeconfig(opts, tried, out);
		goto out_free_merged;
	}
	rc = config_new(opts->refresh_seconds, opts->exec_timeout_seconds, &c);
	if (!rc)
		rc = resolve(&m, opts->context, c);
	if (rc)
		kc_config_destroy(c);
	else
		*out = c;
out_free_merged:
	merged_free(&m);
	return rc;
}

/* --- in-cluster ----------------------------------------------------------- */

static llm_err join_path(const char *dir, const char *name, char **out)
{
	size_t n = strlen(dir) + strlen(name) + 2;

	*out = malloc(n);
	if (!*out)
		return nomem();
	snprintf(*out, n, "%s/%s", dir, name);
	return LLM_OK;
}

static llm_err in_cluster_server(kc_config *c, const char *host, const char *port)
{
	bool v6 = strchr(host, ':') && host[0] != '[';
	size_t n = strlen(host) + strlen(port) + sizeof "https://[]:";

	c->server = malloc(n);
	if (!c->server)
		return nomem();
	snprintf(c->server, n, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	return LLM_OK;
}

/* The namespace file is optional: client-go falls back to "default". */
static llm_err in_cluster_namespace(kc_config *c, const char *dir)
{
	char *path;
	llm_err rc = join_path(dir, "namespace", &path);

	if (!rc)
		rc = read_text_file(path, NAMESPACE_FILE_MAX, "in-cluster: namespace", &c->ns);
	free(path);
	if (rc == LLM_ENOTFOUND)
		rc = LLM_OK;
	if (!rc && c->ns)
		trim(c->ns);
	if (!rc && (!c->ns || !*c->ns)) {
		free(c->ns);
		rc = dup_str("default", &c->ns);
	}
	return rc;
}

static llm_err in_cluster_files(kc_config *c, const char *dir)
{
	char *path;
	llm_err rc = join_path(dir, "ca.crt", &path);

	if (!rc)
		rc = read_text_file(path, PEM_FILE_MAX, "in-cluster: CA", &c->ca_pem);
	free(path);
	if (!rc)
		rc = in_cluster_namespace(c, dir);
	if (!rc)
		rc = join_path(dir, "token", &path);
	if (!rc)
		rc = file_src_open(&c->token_file, path, "in-cluster: token", TOKEN_FILE_MAX, true);
	return rc;
}

llm_err kc_config_in_cluster(const char *sa_dir, int refresh_seconds, kc_config **out)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	kc_config *c;
	llm_err rc;

	*out = NULL;
	if (!host || !*host || !port || !*port)
		return llm_fail(LLM_ENOTFOUND, "not running in a cluster: KUBERNETES_SERVICE_HOST "
					       "and KUBERNETES_SERVICE_PORT must both be set");
	rc = config_new(refresh_seconds, 0, &c);
	if (rc)
		return rc;
	rc = in_cluster_server(c, host, port);
	if (!rc)
		rc = in_cluster_files(c, sa_dir ? sa_dir : SA_DIR_DEFAULT);
	if (rc)
		kc_config_destroy(c);
	else
		*out = c;
	return rc;
}

/* --- running the exec plugin ---------------------------------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* fd moved to a number >= 3, close-on-exec, so that dup2() onto 0..2 in the
 * child cannot clobber it. */
static int fd_high(int fd)
{
	int hi;

	if (fd < 0 || fd > 2)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return hi;
}

static int pipe_high(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	fds[0] = fd_high(fds[0]);
	fds[1] = fd_high(fds[1]);
	return fds[0] < 0 || fds[1] < 0 ? -1 : 0;
}

/* True when the variable "NAME=..." in var has the name of one of e's. */
static bool env_overridden(const struct exec_src *e, const char *var)
{
	size_t n = strcspn(var, "=");

	for (size_t i = 0; i <= e->nenv; i++) {
		const char *mine = i < e->nenv ? e->env[i] : e->info_env;

		if (strcspn(mine, "=") == n && !strncmp(mine, var, n))
			return true;
	}
	return false;
}

/* The inherited environment plus the plugin's variables, which win. */
static char **build_envp(const struct exec_src *e)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ && environ[n])
		n++;
	envp = calloc(n + e->nenv + 2, sizeof *envp);
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env_overridden(e, environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < e->nenv; i++)
		envp[k++] = e->env[i];
	envp[k] = e->info_env;
	return envp;
}

static void child_say(const char *s)
{
	ssize_t r = write(2, s, strlen(s));

	(void)r;
}

/* In the forked child: only async-signal-safe calls until exec. The plugin
 * gets its own process group, default SIGPIPE and an empty signal mask. */
__attribute__((noreturn)) static void child_exec(const struct exec_src *e, char **envp, int in,
						 int out, int err)
{
	sigset_t none;
	int saved;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	execvpe(e->argv[0], e->argv, envp);
	saved = errno;
	child_say(e->argv[0]);
	child_say(saved == ENOENT ? ": command not found\n" : ": cannot execute\n");
	_exit(saved == ENOENT ? 127 : 126);
}

static llm_err proc_spawn(const struct exec_src *e, struct proc *p)
{
	int out[2] = {-1, -1}, err[2] = {-1, -1}, in;
	char **envp = build_envp(e);
	llm_err rc = LLM_OK;

	if (!envp)
		return nomem();
	in = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (in < 0 || pipe_high(out) || pipe_high(err)) {
		rc = llm_fail(LLM_EIO, "cannot set up pipes: %s", strerror(errno));
		goto out_close;
	}
	p->pid = fork();
	if (p->pid == 0)
		child_exec(e, envp, in, out[1], err[1]);
	if (p->pid < 0) {
		rc = llm_fail(LLM_EIO, "fork: %s", strerror(errno));
		goto out_close;
	}
	setpgid(p->pid, p->pid); /* the child does it too; whichever runs first */
	p->out_fd = out[0];
	p->err_fd = err[0];
	out[0] = err[0] = -1;
out_close:
	close_fd(&in);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	free(envp);
	return rc;
}

static int ms_left(int64_t deadline)
{
	int64_t ms = (deadline - mono_ns() + 999999) / 1000000;

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Reads what is available on *fd into stdout or the stderr excerpt; closes
 * *fd at end of file. LLM_ETOOLARGE when stdout passes its cap. */
static llm_err proc_read(struct proc *p, int *fd)
{
	char chunk[16384];
	ssize_t n = read(*fd, chunk, sizeof chunk);
	size_t keep;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return LLM_OK;
	if (n < 0)
		return llm_fail(LLM_EIO, "read: %s", strerror(errno));
	if (n == 0) {
		close_fd(fd);
		return LLM_OK;
	}
	if (fd == &p->out_fd)
		return llm_buf_append(&p->out, chunk, (size_t)n);
	keep = EXEC_STDERR_KEEP - p->err_len;
	keep = (size_t)n < keep ? (size_t)n : keep;
	memcpy(p->err + p->err_len, chunk, keep);
	p->err_len += keep;
	p->err[p->err_len] = '\0';
	return LLM_OK;
}

/* Reads stdout and stderr until both reach end of file or the deadline. */
static llm_err proc_collect(struct proc *p, int64_t deadline)
{
	llm_err rc = LLM_OK;

	while (!rc && (p->out_fd >= 0 || p->err_fd >= 0)) {
		struct pollfd fds[2] = {{.fd = p->out_fd, .events = POLLIN},
					{.fd = p->err_fd, .events = POLLIN}};
		int ms = ms_left(deadline), n;

		if (ms <= 0)
			return LLM_ETIMEDOUT;
		n = poll(fds, 2, ms);
		if (n < 0 && errno != EINTR)
			return llm_fail(LLM_EIO, "poll: %s", strerror(errno));
		if (n > 0 && fds[0].revents)
			rc = proc_read(p, &p->out_fd);
		if (!rc && n > 0 && fds[1].revents)
			rc = proc_read(p, &p->err_fd);
	}
	return rc;
}

/* Reaps the plugin once its output is closed, waiting until the deadline. */
static llm_err proc_wait(struct proc *p, int64_t deadline)
{
	const struct timespec nap = {0, 2000000};

	for (;;) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);

		if (r == p->pid) {
			p->pid = -1;
			return LLM_OK;
		}
		if (r < 0 && errno == ECHILD)
			p->pid = -1; /* reaped elsewhere (SIGCHLD ignored?) */
		if (r < 0 && errno != EINTR)
			return llm_fail(LLM_EIO, "waitpid: %s", strerror(errno));
		if (ms_left(deadline) <= 0)
			return LLM_ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

/* Kills the plugin's process group and reaps the plugin if still running. */
static void proc_kill(struct proc *p)
{
	if (p->pid <= 0)
		return;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
		;
	p->pid = -1;
}

static void proc_free(struct proc *p)
{
	proc_kill(p);
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
	llm_buf_free(&p->out);
}

/* The stderr excerpt on one line, or a note that there was none. */
static const char *proc_stderr(struct proc *p)
{
	while (p->err_len > 0 && isspace((unsigned char)p->err[p->err_len - 1]))
		p->err[--p->err_len] = '\0';
	for (size_t i = 0; i < p->err_len; i++)
		if ((unsigned char)p->err[i] < 0x20)
			p->err[i] = ' ';
	return p->err_len ? p->err : "(nothing on stderr)";
}

static llm_err exec_run(const kc_config *c, const struct exec_src *e, struct proc *p)
{
	int64_t deadline = mono_ns() + (int64_t)c->exec_timeout_s * NS_PER_S;
	const char *cmd = e->argv[0];
	char why[LABEL_MAX];
	llm_err rc;

	rc = proc_spawn(e, p);
	if (!rc)
		rc = proc_collect(p, deadline);
	if (!rc)
		rc = proc_wait(p, deadline);
	proc_kill(p);
	snprintf(why, sizeof why, "%s", llm_last_error());
	if (rc == LLM_ETIMEDOUT)
		return llm_fail(rc,
				"%s: exec plugin '%s' did not finish within %d s and was killed",
				e->label, cmd, c->exec_timeout_s);
	if (rc == LLM_ETOOLARGE)
		return llm_fail(rc, "%s: exec plugin '%s' wrote more than %u bytes to stdout",
				e->label, cmd, EXEC_STDOUT_MAX);
	if (rc)
		return llm_fail(rc, "%s: exec plugin '%s': %s", e->label, cmd, why);
	return LLM_OK;
}

static llm_err exec_check_status(const struct exec_src *e, struct proc *p)
{
	const char *cmd = e->argv[0], *err = proc_stderr(p);
	int st = p->status;

	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return LLM_OK;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && e->install_hint)
		return llm_fail(LLM_EIO,
				"%s: exec plugin '%s' exited with status 127 (not found; %s): %s",
				e->label, cmd, e->install_hint, err);
	if (WIFEXITED(st))
		return llm_fail(LLM_EIO, "%s: exec plugin '%s' exited with status %d: %s", e->label,
				cmd, WEXITSTATUS(st), err);
	return llm_fail(LLM_EIO, "%s: exec plugin '%s' was killed by signal %d: %s", e->label, cmd,
			WIFSIGNALED(st) ? WTERMSIG(st) : 0, err);
}

/* Fails with "<label>: exec plugin '<cmd>' <problem> (stderr: ...)". */
__attribute__((format(printf, 4, 5))) static llm_err
exec_fail(const struct exec_src *e, struct proc *p, llm_err code, const char *fmt, ...)
{
	char problem[LABEL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	return llm_fail(code, "%s: exec plugin '%s' %s (stderr: %s)", e->label, e->argv[0], problem,
			proc_stderr(p));
}

static bool two_digits(const char *p, int *out)
{
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return false;
	*out = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

/* Parses an RFC 3339 timestamp (fractional seconds, 'Z' or +hh:mm). */
static bool parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm;
	const char *p;
	int hh = 0, mm = 0, sign = 1;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return false;
	if (*p == '.' && isdigit((unsigned char)p[1]))
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && two_digits(p + 1, &hh) && p[3] == ':' &&
		   two_digits(p + 4, &mm) && hh < 24 && mm < 60) {
		sign = *p == '-' ? -1 : 1;
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	*out = timegm(&tm) - sign * (hh * 3600 + mm * 60);
	return true;
}

static const char *nonempty(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : NULL;
}

/* Takes the credential out of the ExecCredential's status into the cache. */
static llm_err exec_take_status(struct exec_src *e, struct proc *p, const json_t *doc)
{
	const json_t *st = json_object_get(doc, "status"), *exp;
	const char *tok = nonempty(st, "token"), *cert = nonempty(st, "clientCertificateData");
	const char *key = nonempty(st, "clientKeyData");

	if (!tok && !cert && !key)
		return exec_fail(e, p, LLM_EINVAL,
				 "returned neither status.token nor status.clientCertificateData "
				 "and status.clientKeyData");
	if (!cert != !key)
		return exec_fail(e, p, LLM_EINVAL, "returned %s without %s",
				 cert ? "clientCertificateData" : "clientKeyData",
				 cert ? "clientKeyData" : "clientCertificateData");
	exp = json_object_get(st, "expirationTimestamp");
	if (exp && !json_is_null(exp) &&
	    (!json_is_string(exp) || !parse_rfc3339(json_string_value(exp), &e->expiry)))
		return exec_fail(e, p, LLM_EINVAL,
				 "returned an expirationTimestamp that is not RFC 3339");
	e->expires = exp && !json_is_null(exp);
	if (dup_str(tok, &e->token) || dup_str(cert, &e->cert) || dup_str(key, &e->key))
		return nomem();
	e->cached = true;
	return LLM_OK;
}

static llm_err exec_parse(struct exec_src *e, struct proc *p)
{
	const char *kind, *api;
	char why[LABEL_MAX];
	json_t *doc;
	llm_err rc;

	rc = llm_json_parse(llm_buf_str(&p->out), p->out.len, EXEC_STDOUT_MAX, "stdout", &doc);
	if (rc) {
		snprintf(why, sizeof why, "%s", llm_last_error());
		return exec_fail(e, p, rc, "did not print JSON: %s", why);
	}
	kind = json_string_value(json_object_get(doc, "kind"));
	api = json_string_value(json_object_get(doc, "apiVersion"));
	if (!kind || strcmp(kind, "ExecCredential"))
		rc = exec_fail(e, p, LLM_EINVAL, "returned kind \"%s\", expected ExecCredential",
			       kind ? kind : "");
	else if (!api || strcmp(api, e->api_version))
		rc = exec_fail(e, p, LLM_EINVAL, "returned apiVersion \"%s\", expected \"%s\"",
			       api ? api : "", e->api_version);
	else
		rc = exec_take_status(e, p, doc);
	json_decref(doc);
	if (rc)
		exec_cache_clear(e);
	return rc;
}

/* Runs the plugin unless its cached credential is still good. */
static llm_err exec_refresh(const kc_config *c, struct exec_src *e)
{
	struct proc p = {.pid = -1, .out_fd = -1, .err_fd = -1};
	llm_err rc;

	if (e->cached && (!e->expires || time(NULL) + EXEC_EXPIRY_SLACK_S < e->expiry))
		return LLM_OK;
	exec_cache_clear(e);
	llm_buf_init(&p.out, EXEC_STDOUT_MAX);
	rc = exec_run(c, e, &p);
	if (!rc)
		rc = exec_check_status(e, &p);
	if (!rc)
		rc = exec_parse(e, &p);
	proc_free(&p);
	return rc;
}

/* --- credentials ---------------------------------------------------------- */

static llm_err refresh_files(kc_config *c)
{
	int64_t now = mono_ns(), every = (int64_t)c->refresh_s * NS_PER_S;
	llm_err rc = file_src_refresh(&c->token_file, now, every);

	if (!rc)
		rc = file_src_refresh(&c->cert_file, now, every);
	if (!rc)
		rc = file_src_refresh(&c->key_file, now, every);
	return rc;
}

static llm_err fill_creds(const kc_config *c, struct kc_creds *out)
{
	const struct exec_src *e = c->exec;
	const char *tok = c->token ? c->token : c->token_file.data;
	const char *cert = c->cert_pem ? c->cert_pem : c->cert_file.data;
	const char *key = c->key_pem ? c->key_pem : c->key_file.data;

	if (e && e->token)
		tok = e->token;
	if (e && e->cert) {
		cert = e->cert;
		key = e->key;
	}
	if (dup_str(tok, &out->token) || dup_str(cert, &out->cert_pem) ||
	    dup_str(key, &out->key_pem))
		return nomem();
	return LLM_OK;
}

llm_err kc_config_creds(kc_config *c, struct kc_creds *out)
{
	llm_err rc;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&c->lock);
	rc = refresh_files(c);
	if (!rc && c->exec)
		rc = exec_refresh(c, c->exec);
	if (!rc)
		rc = fill_creds(c, out);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		kc_creds_free(out);
	return rc;
}

void kc_creds_free(struct kc_creds *creds)
{
	if (!creds)
		return;
	free(creds->token);
	free(creds->cert_pem);
	free(creds->key_pem);
	memset(creds, 0, sizeof *creds);
}

void kc_config_invalidate(kc_config *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->token_file.stale = c->cert_file.stale = c->key_file.stale = true;
	if (c->exec)
		exec_cache_clear(c->exec);
	pthread_mutex_unlock(&c->lock);
}

/* --- accessors ------------------------------------------------------------ */

const char *kc_config_server(const kc_config *c)
{
	return c->server;
}

const char *kc_config_namespace(const kc_config *c)
{
	return c->ns;
}

const char *kc_config_ca_pem(const kc_config *c)
{
	return c->ca_pem;
}

const char *kc_config_tls_server_name(const kc_config *c)
{
	return c->tls_name;
}

bool kc_config_insecure(const kc_config *c)
{
	return c->insecure;
}
