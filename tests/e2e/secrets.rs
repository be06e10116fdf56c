//! Secrets and accounting: no token, secret, API key or key material in any log line or error
//! body; every denial logged exactly once at info with its reason and consumer; the contract's
//! counters counted exactly.

use crate::support::*;
use bouncer_harness::{CalloutReply, Host, LogLevel, Outcome, Profile, Request};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const OCT_SECRET: &str = "jwks-oct-secret-4242-local";
const REMOTE_OCT_SECRET: &str = "jwks-oct-secret-7373-remote";
const API_KEY: &str = "partner-api-key";
const WRONG_API_KEY: &str = "wrong-api-key-987654";

fn upstreams(profile: Profile) -> (&'static str, &'static str) {
    match profile {
        Profile::Envoy => ("authz", "idp"),
        Profile::Kong => ("127.0.0.1:8181", "127.0.0.1:9000"),
    }
}

fn config(profile: Profile) -> Value {
    let (authz, idp) = upstreams(profile);
    let mut cfg = with(
        base_config(),
        json!({
            "cookie_names": ["jwt-token"],
            "realm": "api",
            "authz": {"upstream": authz, "path": "/authz", "timeout_ms": 300,
                      "skip_groups": ["first-party"], "cache_ttl_seconds": 30},
            "jwks_providers": [
                {"issuer": "https://idp.example", "consumer": "staff",
                 "jwks": {"keys": [{"kty": "oct", "kid": "oct-1", "k": b64(OCT_SECRET)}]}},
                {"issuer": "https://remote.example", "consumer": "staff",
                 "upstream": idp, "authority": "idp.example.com", "path": "/jwks"}
            ]
        }),
    );
    let consumers = cfg["consumers"].as_array_mut().unwrap();
    consumers.push(json!({"username": "staff", "groups": ["first-party"]}));
    consumers.push(json!({"username": "b64", "groups": ["first-party"],
        "jwt_secrets": [{"key": "b64-key", "algorithm": "HS512",
                         "secret": read_vector_file("keys/hmac_secret.b64").trim(),
                         "secret_is_base64": true}]}));
    cfg
}

/// Everything that must never appear in a log line or an error body.
fn secrets() -> Vec<String> {
    let mut s = vec![
        SECRET.to_owned(),
        OCT_SECRET.to_owned(),
        b64(OCT_SECRET),
        REMOTE_OCT_SECRET.to_owned(),
        b64(REMOTE_OCT_SECRET),
        API_KEY.to_owned(),
        WRONG_API_KEY.to_owned(),
        hex_sha256(API_KEY),
        read_vector_file("keys/hmac_secret.txt").trim().to_owned(),
        read_vector_file("keys/hmac_secret.b64").trim().to_owned(),
    ];
    // Key material: every line of the PEM bodies, and 24-character pieces of them.
    for pem in [
        "keys/rsa2048_public.pem",
        "keys/ec_p256_public.pem",
        "keys/ed25519_public.pem",
    ] {
        let body: String = read_vector_file(pem)
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let chars: Vec<char> = body.chars().collect();
        for piece in chars.chunks(24).filter(|c| c.len() == 24) {
            s.push(piece.iter().collect());
        }
    }
    s
}

/// A request, and what the filter must answer and log.
struct Case {
    name: &'static str,
    req: Request,
    /// `None`: let through.
    status: Option<u16>,
    /// A word of the logged reason (case-insensitive).
    reason: &'static str,
    /// The consumer the log names (`-` when none was identified).
    consumer: &'static str,
}

fn case(
    name: &'static str,
    req: Request,
    status: Option<u16>,
    reason: &'static str,
    consumer: &'static str,
) -> Case {
    Case {
        name,
        req,
        status,
        reason,
        consumer,
    }
}

/// The tokens the cases present (every one is checked against the logs).
struct Tokens {
    web: String,
    web_wrong_secret: String,
    web_expired: String,
    b64: String,
    oct: String,
    remote: String,
    all: Vec<String>,
}

