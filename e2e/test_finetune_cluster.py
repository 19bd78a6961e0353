"""The finetune role in a cluster: the real control plane, the operator as a
process, and the test node running the real bin/llmops-agent in the worker
Pods, which read the FineTuneJob from the API with the namespace's default
service account (given the agent's rules from the Helm chart) and report
status.progress, status.checkpoints, status.latestCheckpoint and
status.dataset by server-side apply.

Two workers find rank 0 at <job>-w0.<job>-workers.<ns>.svc through the test
node's stand-in for cluster DNS. Artifacts use file:/// URIs, since the test
node runs Pods as local processes. What the cluster runs write is compared
with the same job run by `llmops-agent finetune -f` with one worker, and with
what transformers and peft computed from that run's output
(tests/golden/finetune/reference.json)."""

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kubernetes import client, watch

from finetune_fixtures import (AGENT, HF_INPUT, hf_job, make_model, max_diff, our_logits,
                               records, write_job, write_jsonl)
from operator_process import wait_for
from testnode.fixture import test_node  # noqa: F401 -- a fixture

ROOT = Path(__file__).resolve().parent.parent
GVR = ("llmops.dev", "v1alpha1")
HF_REFERENCE = ROOT / "tests/golden/finetune/reference.json"
# Our logits against transformers'/peft's on the same trained weights: the
# golden model tests hold ours within 5.4e-6 of transformers; the weights of
# the cluster run and of the reference run may differ in the last bits when
# the machines' SIMD paths round differently.
LOGITS_ATOL, LOGITS_RTOL = 1e-4, 1e-4


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


def run_job(admin_api, ns, name, spec, timeout=180):
    """Creates the FineTuneJob and follows it with a watch from before its
    creation, so no status write is missed, until it succeeds or fails.
    Returns the final status and every status.progress it went through."""
    objs = api(admin_api)
    rv = objs.list_namespaced_custom_object(*GVR, ns, "finetunejobs")["metadata"][
        "resourceVersion"]
    create(admin_api, ns, name, spec)
    progress, st = [], {}
    w = watch.Watch()
    for ev in w.stream(objs.list_namespaced_custom_object, *GVR, ns, "finetunejobs",
                       field_selector=f"metadata.name={name}", resource_version=rv,
                       timeout_seconds=timeout):
        st = ev["object"].get("status", {})
        if st.get("progress") and (not progress or progress[-1] != st["progress"]):
            progress.append(st["progress"])
        if st.get("phase") in ("Succeeded", "Failed"):
            w.stop()
            break
    assert st.get("phase") == "Succeeded", st
    return st, progress


