//! The request pipeline, pure and host-free:
//! reserved headers -> preflight -> credentials -> consumer -> verification -> claims ->
//! revocation -> ACL and routes -> permissions -> (callout) -> the headers for the upstream.
//!
//! [`evaluate`] is a function of the policy, a view of the request, the time and the remote
//! key sets; it returns an [`Outcome`] that the glue applies with host calls. Each stage is a
//! function named for it, called in order by `pipeline`.

// Stages return `Result<_, Outcome>`: the `Err` is the outcome that ends the request early,
// moved once to the glue. Boxing it would allocate on every denial for nothing.
#![allow(clippy::result_large_err)]

use crate::config::{Acl, Consumer, KeySource, Policy};
use crate::credentials::{self, Location};
pub use crate::decision::{Allowed, CalloutNeeded, Denial, Edits, Outcome};
use crate::jwks::KeySet;
use crate::jwt::{self, ClaimRules, ParseError, Token};
use bouncer_crypto::{ct_eq, sha256};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// What the glue knows about a remote JWKS provider's keys.
#[derive(Debug, Clone)]
pub enum RemoteKeys {
    /// The latest good key set.
    Loaded(Arc<KeySet>),
    /// Never loaded yet; a fetch is under way or due: the request may wait for it.
    Pending,
    /// Never loaded and the wait is over (or fetching failed): 503.
    Unavailable,
}

/// A token whose signature was verified, with what the rest of the pipeline needs from it.
/// Time claims, revocations and access rules are checked again on every request.
#[derive(Debug)]
pub struct VerifiedToken {
    pub consumer: usize,
    /// The credential `key`, or the JWK's `kid` for a provider token.
    pub credential: Option<Credential>,
    /// The JWKS provider that verified it, if any.
    pub provider: Option<usize>,
    /// For a provider token: the fingerprint of the JWK that verified it, so that a cached
    /// token stops the moment its key leaves the provider's key set (or changes under the
    /// same `kid`).
    pub key: Option<[u8; 32]>,
    pub claims: Map<String, Value>,
    /// The payload segment as received (base64url), kept only when the policy forwards it
    /// (`forward_payload_header`); empty otherwise.
    pub payload_segment: String,
}

/// The credential a token was verified with, as its `x-credential-identifier` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The configuration's JWT credential at this index of `Policy::jwt_credentials` (its
    /// `key`, borrowed from the configuration on every request: no copy).
    Config(usize),
    /// A JWK's `kid` (a provider token).
    Named(String),
}

impl Credential {
    /// The identifier's text (`None`: an index the configuration does not have).
    pub fn text<'a>(&'a self, policy: &'a Policy) -> Option<&'a str> {
        match self {
            Credential::Config(i) => policy.jwt_credentials.at(*i).map(|c| c.key_id.as_str()),
            Credential::Named(s) => Some(s),
        }
    }
}

/// The payload segment a verified token keeps: only what `forward_payload_header` will send
/// (the cache is per policy; nothing else reads it).
#[inline(never)]
fn kept_payload(policy: &Policy, token: &Token<'_>) -> String {
    if policy.forward_payload_header.is_some() {
        token.payload_segment.to_owned()
    } else {
        String::new()
    }
}

/// What a verified-token cache knows about a token.
#[derive(Debug, Clone)]
pub enum CacheHit {
    /// Verified in this worker: everything is at hand.
    Full(Arc<VerifiedToken>),
    /// Verified by another worker: the signature is good; the token is parsed again here.
    Signature {
        consumer: usize,
        credential: Option<Credential>,
        provider: Option<usize>,
    },
}

/// What the pipeline asks of its surroundings: remote key sets, and a verified-token cache.
pub trait Env {
    /// A remote provider's keys.
    fn keys(&self, provider: usize) -> RemoteKeys;
    /// A cached verification of exactly this token, if any.
    fn cached(&self, _token: &str) -> Option<CacheHit> {
        None
    }
    /// Remember a verified token.
    fn remember(&self, _token: &str, _verified: &Arc<VerifiedToken>) {}
    /// A cached authorization decision for this decision-cache key (see
    /// [`CalloutNeeded::cache_key`]), if any: the request then needs no callout.
    fn decision(&self, _cache_key: &[u8; 32]) -> Option<crate::authz::Decision> {
        None
    }
    /// The host the client asked for, where the host knows it better than `:authority`:
    /// ngx_wasm_module's `:authority` is the nginx server's name and port, the client's host
    /// is its `Host` header. `None`: use `:authority`.
    fn client_host(&self) -> Option<String> {
        None
    }
}

