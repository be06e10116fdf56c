//! The configuration exactly as operators write it (CONTRACT.md section 1), as serde types.
//!
//! Every struct denies unknown fields; defaults follow the contract. Nothing here is validated
//! beyond JSON types: `super::compile` turns a [`RawConfig`] into a [`super::Policy`] and names
//! the JSON path of every semantic error.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A JSON array, or an empty object: Kong's cjson encodes an empty Lua table as `{}`, so an
/// empty list in a Kong configuration may arrive as an object.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut v = Vec::new();
            while let Some(x) = seq.next_element()? {
                v.push(x);
            }
            Ok(v)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_type(Unexpected::Map, &self));
            }
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// [`list`] for an optional field (`null` is absent).
fn opt_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(bound = "T: Deserialize<'de>")]
    struct W<T>(#[serde(deserialize_with = "list")] Vec<T>);
    Ok(Option::<W<T>>::deserialize(d)?.map(|w| w.0))
}

fn default_header_names() -> Vec<String> {
    vec!["authorization".to_owned()]
}
fn default_uri_param_names() -> Vec<String> {
    vec!["jwt".to_owned()]
}
fn default_key_claim_name() -> String {
    "iss".to_owned()
}
fn default_claims_to_verify() -> Vec<String> {
    vec!["exp".to_owned()]
}
fn default_key_names() -> Vec<String> {
    vec!["apikey".to_owned()]
}
fn default_true() -> bool {
    true
}
fn default_max_token_bytes() -> u64 {
    8192
}

/// The whole filter configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_header_names", deserialize_with = "list")]
    pub header_names: Vec<String>,
    #[serde(default = "default_uri_param_names", deserialize_with = "list")]
    pub uri_param_names: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub cookie_names: Vec<String>,
    #[serde(default = "default_key_claim_name")]
    pub key_claim_name: String,
    #[serde(default = "default_claims_to_verify", deserialize_with = "list")]
    pub claims_to_verify: Vec<String>,
    #[serde(default)]
    pub maximum_expiration: f64,
    #[serde(default)]
    pub clock_skew_seconds: f64,
    #[serde(default, deserialize_with = "list")]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default)]
    pub anonymous: Option<String>,
    #[serde(default = "default_true")]
    pub run_on_preflight: bool,
    #[serde(default)]
    pub hide_credentials: bool,
    #[serde(default = "default_key_names", deserialize_with = "list")]
    pub key_names: Vec<String>,
    /// Compiled while parsed ([`super::consumers`]).
    #[serde(default, deserialize_with = "super::consumers::stream")]
    pub consumers: super::ConsumerTable,
    #[serde(default)]
    pub acl: Option<RawAcl>,
    #[serde(default)]
    pub group_routes: BTreeMap<String, Vec<RawRoute>>,
    #[serde(default, deserialize_with = "list")]
    pub jwks_providers: Vec<RawProvider>,
    #[serde(default)]
    pub authz: Option<RawAuthz>,
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, Vec<RawRoute>>>,
    #[serde(default, deserialize_with = "list")]
    pub claims_to_headers: Vec<RawClaimHeader>,
    #[serde(default)]
    pub forward_payload_header: Option<String>,
    #[serde(default)]
    pub revocations: Option<RawRevocations>,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: u64,
}

/// A consumer: an application or a third party, with its credentials and its limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    pub username: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub groups: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub jwt_secrets: Vec<RawJwtSecret>,
    #[serde(default, deserialize_with = "list")]
    pub keyauth_credentials: Vec<RawKeyAuth>,
    #[serde(default, deserialize_with = "list")]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub issued_before: f64,
    /// The consumer holds its own signing secret or key: its tokens prove who it is, nothing
    /// more (no permissions, no claims copied to headers, its `id` as the callout subject).
    #[serde(default)]
    pub self_signed: bool,
}

/// A JWT credential of a consumer (Kong's `jwt_secrets` entity).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtSecret {
    pub key: String,
    pub algorithm: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_is_base64: bool,
    #[serde(default)]
    pub rsa_public_key: Option<String>,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub jwk: Option<serde_json::Value>,
}

/// An API key credential, stored as the SHA-256 of the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyAuth {
    #[serde(default)]
    pub id: Option<String>,
    pub key_sha256: String,
}

/// Methods plus a full-match path regex.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(deserialize_with = "list")]
    pub methods: Vec<String>,
    pub path: String,
}

/// Kong's `acl` plugin: exactly one of `allow` and `deny`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcl {
    #[serde(default, deserialize_with = "opt_list")]
    pub allow: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_list")]
    pub deny: Option<Vec<String>>,
    #[serde(default)]
    pub hide_groups_header: bool,
}

/// A JWKS identity provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub issuer: String,
    pub consumer: String,
    #[serde(default, deserialize_with = "list")]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub refresh_seconds: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
}

fn default_timeout_ms() -> u64 {
    300
}
fn default_permissions_claim() -> String {
    "permissions".to_owned()
}
fn default_cache_ttl() -> u64 {
    30
}
fn default_status_on_error() -> u16 {
    503
}

/// The authorization block (CONTRACT.md section 4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthz {
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_permissions_claim")]
    pub permissions_claim: String,
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_seconds: u64,
    #[serde(default, deserialize_with = "list")]
    pub skip_groups: Vec<String>,
    #[serde(default = "default_status_on_error")]
    pub status_on_error: u16,
    #[serde(default)]
    pub failure_mode_allow: bool,
    #[serde(default, deserialize_with = "list")]
    pub allowed_headers: Vec<String>,
    /// `"bouncer"` (the default) or `"opa-envoy"`.
    #[serde(default)]
    pub input_format: Option<String>,
}

/// One `claims_to_headers` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaimHeader {
    pub claim: String,
    pub header: String,
}

/// Revoked token ids and per-subject cut-off times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevocations {
    #[serde(default, deserialize_with = "list")]
    pub jti: Vec<String>,
    #[serde(default)]
    pub subjects_issued_before: BTreeMap<String, f64>,
}
