//! A proxy-wasm ABI 0.2.1 host on wasmtime, reproducing how Envoy and Kong run a filter
//! (`docs/HOSTS.md`), for Bouncer's end-to-end tests, benchmarks and local gateway.
//!
//! - [`Harness`]: a compiled module (compile once, instantiate many times; cheap to clone).
//! - [`Host`]: one proxy process ([`Profile::Envoy`] or [`Profile::Kong`]): clock, clusters,
//!   shared data, metrics, logs, callout handler. Shared by all its filters.
//! - [`Filter`]: one instance (worker VM) with its root context, configured with a JSON string.
//! - [`Request`] in, [`Outcome`] out: local response or forwarded headers, logs, callouts.
//!
//! ```no_run
//! use bouncer_harness::{bouncer, CalloutReply, Host, Request};
//!
//! let host = Host::envoy().at_unix(1_767_225_600).with_clusters(&["authz"]);
//! host.set_callout_handler(|_call| CalloutReply::json(200, r#"{"result": true}"#));
//! let mut filter = bouncer().filter(&host, r#"{"consumers": []}"#).unwrap();
//! let out = filter.run(Request::new("GET", "/api?x=1").header("authorization", "Bearer abc")).unwrap();
//! assert_eq!(out.status(), Some(401));
//! assert_eq!(out.json()["message"], "Unauthorized");
//! assert!(out.local_response().unwrap().header("www-authenticate").is_some());
//! ```
//!
//! Requests run as far as they can: a request paused on a callout the handler leaves to the
//! test ([`CalloutReply::Manual`], or no handler) comes back [`Outcome::is_pending`]; answer it
//! with [`Filter::respond`]. Traps come back as [`HarnessError::Trap`] with the module's panic
//! message and the wasm backtrace, and poison the instance.
//!
//! # Profiles
//!
//! | | Envoy | Kong |
//! | --- | --- | --- |
//! | `dispatch_http_call` upstream | a cluster declared with [`Host::add_cluster`], else BadArgument | `host:port`, IP or declared name; an unknown name fails later with `:dispatch_status: resolver failure` |
//! | missing `:method`/`:path`/`:authority` | BadArgument | trap (`dispatch failed: no :path`) |
//! | failed callout | `on_http_call_response` with 0 headers, no body | same, plus `:dispatch_status` (`timeout`, `broken connection`, ...) |
//! | request header remove / `set(name, None)` | removes every copy | no effect (still forwarded) |
//! | request header replace | first copy replaced, other copies removed | first copy replaced, others forwarded |
//! | `set_http_request_headers` | replaces the map | no effect |
//! | `end_of_stream` in header callbacks | true when there is no body | always false |
//! | local response | ends the request | also runs `on_http_response_headers` on it |
//! | pause in `on_http_response_headers` | holds the response | ignored |
//! | `set_effective_context` | switches context (a root can resume a request) | no-op |
//! | tick period | settable from any context | root only, once per root context, else trap |
//! | config update ([`Filter::reconfigure`]) | `on_configure` on the same root | a new root context |
//! | `proxy_done`, `proxy_close_stream`, `proxy_get_status`, `proxy_continue_response`, gRPC, `proxy_resolve_shared_queue`, `proxy_call_foreign_function` | implemented / NotFound / Unimplemented | trap |
//! | module importing `proxy_get_log_level` | loads | does not load ([`HarnessError::Load`]) |
//! | `dispatch_http_call` outside request headers/body, tick, call response | allowed | trap (from `on_configure`: the filter does not start) |
//! | shared data | always | needs a `shm_kv` zone for the key's namespace ([`Host::kong_with_conf`], [`Host::without_shm_zone`]), else trap |
//! | `:authority` | the client's host | the nginx server's name and port ([`KONG_AUTHORITY`]); the client's host is the `host` header (`ngx.http_host`) |
//! | local response with a body after a timed-out callout that carried one | delivered | lost: the request ends [`RequestState::Reset`] |
//! | the nginx location ([`Host::with_location`]) | - | `set` variables, `proxy_set_header`, zeroed hashes of removed headers ([`KongLocation`]) |
//!
//! Both: time from the host clock (`proxy_get_current_time_nanoseconds` and WASI clocks),
//! deterministic `random_get`, stdout/stderr captured as Info/Error logs, shared data with CAS
//! and metrics shared by every filter of a [`Host`], callouts answered in the context that made
//! them. A trap poisons the instance in both (Kong would fail only that request with a 500 and
//! recycle the instance: create a new [`Filter`]).

