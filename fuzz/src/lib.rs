//! Shared set-up for the fuzz targets: policies built from the public vectors (compiled in,
//! so a missing `tests/vectors` fails the build, not the run) and the contract oracle
//! (CONTRACT.md section 2) that turns a wrong answer into a crash libFuzzer reports.

use bouncer::access::ambiguous_path;
use bouncer::config::{canonical_header, Policy};
use bouncer::credentials;
use bouncer::engine::{evaluate, Allowed, Env, Outcome, RemoteKeys, RequestView, Signals};
use bouncer::jwks::KeySet;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

pub const NOW: f64 = 1_800_000_000.0;
pub const SECRET: &str = "fuzz-secret-0123456789abcdef";

macro_rules! vector {
    ($rel:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/",
            $rel
        ))
    };
}

pub const TOKENS_JSON: &str = vector!("tokens.json");
const HMAC_SECRET: &str = vector!("keys/hmac_secret.txt");
const RSA_JWK: &str = vector!("keys/rsa2048_public.jwk.json");
const P256_JWK: &str = vector!("keys/ec_p256_public.jwk.json");
const P384_JWK: &str = vector!("keys/ec_p384_public.jwk.json");
const ED25519_JWK: &str = vector!("keys/ed25519_public.jwk.json");
const RSA_PEM: &str = vector!("keys/rsa2048_public.pem");

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).expect("vector JWK is JSON")
}

