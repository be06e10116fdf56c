//! Remote JWKS: fetching, publishing in shared data, and the per-worker parsed cache.
//!
//! Shared data, per endpoint (`upstream`, `authority`, `path`), so every worker and every
//! filter entry that names the same endpoint shares one key set and one fetch schedule:
//! - `bouncer/jwks/<id>/keys`: the last good JWKS body (its CAS token is its version);
//! - `bouncer/jwks/<id>/state`: the schedule (next refresh, fetch lock, failures and backoff,
//!   last unknown-`kid` refetch), updated with CAS.
//!
//! Each worker parses a key set once per version and keeps it (`Cache`).

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
}

fn endpoint_id(r: &RemoteJwks) -> String {
    let d = sha256(format!("{}\0{}\0{}", r.upstream, r.authority, r.path).as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn keys_key(r: &RemoteJwks) -> String {
    format!("bouncer/jwks/{}/keys", endpoint_id(r))
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

/// Claim the right to fetch now (scheduled refresh due, no fetch in flight, no backoff).
pub fn claim_scheduled_fetch(r: &RemoteJwks, now: f64, have_keys: bool) -> bool {
    let lock_for = r.timeout_ms as f64 / 1000.0 + 1.0;
    update_state(r, |s| {
        let due = !have_keys || now >= s.next;
        if due && now >= s.lock && now >= s.retry {
            s.lock = now + lock_for;
            true
        } else {
            false
        }
    })
}

/// Claim an unknown-`kid` refetch: at most one per `refresh_seconds` per endpoint.
pub fn claim_kid_refetch(r: &RemoteJwks, now: f64) -> bool {
    let lock_for = r.timeout_ms as f64 / 1000.0 + 1.0;
    update_state(r, |s| {
        if now >= s.kid + r.refresh_seconds as f64 && now >= s.retry {
            s.kid = now;
            s.lock = now + lock_for;
            true
        } else {
            false
        }
    })
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
        let (body, cas) = shared::get(&keys_key(r));
        if let Some((v, set)) = self.sets.borrow().get(&provider) {
            if *v == cas && cas.is_some() {
                return Some(Arc::clone(set));
            }
        }
        let set = Arc::new(KeySet::parse_body(&body?).ok()?);
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
    let headers = hostio::header_map(proxy_wasm::types::MapType::HttpCallResponseHeaders);
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

/// Record a fetch's outcome (from any context): publish good keys, or back off.
/// `status` is `None` when the call failed or could not be dispatched.
pub fn record(
    policy: &Policy,
    cache: &Cache,
    metrics: &Metrics,
    provider: usize,
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
    match (parsed, body) {
        (Some(set), Some(body)) => {
            shared::put(&keys_key(r), &body);
            let version = shared::get(&keys_key(r)).1;
            cache.store(provider, version, Arc::new(set));
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
