//! The verified-token cache, in two levels.
//!
//! - Per worker: a bounded map from the token to its [`VerifiedToken`] (two generations of at
//!   most [`LOCAL_CAPACITY`] entries; when the young one fills, the old one is dropped). The
//!   token text itself is the key, so a hit is confirmed byte for byte.
//! - Across workers: shared data slots keyed by the SHA-256 of (configuration digest, token),
//!   holding the consumer, credential and provider. A token verified by one worker is accepted
//!   by every other without verifying its signature again (it is parsed again, which is cheap).
//!   A fixed number of slots bounds memory: ngx_wasm_module never evicts shared data.
//!
//! Claims, revocations and access rules are still checked on every request.

use super::metrics::{Counter, Metrics};
use super::shared;
use crate::engine::{CacheHit, VerifiedToken};
use bouncer_crypto::sha256;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Entries per generation of the per-worker cache.
pub const LOCAL_CAPACITY: usize = 4096;
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

type Map = HashMap<String, Arc<VerifiedToken>, BuildHasherDefault<FxHasher>>;

#[derive(Serialize, Deserialize)]
struct SharedEntry {
    c: usize,
    k: Option<String>,
    p: Option<usize>,
}

/// The cache of one worker for one configuration.
#[derive(Default)]
pub struct TokenCache {
    young: RefCell<Map>,
    old: RefCell<Map>,
}

impl TokenCache {
    fn shared_key(fingerprint: &[u8; 32], token: &str) -> ([u8; 32], String) {
        let mut material = Vec::with_capacity(token.len().saturating_add(32));
        material.extend_from_slice(fingerprint);
        material.extend_from_slice(token.as_bytes());
        let digest = sha256(&material);
        let n = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % SHARED_SLOTS;
        (digest, format!("bouncer:tok:{n}"))
    }

    /// Look a token up: this worker first, then shared data.
    pub fn get(&self, fingerprint: &[u8; 32], token: &str, metrics: &Metrics) -> Option<CacheHit> {
        if let Some(v) = self.young.borrow().get(token) {
            metrics.inc(Counter::TokenHitsLocal);
            return Some(CacheHit::Full(Arc::clone(v)));
        }
        let promoted = self.old.borrow_mut().remove(token);
        if let Some(v) = promoted {
            metrics.inc(Counter::TokenHitsLocal);
            self.insert_local(token, Arc::clone(&v));
            return Some(CacheHit::Full(v));
        }
        let (digest, key) = Self::shared_key(fingerprint, token);
        let hit = shared::get(&key).0.and_then(|bytes| {
            let (stored, rest) = bytes.split_at_checked(32)?;
            if stored != digest {
                return None;
            }
            let e: SharedEntry = serde_json::from_slice(rest).ok()?;
            Some(CacheHit::Signature {
                consumer: e.c,
                credential: e.k,
                provider: e.p,
            })
        });
        metrics.inc(if hit.is_some() {
            Counter::TokenHitsShared
        } else {
            Counter::TokenMisses
        });
        hit
    }

    fn insert_local(&self, token: &str, v: Arc<VerifiedToken>) {
        let mut young = self.young.borrow_mut();
        if young.len() >= LOCAL_CAPACITY {
            let full = std::mem::take(&mut *young);
            *self.old.borrow_mut() = full;
        }
        young.insert(token.to_owned(), v);
    }

    /// Remember a verified token in both levels.
    pub fn put(&self, fingerprint: &[u8; 32], token: &str, v: &Arc<VerifiedToken>) {
        self.insert_local(token, Arc::clone(v));
        let (digest, key) = Self::shared_key(fingerprint, token);
        let entry = SharedEntry {
            c: v.consumer,
            k: v.credential.clone(),
            p: v.provider,
        };
        if let Ok(json) = serde_json::to_vec(&entry) {
            let mut value = Vec::with_capacity(json.len().saturating_add(32));
            value.extend_from_slice(&digest);
            value.extend_from_slice(&json);
            shared::put(&key, &value);
        }
    }
}
