//! Bouncer: JWT, API-key, ACL and authorization filter for Kong and Envoy, as one proxy-wasm
//! module.
//!
//! Every decision is made by pure, host-free code ([`engine::evaluate`] over a compiled
//! [`config::Policy`]); the `glue` module (wasm only) is the thin layer that reads the request
//! from the host and applies the [`engine::Outcome`].
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod access;
pub mod authz;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod engine;
pub mod jwks;
pub mod jwt;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(glue::Root::default())
    });
}}
