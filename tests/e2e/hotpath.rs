//! The host calls a request costs (issue 15), counted by the harness: a figure that does not
//! depend on machine noise. Each case pins the calls of one path exactly, so that a change
//! that adds a host call to a hot path has to say so here. `make bench` prints the same counts
//! beside its timings.

use crate::support::*;
use bouncer_harness::{
    count_host_calls, take_host_calls, CalloutReply, Filter, Host, KongLocation, Profile, Request,
};
use serde_json::json;
use std::collections::BTreeMap;

type Calls = BTreeMap<&'static str, u64>;

/// The host calls of one request (every callback of its lifecycle), by name.
fn calls(f: &mut Filter, req: Request) -> Calls {
    count_host_calls(true);
    let out = run(f, req);
    let calls = take_host_calls();
    count_host_calls(false);
    assert!(out.is_allowed(), "{out:?}");
    calls
}

fn expect(what: &str, got: &Calls, expected: &[(&'static str, u64)]) {
    let expected: Calls = expected.iter().copied().collect();
    assert_eq!(got, &expected, "{what}");
}

/// Read the request's header map once, the clock once, and set the identity headers the
/// consumer has (`web`: id, username, custom id, credential, groups): the floor of a request
/// the filter lets through. Counters are counted in the worker and flushed on the tick.
const WEB: &[(&str, u64)] = &[
    ("proxy_get_current_time_nanoseconds", 1),
    ("proxy_get_header_map_pairs", 1),
    ("proxy_replace_header_map_value", 5),
];
/// The same for consumers with four identity headers (no custom id).
const FOUR: &[(&str, u64)] = &[
    ("proxy_get_current_time_nanoseconds", 1),
    ("proxy_get_header_map_pairs", 1),
    ("proxy_replace_header_map_value", 4),
];

fn web(path: &str) -> Request {
    get_with_token(path, &hs256(claims("web-key")))
}

#[test]
fn a_cached_token_or_an_api_key_costs_the_floor() {
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        let _ = calls(&mut f, web("/api/v1/orders?page=2"));
        expect(
            "cached HS256",
            &calls(&mut f, web("/api/v1/orders?page=2")),
            WEB,
        );
        let rs = || get("/api/v1/orders").header("authorization", &bearer(&vector("valid_RS256")));
        let _ = calls(&mut f, rs());
        expect("cached RS256", &calls(&mut f, rs()), FOUR);
        let key = || get("/api/v1/orders/42").header("apikey", "partner-api-key");
        expect("API key", &calls(&mut f, key()), FOUR);
        // The tick hands the counters to the host: one call per counter that moved.
        count_host_calls(true);
        f.tick().unwrap();
        let tick = take_host_calls();
        count_host_calls(false);
        expect("tick", &tick, &[("proxy_increment_metric", 2)]);
    }
}

#[test]
fn a_new_token_adds_only_its_miss() {
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        let _ = calls(&mut f, web("/"));
        // A new HS256 token: verified here; HMAC tokens skip the shared level.
        let mut c = claims("web-key");
        c["jti"] = json!("fresh-1");
        let req = get("/").header("authorization", &bearer(&hs256(c)));
        let mut want = WEB.to_vec();
        want.push(("proxy_increment_metric", 1));
        expect("new HS256", &calls(&mut f, req), &want);
        // A new RS256 token: a shared-data miss, verified here, written for other workers.
        // (Each new instance first serves a request of its own: its first allowed request
        // probes once for the nginx variables of the location snippet.)
        let mut f2 = filter(&h, &base_config());
        let _ = calls(&mut f2, web("/"));
        let rs = || get("/").header("authorization", &bearer(&vector("valid_RS256")));
        let mut want = FOUR.to_vec();
        want.extend([
            ("proxy_get_shared_data", 1),
            ("proxy_increment_metric", 1),
            ("proxy_set_shared_data", 1),
        ]);
        expect("new RS256", &calls(&mut f2, rs()), &want);
        // The same token in another instance (another worker): one shared-data read.
        let mut f3 = filter(&h, &base_config());
        let _ = calls(&mut f3, web("/"));
        let mut want = FOUR.to_vec();
        want.push(("proxy_get_shared_data", 1));
        expect(
            "RS256 verified by another worker",
            &calls(&mut f3, rs()),
            &want,
        );
    }
}

#[test]
fn kong_with_the_location_snippet_writes_only_the_variables_it_sets() {
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kong/bouncer-location.conf"
    ))
    .unwrap();
    let h: Host = host(Profile::Kong).with_location(KongLocation::parse(&snippet, true));
    let mut f = filter(&h, &base_config());
    let _ = calls(&mut f, web("/"));
    let mut want = WEB.to_vec();
    want.push(("proxy_set_property", 5));
    expect("cached HS256, snippet", &calls(&mut f, web("/")), &want);
}

#[test]
fn a_cached_authorization_decision_costs_one_shared_read() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
        let upstream = match profile {
            Profile::Envoy => "authz",
            Profile::Kong => "127.0.0.1:8181",
        };
        let cfg = with(
            base_config(),
            json!({"authz": {"upstream": upstream, "authority": "authz.internal",
                "path": "/v1/data/http/authz", "cache_ttl_seconds": 60}}),
        );
        let mut f = filter(&h, &cfg);
        let req = || get("/api/v1/orders/1").header("apikey", "partner-api-key");
        let first = run(&mut f, req());
        assert!(first.is_allowed(), "{first:?}");
        let mut want = FOUR.to_vec();
        want.push(("proxy_get_shared_data", 1));
        if profile == Profile::Kong {
            // The callout's `input.host` is nginx's $http_host in Kong.
            want.push(("proxy_get_property", 1));
        }
        expect("authz cache hit", &calls(&mut f, req()), &want);
    }
}

/// The bench's cold-cache rows take the module's time as the request's minus its host calls'
/// (`time_host_calls`): that time is summed only while timing is on, is part of the request's
/// time, and restarts from zero when taken.
#[test]
fn host_call_time_is_summed_only_while_timing() {
    use bouncer_harness::{take_host_time, time_host_calls};
    use std::time::{Duration, Instant};
    let h = host(Profile::Kong);
    let mut f = filter(&h, &base_config());
    let _ = run(&mut f, web("/api/v1/orders?page=2"));
    let _ = run(&mut f, web("/api/v1/orders?page=2"));
    assert_eq!(take_host_time(), Duration::ZERO, "not timing");
    time_host_calls(true);
    let t = Instant::now();
    assert!(run(&mut f, web("/api/v1/orders?page=2")).is_allowed());
    let all = t.elapsed();
    let spent = take_host_time();
    let again = take_host_time();
    time_host_calls(false);
    assert!(
        spent > Duration::ZERO && spent < all,
        "{spent:?} of {all:?}"
    );
    assert_eq!(again, Duration::ZERO, "taken: restarts from zero");
    let _ = run(&mut f, web("/api/v1/orders?page=2"));
    assert_eq!(take_host_time(), Duration::ZERO, "timing stopped");
}
