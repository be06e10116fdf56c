//! Configuration: parse the operator's JSON, validate it, and compile it once into a [`Policy`].
//!
//! Every error names the JSON path of the offending field, e.g.
//! `consumers[2].jwt_secrets[0].rsa_public_key: not a PEM public key`. Keys, secrets and
//! regexes are parsed here, never per request.

mod consumers;
pub mod raw;
mod shape;

pub use consumers::{ApiKeys, ConsumerTable, JwtCredentials};

use crate::access::{Permissions, RegexCache, Route, RouteSet};
use crate::jwks::{KeySet, KeySetMode};
use base64::Engine as _;
use bouncer_crypto::{Alg, Key};
use raw::{RawConfig, RawJwtSecret, RawRoute};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The identity headers of CONTRACT.md section 3, always reserved.
pub const IDENTITY_HEADERS: [&str; 6] = [
    "x-consumer-id",
    "x-consumer-username",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "x-consumer-groups",
    "x-anonymous-consumer",
];

/// The method-override headers of CONTRACT.md section 3, always reserved: an upstream that
/// honours them would run another method than the one the rules checked.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers the filter never sets for the upstream (CONTRACT.md section 1): hop-by-hop and
/// framing headers, and request headers that are the client's own. Pseudo-headers are no
/// valid header names at all.
pub const FORBIDDEN_TARGETS: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "cookie",
    "authorization",
];

/// A header name byte as an upstream may read it: ASCII lowercase, `_` as `-` (CGI, WSGI and
/// Rack map `X_A` and `X-A` to the same variable).
fn header_byte(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether two header names are one header once case is ignored and `_` is read as `-`.
pub fn same_header(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| header_byte(x) == header_byte(y))
}

/// The bit of [`Policy::reserved_lengths`] a header name of this length sets.
pub fn length_bit(name: &str) -> u64 {
    1u64 << name.len().min(63)
}

/// The order of header names compared as [`same_header`] compares them.
pub fn header_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes().map(header_byte).cmp(b.bytes().map(header_byte))
}

/// A header name in lowercase with every `_` as `-`: how a reserved name is reported.
pub fn canonical_header(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// A configuration error: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A consumer, compiled.
#[derive(Debug)]
pub struct Consumer {
    pub username: String,
    pub id: String,
    pub custom_id: Option<String>,
    pub groups: Vec<String>,
    /// `X-Consumer-Groups` value (comma-space joined), `None` without groups or when hidden.
    pub groups_header: Option<String>,
    /// The consumer's own routes plus those of its groups; empty means unrestricted.
    pub routes: RouteSet,
    /// Tokens with `iat` before this (or without `iat`) are revoked; 0 disables.
    pub issued_before: f64,
    /// Holds its own signing secret or key (CONTRACT.md section 1): its permissions claim
    /// grants nothing, its claims are not copied to headers, its callout subject is its `id`.
    pub self_signed: bool,
}

impl Consumer {
    /// Whether the consumer is in any of `groups`.
    pub fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// A JWT credential: which consumer it belongs to, its algorithm and its key.
#[derive(Debug)]
pub struct JwtCredential {
    pub consumer: usize,
    pub key_id: String,
    pub alg: Alg,
    pub key: Key,
}

/// An API key credential.
#[derive(Debug)]
pub struct ApiKeyCredential {
    pub consumer: usize,
    pub id: Option<String>,
    pub digest: [u8; 32],
}

/// Kong's `acl` plugin semantics.
#[derive(Debug)]
pub enum Acl {
    Allow(Vec<String>),
    Deny(Vec<String>),
}

/// Where a JWKS provider's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// Keys given in the configuration.
    Local(KeySet),
    /// Keys fetched from an endpoint with `dispatch_http_call`.
    Remote(RemoteJwks),
}

/// A remote JWKS endpoint.
#[derive(Debug, Clone)]
pub struct RemoteJwks {
    pub upstream: String,
    pub authority: String,
    pub path: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
}

/// A JWKS identity provider.
#[derive(Debug)]
pub struct Provider {
    pub issuer: String,
    pub consumer: usize,
    pub audiences: Vec<String>,
    pub source: KeySource,
}

/// The authorization callout (CONTRACT.md section 4).
#[derive(Debug, Clone)]
pub struct AuthzCallout {
    pub upstream: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
    pub cache_ttl_seconds: u64,
    pub status_on_error: u16,
    pub failure_mode_allow: bool,
    pub allowed_headers: Vec<String>,
    pub input_format: InputFormat,
}

/// The callout body's shape (`authz.input_format`, CONTRACT.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// `{"input": {"method", "host", "path", "query", "consumer", ...}}`.
    #[default]
    Bouncer,
    /// The input document OPA-Envoy policies read (`input.attributes.request.http`, ...),
    /// with Bouncer's identity under `input.bouncer`.
    OpaEnvoy,
}

