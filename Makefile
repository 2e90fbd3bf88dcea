# fjord — see README.md. Everything here runs as root on Debian 12.
GO      ?= go
BIN     := bin/fjord
PKGS    := ./...

.PHONY: build test test-unit lab lab-down deps bench-net clean

build:
	$(GO) build -o $(BIN) ./cmd/fjord
	$(GO) build -o bin/fjord-cni ./cmd/fjord-cni

test: build
	$(GO) test -count=1 -p 1 -timeout 20m $(PKGS)

test-unit:
	$(GO) test -count=1 -short $(PKGS)

clean:
	rm -rf bin
