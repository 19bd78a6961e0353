#!/usr/bin/env python3
"""llmops test node: a stand-in for kubelet and a container runtime.

The end-to-end tests run against a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler), but these machines cannot run kubelet
or a container runtime. This process takes their place, and nothing else:

* It registers a Node with the capacity it is told (cpu, memory, pods,
  nvidia.com/gpu), reports Ready, renews its Lease in kube-node-lease every
  --heartbeat-interval seconds and patches the Ready heartbeat, so the node
  lifecycle controller keeps it Ready. The real scheduler places Pods on it
  from its allocatable resources.
* It watches the Pods bound to it (field selector spec.nodeName) and runs each
  container as a local process: command and args (with $(VAR) expansion), env
  (literals, fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef,
  envFrom), volumes (emptyDir, persistentVolumeClaim, hostPath, configMap,
  secret, downwardAPI, projected with a real service-account token from the
  TokenRequest API), init containers (and restartable "sidecar" init
  containers), readiness/liveness/startup probes (httpGet, tcpSocket, exec),
  restart policies with kubelet-like back-off, and graceful deletion.
* It reports Pod status through the status subresource as kubelet does:
  phase, conditions, podIP/hostIP 127.0.0.1, container states, restart
  counts, readiness.
* As a small storage provisioner (--no-provisioner turns it off) it binds a
  hostPath PersistentVolume to every pending PVC whose storageClassName is
  unset, empty or --storage-class, so Pods using PVCs can be scheduled.

What is not real, on purpose:

* Images are ignored. command[0] is resolved like this: a basename of
  llmops-agent or llmops-operator runs <bin-dir>/<name> (the locally built
  binaries); an absolute path that exists on this machine (/bin/sh,
  /usr/bin/env, /usr/bin/python3...) runs as it is; anything else fails to
  start (state terminated, reason StartError, exit code 128, as containerd
  reports an executable that is not found). A container without a command
  uses --image-command IMAGE=PATH (IMAGE matches the full image, the image
  without tag/digest, or its last path component without tag).
* There is no isolation beyond a private mount namespace per container
  (`unshare --mount --propagation private`, then `mount --bind` of every
  volume at its mountPath in a small shell wrapper before exec). So /data or
  /var/run/secrets/kubernetes.io/serviceaccount appear at their real paths for
  that process only. The mount points are created on the host file system
  (empty directories, or empty files for file subPaths) when missing. All
  Pods share the host network: every podIP is 127.0.0.1, so two Pods must not
  listen on the same port.
* Cluster DNS is a hosts file, <state-dir>/hosts, bind-mounted read-only at
  /etc/hosts in every container: a Pod with spec.hostname and spec.subdomain
  naming a headless Service of its namespace gets the names CoreDNS would
  give it (<hostname>.<subdomain>.<ns>.svc.cluster.local, ...svc, and
  <hostname>.<subdomain> for its namespace's search path), all 127.0.0.1.
  Names are only added, never removed, while the test node runs. If unshare/mount is not permitted (not root), or
  with --no-mount-namespace, each volume is exported as
  LLMOPS_MOUNT_<VOLUME>=<dir> instead and a warning is logged.
* The process environment starts clean (PATH, HOME, HOSTNAME and what kubelet
  injects: KUBERNETES_SERVICE_HOST=127.0.0.1, KUBERNETES_SERVICE_PORT=<the
  API server port>), plus --pass-env names. A container that requests
  nvidia.com/gpu gets CUDA_VISIBLE_DEVICES/NVIDIA_VISIBLE_DEVICES set to the
  device indices allocated to it; other containers get them empty (no GPUs).
* Each container runs in its own process group (session); stopping a
  container signals the whole group: SIGTERM, then SIGKILL after the grace
  period. When the main process exits, what is left of its group is killed.

Files, under --state-dir (default <repo>/build/testnode/<cluster>/<node>, where
<cluster> is the kubeconfig's cluster name without "llmops-": "test", "dev"):

  pods/<uid>/                   the pod sandbox: volumes/<name>/ (emptyDir,
                                configMap...), pids/, the default working dir
  pods/<ns>_<name>_<uid>/<container>.log
                                stdout+stderr of every run of the container
                                (appended across restarts; kept after the
                                Pod is deleted)
  pvc/<ns>/<claim>/             data of the PVCs this node provisioned

Run:  python e2e/testnode/testnode.py --kubeconfig admin.kubeconfig --gpu 2
Stop with SIGTERM or SIGINT: every container process is stopped, then the
Node is marked NotReady (or deleted, or left; see --on-exit).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import http.client
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import yaml

log = logging.getLogger("testnode")

REPO = Path(__file__).resolve().parents[2]
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
GPU = "nvidia.com/gpu"
PROVISIONER = "llmops.dev/testnode"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KNOWN_BINARIES = ("llmops-agent", "llmops-operator")
BACKOFF_INITIAL = 10.0  # kubelet's first back-off, capped by --restart-backoff-max
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


# ---------------------------------------------------------------------------
# small helpers


def rfc3339(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def micro_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> float:
    s = s.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in s else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp()


_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_quantity(q) -> Fraction:
    """A Kubernetes resource quantity ("500m", "32Gi", "1e3") as a Fraction."""
    m = re.fullmatch(r"([+-]?[0-9]*\.?[0-9]+)([eE][+-]?[0-9]+)?([a-zA-Z]*)", str(q).strip())
    if not m or m.group(3) not in _SUFFIX:
        raise ValueError(f"bad quantity {q!r}")
    value = Fraction(m.group(1))
    if m.group(2):
        value *= Fraction(10) ** int(m.group(2)[1:])
    return value * _SUFFIX[m.group(3)]


def expand(s: str, env: dict) -> str:
    """kubelet's $(VAR) expansion: $$ is a literal $, unknown names stay as they are."""
    out, i, n = [], 0, len(s)
    while i < n:
        if s[i] == "$" and i + 1 < n:
            if s[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if s[i + 1] == "(":
                j = s.find(")", i + 2)
                if j != -1:
                    name = s[i + 2:j]
                    out.append(env[name] if name in env else s[i:j + 1])
                    i = j + 1
                    continue
        out.append(s[i])
        i += 1
    return "".join(out)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: identifies a process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def dig(obj, *keys, default=None):
    for k in keys:
        if not isinstance(obj, dict) or k not in obj or obj[k] is None:
            return default
        obj = obj[k]
    return obj


# ---------------------------------------------------------------------------
# a minimal Kubernetes REST client: JSON dicts in, JSON dicts out


class ApiError(Exception):
    def __init__(self, status: int, body, method: str, path: str):
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        self.reason = body.get("reason") if isinstance(body, dict) else None
        super().__init__(f"{method} {path}: HTTP {status}: {message}")


class Kube:
    """Talks to the API server named by a kubeconfig (client certificates,
    bearer tokens, CA files or inline data). One keep-alive connection per
    thread; watches get their own connection."""

    def __init__(self, kubeconfig: str | os.PathLike):
        path = Path(kubeconfig)
        cfg = yaml.safe_load(path.read_text())
        base = path.resolve().parent

        def named(kind, name):
            for item in cfg.get(kind) or []:
                if item.get("name") == name:
                    return item
            raise ValueError(f"{path}: no {kind[:-1]} named {name!r}")

        context = named("contexts", cfg["current-context"])["context"]
        cluster = named("clusters", context["cluster"])["cluster"]
        user = named("users", context["user"])["user"] if context.get("user") else {}

        def blob(d, key):
            if d.get(f"{key}-data"):
                return base64.b64decode(d[f"{key}-data"])
            if d.get(key):
                return (base / d[key]).read_bytes()
            return None

        # cluster.sh names its clusters llmops-<name>: "test", "dev"...
        self.cluster_name = re.sub(r"[^A-Za-z0-9_.-]", "_", re.sub(
            r"^llmops-", "", context["cluster"])) or "cluster"
        self.server = cluster["server"].rstrip("/")
        url = urlsplit(self.server)
        self.host = url.hostname
        self.port = url.port or 443
        self.ca_pem = blob(cluster, "certificate-authority") or b""
        if cluster.get("insecure-skip-tls-verify"):
            self.ssl = ssl._create_unverified_context()
        elif self.ca_pem:
            self.ssl = ssl.create_default_context(cadata=self.ca_pem.decode())
        else:
            self.ssl = ssl.create_default_context()
        cert, key = blob(user, "client-certificate"), blob(user, "client-key")
        if cert and key:
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "c").write_bytes(cert)
                (Path(tmp) / "k").write_bytes(key)
                self.ssl.load_cert_chain(Path(tmp) / "c", Path(tmp) / "k")
        self.headers = {"Accept": "application/json", "User-Agent": "llmops-testnode/1.0"}
        token = user.get("token") or (
            (base / user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def _connect(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=timeout)

    def request(self, method: str, path: str, body=None, params: dict | None = None,
                content_type: str = "application/json", timeout: float = 30):
        url = path + ("?" + urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connect(timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        try:
            obj = json.loads(raw) if raw else {}
        except ValueError:
            obj = raw.decode(errors="replace")
        if resp.status >= 400:
            raise ApiError(resp.status, obj, method, path)
        return obj

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body, content_type=MERGE, **kw):
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    def watch(self, path: str, params: dict, timeout_s: int = 60):
        """Yields watch events (dicts with type and object) until the server
        ends the watch (timeoutSeconds) or the connection breaks."""
        params = dict(params, watch="true", timeoutSeconds=str(timeout_s),
                      allowWatchBookmarks="true")
        conn = self._connect(timeout_s + 30)
        try:
            conn.request("GET", path + "?" + urlencode(params), headers=self.headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raw = resp.read()
                try:
                    raw = json.loads(raw)
                except ValueError:
                    pass
                raise ApiError(resp.status, raw, "WATCH", path)
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


def list_watch(kube: Kube, path: str, params: dict, on_list, on_event, stop: threading.Event,
               what: str):
    """A tiny informer: list, then watch from the list's resourceVersion;
    list again after 410 Gone or an error. Runs until stop is set."""
    while not stop.is_set():
        try:
            listing = kube.get(path, params=params)
            rv = listing["metadata"]["resourceVersion"]
            on_list(listing.get("items") or [])
            while not stop.is_set():
                for ev in kube.watch(path, dict(params, resourceVersion=rv)):
                    if stop.is_set():
                        return
                    kind, obj = ev.get("type"), ev.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone()
                        raise ApiError(obj.get("code", 500), obj, "WATCH", path)
                    rv = dig(obj, "metadata", "resourceVersion", default=rv)
                    if kind != "BOOKMARK":
                        on_event(kind, obj)
        except Gone:
            continue
        except Exception as e:  # noqa: BLE001 -- log, wait, list again
            if stop.is_set():
                return
            if isinstance(e, ApiError) and e.status == 410:
                continue
            log.warning("%s watch failed (%s); listing again in 1 s", what, e)
            stop.wait(1)


# Staging directories for volume sources when a mountPath covers the sandbox.
STAGE_BASES = ("/run/llmops-testnode", "/dev/shm/llmops-testnode", "/var/tmp/llmops-testnode")


def remove_sandbox(sandbox: Path) -> None:
    """Removes a pod sandbox (its name is the pod uid) and its staging dirs."""
    shutil.rmtree(sandbox, ignore_errors=True)
    for base in STAGE_BASES:
        if os.path.isdir(os.path.join(base, sandbox.name)):
            shutil.rmtree(os.path.join(base, sandbox.name), ignore_errors=True)
            try:
                os.rmdir(base)  # only when empty; the wrapper makes it again
            except OSError:
                pass


def default_state_dir(kube: Kube, node: str) -> Path:
    """<repo>/build/testnode/<cluster>/<node>: per cluster, so that nodes of the
    same name in two local clusters never share sandboxes or pid files."""
    return REPO / "build" / "testnode" / kube.cluster_name / node


# ---------------------------------------------------------------------------
# errors that end up in Pod status


class ConfigError(Exception):
    """A container cannot be configured yet (missing ConfigMap key...):
    waiting, reason CreateContainerConfigError; retried."""


class VolumeError(Exception):
    """A volume cannot be set up yet: waiting, reason ContainerCreating; retried."""


class StartError(Exception):
    """The container's command cannot be run: terminated, reason StartError."""


# ---------------------------------------------------------------------------
# one container of a pod


class Container:
    """Runtime state of one container of a Pod across its restarts."""

    def __init__(self, spec: dict, init: bool):
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.terminations: list[dict] = []  # most recent last (k8s terminated states)
        self.restart_count = 0
        self.runs = 0  # starts by this process (restart_count may come from status)
        self.waiting = ("ContainerCreating", None)
        self.next_start = 0.0
        self.backoff = 0.0
        self.delay = 0.0  # the back-off now being waited out
        self.kill_deadline: float | None = None
        self.killed = False
        self.kill_reason: str | None = None
        self.probers: dict[str, Prober] = {}
        self.env: dict = {}
        self.argv: list = []
        self.mounts: list = []
        self.gpus: list[int] = []
        self.log_file = None

    @property
    def alive(self) -> bool:
        return self.proc is not None

    @property
    def last_exit(self):
        return self.terminations[-1]["exitCode"] if self.terminations else None

    @property
    def started(self) -> bool:
        if not self.alive:
            return False
        p = self.probers.get("startup")
        return p is None or p.ok

    @property
    def ready(self) -> bool:
        if self.init and not self.sidecar:  # kubelet: ready once it has completed
            return not self.alive and self.last_exit == 0
        if not self.started:
            return False
        p = self.probers.get("readiness")
        if "readinessProbe" in self.spec:
            return bool(p and p.ok)
        return True

    def stop_probers(self):
        for p in self.probers.values():
            p.halt.set()
        self.probers = {}


class Prober(threading.Thread):
    """Runs one probe of one container run periodically (kubelet semantics:
    initialDelaySeconds, periodSeconds, timeoutSeconds, success/failure
    thresholds). Readiness starts failed, liveness starts passed."""

    def __init__(self, worker: PodWorker, c: Container, kind: str, spec: dict):
        super().__init__(daemon=True, name=f"probe-{kind}-{c.name}")
        self.worker, self.c, self.kind, self.spec = worker, c, kind, spec
        self.ok = kind == "liveness"
        self.failed = False  # liveness/startup: threshold reached, restart the container
        self.message = ""
        self.halt = threading.Event()

    def run(self):
        s = self.spec
        period = max(1, s.get("periodSeconds") or 10)
        timeout = max(1, s.get("timeoutSeconds") or 1)
        success_needed = max(1, s.get("successThreshold") or 1)
        failures_allowed = max(1, s.get("failureThreshold") or 3)
        if self.halt.wait(s.get("initialDelaySeconds") or 0):
            return
        successes = failures = 0
        while not self.halt.is_set():
            try:
                ok, msg = self.worker.probe_once(self.c, s, timeout)
            except Exception as e:  # noqa: BLE001
                ok, msg = False, str(e)
            if self.halt.is_set():
                return
            if ok:
                successes, failures = successes + 1, 0
                if successes >= success_needed and not self.ok:
                    self.ok = True
                    self.worker.wake.set()
                if self.kind == "startup" and self.ok:
                    return
            else:
                successes, failures = 0, failures + 1
                self.message = msg
                if failures >= failures_allowed:
                    if self.kind == "readiness":
                        if self.ok:
                            self.ok = False
                            self.worker.wake.set()
                    elif not self.failed:
                        self.failed = True
                        self.ok = False
                        self.worker.event(f"{self.kind.capitalize()} probe failed: {msg}",
                                          "Unhealthy", "Warning", self.c)
                        self.worker.wake.set()
                        return
            self.halt.wait(period)


# ---------------------------------------------------------------------------
# one pod


class PodWorker(threading.Thread):
    """Owns one Pod (by uid) from the moment it is bound to this node until
    its object is deleted: sets up the sandbox, runs init containers then
    containers, restarts them per restartPolicy, probes them, writes status,
    and performs graceful deletion."""

    TICK = 0.2

    def __init__(self, node: NodeRunner, pod: dict):
        md = pod["metadata"]
        super().__init__(daemon=True, name=f"pod-{md['namespace']}/{md['name']}")
        self.node = node
        self.kube = node.kube
        self.pod = pod
        self.uid = md["uid"]
        self.ns, self.pod_name = md["namespace"], md["name"]
        self.wake = threading.Event()
        self.object_gone = False
        self.done = False
        self.sandbox = node.state_dir / "pods" / self.uid
        self.log_dir = node.state_dir / "pods" / f"{self.ns}_{self.pod_name}_{self.uid}"
        spec = pod["spec"]
        self.policy = spec.get("restartPolicy") or "Always"
        self.init = [Container(c, True) for c in spec.get("initContainers") or []]
        self.main = [Container(c, False) for c in spec.get("containers") or []]
        self.volumes: dict[str, tuple[Path, bool]] = {}  # name -> (host dir, read-only)
        self.tokens: list[dict] = []  # service-account token files to refresh
        self.sandbox_ok = False
        self.next_setup = 0.0
        self.pod_reason = self.pod_message = None
        self.terminal: str | None = None  # Succeeded/Failed once reached
        self.terminating = False
        self.stopping = False  # the node is shutting down
        self.start_time = dig(pod, "status", "startTime") or rfc3339()
        self.transitions: dict[str, tuple[str, str]] = {}  # condition -> (status, time)
        for cond in dig(pod, "status", "conditions", default=[]):
            self.transitions[cond["type"]] = (cond.get("status"),
                                              cond.get("lastTransitionTime") or rfc3339())
        self.last_status = None
        self.failures = 0
        self.gpus: list[int] = []
        self.dns_done = False
        self.next_dns = 0.0
        self._recover(pod)

    @property
    def containers(self):
        return self.init + self.main

    def log(self, level, msg, *args):
        log.log(level, "pod %s/%s: " + msg, self.ns, self.pod_name, *args)

    # -- restarts of the test node: pick up what the previous instance reported

    def _recover(self, pod):
        status = pod.get("status") or {}
        phase = status.get("phase")
        known = {s["name"]: s for s in (status.get("initContainerStatuses") or [])
                 + (status.get("containerStatuses") or [])}
        for c in self.containers:
            s = known.get(c.name)
            if not s:
                continue
            c.restart_count = s.get("restartCount") or 0
            state, last = s.get("state") or {}, s.get("lastState") or {}
            if last.get("terminated"):
                c.terminations.append(last["terminated"])
            if state.get("terminated"):
                c.terminations.append(state["terminated"])
            elif state.get("running"):
                # Its process died with the previous test node instance.
                c.terminations.append({
                    "exitCode": 137, "reason": "Error",
                    "message": "the test node restarted; the process was killed",
                    "startedAt": state["running"].get("startedAt") or rfc3339(),
                    "finishedAt": rfc3339(), "containerID": s.get("containerID", "")})
        if phase in ("Succeeded", "Failed"):
            self.terminal = phase
            self.sandbox_ok = True

    # -- events from the node

    def update(self, pod: dict):
        self.pod = pod
        self.wake.set()

    def gone(self):
        self.object_gone = True
        self.wake.set()

    def node_stopping(self):
        self.stopping = True
        self.wake.set()

    # -- main loop

    def run(self):
        self.log(logging.INFO, "accepted (uid %s)", self.uid)
        try:
            self._allocate_gpus()
        except StartError as e:
            self.terminal = "Failed"
            self.pod_reason, self.pod_message = "UnexpectedAdmissionError", str(e)
        while not self.done:
            try:
                self.step()
                self.failures = 0
                if self.pod_reason == "TestNodeError":
                    self.pod_reason = self.pod_message = None
            except Exception as e:  # noqa: BLE001 -- one bad pod must not stop the node
                self.failures += 1
                self.log(logging.ERROR, "internal error (%s): %s", type(e).__name__, e)
                log.debug("traceback", exc_info=True)
                if self.failures >= 20 and not self.terminal and not self.terminating:
                    self.pod_reason = "TestNodeError"
                    self.pod_message = f"the test node cannot run this pod: {e}"
                time.sleep(1)
            if not self.done:
                busy = any(c.alive for c in self.containers) or not self.terminal
                self.wake.wait(self.TICK if busy else 5)
                self.wake.clear()
        self._release_gpus()
        self.node.worker_done(self)

    def step(self):
        if self.stopping:
            return self._step_node_stopping()
        self.reap()
        if self.object_gone:
            return self._step_gone()
        if dig(self.pod, "metadata", "deletionTimestamp"):
            return self._step_terminating()
        if self.terminal:
            self.enforce_kills()
            self.sync_status()
            return
        now = time.monotonic()
        if not self.sandbox_ok:
            if now < self.next_setup:
                return
            try:
                self.setup_sandbox()
                self.sandbox_ok = True
                self.pod_reason = self.pod_message = None
            except (VolumeError, ConfigError, ApiError, OSError) as e:
                self.log(logging.WARNING, "sandbox not ready: %s", e)
                self.next_setup = now + 2
                for c in self.containers:
                    c.waiting = ("ContainerCreating", str(e))
                self.sync_status()
                return
        self.refresh_tokens()
        self.publish_dns()
        if self.run_init():
            self.run_main()
        self.check_probes()
        self.enforce_kills()
        phase = self.phase()
        if phase in ("Succeeded", "Failed"):
            self.terminal = phase
            self.log(logging.INFO, "%s", phase)
            for c in self.containers:  # sidecars and anything left
                if c.alive:
                    self.begin_kill(c, self.grace(), "pod finished")
            self._release_gpus()
        self.sync_status()

    def _step_gone(self):
        for c in self.containers:
            if c.alive:
                self.begin_kill(c, 0, "pod object deleted")
        self.reap()
        if any(c.alive for c in self.containers):
            return
        self.log(logging.INFO, "object deleted; cleaning up")
        self.cleanup()
        self.done = True

    def _step_node_stopping(self):
        for c in self.containers:
            if c.alive and c.kill_deadline is None:
                self.begin_kill(c, min(self.grace(), self.node.args.shutdown_grace),
                                "test node stopping")
        self.reap()
        self.enforce_kills()
        if not any(c.alive for c in self.containers):
            self.done = True

    def grace(self) -> float:
        md, spec = self.pod["metadata"], self.pod["spec"]
        g = md.get("deletionGracePeriodSeconds")
        if g is None:
            g = spec.get("terminationGracePeriodSeconds")
        return 30 if g is None else max(0, g)

    def _step_terminating(self):
        if not self.terminating:
            self.terminating = True
            grace = self.grace()
            running = [c for c in self.containers if c.alive]
            self.log(logging.INFO, "deleted; stopping %d container(s), grace %ss",
                     len(running), grace)
            for c in running:
                self.event(f"Stopping container {c.name}", "Killing", "Normal", c)
                self.begin_kill(c, grace, "pod deleted")
        self.reap()
        self.enforce_kills()
        if any(c.alive for c in self.containers):
            return
        if not self.terminal:
            ran = [c for c in self.main if c.terminations]
            ok = ran and len(ran) == len(self.main) and all(c.last_exit == 0 for c in ran)
            self.terminal = "Succeeded" if ok else "Failed"
        try:
            self.sync_status()
        except ApiError as e:  # the final status is best effort; deleting is not
            self.log(logging.WARNING, "final status not written: %s", e)
        # as kubelet: the sandbox and its volumes go before the pod object, so
        # a pod gone from the API has nothing left on the node
        self.cleanup()
        try:
            self.kube.delete(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}",
                             {"apiVersion": "v1", "kind": "DeleteOptions",
                              "gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
        except ApiError as e:
            if e.status not in (404, 409):
                raise
        self.log(logging.INFO, "deleted from the API")
        self.done = True

    def cleanup(self):
        for c in self.containers:
            c.stop_probers()
        remove_sandbox(self.sandbox)

    # -- GPUs

    def _allocate_gpus(self):
        for c in self.containers:
            res = c.spec.get("resources") or {}
            want = (res.get("limits") or {}).get(GPU) or (res.get("requests") or {}).get(GPU)
            n = int(parse_quantity(want)) if want else 0
            if n:
                c.gpus = self.node.allocate_gpus(self.uid, n)

    def _release_gpus(self):
        self.node.release_gpus(self.uid)

    # -- sandbox and volumes

    def setup_sandbox(self):
        (self.sandbox / "volumes").mkdir(parents=True, exist_ok=True)
        (self.sandbox / "pids").mkdir(exist_ok=True)
        (self.sandbox / "start-errors").mkdir(exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = []
        volumes = {}
        for v in self.all_volumes():
            volumes[v["name"]] = self.setup_volume(v)
        self.volumes = volumes

    def all_volumes(self) -> list[dict]:
        """The pod's volumes, plus the service-account volume kubelet's
        admission plugin would have added when it did not (automount)."""
        spec = self.pod["spec"]
        vols = list(spec.get("volumes") or [])
        if spec.get("automountServiceAccountToken") is False:
            return vols
        mounted = any(m.get("mountPath", "").rstrip("/") == SA_MOUNT
                      for c in self.containers for m in c.spec.get("volumeMounts") or [])
        if not mounted:
            vols.append(self.synthetic_sa_volume())
            for c in self.containers:
                c.spec = dict(c.spec, volumeMounts=list(c.spec.get("volumeMounts") or []) + [
                    {"name": "kube-api-access-testnode", "mountPath": SA_MOUNT,
                     "readOnly": True}])
        return vols

    @staticmethod
    def synthetic_sa_volume():
        return {"name": "kube-api-access-testnode", "projected": {"defaultMode": 0o644, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                                   "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}

    def setup_volume(self, v: dict) -> tuple[Path, bool]:
        name = v["name"]
        d = self.sandbox / "volumes" / name
        if "emptyDir" in v:
            d.mkdir(parents=True, exist_ok=True)
            return d, False
        if "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"]
            return self.node.claim_dir(self.ns, claim["claimName"]), bool(claim.get("readOnly"))
        if "hostPath" in v:
            hp = v["hostPath"]
            p = Path(hp["path"])
            kind = hp.get("type") or ""
            if kind == "FileOrCreate" and not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            elif kind in ("", "DirectoryOrCreate") and not p.exists():
                p.mkdir(parents=True, exist_ok=True)
            elif not p.exists():
                raise VolumeError(f"volume {name}: hostPath {p} does not exist (type {kind})")
            return p, False
        files = None
        if "configMap" in v:
            files = self.configmap_files(v["configMap"])
        elif "secret" in v:
            files = self.secret_files(v["secret"])
        elif "downwardAPI" in v:
            files = self.downward_files(v["downwardAPI"])
        elif "projected" in v:
            files = self.projected_files(v["projected"], d)
        if files is None:
            kinds = [k for k in v if k != "name"]
            raise VolumeError(f"volume {name}: type {', '.join(kinds) or '?'} is not "
                              "supported by the test node")
        d.mkdir(parents=True, exist_ok=True)
        for rel, (data, mode) in files.items():
            write_atomic(d / rel, data, mode)
        return d, True

    def _read_object(self, kind: str, name: str, optional: bool):
        try:
            return self.kube.get(f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
        except ApiError as e:
            if e.status == 404:
                if optional:
                    return None
                raise ConfigError(f'{kind[:-1]} "{name}" not found') from None
            raise

    @staticmethod
    def _object_data(obj: dict, secret: bool) -> dict[str, bytes]:
        out = {}
        if secret:
            for k, val in (obj.get("data") or {}).items():
                out[k] = base64.b64decode(val)
            for k, val in (obj.get("stringData") or {}).items():
                out[k] = val.encode()
        else:
            for k, val in (obj.get("data") or {}).items():
                out[k] = val.encode()
            for k, val in (obj.get("binaryData") or {}).items():
                out[k] = base64.b64decode(val)
        return out

    def _key_files(self, src: dict, kind: str, default_mode: int) -> dict:
        secret = kind == "secrets"
        name = src.get("secretName") if secret and "secretName" in src else src.get("name")
        optional = bool(src.get("optional"))
        obj = self._read_object(kind, name, optional)
        if obj is None:
            return {}
        data = self._object_data(obj, secret)
        mode = src.get("defaultMode", default_mode)
        if not src.get("items"):
            return {k: (val, mode) for k, val in data.items()}
        files = {}
        for item in src["items"]:
            if item["key"] not in data:
                if optional:
                    continue
                raise ConfigError(f'{kind[:-1]} "{name}" has no key "{item["key"]}"')
            files[item["path"]] = (data[item["key"]], item.get("mode", mode))
        return files

    def configmap_files(self, src, default_mode=0o644):
        return self._key_files(src, "configmaps", default_mode)

    def secret_files(self, src, default_mode=0o644):
        return self._key_files(src, "secrets", default_mode)

    def downward_files(self, src, default_mode=0o644):
        mode = src.get("defaultMode", default_mode)
        files = {}
        for item in src.get("items") or []:
            if "fieldRef" in item:
                value = self.field_value(item["fieldRef"]["fieldPath"], volume=True)
            else:
                ref = item["resourceFieldRef"]
                value = self.resource_value(ref, self.container_spec(ref.get("containerName")))
            files[item["path"]] = (value.encode(), item.get("mode", mode))
        return files

    def projected_files(self, src, d: Path):
        mode = src.get("defaultMode", 0o644)
        files = {}
        for s in src.get("sources") or []:
            if "configMap" in s:
                files.update(self.configmap_files(s["configMap"], mode))
            elif "secret" in s:
                files.update(self.secret_files(s["secret"], mode))
            elif "downwardAPI" in s:
                files.update(self.downward_files(s["downwardAPI"], mode))
            elif "serviceAccountToken" in s:
                t = s["serviceAccountToken"]
                entry = {"path": d / t["path"], "audience": t.get("audience"),
                         "seconds": t.get("expirationSeconds") or 3600, "mode": mode,
                         "refresh_at": 0.0}
                token = self.request_token(entry)
                files[t["path"]] = (token.encode(), mode)
                self.tokens.append(entry)
            else:
                raise VolumeError(f"projected source {sorted(s)} is not supported by the test node")
        return files

    def request_token(self, entry: dict) -> str:
        """A TokenRequest for the pod's service account, bound to the Pod."""
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [entry["audience"]] if entry.get("audience") else [],
            "expirationSeconds": entry["seconds"],
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name,
                               "uid": self.uid}}}
        try:
            resp = self.kube.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token",
                                  body)
        except ApiError as e:
            raise VolumeError(f"cannot get a token for service account {sa}: {e}") from None
        lifetime = entry["seconds"]
        exp = dig(resp, "status", "expirationTimestamp")
        if exp:
            lifetime = min(lifetime, max(60, parse_time(exp) - time.time()))
        entry["refresh_at"] = time.monotonic() + 0.8 * lifetime
        return resp["status"]["token"]

    def refresh_tokens(self):
        now = time.monotonic()
        for entry in self.tokens:
            if now >= entry["refresh_at"]:
                try:
                    token = self.request_token(entry)
                    write_atomic(entry["path"], token.encode(), entry["mode"])
                    self.log(logging.INFO, "refreshed token %s", entry["path"])
                except VolumeError as e:
                    self.log(logging.WARNING, "%s; retrying in 10 s", e)
                    entry["refresh_at"] = now + 10

    # -- env, fieldRef, resourceFieldRef

    def container_spec(self, name: str | None) -> dict:
        for c in self.containers:
            if name is None or c.name == name:
                return c.spec
        raise ConfigError(f"no container named {name!r}")

    def field_value(self, path: str, volume: bool = False) -> str:
        md, spec = self.pod["metadata"], self.pod["spec"]
        simple = {"metadata.name": md["name"], "metadata.namespace": md["namespace"],
                  "metadata.uid": md["uid"], "spec.nodeName": self.node.name,
                  "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
                  "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1",
                  "status.podIPs": "127.0.0.1", "status.hostIPs": "127.0.0.1"}
        if path in simple:
            return simple[path]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
        if m:
            return (md.get(m.group(1)) or {}).get(m.group(2), "")
        if volume and path in ("metadata.labels", "metadata.annotations"):
            items = sorted((md.get(path.split(".")[1]) or {}).items())
            return "\n".join(f"{k}={json.dumps(v)}" for k, v in items)
        raise ConfigError(f"fieldRef {path} is not supported")

    def resource_value(self, ref: dict, cspec: dict) -> str:
        kind, _, name = ref["resource"].partition(".")
        divisor = parse_quantity(ref.get("divisor") or "1") or Fraction(1)
        value = dig(cspec, "resources", kind, name)
        if value is None:
            value = self.node.allocatable.get(name, "0") if kind == "limits" else "0"
        q = parse_quantity(value)
        if name == "cpu":
            return str(math.ceil(math.ceil(q * 1000) / (divisor * 1000)))
        return str(math.ceil(q / divisor))

    def build_env(self, c: Container) -> dict:
        """The process environment, in kubelet's order: service variables,
        envFrom, then env (each value may refer to earlier ones)."""
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": self.pod_name}
        for k in self.node.args.pass_env:
            if k in os.environ:
                env[k] = os.environ[k]
        port = self.node.kube.port
        env.update({
            "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://127.0.0.1:{port}",
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
            f"KUBERNETES_PORT_{port}_TCP_ADDR": "127.0.0.1"})
        devices = ",".join(map(str, c.gpus))
        env["CUDA_VISIBLE_DEVICES"] = devices
        env["NVIDIA_VISIBLE_DEVICES"] = devices or "void"
        for src in c.spec.get("envFrom") or []:
            prefix = src.get("prefix") or ""
            if "configMapRef" in src:
                ref, kind, secret = src["configMapRef"], "configmaps", False
            else:
                ref, kind, secret = src.get("secretRef") or {}, "secrets", True
            obj = self._read_object(kind, ref["name"], bool(ref.get("optional")))
            if obj is not None:
                for k, val in self._object_data(obj, secret).items():
                    if "=" not in k:
                        env[prefix + k] = val.decode(errors="replace")
        for e in c.spec.get("env") or []:
            name, vf = e["name"], e.get("valueFrom")
            if not vf:
                env[name] = expand(e.get("value") or "", env)
            elif "fieldRef" in vf:
                env[name] = self.field_value(vf["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"]
                cspec = self.container_spec(ref["containerName"]) if ref.get(
                    "containerName") else c.spec
                env[name] = self.resource_value(ref, cspec)
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                secret = "secretKeyRef" in vf
                ref = vf["secretKeyRef" if secret else "configMapKeyRef"]
                kind = "secrets" if secret else "configmaps"
                obj = self._read_object(kind, ref["name"], bool(ref.get("optional")))
                if obj is None:
                    continue
                data = self._object_data(obj, secret)
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f'couldn\'t find key {ref["key"]} in '
                                      f'{kind[:-1]} {self.ns}/{ref["name"]}')
                env[name] = data[ref["key"]].decode(errors="replace")
            else:
                raise ConfigError(f"env {name}: valueFrom {sorted(vf)} is not supported")
        return env

    # -- starting, stopping and watching processes

    def resolve_command(self, c: Container, env: dict) -> list[str]:
        spec = c.spec
        command = [expand(a, env) for a in spec.get("command") or []]
        args = [expand(a, env) for a in spec.get("args") or []]
        image = spec.get("image") or ""
        if not command:
            default = self.node.image_command(image)
            if not default:
                raise StartError(
                    f'container has no command and the test node has no default for image '
                    f'"{image}" (images are ignored here: give the container a command, or '
                    f'start the test node with --image-command {image.split(":")[0]}=PATH)')
            command = [default]
        exe = command[0]
        base = os.path.basename(exe)
        if base in KNOWN_BINARIES:
            path = self.node.bin_dir / base
            if not os.access(path, os.X_OK):
                raise StartError(f'exec: "{exe}": {path} is not built (run make)')
            exe = str(path)
        elif not os.path.isabs(exe):
            raise StartError(
                f'exec: "{exe}": the test node runs only absolute paths that exist on this '
                f'machine and {"/".join(KNOWN_BINARIES)} (the image "{image}" is ignored)')
        elif not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise StartError(f'exec: "{exe}": no such executable on the test node machine')
        return [exe] + command[1:] + args

    def publish_dns(self):
        """Adds this Pod's names to the cluster hosts file once a headless
        Service named by its subdomain selects it (CoreDNS has no record
        before that; with publishNotReadyAddresses it has one before the Pod
        is ready, and that is what this stand-in gives)."""
        spec = self.pod["spec"]
        names = pod_dns_names(self.ns, spec)
        if self.dns_done or not names or time.monotonic() < self.next_dns:
            return
        self.next_dns = time.monotonic() + 1
        try:
            svc = self.kube.get(f"/api/v1/namespaces/{self.ns}/services/{spec['subdomain']}")
        except ApiError as e:
            if e.status == 404:
                return
            raise
        labels = dig(self.pod, "metadata", "labels", default={}) or {}
        selector = dig(svc, "spec", "selector", default={}) or {}
        if dig(svc, "spec", "clusterIP") != "None" or not selector or any(
                labels.get(k) != v for k, v in selector.items()):
            return
        self.node.hosts.add(names)
        self.dns_done = True
        self.log(logging.INFO, "cluster DNS: %s", names[0])

    def container_mounts(self, c: Container, env: dict) -> list[tuple[str, str, bool]]:
        mounts = []
        for m in c.spec.get("volumeMounts") or []:
            if m["name"] not in self.volumes:
                raise ConfigError(f'volumeMount {m["name"]}: no such volume')
            src, ro = self.volumes[m["name"]]
            sub = m.get("subPath") or (expand(m["subPathExpr"], env)
                                       if m.get("subPathExpr") else "")
            if sub:
                if ".." in Path(sub).parts or os.path.isabs(sub):
                    raise ConfigError(f"volumeMount {m['name']}: bad subPath {sub!r}")
                src = src / sub
                if not src.exists():
                    src.mkdir(parents=True, exist_ok=True)
            mounts.append((str(src), m["mountPath"], ro or bool(m.get("readOnly"))))
        if not self.pod["spec"].get("hostNetwork") and not any(
                dst.rstrip("/") == "/etc/hosts" for _s, dst, _r in mounts):
            mounts.append((str(self.node.hosts.path), "/etc/hosts", True))
        mounts.sort(key=lambda t: len(Path(t[1]).parts))
        return mounts

    def stage_dir(self, c: Container, mounts) -> str:
        """Where the wrapper first binds every volume source, so that a mount
        whose target hides a source (a volume at /work hides /work/main/...)
        does not break the mounts after it: a directory no target covers."""
        def covered(p):
            for _src, dst, _ro in mounts:
                for d in {dst.rstrip("/") or "/", os.path.realpath(dst)}:
                    if p == d or p.startswith(d.rstrip("/") + "/"):
                        return True
            return False

        for base in [self.sandbox / "stage"] + [Path(b) / self.uid for b in STAGE_BASES]:
            p = str(base / c.name)
            if not covered(p) and not covered(os.path.realpath(p)):
                return p
        raise ConfigError("volumeMounts cover every directory the test node could stage "
                          "volumes in")

    def launch_argv(self, c: Container, argv: list[str], mounts, workdir: str,
                    err_file: Path | None) -> tuple[list[str], str]:
        """The command line that starts argv with the container's mounts:
        unshare + a shell that bind-mounts, cds and execs (the pid is kept).
        Sources are bound to a staging directory first (see stage_dir) and
        from there to their mountPath, so the order of mounts never matters."""
        if not self.node.mount_ns:
            return argv, workdir
        q = shlex.quote
        stage = self.stage_dir(c, mounts)
        lines = []
        if err_file:  # opened before any mount can hide it; closed before exec
            lines.append(f"exec 9>>{q(str(err_file))}")
            lines.append('fail() { echo "testnode: $*" >&2; echo "$*" >&9; exit 128; }')
        else:
            lines.append('fail() { echo "testnode: $*" >&2; exit 128; }')
        lines.append(f"mkdir -p {q(stage)} || fail cannot create {q(stage)}")
        # The executable itself may lie under a mountPath (a clone under /tmp
        # and an emptyDir at /tmp): bind it into the staging directory first
        # and exec it from there.
        exe = q(f"{stage}/exe")
        lines.append(f": > {exe} && mount --bind {q(argv[0])} {exe} || "
                     f"fail cannot bind-mount {q(argv[0])}")
        for i, (src, dst, ro) in enumerate(mounts):
            st = q(f"{stage}/{i}")
            make = f"mkdir -p {st}" if os.path.isdir(src) else f": > {st}"
            lines.append(f"{make} && mount --bind {q(src)} {st} || "
                         f"fail cannot bind-mount {q(src)}")
        for i, (src, dst, ro) in enumerate(mounts):
            st, t = q(f"{stage}/{i}"), q(dst)
            if os.path.isdir(src):
                lines.append(f"mkdir -p {t} || fail cannot create mount point {t}")
            else:
                lines.append(f"[ -e {t} ] || {{ mkdir -p {q(os.path.dirname(dst) or '/')} && "
                             f": > {t}; }} || fail cannot create mount point {t}")
            lines.append(f"mount --bind {st} {t} || fail cannot bind-mount {q(src)} at {t}")
            if ro:
                lines.append(f"mount -o remount,bind,ro {t} || fail cannot make {t} read-only")
        for i in range(len(mounts)):
            lines.append(f"umount {q(f'{stage}/{i}')} 2>/dev/null")
        lines.append(f"mkdir -p {q(workdir)} && cd {q(workdir)} || "
                     f"fail cannot enter working directory {q(workdir)}")
        if err_file:
            lines.append("exec 9>&-")
        lines.append("shift")
        lines.append(f'exec {exe} "$@"')
        wrapper = [self.node.unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
                   "\n".join(lines), "testnode-mount"]
        return wrapper + argv, str(self.sandbox)

    def start_container(self, c: Container):
        """Starts one run of a container; failures become status."""
        now = time.monotonic()
        try:
            env = self.build_env(c)
            mounts = self.container_mounts(c, env)
            if not self.node.mount_ns:
                for name, (d, _ro) in self.volumes.items():
                    env[f"LLMOPS_MOUNT_{env_name(name)}"] = str(d)
            argv = self.resolve_command(c, env)
            workdir = c.spec.get("workingDir") or str(self.sandbox)
            err_file = self.sandbox / "start-errors" / c.name
            full, cwd = self.launch_argv(c, argv, mounts, workdir, err_file)
        except ConfigError as e:
            if c.waiting[1] != str(e):
                self.log(logging.WARNING, "container %s: %s", c.name, e)
                self.event(f"Error: {e}", "Failed", "Warning", c)
            c.waiting = ("CreateContainerConfigError", str(e))
            c.next_start = now + 2
            return
        except ApiError as e:
            c.waiting = ("CreateContainerConfigError", str(e))
            c.next_start = now + 2
            return
        except StartError as e:
            self.log(logging.WARNING, "container %s cannot start: %s", c.name, e)
            self.event(f"Error: {e}", "Failed", "Warning", c)
            if c.runs or c.terminations:
                c.restart_count += 1
            c.runs += 1
            self.record_exit(c, 128, "StartError", str(e), rfc3339(), cid="")
            return
        err_file.unlink(missing_ok=True)
        if not self.node.mount_ns:
            Path(workdir).mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_dir / f"{c.name}.log", "ab", buffering=0)
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    env=env, cwd=cwd, start_new_session=True, close_fds=True)
        except OSError as e:
            logf.close()
            if c.runs or c.terminations:
                c.restart_count += 1
            c.runs += 1
            self.record_exit(c, 128, "StartError", f"exec: {e}", rfc3339(), cid="")
            return
        if c.runs or c.terminations:
            c.restart_count += 1
        c.runs += 1
        c.proc, c.log_file, c.started_at = proc, logf, time.time()
        c.env, c.argv, c.mounts = env, argv, mounts
        c.kill_deadline, c.killed, c.kill_reason = None, False, None
        c.waiting = ("ContainerCreating", None)
        st = proc_start_time(proc.pid)
        write_atomic(self.sandbox / "pids" / c.name, f"{proc.pid} {st}\n".encode())
        self.log(logging.INFO, "container %s started: pid %d: %s", c.name, proc.pid,
                 shlex.join(argv))
        self.event(f"Started container {c.name}", "Started", "Normal", c)
        if "startupProbe" in c.spec:
            self._add_prober(c, "startup", c.spec["startupProbe"])

    def _add_prober(self, c, kind, spec):
        p = Prober(self, c, kind, spec)
        c.probers[kind] = p
        p.start()

    def reap(self):
        for c in self.containers:
            if c.proc is None:
                continue
            rc = c.proc.poll()
            if rc is None:
                continue
            pid = c.proc.pid
            killpg(pid, signal.SIGKILL)  # whatever the process left in its group
            c.proc = None
            c.log_file.close()
            (self.sandbox / "pids" / c.name).unlink(missing_ok=True)
            c.stop_probers()
            code = 128 - rc if rc < 0 else rc
            reason, message = ("Completed" if code == 0 else "Error"), None
            err_file = self.sandbox / "start-errors" / c.name
            if err_file.exists() and err_file.stat().st_size:
                reason, message = "StartError", err_file.read_text().strip()
            elif code and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = self._log_tail(c)
            self.log(logging.INFO, "container %s (pid %d) exited %d%s", c.name, pid, code,
                     f" ({c.kill_reason})" if c.kill_reason else "")
            self.record_exit(c, code, reason, message, rfc3339(c.started_at),
                             cid=f"testnode://{pid}")

    def _log_tail(self, c) -> str:
        try:
            with open(self.log_dir / f"{c.name}.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 2048))
                return f.read().decode(errors="replace")[-2048:]
        except OSError:
            return ""

    def record_exit(self, c: Container, code: int, reason: str, message, started: str, cid):
        term = {"exitCode": code, "reason": reason, "startedAt": started,
                "finishedAt": rfc3339(), "containerID": cid}
        if message:
            term["message"] = message
        c.terminations = (c.terminations + [term])[-2:]
        if self.will_restart(c):
            now = time.monotonic()
            cap = self.node.args.restart_backoff_max
            ran = time.time() - parse_time(started)
            if c.backoff and ran > 2 * max(cap, BACKOFF_INITIAL):
                c.backoff = 0  # ran long enough: forget the crash loop
            if not c.backoff:
                c.next_start = now  # the first restart is immediate, as in kubelet
                c.backoff = min(BACKOFF_INITIAL, cap)
            else:
                c.next_start = now + c.backoff
                c.delay = c.backoff
                self.event(f"Back-off restarting failed container {c.name}", "BackOff",
                           "Warning", c)
                c.backoff = min(c.backoff * 2, cap)

    def will_restart(self, c: Container) -> bool:
        if self.terminating or self.terminal or self.stopping or self.object_gone:
            return False
        if c.sidecar:
            return True
        if self.policy == "Always" and not c.init:
            return True
        if self.policy in ("Always", "OnFailure"):  # init containers: until they succeed
            return c.last_exit not in (0, None)
        return False

    def begin_kill(self, c: Container, grace: float, reason: str):
        if not c.alive or c.killed:
            return
        c.kill_reason = reason
        if grace <= 0:
            killpg(c.proc.pid, signal.SIGKILL)
            c.killed = True
        elif c.kill_deadline is None:
            killpg(c.proc.pid, signal.SIGTERM)
            c.kill_deadline = time.monotonic() + grace

    def enforce_kills(self):
        now = time.monotonic()
        for c in self.containers:
            if c.alive and not c.killed and c.kill_deadline is not None and now >= c.kill_deadline:
                self.log(logging.INFO, "container %s ignored SIGTERM; killing it", c.name)
                killpg(c.proc.pid, signal.SIGKILL)
                c.killed = True

    def maybe_start(self, c: Container):
        if not c.alive and time.monotonic() >= c.next_start:
            self.start_container(c)

    def run_init(self) -> bool:
        """Advances init containers; True once all of them have completed."""
        for c in self.init:
            if c.sidecar:
                self.maybe_start(c)
                if not c.started:
                    return False
                continue
            if not c.alive and c.last_exit == 0:
                continue
            if not c.alive and (not c.terminations or self.will_restart(c)):
                self.maybe_start(c)
            return False
        return True

    def run_main(self):
        for c in self.main:
            if c.alive:
                continue
            if not c.terminations or self.will_restart(c):
                self.maybe_start(c)

    def check_probes(self):
        for c in self.containers:
            if not c.alive:
                continue
            if c.started:
                for kind in ("readiness", "liveness"):
                    key = f"{kind}Probe"
                    if key in c.spec and kind not in c.probers and not (c.init and not c.sidecar):
                        self._add_prober(c, kind, c.spec[key])
            for kind in ("liveness", "startup"):
                p = c.probers.get(kind)
                if p and p.failed and c.kill_deadline is None and not c.killed:
                    g = p.spec.get("terminationGracePeriodSeconds")
                    self.log(logging.INFO, "container %s failed its %s probe; restarting",
                             c.name, kind)
                    self.event(f"Container {c.name} failed {kind} probe, will be restarted",
                               "Killing", "Normal", c)
                    self.begin_kill(c, self.grace() if g is None else g, f"{kind} probe failed")

    def probe_once(self, c: Container, spec: dict, timeout: float) -> tuple[bool, str]:
        def port_of(p):
            if isinstance(p, int) or str(p).isdigit():
                return int(p)
            for cp in c.spec.get("ports") or []:
                if cp.get("name") == p:
                    return int(cp["containerPort"])
            raise ValueError(f"no container port named {p!r}")

        if "httpGet" in spec:
            h = spec["httpGet"]
            host, port = h.get("host") or "127.0.0.1", port_of(h["port"])
            if (h.get("scheme") or "HTTP").upper() == "HTTPS":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {"User-Agent": "kube-probe/1.34", "Accept": "*/*"}
            headers.update({x["name"]: x["value"] for x in h.get("httpHeaders") or []})
            try:
                conn.request("GET", h.get("path") or "/", headers=headers)
                r = conn.getresponse()
                r.read()
                return 200 <= r.status < 400, f"HTTP probe failed with statuscode: {r.status}"
            except OSError as e:
                return False, f'Get "http://{host}:{port}{h.get("path") or "/"}": {e}'
            finally:
                conn.close()
        if "tcpSocket" in spec or "grpc" in spec:  # grpc: approximated by a TCP connect
            t = spec.get("tcpSocket") or spec["grpc"]
            host, port = t.get("host") or "127.0.0.1", port_of(t["port"])
            try:
                socket.create_connection((host, port), timeout=timeout).close()
                return True, ""
            except OSError as e:
                return False, f"dial tcp {host}:{port}: {e}"
        if "exec" in spec:
            argv = self.resolve_command(Container({"name": c.name, "command": spec["exec"].get(
                "command") or [], "image": c.spec.get("image")}, False), c.env)
            full, cwd = self.launch_argv(c, argv, c.mounts,
                                         c.spec.get("workingDir") or str(self.sandbox), None)
            try:
                r = subprocess.run(full, env=c.env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=timeout)
                out = (r.stdout + r.stderr).decode(errors="replace").strip()
                return r.returncode == 0, out or f"exit code {r.returncode}"
            except subprocess.TimeoutExpired:
                return False, f"command timed out after {timeout}s"
        return False, "probe has no handler the test node supports"

    # -- status

    def phase(self) -> str:
        if self.terminal:
            return self.terminal
        if not self.sandbox_ok:
            return "Pending"
        for c in self.init:
            if c.sidecar:
                continue
            if c.last_exit == 0 and not c.alive:
                continue
            if not c.alive and c.terminations and not self.will_restart(c):
                return "Failed"
            return "Pending"
        running = waiting = stopped = succeeded = 0
        for c in self.main:
            if c.alive:
                running += 1
            elif c.terminations:
                stopped += 1
                succeeded += c.last_exit == 0
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if self.policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            if self.policy == "Never":
                return "Failed"
            return "Running"
        return "Pending"

    def container_status(self, c: Container, phase: str) -> dict:
        s = {"name": c.name, "image": c.spec.get("image") or "",
             "imageID": f"testnode-image://{c.spec.get('image') or ''}",
             "restartCount": c.restart_count, "ready": c.ready, "started": c.started}
        last = {}
        if c.alive:
            s["state"] = {"running": {"startedAt": rfc3339(c.started_at)}}
            s["containerID"] = f"testnode://{c.proc.pid}"
            if c.terminations:
                last = {"terminated": c.terminations[-1]}
        elif c.terminations and self.will_restart(c):
            waiting = c.next_start > time.monotonic()
            reason = "CrashLoopBackOff" if waiting else "ContainerCreating"
            msg = (f"back-off {c.delay:g}s restarting failed container={c.name} "
                   f"pod={self.pod_name}_{self.ns}({self.uid})") if waiting else None
            if c.waiting[0] == "CreateContainerConfigError":
                reason, msg = c.waiting
            s["state"] = {"waiting": {k: v for k, v in (("reason", reason), ("message", msg))
                                      if v}}
            last = {"terminated": c.terminations[-1]}
        elif c.terminations:
            s["state"] = {"terminated": c.terminations[-1]}
            if c.terminations[-1].get("containerID"):
                s["containerID"] = c.terminations[-1]["containerID"]
            if len(c.terminations) > 1:
                last = {"terminated": c.terminations[-2]}
        else:
            reason, msg = c.waiting
            if not c.init and phase == "Pending" and self.sandbox_ok and not self._init_done():
                reason, msg = "PodInitializing", None
            elif c.init and reason == "ContainerCreating" and self.sandbox_ok:
                reason = "PodInitializing"
            s["state"] = {"waiting": {k: v for k, v in (("reason", reason), ("message", msg))
                                      if v}}
        s["lastState"] = last
        return s

    def _init_done(self) -> bool:
        return all(c.sidecar or (c.last_exit == 0 and not c.alive) for c in self.init)

    def conditions(self, phase: str) -> list[dict]:
        def cond(kind, ok, reason=None, message=None):
            status = "True" if ok else "False"
            prev = self.transitions.get(kind)
            t = prev[1] if prev and prev[0] == status else rfc3339()
            self.transitions[kind] = (status, t)
            c = {"type": kind, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": t}
            if not ok and reason:
                c["reason"] = reason
            if not ok and message:
                c["message"] = message
            return c

        terminal = phase in ("Succeeded", "Failed")
        init_pending = [c.name for c in self.init if not c.sidecar
                        and not (c.last_exit == 0 and not c.alive)]
        initialized = not init_pending or (terminal and self._init_done())
        unready = [c.name for c in self.main + [s for s in self.init if s.sidecar]
                   if not c.ready]
        ready_reason = "PodCompleted" if phase == "Succeeded" else "ContainersNotReady"
        ready_msg = (None if phase == "Succeeded"
                     else f"containers with unready status: [{' '.join(unready)}]")
        containers_ready = not unready and not terminal
        gates = [g["conditionType"] for g in self.pod["spec"].get("readinessGates") or []]
        current = {c["type"]: c for c in dig(self.pod, "status", "conditions", default=[])}
        gates_off = [g for g in gates if dig(current, g, "status") != "True"]
        out = [
            cond("PodReadyToStartContainers", self.sandbox_ok and not (
                terminal and not any(c.alive for c in self.containers))),
            cond("Initialized", initialized, "ContainersNotInitialized",
                 f"containers with incomplete status: [{' '.join(init_pending)}]"),
            cond("ContainersReady", containers_ready, ready_reason, ready_msg),
            cond("Ready", containers_ready and not gates_off,
                 "ReadinessGatesNotReady" if containers_ready else ready_reason,
                 (f"corresponding condition of pod readiness gate \"{gates_off[0]}\" "
                  "does not exist." if containers_ready and gates_off else ready_msg)),
        ]
        if "PodScheduled" not in current:
            out.append(cond("PodScheduled", True))
        return out

    def sync_status(self):
        phase = self.phase()
        status = {
            "phase": phase,
            "conditions": self.conditions(phase),
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "containerStatuses": [self.container_status(c, phase) for c in self.main],
            "message": self.pod_message, "reason": self.pod_reason,
        }
        if self.init:
            status["initContainerStatuses"] = [self.container_status(c, phase)
                                               for c in self.init]
        if self.sandbox_ok:
            status["podIP"] = "127.0.0.1"
            status["podIPs"] = [{"ip": "127.0.0.1"}]
        body = {"status": status}
        key = json.dumps(body, sort_keys=True)
        if key == self.last_status:
            return
        try:
            self.kube.patch(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}/status", body,
                            content_type=STRATEGIC)
            self.last_status = key
        except ApiError as e:
            if e.status == 404:
                self.gone()
                return
            raise

    def event(self, message: str, reason: str, kind: str = "Normal", c: Container | None = None):
        self.node.event(self.pod, message, reason, kind,
                        f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"
                        if c else None)


# ---------------------------------------------------------------------------
# cluster DNS


class ClusterHosts:
    """The stand-in for cluster DNS: one hosts file that every container sees
    at /etc/hosts. It is only appended to, in place, so the bind mounts of
    running containers (which pin the inode) see every name as it is added,
    and a reader never sees a line disappear."""

    HEADER = ("# llmops test node: cluster DNS for the Pods of this node. Every Pod\n"
              "# shares the host network, so every name is 127.0.0.1.\n"
              "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")

    def __init__(self, path: Path):
        self.path = path
        self.names: set[str] = set()
        self.lock = threading.Lock()

    def reset(self):
        write_atomic(self.path, self.HEADER.encode())

    def add(self, names: list[str]):
        with self.lock:
            new = [n for n in names if n not in self.names]
            if not new:
                return
            with open(self.path, "a") as f:
                f.write("127.0.0.1\t" + " ".join(new) + "\n")
            self.names.update(new)


def pod_dns_names(ns: str, spec: dict) -> list[str]:
    """What CoreDNS answers for a Pod whose hostname and subdomain name a
    headless Service: its FQDN, and the shorter forms the Pod's search path
    (<ns>.svc.cluster.local svc.cluster.local cluster.local) completes."""
    host, sub = spec.get("hostname"), spec.get("subdomain")
    if not host or not sub:
        return []
    return [f"{host}.{sub}.{ns}.svc.cluster.local", f"{host}.{sub}.{ns}.svc",
            f"{host}.{sub}.{ns}", f"{host}.{sub}"]


# ---------------------------------------------------------------------------
# the node


class NodeRunner:
    """Registers the Node, keeps it alive, and runs a PodWorker per Pod."""

    def __init__(self, args):
        self.args = args
        self.name = args.name
        self.kube = Kube(args.kubeconfig)
        self.state_dir = Path(args.state_dir or default_state_dir(self.kube, self.name)).resolve()
        self.pvc_root = Path(args.pvc_root or self.state_dir / "pvc").resolve()
        self.hosts = ClusterHosts(self.state_dir / "hosts")
        self.bin_dir = Path(args.bin_dir or REPO / "bin").resolve()
        self.stop = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()
        self.lock = threading.Lock()
        self.gpu_owner: dict[int, str] = {}
        self.node_uid = None
        self.started = rfc3339()
        self.unshare = shutil.which("unshare") or "/usr/bin/unshare"
        self.mount_ns = False
        self.capacity = {"cpu": args.cpu, "memory": args.memory, "pods": str(args.pods),
                         "ephemeral-storage": args.ephemeral_storage, GPU: str(args.gpu)}
        self.allocatable = dict(self.capacity)
        self.labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "beta.kubernetes.io/arch": "amd64", "llmops.dev/test-node": "true"}
        for kv in args.label:
            k, _, v = kv.partition("=")
            self.labels[k] = v
        self.taints = [self.parse_taint(t) for t in args.taint]
        self.image_commands = {}
        for item in args.image_command:
            image, sep, path = item.partition("=")
            if not sep or not path:
                raise SystemExit(f"--image-command wants IMAGE=PATH, not {item!r}")
            self.image_commands[image] = path

    @staticmethod
    def parse_taint(text: str) -> dict:
        m = re.fullmatch(r"([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)", text)
        if not m:
            raise SystemExit(f"--taint wants KEY[=VALUE]:EFFECT, not {text!r}")
        t = {"key": m.group(1), "effect": m.group(3)}
        if m.group(2):
            t["value"] = m.group(2)
        return t

    def image_command(self, image: str) -> str | None:
        bare = re.sub(r"@.*$", "", image)
        bare = re.sub(r":[^/:]*$", "", bare)
        for key in (image, bare, bare.rsplit("/", 1)[-1]):
            if key in self.image_commands:
                return self.image_commands[key]
        return None

    # -- GPUs

    def allocate_gpus(self, uid: str, n: int) -> list[int]:
        with self.lock:
            free = [i for i in range(self.args.gpu) if i not in self.gpu_owner]
            if len(free) < n:
                raise StartError(f"Allocate failed due to requested number of devices "
                                 f"unavailable for {GPU}. Requested: {n}, Available: "
                                 f"{len(free)}")
            for i in free[:n]:
                self.gpu_owner[i] = uid
            return free[:n]

    def release_gpus(self, uid: str):
        with self.lock:
            for i in [i for i, u in self.gpu_owner.items() if u == uid]:
                del self.gpu_owner[i]

    # -- mount namespaces

    def check_mount_ns(self) -> bool:
        if self.args.no_mount_namespace:
            log.warning("mount namespaces disabled (--no-mount-namespace): volumes are NOT "
                        "mounted at their mountPath; processes get LLMOPS_MOUNT_<VOLUME>=<dir>")
            return False
        probe = self.state_dir / "mount-probe"
        src, dst = probe / "src", probe / "dst"
        try:
            src.mkdir(parents=True, exist_ok=True)
            dst.mkdir(parents=True, exist_ok=True)
            (src / "ok").write_text("ok")
            r = subprocess.run([self.unshare, "--mount", "--propagation", "private", "/bin/sh",
                                "-c", 'mount --bind "$1" "$2" && cat "$2/ok"', "probe",
                                str(src), str(dst)], capture_output=True, timeout=10)
            ok = r.returncode == 0 and r.stdout == b"ok"
            detail = (r.stderr or r.stdout).decode(errors="replace").strip()
        except (OSError, subprocess.SubprocessError) as e:
            ok, detail = False, str(e)
        finally:
            shutil.rmtree(probe, ignore_errors=True)
        if not ok:
            log.warning("=" * 70)
            log.warning("CANNOT use mount namespaces (unshare --mount + mount --bind: %s).",
                        detail or "failed")
            log.warning("Volumes are NOT mounted at their mountPath; processes get "
                        "LLMOPS_MOUNT_<VOLUME>=<dir> instead, and in-cluster clients will "
                        "not find %s.", SA_MOUNT)
            log.warning("=" * 70)
        else:
            log.info("mount namespaces work: each container gets its volumes bind-mounted "
                     "at their mountPath")
        return ok

    # -- node registration and heartbeats

    def node_conditions(self, ready: bool = True, message: str | None = None) -> list[dict]:
        now = rfc3339()
        conds = []
        for kind, reason, msg in (
                ("MemoryPressure", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")):
            conds.append({"type": kind, "status": "False", "reason": reason, "message": msg,
                          "lastHeartbeatTime": now, "lastTransitionTime": self.started})
        conds.append({"type": "Ready", "status": "True" if ready else "False",
                      "reason": "KubeletReady" if ready else "KubeletNotReady",
                      "message": message or "the llmops test node is posting ready status",
                      "lastHeartbeatTime": now,
                      "lastTransitionTime": self.started if ready else now})
        return conds

    def node_status(self) -> dict:
        return {
            "capacity": self.capacity, "allocatable": self.allocatable,
            "conditions": self.node_conditions(),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex,
                         "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.name)),
                         "bootID": str(uuid.uuid4()), "kernelVersion": os.uname().release,
                         "osImage": "llmops test node", "containerRuntimeVersion": "testnode://1",
                         "kubeletVersion": "v1.34.4", "kubeProxyVersion": "v1.34.4",
                         "operatingSystem": "linux", "architecture": "amd64"},
        }

    def register(self):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": self.labels,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"taints": self.taints} if self.taints else {},
                "status": self.node_status()}
        try:
            node = self.kube.post("/api/v1/nodes", body)
            log.info("registered node %s", self.name)
        except ApiError as e:
            if e.status != 409:
                raise
            old = self.kube.get(f"/api/v1/nodes/{self.name}")
            keep = [t for t in dig(old, "spec", "taints", default=[])
                    if t["key"].startswith("node.kubernetes.io/")]
            node = self.kube.patch(f"/api/v1/nodes/{self.name}", {
                "metadata": {"labels": self.labels},
                "spec": {"taints": self.taints + keep or None, "unschedulable": None}})
            log.info("node %s already registered; updated it", self.name)
        self.node_uid = node["metadata"]["uid"]
        self.kube.patch(f"/api/v1/nodes/{self.name}/status", {"status": self.node_status()},
                        content_type=STRATEGIC)
        self.renew_lease()

    def renew_lease(self):
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        spec = {"holderIdentity": self.name,
                "leaseDurationSeconds": self.args.lease_duration, "renewTime": micro_time()}
        try:
            self.kube.patch(path, {"spec": spec})
        except ApiError as e:
            if e.status != 404:
                raise
            self.kube.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease",
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                  "name": self.name, "uid": self.node_uid}]},
                "spec": spec})

    def heartbeat_loop(self):
        last_status = time.monotonic()
        while not self.stop.wait(self.args.heartbeat_interval):
            try:
                self.renew_lease()
                if time.monotonic() - last_status >= self.args.status_interval - 0.5:
                    self.kube.patch(f"/api/v1/nodes/{self.name}/status",
                                    {"status": {"conditions": self.node_conditions()}},
                                    content_type=STRATEGIC)
                    last_status = time.monotonic()
            except ApiError as e:
                if e.status == 404:
                    log.warning("node %s disappeared; registering it again", self.name)
                    try:
                        self.register()
                    except Exception as e2:  # noqa: BLE001
                        log.warning("registering again failed: %s", e2)
                else:
                    log.warning("heartbeat failed: %s", e)
            except Exception as e:  # noqa: BLE001
                log.warning("heartbeat failed: %s", e)

    # -- pods

    def on_pods_listed(self, pods: list[dict]):
        uids = {p["metadata"]["uid"] for p in pods}
        for p in pods:
            self.on_pod("MODIFIED", p)
        with self.lock:
            stale = [w for uid, w in self.workers.items() if uid not in uids]
        for w in stale:
            w.gone()
        # Sandboxes of pods that no longer exist (deleted while we were down).
        for d in (self.state_dir / "pods").glob("*"):
            if "_" not in d.name and d.is_dir() and d.name not in uids:
                with self.lock:
                    if d.name in self.workers:
                        continue
                log.info("removing the sandbox of deleted pod %s", d.name)
                remove_sandbox(d)

    def on_pod(self, kind: str, pod: dict):
        uid = pod["metadata"]["uid"]
        with self.lock:
            w = self.workers.get(uid)
            if kind == "DELETED":
                if w:
                    w.gone()
                return
            if w:
                w.update(pod)
                return
            if uid in self.finished or self.stop.is_set():
                return
            w = self.workers[uid] = PodWorker(self, pod)
        w.start()

    def worker_done(self, w: PodWorker):
        with self.lock:
            self.workers.pop(w.uid, None)
            if not w.stopping:
                self.finished.add(w.uid)

    def kill_leftovers(self):
        """Processes a previous instance left behind (it was SIGKILLed)."""
        for f in (self.state_dir / "pods").glob("*/pids/*"):
            try:
                pid_s, start = f.read_text().split()
                pid = int(pid_s)
            except (OSError, ValueError):
                continue
            if proc_start_time(pid) == start:
                log.warning("killing process group %d left by a previous test node", pid)
                killpg(pid, signal.SIGKILL)
            f.unlink(missing_ok=True)

    # -- PVCs: a tiny hostPath provisioner

    def claim_dir(self, ns: str, claim: str) -> Path:
        """The host directory of a PVC: its bound PV's hostPath/local path,
        else <pvc-root>/<ns>/<claim>."""
        try:
            pvc = self.kube.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
        except ApiError as e:
            if e.status == 404:
                raise VolumeError(f'persistentvolumeclaim "{claim}" not found') from None
            raise
        path = None
        pv_name = dig(pvc, "spec", "volumeName")
        if pv_name:
            pv = self.kube.get(f"/api/v1/persistentvolumes/{pv_name}")
            path = dig(pv, "spec", "hostPath", "path") or dig(pv, "spec", "local", "path")
        p = Path(path) if path else self.pvc_root / ns / claim
        p.mkdir(parents=True, exist_ok=True)
        return p

    def provision(self, pvc: dict):
        md, spec = pvc["metadata"], pvc.get("spec") or {}
        if dig(pvc, "status", "phase") not in (None, "Pending") or spec.get("volumeName"):
            return
        if spec.get("selector") or spec.get("dataSource") or md.get("deletionTimestamp"):
            return
        if spec.get("storageClassName") not in (None, "", self.args.storage_class):
            return
        path = self.pvc_root / md["namespace"] / md["name"]
        size = dig(spec, "resources", "requests", "storage", default="1Gi")
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": f"pvc-{md['uid']}",
                           "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER,
                                           "llmops.dev/testnode": self.name}},
              "spec": {"capacity": {"storage": size},
                       "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                       "persistentVolumeReclaimPolicy": "Retain",
                       "storageClassName": spec.get("storageClassName") or "",
                       "volumeMode": spec.get("volumeMode") or "Filesystem",
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                    "namespace": md["namespace"], "name": md["name"],
                                    "uid": md["uid"]},
                       "hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}}
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.kube.post("/api/v1/persistentvolumes", pv)
            log.info("provisioned %s for pvc %s/%s at %s", pv["metadata"]["name"],
                     md["namespace"], md["name"], path)
        except ApiError as e:
            if e.status != 409:
                log.warning("provisioning pvc %s/%s failed: %s", md["namespace"], md["name"], e)

    def deprovision(self, pvc: dict):
        name = f"pvc-{pvc['metadata']['uid']}"
        try:
            pv = self.kube.get(f"/api/v1/persistentvolumes/{name}")
        except ApiError:
            return
        if dig(pv, "metadata", "annotations", "llmops.dev/testnode") != self.name:
            return
        try:
            self.kube.delete(f"/api/v1/persistentvolumes/{name}")
        except ApiError as e:
            if e.status != 404:
                log.warning("deleting %s failed: %s", name, e)
                return
        path = Path(dig(pv, "spec", "hostPath", "path", default=""))
        if path.is_relative_to(self.pvc_root) and path != self.pvc_root:
            shutil.rmtree(path, ignore_errors=True)
        log.info("deleted %s (its claim is gone)", name)

    def on_pvc(self, kind: str, pvc: dict):
        if kind == "DELETED":
            self.deprovision(pvc)
        else:
            self.provision(pvc)

    # -- events

    def event(self, pod: dict, message: str, reason: str, kind: str, field_path: str | None):
        md = pod["metadata"]
        obj = {"apiVersion": "v1", "kind": "Pod", "name": md["name"],
               "namespace": md["namespace"], "uid": md["uid"]}
        if field_path:
            obj["fieldPath"] = field_path
        now = rfc3339()
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:16]}",
                             "namespace": md["namespace"]},
                "involvedObject": obj, "reason": reason, "message": message[:1024],
                "type": kind, "source": {"component": "kubelet", "host": self.name},
                "reportingComponent": "kubelet", "reportingInstance": self.name,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self.kube.post(f"/api/v1/namespaces/{md['namespace']}/events", body, timeout=5)
        except Exception as e:  # noqa: BLE001 -- events are best effort
            log.debug("event %s not recorded: %s", reason, e)

    # -- life cycle

    def run(self) -> int:
        (self.state_dir / "pods").mkdir(parents=True, exist_ok=True)
        self._lock = open(self.state_dir / "lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.error("another test node is running with state dir %s", self.state_dir)
            return 1
        self.mount_ns = self.check_mount_ns()
        self.hosts.reset()
        self.kill_leftovers()
        while True:
            try:
                self.register()
                break
            except Exception as e:  # noqa: BLE001
                log.warning("registering node %s failed (%s); retrying", self.name, e)
                if self.stop.wait(2):
                    return 1
        log.info("node %s: cpu=%s memory=%s pods=%s %s=%s; state in %s; API server %s",
                 self.name, self.capacity["cpu"], self.capacity["memory"],
                 self.capacity["pods"], GPU, self.capacity[GPU], self.state_dir,
                 self.kube.server)
        threads = [threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True),
                   threading.Thread(target=list_watch, name="pods", daemon=True, args=(
                       Kube(self.args.kubeconfig), "/api/v1/pods",
                       {"fieldSelector": f"spec.nodeName={self.name}"},
                       self.on_pods_listed, self.on_pod, self.stop, "pod"))]
        if self.args.provisioner:
            threads.append(threading.Thread(target=list_watch, name="pvcs", daemon=True, args=(
                Kube(self.args.kubeconfig), "/api/v1/persistentvolumeclaims", {},
                lambda items: [self.provision(p) for p in items], self.on_pvc, self.stop,
                "pvc")))
        for t in threads:
            t.start()
        while not self.stop.wait(1):
            pass
        return self.shutdown()

    def shutdown(self) -> int:
        log.info("stopping: ending every container")
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.node_stopping()
        deadline = time.monotonic() + self.args.shutdown_grace + 5
        for w in workers:
            if w.ident is not None:
                w.join(max(0.1, deadline - time.monotonic()))
        for w in workers:  # last resort
            for c in w.containers:
                if c.proc is not None:
                    killpg(c.proc.pid, signal.SIGKILL)
                    try:
                        c.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
        try:
            if self.args.on_exit == "delete":
                self.kube.delete(f"/api/v1/nodes/{self.name}", timeout=10)
                log.info("deleted node %s", self.name)
            elif self.args.on_exit == "notready":
                self.kube.patch(f"/api/v1/nodes/{self.name}/status", {"status": {
                    "conditions": self.node_conditions(False, "the llmops test node stopped")}},
                    content_type=STRATEGIC, timeout=10)
                log.info("marked node %s NotReady", self.name)
        except Exception as e:  # noqa: BLE001
            log.warning("could not update node %s on exit: %s", self.name, e)
        log.info("stopped")
        return 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="testnode", description=__doc__.split("\n\n")[0] + " Registers a Node and runs "
        "the Pods bound to it as local processes. See the module docstring (e2e/testnode/"
        "testnode.py) for what is and is not emulated.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                   help="admin kubeconfig (default $KUBECONFIG)")
    p.add_argument("--name", default="llmops-test-node", help="Node name")
    p.add_argument("--cpu", default="8", help="cpu capacity")
    p.add_argument("--memory", default="32Gi", help="memory capacity")
    p.add_argument("--pods", type=int, default=110, help="pod capacity")
    p.add_argument("--ephemeral-storage", default="100Gi", help="ephemeral-storage capacity")
    p.add_argument("--gpu", "--gpus", type=int, default=0,
                   help=f"{GPU} capacity (devices 0..N-1, given to containers that request "
                   "them as CUDA_VISIBLE_DEVICES)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="extra node label (repeatable)")
    p.add_argument("--taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT",
                   help="node taint (repeatable)")
    p.add_argument("--bin-dir", help="where llmops-agent and llmops-operator are "
                   "(default <repo>/bin)")
    p.add_argument("--image-command", action="append", default=[], metavar="IMAGE=PATH",
                   help="command for containers of IMAGE that have no command (repeatable)")
    p.add_argument("--state-dir", help="sandboxes, logs and PVC data "
                   "(default <repo>/build/testnode/<cluster>/<name>)")
    p.add_argument("--pvc-root", help="where provisioned PVC data lives "
                   "(default <state-dir>/pvc)")
    p.add_argument("--restart-backoff-max", type=float, default=10.0,
                   help="cap of the container restart back-off in seconds (kubelet: 10 s "
                   "doubling up to 300 s; the first restart is immediate)")
    p.add_argument("--heartbeat-interval", type=float, default=10.0,
                   help="seconds between Lease renewals")
    p.add_argument("--status-interval", type=float, default=10.0,
                   help="seconds between Ready-condition heartbeats in the node status")
    p.add_argument("--lease-duration", type=int, default=40, help="leaseDurationSeconds")
    p.add_argument("--shutdown-grace", type=float, default=5.0,
                   help="grace period for containers when the test node itself stops")
    p.add_argument("--on-exit", choices=["notready", "delete", "leave"], default="notready",
                   help="what to do with the Node object when stopping")
    p.add_argument("--no-mount-namespace", action="store_true",
                   help="do not bind-mount volumes in a private mount namespace; export "
                   "LLMOPS_MOUNT_<VOLUME>=<dir> instead")
    p.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                   help="pass this variable of the test node's environment to containers")
    p.add_argument("--no-provisioner", dest="provisioner", action="store_false",
                   help="do not bind hostPath PVs to pending PVCs")
    p.add_argument("--storage-class", default="llmops-testnode",
                   help="storage class the provisioner serves besides unset/empty")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING")
    args = p.parse_args(argv)
    if not args.kubeconfig:
        p.error("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s testnode[{args.name}] %(levelname)s %(message)s")
    runner = NodeRunner(args)

    def on_signal(signum, _frame):
        log.info("got %s", signal.Signals(signum).name)
        runner.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return runner.run()


if __name__ == "__main__":
    sys.exit(main())
