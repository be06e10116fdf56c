//! The only code that calls proxy-wasm: the root context (configuration, metrics) and the
//! HTTP context (read the request, evaluate, apply the outcome).

mod metrics;

use crate::authz;
use crate::config::Policy;
use crate::engine::{self, Allowed, Denial, KeyStore, Outcome, RemoteKeys, RequestView, Signals};
use metrics::{Counter, Metrics};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// The root context: one per filter entry per worker.
#[derive(Default)]
pub struct Root {
    policy: Option<Rc<Policy>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                log::error!("bouncer: configuration is not UTF-8");
                return false;
            }
        };
        match Policy::from_json(&text) {
            Ok(p) => {
                self.metrics = Rc::new(Metrics::define());
                self.policy = Some(Rc::new(p));
                log::info!("bouncer: configuration loaded");
                true
            }
            Err(e) => {
                log::error!("bouncer: invalid configuration: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            policy: self.policy.clone(),
            metrics: Rc::clone(&self.metrics),
            pending: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct NoKeys;

impl KeyStore for NoKeys {
    fn keys(&self, _provider: usize) -> RemoteKeys {
        RemoteKeys::Unavailable
    }
}

/// One request.
struct Http {
    policy: Option<Rc<Policy>>,
    metrics: Rc<Metrics>,
    /// A request paused on the authorization callout.
    pending: Option<(u32, Allowed)>,
}

impl Http {
    fn now(&self) -> f64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    fn deny(&mut self, d: &Denial) -> Action {
        match d.status {
            401 => self.metrics.inc(Counter::Denied401),
            403 => self.metrics.inc(Counter::Denied403),
            _ => {}
        }
        log::info!(
            "bouncer: denied {}: {} (consumer: {})",
            d.status,
            d.reason,
            d.consumer.as_deref().unwrap_or("-")
        );
        let mut headers = vec![("content-type", "application/json")];
        if let Some(w) = &d.www_authenticate {
            headers.push(("www-authenticate", w.as_str()));
        }
        self.send_http_response(u32::from(d.status), headers, Some(d.body.as_bytes()));
        Action::Pause
    }

    fn allow(&mut self, a: &Allowed) {
        for name in &a.edits.clear {
            // Blank first: Kong cannot remove a request header, an empty value counts as absent.
            self.set_http_request_header(name, Some(""));
            self.set_http_request_header(name, None);
        }
        for (name, value) in &a.edits.set {
            self.set_http_request_header(name, Some(value));
        }
        if let Some(p) = &a.edits.path {
            self.set_http_request_header(":path", Some(p));
        }
        self.metrics.inc(Counter::Allowed);
    }

    fn apply(&mut self, outcome: Outcome) -> Action {
        match outcome {
            Outcome::Allow(a) => {
                self.allow(&a);
                Action::Continue
            }
            Outcome::Deny(d) => self.deny(&d),
            Outcome::Callout(c) => self.callout(c),
            Outcome::WaitForKeys(_) => self.deny(&Denial {
                status: 503,
                body: r#"{"message":"Signing keys unavailable"}"#.to_owned(),
                www_authenticate: None,
                reason: "signing keys unavailable".to_owned(),
                consumer: None,
            }),
        }
    }

    fn callout(&mut self, c: engine::CalloutNeeded) -> Action {
        let Some(cfg) = self.policy.as_ref().and_then(|p| p.authz.clone()) else {
            return self.apply(Outcome::Allow(c.allowed));
        };
        self.metrics.inc(Counter::AuthzCalls);
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
                self.pending = Some((token, c.allowed));
                Action::Pause
            }
            Err(e) => {
                log::warn!("bouncer: authorization callout could not be dispatched: {e:?}");
                self.metrics.inc(Counter::AuthzErrors);
                let outcome = authz::finish(&cfg, c.allowed, &authz::Decision::Error);
                self.apply(outcome)
            }
        }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token_id: u32, _nh: usize, body_size: usize, _nt: usize) {
        let Some((token, allowed)) = self.pending.take() else {
            return;
        };
        if token != token_id {
            self.pending = Some((token, allowed));
            return;
        }
        let Some(cfg) = self.policy.as_ref().and_then(|p| p.authz.clone()) else {
            return;
        };
        let status = self
            .get_http_call_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok());
        let body = if body_size > 0 {
            self.get_http_call_response_body(0, body_size)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let decision = authz::decide(status, &body, &cfg.allowed_headers);
        if decision == authz::Decision::Error {
            self.metrics.inc(Counter::AuthzErrors);
        }
        if self.apply(authz::finish(&cfg, allowed, &decision)) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            return self.deny(&Denial {
                status: 503,
                body: r#"{"message":"Filter not configured"}"#.to_owned(),
                www_authenticate: None,
                reason: "no configuration".to_owned(),
                consumer: None,
            });
        };
        let headers = self.get_http_request_headers();
        let req = RequestView::from_headers(&headers);
        let mut signals = Signals::default();
        let outcome = engine::evaluate(&policy, &req, self.now(), &NoKeys, &mut signals);
        self.apply(outcome)
    }
}
