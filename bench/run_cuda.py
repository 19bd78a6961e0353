#!/usr/bin/env python3
"""make bench-cuda: the CUDA side of llmops on this machine's GPU.

1. Kernel level: build/bench/bench_cuda_kernels times each CUDA kernel at
   GPT-2 124M shapes against the device's peak; its lines are passed on as
   they are (there baseline is "device peak" and ratio the fraction of it).
2. Model level: each case of bench/cuda_cases.py runs once with
   build/bench/bench_cuda_model <case> and once per PyTorch baseline
   (bench/cuda_torch.py; gpt2_train against eager and torch.compile,
   minilm_embed against fp32 and fp16 and bf16 autocast), each in its own
   process; gpt2_train runs a second time with --bf16 (bf16 matmuls, rows
   named gpt2_train_bf16). These rows are printed per baseline:
     speed        the case's unit (tokens/s, sentences/s); ratio ours / theirs
     peak_mem     MiB of device memory; ratio theirs / ours
     mfu          gpt2_train: model FLOPs utilisation of both sides, from
                  tokens/s x llm.c's 6N + 6LCT FLOPs per token over the bf16
                  dense peak; ratio ours / theirs
     bandwidth_bound_fraction
                  llama_decode_*: tokens/s over the bound that reading every
                  bf16 weight (but the embedding table) and the KV cache once
                  per step at the DRAM peak allows; ratio ours / theirs
Every line is one JSON object
  {"bench", "metric", "value", "unit", "baseline", "baseline_value", "ratio"}
and ratio > 1 means llmops is better. Without build/bench/bench_cuda_model
the model level is skipped with a message on stderr.

Usage: run_cuda.py [--kernels-only] [case ...]   (default: every case)
"""
import argparse
import json
import os
import subprocess
import sys

from cuda_cases import CASES, DECODE_BATCH, VARIANTS, decode_bytes_per_step

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KERNELS = os.path.join(ROOT, "build/bench/bench_cuda_kernels")
MODEL = os.path.join(ROOT, "build/bench/bench_cuda_model")


def run(cmd):
    """stdout of cmd; exits with its stderr when it fails"""
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"run_cuda.py: {' '.join(cmd)} exited with {out.returncode}:\n"
                 f"{out.stderr.strip()[-4000:]}\n{out.stdout.strip()[-2000:]}")
    return out.stdout


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def row(case, metric, value, unit, ref, ref_value, ratio):
    print(json.dumps({"bench": case, "metric": metric, "value": round(value, 4), "unit": unit,
                      "baseline": ref["baseline"], "baseline_value": round(ref_value, 4),
                      "ratio": round(ratio, 3)}), flush=True)


def model_rows(case, ours, ref, peaks, label=None):
    """rows of one llmops run against one baseline; label names the rows
    (default: the case)"""
    name = label or case
    row(name, "speed", ours["value"], ours["unit"], ref, ref["value"],
        ours["value"] / ref["value"])
    row(name, "peak_mem", ours["peak_mem_mib"], "MiB", ref, ref["peak_mem_mib"],
        ref["peak_mem_mib"] / ours["peak_mem_mib"])
    if case == "gpt2_train":
        peak = peaks["peak_bf16_tflops"] * 1e12
        mine, theirs = (x["value"] * ref["flops_per_token"] / peak for x in (ours, ref))
        row(name, "mfu", mine, "fraction of bf16 dense peak", ref, theirs, mine / theirs)
    if case in DECODE_BATCH:
        bound = DECODE_BATCH[case] * peaks["peak_dram_gbs"] * 1e9 / \
            decode_bytes_per_step(DECODE_BATCH[case])
        row(name, "bandwidth_bound_fraction", ours["value"] / bound,
            f"fraction of {bound:.0f} tokens/s", ref, ref["value"] / bound,
            ours["value"] / ref["value"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels-only", action="store_true", help="skip the model level")
    ap.add_argument("cases", nargs="*", metavar="case", help=" ".join(CASES))
    args = ap.parse_args()
    unknown = set(args.cases) - set(CASES)
    if unknown:
        ap.error(f"unknown case {sorted(unknown)[0]}; choose from {' '.join(CASES)}")
    if not os.access(KERNELS, os.X_OK):
        sys.exit(f"run_cuda.py: {KERNELS} is missing; build it with "
                 "'make build/bench/bench_cuda_kernels'")
    peaks = last_json(run([KERNELS, "--peaks"]))
    print(f"run_cuda.py: {peaks['device']}: {peaks['peak_dram_gbs']:.0f} GB/s DRAM, "
          f"{peaks['peak_bf16_tflops']:.0f} bf16 TFLOP/s ({peaks['peak_bf16_source']})",
          file=sys.stderr)
    for line in run([KERNELS]).splitlines():
        if line.startswith("{"):
            print(line, flush=True)
    if args.kernels_only:
        return
    if not os.access(MODEL, os.X_OK):
        print(f"run_cuda.py: {MODEL} is not built, so the model-level cases "
              f"({' '.join(args.cases or CASES)}) are skipped: it comes with the CUDA model "
              "runtime; only the kernel-level lines above were measured", file=sys.stderr)
        return
    for case in args.cases or CASES:
        ours = last_json(run([MODEL, case]))
        # gpt2_train also with bf16 matmuls (LLM_MODEL_BF16), as rows gpt2_train_bf16
        ours_bf16 = last_json(run([MODEL, case, "--bf16"])) if case == "gpt2_train" else None
        for variant in VARIANTS.get(case, ("eager",)):
            ref = last_json(run([sys.executable, os.path.join(HERE, "cuda_torch.py"), case,
                                 variant]))
            model_rows(case, ours, ref, peaks)
            if ours_bf16:
                model_rows(case, ours_bf16, ref, peaks, case + "_bf16")


if __name__ == "__main__":
    main()
