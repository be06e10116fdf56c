//! The contract's response table (CONTRACT.md section 2) and upstream headers (section 3),
//! row by row, through the pure pipeline. Tokens come from tests/vectors (PyJWT) where
//! they exist, and are signed here with HS256 otherwise.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use std::path::PathBuf;

const NOW: f64 = 1_800_000_000.0;
const SECRET: &str = "test-secret-0123456789";

pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"));
    assert!(
        dir.join("tokens.json").exists(),
        "test vectors missing: expected {} (tests/vectors, made by tests/vectors/gen_vectors.py)",
        dir.display()
    );
    dir
}

fn read_key(rel: &str) -> String {
    std::fs::read_to_string(vectors_dir().join(rel)).unwrap()
}

pub fn sign_hs256(header: &Value, claims: &Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}

fn hs(claims: Value) -> String {
    sign_hs256(&json!({"alg": "HS256", "typ": "JWT"}), &claims, SECRET)
}

fn base_config() -> Value {
    json!({
        "consumers": [
            {"username": "web", "id": "id-web", "custom_id": "web-app", "groups": ["first-party", "staff"],
             "jwt_secrets": [{"key": "web-key", "algorithm": "HS256", "secret": SECRET}]},
            {"username": "partner", "groups": ["partners"],
             "jwt_secrets": [{"key": "partner-key", "algorithm": "HS256", "secret": SECRET}],
             "keyauth_credentials": [{"id": "partner-key-1", "key_sha256": hex_sha256("partner-api-key")}],
             "routes": [{"methods": ["GET"], "path": "/api/v1/orders(/[^/]+)?"}]},
            {"username": "anon"}
        ]
    })
}

fn hex_sha256(s: &str) -> String {
    bouncer_crypto::sha256(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn policy(cfg: Value) -> Policy {
    Policy::from_json(&cfg.to_string()).unwrap()
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn headers(method: &str, path: &str, hs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        (":method".to_owned(), method.to_owned()),
        (":path".to_owned(), path.to_owned()),
        (":authority".to_owned(), "example.com".to_owned()),
        (":scheme".to_owned(), "https".to_owned()),
    ];
    v.extend(hs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

fn run(p: &Policy, method: &str, path: &str, hs: &[(&str, &str)]) -> Outcome<'static> {
    let h = headers(method, path, hs);
    evaluate(
        p,
        &RequestView::from_headers(&header_refs(&h)),
        NOW,
        &NoRemoteKeys,
        &mut Signals::default(),
    )
    .into_owned()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[track_caller]
fn denied<'o>(o: &'o Outcome<'_>) -> &'o Denial {
    match o {
        Outcome::Deny(d) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[track_caller]
fn allowed<'o, 'a>(o: &'o Outcome<'a>) -> &'o Allowed<'a> {
    match o {
        Outcome::Allow(a) => a,
        other => panic!("expected allow, got {other:?}"),
    }
}

#[track_caller]
fn assert_deny(o: &Outcome, status: u16, message: &str, www: Option<&str>) {
    let d = denied(o);
    assert_eq!(d.status, status, "{d:?}");
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body, json!({ "message": message }), "{d:?}");
    assert_eq!(d.www_authenticate.as_deref(), www, "{d:?}");
}

fn set_header<'a>(a: &'a Allowed<'_>, name: &str) -> Option<&'a str> {
    a.edits
        .set
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_ref())
}

fn good_claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "user-17", "exp": NOW + 600.0, "iat": NOW - 10.0})
}

const INVALID: Option<&str> = Some("Bearer error=\"invalid_token\"");

// ---- Row: no credential ----

#[test]
fn no_credential_is_401_unauthorized_bearer() {
    let p = policy(base_config());
    assert_deny(
        &run(&p, "GET", "/x", &[]),
        401,
        "Unauthorized",
        Some("Bearer"),
    );
    // A value that is not Bearer <non-empty> is no credential.
    for v in ["Basic abc", "Bearer", "Bearer   ", "token"] {
        assert_deny(
            &run(&p, "GET", "/x", &[("authorization", v)]),
            401,
            "Unauthorized",
            Some("Bearer"),
        );
    }
}

#[test]
fn realm_in_www_authenticate() {
    let p = policy(with(base_config(), json!({"realm": "api"})));
    assert_deny(
        &run(&p, "GET", "/x", &[]),
        401,
        "Unauthorized",
        Some("Bearer realm=\"api\""),
    );
    assert_deny(
        &run(&p, "GET", "/x", &[("authorization", "Bearer a.b")]),
        401,
        "Bad token; invalid JSON",
        Some("Bearer realm=\"api\", error=\"invalid_token\""),
    );
    assert_deny(
        &run(&p, "GET", "/x", &[("apikey", "nope")]),
        401,
        "Unauthorized",
        Some("Key realm=\"api\""),
    );
}

// ---- Row: multiple tokens ----

#[test]
fn two_different_tokens_or_token_and_key() {
    let p = policy(with(base_config(), json!({"cookie_names": ["jwt-token"]})));
    let a = hs(good_claims("web-key"));
    let b = hs(good_claims("partner-key"));
    let o = run(
        &p,
        "GET",
        &format!("/x?jwt={b}"),
        &[("authorization", &bearer(&a))],
    );
    assert_deny(&o, 401, "Multiple tokens provided", INVALID);
    let cookie = format!("jwt-token={b}");
    let o = run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&a)), ("cookie", &cookie)],
    );
    assert_deny(&o, 401, "Multiple tokens provided", INVALID);
    let o = run(
        &p,
        "GET",
        "/x",
        &[
            ("authorization", &bearer(&a)),
            ("apikey", "partner-api-key"),
        ],
    );
    assert_deny(&o, 401, "Multiple tokens provided", INVALID);
    // The same token twice counts once.
    let o = run(
        &p,
        "GET",
        &format!("/x?jwt={a}"),
        &[("authorization", &bearer(&a))],
    );
    allowed(&o);
}

// ---- Rows: parsing, alg, size ----

#[test]
fn bad_tokens() {
    let p = policy(base_config());
    for t in ["a.b", "a.b.c.d", "!!!.e30.", "e30=.e30.", "bm90anNvbg.e30."] {
        assert_deny(
            &run(&p, "GET", "/", &[("authorization", &bearer(t))]),
            401,
            "Bad token; invalid JSON",
            INVALID,
        );
    }
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(good_claims("web-key").to_string())
    );
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&none))]),
        401,
        "Bad token; invalid alg",
        INVALID,
    );
}

#[test]
fn too_large_token() {
    let p = policy(with(base_config(), json!({"max_token_bytes": 200})));
    let mut claims = good_claims("web-key");
    claims["pad"] = json!("");
    let base_len = hs(claims.clone()).len();
    // Grow the token to exactly 200 bytes (base64 grows by 4 per 3 bytes, so search).
    let mut exact = None;
    for n in 0..200 {
        claims["pad"] = json!("x".repeat(n));
        let t = hs(claims.clone());
        if t.len() == 200 {
            exact = Some(t);
            break;
        }
        if t.len() > 200 {
            break;
        }
    }
    assert!(base_len < 200);
    if let Some(t) = exact {
        allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))]));
    }
    claims["pad"] = json!("x".repeat(300));
    let big = hs(claims);
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&big))]),
        401,
        "Bad token; too large",
        INVALID,
    );
    // Size comes before parsing.
    let junk = "x".repeat(201);
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&junk))]),
        401,
        "Bad token; too large",
        INVALID,
    );
}

// ---- Rows: key claim ----