#![warn(missing_docs)]

mod abi;
mod filter;
mod host;
mod http;
pub mod scale;

pub use abi::{count_host_calls, take_host_calls, take_host_time, time_host_calls};
pub use filter::{Filter, KONG_AUTHORITY};
pub use host::{Host, KongLocation, LogEntry, LogLevel, Metric, Profile, DEFAULT_UNIX_TIME};
pub use http::{Callout, CalloutReply, Headers, Outcome, Request, RequestState, Response};

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmtime::{Config, Engine, InstancePre, Module, WasmBacktraceDetails};

/// What can go wrong.
#[derive(Debug, Clone)]
pub enum HarnessError {
    /// The module could not be read, compiled, linked or instantiated (or would not load in
    /// this host).
    Load(String),
    /// `on_vm_start` or `on_configure` returned false; the filter's logs tell why.
    Config {
        /// Which callback refused.
        message: String,
        /// The logs emitted while starting.
        logs: Vec<LogEntry>,
    },
    /// The module trapped (panic, `unreachable`, or a host function Kong does not implement):
    /// the callback, the module's output (its panic message) and the wasm backtrace.
    Trap(String),
    /// An earlier trap poisoned this instance (Envoy fails every later request).
    Poisoned(String),
    /// The harness was misused (unknown callout token, ...).
    Usage(String),
}

impl HarnessError {
    /// For [`HarnessError::Config`]: whether a log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        matches!(self, HarnessError::Config { logs, .. } if logs.iter().any(|l| l.message.contains(needle)))
    }
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Load(m) => write!(f, "load error: {m}"),
            HarnessError::Config { message, logs } => {
                write!(f, "configuration refused: {message}")?;
                for l in logs {
                    write!(f, "\n  [{:?}] {}", l.level, l.message)?;
                }
                Ok(())
            }
            HarnessError::Trap(m) => write!(f, "trap: {m}"),
            HarnessError::Poisoned(m) => write!(f, "instance poisoned by an earlier trap: {m}"),
            HarnessError::Usage(m) => write!(f, "harness misuse: {m}"),
        }
    }
}

impl std::error::Error for HarnessError {}

pub(crate) struct HarnessInner {
    engine: Engine,
    pre: InstancePre<abi::State>,
    imports_get_log_level: bool,
    /// The callbacks of [`KONG_REQUIRED_EXPORTS`] the module does not export.
    missing_for_kong: Vec<&'static str>,
    /// Compiled to count its instructions (fuel).
    count_instructions: bool,
}

/// Callbacks ngx_wasm_module calls without checking that the module exports them: a module
/// without one crashes the nginx worker (SIGSEGV) on the first request that reaches that
/// phase (HOSTS.md). The proxy-wasm Rust SDK exports all of them; a tool that strips unused
/// exports must not.
pub const KONG_REQUIRED_EXPORTS: [&str; 4] = [
    "proxy_on_request_body",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_log",
];

/// A compiled filter module, ready to instantiate; cloning shares it.
#[derive(Clone)]
pub struct Harness {
    pub(crate) inner: Arc<HarnessInner>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    /// Reads and compiles a `.wasm` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| HarnessError::Load(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// Compiles a module from its bytes.
    pub fn from_bytes(wasm: &[u8]) -> Result<Harness, HarnessError> {
        Self::compile(wasm, false)
    }

