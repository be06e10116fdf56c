//! Builds the self-test filter (testdata/echo-filter) for wasm32-wasip1 into OUT_DIR and exposes
//! its path as `ECHO_FILTER_WASM`. The nested cargo gets its own target dir and the outer
//! build's jobserver, and does not inherit flags or wrappers meant for the host build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let echo = manifest_dir.join("testdata/echo-filter");
    for f in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed=testdata/echo-filter/{f}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = out.join("echo-target");
    let wasm = target_dir.join("wasm32-wasip1/release/echo_filter.wasm");

    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--quiet",
        "--target",
        "wasm32-wasip1",
        "--manifest-path",
    ])
    .arg(echo.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    if let Ok(flags) = env::var("CARGO_MAKEFLAGS") {
        cmd.env("MAKEFLAGS", flags);
    }
    let status = cmd.status().expect("running cargo for the echo filter");
    if !status.success() || !wasm.exists() {
        panic!(
            "building testdata/echo-filter for wasm32-wasip1 failed ({status}); \
             is the target installed (`rustup target add wasm32-wasip1`)?"
        );
    }
    println!("cargo:rustc-env=ECHO_FILTER_WASM={}", wasm.display());
}
