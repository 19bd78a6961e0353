#!/bin/sh
# The CUDA checks of `make test-cuda`: each test binary given (default: every
# build/tests/cuda/test_*), then each again in quick mode
# (LLMOPS_CUDA_QUICK=1) under compute-sanitizer's memcheck, racecheck and
# synccheck. Needs an NVIDIA GPU. SANITIZER names compute-sanitizer (default:
# the one on PATH); without one the sanitizer runs are skipped, saying so.
set -e
[ $# -gt 0 ] || set -- build/tests/cuda/test_*
for t in "$@"; do
	[ -x "$t" ] || { echo "run-cuda-tests: $t is not built (make test-cuda-compile)" >&2; exit 1; }
done
for t in "$@"; do echo "== $t"; "$t"; done
sanitizer=${SANITIZER:-$(command -v compute-sanitizer || true)}
if [ -z "$sanitizer" ]; then
	echo "CUDA: compute-sanitizer not found; sanitizer runs skipped"
	exit 0
fi
for tool in memcheck racecheck synccheck; do
	for t in "$@"; do
		echo "== compute-sanitizer --tool $tool $t"
		LLMOPS_CUDA_QUICK=1 "$sanitizer" --tool "$tool" --error-exitcode 1 "$t"
	done
done
