//! The contract's counters (CONTRACT.md section 5).

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

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

/// Metric ids as the host defined them (`None` where the host refused).
#[derive(Debug, Default)]
pub struct Metrics {
    ids: [Option<u32>; 11],
}

impl Metrics {
    /// Define every counter (idempotent in both hosts: the same name gives the same id).
    pub fn define() -> Metrics {
        let mut ids = [None; 11];
        for (id, name) in ids.iter_mut().zip(NAMES) {
            *id = hostcalls::define_metric(MetricType::Counter, name).ok();
        }
        Metrics { ids }
    }

    /// Add one to a counter; a host error is ignored (metrics never fail a request).
    pub fn inc(&self, c: Counter) {
        if let Some(Some(id)) = self.ids.get(c as usize) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}