#[test]
fn key_claim_rows() {
    let p = policy(base_config());
    let t = hs(json!({"sub": "x", "exp": NOW + 60.0}));
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "No mandatory 'iss' in claims",
        INVALID,
    );
    let t = hs(json!({"iss": null, "exp": NOW + 60.0}));
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "No mandatory 'iss' in claims",
        INVALID,
    );
    for bad in [json!(5), json!(""), json!(["web-key"]), json!({"a": 1})] {
        let t = hs(json!({"iss": bad, "exp": NOW + 60.0}));
        assert_deny(
            &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
            401,
            "Invalid 'iss' in claims",
            INVALID,
        );
    }
    let t = hs(good_claims("nobody"));
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "No credentials found for given 'iss'",
        INVALID,
    );
}

#[test]
fn key_claim_from_header_kid() {
    let p = policy(with(base_config(), json!({"key_claim_name": "kid"})));
    let t = sign_hs256(
        &json!({"alg": "HS256", "kid": "web-key"}),
        &json!({"exp": NOW + 60.0}),
        SECRET,
    );
    let a = allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))])).clone();
    assert_eq!(set_header(&a, "x-credential-identifier"), Some("web-key"));
    let t = hs(json!({"exp": NOW + 60.0}));
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "No mandatory 'kid' in claims",
        INVALID,
    );
    // A key claim present in the claims is used whatever its value.
    let t = sign_hs256(
        &json!({"alg": "HS256", "kid": "web-key"}),
        &json!({"kid": 7, "exp": NOW + 60.0}),
        SECRET,
    );
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "Invalid 'kid' in claims",
        INVALID,
    );
}

// ---- Rows: algorithm, signature ----

#[test]
fn algorithm_and_signature() {
    let p = policy(base_config());
    let t = sign_hs256(&json!({"alg": "HS512"}), &good_claims("web-key"), SECRET);
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "Invalid algorithm",
        INVALID,
    );
    let t = sign_hs256(
        &json!({"alg": "HS256"}),
        &good_claims("web-key"),
        "wrong-secret",
    );
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        401,
        "Invalid signature",
        INVALID,
    );
}

// ---- Rows: claims ----

#[test]
fn claim_failures_are_a_map() {
    let p = policy(with(
        base_config(),
        json!({"claims_to_verify": ["exp", "nbf"], "audiences": ["api"]}),
    ));
    let t = hs(json!({"iss": "web-key", "exp": NOW - 1.0, "nbf": NOW + 100.0}));
    let o = run(&p, "GET", "/", &[("authorization", &bearer(&t))]);
    let d = denied(&o);
    assert_eq!(d.status, 401);
    assert_eq!(d.www_authenticate.as_deref(), INVALID);
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(
        body,
        json!({"exp": "token expired", "nbf": "token not valid yet", "aud": "audience not allowed"})
    );
    let t = hs(json!({"iss": "web-key", "exp": "soon", "aud": "api"}));
    let d = denied(&run(&p, "GET", "/", &[("authorization", &bearer(&t))])).clone();
    assert_eq!(
        serde_json::from_str::<Value>(&d.body).unwrap(),
        json!({"exp": "must be a number"})
    );
    let t = hs(json!({"iss": "web-key", "exp": NOW + 10.0, "aud": ["x", "api"]}));
    allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))]));
}

#[test]
fn maximum_expiration_and_fractional_exp() {
    let p = policy(with(base_config(), json!({"maximum_expiration": 3600})));
    let t = hs(json!({"iss": "web-key", "exp": NOW + 7200.0}));
    let d = denied(&run(&p, "GET", "/", &[("authorization", &bearer(&t))])).clone();
    assert_eq!(
        serde_json::from_str::<Value>(&d.body).unwrap(),
        json!({"exp": "exceeds maximum allowed expiration"})
    );
    let t = hs(json!({"iss": "web-key", "exp": NOW + 0.5}));
    allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))]));
}

#[test]
fn exp_not_verified_when_told() {
    let p = policy(with(base_config(), json!({"claims_to_verify": []})));
    let t = hs(json!({"iss": "web-key"}));
    allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))]));
}

// ---- Row: revocation ----

#[test]
fn revocations() {
    let mut cfg = with(
        base_config(),
        json!({"revocations": {"jti": ["bad-jti"], "subjects_issued_before": {"user-9": NOW - 100.0}}}),
    );
    cfg["consumers"][1]["issued_before"] = json!(NOW - 50.0);
    let p = policy(cfg);
    let run_t = |claims: Value| run(&p, "GET", "/", &[("authorization", &bearer(&hs(claims)))]);
    assert_deny(
        &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "jti": "bad-jti"})),
        401,
        "Token revoked",
        INVALID,
    );
    assert_deny(
        &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "sub": "user-9", "iat": NOW - 200.0})),
        401,
        "Token revoked",
        INVALID,
    );
    assert_deny(
        &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "sub": "user-9"})),
        401,
        "Token revoked",
        INVALID,
    );
    allowed(&run_t(
        json!({"iss": "web-key", "exp": NOW + 60.0, "sub": "user-9", "iat": NOW - 10.0}),
    ));
    // Consumer-wide issued_before.
    assert_deny(
        &run_t(json!({"iss": "partner-key", "exp": NOW + 60.0, "iat": NOW - 60.0})),
        401,
        "Token revoked",
        INVALID,
    );
    assert_deny(
        &run_t(json!({"iss": "partner-key", "exp": NOW + 60.0})),
        401,
        "Token revoked",
        INVALID,
    );
}

// ---- Rows: API keys ----

#[test]
fn api_keys() {
    let p = policy(base_config());
    let a = allowed(&run(
        &p,
        "GET",
        "/api/v1/orders",
        &[("apikey", "partner-api-key")],
    ))
    .clone();
    assert_eq!(set_header(&a, "x-consumer-username"), Some("partner"));
    assert_eq!(
        set_header(&a, "x-credential-identifier"),
        Some("partner-key-1")
    );
    let a = allowed(&run(
        &p,
        "GET",
        "/api/v1/orders?apikey=partner-api-key",
        &[],
    ))
    .clone();
    assert_eq!(set_header(&a, "x-consumer-id"), Some("partner"));
    assert_deny(
        &run(&p, "GET", "/", &[("apikey", "wrong")]),
        401,
        "Unauthorized",
        Some("Key"),
    );
    assert_deny(
        &run(
            &p,
            "GET",
            "/?apikey=other",
            &[("apikey", "partner-api-key")],
        ),
        401,
        "Duplicate API key found",
        Some("Key"),
    );
    // Same key twice counts once.
    allowed(&run(
        &p,
        "GET",
        "/api/v1/orders?apikey=partner-api-key",
        &[("apikey", "partner-api-key")],
    ));
}

// ---- Row: 503 for a provider that never loaded ----

#[test]
fn remote_provider_without_keys_is_503() {
    let cfg = with(
        base_config(),
        json!({"jwks_providers": [{"issuer": "https://idp", "consumer": "web", "upstream": "idp", "path": "/jwks"}]}),
    );
    let p = policy(cfg);
    let t = hs(json!({"iss": "https://idp", "exp": NOW + 60.0}));
    assert_deny(
        &run(&p, "GET", "/", &[("authorization", &bearer(&t))]),
        503,
        "Signing keys unavailable",
        None,
    );
}

// ---- Row: 403 ----

