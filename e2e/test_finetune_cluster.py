"""The finetune role in a cluster: the real control plane, the operator as a
process, and the test node running the real bin/llmops-agent in the worker
Pod, which reads the FineTuneJob from the API with the namespace's default
service account (given the agent's rules from the Helm chart) and reports
status.progress, status.checkpoints, status.latestCheckpoint and
status.dataset by server-side apply.

One worker: the test node has no cluster DNS, so a second worker could not
resolve <job>-w0.<job>-workers.<ns>.svc (two workers are covered without a
cluster by e2e/test_finetune_local.py). Artifacts use file:/// URIs, since
the test node runs Pods as local processes."""

import json
import os
import signal
from pathlib import Path

import pytest
from kubernetes import client

from finetune_fixtures import make_model, records, write_jsonl
from operator_process import Operator, wait_for
from testnode.fixture import test_node  # noqa: F401 -- a fixture

ROOT = Path(__file__).resolve().parent.parent
GVR = ("llmops.dev", "v1alpha1")


@pytest.fixture(scope="module")
def ns(admin_api):
    """A namespace whose default service account may do what the chart lets
    the agent do."""
    name = f"e2e-finetune-{os.getpid()}"
    core = client.CoreV1Api(admin_api)
    rbac = client.RbacAuthorizationV1Api(admin_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    rbac.create_namespaced_role(name, {
        "metadata": {"name": "agent"},
        "rules": [{"apiGroups": ["llmops.dev"], "resources": ["finetunejobs", "promptversions"],
                   "verbs": ["get", "list", "watch"]},
                  {"apiGroups": ["llmops.dev"], "resources": ["finetunejobs/status"],
                   "verbs": ["get", "patch", "update"]},
                  {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
                   "verbs": ["create", "patch"]}]})
    rbac.create_namespaced_role_binding(name, {
        "metadata": {"name": "agent"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agent"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": name}]})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def operator(crds, test_node, tmp_path_factory):
    op = Operator(ROOT, tmp_path_factory.mktemp("operator") / "operator.log",
                  "--agent-image", "llmops/agent:e2e")
    yield op
    op.close()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("ftc") / "gpt2")


def api(admin_api):
    return client.CustomObjectsApi(admin_api)


def create(admin_api, ns, name, spec):
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTuneJob",
            "metadata": {"name": name}, "spec": spec}
    api(admin_api).create_namespaced_custom_object(*GVR, ns, "finetunejobs", body)


def status(admin_api, ns, name):
    return api(admin_api).get_namespaced_custom_object(*GVR, ns, "finetunejobs",
                                                       name).get("status", {})


def spec(model, train, out, **extra):
    s = {"baseModel": f"file://{model}",
         "dataset": {"train": f"file://{train}", "format": "prompt-completion",
                     "validationSplit": 0.1},
         "method": "lora", "lora": {"r": 4, "alpha": 8, "targetModules": ["c_attn"]},
         "hyperparameters": {"epochs": 2, "globalBatchSize": 4, "microBatchSize": 2,
                             "sequenceLength": 32, "learningRate": 3e-3, "warmupSteps": 2},
         "checkpoint": {"intervalSteps": 5, "keep": 2}, "output": f"file://{out}"}
    s.update(extra)
    return s


def wait_phase(admin_api, ns, name, phase, timeout=120):
    got = wait_for(lambda: status(admin_api, ns, name).get("phase") in (phase, "Failed"),
                   timeout, 0.2)
    st = status(admin_api, ns, name)
    assert got and st.get("phase") == phase, st
    return st


