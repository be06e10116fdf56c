//! Remote JWKS: fetching, publishing in shared data, and the per-worker parsed cache.
//!
//! Shared data, per endpoint (`upstream`, `authority`, `path`), so every worker and every
//! filter entry that names the same endpoint shares one key set and one fetch schedule:
//! - `bouncer/jwks/<id>/set`: the sequence number of the fetch that published it (8 bytes,
//!   little-endian), then the last good JWKS body (its CAS token is its version);
//! - `bouncer/jwks/<id>/state`: the schedule (next refresh, fetch lock, failures and backoff,
//!   last unknown-`kid` refetch, last sequence number handed out), updated with CAS.
//!
//! Every fetch is stamped with a sequence number from the state when it starts, and its answer
//! is published (with CAS) only over a set from an older fetch: a slow answer landing after a
//! newer fetch has published is dropped, so a key the newer set removed stays removed.
//!
//! Each worker parses a key set once per version and keeps it (`Cache`); it only ever takes a
//! set that was published, so it follows the same order.

use super::hostio;
use super::metrics::{Counter, Metrics};
use super::shared;
use crate::config::{KeySource, Policy, RemoteJwks};
use crate::engine::RemoteKeys;
use crate::jwks::KeySet;
use bouncer_crypto::sha256;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The largest JWKS body accepted.
pub const MAX_BODY: usize = 512 * 1024;

/// The fetch schedule of one endpoint, shared by all workers.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// No scheduled refresh before this time.
    pub next: f64,
    /// A fetch is in flight until this time.
    pub lock: f64,
    /// Consecutive failures.
    pub fails: u32,
    /// No fetch before this time (backoff after a failure).
    pub retry: f64,
    /// When the last unknown-`kid` refetch was claimed.
    pub kid: f64,
    /// The last sequence number handed to a fetch.
    #[serde(default)]
    pub seq: u64,
}

