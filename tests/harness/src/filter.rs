//! One filter instance (a worker VM) and the request lifecycle it drives.

use crate::abi::{CallResponse, Phase, State, Stream};
use crate::host::{lock, Host, LogEntry, LogLevel, Profile};
use crate::http::{CalloutReply, Headers, Outcome, Request, RequestState, Response};
use crate::{Callout, Harness, HarnessError};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

type Cb3 = TypedFunc<(u32, u32, u32), u32>;
type CallResponseCb = TypedFunc<(u32, u32, u32, u32, u32), ()>;

struct Callbacks {
    context_create: TypedFunc<(u32, u32), ()>,
    vm_start: Option<TypedFunc<(u32, u32), u32>>,
    configure: Option<TypedFunc<(u32, u32), u32>>,
    request_headers: Option<Cb3>,
    request_body: Option<Cb3>,
    response_headers: Option<Cb3>,
    response_body: Option<Cb3>,
    log: Option<TypedFunc<u32, ()>>,
    done: Option<TypedFunc<u32, u32>>,
    delete: Option<TypedFunc<u32, ()>>,
    tick: Option<TypedFunc<u32, ()>>,
    http_call_response: Option<CallResponseCb>,
}

fn export<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<State>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HarnessError> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f.typed::<P, R>(&*store).map(Some).map_err(|e| {
            HarnessError::Load(format!("export {name} has an unexpected signature: {e}"))
        }),
    }
}

/// One instantiated filter module (one worker VM of the [`Host`]) with its root context.
///
/// Created by [`Harness::filter`]. Drives requests through the proxy-wasm lifecycle
/// (`on_context_create`, `on_request_headers`, `on_request_body`, `on_response_headers`,
/// `on_response_body`, `on_log`, `on_done`, `on_delete`), answers callouts, ticks. After a trap
/// the instance is poisoned: every later call returns [`HarnessError::Poisoned`].
pub struct Filter {
    store: Store<State>,
    cb: Arc<Callbacks>,
    host: Host,
    root_id: u32,
    next_ctx: u32,
    poisoned: Option<String>,
    queue: VecDeque<(u32, CalloutReply)>,
    finished: HashMap<u32, Outcome>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instance", &self.instance_id())
            .field("root_id", &self.root_id)
            .field("poisoned", &self.poisoned.is_some())
            .finish()
    }
}

