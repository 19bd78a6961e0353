#!/usr/bin/env bash
# Runs the integration and end-to-end tests against a fresh local control
# plane named "test" (its own ports and run directory, so a `make run`
# cluster is left alone), and always stops it afterwards.
#   e2e/run.sh [C integration test binaries...]
# The C binaries run first, then pytest over e2e/. Both see:
#   KUBECONFIG                   admin kubeconfig
#   LLMOPS_OPERATOR_KUBECONFIG   the operator's non-admin identity
#   LLMOPS_CLUSTER_DIR           the run directory (certs/, logs/, tokens)
#   LLMOPS_CONTROLPLANE_BIN      kubectl, etcdctl, helm and the servers
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/e2e/controlplane/cluster.sh
export LLMOPS_CLUSTER=test
export LLMOPS_CLUSTER_DIR=$root/build/cluster/test
export KUBECONFIG=$LLMOPS_CLUSTER_DIR/admin.kubeconfig
export LLMOPS_OPERATOR_KUBECONFIG=$LLMOPS_CLUSTER_DIR/operator.kubeconfig
export LLMOPS_CONTROLPLANE_BIN=$root/build/controlplane/bin
export LLMOPS_ROOT=$root

"$cluster" destroy >/dev/null 2>&1
trap '"$cluster" down' EXIT
"$cluster" up || exit 1

status=0
for t in "$@"; do
	echo "== $t"
	"$t" || status=1
done

echo "== pytest e2e/"
"$root/build/venv/bin/python" -m pytest -q "$root/e2e" || status=1
exit $status
