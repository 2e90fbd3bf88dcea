# fjord — see README.md. Targets that touch the kernel run as root on Debian 12.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build deps lab lab-down test test-unit fuzz bench-net bench-services bench-ingress clean

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

# The whole suite: pure tests, kernel tests in namespaces, end-to-end labs.
# -p 1: packages that create namespaces and labs run one at a time.
test: deps build
	$(GO) test -count=1 -p 1 -timeout 25m ./...

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

# Service proxy at 10 to 30,000 services against kube-proxy (nftables and iptables
# modes): connect time, programming time, change latency, memory. The benchmark builds
# kube-proxy and kube-apiserver itself from the k8s.io/kubernetes module, in a scratch
# module under ~/.cache/fjord-bench (minutes the first time); KUBE_BIN=dir uses
# binaries from dir instead.
bench-services: deps build
	$(GO) run ./bench/services -fjord bin/fjord $(if $(KUBE_BIN),-kube-bin $(KUBE_BIN))

# Ingress proxy against nginx and HAProxy (Debian packages), wrk with keep-alive.
bench-ingress: deps build
	$(GO) run ./bench/ingress -fjord bin/fjord

clean:
	rm -rf bin
