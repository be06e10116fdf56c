//! The authorization decision cache in shared data, shared by every worker.
//!
//! ngx_wasm_module's shared data need not evict (a zone with `eviction=none` traps a write when
//! full; the default evicts least recently used entries), so the cache is a fixed set of slots: a
//! decision lives in slot `key % SLOTS`, stored with its full key and expiry, and a newer
//! decision for another key that lands in the same slot replaces it. Memory is bounded by
//! `SLOTS` times the largest entry (`MAX_ENTRY`).

use super::shared;
use crate::authz::{Decision, Rejection};
use serde::{Deserialize, Serialize};

/// Number of slots.
pub const SLOTS: u32 = 4096;
/// Largest stored entry; bigger decisions (many headers) are not cached.
pub const MAX_ENTRY: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Entry {
    exp: f64,
    allow: bool,
    headers: Vec<(String, String)>,
    /// A denial the answer shaped (`Decision::Reject`): its status and body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reject: Option<(u16, String)>,
}

fn slot_key(key: &[u8; 32]) -> String {
    let n = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) % SLOTS;
    format!("bouncer/authz/{n}")
}

/// A cached, unexpired decision for `key`.
pub fn lookup(key: &[u8; 32], now: f64) -> Option<Decision> {
    let (bytes, _) = shared::get(&slot_key(key));
    let bytes = bytes?;
    let (stored, rest) = bytes.split_at_checked(32)?;
    if stored != key {
        return None;
    }
    let e: Entry = serde_json::from_slice(rest).ok()?;
    if e.exp <= now {
        return None;
    }
    Some(match (e.allow, e.reject) {
        (true, _) => Decision::Allow(e.headers),
        (false, Some((status, body))) => Decision::Reject(Rejection { status, body }),
        (false, None) => Decision::Deny,
    })
}

/// Cache an allow or a deny for `ttl` seconds; errors are never cached.
pub fn store(key: &[u8; 32], decision: &Decision, now: f64, ttl: u64) {
    if ttl == 0 {
        return;
    }
    let (allow, headers, reject) = match decision {
        Decision::Allow(h) => (true, h.clone(), None),
        Decision::Deny => (false, Vec::new(), None),
        Decision::Reject(r) => (false, Vec::new(), Some((r.status, r.body.clone()))),
        Decision::Error => return,
    };
    let entry = Entry {
        exp: now + ttl as f64,
        allow,
        headers,
        reject,
    };
    let Ok(json) = serde_json::to_vec(&entry) else {
        return;
    };
    if json.len() > MAX_ENTRY {
        return;
    }
    let mut value = Vec::with_capacity(json.len().saturating_add(32));
    value.extend_from_slice(key);
    value.extend_from_slice(&json);
    shared::put(&slot_key(key), &value);
}