fn tokens() -> Tokens {
    let web = hs256(claims("web-key"));
    let web_wrong_secret = sign_hmac(
        &json!({"alg": "HS256"}),
        &claims("web-key"),
        "not-the-secret-but-close",
    );
    let web_expired = hs256(json!({"iss": "web-key", "exp": NOW - 1}));
    let b64 = sign_hmac(
        &json!({"alg": "HS512"}),
        &claims("b64-key"),
        read_vector_file("keys/hmac_secret.txt").trim(),
    );
    let oct = sign_hmac(
        &json!({"alg": "HS256", "kid": "oct-1"}),
        &claims("https://idp.example"),
        OCT_SECRET,
    );
    let remote = sign_hmac(
        &json!({"alg": "HS256", "kid": "remote-1"}),
        &claims("https://remote.example"),
        REMOTE_OCT_SECRET,
    );
    let mut all = vec![
        web.clone(),
        web_wrong_secret.clone(),
        web_expired.clone(),
        b64.clone(),
        oct.clone(),
        remote.clone(),
    ];
    for v in [
        "valid_RS256",
        "tampered_payload_RS256",
        "alg_none",
        "wrong_key_HS256",
    ] {
        all.push(vector(v));
    }
    Tokens {
        web,
        web_wrong_secret,
        web_expired,
        b64,
        oct,
        remote,
        all,
    }
}

fn cases(t: &Tokens) -> Vec<Case> {
    let b = |tok: &str| get("/").header("authorization", &bearer(tok));
    let key = |path: &str, k: &str| get(path).header("apikey", k);
    vec![
        case("web", b(&t.web), None, "", ""),
        case(
            "web in query",
            get(&format!("/?jwt={}", t.web)),
            None,
            "",
            "",
        ),
        case(
            "web in cookie",
            get("/").header("cookie", &format!("a=1; jwt-token={}", t.web)),
            None,
            "",
            "",
        ),
        case("base64 secret", b(&t.b64), None, "", ""),
        case("RS256", b(&vector("valid_RS256")), None, "", ""),
        case("local JWKS", b(&t.oct), None, "", ""),
        // The remote JWKS publishes an `oct` key: ignored (CONTRACT.md revision 2).
        case("remote JWKS oct key", b(&t.remote), Some(401), "kid", "-"),
        case("API key", key("/api/v1/orders", API_KEY), None, "", ""),
        case(
            "API key, cached",
            key("/api/v1/orders", API_KEY),
            None,
            "",
            "",
        ),
        case(
            "wrong secret",
            b(&t.web_wrong_secret),
            Some(401),
            "signature",
            "-",
        ),
        case("expired", b(&t.web_expired), Some(401), "exp", "-"),
        case("alg none", b(&vector("alg_none")), Some(401), "alg", "-"),
        case(
            "tampered",
            b(&vector("tampered_payload_RS256")),
            Some(401),
            "signature",
            "-",
        ),
        case(
            "wrong key",
            b(&vector("wrong_key_HS256")),
            Some(401),
            "algorithm",
            "-",
        ),
        case(
            "unknown API key",
            key("/", WRONG_API_KEY),
            Some(401),
            "key",
            "-",
        ),
        case(
            "two API keys",
            get(&format!("/?apikey={WRONG_API_KEY}")).header("apikey", API_KEY),
            Some(401),
            "duplicate",
            "-",
        ),
        case(
            "token and API key",
            b(&t.web).header("apikey", API_KEY),
            Some(401),
            "multiple",
            "-",
        ),
        case("nothing", get("/"), Some(401), "credential", "-"),
        case(
            "garbage",
            get("/").header("authorization", "Bearer not.a.token"),
            Some(401),
            "json",
            "-",
        ),
        case(
            "too large",
            get("/").header("authorization", &bearer(&"a".repeat(9000))),
            Some(401),
            "large",
            "-",
        ),
        case(
            "duplicate reserved header",
            b(&t.web)
                .header("x-consumer-id", "a")
                .header("x-consumer-id", "b"),
            Some(400),
            "x-consumer-id",
            "-",
        ),
        case(
            "route",
            key("/admin", API_KEY),
            Some(403),
            "route",
            "partner",
        ),
        case(
            "authz denies",
            key("/api/v1/orders/deny", API_KEY),
            Some(403),
            "author",
            "partner",
        ),
        case(
            "authz down",
            key("/api/v1/orders/down", API_KEY),
            Some(503),
            "unavailable",
            "partner",
        ),
        case(
            "authz down again (errors are not cached)",
            key("/api/v1/orders/down", API_KEY),
            Some(503),
            "unavailable",
            "partner",
        ),
    ]
}

