/* Monitor reconciler: one Deployment running the agent's monitor role,
 * which watches the target and writes windows, drift scores and alerts into
 * status; the operator reports whether the monitor runs. */
#include "monitor.h"

#include <stdio.h>

#include "llm_json.h"

static const char *const uri_fields[] = {"spec.baseline.datasetUri", NULL};

static struct kc_result reconcile(struct op_ctx *c, json_t *mon)
{
	char name[300];
	json_t *d, *status;
	long have;
	bool ready;
	llm_err rc;

	snprintf(name, sizeof(name), "%s-monitor", llm_json_str_or(mon, "metadata.name", ""));
	d = op_deployment(c, mon, name, "monitor", 1, 0, NULL, uri_fields);
	rc = op_apply_workload(c, d, NULL, &have);
	ready = have >= 1;
	json_decref(d);
	if (rc)
		return op_retry();
	status = op_status(mon, ready ? "Running" : "Pending");
	op_condition(status, mon, "Ready", ready ? "True" : "False",
		     ready ? "MonitorRunning" : "WaitingForMonitor",
		     ready ? "the monitor is running" : "waiting for the monitor to run");
	rc = op_apply_status(c, &OP_MONITORS, mon, status);
	json_decref(status);
	return rc ? op_retry() : op_done();
}

const struct op_reconciler monitor_reconciler = {
	.kind = "Monitor",
	.component = "monitor",
	.gvr = &OP_MONITORS,
	.owns = {&KC_DEPLOYMENTS},
	.reconcile = reconcile,
};
