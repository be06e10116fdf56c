//! What users run beside Bouncer, for the quick start and the end-to-end tests:
//!
//! - [`authz`]: a reference authorization service answering the filter's OPA-style callout from
//!   a role -> permission -> activity model in a JSON file;
//! - [`http`]: a tiny HTTP/1.1 server and client (std only) the examples share;
//! - the `bouncer-gateway` binary: a local gateway that runs every request through the real
//!   `bouncer.wasm` in the wasmtime harness, in front of a built-in echo upstream.

pub mod authz;
pub mod http;
