#!/usr/bin/env bash
# Installs everything llmops needs on a Debian or Ubuntu machine, idempotently:
#   1. Debian packages (only the missing ones; needs root or sudo),
#   2. the Python test venv   ~/.cache/llmops/venv-<hash of its pins>,
#   3. the CUDA 13.0 wheels    ~/.cache/llmops/cuda-<hash of its pins>,
#   4. the control plane       ~/.cache/llmops/controlplane-<hash>/ (build.sh).
# Each cache directory is named by a hash of its pins, so a pin change builds a
# new one and an unchanged pin costs nothing. build/venv, build/cuda and
# build/controlplane link the checkout to them. A second run does no work.
# Environment: LLMOPS_CACHE (default ~/.cache/llmops), LLMOPS_SKIP_CUDA=1 to
# skip the CUDA wheels (about 1 GB), PYTHON (default python3).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LLMOPS_CACHE:-$HOME/.cache/llmops}
python=${PYTHON:-python3}
mkdir -p "$cache" "$root/build"
t0=$(date +%s)

say() { echo "deps: $*"; }

apt_packages=(
	build-essential pkg-config git curl ca-certificates openssl
	libcurl4-openssl-dev libyaml-dev libjansson-dev libssl-dev
	libwebsockets-dev libopenblas-dev libcmocka-dev
	clang-format cppcheck valgrind lua5.4 python3 python3-venv python3-pip
)

install_apt() {
	local missing=() p sudo=
	for p in "${apt_packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "Debian packages: all ${#apt_packages[@]} present"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	say "Debian packages: installing ${missing[*]}"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
		"${missing[@]}"
}

# link <name> <target>: points build/<name> at a cache directory.
link() { ln -sfn "$2" "$root/build/$1"; }

install_venv() {
	local req=$root/requirements/test.txt key dir
	key=$({ cat "$req"; "$python" --version; } | sha256sum | cut -c1-12)
	dir=$cache/venv-$key
	if [ -f "$dir/.complete" ]; then
		say "Python venv: up to date ($dir)"
	else
		say "Python venv: creating $dir"
		rm -rf "$dir"
		"$python" -m venv "$dir"
		"$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
		touch "$dir/.complete"
	fi
	link venv "$dir"
}

install_cuda() {
	local req=$root/requirements/cuda.txt key dir
	if [ "${LLMOPS_SKIP_CUDA:-0}" = 1 ]; then
		say "CUDA wheels: skipped (LLMOPS_SKIP_CUDA=1)"
		rm -f "$root/build/cuda"
		return 0
	fi
	key=$(sha256sum "$req" | cut -c1-12)
	dir=$cache/cuda-$key
	if [ -f "$dir/.complete" ]; then
		say "CUDA wheels: up to date ($dir)"
	else
		say "CUDA wheels: installing into $dir (about 1 GB)"
		rm -rf "$dir"
		"$python" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps \
			--target "$dir" -r "$req"
		touch "$dir/.complete"
	fi
	link cuda "$dir"
}

install_controlplane() {
	local bin
	bin=$("$root/e2e/controlplane/build.sh")
	link controlplane "$(dirname "$bin")"
	say "control plane: $bin"
}

install_apt
install_venv
install_cuda
install_controlplane
say "done in $(($(date +%s) - t0)) s"