/// The compiled configuration. Built once per `on_configure`; shared by every request.
#[derive(Debug)]
pub struct Policy {
    pub header_names: Vec<String>,
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    pub key_names: Vec<String>,
    pub key_claim_name: String,
    pub verify_exp: bool,
    pub verify_nbf: bool,
    pub maximum_expiration: f64,
    pub clock_skew: f64,
    pub audiences: Vec<String>,
    pub realm: Option<String>,
    pub anonymous: Option<usize>,
    pub run_on_preflight: bool,
    pub hide_credentials: bool,
    pub consumers: Vec<Consumer>,
    pub jwt_credentials: JwtCredentials,
    pub api_keys: ApiKeys,
    pub acl: Option<Acl>,
    pub claims_to_headers: Vec<(String, String)>,
    pub forward_payload_header: Option<String>,
    pub revoked_jti: HashSet<String>,
    pub subjects_issued_before: HashMap<String, f64>,
    pub max_token_bytes: usize,
    /// Every header name a client may never send through (lowercase).
    pub reserved: Vec<String>,
    /// Bit `n` set when a reserved name is `n` bytes long (`n` < 64; bit 63 for any longer
    /// one): most request headers are ruled out by their length alone.
    pub reserved_lengths: u64,
    pub providers: Vec<Provider>,
    pub permissions: Option<Permissions>,
    pub permissions_claim: String,
    pub skip_groups: Vec<String>,
    pub authz: Option<AuthzCallout>,
    /// SHA-256 of the configuration text: decision-cache keys start with it, so a decision
    /// never outlives the configuration it was made under.
    pub fingerprint: [u8; 32],
}

impl Policy {
    /// Parse and compile a configuration string. An empty string is the empty object.
    pub fn from_json(text: &str) -> Result<Policy, ConfigError> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        if !text.trim_start().starts_with('{') {
            return Err(ConfigError::new(
                "",
                "the configuration must be a JSON object",
            ));
        }
        // serde would take a JSON array for a struct (fields by position): refuse that first.
        let counts = shape::check_objects(text)?;
        // A first parse without JSON paths or uniqueness checks as it goes; if it finds any
        // error or duplicate, the text is parsed again exactly, for the error to report.
        let raw = match parse_fast(text, counts) {
            Some(raw) => raw,
            None => parse(text, counts)?,
        };
        let mut policy = compile(raw)?;
        policy.fingerprint = bouncer_crypto::sha256(text.as_bytes());
        Ok(policy)
    }

    /// Index of the provider for an issuer, if any.
    pub fn provider_for(&self, issuer: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.issuer == issuer)
    }
}

/// The typed parse, consumers compiled as they come ([`consumers`]), without JSON paths or
/// uniqueness checks: `None` on any error or duplicate (then [`parse`] tells which).
fn parse_fast(text: &str, counts: consumers::Counts) -> Option<RawConfig> {
    use serde::Deserialize as _;
    consumers::size_next_parse(counts, false);
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = RawConfig::deserialize(&mut de);
    consumers::size_next_parse(consumers::Counts::default(), false);
    let mut raw = raw.ok()?;
    de.end().ok()?;
    (!raw.consumers.needs_exact()).then_some(raw)
}

