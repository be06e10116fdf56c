//! Shared helpers: the compiled module, hosts at a fixed time, token signing, vectors.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bouncer_harness::{Filter, Harness, Host, Outcome, Profile, Request};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The fixed "now" of every test host.
pub const NOW: u64 = 1_800_000_000;
pub const SECRET: &str = "e2e-secret-0123456789abcdef";

/// The release module, compiled once per test binary.
pub fn module() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let path = bouncer_harness::bouncer_wasm_path();
        Harness::load(&path).unwrap_or_else(|e| {
            panic!("{e}: build it first with `make build` ({})", path.display())
        })
    })
}

pub const PROFILES: [Profile; 2] = [Profile::Envoy, Profile::Kong];

/// A host of this profile at [`NOW`], with the clusters the tests use (Envoy).
pub fn host(profile: Profile) -> Host {
    Host::new(profile)
        .at_unix(NOW)
        .with_clusters(&["authz", "idp", "idp2"])
}

/// A configured filter instance; panics with the filter's logs if the config is refused.
pub fn filter(host: &Host, config: &Value) -> Filter {
    module()
        .filter(host, &config.to_string())
        .unwrap_or_else(|e| panic!("config refused: {e}"))
}

pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"));
    assert!(
        dir.join("tokens.json").exists(),
        "test vectors missing: expected {} (tests/vectors)",
        dir.display()
    );
    dir
}

pub fn read_vector_file(rel: &str) -> String {
    std::fs::read_to_string(vectors_dir().join(rel)).unwrap()
}

/// A token of `tests/vectors/tokens.json` by name.
pub fn vector(name: &str) -> String {
    let doc: Value = serde_json::from_str(&read_vector_file("tokens.json")).unwrap();
    doc["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256/384/512 token over exactly this header and these claims.
pub fn sign_hmac(header: &Value, claims: &Value, secret: &str) -> String {
    let alg = header["alg"].as_str().unwrap_or("HS256");
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = match alg {
        "HS384" => {
            let mut m = Hmac::<sha2::Sha384>::new_from_slice(secret.as_bytes()).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        "HS512" => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(sig))
}

/// An HS256 token with [`SECRET`].
pub fn hs256(claims: Value) -> String {
    sign_hmac(&json!({"alg": "HS256", "typ": "JWT"}), &claims, SECRET)
}

/// Claims naming credential `key`, valid for ten minutes.
pub fn claims(key: &str) -> Value {
    json!({"iss": key, "sub": "user-17", "iat": NOW - 10, "exp": NOW + 600})
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn get(path: &str) -> Request {
    Request::new("GET", path)
}

/// A browser-like GET with a bearer token (the hot-path tests' request).
pub fn get_with_token(path: &str, token: &str) -> Request {
    get(path)
        .header("authorization", &bearer(token))
        .header("user-agent", "curl/8")
        .header("accept", "*/*")
}

pub fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The standard cast: a first-party web app, a partner kept to two routes with an API key,
/// a mobile app on RS256 (the vectors' key), and an anonymous consumer.
pub fn base_config() -> Value {
    json!({
        "consumers": [
            {"username": "web", "id": "id-web", "custom_id": "web-app", "groups": ["first-party"],
             "jwt_secrets": [{"key": "web-key", "algorithm": "HS256", "secret": SECRET}]},
            {"username": "partner", "groups": ["partners"],
             "jwt_secrets": [{"key": "partner-key", "algorithm": "HS256", "secret": SECRET}],
             "keyauth_credentials": [{"id": "partner-key-1", "key_sha256": hex_sha256("partner-api-key")}],
             "routes": [{"methods": ["GET"], "path": "/api/v1/orders(/[^/]+)?"},
                        {"methods": ["POST"], "path": "/api/v1/orders"}]},
            {"username": "mobile", "groups": ["first-party"],
             "jwt_secrets": [{"key": "bouncer-vectors", "algorithm": "RS256",
                              "rsa_public_key": read_vector_file("keys/rsa2048_public.pem")}]},
            {"username": "guest"}
        ]
    })
}

/// `base` with the top-level fields of `extra` set.
pub fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// Run a request; a trap fails the test with the module's message.
pub fn run(f: &mut Filter, req: Request) -> Outcome {
    f.run(req).unwrap_or_else(|e| panic!("{e}"))
}

/// What the upstream receives for `name`: absent, or (Kong) blanked to empty, is `None`.
pub fn upstream<'a>(out: &'a Outcome, name: &str) -> Option<&'a str> {
    assert!(out.is_allowed(), "request was not allowed: {out:?}");
    out.request_headers.get(name).filter(|v| !v.is_empty())
}

/// Assert a local response with this status and JSON body.
#[track_caller]
pub fn assert_response(out: &Outcome, status: u16, body: Value) {
    let r = out
        .local_response()
        .unwrap_or_else(|| panic!("expected a {status} response, got {out:?}"));
    assert_eq!(r.status, status, "{out:?}");
    assert_eq!(r.json(), body, "{out:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[track_caller]
pub fn assert_message(out: &Outcome, status: u16, message: &str) {
    assert_response(out, status, json!({ "message": message }));
}

/// The answer when the authorization service failed: `status` with the contract's message,
/// except in Kong after a callout the engine itself failed (timeout, refused or broken
/// connection), where the status goes out without a body: ngx_wasm_module 3bed278 loses a
/// local response's body after a timed-out callout and closes the connection (HOSTS.md).
#[track_caller]
pub fn assert_authz_unavailable(out: &Outcome, profile: Profile, failed: bool, status: u16) {
    if profile == Profile::Kong && failed {
        let r = out
            .local_response()
            .unwrap_or_else(|| panic!("expected a {status} response, got {out:?}"));
        assert_eq!(r.status, status, "{out:?}");
        assert!(r.body.is_empty(), "{out:?}");
        assert_eq!(r.header("content-type"), None, "{out:?}");
    } else {
        assert_message(out, status, "Authorization service unavailable");
    }
}

/// Whether a reply is a failure of the callout itself (no answer from the service).
pub fn engine_failure(reply: &bouncer_harness::CalloutReply, timeout: std::time::Duration) -> bool {
    use bouncer_harness::CalloutReply as R;
    match reply {
        R::Timeout | R::ConnectFailure | R::Failure(_) => true,
        R::Delayed(d, inner) => *d >= timeout || engine_failure(inner, timeout - *d),
        _ => false,
    }
}

/// Run each filter's tick: it hands the counters a worker buffers (allowed requests, cache
/// hits) to the host.
pub fn flush_metrics(filters: &mut [&mut Filter]) {
    for f in filters.iter_mut() {
        f.tick().unwrap_or_else(|e| panic!("{e}"));
    }
}
