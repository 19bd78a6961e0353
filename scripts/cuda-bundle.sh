#!/bin/sh
# The CUDA checks on a GPU machine that cannot build this project (no Debian
# packages, no network), from a copy of the repository:
#
#   scripts/cuda-bundle.sh pack   here: builds the CUDA tests, benchmarks and
#                                 agent (make test-cuda-compile), copies the
#                                 shared libraries they need besides glibc,
#                                 the C++ runtime and CUDA's own into
#                                 build/cuda-bundle/lib, and puts binaries and
#                                 libraries in build/cuda-bundle.tar.xz
#   scripts/cuda-bundle.sh run    there, in the repository root with that
#                                 archive copied along: what `make test-cuda`
#                                 and `make bench-cuda` run, and the CUDA
#                                 agent trained on the GPU against the CPU
#                                 (e2e/gpu_agent_check.py), with that
#                                 machine's CUDA libraries (its toolkit, or
#                                 the nvidia-* wheels beside its PyTorch) and
#                                 its python3 (numpy, PyYAML, torch); every
#                                 step runs, and the exit status says whether
#                                 all passed. The MiniLM checks and
#                                 minilm_embed also read
#                                 build/assets/all-MiniLM-L6-v2 (88 MB, not in
#                                 the archive): copy it along where possible
set -e
cd "$(dirname "$0")/.."
bundle=build/cuda-bundle
archive=build/cuda-bundle.tar.xz
binaries() { ls build/tests/cuda/test_* build/bench/bench_cuda_* build/cuda-bin/llmops-agent; }

pack() {
	make --no-print-directory test-cuda-compile
	rm -rf "$bundle"
	mkdir -p "$bundle/lib"
	for b in $(binaries); do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
		sort -u | while read -r name path; do
		case "$name" in
		libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
		libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*) ;; # glibc's too
		libstdc++.so.* | libgcc_s.so.* | libcu* | libnccl* | libnv*) ;;
		*) cp -L "$path" "$bundle/lib/$name" ;;
		esac
	done
	echo "cuda-bundle: $(binaries | wc -l) binaries, libraries: $(ls "$bundle/lib" | tr '\n' ' ')"
	XZ_OPT=-T0 tar -cJf "$archive" $(binaries) "$bundle"
	du -sh "$archive" | sed 's/^/cuda-bundle: /'
}

# Every lib directory of the machine's CUDA: the toolkit's, and the nvidia-*
# wheels' (nvidia/<package>/lib) in python3's site-packages.
cuda_libs() {
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
		[ -d "$d" ] && printf '%s:' "$d"
	done
	python3 -c 'import glob, site
for s in site.getsitepackages():
    for d in sorted(glob.glob(s + "/nvidia/*/lib")):
        print(d, end=":")' 2>/dev/null || true
}

run() {
	[ -f "$archive" ] || { echo "cuda-bundle: no $archive (run 'scripts/cuda-bundle.sh pack' where the project builds)" >&2; exit 1; }
	tar -xJf "$archive"
	LD_LIBRARY_PATH="$PWD/$bundle/lib:$(cuda_libs)${LD_LIBRARY_PATH:-}"
	export LD_LIBRARY_PATH
	nvidia-smi -L || { echo "cuda-bundle: no NVIDIA GPU here (nvidia-smi -L failed)" >&2; exit 1; }
	status=0
	scripts/run-cuda-tests.sh build/tests/cuda/test_* || status=1
	python3 e2e/gpu_agent_check.py || status=1
	python3 bench/run_cuda.py || status=1
	echo "cuda-bundle: run $([ $status = 0 ] && echo passed || echo FAILED)"
	return $status
}

case "$1" in
pack) pack ;;
run) run ;;
*) echo "usage: scripts/cuda-bundle.sh pack|run" >&2; exit 2 ;;
esac
