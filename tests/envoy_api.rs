//! The Envoy configuration files checked against Envoy's own v3 API: `envoy/envoy.yaml` parses
//! as a typed `Bootstrap` and the clusters `envoy/envoy-gateway.yaml` adds as typed `Cluster`s
//! (every `typed_config` unpacked, unknown fields, wrong types and unregistered extension
//! types refused), with the PyPI package `envoy-data-plane` (pinned in .ci/run), through
//! `tests/envoy/check_envoy_api.py`.
//!
//! Nothing is skipped: without Python or the package the tests fail (`make setup` installs
//! it, as .ci/run does; the Python is `python3`, or `$PYTHON`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What .ci/run and `make setup` install.
const PINNED: &str = "envoy-data-plane==2.2.0 betterproto2==0.9.1 pydantic==2.13.4 pyyaml==6.0.3";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the checker; panics when Python or the package is missing.
fn check(args: &[&str]) -> Output {
    let script = root().join("tests/envoy/check_envoy_api.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .current_dir(root())
        .output();
    let missing = match &out {
        Err(e) => Some(format!("cannot run {}: {e}", python())),
        Ok(o) if o.status.code() == Some(3) => Some(String::from_utf8_lossy(&o.stderr).into()),
        Ok(_) => None,
    };
    if let Some(why) = missing {
        panic!(
            "envoy.yaml cannot be checked against Envoy's v3 API: {why}\n\
             install it with `make setup` (python3 -m pip install {PINNED})"
        );
    }
    out.unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn shipped_envoy_files_are_valid_v3_api() {
    let o = check(&["envoy/envoy.yaml", "envoy/envoy-gateway.yaml"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("envoy/envoy.yaml: a valid v3 Bootstrap"), "{t}");
    assert!(t.contains("1 wasm filter"), "{t}");
    assert!(
        t.contains("envoy/envoy-gateway.yaml: 2 EnvoyPatchPolicy resources"),
        "{t}"
    );
}

#[test]
fn damaged_bootstraps_are_refused() {
    // The checker's own damaged copies: misspelled fields (top level, inside a typed_config,
    // inside the wasm filter), a string port, a bad duration, a bad enum, an unknown type URL,
    // a configuration that is not JSON.
    let o = check(&["--self-test", "envoy/envoy.yaml"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("8 damaged copies refused"), "{t}");
    assert!(
        t.contains("Unknown field 'stat_prefx' in message HttpConnectionManager"),
        "{t}"
    );

    // And a damaged file on disk fails the check itself (exit status 1).
    let good = std::fs::read_to_string(root().join("envoy/envoy.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("bouncer-envoy-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, from, to, says) in [
        (
            "misspelled.yaml",
            "connect_timeout: 1s",
            "connect_timout: 1s",
            "Unknown field 'connect_timout' in message Cluster",
        ),
        (
            "wrong-type.yaml",
            "port_value: 9901",
            "port_value: admin",
            "invalid literal for int()",
        ),
    ] {
        assert!(good.contains(from), "envoy.yaml has no '{from}'");
        let bad: &Path = &dir.join(name);
        std::fs::write(bad, good.replacen(from, to, 1)).unwrap();
        let o = check(&[bad.to_str().unwrap()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name} was not refused: {t}");
        assert!(t.contains(says), "{name}: {t}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
