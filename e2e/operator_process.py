"""The operator as a local process for end-to-end tests, and small helpers
to poll HTTP endpoints and conditions."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; (None, "") when down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None, ""


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate until truthy (returned) or timeout (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Operator:
    """llmops-operator running with the non-admin operator identity."""

    def __init__(self, root, log_path, *extra):
        self.metrics, self.probes = free_port(), free_port()
        self.log = open(log_path, "w+")
        cmd = [str(root / "bin/llmops-operator"),
               "--kubeconfig", os.environ["LLMOPS_OPERATOR_KUBECONFIG"],
               "--metrics-bind-address", f"127.0.0.1:{self.metrics}",
               "--health-probe-bind-address", f"127.0.0.1:{self.probes}", *extra]
        self.proc = subprocess.Popen(cmd, stderr=self.log, stdout=self.log)
        assert wait_for(lambda: get(self.probes, "/healthz")[0] == 200, 30), self.output()

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def leading(self, lease):
        status, text = get(self.metrics, "/metrics")
        return status == 200 and \
            f'leader_election_master_status{{name="{lease}"}} 1' in text

    def stop(self, sig=None):
        import signal
        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
        code = self.proc.wait(timeout=40)
        return code

    def close(self):
        import signal
        self.stop(signal.SIGKILL)
        self.log.close()
