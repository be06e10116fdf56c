#!/bin/sh
# Module size and speed by build: opt-level 3, s and z, each as built, through `wasm-opt -O3`
# and through `wasm-opt -Oz` (Debian: apt-get install binaryen). Prints one table (the bench's
# BENCH_MODULES mode). Not part of `make bench` (three full release builds): run it by hand,
#   sh benches/opt-levels.sh
# Each opt-level builds in its own target directory under $CARGO_TARGET_DIR (default target/).
set -eu
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
case "$T" in /*) ;; *) T="$PWD/$T" ;; esac
OUT="$T/opt-levels"
mkdir -p "$OUT"
FEATURES="--enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types"
MODULES=""
for o in 3 s z; do
	CARGO_PROFILE_RELEASE_OPT_LEVEL=$o CARGO_TARGET_DIR="$T/opt-$o" \
		cargo build --release --target wasm32-wasip1 -p bouncer
	cp "$T/opt-$o/wasm32-wasip1/release/bouncer.wasm" "$OUT/bouncer-O$o.wasm"
	MODULES="$MODULES,opt-level $o=$OUT/bouncer-O$o.wasm"
	if command -v wasm-opt >/dev/null 2>&1; then
		for w in O3 Oz; do
			# shellcheck disable=SC2086
			wasm-opt -$w $FEATURES "$OUT/bouncer-O$o.wasm" -o "$OUT/bouncer-O$o-wasm-opt-$w.wasm"
			MODULES="$MODULES,opt-level $o + wasm-opt -$w=$OUT/bouncer-O$o-wasm-opt-$w.wasm"
		done
	fi
done
# The bench itself (and the no-op floor module) from the default build.
cargo build --release --target wasm32-wasip1 -p bouncer-bench-floor
BENCH_MODULES="${MODULES#,}" cargo bench -p bouncer-bench
