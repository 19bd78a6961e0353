#!/usr/bin/env bash
# Runs the integration and end-to-end tests against a fresh local control
# plane named "test" (its own ports and run directory, so a `make run`
# cluster is left alone; LLMOPS_CLUSTER and LLMOPS_CLUSTER_PORT_BASE pick
# another), and always stops it afterwards.
#   e2e/run.sh [C test binaries...] [-- C test binaries for valgrind...]
# The C binaries run first (those after "--" under valgrind's leak check),
# then pytest over e2e/. All see:
#   KUBECONFIG                   admin kubeconfig
#   LLMOPS_OPERATOR_KUBECONFIG   the operator's non-admin identity
#   LLMOPS_CLUSTER_DIR           the run directory (certs/, logs/, tokens)
#   LLMOPS_CONTROLPLANE_BIN      kubectl, etcdctl, helm and the servers
#   LLMOPS_ETCD_ENDPOINT         etcd's client URL (for etcdctl)
#   LLMOPS_CLUSTER               the cluster name, for cluster.sh (restarts)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/e2e/controlplane/cluster.sh
export LLMOPS_CLUSTER=${LLMOPS_CLUSTER:-test}
export LLMOPS_CLUSTER_DIR=$root/build/cluster/$LLMOPS_CLUSTER
export KUBECONFIG=$LLMOPS_CLUSTER_DIR/admin.kubeconfig
export LLMOPS_OPERATOR_KUBECONFIG=$LLMOPS_CLUSTER_DIR/operator.kubeconfig
export LLMOPS_CONTROLPLANE_BIN=$root/build/controlplane/bin
export LLMOPS_ROOT=$root
eval "$("$cluster" env)"

"$cluster" destroy >/dev/null 2>&1
trap '"$cluster" down' EXIT
"$cluster" up || exit 1

status=0
valgrind=()
for t in "$@"; do
	if [ "$t" = -- ]; then
		valgrind=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
			--error-exitcode=99)
		continue
	fi
	echo "== ${valgrind[*]:0:1} $t"
	"${valgrind[@]}" "$t" || status=1
done

echo "== pytest e2e/"
"$root/build/venv/bin/python" -m pytest -q "$root/e2e" || status=1
exit $status
