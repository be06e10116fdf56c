//! `make run` (the gateway) and `make test` (the workspace) build wasmtime and its dependencies
//! with one feature set, so that cargo compiles them once: `tools/feature-sets.sh` compares
//! `cargo tree`'s two resolutions. A new workspace dependency that turns on another feature of
//! one of wasmtime's dependencies fails here; name that feature in tests/harness/Cargo.toml.

use std::path::Path;
use std::process::Command;

#[test]
fn the_gateway_and_the_tests_build_one_wasmtime() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("sh")
        .arg("tools/feature-sets.sh")
        .current_dir(&repo)
        .env("CARGO", env!("CARGO"))
        .output()
        .expect("sh tools/feature-sets.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("one feature set"), "{stdout}");
}