/// No remote keys and no cache (tests, or a policy without remote providers).
pub struct NoRemoteKeys;

impl Env for NoRemoteKeys {
    fn keys(&self, _provider: usize) -> RemoteKeys {
        RemoteKeys::Unavailable
    }
}

/// The request as the filter sees it. `headers` includes the pseudo-headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `:path`, query string included.
    pub path: &'a str,
    pub headers: &'a [Header<'a>],
    /// Every name is known to be lowercase ([`RequestView::from_map`]); else the engine
    /// checks.
    names_lowercase: bool,
}

/// A request header: its name (lowercase) and value, borrowed from the host's map.
pub type Header<'a> = (&'a str, &'a str);

/// Borrow an owned header list as [`Header`]s (tests and tools build their requests so).
pub fn header_refs(headers: &[(String, String)]) -> Vec<Header<'_>> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

impl<'a> RequestView<'a> {
    /// Build the view from a full header list (pseudo-headers included).
    pub fn from_headers(headers: &'a [Header<'a>]) -> RequestView<'a> {
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map_or("", |(_, v)| *v)
        };
        RequestView {
            method: get(":method"),
            path: get(":path"),
            headers,
            names_lowercase: false,
        }
    }

    /// Build the view from a decoded header map, whose names are lowercase.
    pub fn from_map(map: &'a crate::wire::Lowercase<'a>) -> RequestView<'a> {
        RequestView {
            names_lowercase: true,
            ..RequestView::from_headers(map)
        }
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// Side signals for the glue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// A token named a `kid` this remote provider does not have: refetch (rate limited).
    pub unknown_kid: Option<usize>,
}

/// Reply with a JSON `{"message": ...}` body.
#[cold]
#[inline(never)]
fn message_body(msg: &str) -> String {
    serde_json::json!({ "message": msg }).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// No credential presented.
    Bearer,
    /// A token failed.
    InvalidToken,
    /// An API key failed.
    Key,
}

#[cold]
#[inline(never)]
fn www_authenticate(policy: &Policy, scheme: Scheme) -> String {
    match (scheme, &policy.realm) {
        (Scheme::Bearer, None) => "Bearer".to_owned(),
        (Scheme::Bearer, Some(r)) => format!("Bearer realm=\"{r}\""),
        (Scheme::InvalidToken, None) => "Bearer error=\"invalid_token\"".to_owned(),
        (Scheme::InvalidToken, Some(r)) => format!("Bearer realm=\"{r}\", error=\"invalid_token\""),
        (Scheme::Key, None) => "Key".to_owned(),
        (Scheme::Key, Some(r)) => format!("Key realm=\"{r}\""),
    }
}

/// An authentication failure, before `anonymous` is considered.
#[derive(Debug, Clone)]
struct AuthFailure {
    scheme: Scheme,
    /// The body (a message object or the claim-failure map).
    body: String,
    reason: String,
}

impl AuthFailure {
    #[cold]
    #[inline(never)]
    fn token(msg: &str) -> Self {
        AuthFailure {
            scheme: Scheme::InvalidToken,
            body: message_body(msg),
            reason: msg.to_owned(),
        }
    }
}

enum Auth<'p> {
    Ok {
        consumer: usize,
        /// Borrowed from the configuration (an API key's id, a JWT credential's key); a
        /// provider token's `kid` is its own.
        credential: Option<Cow<'p, str>>,
        token: Option<Arc<VerifiedToken>>,
    },
    Fail(AuthFailure),
    /// 503 Signing keys unavailable.
    KeysUnavailable,
    Wait(usize),
}

#[cold]
#[inline(never)]
fn forbidden(consumer: &Consumer, reason: &str) -> Outcome<'static> {
    Outcome::Deny(Denial {
        status: 403,
        body: message_body("You cannot consume this service"),
        www_authenticate: None,
        reason: reason.to_owned(),
        consumer: Some(consumer.username.clone()),
    })
}

/// Evaluate one request. An allowed request's edits borrow from `policy` and `req`.
pub fn evaluate<'a>(
    policy: &'a Policy,
    req: &RequestView<'a>,
    now: f64,
    env: &dyn Env,
    signals: &mut Signals,
) -> Outcome<'a> {
    // Header names are compared in lowercase: Kong hands them over as the client wrote them.
    // The glue lowercases them as it decodes the map (`RequestView::from_map`: not checked
    // again); other callers' names are checked, and lowered when one is not.
    let lowered = if req.names_lowercase {
        None
    } else {
        lowercase_names(req)
    };
    let Some(lowered) = lowered else {
        return match pipeline(policy, req, now, env, signals) {
            Ok(outcome) | Err(outcome) => outcome,
        };
    };
    let view: Vec<Header<'_>> = lowered.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let req = RequestView {
        headers: &view,
        ..*req
    };
    match pipeline(policy, &req, now, env, signals) {
        Ok(outcome) | Err(outcome) => outcome.into_owned(),
    }
}

