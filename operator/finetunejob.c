/* FineTuneJob reconciler: a headless Service and one Pod per worker, run as
 * a gang. All workers run or none: when any worker fails, the whole gang is
 * deleted and started again as the next attempt (the agents resume from the
 * latest checkpoint), until backoffLimit restarts have been used. suspend
 * removes the workers (and the clock of activeDeadlineSeconds, as for a
 * Job); the deadline fails the job with reason DeadlineExceeded; a worker
 * exiting 64 means the image's agent lacks the role and exiting 65 means the
 * job's input is wrong (spec, dataset, base model), which no restart can
 * fix; ttlSecondsAfterFinished deletes a finished job.
 *
 * Pods are named <job>-a<attempt>-w<rank> and labelled with the attempt, so
 * a restarted gang never mixes with the old one. */
#include "finetunejob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_meta.h"
#include "llm_json.h"

#define EXIT_ROLE_UNAVAILABLE 64
#define EXIT_INVALID_INPUT    65 /* sysexits.h EX_DATAERR */

static long spec_long(json_t *ftj, const char *path, long def)
{
	json_int_t v;

	return llm_json_get_int(ftj, path, &v) == LLM_OK ? (long)v : def;
}

json_t *ftj_service(json_t *ftj)
{
	char name[300];
	json_t *svc;

	snprintf(name, sizeof(name), "%s-workers", llm_json_str_or(ftj, "metadata.name", ""));
	svc = op_child(ftj, "v1", "Service", name, "finetune");
	json_object_set_new(svc, "spec",
			    json_pack("{s:s, s:b, s:{s:s}, s:[{s:s, s:i}]}", "clusterIP", "None",
				      "publishNotReadyAddresses", 1, "selector",
				      "llmops.dev/finetunejob",
				      llm_json_str_or(ftj, "metadata.name", ""), "ports", "name",
				      "rendezvous", "port", FTJ_RENDEZVOUS_PORT));
	return svc;
}

/* Rank, world size, rank 0's stable DNS name for the rendezvous, and an id
 * of this gang (the job's uid and the attempt) with which rank 0 refuses a
 * worker of an earlier attempt that is still shutting down. Workers with
 * GPUs ask for the "auto" collectives: NCCL where the agent trains on the
 * GPU (the rendezvous fails the gang clearly if ranks disagree). */
static void add_rendezvous_env(json_t *container, json_t *ftj, long attempt, long rank)
{
	const char *name = llm_json_str_or(ftj, "metadata.name", "");
	char buf[512];

	snprintf(buf, sizeof(buf), "%ld", rank);
	op_env(container, "LLMOPS_RANK", buf);
	snprintf(buf, sizeof(buf), "%ld", spec_long(ftj, "spec.workers", 1));
	op_env(container, "LLMOPS_WORLD_SIZE", buf);
	snprintf(buf, sizeof(buf), "%s-w0.%s-workers.%s.svc", name, name,
		 llm_json_str_or(ftj, "metadata.namespace", ""));
	op_env(container, "LLMOPS_MASTER_ADDR", buf);
	snprintf(buf, sizeof(buf), "%d", FTJ_RENDEZVOUS_PORT);
	op_env(container, "LLMOPS_MASTER_PORT", buf);
	snprintf(buf, sizeof(buf), "%s-a%ld", llm_json_str_or(ftj, "metadata.uid", ""), attempt);
	op_env(container, "LLMOPS_JOB_ID", buf);
	if (spec_long(ftj, "spec.gpusPerWorker", 0) > 0)
		op_env(container, "LLMOPS_COLL_BACKEND", "auto");
}

/* Fields holding URIs whose pvc:// claims the workers mount. */
static const char *const uri_fields[] = {"spec.baseModel", "spec.dataset.train",
					 "spec.dataset.validation", "spec.output", NULL};

