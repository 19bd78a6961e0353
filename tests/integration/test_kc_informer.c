/* The informer against the local control plane: the initial list and the
 * label index, watch events and the cache, selectors, periodic resync, an
 * API server restart, an expired resourceVersion (relist), a prompt stop
 * (watch open, or a list the server never answers), backoff when the
 * identity may not list, and the transport's body cap.
 *
 * Each test gets a namespace of its own and records what the handlers saw,
 * replaying it into a "view" (key -> resourceVersion) that must end equal to
 * a fresh list from the server, as must the cache. Two tests restart the
 * API server and one freezes it for a moment. The cluster and the way to
 * reach it come from the environment e2e/run.sh sets: KUBECONFIG,
 * LLMOPS_OPERATOR_KUBECONFIG, LLMOPS_CLUSTER (for cluster.sh),
 * LLMOPS_CLUSTER_DIR, LLMOPS_CONTROLPLANE_BIN, LLMOPS_ROOT and
 * LLMOPS_ETCD_ENDPOINT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "kc_informer.h"
#include "llm_json.h"

static kc_config *admin_cfg, *operator_cfg;
static kc_http *admin;
static int ns_seq;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls cond every 20 ms for up to ms milliseconds; fails the test if it
 * never holds. */
#define assert_eventually(cond, ms)                                                        \
	do {                                                                               \
		uint64_t end_ = now_ms() + (ms);                                           \
		while (!(cond)) {                                                          \
			if (now_ms() >= end_)                                              \
				fail_msg("still false after %d ms: %s", (int)(ms), #cond); \
			usleep(20000);                                                     \
		}                                                                          \
	} while (0)

/* --- what the handlers saw --------------------------------------------------- */

#define MAX_EVENTS 4096

struct event {
	char type; /* 'A'dd, 'U'pdate, 'D'elete */
	char name[64];
	char value[256];     /* data.value of the object (the new one for updates) */
	char old_value[256]; /* updates: data.value of the old object */
	char rv[32];	     /* resourceVersion of the object (the new one) */
	bool same;	     /* updates: old and new are the same object */
};

/* Handlers run on the transport's I/O thread and the informer's threads,
 * so everything here is under mu. view replays the events: key ->
 * resourceVersion of what the handlers were last told. */
struct recorder {
	pthread_mutex_t mu;
	struct event ev[MAX_EVENTS];
	size_t n, dropped;
	json_t *view;
};

static void record(struct recorder *r, char type, json_t *obj, json_t *old)
{
	struct event e = {.type = type, .same = old && old == obj};
	char key[512];

	snprintf(e.name, sizeof(e.name), "%s", llm_json_str_or(obj, "metadata.name", ""));
	snprintf(e.value, sizeof(e.value), "%s", llm_json_str_or(obj, "data.value", ""));
	snprintf(e.old_value, sizeof(e.old_value), "%s", llm_json_str_or(old, "data.value", ""));
	snprintf(e.rv, sizeof(e.rv), "%s", llm_json_str_or(obj, "metadata.resourceVersion", ""));
	if (kc_object_key(obj, key, sizeof(key)))
		snprintf(key, sizeof(key), "(no key)");
	pthread_mutex_lock(&r->mu);
	if (r->n < MAX_EVENTS)
		r->ev[r->n++] = e;
	else
		r->dropped++;
	if (type == 'D')
		json_object_del(r->view, key);
	else
		json_object_set_new(r->view, key, json_string(e.rv));
	pthread_mutex_unlock(&r->mu);
}

static void on_add(json_t *obj, void *data)
{
	record(data, 'A', obj, NULL);
}

static void on_update(json_t *old_obj, json_t *new_obj, void *data)
{
	record(data, 'U', new_obj, old_obj);
}

static void on_delete(json_t *obj, void *data)
{
	record(data, 'D', obj, NULL);
}

/* Events of type for name whose value and old value match; NULL matches
 * anything. */
static int count_events(struct recorder *r, char type, const char *name, const char *value,
			const char *old_value)
{
	int n = 0;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++) {
		const struct event *e = &r->ev[i];

		if (e->type == type && (!name || strcmp(e->name, name) == 0) &&
		    (!value || strcmp(e->value, value) == 0) &&
		    (!old_value || strcmp(e->old_value, old_value) == 0))
			n++;
	}
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Updates of name whose old and new are (same true) or are not the same
 * object; a resync delivers the cached object twice. */
static int count_updates(struct recorder *r, const char *name, bool same)
{
	int n = 0;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (r->ev[i].type == 'U' && r->ev[i].same == same &&
		    strcmp(r->ev[i].name, name) == 0)
			n++;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* --- the control plane -------------------------------------------------------------- */

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !v[0])
		fail_msg("%s is not set (run through e2e/run.sh)", name);
	return v;
}