/// The stages in order; an `Err` is an outcome that ends the request early.
fn pipeline<'a>(
    policy: &'a Policy,
    req: &RequestView<'a>,
    now: f64,
    env: &dyn Env,
    signals: &mut Signals,
) -> Result<Outcome<'a>, Outcome<'a>> {
    let mut edits = reserved_headers(policy, req)?;
    if preflight_bypass(policy, req) {
        return Ok(Outcome::Allow(Allowed {
            edits,
            consumer: None,
        }));
    }
    let mut presented = credentials::Presented::default();
    credentials::extract_into(policy, req.headers, req.path, &mut presented);
    let auth = authenticate(policy, &presented, now, env, signals);
    let mut id = identify(policy, auth)?;
    // Moved into the edits (the only use of it), not copied.
    let credential = id.credential.take();
    let (path_only, query) = credentials::split_path(req.path);
    let skip = id.consumer.in_any(&policy.skip_groups);
    let claims = id.token.as_ref().map(|t| &t.claims);
    let perms = access(policy, &id, skip, req.method, path_only)?;
    upstream_headers(policy, &id, credential, &mut edits.set);
    hide_credentials(policy, req, &presented, &id, &mut edits)?;
    let allowed = Allowed {
        edits,
        consumer: Some(Cow::Borrowed(id.consumer.username.as_str())),
    };
    if skip {
        return Ok(Outcome::Allow(allowed));
    }
    let call = Request {
        method: req.method,
        path: path_only,
        query,
        authority: req.header(":authority").or_else(|| req.header("host")),
        headers: req.headers,
        scheme: req.header(":scheme").unwrap_or_default(),
    };
    Ok(callout(policy, env, &id, &perms, claims, &call, allowed))
}

/// Header names in lowercase, when any is not (`None`: the view is fine as it is).
#[inline(never)]
fn lowercase_names<'a>(req: &RequestView<'a>) -> Option<Vec<(String, &'a str)>> {
    req.headers
        .iter()
        .any(|(k, _)| k.bytes().any(|b| b.is_ascii_uppercase()))
        .then(|| {
            req.headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect()
        })
}

/// Stage 1: reserved headers, in any spelling. A duplicate is a 400; every copy is to be
/// cleared.
fn reserved_headers<'a>(
    policy: &Policy,
    req: &RequestView<'a>,
) -> Result<Edits<'a>, Outcome<'static>> {
    match client_reserved(policy, req.headers) {
        Ok(clear) => Ok(Edits {
            clear,
            ..Edits::default()
        }),
        Err(first) => Err(Outcome::Deny(Denial {
            status: 400,
            body: message_body(&format!("Duplicate header '{first}'")),
            www_authenticate: None,
            reason: format!("duplicate reserved header '{first}'"),
            consumer: None,
        })),
    }
}

/// Stage 2: a CORS preflight that `run_on_preflight: false` lets through unauthenticated.
fn preflight_bypass(policy: &Policy, req: &RequestView<'_>) -> bool {
    !policy.run_on_preflight
        && req.method.eq_ignore_ascii_case("OPTIONS")
        && req.header("origin").is_some()
        && req.header("access-control-request-method").is_some()
}

/// Stage 3: the credentials presented, authenticated (before `anonymous` is considered).
fn authenticate<'p>(
    policy: &'p Policy,
    presented: &credentials::Presented<'_>,
    now: f64,
    env: &dyn Env,
    signals: &mut Signals,
) -> Auth<'p> {
    if !presented.tokens.is_empty() && !presented.api_keys.is_empty() || presented.tokens.len() > 1
    {
        Auth::Fail(AuthFailure::token("Multiple tokens provided"))
    } else if let Some(raw) = presented.tokens.first() {
        authenticate_token(policy, raw, now, env, signals)
    } else if presented.api_keys.len() > 1 {
        Auth::Fail(AuthFailure {
            scheme: Scheme::Key,
            body: message_body("Duplicate API key found"),
            reason: "Duplicate API key found".to_owned(),
        })
    } else if let Some(key) = presented.api_keys.first() {
        authenticate_api_key(policy, key)
    } else {
        Auth::Fail(AuthFailure {
            scheme: Scheme::Bearer,
            body: message_body("Unauthorized"),
            reason: "no credential".to_owned(),
        })
    }
}

