//! An authorization service's answer (status, body) and the allowed headers: a decision,
//! then an outcome of the contract (allow, 403, or `status_on_error`).
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
    let decision = authz::decide(input.status, &input.body, &allowed);
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
