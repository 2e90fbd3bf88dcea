# fjord — see README.md. Targets that touch the kernel run as root on Debian 12.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build deps lab lab-down test test-unit fuzz bench-net bench-services bench-ingress image images kube clean

# fjord's version, the tag of its image.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -o bin/fjord ./cmd/fjord
	$(GO) build -o bin/fjord-cni ./cmd/fjord-cni

# System packages (iproute2, nftables, iperf3, ...) and the reference CNI tools.
deps:
	scripts/install-deps.sh

# The quick start: a fresh 3-node lab with a demo workload, checked end to end.
lab: deps build
	@./bin/fjord lab down >/dev/null 2>&1 || true
	./bin/fjord lab up

lab-down: build
	./bin/fjord lab down

# The whole suite: pure tests, kernel tests in namespaces, end-to-end labs, and the
# integration tests against a real kube-apiserver and controller-manager. Those two are
# built first, into the shared cache, with progress on the terminal (about 10 minutes
# the first time with an empty Go build cache, seconds after: docs/testing.md).
# -p 1: packages that create namespaces and labs run one at a time. -timeout is per
# package: a test binary run without the build above builds them itself.
test: deps build
	$(GO) run ./cmd/fjord-build kube kube-apiserver kube-controller-manager
	$(GO) test -count=1 -p 1 -timeout 45m ./...

# Pure tests only: no root, no namespaces.
test-unit:
	$(GO) test -count=1 -short ./...

# A short coverage-guided run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./internal/objects/
	$(GO) test -run '^$$' -fuzz FuzzParseConfig -fuzztime 30s ./internal/cni/
	$(GO) test -run '^$$' -fuzz FuzzNetlinkAttrs -fuzztime 30s ./internal/proxy/nftproxy/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./internal/proxy/config/
	$(GO) test -run '^$$' -fuzz FuzzCompile -fuzztime 30s ./internal/ingress/nginxconf/
	$(GO) test -run '^$$' -fuzz FuzzParseRequest -fuzztime 30s ./internal/ingress/proxy/
	$(GO) test -run '^$$' -fuzz FuzzParseResponse -fuzztime 30s ./internal/ingress/proxy/

# Pod network benchmark: iperf3 pod-to-pod (vxlan, routed) against raw node-to-node,
# CNI ADD latency against the reference plugins, agent memory. Writes docs/benchmarks.md.
bench-net: deps build
	$(GO) run ./bench/net -fjord bin/fjord

# fjord's container image, bin/fjord-image.tar (docker-archive; load it with
# `ctr -n k8s.io images import bin/fjord-image.tar`), tagged fjord.dev/fjord:$(VERSION):
# fjord and fjord-cni built static, the reference CNI plugins, nft. No Docker needed.
image: deps
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/image/fjord ./cmd/fjord
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/image/fjord-cni ./cmd/fjord-cni
	$(GO) run ./cmd/fjord-build fjord-image --version $(VERSION) --fjord bin/image/fjord --fjord-cni bin/image/fjord-cni -o bin/fjord-image.tar

# The lab's images (pause, busybox, agnhost, CoreDNS, ...) as tarballs in the cache
# (~/.cache/fjord/images, or $$FJORD_KUBE_CACHE/images). The first run builds agnhost and
# CoreDNS from the Go module proxy: docs/kubernetes-build.md.
images: deps
	$(GO) run ./cmd/fjord-build lab-images

# Kubernetes binaries (all, or KUBE_TARGETS="kubelet kubectl") of v1.37.2 into the cache:
# about 14 minutes and 4 GB of Go build cache cold, seconds warm (docs/kubernetes-build.md).
kube:
	$(GO) run ./cmd/fjord-build kube $(KUBE_TARGETS)

# Service proxy at 10 to 30,000 services against kube-proxy (nftables and iptables
# modes): connect time, programming time, change latency, memory. The benchmark builds
# kube-proxy and kube-apiserver from the k8s.io/kubernetes module with internal/kubebuild,
# in the shared cache (~/.cache/fjord; minutes the first time); KUBE_BIN=dir uses
# binaries from dir instead.
bench-services: deps build
	$(GO) run ./bench/services -fjord bin/fjord $(if $(KUBE_BIN),-kube-bin $(KUBE_BIN))

# Ingress proxy against nginx and HAProxy (Debian packages), wrk with keep-alive.
bench-ingress: deps build
	$(GO) run ./bench/ingress -fjord bin/fjord

clean:
	rm -rf bin