    /// Like [`load`](Self::load), counting the WebAssembly instructions the module runs
    /// (wasmtime's fuel: one unit per instruction, calls out to the host and their work not
    /// counted): [`Filter::wasm_instructions`]. A figure of the module's own work that no
    /// machine noise moves, and the same in every engine that runs this module (their machine
    /// code differs, the instructions do not). The code is slower with the counting.
    pub fn load_counting_instructions(path: impl AsRef<Path>) -> Result<Harness, HarnessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| HarnessError::Load(format!("{}: {e}", path.display())))?;
        Self::compile(&bytes, true)
    }

    fn compile(wasm: &[u8], count_instructions: bool) -> Result<Harness, HarnessError> {
        let mut config = Config::new();
        config.consume_fuel(count_instructions);
        config.wasm_backtrace_details(WasmBacktraceDetails::Disable);
        // `BOUNCER_HARNESS_PERFMAP=1`: name the module's functions for `perf` (with
        // `BOUNCER_HARNESS_NO_CACHE=1`, so the module is compiled in this process).
        if std::env::var_os("BOUNCER_HARNESS_PERFMAP").is_some_and(|v| v != "0") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine =
            Engine::new(&config).map_err(|e| HarnessError::Load(format!("engine: {e}")))?;
        let module = compile_cached(&engine, wasm)?;
        let linker =
            abi::linker(&engine, &module).map_err(|e| HarnessError::Load(format!("{e:?}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| HarnessError::Load(format!("link: {e:?}")))?;
        let imports_get_log_level = module
            .imports()
            .any(|i| i.module() == "env" && i.name() == "proxy_get_log_level");
        let missing_for_kong = KONG_REQUIRED_EXPORTS
            .into_iter()
            .filter(|name| module.get_export(name).is_none())
            .collect();
        Ok(Harness {
            inner: Arc::new(HarnessInner {
                engine,
                pre,
                imports_get_log_level,
                missing_for_kong,
                count_instructions,
            }),
        })
    }

    /// A new instance on `host`, configured with `config` (the JSON string Envoy's
    /// `configuration` / Kong's filter `config` carries); no VM configuration.
    pub fn filter(&self, host: &Host, config: &str) -> Result<Filter, HarnessError> {
        Filter::new(self, host, config.as_bytes(), b"")
    }

    /// Like [`filter`](Self::filter), with a VM configuration (`on_vm_start`).
    pub fn filter_with_vm_config(
        &self,
        host: &Host,
        config: &str,
        vm_config: &str,
    ) -> Result<Filter, HarnessError> {
        Filter::new(self, host, config.as_bytes(), vm_config.as_bytes())
    }
}

/// Compiles `wasm`, or loads the machine code compiled by an earlier run from
/// `OUT_DIR/module-cache` (keyed by the module's bytes and the engine's configuration), so each
/// test binary does not recompile the same module. `BOUNCER_HARNESS_NO_CACHE=1` disables it.
fn compile_cached(engine: &Engine, wasm: &[u8]) -> Result<Module, HarnessError> {
    use std::hash::{Hash, Hasher};
    let compile =
        || Module::new(engine, wasm).map_err(|e| HarnessError::Load(format!("compile: {e:?}")));
    if std::env::var_os("BOUNCER_HARNESS_NO_CACHE").is_some_and(|v| v != "0") {
        return compile();
    }
    let hash = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        wasm.hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    };
    let dir = Path::new(env!("OUT_DIR")).join("module-cache");
    let file = dir.join(format!("{:016x}{:016x}.cwasm", hash(1), hash(2)));
    if file.exists() {
        // SAFETY: the file is one this function wrote (atomically, by rename) for this exact
        // module and engine configuration, in the build's own output directory.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &file) } {
            return Ok(module);
        }
    }
    let module = compile()?;
    if let Ok(bytes) = module.serialize() {
        let tmp = dir.join(format!(
            "tmp-{}-{:?}-{}",
            std::process::id(),
            std::thread::current().id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &file));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        prune_cache(&dir, 8);
    }
    Ok(module)
}

/// Keeps the `keep` most recent entries of the module cache.
fn prune_cache(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for (_, path) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

/// Where `cargo build --release --target wasm32-wasip1 -p bouncer` puts the filter:
/// `$CARGO_TARGET_DIR/wasm32-wasip1/release/bouncer.wasm` (a relative `CARGO_TARGET_DIR` is
/// taken from the workspace root), else `<workspace>/target/...`.
pub fn bouncer_wasm_path() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("wasm32-wasip1/release/bouncer.wasm")
}

/// The Bouncer filter, compiled once per process (the first call compiles it). Panics, saying
/// how to build it, if it is missing or does not load.
pub fn bouncer() -> &'static Harness {
    static BOUNCER: OnceLock<Result<Harness, String>> = OnceLock::new();
    let loaded = BOUNCER.get_or_init(|| {
        let path = bouncer_wasm_path();
        if !path.exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release --target wasm32-wasip1 -p bouncer` first",
                path.display()
            ));
        }
        Harness::load(&path).map_err(|e| e.to_string())
    });
    match loaded {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}
