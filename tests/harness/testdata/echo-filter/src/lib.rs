//! A small proxy-wasm filter that exercises the host ABI, driven by request headers.
//! Used only by the harness's self-tests; it is not part of Bouncer.
//!
//! Configuration: a flat JSON object read naively (no serde, to keep the build tiny):
//! `{"name": "x", "reject": true, "tick_ms": 1000, "upstream": "authz", "root_fetch": true}`.

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default, Clone)]
struct Config {
    raw: String,
    name: String,
    upstream: String,
    root_fetch: bool,
}

/// Extract the raw text of `"key": value` from a flat JSON object.
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let at = json.find(&pat)? + pat.len();
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|end| &s[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

#[derive(Default)]
struct Root {
    config: Config,
    /// Requests waiting for the root's key fetch (resumed from the root context).
    waiting: Rc<RefCell<Vec<u32>>>,
    requests_metric: u32,
    ticks: u32,
}

impl Root {
    fn fetch(&self, why: &str) {
        let upstream = if self.config.upstream.is_empty() {
            "idp"
        } else {
            &self.config.upstream
        };
        match self.dispatch_http_call(
            upstream,
            vec![
                (":method", "GET"),
                (":path", "/keys"),
                (":authority", "idp.example.com"),
            ],
            None,
            vec![],
            Duration::from_millis(1000),
        ) {
            Ok(token) => info!("root fetch dispatched ({why}) token={token}"),
            Err(status) => warn!("root fetch failed at dispatch ({why}): {status:?}"),
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = self.get_http_call_response_header(":status");
        let dispatch = self.get_http_call_response_header(":dispatch_status");
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        info!("root callout {token} answered: status={status:?} dispatch_status={dispatch:?}");
        if status.as_deref() == Some("200") {
            self.set_shared_data("keys", Some(&body), None).unwrap();
        }
        for id in self.waiting.borrow_mut().drain(..) {
            hostcalls::set_effective_context(id).unwrap();
            hostcalls::resume_http_request().unwrap();
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, size: usize) -> bool {
        let vm = self.get_vm_configuration().unwrap_or_default();
        info!(
            "vm start: {size} bytes of vm config ({:?})",
            String::from_utf8_lossy(&vm)
        );
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let raw = self
            .get_plugin_configuration()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if field(&raw, "reject") == Some("true") {
            error!("config rejected: reject is true ({size} bytes)");
            return false;
        }
        let cfg = Config {
            name: field(&raw, "name").unwrap_or("echo").to_string(),
            upstream: field(&raw, "upstream").unwrap_or("").to_string(),
            root_fetch: field(&raw, "root_fetch") == Some("true"),
            raw,
        };
        if let Some(ms) = field(&cfg.raw, "tick_ms").and_then(|v| v.parse::<u64>().ok()) {
            self.set_tick_period(Duration::from_millis(ms));
            if field(&cfg.raw, "tick_twice") == Some("true") {
                self.set_tick_period(Duration::from_millis(ms * 2));
            }
        }
        self.requests_metric =
            hostcalls::define_metric(MetricType::Counter, "echo_requests").unwrap();
        info!("configured {}", cfg.name);
        self.config = cfg;
        // (Kong traps a dispatch from on_configure: `"fetch_on_configure": false` leaves the
        // first fetch to the first tick.)
        if self.config.root_fetch && field(&self.config.raw, "fetch_on_configure") != Some("false") {
            self.fetch("configure");
        }
        true
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        info!("tick {}", self.ticks);
        if self.config.root_fetch {
            self.fetch("tick");
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Echo {
            id: context_id,
            config: self.config.clone(),
            requests_metric: self.requests_metric,
            waiting: self.waiting.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Echo {
    id: u32,
    config: Config,
    requests_metric: u32,
    waiting: Rc<RefCell<Vec<u32>>>,
}

fn split_kv(v: &str) -> (&str, &str) {
    v.split_once('=').unwrap_or((v, ""))
}

impl Echo {
    fn cas_increment(&self, key: &str) -> u64 {
        loop {
            let (value, cas) = self.get_shared_data(key);
            let n = value
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            match self.set_shared_data(key, Some(n.to_string().as_bytes()), cas) {
                Ok(()) => return n,
                Err(Status::CasMismatch) => continue,
                Err(e) => panic!("set_shared_data: {e:?}"),
            }
        }
    }

    fn deny(&self, status: u32, message: &str) {
        let body = format!("{{\"message\":\"{message}\"}}");
        self.send_http_response(
            status,
            vec![("content-type", "application/json"), ("x-denied", "yes")],
            Some(body.as_bytes()),
        );
    }
}

impl Context for Echo {
    fn on_http_call_response(
        &mut self,
        token: u32,
        n_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = self.get_http_call_response_header(":status");
        let dispatch = self.get_http_call_response_header(":dispatch_status");
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        info!("callout {token} answered: {n_headers} headers, status={status:?}, dispatch_status={dispatch:?}");
        if status.as_deref() == Some("200") {
            self.add_http_request_header("x-callout-body", &body);
            self.resume_http_request();
        } else if let Some(reason) = dispatch {
            self.deny(503, &format!("callout failed: {reason}"));
        } else if let Some(code) = status {
            self.deny(403, &format!("callout said {code}"));
        } else {
            self.deny(503, "callout failed");
        }
    }
}

impl HttpContext for Echo {
    fn on_http_request_headers(&mut self, n_headers: usize, end_of_stream: bool) -> Action {
        hostcalls::increment_metric(self.requests_metric, 1).unwrap();
        let headers = self.get_http_request_headers();
        info!(
            "request {} with {n_headers} headers, eos={end_of_stream}",
            self.id
        );
        assert_eq!(n_headers, headers.len(), "num_headers matches the map");
        self.add_http_request_header("x-eos", if end_of_stream { "true" } else { "false" });
        for (name, value) in headers {
            match name.as_str() {
                "x-panic" => panic!("boom: {value}"),
                "x-eprint" => eprintln!("{value}"),
                "x-log" => info!("{value}"),
                "x-set" => {
                    let (k, v) = split_kv(&value);
                    self.set_http_request_header(k, Some(v));
                }
                "x-remove" => self.set_http_request_header(&value, None),
                "x-add" => {
                    let (k, v) = split_kv(&value);
                    self.add_http_request_header(k, v);
                }
                "x-replace-all" => {
                    self.set_http_request_headers(vec![
                        (":method", "GET"),
                        (":path", "/replaced"),
                        (":authority", "example.com"),
                        ("x-only", "1"),
                    ]);
                }
                "x-counter" => {
                    let n = self.cas_increment(&value);
                    self.add_http_request_header("x-count", &n.to_string());
                }
                "x-cas-stale" => {
                    let (_, cas) = self.get_shared_data(&value);
                    self.set_shared_data(&value, Some(b"first"), cas).unwrap();
                    let result = match self.set_shared_data(&value, Some(b"second"), cas) {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("{e:?}"),
                    };
                    self.add_http_request_header("x-cas", &result);
                }
                "x-time" => {
                    let now = self.get_current_time().duration_since(UNIX_EPOCH).unwrap();
                    self.add_http_request_header("x-now", &now.as_secs().to_string());
                }
                "x-config-name" => {
                    let name = self.config.name.clone();
                    self.add_http_request_header("x-config-name-value", &name);
                }
                "x-property" => {
                    let path: Vec<&str> = value.split('.').collect();
                    let got = self
                        .get_property(path)
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    self.add_http_request_header(
                        "x-property-value",
                        got.as_deref().unwrap_or("<none>"),
                    );
                }
                "x-set-property" => {
                    let (k, v) = split_kv(&value);
                    self.set_property(k.split('.').collect(), Some(v.as_bytes()));
                }
                "x-alloc" => {
                    let n: usize = value.parse().unwrap_or(0);
                    std::mem::forget(vec![7u8; n]);
                }
                "x-done" => {
                    hostcalls::done().unwrap();
                }
                "x-wait-root" => {
                    self.waiting.borrow_mut().push(self.id);
                    return Action::Pause;
                }
                "x-deny" => {
                    self.deny(value.parse().unwrap_or(401), "denied");
                    return Action::Pause;
                }
                "x-callout" | "x-callout-no-path" => {
                    let mut headers = vec![(":method", "POST"), (":authority", "authz.local")];
                    if name == "x-callout" {
                        headers.push((":path", "/check"));
                    }
                    headers.push(("content-type", "text/plain"));
                    match self.dispatch_http_call(
                        &value,
                        headers,
                        Some(b"ping"),
                        vec![],
                        Duration::from_millis(300),
                    ) {
                        Ok(token) => {
                            info!("dispatched callout {token} to {value}");
                            return Action::Pause;
                        }
                        Err(status) => {
                            self.deny(500, &format!("dispatch failed: {status:?}"));
                            return Action::Pause;
                        }
                    }
                }
                _ => {}
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        info!(
            "request body {} bytes, eos={end_of_stream}: {}",
            body.len(),
            String::from_utf8_lossy(&body)
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        info!("response headers status={status} eos={end_of_stream}");
        self.set_http_response_header("x-echo-response", Some(&status));
        self.set_http_response_header("server", None);
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("log {}", self.id);
    }
}
