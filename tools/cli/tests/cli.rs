//! The `bouncer` binary: `check`, `hash-key` and `token`, run as an operator runs them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bouncer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn stdin_bouncer(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A scratch file under the target directory.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bouncer-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    // Tests run in parallel and several write the same file: write a copy of one's own, then
    // rename it into place (atomic), so that no reader ever sees a half-written file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = dir.join(format!("{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

fn b64url_json(part: &str) -> serde_json::Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn check_accepts_the_shipped_configurations_with_a_summary() {
    let o = bouncer(&["check", "examples/gateway-config.json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ok\n"), "{out}");
    assert!(out.contains("consumers: 2\n"), "{out}");
    assert!(out.contains("jwt credentials: 2 (HS256 2)"), "{out}");
    assert!(out.contains("api keys: 1\n"), "{out}");
    assert!(out.contains("acl: allow first-party, partners"), "{out}");
    assert!(
        out.contains(
            "authorization callout: POST /v1/data/bouncer/rbac/result on 127.0.0.1:8181 (opa-envoy input"
        ),
        "{out}"
    );
    // A Kong declarative file: every bouncer filter of its filter chains.
    let o = bouncer(&["check", "kong/kong.yml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("ok: service 'orders-api' filter_chains 'bouncer' filters[0]\n"),
        "{}",
        stdout(&o)
    );
}

/// The errors are the filter's own, JSON path first, and exit 1; usage and I/O exit 2.
#[test]
fn check_reports_the_filters_error_with_its_path() {
    let cases = [
        (
            r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "RS256", "rsa_public_key": "nope"}]}]}"#,
            "consumers[0].jwt_secrets[0].rsa_public_key: not a PEM public key",
        ),
        (
            r#"{"consumers": [{"username": "a"}, {"username": "a"}]}"#,
            "consumers[1].username: duplicate username 'a'",
        ),
        (
            r#"{"acl": {"allow": ["x"], "deny": ["y"]}}"#,
            "acl: exactly one of allow and deny is required",
        ),
        (
            r#"{"key_names": ["apikey"], "claims_to_heders": []}"#,
            "unknown field `claims_to_heders`",
        ),
        (
            r#"{"anonymous": "ghost"}"#,
            "anonymous: no consumer with username 'ghost'",
        ),
        (r#"[1, 2]"#, "the configuration must be a JSON object"),
    ];
    for (i, (config, error)) in cases.iter().enumerate() {
        let p = scratch(&format!("bad-{i}.json"), config);
        let o = bouncer(&["check", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{config}");
        assert!(stdout(&o).is_empty());
        let err = stderr(&o);
        assert!(err.contains("invalid configuration: "), "{err}");
        assert!(err.contains(error), "{config}: {err}");
        // The same text the filter logs: the library call gives the same error.
        let lib = bouncer::config::Policy::from_json(config).unwrap_err();
        assert!(err.contains(&lib.to_string()), "{err} vs {lib}");
    }
    // A secret in a wrongly typed field is not echoed.
    let p = scratch(
        "typed.json",
        r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": 1234567}]}]}"#,
    );
    let o = bouncer(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("consumers[0].jwt_secrets[0].secret: invalid type"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("1234567"));
    // A Kong file with one bad filter config: exit 1, the chain named.
    let kong = scratch(
        "kong.yaml",
        "_format_version: \"3.0\"\nfilter_chains:\n  - name: edge\n    filters:\n      - name: bouncer\n        config: '{\"max_token_bytes\": 0}'\n",
    );
    let o = bouncer(&["check", kong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("filter_chains 'edge' filters[0]: invalid configuration: max_token_bytes: must be at least 1"),
        "{}",
        stderr(&o)
    );
    // Missing file, no argument, unknown subcommand: 2.
    assert_eq!(
        bouncer(&["check", "no/such/file.json"]).status.code(),
        Some(2)
    );
    assert_eq!(bouncer(&["check"]).status.code(), Some(2));
    assert_eq!(bouncer(&["frobnicate"]).status.code(), Some(2));
    let binary = scratch("binary.json", "");
    std::fs::write(&binary, [0xff, 0xfe, b'{']).unwrap();
    assert_eq!(
        bouncer(&["check", binary.to_str().unwrap()]).status.code(),
        Some(2)
    );
}

#[test]
fn hash_key_prints_the_key_sha256_the_config_expects() {
    // The demo configuration's key_sha256 is that of `acme-demo-api-key`.
    let expected = "7fd31805953be075aa7aa3fab27a554487e6bd11bc6f43881a45ef3b09f99395";
    for input in [
        &b"acme-demo-api-key"[..],
        b"acme-demo-api-key\n",
        b"acme-demo-api-key\r\n",
    ] {
        let o = stdin_bouncer(&["hash-key"], input);
        assert!(o.status.success());
        assert_eq!(stdout(&o), format!("{expected}\n"));
    }
    // Only one newline is dropped: a key ending in a newline keeps the other.
    let o = stdin_bouncer(&["hash-key"], b"acme-demo-api-key\n\n");
    assert_ne!(stdout(&o), format!("{expected}\n"));
    // sha256("abc"), FIPS 180-2.
    let o = stdin_bouncer(&["hash-key"], b"abc");
    assert_eq!(
        stdout(&o),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    let o = stdin_bouncer(&["hash-key"], b"\n");
    assert_eq!(o.status.code(), Some(1));
}

fn token_config() -> PathBuf {
    let key = |f: &str| std::fs::read_to_string(repo().join("tests/vectors/keys").join(f)).unwrap();
    let config = serde_json::json!({
        "key_claim_name": "kid",
        "consumers": [
            {"username": "web", "jwt_secrets": [
                {"key": "web-hs", "algorithm": "HS384", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "secret_is_base64": true},
                {"key": "web-rs", "algorithm": "PS256", "rsa_public_key": key("rsa2048_public.pem")}]},
            {"username": "device", "id": "dev-1", "jwt_secrets": [
                {"key": "dev-ec", "algorithm": "ES384", "public_key": key("ec_p384_public.pem")},
                {"key": "dev-ed", "algorithm": "EdDSA", "public_key": key("ed25519_public.pem")}]},
            {"username": "keys-only", "keyauth_credentials": [{"key_sha256": "7fd31805953be075aa7aa3fab27a554487e6bd11bc6f43881a45ef3b09f99395"}]}
        ]
    });
    scratch("token-config.json", &config.to_string())
}

#[test]
fn token_signs_what_the_filter_verifies() {
    let config = token_config();
    let config = config.to_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // HS384 with a base64 secret; the key claim is the configured one (`kid`).
    let o = bouncer(&[
        "token",
        "--config",
        config,
        "--consumer",
        "web",
        "--claims",
        r#"{"sub": "alice", "scope": ["a", "b"]}"#,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    let parts: Vec<&str> = t.trim().split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(b64url_json(parts[0])["alg"], "HS384");
    let claims = b64url_json(parts[1]);
    assert_eq!(claims["kid"], "web-hs");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], serde_json::json!(["a", "b"]));
    let exp = claims["exp"].as_i64().unwrap();
    assert!((exp - now - 3600).abs() < 60, "{claims}");
    // By algorithm, with a private key file; by id; --exp; null removes a claim.
    for (args, alg, key) in [
        (
            vec![
                "--consumer",
                "web",
                "--alg",
                "PS256",
                "--key-file",
                "tests/vectors/keys/rsa2048_private.pem",
            ],
            "PS256",
            "web-rs",
        ),
        (
            vec![
                "--consumer",
                "dev-1",
                "--key-file",
                "tests/vectors/keys/ec_p384_private.pem",
            ],
            "ES384",
            "dev-ec",
        ),
        (
            vec![
                "--consumer",
                "device",
                "--credential",
                "dev-ed",
                "--key-file",
                "tests/vectors/keys/ed25519_private.pem",
                "--exp",
                "-60",
                "--claims",
                r#"{"iat": null}"#,
            ],
            "EdDSA",
            "dev-ed",
        ),
    ] {
        let mut all = vec!["token", "--config", config];
        all.extend(args);
        let o = bouncer(&all);
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let t = stdout(&o);
        let parts: Vec<&str> = t.trim().split('.').collect();
        assert_eq!(b64url_json(parts[0])["alg"], alg);
        let claims = b64url_json(parts[1]);
        assert_eq!(claims["kid"], key);
        if alg == "EdDSA" {
            assert!((claims["exp"].as_i64().unwrap() - now + 60).abs() < 60);
            assert!(claims.get("iat").is_none(), "{claims}");
        }
    }
}

#[test]
fn token_refuses_what_would_not_verify() {
    let config = token_config();
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["token", "--config", config];
        all.extend(args);
        bouncer(&all)
    };
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["--consumer", "ghost"],
            1,
            "no consumer 'ghost' (consumers: web, device, keys-only)",
        ),
        (
            &["--consumer", "keys-only"],
            1,
            "consumer 'keys-only' has no jwt_secrets",
        ),
        (
            &["--consumer", "web", "--alg", "RS256"],
            1,
            "has no such credential (it has: web-hs (HS384), web-rs (PS256))",
        ),
        (
            &["--consumer", "web", "--alg", "PS256"],
            2,
            "give its private key with --key-file PEM",
        ),
        // The P-256 key is not the consumer's P-384 key.
        (
            &[
                "--consumer",
                "device",
                "--key-file",
                "tests/vectors/keys/ec_p256_private.pem",
            ],
            1,
            "does not fit ES384",
        ),
        // An RSA key that is not the configured one: signed, then refused by the filter's key.
        (
            &[
                "--consumer",
                "web",
                "--alg",
                "PS256",
                "--key-file",
                "tests/vectors/keys/rsa2048_public.pem",
            ],
            1,
            "PUBLIC KEY",
        ),
        (
            &["--consumer", "web", "--claims", "[1]"],
            2,
            "--claims: must be a JSON object",
        ),
    ];
    for (args, code, msg) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    // A private key of the right kind that is not the consumer's: signed, then refused
    // because the configured public key does not verify it.
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    use base64::Engine as _;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
    let other = scratch("other-ed25519.pem", &pem);
    let o = run(&[
        "--consumer",
        "device",
        "--alg",
        "EdDSA",
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not verify with credential 'dev-ed' of the configuration"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}
