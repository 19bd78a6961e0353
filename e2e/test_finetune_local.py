"""The finetune role run from a file (`llmops-agent finetune -f job.yaml`),
no cluster: LoRA and full training on the tiny GPT-2 of tests/golden, the
files it writes, two data-parallel workers against one, resuming after a
kill, and bad input. Each run takes well under a second with one OpenMP
thread.

The test environment has no torch, so the outputs are checked by a small
numpy GPT-2 that follows transformers' GPT2LMHeadModel and PEFT's LoRA
merge: trained weights read that way must predict the training text better
than the base model (weights in the wrong layout or under the wrong names
would not)."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from finetune_fixtures import (AGENT, CUDA_AGENT, DRIFT_TOL, GOLDEN, job, load_safetensors,
                               make_model, max_diff, records, relative_drift, write_job,
                               write_jsonl)

ENV = dict(os.environ, OMP_NUM_THREADS="1")
for k in ("LLMOPS_RANK", "LLMOPS_WORLD_SIZE", "LLMOPS_MASTER_ADDR", "LLMOPS_MASTER_PORT"):
    ENV.pop(k, None)

# 1 vs 2 workers with the same global batch. When each rank runs one micro
# batch of two (accumulation 2 vs 1) the sums are the same and the weights
# equal bit for bit. With accumulation 4 vs 2 the gradients are added in
# another order (((a+b)+c)+d vs (a+b)+(c+d)): every weight stays within
# 1e-6, except where the true gradient is exactly zero (GPT-2's key bias:
# softmax ignores it), where AdamW's normalisation turns rounding noise into
# steps of up to the learning rate; the update as a whole then drifts by
# less than DRIFT_TOL (measured 0.07 % in 8 steps).
DP_TOL = 1e-6


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("m") / "gpt2")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("d") / "train.jsonl", records(64))


def run(path: Path, env=None, timeout=120):
    return subprocess.run([str(AGENT), "finetune", "-f", str(path)], env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def train(tmp_path, model, data, name, env=None, **kw):
    out = tmp_path / name
    r = run(write_job(tmp_path / f"{name}.yaml", job(model, data, out, **kw)), env=env)
    assert r.returncode == 0, r.stderr
    return out, r.stderr


def first_loss(stderr: str) -> float:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("step 1/"))
    return float(line.split("loss")[1].split()[0])


def state(out: Path, step=None):
    ckpts = sorted((out / "checkpoints").glob("step-*"))
    d = ckpts[-1] if step is None else out / "checkpoints" / f"step-{step:08d}"
    return json.loads((d / "trainer_state.json").read_text())


# ---- a numpy GPT-2 (transformers semantics) ----

def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gpt2_loss(w, ids, n_head=4):
    """Mean next-token loss of one sequence under weights w (HF names)."""
    T = len(ids)
    h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(2):
        p = f"transformer.h.{i}."
        x = layer_norm(h, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        q, k, v = np.split(x @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"], 3, -1)
        hs = q.shape[-1] // n_head
        q, k, v = (a.reshape(T, n_head, hs).transpose(1, 0, 2) for a in (q, k, v))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hs) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(1, 0, 2).reshape(T, -1)
        h = h + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        x = layer_norm(h, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        f = gelu_new(x @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        h = h + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    h = layer_norm(h, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"])
    logits = h @ w["transformer.wte.weight"].T
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float(-np.mean(logp[np.arange(T - 1), ids[1:]]))


def merge_lora(base, adapter_dir):
    """PEFT's merge for GPT-2 Conv1D (fan_in_fan_out): W += scale * (B A)^T."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    ad = load_safetensors(adapter_dir / "adapter_model.safetensors")
    w = {k: v.copy() for k, v in base.items()}
    for name in ad:
        if ".lora_A." not in name:
            continue
        mod = name[len("base_model.model."):-len(".lora_A.weight")]
        B = ad[name.replace("lora_A", "lora_B")]
        w[mod + ".weight"] += cfg["lora_alpha"] / cfg["r"] * (B @ ad[name]).T
    return w


def text_loss(w, recs):
    seqs = [np.frombuffer((r["prompt"] + r["completion"]).encode(), np.uint8).astype(int)
            for r in recs]
    return float(np.mean([gpt2_loss(w, np.append(s, 256)) for s in seqs]))


# ---- tests ----