/// Who the request is from, once authenticated.
struct Identity<'p> {
    consumer: &'p Consumer,
    credential: Option<Cow<'p, str>>,
    anonymous: bool,
    token: Option<Arc<VerifiedToken>>,
}

/// Stage 4: the consumer: the authenticated one, or `anonymous` for any 401; else the 401,
/// the 503 of keys never loaded, or a wait for them.
fn identify<'p>(policy: &'p Policy, auth: Auth<'p>) -> Result<Identity<'p>, Outcome<'static>> {
    let (consumer_idx, credential, anonymous, token) = match auth {
        Auth::Ok {
            consumer,
            credential,
            token,
        } => (consumer, credential, false, token),
        Auth::Fail(f) => match policy.anonymous {
            Some(anon) => (anon, None, true, None),
            None => {
                return Err(Outcome::Deny(Denial {
                    status: 401,
                    body: f.body,
                    www_authenticate: Some(www_authenticate(policy, f.scheme)),
                    reason: f.reason,
                    consumer: None,
                }))
            }
        },
        Auth::KeysUnavailable => {
            return Err(Outcome::Deny(Denial {
                status: 503,
                body: message_body("Signing keys unavailable"),
                www_authenticate: None,
                reason: "signing keys unavailable".to_owned(),
                consumer: None,
            }))
        }
        Auth::Wait(p) => return Err(Outcome::WaitForKeys(p)),
    };
    let Some(consumer) = policy.consumers.get(consumer_idx) else {
        return Err(Outcome::Deny(Denial {
            status: 401,
            body: message_body("Unauthorized"),
            www_authenticate: Some(www_authenticate(policy, Scheme::Bearer)),
            reason: "unknown consumer".to_owned(),
            consumer: None,
        }));
    };
    Ok(Identity {
        consumer,
        credential,
        anonymous,
        token,
    })
}

/// Stage 5: the group ACL, the ambiguous-path rule, route rules and local permissions.
/// Returns the permissions the token's claim grants (for the callout).
fn access(
    policy: &Policy,
    id: &Identity<'_>,
    skip: bool,
    method: &str,
    path_only: &str,
) -> Result<Vec<String>, Outcome<'static>> {
    let consumer = id.consumer;
    match &policy.acl {
        Some(Acl::Allow(groups)) if !consumer.in_any(groups) => {
            return Err(forbidden(consumer, "consumer not in an allowed group"))
        }
        Some(Acl::Deny(groups)) if consumer.in_any(groups) => {
            return Err(forbidden(consumer, "consumer in a denied group"))
        }
        _ => {}
    }
    // A path an upstream may resolve to another resource than the one matched here is never
    // matched by a rule nor sent to the authorization service: refused where one is due.
    if needs_path_decision(policy, consumer, skip) && crate::access::ambiguous_path(path_only) {
        return Err(forbidden(
            consumer,
            "ambiguous path where a path-based decision is due",
        ));
    }
    if !consumer.routes.allows(method, path_only) {
        return Err(forbidden(consumer, "route not allowed for consumer"));
    }
    // The permissions are read only where something reads them: the local permission model
    // or the callout's body.
    if policy.permissions.is_none() && policy.authz.is_none() {
        return Ok(Vec::new());
    }
    let claims = id.token.as_ref().map(|t| &t.claims);
    let perms = granted_permissions(policy, consumer, claims);
    if let Some(p) = &policy.permissions {
        if !skip && !p.grants(perms.iter().map(String::as_str), method, path_only) {
            return Err(forbidden(consumer, "no permission grants this request"));
        }
    }
    Ok(perms)
}

/// Stage 6: the identity headers, the claims' headers and the payload, for the upstream.
/// The names are static and the consumer's values borrowed from the configuration: no
/// allocation but the credential's id and the claims' values.
fn upstream_headers<'a>(
    policy: &'a Policy,
    id: &Identity<'a>,
    credential: Option<Cow<'a, str>>,
    set: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) {
    let consumer = id.consumer;
    set.reserve(6);
    set.push((Cow::Borrowed("x-consumer-id"), Cow::Borrowed(&consumer.id)));
    set.push((
        Cow::Borrowed("x-consumer-username"),
        Cow::Borrowed(&consumer.username),
    ));
    if let Some(cid) = &consumer.custom_id {
        set.push((Cow::Borrowed("x-consumer-custom-id"), Cow::Borrowed(cid)));
    }
    if let Some(cred) = credential {
        set.push((Cow::Borrowed("x-credential-identifier"), cred));
    }
    if let Some(g) = &consumer.groups_header {
        set.push((Cow::Borrowed("x-consumer-groups"), Cow::Borrowed(g)));
    }
    if id.anonymous {
        set.push((Cow::Borrowed("x-anonymous-consumer"), Cow::Borrowed("true")));
    }
    if let Some(t) = &id.token {
        // A self-signed consumer's claims say what it likes: none is copied.
        let copied = if consumer.self_signed {
            &[][..]
        } else {
            &policy.claims_to_headers[..]
        };
        for (claim, header) in copied {
            if let Some(v) = t.claims.get(claim).and_then(claim_header_value) {
                set.push((Cow::Borrowed(header), Cow::Owned(v)));
            }
        }
        if let Some(h) = &policy.forward_payload_header {
            set.push((Cow::Borrowed(h), Cow::Owned(t.payload_segment.to_owned())));
        }
    }
}

