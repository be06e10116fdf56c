//! The authorization callout: the request body (Bouncer's OPA-style input, or the input
//! document OPA-Envoy policies read), the decision cache key, and reading the answer
//! (CONTRACT.md section 4).

use crate::config::{same_header, AuthzCallout, Consumer, InputFormat, Policy};
use crate::credentials;
use crate::decision::{Allowed, Denial, Outcome};
use bouncer_crypto::sha256;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

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
    /// The request's headers, names in lowercase, pseudo-headers included (only the
    /// `opa-envoy` body reads them).
    pub headers: &'a [crate::engine::Header<'a>],
    /// The request's `:scheme` (`""` when the host gave none).
    pub scheme: &'a str,
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
            !policy.uri_param_names.iter().any(|n| n == name)
                && !policy.key_names.iter().any(|n| n == name)
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

/// The callout body (`{"input": ...}` in the configured `authz.input_format`), exactly the
/// bytes the service is sent; `None` if it could not be serialized (it always can: every map
/// key is a string).
pub fn body(policy: &Policy, input: &CalloutInput<'_>) -> Option<String> {
    match policy.authz.as_ref().map(|a| a.input_format) {
        Some(InputFormat::OpaEnvoy) => opa_envoy_body(policy, input),
        _ => bouncer_body(policy, input),
    }
}

/// Bouncer's own body: `{"input": {"method", "host", "path", "query", "consumer", ...}}`.
fn bouncer_body(policy: &Policy, input: &CalloutInput<'_>) -> Option<String> {
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

/// The `opa-envoy` body: the input document an OPA-Envoy policy reads (the `CheckRequest`
/// attributes of Envoy's ext_authz, v3 names), with Bouncer's identity under `bouncer`.
#[derive(Serialize)]
struct OpaBody<'a> {
    input: OpaInput<'a>,
}

#[derive(Serialize)]
struct OpaInput<'a> {
    attributes: Attributes<'a>,
    bouncer: IdentityInput<'a>,
    parsed_path: Vec<String>,
    parsed_query: BTreeMap<String, Vec<String>>,
    version: OpaVersion,
}

#[derive(Serialize)]
struct Attributes<'a> {
    request: RequestAttributes<'a>,
}

#[derive(Serialize)]
struct RequestAttributes<'a> {
    http: HttpAttributes<'a>,
}

#[derive(Serialize)]
struct HttpAttributes<'a> {
    headers: BTreeMap<String, String>,
    host: &'a str,
    method: &'a str,
    /// The path with the credential-free query.
    path: String,
    scheme: &'a str,
}

#[derive(Serialize)]
struct IdentityInput<'a> {
    #[serde(serialize_with = "claims_or_empty")]
    claims: Option<&'a Map<String, Value>>,
    consumer: ConsumerInput<'a>,
    permissions: &'a [String],
    subject: Cow<'a, str>,
}

/// `input.version` as OPA-Envoy sets it for Envoy's v3 API.
#[derive(Serialize)]
struct OpaVersion {
    encoding: &'static str,
    ext_authz: &'static str,
}

/// Request headers never sent in the `opa-envoy` body besides the credentials, the reserved
/// headers and [`crate::config::FORBIDDEN_TARGETS`] (hop-by-hop and framing headers, `host`
/// (it is `host` and `:authority`), `authorization`; `cookie` is filtered, not dropped):
/// `proxy-authorization`, and tracing ids that differ on every request (they would make every
/// decision-cache key distinct).
const LEFT_OUT_HEADERS: [&str; 13] = [
    "proxy-authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "uber-trace-id",
];