def test_lora_loss_goes_down_and_adapter_has_peft_layout(tmp_path, model, data):
    out, err = train(tmp_path, model, data, "lora")
    assert "backend: cpu (LLM_EUNSUPPORTED: built without CUDA)" in err  # says what it runs on
    assert state(out)["loss"] < 0.8 * first_loss(err)
    assert state(out)["evalLoss"] < first_loss(err)
    got = load_safetensors(out / "adapter_model.safetensors")
    ref = load_safetensors(GOLDEN / "lora_init/adapter_model.safetensors")
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in ref.items()}
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert (cfg["peft_type"], cfg["r"], cfg["lora_alpha"]) == ("LORA", 4, 8)
    base = load_safetensors(model / "model.safetensors")
    recs = records(16)
    assert text_loss(merge_lora(base, out), recs) < text_loss(base, recs) - 0.5


def test_full_output_is_a_model_dir_that_predicts_better(tmp_path, model, data):
    out, err = train(tmp_path, model, data, "full", method="full", learningRate=1e-3)
    assert state(out)["loss"] < 0.8 * first_loss(err)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / f).is_file(), f
    base = load_safetensors(model / "model.safetensors")
    got = load_safetensors(out / "model.safetensors")
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in base.items()}
    recs = records(16)
    assert text_loss(got, recs) < text_loss(base, recs) - 0.5
    # the output is the last checkpoint, which a resume reloads with our own
    # runtime (test_killed_run_resumes_to_the_same_weights checks that path)
    last = out / "checkpoints/step-00000014/model.safetensors"
    assert (out / "model.safetensors").read_bytes() == last.read_bytes()


