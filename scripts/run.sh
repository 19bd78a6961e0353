#!/usr/bin/env bash
# The main job on a local control plane (`make run` / `make stop`):
#   run.sh start   start the control plane, a test node (standing in for
#                  kubelet: it runs the Pods the scheduler binds to it as local
#                  processes) and the operator in the background; put the
#                  example FineTuneJob's model and data on hostPath volumes;
#                  apply crds/ and examples/; wait for the operator to act on
#                  every resource and for the FineTuneJob to finish training;
#                  show `kubectl get llmops`, the trained adapter and how to
#                  explore
#   run.sh stop    stop the operator, the test node and the control plane
# Environment: LLMOPS_RUN_SETTLE_SECONDS (120) and LLMOPS_RUN_TRAIN_SECONDS
# (300) bound the two waits; LLMOPS_RUN_WORKER_THREADS (1) is the
# OMP_NUM_THREADS of the Pods' processes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/e2e/controlplane/cluster.sh
run=$root/build/cluster/dev
kubectl="$root/build/controlplane/bin/kubectl --kubeconfig $run/admin.kubeconfig"
metrics_port=18080
probe_port=18081
settle_seconds=${LLMOPS_RUN_SETTLE_SECONDS:-120}
train_seconds=${LLMOPS_RUN_TRAIN_SECONDS:-300}
worker_threads=${LLMOPS_RUN_WORKER_THREADS:-1}
node=llmops-dev-node
pvc_dir=$run/pvc
ftj=tiny-gpt2-support-lora # examples/finetunejob.yaml
adapter=$pvc_dir/models/adapters/$ftj

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

# The examples keep models and data on these claims. Each is bound to a
# hostPath volume under build/cluster/dev/pvc/<claim>/ (so the data goes with
# the cluster's on `cluster.sh destroy`), where scripts/seed_examples.py puts
# the FineTuneJob's base model and records.
make_volumes() {
	local claim bound
	"$root/build/venv/bin/python" "$root/scripts/seed_examples.py" "$pvc_dir"
	for claim in models datasets docs; do
		bound=$($kubectl get pvc "$claim" -o jsonpath='{.spec.volumeName}' 2>/dev/null || true)
		if [ -n "$bound" ] && [ "$bound" != "llmops-dev-$claim" ]; then
			say "claim $claim is bound to volume $bound, not llmops-dev-$claim (an older make run);"
			say "start afresh: make stop; e2e/controlplane/cluster.sh destroy; make run"
			exit 1
		fi
		$kubectl apply -f - >/dev/null <<VOLUME
apiVersion: v1
kind: PersistentVolume
metadata: {name: llmops-dev-$claim}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: default, name: $claim}
  hostPath: {path: $pvc_dir/$claim, type: DirectoryOrCreate}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $claim, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: llmops-dev-$claim
  resources: {requests: {storage: 1Gi}}
VOLUME
	done
	say "volumes: $pvc_dir/{models,datasets,docs}"
}