/// The headers of the `opa-envoy` body: names in lowercase, repeated headers joined by `,`
/// (`cookie` by `; `), as Envoy hands them to ext_authz. Left out: every credential header
/// (`header_names`, `key_names`, in any `_`/`-` spelling), the configured token cookies (cut
/// from `cookie`), the reserved headers (section 3), [`LEFT_OUT_HEADERS`], and the client's
/// pseudo-headers, replaced by `:authority`, `:method`, `:path` and `:scheme` with the
/// body's own values.
fn opa_headers(policy: &Policy, input: &CalloutInput<'_>, path: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<&str> = Vec::new();
    for &(name, value) in input.headers {
        if name.starts_with(':') {
            continue;
        }
        if name == "cookie" {
            cookies.push(value);
            continue;
        }
        let left_out = crate::config::FORBIDDEN_TARGETS
            .iter()
            .chain(&LEFT_OUT_HEADERS)
            .any(|h| same_header(h, name))
            || policy
                .header_names
                .iter()
                .chain(&policy.key_names)
                .any(|h| same_header(h, name))
            || policy.reserved.iter().any(|h| same_header(h, name));
        if left_out {
            continue;
        }
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    if !cookies.is_empty() {
        let names: Vec<&str> = policy.cookie_names.iter().map(String::as_str).collect();
        let kept = credentials::strip_cookies(&cookies, &names);
        if !kept.is_empty() {
            out.insert("cookie".to_owned(), kept);
        }
    }
    for (name, value) in [
        (":authority", input.host),
        (":method", input.method),
        (":path", path),
        (":scheme", input.scheme),
    ] {
        out.insert(name.to_owned(), value.to_owned());
    }
    out
}

/// `parsed_path` as OPA-Envoy builds it: the path without its leading `/`s, split at `/`,
/// each segment percent-decoded (`/` gives `[""]`).
fn parsed_path(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .map(credentials::path_decode)
        .collect()
}

/// `parsed_query`: the credential-free query's parameters, decoded, each name's values in
/// order.
fn parsed_query(policy: &Policy, query: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value, _) in credentials::query_params(query) {
        if policy.uri_param_names.iter().any(|n| *n == name)
            || policy.key_names.iter().any(|n| *n == name)
        {
            continue;
        }
        out.entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    out
}

fn opa_envoy_body(policy: &Policy, input: &CalloutInput<'_>) -> Option<String> {
    let c = input.consumer;
    let query = callout_query(policy, input.query);
    let path = if query.is_empty() {
        input.path.to_owned()
    } else {
        format!("{}?{query}", input.path)
    };
    let doc = OpaBody {
        input: OpaInput {
            attributes: Attributes {
                request: RequestAttributes {
                    http: HttpAttributes {
                        headers: opa_headers(policy, input, &path),
                        host: input.host,
                        method: input.method,
                        path,
                        scheme: input.scheme,
                    },
                },
            },
            bouncer: IdentityInput {
                claims: input.claims,
                consumer: ConsumerInput {
                    groups: &c.groups,
                    id: &c.id,
                    self_signed: c.self_signed,
                    username: &c.username,
                },
                permissions: input.permissions,
                subject: subject(c, input.claims),
            },
            parsed_path: parsed_path(input.path),
            parsed_query: parsed_query(policy, input.query),
            version: OpaVersion {
                encoding: "protojson",
                ext_authz: "v3",
            },
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
    /// Denied: 403 `You cannot consume this service`.
    Deny,
    /// Denied with the answer's own `http_status` and `body` (OPA-Envoy's result object).
    Reject(Rejection),
    /// No answer: timeout, failed connection, 5xx.
    Error,
}

/// A denial the answer shaped: the status (400 to 499) and the JSON body Bouncer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub body: String,
}

/// The largest `body` an answer may give for its denial, in bytes.
pub const MAX_REJECTION_BODY: usize = 2048;

/// The body a rejection without `body` carries.
fn default_rejection_body(status: u16) -> String {
    let msg = if status == 401 {
        "Unauthorized"
    } else {
        "You cannot consume this service"
    };
    json!({ "message": msg }).to_string()
}

/// The denial of a result object that says `allowed: false`: `None` (the plain 403) when it
/// gives neither `http_status` nor `body`; `Some(Err(()))` when one of them is malformed (a
/// status outside 400-499 or not an integer, a body that is not a string or is longer than
/// [`MAX_REJECTION_BODY`]): the answer then denies with the plain 403, as any malformed
/// answer does. A `body` that is a JSON object is sent as it is; any other string becomes
/// `{"message": body}`, so every response stays JSON.
fn rejection(r: &Map<String, Value>) -> Option<Result<Rejection, ()>> {
    let status = r.get("http_status");
    let body = r.get("body");
    if status.is_none() && body.is_none() {
        return None;
    }
    let status = match status {
        None => 403,
        Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) if (400..=499).contains(&n) => n,
            _ => return Some(Err(())),
        },
    };
    let body = match body {
        None => default_rejection_body(status),
        Some(Value::String(b)) if b.len() <= MAX_REJECTION_BODY => {
            if serde_json::from_str::<Value>(b).is_ok_and(|v| v.is_object()) {
                b.clone()
            } else {
                json!({ "message": b }).to_string()
            }
        }
        Some(_) => return Some(Err(())),
    };
    Some(Ok(Rejection { status, body }))
}