def test_checkpoints_are_rotated_and_reported(tmp_path, model, data):
    out, err = train(tmp_path, model, data, "rot", keep=2, intervalSteps=3)
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["step-00000012", "step-00000014"]
    st = state(out)
    assert (st["step"], st["totalSteps"], st["dataPosition"]) == (14, 14, {"epoch": 2, "step": 0})
    assert "eval loss" in err and "perplexity" in err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_workers(spec: Path, env=None):
    port = str(free_port())
    procs = [subprocess.Popen([str(AGENT), "finetune", "-f", str(spec)],
                              env=dict(env or ENV, LLMOPS_RANK=str(r), LLMOPS_WORLD_SIZE="2",
                                       LLMOPS_MASTER_ADDR="127.0.0.1", LLMOPS_MASTER_PORT=port),
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


@pytest.mark.parametrize("method", ["full", "lora"])
def test_two_workers_equal_one_bit_for_bit_at_the_same_sums(tmp_path, model, data, method):
    kw = dict(method=method, globalBatchSize=4, microBatchSize=2, maxSteps=8)
    one, _ = train(tmp_path, model, data, "one", **kw)
    two_workers(write_job(tmp_path / "two.yaml", job(model, data, tmp_path / "two", **kw)))
    f = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert max_diff(one / f, tmp_path / "two" / f) == 0.0


@pytest.mark.parametrize("method", ["full", "lora"])
def test_two_workers_reach_the_weights_of_one(tmp_path, model, data, method):
    kw = dict(method=method, globalBatchSize=4, microBatchSize=1, maxSteps=8)
    one, _ = train(tmp_path, model, data, "one", **kw)
    two_workers(write_job(tmp_path / "two.yaml", job(model, data, tmp_path / "two", **kw)))
    f = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    a, b = load_safetensors(one / f), load_safetensors(tmp_path / "two" / f)
    for k in a:
        if not k.endswith("c_attn.bias"):
            assert float(np.abs(a[k] - b[k]).max()) <= DP_TOL, k
    base = model / f if method == "full" else None
    assert relative_drift(one / f, tmp_path / "two" / f, base) <= DRIFT_TOL


@pytest.mark.parametrize("method", ["full", "lora"])
def test_killed_run_resumes_to_the_same_weights(tmp_path, model, data, method):
    kw = dict(method=method, epochs=4, intervalSteps=5, learningRate=1e-3)
    if method == "lora":
        kw["lora"] = {"r": 4, "alpha": 8, "dropout": 0.1, "targetModules": ["c_attn"]}
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    spec = write_job(tmp_path / "b.yaml", job(model, data, tmp_path / "b", **kw))
    p = subprocess.Popen([str(AGENT), "finetune", "-f", str(spec)], env=ENV,
                         stderr=subprocess.DEVNULL)
    first = tmp_path / "b/checkpoints/step-00000005"
    deadline = time.monotonic() + 60
    while not first.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # 23 of 28 steps (most of a second) are left when step 5's checkpoint appears
    assert p.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert not (tmp_path / "b/checkpoints/step-00000028").exists()
    r = run(spec)
    assert r.returncode == 0, r.stderr
    assert "resuming at step 0" not in r.stderr
    f = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert max_diff(ref / f, tmp_path / "b" / f) == 0.0


def wait_for(path: Path, procs, timeout=60):
    deadline = time.monotonic() + timeout
    while (not path.exists() and all(p.poll() is None for p in procs)
           and time.monotonic() < deadline):
        time.sleep(0.002)


def test_sigterm_checkpoints_the_step_and_the_rerun_finishes_equal(tmp_path, model, data):
    kw = dict(method="full", epochs=4, intervalSteps=5, learningRate=1e-3, keep=10)
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    spec = write_job(tmp_path / "b.yaml", job(model, data, tmp_path / "b", **kw))
    p = subprocess.Popen([str(AGENT), "finetune", "-f", str(spec)], env=ENV,
                         stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "b/checkpoints/step-00000005", [p])
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err  # 0 would mean it finished before the signal
    stopped = int(err.split("stopped by a signal at step ")[1].split()[0])
    assert state(tmp_path / "b", stopped)["step"] == stopped
    r = run(spec)
    assert r.returncode == 0, r.stderr
    assert f"resuming at step {stopped}" in r.stderr
    assert max_diff(ref / "model.safetensors", tmp_path / "b/model.safetensors") == 0.0


def test_two_workers_resume_after_one_is_killed(tmp_path, model, data):
    kw = dict(method="lora", epochs=4, intervalSteps=5, globalBatchSize=4, microBatchSize=2)
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    spec = write_job(tmp_path / "b.yaml", job(model, data, tmp_path / "b", **kw))
    port = str(free_port())
    procs = [subprocess.Popen([str(AGENT), "finetune", "-f", str(spec)],
                              env=dict(ENV, LLMOPS_RANK=str(r), LLMOPS_WORLD_SIZE="2",
                                       LLMOPS_MASTER_ADDR="127.0.0.1", LLMOPS_MASTER_PORT=port),
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    wait_for(tmp_path / "b/checkpoints/step-00000005", procs)
    procs[1].send_signal(signal.SIGKILL)
    _, err = procs[0].communicate(timeout=120)
    procs[1].wait()
    assert procs[0].returncode == 1, err  # the survivor fails: the gang restarts
    two_workers(spec)
    assert max_diff(ref / "adapter_model.safetensors",
                    tmp_path / "b/adapter_model.safetensors") == 0.0


@pytest.mark.parametrize("method", ["full", "lora"])
def test_device_memory_code_paths_train_to_the_same_weights(tmp_path, model, data, method):
    """LLMOPS_BACKEND=cpu-staged runs the CPU kernels behind the code paths a
    GPU's memory takes: gradient accumulation in the model's memory, the
    reduction and the broadcasts staged through host copies, checkpoints
    written from and restored into it, validation logits copied out. One
    worker, two workers and a resume must all give the CPU run's weights."""
    kw = dict(method=method, globalBatchSize=4, microBatchSize=1, maxSteps=8, intervalSteps=3,
              keep=10)
    staged = dict(ENV, LLMOPS_BACKEND="cpu-staged")
    f = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    one, err = train(tmp_path, model, data, "one", env=staged, **kw)
    assert "backend: cpu-staged" in err
    assert max_diff(ref / f, one / f) == 0.0
    assert state(one, 6) == {**state(ref, 6), "time": state(one, 6)["time"]}
    two_workers(write_job(tmp_path / "two.yaml", job(model, data, tmp_path / "two", **kw)),
                env=staged)
    two_ref = tmp_path / "two_ref"
    two_workers(write_job(tmp_path / "two_ref.yaml", job(model, data, two_ref, **kw)))
    assert max_diff(two_ref / f, tmp_path / "two" / f) == 0.0
    for d in (one / "checkpoints").iterdir():
        if d.name > "step-00000003":
            subprocess.run(["rm", "-r", str(d)], check=True)
    (one / f).unlink()
    r = run(tmp_path / "one.yaml", env=staged)
    assert r.returncode == 0, r.stderr
    assert "resuming at step 3" in r.stderr
    assert max_diff(ref / f, one / f) == 0.0


@pytest.mark.skipif(not CUDA_AGENT.exists(),
                    reason="built by make test-cuda-compile, which needs nvcc (make deps)")
def test_cuda_agent_names_its_backend_and_trains_like_the_cpu(tmp_path, model, data):
    """The agent with the CUDA objects linked in. Without a usable GPU it
    must say why and train on the CPU to the same weights bit for bit; on a
    GPU, to the same weights within the drift the two-worker test allows."""
    kw = dict(method="lora", maxSteps=6)
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    out = tmp_path / "cuda"
    r = subprocess.run([str(CUDA_AGENT), "finetune", "-f",
                        str(write_job(tmp_path / "cuda.yaml", job(model, data, out, **kw)))],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    backend = next(ln for ln in r.stderr.splitlines() if "finetune: backend: " in ln)
    f = "adapter_model.safetensors"
    if "backend: cpu (" in backend:
        assert "without CUDA" not in backend  # the reason is the device, not the build
        assert max_diff(ref / f, out / f) == 0.0
        return
    assert "backend: cuda (device 0: " in backend
    assert relative_drift(ref / f, out / f) <= DRIFT_TOL


def test_bf16_on_the_cpu_trains_fp32_and_says_so(tmp_path, model, data):
    kw = dict(maxSteps=4)
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    spec = job(model, data, tmp_path / "bf16", **kw)
    spec["spec"]["hyperparameters"]["precision"] = "bf16"
    r = run(write_job(tmp_path / "bf16.yaml", spec))
    assert r.returncode == 0, r.stderr
    assert "fp32 matmuls" in r.stderr
    assert "hyperparameters.precision bf16 needs a GPU; the CPU trains in fp32" in r.stderr
    f = "adapter_model.safetensors"
    assert max_diff(ref / f, tmp_path / "bf16" / f) == 0.0
    spec["spec"]["hyperparameters"]["precision"] = "fp16"
    r = run(write_job(tmp_path / "fp16.yaml", spec))
    assert r.returncode == 65, r.stderr  # bad input
    assert 'spec.hyperparameters.precision: "fp16" is not fp32 or bf16' in r.stderr


def test_unknown_or_missing_backend_is_refused_with_the_reason(tmp_path, model, data):
    spec = write_job(tmp_path / "j.yaml", job(model, data, tmp_path / "o"))
    r = run(spec, env=dict(ENV, LLMOPS_BACKEND="gpu"))
    assert r.returncode != 0
    assert "LLMOPS_BACKEND=gpu: use auto, cuda, cuda:<device number>, cpu or cpu-staged" \
        in r.stderr
    r = run(spec, env=dict(ENV, LLMOPS_BACKEND="cuda:x"))
    assert "LLMOPS_BACKEND=cuda:x: use auto" in r.stderr
    r = run(spec, env=dict(ENV, LLMOPS_BACKEND="cuda:1"))
    assert r.returncode != 0
    assert "LLMOPS_BACKEND=cuda:1, but backend: cpu (LLM_EUNSUPPORTED: built without CUDA)" \
        in r.stderr


def test_resume_from_an_older_checkpoint_continues_the_same_curve(tmp_path, model, data):
    kw = dict(method="lora", epochs=4, intervalSteps=5, keep=10)
    ref, _ = train(tmp_path, model, data, "ref", **kw)
    out, _ = train(tmp_path, model, data, "again", **kw)
    for d in (out / "checkpoints").iterdir():
        if d.name > "step-00000010":
            subprocess.run(["rm", "-r", str(d)], check=True)
    (out / "adapter_model.safetensors").unlink()
    r = run(tmp_path / "again.yaml")
    assert r.returncode == 0, r.stderr
    assert "resuming at step 10" in r.stderr
    for step in (15, 20, 25, 28):
        assert state(out, step)["loss"] == state(ref, step)["loss"]
    assert max_diff(ref / "adapter_model.safetensors", out / "adapter_model.safetensors") == 0


def test_malformed_line_fails_naming_it_and_keeps_what_was_written(tmp_path, model):
    bad = write_jsonl(tmp_path / "bad.jsonl", records(40), bad_line=7)
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "keep.txt").write_text("x")
    r = run(write_job(tmp_path / "j.yaml", job(model, bad, out)))
    assert r.returncode == 65, r.stderr
    assert "bad.jsonl:7" in r.stderr
    assert (out / "keep.txt").read_text() == "x"


def test_skip_invalid_counts_the_skipped_line(tmp_path, model):
    bad = write_jsonl(tmp_path / "bad.jsonl", records(40), bad_line=7)
    r = run(write_job(tmp_path / "j.yaml", job(model, bad, tmp_path / "out", skipInvalid=True)))
    assert r.returncode == 0, r.stderr
    assert "40 records" in r.stderr and "1 skipped" in r.stderr


def test_missing_base_model_fails_fast(tmp_path, data):
    t0 = time.monotonic()
    r = run(write_job(tmp_path / "j.yaml", job(tmp_path / "nope", data, tmp_path / "out")))
    assert r.returncode == 65
    assert "spec.baseModel" in r.stderr and "config.json is missing" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 5


def test_sequence_longer_than_the_model_fails_with_the_reason(tmp_path, model, data):
    r = run(write_job(tmp_path / "j.yaml", job(model, data, tmp_path / "out",
                                               sequenceLength=128)))
    assert r.returncode == 65
    assert "spec.baseModel" in r.stderr and "sequenceLength 128" in r.stderr
    assert "over n_positions = 64" in r.stderr
