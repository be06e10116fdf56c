//! Large configurations (issue 15): `n` consumers, each with distinct username, id and
//! credentials, for the scale test and the `make bench` row "configure N consumers".
//!
//! Consumer `i` is `user-<i>` (id `id-<i>`); with [`Scale::hs256`] it holds the HS256
//! credential `iss-<i>` with secret [`hs256_secret`]; with [`Scale::rsa`] the RS256 credential
//! `rsa-<i>` (one test key for all: parsing cost and memory do not depend on which key); with
//! [`Scale::api_key`] the API key [`api_key`] (as `key_sha256`); with [`Scale::routes`] one
//! route; with [`Scale::groups`] that many group names (shared by all consumers).

use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The RSA public key every [`Scale::rsa`] credential uses.
pub const RSA_PUBLIC_PEM: &str = include_str!("../../vectors/keys/rsa2048_public.pem");

/// Which route each consumer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// None: the consumer is unrestricted.
    None,
    /// `GET, POST /api/v1/tenants/<i>(/.*)?`: a pattern of its own.
    Distinct,
    /// `GET, POST /api/v1/orders(/[^/]+)?`: the same pattern for every consumer.
    Shared,
}

/// What each consumer of a generated configuration holds.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// How many consumers.
    pub consumers: usize,
    /// An HS256 `jwt_secrets` entry.
    pub hs256: bool,
    /// An RS256 `jwt_secrets` entry (PEM public key).
    pub rsa: bool,
    /// A `keyauth_credentials` entry (`key_sha256`).
    pub api_key: bool,
    /// One route, or none.
    pub routes: Routes,
    /// How many groups (`group-0`, `group-1`, ...).
    pub groups: usize,
}

impl Scale {
    /// `n` consumers holding nothing.
    pub fn bare(n: usize) -> Scale {
        Scale {
            consumers: n,
            hs256: false,
            rsa: false,
            api_key: false,
            routes: Routes::None,
            groups: 0,
        }
    }

    /// Issue 15's configuration: each consumer an HS256 secret, an API key and one distinct
    /// route.
    pub fn issue15(n: usize) -> Scale {
        Scale {
            hs256: true,
            api_key: true,
            routes: Routes::Distinct,
            ..Scale::bare(n)
        }
    }

    /// The configuration JSON.
    pub fn config(&self) -> String {
        let per = 120
            + if self.hs256 { 110 } else { 0 }
            + if self.rsa { 560 } else { 0 }
            + if self.api_key { 130 } else { 0 }
            + if self.routes == Routes::None { 0 } else { 90 }
            + 12 * self.groups;
        let mut out = String::with_capacity(64 + per * self.consumers);
        let pem = RSA_PUBLIC_PEM.trim().replace('\n', "\\n");
        out.push_str(r#"{"consumers": ["#);
        for i in 0..self.consumers {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, r#"{{"username": "user-{i}", "id": "id-{i}""#);
            if self.groups > 0 {
                out.push_str(r#", "groups": ["#);
                for g in 0..self.groups {
                    let sep = if g > 0 { ", " } else { "" };
                    let _ = write!(out, r#"{sep}"group-{g}""#);
                }
                out.push(']');
            }
            if self.hs256 || self.rsa {
                out.push_str(r#", "jwt_secrets": ["#);
                if self.hs256 {
                    let _ = write!(
                        out,
                        r#"{{"key": "{}", "algorithm": "HS256", "secret": "{}"}}"#,
                        hs256_key(i),
                        hs256_secret(i)
                    );
                }
                if self.rsa {
                    let sep = if self.hs256 { ", " } else { "" };
                    let _ = write!(
                        out,
                        r#"{sep}{{"key": "rsa-{i}", "algorithm": "RS256", "rsa_public_key": "{pem}"}}"#
                    );
                }
                out.push(']');
            }
            if self.api_key {
                let digest = Sha256::digest(api_key(i).as_bytes());
                out.push_str(r#", "keyauth_credentials": [{"key_sha256": ""#);
                for b in digest {
                    let _ = write!(out, "{b:02x}");
                }
                out.push_str(r#""}]"#);
            }
            match self.routes {
                Routes::None => {}
                Routes::Distinct => {
                    let _ = write!(
                        out,
                        r#", "routes": [{{"methods": ["GET", "POST"], "path": "/api/v1/tenants/{i}(/.*)?"}}]"#
                    );
                }
                Routes::Shared => out.push_str(
                    r#", "routes": [{"methods": ["GET", "POST"], "path": "/api/v1/orders(/[^/]+)?"}]"#,
                ),
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// The `key` (the token's `iss`) of consumer `i`'s HS256 credential.
pub fn hs256_key(i: usize) -> String {
    format!("iss-{i}")
}

/// Consumer `i`'s HS256 secret (32 characters).
pub fn hs256_secret(i: usize) -> String {
    format!("hs256-secret-of-consumer-{i:07}")
}

/// Consumer `i`'s API key (its SHA-256 is in the configuration).
pub fn api_key(i: usize) -> String {
    format!("api-key-of-consumer-{i:07}")
}
