"""The operator's reconcilers end to end: the real control plane, the test
node running the Pods the scheduler binds, and the operator as a process
with its non-admin identity. Worker behaviour is controlled by the test: the
test node runs a stand-in llmops-agent from a directory of its own, which
looks up what to do for the resource (exit 0, exit 1, run forever, or run
the real agent) in a behaviours directory."""

import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from operator_process import Operator, wait_for
from testnode.fixture import test_node  # noqa: F401 -- a fixture

ROOT = Path(__file__).resolve().parent.parent
FAKE_BIN = ROOT / "build" / "e2e-fake-agent"
BEHAVIOURS = FAKE_BIN / "behaviours"

# The stand-in agent: `llmops-agent <role> --resource Kind/ns/name`. It runs
# behaviours/<name> with sh (which may look at $POD_NAME, e.g. *-a0-w1 for
# worker 1 of the first attempt), or sleeps forever when there is none.
FAKE_AGENT = f"""#!/bin/sh
name=${{3##*/}}
echo "fake agent: $*"
if [ -f "{BEHAVIOURS}/$name" ]; then . "{BEHAVIOURS}/$name"; fi
exec sleep 100000
"""


def _install_fake_agent():
    BEHAVIOURS.mkdir(parents=True, exist_ok=True)
    agent = FAKE_BIN / "llmops-agent"
    agent.write_text(FAKE_AGENT)
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


_install_fake_agent()
TEST_NODE_OPTIONS = {"gpus": 4, "args": ["--bin-dir", str(FAKE_BIN)]}


def behave(name, script):
    (BEHAVIOURS / name).write_text(script + "\n")


@pytest.fixture(scope="module")
def ns(admin_api):
    """A namespace with the claims the resources' pvc:// URIs name."""
    name = f"e2e-reconcile-{os.getpid()}"
    core = client.CoreV1Api(admin_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for claim in ["models", "data", "datasets", "docs"]:
        core.create_namespaced_persistent_volume_claim(name, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}})
    yield name
    core.delete_namespace(name)


def custom(admin_api):
    return client.CustomObjectsApi(admin_api)


def plural(kind):
    return {"FineTuneJob": "finetunejobs", "RagIndex": "ragindexes", "EvalRun": "evalruns",
            "ModelEndpoint": "modelendpoints", "Monitor": "monitors",
            "PromptVersion": "promptversions"}[kind]


def create(admin_api, ns, obj):
    return custom(admin_api).create_namespaced_custom_object(
        "llmops.dev", "v1alpha1", ns, plural(obj["kind"]), obj)


def read(admin_api, ns, kind, name):
    return custom(admin_api).get_namespaced_custom_object("llmops.dev", "v1alpha1", ns,
                                                           plural(kind), name)


def patch(admin_api, ns, kind, name, body):
    return custom(admin_api).patch_namespaced_custom_object("llmops.dev", "v1alpha1", ns,
                                                             plural(kind), name, body)


def status_of(admin_api, ns, kind, name):
    try:
        return read(admin_api, ns, kind, name).get("status", {})
    except client.exceptions.ApiException:
        return {}


def condition(status, ctype):
    for c in status.get("conditions", []):
        if c["type"] == ctype:
            return c
    return {}


def pods(admin_api, ns, label):
    return client.CoreV1Api(admin_api).list_namespaced_pod(ns, label_selector=label).items


def finetunejob(name, **spec):
    body = {"baseModel": "pvc://models/tiny", "dataset": {"train": "pvc://data/train.jsonl"},
            "output": "pvc://models/out", "method": "full", "workers": 2,
            "hyperparameters": {"globalBatchSize": 12, "microBatchSize": 1}}
    body.update(spec)
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTuneJob",
            "metadata": {"name": name}, "spec": body}


def wait_phase(admin_api, ns, kind, name, phase, timeout=60):
    got = wait_for(lambda: status_of(admin_api, ns, kind, name).get("phase") == phase, timeout,
                   0.2)
    assert got, (f"{kind} {name} never reached {phase}: "
                 f"{status_of(admin_api, ns, kind, name)}")