fn sha256_hex(s: &str) -> String {
    bouncer_crypto::sha256(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The configurations the request-level targets run against.
pub fn configs() -> Vec<Value> {
    let consumers = json!([
        {"username": "v", "id": "id-v", "custom_id": "vec", "groups": ["first-party"],
         "jwt_secrets": [
            {"key": "bouncer-vectors", "algorithm": "HS256", "secret": HMAC_SECRET.trim()},
            {"key": "rsa-key", "algorithm": "RS256", "rsa_public_key": RSA_PEM},
            {"key": "fuzz-key", "algorithm": "HS256", "secret": SECRET}],
         "keyauth_credentials": [{"id": "k1", "key_sha256": sha256_hex("fuzz-api-key")}]},
        {"username": "partner", "groups": ["partners"],
         "jwt_secrets": [{"key": "partner-key", "algorithm": "HS512", "secret": SECRET}],
         "routes": [{"methods": ["GET"], "path": "/api/v1/orders(/[^/]+)?"}]},
        {"username": "anon"}
    ]);
    let jwks = json!({"keys": [jwk(RSA_JWK), jwk(P256_JWK), jwk(P384_JWK), jwk(ED25519_JWK),
        {"kty": "oct", "kid": "oct-1", "k": "ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"}]});
    vec![
        json!({
            "claims_to_verify": ["exp", "nbf"],
            "cookie_names": ["jwt-token"],
            "consumers": consumers,
        }),
        json!({
            "claims_to_verify": ["exp", "nbf"],
            "cookie_names": ["jwt-token"],
            "consumers": consumers,
            "realm": "api",
            "anonymous": "anon",
            "run_on_preflight": false,
            "hide_credentials": true,
            "audiences": ["api"],
            "maximum_expiration": 86400,
            "acl": {"deny": ["banned"]},
            "jwks_providers": [
                {"issuer": "https://idp.example", "consumer": "v", "jwks": jwks},
                {"issuer": "https://remote.example", "consumer": "partner",
                 "upstream": "idp", "path": "/jwks"}],
            "authz": {"upstream": "authz", "path": "/allow", "allowed_headers": ["x-allowed"]},
            "claims_to_headers": [{"claim": "sub", "header": "x-user-id"}],
            "forward_payload_header": "x-jwt-payload",
            "revocations": {"jti": ["revoked"], "subjects_issued_before": {"old": 1_790_000_000}}
        }),
        // A self-signed partner (its own secret): its claims grant and prove nothing.
        json!({
            "consumers": [
                {"username": "own", "groups": ["first-party"],
                 "jwt_secrets": [{"key": "fuzz-key", "algorithm": "HS256", "secret": SECRET}]},
                {"username": "partner", "self_signed": true, "groups": ["partners"],
                 "jwt_secrets": [{"key": "partner-key", "algorithm": "HS512", "secret": SECRET}],
                 "keyauth_credentials": [{"id": "k1", "key_sha256": sha256_hex("fuzz-api-key")}]}
            ],
            "uri_param_names": ["jwt", "token"],
            "key_names": ["apikey", "x-api-key"],
            "permissions": {"view": [{"methods": ["GET"], "path": "/api/.*"}],
                            "admin": [{"methods": ["*"], "path": "/.*"}]},
            "authz": {"upstream": "authz", "path": "/allow", "skip_groups": ["first-party"]},
            "claims_to_headers": [{"claim": "sub", "header": "x-user-id"}]
        }),
        json!({
            "key_claim_name": "kid",
            "claims_to_verify": [],
            "consumers": consumers,
            "permissions": {"view": [{"methods": ["GET"], "path": "/api/.*"}]},
            "authz": {"skip_groups": ["first-party"]},
            "max_token_bytes": 1024,
            "jwks_providers": [{"issuer": "bouncer-vectors", "consumer": "v", "jwks": jwks}]
        }),
    ]
}

pub fn policies() -> &'static [Policy] {
    static P: OnceLock<Vec<Policy>> = OnceLock::new();
    P.get_or_init(|| {
        configs()
            .iter()
            .map(|c| Policy::from_json(&c.to_string()).expect("fuzz config compiles"))
            .collect()
    })
}

/// Remote keys in a fixed state (0 loaded, 1 pending, 2 unavailable).
pub struct Keys(pub u8);

impl Env for Keys {
    fn keys(&self, _provider: usize) -> RemoteKeys {
        static S: OnceLock<Arc<KeySet>> = OnceLock::new();
        match self.0 % 3 {
            0 => RemoteKeys::Loaded(Arc::clone(S.get_or_init(|| {
                let body = json!({"keys": [jwk(P256_JWK),
                    {"kty": "oct", "k": "ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"}]});
                Arc::new(KeySet::parse_body(body.to_string().as_bytes()).expect("key set"))
            }))),
            1 => RemoteKeys::Pending,
            _ => RemoteKeys::Unavailable,
        }
    }
}

fn has_control(v: &str) -> bool {
    v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// The reserved name a client header counts as (CONTRACT.md section 3: case ignored, every
/// `_` read as `-`), if any.
fn reserved_as(p: &Policy, name: &str) -> Option<String> {
    let c = canonical_header(name);
    p.reserved.contains(&c).then_some(c)
}

/// The names of the path-parameter and credential query parameters (percent-decoded).
fn credential_params(p: &Policy) -> Vec<String> {
    p.uri_param_names
        .iter()
        .chain(p.key_names.iter())
        .cloned()
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_allowed(p: &Policy, headers: &[(String, String)], a: &Allowed<'_>) {
    for (n, v) in &a.edits.set {
        assert!(
            p.reserved.iter().any(|r| r == n) || n == "cookie",
            "sets unreserved header {n}"
        );
        if n != "cookie" {
            assert!(!has_control(v), "control character in {n}: {v:?}");
        }
    }
    for (n, _) in headers {
        if reserved_as(p, n).is_some() {
            assert!(
                a.edits.clear.iter().any(|c| c == n) || a.edits.set.iter().any(|(s, _)| s == n),
                "reserved header {n} not cleared"
            );
        }
    }
}

/// A path-based decision was needed for this consumer (route rules, local permissions or
/// the callout): then an ambiguous path can never get through (CONTRACT.md section 2).
fn path_decision_needed(p: &Policy, username: &str) -> bool {
    let Some(c) = p.consumers.iter().find(|c| c.username == username) else {
        return false;
    };
    let skip = c.in_any(&p.skip_groups);
    c.routes.is_restricted() || (!skip && (p.permissions.is_some() || p.authz.is_some()))
}

/// A self-signed consumer got past local permissions (its permissions claim grants nothing,
/// so only `skip_groups` could let it through).
fn self_signed_granted(p: &Policy, username: &str) -> bool {
    p.consumers.iter().any(|c| {
        c.username == username
            && c.self_signed
            && p.permissions.is_some()
            && !c.in_any(&p.skip_groups)
    })
}

fn path_of(headers: &[(String, String)]) -> &str {
    headers
        .iter()
        .find(|(k, _)| k == ":path")
        .map_or("", |(_, v)| v.as_str())
}

/// Panics unless `o` is an answer the contract allows for this request.
pub fn check_outcome(p: &Policy, headers: &[(String, String)], o: &Outcome<'_>) {
    // Header names are case-insensitive (Kong passes them as the client wrote them).
    let lowered: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let headers = &lowered[..];
    // The first header (request order) whose reserved header comes more than once, in any
    // spelling.
    let dup = headers.iter().find_map(|(n, _)| {
        let r = reserved_as(p, n)?;
        (headers
            .iter()
            .filter(|(m, _)| reserved_as(p, m).as_deref() == Some(r.as_str()))
            .count()
            > 1)
        .then_some(r)
    });
    let dup = dup.as_ref();
    let (path_only, _) = path_of(headers)
        .split_once('?')
        .unwrap_or((path_of(headers), ""));
    let ambiguous = ambiguous_path(path_only);
    match o {
        Outcome::Allow(a) => {
            assert!(dup.is_none(), "duplicate reserved header allowed");
            check_allowed(p, headers, a);
            if let Some(u) = &a.consumer {
                assert!(
                    !self_signed_granted(p, u),
                    "self-signed {u} granted by its claim"
                );
                assert!(
                    !(ambiguous && path_decision_needed(p, u)),
                    "ambiguous path {path_only:?} allowed for {u}"
                );
            }
        }
        Outcome::Callout(c) => {
            assert!(dup.is_none() && p.authz.is_some());
            if let Some(u) = &c.allowed.consumer {
                assert!(
                    !self_signed_granted(p, u),
                    "self-signed {u} granted by its claim"
                );
            }
            assert!(
                !ambiguous,
                "ambiguous path {path_only:?} sent to the callout"
            );
            check_allowed(p, headers, &c.allowed);
            let body: Value = serde_json::from_str(&c.body).expect("callout body is JSON");
            let input = &body["input"];
            assert_eq!(input["path"].as_str(), Some(path_only), "{body}");
            let query = input["query"].as_str().expect("query is a string");
            for part in query.split('&').filter(|q| !q.is_empty()) {
                let name = percent_decode(part.split('=').next().unwrap_or(""));
                assert!(
                    !credential_params(p).contains(&name),
                    "credential parameter {name:?} sent to the callout: {query:?}"
                );
            }
        }
        Outcome::WaitForKeys(i) => assert!(*i < p.providers.len()),
        Outcome::Deny(d) => {
            let body: Value = serde_json::from_str(&d.body).expect("body is JSON");
            let msg = body.get("message").and_then(Value::as_str);
            if let Some(name) = dup {
                assert_eq!(d.status, 400, "{d:?}");
                assert_eq!(msg, Some(format!("Duplicate header '{name}'").as_str()));
                return;
            }
            match d.status {
                401 => {
                    assert!(p.anonymous.is_none(), "401 with anonymous: {d:?}");
                    let realm = p.realm.as_ref().map(|r| format!("realm=\"{r}\""));
                    let www = d
                        .www_authenticate
                        .as_deref()
                        .expect("401 has WWW-Authenticate");
                    let forms = match &realm {
                        None => [
                            "Bearer".to_owned(),
                            "Bearer error=\"invalid_token\"".to_owned(),
                            "Key".to_owned(),
                        ],
                        Some(r) => [
                            format!("Bearer {r}"),
                            format!("Bearer {r}, error=\"invalid_token\""),
                            format!("Key {r}"),
                        ],
                    };
                    assert!(forms.iter().any(|f| f == www), "bad challenge {www}");
                    let k = &p.key_claim_name;
                    let known = [
                        "Unauthorized".to_owned(),
                        "Multiple tokens provided".to_owned(),
                        "Bad token; invalid JSON".to_owned(),
                        "Bad token; invalid alg".to_owned(),
                        "Bad token; too large".to_owned(),
                        format!("No mandatory '{k}' in claims"),
                        format!("Invalid '{k}' in claims"),
                        format!("No credentials found for given '{k}'"),
                        "No credentials found for given 'kid'".to_owned(),
                        "Invalid algorithm".to_owned(),
                        "Invalid signature".to_owned(),
                        "Token revoked".to_owned(),
                        "Duplicate API key found".to_owned(),
                    ];
                    match msg {
                        Some(m) => assert!(known.iter().any(|k| k == m), "unknown 401 {m}"),
                        None => {
                            let map = body.as_object().expect("object body");
                            assert!(!map.is_empty());
                            for (k, v) in map {
                                assert!(["exp", "nbf", "aud"].contains(&k.as_str()), "{d:?}");
                                assert!(v.is_string(), "{d:?}");
                            }
                            assert_eq!(www, forms[1], "claims failure challenge");
                        }
                    }
                }
                403 => assert_eq!(msg, Some("You cannot consume this service")),
                503 => assert_eq!(msg, Some("Signing keys unavailable")),
                // hide_credentials: a header that carried a credential is repeated.
                400 => {
                    assert!(p.hide_credentials, "{d:?}");
                    let name = msg
                        .and_then(|m| m.strip_prefix("Duplicate header '"))
                        .and_then(|m| m.strip_suffix('\''))
                        .expect("a duplicate header message");
                    let n = headers.iter().filter(|(k, _)| k == name).count();
                    assert!(n > 1, "{d:?}");
                }
                s => panic!("status {s} is not in the contract: {d:?}"),
            }
            if d.status != 401 {
                assert!(d.www_authenticate.is_none());
            }
        }
    }
}

/// Evaluate a request against a policy and check the answer.
pub fn run(p: &Policy, headers: &[(String, String)], keys: u8) -> Outcome<'static> {
    let mut signals = Signals::default();
    let o = evaluate(
        p,
        &RequestView::from_headers(&bouncer::engine::header_refs(headers)),
        NOW,
        &Keys(keys),
        &mut signals,
    )
    .into_owned();
    check_outcome(p, headers, &o);
    // Hidden credentials are gone from the rewritten path.
    if let Outcome::Allow(a) = &o {
        if let (Some(path), true) = (&a.edits.path, a.consumer.is_some()) {
            let left = credentials::extract(p, &[], path);
            assert!(left.tokens.is_empty() && left.api_keys.is_empty());
        }
    }
    o
}

/// A GET request with the given extra headers.
pub fn request(path: &str, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut h = vec![
        (":method".to_owned(), "GET".to_owned()),
        (":path".to_owned(), path.to_owned()),
    ];
    h.extend(extra);
    h
}
