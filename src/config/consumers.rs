//! Consumers compiled while they are parsed: each [`RawConsumer`] is compiled as soon as serde
//! has read it and then dropped, so that the raw form of 100,000 consumers never exists at
//! once (issue 15). What depends on fields that may come later in the text (group routes,
//! `acl.hide_groups_header`) is added by [`ConsumerTable::finish`].
//!
//! Errors are exactly those of compiling the parsed list in order: the first consumer error
//! is kept and reported at its place among the other checks, after serde's own errors
//! (parsing goes on after it, without compiling, to find those).

use super::raw::RawConsumer;
use super::{
    compile_jwt_secret, compile_routes, finite_non_negative, header_value_ok, non_empty_names,
    parse_hex32, ApiKeyCredential, ConfigError, Consumer, JwtCredential,
};
use crate::access::{RegexCache, Route, RouteSet};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

/// How many consumers and credentials the text holds (counted by the objects check), so that
/// the tables are allocated once at their size.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub consumers: usize,
    pub jwt_secrets: usize,
    pub api_keys: usize,
}

thread_local! {
    /// [`Counts`] for the parse under way (serde gives a field no context).
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { consumers: 0, jwt_secrets: 0, api_keys: 0 }) };
}

thread_local! {
    /// Whether the parse under way checks uniqueness as it goes ([`ConsumerTable::exact`]).
    static EXACT: Cell<bool> = const { Cell::new(false) };
}

/// Set the [`Counts`] the next parse sizes its tables with, and whether it is exact.
pub(super) fn size_next_parse(counts: Counts, exact: bool) {
    COUNTS.with(|c| c.set(counts));
    EXACT.with(|e| e.set(exact));
}

/// JWT credentials by key, sorted (binary search).
#[derive(Debug, Default)]
pub struct JwtCredentials(Box<[JwtCredential]>);

impl JwtCredentials {
    /// Every credential (in key order).
    pub fn iter(&self) -> impl Iterator<Item = &JwtCredential> {
        self.0.iter()
    }

    /// The credential with this key.
    pub fn get(&self, key: &str) -> Option<&JwtCredential> {
        self.find(key).map(|(_, c)| c)
    }

    /// The credential with this key and its index (for [`JwtCredentials::at`]).
    pub fn find(&self, key: &str) -> Option<(usize, &JwtCredential)> {
        let i = self
            .0
            .binary_search_by(|c| c.key_id.as_str().cmp(key))
            .ok()?;
        Some((i, self.0.get(i)?))
    }

