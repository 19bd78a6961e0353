#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses tests/fuzz/fuzz_<name>*.c:
#   scripts/fuzz.sh <name> [seconds]
# (fuzz-safetensors runs fuzz_safetensors.c; fuzz-tokenizer runs both
# tokenizer harnesses). Each is built with lib/*.c under clang's fuzzer, ASan
# and UBSan into build/fuzz/<harness>, then fuzzed, niced, for the given time
# (default FUZZ_SECONDS or 600) from the corpus build/fuzz/corpus-<harness>,
# seeded with tests/fuzz/seeds/<name>/, the files tests/fuzz/<name>.seeds
# lists and what tests/fuzz/seeds.sh writes for the tokenizer harnesses;
# tests/fuzz/<name>.dict is the dictionary when present. Crashes are written
# to build/fuzz/ and fail the run. Afterwards the corpora are replayed through
# a coverage build and llvm-cov reports the line coverage of lib/llm_<name>*.c.
# clang-14 and its runtime are installed from Debian's packages on first use.
set -euo pipefail

name=${1:?usage: scripts/fuzz.sh <name> [seconds]}
seconds=${2:-${FUZZ_SECONDS:-600}}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shopt -s nullglob
harnesses=(tests/fuzz/fuzz_"$name"*.c)
[ ${#harnesses[@]} -gt 0 ] || { echo "fuzz: no harness tests/fuzz/fuzz_$name*.c" >&2; exit 2; }

if ! command -v clang-14 >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "fuzz: installing clang-14 and its fuzzer runtime"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q -o DPkg::Lock::Timeout=300 \
		--no-install-recommends clang-14 libclang-rt-14-dev
fi

for src in "${harnesses[@]}"; do
	h=$(basename "$src" .c)
	corpus=build/fuzz/corpus-$h
	mkdir -p build/fuzz "$corpus"
	bin=build/fuzz/$h
	# shellcheck disable=SC2046
	clang-14 -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -Ilib -Ikernels/include \
		$(pkg-config --cflags jansson yaml-0.1) "$src" lib/*.c -o "$bin" \
		$(pkg-config --libs libcurl jansson yaml-0.1 libwebsockets openssl) -lm -lpthread

	seeds=()
	[ -d "tests/fuzz/seeds/$name" ] && seeds+=("tests/fuzz/seeds/$name")
	if [ -f "tests/fuzz/$name.seeds" ]; then
		while read -r s; do
			[ -n "$s" ] && [ -e "$s" ] && cp -r "$s" "$corpus/" 2>/dev/null || true
		done < <(grep -v '^#' "tests/fuzz/$name.seeds")
	fi
	case $h in fuzz_tokenizer*) tests/fuzz/seeds.sh "$h" "$corpus" ;; esac
	dict=()
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	echo "fuzz: $h for $seconds s"
	nice -n 10 "$bin" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix=build/fuzz/ -rss_limit_mb=2048 "${dict[@]}" "$corpus" "${seeds[@]}"
done

# Line coverage of the library by the corpora: rebuild with profiling, replay.
cov=build/fuzz/coverage
mkdir -p "$cov"
rm -f "$cov"/*.profraw
objects=()
for src in "${harnesses[@]}"; do
	h=$(basename "$src" .c)
	# shellcheck disable=SC2046
	clang-14 -std=c11 -D_GNU_SOURCE -O1 -fsanitize=fuzzer -fprofile-instr-generate \
		-fcoverage-mapping -Ilib -Ikernels/include $(pkg-config --cflags jansson yaml-0.1) \
		"$src" lib/*.c -o "$cov/$h" \
		$(pkg-config --libs libcurl jansson yaml-0.1 libwebsockets openssl) -lm -lpthread
	LLVM_PROFILE_FILE="$cov/$h.profraw" "$cov/$h" -runs=0 "build/fuzz/corpus-$h" >/dev/null 2>&1
	objects+=(-object "$cov/$h")
done
llvm-profdata-14 merge -sparse "$cov"/*.profraw -o "$cov/all.profdata"
echo "fuzz: line coverage of lib/llm_$name*.c by the corpora"
llvm-cov-14 report "${objects[@]:1}" -instr-profile="$cov/all.profdata" lib/llm_"$name"*.c
