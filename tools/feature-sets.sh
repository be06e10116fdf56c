#!/bin/sh
# Whether `make run` (the gateway, -p bouncer-examples) and `make test` (--workspace, with
# dev-dependencies) build wasmtime and everything it depends on with the same features, so
# that cargo compiles them once. Prints the packages whose features differ; exit 1 if any.
# Fix a difference by naming the feature in tests/harness/Cargo.toml (see the comment there).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree() { "${CARGO:-cargo}" tree -q "$@" -f '{p} {f}' --prefix none | sed 's/ (\*)//; s/ (proc-macro)//' | sort -u; }
tree -p bouncer-examples -e normal,build > "$tmp/gateway"
tree --workspace -e normal,build,dev > "$tmp/workspace"
tree -p wasmtime -e normal,build | awk '{print $1 "@" $2}' | sort -u > "$tmp/closure"
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
def load(name):
    out = {}
    for line in open(f"{d}/{name}"):
        p = line.split()
        if len(p) < 2:
            continue
        feats = set(p[2].split(",")) if len(p) > 2 and not p[2].startswith("(") else set()
        out.setdefault(p[0] + "@" + p[1], set()).update(feats)
    return out
gw, ws = load("gateway"), load("workspace")
bad = 0
for pkg in sorted(l.strip() for l in open(f"{d}/closure")):
    a, b = gw.get(pkg, set()), ws.get(pkg, set())
    if a != b:
        bad += 1
        print(f"{pkg}: make test adds {sorted(b - a)}, make run adds {sorted(a - b)}")
print("one feature set" if not bad else f"{bad} packages differ")
sys.exit(1 if bad else 0)
PY