json_t *ftj_worker_pod(struct op_ctx *c, json_t *ftj, long attempt, long rank)
{
	const char *job = llm_json_str_or(ftj, "metadata.name", "");
	json_t *spec = op_pod_spec(c, ftj, "finetune", spec_long(ftj, "spec.gpusPerWorker", 0),
				   uri_fields);
	json_t *container = json_array_get(json_object_get(spec, "containers"), 0);
	char name[300], text[300];
	json_t *pod, *labels;

	snprintf(name, sizeof(name), "%s-a%ld-w%ld", job, attempt, rank);
	pod = op_child(ftj, "v1", "Pod", name, "finetune");
	labels = json_object_get(json_object_get(pod, "metadata"), "labels");
	snprintf(text, sizeof(text), "%ld", attempt);
	json_object_set_new(labels, "llmops.dev/attempt", json_string(text));
	snprintf(text, sizeof(text), "%ld", rank);
	json_object_set_new(labels, "llmops.dev/rank", json_string(text));
	add_rendezvous_env(container, ftj, attempt, rank);
	json_object_set_new(container, "ports",
			    json_pack("[{s:s, s:i}]", "name", "rendezvous", "containerPort",
				      FTJ_RENDEZVOUS_PORT));
	json_object_set_new(spec, "restartPolicy", json_string("Never"));
	snprintf(text, sizeof(text), "%s-w%ld", job, rank);
	json_object_set_new(spec, "hostname", json_string(text));
	snprintf(text, sizeof(text), "%s-workers", job);
	json_object_set_new(spec, "subdomain", json_string(text));
	json_object_set_new(pod, "spec", spec);
	return pod;
}

/* --- reconcile ------------------------------------------------------------------------- */

/* What the current gang's pods are doing. */
struct gang {
	long workers, attempt;
	long running, succeeded, failed, present;
	bool role_missing;	   /* a worker exited 64 */
	const char *input_problem; /* a worker exited 65: its termination message or "" */
	bool present_rank[64];
	json_t *stale;	 /* pods of older attempts */
	json_t *current; /* pods of this attempt */
};

static long exit_code(json_t *pod)
{
	json_int_t code = -1;

	llm_json_get_int(pod, "status.containerStatuses[0].state.terminated.exitCode", &code);
	return (long)code;
}

static void classify(json_t *pods, struct gang *g)
{
	char attempt[32];
	json_t *pod;
	size_t i;

	snprintf(attempt, sizeof(attempt), "%ld", g->attempt);
	g->stale = json_array();
	g->current = json_array();
	json_array_foreach(pods, i, pod)
	{
		const char *phase = llm_json_str_or(pod, "status.phase", "Pending");
		long rank =
			strtol(llm_json_str_or(pod, "metadata.labels[\"llmops.dev/rank\"]", "-1"),
			       NULL, 10);

		if (strcmp(llm_json_str_or(pod, "metadata.labels[\"llmops.dev/attempt\"]", ""),
			   attempt) != 0 ||
		    rank < 0 || rank >= g->workers) {
			json_array_append(g->stale, pod);
			continue;
		}
		json_array_append(g->current, pod);
		g->present_rank[rank] = true;
		g->present++;
		g->running += strcmp(phase, "Running") == 0;
		g->succeeded += strcmp(phase, "Succeeded") == 0;
		if (strcmp(phase, "Failed") == 0) {
			g->failed++;
			g->role_missing |= exit_code(pod) == EXIT_ROLE_UNAVAILABLE;
			if (exit_code(pod) == EXIT_INVALID_INPUT)
				g->input_problem = llm_json_str_or(
					pod, "status.containerStatuses[0].state.terminated.message",
					"");
		}
	}
}

static void gang_free(struct gang *g)
{
	json_decref(g->stale);
	json_decref(g->current);
}

/* Ends the job: its workers go, the status says why. */
static struct kc_result finish(struct op_ctx *c, json_t *ftj, json_t *status, struct gang *g,
			       bool ok, const char *reason, const char *message)
{
	char now[40];

	if (!ok) /* finished workers stay, with their logs, until the job goes */
		op_delete_all(c, &KC_PODS, g->current);
	op_format_time(op_now(), now, sizeof(now));
	json_object_set_new(status, "phase", json_string(ok ? "Succeeded" : "Failed"));
	json_object_set_new(status, "completionTime", json_string(now));
	if (ok)
		json_object_set(status, "output",
				json_object_get(json_object_get(ftj, "spec"), "output"));
	op_condition(status, ftj, ok ? "Succeeded" : "Failed", "True", reason, message);
	op_condition(status, ftj, "Running", "False", reason, message);
	op_condition(status, ftj, "Ready", ok ? "True" : "False", reason, message);
	op_event(c, ftj, ok ? "Normal" : "Warning", reason, "%s", message);
	return op_apply_status(c, &OP_FINETUNEJOBS, ftj, status) ? op_retry() : op_done();
}