/// The typed parse, exactly: serde's errors with their JSON path, consumers compiled as they
/// come ([`consumers`]) and checked for duplicates in order.
fn parse(text: &str, counts: consumers::Counts) -> Result<RawConfig, ConfigError> {
    consumers::size_next_parse(counts, true);
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: Result<RawConfig, _> = serde_path_to_error::deserialize(&mut de);
    consumers::size_next_parse(consumers::Counts::default(), false);
    let raw = raw.map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, redact(&strip_position(&e.inner().to_string())))
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", strip_position(&e.to_string())))?;
    Ok(raw)
}

/// serde's "invalid type: integer `123`, expected a string" quotes the value, which may be a
/// mistyped secret: keep the kind, drop the value.
fn redact(msg: &str) -> String {
    if !(msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("invalid length"))
    {
        return msg.to_owned();
    }
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                quote = Some(c);
                // Drop the space before the quoted value too.
                if out.ends_with(' ') {
                    out.pop();
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// serde_json appends " at line L column C": keep it, it helps, but drop it for path errors
/// where the path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_owned(),
        None => msg.to_owned(),
    }
}

/// Whether `name` is a valid HTTP header field name (RFC 9110 token), lowercase.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

fn header_name(path: String, name: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    if valid_header_name(&lower) {
        Ok(lower)
    } else {
        Err(ConfigError::new(path, "not a valid header name"))
    }
}

fn header_names(field: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| header_name(format!("{field}[{i}]"), n))
        .collect()
}

/// The names clients send credentials in: never a header the filter sets.
struct CredentialNames<'a> {
    header_names: &'a [String],
    key_names: &'a [String],
}

/// Whether `h` (a valid, lowercase header name) may be a header the filter sets for the
/// upstream at `path`: not a hop-by-hop, framing or client request header, not a credential
/// header, not an identity or method-override header, not one of `taken` (the headers the
/// filter already sets), in any spelling that is the same header with `_` read as `-`.
fn header_target(
    path: &str,
    h: &str,
    credentials: &CredentialNames<'_>,
    taken: &[String],
) -> Result<(), ConfigError> {
    let is = |names: &[&str]| names.iter().any(|n| same_header(n, h));
    let listed = |names: &[String]| names.iter().any(|n| same_header(n, h));
    let message = if is(&FORBIDDEN_TARGETS) {
        format!("'{h}' is a hop-by-hop, framing or client request header")
    } else if listed(credentials.header_names) {
        format!("'{h}' is a credential header (header_names)")
    } else if listed(credentials.key_names) {
        format!("'{h}' is a credential header (key_names)")
    } else if is(&METHOD_OVERRIDE_HEADERS) {
        format!("'{h}' is a method-override header")
    } else if is(&IDENTITY_HEADERS) || listed(taken) {
        format!("'{h}' is already set by the filter")
    } else {
        return Ok(());
    };
    Err(ConfigError::new(path, message))
}

fn non_empty_names(field: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "must not be empty",
            ));
        }
    }
    Ok(names.to_vec())
}

fn finite_non_negative(path: &str, v: f64) -> Result<f64, ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(ConfigError::new(path, "must be a non-negative number"))
    }
}

/// Decode a base64 secret (`secret_is_base64`) in the standard or URL-safe alphabet, padded or
/// not: how the filter reads one (the CLI's `bouncer token` calls this too).
pub fn decode_base64_secret(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let cfg = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg);
    let s = s.trim();
    standard.decode(s).ok().or_else(|| url.decode(s).ok())
}

fn compile_route(path: &str, r: &RawRoute, cache: &mut RegexCache) -> Result<Route, ConfigError> {
    Route::compile(&r.methods, &r.path, cache)
        .map_err(|(field, msg)| ConfigError::new(format!("{path}.{field}"), msg))
}

fn compile_routes(
    path: &str,
    routes: &[RawRoute],
    cache: &mut RegexCache,
) -> Result<Vec<Route>, ConfigError> {
    routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // An empty path: a first parse of consumers, whose errors are found again.
            let at = if path.is_empty() {
                String::new()
            } else {
                format!("{path}[{i}]")
            };
            compile_route(&at, r, cache)
        })
        .collect()
}