#[test]
fn acl_allow_and_deny() {
    let p = policy(with(
        base_config(),
        json!({"acl": {"allow": ["first-party"]}}),
    ));
    allowed(&run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&hs(good_claims("web-key"))))],
    ));
    assert_deny(
        &run(
            &p,
            "GET",
            "/api/v1/orders",
            &[("authorization", &bearer(&hs(good_claims("partner-key"))))],
        ),
        403,
        "You cannot consume this service",
        None,
    );
    let p = policy(with(base_config(), json!({"acl": {"deny": ["partners"]}})));
    allowed(&run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&hs(good_claims("web-key"))))],
    ));
    assert_deny(
        &run(
            &p,
            "GET",
            "/api/v1/orders",
            &[("apikey", "partner-api-key")],
        ),
        403,
        "You cannot consume this service",
        None,
    );
}

#[test]
fn routes_per_consumer_and_group() {
    let cfg = with(
        base_config(),
        json!({"group_routes": {"partners": [{"methods": ["POST"], "path": "/api/v1/orders"}]}}),
    );
    let p = policy(cfg);
    let t = bearer(&hs(good_claims("partner-key")));
    allowed(&run(
        &p,
        "GET",
        "/api/v1/orders/42?x=1",
        &[("authorization", &t)],
    ));
    allowed(&run(&p, "POST", "/api/v1/orders", &[("authorization", &t)]));
    assert_deny(
        &run(&p, "DELETE", "/api/v1/orders/42", &[("authorization", &t)]),
        403,
        "You cannot consume this service",
        None,
    );
    assert_deny(
        &run(
            &p,
            "GET",
            "/api/v1/orders/42/items",
            &[("authorization", &t)],
        ),
        403,
        "You cannot consume this service",
        None,
    );
    // A consumer with no routes is unrestricted.
    allowed(&run(
        &p,
        "DELETE",
        "/anything",
        &[("authorization", &bearer(&hs(good_claims("web-key"))))],
    ));
}

#[test]
fn local_permissions() {
    let cfg = with(
        base_config(),
        json!({
            "permissions": {"view_roles": [{"methods": ["GET"], "path": "/api/v1/roles(/[^/?#]+)?"}]},
            "authz": {"skip_groups": ["first-party"]}
        }),
    );
    let p = policy(cfg);
    let mut c = good_claims("partner-key");
    c["permissions"] = json!(["view_roles"]);
    // The partner's own routes still apply; use a route-free consumer by dropping them.
    let mut cfg2 = with(
        base_config(),
        json!({"permissions": {"view_roles": [{"methods": ["GET"], "path": "/api/v1/roles(/[^/?#]+)?"}]}, "authz": {"skip_groups": ["first-party"]}}),
    );
    cfg2["consumers"][1]["routes"] = json!([]);
    let p2 = policy(cfg2);
    let t = bearer(&hs(c.clone()));
    allowed(&run(
        &p2,
        "GET",
        "/api/v1/roles/7",
        &[("authorization", &t)],
    ));
    assert_deny(
        &run(&p2, "POST", "/api/v1/roles/7", &[("authorization", &t)]),
        403,
        "You cannot consume this service",
        None,
    );
    // No claim: denied; skip group: allowed.
    assert_deny(
        &run(
            &p2,
            "GET",
            "/api/v1/roles",
            &[("apikey", "partner-api-key")],
        ),
        403,
        "You cannot consume this service",
        None,
    );
    allowed(&run(
        &p,
        "DELETE",
        "/x",
        &[("authorization", &bearer(&hs(good_claims("web-key"))))],
    ));
}

// ---- Row: duplicate reserved header ----

#[test]
fn duplicate_reserved_header_is_400() {
    let p = policy(with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "sub", "header": "x-user"}]}),
    ));
    let o = run(
        &p,
        "GET",
        "/",
        &[
            ("x-user", "a"),
            ("x-consumer-id", ""),
            ("x-consumer-id", "b"),
            ("x-user", "c"),
        ],
    );
    assert_deny(&o, 400, "Duplicate header 'x-user'", None);
    let o = run(
        &p,
        "GET",
        "/",
        &[("x-consumer-id", ""), ("x-consumer-id", "")],
    );
    assert_deny(&o, 400, "Duplicate header 'x-consumer-id'", None);
}

// ---- anonymous ----

#[test]
fn anonymous_consumer() {
    let p = policy(with(base_config(), json!({"anonymous": "anon"})));
    for hs_ in [
        vec![],
        vec![("authorization", "Bearer x.y.z")],
        vec![("apikey", "nope")],
    ] {
        let a = allowed(&run(&p, "GET", "/", &hs_)).clone();
        assert_eq!(set_header(&a, "x-consumer-username"), Some("anon"));
        assert_eq!(set_header(&a, "x-anonymous-consumer"), Some("true"));
        assert_eq!(set_header(&a, "x-credential-identifier"), None);
    }
    // 403 stays 403.
    let p = policy(with(
        base_config(),
        json!({"anonymous": "anon", "acl": {"allow": ["staff"]}}),
    ));
    assert_deny(
        &run(&p, "GET", "/", &[]),
        403,
        "You cannot consume this service",
        None,
    );
}

// ---- preflight ----

#[test]
fn preflight_bypass() {
    let p = policy(with(base_config(), json!({"run_on_preflight": false})));
    let pre = [
        ("origin", "https://a"),
        ("access-control-request-method", "POST"),
        ("x-consumer-id", "spoof"),
    ];
    let a = allowed(&run(&p, "OPTIONS", "/", &pre)).clone();
    assert_eq!(a.edits.clear, vec!["x-consumer-id".to_string()]);
    assert!(a.edits.set.is_empty());
    assert_deny(
        &run(&p, "OPTIONS", "/", &[("origin", "https://a")]),
        401,
        "Unauthorized",
        Some("Bearer"),
    );
    let p = policy(base_config());
    assert_deny(
        &run(&p, "OPTIONS", "/", &pre),
        401,
        "Unauthorized",
        Some("Bearer"),
    );
}

// ---- upstream headers ----

#[test]
fn identity_and_claim_headers() {
    let cfg = with(
        base_config(),
        json!({
            "claims_to_headers": [
                {"claim": "customer_id", "header": "X-Customer-Id"},
                {"claim": "roles", "header": "x-roles"},
                {"claim": "meta", "header": "x-meta"},
                {"claim": "evil", "header": "x-evil"},
                {"claim": "missing", "header": "x-missing"}
            ],
            "forward_payload_header": "x-jwt-payload"
        }),
    );
    let p = policy(cfg);
    let mut c = good_claims("web-key");
    c["customer_id"] = json!("c-1");
    c["roles"] = json!(["a", 2, {"b": true}]);
    c["meta"] = json!({"k": 1});
    c["evil"] = json!("a\r\nx-consumer-id: admin");
    let t = hs(c);
    let o = run(
        &p,
        "GET",
        "/",
        &[
            ("authorization", &bearer(&t)),
            ("x-consumer-username", "spoof"),
            ("x-missing", "spoof"),
        ],
    );
    let a = allowed(&o);
    assert_eq!(set_header(a, "x-consumer-id"), Some("id-web"));
    assert_eq!(set_header(a, "x-consumer-username"), Some("web"));
    assert_eq!(set_header(a, "x-consumer-custom-id"), Some("web-app"));
    assert_eq!(set_header(a, "x-credential-identifier"), Some("web-key"));
    assert_eq!(
        set_header(a, "x-consumer-groups"),
        Some("first-party, staff")
    );
    assert_eq!(set_header(a, "x-anonymous-consumer"), None);
    assert_eq!(set_header(a, "x-customer-id"), Some("c-1"));
    assert_eq!(set_header(a, "x-roles"), Some("a,2,{\"b\":true}"));
    assert_eq!(set_header(a, "x-meta"), Some("{\"k\":1}"));
    assert_eq!(set_header(a, "x-evil"), None);
    assert_eq!(set_header(a, "x-missing"), None);
    assert_eq!(
        set_header(a, "x-jwt-payload"),
        Some(t.split('.').nth(1).unwrap())
    );
    assert!(a.edits.clear.contains(&"x-consumer-username".into()));
    assert!(a.edits.clear.contains(&"x-missing".into()));
}

