#!/usr/bin/env bash
# make bench-operator: operator memory at idle and with 1,000 resources of
# each kind, on a fresh local control plane of its own ("bench", ports 46xxx).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export LLMOPS_CLUSTER=bench LLMOPS_CLUSTER_PORT_BASE=${LLMOPS_CLUSTER_PORT_BASE:-46000}
export LLMOPS_ROOT=$root LLMOPS_OPERATOR_KUBECONFIG=$root/build/cluster/bench/operator.kubeconfig
cluster=$root/e2e/controlplane/cluster.sh
"$cluster" destroy >/dev/null 2>&1
trap '"$cluster" destroy >/dev/null 2>&1' EXIT
"$cluster" up || exit 1
eval "$("$cluster" env)"
"$root/build/venv/bin/python" "$root/bench/operator_memory.py" "$@"
