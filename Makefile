# Bouncer: build, test and lint. `make test` is what CI runs (see .ci/run).
CARGO  ?= cargo
TARGET := wasm32-wasip1
WASM   := target/$(TARGET)/release/bouncer.wasm

.PHONY: all build test lint fmt clean setup

all: build

## setup: install the wasm target (once per machine)
setup:
	rustup target add $(TARGET)

## build: the release filter, target/wasm32-wasip1/release/bouncer.wasm
build:
	$(CARGO) build --release --target $(TARGET) -p bouncer
	@ls -l $(WASM) | awk '{print "bouncer.wasm: " $$5 " bytes"}'

## test: build the .wasm, then every unit and end-to-end test of the workspace
test: build
	$(CARGO) test --workspace

## lint: formatting and clippy (warnings are errors), natively and for wasm
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p bouncer --release --target $(TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
