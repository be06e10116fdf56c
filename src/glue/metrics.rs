//! The contract's counters (CONTRACT.md section 5).
//!
//! The counters a request bumps on the hot path (allowed, authorization cache hits, token
//! cache hits) are counted in the worker and flushed to the host on the root's tick (every
//! second): a host call per counter per request would cost more than the rest of a cached
//! request's own work (issue 15). The others (denials, callouts, errors, JWKS fetches, token
//! cache misses) go to the host at once: their requests do far costlier work anyway.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;

/// One counter of the contract.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Allowed,
    Denied401,
    Denied403,
    AuthzCalls,
    AuthzCacheHits,
    AuthzErrors,
    JwksFetches,
    JwksErrors,
    TokenHitsLocal,
    TokenHitsShared,
    TokenMisses,
}

const NAMES: [&str; 11] = [
    "bouncer_requests_allowed",
    "bouncer_requests_denied_401",
    "bouncer_requests_denied_403",
    "bouncer_authz_calls",
    "bouncer_authz_cache_hits",
    "bouncer_authz_errors",
    "bouncer_jwks_fetches",
    "bouncer_jwks_errors",
    "bouncer_token_cache_hits_local",
    "bouncer_token_cache_hits_shared",
    "bouncer_token_cache_misses",
];

impl Counter {
    /// Whether the counter is counted in the worker and flushed on the tick.
    fn buffered(self) -> bool {
        matches!(
            self,
            Counter::Allowed
                | Counter::AuthzCacheHits
                | Counter::TokenHitsLocal
                | Counter::TokenHitsShared
        )
    }
}

/// Metric ids as the host defined them (`None` where the host refused), and the buffered
/// counts not yet flushed.
#[derive(Debug, Default)]
pub struct Metrics {
    ids: [Option<u32>; 11],
    pending: [Cell<u64>; 11],
}

impl Metrics {
    /// Define every counter (idempotent in both hosts: the same name gives the same id).
    pub fn define() -> Metrics {
        let mut ids = [None; 11];
        for (id, name) in ids.iter_mut().zip(NAMES) {
            *id = hostcalls::define_metric(MetricType::Counter, name).ok();
        }
        Metrics {
            ids,
            pending: Default::default(),
        }
    }

    /// Add one to a counter: at once, or (hot counters) at the next [`Metrics::flush`]. A host
    /// error is ignored (metrics never fail a request).
    pub fn inc(&self, c: Counter) {
        if c.buffered() {
            if let Some(p) = self.pending.get(c as usize) {
                p.set(p.get().saturating_add(1));
            }
        } else if let Some(Some(id)) = self.ids.get(c as usize) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }

    /// Hand the buffered counts to the host: one call per counter that moved.
    pub fn flush(&self) {
        for (id, pending) in self.ids.iter().zip(&self.pending) {
            let n = pending.take();
            if let (Some(id), true) = (id, n > 0) {
                let _ = hostcalls::increment_metric(*id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
}