# The agent's identity in the default namespace: the service account the
# operator gives its Pods (--agent-service-account), with the Helm chart's
# agent rules (charts/llmops/templates/rbac.yaml): read the resources, write
# their status, record Events.
make_agent_account() {
	$kubectl apply -f - >/dev/null <<'ACCOUNT'
apiVersion: v1
kind: ServiceAccount
metadata: {name: llmops-agent, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: llmops-agent}
rules:
- apiGroups: [llmops.dev]
  resources: [promptversions, finetunejobs, ragindexes, evalruns, modelendpoints, monitors]
  verbs: [get, list, watch]
- apiGroups: [llmops.dev]
  resources: [promptversions/status, finetunejobs/status, ragindexes/status, evalruns/status,
    modelendpoints/status, monitors/status]
  verbs: [get, patch, update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: llmops-agent, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: llmops-agent}
subjects: [{kind: ServiceAccount, name: llmops-agent, namespace: default}]
ACCOUNT
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

# The newest log of the FineTuneJob's rank 0 on the test node (the test node
# keeps each container's log there; there is no `kubectl logs`), or the
# pattern of its name when there is none yet.
worker_log() {
	local pattern="$root/build/testnode/dev/$node/pods/default_$ftj-a*-w0_*/finetune.log"
	# shellcheck disable=SC2086 # the pattern is meant to expand
	ls -t $pattern 2>/dev/null | head -n 1 | grep . || echo "$pattern"
}

# One line on the example FineTuneJob: phase, step, loss, ETA.
ftj_progress() {
	local phase step total loss eta
	local fields='{.status.phase} {.status.progress.step} {.status.progress.totalSteps}'
	fields+=' {.status.progress.loss} {.status.progress.eta}'
	read -r phase step total loss eta < <($kubectl get ftj "$ftj" -o jsonpath="$fields" 2>/dev/null || true)
	if [ -z "$step" ] || [ -z "$loss" ]; then
		echo "${phase:-waiting for the operator}"
	else
		printf '%s, step %s/%s, loss %.4f, eta %s\n' "$phase" "$step" "$total" "$loss" "$eta"
	fi
}

# Waits until the example FineTuneJob has Succeeded or Failed, showing its
# progress as it changes; returns 1 unless it Succeeded.
wait_trained() {
	local line last= end=$((SECONDS + train_seconds))
	while [ "$SECONDS" -lt "$end" ]; do
		line=$(ftj_progress)
		if [ "$line" != "$last" ]; then
			if [ -t 1 ]; then
				printf '\rrun: training %s: %-50s' "$ftj" "$line"
			else
				say "training $ftj: $line"
			fi
			last=$line
		fi
		case $line in Succeeded* | Failed*) break ;; esac
		sleep 1
	done
	[ -t 1 ] && echo
	case $line in Succeeded*) return 0 ;; Failed*) say "the FineTuneJob $ftj failed" ;;
	*) say "the FineTuneJob $ftj did not finish in ${train_seconds}s (LLMOPS_RUN_TRAIN_SECONDS)" ;;
	esac
	say "why:    kubectl describe ftj $ftj   (conditions and the agent's events)"
	say "worker: $(worker_log)"
	if [ -f "$(worker_log)" ]; then tail -n 15 "$(worker_log)" | sed 's/^/  /'; fi
	return 1
}

cmd_start() {
	local trained=0
	"$cluster" up
	mkdir -p "$run/logs" "$run/pids"
	# One OpenMP thread per worker: more only compete with the control plane
	# on a small machine (the Pods have no CPU limit here).
	start_bg testnode testnode.py env OMP_NUM_THREADS="$worker_threads" \
		"$root/build/venv/bin/python" "$root/e2e/testnode/testnode.py" \
		--kubeconfig "$run/admin.kubeconfig" --name "$node" --gpu 1 \
		--pass-env OMP_NUM_THREADS
	apply_dir crds
	$kubectl wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=llmops >/dev/null
	start_bg llmops-operator llmops-operator "$root/bin/llmops-operator" \
		--kubeconfig "$run/operator.kubeconfig" --leader-elect \
		--metrics-bind-address "127.0.0.1:$metrics_port" \
		--health-probe-bind-address "127.0.0.1:$probe_port" \
		--agent-service-account llmops-agent
	make_volumes
	make_agent_account
	apply_dir examples
	wait_settled
	wait_trained || trained=$?
	echo
	$kubectl get llmops
	[ "$trained" = 0 ] && cat <<MSG

The FineTuneJob $ftj trained a LoRA adapter. Its output,
pvc://models/adapters/$ftj, is on this machine at
  $adapter/
    adapter_config.json, adapter_model.safetensors   the adapter (PEFT layout)
    checkpoints/step-<n>/                            checkpoints (trainer_state.json)
over the base model $pvc_dir/models/tiny-gpt2/. Look at it:
  cat $adapter/adapter_config.json
  cat $adapter/checkpoints/*/trainer_state.json
Loading it with peft, or training it again from a file: README.md, "After make run".
MSG
	cat <<MSG

The other agent roles (indexing, serving, evaluation, monitoring) are not in
this version: their Pods exit with status 64 and the RagIndex, EvalRun,
ModelEndpoint and Monitor say so. The operator, the CRDs and the children they
create are real.

Explore:
  $("$cluster" env | head -n 1)
  export PATH=$root/build/controlplane/bin:\$PATH
  kubectl get llmops                       # all six kinds (short names pmv ftj rag evr mep mon)
  kubectl get ftj -o wide                  # Step, Loss, ETA, Eval-Loss, Output; -w to follow
  kubectl describe ftj                     # conditions and events
  kubectl get pods,jobs,deploy,svc -l app.kubernetes.io/managed-by=llmops-operator
  kubectl get lease llmops-operator -o yaml   # who leads
  curl -s http://127.0.0.1:$metrics_port/metrics   # operator metrics
  tail -f $run/logs/llmops-operator.log
  less $(worker_log)   # the training worker's log
Stop everything with: make stop
MSG
	return "$trained"
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
