"""Shared fixtures for the end-to-end tests.

e2e/run.sh starts a fresh local control plane and exports where it lives;
these fixtures turn that into API clients for the admin and the operator
identities, a helper that runs the locally built kubectl, and the operator
as a process beside a test node (for the modules that import test_node)."""

import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import config

from operator_process import Operator


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the e2e tests through `make test` or e2e/run.sh")
    return value


@pytest.fixture(scope="session")
def root():
    return Path(_env("LLMOPS_ROOT"))


@pytest.fixture(scope="session")
def cluster_dir():
    return Path(_env("LLMOPS_CLUSTER_DIR"))


@pytest.fixture(scope="session")
def controlplane_bin():
    return Path(_env("LLMOPS_CONTROLPLANE_BIN"))


def _api_client(kubeconfig):
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def admin_api():
    return _api_client(_env("KUBECONFIG"))


@pytest.fixture(scope="session")
def operator_api():
    return _api_client(_env("LLMOPS_OPERATOR_KUBECONFIG"))


@pytest.fixture(scope="session")
def kubectl(controlplane_bin):
    """Runs kubectl with the admin kubeconfig; returns CompletedProcess."""

    def run(*args, kubeconfig=None, check=True):
        cmd = [str(controlplane_bin / "kubectl")]
        if kubeconfig:
            cmd += ["--kubeconfig", str(kubeconfig)]
        return subprocess.run(cmd + list(args), capture_output=True, text=True,
                              check=check, timeout=60)

    return run


@pytest.fixture(scope="session")
def crds(root, kubectl):
    """Installs the llmops.dev CRDs from crds/ and waits until they serve."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd", "-l", "app.kubernetes.io/part-of=llmops")
    return root / "crds"


@pytest.fixture(scope="session")
def helm(controlplane_bin, tmp_path_factory):
    """Runs the locally built helm with a private home; fails the test on error
    unless check=False."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ, HELM_CACHE_HOME=str(home / "cache"),
               HELM_CONFIG_HOME=str(home / "config"), HELM_DATA_HOME=str(home / "data"))

    def run(*args, check=True):
        proc = subprocess.run([str(controlplane_bin / "helm"), *args], capture_output=True,
                              text=True, timeout=120, env=env)
        if check and proc.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n"
                        f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="module")
def operator(crds, test_node, tmp_path_factory, root):
    """bin/llmops-operator for one module, creating agent Pods that the test
    node runs with the locally built bin/llmops-agent; agents report status
    every 200 ms, so short runs show their progress along the way."""
    op = Operator(root, tmp_path_factory.mktemp("operator") / "operator.log",
                  "--agent-image", "llmops/agent:e2e", "--agent-status-interval", "200ms")
    yield op
    op.close()
