//! The shipped Kong and Envoy example configurations load into the .wasm and serve requests.

use crate::support::*;
use bouncer_harness::Profile;
use serde_json::Value;

fn configs() -> Vec<(Profile, Value)> {
    let mut out = Vec::new();
    let kong: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kong/kong.yml")).unwrap(),
    )
    .unwrap();
    let kong: Value = serde_json::to_value(kong).unwrap();
    // filter_chains may sit at the top level or under services and routes.
    let mut stack = vec![kong];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(chains)) = m.get("filter_chains") {
                    for chain in chains {
                        for filt in chain["filters"].as_array().into_iter().flatten() {
                            if filt["name"] == "bouncer" {
                                let cfg = match &filt["config"] {
                                    Value::String(s) => serde_json::from_str(s).unwrap(),
                                    other => other.clone(),
                                };
                                out.push((Profile::Kong, cfg));
                            }
                        }
                    }
                }
                stack.extend(
                    m.into_iter()
                        .filter(|(k, _)| k != "filter_chains")
                        .map(|(_, v)| v),
                );
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    let envoy: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/envoy.yaml")).unwrap(),
    )
    .unwrap();
    let envoy: Value = serde_json::to_value(envoy).unwrap();
    let mut stack = vec![envoy];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if m.get("@type").and_then(Value::as_str)
                    == Some("type.googleapis.com/google.protobuf.StringValue")
                {
                    if let Some(Value::String(s)) = m.get("value") {
                        out.push((Profile::Envoy, serde_json::from_str(s).unwrap()));
                    }
                }
                stack.extend(m.into_iter().map(|(_, v)| v));
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[test]
fn shipped_configs_load_and_serve() {
    let configs = configs();
    assert!(
        configs.iter().any(|(p, _)| *p == Profile::Kong),
        "no Kong filter config found"
    );
    assert!(
        configs.iter().any(|(p, _)| *p == Profile::Envoy),
        "no Envoy filter config found"
    );
    for (profile, cfg) in configs {
        let h = host(profile);
        h.add_cluster("orders_api");
        h.add_cluster("idp_jwks");
        h.set_callout_handler(|_| bouncer_harness::CalloutReply::json(200, r#"{"result": true}"#));
        let mut f = filter(&h, &cfg);
        let out = run(&mut f, get("/"));
        assert!(
            matches!(out.status(), Some(401) | None),
            "{profile:?}: {out:?}"
        );
        let out = run(&mut f, get("/").header("authorization", "Bearer a.b.c"));
        assert!(
            out.is_allowed() || out.status() == Some(401),
            "{profile:?}: {out:?}"
        );
    }
}

fn kong_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/kong/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// HOSTS.md: without a `shm_kv` zone every shared-data call traps in Kong's engine (a 500 for
/// the request). The shipped kong.conf declares the zone the filter's keys (`bouncer/...`)
/// live in, and the shipped configuration serves requests that use shared data (the decision
/// cache) in a host set up from it, with the location snippet, as Kong runs filter chains.
#[test]
fn kong_conf_gives_the_filter_its_shared_memory() {
    use bouncer_harness::{CalloutReply, HarnessError, Host, KongLocation};
    let (_, cfg) = configs()
        .into_iter()
        .find(|(p, _)| *p == Profile::Kong)
        .unwrap();
    let req = || {
        get("/api/v1/reports/daily")
            .header("apikey", "bk_live_reporting_7f3c9a1e5d2b4f60")
            .header("x-consumer-id", "spoof")
    };
    let h = Host::kong_with_conf(&kong_file("kong.conf"))
        .at_unix(NOW)
        .with_location(KongLocation::parse(
            &kong_file("bouncer-location.conf"),
            true,
        ));
    assert!(
        h.shm_resolves("bouncer/authz/1"),
        "kong.conf declares no shm_kv zone"
    );
    h.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
    let mut f = filter(&h, &cfg);
    for _ in 0..2 {
        let out = run(&mut f, req());
        assert!(out.is_allowed(), "{out:?}");
        assert_eq!(
            out.request_headers.get_all("x-consumer-username"),
            vec!["reporting-bot"]
        );
        assert_eq!(
            out.request_headers.get_all("x-consumer-id"),
            vec!["reporting-bot"]
        );
    }
    assert_eq!(h.metric("bouncer_authz_calls"), Some(1));
    flush_metrics(&mut [&mut f]);
    assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(1));

    // The same without any zone: the engine traps the filter.
    let h = Host::kong_with_conf("wasm = on\n").at_unix(NOW);
    assert!(!h.shm_resolves("bouncer/authz/1"));
    h.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
    let mut f = filter(&h, &cfg);
    match f.run(req()) {
        Err(HarnessError::Trap(m)) => assert!(m.contains("could not resolve namespace"), "{m}"),
        other => panic!("expected a trap: {other:?}"),
    }
    // Kong 3.4/3.5's spelling and the general zone of 3.7+ work as well.
    for conf in ["nginx_wasm_shm_bouncer = 32m", "nginx_wasm_shm_kv = 32m"] {
        assert!(
            Host::kong_with_conf(conf).shm_resolves("bouncer/tok/7"),
            "{conf}"
        );
    }
    assert!(!Host::kong_with_conf("nginx_wasm_shm_kv_other = 32m").shm_resolves("bouncer/tok/7"));
}

/// CONTRACT.md section 1: the third-party partner signs its own tokens, so the shipped
/// configurations mark it `self_signed`; the platform's own apps are not.
#[test]
fn shipped_partners_are_self_signed() {
    for (profile, cfg) in configs() {
        for c in cfg["consumers"].as_array().unwrap() {
            let partner = c["groups"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g == "partners"));
            assert_eq!(
                c["self_signed"].as_bool().unwrap_or(false),
                partner,
                "{profile:?}: {}",
                c["username"]
            );
        }
    }
}

