#!/usr/bin/env bash
# Style checks over the C, header and CUDA files given as arguments:
#   1. clang-format (the repository's .clang-format) reports no change,
#   2. no banned function (unbounded or unsafe): strcpy, sprintf, strtok,
#      atoi, gets, and their close relatives strcat, vsprintf, atol, atoll,
#   3. cppcheck finds no warning, portability or performance problem.
# Exits non-zero when any check fails, after running all of them.
set -uo pipefail

[ $# -gt 0 ] || { echo "check: no files given" >&2; exit 2; }
status=0

echo "check: clang-format ($# files)"
if ! clang-format --dry-run --Werror "$@"; then
	echo "check: clang-format: run 'clang-format -i' on the files above" >&2
	status=1
fi

echo "check: banned functions"
banned='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atoll|gets)[[:space:]]*\('
if grep -nE "$banned" "$@"; then
	echo "check: banned functions used above; use snprintf, strtol or strtok_r" >&2
	status=1
fi

# jansson's iteration macros (json_object_foreach, ...) must be known to
# cppcheck, or it stops at the first one; --include gives it their definitions.
echo "check: cppcheck"
c_files=()
for f in "$@"; do case "$f" in *.c) c_files+=("$f") ;; esac; done
if [ ${#c_files[@]} -gt 0 ] && ! cppcheck --quiet --error-exitcode=1 --std=c11 \
	--enable=warning,performance,portability --inline-suppr \
	--suppress=missingIncludeSystem -D__GNUC__ -Ilib -Ikernels/include \
	--include=/usr/include/jansson.h \
	"${c_files[@]}"; then
	status=1
fi

[ $status -eq 0 ] && echo "check: all clean"
exit $status
