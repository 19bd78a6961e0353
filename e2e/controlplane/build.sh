#!/usr/bin/env bash
# Builds the local control plane binaries from their Go modules at the versions
# pinned in this folder (kube/go.mod, etcd/go.mod, HELM_VERSION below): etcd,
# etcdctl, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
# helm. Binaries are cached under $LLMOPS_CACHE/controlplane-<key>/bin, where the
# key hashes every pin, so a rebuild happens only when a pin changes.
# Prints the bin directory on its last line of stdout.
set -euo pipefail

HELM_VERSION=v3.19.5
here=$(cd "$(dirname "$0")" && pwd)
cache=${LLMOPS_CACHE:-$HOME/.cache/llmops}

# Go >= 1.24 is needed for the `tool` directives; older Go cannot be upgraded
# from here, so say so plainly.
if ! command -v go >/dev/null 2>&1; then
	echo "controlplane: Go is not installed; install Go >= 1.24 and rerun 'make deps'" >&2
	exit 1
fi

key=$(cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod \
	"$here"/etcd/go.sum "$0" | sha256sum | cut -c1-12)
dest=$cache/controlplane-$key
bins="etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl helm"

complete() {
	for b in $bins; do [ -x "$dest/bin/$b" ] || return 1; done
}

if complete; then
	echo "controlplane: binaries up to date in $dest/bin" >&2
	echo "$dest/bin"
	exit 0
fi

mkdir -p "$dest/bin"
export CGO_ENABLED=0 GOFLAGS=-trimpath
start=$(date +%s)

kube_version=$(cd "$here/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kube_version" | cut -d. -f2)
vpkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=1"
kube_ldflags+=" -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
kube_ldflags+=" -X $vpkg.buildDate=1970-01-01T00:00:00Z"

build() { # build <module dir> <binary name> <package> [ldflags]
	[ -x "$dest/bin/$2" ] && return 0
	echo "controlplane: building $2 ($(basename "$1"))" >&2
	(cd "$1" && go build -ldflags "${4:--s -w}" -o "$dest/bin/$2.tmp" "$3")
	mv "$dest/bin/$2.tmp" "$dest/bin/$2"
}

build "$here/etcd" etcd go.etcd.io/etcd/server/v3
build "$here/etcd" etcdctl go.etcd.io/etcd/etcdctl/v3
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	build "$here/kube" "$b" "k8s.io/kubernetes/cmd/$b" "$kube_ldflags"
done

if [ ! -x "$dest/bin/helm" ]; then
	echo "controlplane: building helm $HELM_VERSION" >&2
	hl="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
		hl+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
	done
	GOBIN="$dest/bin" go install -ldflags "$hl" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

echo "controlplane: built in $(($(date +%s) - start)) s into $dest/bin" >&2
echo "$dest/bin"