/// The Kubernetes examples beside envoy.yaml, each filter configuration as its host hands it
/// to the filter: Istio's `WasmPlugin.spec.pluginConfig`, Envoy Gateway's
/// `EnvoyExtensionPolicy.spec.wasm[].config`, Higress's `WasmPlugin.spec.defaultConfig`.
fn kubernetes_configs() -> Vec<(&'static str, Value)> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for (file, api, kind, pointer) in [
        (
            "istio-wasmplugin.yaml",
            "extensions.istio.io/v1alpha1",
            "WasmPlugin",
            "/spec/pluginConfig",
        ),
        (
            "envoy-gateway.yaml",
            "gateway.envoyproxy.io/v1alpha1",
            "EnvoyExtensionPolicy",
            "/spec/wasm/0/config",
        ),
        (
            "higress-wasmplugin.yaml",
            "extensions.higress.io/v1alpha1",
            "WasmPlugin",
            "/spec/defaultConfig",
        ),
    ] {
        let text = std::fs::read_to_string(format!("{}/envoy/{file}", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
            if v["apiVersion"] == api && v["kind"] == kind {
                let cfg = v.pointer(pointer).cloned();
                out.push((file, cfg.unwrap_or_else(|| panic!("{file}: no {pointer}"))));
            }
        }
    }
    out
}