/// Whether a result object allows: `allowed` (OPA-Envoy) or `allow` (Bouncer's first shape)
/// is `true`, and neither is anything else.
fn object_allows(r: &Map<String, Value>) -> bool {
    let flags = [r.get("allowed"), r.get("allow")];
    flags.contains(&Some(&Value::Bool(true)))
        && flags
            .iter()
            .all(|f| f.is_none() || *f == Some(&Value::Bool(true)))
}

/// The answer's `headers`, limited to `allowed_headers`: string values, or lists of strings
/// (joined by `, `); a value with a control character is dropped.
fn answer_headers(r: &Map<String, Value>, allowed_headers: &[String]) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    let Some(Value::Object(h)) = r.get("headers") else {
        return headers;
    };
    for (name, value) in h {
        let lower = name.to_ascii_lowercase();
        if !allowed_headers.contains(&lower) {
            continue;
        }
        let v = match value {
            Value::String(v) => Cow::Borrowed(v.as_str()),
            Value::Array(items) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                match parts {
                    Some(p) if !p.is_empty() => Cow::Owned(p.join(", ")),
                    _ => continue,
                }
            }
            _ => continue,
        };
        if !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            headers.push((lower, v.into_owned()));
        }
    }
    headers
}

/// Read a callout answer. `status` is the `:status` of the answer, `None` when the call failed
/// (Envoy: no headers; Kong: only `:dispatch_status`).
///
/// A 200 answer's `result` (OPA's data API) decides: `true` allows, an object allows when its
/// `allowed` (or `allow`) is `true`, adding its `headers`; an object with `allowed: false`
/// denies with its `http_status` and `body` when it gives them. Anything else, `result`
/// undefined (absent) included, denies with 403.
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
        Some(Value::Object(r)) if object_allows(r) => {
            Decision::Allow(answer_headers(r, allowed_headers))
        }
        Some(Value::Object(r)) if r.get("allowed") == Some(&Value::Bool(false)) => {
            match rejection(r) {
                Some(Ok(rej)) => Decision::Reject(rej),
                None | Some(Err(())) => Decision::Deny,
            }
        }
        _ => Decision::Deny,
    }
}

