//! The verified-token cache, in two levels.
//!
//! - Per worker: a bounded map from the token to its [`VerifiedToken`], in two generations of
//!   at most [`LOCAL_CAPACITY`] entries and [`GENERATION_BYTES`] bytes each (counted by
//!   [`entry_bytes`]: the key, the parsed claims and the rest of the entry, approximately but
//!   never less than they take); when the young one is full, the old one is dropped. So the
//!   whole level holds at most [`LOCAL_BUDGET`] bytes whatever the tokens' size (an entry larger
//!   than a generation is not cached). The token text itself is the key, so a hit is confirmed
//!   byte for byte.
//! - Across workers: shared data slots keyed by the SHA-256 of (configuration digest, token),
//!   holding the consumer, credential and provider. A token verified by one worker is accepted
//!   by every other without verifying its signature again (it is parsed again, which is cheap).
//!   A fixed number of slots bounds memory (a Kong zone with `eviction=none` never evicts).
//!   HMAC tokens (`HS*`) skip this level: verifying one costs less than a shared-data lookup.
//!
//! Claims, revocations and access rules are still checked on every request.

use super::metrics::{Counter, Metrics};
use super::shared;
use crate::engine::{CacheHit, Credential, VerifiedToken};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bouncer_crypto::sha256;
use hashbrown::{Equivalent, HashMap};
use serde_json::Value;
use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// Entries per generation of the per-worker cache.
pub const LOCAL_CAPACITY: usize = 4096;
/// Bytes the per-worker cache may hold (both generations, as [`entry_bytes`] counts them).
pub const LOCAL_BUDGET: usize = 8 << 20;
/// Bytes per generation.
pub const GENERATION_BYTES: usize = LOCAL_BUDGET / 2;
/// Shared-data slots.
pub const SHARED_SLOTS: u32 = 16384;

/// A fast, unkeyed hasher (FxHash's multiply-rotate). Only verified tokens are inserted, so
/// an attacker cannot fill a bucket with colliding keys.
#[derive(Default)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A cached token and what [`entry_bytes`] counted for it.
struct Entry {
    token: Arc<VerifiedToken>,
    bytes: usize,
}

/// A cached token's text, the key of the per-worker level.
struct Key(Box<str>);

/// A token looked up: hashed as its [`Key`] would be, compared eight bytes at a time (the
/// comparison of a hit reads the whole token; wasm's `memcmp` goes a byte at a time).
struct Lookup<'a>(&'a str);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        crate::wire::same_bytes(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Key {}

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        crate::wire::same_bytes(self.0.as_bytes(), key.0.as_bytes())
    }
}

type Map = HashMap<Key, Entry, BuildHasherDefault<FxHasher>>;

/// One generation: its entries and their bytes.
#[derive(Default)]
struct Generation {
    map: Map,
    bytes: usize,
}

/// What the allocator may add to each allocation (header, alignment).
const ALLOC: usize = 16;
/// One member of a parsed JSON object beyond its key's text and its value's heap: the key's
/// `String`, the `Value`, and the map's own structure (B-tree nodes run from half full; an
/// `IndexMap` keeps a hash and an index besides): twice the pair, plus two words.
const MEMBER: usize = 2
    * (std::mem::size_of::<String>()
        + std::mem::size_of::<Value>()
        + 2 * std::mem::size_of::<usize>());

/// The heap a parsed JSON value holds, approximately and conservatively (capacities, not
/// lengths). Recursion is bounded by serde_json's nesting limit (128).
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity().saturating_add(ALLOC),
        Value::Array(items) => items.iter().fold(
            items
                .capacity()
                .saturating_mul(std::mem::size_of::<Value>())
                .saturating_add(ALLOC),
            |n, i| n.saturating_add(value_bytes(i)),
        ),
        Value::Object(m) => map_bytes(m),
    }
}

fn map_bytes(m: &serde_json::Map<String, Value>) -> usize {
    m.iter().fold(ALLOC, |n, (k, v)| {
        n.saturating_add(MEMBER)
            .saturating_add(k.capacity())
            .saturating_add(ALLOC)
            .saturating_add(value_bytes(v))
    })
}

