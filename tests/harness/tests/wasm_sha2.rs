//! The filter's SHA-256 in wasm is sha2's rolled ("compact") software form, natively sha2's
//! default (SHA instructions where the CPU has them). Kong's engine (wasmtime 26) runs sha2's
//! default unrolled form at 1.7 µs a block against 0.31 µs rolled (docs/HOSTS.md, "Code the
//! engine runs slowly"): every HMAC, API key and cache key hashes with it, so a dependency
//! change that dropped the feature for wasm would make every such request slower there.

use std::path::Path;
use std::process::Command;

/// sha2's features as cargo resolves them for the filter, natively or for `target`.
fn sha2_features(target: Option<&str>) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["tree", "-q", "-p", "bouncer", "-e", "normal", "-i", "sha2"])
        .args(["--prefix", "none", "-f", "{p} {f}", "--depth", "0"])
        .current_dir(&repo);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let out = cmd.output().expect("cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sha2_is_rolled_in_wasm_only() {
    let wasm = sha2_features(Some("wasm32-wasip1"));
    assert!(wasm.contains("force-soft-compact"), "wasm32: {wasm}");
    let native = sha2_features(None);
    assert!(native.starts_with("sha2 "), "native: {native}");
    assert!(!native.contains("force-soft"), "native: {native}");
}