#[test]
fn hide_groups_header() {
    let p = policy(with(
        base_config(),
        json!({"acl": {"allow": ["staff"], "hide_groups_header": true}}),
    ));
    let a = allowed(&run(
        &p,
        "GET",
        "/",
        &[("authorization", &bearer(&hs(good_claims("web-key"))))],
    ))
    .clone();
    assert_eq!(set_header(&a, "x-consumer-groups"), None);
}

#[test]
fn hide_credentials() {
    let p = policy(with(
        base_config(),
        json!({"hide_credentials": true, "cookie_names": ["sso"]}),
    ));
    let t = hs(good_claims("web-key"));
    let a = allowed(&run(&p, "GET", "/", &[("authorization", &bearer(&t))])).clone();
    assert!(a.edits.clear.contains(&"authorization".into()));
    let a = allowed(&run(&p, "GET", &format!("/p?a=1&jwt={t}"), &[])).clone();
    assert_eq!(a.edits.path.as_deref(), Some("/p?a=1"));
    let cookie = format!("theme=dark; sso={t}");
    let a = allowed(&run(&p, "GET", "/", &[("cookie", &cookie)])).clone();
    assert!(a.edits.clear.contains(&"cookie".into()));
    assert_eq!(set_header(&a, "cookie"), Some("theme=dark"));
    let a = allowed(&run(
        &p,
        "GET",
        "/api/v1/orders?apikey=partner-api-key",
        &[],
    ))
    .clone();
    assert_eq!(a.edits.path.as_deref(), Some("/api/v1/orders?"));
}

// ---- the shared vectors (PyJWT) ----

fn vector_config(key_ref: &str, alg: &str) -> Value {
    let secret = match key_ref {
        "keys/hmac_secret.txt" => json!({"secret": read_key(key_ref).trim()}),
        "keys/hmac_secret.b64" => {
            json!({"secret": read_key(key_ref).trim(), "secret_is_base64": true})
        }
        k if k.contains("rsa") => json!({"rsa_public_key": read_key(k)}),
        k => json!({"public_key": read_key(k)}),
    };
    let mut cred = json!({"key": "bouncer-vectors", "algorithm": alg});
    for (k, v) in secret.as_object().unwrap() {
        cred[k] = v.clone();
    }
    json!({"claims_to_verify": ["exp", "nbf"], "consumers": [{"username": "v", "jwt_secrets": [cred]}]})
}

fn credential_alg(name: &str, key_ref: &str) -> &'static str {
    // The credential's algorithm: the one the vector name says, else the key's default.
    for a in bouncer_crypto::Alg::ALL {
        if name.contains(a.name())
            && !name.starts_with("alg_confusion")
            && !name.starts_with("alg_mismatch")
        {
            return a.name();
        }
    }
    if name == "alg_mismatch_ES256_header_ES384_key" {
        return "ES384";
    }
    match key_ref {
        k if k.contains("rsa") => "RS256",
        k if k.contains("p256") => "ES256",
        k if k.contains("p384") => "ES384",
        k if k.contains("ed25519") => "EdDSA",
        _ => "HS256",
    }
}

#[test]
fn pyjwt_vectors() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_dir().join("tokens.json")).unwrap())
            .unwrap();
    let mut n = 0;
    for v in doc["tokens"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let key_ref = v["key_ref"].as_str().unwrap();
        let expect = v["expect"].as_str().unwrap();
        let alg = credential_alg(name, key_ref);
        let p = policy(vector_config(key_ref, alg));
        let t = v["token"].as_str().unwrap();
        let o = run(&p, "GET", "/", &[("authorization", &bearer(t))]);
        let got = match &o {
            Outcome::Allow(_) => "valid".to_owned(),
            Outcome::Deny(d) => {
                let body: Value = serde_json::from_str(&d.body).unwrap();
                match body.get("message").and_then(Value::as_str) {
                    Some(m) if body.as_object().unwrap().len() == 1 => m.to_owned(),
                    _ => {
                        let (k, val) = body.as_object().unwrap().iter().next().unwrap();
                        format!("claims:{k}:{}", val.as_str().unwrap())
                    }
                }
            }
            other => panic!("{name}: {other:?}"),
        };
        let ok = expect.split('|').any(|e| {
            if e.starts_with("claims:") && e.matches(':').count() == 1 {
                got.starts_with(&format!("{e}:"))
            } else {
                got == e
            }
        });
        assert!(ok, "{name}: expected {expect}, got {got}");
        n += 1;
    }
    assert!(n >= 50, "only {n} vectors");
}

#[test]
fn rfc_examples() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("rfc_examples.json")).unwrap(),
    )
    .unwrap();
    for ex in doc["examples"].as_array().unwrap() {
        let alg = ex["alg"].as_str().unwrap();
        let cfg = json!({"key_claim_name": "kid", "consumers": [{"username": "rfc",
            "jwt_secrets": [{"key": "rfc-key", "algorithm": alg, "jwk": ex["jwk"]}]}]});
        let p = policy(cfg);
        // The RFC tokens carry no kid; give the key through the iss claim instead where it is
        // "joe", else expect the parse/JSON answer first.
        let t = ex["token"].as_str().unwrap();
        let o = run(&p, "GET", "/", &[("authorization", &bearer(t))]);
        let d = denied(&o);
        assert_eq!(d.status, 401, "{}", ex["name"]);
        let body: Value = serde_json::from_str(&d.body).unwrap();
        if alg == "EdDSA" {
            assert_eq!(body, json!({"message": "Bad token; invalid JSON"}));
        } else {
            assert_eq!(body, json!({"message": "No mandatory 'kid' in claims"}));
        }
        // With iss as the key claim and a credential keyed "joe", the signature verifies and
        // the 2011 exp answers.
        if alg != "EdDSA" {
            let cfg = json!({"consumers": [{"username": "rfc",
                "jwt_secrets": [{"key": "joe", "algorithm": alg, "jwk": ex["jwk"]}]}]});
            let p = policy(cfg);
            let d = denied(&run(&p, "GET", "/", &[("authorization", &bearer(t))])).clone();
            assert_eq!(
                serde_json::from_str::<Value>(&d.body).unwrap(),
                json!({"exp": "token expired"}),
                "{}",
                ex["name"]
            );
        }
    }
}

// ---- the verified-token cache hooks ----

#[derive(Default)]
struct CountingEnv {
    map: std::cell::RefCell<std::collections::HashMap<String, Arc<VerifiedToken>>>,
    signature_only: bool,
    remembered: std::cell::Cell<usize>,
}

impl Env for CountingEnv {
    fn keys(&self, _p: usize) -> RemoteKeys {
        RemoteKeys::Unavailable
    }
    fn cached(&self, token: &str) -> Option<CacheHit> {
        let v = self.map.borrow().get(token).cloned()?;
        Some(if self.signature_only {
            CacheHit::Signature {
                consumer: v.consumer,
                credential: v.credential.clone(),
                provider: v.provider,
            }
        } else {
            CacheHit::Full(v)
        })
    }
    fn remember(&self, token: &str, v: &Arc<VerifiedToken>) {
        self.remembered.set(self.remembered.get() + 1);
        self.map
            .borrow_mut()
            .insert(token.to_owned(), Arc::clone(v));
    }
}

