#!/usr/bin/env python3
"""make bench-cpu: each case runs twice, once with our C runtime
(build/bench/bench_cpu) and once with PyTorch (bench/cpu_torch.py), each in a
fresh process with the same thread count, and one JSON object per line is
printed for the speed and one for the peak memory of every case:
  {"bench", "metric", "value", "unit", "baseline", "baseline_value", "ratio"}
ratio > 1 means llmops is better (faster, or smaller peak memory).

Usage: run_cpu.py [--threads N] [--repeat N] [case ...]
(default: all cases, all cores, one pair). With --repeat N each case runs N
pairs, ours then PyTorch's, and the lines give the median of each side; the
per-pair ratios go to stderr, to show the spread.
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


def median_run(results):
    """The result with the median speed, its peak memory the median too."""
    by_speed = sorted(results, key=lambda r: r["value"])
    mid = dict(by_speed[len(by_speed) // 2])
    mid["peak_rss_mib"] = sorted(r["peak_rss_mib"] for r in results)[len(results) // 2]
    return mid


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1, help="pairs per case (median)")
    ap.add_argument("cases", nargs="*", metavar="case", help=" ".join(CASES))
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat wants a count of at least 1")
    unknown = set(args.cases) - set(CASES)
    if unknown:
        ap.error(f"unknown case {sorted(unknown)[0]}; choose from {' '.join(CASES)}")
    for case in args.cases or CASES:
        pairs = [(run([os.path.join(ROOT, "build/bench/bench_cpu"), case], args.threads),
                  run([sys.executable, os.path.join(HERE, "cpu_torch.py"), case,
                       str(args.threads)], args.threads)) for _ in range(args.repeat)]
        if args.repeat > 1:
            print(f"run_cpu.py: {case}: ratios per pair: "
                  + ", ".join(f"{o['value'] / r['value']:.3f}" for o, r in pairs),
                  file=sys.stderr, flush=True)
        for row in rows(case, median_run([o for o, _ in pairs]),
                        median_run([r for _, r in pairs])):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
