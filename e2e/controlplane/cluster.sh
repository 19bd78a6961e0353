#!/usr/bin/env bash
# A local Kubernetes control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler, built by build.sh from pinned Go
# modules. RBAC authorization; authentication by client certificates (made
# with the openssl CLI) and a static token file; service-account signing keys.
# There is no kubelet or container runtime: e2e/ supplies a test node instead.
#
#   cluster.sh up        start (or report "already up"), wait for /readyz
#   cluster.sh down      stop the processes this script started (pid files)
#   cluster.sh destroy   down, then delete the run directory (data, certs)
#   cluster.sh env       print exports: KUBECONFIG (admin) and LLMOPS_ETCD_ENDPOINT
#   cluster.sh status    print each component's state; exit 1 if not all up
#
# Several clusters can coexist: LLMOPS_CLUSTER names one (default "dev"; the
# test suite uses "test"), each with its own run directory and ports.
# Run directory: build/cluster/<name>/ with certs/, etcd-data/, logs/ (one log
# per component), pids/, and the kubeconfigs admin.kubeconfig and
# operator.kubeconfig (user llmops-operator, bound to a non-admin role).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${LLMOPS_CLUSTER:-dev}
case "$name" in
dev) base=${LLMOPS_CLUSTER_PORT_BASE:-16000} ;;
test) base=${LLMOPS_CLUSTER_PORT_BASE:-26000} ;;
*) base=${LLMOPS_CLUSTER_PORT_BASE:?set LLMOPS_CLUSTER_PORT_BASE for cluster $name} ;;
esac
run=$root/build/cluster/$name
apiserver_port=$((base + 443))
etcd_port=$((base + 379))
etcd_peer_port=$((base + 380))
kcm_port=$((base + 257))
scheduler_port=$((base + 259))
server=https://127.0.0.1:$apiserver_port
components="etcd kube-apiserver kube-controller-manager kube-scheduler"

say() { echo "cluster[$name]: $*" >&2; }
die() { say "error: $*"; exit 1; }

bindir() { "$here/build.sh"; }

# pid of a running component we started, or nothing.
running_pid() {
	local f=$run/pids/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	# The pid must still be ours: same binary name in its command line.
	if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"; then
		echo "$pid"
	fi
}

