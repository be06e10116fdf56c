//! End-to-end tests: every behaviour of the contract through the release `bouncer.wasm`,
//! run in the wasmtime proxy-wasm host under both host profiles (Envoy and Kong).
//!
//! One test binary (so wasmtime is linked once), one module per behaviour, plus the
//! table-driven cases in `tests/cases/*.json` (see `cases.rs`).

mod support;

mod acl;
mod apikey;
mod attacks;
mod authz;
mod cases;
mod deployment;
mod headers;
mod hotpath;
mod instructions;
mod jwks;
mod jwt;
mod observability;
mod opa;
mod paths;
mod scale;
mod secrets;
mod self_signed;
mod traps;
