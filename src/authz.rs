//! The authorization callout: the OPA-style request body, the decision cache key, and reading
//! the answer (CONTRACT.md section 4).

use crate::config::{AuthzCallout, Consumer};
use crate::engine::{Allowed, Denial, Outcome};
use bouncer_crypto::sha256;
use serde_json::{json, Map, Value};

/// The callout body and the decision cache key for a request.
pub fn request(
    consumer: &Consumer,
    subject: &str,
    permissions: &[String],
    claims: Option<&Map<String, Value>>,
    method: &str,
    path: &str,
    query: &str,
) -> (String, [u8; 32]) {
    (
        body(consumer, subject, permissions, claims, method, path, query),
        cache_key(consumer, subject, permissions, method, path, query),
    )
}

/// The callout body (OPA-style `{"input": ...}`).
pub fn body(
    consumer: &Consumer,
    subject: &str,
    permissions: &[String],
    claims: Option<&Map<String, Value>>,
    method: &str,
    path: &str,
    query: &str,
) -> String {
    json!({
        "input": {
            "method": method,
            "path": path,
            "query": query,
            "consumer": {
                "id": consumer.id,
                "username": consumer.username,
                "groups": consumer.groups,
            },
            "subject": subject,
            "permissions": permissions,
            "claims": claims.cloned().map(Value::Object).unwrap_or_else(|| json!({})),
        }
    })
    .to_string()
}

/// The decision cache key: a digest of (subject, consumer, permissions, method, path, query).
pub fn cache_key(
    consumer: &Consumer,
    subject: &str,
    permissions: &[String],
    method: &str,
    path: &str,
    query: &str,
) -> [u8; 32] {
    let mut sorted: Vec<&str> = permissions.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    // Length-prefixed fields, so no two different tuples encode the same way.
    let mut material = Vec::with_capacity(256);
    let mut field = |s: &str| {
        material.extend_from_slice(&(s.len() as u64).to_le_bytes());
        material.extend_from_slice(s.as_bytes());
    };
    field(subject);
    field(&consumer.id);
    field(&sorted.len().to_string());
    for p in &sorted {
        field(p);
    }
    field(method);
    field(path);
    field(query);
    sha256(&material)
}

/// The authorization service's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with the headers to add upstream (already limited to `allowed_headers`).
    Allow(Vec<(String, String)>),
    Deny,
    /// No answer: timeout, failed connection, 5xx.
    Error,
}

/// Read a callout answer. `status` is the `:status` of the answer, `None` when the call failed
/// (Envoy: no headers; Kong: only `:dispatch_status`).
pub fn decide(status: Option<u16>, body: &[u8], allowed_headers: &[String]) -> Decision {
    let Some(status) = status else {
        return Decision::Error;
    };
    if status >= 500 {
        return Decision::Error;
    }
    if status != 200 {
        return Decision::Deny;
    }
    // A 200 whose body is not JSON is an answer, not a failure: it denies (only a timeout, a
    // failed connection or a 5xx are errors).
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Decision::Deny;
    };
    match doc.get("result") {
        Some(Value::Bool(true)) => Decision::Allow(Vec::new()),
        Some(Value::Object(r)) if r.get("allow") == Some(&Value::Bool(true)) => {
            let mut headers = Vec::new();
            if let Some(Value::Object(h)) = r.get("headers") {
                for (name, value) in h {
                    let lower = name.to_ascii_lowercase();
                    if !allowed_headers.contains(&lower) {
                        continue;
                    }
                    if let Some(v) = value.as_str() {
                        if !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                            headers.push((lower, v.to_owned()));
                        }
                    }
                }
            }
            Decision::Allow(headers)
        }
        _ => Decision::Deny,
    }
}

/// Turn a decision into the request's outcome.
pub fn finish(cfg: &AuthzCallout, mut allowed: Allowed, decision: &Decision) -> Outcome {
    let consumer = allowed.consumer.clone();
    match decision {
        Decision::Allow(headers) => {
            allowed.edits.set.extend(headers.iter().cloned());
            Outcome::Allow(allowed)
        }
        Decision::Deny => Outcome::Deny(Denial {
            status: 403,
            body: json!({"message": "You cannot consume this service"}).to_string(),
            www_authenticate: None,
            reason: "authorization service denied".to_owned(),
            consumer,
        }),
        Decision::Error if cfg.failure_mode_allow => Outcome::Allow(allowed),
        Decision::Error => Outcome::Deny(Denial {
            status: cfg.status_on_error,
            body: json!({"message": "Authorization service unavailable"}).to_string(),
            www_authenticate: None,
            reason: "authorization service unavailable".to_owned(),
            consumer,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let allowed = vec!["x-allowed-fields".to_string()];
        assert_eq!(
            decide(Some(200), br#"{"result":true}"#, &allowed),
            Decision::Allow(vec![])
        );
        assert_eq!(
            decide(
                Some(200),
                br#"{"result":{"allow":true,"headers":{"X-Allowed-Fields":"a,b","x-other":"no"}}}"#,
                &allowed
            ),
            Decision::Allow(vec![("x-allowed-fields".into(), "a,b".into())])
        );
        for deny in [
            &br#"{}"#[..],
            br#"{"result":false}"#,
            br#"{"result":{"allow":false}}"#,
            br#"{"result":"true"}"#,
            br#"[]"#,
        ] {
            assert_eq!(decide(Some(200), deny, &allowed), Decision::Deny);
        }
        assert_eq!(
            decide(Some(403), br#"{"result":true}"#, &allowed),
            Decision::Deny
        );
        assert_eq!(decide(Some(500), b"", &allowed), Decision::Error);
        assert_eq!(decide(Some(200), b"not json", &allowed), Decision::Deny);
        assert_eq!(decide(Some(200), b"", &allowed), Decision::Deny);
        assert_eq!(decide(None, b"", &allowed), Decision::Error);
    }
}