/* Runs argv (argv[0] a path) and returns its exit status, or -1 if it did
 * not run or exit; its stdout and stderr go to out (NUL-terminated,
 * truncated to size). */
static int run_cmd(char *const argv[], char *out, size_t size)
{
	int fds[2], status;
	size_t len = 0;
	char chunk[4096];
	ssize_t n;
	pid_t pid;

	out[0] = '\0';
	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		closefrom(3); /* our sockets stay ours, not a restarted server's */
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0) {
		size_t take = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;

		memcpy(out + len, chunk, take);
		len += take;
	}
	out[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Runs etcdctl against the cluster's etcd with args (NULL-terminated);
 * fails the test unless it exits 0. Output goes to out. */
static void etcdctl(char *out, size_t size, const char *const args[])
{
	char bin[1024], *argv[16];
	int argc = 0;

	snprintf(bin, sizeof(bin), "%s/etcdctl", env("LLMOPS_CONTROLPLANE_BIN"));
	argv[argc++] = bin;
	argv[argc++] = "--endpoints";
	argv[argc++] = (char *)env("LLMOPS_ETCD_ENDPOINT");
	for (int i = 0; args[i] && argc < 15; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	if (run_cmd(argv, out, size) != 0)
		fail_msg("etcdctl %s %s failed: %s", argv[3], argc > 4 ? argv[4] : "", out);
}

static long long etcd_revision(void)
{
	char out[8192];
	json_t *st;
	long long rev;

	etcdctl(out, sizeof(out), (const char *[]){"endpoint", "status", "-w", "json", NULL});
	/* cluster_id and member_id are unsigned 64-bit: too big for json_int_t. */
	st = json_loads(out, JSON_DECODE_INT_AS_REAL, NULL);
	rev = (long long)json_number_value(json_object_get(
		json_object_get(json_object_get(json_array_get(st, 0), "Status"), "header"),
		"revision"));
	json_decref(st);
	if (rev <= 0)
		fail_msg("no revision in etcdctl endpoint status: %s", out);
	return rev;
}

/* False once pid has exited (gone, or a zombie nobody reaped yet). */
static bool pid_alive(pid_t pid)
{
	char path[64], stat[512], *paren;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	n = fread(stat, 1, sizeof(stat) - 1, fp);
	fclose(fp);
	stat[n] = '\0';
	paren = strrchr(stat, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static bool wait_exit(pid_t pid, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (pid_alive(pid)) {
		if (now_ms() >= end)
			return false;
		usleep(20000);
	}
	return true;
}

/* The API server's pid, from the cluster's pid file. */
static pid_t apiserver_pid(void)
{
	char path[1024], text[32];
	FILE *fp;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/pids/kube-apiserver.pid", env("LLMOPS_CLUSTER_DIR"));
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	if (!fgets(text, sizeof(text), fp))
		text[0] = '\0';
	fclose(fp);
	pid = (pid_t)strtol(text, NULL, 10);
	if (pid <= 0 || !pid_alive(pid))
		fail_msg("the API server (pid file %s) is not running", path);
	return pid;
}

/* Freezes (SIGSTOP) or thaws (SIGCONT) the API server: a server that
 * accepts requests and never answers them. */
static void apiserver_freeze(bool freeze, bool *frozen)
{
	assert_int_equal(kill(apiserver_pid(), freeze ? SIGSTOP : SIGCONT), 0);
	*frozen = freeze;
}

/* Stops the API server: SIGTERM, then SIGKILL if it is still there after
 * 3 s. Its graceful termination stops listening at once but then waits up
 * to 60 s for open watch connections (the controller-manager's, the
 * scheduler's, ours) before exiting, too long for a unit of a test suite;
 * either way what clients see is a server that stops answering and
 * connections that break. */
static void apiserver_stop(bool *down)
{
	pid_t pid = apiserver_pid();

	assert_int_equal(kill(pid, SIGTERM), 0);
	*down = true;
	if (!wait_exit(pid, 3000)) {
		assert_int_equal(kill(pid, SIGKILL), 0);
		if (!wait_exit(pid, 10000))
			fail_msg("the API server (pid %ld) did not exit", (long)pid);
	}
}

/* True when the API server answers a GET (which the transport retries
 * over a connection that died with the old server; a POST it would not). */
static bool api_answers(void)
{
	json_t *ns;
	llm_err rc = kc_get(admin, &KC_NAMESPACES, NULL, "default", KC_MAIN, &ns);

	json_decref(ns);
	return rc == LLM_OK;
}

/* Runs cluster.sh up, which starts only what is missing; its exit status. */
static int cluster_up(char *out, size_t size)
{
	char path[1024];
	char *argv[] = {path, "up", NULL};
	const char *root = getenv("LLMOPS_ROOT");

	snprintf(path, sizeof(path), "%s/e2e/controlplane/cluster.sh", root ? root : ".");
	return run_cmd(argv, out, size);
}

/* Starts the missing API server and waits until it answers us. */
static void apiserver_start(bool *down)
{
	char out[16384];

	if (cluster_up(out, sizeof(out)) != 0)
		fail_msg("cluster.sh up failed: %s", out);
	*down = false;
	assert_eventually(api_answers(), 30000);
}

/* For teardown after a test failed during an outage: the next tests need
 * the API server. */
static void apiserver_restart_quietly(void)
{
	char out[16384];

	if (cluster_up(out, sizeof(out)) != 0)
		fprintf(stderr, "teardown: cluster.sh up failed: %s\n", out);
}

/* --- per-test fixture ---------------------------------------------------------- */

struct fixture {
	char ns[64];
	struct recorder *rec;
	kc_informer *inf;
	kc_http *h;	       /* a transport of the test's own, or NULL */
	bool apiserver_down;   /* stopped by the test and not yet restarted */
	bool apiserver_frozen; /* SIGSTOPped by the test and not yet thawed */
};

static int ns_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	json_t *ns, *out;
	llm_err rc;

	if (!f)
		return -1;
	snprintf(f->ns, sizeof(f->ns), "kc-informer-%ld-%d", (long)getpid(), ++ns_seq);
	ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
		       "name", f->ns);
	rc = kc_create(admin, &KC_NAMESPACES, NULL, ns, &out);
	json_decref(out);
	json_decref(ns);
	f->rec = calloc(1, sizeof(*f->rec));
	if (rc || !f->rec) {
		fprintf(stderr, "setup: namespace %s: %s\n", f->ns, llm_last_error());
		free(f->rec);
		free(f);
		return -1;
	}
	pthread_mutex_init(&f->rec->mu, NULL);
	f->rec->view = json_object();
	*state = f;
	return 0;
}

static int ns_teardown(void **state)
{
	struct fixture *f = *state;
	json_t *out;

	if (f->apiserver_frozen)
		kill(apiserver_pid(), SIGCONT);
	kc_informer_destroy(f->inf);
	kc_http_destroy(f->h);
	if (f->apiserver_down)
		apiserver_restart_quietly();
	kc_delete(admin, &KC_NAMESPACES, NULL, f->ns, NULL, &out);
	json_decref(out);
	if (f->rec->dropped)
		fprintf(stderr, "teardown: %zu events not recorded\n", f->rec->dropped);
	json_decref(f->rec->view);
	pthread_mutex_destroy(&f->rec->mu);
	free(f->rec);
	free(f);
	return 0;
}

/* Creates and starts f's informer on h over ConfigMaps (unless o->gvr is
 * set) in f's namespace, with the recording handlers. */
static void start_informer(struct fixture *f, kc_http *h, struct kc_informer_opts *o)
{
	struct kc_informer_handlers hs = {on_add, on_update, on_delete, f->rec};

	o->namespace = f->ns;
	if (!o->gvr)
		o->gvr = &KC_CONFIGMAPS;
	assert_rc(kc_informer_new(h, o, &f->inf), LLM_OK);
	assert_rc(kc_informer_add_handlers(f->inf, &hs), LLM_OK);
	assert_rc(kc_informer_start(f->inf), LLM_OK);
}

static struct kc_informer_stats stats_of(kc_informer *inf)
{
	struct kc_informer_stats s;

	kc_informer_stats(inf, &s);
	return s;
}

static void print_stats(const char *when, kc_informer *inf)
{
	struct kc_informer_stats s = stats_of(inf);

	printf("# informer %s: lists %lu, watches %lu, failures %lu, objects %zu, rv %s\n", when,
	       s.lists, s.watches, s.failures, s.objects, s.resource_version);
}

/* --- ConfigMaps ----------------------------------------------------------------- */

/* Creates ConfigMap name in ns with data.value and, when tier is non-NULL,
 * the label tier=<tier>. */
static void create_cm(const char *ns, const char *name, const char *value, const char *tier)
{
	json_t *cm = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
			       "ConfigMap", "metadata", "name", name, "data", "value", value),
	       *out;

	if (tier)
		json_object_set_new(json_object_get(cm, "metadata"), "labels",
				    json_pack("{s:s}", "tier", tier));
	assert_rc(kc_create(admin, &KC_CONFIGMAPS, ns, cm, &out), LLM_OK);
	json_decref(out);
	json_decref(cm);
}

static void patch_cm(const char *ns, const char *name, json_t *patch)
{
	json_t *out;

	assert_rc(kc_patch(admin, &KC_CONFIGMAPS, ns, name, KC_PATCH_MERGE, patch, KC_MAIN, &out),
		  LLM_OK);
	json_decref(out);
	json_decref(patch);
}

static void set_value(const char *ns, const char *name, const char *value)
{
	patch_cm(ns, name, json_pack("{s:{s:s}}", "data", "value", value));
}

static void set_tier(const char *ns, const char *name, const char *tier)
{
	patch_cm(ns, name, json_pack("{s:{s:{s:s}}}", "metadata", "labels", "tier", tier));
}

static void delete_cm(const char *ns, const char *name)
{
	json_t *out;

	assert_rc(kc_delete(admin, &KC_CONFIGMAPS, ns, name, NULL, &out), LLM_OK);
	json_decref(out);
}

/* data.value of the cached object name, or "(absent)". */
static const char *cached_value(kc_informer *inf, const char *ns, const char *name, char *buf,
				size_t size)
{
	json_t *obj = kc_informer_get(inf, ns, name);

	snprintf(buf, size, "%s", obj ? llm_json_str_or(obj, "data.value", "") : "(absent)");
	json_decref(obj);
	return buf;
}

/* Names of the objects kc_informer_list(key, value) returns, sorted and
 * comma-separated ("" for none). */
static const char *index_names(kc_informer *inf, const char *key, const char *value, char *buf,
			       size_t size)
{
	json_t *all = kc_informer_list(inf, key, value), *obj, *names = json_array();
	size_t i, len = 0;

	json_array_foreach(all, i, obj) json_array_append_new(
		names, json_string(llm_json_str_or(obj, "metadata.name", "")));
	/* Few names: a selection sort keeps this short. */
	for (i = 0; i < json_array_size(names); i++) {
		for (size_t j = i + 1; j < json_array_size(names); j++) {
			json_t *a = json_array_get(names, i), *b = json_array_get(names, j);

			if (strcmp(json_string_value(a), json_string_value(b)) > 0) {
				json_incref(a);
				json_array_set(names, i, b);
				json_array_set_new(names, j, a);
			}
		}
	}
	buf[0] = '\0';
	json_array_foreach(names, i, obj) len +=
		(size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", i ? "," : "",
				 json_string_value(obj));
	json_decref(names);
	json_decref(all);
	return buf;
}

/* --- comparing with the server ---------------------------------------------------- */

/* key -> resourceVersion of every object in a list's items. */
static json_t *state_of(json_t *items)
{
	json_t *out = json_object(), *obj;
	size_t i;

	json_array_foreach(items, i, obj)
	{
		char key[512];

		if (kc_object_key(obj, key, sizeof(key)) == LLM_OK)
			json_object_set_new(
				out, key,
				json_string(llm_json_str_or(obj, "metadata.resourceVersion", "")));
	}
	return out;
}

/* The server's ConfigMaps in ns matching the selectors (NULL: all), or
 * NULL when the list fails. */
static json_t *server_state(const char *ns, const char *labels, const char *fields)
{
	struct kc_list_opts lo = {.label_selector = labels, .field_selector = fields};
	json_t *list, *out;

	if (kc_list_all(admin, &KC_CONFIGMAPS, ns, &lo, &list)) {
		json_decref(list);
		return NULL;
	}
	out = state_of(json_object_get(list, "items"));
	json_decref(list);
	return out;
}

static json_t *cache_state(kc_informer *inf)
{
	json_t *all = kc_informer_list(inf, NULL, NULL), *out = state_of(all);

	json_decref(all);
	return out;
}

static json_t *view_state(struct recorder *r)
{
	json_t *out;

	pthread_mutex_lock(&r->mu);
	out = json_deep_copy(r->view);
	pthread_mutex_unlock(&r->mu);
	return out;
}

/* True when the cache and the handlers' view both equal the server's list
 * (same keys, same resourceVersions); prints all three when print. */
static bool converged(struct fixture *f, const char *labels, const char *fields, bool print)
{
	json_t *s = server_state(f->ns, labels, fields), *c = cache_state(f->inf),
	       *v = view_state(f->rec);
	bool ok = s && json_equal(s, c) && json_equal(s, v);

	if (print) {
		char *ts = s ? json_dumps(s, JSON_SORT_KEYS) : NULL,
		     *tc = json_dumps(c, JSON_SORT_KEYS), *tv = json_dumps(v, JSON_SORT_KEYS);

		printf("# server %s\n# cache  %s\n# view   %s\n", ts ? ts : "(list failed)", tc,
		       tv);
		free(ts);
		free(tc);
		free(tv);
	}
	json_decref(s);
	json_decref(c);
	json_decref(v);
	return ok;
}

static void assert_converged(struct fixture *f, const char *labels, const char *fields, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (!converged(f, labels, fields, false)) {
		if (now_ms() >= end) {
			converged(f, labels, fields, true);
			fail_msg("cache and handlers did not converge on the server's list in %d "
				 "ms",
				 ms);
		}
		usleep(20000);
	}
}

/* --- tests ------------------------------------------------------------------------- */

static void test_informer_initial_list_syncs_and_indexes_labels(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {.page_size = 2}; /* one list, three pages */
	char buf[256];

	create_cm(f->ns, "a", "va", "gold");
	create_cm(f->ns, "b", "vb", "gold");
	create_cm(f->ns, "c", "vc", "silver");
	create_cm(f->ns, "d", "vd", NULL);
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	assert_true(kc_informer_has_synced(f->inf));
	/* Synced means delivered: the adds have already happened. */
	assert_int_equal(count_events(f->rec, 'A', "a", "va", NULL), 1);
	assert_int_equal(count_events(f->rec, 'A', "b", "vb", NULL), 1);
	assert_int_equal(count_events(f->rec, 'A', "c", "vc", NULL), 1);
	assert_int_equal(count_events(f->rec, 'A', "d", "vd", NULL), 1);
	assert_int_equal(count_events(f->rec, 'U', NULL, NULL, NULL), 0);
	assert_string_equal(cached_value(f->inf, f->ns, "a", buf, sizeof(buf)), "va");
	assert_string_equal(cached_value(f->inf, f->ns, "d", buf, sizeof(buf)), "vd");
	assert_string_equal(cached_value(f->inf, f->ns, "zz", buf, sizeof(buf)), "(absent)");
	assert_string_equal(index_names(f->inf, "tier", "gold", buf, sizeof(buf)), "a,b");
	assert_string_equal(index_names(f->inf, "tier", "silver", buf, sizeof(buf)), "c");
	assert_string_equal(index_names(f->inf, "tier", "bronze", buf, sizeof(buf)), "");
	assert_int_equal(stats_of(f->inf).lists, 1);
	/* kube-root-ca.crt may arrive at any time; the cache follows. */
	assert_converged(f, NULL, NULL, 10000);
}

static void test_informer_watch_delivers_add_update_delete(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	char buf[256];

	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	create_cm(f->ns, "w", "one", NULL);
	assert_eventually(count_events(f->rec, 'A', "w", "one", NULL) == 1, 10000);
	assert_string_equal(cached_value(f->inf, f->ns, "w", buf, sizeof(buf)), "one");
	set_value(f->ns, "w", "two");
	assert_eventually(count_events(f->rec, 'U', "w", "two", "one") == 1, 10000);
	assert_string_equal(cached_value(f->inf, f->ns, "w", buf, sizeof(buf)), "two");
	delete_cm(f->ns, "w");
	assert_eventually(count_events(f->rec, 'D', "w", "two", NULL) == 1, 10000);
	assert_string_equal(cached_value(f->inf, f->ns, "w", buf, sizeof(buf)), "(absent)");
	assert_int_equal(count_events(f->rec, 'U', "w", NULL, NULL), 1);
	assert_int_equal(stats_of(f->inf).lists, 1);
	assert_converged(f, NULL, NULL, 10000);
}

static void test_informer_label_index_follows_changes_and_deletes(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	char buf[256];

	create_cm(f->ns, "x", "vx", "gold");
	create_cm(f->ns, "y", "vy", "gold");
	patch_cm(f->ns, "x", json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app", "web"));
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	assert_string_equal(index_names(f->inf, "tier", "gold", buf, sizeof(buf)), "x,y");
	assert_string_equal(index_names(f->inf, "app", "web", buf, sizeof(buf)), "x");

	set_tier(f->ns, "x", "silver");
	assert_eventually(count_events(f->rec, 'U', "x", NULL, NULL) == 1, 10000);
	assert_string_equal(index_names(f->inf, "tier", "silver", buf, sizeof(buf)), "x");
	assert_string_equal(index_names(f->inf, "tier", "gold", buf, sizeof(buf)), "y");
	assert_string_equal(index_names(f->inf, "app", "web", buf, sizeof(buf)), "x");

	delete_cm(f->ns, "x");
	assert_eventually(count_events(f->rec, 'D', "x", NULL, NULL) == 1, 10000);
	assert_string_equal(index_names(f->inf, "tier", "silver", buf, sizeof(buf)), "");
	assert_string_equal(index_names(f->inf, "app", "web", buf, sizeof(buf)), "");
	assert_string_equal(index_names(f->inf, "tier", "gold", buf, sizeof(buf)), "y");
}

static void test_informer_selectors_restrict_what_it_sees(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {.label_selector = "tier=gold",
				     .field_selector = "metadata.name!=skip-me"};
	char buf[256];

	create_cm(f->ns, "g1", "v", "gold");
	create_cm(f->ns, "s1", "v", "silver");
	create_cm(f->ns, "skip-me", "v", "gold");
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	assert_string_equal(index_names(f->inf, NULL, NULL, buf, sizeof(buf)), "g1");

	create_cm(f->ns, "s2", "v", "silver");
	set_value(f->ns, "skip-me", "changed");
	create_cm(f->ns, "g2", "v", "gold");
	assert_eventually(count_events(f->rec, 'A', "g2", NULL, NULL) == 1, 10000);
	/* Objects entering and leaving the selection are adds and deletes. */
	set_tier(f->ns, "s1", "gold");
	assert_eventually(count_events(f->rec, 'A', "s1", NULL, NULL) == 1, 10000);
	set_tier(f->ns, "g1", "silver");
	assert_eventually(count_events(f->rec, 'D', "g1", NULL, NULL) == 1, 10000);
	/* Events come in order: had s2 or skip-me been sent, they would be
	 * here by now. */
	assert_int_equal(count_events(f->rec, 'A', "s2", NULL, NULL), 0);
	assert_int_equal(count_events(f->rec, 'A', "skip-me", NULL, NULL), 0);
	assert_int_equal(count_events(f->rec, 'U', "skip-me", NULL, NULL), 0);
	assert_int_equal(count_events(f->rec, 'A', NULL, NULL, NULL), 3);
	assert_string_equal(index_names(f->inf, NULL, NULL, buf, sizeof(buf)), "g2,s1");
	assert_converged(f, o.label_selector, o.field_selector, 10000);
}

static void test_informer_resync_redelivers_cached_objects(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {.label_selector = "tier=gold", .resync_seconds = 1};
	json_t *obj;
	char rv[32];

	create_cm(f->ns, "r1", "v", "gold");
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	obj = kc_informer_get(f->inf, f->ns, "r1");
	assert_non_null(obj);
	snprintf(rv, sizeof(rv), "%s", llm_json_str_or(obj, "metadata.resourceVersion", ""));
	json_decref(obj);
	assert_eventually(count_updates(f->rec, "r1", true) >= 2, 10000);
	/* Every update was a resync: nothing changed on the server. */
	assert_int_equal(count_updates(f->rec, "r1", false), 0);
	assert_int_equal(count_events(f->rec, 'A', "r1", NULL, NULL), 1);
	obj = kc_informer_get(f->inf, f->ns, "r1");
	assert_string_equal(llm_json_str_or(obj, "metadata.resourceVersion", ""), rv);
	json_decref(obj);
	assert_converged(f, o.label_selector, NULL, 10000);
}

/* Changes right before the API server goes down may or may not reach the
 * informer's watch before it breaks; either the watch delivers them or the
 * relist after the restart does (changes then collapse into the latest
 * state, as in client-go). So the checks are on states: each object's last
 * state reached the handlers, each delete exactly once, and the cache and
 * the handlers' view equal a fresh list. A canary seen after the restart
 * shows the informer is back before the changes made then. */
static void test_informer_survives_apiserver_restart(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	struct kc_informer_stats before;
	uint64_t t0;

	create_cm(f->ns, "p1", "v1", NULL);
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	assert_eventually(stats_of(f->inf).watches >= 1, 10000);
	print_stats("before the restart", f->inf);

	create_cm(f->ns, "a1", "v1", NULL);
	set_value(f->ns, "a1", "v2");
	create_cm(f->ns, "a2", "v1", NULL);
	delete_cm(f->ns, "p1");
	before = stats_of(f->inf);
	t0 = now_ms();
	apiserver_stop(&f->apiserver_down);
	/* The informer notices: its watch breaks and reconnecting fails. */
	assert_eventually(stats_of(f->inf).failures > before.failures, 20000);
	apiserver_start(&f->apiserver_down);
	printf("# API server down and back in %llu ms\n", (unsigned long long)(now_ms() - t0));
	create_cm(f->ns, "canary", "v1", NULL);
	assert_eventually(count_events(f->rec, 'A', "canary", NULL, NULL) == 1, 30000);
	printf("# informer caught up %llu ms after the stop\n",
	       (unsigned long long)(now_ms() - t0));

	create_cm(f->ns, "a3", "v1", NULL);
	set_value(f->ns, "a2", "v2");
	delete_cm(f->ns, "a1");
	assert_converged(f, NULL, NULL, 30000);
	assert_int_equal(count_events(f->rec, 'D', "p1", NULL, NULL), 1);
	assert_int_equal(count_events(f->rec, 'D', "a1", "v2", NULL), 1);
	assert_int_equal(count_events(f->rec, 'A', "a3", "v1", NULL), 1);
	assert_true(count_events(f->rec, 'A', "a2", "v2", NULL) +
			    count_events(f->rec, 'U', "a2", "v2", "v1") ==
		    1);
	assert_true(stats_of(f->inf).watches > before.watches);
	print_stats("after the restart", f->inf);
}

/* How the version is made to expire, and why this way: compacting etcd
 * alone does not do it, since the API server's watch cache serves recent
 * versions from memory (measured: a watch from a compacted version still
 * replays from the cache). A restarted API server's watch cache starts at
 * etcd's current revision, so any older version is "too old" to it (a 410
 * Expired ERROR event); compacting etcd to that revision first makes the
 * same true of etcd, whichever of the two serves the watch. The changes are
 * written straight to etcd while the API server is down (as JSON, which
 * the API server decodes from storage like protobuf), so no watch can carry
 * them: the handlers can only learn of them from the relist. */
static void test_informer_relists_after_resource_version_expires(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	json_t *e1, *e4;
	char key[256], *text, out[4096], rev[32];

	create_cm(f->ns, "e1", "v1", NULL);
	create_cm(f->ns, "e2", "v1", NULL);
	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	create_cm(f->ns, "e3", "v1", NULL);
	assert_eventually(count_events(f->rec, 'A', "e3", NULL, NULL) == 1, 10000);
	assert_int_equal(stats_of(f->inf).lists, 1);
	assert_rc(kc_get(admin, &KC_CONFIGMAPS, f->ns, "e1", KC_MAIN, &e1), LLM_OK);
	print_stats("before the expiry", f->inf);

	apiserver_stop(&f->apiserver_down);
	json_object_del(json_object_get(e1, "metadata"), "resourceVersion");
	json_object_set_new(json_object_get(e1, "data"), "value", json_string("from-etcd"));
	snprintf(key, sizeof(key), "/registry/configmaps/%s/e1", f->ns);
	text = json_dumps(e1, JSON_COMPACT);
	etcdctl(out, sizeof(out), (const char *[]){"put", key, text, NULL});
	free(text);
	e4 = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
		       "ConfigMap", "metadata", "name", "e4", "namespace", f->ns, "uid",
		       "6b1f3c2e-0000-4000-8000-00000000e004", "creationTimestamp",
		       "2025-01-01T00:00:00Z", "data", "value", "from-etcd");
	snprintf(key, sizeof(key), "/registry/configmaps/%s/e4", f->ns);
	text = json_dumps(e4, JSON_COMPACT);
	etcdctl(out, sizeof(out), (const char *[]){"put", key, text, NULL});
	free(text);
	snprintf(key, sizeof(key), "/registry/configmaps/%s/e2", f->ns);
	etcdctl(out, sizeof(out), (const char *[]){"del", key, NULL});
	assert_string_equal(out, "1\n");
	snprintf(rev, sizeof(rev), "%lld", etcd_revision());
	etcdctl(out, sizeof(out), (const char *[]){"compact", rev, "--physical", NULL});
	apiserver_start(&f->apiserver_down);

	assert_eventually(stats_of(f->inf).lists >= 2, 30000);
	assert_converged(f, NULL, NULL, 30000);
	assert_int_equal(count_events(f->rec, 'U', "e1", "from-etcd", "v1"), 1);
	assert_int_equal(count_events(f->rec, 'A', "e4", "from-etcd", NULL), 1);
	assert_int_equal(count_events(f->rec, 'D', "e2", "v1", NULL), 1);
	assert_int_equal(count_events(f->rec, 'D', "e3", NULL, NULL), 0);
	/* And it watches again from the relist's version. */
	create_cm(f->ns, "e5", "v1", NULL);
	assert_eventually(count_events(f->rec, 'A', "e5", "v1", NULL) == 1, 10000);
	assert_converged(f, NULL, NULL, 10000);
	print_stats("after the expiry", f->inf);
	json_decref(e1);
	json_decref(e4);
}

static void test_informer_stop_is_prompt_while_watching(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	struct kc_informer_stats s;
	uint64_t t0, took;

	start_informer(f, admin, &o);
	assert_true(kc_informer_wait_synced(f->inf, 10000));
	/* An add that only a watch can deliver proves one is open. */
	create_cm(f->ns, "late", "v", NULL);
	assert_eventually(count_events(f->rec, 'A', "late", NULL, NULL) == 1, 10000);
	s = stats_of(f->inf);
	assert_int_equal(s.lists, 1);
	assert_true(s.watches >= 1);
	t0 = now_ms();
	kc_informer_stop(f->inf);
	took = now_ms() - t0;
	printf("# stop with a watch open took %llu ms\n", (unsigned long long)took);
	assert_true(took < 10000);
	kc_informer_stop(f->inf);
	kc_informer_destroy(f->inf);
	f->inf = NULL;
	kc_informer_destroy(NULL);
}

/* A list the server never answers (it is frozen) must not hold stop up
 * for the transport's request timeout (a minute), any more than a watch. */
static void test_informer_stop_is_prompt_while_a_list_hangs(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {0};
	struct kc_informer_stats s;
	uint64_t t0, took;

	assert_true(api_answers()); /* a warm connection the list will reuse */
	apiserver_freeze(true, &f->apiserver_frozen);
	start_informer(f, admin, &o);
	assert_false(kc_informer_wait_synced(f->inf, 500));
	s = stats_of(f->inf);
	assert_int_equal(s.lists, 0);
	assert_int_equal(s.failures, 0); /* the list is neither done nor failed */
	t0 = now_ms();
	kc_informer_stop(f->inf);
	took = now_ms() - t0;
	printf("# stop with a list hanging took %llu ms\n", (unsigned long long)took);
	apiserver_freeze(false, &f->apiserver_frozen);
	assert_true(took < 10000);
	assert_eventually(api_answers(), 30000);
}

static void test_informer_without_list_permission_backs_off(void **state)
{
	struct fixture *f = *state;
	struct kc_informer_opts o = {.gvr = &KC_SECRETS};
	struct kc_informer_stats s;
	uint64_t t0, took;

	assert_rc(kc_http_new(operator_cfg, NULL, &f->h), LLM_OK);
	start_informer(f, f->h, &o);
	/* Failures at about 0, 0.8 and 2.4 s (800 ms doubling): three in the
	 * first 3 s, where a constant 800 ms would give four. */
	assert_false(kc_informer_wait_synced(f->inf, 3000));
	s = stats_of(f->inf);
	printf("# forbidden list: %lu failures in 3 s\n", s.failures);
	assert_false(kc_informer_has_synced(f->inf));
	assert_int_equal(s.lists, 0);
	assert_int_equal(s.watches, 0);
	assert_int_equal(s.objects, 0);
	assert_in_range(s.failures, 2, 3);
	t0 = now_ms();
	kc_informer_stop(f->inf);
	took = now_ms() - t0;
	assert_true(took < 10000);
	assert_int_equal(stats_of(f->inf).lists, 0);
}

static void test_transport_fails_a_response_over_its_body_cap(void **state)
{
	struct fixture *f = *state;
	struct kc_http_opts capped = {.qps = -1, .max_body = 4096};
	char value[301], *text;
	json_t *out;

	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	for (int i = 0; i < 40; i++) {
		char name[32];

		snprintf(name, sizeof(name), "big-%02d", i);
		create_cm(f->ns, name, value, NULL);
	}
	/* The same list is fine without the cap, and over 4096 bytes. */
	assert_rc(kc_list(admin, &KC_CONFIGMAPS, f->ns, NULL, &out), LLM_OK);
	text = json_dumps(out, JSON_COMPACT);
	assert_true(strlen(text) > 3 * 4096);
	free(text);
	json_decref(out);

	assert_rc(kc_http_new(admin_cfg, &capped, &f->h), LLM_OK);
	assert_rc(kc_list(f->h, &KC_CONFIGMAPS, f->ns, NULL, &out), LLM_ETOOLARGE);
	assert_null(out);
	assert_non_null(strstr(llm_last_error(), "over 4096 bytes"));
	/* A small answer through the capped transport still works. */
	assert_rc(kc_get(f->h, &KC_CONFIGMAPS, f->ns, "big-00", KC_MAIN, &out), LLM_OK);
	json_decref(out);
}

static int setup(void **state)
{
	struct kc_config_opts admin_opts = {0};
	struct kc_config_opts op_opts = {.kubeconfig = getenv("LLMOPS_OPERATOR_KUBECONFIG")};
	struct kc_http_opts fast = {.qps = -1};

	(void)state;
	if (!op_opts.kubeconfig) {
		fprintf(stderr, "setup: LLMOPS_OPERATOR_KUBECONFIG is not set (run through "
				"e2e/run.sh)\n");
		return -1;
	}
	if (kc_config_load(&admin_opts, &admin_cfg) || kc_config_load(&op_opts, &operator_cfg) ||
	    kc_http_new(admin_cfg, &fast, &admin)) {
		fprintf(stderr, "setup: %s\n", llm_last_error());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kc_http_destroy(admin);
	kc_config_destroy(admin_cfg);
	kc_config_destroy(operator_cfg);
	return 0;
}

#define informer_test(fn) cmocka_unit_test_setup_teardown(fn, ns_setup, ns_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		informer_test(test_informer_initial_list_syncs_and_indexes_labels),
		informer_test(test_informer_watch_delivers_add_update_delete),
		informer_test(test_informer_label_index_follows_changes_and_deletes),
		informer_test(test_informer_selectors_restrict_what_it_sees),
		informer_test(test_informer_resync_redelivers_cached_objects),
		informer_test(test_informer_survives_apiserver_restart),
		informer_test(test_informer_relists_after_resource_version_expires),
		informer_test(test_informer_stop_is_prompt_while_watching),
		informer_test(test_informer_stop_is_prompt_while_a_list_hangs),
		informer_test(test_informer_without_list_permission_backs_off),
		informer_test(test_transport_fails_a_response_over_its_body_cap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