fn endpoint_id(r: &RemoteJwks) -> String {
    let d = sha256(format!("{}\0{}\0{}", r.upstream, r.authority, r.path).as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn keys_key(r: &RemoteJwks) -> String {
    format!("bouncer/jwks/{}/set", endpoint_id(r))
}

/// A published set: the sequence number of its fetch, then the JWKS body.
fn encode_set(seq: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().saturating_add(8));
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn decode_set(value: &[u8]) -> Option<(u64, &[u8])> {
    let (seq, body) = value.split_at_checked(8)?;
    Some((u64::from_le_bytes(seq.try_into().ok()?), body))
}

/// The sequence number of the published set (`None`: nothing published).
fn published_seq(r: &RemoteJwks) -> Option<u64> {
    shared::get(&keys_key(r))
        .0
        .and_then(|v| decode_set(&v).map(|(seq, _)| seq))
}

fn state_key(r: &RemoteJwks) -> String {
    format!("bouncer/jwks/{}/state", endpoint_id(r))
}

pub fn remote(policy: &Policy, provider: usize) -> Option<&RemoteJwks> {
    match policy.providers.get(provider).map(|p| &p.source) {
        Some(KeySource::Remote(r)) => Some(r),
        _ => None,
    }
}

pub fn read_state(r: &RemoteJwks) -> State {
    shared::get(&state_key(r))
        .0
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn update_state(r: &RemoteJwks, mut f: impl FnMut(&mut State) -> bool) -> bool {
    shared::update(&state_key(r), |cur| {
        let mut s: State = cur
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        if !f(&mut s) {
            return None;
        }
        serde_json::to_vec(&s).ok().map(|v| (v, ()))
    })
    .is_some()
}

/// Hand the next sequence number to a fetch that starts now.
fn next_seq(s: &mut State, seq: &mut u64) {
    s.seq = s.seq.saturating_add(1);
    *seq = s.seq;
}

/// Claim the right to fetch now (scheduled refresh due, no fetch in flight, no backoff): the
/// fetch's sequence number.
pub fn claim_scheduled_fetch(r: &RemoteJwks, now: f64, have_keys: bool) -> Option<u64> {
    let lock_for = r.timeout_ms as f64 / 1000.0 + 1.0;
    let mut seq = 0;
    update_state(r, |s| {
        let due = !have_keys || now >= s.next;
        if due && now >= s.lock && now >= s.retry {
            s.lock = now + lock_for;
            next_seq(s, &mut seq);
            true
        } else {
            false
        }
    })
    .then_some(seq)
}

/// Claim an unknown-`kid` refetch: at most one per `refresh_seconds` per endpoint; the
/// fetch's sequence number.
pub fn claim_kid_refetch(r: &RemoteJwks, now: f64) -> Option<u64> {
    let lock_for = r.timeout_ms as f64 / 1000.0 + 1.0;
    let mut seq = 0;
    update_state(r, |s| {
        if now >= s.kid + r.refresh_seconds as f64 && now >= s.retry {
            s.kid = now;
            s.lock = now + lock_for;
            next_seq(s, &mut seq);
            true
        } else {
            false
        }
    })
    .then_some(seq)
}

/// A sequence number for a fetch a request starts for itself (its provider has no keys yet).
/// If the state cannot be updated, 0: such an answer is published only where none was.
pub fn stamp(r: &RemoteJwks) -> u64 {
    let mut seq = 0;
    if update_state(r, |s| {
        next_seq(s, &mut seq);
        true
    }) {
        seq
    } else {
        0
    }
}

/// Whether the endpoint is in backoff after failures (so a request should not wait).
pub fn failing(r: &RemoteJwks, now: f64) -> bool {
    let s = read_state(r);
    s.fails > 0 && now < s.retry
}

/// Send the GET for an endpoint from the current context.
pub fn dispatch(
    ctx: &dyn proxy_wasm::traits::Context,
    r: &RemoteJwks,
) -> Result<u32, proxy_wasm::types::Status> {
    ctx.dispatch_http_call(
        &r.upstream,
        vec![
            (":method", "GET"),
            (":path", r.path.as_str()),
            (":authority", r.authority.as_str()),
            ("accept", "application/json"),
        ],
        None,
        vec![],
        Duration::from_millis(r.timeout_ms),
    )
}

/// A parsed key set and the shared-data version (CAS token) it was parsed from.
type Versioned = (Option<u32>, Arc<KeySet>);

/// Per-worker cache of parsed key sets, by provider index.
#[derive(Default)]
pub struct Cache {
    sets: RefCell<HashMap<usize, Versioned>>,
}

impl Cache {
    /// The worker's key set for a provider, reading shared data when the worker has none
    /// (or when `refresh` asks to check for a newer version).
    pub fn get(&self, policy: &Policy, provider: usize, refresh: bool) -> Option<Arc<KeySet>> {
        if !refresh {
            if let Some((_, set)) = self.sets.borrow().get(&provider) {
                return Some(Arc::clone(set));
            }
        }
        let r = remote(policy, provider)?;
        let (value, cas) = shared::get(&keys_key(r));
        if let Some((v, set)) = self.sets.borrow().get(&provider) {
            if *v == cas && cas.is_some() {
                return Some(Arc::clone(set));
            }
        }
        let (_, body) = decode_set(value.as_deref()?)?;
        let set = Arc::new(KeySet::parse_body(body).ok()?);
        self.sets
            .borrow_mut()
            .insert(provider, (cas, Arc::clone(&set)));
        Some(set)
    }

    fn store(&self, provider: usize, version: Option<u32>, set: Arc<KeySet>) {
        self.sets.borrow_mut().insert(provider, (version, set));
    }
}

/// The keys a request sees: the worker cache, then shared data; `Pending` when a request
/// may wait for a fetch, `Unavailable` when it may not.
pub fn request_keys(
    policy: &Policy,
    cache: &Cache,
    provider: usize,
    now: f64,
    may_wait: bool,
) -> RemoteKeys {
    if let Some(set) = cache.get(policy, provider, false) {
        return RemoteKeys::Loaded(set);
    }
    match remote(policy, provider) {
        Some(r) if may_wait && !failing(r, now) => RemoteKeys::Pending,
        _ => RemoteKeys::Unavailable,
    }
}

/// Read a fetch's answer in `on_http_call_response`: the status and, for a 200 of a sane
/// size, the body.
pub fn read_answer(body_size: usize) -> (Option<u16>, Option<Vec<u8>>) {
    let mut raw = hostio::header_map_bytes(proxy_wasm::types::MapType::HttpCallResponseHeaders);
    let headers = hostio::decode_map(&mut raw).unwrap_or_default();
    let status = hostio::call_status(&headers);
    let body = if status == Some(200) && body_size > 0 && body_size <= MAX_BODY {
        proxy_wasm::hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        )
        .ok()
        .flatten()
    } else {
        None
    };
    (status, body)
}

/// Publish a fetch's body unless a set from this fetch or a later one is there (CAS): whether
/// it was published (`Err(seq)`: refused, the published set's sequence number).
fn publish(r: &RemoteJwks, seq: u64, body: &[u8]) -> Result<bool, u64> {
    let mut newer = None;
    let done = shared::update(&keys_key(r), |cur| {
        newer = cur
            .and_then(decode_set)
            .map(|(stored, _)| stored)
            .filter(|stored| *stored >= seq);
        match newer {
            Some(_) => None,
            None => Some((encode_set(seq, body), ())),
        }
    });
    match (done, newer) {
        (Some(()), _) => Ok(true),
        (None, Some(stored)) => Err(stored),
        (None, None) => Ok(false),
    }
}

/// What became of a fetch: drop a late answer (a newer fetch has published), publish good
/// keys, or back off. The fetch's sequence number is `seq`.
#[allow(clippy::too_many_arguments)]
pub fn record(
    policy: &Policy,
    cache: &Cache,
    metrics: &Metrics,
    provider: usize,
    seq: u64,
    now: f64,
    status: Option<u16>,
    body: Option<Vec<u8>>,
) {
    let Some(r) = remote(policy, provider) else {
        return;
    };
    metrics.inc(Counter::JwksFetches);
    let parsed = body
        .as_deref()
        .map(KeySet::parse_body)
        .and_then(Result::ok)
        .filter(|s| !s.keys.is_empty());
    // A failure after a newer fetch succeeded says nothing about the endpoint now.
    let superseded = || published_seq(r).is_some_and(|p| p > seq);
    match (parsed, body) {
        (Some(set), Some(body)) => {
            match publish(r, seq, &body) {
                Ok(true) => {}
                Ok(false) => {
                    log::warn!("bouncer: JWKS from {}{} not stored", r.authority, r.path);
                    return;
                }
                Err(stored) => {
                    late(r, cache, policy, provider, stored);
                    return;
                }
            }
            // Keep the parsed set if the slot still holds it (else the newer one is read).
            let (value, version) = shared::get(&keys_key(r));
            match value.as_deref().and_then(decode_set) {
                Some((s, _)) if s == seq => cache.store(provider, version, Arc::new(set)),
                _ => {
                    cache.get(policy, provider, true);
                }
            }
            let refresh = r.refresh_seconds as f64;
            update_state(r, |s| {
                s.next = now + refresh;
                s.lock = 0.0;
                s.fails = 0;
                s.retry = 0.0;
                true
            });
            log::info!("bouncer: JWKS from {}{} loaded", r.authority, r.path);
        }
        _ if superseded() => {
            metrics.inc(Counter::JwksErrors);
            log::warn!(
                "bouncer: late JWKS fetch from {}{} failed (a newer one has published)",
                r.authority,
                r.path
            );
        }
        _ => {
            metrics.inc(Counter::JwksErrors);
            let why = match status {
                None => "no answer".to_owned(),
                Some(200) => "not a usable JWK set".to_owned(),
                Some(s) => format!("status {s}"),
            };
            let refresh = r.refresh_seconds as f64;
            update_state(r, |s| {
                s.fails = s.fails.saturating_add(1);
                let exp = i32::try_from(s.fails.min(16))
                    .unwrap_or(16)
                    .saturating_sub(1);
                s.retry = now + 2f64.powi(exp).min(refresh).min(60.0);
                s.lock = 0.0;
                true
            });
            log::warn!(
                "bouncer: JWKS fetch from {}{} failed: {why}",
                r.authority,
                r.path
            );
        }
    }
}

/// A good answer to a fetch older than the published set: dropped. The worker takes the
/// published set, and the state's sequence catches up with it (so that the next fetch is
/// newer even if the state was lost).
fn late(r: &RemoteJwks, cache: &Cache, policy: &Policy, provider: usize, stored: u64) {
    log::info!(
        "bouncer: late JWKS answer from {}{} dropped: a newer fetch has published",
        r.authority,
        r.path
    );
    cache.get(policy, provider, true);
    update_state(r, |s| {
        if s.seq < stored {
            s.seq = stored;
            true
        } else {
            false
        }
    });
}