fn run_env(p: &Policy, env: &dyn Env, now: f64, hs_: &[(&str, &str)]) -> Outcome<'static> {
    let h = headers("GET", "/", hs_);
    evaluate(
        p,
        &RequestView::from_headers(&header_refs(&h)),
        now,
        env,
        &mut Signals::default(),
    )
    .into_owned()
}

#[test]
fn cached_tokens_still_get_time_and_revocation_checks() {
    let p = policy(with(
        base_config(),
        json!({"revocations": {"jti": ["gone"]}}),
    ));
    for signature_only in [false, true] {
        let env = CountingEnv {
            signature_only,
            ..Default::default()
        };
        let t = bearer(&hs(json!({"iss": "web-key", "exp": NOW + 10.0})));
        let first = run_env(&p, &env, NOW, &[("authorization", &t)]);
        allowed(&first);
        assert_eq!(env.remembered.get(), 1);
        let second = run_env(&p, &env, NOW, &[("authorization", &t)]);
        assert_eq!(first, second, "a hit gives the same answer");
        // Later, the same cached token has expired.
        let d = denied(&run_env(&p, &env, NOW + 20.0, &[("authorization", &t)])).clone();
        assert_eq!(d.status, 401);
        assert_eq!(
            serde_json::from_str::<Value>(&d.body).unwrap(),
            json!({"exp": "token expired"})
        );
        // Bad signatures are never remembered.
        let bad = bearer(&sign_hs256(
            &json!({"alg": "HS256"}),
            &good_claims("web-key"),
            "nope",
        ));
        let before = env.remembered.get();
        denied(&run_env(&p, &env, NOW, &[("authorization", &bad)]));
        assert_eq!(env.remembered.get(), before);
        // A revoked token is refused on a hit too.
        let r = bearer(&hs(
            json!({"iss": "web-key", "exp": NOW + 10.0, "jti": "gone"}),
        ));
        assert_deny(
            &run_env(&p, &env, NOW, &[("authorization", &r)]),
            401,
            "Token revoked",
            INVALID,
        );
        assert_deny(
            &run_env(&p, &env, NOW, &[("authorization", &r)]),
            401,
            "Token revoked",
            INVALID,
        );
    }
}

#[test]
fn a_cache_entry_for_a_removed_jwks_key_is_not_trusted() {
    // A provider with local keys: a Full hit naming a kid the set lacks is verified afresh.
    let jwk: Value = serde_json::from_str(&read_key("keys/ec_p256_public.jwk.json")).unwrap();
    let cfg = with(
        base_config(),
        json!({"jwks_providers": [{"issuer": "https://idp", "consumer": "web", "jwks": {"keys": [jwk]}}]}),
    );
    let p = policy(cfg);
    let env = CountingEnv::default();
    let fake = Arc::new(VerifiedToken {
        consumer: 0,
        credential: Some(Credential::Named("removed-kid".into())),
        provider: Some(0),
        key: None,
        claims: serde_json::from_value(json!({"iss": "https://idp", "exp": NOW + 60.0})).unwrap(),
        payload_segment: String::new(),
    });
    let t = hs(json!({"iss": "https://idp", "exp": NOW + 60.0}));
    env.map.borrow_mut().insert(t.clone(), fake);
    // Fresh verification: an HS256 token against an EC-only provider finds no fitting key.
    assert_deny(
        &run_env(&p, &env, NOW, &[("authorization", &bearer(&t))]),
        401,
        "No credentials found for given 'kid'",
        INVALID,
    );
}

/// Paths that an upstream may resolve elsewhere (CONTRACT.md section 2): refused wherever a
/// route rule, a permission activity or the callout would decide on them.
const AMBIGUOUS: [&str; 16] = [
    "/api/v1/orders/..",
    "/api/v1/orders/../admin",
    "/api/v1/orders/..;/admin",
    "/api/v1/orders/..;/..;/admin",
    "/api/v1/orders/.;x",
    "/api/v1/orders/..;jsessionid=1",
    "/api/v1/orders/%2e%2E",
    "/api/v1/orders/..%2F..%2Fadmin",
    "/api/v1/orders/.",
    "/api/v1/orders/a%5cb",
    "/api/v1/orders/a%3Bb",
    "/api/v1/orders/a%00",
    "/api/v1/orders/%252e%252e",
    "/api/v1/orders\\..\\admin",
    "/api/v1/orders/..?x=1",
    "/api/v1/orders/x\\..",
];

#[test]
fn ambiguous_paths_never_pass_route_rules() {
    let p = policy(base_config());
    let key = [("apikey", "partner-api-key")];
    for path in AMBIGUOUS {
        assert_deny(
            &run(&p, "GET", path, &key),
            403,
            "You cannot consume this service",
            None,
        );
    }
    allowed(&run(&p, "GET", "/api/v1/orders/a.b", &key));
    allowed(&run(&p, "GET", "/api/v1/orders/...", &key));
    allowed(&run(&p, "GET", "/api/v1/orders/x?next=/../%2e%2e", &key));
    // Unrestricted consumers are not affected.
    let web = bearer(&hs(good_claims("web-key")));
    for path in AMBIGUOUS {
        allowed(&run(&p, "GET", path, &[("authorization", &web)]));
    }
}

#[test]
fn ambiguous_paths_never_pass_permissions() {
    let mut cfg = with(
        base_config(),
        json!({"permissions": {"all": [{"methods": ["*"], "path": ".*"}]},
               "authz": {"skip_groups": ["staff"]}}),
    );
    cfg["consumers"][1]["routes"] = json!([]);
    let p = policy(cfg);
    let mut c = good_claims("partner-key");
    c["permissions"] = json!(["all"]);
    let t = bearer(&hs(c));
    allowed(&run(
        &p,
        "GET",
        "/api/v1/orders/a.b",
        &[("authorization", &t)],
    ));
    for path in AMBIGUOUS {
        assert_deny(
            &run(&p, "GET", path, &[("authorization", &t)]),
            403,
            "You cannot consume this service",
            None,
        );
    }
    // A skip group needs no permission: unaffected.
    let web = bearer(&hs(good_claims("web-key")));
    for path in AMBIGUOUS {
        allowed(&run(&p, "GET", path, &[("authorization", &web)]));
    }
}

fn callout_config(extra: Value) -> Value {
    let mut cfg = with(
        base_config(),
        json!({"authz": {"upstream": "authz", "path": "/v1/data/authz", "skip_groups": ["staff"]}}),
    );
    cfg["consumers"][1]["routes"] = json!([]);
    with(cfg, extra)
}

#[track_caller]
fn callout<'o, 'a>(o: &'o Outcome<'a>) -> &'o CalloutNeeded<'a> {
    match o {
        Outcome::Callout(c) => c,
        other => panic!("expected a callout, got {other:?}"),
    }
}

#[track_caller]
fn callout_input(o: &Outcome) -> Value {
    let c = callout(o);
    let doc: Value = serde_json::from_str(&c.body).unwrap();
    doc["input"].clone()
}