/// Stage 7: `hide_credentials`: the credential blanked (header, cookie) or cut (query).
#[inline(never)]
fn hide_credentials<'a>(
    policy: &Policy,
    req: &RequestView<'a>,
    presented: &credentials::Presented<'a>,
    id: &Identity<'_>,
    edits: &mut Edits<'a>,
) -> Result<(), Outcome<'static>> {
    if !policy.hide_credentials {
        return Ok(());
    }
    hide(req, &presented.locations, edits).map_err(|name| {
        Outcome::Deny(Denial {
            status: 400,
            body: message_body(&format!("Duplicate header '{name}'")),
            www_authenticate: None,
            reason: format!("credential header '{name}' repeated with hide_credentials"),
            consumer: Some(id.consumer.username.clone()),
        })
    })
}

/// What the callout says about the request itself.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    /// `:authority` (else `host`), unless the host knows the client's host better.
    authority: Option<&'a str>,
    /// Every request header, names in lowercase (the `opa-envoy` body reads them).
    headers: &'a [Header<'a>],
    scheme: &'a str,
}

/// Stage 8: the authorization callout, answered by a cached decision when there is one.
fn callout<'a>(
    policy: &Policy,
    env: &dyn Env,
    id: &Identity<'_>,
    perms: &[String],
    claims: Option<&Map<String, Value>>,
    req: &Request<'_>,
    allowed: Allowed<'a>,
) -> Outcome<'a> {
    let Some(cfg) = &policy.authz else {
        return Outcome::Allow(allowed);
    };
    let client_host = env.client_host();
    let input = crate::authz::CalloutInput {
        method: req.method,
        host: client_host.as_deref().or(req.authority).unwrap_or_default(),
        path: req.path,
        query: req.query,
        consumer: id.consumer,
        permissions: perms,
        claims,
        headers: req.headers,
        scheme: req.scheme,
    };
    let Some(body) = crate::authz::body(policy, &input) else {
        return forbidden(id.consumer, "the callout body could not be built");
    };
    let cache_key = crate::authz::cache_key(&policy.fingerprint, &body);
    if let Some(d) = env.decision(&cache_key) {
        return crate::authz::finish(cfg, allowed, &d);
    }
    Outcome::Callout(CalloutNeeded {
        allowed,
        body,
        cache_key,
    })
}

/// Step 1: the reserved headers the client sent, to blank and remove, each under the name the
/// client used (lowercase): `x_consumer_id` for a copy spelt `X_Consumer_ID`, so that the glue
/// clears that very header (hosts match names case-insensitively, `_` and `-` apart). `Err`
/// names (lowercase, with `-`) the reserved header of the first header in request order whose
/// reserved header was sent more than once, in any spelling. `headers` have lowercase names.
#[inline(never)]
fn client_reserved<'a>(
    policy: &Policy,
    headers: &[Header<'a>],
) -> Result<Vec<Cow<'a, str>>, String> {
    // (the client's name, index in policy.reserved)
    let found: Vec<(&str, usize)> = headers
        .iter()
        .filter_map(|&(name, _)| reserved_index(policy, name).map(|r| (name, r)))
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts = vec![0u8; policy.reserved.len()];
    for (_, r) in &found {
        if let Some(c) = counts.get_mut(*r) {
            *c = c.saturating_add(1);
        }
    }
    if let Some((_, r)) = found
        .iter()
        .find(|(_, r)| counts.get(*r).is_some_and(|c| *c > 1))
    {
        let name = policy.reserved.get(*r).map_or("", String::as_str);
        return Err(crate::config::canonical_header(name));
    }
    Ok(found
        .into_iter()
        .map(|(name, _)| Cow::Borrowed(name))
        .collect())
}

