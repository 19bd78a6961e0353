#!/usr/bin/env bash
# The main job on a local control plane (`make run` / `make stop`):
#   run.sh start   start the control plane and the operator in the background,
#                  apply what the project has (crds/, examples/), show it, and
#                  print how to explore further
#   run.sh stop    stop the operator and the control plane
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/e2e/controlplane/cluster.sh
run=$root/build/cluster/dev
pidfile=$run/pids/llmops-operator.pid
log=$run/logs/llmops-operator.log
kubectl="$root/build/controlplane/bin/kubectl --kubeconfig $run/admin.kubeconfig"
metrics_port=18080
probe_port=18081

say() { echo "run: $*"; }

operator_pid() {
	local pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q llmops-operator; then
		echo "$pid"
	fi
}

start_operator() {
	if [ -n "$(operator_pid)" ]; then
		say "operator already running (pid $(operator_pid))"
		return 0
	fi
	setsid "$root/bin/llmops-operator" --kubeconfig "$run/operator.kubeconfig" \
		--leader-elect --metrics-bind-address "127.0.0.1:$metrics_port" \
		--health-probe-bind-address "127.0.0.1:$probe_port" \
		>>"$log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	sleep 0.5
	[ -n "$(operator_pid)" ] || { say "operator exited at once; see $log"; tail -n 20 "$log"; exit 1; }
	say "operator running (pid $(operator_pid)), log: $log"
}

apply_dir() { # apply_dir <dir>: applies the manifests in it, if any
	local files
	files=$(find "$root/$1" -maxdepth 2 -name '*.yaml' 2>/dev/null | sort)
	if [ -z "$files" ]; then
		say "nothing to apply in $1/ yet"
		return 0
	fi
	say "applying $1/"
	$kubectl apply --server-side -f "$root/$1" --recursive
}

cmd_start() {
	"$cluster" up
	start_operator
	apply_dir crds
	apply_dir examples
	echo
	say "cluster:"
	$kubectl get --raw /readyz && echo
	$kubectl get namespaces
	echo
	say "operator log (last lines):"
	tail -n 5 "$log"
	cat <<MSG

Explore:
  $(${cluster} env)
  export PATH=$root/build/controlplane/bin:\$PATH
  kubectl api-resources
  kubectl get all -A
  kubectl get lease llmops-operator -o yaml      # who leads
  curl -s http://127.0.0.1:$metrics_port/metrics   # operator metrics
  curl -s http://127.0.0.1:$probe_port/readyz
  tail -f $log
Stop everything with: make stop
MSG
}

cmd_stop() {
	local pid
	pid=$(operator_pid)
	if [ -n "$pid" ]; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		say "operator stopped"
	fi
	rm -f "$pidfile"
	"$cluster" down
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
