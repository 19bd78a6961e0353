/* The events.k8s.io/v1 recorder against the local control plane, writing
 * through the operator's identity: one Event per key with series.count
 * counting every occurrence, separate Events per reason, note and object,
 * the regarding reference, cluster-scoped objects in "default", the
 * background flusher, the series window, the cache cap, concurrent
 * recorders, and failures that are logged without stopping the recorder.
 * Needs KUBECONFIG and LLMOPS_OPERATOR_KUBECONFIG (set by e2e/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "itest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_client.h"
#include "kc_config.h"
#include "kc_events.h"
#include "llm_json.h"
#include "llm_log.h"

#define CONTROLLER "llmops.dev/operator"

/* A namespace of its own per run, so reruns never meet old objects. */
static char NS[64], INSTANCE[64];

static kc_config *admin_cfg, *operator_cfg;
static kc_http *admin, *operator;

/* A recorder on the operator identity that flushes every 100 ms. */
static kc_events *recorder(int window_ms, size_t max_entries)
{
	struct kc_events_opts o = {.reporting_controller = CONTROLLER,
				   .reporting_instance = INSTANCE,
				   .flush_interval_ms = 100,
				   .series_window_ms = window_ms,
				   .max_entries = max_entries};
	kc_events *r;

	assert_rc(kc_events_new_opts(operator, & o, &r), LLM_OK);
	return r;
}

/* Creates a ConfigMap in NS and returns it as the server has it. */
static json_t *configmap(const char *name)
{
	json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
			       "metadata", "name", name),
	       *out;

	assert_rc(kc_create(admin, &KC_CONFIGMAPS, NS, cm, &out), LLM_OK);
	json_decref(cm);
	return out;
}

/* The Events in ns about the object named name (a list's items, owned). */
static json_t *events_about(const char *ns, const char *name)
{
	char sel[128];
	struct kc_list_opts o = {.field_selector = sel};
	json_t *list, *items;

	snprintf(sel, sizeof(sel), "regarding.name=%s", name);
	assert_rc(kc_list(admin, &KC_EVENTS, ns, &o, &list), LLM_OK);
	items = json_incref(json_object_get(list, "items"));
	json_decref(list);
	assert_non_null(items);
	return items;
}

/* The one Event in items with this reason (borrowed); fails if not one. */
static json_t *only_with_reason(json_t *items, const char *reason)
{
	json_t *found = NULL, *ev;
	size_t i, n = 0;

	json_array_foreach(items, i, ev)
	{
		if (strcmp(llm_json_str_or(ev, "reason", ""), reason) == 0) {
			found = ev;
			n++;
		}
	}
	if (n != 1)
		fail_msg("%zu Events with reason %s, want 1", n, reason);
	return found;
}

static json_int_t series_count(const json_t *ev)
{
	json_int_t n = 0;

	if (llm_json_get_int(ev, "series.count", &n) != LLM_OK)
		return 0;
	return n;
}

static int setup(void **state)
{
	struct kc_config_opts admin_opts = {0};
	struct kc_config_opts op_opts = {.kubeconfig = getenv("LLMOPS_OPERATOR_KUBECONFIG")};
	struct kc_http_opts fast = {.qps = -1};
	json_t *ns, *out;

	(void)state;
	snprintf(NS, sizeof(NS), "kc-events-%ld", (long)getpid());
	snprintf(INSTANCE, sizeof(INSTANCE), "test-%ld", (long)getpid());
	if (!op_opts.kubeconfig) {
		fprintf(stderr, "setup: LLMOPS_OPERATOR_KUBECONFIG is not set (run through "
				"e2e/run.sh)\n");
		return -1;
	}
	if (kc_config_load(&admin_opts, &admin_cfg) || kc_config_load(&op_opts, &operator_cfg) ||
	    kc_http_new(admin_cfg, &fast, &admin) || kc_http_new(operator_cfg, &fast, &operator)) {
		fprintf(stderr, "setup: %s\n", llm_last_error());
		return -1;
	}
	ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
		       "name", NS);
	if (kc_create(admin, &KC_NAMESPACES, NULL, ns, &out)) {
		fprintf(stderr, "setup: %s\n", llm_last_error());
		json_decref(out);
		json_decref(ns);
		return -1;
	}
	json_decref(out);
	json_decref(ns);
	return 0;
}

static int teardown(void **state)
{
	json_t *out;

	(void)state;
	if (admin) {
		kc_delete(admin, &KC_NAMESPACES, NULL, NS, NULL, &out);
		json_decref(out);
	}
	kc_http_destroy(admin);
	kc_http_destroy(operator);
	kc_config_destroy(admin_cfg);
	kc_config_destroy(operator_cfg);
	return 0;
}

