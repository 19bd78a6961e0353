/* Kubernetes runtime benchmarks against a live API server (make bench-kube):
 *   rss        resident memory of this process (the operator's library) with
 *              an informer over N ConfigMaps of about 1 KB each
 *   watch      create -> informer handler latency, p50 and p99, on loopback
 *   reconcile  no-op reconciles per second over N objects, measured from the
 *              first create to the last object reconciled, with the client
 *              rate limit lifted so the API server is the limit
 * One JSON object per line: {"bench","metric","value","unit"}.
 * Usage: bench_kube [objects]   (KUBECONFIG selects the cluster) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "kc_informer.h"
#include "kc_manager.h"
#include "llm_json.h"
#include "llm_opts.h"
#include "bench.h"

#define CREATORS      8
#define WATCH_SAMPLES 500

static kc_http *http;

static void die(const char *what)
{
	fprintf(stderr, "bench_kube: %s: %s\n", what, llm_last_error());
	exit(1);
}

static void emit(const char *bench, const char *metric, double value, const char *unit)
{
	printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"}\n", bench,
	       metric, value, unit);
	fflush(stdout);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void ensure_namespace(const char *ns)
{
	json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
				"metadata", "name", ns),
	       *out;

	kc_create(http, &KC_NAMESPACES, NULL, obj, &out);
	json_decref(out);
	json_decref(obj);
}

/* A ConfigMap with about 1 KB of data. */
static json_t *configmap(const char *name)
{
	char payload[1025];

	memset(payload, 'x', 1024);
	payload[1024] = '\0';
	return json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
			 "metadata", "name", name, "data", "payload", payload);
}

struct creator {
	const char *ns;
	int from, to;
};

static void *create_range(void *arg)
{
	struct creator *c = arg;

	for (int i = c->from; i < c->to; i++) {
		char name[64];
		json_t *cm, *out;
		llm_err rc;

		snprintf(name, sizeof(name), "obj-%06d", i);
		cm = configmap(name);
		rc = kc_create(http, &KC_CONFIGMAPS, c->ns, cm, &out);
		if (rc && rc != LLM_EEXIST)
			die("create");
		json_decref(out);
		json_decref(cm);
	}
	return NULL;
}

/* Creates obj-000000 .. obj-<n-1> in ns with CREATORS threads. */
static void create_objects(const char *ns, int n)
{
	pthread_t t[CREATORS];
	struct creator c[CREATORS];

	for (int i = 0; i < CREATORS; i++) {
		c[i] = (struct creator){ns, n * i / CREATORS, n * (i + 1) / CREATORS};
		pthread_create(&t[i], NULL, create_range, &c[i]);
	}
	for (int i = 0; i < CREATORS; i++)
		pthread_join(t[i], NULL);
}

static void bench_rss(int n)
{
	struct kc_informer_opts io = {.gvr = &KC_CONFIGMAPS, .namespace = "bench-rss"};
	kc_informer *inf;
	long before;

	ensure_namespace("bench-rss");
	create_objects("bench-rss", n);
	before = rss_kib();
	if (kc_informer_new(http, &io, &inf) || kc_informer_start(inf))
		die("informer");
	if (!kc_informer_wait_synced(inf, 300000))
		die("informer sync");
	emit("rss", "objects", (double)n, "count");
	emit("rss", "rss_before_informer", (double)before / 1024, "MiB");
	emit("rss", "rss_with_informer", (double)rss_kib() / 1024, "MiB");
	kc_informer_destroy(inf);
}

/* Watch latency: the handler notes when each object arrived. */
static double created_at[WATCH_SAMPLES], seen_at[WATCH_SAMPLES];

static void on_add(json_t *obj, void *data)
{
	const char *name = llm_json_str_or(obj, "metadata.name", "");
	int i;

	(void)data;
	if (sscanf(name, "lat-%d", &i) == 1 && i >= 0 && i < WATCH_SAMPLES)
		seen_at[i] = bench_now_s();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void bench_watch(void)
{
	struct kc_informer_opts io = {.gvr = &KC_CONFIGMAPS, .namespace = "bench-watch"};
	struct kc_informer_handlers hs = {.on_add = on_add};
	double lat[WATCH_SAMPLES];
	kc_informer *inf;
	char ns[64];

	snprintf(ns, sizeof(ns), "bench-watch");
	ensure_namespace(ns);
	if (kc_informer_new(http, &io, &inf) || kc_informer_add_handlers(inf, &hs) ||
	    kc_informer_start(inf) || !kc_informer_wait_synced(inf, 60000))
		die("informer");
	for (int i = 0; i < WATCH_SAMPLES; i++) {
		char name[64];
		json_t *cm, *out;

		snprintf(name, sizeof(name), "lat-%d-%ld", i, (long)getpid());
		cm = configmap(name);
		created_at[i] = bench_now_s();
		if (kc_create(http, &KC_CONFIGMAPS, ns, cm, &out))
			die("create");
		json_decref(out);
		json_decref(cm);
		while (seen_at[i] == 0 && bench_now_s() - created_at[i] < 10)
			usleep(50);
		lat[i] = (seen_at[i] - created_at[i]) * 1000;
	}
	qsort(lat, WATCH_SAMPLES, sizeof(lat[0]), cmp_double);
	emit("watch", "latency_p50", lat[WATCH_SAMPLES / 2], "ms");
	emit("watch", "latency_p99", lat[WATCH_SAMPLES * 99 / 100], "ms");
	kc_informer_destroy(inf);
}

static atomic_int reconciled;

static struct kc_result noop(const char *ns, const char *name, void *data)
{
	(void)ns;
	(void)name;
	(void)data;
	atomic_fetch_add(&reconciled, 1);
	return (struct kc_result){KC_DONE, 0};
}

static void *run_manager(void *m)
{
	kc_manager_run(m);
	return NULL;
}

static void bench_reconcile(int n)
{
	struct kc_manager_opts mo = {.namespace = "bench-reconcile",
				     .metrics_addr = "0",
				     .probe_addr = "0",
				     .workers = 4};
	struct kc_controller_def def = {
		.name = "noop", .gvr = &KC_CONFIGMAPS, .kind = "ConfigMap", .reconcile = noop};
	kc_manager *m;
	pthread_t t;
	double t0;

	ensure_namespace("bench-reconcile");
	if (kc_manager_new(http, &mo, &m) || kc_manager_add(m, &def))
		die("manager");
	pthread_create(&t, NULL, run_manager, m);
	while (atomic_load(&reconciled) == 0) /* kube-root-ca.crt proves it runs */
		usleep(1000);
	atomic_store(&reconciled, 0);
	t0 = bench_now_s();
	create_objects("bench-reconcile", n);
	while (atomic_load(&reconciled) < n && bench_now_s() - t0 < 600)
		usleep(1000);
	emit("reconcile", "objects", (double)n, "count");
	emit("reconcile", "throughput", n / (bench_now_s() - t0), "objects/s");
	kc_manager_request_stop(m);
	pthread_join(t, NULL);
	kc_manager_destroy(m);
}

int main(int argc, char **argv)
{
	struct kc_config_opts co = {0};
	struct kc_http_opts ho = {.qps = -1};
	kc_config *cfg;
	long n = 10000;

	if (argc > 1 && llm_parse_long(argv[1], "objects", 1, 1000000, &n))
		die("usage: bench_kube [objects]");
	if (kc_config_load(&co, &cfg) || kc_http_new(cfg, &ho, &http))
		die("connect");
	bench_rss((int)n);
	bench_watch();
	bench_reconcile((int)n);
	kc_http_destroy(http);
	kc_config_destroy(cfg);
	return 0;
}