gen_certs() {
	local c=$run/certs
	[ -f "$c/done" ] && return 0
	say "generating certificates in $c"
	mkdir -p "$c"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$c/ca.key" -out "$c/ca.crt" -days 3650 \
		-subj "/CN=llmops-local-ca" 2>/dev/null
	issue apiserver "/CN=kube-apiserver" \
		"subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
	issue admin "/O=system:masters/CN=llmops-admin"
	issue operator "/O=llmops:operators/CN=llmops-operator"
	issue kube-controller-manager "/CN=system:kube-controller-manager"
	issue kube-scheduler "/CN=system:kube-scheduler"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out "$c/sa.key" 2>/dev/null
	openssl pkey -in "$c/sa.key" -pubout -out "$c/sa.pub"
	# Static tokens: an admin token and a non-admin one for token-auth tests.
	printf '%s,llmops-token-admin,llmops-token-admin,"system:masters"\n' \
		"$(openssl rand -hex 24)" >"$c/tokens.csv"
	printf '%s,llmops-token-viewer,llmops-token-viewer,"llmops:viewers"\n' \
		"$(openssl rand -hex 24)" >>"$c/tokens.csv"
	chmod 600 "$c"/*.key "$c/tokens.csv"
	touch "$c/done"
}

issue() { # issue <name> <subject> [extension]
	local c=$run/certs ext=${3:-}
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$c/$1.key" -out "$c/$1.csr" -subj "$2" 2>/dev/null
	openssl x509 -req -in "$c/$1.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" \
		-CAcreateserial -out "$c/$1.crt" -days 3650 \
		${ext:+-extfile <(echo "$ext")} 2>/dev/null
	rm -f "$c/$1.csr"
}

write_kubeconfig() { # write_kubeconfig <file> <cert name> <user>
	cat >"$run/$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: llmops-$name
  cluster:
    server: $server
    certificate-authority: $run/certs/ca.crt
users:
- name: $3
  user:
    client-certificate: $run/certs/$2.crt
    client-key: $run/certs/$2.key
contexts:
- name: $3@llmops-$name
  context:
    cluster: llmops-$name
    user: $3
current-context: $3@llmops-$name
KC
}

write_kubeconfigs() {
	write_kubeconfig admin.kubeconfig admin llmops-admin
	write_kubeconfig operator.kubeconfig operator llmops-operator
	write_kubeconfig kube-controller-manager.kubeconfig kube-controller-manager \
		system:kube-controller-manager
	write_kubeconfig kube-scheduler.kubeconfig kube-scheduler system:kube-scheduler
}

start() { # start <component> <args...>
	local comp=$1
	shift
	[ -n "$(running_pid "$comp")" ] && return 0
	# setsid: the cluster outlives the shell or make that started it.
	setsid "$BIN/$comp" "$@" >>"$run/logs/$comp.log" 2>&1 </dev/null &
	echo $! >"$run/pids/$comp.pid"
}

wait_for() { # wait_for <what> <seconds> <command...>
	local what=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$what not ready after ${limit}s; see $run/logs/"
}

curl_admin() { # curl_admin <url>: GET with the admin client certificate
	curl -sf --max-time 2 --cacert "$run/certs/ca.crt" \
		--cert "$run/certs/admin.crt" --key "$run/certs/admin.key" "$1"
}

readyz() { [ "$(curl_admin "$server/readyz")" = ok ]; }
# The controller-manager and scheduler serve /healthz over TLS with their own
# self-signed certificates; -k is fine for a loopback liveness probe.
healthz() { [ "$(curl -skf --max-time 2 "https://127.0.0.1:$1/healthz")" = ok ]; }
etcd_health() { curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health" | grep -q '"health":"true"'; }

start_etcd() {
	start etcd --name "llmops-$name" --data-dir "$run/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" \
		--advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster "llmops-$name=http://127.0.0.1:$etcd_peer_port" \
		--listen-metrics-urls "" --log-level warn
	wait_for etcd 30 etcd_health
}

start_apiserver() {
	local c=$run/certs
	start kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --secure-port "$apiserver_port" \
		--advertise-address 127.0.0.1 \
		--cert-dir "$c" --tls-cert-file "$c/apiserver.crt" \
		--tls-private-key-file "$c/apiserver.key" --client-ca-file "$c/ca.crt" \
		--token-auth-file "$c/tokens.csv" --authorization-mode RBAC \
		--service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$c/sa.pub" \
		--service-account-signing-key-file "$c/sa.key" \
		--endpoint-reconciler-type none \
		--v 1
	wait_for kube-apiserver 60 readyz
}

start_controllers() {
	local c=$run/certs
	start kube-controller-manager \
		--kubeconfig "$run/kube-controller-manager.kubeconfig" \
		--authentication-kubeconfig "$run/kube-controller-manager.kubeconfig" \
		--authorization-kubeconfig "$run/kube-controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$kcm_port" \
		--service-account-private-key-file "$c/sa.key" --root-ca-file "$c/ca.crt" \
		--cluster-signing-cert-file "$c/ca.crt" \
		--cluster-signing-key-file "$c/ca.key" \
		--use-service-account-credentials --leader-elect=false \
		--cluster-name "llmops-$name" --v 1
	start kube-scheduler --kubeconfig "$run/kube-scheduler.kubeconfig" \
		--authentication-kubeconfig "$run/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig "$run/kube-scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$scheduler_port" \
		--leader-elect=false --v 1
	wait_for kube-controller-manager 60 healthz "$kcm_port"
	wait_for kube-scheduler 60 healthz "$scheduler_port"
}

apply_bootstrap() {
	"$BIN/kubectl" --kubeconfig "$run/admin.kubeconfig" apply \
		-f "$here/operator-rbac.yaml" >>"$run/logs/bootstrap.log" 2>&1 ||
		die "applying $here/operator-rbac.yaml failed; see $run/logs/bootstrap.log"
}

all_up() {
	for comp in $components; do
		[ -n "$(running_pid "$comp")" ] || return 1
	done
	readyz
}

cmd_up() {
	if all_up; then
		say "already up at $server"
		return 0
	fi
	BIN=$(bindir)
	local t0=$(date +%s%N)
	mkdir -p "$run/logs" "$run/pids"
	gen_certs
	write_kubeconfigs
	start_etcd
	start_apiserver
	start_controllers
	apply_bootstrap
	say "up at $server in $((($(date +%s%N) - t0) / 1000000)) ms (logs in $run/logs)"
	say "admin:    export KUBECONFIG=$run/admin.kubeconfig"
	say "operator: $run/operator.kubeconfig (user llmops-operator)"
}

stop_one() {
	local comp=$1 pid i
	pid=$(running_pid "$comp")
	rm -f "$run/pids/$comp.pid"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	say "$comp (pid $pid) ignored SIGTERM for 15 s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
	[ -d "$run/pids" ] || { say "not running"; return 0; }
	for comp in kube-scheduler kube-controller-manager kube-apiserver etcd; do
		stop_one "$comp"
	done
	say "stopped"
}

cmd_status() {
	local rc=0 pid
	for comp in $components; do
		pid=$(running_pid "$comp")
		if [ -n "$pid" ]; then echo "$comp: running (pid $pid)"; else echo "$comp: stopped"; rc=1; fi
	done
	if readyz; then echo "kube-apiserver $server/readyz: ok"; else echo "kube-apiserver $server/readyz: not ready"; rc=1; fi
	return $rc
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
destroy) cmd_down; rm -rf "$run"; say "removed $run" ;;
env)
	echo "export KUBECONFIG=$run/admin.kubeconfig"
	echo "export LLMOPS_ETCD_ENDPOINT=http://127.0.0.1:$etcd_port"
	;;
status) cmd_status ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
