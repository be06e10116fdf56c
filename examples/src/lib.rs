//! What users run beside Bouncer, for the quick start and the end-to-end tests:
//!
//! - [`authz`]: the reference authorization service: Rego policies (`examples/policies/`)
//!   evaluated by regorus behind OPA's data API, e.g. the role -> permission -> activity model
//!   with its roles as an OPA data document;
//! - [`http`]: a tiny HTTP/1.1 server and client (std only) the examples share;
//! - the `bouncer-gateway` binary: a local gateway that runs every request through the real
//!   `bouncer.wasm` in the wasmtime harness, in front of a built-in echo upstream.

pub mod authz;
pub mod http;