impl Filter {
    pub(crate) fn new(
        h: &Harness,
        host: &Host,
        config: &[u8],
        vm_config: &[u8],
    ) -> Result<Filter, HarnessError> {
        let inner = &h.inner;
        if host.profile() == Profile::Kong && inner.imports_get_log_level {
            return Err(HarnessError::Load(
                "the module imports proxy_get_log_level, which Kong declares with a different signature: \
                 it does not load in Kong (never reference hostcalls::get_log_level)"
                    .into(),
            ));
        }
        if host.profile() == Profile::Kong && !inner.missing_for_kong.is_empty() {
            return Err(HarnessError::Load(format!(
                "the module does not export {}: ngx_wasm_module calls these callbacks without \
                 checking, and the nginx worker crashes (SIGSEGV) on the first request that \
                 reaches them (do not strip the SDK's exports)",
                inner.missing_for_kong.join(", ")
            )));
        }
        let id = host
            .inner
            .next_instance
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut store = Store::new(
            &inner.engine,
            State::new(host.inner.clone(), id, vm_config.to_vec()),
        );
        if inner.count_instructions {
            store
                .set_fuel(u64::MAX)
                .map_err(|e| HarnessError::Load(format!("fuel: {e}")))?;
        }
        let instance = inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| HarnessError::Load(format!("instantiation failed: {e:?}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HarnessError::Load("the module exports no memory".into()))?;
        let alloc = match export::<u32, u32>(&instance, &mut store, "proxy_on_memory_allocate")? {
            Some(f) => Some(f),
            None => export::<u32, u32>(&instance, &mut store, "malloc")?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = alloc;
        let cb = Arc::new(Callbacks {
            context_create: export(&instance, &mut store, "proxy_on_context_create")?.ok_or_else(
                || HarnessError::Load("the module exports no proxy_on_context_create".into()),
            )?,
            vm_start: export(&instance, &mut store, "proxy_on_vm_start")?,
            configure: export(&instance, &mut store, "proxy_on_configure")?,
            request_headers: export(&instance, &mut store, "proxy_on_request_headers")?,
            request_body: export(&instance, &mut store, "proxy_on_request_body")?,
            response_headers: export(&instance, &mut store, "proxy_on_response_headers")?,
            response_body: export(&instance, &mut store, "proxy_on_response_body")?,
            log: export(&instance, &mut store, "proxy_on_log")?,
            done: export(&instance, &mut store, "proxy_on_done")?,
            delete: export(&instance, &mut store, "proxy_on_delete")?,
            tick: export(&instance, &mut store, "proxy_on_tick")?,
            http_call_response: export(&instance, &mut store, "proxy_on_http_call_response")?,
        });
        let initialize = export::<(), ()>(&instance, &mut store, "_initialize")?;
        let main = export::<(u32, u32), u32>(&instance, &mut store, "main")?;
        let start = export::<(), ()>(&instance, &mut store, "_start")?;
        let mut f = Filter {
            store,
            cb,
            host: host.clone(),
            root_id: 0,
            next_ctx: 1,
            poisoned: None,
            queue: VecDeque::new(),
            finished: HashMap::new(),
        };
        f.begin_op();
        if let Some(init) = initialize {
            f.call(0, &init, (), "_initialize")?;
            if let Some(main) = main {
                f.call(0, &main, (0, 0), "main")?;
            }
        } else if let Some(start) = start {
            f.call(0, &start, (), "_start")?;
        }
        let root = f.next_ctx;
        f.root_id = root;
        if let Some(failed) = f.create_root(config)? {
            f.end_op();
            let logs = f.store.data_mut().op_logs.drain(..).collect();
            return Err(HarnessError::Config {
                message: format!("{failed} returned false"),
                logs,
            });
        }
        f.pump()?;
        f.end_op();
        Ok(f)
    }

    /// Creates a root context; returns the callback that refused, if any.
    fn create_root(&mut self, config: &[u8]) -> Result<Option<&'static str>, HarnessError> {
        let id = self.next_ctx;
        self.next_ctx += 1;
        self.store.data_mut().roots.insert(id, config.to_vec());
        let cb = self.cb.clone();
        self.call(id, &cb.context_create, (id, 0), "proxy_on_context_create")?;
        if let Some(f) = &cb.vm_start {
            let len = self.store.data().vm_config.len() as u32;
            if self.call(id, f, (id, len), "proxy_on_vm_start")? == 0 {
                return Ok(Some("proxy_on_vm_start"));
            }
        }
        if let Some(f) = &cb.configure {
            if self.call(id, f, (id, config.len() as u32), "proxy_on_configure")? == 0 {
                return Ok(Some("proxy_on_configure"));
            }
        }
        Ok(None)
    }

    /// Calls one callback with `ctx` as the effective context; a trap poisons the instance.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        ctx: u32,
        f: &TypedFunc<P, R>,
        args: P,
        what: &'static str,
    ) -> Result<R, HarnessError> {
        if let Some(p) = &self.poisoned {
            return Err(HarnessError::Poisoned(p.clone()));
        }
        let s = self.store.data_mut();
        s.current = ctx;
        s.callback = what;
        s.output.clear();
        match f.call(&mut self.store, args) {
            Ok(r) => {
                self.after_callback();
                Ok(r)
            }
            Err(e) => {
                let s = self.store.data_mut();
                s.flush_output();
                let output = std::mem::take(&mut s.output);
                // The error chain: host function error or trap, and the wasm backtrace (the
                // host-side Rust backtrace is left out).
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                let msg = format!(
                    "{what} (context {ctx}) trapped\n--- module output ---\n{}--- wasm error ---\n{}",
                    if output.is_empty() { "(none)\n" } else { &output },
                    chain.join("\ncaused by: ")
                );
                s.log(LogLevel::Critical, msg.clone());
                self.poisoned = Some(msg.clone());
                Err(HarnessError::Trap(msg))
            }
        }
    }

    /// Queues answers for the callouts the last callback dispatched.
    fn after_callback(&mut self) {
        let s = self.store.data_mut();
        for (token, reason) in std::mem::take(&mut s.auto_fail) {
            self.queue.push_back((token, CalloutReply::Failure(reason)));
        }
        let new = std::mem::take(&mut s.new_callouts);
        if new.is_empty() {
            return;
        }
        if let Some(handler) = self.host.inner.handler() {
            for token in new {
                let Some(callout) = self.store.data().pending.get(&token) else {
                    continue;
                };
                let reply = handler(callout);
                if reply != CalloutReply::Manual {
                    self.queue.push_back((token, reply));
                }
            }
        }
    }

    fn begin_op(&mut self) {
        let s = self.store.data_mut();
        s.op_logs.clear();
        s.op_callouts.clear();
    }

    fn end_op(&mut self) {
        self.store.data_mut().flush_output();
    }

    /// Delivers queued callout answers, and drives every request they woke up.
    fn pump(&mut self) -> Result<(), HarnessError> {
        let mut rounds = 0;
        while let Some((token, reply)) = self.queue.pop_front() {
            rounds += 1;
            if rounds > 100_000 {
                return Err(HarnessError::Usage(
                    "more than 100000 callouts answered in one call".into(),
                ));
            }
            if self.store.data().pending.contains_key(&token) {
                self.deliver(token, reply)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, token: u32, reply: CalloutReply) -> Result<u32, HarnessError> {
        let s = self.store.data_mut();
        let Some(callout) = s.pending.remove(&token) else {
            return Err(HarnessError::Usage(format!(
                "no pending callout with token {token} (never dispatched, already answered, or its request ended)"
            )));
        };
        let mut reply = reply;
        loop {
            match reply {
                CalloutReply::Delayed(d, inner) => {
                    if d >= callout.timeout {
                        self.host.advance(callout.timeout);
                        reply = CalloutReply::Timeout;
                    } else {
                        self.host.advance(d);
                        reply = *inner;
                    }
                }
                CalloutReply::Manual => {
                    self.store.data_mut().pending.insert(token, callout);
                    return Err(HarnessError::Usage(
                        "CalloutReply::Manual only tells a handler to leave a callout".into(),
                    ));
                }
                _ => break,
            }
        }
        let kong = self.host.profile() == Profile::Kong;
        let failure = |reason: String| {
            if kong {
                (
                    vec![(":dispatch_status".to_string(), reason)],
                    0,
                    Vec::new(),
                )
            } else {
                (Vec::new(), 0, Vec::new())
            }
        };
        let timed_out = reply == CalloutReply::Timeout;
        let (headers, n_headers, body) = match reply {
            CalloutReply::Ok {
                status,
                headers,
                body,
            } => {
                let mut h = Vec::with_capacity(headers.len() + 1);
                h.push((":status".to_string(), status.to_string()));
                h.extend(
                    headers
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                );
                let n = h.len();
                (h, n, body)
            }
            CalloutReply::Timeout => failure("timeout".into()),
            CalloutReply::ConnectFailure => failure("broken connection".into()),
            CalloutReply::Failure(reason) => failure(reason),
            CalloutReply::Delayed(..) | CalloutReply::Manual => unreachable!(),
        };
        let ctx = callout.context_id;
        let s = self.store.data_mut();
        let alive = s.roots.contains_key(&ctx) || s.streams.contains_key(&ctx);
        if !alive {
            return Ok(ctx);
        }
        let body_len = body.len() as u32;
        // ngx_wasm_module 3bed278: after a callout that carried a body and timed out, a local
        // response stashed with a body in on_http_call_response loses it (the dispatch's
        // request-body chain link is reused for it and then emptied) and the connection closes.
        let loses = kong && timed_out && !callout.body.is_empty();
        if let Some(st) = s.streams.get_mut(&ctx) {
            st.loses_local_body = loses;
        }
        s.call_response = Some(CallResponse { headers, body });
        let cb = self.cb.clone();
        let result = match &cb.http_call_response {
            Some(f) => self.call(
                ctx,
                f,
                (ctx, token, n_headers as u32, body_len, 0),
                "proxy_on_http_call_response",
            ),
            None => Ok(()),
        };
        let s = self.store.data_mut();
        s.call_response = None;
        if let Some(st) = s.streams.get_mut(&ctx) {
            st.loses_local_body = false;
        }
        result?;
        self.drive_woken()?;
        Ok(ctx)
    }

    /// Drives every request that a callback resumed, answered or reset.
    fn drive_woken(&mut self) -> Result<(), HarnessError> {
        let mut woken: Vec<u32> = self
            .store
            .data()
            .streams
            .iter()
            .filter(|(_, st)| {
                st.phase != Phase::Finished
                    && ((st.paused && st.resume)
                        || (st.local.is_some() && !st.local_handled)
                        || st.reset)
            })
            .map(|(&id, _)| id)
            .collect();
        woken.sort_unstable();
        for ctx in woken {
            self.drive(ctx)?;
        }
        Ok(())
    }

    fn stream(&mut self, ctx: u32) -> &mut Stream {
        self.store
            .data_mut()
            .streams
            .get_mut(&ctx)
            .expect("live stream")
    }

    /// Runs a request's lifecycle as far as it goes (until it pauses or ends).
    fn drive(&mut self, ctx: u32) -> Result<(), HarnessError> {
        let kong = self.host.profile() == Profile::Kong;
        let cb = self.cb.clone();
        loop {
            let Some(st) = self.store.data_mut().streams.get_mut(&ctx) else {
                return Ok(());
            };
            if st.phase == Phase::Finished {
                return Ok(());
            }
            if st.reset && st.phase < Phase::Log {
                st.phase = Phase::Log;
                st.paused = false;
                continue;
            }
            if st.phase < Phase::Log && st.local.is_some() && !st.local_handled {
                st.local_handled = true;
                st.paused = false;
                let mut resp = st.local.clone().expect("local response");
                if kong && st.phase <= Phase::Upstream {
                    // Kong runs on_http_response_headers for a local response too.
                    st.resp_headers =
                        std::iter::once((":status".to_string(), resp.status.to_string()))
                            .chain(resp.headers.0.iter().cloned())
                            .collect();
                    st.resp_body = resp.body.clone();
                    st.phase = Phase::ResponseBody;
                    if let Some(f) = &cb.response_headers {
                        let n = st.resp_headers.len() as u32;
                        self.call(ctx, f, (ctx, n, 0), "proxy_on_response_headers")?;
                    }
                    let st = self.stream(ctx);
                    resp.status = status_of(&st.resp_headers).unwrap_or(resp.status);
                    resp.headers = Headers(
                        st.resp_headers
                            .iter()
                            .filter(|(k, _)| k != ":status")
                            .cloned()
                            .collect(),
                    );
                }
                let st = self.stream(ctx);
                st.response = Some(resp);
                st.phase = Phase::Log;
                continue;
            }
            if st.paused {
                if !st.resume {
                    return Ok(());
                }
                st.paused = false;
            }
            st.resume = false;
            match st.phase {
                Phase::RequestHeaders => {
                    st.phase = Phase::RequestBody;
                    let n = st.req_headers.len() as u32;
                    let eos = !kong && st.req_body.is_empty();
                    if let Some(f) = &cb.request_headers {
                        let action =
                            self.call(ctx, f, (ctx, n, eos as u32), "proxy_on_request_headers")?;
                        self.after_action(ctx, action, true);
                    }
                }
                Phase::RequestBody => {
                    st.phase = Phase::Upstream;
                    let len = st.req_body.len() as u32;
                    if len > 0 {
                        if let Some(f) = &cb.request_body {
                            let action =
                                self.call(ctx, f, (ctx, len, 1), "proxy_on_request_body")?;
                            self.after_action(ctx, action, true);
                        }
                    }
                }
                Phase::Upstream => {
                    let forwarded = if kong {
                        kong_forward(lock(&self.host.inner.location).as_ref(), st)
                    } else {
                        st.req_headers.clone()
                    };
                    st.forwarded = Some(forwarded);
                    let (status, headers, body) = st.upstream.clone();
                    st.resp_headers = std::iter::once((":status".to_string(), status.to_string()))
                        .chain(headers)
                        .collect();
                    st.resp_body = body;
                    st.phase = Phase::ResponseHeaders;
                }
                Phase::ResponseHeaders => {
                    st.phase = Phase::ResponseBody;
                    let n = st.resp_headers.len() as u32;
                    let eos = !kong && st.resp_body.is_empty();
                    if let Some(f) = &cb.response_headers {
                        let action =
                            self.call(ctx, f, (ctx, n, eos as u32), "proxy_on_response_headers")?;
                        // Kong cannot pause in the response-headers phase.
                        self.after_action(ctx, action, !kong);
                    }
                }
                Phase::ResponseBody => {
                    let len = st.resp_body.len() as u32;
                    if len > 0 && !st.local_handled {
                        if let Some(f) = &cb.response_body {
                            // Run it once; a pause here holds the response until resumed.
                            st.phase = Phase::Log;
                            let action =
                                self.call(ctx, f, (ctx, len, 1), "proxy_on_response_body")?;
                            self.after_action(ctx, action, true);
                        }
                    }
                    let st = self.stream(ctx);
                    st.phase = Phase::Log;
                    if st.response.is_none() {
                        st.response = Some(Response {
                            status: status_of(&st.resp_headers).unwrap_or(st.upstream.0),
                            headers: Headers(
                                st.resp_headers
                                    .iter()
                                    .filter(|(k, _)| k != ":status")
                                    .cloned()
                                    .collect(),
                            ),
                            body: st.resp_body.clone(),
                            details: String::new(),
                        });
                    }
                    if st.paused {
                        return Ok(());
                    }
                }
                Phase::Log => {
                    if let Some(f) = &cb.log {
                        self.call(ctx, f, ctx, "proxy_on_log")?;
                    }
                    if let Some(f) = &cb.done {
                        self.call(ctx, f, ctx, "proxy_on_done")?;
                    }
                    if let Some(f) = &cb.delete {
                        self.call(ctx, f, ctx, "proxy_on_delete")?;
                    }
                    let s = self.store.data_mut();
                    s.pending.retain(|_, c| c.context_id != ctx);
                    let mut st = s.streams.remove(&ctx).expect("live stream");
                    st.phase = Phase::Finished;
                    let outcome = outcome_of(ctx, st, Vec::new());
                    self.finished.insert(ctx, outcome);
                    return Ok(());
                }
                Phase::Finished => return Ok(()),
            }
        }
    }

    fn after_action(&mut self, ctx: u32, action: u32, can_pause: bool) {
        if let Some(st) = self.store.data_mut().streams.get_mut(&ctx) {
            if action != 0 && can_pause && !st.resume {
                st.paused = true;
            }
            st.resume = false;
        }
    }

    /// The outcome of a request (finished ones are handed out once), or of the root context.
    fn take_outcome(&mut self, ctx: u32) -> Outcome {
        if let Some(o) = self.finished.remove(&ctx) {
            return o;
        }
        let s = self.store.data();
        if let Some(st) = s.streams.get(&ctx) {
            let pending = pending_of(s, ctx);
            return outcome_of(ctx, st.snapshot(), pending);
        }
        Outcome {
            context_id: ctx,
            state: RequestState::Root,
            request_headers: Headers::new(),
            response: None,
            logs: s.op_logs.clone(),
            callouts: s.op_callouts.clone(),
            pending_callouts: pending_of(s, ctx),
            properties: Vec::new(),
        }
    }

    /// Runs a request: creates its context and calls the callbacks until it pauses or ends
    /// (callouts answered by the host's handler included). A paused request stays in flight:
    /// answer its callouts with [`respond`](Self::respond).
    pub fn run(&mut self, request: Request) -> Result<Outcome, HarnessError> {
        self.begin_op();
        let ctx = self.next_ctx;
        self.next_ctx += 1;
        let root_id = self.root_id;
        let cb = self.cb.clone();
        self.store.data_mut().streams.insert(
            ctx,
            Stream {
                root_id,
                phase: Phase::RequestHeaders,
                paused: false,
                resume: false,
                req_headers: if self.host.profile() == Profile::Kong {
                    kong_request_headers(request.headers)
                } else {
                    request.headers
                },
                req_body: request.body,
                resp_headers: Vec::new(),
                resp_body: Vec::new(),
                local: None,
                local_handled: false,
                reset: false,
                forwarded: None,
                response: None,
                upstream: request.upstream,
                logs: Vec::new(),
                callouts: Vec::new(),
                properties: Vec::new(),
                zeroed: Vec::new(),
                loses_local_body: false,
            },
        );
        self.call(
            ctx,
            &cb.context_create,
            (ctx, root_id),
            "proxy_on_context_create",
        )?;
        self.drive(ctx)?;
        self.pump()?;
        self.end_op();
        Ok(self.take_outcome(ctx))
    }

    /// Answers a pending callout (of a request or of the root context), then runs what it wakes.
    /// Returns the outcome of the context that dispatched it.
    pub fn respond(&mut self, token: u32, reply: CalloutReply) -> Result<Outcome, HarnessError> {
        self.begin_op();
        let ctx = self.deliver(token, reply)?;
        self.pump()?;
        self.end_op();
        Ok(self.take_outcome(ctx))
    }

    /// Calls `on_tick` on the active root context (callouts it dispatches are answered by the
    /// handler, or left pending). Returns the root outcome: its logs and callouts.
    pub fn tick(&mut self) -> Result<Outcome, HarnessError> {
        self.begin_op();
        let root = self.root_id;
        let cb = self.cb.clone();
        if let Some(f) = &cb.tick {
            self.call(root, f, root, "proxy_on_tick")?;
        }
        self.drive_woken()?;
        self.pump()?;
        self.end_op();
        Ok(self.take_outcome(root))
    }

    /// The tick period the active root context set, if any.
    pub fn tick_period(&self) -> Option<std::time::Duration> {
        self.store
            .data()
            .tick_periods
            .get(&self.root_id)
            .copied()
            .filter(|d| !d.is_zero())
    }

    /// A configuration update; returns whether the filter accepted it. Envoy calls
    /// `on_configure` again on the running root context. Kong builds a new root context
    /// (`on_context_create`, `on_vm_start`, `on_configure`) in the same VM; if it refuses, the
    /// previous root keeps serving.
    pub fn reconfigure(&mut self, config: &str) -> Result<bool, HarnessError> {
        self.begin_op();
        let accepted = match self.host.profile() {
            Profile::Envoy => {
                let root = self.root_id;
                self.store
                    .data_mut()
                    .roots
                    .insert(root, config.as_bytes().to_vec());
                let cb = self.cb.clone();
                match &cb.configure {
                    Some(f) => {
                        self.call(root, f, (root, config.len() as u32), "proxy_on_configure")? != 0
                    }
                    None => true,
                }
            }
            Profile::Kong => {
                let new_root = self.next_ctx;
                let refused = self.create_root(config.as_bytes())?;
                if refused.is_none() {
                    self.root_id = new_root;
                }
                refused.is_none()
            }
        };
        self.pump()?;
        self.end_op();
        Ok(accepted)
    }

    /// The outcome of request `context_id`: a snapshot if it is in flight, its final outcome
    /// (once) if it ended since the call that started it returned (e.g. resumed by the root).
    pub fn outcome(&mut self, context_id: u32) -> Option<Outcome> {
        if self.finished.contains_key(&context_id)
            || self.store.data().streams.contains_key(&context_id)
        {
            Some(self.take_outcome(context_id))
        } else {
            None
        }
    }

    /// Every callout waiting for an answer, oldest first.
    pub fn pending_callouts(&self) -> Vec<Callout> {
        let mut v: Vec<Callout> = self.store.data().pending.values().cloned().collect();
        v.sort_by_key(|c| c.token);
        v
    }

    /// The callouts of root contexts (e.g. a key fetch in `on_configure`/`on_tick`) waiting for
    /// an answer, oldest first.
    pub fn pending_root_callouts(&self) -> Vec<Callout> {
        self.pending_callouts()
            .into_iter()
            .filter(|c| c.from_root)
            .collect()
    }

    /// This instance's logs kept by the host, oldest first.
    pub fn logs(&self) -> Vec<LogEntry> {
        let id = self.instance_id();
        self.host
            .logs()
            .into_iter()
            .filter(|l| l.instance == id)
            .collect()
    }

    /// The WebAssembly instructions this instance has run so far, when its harness counts
    /// them ([`Harness::load_counting_instructions`]); `None` otherwise.
    pub fn wasm_instructions(&self) -> Option<u64> {
        self.store
            .get_fuel()
            .ok()
            .map(|left| u64::MAX.saturating_sub(left))
    }

    /// The size of the instance's linear memory, in bytes.
    pub fn memory_size(&self) -> usize {
        let s = self.store.data();
        s.memory.map(|m| m.data_size(&self.store)).unwrap_or(0)
    }

    /// The id of the root context serving new requests.
    pub fn root_context_id(&self) -> u32 {
        self.root_id
    }

    /// The instance number (also in [`LogEntry::instance`]).
    pub fn instance_id(&self) -> u32 {
        self.store.data().instance_id
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The trap report, if a trap poisoned this instance.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }
}

/// The name and port of the nginx `server` the harness's Kong requests arrive at: what
/// ngx_wasm_module gives as `:authority` (the server's `server_name`, else the machine's host
/// name, and the local port), whatever the client's `Host` says.
pub const KONG_AUTHORITY: &str = "kong:8000";

/// Kong: the request as ngx_wasm_module presents it. The client's host is the `host` header
/// (nginx keeps it among the headers, first after the pseudo-headers, as clients send it);
/// `:authority` is the server's name and port ([`KONG_AUTHORITY`]).
fn kong_request_headers(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        return headers;
    }
    let Some(i) = headers.iter().position(|(k, _)| k == ":authority") else {
        return headers;
    };
    let host = std::mem::replace(&mut headers[i].1, KONG_AUTHORITY.to_string());
    let at = headers
        .iter()
        .position(|(k, _)| !k.starts_with(':'))
        .unwrap_or(headers.len());
    headers.insert(at, ("host".to_string(), host));
    headers
}

/// Kong: the request headers nginx sends upstream, after the location's `set` (when it runs
/// after the filter) and `proxy_set_header` lines (see [`crate::KongLocation`]).
fn kong_forward(loc: Option<&crate::KongLocation>, st: &mut Stream) -> Vec<(String, String)> {
    let Some(loc) = loc else {
        return st.req_headers.clone();
    };
    if !loc.headers_in_access {
        // The rewrite phase's `set` runs after the filter and overwrites what it wrote.
        for (var, value) in &loc.variables {
            st.properties
                .push((format!("ngx.{var}"), value.clone().into_bytes()));
        }
    }
    // (index in req_headers, or None for a header nginx adds; the header)
    let mut out: Vec<(Option<usize>, (String, String))> = st
        .req_headers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, h)| (Some(i), h))
        .collect();
    for (name, var) in &loc.proxy_set_headers {
        // Copies with a zeroed hash are not matched by proxy_set_header: they go through.
        out.retain(|(i, (k, _))| {
            !k.eq_ignore_ascii_case(name) || i.is_some_and(|i| st.zeroed.contains(&i))
        });
        let key = format!("ngx.{var}");
        let value = st
            .properties
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .or_else(|| loc.variable(var).map(str::to_owned))
            .unwrap_or_default();
        if !value.is_empty() {
            out.push((None, (name.clone(), value)));
        }
    }
    for (name, value) in &loc.proxy_set_constants {
        out.retain(|(i, (k, _))| {
            !k.eq_ignore_ascii_case(name) || i.is_some_and(|i| st.zeroed.contains(&i))
        });
        if !value.is_empty() {
            out.push((None, (name.clone(), value.clone())));
        }
    }
    out.into_iter().map(|(_, h)| h).collect()
}

