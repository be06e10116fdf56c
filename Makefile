# Bouncer: build, test and lint. `make test` is what CI runs (see .ci/run).
CARGO  ?= cargo
TARGET := wasm32-wasip1
WASM   := $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release/bouncer.wasm

.PHONY: all build test lint fmt clean setup dist oci fuzz run bench cli

all: build

## setup: install the wasm target, clippy and rustfmt (make lint), clang (ring compiles C
##        for wasm32) and Envoy's v3 API for Python (tests/envoy_api.rs checks envoy/envoy.yaml
##        with it); once per machine
ENVOY_API_PIP := envoy-data-plane==2.2.0 betterproto2==0.9.1 pydantic==2.13.4 pyyaml==6.0.3
setup:
	rustup target add $(TARGET)
	rustup component add clippy rustfmt
	@command -v clang >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq clang; }
	python3 -m pip install -q --disable-pip-version-check $(ENVOY_API_PIP)

## build: the release filter, target/wasm32-wasip1/release/bouncer.wasm
build:
	$(CARGO) build --release --target $(TARGET) -p bouncer
	@ls -l $(WASM) | awk '{print "bouncer.wasm: " $$5 " bytes"}'

## test: build the .wasm, then every unit and end-to-end test of the workspace
test: build
	$(CARGO) test --workspace

## run: the local gateway on 127.0.0.1:8000 in front of a built-in echo upstream, with the
##      reference authorization service on 127.0.0.1:8181 (examples/policies/rbac.rego, Rego
##      evaluated by regorus as OPA's data API); prints ready curl lines. The first build shows
##      cargo's progress (wasmtime takes minutes, see README); Ctrl-C stops it.
GATEWAY := $(or $(CARGO_TARGET_DIR),target)/debug/bouncer-gateway
run: build
	$(CARGO) build -p bouncer-examples --bin bouncer-gateway
	@trap 'echo; echo "bouncer-gateway stopped"; exit 0' INT; \
		$(GATEWAY) --config examples/gateway-config.json \
		--authz-policy examples/policies/rbac.rego --authz-data examples/policies/rbac-data.json \
		--demo-tokens

## cli: the operator command line, target/release/bouncer (check, hash-key, import-kong, token;
##      README "Operator CLI"); or install it: cargo install --path tools/cli
cli:
	$(CARGO) build --release -p bouncer-cli
	@echo "$(or $(CARGO_TARGET_DIR),target)/release/bouncer"

## lint: formatting and clippy (warnings are errors), natively and for wasm
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p bouncer --release --target $(TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## dist: dist/bouncer.wasm (through wasm-opt when binaryen is installed, else a plain copy)
##       and dist/bouncer.meta.json side by side: copy both into Kong's wasm_filters_path.
##       -O3 keeps rustc's speed and saves ~13%; -Oz saves ~1% more (WASM_OPT_FLAGS=-Oz).
DIST_WASM      := $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release/bouncer.wasm
WASM_OPT       ?= wasm-opt
WASM_OPT_FLAGS ?= -O3
dist:
	$(CARGO) build --release --target $(TARGET) -p bouncer
	@mkdir -p dist
	@if command -v $(WASM_OPT) >/dev/null 2>&1; then \
		echo "$(WASM_OPT) $(WASM_OPT_FLAGS) $(DIST_WASM) -o dist/bouncer.wasm"; \
		$(WASM_OPT) $(WASM_OPT_FLAGS) --enable-bulk-memory --enable-sign-ext \
			--enable-mutable-globals --enable-nontrapping-float-to-int \
			--enable-multivalue --enable-reference-types \
			$(DIST_WASM) -o dist/bouncer.wasm; \
	else \
		echo "$(WASM_OPT) not found (Debian: apt-get install binaryen): copying the module as built"; \
		cp $(DIST_WASM) dist/bouncer.wasm; \
	fi
	cp kong/bouncer.meta.json dist/bouncer.meta.json
	@ls -l $(DIST_WASM) dist/bouncer.wasm | awk '{print $$9 ": " $$5 " bytes"}'

## oci: dist/bouncer.wasm (as `make dist` makes it) as an OCI image: the layout directory
##      dist/oci/ and its tarball dist/bouncer-oci.tar (tools/oci, bouncer-oci), tagged
##      OCI_TAG; prints the image digest. One layer with plugin.wasm: the image format Istio,
##      Envoy Gateway and Higress pull (envoy/README.md). Push it with e.g.
##      skopeo copy oci:dist/oci:$(OCI_TAG) docker://REGISTRY/bouncer:$(OCI_TAG)
OCI_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OCI_TAG     ?= $(OCI_VERSION)
oci: dist
	$(CARGO) run -q -p bouncer-oci -- --wasm dist/bouncer.wasm \
		--layout dist/oci --archive dist/bouncer-oci.tar --tag $(OCI_TAG) --version $(OCI_VERSION)

## fuzz: run each cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60), after seeding
##       fuzz/corpus from tests/vectors; installs cargo-fuzz if missing. Works on stable
##       (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z sanitizer flags). Not part of CI.
##       Crashes land in fuzz/artifacts/<target>/; e.g. make fuzz FUZZ_TARGETS=token FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= token request config jwks authz_answer header_map
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	sh fuzz/seed-corpus.sh
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 || exit 1; \
	done

## bench: the release filter and the floor module (benches/floor) for wasm, then one run of
##        the bench (benches/benches/bouncer.rs): one table of medians and ratios, about 3 min.
##        Results and how to read them: docs/PERFORMANCE.md. Not part of CI.
bench:
	$(CARGO) build --release --target $(TARGET) -p bouncer
	$(CARGO) build --release --target $(TARGET) -p bouncer-bench-floor
	$(CARGO) bench -p bouncer-bench
