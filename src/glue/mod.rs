//! The only code that calls proxy-wasm: the root context (configuration, metrics, JWKS
//! refresh) and the HTTP context (read the request, evaluate, apply the outcome, run the
//! callouts it needs).

mod decisions;
mod hostio;
mod jwks;
mod metrics;
mod shared;
mod tokens;

use crate::authz::{self, Decision};
use crate::config::{KeySource, Policy};
use crate::engine::{
    self, Allowed, CacheHit, Denial, Env, Outcome, RemoteKeys, RequestView, Signals, VerifiedToken,
};
use bouncer_crypto::sha256;
use metrics::{Counter, Metrics};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Everything a worker's requests share for one configuration.
struct Worker {
    policy: Policy,
    metrics: Metrics,
    jwks: jwks::Cache,
    tokens: tokens::TokenCache,
    /// A digest of the configuration, mixed into verified-token cache keys.
    fingerprint: [u8; 32],
    /// Kong with `kong/bouncer-location.conf`: the reserved headers whose nginx variable the
    /// location declares (`$bouncer_consumer_id` ...), which `proxy_set_header` sends instead
    /// of any client copy. Probed once per worker, in its first allowed request.
    ngx_vars: std::cell::OnceCell<Vec<String>>,
    /// Whether the host is nginx (Kong): it has `ngx.*` properties. Probed once, in a request.
    nginx: std::cell::OnceCell<bool>,
}

impl Worker {
    /// The reserved headers mirrored into nginx variables (empty outside Kong, or without the
    /// snippet). `$bouncer_consumer_id` is probed first, so a host without the snippet is asked
    /// once per worker, not once per header.
    fn mirrored(&self) -> &[String] {
        self.ngx_vars.get_or_init(|| {
            if hostio::ngx_var(&hostio::ngx_var_name("x-consumer-id")).is_none() {
                return Vec::new();
            }
            self.policy
                .reserved
                .iter()
                .filter(|name| hostio::ngx_var(&hostio::ngx_var_name(name)).is_some())
                .cloned()
                .collect()
        })
    }

    /// Record a JWKS fetch's outcome (`status` None: no answer, or not dispatched).
    fn record_fetch(
        &self,
        provider: usize,
        seq: u64,
        at: f64,
        status: Option<u16>,
        body: Option<Vec<u8>>,
    ) {
        jwks::record(
            &self.policy,
            &self.jwks,
            &self.metrics,
            provider,
            seq,
            at,
            status,
            body,
        );
    }

    /// Write the mirrored headers' variables the filter sets. The others keep the empty value
    /// the snippet's `set` gave them in the rewrite phase, before the filter runs (Kong's
    /// order); when the filter runs first, `set` wipes every value anyway (HOSTS.md).
    fn mirror_ngx_vars(&self, set: &[(Cow<'_, str>, Cow<'_, str>)]) {
        let mirrored = self.mirrored();
        if mirrored.is_empty() {
            return;
        }
        for (name, value) in set {
            if !value.is_empty() && mirrored.iter().any(|m| *m == *name) {
                hostio::set_ngx_var(&hostio::ngx_var_name(name), value);
            }
        }
    }
}

fn now() -> f64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The root context: one per filter entry per worker.
#[derive(Default)]
pub struct Root {
    worker: Option<Rc<Worker>>,
    /// JWKS fetches this root dispatched: token -> (provider, the fetch's sequence number).
    fetches: HashMap<u32, (usize, u64)>,
    /// Whether this root set its tick period (Kong traps on a second call).
    ticking: bool,
}

