#!/usr/bin/env bash
# CPU SGEMM comparison in one table: bench_gemm (OpenBLAS, BLIS, our own
# kernels) with PyTorch's figures for the same shapes from
# bench_gemm_torch.py (the reference venv, `scripts/deps.sh golden`).
# Usage: bench/run-gemm.sh   (after `make build/bench/bench_gemm`)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/build/bench/bench_gemm
py=$root/build/golden-venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" --list >"$tmp/shapes"
if [ -x "$py" ]; then
	"$py" -c 'import torch; print("# torch", torch.__version__, torch.backends.cpu.get_cpu_capability())'
	"$py" "$root/bench/bench_gemm_torch.py" <"$tmp/shapes" >"$tmp/torch"
else
	echo "# no reference venv ($py): run scripts/deps.sh golden for the torch column"
	: >"$tmp/torch"
fi
"$bench" --torch "$tmp/torch"