def local_run(tmp_path, spec, name):
    """The same job run by `llmops-agent finetune -f` with one worker: what a
    cluster run of it must write."""
    out = tmp_path / name
    path = write_job(tmp_path / f"{name}.yaml", {
        "apiVersion": "llmops.dev/v1alpha1", "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": dict(spec, workers=1, output=f"file://{out}")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOPS_")}
    r = subprocess.run([str(AGENT), "finetune", "-f", str(path)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_finetunejob_trains_and_reports_progress_and_checkpoints(admin_api, ns, operator,
                                                                  model, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    out = tmp_path / "out"
    st, progress = run_job(admin_api, ns, "tiny", spec(model, train, out))
    p = st["progress"]
    assert p["step"] == p["totalSteps"] == 14
    assert p["epoch"] == 2.0 and p["learningRate"] >= 0 and p["tokensPerSecond"] > 0
    assert p["loss"] > 0 and p["evalLoss"] > 0 and p["eta"] == "0s"
    # seen along the way (the first step is written at once), and the loss
    # went down
    assert progress[0]["step"] == 1, progress
    assert progress[-1]["loss"] < progress[0]["loss"], progress
    steps = [c["step"] for c in st["checkpoints"]]
    assert steps == [10, 14]
    assert st["latestCheckpoint"] == f"file://{out}/checkpoints/step-00000014"
    assert all(c["uri"].startswith(f"file://{out}/checkpoints/") and "time" in c
               for c in st["checkpoints"])
    assert st["dataset"]["records"] == 64 and st["dataset"]["skipped"] == 0
    assert st["output"] == f"file://{out}"
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("method", ["lora", "full"])
def test_output_gives_the_logits_transformers_and_peft_gave(admin_api, ns, operator, model,
                                                            tmp_path, method):
    """The job of tests/golden/finetune/make_reference.py, applied to the
    cluster: our runtime on what the cluster run wrote gives the logits that
    transformers (full) or peft on the base model (LoRA) computed from the
    output of the same job."""
    ref = json.loads(HF_REFERENCE.read_text())
    assert ref["input_ids"] == HF_INPUT
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    out = tmp_path / "out"
    st, progress = run_job(admin_api, ns, f"hf-{method}", hf_job(model, train, out, method))
    assert st["output"] == f"file://{out}"
    assert progress[0]["step"] == 1 and progress[-1]["step"] == 14, progress
    assert progress[-1]["loss"] < progress[0]["loss"], progress
    got = (our_logits(out, HF_INPUT) if method == "full"
           else our_logits(model, HF_INPUT, adapter=out))
    want = np.array(ref[method]["logits"], dtype=np.float32)
    base = our_logits(model, HF_INPUT)
    assert np.abs(want - base).max() > 1.0  # training moved the logits
    np.testing.assert_allclose(got, want, rtol=LOGITS_RTOL, atol=LOGITS_ATOL)


def test_two_workers_train_to_the_weights_of_one(admin_api, ns, operator, model, tmp_path,
                                                 test_node):
    """Two worker Pods meet at rank 0's DNS name and average their gradients:
    each runs one micro batch of 2 where one worker accumulates two, so the
    sums are the same and the weights equal those of one worker bit for bit."""
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    s = spec(model, train, tmp_path / "out", workers=2)
    st, _ = run_job(admin_api, ns, "pair", s)
    assert st["progress"]["step"] == 14
    # rank 0 logs for the gang, once both ranks met
    assert "x 2 ranks per step" in test_node.log(ns, "pair-a0-w0", "finetune")
    one = local_run(tmp_path, s, "one")
    assert max_diff(one / "adapter_model.safetensors",
                    tmp_path / "out/adapter_model.safetensors") == 0.0


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


def test_skip_invalid_succeeds_and_counts_the_line_in_status(admin_api, ns, operator, model,
                                                            tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", records(30), bad_line=4)
    s = spec(model, train, tmp_path / "out")
    s["dataset"]["skipInvalid"] = True
    st, _ = run_job(admin_api, ns, "skips", s)
    assert (st["dataset"]["records"], st["dataset"]["skipped"]) == (30, 1), st["dataset"]


def agent_pid(ns, name, rank):
    """The pid of rank's agent process (`<exe> finetune --resource
    FineTuneJob/ns/name`, LLMOPS_RANK=rank), or None."""
    want = f"FineTuneJob/{ns}/{name}".encode()
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        # argv[0] is the test node's staged copy of the binary, not its name
        if argv[1:3] == [b"finetune", b"--resource"] and want in argv and \
                f"LLMOPS_RANK={rank}".encode() in env:
            return int(d.name)
    return None


def test_killed_worker_restarts_the_gang_which_resumes_to_the_same_weights(
        admin_api, ns, operator, model, tmp_path, test_node):
    """Rank 1 of two is killed after the first checkpoint: rank 0 fails on
    the lost peer, the operator starts a new gang, which resumes from the
    latest checkpoint and ends with the weights of an uninterrupted run.
    From the checkpoint at step 5 the run has 51 steps (over a second) left,
    while the kill follows within milliseconds."""
    train = write_jsonl(tmp_path / "train.jsonl", records(64))
    out = tmp_path / "out"
    hp = {"epochs": 8, "globalBatchSize": 4, "microBatchSize": 2, "sequenceLength": 32,
          "learningRate": 3e-3}
    s = spec(model, train, out, hyperparameters=hp, workers=2)
    create(admin_api, ns, "resume", s)
    first = out / "checkpoints/step-00000005"
    assert wait_for(first.exists, 120, 0.005), status(admin_api, ns, "resume")
    pid = agent_pid(ns, "resume", 1)
    assert pid, "rank 1 is not running"
    os.kill(pid, signal.SIGKILL)
    st = wait_phase(admin_api, ns, "resume", "Succeeded", timeout=180)
    assert st["restarts"] == 1, st
    # Rank 1 is both of rank 0's neighbours: whichever of its data and control
    # connections rank 0 sees close first, the message names rank 1.
    log = test_node.log(ns, "resume-a0-w0", "finetune")
    assert ("lost rank 1 (left neighbour)" in log
            or "rank 1 failed or left the job" in log), log
    log = test_node.log(ns, "resume-a1-w0", "finetune")
    assert int(log.split("resuming at step ")[1].split()[0]) >= 5, log
    assert st["progress"]["step"] == st["progress"]["totalSteps"] == 56
    assert [c["step"] for c in st["checkpoints"]] == [55, 56]
    ref = local_run(tmp_path, s, "uninterrupted")
    assert max_diff(ref / "adapter_model.safetensors", out / "adapter_model.safetensors") == 0.0