#[test]
fn ambiguous_paths_are_never_sent_to_the_authorization_service() {
    let p = policy(callout_config(json!({})));
    let t = bearer(&hs(good_claims("partner-key")));
    callout(&run(
        &p,
        "GET",
        "/api/v1/orders/a.b",
        &[("authorization", &t)],
    ));
    for path in AMBIGUOUS {
        assert_deny(
            &run(&p, "GET", path, &[("authorization", &t)]),
            403,
            "You cannot consume this service",
            None,
        );
        // Not even a cached decision is consulted.
        assert_deny(
            &run_env_at(&p, &AllowAll, "GET", path, &[("authorization", &t)]),
            403,
            "You cannot consume this service",
            None,
        );
    }
    // A skip group makes no callout: unaffected.
    let web = bearer(&hs(good_claims("web-key")));
    for path in AMBIGUOUS {
        allowed(&run(&p, "GET", path, &[("authorization", &web)]));
    }
}

/// An env whose decision cache allows everything.
struct AllowAll;

impl Env for AllowAll {
    fn keys(&self, _provider: usize) -> RemoteKeys {
        RemoteKeys::Unavailable
    }
    fn decision(&self, _cache_key: &[u8; 32]) -> Option<crate::authz::Decision> {
        Some(crate::authz::Decision::Allow(Vec::new()))
    }
}

fn run_env_at(
    p: &Policy,
    env: &dyn Env,
    method: &str,
    path: &str,
    hs_: &[(&str, &str)],
) -> Outcome<'static> {
    let h = headers(method, path, hs_);
    evaluate(
        p,
        &RequestView::from_headers(&header_refs(&h)),
        NOW,
        env,
        &mut Signals::default(),
    )
    .into_owned()
}

#[test]
fn the_callout_input() {
    let p = policy(callout_config(json!({"key_names": ["apikey", "x-key"]})));
    let mut c = good_claims("partner-key");
    c["sub"] = json!(12345);
    c["permissions"] = json!(["view"]);
    let t = hs(c.clone());
    let path = format!("/api/v1/orders/1?b=%2F&jwt={t}&x-key=&%61pikey=&a=1&%6Awt={t}");
    let o = run(&p, "GET", &path, &[]);
    let input = callout_input(&o);
    assert!(!callout(&o).body.contains(&t));
    assert_eq!(input["query"], "b=%2F&a=1");
    assert_eq!(input["host"], "example.com");
    assert_eq!(input["path"], "/api/v1/orders/1");
    assert_eq!(input["subject"], "12345");
    assert_eq!(input["permissions"], json!(["view"]));
    assert_eq!(
        input["consumer"],
        json!({"id": "partner", "username": "partner", "groups": ["partners"], "self_signed": false})
    );
    assert_eq!(input["claims"], c);
    // Only credentials: "".
    for path in [
        "/x?apikey=partner-api-key",
        "/x?x-key=partner-api-key&jwt=",
        "/x?%61pikey=partner-api-key",
    ] {
        let o = run(&p, "GET", path, &[]);
        assert_eq!(callout_input(&o)["query"], "", "{path}");
        assert_eq!(callout_input(&o)["subject"], "partner");
        assert!(!callout(&o).body.contains("partner-api-key"));
    }
    // With hide_credentials too.
    let p = policy(callout_config(json!({"hide_credentials": true})));
    let o = run(&p, "GET", "/x?a=1&apikey=partner-api-key", &[]);
    assert_eq!(callout_input(&o)["query"], "a=1");
}

#[test]
fn decision_keys_follow_the_exact_body() {
    let mut cfg = callout_config(json!({}));
    cfg["consumers"][1]["jwt_secrets"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "partner-key-2", "algorithm": "HS256", "secret": SECRET}));
    let p = policy(cfg);
    let key_of = |claims: Value, path: &str, host: &str| {
        let t = bearer(&hs(claims));
        let mut h = headers("GET", path, &[("authorization", &t)]);
        h.retain(|(n, _)| n != ":authority");
        h.push((":authority".to_owned(), host.to_owned()));
        let refs = header_refs(&h);
        let o = evaluate(
            &p,
            &RequestView::from_headers(&refs),
            NOW,
            &NoRemoteKeys,
            &mut Signals::default(),
        );
        let c = callout(&o);
        assert_eq!(
            c.cache_key,
            crate::authz::cache_key(&p.fingerprint, &c.body)
        );
        c.cache_key
    };
    let base = good_claims("partner-key");
    let k = key_of(base.clone(), "/a", "example.com");
    assert_eq!(k, key_of(base.clone(), "/a", "example.com"));
    // Same sub, another issuer (credential) of the same consumer.
    assert_ne!(k, key_of(good_claims("partner-key-2"), "/a", "example.com"));
    // Another scope claim.
    let mut scoped = base.clone();
    scoped["scope"] = json!("admin");
    assert_ne!(k, key_of(scoped, "/a", "example.com"));
    // Another host, another path.
    assert_ne!(k, key_of(base.clone(), "/a", "other.example.com"));
    assert_ne!(k, key_of(base.clone(), "/b", "example.com"));
    // A credential in the query is not part of the input: same key.
    let t = hs(base.clone());
    let o = run(&p, "GET", &format!("/a?jwt={t}"), &[]);
    assert_eq!(callout(&o).cache_key, k);
    // Another configuration: another key.
    let mut cfg2 = callout_config(json!({"realm": "x"}));
    cfg2["consumers"][1]["jwt_secrets"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "partner-key-2", "algorithm": "HS256", "secret": SECRET}));
    let p2 = policy(cfg2);
    let o = run(&p2, "GET", "/a", &[("authorization", &bearer(&t))]);
    assert_ne!(callout(&o).cache_key, k);
}

fn self_signed_config(extra: Value) -> Value {
    let mut cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "sub", "header": "x-user-id"},
                                      {"claim": "permissions", "header": "x-perms"}],
               "forward_payload_header": "x-payload"}),
    );
    cfg["consumers"][1]["routes"] = json!([]);
    cfg["consumers"][1]["self_signed"] = json!(true);
    with(cfg, extra)
}

fn admin_claims(iss: &str) -> Value {
    let mut c = good_claims(iss);
    c["sub"] = json!("admin");
    c["permissions"] = json!(["admin"]);
    c
}

#[test]
fn self_signed_permissions_grant_nothing() {
    let p = policy(self_signed_config(json!({
        "permissions": {"admin": [{"methods": ["*"], "path": ".*"}]},
        "authz": {"skip_groups": ["staff"]}})));
    let t = bearer(&hs(admin_claims("partner-key")));
    assert_deny(
        &run(&p, "GET", "/admin", &[("authorization", &t)]),
        403,
        "You cannot consume this service",
        None,
    );
    // The same claim from a consumer that is not self-signed grants.
    let mut cfg = self_signed_config(json!({
        "permissions": {"admin": [{"methods": ["*"], "path": ".*"}]}}));
    cfg["consumers"][1]["self_signed"] = json!(false);
    allowed(&run(
        &policy(cfg),
        "GET",
        "/admin",
        &[("authorization", &t)],
    ));
}

#[test]
fn self_signed_claims_are_not_copied_but_the_payload_is_forwarded() {
    let p = policy(self_signed_config(json!({})));
    let claims = admin_claims("partner-key");
    let token = hs(claims);
    let a = allowed(&run(&p, "GET", "/x", &[("authorization", &bearer(&token))])).clone();
    assert_eq!(set_header(&a, "x-user-id"), None);
    assert_eq!(set_header(&a, "x-perms"), None);
    assert_eq!(set_header(&a, "x-payload"), token.split('.').nth(1));
    assert_eq!(set_header(&a, "x-consumer-username"), Some("partner"));
    // Others' claims are copied.
    let a = allowed(&run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&hs(admin_claims("web-key"))))],
    ))
    .clone();
    assert_eq!(set_header(&a, "x-user-id"), Some("admin"));
}

