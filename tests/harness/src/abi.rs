//! The proxy-wasm ABI 0.2.1 host functions and the WASI preview1 subset, on one instance's state.

use crate::host::{lock, HostInner, LogEntry, LogLevel, Metric, Profile};
use crate::http::{Callout, Headers, Response};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{bail, Caller, Engine, ExternType, Linker, Memory, Module, Result, TypedFunc};

// proxy_status_t
pub(crate) const OK: u32 = 0;
pub(crate) const NOT_FOUND: u32 = 1;
pub(crate) const BAD_ARGUMENT: u32 = 2;
pub(crate) const SERIALIZATION_FAILURE: u32 = 3;
pub(crate) const INVALID_MEMORY_ACCESS: u32 = 6;
pub(crate) const EMPTY: u32 = 7;
pub(crate) const CAS_MISMATCH: u32 = 8;
pub(crate) const UNIMPLEMENTED: u32 = 12;

// wasi errno
const ERRNO_SUCCESS: u32 = 0;
const ERRNO_BADF: u32 = 8;
const ERRNO_FAULT: u32 = 21;
const ERRNO_INVAL: u32 = 28;
const ERRNO_NOSYS: u32 = 52;

/// Where a request is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    RequestHeaders,
    RequestBody,
    Upstream,
    ResponseHeaders,
    ResponseBody,
    Log,
    Finished,
}

/// One HTTP stream context.
pub(crate) struct Stream {
    pub root_id: u32,
    pub phase: Phase,
    pub paused: bool,
    pub resume: bool,
    pub req_headers: Vec<(String, String)>,
    pub req_body: Vec<u8>,
    pub resp_headers: Vec<(String, String)>,
    pub resp_body: Vec<u8>,
    pub local: Option<Response>,
    pub local_handled: bool,
    pub reset: bool,
    pub forwarded: Option<Vec<(String, String)>>,
    pub response: Option<Response>,
    pub upstream: (u16, Vec<(String, String)>, Vec<u8>),
    pub logs: Vec<LogEntry>,
    pub callouts: Vec<Callout>,
    pub properties: Vec<(String, Vec<u8>)>,
    /// Kong: the request headers (indices in `req_headers`, which never shrinks there) the
    /// filter removed: their hash is zeroed, nginx still forwards them.
    pub zeroed: Vec<usize>,
    /// Kong: a local response sent now is lost (ngx_wasm_module 3bed278 after a callout that
    /// timed out: `[alert] zero size buf in writer`, the connection is closed).
    pub loses_local_body: bool,
}

pub(crate) struct CallResponse {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The store data of one filter instance.
pub(crate) struct State {
    pub host: Arc<HostInner>,
    pub profile: Profile,
    pub instance_id: u32,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<u32, u32>>,
    /// The effective context.
    pub current: u32,
    /// The callback running now (`proxy_on_request_headers`, ...).
    pub callback: &'static str,
    /// Root contexts alive (the last one serves new requests) and their configurations.
    pub roots: HashMap<u32, Vec<u8>>,
    pub vm_config: Vec<u8>,
    pub streams: HashMap<u32, Stream>,
    pub call_response: Option<CallResponse>,
    pub next_token: u32,
    pub pending: HashMap<u32, Callout>,
    /// Tokens dispatched during the current callback (for the callout handler).
    pub new_callouts: Vec<u32>,
    /// Callouts Kong fails by itself (unresolvable upstream): token and reason.
    pub auto_fail: Vec<(u32, String)>,
    /// Root-context logs and callouts of the current top-level operation.
    pub op_logs: Vec<LogEntry>,
    pub op_callouts: Vec<Callout>,
    /// Module output (stdout/stderr, error logs) of the current callback, for trap reports.
    pub output: String,
    pub line_buf: [Vec<u8>; 2],
    pub tick_periods: HashMap<u32, Duration>,
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    pub rng: u64,
}

impl State {
    pub fn new(host: Arc<HostInner>, instance_id: u32, vm_config: Vec<u8>) -> Self {
        Self {
            profile: host.profile,
            host,
            instance_id,
            memory: None,
            alloc: None,
            current: 0,
            callback: "",
            roots: HashMap::new(),
            vm_config,
            streams: HashMap::new(),
            call_response: None,
            next_token: 1,
            pending: HashMap::new(),
            new_callouts: Vec::new(),
            auto_fail: Vec::new(),
            op_logs: Vec::new(),
            op_callouts: Vec::new(),
            output: String::new(),
            line_buf: [Vec::new(), Vec::new()],
            tick_periods: HashMap::new(),
            properties: HashMap::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ u64::from(instance_id),
        }
    }

    fn kong(&self) -> bool {
        self.profile == Profile::Kong
    }

    fn stream(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.current)
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= LogLevel::Error {
            self.output.push_str(&message);
            self.output.push('\n');
        }
        if (level as u32) < self.host.log_level.load(Ordering::Relaxed) {
            return;
        }
        let entry = LogEntry {
            instance: self.instance_id,
            context_id: self.current,
            level,
            message,
        };
        if self.host.log_capacity.load(Ordering::Relaxed) > 0 {
            self.host.log(entry.clone());
        }
        match self.streams.get_mut(&self.current) {
            Some(s) => s.logs.push(entry),
            None => self.op_logs.push(entry),
        }
    }

    fn wasi_write(&mut self, fd: usize, bytes: &[u8]) {
        self.output.push_str(&String::from_utf8_lossy(bytes));
        self.line_buf[fd].extend_from_slice(bytes);
        while let Some(nl) = self.line_buf[fd].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.line_buf[fd].drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let level = if fd == 0 {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            let saved = std::mem::take(&mut self.output);
            self.log(level, text);
            self.output = saved;
        }
    }