/// What one per-worker entry costs: the key, the `VerifiedToken` with its strings and
/// claims, and the hash table's slot (counted twice: the table grows by doubling).
pub fn entry_bytes(token: &str, v: &VerifiedToken) -> usize {
    const FIXED: usize = 2 * (std::mem::size_of::<String>() + std::mem::size_of::<Entry>() + 1)
        + std::mem::size_of::<VerifiedToken>()
        + 2 * std::mem::size_of::<usize>()
        + 4 * ALLOC;
    FIXED
        .saturating_add(token.len())
        .saturating_add(v.payload_segment.capacity())
        .saturating_add(match &v.credential {
            Some(Credential::Named(s)) => s.capacity(),
            Some(Credential::Config(_)) | None => 0,
        })
        .saturating_add(map_bytes(&v.claims))
}

/// A shared entry: the 32-byte key digest, then [`encode`]'s bytes.
const NO_PROVIDER: u32 = u32::MAX;
/// Flags: the credential follows as its text (a `kid`)...
const NAMED_CREDENTIAL: u8 = 1;
/// ... or as the index of the configuration's JWT credential (u32 LE; the key digests the
/// configuration, so every worker reading it has the same one; the engine checks the index
/// belongs to the consumer before using it).
const CONFIG_CREDENTIAL: u8 = 2;

