#!/usr/bin/env bash
# Installs what fjord's lab, tests and benchmarks need on Debian 12, skipping anything
# already present. Safe to run repeatedly. Needs root.
set -euo pipefail

apt_pkgs=(iproute2 iputils-ping nftables iptables conntrack iperf3 curl util-linux containernetworking-plugins)
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

# Go: the machine's toolchain lives in /usr/local/go.
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "Go is not installed (expected /usr/local/go/bin/go)"; exit 1; }

# The reference CNI plugins fjord chains with (portmap, spec 1.1.0) and the reference
# runtime tool (cnitool), pinned. Debian's plugins only speak CNI spec <= 1.0.0.
cni_dir=/usr/local/lib/fjord/cni
tools_dir=/usr/local/lib/fjord-test/bin
if [ ! -x "$cni_dir/portmap" ]; then
  echo "installing the reference portmap plugin into $cni_dir"
  mkdir -p "$cni_dir"
  GOBIN="$cni_dir" go install github.com/containernetworking/plugins/plugins/meta/portmap@v1.10.0
fi
if [ ! -x "$tools_dir/cnitool" ] || [ ! -x "$tools_dir/portmap" ]; then
  echo "installing cnitool and portmap for the tests into $tools_dir"
  mkdir -p "$tools_dir"
  GOBIN="$tools_dir" go install github.com/containernetworking/cni/cnitool@v1.3.1
  GOBIN="$tools_dir" go install github.com/containernetworking/plugins/plugins/meta/portmap@v1.10.0
fi
