"""The CUDA-linked agent on a GPU machine, without pytest or a cluster:
trains LoRA and full fine-tuning of the tiny GPT-2 once with
LLMOPS_BACKEND=cpu and once with LLMOPS_BACKEND=cuda (the same binary), and
checks that the GPU run ends where the CPU run does, within the drift that
adding gradients in another order allows (finetune_fixtures.DRIFT_TOL).

One JSON object per line; exits 1 when a check fails. Needs numpy and
PyYAML. scripts/cuda-bundle.sh run calls it; pytest's
test_cuda_agent_names_its_backend_and_trains_like_the_cpu covers the same
ground where pytest is installed."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from finetune_fixtures import (CUDA_AGENT, DRIFT_TOL, job, make_model, records, relative_drift,
                               write_job, write_jsonl)


def train(tmp: Path, model: Path, data: Path, name: str, backend: str, method: str) -> str:
    spec = write_job(tmp / f"{name}.yaml", job(model, data, tmp / name, method=method,
                                                maxSteps=8, learningRate=1e-3))
    r = subprocess.run([str(CUDA_AGENT), "finetune", "-f", str(spec)], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, LLMOPS_BACKEND=backend))
    if r.returncode != 0:
        sys.exit(f"gpu_agent_check: {name}: exit {r.returncode}\n{r.stderr}")
    return next((ln.split("finetune: ")[1] for ln in r.stderr.splitlines()
                 if "finetune: backend: " in ln), "?")


def main() -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = make_model(tmp / "gpt2")
        data = write_jsonl(tmp / "train.jsonl", records(64))
        for method in ("lora", "full"):
            train(tmp, model, data, f"cpu-{method}", "cpu", method)
            backend = train(tmp, model, data, f"gpu-{method}", "cuda", method)
            f = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
            base = None if method == "lora" else model / f
            drift = relative_drift(tmp / f"cpu-{method}" / f, tmp / f"gpu-{method}" / f, base)
            ok = drift <= DRIFT_TOL
            failed += not ok
            print(json.dumps({"check": f"agent_gpu_{method}", "backend": backend,
                              "relative_drift": drift, "tolerance": DRIFT_TOL, "ok": ok}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
