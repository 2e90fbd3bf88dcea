#!/usr/bin/env bash
# Installs what fjord's lab, tests and benchmarks need on Debian 12, skipping anything
# already present. Safe to run repeatedly. Needs root.
set -euo pipefail

apt_pkgs=(iproute2 iputils-ping nftables iptables conntrack iperf3 curl util-linux containernetworking-plugins
  # Real kubelet nodes in the lab (issue 9): a container runtime per node.
  containerd runc
  # What the lab's images (internal/labimages) copy from the host: busybox for the
  # applets, and the tools the e2e tests run inside agnhost (dash is already there).
  busybox-static netcat-openbsd socat bind9-dnsutils wget iperf dash
  # The racked lab's router (issue 12): BIRD 2 and FRR, and tcpdump for the tests that
  # check the wire. The lab starts the daemons itself in its router namespace.
  bird2 frr tcpdump)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The routing daemons must not run as system services: the lab starts its own, with
# their own configuration and sockets, in a namespace.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for svc in bird frr; do
    if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
      echo "disabling the $svc system service (the lab runs its own)"
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# Go: the machine's toolchain lives in /usr/local/go.
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "Go is not installed (expected /usr/local/go/bin/go)"; exit 1; }

# The reference CNI plugins fjord chains with (portmap, spec 1.1.0; loopback and host-local
# for containerd nodes) and the reference runtime tool (cnitool), pinned. Debian's plugins
# only speak CNI spec <= 1.0.0. The plugins are built static (CGO_ENABLED=0) and stamped
# with their version as upstream's release builds are: fjord's image carries them and its
# agent installs them onto nodes whose C library is unknown.
cni_dir=/usr/local/lib/fjord/cni
tools_dir=/usr/local/lib/fjord-test/bin
cni_version=v1.10.0
cni_ldflags="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version"
for p in meta/portmap main/loopback ipam/host-local; do
  bin="$cni_dir/${p#*/}"
  info=$(go version -m "$bin" 2>/dev/null || true)
  if ! grep -q 'CGO_ENABLED=0' <<<"$info" || ! grep -q "BuildVersion=$cni_version" <<<"$info"; then
    echo "installing the reference CNI plugin ${p#*/} ($cni_version, static) into $cni_dir"
    mkdir -p "$cni_dir"
    CGO_ENABLED=0 GOBIN="$cni_dir" go install -ldflags "$cni_ldflags" "github.com/containernetworking/plugins/plugins/$p@$cni_version"
  fi
done
if [ ! -x "$tools_dir/cnitool" ] || [ ! -x "$tools_dir/portmap" ]; then
  echo "installing cnitool and portmap for the tests into $tools_dir"
  mkdir -p "$tools_dir"
  GOBIN="$tools_dir" go install github.com/containernetworking/cni/cnitool@v1.3.1
  GOBIN="$tools_dir" go install github.com/containernetworking/plugins/plugins/meta/portmap@v1.10.0
fi
