#!/usr/bin/env bash
# Tests the Argo CD health checks in charts/argocd/resource_customizations/:
# every health.lua against every fixture its health_test.yaml lists, under
# lua5.4 in a sandbox shaped like Argo CD's Lua 5.1 one (see
# run_health_tests.lua), plus the committed argocd-cm snippet being current.
#   tests/lua/run_health_tests.sh        (VERBOSE=1 lists each check)
# Needs lua5.4 and a python3 with PyYAML (the project venv's, else the
# system's) to turn the YAML fixtures into a Lua table.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
custom=$root/charts/argocd/resource_customizations
lua=${LUA:-$(command -v lua5.4 || command -v lua)}
python=$root/build/venv/bin/python
[ -x "$python" ] || python=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$root/tests/lua/fixtures_to_lua.py" "$custom" >"$tmp/cases.lua"
"$root/charts/argocd/generate-argocd-cm.sh" >"$tmp/argocd-cm-health.yaml"
exec "$lua" "$root/tests/lua/run_health_tests.lua" "$tmp/cases.lua" "$custom" \
	"$tmp/argocd-cm-health.yaml" "$root/charts/argocd/argocd-cm-health.yaml"