/* Deletes the failed gang so the next reconcile starts attempt + 1. */
static struct kc_result restart_gang(struct op_ctx *c, json_t *ftj, json_t *status, struct gang *g)
{
	char msg[256];

	op_delete_all(c, &KC_PODS, g->current);
	json_object_set_new(status, "restarts", json_integer(g->attempt + 1));
	json_object_set_new(status, "phase", json_string("Pending"));
	snprintf(msg, sizeof(msg),
		 "a worker of attempt %ld failed; restarting the gang from the latest checkpoint",
		 g->attempt);
	op_condition(status, ftj, "Running", "False", "GangRestart", msg);
	op_condition(status, ftj, "Ready", "False", "GangRestart", msg);
	op_event(c, ftj, "Warning", "GangRestart", "%s", msg);
	return op_apply_status(c, &OP_FINETUNEJOBS, ftj, status) ? op_retry() : op_after(1000);
}

/* Creates the Service and every missing worker of the gang. */
static llm_err ensure_gang(struct op_ctx *c, json_t *ftj, struct gang *g)
{
	json_t *svc = ftj_service(ftj);
	llm_err rc = op_apply(c, &KC_SERVICES, svc);

	json_decref(svc);
	for (long r = 0; !rc && r < g->workers; r++) {
		json_t *pod;

		if (g->present_rank[r])
			continue;
		pod = ftj_worker_pod(c, ftj, g->attempt, r);
		rc = op_apply(c, &KC_PODS, pod);
		json_decref(pod);
	}
	return rc;
}

/* A finished job waits for its TTL, then is deleted. */
static struct kc_result after_finish(struct op_ctx *c, json_t *ftj)
{
	long ttl = spec_long(ftj, "spec.ttlSecondsAfterFinished", -1);
	time_t done;
	json_t *out = NULL;
	llm_err rc;

	if (ttl < 0 || !op_parse_time(llm_json_str_or(ftj, "status.completionTime", ""), &done))
		return op_done();
	if (op_now() < done + ttl)
		return op_after((uint64_t)(done + ttl - op_now()) * 1000);
	rc = kc_delete(c->h, &OP_FINETUNEJOBS, llm_json_str_or(ftj, "metadata.namespace", ""),
		       llm_json_str_or(ftj, "metadata.name", ""), NULL, &out);
	json_decref(out);
	return rc && rc != LLM_ENOTFOUND ? op_retry() : op_done();
}

static struct kc_result suspend(struct op_ctx *c, json_t *ftj, json_t *status, json_t *pods)
{
	op_delete_all(c, &KC_PODS, pods);
	json_object_set_new(status, "phase", json_string("Suspended"));
	json_object_del(status, "startTime");
	op_condition(status, ftj, "Suspended", "True", "Suspended", "spec.suspend is true");
	op_condition(status, ftj, "Running", "False", "Suspended", "spec.suspend is true");
	op_condition(status, ftj, "Ready", "False", "Suspended", "spec.suspend is true");
	return op_apply_status(c, &OP_FINETUNEJOBS, ftj, status) ? op_retry() : op_done();
}

