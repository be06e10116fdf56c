//! The reference authorization service: Rego policies evaluated by regorus, served as OPA's
//! data API (`POST /v1/data/<path>` with `{"input": ...}` answers `{"result": ...}`, `{}` when
//! undefined), so Bouncer's callout reaches it as it would reach OPA.
//!
//! Usage: `bouncer-authz [--listen 127.0.0.1:8181] --policy examples/policies/rbac.rego
//!          [--policy FILE ...] [--data examples/policies/rbac-data.json]`

use bouncer_examples::{authz::Service, http};
use std::net::TcpListener;

fn usage() -> ! {
    eprintln!(
        "usage: bouncer-authz [--listen ADDR] --policy FILE [--policy FILE ...] [--data FILE]"
    );
    std::process::exit(2)
}

fn main() {
    let mut listen = "127.0.0.1:8181".to_owned();
    let mut policies = Vec::new();
    let mut data = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => listen = val(),
            "--policy" => policies.push(val()),
            "--data" => data = Some(val()),
            _ => usage(),
        }
    }
    if policies.is_empty() {
        usage();
    }
    let mut service = Service::from_files(&policies, data.as_deref()).unwrap_or_else(|e| {
        eprintln!("bouncer-authz: {e}");
        std::process::exit(1)
    });
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("bouncer-authz: cannot listen on {listen}: {e}");
        std::process::exit(1)
    });
    eprintln!("bouncer-authz: listening on {listen}");
    http::serve(listener, |req| {
        let a = service.answer(&req.first, &req.second, &req.body);
        http::json_response(a.status, &a.body)
    });
}
