//! The authorization callout: the OPA-style request body, the decision cache key, and reading
//! the answer (CONTRACT.md section 4).

use crate::config::{AuthzCallout, Consumer, Policy};
use crate::credentials;
use crate::decision::{Allowed, Denial, Outcome};
use bouncer_crypto::sha256;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// What the callout says about one request (CONTRACT.md section 4).
#[derive(Debug, Clone, Copy)]
pub struct CalloutInput<'a> {
    pub method: &'a str,
    /// The request's `:authority`.
    pub host: &'a str,
    /// The path, query string excluded.
    pub path: &'a str,
    /// The query string as received (without `?`); credentials are cut by [`body`].
    pub query: &'a str,
    pub consumer: &'a Consumer,
    /// The permissions the token grants (`[]` for a self-signed consumer).
    pub permissions: &'a [String],
    pub claims: Option<&'a Map<String, Value>>,
}

/// The callout's `subject`: the `sub` claim (a number as its JSON text), else the consumer's
/// `id`. A self-signed consumer's token names whatever it likes: its subject is its `id`.
pub fn subject<'a>(consumer: &'a Consumer, claims: Option<&'a Map<String, Value>>) -> Cow<'a, str> {
    if consumer.self_signed {
        return Cow::Borrowed(&consumer.id);
    }
    match claims.and_then(|c| c.get("sub")) {
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(n @ Value::Number(_)) => Cow::Owned(n.to_string()),
        _ => Cow::Borrowed(&consumer.id),
    }
}

/// The query string for the callout: every `uri_param_names` and `key_names` parameter cut
/// (names compared percent-decoded, as credentials are found), the other parameters in their
/// order and encoding, joined by `&`; `""` when none is left.
pub fn callout_query(policy: &Policy, query: &str) -> String {
    credentials::query_params(query)
        .filter(|(name, _, _)| {
            !policy.uri_param_names.contains(name) && !policy.key_names.contains(name)
        })
        .map(|(_, _, raw)| raw)
        .collect::<Vec<_>>()
        .join("&")
}

/// The callout body as serialized: borrowed fields (no copy of the claims), in the
/// alphabetical order a `serde_json::Map` would give them.
#[derive(Serialize)]
struct Body<'a> {
    input: Input<'a>,
}

#[derive(Serialize)]
struct Input<'a> {
    #[serde(serialize_with = "claims_or_empty")]
    claims: Option<&'a Map<String, Value>>,
    consumer: ConsumerInput<'a>,
    host: &'a str,
    method: &'a str,
    path: &'a str,
    permissions: &'a [String],
    query: String,
    subject: Cow<'a, str>,
}

#[derive(Serialize)]
struct ConsumerInput<'a> {
    groups: &'a [String],
    id: &'a str,
    self_signed: bool,
    username: &'a str,
}

fn claims_or_empty<S: Serializer>(
    claims: &Option<&Map<String, Value>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match claims {
        Some(m) => m.serialize(s),
        None => s.serialize_map(Some(0))?.end(),
    }
}

/// The callout body (OPA-style `{"input": ...}`), exactly the bytes the service is sent;
/// `None` if it could not be serialized (it always can: every map key is a string).
pub fn body(policy: &Policy, input: &CalloutInput<'_>) -> Option<String> {
    let c = input.consumer;
    let doc = Body {
        input: Input {
            claims: input.claims,
            consumer: ConsumerInput {
                groups: &c.groups,
                id: &c.id,
                self_signed: c.self_signed,
                username: &c.username,
            },
            host: input.host,
            method: input.method,
            path: input.path,
            permissions: input.permissions,
            query: callout_query(policy, input.query),
            subject: subject(c, input.claims),
        },
    };
    serde_json::to_string(&doc).ok()
}