fn compile_jwt_secret(path: &str, s: &RawJwtSecret) -> Result<(Alg, Key), ConfigError> {
    if s.key.is_empty() {
        return Err(ConfigError::new(format!("{path}.key"), "must not be empty"));
    }
    let alg = Alg::parse(&s.algorithm).ok_or_else(|| {
        ConfigError::new(
            format!("{path}.algorithm"),
            "must be one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA",
        )
    })?;
    // Exactly the key field that fits the algorithm family, or `jwk`.
    let (field, given): (&str, Option<&String>) = if alg.is_hmac() {
        ("secret", s.secret.as_ref())
    } else if matches!(
        alg,
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
    ) {
        ("rsa_public_key", s.rsa_public_key.as_ref())
    } else {
        ("public_key", s.public_key.as_ref())
    };
    for (other, present) in [
        ("secret", s.secret.is_some()),
        ("rsa_public_key", s.rsa_public_key.is_some()),
        ("public_key", s.public_key.is_some()),
    ] {
        if present && other != field {
            return Err(ConfigError::new(
                format!("{path}.{other}"),
                format!("not used with algorithm {}", alg.name()),
            ));
        }
    }
    if s.secret_is_base64 && !alg.is_hmac() {
        return Err(ConfigError::new(
            format!("{path}.secret_is_base64"),
            format!("not used with algorithm {}", alg.name()),
        ));
    }
    let key = match (given, &s.jwk) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.jwk"),
                format!("give either {field} or jwk, not both"),
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                format!("{path}.{field}"),
                format!("required for algorithm {}", alg.name()),
            ))
        }
        (Some(v), None) if alg.is_hmac() => {
            let bytes = if s.secret_is_base64 {
                decode_base64_secret(v)
                    .ok_or_else(|| ConfigError::new(format!("{path}.secret"), "not valid base64"))?
            } else {
                v.as_bytes().to_vec()
            };
            if bytes.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.secret"),
                    "must not be empty",
                ));
            }
            Key::hmac(&bytes)
        }
        (Some(v), None) => Key::from_pem(v)
            .map_err(|e| ConfigError::new(format!("{path}.{field}"), e.to_string()))?,
        (None, Some(jwk)) => {
            if let Some(a) = jwk.get("alg").and_then(serde_json::Value::as_str) {
                if a != alg.name() {
                    return Err(ConfigError::new(
                        format!("{path}.jwk"),
                        format!(
                            "its alg {a} is not the credential's algorithm {}",
                            alg.name()
                        ),
                    ));
                }
            }
            if let Some(u) = jwk.get("use") {
                if u.as_str() != Some("sig") {
                    return Err(ConfigError::new(
                        format!("{path}.jwk"),
                        "its use is not \"sig\"",
                    ));
                }
            }
            Key::from_jwk(jwk)
                .map_err(|e| ConfigError::new(format!("{path}.jwk"), e.to_string()))?
        }
    };
    if !key.fits(alg) {
        let f = if s.jwk.is_some() { "jwk" } else { field };
        return Err(ConfigError::new(
            format!("{path}.{f}"),
            format!("a {} key cannot verify {}", key.kind(), alg.name()),
        ));
    }
    Ok((alg, key))
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = (*pair.first()? as char).to_digit(16)?;
        let lo = (*pair.get(1)? as char).to_digit(16)?;
        *o = u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()?;
    }
    Some(out)
}

