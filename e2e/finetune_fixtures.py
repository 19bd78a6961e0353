"""Small inputs for the finetune role's local tests: a copy of the tiny GPT-2
under tests/golden/models/gpt2/model with a byte-level tokenizer (256 byte
tokens plus <|endoftext|> = 256, inside its vocabulary of 320), JSONL
datasets and FineTuneJob files."""

import json
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/models/gpt2"
AGENT = ROOT / "bin/llmops-agent"
CUDA_AGENT = ROOT / "build/cuda-bin/llmops-agent"  # make test-cuda-compile, with nvcc
LOGITS_DUMP = ROOT / "build/tests/model/logits_dump"
EOS = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tokenizer_json():
    vocab = {ch: b for b, ch in bytes_to_unicode().items()}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 256, "content": EOS, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def make_model(dst: Path) -> Path:
    """The tiny GPT-2 with a tokenizer, in dst."""
    shutil.copytree(GOLDEN / "model", dst)
    (dst / "tokenizer.json").write_text(json.dumps(tokenizer_json()))
    return dst


def records(n: int, kind: str = "prompt-completion"):
    """n short, learnable records: arithmetic-like patterns."""
    out = []
    for i in range(n):
        a, b = i % 7, (i * 3) % 5
        if kind == "text":
            out.append({"text": f"{a} plus {b} is {a + b}."})
        else:
            out.append({"prompt": f"Q: {a}+{b}=", "completion": f" {a + b} ok"})
    return out


def write_jsonl(path: Path, recs, bad_line: int = 0) -> Path:
    lines = [json.dumps(r) for r in recs]
    if bad_line:
        lines[bad_line - 1] = '{"prompt": "broken", '
    path.write_text("\n".join(lines) + "\n")
    return path


def job(model: Path, train: Path, out: Path, method="lora", **hp):
    spec = {
        "baseModel": f"file://{model}",
        "dataset": {"train": f"file://{train}", "format": hp.pop("format", "prompt-completion"),
                    "validationSplit": hp.pop("validationSplit", 0.1)},
        "method": method,
        "hyperparameters": {"epochs": 2, "globalBatchSize": 4, "microBatchSize": 2,
                            "sequenceLength": 32, "learningRate": 3e-3,
                            "schedule": "cosine", "warmupSteps": 2, "seed": 7},
        "checkpoint": {"intervalSteps": hp.pop("intervalSteps", 5), "keep": hp.pop("keep", 2)},
        "output": f"file://{out}",
    }
    if "skipInvalid" in hp:
        spec["dataset"]["skipInvalid"] = hp.pop("skipInvalid")
    if method == "lora":
        spec["lora"] = hp.pop("lora", {"r": 4, "alpha": 8, "targetModules": ["c_attn", "c_fc",
                                                                             "c_proj"]})
    spec["hyperparameters"].update(hp)
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTuneJob",
            "metadata": {"name": "t", "namespace": "default"}, "spec": spec}


# The run whose output transformers and peft load in
# tests/golden/finetune/make_reference.py and that the cluster test repeats:
# the spec of job() (2 epochs, cosine schedule, seed 7) on records(64), and
# the input both sides compute logits for (byte-level ids of a training-like
# text).
HF_INPUT = list(b"Q: 3+4= 7 ok")


def hf_job(model: Path, train: Path, out: Path, method: str) -> dict:
    return job(model, train, out, method=method)["spec"]


def our_logits(model: Path, ids: list[int], adapter: Path | None = None):
    """Logits (T, V) of our runtime (build/tests/model/logits_dump) for one
    row of ids, on a model directory and optionally a PEFT adapter."""
    import numpy as np

    argv = [str(LOGITS_DUMP), str(model)] + (["--adapter", str(adapter)] if adapter else [])
    out = subprocess.run(argv + [str(i) for i in ids], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    return np.array(json.loads(out.stdout)["logits"], dtype=np.float32)


def write_job(path: Path, obj) -> Path:
    path.write_text(yaml.safe_dump(obj))
    return path


def load_safetensors(path: Path):
    """name -> numpy array of an F32 safetensors file (no torch, no safetensors
    package in the test environment)."""
    import numpy as np

    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(t["shape"])
    return out


def max_diff(a_path: Path, b_path: Path) -> float:
    a, b = load_safetensors(a_path), load_safetensors(b_path)
    assert sorted(a) == sorted(b)
    return max(float(abs(a[k] - b[k]).max()) for k in a)


# How far two trainings of one job may end apart when they add the same
# gradients in another order (two workers against one, GPU against CPU),
# relative to how far they moved: AdamW turns rounding noise where a true
# gradient is exactly zero into steps of up to the learning rate.
DRIFT_TOL = 2e-3


def relative_drift(a_path: Path, b_path: Path, base_path: Path = None) -> float:
    """|a - b| over |a - base| (Frobenius norms over every tensor): how far two
    trainings of the same job ended apart, relative to how far they moved.
    Without base_path the base is zero (LoRA adapters start with B = 0)."""
    a, b = load_safetensors(a_path), load_safetensors(b_path)
    base = load_safetensors(base_path) if base_path else {k: 0 * v for k, v in a.items()}
    assert sorted(a) == sorted(b)
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
    moved = sum(float(((a[k] - base[k]) ** 2).sum()) for k in a)
    return (diff / moved) ** 0.5
