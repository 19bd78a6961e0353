#!/usr/bin/env bash
# make bench-kube: runs bench_kube against a fresh local control plane of its
# own ("bench", ports 46xxx) and stops it afterwards.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export LLMOPS_CLUSTER=bench LLMOPS_CLUSTER_PORT_BASE=${LLMOPS_CLUSTER_PORT_BASE:-46000}
cluster=$root/e2e/controlplane/cluster.sh
"$cluster" destroy >/dev/null 2>&1
trap '"$cluster" destroy >/dev/null 2>&1' EXIT
"$cluster" up || exit 1
eval "$("$cluster" env)"
"$root/build/bench/bench_kube" "$@"
