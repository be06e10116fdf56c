//! Requests, responses, header lists, callouts and the outcome of a request.

use crate::host::LogEntry;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// An ordered header list, as a proxy holds it: repeated names allowed, order kept.
///
/// Lookups ignore ASCII case. It dereferences to the slice of `(name, value)` pairs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub(crate) Vec<(String, String)>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The values of every header called `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a header called `name` is present (with any value, empty included).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The pairs, consuming the list.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl Deref for Headers {
    type Target = [(String, String)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(v: Vec<(String, String)>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| format!("{k}: {v}")))
            .finish()
    }
}

/// A downstream request to run through a filter.
///
/// `Request::new("GET", "/path?x=1")` starts with the pseudo-headers `:method`, `:path`,
/// `:authority` (`example.com`) and `:scheme` (`https`), in that order, as Envoy presents them;
/// [`header`](Self::header) appends more (names lowercased; repeated names allowed; a
/// pseudo-header replaces the default one).
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) upstream: (u16, Vec<(String, String)>, Vec<u8>),
}

impl Request {
    /// A request with the given method and path (query string included).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), path.into()),
                (":authority".into(), "example.com".into()),
                (":scheme".into(), "https".into()),
            ],
            body: Vec::new(),
            upstream: (200, Vec::new(), Vec::new()),
        }
    }

    /// Appends a header (name lowercased). A pseudo-header (`:authority`, ...) replaces the
    /// existing one instead.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') {
            if let Some(slot) = self.headers.iter_mut().find(|(k, _)| *k == name) {
                slot.1 = value.into();
                return self;
            }
        }
        self.headers.push((name, value.into()));
        self
    }

    /// Sets a request body: `on_request_body` then runs, and Envoy's `end_of_stream` in the
    /// request-headers callback becomes false.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The response the upstream gives when the filter lets the request through
    /// (default: 200, no headers, empty body).
    pub fn upstream_response(
        mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Self {
        self.upstream = (
            status,
            headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body.into(),
        );
        self
    }
}

/// An HTTP response: the filter's local response, or the upstream's as the client gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, without the `:status` pseudo-header.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The `status_code_details` string of a local response (empty otherwise).
    pub details: String,
}

impl Response {
    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body in the message if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {:?}", self.body_str()))
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState {
    /// The filter let it through: it went upstream (see [`Outcome::request_headers`]).
    Allowed,
    /// The filter answered it with a local response (see [`Outcome::response`]).
    LocalResponse,
    /// Paused: waiting for a callout answer or a `proxy_continue_stream`.
    Pending,
    /// The filter reset the stream (`proxy_close_stream`, Envoy only).
    Reset,
    /// Not a request: the outcome of a root-context callback (tick, root callout answer).
    Root,
}

/// What happened to a request (or, with [`RequestState::Root`], to a root-context callback).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The context id of the request (or of the root context).
    pub context_id: u32,
    /// Where the request stands.
    pub state: RequestState,
    /// The request headers as the upstream receives them, after the filter's edits with the
    /// host's semantics (a snapshot taken when the request went upstream; while pending or
    /// after a local response, the current headers).
    pub request_headers: Headers,
    /// The response the client got: the local response, or the upstream response after the
    /// filter's response-phase edits. `None` while pending.
    pub response: Option<Response>,
    /// Logs the filter emitted in this context (for a root outcome: during this call).
    pub logs: Vec<LogEntry>,
    /// Callouts dispatched from this context (for a root outcome: during this call).
    pub callouts: Vec<Callout>,
    /// Tokens of this context's callouts still waiting for an answer.
    pub pending_callouts: Vec<u32>,
    /// Properties the filter set in this context (`set_property`), path joined with `.`.
    pub properties: Vec<(String, Vec<u8>)>,
}

impl Outcome {
    /// The request went upstream.
    pub fn is_allowed(&self) -> bool {
        self.state == RequestState::Allowed
    }

    /// The request is paused.
    pub fn is_pending(&self) -> bool {
        self.state == RequestState::Pending
    }

    /// The local response, if the filter answered the request itself.
    pub fn local_response(&self) -> Option<&Response> {
        match self.state {
            RequestState::LocalResponse => self.response.as_ref(),
            _ => None,
        }
    }

    /// The status the client got (local or upstream), `None` while pending.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// The response body as JSON; panics if there is no response or it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        self.response
            .as_ref()
            .unwrap_or_else(|| panic!("no response yet: {:?}", self.state))
            .json()
    }

    /// The first request header called `name`, as the upstream receives it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }

    /// Whether some log message of this context contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|l| l.message.contains(needle))
    }
}

/// An HTTP callout the filter dispatched (`proxy_http_call`).
#[derive(Clone, Debug)]
pub struct Callout {
    /// The token the host returned.
    pub token: u32,
    /// The context it was dispatched from (a request, or the root context).
    pub context_id: u32,
    /// Whether the root context dispatched it.
    pub from_root: bool,
    /// The `upstream` argument (Envoy cluster name, Kong `host:port`).
    pub upstream: String,
    /// Headers, pseudo-headers included.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Headers,
    /// Timeout.
    pub timeout: Duration,
}

impl Callout {
    /// `:method`.
    pub fn method(&self) -> &str {
        self.headers.get(":method").unwrap_or("")
    }

    /// `:path`.
    pub fn path(&self) -> &str {
        self.headers.get(":path").unwrap_or("")
    }

    /// `:authority`.
    pub fn authority(&self) -> &str {
        self.headers.get(":authority").unwrap_or("")
    }

    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("callout body is not JSON ({e}): {:?}", self.body_str()))
    }
}

/// How a callout is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalloutReply {
    /// An HTTP response (`:status` is added to the headers).
    Ok {
        /// Status code.
        status: u16,
        /// Headers (names lowercased on delivery).
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// The call timed out.
    Timeout,
    /// The connection failed.
    ConnectFailure,
    /// Another failure; the string is Kong's `:dispatch_status` reason.
    Failure(String),
    /// Answer after a delay on the host clock (which is advanced by it); a delay at or above
    /// the call's timeout turns into [`CalloutReply::Timeout`] after the timeout.
    Delayed(Duration, Box<CalloutReply>),
    /// From a callout handler: leave the callout unanswered, for [`crate::Filter::respond`].
    Manual,
}

impl CalloutReply {
    /// A response with this status and body.
    pub fn ok(status: u16, body: impl Into<Vec<u8>>) -> Self {
        CalloutReply::Ok {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A response with this status and JSON body (`content-type: application/json`).
    pub fn json(status: u16, json: &str) -> Self {
        CalloutReply::ok(status, json).with_header("content-type", "application/json")
    }

    /// Adds a response header (no effect on failures).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let CalloutReply::Ok { headers, .. } = &mut self {
            headers.push((name.to_ascii_lowercase(), value.to_string()));
        }
        self
    }

    /// This answer, after `delay` on the host clock.
    pub fn after(self, delay: Duration) -> Self {
        CalloutReply::Delayed(delay, Box::new(self))
    }
}
