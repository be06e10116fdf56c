//! An authorization service's answer (status, body: arbitrary bytes or an OPA-Envoy-shaped
//! result) and the allowed headers: a decision, then an outcome of the contract (allow, 403,
//! the answer's own 4xx denial, or `status_on_error`).
#![no_main]

use arbitrary::Arbitrary;
use bouncer::authz::{self, Decision};
use bouncer::config::Policy;
use bouncer::engine::{Allowed, Edits, Outcome};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    status: Option<u16>,
    allowed_headers: Vec<String>,
    failure_mode_allow: bool,
    status_on_error: u16,
    body: Vec<u8>,
    /// When set, the body is this OPA-Envoy-shaped result instead of `body`.
    shaped: Option<Shaped>,
}

/// `{"result": {"allowed"/"allow", "headers", "http_status", "body"}}` with arbitrary values.
#[derive(Arbitrary, Debug)]
struct Shaped {
    allowed: Option<bool>,
    allow: Option<bool>,
    headers: Vec<(String, String)>,
    header_lists: Vec<(String, Vec<String>)>,
    http_status: Option<i64>,
    status_float: Option<f64>,
    body: Option<String>,
}

impl Shaped {
    fn to_body(&self) -> Vec<u8> {
        use serde_json::{json, Map, Value};
        let mut r = Map::new();
        if let Some(a) = self.allowed {
            r.insert("allowed".into(), a.into());
        }
        if let Some(a) = self.allow {
            r.insert("allow".into(), a.into());
        }
        let mut h = Map::new();
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone().into());
        }
        for (k, v) in &self.header_lists {
            h.insert(k.clone(), json!(v));
        }
        r.insert("headers".into(), Value::Object(h));
        if let Some(s) = self.http_status {
            r.insert("http_status".into(), s.into());
        } else if let Some(f) = self.status_float {
            r.insert("http_status".into(), json!(f));
        }
        if let Some(b) = &self.body {
            r.insert("body".into(), b.clone().into());
        }
        json!({ "result": r }).to_string().into_bytes()
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fuzz_target!(|input: Input| {
    let allowed: Vec<String> = input
        .allowed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let body = match &input.shaped {
        Some(sh) => sh.to_body(),
        None => input.body.clone(),
    };
    let decision = authz::decide(input.status, &body, &allowed);
    match input.status {
        None => assert_eq!(decision, Decision::Error),
        Some(s) if s >= 500 => assert_eq!(decision, Decision::Error),
        Some(200) => {}
        Some(_) => assert_eq!(decision, Decision::Deny),
    }
    if let Decision::Allow(headers) = &decision {
        for (n, v) in headers {
            assert!(allowed.contains(n));
            assert!(!v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f));
        }
    }
    let status_on_error = 400 + input.status_on_error % 200;
    let cfg = serde_json::json!({"authz": {"upstream": "authz", "path": "/allow",
        "allowed_headers": allowed.iter().filter(|h| valid_name(h)).collect::<Vec<_>>(),
        "status_on_error": status_on_error, "failure_mode_allow": input.failure_mode_allow}});
    // Some names are refused by the configuration (identity headers, for one).
    let Ok(policy) = Policy::from_json(&cfg.to_string()) else {
        return;
    };
    let cfg = policy.authz.as_ref().expect("a callout");
    let a = Allowed {
        edits: Edits::default(),
        consumer: Some("u".into()),
    };
    match (authz::finish(cfg, a, &decision), &decision) {
        (Outcome::Allow(_), Decision::Allow(_)) => {}
        (Outcome::Allow(_), Decision::Error) => assert!(cfg.failure_mode_allow),
        (Outcome::Deny(d), Decision::Deny) => assert_eq!(d.status, 403),
        (Outcome::Deny(d), Decision::Reject(r)) => {
            assert!((400..=499).contains(&d.status) && d.status == r.status);
            assert!(serde_json::from_str::<serde_json::Value>(&d.body).is_ok_and(|v| v.is_object()));
        }
        (Outcome::Deny(d), Decision::Error) => assert_eq!(d.status, status_on_error),
        (o, d) => panic!("{d:?} -> {o:?}"),
    }
});