/// Whether a configured value may go into a header as is.
fn header_value_ok(v: &str) -> bool {
    !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn compile(raw: RawConfig) -> Result<Policy, ConfigError> {
    let header_names_v = header_names("header_names", &raw.header_names)?;
    let uri_param_names = non_empty_names("uri_param_names", &raw.uri_param_names)?;
    let cookie_names = non_empty_names("cookie_names", &raw.cookie_names)?;
    let key_names = header_names("key_names", &raw.key_names)?;
    if raw.key_claim_name.is_empty() {
        return Err(ConfigError::new("key_claim_name", "must not be empty"));
    }
    let mut verify_exp = false;
    let mut verify_nbf = false;
    for (i, c) in raw.claims_to_verify.iter().enumerate() {
        match c.as_str() {
            "exp" => verify_exp = true,
            "nbf" => verify_nbf = true,
            _ => {
                return Err(ConfigError::new(
                    format!("claims_to_verify[{i}]"),
                    "must be one of exp, nbf",
                ))
            }
        }
    }
    let maximum_expiration = finite_non_negative("maximum_expiration", raw.maximum_expiration)?;
    let clock_skew = finite_non_negative("clock_skew_seconds", raw.clock_skew_seconds)?;
    let audiences = non_empty_names("audiences", &raw.audiences)?;
    if let Some(realm) = &raw.realm {
        if realm.contains('"') || realm.contains('\\') || !header_value_ok(realm) {
            return Err(ConfigError::new(
                "realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
    }
    if raw.max_token_bytes == 0 {
        return Err(ConfigError::new("max_token_bytes", "must be at least 1"));
    }
    let max_token_bytes = usize::try_from(raw.max_token_bytes).unwrap_or(usize::MAX);

    let (acl, hide_groups_header) = match &raw.acl {
        None => (None, false),
        Some(a) => {
            let acl = match (&a.allow, &a.deny) {
                (Some(allow), None) => Acl::Allow(non_empty_names("acl.allow", allow)?),
                (None, Some(deny)) => Acl::Deny(non_empty_names("acl.deny", deny)?),
                _ => {
                    return Err(ConfigError::new(
                        "acl",
                        "exactly one of allow and deny is required",
                    ))
                }
            };
            (Some(acl), a.hide_groups_header)
        }
    };

    let mut regexes = RegexCache::default();
    let mut group_routes = HashMap::new();
    for (g, rs) in &raw.group_routes {
        group_routes.insert(
            g.clone(),
            compile_routes(&format!("group_routes.{g}"), rs, &mut regexes)?,
        );
    }

    let built = raw.consumers.finish(&group_routes, hide_groups_header)?;
    drop(group_routes);
    // A few names are looked up by a scan; more by a map.
    let lookups = raw.jwks_providers.len().saturating_add(1);
    let by_username: Option<HashMap<&str, usize>> = (lookups > 8).then(|| {
        built
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.username.as_str(), i))
            .collect()
    });
    let consumer_index = |name: &str| match &by_username {
        Some(map) => map.get(name).copied(),
        None => built.consumers.iter().position(|c| c.username == name),
    };

    let anonymous = match &raw.anonymous {
        None => None,
        Some(name) => Some(consumer_index(name).ok_or_else(|| {
            ConfigError::new("anonymous", format!("no consumer with username '{name}'"))
        })?),
    };

    // Reserved headers: identity, method override, claims_to_headers, forwarded payload,
    // authz headers.
    let mut reserved: Vec<String> = IDENTITY_HEADERS
        .iter()
        .chain(METHOD_OVERRIDE_HEADERS.iter())
        .map(|s| (*s).to_owned())
        .collect();
    let credential_names = CredentialNames {
        header_names: &header_names_v,
        key_names: &key_names,
    };
    let mut claims_to_headers = Vec::new();
    for (i, ch) in raw.claims_to_headers.iter().enumerate() {
        if ch.claim.is_empty() {
            return Err(ConfigError::new(
                format!("claims_to_headers[{i}].claim"),
                "must not be empty",
            ));
        }
        let path = format!("claims_to_headers[{i}].header");
        let h = header_name(path.clone(), &ch.header)?;
        header_target(&path, &h, &credential_names, &reserved)?;
        reserved.push(h.clone());
        claims_to_headers.push((ch.claim.clone(), h));
    }
    let forward_payload_header = match &raw.forward_payload_header {
        None => None,
        Some(h) => {
            let h = header_name("forward_payload_header".to_owned(), h)?;
            header_target("forward_payload_header", &h, &credential_names, &reserved)?;
            reserved.push(h.clone());
            Some(h)
        }
    };

    let (revoked_jti, subjects_issued_before) = match &raw.revocations {
        None => (HashSet::new(), HashMap::new()),
        Some(r) => {
            let mut subjects = HashMap::new();
            for (sub, t) in &r.subjects_issued_before {
                let t =
                    finite_non_negative(&format!("revocations.subjects_issued_before.{sub}"), *t)?;
                subjects.insert(sub.clone(), t);
            }
            (r.jti.iter().cloned().collect(), subjects)
        }
    };

    let mut providers = Vec::with_capacity(raw.jwks_providers.len());
    for (pi, p) in raw.jwks_providers.iter().enumerate() {
        let path = format!("jwks_providers[{pi}]");
        if p.issuer.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                "must not be empty",
            ));
        }
        if raw
            .jwks_providers
            .iter()
            .take(pi)
            .any(|q| q.issuer == p.issuer)
        {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                format!("duplicate issuer '{}'", p.issuer),
            ));
        }
        let consumer = consumer_index(&p.consumer).ok_or_else(|| {
            ConfigError::new(
                format!("{path}.consumer"),
                format!("no consumer with username '{}'", p.consumer),
            )
        })?;
        let audiences = non_empty_names(&format!("{path}.audiences"), &p.audiences)?;
        let source = match (&p.jwks, &p.upstream) {
            (Some(jwks), None) => {
                for (field, present) in [
                    ("authority", p.authority.is_some()),
                    ("path", p.path.is_some()),
                    ("refresh_seconds", p.refresh_seconds.is_some()),
                    ("timeout_ms", p.timeout_ms.is_some()),
                ] {
                    if present {
                        return Err(ConfigError::new(
                            format!("{path}.{field}"),
                            "only used with upstream",
                        ));
                    }
                }
                let set = KeySet::parse(jwks, KeySetMode::Strict)
                    .map_err(|(p2, msg)| ConfigError::new(format!("{path}.jwks{p2}"), msg))?;
                KeySource::Local(set)
            }
            (None, Some(upstream)) => {
                if upstream.is_empty() {
                    return Err(ConfigError::new(
                        format!("{path}.upstream"),
                        "must not be empty",
                    ));
                }
                let jwks_path = p.path.clone().unwrap_or_default();
                if !jwks_path.starts_with('/') {
                    return Err(ConfigError::new(
                        format!("{path}.path"),
                        "required with upstream, and must start with '/'",
                    ));
                }
                let refresh_seconds = p.refresh_seconds.unwrap_or(600);
                if refresh_seconds == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.refresh_seconds"),
                        "must be at least 1",
                    ));
                }
                let timeout_ms = p.timeout_ms.unwrap_or(1000);
                if timeout_ms == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.timeout_ms"),
                        "must be at least 1",
                    ));
                }
                KeySource::Remote(RemoteJwks {
                    upstream: upstream.clone(),
                    authority: p.authority.clone().unwrap_or_else(|| upstream.clone()),
                    path: jwks_path,
                    refresh_seconds,
                    timeout_ms,
                })
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    "exactly one of jwks and upstream is required",
                ))
            }
        };
        providers.push(Provider {
            issuer: p.issuer.clone(),
            consumer,
            audiences,
            source,
        });
    }

    let permissions = match &raw.permissions {
        None => None,
        Some(map) => {
            let mut compiled = Vec::with_capacity(map.len());
            for (name, acts) in map {
                compiled.push((
                    name.clone(),
                    compile_routes(&format!("permissions.{name}"), acts, &mut regexes)?,
                ));
            }
            Some(Permissions::new(compiled))
        }
    };

    let mut permissions_claim = "permissions".to_owned();
    let mut skip_groups = Vec::new();
    let mut authz = None;
    if let Some(a) = &raw.authz {
        if a.permissions_claim.is_empty() {
            return Err(ConfigError::new(
                "authz.permissions_claim",
                "must not be empty",
            ));
        }
        permissions_claim = a.permissions_claim.clone();
        skip_groups = non_empty_names("authz.skip_groups", &a.skip_groups)?;
        let allowed_headers = header_names("authz.allowed_headers", &a.allowed_headers)?;
        // What may never be a target is refused with or without upstream (as the schema
        // does); a clash with the other headers the filter sets matters only with a callout.
        for (i, h) in allowed_headers.iter().enumerate() {
            header_target(
                &format!("authz.allowed_headers[{i}]"),
                h,
                &credential_names,
                &[],
            )?;
        }
        if !(400..=599).contains(&a.status_on_error) {
            return Err(ConfigError::new(
                "authz.status_on_error",
                "must be an HTTP status from 400 to 599",
            ));
        }
        match &a.upstream {
            None => {
                for (field, present) in [
                    ("authority", a.authority.is_some()),
                    ("path", a.path.is_some()),
                    ("input_format", a.input_format.is_some()),
                ] {
                    if present {
                        return Err(ConfigError::new(
                            format!("authz.{field}"),
                            "only used with upstream",
                        ));
                    }
                }
            }
            Some(upstream) => {
                if upstream.is_empty() {
                    return Err(ConfigError::new("authz.upstream", "must not be empty"));
                }
                let path = a.path.clone().unwrap_or_default();
                if !path.starts_with('/') {
                    return Err(ConfigError::new(
                        "authz.path",
                        "required with upstream, and must start with '/'",
                    ));
                }
                if a.timeout_ms == 0 {
                    return Err(ConfigError::new("authz.timeout_ms", "must be at least 1"));
                }
                for (i, h) in allowed_headers.iter().enumerate() {
                    header_target(
                        &format!("authz.allowed_headers[{i}]"),
                        h,
                        &credential_names,
                        &reserved,
                    )?;
                }
                let input_format = match a.input_format.as_deref() {
                    None | Some("bouncer") => InputFormat::Bouncer,
                    Some("opa-envoy") => InputFormat::OpaEnvoy,
                    Some(_) => {
                        return Err(ConfigError::new(
                            "authz.input_format",
                            "must be \"bouncer\" or \"opa-envoy\"",
                        ))
                    }
                };
                reserved.extend(allowed_headers.iter().cloned());
                authz = Some(AuthzCallout {
                    upstream: upstream.clone(),
                    authority: a.authority.clone().unwrap_or_else(|| upstream.clone()),
                    path,
                    timeout_ms: a.timeout_ms,
                    cache_ttl_seconds: a.cache_ttl_seconds,
                    status_on_error: a.status_on_error,
                    failure_mode_allow: a.failure_mode_allow,
                    allowed_headers,
                    input_format,
                });
            }
        }
    }

    // Sorted as the engine searches it: `_` read as `-`.
    reserved.sort_by(|a, b| header_order(a, b));
    reserved.dedup_by(|a, b| same_header(a, b));
    // A credential header can never be one the filter controls (in any spelling).
    for (field, names) in [("header_names", &header_names_v), ("key_names", &key_names)] {
        for (i, n) in names.iter().enumerate() {
            if reserved.iter().any(|r| same_header(r, n)) {
                return Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("'{n}' is a header the filter sets for the upstream"),
                ));
            }
        }
    }

    Ok(Policy {
        header_names: header_names_v,
        uri_param_names,
        cookie_names,
        key_names,
        key_claim_name: raw.key_claim_name,
        verify_exp,
        verify_nbf,
        maximum_expiration,
        clock_skew,
        audiences,
        realm: raw.realm,
        anonymous,
        run_on_preflight: raw.run_on_preflight,
        hide_credentials: raw.hide_credentials,
        consumers: built.consumers,
        jwt_credentials: built.jwt_credentials,
        api_keys: built.api_keys,
        acl,
        claims_to_headers,
        forward_payload_header,
        revoked_jti,
        subjects_issued_before,
        max_token_bytes,
        reserved_lengths: reserved.iter().fold(0, |m, r| m | length_bit(r)),
        reserved,
        providers,
        permissions,
        permissions_claim,
        skip_groups,
        authz,
        fingerprint: [0; 32],
    })
}

#[cfg(test)]
mod tests;