/// The reserved header `name` (lowercase) counts as, with `_` read as `-`: its index in
/// `policy.reserved`. A name no reserved name has the length of is ruled out at once (most
/// request headers); the list is short and sorted: a linear scan comparing lengths first calls
/// no string comparison for most others; a long list is searched.
fn reserved_index(policy: &Policy, name: &str) -> Option<usize> {
    use crate::config::{header_order, length_bit, same_header};
    if policy.reserved_lengths & length_bit(name) == 0 {
        return None;
    }
    if policy.reserved.len() > 32 {
        return policy
            .reserved
            .binary_search_by(|r| header_order(r, name))
            .ok();
    }
    policy.reserved.iter().position(|r| same_header(r, name))
}

/// Whether the request needs a path-based decision: the consumer's route rules, local
/// permissions or the callout (the latter two not for `skip_groups`).
fn needs_path_decision(policy: &Policy, consumer: &Consumer, skip: bool) -> bool {
    consumer.routes.is_restricted()
        || !skip && (policy.permissions.is_some() || policy.authz.is_some())
}

/// The permissions a request's token grants: its permissions claim, none for a self-signed
/// consumer (whose claim is whatever it signed).
fn granted_permissions(
    policy: &Policy,
    consumer: &Consumer,
    claims: Option<&Map<String, Value>>,
) -> Vec<String> {
    if consumer.self_signed {
        return Vec::new();
    }
    claims
        .and_then(|c| c.get(&policy.permissions_claim))
        .map(permission_names)
        .unwrap_or_default()
}

/// The names in a permissions claim: a list of strings (other elements ignored) or one string.
fn permission_names(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A claim's value as a header value, or `None` when it holds a control character.
pub fn claim_header_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    if s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        None
    } else {
        Some(s)
    }
}

/// Hide every presented credential from the upstream. `Err(name)`: a header that carries one
/// is repeated, and Kong would forward every copy but the first whatever the filter does.
fn hide<'a>(
    req: &RequestView<'a>,
    locations: &[Location<'a>],
    edits: &mut Edits<'a>,
) -> Result<(), String> {
    let repeated = |name: &str| req.headers.iter().filter(|(n, _)| *n == name).count() > 1;
    for loc in locations {
        let name = match loc {
            Location::Header(h) => h.as_ref(),
            Location::Cookie(_) => "cookie",
            Location::Query(_) => continue,
        };
        if repeated(name) {
            return Err(name.to_owned());
        }
    }
    let mut query_names: Vec<&str> = Vec::new();
    let mut cookie_names: Vec<&str> = Vec::new();
    for loc in locations {
        match loc {
            Location::Header(h) => {
                if !edits.clear.contains(h) {
                    edits.clear.push(h.clone());
                }
            }
            Location::Query(q) => query_names.push(q),
            Location::Cookie(c) => cookie_names.push(c),
        }
    }
    if !query_names.is_empty() {
        edits.path = Some(credentials::strip_query_params(req.path, &query_names));
    }
    if !cookie_names.is_empty() {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| *n == "cookie")
            .map(|(_, v)| *v)
            .collect();
        let rest = credentials::strip_cookies(&values, &cookie_names);
        edits.clear.push(Cow::Borrowed("cookie"));
        if !rest.is_empty() {
            edits.set.push((Cow::Borrowed("cookie"), Cow::Owned(rest)));
        }
    }
    Ok(())
}

fn authenticate_api_key<'p>(policy: &'p Policy, key: &str) -> Auth<'p> {
    let digest = sha256(key.as_bytes());
    match policy.api_keys.get(&digest) {
        Some(cred) if ct_eq(&cred.digest, &digest) => Auth::Ok {
            consumer: cred.consumer,
            credential: cred.id.as_deref().map(Cow::Borrowed),
            token: None,
        },
        _ => Auth::Fail(AuthFailure {
            scheme: Scheme::Key,
            body: message_body("Unauthorized"),
            reason: "unknown API key".to_owned(),
        }),
    }
}

/// The key set a provider's tokens are checked against, or why there is none.
#[inline(never)]
fn provider_keys<'a>(
    policy: &'a Policy,
    provider: usize,
    env: &dyn Env,
    holder: &'a mut Option<Arc<KeySet>>,
) -> Result<&'a KeySet, Auth<'static>> {
    match policy.providers.get(provider).map(|p| &p.source) {
        Some(KeySource::Local(set)) => Ok(set),
        Some(KeySource::Remote(_)) => match env.keys(provider) {
            RemoteKeys::Loaded(s) => Ok(&**holder.insert(s)),
            RemoteKeys::Pending => Err(Auth::Wait(provider)),
            RemoteKeys::Unavailable => Err(Auth::KeysUnavailable),
        },
        None => Err(Auth::Fail(AuthFailure::token("Unauthorized"))),
    }
}

