//! The host: one proxy process (Envoy or Kong) with its clock, shared data, metrics and logs.

use crate::http::{Callout, CalloutReply};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which proxy the host reproduces (see `docs/HOSTS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Envoy's `envoy.filters.http.wasm`.
    Envoy,
    /// Kong's ngx_wasm_module filter chains.
    Kong,
}

/// A proxy-wasm log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// One log line from a filter (`proxy_log`, or a line the module wrote to stdout (Info) or
/// stderr (Error) through WASI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The filter instance (worker VM) that logged it.
    pub instance: u32,
    /// The effective context when it was logged.
    pub context_id: u32,
    /// Level.
    pub level: LogLevel,
    /// Message.
    pub message: String,
}

/// A metric as the host holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Name given to `define_metric`.
    pub name: String,
    /// 0 counter, 1 gauge, 2 histogram.
    pub kind: u32,
    /// Current value (a histogram keeps its last recorded value).
    pub value: u64,
}

type Handler = Arc<dyn Fn(&Callout) -> CalloutReply + Send + Sync>;

#[derive(Default)]
pub(crate) struct SharedData {
    pub map: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_cas: u32,
}

#[derive(Default)]
pub(crate) struct Queues {
    pub by_name: HashMap<Vec<u8>, u32>,
    pub items: HashMap<u32, VecDeque<Vec<u8>>>,
}

#[derive(Default)]
pub(crate) struct Metrics {
    pub by_name: HashMap<String, u32>,
    pub list: Vec<Metric>,
}

pub(crate) struct HostInner {
    pub profile: Profile,
    pub now_nanos: AtomicU64,
    pub clusters: Mutex<HashSet<String>>,
    pub shared: Mutex<SharedData>,
    pub queues: Mutex<Queues>,
    pub metrics: Mutex<Metrics>,
    pub logs: Mutex<VecDeque<LogEntry>>,
    pub log_capacity: AtomicUsize,
    pub log_level: AtomicU32,
    pub handler: Mutex<Option<Handler>>,
    pub properties: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    pub next_instance: AtomicU32,
    /// Kong: the `shm_kv` zones nginx declares (`*` is the default namespace). A key
    /// `ns/rest` lives in zone `ns` when declared, else in `*`; with neither, shared data traps.
    pub shm_zones: Mutex<Vec<String>>,
    /// Kong: the nginx location around the filter.
    pub location: Mutex<Option<KongLocation>>,
}

/// Kong: what the nginx location around the filter does to the request (the snippet
/// `kong/bouncer-location.conf` is one): variables declared with `set $var ...;`, headers sent
/// with `proxy_set_header Name $var;` or `proxy_set_header Name "constant";`, and the phase the filter's request-header step runs in.
///
/// As in nginx (HOSTS.md): `set` runs in the rewrite phase. When the filter runs there too
/// (plain nginx's default), the variables are still uninitialised while it runs (reading one is
/// NotFound) and `set` then overwrites what the filter wrote. In the access phase (Kong itself,
/// or `proxy_wasm_request_headers_in_access on`) they read as their `set` value and keep what
/// the filter writes. `proxy_set_header` replaces every client copy of the header (and sends
/// nothing for an empty value), except copies the filter removed: a removal zeroes the
/// header's hash, so nginx no longer matches them and forwards them as well.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KongLocation {
    /// `set $name "value";`: the variables and their initial values.
    pub variables: Vec<(String, String)>,
    /// `proxy_set_header Name $var;`: header name and variable name.
    pub proxy_set_headers: Vec<(String, String)>,
    /// `proxy_set_header Name "value";`: header name and a constant value (`""` drops every
    /// client copy of the header, matched by its lowercase name exactly: `_` is not `-`).
    pub proxy_set_constants: Vec<(String, String)>,
    /// The filter's request-header step runs in the access phase (after `set`).
    pub headers_in_access: bool,
}

impl KongLocation {
    /// Reads the `set $v "...";` and `proxy_set_header Name $v;` lines of an nginx snippet
    /// (comments and other directives are ignored).
    pub fn parse(snippet: &str, headers_in_access: bool) -> Self {
        let mut loc = KongLocation {
            headers_in_access,
            ..Default::default()
        };
        for line in snippet.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some(line) = line.strip_suffix(';') else {
                continue;
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["set", var, value] => {
                    if let Some(v) = var.strip_prefix('$') {
                        loc.variables
                            .push((v.to_string(), value.trim_matches('"').to_string()));
                    }
                }
                ["proxy_set_header", name, var] => {
                    if let Some(v) = var.strip_prefix('$') {
                        loc.proxy_set_headers
                            .push((name.to_string(), v.to_string()));
                    } else if let Some(c) = var
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .filter(|c| !c.contains('$'))
                    {
                        loc.proxy_set_constants
                            .push((name.to_string(), c.to_string()));
                    }
                }
                _ => {}
            }
        }
        loc
    }

    /// The initial value of a declared variable.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|(v, _)| v == name)
            .map(|(_, value)| value.as_str())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostInner {
    /// Kong's `ngx_wa_shm_kv_resolve_key`: `ns/key` in zone `ns`, else in the default `*`.
    pub fn shm_resolves(&self, key: &[u8]) -> bool {
        if self.profile == Profile::Envoy {
            return true;
        }
        let zones = lock(&self.shm_zones);
        let ns = key
            .iter()
            .position(|&b| b == b'/')
            .filter(|&i| i > 0)
            .and_then(|i| key.get(..i));
        ns.is_some_and(|ns| zones.iter().any(|z| z.as_bytes() == ns))
            || zones.iter().any(|z| z == "*")
    }

    pub fn now(&self) -> u64 {
        self.now_nanos.load(Ordering::Relaxed)
    }

    pub fn advance(&self, d: Duration) {
        self.now_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn log(&self, entry: LogEntry) {
        let cap = self.log_capacity.load(Ordering::Relaxed);
        if cap == 0 {
            return;
        }
        let mut logs = lock(&self.logs);
        while logs.len() >= cap {
            logs.pop_front();
        }
        logs.push_back(entry);
    }

    pub fn handler(&self) -> Option<Handler> {
        lock(&self.handler).clone()
    }
}

/// Default start of the host clock: 2026-01-01T00:00:00Z.
pub const DEFAULT_UNIX_TIME: u64 = 1_767_225_600;

/// One proxy process: its profile, clock, clusters, shared data, metrics, logs and callout
/// handler. Every [`crate::Filter`] created from it is one worker VM of that process and shares
/// its shared data and metrics. Cloning gives another handle to the same host.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("profile", &self.inner.profile)
            .field("now", &self.now())
            .finish()
    }
}

impl Host {
    /// A host with this profile, its clock at [`DEFAULT_UNIX_TIME`], no clusters, and every log
    /// kept (up to 100 000 lines).
    pub fn new(profile: Profile) -> Self {
        Self {
            inner: Arc::new(HostInner {
                profile,
                now_nanos: AtomicU64::new(DEFAULT_UNIX_TIME * 1_000_000_000),
                clusters: Mutex::default(),
                shared: Mutex::default(),
                queues: Mutex::default(),
                metrics: Mutex::default(),
                logs: Mutex::default(),
                log_capacity: AtomicUsize::new(100_000),
                log_level: AtomicU32::new(0),
                handler: Mutex::new(None),
                properties: Mutex::default(),
                next_instance: AtomicU32::new(1),
                shm_zones: Mutex::new(vec!["*".to_string()]),
                location: Mutex::new(None),
            }),
        }
    }

    /// `Host::new(Profile::Envoy)`.
    pub fn envoy() -> Self {
        Self::new(Profile::Envoy)
    }

    /// `Host::new(Profile::Kong)`.
    pub fn kong() -> Self {
        Self::new(Profile::Kong)
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.inner.profile
    }

    /// Sets the clock to `secs` after the Unix epoch (builder form of [`set_time`](Self::set_time)).
    pub fn at_unix(self, secs: u64) -> Self {
        self.set_time(UNIX_EPOCH + Duration::from_secs(secs));
        self
    }

    /// Declares upstreams that exist: for Envoy, cluster names (`dispatch_http_call` to any other
    /// name fails with BadArgument); for Kong, host names the resolver knows (a callout to
    /// another name, not an IP literal, fails through `on_http_call_response`).
    pub fn with_clusters(self, names: &[&str]) -> Self {
        for n in names {
            self.add_cluster(n);
        }
        self
    }

    /// Declares one upstream (see [`with_clusters`](Self::with_clusters)).
    pub fn add_cluster(&self, name: &str) {
        lock(&self.inner.clusters).insert(name.to_string());
    }

    /// The clock.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.inner.now())
    }

    /// The clock in whole seconds since the epoch.
    pub fn now_unix(&self) -> u64 {
        self.inner.now() / 1_000_000_000
    }

    /// Sets the clock.
    pub fn set_time(&self, t: SystemTime) {
        let nanos = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.inner.now_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.inner.advance(d);
    }

    /// Answers every callout dispatched from now on, right after the callback that dispatched
    /// it returns (or after [`CalloutReply::Delayed`]'s delay on the host clock).
    /// [`CalloutReply::Manual`] leaves one for [`crate::Filter::respond`].
    pub fn set_callout_handler(
        &self,
        f: impl Fn(&Callout) -> CalloutReply + Send + Sync + 'static,
    ) {
        *lock(&self.inner.handler) = Some(Arc::new(f));
    }

    /// Removes the callout handler: callouts wait for [`crate::Filter::respond`].
    pub fn clear_callout_handler(&self) {
        *lock(&self.inner.handler) = None;
    }

    /// A shared-data entry: its value and CAS.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.inner.shared).map.get(key.as_bytes()).cloned()
    }

    /// Writes a shared-data entry (unconditionally); returns its new CAS.
    pub fn set_shared_data(&self, key: &str, value: &[u8]) -> u32 {
        let mut s = lock(&self.inner.shared);
        s.next_cas = s.next_cas.wrapping_add(1).max(1);
        let cas = s.next_cas;
        s.map.insert(key.as_bytes().to_vec(), (value.to_vec(), cas));
        cas
    }

    /// The value of the metric called `name`.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let m = lock(&self.inner.metrics);
        m.by_name.get(name).map(|&id| m.list[id as usize - 1].value)
    }

    /// Every metric defined so far.
    pub fn metrics(&self) -> Vec<Metric> {
        lock(&self.inner.metrics).list.clone()
    }

    /// The logs of every filter instance of this host, oldest first.
    pub fn logs(&self) -> Vec<LogEntry> {
        lock(&self.inner.logs).iter().cloned().collect()
    }

    /// Forgets the logs kept so far.
    pub fn clear_logs(&self) {
        lock(&self.inner.logs).clear();
    }

    /// How many log lines the host keeps (oldest dropped first); 0 keeps none (benchmarks).
    /// Per-request logs in [`crate::Outcome::logs`] are kept regardless.
    pub fn set_log_capacity(&self, lines: usize) {
        self.inner.log_capacity.store(lines, Ordering::Relaxed);
    }

    /// The host's log level: lower lines are dropped, and `proxy_get_log_level` returns it.
    pub fn set_log_level(&self, level: LogLevel) {
        self.inner.log_level.store(level as u32, Ordering::Relaxed);
    }

    /// Kong: nginx without any `shm_kv` zone (kong.conf sets no `nginx_wasm_shm_kv*`): every
    /// `get_shared_data`/`set_shared_data` traps (HOSTS.md). A host has a `*` zone by default.
    pub fn without_shm_zone(self) -> Self {
        lock(&self.inner.shm_zones).clear();
        self
    }

    /// Kong: a host configured like a `kong.conf`: the `shm_kv` zones it declares, from
    /// `nginx_wasm_shm_kv = SIZE` (zone `*`, Kong 3.7+), `nginx_wasm_shm_kv_NAME = SIZE`
    /// (Kong 3.6+) and `nginx_wasm_shm_NAME = SIZE` (Kong 3.4 and 3.5).
    pub fn kong_with_conf(conf: &str) -> Self {
        let mut zones = Vec::new();
        for line in conf.lines() {
            let line = line.split('#').next().unwrap_or("");
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() {
                continue;
            }
            if k == "nginx_wasm_shm_kv" {
                zones.push("*".to_string());
            } else if let Some(name) = k
                .strip_prefix("nginx_wasm_shm_kv_")
                .or_else(|| k.strip_prefix("nginx_wasm_shm_"))
            {
                zones.push(name.to_string());
            }
        }
        let h = Host::kong();
        *lock(&h.inner.shm_zones) = zones;
        h
    }

    /// Whether a shared-data key resolves to a zone (always in Envoy; in Kong, as nginx
    /// resolves `namespace/key`).
    pub fn shm_resolves(&self, key: &str) -> bool {
        self.inner.shm_resolves(key.as_bytes())
    }

    /// Kong: the nginx location the filter runs in (see [`KongLocation`]).
    pub fn with_location(self, location: KongLocation) -> Self {
        *lock(&self.inner.location) = Some(location);
        self
    }

    /// Sets a host property (returned by `get_property` unless the filter set its own).
    pub fn set_property(&self, path: &[&str], value: &[u8]) {
        lock(&self.inner.properties).insert(path.join("\0").into_bytes(), value.to_vec());
    }
}