/// Each Kubernetes example's configuration loads into the .wasm (Envoy profile: callouts name
/// clusters) and serves: 401 without a credential, the web app's token allowed without a
/// callout, the reporting bot's API key allowed by the authorization service reached through
/// the cluster name that host gives it (Istio and Higress `outbound|8181||…`, Envoy Gateway the
/// patched-in `authz`), with the configured `:authority`.
#[test]
fn kubernetes_examples_load_and_serve() {
    use bouncer_harness::{CalloutReply, Host};
    use std::sync::{Arc, Mutex};
    let configs = kubernetes_configs();
    assert_eq!(configs.len(), 3, "Istio, Envoy Gateway and Higress");
    for (file, cfg) in configs {
        let authz = cfg["authz"]["upstream"].as_str().unwrap().to_owned();
        let authority = cfg["authz"]["authority"].as_str().unwrap().to_owned();
        let h = Host::new(Profile::Envoy).at_unix(NOW);
        h.add_cluster(&authz);
        for p in cfg["jwks_providers"].as_array().into_iter().flatten() {
            h.add_cluster(p["upstream"].as_str().unwrap());
        }
        let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = calls.clone();
        let authz_cluster = authz.clone();
        h.set_callout_handler(move |c| {
            let a = c.headers.get(":authority").unwrap_or_default().to_owned();
            seen.lock().unwrap().push((c.upstream.clone(), a));
            if c.upstream == authz_cluster {
                CalloutReply::json(200, r#"{"result": true}"#)
            } else {
                CalloutReply::json(200, r#"{"keys": []}"#)
            }
        });
        let mut f = filter(&h, &cfg);

        let out = run(&mut f, get("/api/v1/orders"));
        assert_eq!(out.status(), Some(401), "{file}: {out:?}");

        let web = cfg["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["username"] == "web-app")
            .unwrap();
        let secret = &web["jwt_secrets"][0];
        let token = sign_hmac(
            &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            &serde_json::json!({"iss": secret["key"], "sub": "user-17",
                                "iat": NOW - 10, "exp": NOW + 600}),
            secret["secret"].as_str().unwrap(),
        );
        let before = calls.lock().unwrap().len();
        let out = run(
            &mut f,
            get("/api/v1/orders").header("authorization", &bearer(&token)),
        );
        assert!(out.is_allowed(), "{file}: {out:?}");
        assert_eq!(
            out.request_headers.get_all("x-consumer-username"),
            vec!["web-app"],
            "{file}"
        );
        assert!(
            !calls.lock().unwrap()[before..]
                .iter()
                .any(|(u, _)| *u == authz),
            "{file}: first-party skips the authorization service"
        );

        let out = run(
            &mut f,
            get("/api/v1/reports/daily").header("apikey", "bk_live_reporting_7f3c9a1e5d2b4f60"),
        );
        assert!(out.is_allowed(), "{file}: {out:?}");
        assert_eq!(
            out.request_headers.get_all("x-consumer-username"),
            vec!["reporting-bot"],
            "{file}"
        );
        assert!(
            calls
                .lock()
                .unwrap()
                .contains(&(authz.clone(), authority.clone())),
            "{file}: no callout to {authz} with :authority {authority}: {:?}",
            calls.lock().unwrap()
        );
        assert_eq!(h.metric("bouncer_authz_calls"), Some(1), "{file}");
    }
}

/// Kong 3.9's filter-as-plugin example loads into the .wasm under Kong's profile (with the
/// shipped kong.conf's shared-memory zone) and serves: 401 without a credential, the web app
/// and the reporting bot (through the authorization service at its host:port) allowed.
#[test]
fn kong_plugin_style_example_loads_and_serves() {
    use bouncer_harness::{CalloutReply, Host};
    let doc: serde_yaml::Value = serde_yaml::from_str(&kong_file("kong-3.9-plugins.yml")).unwrap();
    let doc: Value = serde_json::to_value(doc).unwrap();
    let entry = &doc["services"][0]["plugins"][0];
    assert_eq!(entry["name"], "bouncer");
    let cfg = entry["config"].clone();
    let h = Host::kong_with_conf(&kong_file("kong.conf")).at_unix(NOW);
    h.set_callout_handler(|c| {
        assert_eq!(c.upstream, "127.0.0.1:8181");
        CalloutReply::json(200, r#"{"result": true}"#)
    });
    let mut f = filter(&h, &cfg);
    let out = run(&mut f, get("/api/v1/orders"));
    assert_eq!(out.status(), Some(401), "{out:?}");
    let token = sign_hmac(
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        &serde_json::json!({"iss": "web-app-2026", "sub": "user-17",
                            "iat": NOW - 10, "exp": NOW + 600}),
        cfg["consumers"][0]["jwt_secrets"][0]["secret"]
            .as_str()
            .unwrap(),
    );
    let out = run(
        &mut f,
        get("/api/v1/orders").header("authorization", &bearer(&token)),
    );
    assert!(out.is_allowed(), "{out:?}");
    let out = run(
        &mut f,
        get("/api/v1/reports/daily").header("apikey", "bk_live_reporting_7f3c9a1e5d2b4f60"),
    );
    assert!(out.is_allowed(), "{out:?}");
    assert_eq!(
        out.request_headers.get_all("x-consumer-username"),
        vec!["reporting-bot"]
    );
    assert_eq!(h.metric("bouncer_authz_calls"), Some(1));
}
