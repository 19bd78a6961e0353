"""A pytest fixture that gives end-to-end tests a node to run Pods on.

The test node (e2e/testnode/testnode.py) registers a Node with the local
control plane ($KUBECONFIG, as e2e/run.sh exports it) and runs the Pods that
the real scheduler binds to it as local processes. Use it from any test module
under e2e/: pytest puts e2e/ on sys.path because e2e/conftest.py lives there
(rootdir conftest, "prepend" import mode), so `testnode` is importable:

    from testnode.fixture import test_node  # noqa: F401 -- a fixture

    TEST_NODE_OPTIONS = {"gpus": 2}         # optional: start_test_node() kwargs

    def test_agent_runs(test_node):
        ...create a Pod or a custom resource...
        text = test_node.wait_log("my-ns", "my-pod", "agent", "ready")

`test_node` is module-scoped: it starts the node before the module's first
test that asks for it, waits until the Node is Ready, schedulable and its
Lease is fresh, and stops it (every container process ends, the Node object
is deleted) after the module. The object it yields (NodeProcess) has:

    .name                        the Node name ("llmops-test-node")
    .kube                        a testnode.testnode.Kube admin client (dicts)
    .state_dir                   build/testnode/<cluster>/<name>/ (cluster: "test"...)
    .pod_dir(ns, pod)            the pod's log directory (newest uid), or None
    .log(ns, pod, container)     that container's stdout+stderr ("" if none yet)
    .wait_log(ns, pod, container, text, timeout=30)
    .pvc_dir(ns, claim)          where a PVC's data lives on this machine
    .output()                    the test node's own log
    .stop()                      stop it now (idempotent)

For a second node, a GPU node, or a node started and stopped inside a test,
use start_test_node(name=..., gpus=..., labels=..., taints=..., args=[...]),
which returns a NodeProcess and is also a context manager.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testnode.testnode import ApiError, Kube, default_state_dir, dig, parse_time

SCRIPT = Path(__file__).resolve().parent / "testnode.py"


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls predicate until it returns something truthy (returned), or fails
    the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class NodeProcess:
    """A running test node process (see the module docstring)."""

    def __init__(self, name: str, kubeconfig: str, argv: list[str], state_dir: Path):
        self.name = name
        self.kubeconfig = kubeconfig
        self.kube = Kube(kubeconfig)
        self.state_dir = state_dir
        self.argv = argv
        self.log_path = state_dir / "testnode.log"
        self.proc: subprocess.Popen | None = None

    # -- process

    def start(self, ready_timeout: float = 30) -> NodeProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"--- started by the e2e fixture at {time.ctime()}\n".encode())
        self._log.flush()
        started = time.time() - 1
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL)
        wait_for(lambda: self._ready(started), ready_timeout, 0.1,
                 f"node {self.name} to be Ready\n{self.output()[-3000:]}")
        return self

    def _ready(self, since: float) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"test node {self.name} exited with {self.proc.returncode}:\n"
                        f"{self.output()[-3000:]}")
        try:
            node = self.kube.get(f"/api/v1/nodes/{self.name}")
            lease = self.kube.get(
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}")
        except ApiError:
            return False
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in dig(node, "status", "conditions", default=[]))
        blocked = any(t["key"] in ("node.kubernetes.io/not-ready",
                                   "node.kubernetes.io/unreachable")
                      for t in dig(node, "spec", "taints", default=[]))
        renewed = dig(lease, "spec", "renewTime")
        return (ready and not blocked and not dig(node, "spec", "unschedulable")
                and renewed is not None and parse_time(renewed) >= since)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait, SIGKILL as a last resort; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
        rc, self.proc = self.proc.returncode, None
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- files

    def pod_dir(self, ns: str, pod: str) -> Path | None:
        dirs = sorted((self.state_dir / "pods").glob(f"{ns}_{pod}_*"),
                      key=lambda p: p.stat().st_mtime)
        return dirs[-1] if dirs else None

    def sandbox_dir(self, uid: str) -> Path:
        return self.state_dir / "pods" / uid

    def log(self, ns: str, pod: str, container: str) -> str:
        d = self.pod_dir(ns, pod)
        try:
            return (d / f"{container}.log").read_text(errors="replace") if d else ""
        except OSError:
            return ""

    def wait_log(self, ns: str, pod: str, container: str, text: str,
                 timeout: float = 30) -> str:
        return wait_for(lambda: text in self.log(ns, pod, container) and
                        self.log(ns, pod, container), timeout, 0.1,
                        f"{text!r} in the log of {ns}/{pod}/{container}")

    def pvc_dir(self, ns: str, claim: str) -> Path:
        """The directory a bound PVC uses (its PV's hostPath), else where the
        test node would put it."""
        try:
            pvc = self.kube.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
            pv = self.kube.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
            return Path(pv["spec"]["hostPath"]["path"])
        except (ApiError, KeyError, TypeError):
            return self.state_dir / "pvc" / ns / claim


def start_test_node(name: str = "llmops-test-node", gpus: int = 0, cpu: str = "8",
                    memory: str = "32Gi", labels: dict | None = None,
                    taints: list[str] | None = None, args: list[str] | tuple = (),
                    kubeconfig: str | None = None, on_exit: str = "delete",
                    ready_timeout: float = 30) -> NodeProcess:
    """Starts a test node and waits until it is Ready; see NodeProcess.
    args are extra testnode.py options (e.g. ["--restart-backoff-max", "1"])."""
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig:
        pytest.fail("KUBECONFIG is not set: run the e2e tests through `make test` or e2e/run.sh")
    argv = [sys.executable, str(SCRIPT), "--kubeconfig", kubeconfig, "--name", name,
            "--gpu", str(gpus), "--cpu", cpu, "--memory", memory, "--on-exit", on_exit]
    for k, v in (labels or {}).items():
        argv += ["--label", f"{k}={v}"]
    for t in taints or []:
        argv += ["--taint", t]
    argv += list(args)
    node = NodeProcess(name, kubeconfig, argv, default_state_dir(Kube(kubeconfig), name))
    try:
        return node.start(ready_timeout)
    except BaseException:
        node.stop()
        raise


@pytest.fixture(scope="module")
def test_node(request):
    """A Ready test node for this module; options from the module's
    TEST_NODE_OPTIONS dict (start_test_node keyword arguments)."""
    options = dict(getattr(request.module, "TEST_NODE_OPTIONS", {}) or {})
    node = start_test_node(**options)
    try:
        yield node
    finally:
        node.stop()