    /// The credential at index `i`, as [`JwtCredentials::find`] gave it.
    pub fn at(&self, i: usize) -> Option<&JwtCredential> {
        self.0.get(i)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// API key credentials by digest, sorted (binary search).
#[derive(Debug, Default)]
pub struct ApiKeys(Box<[ApiKeyCredential]>);

impl ApiKeys {
    /// The credential whose key has this SHA-256.
    pub fn get(&self, digest: &[u8; 32]) -> Option<&ApiKeyCredential> {
        let i = self.0.binary_search_by(|c| c.digest.cmp(digest)).ok()?;
        self.0.get(i)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The compiled consumers and their credentials, or the first error.
#[derive(Debug, Default)]
pub struct ConsumerTable {
    consumers: Vec<Consumer>,
    jwt: Vec<JwtCredential>,
    api: Vec<ApiKeyCredential>,
    error: Option<ConfigError>,
    /// Exact: each username, id and credential key is checked for a duplicate as it comes,
    /// against `seen`, 32-bit hashes of all so far (a hit is checked against the real values).
    /// Otherwise (first) nothing is checked as it comes: [`ConsumerTable::needs_exact`] finds
    /// out after the parse whether there is any duplicate or error, and only then is the text
    /// parsed again exactly, so that the error is the one the exact order finds. A valid
    /// configuration is parsed once, without the set (2.6 MB for 100,000 consumers).
    exact: bool,
    seen: HashSet<u32>,
    regexes: RegexCache,
    /// Consumers read (compiled or not).
    read: usize,
}

/// What a hash in [`ConsumerTable::seen`] is of.
#[derive(Hash)]
enum Seen<'a> {
    Username(&'a str),
    Id(&'a str),
    JwtKey(&'a str),
    ApiKey(&'a [u8; 32]),
}

impl Seen<'_> {
    fn hash32(&self) -> u32 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        let v = h.finish();
        // The high half folded into the low: all 64 bits count.
        u32::try_from((v ^ (v >> 32)) & 0xffff_ffff).unwrap_or_default()
    }
}

/// Whether two consumers have the same `field` (sorting their indices by it).
fn repeats(consumers: &[Consumer], field: fn(&Consumer) -> &String) -> bool {
    let at = |i: &u32| {
        usize::try_from(*i)
            .ok()
            .and_then(|i| consumers.get(i))
            .map(field)
    };
    let mut order: Vec<u32> = (0..consumers.len())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    if order.len() != consumers.len() {
        return true;
    }
    order.sort_unstable_by(|a, b| at(a).cmp(&at(b)));
    order.windows(2).any(|w| match w {
        [a, b] => at(a) == at(b),
        _ => false,
    })
}

/// The consumers, their credentials and the first error, once the whole text is parsed.
pub(super) struct Built {
    pub consumers: Vec<Consumer>,
    pub jwt_credentials: JwtCredentials,
    pub api_keys: ApiKeys,
}

impl ConsumerTable {
    fn with_counts(counts: Counts, exact: bool) -> ConsumerTable {
        let seen = counts
            .consumers
            .saturating_mul(2)
            .saturating_add(counts.jwt_secrets)
            .saturating_add(counts.api_keys);
        ConsumerTable {
            consumers: Vec::with_capacity(counts.consumers),
            jwt: Vec::with_capacity(counts.jwt_secrets),
            api: Vec::with_capacity(counts.api_keys),
            exact,
            seen: if exact {
                HashSet::with_capacity(seen)
            } else {
                HashSet::new()
            },
            ..ConsumerTable::default()
        }
    }

    /// Whether the table may differ from an exact parse: a consumer error, or a duplicate
    /// username, id, credential key or API key (found by sorting). Sorts the credentials.
    pub(super) fn needs_exact(&mut self) -> bool {
        if self.exact {
            return false;
        }
        if self.error.is_some() {
            return true;
        }
        self.jwt.sort_unstable_by(|a, b| a.key_id.cmp(&b.key_id));
        self.api.sort_unstable_by_key(|a| a.digest);
        if repeats(&self.consumers, |c| &c.username) || repeats(&self.consumers, |c| &c.id) {
            return true;
        }
        self.jwt.windows(2).any(|w| match w {
            [a, b] => a.key_id == b.key_id,
            _ => false,
        }) || self.api.windows(2).any(|w| match w {
            [a, b] => a.digest == b.digest,
            _ => false,
        })
    }

    /// Whether `what` was seen before (and note it); always false when not exact.
    fn repeated(&mut self, what: Seen<'_>) -> bool {
        if !self.exact {
            return false;
        }
        if self.seen.insert(what.hash32()) {
            return false;
        }
        match what {
            Seen::Username(u) => self.consumers.iter().any(|c| c.username == u),
            Seen::Id(id) => self.consumers.iter().any(|c| c.id == id),
            Seen::JwtKey(k) => self.jwt.iter().any(|c| c.key_id == k),
            Seen::ApiKey(d) => self.api.iter().any(|c| &c.digest == d),
        }
    }

    fn add(&mut self, c: RawConsumer) {
        let ci = self.read;
        self.read = self.read.saturating_add(1);
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.compile(ci, c) {
            self.error = Some(e);
            // Nothing compiled is used once there is an error.
            self.consumers = Vec::new();
            self.jwt = Vec::new();
            self.api = Vec::new();
            self.seen = HashSet::new();
        }
        // Without the exact checks, the first error is all that matters: the text is parsed
        // again exactly.
    }

    fn compile(&mut self, ci: usize, c: RawConsumer) -> Result<(), ConfigError> {
        // Paths only matter in an exact parse: any error of the first one is found again.
        let exact = self.exact;
        let path = if exact {
            format!("consumers[{ci}]")
        } else {
            String::new()
        };
        let at = |suffix: std::fmt::Arguments<'_>| {
            if exact {
                format!("{path}{suffix}")
            } else {
                String::new()
            }
        };
        if c.username.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.username"),
                "must not be empty",
            ));
        }
        if self.repeated(Seen::Username(&c.username)) {
            return Err(ConfigError::new(
                format!("{path}.username"),
                format!("duplicate username '{}'", c.username),
            ));
        }
        let id = c.id.unwrap_or_else(|| c.username.clone());
        if id.is_empty() {
            return Err(ConfigError::new(format!("{path}.id"), "must not be empty"));
        }
        if self.repeated(Seen::Id(&id)) {
            return Err(ConfigError::new(
                format!("{path}.id"),
                format!("duplicate id '{id}'"),
            ));
        }
        for (field, v) in [("username", &c.username), ("id", &id)] {
            if !header_value_ok(v) {
                return Err(ConfigError::new(
                    format!("{path}.{field}"),
                    "must not contain control characters",
                ));
            }
        }
        if let Some(cid) = &c.custom_id {
            if !header_value_ok(cid) {
                return Err(ConfigError::new(
                    format!("{path}.custom_id"),
                    "must not contain control characters",
                ));
            }
        }
        let groups = non_empty_names(&at(format_args!(".groups")), &c.groups)?;
        for (gi, g) in groups.iter().enumerate() {
            if !header_value_ok(g) || g.contains(',') {
                return Err(ConfigError::new(
                    format!("{path}.groups[{gi}]"),
                    "must not contain commas or control characters",
                ));
            }
        }
        let routes = compile_routes(&at(format_args!(".routes")), &c.routes, &mut self.regexes)?;
        let issued_before =
            finite_non_negative(&at(format_args!(".issued_before")), c.issued_before)?;
        for (si, s) in c.jwt_secrets.into_iter().enumerate() {
            let spath = at(format_args!(".jwt_secrets[{si}]"));
            let (alg, key) = compile_jwt_secret(&spath, &s)?;
            if self.repeated(Seen::JwtKey(&s.key)) {
                return Err(ConfigError::new(
                    format!("{spath}.key"),
                    format!("duplicate credential key '{}'", s.key),
                ));
            }
            self.jwt.push(JwtCredential {
                consumer: ci,
                key_id: s.key,
                alg,
                key,
            });
        }
        for (ki, k) in c.keyauth_credentials.into_iter().enumerate() {
            let kpath = at(format_args!(".keyauth_credentials[{ki}]"));
            let digest = parse_hex32(&k.key_sha256).ok_or_else(|| {
                ConfigError::new(
                    format!("{kpath}.key_sha256"),
                    "must be 64 hexadecimal characters (the SHA-256 of the key)",
                )
            })?;
            if let Some(id) = &k.id {
                if id.is_empty() || !header_value_ok(id) {
                    return Err(ConfigError::new(
                        format!("{kpath}.id"),
                        "must be non-empty without control characters",
                    ));
                }
            }
            if self.repeated(Seen::ApiKey(&digest)) {
                return Err(ConfigError::new(
                    format!("{kpath}.key_sha256"),
                    "duplicate API key",
                ));
            }
            self.api.push(ApiKeyCredential {
                consumer: ci,
                id: k.id,
                digest,
            });
        }
        self.consumers.push(Consumer {
            username: c.username,
            id,
            custom_id: c.custom_id,
            groups,
            groups_header: None,
            routes: RouteSet::new(routes),
            issued_before,
            self_signed: c.self_signed,
        });
        Ok(())
    }

    /// The consumers with their groups' routes added after their own and their groups
    /// header, and the credential tables; or the first consumer error.
    pub(super) fn finish(
        self,
        group_routes: &HashMap<String, Vec<Route>>,
        hide_groups_header: bool,
    ) -> Result<Built, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut consumers = self.consumers;
        for c in &mut consumers {
            let extra: Vec<&Route> = c
                .groups
                .iter()
                .filter_map(|g| group_routes.get(g))
                .flatten()
                .collect();
            if !extra.is_empty() {
                let routes = std::mem::take(&mut c.routes);
                c.routes = routes.extended(extra.into_iter().cloned());
            }
            if !c.groups.is_empty() && !hide_groups_header {
                c.groups_header = Some(c.groups.join(", "));
            }
        }
        let mut jwt = self.jwt;
        let mut api = self.api;
        if self.exact {
            jwt.sort_unstable_by(|a, b| a.key_id.cmp(&b.key_id));
            api.sort_unstable_by_key(|a| a.digest);
        }
        Ok(Built {
            consumers,
            jwt_credentials: JwtCredentials(jwt.into_boxed_slice()),
            api_keys: ApiKeys(api.into_boxed_slice()),
        })
    }
}

/// `consumers`: a JSON array of consumers (or `{}`, Kong's empty list), compiled one by one.
pub(super) fn stream<'de, D: Deserializer<'de>>(d: D) -> Result<ConsumerTable, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = ConsumerTable;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConsumerTable, A::Error> {
            let mut table =
                ConsumerTable::with_counts(COUNTS.with(Cell::take), EXACT.with(Cell::get));
            while let Some(c) = seq.next_element::<RawConsumer>()? {
                table.add(c);
            }
            Ok(table)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConsumerTable, A::Error> {
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_type(Unexpected::Map, &self));
            }
            Ok(ConsumerTable::default())
        }
    }
    d.deserialize_any(V)
}