static void test_events_first_occurrence_creates_an_event_with_regarding(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("first"), *items, *ev;
	const char *name, *t;

	(void)state;
	assert_rc(kc_events_record(r, cm, "Normal", "Created", "Reconcile", "created %s %d",
				   "first", 1),
		  LLM_OK);
	kc_events_flush(r);
	items = events_about(NS, "first");
	assert_int_equal(json_array_size(items), 1);
	ev = json_array_get(items, 0);
	assert_string_equal(llm_json_str_or(ev, "regarding.apiVersion", ""), "v1");
	assert_string_equal(llm_json_str_or(ev, "regarding.kind", ""), "ConfigMap");
	assert_string_equal(llm_json_str_or(ev, "regarding.name", ""), "first");
	assert_string_equal(llm_json_str_or(ev, "regarding.namespace", ""), NS);
	assert_string_equal(llm_json_str_or(ev, "regarding.uid", "-"),
			    llm_json_str_or(cm, "metadata.uid", ""));
	assert_string_equal(llm_json_str_or(ev, "regarding.resourceVersion", "-"),
			    llm_json_str_or(cm, "metadata.resourceVersion", ""));
	assert_string_equal(llm_json_str_or(ev, "reportingController", ""), CONTROLLER);
	assert_string_equal(llm_json_str_or(ev, "reportingInstance", ""), INSTANCE);
	assert_string_equal(llm_json_str_or(ev, "type", ""), "Normal");
	assert_string_equal(llm_json_str_or(ev, "reason", ""), "Created");
	assert_string_equal(llm_json_str_or(ev, "action", ""), "Reconcile");
	assert_string_equal(llm_json_str_or(ev, "note", ""), "created first 1");
	assert_null(json_object_get(ev, "series"));
	/* <regarding name>.<16 hex digits>; eventTime is a MicroTime. */
	name = llm_json_str_or(ev, "metadata.name", "");
	assert_int_equal(strlen(name), strlen("first.") + 16);
	assert_int_equal(strncmp(name, "first.", 6), 0);
	assert_int_equal(strspn(name + 6, "0123456789abcdef"), 16);
	t = llm_json_str_or(ev, "eventTime", "");
	assert_int_equal(strlen(t), strlen("2026-01-01T00:00:00.000000Z"));
	assert_int_equal(t[19], '.');
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_100_identical_records_make_one_event_with_count_100(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("hundred"), *items, *ev;

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_rc(kc_events_record(r, cm, "Normal", "Scaled", "Scale", "scaled to 3"),
			  LLM_OK);
	kc_events_flush(r);
	items = events_about(NS, "hundred");
	assert_int_equal(json_array_size(items), 1);
	ev = json_array_get(items, 0);
	assert_int_equal(series_count(ev), 100);
	assert_non_null(json_object_get(json_object_get(ev, "series"), "lastObservedTime"));
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_different_reasons_notes_and_objects_are_separate(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *a = configmap("sep-a"), *b = configmap("sep-b"), *items;

	(void)state;
	for (int i = 0; i < 3; i++) {
		kc_events_record(r, a, "Normal", "Started", "Start", "start");
		kc_events_record(r, a, "Normal", "Stopped", "Stop", "stop");
		kc_events_record(r, a, "Normal", "Stopped", "Stop", "stop %d", 2);
		kc_events_record(r, b, "Normal", "Started", "Start", "start");
	}
	kc_events_flush(r);
	items = events_about(NS, "sep-a");
	assert_int_equal(json_array_size(items), 3);
	assert_int_equal(series_count(only_with_reason(items, "Started")), 3);
	json_decref(items);
	items = events_about(NS, "sep-b");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(series_count(json_array_get(items, 0)), 3);
	json_decref(items);
	json_decref(b);
	json_decref(a);
	kc_events_destroy(r);
}

static void test_events_warning_type_is_recorded(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("warned"), *items, *ev;

	(void)state;
	kc_events_record(r, cm, "Normal", "Synced", "Sync", "ok");
	kc_events_record(r, cm, "Warning", "SyncFailed", "Sync", "pull failed: %s", "timeout");
	kc_events_flush(r);
	items = events_about(NS, "warned");
	assert_int_equal(json_array_size(items), 2);
	ev = only_with_reason(items, "SyncFailed");
	assert_string_equal(llm_json_str_or(ev, "type", ""), "Warning");
	assert_string_equal(llm_json_str_or(ev, "note", ""), "pull failed: timeout");
	assert_string_equal(llm_json_str_or(only_with_reason(items, "Synced"), "type", ""),
			    "Normal");
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_cluster_scoped_object_lands_in_default(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *ns, *items, *ev, *out;

	(void)state;
	assert_rc(kc_get(admin, &KC_NAMESPACES, NULL, NS, KC_MAIN, &ns), LLM_OK);
	kc_events_record(r, ns, "Normal", "Observed", "Watch", "namespace seen");
	kc_events_flush(r);
	items = events_about("default", NS);
	assert_int_equal(json_array_size(items), 1);
	ev = json_array_get(items, 0);
	assert_string_equal(llm_json_str_or(ev, "metadata.namespace", ""), "default");
	assert_string_equal(llm_json_str_or(ev, "regarding.kind", ""), "Namespace");
	assert_string_equal(llm_json_str_or(ev, "regarding.name", ""), NS);
	assert_null(json_object_get(json_object_get(ev, "regarding"), "namespace"));
	assert_string_equal(llm_json_str_or(ev, "regarding.uid", "-"),
			    llm_json_str_or(ns, "metadata.uid", ""));
	assert_rc(kc_delete(admin, &KC_EVENTS, "default", llm_json_str_or(ev, "metadata.name", ""),
			    NULL, &out),
		  LLM_OK);
	json_decref(out);
	json_decref(items);
	json_decref(ns);
	kc_events_destroy(r);
}

static void test_events_flusher_writes_series_without_flush(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("background"), *items = NULL;
	json_int_t count = 0;

	(void)state;
	kc_events_record(r, cm, "Normal", "Tick", "Tick", "tick");
	kc_events_flush(r);
	for (int i = 0; i < 4; i++)
		kc_events_record(r, cm, "Normal", "Tick", "Tick", "tick");
	/* No flush: the 100 ms flusher must get there by itself. */
	for (int i = 0; i < 50 && count != 5; i++) {
		usleep(100000);
		json_decref(items);
		items = events_about(NS, "background");
		count = series_count(json_array_get(items, 0));
	}
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(count, 5);
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_repeat_after_the_window_creates_a_new_event(void **state)
{
	kc_events *r = recorder(300, 0);
	json_t *cm = configmap("windowed"), *items;

	(void)state;
	kc_events_record(r, cm, "Normal", "Blip", "Probe", "blip");
	kc_events_flush(r);
	usleep(500000);
	kc_events_record(r, cm, "Normal", "Blip", "Probe", "blip");
	kc_events_flush(r);
	items = events_about(NS, "windowed");
	assert_int_equal(json_array_size(items), 2);
	assert_null(json_object_get(json_array_get(items, 0), "series"));
	assert_null(json_object_get(json_array_get(items, 1), "series"));
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_cache_cap_forgets_the_least_recently_seen(void **state)
{
	kc_events *r = recorder(0, 2);
	json_t *cm = configmap("capped"), *items;
	size_t i, r1 = 0;
	json_t *ev;

	(void)state;
	kc_events_record(r, cm, "Normal", "R1", "A", "n");
	kc_events_record(r, cm, "Normal", "R2", "A", "n");
	kc_events_record(r, cm, "Normal", "R3", "A", "n"); /* forgets R1 */
	kc_events_record(r, cm, "Normal", "R1", "A", "n"); /* new Event; forgets R2 */
	kc_events_record(r, cm, "Normal", "R3", "A", "n"); /* still cached: a repeat */
	kc_events_flush(r);
	items = events_about(NS, "capped");
	assert_int_equal(json_array_size(items), 4);
	json_array_foreach(items, i, ev)
	{
		if (strcmp(llm_json_str_or(ev, "reason", ""), "R1") == 0) {
			r1++;
			assert_int_equal(series_count(ev), 0);
		}
	}
	assert_int_equal(r1, 2);
	assert_int_equal(series_count(only_with_reason(items, "R3")), 2);
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

struct burst {
	kc_events *r;
	json_t *obj;
};

static void *record_50(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 50; i++)
		if (kc_events_record(b->r, b->obj, "Warning", "Busy", "Work", "busy") != LLM_OK)
			return arg;
	return NULL;
}

static void test_events_concurrent_records_are_all_counted(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("threads"), *items;
	struct burst b = {r, cm};
	pthread_t t[4];
	void *failed;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, record_50, &b), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &failed);
		assert_null(failed);
	}
	kc_events_flush(r);
	items = events_about(NS, "threads");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(series_count(json_array_get(items, 0)), 200);
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_destroy_writes_pending_counts(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("destroyed"), *items;

	(void)state;
	for (int i = 0; i < 3; i++)
		kc_events_record(r, cm, "Normal", "Last", "Stop", "bye");
	kc_events_destroy(r);
	items = events_about(NS, "destroyed");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(series_count(json_array_get(items, 0)), 3);
	json_decref(items);
	json_decref(cm);
}

static void test_events_failed_create_is_logged_and_recording_goes_on(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("survivor"), *items;
	json_t *ghost = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "apiVersion", "v1", "kind",
				  "ConfigMap", "metadata", "name", "ghost", "namespace",
				  "no-such-namespace-kc-events", "uid", "1234");
	FILE *log = tmpfile();
	char text[4096] = "";
	size_t n;

	(void)state;
	assert_non_null(log);
	llm_log_set_output(log);
	assert_rc(kc_events_record(r, ghost, "Warning", "Lost", "Find", "nowhere"), LLM_OK);
	kc_events_flush(r);
	llm_log_set_output(NULL);
	rewind(log);
	n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	fclose(log);
	assert_non_null(strstr(text, "cannot create Event no-such-namespace-kc-events/ghost."));
	assert_non_null(strstr(text, "WARN"));
	kc_events_record(r, cm, "Normal", "Alive", "Check", "still here");
	kc_events_flush(r);
	items = events_about(NS, "survivor");
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	json_decref(ghost);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_long_note_is_cut_at_a_character_boundary(void **state)
{
	kc_events *r = recorder(0, 0);
	json_t *cm = configmap("long-note"), *items;
	char note[3001];
	const char *got;

	(void)state;
	/* "x" then 1500 two-byte characters: byte 1024 is mid-character. */
	note[0] = 'x';
	for (int i = 0; i < 1500; i++)
		memcpy(note + 1 + 2 * i, "\xc3\xa9", 2);
	note[3001 - 1] = '\0';
	assert_rc(kc_events_record(r, cm, "Normal", "Long", "Say", "%s", note), LLM_OK);
	kc_events_flush(r);
	items = events_about(NS, "long-note");
	assert_int_equal(json_array_size(items), 1);
	got = llm_json_str_or(json_array_get(items, 0), "note", "");
	assert_int_equal(strlen(got), 1023);
	assert_int_equal(memcmp(got, note, 1023), 0);
	json_decref(items);
	json_decref(cm);
	kc_events_destroy(r);
}

static void test_events_invalid_arguments_are_rejected(void **state)
{
	kc_events *r = recorder(0, 0), *bad;
	json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
			       "metadata", "name", "x");
	json_t *nameless = json_pack("{s:s}", "kind", "ConfigMap");

	(void)state;
	assert_rc(kc_events_record(r, cm, "Info", "R", "A", "n"), LLM_EINVAL);
	assert_rc(kc_events_record(r, cm, "Normal", "", "A", "n"), LLM_EINVAL);
	assert_rc(kc_events_record(r, cm, "Normal", "R", NULL, "n"), LLM_EINVAL);
	assert_rc(kc_events_record(r, nameless, "Normal", "R", "A", "n"), LLM_EINVAL);
	assert_rc(kc_events_record(NULL, cm, "Normal", "R", "A", "n"), LLM_OK);
	assert_rc(kc_events_new(operator, "", INSTANCE, &bad), LLM_EINVAL);
	assert_null(bad);
	assert_rc(kc_events_new(operator, CONTROLLER, NULL, &bad), LLM_EINVAL);
	kc_events_flush(NULL);
	kc_events_destroy(NULL);
	json_decref(nameless);
	json_decref(cm);
	kc_events_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_first_occurrence_creates_an_event_with_regarding),
		cmocka_unit_test(test_events_100_identical_records_make_one_event_with_count_100),
		cmocka_unit_test(test_events_different_reasons_notes_and_objects_are_separate),
		cmocka_unit_test(test_events_warning_type_is_recorded),
		cmocka_unit_test(test_events_cluster_scoped_object_lands_in_default),
		cmocka_unit_test(test_events_flusher_writes_series_without_flush),
		cmocka_unit_test(test_events_repeat_after_the_window_creates_a_new_event),
		cmocka_unit_test(test_events_cache_cap_forgets_the_least_recently_seen),
		cmocka_unit_test(test_events_concurrent_records_are_all_counted),
		cmocka_unit_test(test_events_destroy_writes_pending_counts),
		cmocka_unit_test(test_events_failed_create_is_logged_and_recording_goes_on),
		cmocka_unit_test(test_events_long_note_is_cut_at_a_character_boundary),
		cmocka_unit_test(test_events_invalid_arguments_are_rejected),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