/// Whether a cached verification still holds: for a provider token, its key is still in
/// the provider's current key set (so a key removed by rotation stops its tokens).
fn still_valid(policy: &Policy, env: &dyn Env, v: &VerifiedToken) -> bool {
    let Some(p) = v.provider else {
        return true;
    };
    let mut holder = None;
    match provider_keys(policy, p, env, &mut holder) {
        Ok(set) => set.keys.iter().any(|e| {
            Some(e.fingerprint) == v.key
                && e.kid.as_deref() == v.credential.as_ref().and_then(|c| c.text(policy))
        }),
        Err(_) => false,
    }
}

#[cold]
#[inline(never)]
fn parse_failure(e: ParseError) -> Auth<'static> {
    Auth::Fail(AuthFailure::token(match e {
        ParseError::TooLarge => "Bad token; too large",
        ParseError::InvalidJson => "Bad token; invalid JSON",
        ParseError::InvalidAlg => "Bad token; invalid alg",
    }))
}

fn authenticate_token<'p>(
    policy: &'p Policy,
    raw: &str,
    now: f64,
    env: &dyn Env,
    signals: &mut Signals,
) -> Auth<'p> {
    if raw.len() > policy.max_token_bytes {
        return parse_failure(ParseError::TooLarge);
    }
    let verified = match env.cached(raw) {
        Some(CacheHit::Full(v)) if still_valid(policy, env, &v) => v,
        // Verified by another worker. Provider tokens are verified again here: the shared
        // entry does not name the key, so a rotated-out key could not be noticed.
        Some(CacheHit::Signature {
            consumer,
            credential,
            provider: None,
        }) if policy.consumers.get(consumer).is_some()
            && credential
                .as_ref()
                .is_none_or(|c| owned_by(policy, c, consumer)) =>
        {
            let token = match jwt::parse(raw, policy.max_token_bytes) {
                Ok(t) => t,
                Err(e) => return parse_failure(e),
            };
            let v = Arc::new(VerifiedToken {
                consumer,
                credential,
                provider: None,
                key: None,
                payload_segment: kept_payload(policy, &token),
                claims: token.claims,
            });
            env.remember(raw, &v);
            v
        }
        _ => match verify_fresh(policy, raw, env, signals) {
            Ok(v) => {
                env.remember(raw, &v);
                v
            }
            Err(auth) => return auth,
        },
    };
    check_verified(policy, verified, now)
}

/// Whether a credential read from the shared level is one of this consumer's (an index is
/// only trusted once checked against the configuration).
fn owned_by(policy: &Policy, c: &Credential, consumer: usize) -> bool {
    match c {
        Credential::Config(i) => policy
            .jwt_credentials
            .at(*i)
            .is_some_and(|cred| cred.consumer == consumer),
        Credential::Named(_) => true,
    }
}

/// Claims and revocation: checked on every request, cached or not.
fn check_verified(policy: &Policy, v: Arc<VerifiedToken>, now: f64) -> Auth<'_> {
    let audiences = match v.provider.and_then(|p| policy.providers.get(p)) {
        Some(p) if !p.audiences.is_empty() => &p.audiences,
        _ => &policy.audiences,
    };
    let rules = ClaimRules {
        verify_exp: policy.verify_exp,
        verify_nbf: policy.verify_nbf,
        maximum_expiration: policy.maximum_expiration,
        clock_skew: policy.clock_skew,
        audiences,
    };
    if let Err(failures) = jwt::check_claims(&v.claims, &rules, now) {
        let reason = format!(
            "claims: {}",
            failures.keys().cloned().collect::<Vec<_>>().join(",")
        );
        return Auth::Fail(AuthFailure {
            scheme: Scheme::InvalidToken,
            body: Value::Object(failures).to_string(),
            reason,
        });
    }
    if revoked(policy, v.consumer, &v.claims) {
        return Auth::Fail(AuthFailure::token("Token revoked"));
    }
    let credential = match &v.credential {
        None => None,
        Some(Credential::Config(i)) => match policy.jwt_credentials.at(*i) {
            Some(c) => Some(Cow::Borrowed(c.key_id.as_str())),
            None => return Auth::Fail(AuthFailure::token("Unauthorized")),
        },
        Some(Credential::Named(kid)) => Some(Cow::Owned(kid.clone())),
    };
    Auth::Ok {
        consumer: v.consumer,
        credential,
        token: Some(v),
    }
}