/* The running gang: creates what is missing and reports the phase. */
static struct kc_result run(struct op_ctx *c, json_t *ftj, json_t *status, struct gang *g,
			    time_t started)
{
	long deadline = spec_long(ftj, "spec.activeDeadlineSeconds", -1);
	bool all_running = g->running == g->workers;

	if (ensure_gang(c, ftj, g))
		return op_retry();
	op_delete_all(c, &KC_PODS, g->stale);
	json_object_set_new(status, "phase", json_string(all_running ? "Running" : "Pending"));
	op_condition(status, ftj, "Suspended", "False", "Resumed", "spec.suspend is false");
	op_condition(status, ftj, "Running", all_running ? "True" : "False",
		     all_running ? "AllWorkersRunning" : "WaitingForWorkers",
		     all_running ? "every worker of the gang is running"
				 : "waiting for every worker of the gang to run");
	op_condition(status, ftj, "Ready", all_running ? "True" : "False",
		     all_running ? "AllWorkersRunning" : "WaitingForWorkers",
		     all_running ? "every worker of the gang is running"
				 : "waiting for every worker of the gang to run");
	if (op_apply_status(c, &OP_FINETUNEJOBS, ftj, status))
		return op_retry();
	if (deadline >= 0)
		return op_after((uint64_t)(started + deadline - op_now() + 1) * 1000);
	return op_done();
}

static struct kc_result reconcile(struct op_ctx *c, json_t *ftj)
{
	const char *phase = llm_json_str_or(ftj, "status.phase", "");
	struct gang g = {.workers = spec_long(ftj, "spec.workers", 1),
			 .attempt = spec_long(ftj, "status.restarts", 0)};
	long deadline = spec_long(ftj, "spec.activeDeadlineSeconds", -1);
	json_t *pods = NULL, *status;
	struct kc_result res;
	time_t started;
	char msg[1024]; /* room for a worker's termination message */

	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)
		return after_finish(c, ftj);
	if (g.workers < 1 || g.workers > 64 || op_list_children(c, &KC_PODS, ftj, &pods))
		return op_retry();
	status = op_status(ftj, "Pending");
	json_object_set_new(status, "restarts", json_integer(g.attempt));
	if (json_is_true(json_object_get(json_object_get(ftj, "spec"), "suspend"))) {
		res = suspend(c, ftj, status, pods);
		goto out;
	}
	if (!op_parse_time(llm_json_str_or(ftj, "status.startTime", ""), &started))
		started = op_now();
	op_format_time(started, msg, sizeof(msg));
	json_object_set_new(status, "startTime", json_string(msg));
	classify(pods, &g);
	if (deadline >= 0 && op_now() >= started + deadline) {
		snprintf(msg, sizeof(msg), "the job ran longer than activeDeadlineSeconds (%ld)",
			 deadline);
		res = finish(c, ftj, status, &g, false, "DeadlineExceeded", msg);
	} else if (g.role_missing) {
		snprintf(msg, sizeof(msg),
			 "the agent image does not implement the finetune role (exit %d); use an "
			 "image with it in spec.image",
			 EXIT_ROLE_UNAVAILABLE);
		res = finish(c, ftj, status, &g, false, "RoleUnavailable", msg);
	} else if (g.input_problem) {
		snprintf(
			msg, sizeof(msg),
			"a worker stopped on invalid input (exit %d)%s%s; fix the spec, dataset or "
			"base model and apply the job again (the InvalidInput event names the "
			"problem)",
			EXIT_INVALID_INPUT, *g.input_problem ? ": " : "", g.input_problem);
		res = finish(c, ftj, status, &g, false, "InvalidInput", msg);
	} else if (g.failed && g.attempt >= spec_long(ftj, "spec.backoffLimit", 3)) {
		snprintf(msg, sizeof(msg), "a worker failed and all %ld restarts are used",
			 spec_long(ftj, "spec.backoffLimit", 3));
		res = finish(c, ftj, status, &g, false, "BackoffLimitExceeded", msg);
	} else if (g.failed) {
		res = restart_gang(c, ftj, status, &g);
	} else if (g.succeeded == g.workers) {
		res = finish(c, ftj, status, &g, true, "Completed", "every worker finished");
	} else {
		res = run(c, ftj, status, &g, started);
	}
	gang_free(&g);
out:
	json_decref(status);
	json_decref(pods);
	return res;
}

const struct op_reconciler finetunejob_reconciler = {
	.kind = "FineTuneJob",
	.component = "finetune",
	.gvr = &OP_FINETUNEJOBS,
	.owns = {&KC_PODS, &KC_SERVICES},
	.reconcile = reconcile,
};
