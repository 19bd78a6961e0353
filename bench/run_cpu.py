#!/usr/bin/env python3
"""make bench-cpu: each case runs twice, once with our C runtime
(build/bench/bench_cpu) and once with PyTorch (bench/cpu_torch.py), each in a
fresh process with the same thread count, and one JSON object per line is
printed for the speed and one for the peak memory of every case:
  {"bench", "metric", "value", "unit", "baseline", "baseline_value", "ratio"}
ratio > 1 means llmops is better (faster, or smaller peak memory).

Usage: run_cpu.py [--threads N] [case ...]   (default: all cases, all cores)
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = ["gpt2_train", "gpt2_lora_train", "llama_decode", "minilm_embed"]


def run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rows(case, ours, ref):
    speed = {"bench": case, "metric": ours["unit"].split("/")[0] + "_per_s",
             "value": round(ours["value"], 2), "unit": ours["unit"],
             "baseline": ref["baseline"], "baseline_value": round(ref["value"], 2),
             "ratio": round(ours["value"] / ref["value"], 3)}
    memory = {"bench": case, "metric": "peak_rss", "value": round(ours["peak_rss_mib"], 1),
              "unit": "MiB", "baseline": ref["baseline"],
              "baseline_value": round(ref["peak_rss_mib"], 1),
              "ratio": round(ref["peak_rss_mib"] / ours["peak_rss_mib"], 3)}
    return speed, memory


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("cases", nargs="*", metavar="case", help=" ".join(CASES))
    args = ap.parse_args()
    unknown = set(args.cases) - set(CASES)
    if unknown:
        ap.error(f"unknown case {sorted(unknown)[0]}; choose from {' '.join(CASES)}")
    for case in args.cases or CASES:
        ours = run([os.path.join(ROOT, "build/bench/bench_cpu"), case], args.threads)
        ref = run([sys.executable, os.path.join(HERE, "cpu_torch.py"), case, str(args.threads)],
                  args.threads)
        for row in rows(case, ours, ref):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