/// The authorization service (allows, except `/deny` and `/down`) and the IdP; counts calls.
fn services(profile: Profile) -> (Host, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let h = host(profile);
    let (authz_calls, jwks_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, j) = (Arc::clone(&authz_calls), Arc::clone(&jwks_calls));
    let rsa: Value =
        serde_json::from_str(&read_vector_file("keys/rsa2048_public.jwk.json")).unwrap();
    let jwks =
        json!({"keys": [{"kty": "oct", "kid": "remote-1", "k": b64(REMOTE_OCT_SECRET)}, rsa]})
            .to_string();
    h.set_callout_handler(move |call| {
        if call.path() == "/jwks" {
            j.fetch_add(1, Ordering::SeqCst);
            return CalloutReply::json(200, &jwks);
        }
        a.fetch_add(1, Ordering::SeqCst);
        let path = call.json()["input"]["path"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if path.ends_with("/down") {
            CalloutReply::Timeout
        } else if path.ends_with("/deny") {
            CalloutReply::json(200, r#"{"result": false}"#)
        } else {
            CalloutReply::json(200, r#"{"result": true}"#)
        }
    });
    (h, authz_calls, jwks_calls)
}

#[track_caller]
fn no_secret_in(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} contains {s:?}: {text}");
    }
}

#[test]
fn no_secret_in_logs_or_bodies_and_every_denial_logged_once() {
    let t = tokens();
    let mut secrets = secrets();
    for tok in &t.all {
        secrets.push(tok.clone());
        secrets.push(tok.rsplit('.').next().unwrap().to_owned());
    }
    secrets.retain(|s| s.len() >= 8);
    for profile in PROFILES {
        let (h, authz_calls, jwks_calls) = services(profile);
        let mut f = filter(&h, &config(profile));
        let (mut allowed, mut d401, mut d403, mut denials) = (0u64, 0u64, 0u64, 0usize);
        for c in cases(&t) {
            let out: Outcome = run(&mut f, c.req);
            let denied: Vec<_> = out
                .logs
                .iter()
                .filter(|l| l.message.contains("denied"))
                .collect();
            match c.status {
                None => {
                    assert!(out.is_allowed(), "{profile:?} {}: {out:?}", c.name);
                    assert!(denied.is_empty(), "{}: {denied:?}", c.name);
                    allowed += 1;
                }
                Some(status) => {
                    let r = out
                        .local_response()
                        .unwrap_or_else(|| panic!("{profile:?} {}: {out:?}", c.name));
                    assert_eq!(r.status, status, "{profile:?} {}: {out:?}", c.name);
                    no_secret_in(c.name, &r.body_str(), &secrets);
                    for (k, v) in r.headers.iter() {
                        no_secret_in(c.name, &format!("{k}: {v}"), &secrets);
                    }
                    assert_eq!(denied.len(), 1, "{profile:?} {}: {:?}", c.name, out.logs);
                    let line = &denied[0];
                    assert_eq!(line.level, LogLevel::Info, "{}: {line:?}", c.name);
                    let m = line.message.to_lowercase();
                    assert!(m.contains(&status.to_string()), "{}: {m}", c.name);
                    assert!(
                        m.contains(c.reason),
                        "{}: no reason {:?}: {m}",
                        c.name,
                        c.reason
                    );
                    assert!(
                        m.contains(&format!("consumer: {})", c.consumer)),
                        "{}: consumer {:?} not named: {m}",
                        c.name,
                        c.consumer
                    );
                    denials += 1;
                    match status {
                        401 => d401 += 1,
                        403 => d403 += 1,
                        _ => {}
                    }
                }
            }
        }
        // Every denial of the run, exactly once, and nothing else says "denied".
        let all_denied = h
            .logs()
            .iter()
            .filter(|l| l.message.contains("denied"))
            .count();
        assert_eq!(all_denied, denials, "{profile:?}");
        flush_metrics(&mut [&mut f]);
        assert_eq!(h.metric("bouncer_requests_allowed"), Some(allowed));
        assert_eq!(h.metric("bouncer_requests_denied_401"), Some(d401));
        assert_eq!(h.metric("bouncer_requests_denied_403"), Some(d403));
        // Callouts: "API key" calls, "cached" hits; deny and two errors call.
        assert_eq!(authz_calls.load(Ordering::SeqCst), 4, "{profile:?}");
        assert_eq!(h.metric("bouncer_authz_calls"), Some(4));
        assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(1));
        assert_eq!(h.metric("bouncer_authz_errors"), Some(2));
        assert_eq!(jwks_calls.load(Ordering::SeqCst), 1, "{profile:?}");
        assert_eq!(h.metric("bouncer_jwks_fetches"), Some(1));
        assert_eq!(h.metric("bouncer_jwks_errors").unwrap_or(0), 0);

        // Refused configurations that carry secrets: the error names the field, not the value.
        let pem = read_vector_file("keys/rsa2048_public.pem");
        let truncated: String = pem.lines().take(4).collect::<Vec<_>>().join("\n");
        let bad_configs = [
            (
                json!({"key": "k", "algorithm": "HS256", "secret": "not*valid*base64*SECRET-XYZ-123", "secret_is_base64": true}),
                "not*valid*base64*SECRET-XYZ-123",
            ),
            (
                json!({"key": "k", "algorithm": "RS256", "rsa_public_key": truncated}),
                pem.lines().nth(2).unwrap(),
            ),
            (
                json!({"key": "k", "algorithm": "RS256", "rsa_public_key": pem.replace("MIIB", "MIIX")}),
                pem.lines().nth(3).unwrap(),
            ),
            (
                json!({"key": "k", "algorithm": "HS256", "jwk": {"kty": "oct", "k": "%%bad-oct-secret-31337%%"}}),
                "bad-oct-secret-31337",
            ),
            (
                json!({"key": "k", "algorithm": "HS256", "secret": "sibling-secret-777", "secrte": "typo-secret-888"}),
                "sibling-secret-777",
            ),
            (
                json!({"key": "k", "algorithm": "HS256", "secret": "sibling-secret-777", "secrte": "typo-secret-888"}),
                "typo-secret-888",
            ),
            (
                json!({"key": "k", "algorithm": "HS257", "secret": "alg-typo-secret-999"}),
                "alg-typo-secret-999",
            ),
            (
                json!({"key": "k", "algorithm": "RS256", "secret": "wrong-kind-secret-111"}),
                "wrong-kind-secret-111",
            ),
        ];
        for (cred, secret) in bad_configs {
            h.clear_logs();
            let cfg = json!({"consumers": [{"username": "a", "jwt_secrets": [cred],
                "keyauth_credentials": [{"id": "a-1", "key_sha256": hex_sha256("key-material-555")}]}]});
            let err = module().filter(&h, &cfg.to_string()).err();
            assert!(err.is_some(), "{profile:?}: accepted {cfg}");
            let logs = h.logs();
            assert!(!logs.is_empty());
            for l in logs {
                no_secret_in("a configuration error", &l.message, &[secret.to_owned()]);
                no_secret_in("a configuration error", &l.message, &secrets);
            }
        }
        let unterminated = r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": "unterminated-secret-555"#;
        h.clear_logs();
        assert!(module().filter(&h, unterminated).is_err());
        for l in h.logs() {
            no_secret_in(
                "a configuration error",
                &l.message,
                &["unterminated-secret-555".to_owned()],
            );
        }
    }
}

#[test]
fn a_mistyped_secret_in_a_refused_config_is_not_logged() {
    let oct = json!({"kty": "oct", "k": b64("jwk-as-string-secret-4711")}).to_string();
    let cases = [
        (
            json!({"key": "k", "algorithm": "HS256", "secret": 98765432109876543u64}),
            "98765432109876543".to_owned(),
        ),
        (
            json!({"key": "k", "algorithm": "HS256", "secret": 9876543210.125}),
            "9876543210".to_owned(),
        ),
        (
            json!({"key": "k", "algorithm": "HS256", "jwk": oct}),
            b64("jwk-as-string-secret-4711"),
        ),
    ];
    let mut leaks = Vec::new();
    for profile in PROFILES {
        let h = host(profile);
        for (cred, secret) in &cases {
            h.clear_logs();
            let cfg = json!({"consumers": [{"username": "a", "jwt_secrets": [cred]}]});
            assert!(module().filter(&h, &cfg.to_string()).is_err());
            for l in h.logs() {
                if l.message.contains(secret.as_str()) {
                    leaks.push(format!("{profile:?}: {}", l.message));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}
