//! Table-driven cases: `tests/cases/*.json`, each a configuration, named tokens and a list of
//! requests with what must come back. New cases are data, not code. Format:
//!
//! ```json
//! {"description": "...", "config": {...},
//!  "tokens": {"web": {"alg": "HS256", "secret": "...", "header": {}, "claims": {"exp": "$now+600"}}},
//!  "cases": [{"name": "...", "method": "GET", "path": "/x?jwt={{web}}",
//!             "headers": [["authorization", "Bearer {{web}}"]],
//!             "status": 401, "body": {"message": "Unauthorized"},
//!             "response_headers": {"www-authenticate": "Bearer"},
//!             "upstream": {"x-consumer-id": "id-web", "x-consumer-groups": null}}]}
//! ```
//!
//! A case without `status` (or with 200) must be let through. `{{vector:NAME}}` is a token of
//! `tests/vectors/tokens.json`; `"$now+N"` in claims is the host's time plus N seconds.
//! Every case runs under both host profiles.

use crate::support::*;
use bouncer_harness::{Outcome, Request};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// One case file, loaded.
pub struct CaseFile {
    pub name: String,
    pub config: Value,
    pub tokens: HashMap<String, String>,
    pub cases: Vec<Value>,
}

fn times(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("$now") => {
            let rest = &s[4..];
            let n: i64 = if rest.is_empty() {
                0
            } else {
                rest.trim_start_matches('+').parse().unwrap()
            };
            json!(NOW as i64 + n)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), times(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(times).collect()),
        other => other.clone(),
    }
}

pub fn load_cases() -> Vec<CaseFile> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut tokens = HashMap::new();
            for (name, t) in doc["tokens"].as_object().cloned().unwrap_or_default() {
                let mut header = t.get("header").cloned().unwrap_or_else(|| json!({}));
                header["alg"] = t.get("alg").cloned().unwrap_or(json!("HS256"));
                let claims = times(&t["claims"]);
                let secret = t["secret"].as_str().unwrap_or(SECRET);
                tokens.insert(name, sign_hmac(&header, &claims, secret));
            }
            CaseFile {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                config: doc["config"].clone(),
                tokens,
                cases: doc["cases"].as_array().cloned().unwrap_or_default(),
            }
        })
        .collect()
}

fn fill(text: &str, tokens: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    while let Some(start) = out.find("{{") {
        let end = out[start..]
            .find("}}")
            .map(|e| start + e)
            .expect("unclosed {{");
        let name = &out[start + 2..end];
        let value = match name.strip_prefix("vector:") {
            Some(v) => vector(v),
            None => tokens
                .get(name)
                .unwrap_or_else(|| panic!("no token {name}"))
                .clone(),
        };
        out.replace_range(start..end + 2, &value);
    }
    out
}

/// The request of a case.
pub fn request(case: &Value, tokens: &HashMap<String, String>) -> Request {
    let method = case["method"].as_str().unwrap_or("GET");
    let mut r = Request::new(method, &fill(case["path"].as_str().unwrap_or("/"), tokens));
    for h in case["headers"].as_array().into_iter().flatten() {
        r = r.header(
            h[0].as_str().unwrap(),
            &fill(h[1].as_str().unwrap(), tokens),
        );
    }
    r
}

/// Check an outcome against a case; `Err` says what differs.
pub fn check(case: &Value, out: &Outcome) -> Result<(), String> {
    let status = case["status"].as_u64().unwrap_or(200);
    if status == 200 {
        if !out.is_allowed() {
            return Err(format!(
                "expected to pass, got {:?}",
                out.local_response().map(|r| (r.status, r.body_str()))
            ));
        }
        for (name, want) in case["upstream"].as_object().cloned().unwrap_or_default() {
            let got = out.request_headers.get(&name).filter(|v| !v.is_empty());
            if got != want.as_str() {
                return Err(format!("upstream {name}: got {got:?}, want {want}"));
            }
        }
        return Ok(());
    }
    let Some(r) = out.local_response() else {
        return Err(format!("expected {status}, got {:?}", out.state));
    };
    if u64::from(r.status) != status {
        return Err(format!(
            "status {} (body {}), want {status}",
            r.status,
            r.body_str()
        ));
    }
    if let Some(body) = case.get("body") {
        if &r.json() != body {
            return Err(format!("body {}, want {body}", r.body_str()));
        }
    }
    let want_headers: Map<String, Value> = case["response_headers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, want) in want_headers {
        if r.header(&name) != want.as_str() {
            return Err(format!(
                "response {name}: {:?}, want {want}",
                r.header(&name)
            ));
        }
    }
    Ok(())
}

#[test]
fn table_driven_cases() {
    let files = load_cases();
    assert!(!files.is_empty());
    let mut n = 0;
    let mut failures = Vec::new();
    for file in &files {
        for profile in PROFILES {
            let h = host(profile);
            let mut f = filter(&h, &file.config);
            for case in &file.cases {
                let out = run(&mut f, request(case, &file.tokens));
                if let Err(e) = check(case, &out) {
                    failures.push(format!(
                        "{} / {} ({profile:?}): {e}",
                        file.name, case["name"]
                    ));
                }
                n += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n >= 40, "only {n} cases ran");
}