/// The decision cache key: a digest of the configuration (its fingerprint) and of the exact
/// body the service would be sent, so two requests share a decision only if the service
/// would see the same input.
pub fn cache_key(fingerprint: &[u8; 32], body: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(body.len().saturating_add(32));
    material.extend_from_slice(fingerprint);
    material.extend_from_slice(body.as_bytes());
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

    fn policy(cfg: Value) -> Policy {
        Policy::from_json(&cfg.to_string()).unwrap()
    }

    #[test]
    fn the_query_never_carries_a_credential() {
        let p = policy(json!({}));
        for (q, want) in [
            ("", ""),
            ("a=1", "a=1"),
            ("apikey=k", ""),
            ("jwt=t", ""),
            ("a=1&apikey=k&b=2", "a=1&b=2"),
            ("a=1&jwt=t&b=%2F&jwt=u", "a=1&b=%2F"),
            // names compared percent-decoded, as credentials are found
            ("%61pikey=k&x=1", "x=1"),
            ("%6A%77%74=t&x=1", "x=1"),
            ("api%6Bey=k", ""),
            // a name without a value, or an empty value, is cut too
            ("apikey&x", "x"),
            ("apikey=&jwt=", ""),
            // the others keep their order and their encoding
            ("z=%7E&a=b+c&m=%41", "z=%7E&a=b+c&m=%41"),
            (
                "x=apikey&apikeys=1&japikey=2",
                "x=apikey&apikeys=1&japikey=2",
            ),
            ("a=1&&b=2", "a=1&b=2"),
        ] {
            assert_eq!(callout_query(&p, q), want, "{q}");
        }
        let p = policy(json!({"uri_param_names": ["token", "t"], "key_names": ["x-api-key"]}));
        assert_eq!(
            callout_query(&p, "token=a&jwt=b&x-api-key=c&apikey=d&t=e&tt=f"),
            "jwt=b&apikey=d&tt=f"
        );
        let p = policy(json!({"uri_param_names": [], "key_names": []}));
        assert_eq!(callout_query(&p, "jwt=a&apikey=b"), "jwt=a&apikey=b");
    }

    #[test]
    fn subjects() {
        let p = policy(json!({"consumers": [
            {"username": "web", "id": "id-web"},
            {"username": "partner", "id": "id-partner", "self_signed": true}]}));
        let (web, partner) = (&p.consumers[0], &p.consumers[1]);
        let claims = |v: Value| -> Map<String, Value> { serde_json::from_value(v).unwrap() };
        let cases = [
            (json!({"sub": "user-17"}), "user-17"),
            (json!({"sub": 42}), "42"),
            (json!({"sub": 4.5}), "4.5"),
            (json!({"sub": -1}), "-1"),
            (json!({"sub": ""}), ""),
            (json!({"sub": null}), "id-web"),
            (json!({"sub": true}), "id-web"),
            (json!({"sub": ["a"]}), "id-web"),
            (json!({}), "id-web"),
        ];
        for (c, want) in &cases {
            assert_eq!(subject(web, Some(&claims(c.clone()))), *want, "{c}");
            // A self-signed consumer is its id, whatever its token says.
            assert_eq!(subject(partner, Some(&claims(c.clone()))), "id-partner");
        }
        assert_eq!(subject(web, None), "id-web");
    }

    #[test]
    fn the_body_and_its_key() {
        let p = policy(json!({"consumers": [
            {"username": "web", "id": "id-web", "groups": ["g"]},
            {"username": "partner", "self_signed": true}]}));
        let claims: Map<String, Value> =
            serde_json::from_value(json!({"sub": 7, "scope": "read"})).unwrap();
        let perms = vec!["view".to_owned()];
        let input = CalloutInput {
            method: "GET",
            host: "api.example.com",
            path: "/a/b",
            query: "x=1&apikey=secret",
            consumer: &p.consumers[0],
            permissions: &perms,
            claims: Some(&claims),
        };
        let b = body(&p, &input).unwrap();
        assert!(!b.contains("secret"), "{b}");
        // The bytes are those of the parsed document written again (sorted keys, compact).
        assert_eq!(b, serde_json::from_str::<Value>(&b).unwrap().to_string());
        let doc: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            doc,
            json!({"input": {"method": "GET", "host": "api.example.com", "path": "/a/b",
                "query": "x=1",
                "consumer": {"id": "id-web", "username": "web", "groups": ["g"], "self_signed": false},
                "subject": "7", "permissions": ["view"], "claims": {"sub": 7, "scope": "read"}}})
        );
        let partner = CalloutInput {
            consumer: &p.consumers[1],
            ..input
        };
        let doc: Value = serde_json::from_str(&body(&p, &partner).unwrap()).unwrap();
        let none = CalloutInput {
            claims: None,
            ..input
        };
        let b2 = body(&p, &none).unwrap();
        assert_eq!(b2, serde_json::from_str::<Value>(&b2).unwrap().to_string());
        assert!(b2.contains(r#""claims":{}"#), "{b2}");
        assert_eq!(doc["input"]["consumer"]["self_signed"], true);
        assert_eq!(doc["input"]["subject"], "partner");

        // The key is the digest of the fingerprint and the exact body.
        let fp = p.fingerprint;
        assert_ne!(fp, [0; 32]);
        let mut material = fp.to_vec();
        material.extend_from_slice(b.as_bytes());
        assert_eq!(cache_key(&fp, &b), sha256(&material));
        assert_ne!(cache_key(&fp, &b), cache_key(&[1; 32], &b));
        assert_ne!(cache_key(&fp, &b), cache_key(&fp, &format!("{b} ")));
        let other = policy(json!({"consumers": [
            {"username": "web", "id": "id-web", "groups": ["g"]},
            {"username": "partner", "self_signed": true}], "realm": "x"}));
        assert_ne!(other.fingerprint, fp);
    }

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
