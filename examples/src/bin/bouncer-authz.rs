//! The reference authorization service: answers Bouncer's callout (`POST` with
//! `{"input": {...}}`) from a role -> permission -> activity model.
//!
//! Usage: `bouncer-authz [--listen 127.0.0.1:8181] --model examples/authz-model.json`

use bouncer_examples::{authz::Model, http};
use std::net::TcpListener;

fn main() {
    let mut listen = "127.0.0.1:8181".to_owned();
    let mut model_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "--model" => model_path = args.next(),
            _ => {
                eprintln!("usage: bouncer-authz [--listen ADDR] --model FILE");
                std::process::exit(2);
            }
        }
    }
    let Some(model_path) = model_path else {
        eprintln!("usage: bouncer-authz [--listen ADDR] --model FILE");
        std::process::exit(2);
    };
    let model = match std::fs::read_to_string(&model_path)
        .map_err(|e| e.to_string())
        .and_then(|t| Model::from_json(&t))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bouncer-authz: {model_path}: {e}");
            std::process::exit(1);
        }
    };
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bouncer-authz: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("bouncer-authz: listening on {listen}");
    http::serve(listener, |req| {
        http::json_response(200, &model.decide(&req.body))
    });
}
