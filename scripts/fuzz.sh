#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses under tests/fuzz/ whose names match
# the given prefix (fuzz_<prefix>*.c), each for FUZZ_SECONDS (default 600),
# niced, with ASan and UBSan; then prints the line coverage of lib/llm_<prefix>*.c
# by the corpora (llvm-cov). Installs clang-14 when no clang is found and we
# are root (apt). Corpora, crash files and logs go to build/fuzz/<harness>/;
# corpora are kept between runs.
#   scripts/fuzz.sh tokenizer [seconds]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
prefix=${1:-tokenizer}
seconds=${2:-${FUZZ_SECONDS:-600}}

clang=$(command -v clang-14 || command -v clang || true)
if [ -z "$clang" ]; then
	[ "$(id -u)" = 0 ] || { echo "fuzz: clang is missing; install clang-14 and libclang-rt-14-dev" >&2; exit 1; }
	echo "fuzz: installing clang-14"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-14 libclang-rt-14-dev >/dev/null
	clang=$(command -v clang-14)
fi
llvm_suffix=${clang#*clang}

lib_src=(lib/llm_"$prefix"*.c lib/llm_json.c lib/llm_buf.c lib/llm_err.c)
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -Ilib -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all)

for src in tests/fuzz/fuzz_"$prefix"*.c; do
	name=$(basename "$src" .c)
	out=build/fuzz/$name
	mkdir -p "$out/corpus" "$out/crashes"
	"$clang" "${flags[@]}" "$src" "${lib_src[@]}" -ljansson -o "$out/$name"
	tests/fuzz/seeds.sh "$name" "$out/corpus"
	echo "fuzz: $name for $seconds s"
	nice -n 10 "$out/$name" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 \
		-artifact_prefix="$out/crashes/" -dict="tests/fuzz/$prefix.dict" "$out/corpus" \
		2>&1 | tee "$out/log.txt" | grep -E '^#[0-9]+.*(pulse|DONE)|^stat::|ERROR|SUMMARY' || true
	if ls "$out/crashes/"* >/dev/null 2>&1; then
		echo "fuzz: $name found crashes in $out/crashes" >&2
		exit 1
	fi
done

# Line coverage of the library by the corpora: rebuild with profiling, replay.
cov=build/fuzz/coverage
mkdir -p "$cov"
rm -f "$cov"/*.profraw
objects=()
extra=()
for src in tests/fuzz/fuzz_"$prefix"*.c; do
	name=$(basename "$src" .c)
	"$clang" -std=c11 -D_GNU_SOURCE -O1 -Ilib -fsanitize=fuzzer -fprofile-instr-generate \
		-fcoverage-mapping "$src" "${lib_src[@]}" -ljansson -o "$cov/$name"
	LLVM_PROFILE_FILE="$cov/$name.profraw" "$cov/$name" -runs=0 "build/fuzz/$name/corpus" \
		>/dev/null 2>&1
	[ ${#objects[@]} -gt 0 ] && extra+=(-object "$cov/$name")
	objects+=("$cov/$name")
done
"llvm-profdata$llvm_suffix" merge -sparse "$cov"/*.profraw -o "$cov/all.profdata"
echo "fuzz: line coverage of lib/llm_$prefix*.c by the corpora"
"llvm-cov$llvm_suffix" report "${objects[0]}" "${extra[@]}" -instr-profile="$cov/all.profdata" \
	lib/llm_"$prefix"*.c
