"""Operator memory: resident memory of llmops-operator at idle (CRDs
installed, nothing to reconcile) and with N resources of each of the six
kinds (default 1,000, so 6,000 resources and the Jobs, Deployments, Services
and Pods they imply) in its caches, measured once it has acted on all of
them or after SETTLE seconds (default 180), whichever comes first; how many
it had acted on by then is printed too. Usage: operator_memory.py [N [SETTLE]]. One JSON object per line with
bench, metric, value, unit. Run by bench/run-operator.sh (make bench-operator)
against a control plane of its own; needs KUBECONFIG (admin),
LLMOPS_OPERATOR_KUBECONFIG and LLMOPS_ROOT."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

ROOT = Path(os.environ["LLMOPS_ROOT"])
KUBECTL = str(ROOT / "build/controlplane/bin/kubectl")
NS = "bench-operator"
URI = "pvc://models/tiny"


def emit(metric, value, unit):
    print(json.dumps({"bench": "operator_memory", "metric": metric, "value": value,
                      "unit": unit}), flush=True)


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def resources(i):
    """One resource of each kind, cheap to reconcile but real."""
    meta = {"name": f"r{i:05d}"}
    v = "llmops.dev/v1alpha1"
    return [
        {"apiVersion": v, "kind": "PromptVersion", "metadata": meta,
         "spec": {"family": f"f{i}", "template": "Hello {{name}}",
                  "variables": [{"name": "name", "required": True}]}},
        {"apiVersion": v, "kind": "FineTuneJob", "metadata": meta,
         "spec": {"baseModel": URI, "dataset": {"train": URI}, "output": URI,
                  "suspend": True}},
        {"apiVersion": v, "kind": "RagIndex", "metadata": meta,
         "spec": {"sources": [{"inline": {"id": "a", "text": "hello"}}],
                  "embedding": {"model": URI}}},
        {"apiVersion": v, "kind": "EvalRun", "metadata": meta,
         "spec": {"dataset": {"uri": URI}, "metrics": [{"name": "bleu"}]}},
        {"apiVersion": v, "kind": "ModelEndpoint", "metadata": meta,
         "spec": {"model": {"uri": URI}}},
        {"apiVersion": v, "kind": "Monitor", "metadata": meta,
         "spec": {"target": {"endpointRef": {"name": meta["name"]}},
                  "metrics": ["latency"]}},
    ]


PLURALS = {"PromptVersion": "promptversions", "FineTuneJob": "finetunejobs",
           "RagIndex": "ragindexes", "EvalRun": "evalruns",
           "ModelEndpoint": "modelendpoints", "Monitor": "monitors"}


def observed(api):
    """How many resources the operator has acted on (observedGeneration set)."""
    n = 0
    for plural in PLURALS.values():
        items = api.list_namespaced_custom_object("llmops.dev", "v1alpha1", NS, plural)["items"]
        n += sum(1 for o in items if o.get("status", {}).get("observedGeneration") ==
                 o["metadata"]["generation"])
    return n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    settle = int(sys.argv[2]) if len(sys.argv) > 2 else 180
    subprocess.run([KUBECTL, "apply", "--server-side", "-f", str(ROOT / "crds")], check=True,
                   capture_output=True)
    subprocess.run([KUBECTL, "wait", "--for=condition=Established", "--timeout=60s", "crd",
                    "-l", "app.kubernetes.io/part-of=llmops"], check=True, capture_output=True)
    subprocess.run([KUBECTL, "create", "namespace", NS], capture_output=True)
    port = free_port()
    op = subprocess.Popen([str(ROOT / "bin/llmops-operator"), "--kubeconfig",
                           os.environ["LLMOPS_OPERATOR_KUBECONFIG"], "--kube-api-qps", "2000",
                           "--kube-api-burst", "4000", "--workers", "4",
                           "--metrics-bind-address", "0",
                           "--health-probe-bind-address", f"127.0.0.1:{port}"],
                          stderr=subprocess.DEVNULL)
    try:
        while not ready(port):
            time.sleep(0.2)
        time.sleep(3)
        emit("rss_idle", rss_mib(op.pid), "MiB")
        api_client = config.new_client_from_config()
        api = client.CustomObjectsApi(api_client)

        def create(obj):
            api.create_namespaced_custom_object("llmops.dev", "v1alpha1", NS,
                                                PLURALS[obj["kind"]], obj)

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, [o for i in range(n) for o in resources(i)]))
        emit("seconds_to_create", round(time.monotonic() - t0, 1), "s")
        # Every resource is in the operator's caches once created; acting on
        # all of them is bounded by the API server, so wait a while at most.
        while observed(api) < 6 * n and time.monotonic() - t0 < settle:
            time.sleep(2)
        emit("resources", 6 * n, "count")
        emit("acted_on", observed(api), "count")
        emit("seconds_since_first_create", round(time.monotonic() - t0, 1), "s")
        emit("rss_with_resources", rss_mib(op.pid), "MiB")
    finally:
        op.terminate()
        op.wait(timeout=60)


if __name__ == "__main__":
    main()
