#!/usr/bin/env python3
"""Reference logits for e2e/test_finetune_cluster.py: what transformers and
peft compute from the output of a fine-tuning run.

For each method (lora, full) the FineTuneJob that the cluster test applies
(e2e/finetune_fixtures.py: hf_job(), on the tiny GPT-2 of
tests/golden/models/gpt2/model and records(64)) is run here with
`bin/llmops-agent finetune -f`. Its output is then loaded the way a user
would: the full model with GPT2LMHeadModel.from_pretrained, the adapter with
PeftModel.from_pretrained on the base model. reference.json holds their
logits for one fixed input (HF_INPUT), which the cluster test compares with
our runtime's logits on the output the cluster run wrote. Training is
deterministic for a given seed and backend, so both runs write the same
weights up to the rounding of the machine's SIMD paths.

Run from the repository root with `make golden` (after the models' script,
whose tiny GPT-2 is the base model here; needs `make all`).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "e2e"))

from finetune_fixtures import (AGENT, HF_INPUT, hf_job, make_model, records,  # noqa: E402
                               write_job, write_jsonl)


def versions():
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}


def train(tmp: Path, model: Path, data: Path, method: str) -> Path:
    out = tmp / method
    spec = write_job(tmp / f"{method}.yaml", {
        "apiVersion": "llmops.dev/v1alpha1", "kind": "FineTuneJob",
        "metadata": {"name": f"hf-{method}", "namespace": "default"},
        "spec": hf_job(model, data, out, method)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOPS_")}
    subprocess.run([str(AGENT), "finetune", "-f", str(spec)], env=env, check=True)
    return out


def load(model: Path, out: Path, method: str):
    if method == "full":
        return GPT2LMHeadModel.from_pretrained(out)
    return PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(model), out)


def main():
    torch.manual_seed(0)
    ref = {"versions": versions(), "input_ids": HF_INPUT}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = make_model(tmp / "gpt2")
        data = write_jsonl(tmp / "train.jsonl", records(64))
        for method in ("lora", "full"):
            m = load(model, train(tmp, model, data, method), method).eval()
            with torch.no_grad():
                logits = m(torch.tensor([HF_INPUT])).logits[0]
            # 9 significant digits: every float32 exactly, in half the text
            ref[method] = {"logits": [[float(f"{x:.9g}") for x in row]
                                      for row in logits.tolist()]}
    (HERE / "reference.json").write_text(json.dumps(ref) + "\n")


if __name__ == "__main__":
    main()