    /// Flushes partial stdout/stderr lines into the log.
    pub fn flush_output(&mut self) {
        for fd in 0..2 {
            if !self.line_buf[fd].is_empty() {
                let line = std::mem::take(&mut self.line_buf[fd]);
                let level = if fd == 0 {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                let saved = std::mem::take(&mut self.output);
                self.log(level, String::from_utf8_lossy(&line).into_owned());
                self.output = saved;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic per instance
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------------
// memory helpers

type C<'a> = Caller<'a, State>;

fn mem<'a>(c: &'a mut C<'_>) -> (&'a mut [u8], &'a mut State) {
    let m = c.data().memory.expect("memory export");
    m.data_and_store_mut(c)
}

fn read(c: &mut C<'_>, ptr: u32, len: u32) -> Option<Vec<u8>> {
    let (m, _) = mem(c);
    let start = ptr as usize;
    m.get(start..start.checked_add(len as usize)?)
        .map(<[u8]>::to_vec)
}

fn read_str(c: &mut C<'_>, ptr: u32, len: u32) -> Option<String> {
    read(c, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn write(c: &mut C<'_>, ptr: u32, bytes: &[u8]) -> bool {
    let (m, _) = mem(c);
    let start = ptr as usize;
    match start
        .checked_add(bytes.len())
        .and_then(|end| m.get_mut(start..end))
    {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn write_u32(c: &mut C<'_>, ptr: u32, v: u32) -> bool {
    write(c, ptr, &v.to_le_bytes())
}

/// Copies `data` into memory the module allocates, and writes its pointer and size to the
/// return slots (a null pointer and size 0 for empty data). Returns a status.
fn copy_out(c: &mut C<'_>, data: &[u8], ptr_ptr: u32, size_ptr: u32) -> Result<u32> {
    let mut ptr = 0;
    if !data.is_empty() {
        let Some(alloc) = c.data().alloc.clone() else {
            bail!("the module exports neither proxy_on_memory_allocate nor malloc");
        };
        ptr = alloc.call(&mut *c, data.len() as u32)?;
        if ptr == 0 {
            bail!("proxy_on_memory_allocate({}) returned 0", data.len());
        }
        if !write(c, ptr, data) {
            return Ok(INVALID_MEMORY_ACCESS);
        }
    }
    if !write_u32(c, ptr_ptr, ptr) || !write_u32(c, size_ptr, data.len() as u32) {
        return Ok(INVALID_MEMORY_ACCESS);
    }
    Ok(OK)
}

pub(crate) fn serialize_map(map: &[(String, String)]) -> Vec<u8> {
    let size = 4 + map
        .iter()
        .map(|(k, v)| 10 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

pub(crate) fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.len() <= 1 {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let n = u32_at(0)?;
    let mut sizes_at = 4;
    let mut data_at = 4usize.checked_add(n.checked_mul(8)?)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (kl, vl) = (u32_at(sizes_at)?, u32_at(sizes_at + 4)?);
        sizes_at += 8;
        let k = bytes.get(data_at..data_at.checked_add(kl)?)?;
        data_at += kl + 1;
        let v = bytes.get(data_at..data_at.checked_add(vl)?)?;
        data_at += vl + 1;
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// header maps

const MAP_REQUEST_HEADERS: u32 = 0;
const MAP_REQUEST_TRAILERS: u32 = 1;
const MAP_RESPONSE_HEADERS: u32 = 2;
const MAP_RESPONSE_TRAILERS: u32 = 3;
const MAP_CALL_RESPONSE_HEADERS: u32 = 6;
const MAP_CALL_RESPONSE_TRAILERS: u32 = 7;

fn get_map(s: &State, map: u32) -> Result<&[(String, String)], u32> {
    let stream = s.streams.get(&s.current);
    match map {
        MAP_REQUEST_HEADERS => stream
            .map(|st| st.req_headers.as_slice())
            .ok_or(BAD_ARGUMENT),
        MAP_RESPONSE_HEADERS => stream
            .map(|st| st.resp_headers.as_slice())
            .ok_or(BAD_ARGUMENT),
        MAP_REQUEST_TRAILERS | MAP_RESPONSE_TRAILERS => stream.map(|_| &[][..]).ok_or(BAD_ARGUMENT),
        MAP_CALL_RESPONSE_HEADERS => Ok(s
            .call_response
            .as_ref()
            .map_or(&[][..], |r| r.headers.as_slice())),
        MAP_CALL_RESPONSE_TRAILERS | 4 | 5 => Ok(&[]),
        _ => Err(BAD_ARGUMENT),
    }
}

fn first_value(map: &[(String, String)], key: &str) -> Option<String> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
}

enum Edit {
    Replace(String),
    Remove,
    Add(String),
}

/// Applies a header edit with the host's semantics. Returns a status.
fn edit_map(s: &mut State, map: u32, key: String, edit: Edit) -> u32 {
    let kong = s.kong();
    let Some(st) = s.stream() else {
        return BAD_ARGUMENT;
    };
    let headers = match map {
        MAP_REQUEST_HEADERS => {
            if kong && st.phase > Phase::Upstream {
                // ngx_wasm_module: "cannot set request header: response produced" (logged, ignored)
                return OK;
            }
            &mut st.req_headers
        }
        MAP_RESPONSE_HEADERS => &mut st.resp_headers,
        MAP_REQUEST_TRAILERS | MAP_RESPONSE_TRAILERS => return OK,
        _ => return BAD_ARGUMENT,
    };
    // Envoy lowercases header names (LowerCaseString); nginx keeps them and matches any case.
    let key = if kong { key } else { key.to_ascii_lowercase() };
    let kong_request = kong && map == MAP_REQUEST_HEADERS;
    match edit {
        Edit::Add(v) => headers.push((key, v)),
        // Kong: removing a request header has no effect on what is forwarded, but it zeroes
        // the header's hash, so `proxy_set_header` no longer replaces those copies.
        Edit::Remove if kong_request => {
            for (i, (k, _)) in headers.iter().enumerate() {
                if k.eq_ignore_ascii_case(&key) && !st.zeroed.contains(&i) {
                    st.zeroed.push(i);
                }
            }
        }
        // nginx skips a header whose hash is zeroed: a later set adds a new copy.
        Edit::Replace(v) if kong_request => {
            let zeroed = &st.zeroed;
            match headers
                .iter()
                .enumerate()
                .position(|(i, (k, _))| k.eq_ignore_ascii_case(&key) && !zeroed.contains(&i))
            {
                Some(i) => headers[i].1 = v,
                None => headers.push((key, v)),
            }
        }
        Edit::Remove => headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key)),
        Edit::Replace(v) => {
            match headers
                .iter()
                .position(|(k, _)| k.eq_ignore_ascii_case(&key))
            {
                Some(i) => {
                    headers[i].1 = v;
                    if !kong_request {
                        // Envoy: every other copy goes (Kong: later copies are forwarded as is)
                        let mut seen = 0;
                        headers.retain(|(k, _)| {
                            if k.eq_ignore_ascii_case(&key) {
                                seen += 1;
                                seen == 1
                            } else {
                                true
                            }
                        });
                    }
                }
                None => headers.push((key, v)),
            }
        }
    }
    OK
}

// ---------------------------------------------------------------------------------------------
// properties

fn builtin_property(s: &State, path: &[u8]) -> Option<Vec<u8>> {
    let st = s.streams.get(&s.current);
    let req = |name: &str| st.and_then(|st| first_value(&st.req_headers, name));
    let path_str = String::from_utf8_lossy(path).replace('\0', ".");
    let v = match path_str.as_str() {
        "plugin_name" => "bouncer".to_string(),
        "plugin_root_id" | "plugin_vm_id" => String::new(),
        "request.path" => req(":path")?,
        "request.url_path" => req(":path")?.split('?').next().unwrap_or("").to_string(),
        "request.query" => req(":path")?
            .split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default(),
        "request.method" => req(":method")?,
        "request.host" => req(":authority")?,
        "request.scheme" => req(":scheme")?,
        "source.address" | "ngx.remote_addr" => "127.0.0.1".to_string(),
        "ngx.request_uri" => req(":path")?,
        "ngx.uri" => req(":path")?.split('?').next().unwrap_or("").to_string(),
        "ngx.args" => req(":path")?
            .split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default(),
        // nginx's $http_host (the Host header) and $hostname; Envoy has no `ngx.*`.
        "ngx.http_host" if s.kong() => req("host")?,
        "ngx.hostname" if s.kong() => "kong".to_string(),
        _ => return None,
    };
    Some(v.into_bytes())
}

/// Kong: a variable the location declares with `set`, as the filter reads it (`None`: not
/// declared, or not initialised yet because `set` runs after the filter).
fn kong_location_var(s: &State, dotted: &str) -> Option<Option<Vec<u8>>> {
    let var = dotted.strip_prefix("ngx.")?;
    let loc = lock(&s.host.location);
    let initial = loc.as_ref()?.variable(var)?.as_bytes().to_vec();
    let before_set = !loc.as_ref()?.headers_in_access
        && s.streams
            .get(&s.current)
            .is_some_and(|st| st.phase <= Phase::Upstream);
    Some(if before_set { None } else { Some(initial) })
}

fn get_property(s: &State, path: &[u8]) -> Option<Vec<u8>> {
    let dotted = String::from_utf8_lossy(path).replace('\0', ".");
    if let Some(st) = s.streams.get(&s.current) {
        if let Some((_, v)) = st.properties.iter().rev().find(|(k, _)| *k == dotted) {
            return Some(v.clone());
        }
    }
    if s.kong() {
        if let Some(v) = kong_location_var(s, &dotted) {
            return v;
        }
    }
    if let Some(v) = s.properties.get(path) {
        return Some(v.clone());
    }
    if let Some(v) = lock(&s.host.properties).get(path) {
        return Some(v.clone());
    }
    builtin_property(s, path)
}

// ---------------------------------------------------------------------------------------------
// the linker

/// The `env` functions defined below (a module importing any other `env` function does not load).
pub(crate) const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_configuration",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
];

const WASI: &str = "wasi_snapshot_preview1";

/// The callbacks from which Kong lets a filter dispatch an HTTP call (any other traps).
const KONG_DISPATCH_CALLBACKS: &[&str] = &[
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_tick",
    "proxy_on_http_call_response",
    "proxy_on_foreign_function",
];

/// Kong: a shared-data key that resolves to no `shm_kv` zone traps.
fn kong_shm(s: &State, key: &[u8], what: &str) -> Result<()> {
    if s.kong() && !s.host.shm_resolves(key) {
        bail!("host trap (bad usage): failed {what} shm (could not resolve namespace) (Kong without a shm_kv zone for this key)");
    }
    Ok(())
}

/// Traps in Kong, where ngx_wasm_module does not implement the function.
fn kong_nyi(c: &C<'_>, name: &str) -> Result<()> {
    if c.data().kong() {
        bail!("{name}: not implemented by Kong's ngx_wasm_module (the call traps the instance)");
    }
    Ok(())
}

fn continue_stream(c: &mut C<'_>, stream_type: u32) -> u32 {
    if stream_type > 1 {
        return if stream_type <= 3 {
            UNIMPLEMENTED
        } else {
            BAD_ARGUMENT
        };
    }
    match c.data_mut().stream() {
        Some(st) => {
            st.resume = true;
            OK
        }
        None => BAD_ARGUMENT,
    }
}

/// Count one call of the host function `name`, when counting is on (`count_host_calls`);
/// the guard adds the call's time to [`take_host_time`] when timing is on (`time_host_calls`).
fn tally(c: &C<'_>, name: &'static str) -> HostTimer {
    let _ = c;
    HOST_CALLS.with(|m| {
        if let Some(m) = m.borrow_mut().as_mut() {
            *m.entry(name).or_insert(0) += 1;
        }
    });
    HostTimer(HOST_TIME.with(|t| t.get().is_some().then(std::time::Instant::now)))
}

/// Times one host call (see [`tally`]); `None` when not timing.
struct HostTimer(Option<std::time::Instant>);

impl Drop for HostTimer {
    fn drop(&mut self) {
        if let Some(start) = self.0 {
            let spent = start.elapsed();
            HOST_TIME.with(|t| t.set(t.get().map(|sum| sum + spent)));
        }
    }
}

thread_local! {
    /// Time spent in host calls on this thread while timing. `None`: not timing.
    static HOST_TIME: std::cell::Cell<Option<std::time::Duration>> = const { std::cell::Cell::new(None) };
}

thread_local! {
    /// Host calls made on this thread, by name, while counting (a module runs on its
    /// caller's thread). `None`: not counting.
    static HOST_CALLS: std::cell::RefCell<Option<std::collections::BTreeMap<&'static str, u64>>> =
        const { std::cell::RefCell::new(None) };
}

/// Start timing the host calls modules make on this thread (from zero), or stop. With
/// [`take_host_time`], what a callback spent in the module's own code is its time minus its
/// host calls' (the bench's cold-cache rows).
pub fn time_host_calls(on: bool) {
    HOST_TIME.with(|t| t.set(on.then_some(std::time::Duration::ZERO)));
}

/// The time spent in host calls on this thread since timing started or since the last call
/// (zero when not timing); the sum restarts from zero.
pub fn take_host_time() -> std::time::Duration {
    HOST_TIME.with(|t| match t.get() {
        Some(sum) => {
            t.set(Some(std::time::Duration::ZERO));
            sum
        }
        None => std::time::Duration::ZERO,
    })
}

/// Start counting the host calls modules make on this thread (from zero), or stop.
pub fn count_host_calls(on: bool) {
    HOST_CALLS.with(|m| *m.borrow_mut() = on.then(std::collections::BTreeMap::new));
}

/// The host calls counted on this thread since counting started or since the last call, by
/// name; the count restarts from zero. Empty when not counting.
pub fn take_host_calls() -> std::collections::BTreeMap<&'static str, u64> {
    HOST_CALLS.with(|m| {
        m.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// Builds the linker with every host function; one linker serves both profiles.
pub(crate) fn linker(engine: &Engine, module: &Module) -> Result<Linker<State>> {
    let mut l: Linker<State> = Linker::new(engine);
    let env = "env";

    // --- logging, time, ticks
    l.func_wrap(
        env,
        "proxy_log",
        |mut c: C<'_>, level: u32, ptr: u32, len: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_log");
            let Some(level) = LogLevel::from_u32(level) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(msg) = read_str(&mut c, ptr, len) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            c.data_mut().log(level, msg);
            Ok(OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_log_level",
        |mut c: C<'_>, ret: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_log_level");
            // Kong declares it with another signature: modules importing it do not load there
            // (checked when the filter is created).
            let level = c.data().host.log_level.load(Ordering::Relaxed);
            Ok(if write_u32(&mut c, ret, level) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_current_time_nanoseconds");
            let now = c.data().host.now();
            Ok(if write(&mut c, ret, &now.to_le_bytes()) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;
    l.func_wrap(env, "proxy_set_tick_period_milliseconds", |mut c: C<'_>, period: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_tick_period_milliseconds");
        let s = c.data_mut();
        let kong = s.kong();
        let root = match s.streams.get(&s.current) {
            _ if s.roots.contains_key(&s.current) => s.current,
            Some(_) if kong => bail!(
                "proxy_set_tick_period_milliseconds: can only set tick_period in root context (Kong traps)"
            ),
            // Envoy: a stream sets its root context's timer
            Some(st) => st.root_id,
            None => return Ok(BAD_ARGUMENT),
        };
        if kong && s.tick_periods.contains_key(&root) {
            bail!(
                "proxy_set_tick_period_milliseconds: tick_period already set \
                 (Kong traps: a root context sets its period once)"
            );
        }
        s.tick_periods.insert(root, Duration::from_millis(u64::from(period)));
        Ok(OK)
    })?;

    // --- buffers
    l.func_wrap(
        env,
        "proxy_get_configuration",
        |mut c: C<'_>, ptr_ptr: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_configuration");
            let s = c.data();
            let cfg = s.roots.get(&s.current).cloned().unwrap_or_default();
            copy_out(&mut c, &cfg, ptr_ptr, size_ptr)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>,
         kind: u32,
         start: u32,
         max: u32,
         ptr_ptr: u32,
         size_ptr: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_get_buffer_bytes");
            let buf = match buffer(&mut c, kind)? {
                Ok(b) => b,
                Err(status) => return Ok(status),
            };
            let start = start as usize;
            if start > buf.len() {
                return Ok(BAD_ARGUMENT);
            }
            let end = start.saturating_add(max as usize).min(buf.len());
            copy_out(&mut c, &buf[start..end], ptr_ptr, size_ptr)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_buffer_status",
        |mut c: C<'_>, kind: u32, len_ptr: u32, flags_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_buffer_status");
            let buf = match buffer(&mut c, kind)? {
                Ok(b) => b,
                Err(status) => return Ok(status),
            };
            Ok(
                if write_u32(&mut c, len_ptr, buf.len() as u32) && write_u32(&mut c, flags_ptr, 0) {
                    OK
                } else {
                    INVALID_MEMORY_ACCESS
                },
            )
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, kind: u32, start: u32, size: u32, ptr: u32, len: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_buffer_bytes");
            let Some(value) = read(&mut c, ptr, len) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let Some(st) = c.data_mut().stream() else {
                return Ok(NOT_FOUND);
            };
            let buf = match kind {
                0 => &mut st.req_body,
                1 => &mut st.resp_body,
                2..=8 => return Ok(NOT_FOUND),
                _ => return Ok(BAD_ARGUMENT),
            };
            let start = (start as usize).min(buf.len());
            let end = start.saturating_add(size as usize).min(buf.len());
            buf.splice(start..end, value);
            Ok(OK)
        },
    )?;

    // --- header maps
    l.func_wrap(
        env,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: u32, ptr_ptr: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_header_map_pairs");
            match get_map(c.data(), map).map(serialize_map) {
                Ok(bytes) => copy_out(&mut c, &bytes, ptr_ptr, size_ptr),
                Err(status) => Ok(status),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_size",
        |mut c: C<'_>, map: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_header_map_size");
            match get_map(c.data(), map) {
                Ok(pairs) => {
                    let n = serialize_map(pairs).len() as u32;
                    Ok(if write_u32(&mut c, size_ptr, n) {
                        OK
                    } else {
                        INVALID_MEMORY_ACCESS
                    })
                }
                Err(status) => Ok(status),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: u32, ptr: u32, len: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_header_map_pairs");
            let Some(bytes) = read(&mut c, ptr, len) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let Some(pairs) = deserialize_map(&bytes) else {
                return Ok(SERIALIZATION_FAILURE);
            };
            let s = c.data_mut();
            let kong = s.kong();
            let Some(st) = s.stream() else {
                return Ok(BAD_ARGUMENT);
            };
            match map {
                // Kong: setting the whole request map has no effect on what is forwarded.
                MAP_REQUEST_HEADERS if kong => {}
                MAP_REQUEST_HEADERS => {
                    st.req_headers = pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect();
                }
                MAP_RESPONSE_HEADERS => st.resp_headers = pairs,
                MAP_REQUEST_TRAILERS | MAP_RESPONSE_TRAILERS => {}
                _ => return Ok(BAD_ARGUMENT),
            }
            Ok(OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_header_map_value",
        |mut c: C<'_>,
         map: u32,
         kptr: u32,
         klen: u32,
         ptr_ptr: u32,
         size_ptr: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_get_header_map_value");
            let Some(key) = read_str(&mut c, kptr, klen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let value = match get_map(c.data(), map) {
                Ok(pairs) => first_value(pairs, &key),
                Err(status) => return Ok(status),
            };
            match value {
                Some(v) => copy_out(&mut c, v.as_bytes(), ptr_ptr, size_ptr),
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map: u32, kptr: u32, klen: u32, vptr: u32, vlen: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_replace_header_map_value");
            let (Some(k), Some(v)) = (read_str(&mut c, kptr, klen), read_str(&mut c, vptr, vlen))
            else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            Ok(edit_map(c.data_mut(), map, k, Edit::Replace(v)))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: u32, kptr: u32, klen: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_remove_header_map_value");
            let Some(k) = read_str(&mut c, kptr, klen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            Ok(edit_map(c.data_mut(), map, k, Edit::Remove))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_add_header_map_value",
        |mut c: C<'_>, map: u32, kptr: u32, klen: u32, vptr: u32, vlen: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_add_header_map_value");
            let (Some(k), Some(v)) = (read_str(&mut c, kptr, klen), read_str(&mut c, vptr, vlen))
            else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            Ok(edit_map(c.data_mut(), map, k, Edit::Add(v)))
        },
    )?;

    // --- properties
    l.func_wrap(
        env,
        "proxy_get_property",
        |mut c: C<'_>, pptr: u32, plen: u32, ptr_ptr: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_property");
            let Some(path) = read(&mut c, pptr, plen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            match get_property(c.data(), &path) {
                Some(v) => copy_out(&mut c, &v, ptr_ptr, size_ptr),
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_property",
        |mut c: C<'_>, pptr: u32, plen: u32, vptr: u32, vlen: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_property");
            let (Some(path), Some(value)) = (read(&mut c, pptr, plen), read(&mut c, vptr, vlen))
            else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let s = c.data_mut();
            let dotted = String::from_utf8_lossy(&path).replace('\0', ".");
            if s.kong() && s.stream().is_some() {
                if let Some(var) = dotted.strip_prefix("ngx.") {
                    // nginx: only a declared variable can be set (ngx_wasm_module: NotFound).
                    let declared = lock(&s.host.location)
                        .as_ref()
                        .is_some_and(|l| l.variable(var).is_some());
                    if !declared {
                        return Ok(NOT_FOUND);
                    }
                }
            }
            match s.stream() {
                Some(st) => st.properties.push((dotted, value)),
                None => {
                    s.properties.insert(path, value);
                }
            }
            Ok(OK)
        },
    )?;

    // --- shared data
    l.func_wrap(
        env,
        "proxy_get_shared_data",
        |mut c: C<'_>,
         kptr: u32,
         klen: u32,
         ptr_ptr: u32,
         size_ptr: u32,
         cas_ptr: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_get_shared_data");
            let Some(key) = read(&mut c, kptr, klen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            kong_shm(c.data(), &key, "getting value from")?;
            let entry = lock(&c.data().host.shared).map.get(&key).cloned();
            let Some((value, cas)) = entry else {
                return Ok(NOT_FOUND);
            };
            let status = copy_out(&mut c, &value, ptr_ptr, size_ptr)?;
            if status != OK || !write_u32(&mut c, cas_ptr, cas) {
                return Ok(INVALID_MEMORY_ACCESS);
            }
            Ok(OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_set_shared_data",
        |mut c: C<'_>, kptr: u32, klen: u32, vptr: u32, vlen: u32, cas: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_shared_data");
            let (Some(key), Some(value)) = (read(&mut c, kptr, klen), read(&mut c, vptr, vlen))
            else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            kong_shm(c.data(), &key, "setting value to")?;
            let s = c.data();
            let mut shared = lock(&s.host.shared);
            if let Some((_, current)) = shared.map.get(&key) {
                if cas != 0 && cas != *current {
                    return Ok(CAS_MISMATCH);
                }
            }
            if s.kong() && vptr == 0 && vlen == 0 {
                // ngx_wasm_module: a NULL value deletes the key
                shared.map.remove(&key);
                return Ok(OK);
            }
            shared.next_cas = shared.next_cas.wrapping_add(1).max(1);
            let next = shared.next_cas;
            shared.map.insert(key, (value, next));
            Ok(OK)
        },
    )?;

    // --- shared queues (no on_queue_ready notifications)
    l.func_wrap(
        env,
        "proxy_register_shared_queue",
        |mut c: C<'_>, nptr: u32, nlen: u32, id_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_register_shared_queue");
            let Some(name) = read(&mut c, nptr, nlen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let id = {
                let mut q = lock(&c.data().host.queues);
                let next = q.by_name.len() as u32 + 1;
                let id = *q.by_name.entry(name).or_insert(next);
                q.items.entry(id).or_default();
                id
            };
            Ok(if write_u32(&mut c, id_ptr, id) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, _vptr: u32, _vlen: u32, nptr: u32, nlen: u32, id_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_resolve_shared_queue");
            kong_nyi(&c, "proxy_resolve_shared_queue")?;
            let Some(name) = read(&mut c, nptr, nlen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let id = lock(&c.data().host.queues).by_name.get(&name).copied();
            match id {
                Some(id) => Ok(if write_u32(&mut c, id_ptr, id) {
                    OK
                } else {
                    INVALID_MEMORY_ACCESS
                }),
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: u32, ptr_ptr: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_dequeue_shared_queue");
            let item = {
                let mut q = lock(&c.data().host.queues);
                match q.items.get_mut(&id) {
                    None => return Ok(NOT_FOUND),
                    Some(items) => items.pop_front(),
                }
            };
            match item {
                Some(v) => copy_out(&mut c, &v, ptr_ptr, size_ptr),
                None => Ok(EMPTY),
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: u32, vptr: u32, vlen: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_enqueue_shared_queue");
            let Some(value) = read(&mut c, vptr, vlen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let mut q = lock(&c.data().host.queues);
            match q.items.get_mut(&id) {
                None => Ok(NOT_FOUND),
                Some(items) => {
                    items.push_back(value);
                    Ok(OK)
                }
            }
        },
    )?;

    // --- stream control
    l.func_wrap(
        env,
        "proxy_continue_stream",
        |mut c: C<'_>, stream_type: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_continue_stream");
            Ok(continue_stream(&mut c, stream_type))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_continue_request",
        |mut c: C<'_>| -> Result<u32> {
            let _host = tally(&c, "proxy_continue_request");
            Ok(continue_stream(&mut c, 0))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_continue_response",
        |mut c: C<'_>| -> Result<u32> {
            let _host = tally(&c, "proxy_continue_response");
            kong_nyi(&c, "proxy_continue_response")?;
            Ok(continue_stream(&mut c, 1))
        },
    )?;
    l.func_wrap(
        env,
        "proxy_close_stream",
        |mut c: C<'_>, stream_type: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_close_stream");
            kong_nyi(&c, "proxy_close_stream")?;
            if stream_type > 3 {
                return Ok(BAD_ARGUMENT);
            }
            match c.data_mut().stream() {
                Some(st) => {
                    st.reset = true;
                    Ok(OK)
                }
                None => Ok(BAD_ARGUMENT),
            }
        },
    )?;
    l.func_wrap(env, "proxy_clear_route_cache", |c: C<'_>| -> Result<u32> {
        let _host = tally(&c, "proxy_clear_route_cache");
        kong_nyi(&c, "proxy_clear_route_cache")?;
        Ok(OK)
    })?;
    l.func_wrap(
        env,
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: u32,
         dptr: u32,
         dlen: u32,
         bptr: u32,
         blen: u32,
         hptr: u32,
         hlen: u32,
         _grpc: i32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_send_local_response");
            let (Some(details), Some(body), Some(hbytes)) = (
                read_str(&mut c, dptr, dlen),
                read(&mut c, bptr, blen),
                read(&mut c, hptr, hlen),
            ) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let Some(headers) = deserialize_map(&hbytes) else {
                return Ok(SERIALIZATION_FAILURE);
            };
            let kong = c.data().kong();
            let Some(st) = c.data_mut().stream() else {
                return Ok(BAD_ARGUMENT);
            };
            if st.local.is_some() && kong {
                bail!("proxy_send_local_response: local response already stashed (Kong traps)");
            }
            let headers = if kong {
                headers
            } else {
                headers
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect()
            };
            let lost = kong && st.loses_local_body && !body.is_empty();
            if lost {
                // The client gets nothing: the connection is closed.
                st.reset = true;
            }
            st.local = Some(Response {
                status: status as u16,
                headers: Headers(headers),
                body,
                details,
            });
            if lost {
                c.data_mut().log(
                    LogLevel::Critical,
                    "[alert] zero size buf in writer (local response after a timed-out callout; connection closed)".into(),
                );
            }
            Ok(OK)
        },
    )?;

    // --- HTTP callouts
    l.func_wrap(
        env,
        "proxy_http_call",
        |mut c: C<'_>,
         uptr: u32,
         ulen: u32,
         hptr: u32,
         hlen: u32,
         bptr: u32,
         blen: u32,
         tptr: u32,
         tlen: u32,
         timeout_ms: u32,
         token_ptr: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_http_call");
            let (Some(upstream), Some(hbytes), Some(body), Some(tbytes)) = (
                read_str(&mut c, uptr, ulen),
                read(&mut c, hptr, hlen),
                read(&mut c, bptr, blen),
                read(&mut c, tptr, tlen),
            ) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let (Some(headers), Some(trailers)) =
                (deserialize_map(&hbytes), deserialize_map(&tbytes))
            else {
                return Ok(BAD_ARGUMENT);
            };
            let kong = c.data().kong();
            if kong && !KONG_DISPATCH_CALLBACKS.contains(&c.data().callback) {
                // ngx_wasm_module checks the step; in on_configure the trap fails the filter's
                // start and the nginx worker exits for good.
                bail!(
                    "can only send HTTP dispatch during \"on_request_headers\", \"on_request_body\", \
                     \"on_tick\", \"on_dispatch_response\", \"on_foreign_function\" (called from {}; Kong traps)",
                    c.data().callback
                );
            }
            for required in [":method", ":path", ":authority"] {
                if first_value(&headers, required).is_none_or(|v| v.is_empty()) {
                    if kong {
                        // ngx_wasm_module: a dispatch failing before it connects traps
                        bail!("dispatch failed: no {required} (Kong traps)");
                    }
                    return Ok(BAD_ARGUMENT);
                }
            }
            let s = c.data_mut();
            let known = lock(&s.host.clusters).contains(&upstream);
            let mut kong_failure = None;
            match s.profile {
                Profile::Envoy if !known => return Ok(BAD_ARGUMENT),
                Profile::Envoy => {}
                Profile::Kong => {
                    if upstream.is_empty() {
                        bail!("dispatch failed: no host (Kong traps)");
                    }
                    if !kong_resolves(&upstream, &lock(&s.host.clusters)) {
                        kong_failure = Some("resolver failure".to_string());
                    }
                }
            }
            let token = s.next_token;
            s.next_token += 1;
            let from_root = s.roots.contains_key(&s.current);
            let callout = Callout {
                token,
                context_id: s.current,
                from_root,
                upstream,
                headers: Headers(headers),
                body,
                trailers: Headers(trailers),
                timeout: Duration::from_millis(u64::from(timeout_ms)),
            };
            match s.streams.get_mut(&s.current) {
                Some(st) => st.callouts.push(callout.clone()),
                None => s.op_callouts.push(callout.clone()),
            }
            s.pending.insert(token, callout);
            match kong_failure {
                Some(reason) => s.auto_fail.push((token, reason)),
                None => s.new_callouts.push(token),
            }
            Ok(if write_u32(&mut c, token_ptr, token) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;

    // --- gRPC: Unimplemented (Kong traps)
    l.func_wrap(
        env,
        "proxy_grpc_call",
        |c: C<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_grpc_call");
            kong_nyi(&c, "proxy_grpc_call")?;
            Ok(UNIMPLEMENTED)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_grpc_stream",
        |c: C<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32|
         -> Result<u32> {
            let _host = tally(&c, "proxy_grpc_stream");
            kong_nyi(&c, "proxy_grpc_stream")?;
            Ok(UNIMPLEMENTED)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_grpc_send",
        |c: C<'_>, _: u32, _: u32, _: u32, _: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_grpc_send");
            kong_nyi(&c, "proxy_grpc_send")?;
            Ok(UNIMPLEMENTED)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_grpc_cancel",
        |c: C<'_>, _: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_grpc_cancel");
            kong_nyi(&c, "proxy_grpc_cancel")?;
            Ok(UNIMPLEMENTED)
        },
    )?;
    l.func_wrap(env, "proxy_grpc_close", |c: C<'_>, _: u32| -> Result<u32> {
        let _host = tally(&c, "proxy_grpc_close");
        kong_nyi(&c, "proxy_grpc_close")?;
        Ok(UNIMPLEMENTED)
    })?;
    l.func_wrap(
        env,
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: u32, ptr_ptr: u32, size_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_status");
            kong_nyi(&c, "proxy_get_status")?;
            let code = c
                .data()
                .call_response
                .as_ref()
                .and_then(|r| first_value(&r.headers, ":status"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0u32);
            if !write_u32(&mut c, code_ptr, code) {
                return Ok(INVALID_MEMORY_ACCESS);
            }
            copy_out(&mut c, b"", ptr_ptr, size_ptr)
        },
    )?;

    // --- contexts, FFI
    l.func_wrap(
        env,
        "proxy_set_effective_context",
        |mut c: C<'_>, ctx: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_set_effective_context");
            let s = c.data_mut();
            if s.kong() {
                // ngx_wasm_module: a no-op (each callback already runs in its own context)
                return Ok(OK);
            }
            let live = s
                .streams
                .get(&ctx)
                .is_some_and(|st| st.phase != Phase::Finished);
            if s.roots.contains_key(&ctx) || live {
                s.current = ctx;
                Ok(OK)
            } else {
                Ok(BAD_ARGUMENT)
            }
        },
    )?;
    l.func_wrap(
        env,
        "proxy_call_foreign_function",
        |c: C<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_call_foreign_function");
            kong_nyi(&c, "proxy_call_foreign_function")?;
            Ok(NOT_FOUND)
        },
    )?;
    l.func_wrap(env, "proxy_done", |c: C<'_>| -> Result<u32> {
        let _host = tally(&c, "proxy_done");
        kong_nyi(&c, "proxy_done")?;
        Ok(NOT_FOUND)
    })?;

    // --- metrics (host-wide)
    l.func_wrap(
        env,
        "proxy_define_metric",
        |mut c: C<'_>, kind: u32, nptr: u32, nlen: u32, id_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_define_metric");
            if kind > 2 {
                return Ok(BAD_ARGUMENT);
            }
            let Some(name) = read_str(&mut c, nptr, nlen) else {
                return Ok(INVALID_MEMORY_ACCESS);
            };
            let id = {
                let mut m = lock(&c.data().host.metrics);
                match m.by_name.get(&name) {
                    Some(&id) => id,
                    None => {
                        m.list.push(Metric {
                            name: name.clone(),
                            kind,
                            value: 0,
                        });
                        let id = m.list.len() as u32;
                        m.by_name.insert(name, id);
                        id
                    }
                }
            };
            Ok(if write_u32(&mut c, id_ptr, id) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;
    l.func_wrap(
        env,
        "proxy_increment_metric",
        |c: C<'_>, id: u32, delta: i64| -> Result<u32> {
            let _host = tally(&c, "proxy_increment_metric");
            let mut m = lock(&c.data().host.metrics);
            let Some(metric) = (id as usize).checked_sub(1).and_then(|i| m.list.get_mut(i)) else {
                return Ok(NOT_FOUND);
            };
            if metric.kind == 0 && delta < 0 {
                return Ok(BAD_ARGUMENT);
            }
            metric.value = metric.value.wrapping_add_signed(delta);
            Ok(OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_record_metric",
        |c: C<'_>, id: u32, value: u64| -> Result<u32> {
            let _host = tally(&c, "proxy_record_metric");
            let mut m = lock(&c.data().host.metrics);
            let Some(metric) = (id as usize).checked_sub(1).and_then(|i| m.list.get_mut(i)) else {
                return Ok(NOT_FOUND);
            };
            metric.value = value;
            Ok(OK)
        },
    )?;
    l.func_wrap(
        env,
        "proxy_get_metric",
        |mut c: C<'_>, id: u32, ret: u32| -> Result<u32> {
            let _host = tally(&c, "proxy_get_metric");
            let value = {
                let m = lock(&c.data().host.metrics);
                match (id as usize).checked_sub(1).and_then(|i| m.list.get(i)) {
                    Some(metric) => metric.value,
                    None => return Ok(NOT_FOUND),
                }
            };
            Ok(if write(&mut c, ret, &value.to_le_bytes()) {
                OK
            } else {
                INVALID_MEMORY_ACCESS
            })
        },
    )?;

    define_wasi(&mut l)?;

    // Any other WASI function the module imports traps if called; an unknown `env` import is a
    // load error (as in both proxies).
    for import in module.imports() {
        if import.module() == WASI && WASI_FUNCTIONS.contains(&import.name()) {
            continue;
        }
        match (import.module(), import.ty()) {
            (WASI, ExternType::Func(ty)) => {
                let name = import.name().to_string();
                l.func_new(WASI, import.name(), ty, move |_, _, _| {
                    bail!("WASI function {name} is not provided by the host")
                })?;
            }
            ("env", _) if ENV_FUNCTIONS.contains(&import.name()) => {}
            (m, _) => bail!(
                "the module imports {m}.{}, which neither Envoy nor Kong provides",
                import.name()
            ),
        }
    }
    Ok(l)
}

/// Kong: `IP:port`, `host:port` or `host`; a name (not an IP literal) must be known to the resolver.
fn kong_resolves(upstream: &str, known: &std::collections::HashSet<String>) -> bool {
    let host = if let Some(rest) = upstream.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        upstream.rsplit_once(':').map_or(upstream, |(h, _)| h)
    };
    known.contains(upstream) || known.contains(host) || host.parse::<std::net::IpAddr>().is_ok()
}

/// The buffer `kind` in the current context, or a status.
fn buffer(c: &mut C<'_>, kind: u32) -> Result<Result<Vec<u8>, u32>> {
    let s = c.data();
    let kong = s.kong();
    Ok(match kind {
        0 | 1 => match s.streams.get(&s.current) {
            Some(st) => {
                let b = if kind == 0 {
                    &st.req_body
                } else {
                    &st.resp_body
                };
                if b.is_empty() {
                    Err(NOT_FOUND)
                } else {
                    Ok(b.clone())
                }
            }
            None => Err(NOT_FOUND),
        },
        4 => match &s.call_response {
            Some(r) => Ok(r.body.clone()),
            None if kong => {
                bail!("can only get dispatch response body during \"on_http_dispatch_response\" (Kong traps)")
            }
            None => Err(NOT_FOUND),
        },
        6 => Ok(s.vm_config.clone()),
        7 => Ok(s.roots.get(&s.current).cloned().unwrap_or_default()),
        2 | 3 | 5 | 8 => Err(NOT_FOUND),
        _ => Err(BAD_ARGUMENT),
    })
}

const WASI_FUNCTIONS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_seek",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
];

fn define_wasi(l: &mut Linker<State>) -> Result<()> {
    l.func_wrap(
        WASI,
        "fd_write",
        |mut c: C<'_>, fd: u32, iovs: u32, n: u32, written_ptr: u32| -> Result<u32> {
            let _host = tally(&c, "fd_write");
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut data = Vec::new();
            for i in 0..n {
                let Some(iov) = read(&mut c, iovs.wrapping_add(i * 8), 8) else {
                    return Ok(ERRNO_FAULT);
                };
                let ptr = u32::from_le_bytes(iov[0..4].try_into().unwrap());
                let len = u32::from_le_bytes(iov[4..8].try_into().unwrap());
                let Some(chunk) = read(&mut c, ptr, len) else {
                    return Ok(ERRNO_FAULT);
                };
                data.extend_from_slice(&chunk);
            }
            c.data_mut().wasi_write(fd as usize - 1, &data);
            Ok(if write_u32(&mut c, written_ptr, data.len() as u32) {
                ERRNO_SUCCESS
            } else {
                ERRNO_FAULT
            })
        },
    )?;
    l.func_wrap(
        WASI,
        "fd_read",
        |c: C<'_>, _: u32, _: u32, _: u32, _: u32| -> u32 {
            let _host = tally(&c, "fd_read");
            ERRNO_BADF
        },
    )?;
    l.func_wrap(WASI, "fd_close", |c: C<'_>, _: u32| -> u32 {
        let _host = tally(&c, "fd_close");
        ERRNO_BADF
    })?;
    l.func_wrap(
        WASI,
        "fd_seek",
        |c: C<'_>, _: u32, _: i64, _: u32, _: u32| -> u32 {
            let _host = tally(&c, "fd_seek");
            ERRNO_BADF
        },
    )?;
    l.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut c: C<'_>, fd: u32, ptr: u32| -> u32 {
            let _host = tally(&c, "fd_fdstat_get");
            if fd > 2 {
                return ERRNO_BADF;
            }
            // filetype character_device (2), no flags, every right
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
            if write(&mut c, ptr, &stat) {
                ERRNO_SUCCESS
            } else {
                ERRNO_FAULT
            }
        },
    )?;
    l.func_wrap(WASI, "fd_prestat_get", |c: C<'_>, _: u32, _: u32| -> u32 {
        let _host = tally(&c, "fd_prestat_get");
        ERRNO_BADF
    })?;
    l.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |c: C<'_>, _: u32, _: u32, _: u32| -> u32 {
            let _host = tally(&c, "fd_prestat_dir_name");
            ERRNO_BADF
        },
    )?;
    l.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: C<'_>, id: u32, _precision: i64, ret: u32| -> u32 {
            let _host = tally(&c, "clock_time_get");
            if id > 3 {
                return ERRNO_INVAL;
            }
            let now = c.data().host.now();
            if write(&mut c, ret, &now.to_le_bytes()) {
                ERRNO_SUCCESS
            } else {
                ERRNO_FAULT
            }
        },
    )?;
    l.func_wrap(
        WASI,
        "clock_res_get",
        |mut c: C<'_>, _: u32, ret: u32| -> u32 {
            let _host = tally(&c, "clock_res_get");
            if write(&mut c, ret, &1u64.to_le_bytes()) {
                ERRNO_SUCCESS
            } else {
                ERRNO_FAULT
            }
        },
    )?;
    l.func_wrap(
        WASI,
        "random_get",
        |mut c: C<'_>, ptr: u32, len: u32| -> u32 {
            let _host = tally(&c, "random_get");
            let mut bytes = Vec::with_capacity(len as usize + 8);
            while bytes.len() < len as usize {
                let r = c.data_mut().next_random();
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            bytes.truncate(len as usize);
            if write(&mut c, ptr, &bytes) {
                ERRNO_SUCCESS
            } else {
                ERRNO_FAULT
            }
        },
    )?;
    for (name, _) in [("environ_sizes_get", ()), ("args_sizes_get", ())] {
        l.func_wrap(
            WASI,
            name,
            |mut c: C<'_>, count_ptr: u32, size_ptr: u32| -> u32 {
                if write_u32(&mut c, count_ptr, 0) && write_u32(&mut c, size_ptr, 0) {
                    ERRNO_SUCCESS
                } else {
                    ERRNO_FAULT
                }
            },
        )?;
    }
    l.func_wrap(WASI, "environ_get", |c: C<'_>, _: u32, _: u32| -> u32 {
        let _host = tally(&c, "environ_get");
        ERRNO_SUCCESS
    })?;
    l.func_wrap(WASI, "args_get", |c: C<'_>, _: u32, _: u32| -> u32 {
        let _host = tally(&c, "args_get");
        ERRNO_SUCCESS
    })?;
    l.func_wrap(WASI, "proc_exit", |c: C<'_>, code: u32| -> Result<()> {
        let _host = tally(&c, "proc_exit");
        bail!("proc_exit({code}) called by the module")
    })?;
    l.func_wrap(WASI, "sched_yield", |c: C<'_>| -> u32 {
        let _host = tally(&c, "sched_yield");
        ERRNO_SUCCESS
    })?;
    l.func_wrap(
        WASI,
        "poll_oneoff",
        |c: C<'_>, _: u32, _: u32, _: u32, _: u32| -> u32 {
            let _host = tally(&c, "poll_oneoff");
            ERRNO_NOSYS
        },
    )?;
    Ok(())
}