/// Parse, find the credential or provider key, and verify the signature.
#[inline(never)]
fn verify_fresh(
    policy: &Policy,
    raw: &str,
    env: &dyn Env,
    signals: &mut Signals,
) -> Result<Arc<VerifiedToken>, Auth<'static>> {
    let token: Token<'_> = jwt::parse(raw, policy.max_token_bytes).map_err(parse_failure)?;
    let fail = |m: &str| Auth::Fail(AuthFailure::token(m));

    // A JWKS provider, chosen by `iss`.
    let provider = token
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| policy.provider_for(iss));
    let input = token.signing_input.as_bytes();
    let (consumer, credential, key) = if let Some(pi) = provider {
        let Some(p) = policy.providers.get(pi) else {
            return Err(fail("Unauthorized"));
        };
        let mut holder = None;
        let set = provider_keys(policy, pi, env, &mut holder)?;
        let kid_value = token.header_value("kid");
        let kid = match kid_value.as_deref() {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(fail("No credentials found for given 'kid'")),
        };
        let kid_used = match kid {
            Some(kid) => {
                let Some(entry) = set.by_kid(kid) else {
                    if matches!(p.source, KeySource::Remote(_)) {
                        signals.unknown_kid = Some(pi);
                    }
                    return Err(fail("No credentials found for given 'kid'"));
                };
                if !entry.fits(token.alg) {
                    return Err(fail("Invalid algorithm"));
                }
                if !entry.key.verify(token.alg, input, &token.signature) {
                    return Err(fail("Invalid signature"));
                }
                (Some(Credential::Named(kid.to_owned())), entry.fingerprint)
            }
            None => {
                let mut any = false;
                let mut found = None;
                for entry in set.candidates(token.alg) {
                    any = true;
                    if entry.key.verify(token.alg, input, &token.signature) {
                        found = Some((entry.kid.clone().map(Credential::Named), entry.fingerprint));
                        break;
                    }
                }
                match (any, found) {
                    (false, _) => return Err(fail("No credentials found for given 'kid'")),
                    (true, None) => return Err(fail("Invalid signature")),
                    (true, Some(k)) => k,
                }
            }
        };
        (p.consumer, kid_used.0, Some(kid_used.1))
    } else {
        // A consumer credential, chosen by the key claim (claims first, then the header).
        let name = &policy.key_claim_name;
        let in_header;
        let key_value = match token.claims.get(name) {
            Some(Value::Null) | None => {
                in_header = token.header_value(name);
                in_header.as_deref().filter(|v| !v.is_null())
            }
            Some(v) => Some(v),
        };
        let key = match key_value {
            None => return Err(fail(&format!("No mandatory '{name}' in claims"))),
            Some(Value::String(s)) if !s.is_empty() => s.as_str(),
            Some(_) => return Err(fail(&format!("Invalid '{name}' in claims"))),
        };
        let Some((index, cred)) = policy.jwt_credentials.find(key) else {
            return Err(fail(&format!("No credentials found for given '{name}'")));
        };
        if cred.alg != token.alg {
            return Err(fail("Invalid algorithm"));
        }
        if !cred.key.verify(token.alg, input, &token.signature) {
            return Err(fail("Invalid signature"));
        }
        (cred.consumer, Some(Credential::Config(index)), None)
    };
    Ok(Arc::new(VerifiedToken {
        consumer,
        credential,
        provider,
        key,
        payload_segment: kept_payload(policy, &token),
        claims: token.claims,
    }))
}

/// A `jti` or `sub` as revocations compare it: a string as it is, a number by its JSON text
/// (`123` is revoked by `"123"`); other values are never revoked by name.
fn revocation_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

fn revoked(policy: &Policy, consumer: usize, claims: &Map<String, Value>) -> bool {
    let cutoff = policy
        .consumers
        .get(consumer)
        .map_or(0.0, |c| c.issued_before);
    // Nothing revoked (the usual configuration): no claim to read.
    if policy.revoked_jti.is_empty() && policy.subjects_issued_before.is_empty() && cutoff <= 0.0 {
        return false;
    }
    if let Some(jti) = claims.get("jti").and_then(revocation_text) {
        if policy.revoked_jti.contains(jti.as_ref()) {
            return true;
        }
    }
    let iat = jwt::numeric_claim(claims, "iat");
    let before = |cutoff: f64| iat.is_none_or(|t| t < cutoff);
    if let Some(sub) = claims.get("sub").and_then(revocation_text) {
        if let Some(&cutoff) = policy.subjects_issued_before.get(sub.as_ref()) {
            if before(cutoff) {
                return true;
            }
        }
    }
    cutoff > 0.0 && before(cutoff)
}

#[cfg(test)]
mod tests;