# First in the module, before the shared operator starts.
def test_operator_restarted_mid_reconcile_creates_no_duplicates(admin_api, ns, crds,
                                                                test_node, tmp_path):
    first = Operator(ROOT, tmp_path / "first.log")
    try:
        create(admin_api, ns, finetunejob("ftj-restart", workers=3))
        time.sleep(0.3)
    finally:
        first.close()  # SIGKILL, possibly halfway through creating the gang
    second = Operator(ROOT, tmp_path / "second.log")
    try:
        assert wait_for(lambda: len(pods(admin_api, ns, "llmops.dev/finetunejob=ftj-restart"))
                        == 3, 60, 0.2)
        time.sleep(2)
        names = sorted(p.metadata.name for p in
                       pods(admin_api, ns, "llmops.dev/finetunejob=ftj-restart"))
        assert names == ["ftj-restart-a0-w0", "ftj-restart-a0-w1", "ftj-restart-a0-w2"]
    finally:
        second.close()


def test_finetunejob_succeeds_when_every_worker_does(admin_api, ns, operator):
    behave("ftj-ok", "sleep 1; exit 0")
    create(admin_api, ns, finetunejob("ftj-ok"))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-ok", "Succeeded")
    st = status_of(admin_api, ns, "FineTuneJob", "ftj-ok")
    assert st["restarts"] == 0
    assert condition(st, "Succeeded")["status"] == "True"
    assert st["output"] == "pvc://models/out"
    workers = pods(admin_api, ns, "llmops.dev/finetunejob=ftj-ok")
    assert sorted(p.metadata.name for p in workers) == ["ftj-ok-a0-w0", "ftj-ok-a0-w1"]
    env = {e.name: e.value for e in workers[0].spec.containers[0].env}
    assert env["LLMOPS_WORLD_SIZE"] == "2"
    assert env["LLMOPS_MASTER_ADDR"] == f"ftj-ok-w0.ftj-ok-workers.{ns}.svc"
    # The phase change is an Event on the job (read as plain objects: the
    # typed client refuses other components' events with a null eventTime).
    def events():
        return custom(admin_api).list_namespaced_custom_object(
            "events.k8s.io", "v1", ns, "events")["items"]

    assert wait_for(lambda: any(
        e["regarding"]["name"] == "ftj-ok" and e["reason"] == "Succeeded" and
        e["type"] == "Normal" for e in events()), 30, 0.5)


def test_finetunejob_gang_restarts_when_one_worker_fails(admin_api, ns, operator):
    behave("ftj-gang", 'case "$POD_NAME" in *-a0-w1) exit 1;; esac; sleep 2; exit 0')
    create(admin_api, ns, finetunejob("ftj-gang"))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-gang", "Succeeded", timeout=90)
    st = status_of(admin_api, ns, "FineTuneJob", "ftj-gang")
    assert st["restarts"] == 1
    names = sorted(p.metadata.name for p in pods(admin_api, ns,
                                                 "llmops.dev/finetunejob=ftj-gang"))
    assert names == ["ftj-gang-a1-w0", "ftj-gang-a1-w1"]  # the whole gang restarted
    # a new gang id, so rank 0 refuses a worker of the old gang
    uid = custom(admin_api).get_namespaced_custom_object(
        "llmops.dev", "v1alpha1", ns, "finetunejobs", "ftj-gang")["metadata"]["uid"]
    for p in pods(admin_api, ns, "llmops.dev/finetunejob=ftj-gang"):
        env = {e.name: e.value for e in p.spec.containers[0].env}
        assert env["LLMOPS_JOB_ID"] == f"{uid}-a1"


def test_finetunejob_fails_when_restarts_are_used_up(admin_api, ns, operator):
    behave("ftj-backoff", "exit 1")
    create(admin_api, ns, finetunejob("ftj-backoff", backoffLimit=1))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-backoff", "Failed", timeout=90)
    st = status_of(admin_api, ns, "FineTuneJob", "ftj-backoff")
    assert st["restarts"] == 1
    assert condition(st, "Failed")["reason"] == "BackoffLimitExceeded"