/// consumer (u32 LE), provider (u32 LE, [`NO_PROVIDER`] for none), flags, credential bytes.
fn encode(digest: &[u8; 32], v: &VerifiedToken) -> Option<Vec<u8>> {
    let consumer = u32::try_from(v.consumer).ok()?;
    let provider = match v.provider {
        Some(p) => u32::try_from(p).ok().filter(|p| *p != NO_PROVIDER)?,
        None => NO_PROVIDER,
    };
    let index;
    let (flags, cred): (u8, &[u8]) = match &v.credential {
        None => (0, &[]),
        Some(Credential::Named(s)) => (NAMED_CREDENTIAL, s.as_bytes()),
        Some(Credential::Config(i)) => {
            index = u32::try_from(*i).ok()?.to_le_bytes();
            (CONFIG_CREDENTIAL, &index)
        }
    };
    let mut out = Vec::with_capacity(cred.len().saturating_add(41));
    out.extend_from_slice(digest);
    out.extend_from_slice(&consumer.to_le_bytes());
    out.extend_from_slice(&provider.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(cred);
    Some(out)
}

fn le_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// The entry for `digest`, if `bytes` is one.
fn decode(digest: &[u8; 32], bytes: &[u8]) -> Option<CacheHit> {
    let (stored, rest) = bytes.split_at_checked(32)?;
    if stored != digest {
        return None;
    }
    let (consumer, rest) = rest.split_at_checked(4)?;
    let (provider, rest) = rest.split_at_checked(4)?;
    let (flags, cred) = rest.split_first()?;
    let provider = le_u32(provider)?;
    Some(CacheHit::Signature {
        consumer: usize::try_from(le_u32(consumer)?).ok()?,
        credential: match *flags {
            NAMED_CREDENTIAL => Some(Credential::Named(
                std::str::from_utf8(cred).ok()?.to_owned(),
            )),
            CONFIG_CREDENTIAL => Some(Credential::Config(usize::try_from(le_u32(cred)?).ok()?)),
            0 if cred.is_empty() => None,
            _ => return None,
        },
        provider: match provider {
            NO_PROVIDER => None,
            p => Some(usize::try_from(p).ok()?),
        },
    })
}

/// Whether the token's JOSE header names an HMAC algorithm (`HS*`). Only an optimization
/// hint: a header that does not parse counts as "not HMAC" (the engine decides anything else).
fn is_hmac(token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Header<'a> {
        #[serde(borrow)]
        alg: Option<&'a str>,
    }
    // The usual layout, `{"alg":"HS...`, read without decoding (the prefix has no `.`, so
    // the token starts with it exactly when its header does).
    if token.starts_with("eyJhbGciOiJIUz") {
        return true;
    }
    let Some((header, _)) = token.split_once('.') else {
        return false;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<Header<'_>>(&bytes)
        .ok()
        .and_then(|h| h.alg)
        .is_some_and(|a| a.starts_with("HS"))
}

/// What the last shared-level lookup found, so that remembering the same token does not
/// hash it again, nor rewrite an entry it read. (An HMAC token skips the shared level and
/// leaves none: `put` tells that again from the token, without a copy of it.)
struct LastLookup {
    token: String,
    shared: ([u8; 32], String),
    hit: bool,
}

/// The cache of one worker for one configuration.
#[derive(Default)]
pub struct TokenCache {
    young: RefCell<Generation>,
    old: RefCell<Generation>,
    last: RefCell<Option<LastLookup>>,
}

impl TokenCache {
    fn shared_key(fingerprint: &[u8; 32], token: &str) -> ([u8; 32], String) {
        let mut material = Vec::with_capacity(token.len().saturating_add(32));
        material.extend_from_slice(fingerprint);
        material.extend_from_slice(token.as_bytes());
        let digest = sha256(&material);
        let n = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % SHARED_SLOTS;
        (digest, format!("bouncer/tok/{n}"))
    }

    /// Look a token up: this worker first, then shared data.
    pub fn get(&self, fingerprint: &[u8; 32], token: &str, metrics: &Metrics) -> Option<CacheHit> {
        if let Some(e) = self.young.borrow().map.get(&Lookup(token)) {
            metrics.inc(Counter::TokenHitsLocal);
            return Some(CacheHit::Full(Arc::clone(&e.token)));
        }
        let promoted = {
            let mut old = self.old.borrow_mut();
            let e = old.map.remove(&Lookup(token));
            if let Some(e) = &e {
                old.bytes = old.bytes.saturating_sub(e.bytes);
            }
            e
        };
        if let Some(e) = promoted {
            metrics.inc(Counter::TokenHitsLocal);
            let v = Arc::clone(&e.token);
            self.insert_local(token, e);
            return Some(CacheHit::Full(v));
        }
        let shared = (!is_hmac(token)).then(|| Self::shared_key(fingerprint, token));
        let hit = shared
            .as_ref()
            .and_then(|(digest, key)| shared::get(key).0.and_then(|bytes| decode(digest, &bytes)));
        metrics.inc(if hit.is_some() {
            Counter::TokenHitsShared
        } else {
            Counter::TokenMisses
        });
        *self.last.borrow_mut() = shared.map(|shared| LastLookup {
            token: token.to_owned(),
            shared,
            hit: hit.is_some(),
        });
        hit
    }

    fn insert_local(&self, token: &str, e: Entry) {
        if e.bytes > GENERATION_BYTES {
            return;
        }
        let mut young = self.young.borrow_mut();
        if young.map.len() >= LOCAL_CAPACITY
            || young.bytes.saturating_add(e.bytes) > GENERATION_BYTES
        {
            // The next generation starts with room for as many entries as this one held:
            // growing a table by doubling rehashes every token several times over.
            let held = young.map.len();
            let full = std::mem::replace(
                &mut *young,
                Generation {
                    map: Map::with_capacity_and_hasher(held, Default::default()),
                    bytes: 0,
                },
            );
            *self.old.borrow_mut() = full;
        }
        young.bytes = young.bytes.saturating_add(e.bytes);
        if let Some(prev) = young.map.insert(Key(token.into()), e) {
            young.bytes = young.bytes.saturating_sub(prev.bytes);
        }
    }

    /// Remember a verified token in both levels (the shared one unless the token is HMAC, or
    /// was just read from there).
    pub fn put(&self, fingerprint: &[u8; 32], token: &str, v: &Arc<VerifiedToken>) {
        self.insert_local(
            token,
            Entry {
                token: Arc::clone(v),
                bytes: entry_bytes(token, v),
            },
        );
        // The engine does not take provider tokens from the shared level (the entry does not
        // name the JWK): writing them there would be wasted work.
        if v.provider.is_some() {
            self.last.borrow_mut().take();
            return;
        }
        let shared = match self.last.borrow_mut().take() {
            Some(l) if l.token == token => {
                if l.hit {
                    return;
                }
                Some(l.shared)
            }
            _ => (!is_hmac(token)).then(|| Self::shared_key(fingerprint, token)),
        };
        if let Some((digest, key)) = shared {
            if let Some(value) = encode(&digest, v) {
                shared::put(&key, &value);
            }
        }
    }
}