impl Root {
    fn remote_providers(w: &Worker) -> impl Iterator<Item = usize> + '_ {
        w.policy
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.source, KeySource::Remote(_)))
            .map(|(i, _)| i)
    }

    /// Start every JWKS fetch that is due and not in flight anywhere.
    fn fetch_due(&mut self) {
        let Some(w) = self.worker.clone() else {
            return;
        };
        if Self::remote_providers(&w).next().is_none() {
            return;
        }
        let t = now();
        for p in Self::remote_providers(&w) {
            let Some(r) = jwks::remote(&w.policy, p) else {
                continue;
            };
            let have = w.jwks.get(&w.policy, p, true).is_some();
            let Some(seq) = jwks::claim_scheduled_fetch(r, t, have) else {
                continue;
            };
            match jwks::dispatch(self, r) {
                Ok(token) => {
                    self.fetches.insert(token, (p, seq));
                }
                Err(e) => {
                    log::warn!("bouncer: JWKS fetch could not be dispatched: {e:?}");
                    w.record_fetch(p, seq, t, None, None);
                }
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _nh: usize, body_size: usize, _nt: usize) {
        let (Some((p, seq)), Some(w)) = (self.fetches.remove(&token), self.worker.clone()) else {
            return;
        };
        let (status, body) = jwks::read_answer(body_size);
        w.record_fetch(p, seq, now(), status, body);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let Ok(text) = String::from_utf8(bytes) else {
            log::error!("bouncer: invalid configuration: not UTF-8");
            return false;
        };
        let policy = match Policy::from_json(&text) {
            Ok(p) => p,
            Err(e) => {
                log::error!("bouncer: invalid configuration: {e}");
                return false;
            }
        };
        if let Some(old) = &self.worker {
            old.metrics.flush();
        }
        self.worker = Some(Rc::new(Worker {
            policy,
            metrics: Metrics::define(),
            jwks: jwks::Cache::default(),
            tokens: tokens::TokenCache::default(),
            fingerprint: sha256(text.as_bytes()),
            ngx_vars: std::cell::OnceCell::new(),
            nginx: std::cell::OnceCell::new(),
        }));
        log::info!("bouncer: configuration loaded");
        // The tick flushes the hot counters (metrics.rs) and starts JWKS fetches. The first
        // fetch comes from the first tick (or the first request, which fetches for itself):
        // Kong's engine traps a callout made from on_configure, and that kills the worker.
        if !self.ticking {
            self.ticking = hostcalls::set_tick_period(Duration::from_secs(1)).is_ok();
        }
        true
    }

    fn on_tick(&mut self) {
        if let Some(w) = &self.worker {
            w.metrics.flush();
        }
        self.fetch_due();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            worker: self.worker.clone(),
            wait: Wait::Nothing,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The keys a request sees.
struct WorkerKeys<'a> {
    worker: &'a Worker,
    now: f64,
    may_wait: bool,
}

impl Env for WorkerKeys<'_> {
    fn keys(&self, provider: usize) -> RemoteKeys {
        jwks::request_keys(
            &self.worker.policy,
            &self.worker.jwks,
            provider,
            self.now,
            self.may_wait,
        )
    }

    fn cached(&self, token: &str) -> Option<CacheHit> {
        let w = self.worker;
        w.tokens.get(&w.fingerprint, token, &w.metrics)
    }

    fn remember(&self, token: &str, verified: &std::sync::Arc<VerifiedToken>) {
        let w = self.worker;
        w.tokens.put(&w.fingerprint, token, verified);
    }

    fn client_host(&self) -> Option<String> {
        // Kong (nginx): the Host header, as nginx's $http_host. Only nginx has `ngx.*`
        // properties: probed once per worker.
        let nginx = *self
            .worker
            .nginx
            .get_or_init(|| hostio::ngx_var("hostname").is_some());
        if !nginx {
            return None;
        }
        let host = hostio::ngx_var("http_host")?;
        String::from_utf8(host).ok().filter(|h| !h.is_empty())
    }

    fn decision(&self, cache_key: &[u8; 32]) -> Option<Decision> {
        let w = self.worker;
        let d = decisions::lookup(cache_key, self.now)?;
        w.metrics.inc(Counter::AuthzCacheHits);
        Some(d)
    }
}

/// What a paused request waits for.
enum Wait {
    Nothing,
    /// A JWKS fetch (first keys, or an unknown `kid`).
    Keys {
        token: u32,
        provider: usize,
        /// The fetch's sequence number.
        seq: u64,
    },
    /// The authorization callout.
    Authz {
        token: u32,
        /// Owned: the answer arrives in a later callback.
        allowed: Allowed<'static>,
        key: [u8; 32],
    },
}

/// One request.
struct Http {
    worker: Option<Rc<Worker>>,
    wait: Wait,
}

impl Http {
    fn deny(&self, w: &Worker, d: &Denial) -> Action {
        self.deny_with(w, d, true)
    }

    /// Send a denial; `with_body: false` sends the status and headers only (see
    /// `on_http_call_response`: Kong's engine loses a body sent after a failed callout).
    fn deny_with(&self, w: &Worker, d: &Denial, with_body: bool) -> Action {
        match d.status {
            401 => w.metrics.inc(Counter::Denied401),
            403 => w.metrics.inc(Counter::Denied403),
            _ => {}
        }
        log::info!(
            "bouncer: denied {}: {} (consumer: {})",
            d.status,
            d.reason,
            d.consumer.as_deref().unwrap_or("-")
        );
        let mut headers = Vec::with_capacity(2);
        if with_body {
            headers.push(("content-type", "application/json"));
        }
        if let Some(v) = &d.www_authenticate {
            headers.push(("www-authenticate", v.as_str()));
        }
        let body = with_body.then_some(d.body.as_bytes());
        self.send_http_response(u32::from(d.status), headers, body);
        Action::Pause
    }

    fn allow(&self, w: &Worker, a: &Allowed<'_>) -> Action {
        // Kong with the location snippet: blank only. Kong cannot remove a request header
        // (the removal is ignored) but a removal zeroes the header's hash, and the snippet's
        // proxy_set_header then forwards the client's blanked copy besides its own.
        let in_location = !w.mirrored().is_empty();
        for name in &a.edits.clear {
            if a.edits.set.iter().any(|(n, _)| n == name) {
                // Set below, in place (its one copy: duplicates were refused). Removing it
                // first would make Kong add the value as a second copy after the blanked one.
                continue;
            }
            // Blank first: Kong cannot remove a request header; an empty value is absent.
            self.set_http_request_header(name, Some(""));
            if !in_location {
                self.set_http_request_header(name, None);
            }
        }
        for (name, value) in &a.edits.set {
            self.set_http_request_header(name, Some(value));
        }
        if let Some(p) = &a.edits.path {
            self.set_http_request_header(":path", Some(p));
        }
        w.mirror_ngx_vars(&a.edits.set);
        w.metrics.inc(Counter::Allowed);
        Action::Continue
    }

    /// Evaluate the request and act on the outcome.
    fn run(&mut self, w: &Rc<Worker>, may_wait: bool) -> Action {
        let mut raw = hostio::header_map_bytes(MapType::HttpRequestHeaders);
        let headers = hostio::decode_map(&mut raw).unwrap_or_default();
        let req = RequestView::from_map(&headers);
        let t = now();
        let mut signals = Signals::default();
        let keys = WorkerKeys {
            worker: w,
            now: t,
            may_wait,
        };
        let outcome = engine::evaluate(&w.policy, &req, t, &keys, &mut signals);
        if let (Some(p), true) = (signals.unknown_kid, may_wait) {
            if let Some(r) = jwks::remote(&w.policy, p) {
                if let Some(seq) = jwks::claim_kid_refetch(r, t) {
                    if let Some(a) = self.fetch_keys(w, p, seq) {
                        return a;
                    }
                }
            }
        }
        match outcome {
            Outcome::Allow(a) => self.allow(w, &a),
            Outcome::Deny(d) => self.deny(w, &d),
            Outcome::WaitForKeys(p) => match jwks::remote(&w.policy, p)
                .map(jwks::stamp)
                .and_then(|seq| self.fetch_keys(w, p, seq))
            {
                Some(a) => a,
                None => self.run(w, false),
            },
            Outcome::Callout(c) => self.authorize(w, c),
        }
    }

    /// Fetch a provider's keys for this request (the fetch's sequence number is `seq`); `None`
    /// if the fetch could not start.
    fn fetch_keys(&mut self, w: &Rc<Worker>, provider: usize, seq: u64) -> Option<Action> {
        let r = jwks::remote(&w.policy, provider)?;
        match jwks::dispatch(self, r) {
            Ok(token) => {
                self.wait = Wait::Keys {
                    token,
                    provider,
                    seq,
                };
                Some(Action::Pause)
            }
            Err(e) => {
                log::warn!("bouncer: JWKS fetch could not be dispatched: {e:?}");
                w.record_fetch(provider, seq, now(), None, None);
                None
            }
        }
    }

    fn authorize(&mut self, w: &Rc<Worker>, c: engine::CalloutNeeded<'_>) -> Action {
        let Some(cfg) = &w.policy.authz else {
            return self.allow(w, &c.allowed);
        };
        // The engine's key digests the configuration and the exact body (CONTRACT.md 4).
        let key = c.cache_key;
        let t = now();
        if let Some(d) = decisions::lookup(&key, t) {
            w.metrics.inc(Counter::AuthzCacheHits);
            return self.finish_authz(w, c.allowed, &d, true);
        }
        w.metrics.inc(Counter::AuthzCalls);
        let headers = vec![
            (":method", "POST"),
            (":path", cfg.path.as_str()),
            (":authority", cfg.authority.as_str()),
            ("content-type", "application/json"),
        ];
        match self.dispatch_http_call(
            &cfg.upstream,
            headers,
            Some(c.body.as_bytes()),
            vec![],
            Duration::from_millis(cfg.timeout_ms),
        ) {
            Ok(token) => {
                self.wait = Wait::Authz {
                    token,
                    allowed: c.allowed.into_owned(),
                    key,
                };
                Action::Pause
            }
            Err(e) => {
                log::warn!("bouncer: authorization callout could not be dispatched: {e:?}");
                self.finish_authz(w, c.allowed, &Decision::Error, true)
            }
        }
    }

    /// Act on a decision. `with_body: false` when the callout failed in Kong's engine, which
    /// then loses a local response's body and closes the connection (HOSTS.md): the error
    /// status goes out without one.
    fn finish_authz(
        &self,
        w: &Worker,
        allowed: Allowed<'_>,
        d: &Decision,
        with_body: bool,
    ) -> Action {
        let Some(cfg) = &w.policy.authz else {
            return self.allow(w, &allowed);
        };
        if *d == Decision::Error {
            w.metrics.inc(Counter::AuthzErrors);
        }
        match authz::finish(cfg, allowed, d) {
            Outcome::Allow(a) => self.allow(w, &a),
            Outcome::Deny(den) => self.deny_with(w, &den, with_body),
            _ => Action::Pause,
        }
    }
}

/// The largest authorization answer read.
const MAX_AUTHZ_BODY: usize = 64 * 1024;

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, _nh: usize, body_size: usize, _nt: usize) {
        let Some(w) = self.worker.clone() else {
            return;
        };
        let action = match std::mem::replace(&mut self.wait, Wait::Nothing) {
            Wait::Keys {
                token: t,
                provider,
                seq,
            } if t == token => {
                let (status, body) = jwks::read_answer(body_size);
                w.record_fetch(provider, seq, now(), status, body);
                self.run(&w, false)
            }
            Wait::Authz {
                token: t,
                allowed,
                key,
            } if t == token => {
                let mut raw = hostio::header_map_bytes(MapType::HttpCallResponseHeaders);
                let headers = hostio::decode_map(&mut raw).unwrap_or_default();
                let status = hostio::call_status(&headers);
                // Kong reports a failed callout with `:dispatch_status` and no `:status`.
                let engine_failed =
                    status.is_none() && headers.iter().any(|(k, _)| *k == ":dispatch_status");
                let decision = if body_size > MAX_AUTHZ_BODY {
                    // Too large to read: a failure stays a failure, any other answer denies.
                    authz::decide(status, b"", &[])
                } else {
                    let body = if body_size > 0 {
                        self.get_http_call_response_body(0, body_size)
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let allowed_headers = w
                        .policy
                        .authz
                        .as_ref()
                        .map(|a| a.allowed_headers.as_slice())
                        .unwrap_or_default();
                    authz::decide(status, &body, allowed_headers)
                };
                if let Some(cfg) = &w.policy.authz {
                    decisions::store(&key, &decision, now(), cfg.cache_ttl_seconds);
                }
                self.finish_authz(&w, allowed, &decision, !engine_failed)
            }
            other => {
                self.wait = other;
                return;
            }
        };
        if action == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(w) = self.worker.clone() else {
            // Unreachable in both hosts (no request before a good configuration): fail closed.
            self.send_http_response(
                503,
                vec![("content-type", "application/json")],
                Some(br#"{"message":"Filter not configured"}"#),
            );
            return Action::Pause;
        };
        self.run(&w, true)
    }
}
