# fjord — see README.md. Targets that touch the kernel run as root on Debian 12.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build deps lab lab-down test test-unit fuzz vet tidy-check race ci bench-net bench-services bench-ingress bench-troubleshoot bench-kubelab bench-scale chaos image images kube conformance conformance-network conformance-zones clean

# fjord's version, the tag of its image.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

# Static (CGO_ENABLED=0): the same binary runs on the host, in fjord's image, and as
# the CNI plugin the agent copies onto nodes whose C library it cannot know.
build:
	CGO_ENABLED=0 $(GO) build -o bin/fjord ./cmd/fjord
	CGO_ENABLED=0 $(GO) build -o bin/fjord-cni ./cmd/fjord-cni

# System packages (iproute2, nftables, iperf3, ...) and the reference CNI tools.
deps:
	scripts/install-deps.sh

# The quick start: a fresh 3-node lab with a demo workload, checked end to end.
lab: deps build
	@./bin/fjord lab down >/dev/null 2>&1 || true
	./bin/fjord lab up

lab-down: build
	./bin/fjord lab down

# The whole suite, what CI runs (.ci/run) as root on a fresh machine: static checks
# (vet, go.mod tidy), pure tests, kernel tests in namespaces, integration tests against
# a real kube-apiserver and controller-manager, end-to-end labs (both Kubernetes labs
# and the upstream network conformance specs included), the race detector, and 10
# seconds of every fuzz target. The Kubernetes programs are built first, into the
# shared cache, with progress on the terminal (about 10 minutes the first time with an
# empty Go build cache, seconds after: docs/testing.md). A kernel or lab test that
# cannot run fails (it never skips outside -short). -p 1: packages that create
# namespaces and labs run one at a time; -timeout is per package.
test: deps build vet tidy-check
	$(GO) run ./cmd/fjord-build kube kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet e2e.test ginkgo
	$(GO) test -count=1 -p 1 -timeout 45m ./...
	$(MAKE) race
	$(MAKE) fuzz FUZZTIME=10s

# Pure tests only: no root, no namespaces.
test-unit:
	$(GO) test -count=1 -short ./...

# A coverage-guided run of every fuzz target (every func FuzzX in the module), FUZZTIME
# each.
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

vet:
	$(GO) vet ./...

# go.mod and go.sum must be what `go mod tidy` makes of them.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { \
	  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result. The difference:"; \
	  $(GO) mod tidy -diff; exit 1; }

# The race detector on the packages that share state between goroutines (-short: the
# load tests are left to `make test`).
RACE_PKGS = ./internal/ingress/proxy/ ./internal/ingress/controller/ ./internal/ingress/server/ \
	./internal/syncrunner/ ./internal/endpoints/ ./internal/store/ ./internal/agent/ \
	./internal/proxy/l4/ ./internal/proxy/healthcheck/
race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

ci: test

# The upstream e2e suite (e2e.test and ginkgo of the same Kubernetes release) against a
# lab with real kubelets, fjord as the only CNI and service proxy; writes the section of
# docs/conformance.md. Default: the 47 [sig-network] [Conformance] specs. FOCUS= and
# SKIP= (ginkgo regexps) and SECTION= override; conformance-network runs the rest of
# sig-network that needs no cloud, and is neither Serial nor Disruptive.
conformance: deps build
	$(GO) run ./cmd/fjord-conformance -fjord bin/fjord $(if $(FOCUS),-focus '$(FOCUS)') $(if $(SKIP),-skip '$(SKIP)') $(if $(SECTION),-section '$(SECTION)')

conformance-network: deps build
	$(GO) run ./cmd/fjord-conformance -fjord bin/fjord -section sig-network -focus '\[sig-network\]' \
		-skip '\[Serial\]|\[Disruptive\]|\[Slow\]|\[Feature:|\[Flaky\]'

# The topology specs the 3-node lab cannot run ("need at least 3 zones, with at least 2
# schedulable nodes each"): 6 real nodes in 3 zones.
conformance-zones: deps build
	$(GO) run ./cmd/fjord-conformance -fjord bin/fjord -section zones -nodes 6 -zones 3 \
		-focus '\[sig-network\] Traffic Distribution' -skip '\[Serial\]|\[Disruptive\]|\[Slow\]|\[Feature:|\[Flaky\]'

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

# One fjord agent in Kubernetes mode against a real kube-apiserver holding 1,000 Nodes
# whose Leases and status a load generator keeps beating, and 30,000 Services with
# EndpointSlices: its memory, CPU, watch traffic and the time one change takes to reach
# its kernel. Rewrites the measured section of docs/scale.md; about 15 minutes.
bench-scale: deps build
	$(GO) run ./bench/scale -fjord bin/fjord

# Ingress proxy against nginx and HAProxy (Debian packages), wrk with keep-alive.
bench-ingress: deps build
	$(GO) run ./bench/ingress -fjord bin/fjord

# The Kubernetes lab with real kubelets: `lab up --kubernetes --runtime containerd`
# step by step (warm, and with an empty Kubernetes cache), and a 30-pod Deployment from
# kubectl apply to Ready with fjord as the CNI against bridge + host-local on the same
# kubelets and containerd. Own lab (kbench, 198.18.210.0/24); about 15 minutes.
bench-kubelab: deps build
	$(GO) run ./bench/kubelab -fjord bin/fjord

# Troubleshooting tools on a 3-node lab: full mtu and latency matrices against ping
# loops, and the CPU the agents' RTT probes cost.
bench-troubleshoot: deps build
	$(GO) run ./bench/troubleshoot -fjord bin/fjord

# Faults under continuous traffic on a 3-node lab (fjord-chaos, 198.18.200.0/24): agents
# killed and restarted, etcd frozen for 60 s, nodes partitioned (20 s and 1 s), 1,000
# Ingress changes, 200 slowloris connections, ingress restarts; requests lost and time
# to recover, next to what the design promises. About 8 minutes. Not part of `make test`.
chaos: deps build
	$(GO) run ./bench/chaos -fjord bin/fjord

clean:
	rm -rf bin