def test_finetunejob_trains_and_reports_progress_and_checkpoints(admin_api, ns, operator,
                                                                  model, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    out = tmp_path / "out"
    create(admin_api, ns, "tiny", spec(model, train, out))
    st = wait_phase(admin_api, ns, "tiny", "Succeeded")
    p = st["progress"]
    assert p["step"] == p["totalSteps"] == 14
    assert p["epoch"] == 2.0 and p["learningRate"] >= 0 and p["tokensPerSecond"] > 0
    assert p["loss"] > 0 and p["evalLoss"] > 0 and p["eta"] == "0s"
    steps = [c["step"] for c in st["checkpoints"]]
    assert steps == [10, 14]
    assert st["latestCheckpoint"] == f"file://{out}/checkpoints/step-00000014"
    assert all(c["uri"].startswith(f"file://{out}/checkpoints/") and "time" in c
               for c in st["checkpoints"])
    assert st["dataset"]["records"] == 64 and st["dataset"]["skipped"] == 0
    assert st["output"] == f"file://{out}"
    assert (out / "adapter_model.safetensors").is_file()


def test_malformed_dataset_fails_the_job_and_the_log_names_the_line(admin_api, ns, operator,
                                                                     model, tmp_path,
                                                                     test_node):
    train = write_jsonl(tmp_path / "train.jsonl", records(30), bad_line=4)
    # restarts would be allowed, but a worker that exits 65 ends the job at once
    create(admin_api, ns, "bad", spec(model, train, tmp_path / "out", backoffLimit=2))
    st = wait_phase(admin_api, ns, "bad", "Failed")
    reason = [c["reason"] for c in st["conditions"] if c["type"] == "Failed"]
    assert reason == ["InvalidInput"]
    assert st.get("restarts", 0) == 0
    assert "train.jsonl:4" in test_node.log(ns, "bad-a0-w0", "finetune")
    # the Pods and their logs are gone in a real cluster; the Event stays
    resp = client.EventsV1Api(admin_api).list_namespaced_event(ns, _preload_content=False)
    events = json.loads(resp.data)["items"]  # raw: some Events have no eventTime
    # the agent's event (the operator records its own InvalidInput phase event)
    notes = [e.get("note", "") for e in events
             if e["regarding"]["name"] == "bad" and e["reason"] == "InvalidInput"
             and e.get("reportingController") == "llmops.dev/agent"]
    assert notes and "train.jsonl:4" in notes[0], [(e["reason"], e.get("note")) for e in events]


def agent_pids(ns, name):
    """Pids of the agent processes (`<exe> finetune --resource FineTuneJob/ns/name`)."""
    want = f"FineTuneJob/{ns}/{name}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # argv[0] is the test node's staged copy of the binary, not its name
        if argv[1:3] == [b"finetune", b"--resource"] and want in argv:
            pids.append(int(d.name))
    return pids


def debug_procs(word):
    out = []
    for d in Path("/proc").iterdir():
        try:
            c = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if word in c:
            out.append((d.name, c))
    return out


def test_killed_worker_is_restarted_and_resumes_from_its_checkpoint(admin_api, ns, operator,
                                                                    model, tmp_path,
                                                                    test_node):
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    out = tmp_path / "out"
    hp = {"epochs": 8, "globalBatchSize": 4, "microBatchSize": 2, "sequenceLength": 32,
          "learningRate": 3e-3}
    create(admin_api, ns, "resume", spec(model, train, out, hyperparameters=hp))
    first = out / "checkpoints/step-00000005"
    assert wait_for(first.exists, 120, 0.005), status(admin_api, ns, "resume")
    pids = agent_pids(ns, "resume")
    assert len(pids) == 1, debug_procs(b"resume")
    os.kill(pids[0], signal.SIGKILL)
    st = wait_phase(admin_api, ns, "resume", "Succeeded", timeout=180)
    if st.get("restarts", 0) == 0:
        pytest.skip("the worker finished before it was killed")
    assert st["restarts"] == 1
    log = test_node.log(ns, "resume-a1-w0", "finetune")
    resumed = int(log.split("resuming at step ")[1].split()[0])
    assert resumed >= 5
    assert st["progress"]["step"] == st["progress"]["totalSteps"] == 56
    assert [c["step"] for c in st["checkpoints"]] == [55, 56]