#[test]
fn self_signed_callout_input() {
    let p = policy(self_signed_config(json!({
        "authz": {"upstream": "authz", "path": "/v1/data/authz"}})));
    let claims = admin_claims("partner-key");
    let o = run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&hs(claims.clone())))],
    );
    let input = callout_input(&o);
    assert_eq!(input["subject"], "partner");
    assert_eq!(input["permissions"], json!([]));
    assert_eq!(input["claims"], claims);
    assert_eq!(input["consumer"]["self_signed"], true);
    // Its API key too.
    let o = run(&p, "GET", "/x", &[("apikey", "partner-api-key")]);
    assert_eq!(callout_input(&o)["consumer"]["self_signed"], true);
    assert_eq!(callout_input(&o)["subject"], "partner");
    // A consumer that is not self-signed: its sub and its permissions.
    let o = run(
        &p,
        "GET",
        "/x",
        &[("authorization", &bearer(&hs(admin_claims("web-key"))))],
    );
    let input = callout_input(&o);
    assert_eq!(input["subject"], "admin");
    assert_eq!(input["permissions"], json!(["admin"]));
    assert_eq!(input["consumer"]["self_signed"], false);
}

#[test]
fn hidden_credentials_in_repeated_headers_are_refused() {
    let p = policy(with(
        base_config(),
        json!({"hide_credentials": true, "cookie_names": ["sso"], "header_names": ["authorization", "x-token"]}),
    ));
    let t = bearer(&hs(good_claims("web-key")));
    assert_deny(
        &run(&p, "GET", "/", &[("x-token", &t), ("x-token", &t)]),
        400,
        "Duplicate header 'x-token'",
        None,
    );
    let c = format!("sso={}", hs(good_claims("web-key")));
    assert_deny(
        &run(&p, "GET", "/", &[("cookie", &c), ("cookie", "a=1")]),
        400,
        "Duplicate header 'cookie'",
        None,
    );
    assert_deny(
        &run(
            &p,
            "GET",
            "/api/v1/orders",
            &[("apikey", "partner-api-key"), ("apikey", "partner-api-key")],
        ),
        400,
        "Duplicate header 'apikey'",
        None,
    );
    allowed(&run(&p, "GET", "/", &[("x-token", &t)]));
}

// ---- Issue 12: underscore spellings and method-override headers (CONTRACT.md section 3) ----

/// `X_Consumer_ID` is `X-Consumer-ID` to a CGI/WSGI/Rack upstream: it is cleared under the
/// name the client used (lowercase), so that the glue blanks and removes that very header.
#[test]
fn underscore_spellings_of_reserved_headers_are_cleared() {
    let p = policy(with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "sub", "header": "x-user-id"}]}),
    ));
    let t = hs(good_claims("web-key"));
    let a = allowed(&run(
        &p,
        "GET",
        "/",
        &[
            ("authorization", &bearer(&t)),
            ("x_consumer_id", "admin"),
            ("X_Consumer-Username", "admin"),
            ("x-anonymous_consumer", "true"),
            ("X_USER_ID", "spoofed"),
        ],
    ))
    .clone();
    for name in [
        "x_consumer_id",
        "x_consumer-username",
        "x-anonymous_consumer",
        "x_user_id",
    ] {
        assert!(a.edits.clear.iter().any(|n| n == name), "{name}: {a:?}");
    }
    assert_eq!(set_header(&a, "x-consumer-id"), Some("id-web"));
    assert_eq!(set_header(&a, "x-user-id"), Some("user-17"));
    // Denied requests and the anonymous consumer too: nothing gets through unblanked.
    let p = policy(with(base_config(), json!({"anonymous": "anon"})));
    let a = allowed(&run(&p, "GET", "/", &[("x_credential_identifier", "k")])).clone();
    assert_eq!(a.edits.clear, vec!["x_credential_identifier".to_owned()]);
}

#[test]
fn mixed_spelling_duplicates_are_400_with_the_reserved_name() {
    let p = policy(with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "sub", "header": "x-user-id"}]}),
    ));
    for (hs_, name) in [
        (
            vec![("X-Consumer-ID", "a"), ("x_consumer_id", "b")],
            "x-consumer-id",
        ),
        (
            vec![("x_consumer_id", ""), ("x-consumer_id", "")],
            "x-consumer-id",
        ),
        (
            vec![("x-other", "1"), ("X_USER_ID", "a"), ("x-user-id", "")],
            "x-user-id",
        ),
        // The first header (request order) whose reserved header is repeated.
        (
            vec![
                ("x_consumer_groups", "a"),
                ("x-method-override", "GET"),
                ("x-consumer-groups", "b"),
                ("X_Method_Override", "PUT"),
            ],
            "x-consumer-groups",
        ),
        (
            vec![("x-http-method", "DELETE"), ("x_http_method", "DELETE")],
            "x-http-method",
        ),
    ] {
        let o = run(&p, "GET", "/", &hs_);
        assert_deny(&o, 400, &format!("Duplicate header '{name}'"), None);
    }
    // Distinct reserved headers that only look alike are no duplicate.
    allowed(&run(
        &p,
        "GET",
        "/",
        &[
            ("authorization", &bearer(&hs(good_claims("web-key")))),
            ("x-http-method", "DELETE"),
            ("x-http-method-override", "DELETE"),
            ("x_method_override", "DELETE"),
        ],
    ));
}

#[test]
fn method_override_headers_are_reserved_on_every_request() {
    let p = policy(with(base_config(), json!({"run_on_preflight": false})));
    for names in [
        [
            "X-HTTP-Method-Override",
            "x-http-method",
            "X-Method-Override",
        ],
        [
            "x_http_method_override",
            "X_HTTP-Method",
            "x-method_override",
        ],
    ] {
        method_overrides_cleared(&p, names);
    }
}

fn method_overrides_cleared(p: &Policy, names: [&str; 3]) {
    let hs_: Vec<(&str, &str)> = names.iter().map(|n| (*n, "DELETE")).collect();
    let cleared = |a: &Allowed| {
        for n in names {
            let want = n.to_ascii_lowercase();
            assert!(a.edits.clear.contains(&want.as_str().into()), "{n}: {a:?}");
        }
    };
    // An allowed request.
    let mut with_token = hs_.clone();
    let b = bearer(&hs(good_claims("web-key")));
    with_token.push(("authorization", &b));
    cleared(allowed(&run(p, "GET", "/", &with_token)));
    // The preflight bypass.
    let mut pre = hs_.clone();
    pre.extend([
        ("origin", "https://a"),
        ("access-control-request-method", "GET"),
    ]);
    let a = allowed(&run(p, "OPTIONS", "/", &pre)).clone();
    assert!(a.consumer.is_none());
    cleared(&a);
}