fn status_of(headers: &[(String, String)]) -> Option<u16> {
    headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse().ok())
}

fn pending_of(s: &State, ctx: u32) -> Vec<u32> {
    let mut v: Vec<u32> = s
        .pending
        .values()
        .filter(|c| c.context_id == ctx)
        .map(|c| c.token)
        .collect();
    v.sort_unstable();
    v
}

impl Stream {
    fn snapshot(&self) -> Stream {
        Stream {
            root_id: self.root_id,
            phase: self.phase,
            paused: self.paused,
            resume: self.resume,
            req_headers: self.req_headers.clone(),
            req_body: Vec::new(),
            resp_headers: Vec::new(),
            resp_body: Vec::new(),
            local: None,
            local_handled: self.local_handled,
            reset: self.reset,
            forwarded: self.forwarded.clone(),
            response: self.response.clone(),
            upstream: (0, Vec::new(), Vec::new()),
            logs: self.logs.clone(),
            callouts: self.callouts.clone(),
            properties: self.properties.clone(),
            zeroed: self.zeroed.clone(),
            loses_local_body: false,
        }
    }
}

fn outcome_of(ctx: u32, st: Stream, pending: Vec<u32>) -> Outcome {
    let state = if st.reset {
        RequestState::Reset
    } else if st.local_handled {
        RequestState::LocalResponse
    } else if st.forwarded.is_some() {
        RequestState::Allowed
    } else {
        RequestState::Pending
    };
    Outcome {
        context_id: ctx,
        state,
        request_headers: Headers(st.forwarded.unwrap_or(st.req_headers)),
        response: st.response,
        logs: st.logs,
        callouts: st.callouts,
        pending_callouts: pending,
        properties: st.properties,
    }
}