/// Turn a decision into the request's outcome.
pub fn finish<'a>(
    cfg: &AuthzCallout,
    mut allowed: Allowed<'a>,
    decision: &Decision,
) -> Outcome<'a> {
    // Only a denial needs the consumer's name as its own string.
    let consumer = |a: &Allowed<'_>| a.consumer.as_deref().map(str::to_owned);
    match decision {
        Decision::Allow(headers) => {
            allowed.edits.set.extend(
                headers
                    .iter()
                    .map(|(n, v)| (Cow::Owned(n.clone()), Cow::Owned(v.clone()))),
            );
            Outcome::Allow(allowed)
        }
        Decision::Deny => Outcome::Deny(Denial {
            status: 403,
            body: json!({"message": "You cannot consume this service"}).to_string(),
            www_authenticate: None,
            reason: "authorization service denied".to_owned(),
            consumer: consumer(&allowed),
        }),
        Decision::Reject(r) => Outcome::Deny(Denial {
            status: r.status,
            body: r.body.clone(),
            www_authenticate: None,
            reason: format!("authorization service denied with {}", r.status),
            consumer: consumer(&allowed),
        }),
        Decision::Error if cfg.failure_mode_allow => Outcome::Allow(allowed),
        Decision::Error => Outcome::Deny(Denial {
            status: cfg.status_on_error,
            body: json!({"message": "Authorization service unavailable"}).to_string(),
            www_authenticate: None,
            reason: "authorization service unavailable".to_owned(),
            consumer: consumer(&allowed),
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
            headers: &[],
            scheme: "https",
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

    #[test]
    fn the_opa_envoy_body() {
        let p = policy(json!({
            "consumers": [{"username": "web", "id": "id-web", "groups": ["g"]}],
            "cookie_names": ["jwt-token"],
            "key_names": ["apikey", "x-api-key"],
            "claims_to_headers": [{"claim": "sub", "header": "x-user-id"}],
            "authz": {"upstream": "opa", "path": "/v1/data/envoy/authz/allow",
                      "input_format": "opa-envoy", "allowed_headers": ["x-allowed-fields"]}}));
        let claims: Map<String, Value> =
            serde_json::from_value(json!({"sub": "alice", "role": "admin"})).unwrap();
        let perms = vec!["view".to_owned()];
        let headers: Vec<(String, String)> = [
            (":method", "GET"),
            (
                ":path",
                "/people/a%20b/?lang=en&jwt=secret1&id=1&id=2&apikey=secret2",
            ),
            (":authority", "ignored"),
            (":scheme", "https"),
            ("authorization", "Bearer secret3"),
            ("x_api_key", "secret4"),
            ("cookie", "jwt-token=secret5; theme=dark"),
            ("cookie", "lang=en"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("user-agent", "curl/8"),
            ("x-request-id", "7bca5c86"),
            ("traceparent", "00-abc-def-01"),
            ("x-consumer-id", ""),
            ("x-user-id", ""),
            ("x-allowed-fields", ""),
            ("connection", "keep-alive"),
            ("host", "api.example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let input = CalloutInput {
            method: "GET",
            host: "api.example.com",
            path: "/people/a%20b/",
            query: "lang=en&jwt=secret1&id=1&id=2&apikey=secret2",
            consumer: &p.consumers[0],
            permissions: &perms,
            claims: Some(&claims),
            headers: &crate::engine::header_refs(&headers),
            scheme: "https",
        };
        let b = body(&p, &input).unwrap();
        assert!(!b.contains("secret"), "{b}");
        assert_eq!(b, serde_json::from_str::<Value>(&b).unwrap().to_string());
        let doc: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            doc,
            json!({"input": {
                "attributes": {"request": {"http": {
                    "method": "GET", "host": "api.example.com", "scheme": "https",
                    "path": "/people/a%20b/?lang=en&id=1&id=2",
                    "headers": {
                        ":authority": "api.example.com", ":method": "GET",
                        ":path": "/people/a%20b/?lang=en&id=1&id=2", ":scheme": "https",
                        "accept": "text/html,application/json", "cookie": "theme=dark; lang=en",
                        "user-agent": "curl/8"}}}},
                "parsed_path": ["people", "a b", ""],
                "parsed_query": {"lang": ["en"], "id": ["1", "2"]},
                "version": {"encoding": "protojson", "ext_authz": "v3"},
                "bouncer": {
                    "consumer": {"id": "id-web", "username": "web", "groups": ["g"], "self_signed": false},
                    "subject": "alice", "permissions": ["view"],
                    "claims": {"sub": "alice", "role": "admin"}}}})
        );
        // The root, no query, no cookie left: no `?`, `[""]`, no cookie header.
        let bare: Vec<(String, String)> = vec![("cookie".into(), "jwt-token=secret".into())];
        let root = CalloutInput {
            path: "/",
            query: "jwt=secret",
            headers: &crate::engine::header_refs(&bare),
            ..input
        };
        let doc: Value = serde_json::from_str(&body(&p, &root).unwrap()).unwrap();
        let http = &doc["input"]["attributes"]["request"]["http"];
        assert_eq!(http["path"], "/");
        assert!(http["headers"].get("cookie").is_none(), "{http}");
        assert_eq!(doc["input"]["parsed_path"], json!([""]));
        assert_eq!(doc["input"]["parsed_query"], json!({}));
        // Another format is another body, hence another decision-cache key.
        let bouncer = policy(json!({
            "consumers": [{"username": "web", "id": "id-web", "groups": ["g"]}],
            "authz": {"upstream": "opa", "path": "/v1/data/envoy/authz/allow"}}));
        assert_ne!(body(&bouncer, &input).unwrap(), b);
        // A varying user-agent is another body; a varying request id is not.
        let mut other = headers.clone();
        other.retain(|(k, _)| k != "x-request-id");
        other.push(("x-request-id".into(), "another".into()));
        let again = CalloutInput {
            headers: &crate::engine::header_refs(&other),
            ..input
        };
        assert_eq!(body(&p, &again).unwrap(), b);
    }

    #[test]
    fn opa_envoy_answers() {
        let allowed = vec!["x-allowed-fields".to_string()];
        let d = |b: &str| decide(Some(200), b.as_bytes(), &allowed);
        assert_eq!(d(r#"{"result":true}"#), Decision::Allow(vec![]));
        assert_eq!(d(r#"{"result":false}"#), Decision::Deny);
        // Undefined: no `result`.
        assert_eq!(d(r#"{}"#), Decision::Deny);
        assert_eq!(
            d(
                r#"{"result":{"allowed":true,"headers":{"x-allowed-fields":"id,status","x-no":"1"}}}"#
            ),
            Decision::Allow(vec![("x-allowed-fields".into(), "id,status".into())])
        );
        assert_eq!(
            d(r#"{"result":{"allowed":true,"headers":{"x-allowed-fields":["id","status"]}}}"#),
            Decision::Allow(vec![("x-allowed-fields".into(), "id, status".into())])
        );
        // `allowed` wins over a status: an allow is an allow.
        assert_eq!(
            d(r#"{"result":{"allowed":true,"http_status":401}}"#),
            Decision::Allow(vec![])
        );
        assert_eq!(d(r#"{"result":{"allowed":false}}"#), Decision::Deny);
        assert_eq!(
            d(r#"{"result":{"allowed":false,"http_status":401,"body":"Authentication Failed"}}"#),
            Decision::Reject(Rejection {
                status: 401,
                body: r#"{"message":"Authentication Failed"}"#.into()
            })
        );
        assert_eq!(
            d(r#"{"result":{"allowed":false,"http_status":429}}"#),
            Decision::Reject(Rejection {
                status: 429,
                body: r#"{"message":"You cannot consume this service"}"#.into()
            })
        );
        assert_eq!(
            d(r#"{"result":{"allowed":false,"body":"{\"error\":\"quota\"}"}}"#),
            Decision::Reject(Rejection {
                status: 403,
                body: r#"{"error":"quota"}"#.into()
            })
        );
        // Malformed: the plain 403.
        for bad in [
            r#"{"result":{"allowed":false,"http_status":200}}"#,
            r#"{"result":{"allowed":false,"http_status":302}}"#,
            r#"{"result":{"allowed":false,"http_status":500}}"#,
            r#"{"result":{"allowed":false,"http_status":401.5}}"#,
            r#"{"result":{"allowed":false,"http_status":"401"}}"#,
            r#"{"result":{"allowed":false,"http_status":-1}}"#,
            r#"{"result":{"allowed":false,"body":7}}"#,
            r#"{"result":{"allowed":"true"}}"#,
            r#"{"result":{"allowed":true,"allow":false}}"#,
            r#"{"result":{"http_status":401}}"#,
        ] {
            assert_eq!(d(bad), Decision::Deny, "{bad}");
        }
        let long = json!({"result": {"allowed": false, "http_status": 401,
            "body": "x".repeat(MAX_REJECTION_BODY + 1)}});
        assert_eq!(d(&long.to_string()), Decision::Deny);
        let fits = json!({"result": {"allowed": false, "http_status": 401,
            "body": "x".repeat(MAX_REJECTION_BODY)}});
        assert!(matches!(d(&fits.to_string()), Decision::Reject(_)));
        // The rejection is what the client gets.
        let p = policy(json!({"authz": {"upstream": "opa", "path": "/p"}}));
        let a = Allowed {
            edits: crate::decision::Edits::default(),
            consumer: Some("u".into()),
        };
        let Outcome::Deny(den) = finish(
            p.authz.as_ref().unwrap(),
            a,
            &Decision::Reject(Rejection {
                status: 429,
                body: r#"{"message":"slow down"}"#.into(),
            }),
        ) else {
            panic!("not a denial")
        };
        assert_eq!(
            (den.status, den.body.as_str()),
            (429, r#"{"message":"slow down"}"#)
        );
    }
}
