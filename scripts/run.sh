#!/usr/bin/env bash
# The main job on a local control plane (`make run` / `make stop`):
#   run.sh start   start the control plane, a test node (standing in for
#                  kubelet: it runs the Pods the scheduler binds to it as local
#                  processes) and the operator in the background; apply crds/
#                  and examples/; wait for the operator to act on every
#                  resource; show `kubectl get llmops` and how to explore
#   run.sh stop    stop the operator, the test node and the control plane
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/e2e/controlplane/cluster.sh
run=$root/build/cluster/dev
kubectl="$root/build/controlplane/bin/kubectl --kubeconfig $run/admin.kubeconfig"
metrics_port=18080
probe_port=18081
settle_seconds=${LLMOPS_RUN_SETTLE_SECONDS:-120}

say() { echo "run: $*"; }

# pid of background process <name> started here, if it still runs.
bg_pid() {
	local f=$run/pids/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"; then
		echo "$pid"
	fi
}

# start_bg <name> <match> <command...>: runs command in the background, once.
start_bg() {
	local name=$1 match=$2 log=$run/logs/$1.log
	shift 2
	if [ -n "$(bg_pid "$name" "$match")" ]; then
		say "$name already running (pid $(bg_pid "$name" "$match"))"
		return 0
	fi
	setsid "$@" >>"$log" 2>&1 </dev/null &
	echo $! >"$run/pids/$name.pid"
	sleep 1
	[ -n "$(bg_pid "$name" "$match")" ] || { say "$name exited at once; see $log"; tail -n 20 "$log"; exit 1; }
	say "$name running (pid $(bg_pid "$name" "$match")), log: $log"
}

stop_bg() { # stop_bg <name> <match>
	local pid
	pid=$(bg_pid "$1" "$2")
	rm -f "$run/pids/$1.pid"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	say "$1 stopped"
}

apply_dir() { # apply_dir <dir>: applies the manifests in it
	say "applying $1/"
	$kubectl apply --server-side --force-conflicts -f "$root/$1"
}

# The examples keep models and data on these claims; the test node binds
# each to a directory under build/testnode/.
make_claims() {
	for claim in models datasets docs; do
		$kubectl apply -f - >/dev/null <<CLAIM
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $claim, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
CLAIM
	done
}

# Waits until the operator has observed every llmops resource's generation.
wait_settled() {
	local total seen
	for ((i = 0; i < settle_seconds; i++)); do
		total=$($kubectl get llmops -A --no-headers 2>/dev/null | wc -l)
		seen=$($kubectl get llmops -A -o \
			jsonpath='{range .items[*]}{.metadata.generation}={.status.observedGeneration}{"\n"}{end}' \
			2>/dev/null | awk -F= '$1 == $2' | wc -l)
		printf '\rrun: the operator has acted on %d of %d resources' "$seen" "$total"
		[ "$total" -gt 0 ] && [ "$seen" -eq "$total" ] && break
		sleep 1
	done
	echo
}

cmd_start() {
	"$cluster" up
	mkdir -p "$run/logs" "$run/pids"
	start_bg testnode testnode.py "$root/build/venv/bin/python" "$root/e2e/testnode/testnode.py" \
		--kubeconfig "$run/admin.kubeconfig" --name llmops-dev-node --gpu 1
	apply_dir crds
	$kubectl wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=llmops >/dev/null
	start_bg llmops-operator llmops-operator "$root/bin/llmops-operator" \
		--kubeconfig "$run/operator.kubeconfig" --leader-elect \
		--metrics-bind-address "127.0.0.1:$metrics_port" \
		--health-probe-bind-address "127.0.0.1:$probe_port"
	make_claims
	apply_dir examples
	wait_settled
	echo
	$kubectl get llmops
	cat <<MSG

The agent roles (training, indexing, serving, evaluation, monitoring) are not
in this version: their Pods exit with status 64 and the resources say so
(for example FineTuneJob reason RoleUnavailable). The operator, the CRDs and
the children they create are real.

Explore:
  $("$cluster" env | head -n 1)
  export PATH=$root/build/controlplane/bin:\$PATH
  kubectl get llmops                       # all six kinds (short names pmv ftj rag evr mep mon)
  kubectl describe ftj                     # conditions and events
  kubectl get pods,jobs,deploy,svc -l app.kubernetes.io/managed-by=llmops-operator
  kubectl get lease llmops-operator -o yaml   # who leads
  curl -s http://127.0.0.1:$metrics_port/metrics   # operator metrics
  tail -f $run/logs/llmops-operator.log
Stop everything with: make stop
MSG
}

cmd_stop() {
	stop_bg llmops-operator llmops-operator
	stop_bg testnode testnode.py
	"$cluster" down
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