def test_finetunejob_deadline_fails_it(admin_api, ns, operator):
    create(admin_api, ns, finetunejob("ftj-deadline", activeDeadlineSeconds=3))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-deadline", "Failed", timeout=60)
    assert condition(status_of(admin_api, ns, "FineTuneJob", "ftj-deadline"),
                     "Failed")["reason"] == "DeadlineExceeded"
    assert wait_for(lambda: not pods(admin_api, ns, "llmops.dev/finetunejob=ftj-deadline"),
                    30, 0.2)


def test_finetunejob_suspend_removes_workers_and_resume_brings_them_back(admin_api, ns,
                                                                          operator):
    create(admin_api, ns, finetunejob("ftj-suspend"))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-suspend", "Running")
    patch(admin_api, ns, "FineTuneJob", "ftj-suspend", {"spec": {"suspend": True}})
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-suspend", "Suspended")
    assert wait_for(lambda: not pods(admin_api, ns, "llmops.dev/finetunejob=ftj-suspend"),
                    30, 0.2)
    patch(admin_api, ns, "FineTuneJob", "ftj-suspend", {"spec": {"suspend": False}})
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-suspend", "Running")
    assert len(pods(admin_api, ns, "llmops.dev/finetunejob=ftj-suspend")) == 2


def test_finetunejob_deletion_cascades_to_its_children(admin_api, ns, operator):
    create(admin_api, ns, finetunejob("ftj-delete"))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-delete", "Running")
    custom(admin_api).delete_namespaced_custom_object("llmops.dev", "v1alpha1", ns,
                                                      "finetunejobs", "ftj-delete")
    core = client.CoreV1Api(admin_api)
    assert wait_for(lambda: not pods(admin_api, ns, "llmops.dev/finetunejob=ftj-delete"),
                    60, 0.2)
    assert wait_for(lambda: not core.list_namespaced_service(
        ns, label_selector="llmops.dev/finetunejob=ftj-delete").items, 60, 0.2)


def test_finetunejob_reports_a_missing_agent_role(admin_api, ns, operator):
    # what an agent image without the role does (agent/main.c exits 64)
    behave("ftj-norole", "exit 64")
    create(admin_api, ns, finetunejob("ftj-norole", workers=1))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-norole", "Failed")
    failed = condition(status_of(admin_api, ns, "FineTuneJob", "ftj-norole"), "Failed")
    assert failed["reason"] == "RoleUnavailable"
    assert "does not implement the finetune role (exit 64)" in failed["message"]


def test_finetunejob_fails_at_once_on_invalid_input(admin_api, ns, operator):
    # what the finetune role exits with for a malformed dataset line or a
    # missing base model (the real agent's exit is tested in
    # test_finetune_cluster.py)
    behave("ftj-badinput", "exit 65")
    create(admin_api, ns, finetunejob("ftj-badinput", workers=2))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-badinput", "Failed")
    status = status_of(admin_api, ns, "FineTuneJob", "ftj-badinput")
    failed = condition(status, "Failed")
    assert failed["reason"] == "InvalidInput"
    assert "invalid input (exit 65)" in failed["message"]
    assert status.get("restarts", 0) == 0


def test_gpu_workers_get_gpu_limits_and_run_on_the_gpu_node(admin_api, ns, operator):
    behave("ftj-gpu", "sleep 1; exit 0")
    create(admin_api, ns, finetunejob("ftj-gpu", gpusPerWorker=2))
    wait_phase(admin_api, ns, "FineTuneJob", "ftj-gpu", "Succeeded")
    pod = pods(admin_api, ns, "llmops.dev/finetunejob=ftj-gpu")[0]
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"


