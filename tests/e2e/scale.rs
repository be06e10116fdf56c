//! Configurations that scale (issue 15): 100,000 consumers, each with an HS256 secret, an API
//! key and a route of its own, configure within 64 MiB of linear memory per instance (the
//! whole configuration text included), and every consumer's credentials and route still work.

use crate::support::*;
use bouncer_harness::scale::{api_key, hs256_key, hs256_secret, Routes, Scale};
use bouncer_harness::{Filter, Host, Profile, Request};
use serde_json::json;
use std::time::Instant;

const MIB: usize = 1 << 20;

fn configure(host: &Host, scale: Scale) -> (Filter, usize) {
    let text = scale.config();
    module();
    let started = Instant::now();
    let f = module()
        .filter(host, &text)
        .unwrap_or_else(|e| panic!("config refused: {e}"));
    let mem = f.memory_size();
    eprintln!(
        "scale: {} consumers ({:?} routes): {:.1} MiB of linear memory, {} ms, text {:.1} MiB",
        scale.consumers,
        scale.routes,
        mem as f64 / MIB as f64,
        started.elapsed().as_millis(),
        text.len() as f64 / MIB as f64
    );
    (f, mem)
}

fn token(i: usize) -> String {
    sign_hmac(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(&hs256_key(i)),
        &hs256_secret(i),
    )
}

#[test]
fn hundred_thousand_consumers_fit_in_64_mib() {
    let host = host(Profile::Envoy);
    let n = 100_000;
    let (mut f, mem) = configure(&host, Scale::issue15(n));
    assert!(
        mem <= 64 * MIB,
        "{n} consumers take {:.1} MiB of linear memory",
        mem as f64 / MIB as f64
    );
    for i in [0, 1, 4_242, n - 1] {
        let own = format!("/api/v1/tenants/{i}/orders");
        let other = format!("/api/v1/tenants/{}/orders", i + 1);
        let out = run(
            &mut f,
            get(&own).header("authorization", &bearer(&token(i))),
        );
        assert_eq!(
            upstream(&out, "x-consumer-id"),
            Some(format!("id-{i}").as_str())
        );
        let out = run(&mut f, get(&own).header("apikey", &api_key(i)));
        assert_eq!(
            upstream(&out, "x-consumer-username"),
            Some(format!("user-{i}").as_str())
        );
        let out = run(&mut f, get(&other).header("apikey", &api_key(i)));
        assert_message(&out, 403, "You cannot consume this service");
        let out = run(
            &mut f,
            Request::new("DELETE", &own).header("apikey", &api_key(i)),
        );
        assert_message(&out, 403, "You cannot consume this service");
    }
    let out = run(
        &mut f,
        get("/api/v1/tenants/1").header("apikey", "no-such-key"),
    );
    assert_message(&out, 401, "Unauthorized");
}

/// The same with one route pattern shared by every consumer.
#[test]
fn hundred_thousand_consumers_with_a_shared_route_fit_in_64_mib() {
    let host = host(Profile::Kong);
    let n = 100_000;
    let scale = Scale {
        routes: Routes::Shared,
        ..Scale::issue15(n)
    };
    let (mut f, mem) = configure(&host, scale);
    assert!(
        mem <= 64 * MIB,
        "{n} consumers take {:.1} MiB of linear memory",
        mem as f64 / MIB as f64
    );
    let i = n / 2;
    let out = run(
        &mut f,
        get("/api/v1/orders/7").header("authorization", &bearer(&token(i))),
    );
    assert_eq!(
        upstream(&out, "x-consumer-id"),
        Some(format!("id-{i}").as_str())
    );
    let out = run(
        &mut f,
        get("/api/v1/orders/7/items").header("apikey", &api_key(i)),
    );
    assert_message(&out, 403, "You cannot consume this service");
}