/// A reserved list long enough to be searched (more than 32 names) finds every spelling too.
#[test]
fn long_reserved_lists_find_underscore_spellings() {
    let targets: Vec<Value> = (0..40)
        .map(|i| json!({"claim": format!("c{i}"), "header": format!("x-claim-{i}")}))
        .collect();
    let p = policy(with(base_config(), json!({ "claims_to_headers": targets })));
    assert!(p.reserved.len() > 32);
    for (a, b, want) in [
        ("x_claim_7", "X-Claim-7", "x-claim-7"),
        ("x-consumer_id", "x-consumer-id", "x-consumer-id"),
        ("x_http_method", "X-HTTP-Method", "x-http-method"),
        (
            "x_anonymous_consumer",
            "x-anonymous-consumer",
            "x-anonymous-consumer",
        ),
    ] {
        let o = run(&p, "GET", "/", &[(a, "1"), (b, "2")]);
        assert_deny(&o, 400, &format!("Duplicate header '{want}'"), None);
        let o = run(&p, "GET", "/", &[(a, "1")]);
        assert!(matches!(&o, Outcome::Deny(d) if d.status == 401), "{o:?}");
    }
    let a = allowed(&run(
        &p,
        "GET",
        "/",
        &[
            ("authorization", &bearer(&hs(good_claims("web-key")))),
            ("x_claim_39", "spoof"),
            ("x-claim-40", "not reserved"),
        ],
    ))
    .clone();
    assert!(a.edits.clear.contains(&"x_claim_39".into()), "{a:?}");
    assert!(!a.edits.clear.iter().any(|n| n == "x-claim-40"), "{a:?}");
}

// ---- Issue 12: numeric jti / sub in revocations (CONTRACT.md section 1) ----

#[test]
fn numeric_jti_and_sub_are_revoked_by_their_json_text() {
    let p = policy(with(
        base_config(),
        json!({"revocations": {"jti": ["123", "-7", "1.5"],
                               "subjects_issued_before": {"42": NOW - 100.0}}}),
    ));
    let run_t = |claims: Value| run(&p, "GET", "/", &[("authorization", &bearer(&hs(claims)))]);
    for jti in [json!(123), json!("123"), json!(-7), json!(1.5)] {
        assert_deny(
            &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "jti": jti})),
            401,
            "Token revoked",
            INVALID,
        );
    }
    for sub in [json!(42), json!("42")] {
        assert_deny(
            &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "sub": sub, "iat": NOW - 200.0})),
            401,
            "Token revoked",
            INVALID,
        );
        assert_deny(
            &run_t(json!({"iss": "web-key", "exp": NOW + 60.0, "sub": sub})),
            401,
            "Token revoked",
            INVALID,
        );
        allowed(&run_t(
            json!({"iss": "web-key", "exp": NOW + 60.0, "sub": sub, "iat": NOW - 10.0}),
        ));
    }
    // Other numbers and other types are not these.
    for jti in [
        json!(1234),
        json!(12.3),
        json!(true),
        json!(["123"]),
        json!({"a": 1}),
    ] {
        allowed(&run_t(
            json!({"iss": "web-key", "exp": NOW + 60.0, "jti": jti}),
        ));
    }
}

// ---- issue 12: credential extraction at scale, kid-less provider tokens ----

/// 4,000 distinct `jwt-token` cookies (55 KB) answer as two did; the same token 4,000 times
/// counts once; with `anonymous` and `hide_credentials` every cookie is still hidden.
#[test]
fn thousands_of_cookies_answer_as_two_did() {
    let p = policy(with(base_config(), json!({"cookie_names": ["jwt-token"]})));
    let distinct: Vec<String> = (0..4000).map(|i| format!("jwt-token=t{i:05}")).collect();
    let cookie = distinct.join("; ");
    assert!(cookie.len() > 50_000);
    let o = run(&p, "GET", "/", &[("cookie", &cookie)]);
    assert_deny(&o, 401, "Multiple tokens provided", INVALID);
    let t = hs(good_claims("web-key"));
    let same = vec![format!("jwt-token={t}"); 4000].join("; ");
    let a = allowed(&run(&p, "GET", "/", &[("cookie", &same)])).clone();
    assert_eq!(set_header(&a, "x-consumer-username"), Some("web"));
    // Two different API keys, then a token in the query: still "Multiple tokens provided".
    let o = run(&p, "GET", &format!("/?apikey=k1&apikey=k2&jwt={t}"), &[]);
    assert_deny(&o, 401, "Multiple tokens provided", INVALID);
    let o = run(&p, "GET", "/?apikey=k1&apikey=k2", &[]);
    assert_deny(&o, 401, "Duplicate API key found", Some("Key"));
    // Anonymous with hidden credentials: every place goes, whatever comes after the second.
    let p = policy(with(
        base_config(),
        json!({"cookie_names": ["jwt-token"], "anonymous": "anon", "hide_credentials": true}),
    ));
    let cookie = format!("{cookie}; theme=dark");
    let a = allowed(&run(
        &p,
        "GET",
        &format!("/p?jwt={t}&a=1"),
        &[("cookie", &cookie), ("apikey", "partner-api-key")],
    ))
    .clone();
    assert_eq!(set_header(&a, "x-consumer-username"), Some("anon"));
    assert_eq!(set_header(&a, "cookie"), Some("theme=dark"));
    assert_eq!(a.edits.path.as_deref(), Some("/p?a=1"));
    assert!(a.edits.clear.contains(&"apikey".into()));
}

fn oct_jwk(secret: &str) -> Value {
    json!({"kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret)})
}

/// A token without `kid` is tried against at most `MAX_KIDLESS_CANDIDATES` keys that fit: a
/// made-up signature costs 4 checks, not 64. (Before the bound, the 6th key verified it.)
#[test]
fn a_kidless_token_is_tried_against_at_most_four_keys() {
    assert_eq!(crate::jwks::MAX_KIDLESS_CANDIDATES, 4);
    let secrets: Vec<String> = (0..6)
        .map(|i| format!("provider-secret-{i}-0123456789abcdef"))
        .collect();
    // An RSA key first: it does not fit HS256 and does not count.
    let rsa: Value = serde_json::from_str(&read_key("keys/rsa2048_public.jwk.json")).unwrap();
    let mut keys = vec![rsa];
    keys.extend(secrets.iter().map(|s| oct_jwk(s)));
    let cfg = with(
        base_config(),
        json!({"jwks_providers": [{"issuer": "https://idp", "consumer": "web", "jwks": {"keys": keys}}]}),
    );
    let p = policy(cfg);
    let claims = json!({"iss": "https://idp", "exp": NOW + 60.0});
    let header = json!({"alg": "HS256"});
    for (i, s) in secrets.iter().enumerate() {
        let t = sign_hs256(&header, &claims, s);
        let o = run(&p, "GET", "/", &[("authorization", &bearer(&t))]);
        if i < 4 {
            assert_eq!(set_header(allowed(&o), "x-consumer-username"), Some("web"));
        } else {
            assert_deny(&o, 401, "Invalid signature", INVALID);
        }
    }
    // A kid names any key of the set, however far.
    let t = sign_hs256(&json!({"alg": "HS256", "kid": "far"}), &claims, &secrets[5]);
    let mut far = keys_with_kid(&secrets[5], "far");
    far.extend((0..5).map(|i| oct_jwk(&secrets[i])));
    far.rotate_left(1);
    let p2 = policy(with(
        base_config(),
        json!({"jwks_providers": [{"issuer": "https://idp", "consumer": "web", "jwks": {"keys": far}}]}),
    ));
    let o = run(&p2, "GET", "/", &[("authorization", &bearer(&t))]);
    assert_eq!(
        set_header(allowed(&o), "x-credential-identifier"),
        Some("far")
    );
    // None fits: the contract's answer is unchanged.
    let t = sign_hs256(&json!({"alg": "HS384"}), &claims, &secrets[0]);
    let o = run(&p, "GET", "/", &[("authorization", &bearer(&t))]);
    assert_deny(&o, 401, "No credentials found for given 'kid'", INVALID);
}

fn keys_with_kid(secret: &str, kid: &str) -> Vec<Value> {
    let mut k = oct_jwk(secret);
    k["kid"] = json!(kid);
    vec![k]
}