def test_examples_create_their_children(admin_api, ns, operator, kubectl, root):
    for f in sorted((root / "examples").glob("*.yaml")):
        kubectl("apply", "-n", ns, "-f", str(f))
    apps = client.AppsV1Api(admin_api)
    batch = client.BatchV1Api(admin_api)

    def deployments():
        return {d.metadata.name for d in apps.list_namespaced_deployment(ns).items}

    docs = {d["kind"]: d for f in (root / "examples").glob("*.yaml")
            for d in yaml.safe_load_all(f.read_text()) if d}
    rag = docs["RagIndex"]["metadata"]["name"]
    mep = docs["ModelEndpoint"]["metadata"]["name"]
    mon = docs["Monitor"]["metadata"]["name"]
    evr = docs["EvalRun"]["metadata"]["name"]
    pmv = docs["PromptVersion"]["metadata"]["name"]
    assert wait_for(lambda: f"{mon}-monitor" in deployments(), 60, 0.2)
    variants = [v["name"] for v in docs["ModelEndpoint"]["spec"].get("variants", [])] \
        or ["default"]
    assert wait_for(lambda: {f"{mep}-{v}" for v in variants} <= deployments(), 60, 0.2)
    assert wait_for(lambda: any(j.metadata.name == f"{evr}-eval-g1"
                                for j in batch.list_namespaced_job(ns).items), 60, 0.2)
    assert wait_for(lambda: any(j.metadata.name.startswith(f"{rag}-build-")
                                for j in batch.list_namespaced_job(ns).items), 60, 0.2)
    wait_phase(admin_api, ns, "PromptVersion", pmv, "Ready")
    assert status_of(admin_api, ns, "PromptVersion", pmv)["contentHash"].startswith("sha256:")
    # The stand-in agents never exit, so serving Deployments become ready.
    wait_phase(admin_api, ns, "ModelEndpoint", mep, "Ready", timeout=90)
    wait_phase(admin_api, ns, "Monitor", mon, "Running", timeout=90)


def test_ragindex_serves_once_built_and_keeps_serving_during_a_rebuild(admin_api, ns,
                                                                      operator):
    rag = {"apiVersion": "llmops.dev/v1alpha1", "kind": "RagIndex",
           "metadata": {"name": "docs"},
           "spec": {"sources": [{"inline": {"id": "a", "text": "hello"}}],
                    "embedding": {"model": "pvc://models/minilm"}}}
    behave("docs", 'case "$POD_NAME" in docs-build-*) exit 0;; esac')
    create(admin_api, ns, rag)
    wait_phase(admin_api, ns, "RagIndex", "docs", "Ready", timeout=90)
    first = status_of(admin_api, ns, "RagIndex", "docs")["activeVersion"]
    # A rebuild that never finishes: search keeps serving the first version.
    behave("docs", 'case "$POD_NAME" in docs-build-*) sleep 100000;; esac')
    patch(admin_api, ns, "RagIndex", "docs", {"spec": {"chunking": {"size": 256}}})
    assert wait_for(lambda: status_of(admin_api, ns, "RagIndex", "docs").get("buildVersion")
                    not in (None, first), 30, 0.2)
    time.sleep(2)
    st = status_of(admin_api, ns, "RagIndex", "docs")
    assert st["activeVersion"] == first
    assert condition(st, "Ready")["status"] == "True"
    d = client.AppsV1Api(admin_api).read_namespaced_deployment("docs-search", ns)
    env = {e.name: e.value for e in d.spec.template.spec.containers[0].env}
    assert env["LLMOPS_INDEX_VERSION"] == first


def promptversion(name, alias=None):
    labels = {"llmops.dev/alias-production": "true"} if alias else {}
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptVersion",
            "metadata": {"name": name, "labels": labels},
            "spec": {"family": "greeting", "template": "Hello {{name}}",
                     "variables": [{"name": "name", "required": True}]}}


def test_promptversion_alias_clash_is_reported_and_cleared(admin_api, ns, operator):
    create(admin_api, ns, promptversion("greet-v1", alias=True))
    create(admin_api, ns, promptversion("greet-v2", alias=True))

    def clash(name):
        return condition(status_of(admin_api, ns, "PromptVersion", name),
                         "AliasConflict").get("status")

    assert wait_for(lambda: clash("greet-v1") == "True" and clash("greet-v2") == "True",
                    30, 0.2)
    assert "also held by greet-v2" in condition(
        status_of(admin_api, ns, "PromptVersion", "greet-v1"), "AliasConflict")["message"]
    # Deleting one holder leaves the other alone with the alias.
    custom(admin_api).delete_namespaced_custom_object("llmops.dev", "v1alpha1", ns,
                                                      "promptversions", "greet-v2")
    assert wait_for(lambda: clash("greet-v1") == "False", 30, 0.2)
