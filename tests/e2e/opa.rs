//! OPA-compatible authorization (CONTRACT.md section 4, `authz.input_format`): the release
//! .wasm against the reference authorization service evaluating real Rego (regorus, OPA's data
//! API) with the policies of `examples/policies/`, in both input formats, an OPA-Envoy-style
//! policy unchanged but for where it reads the claims, and the decision cache in front of it.

use crate::support::*;
use bouncer_examples::authz::Service;
use bouncer_harness::{CalloutReply, Host, Profile, Request};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn policy_file(name: &str) -> String {
    format!("{}/examples/policies/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What the service saw: one callout body per call.
type Seen = Arc<Mutex<Vec<Value>>>;

/// A host whose authorization service is the Rego service with these policy files: every
/// callout is answered by evaluating its body (`POST <path>` with `{"input": ...}`).
fn rego_host(profile: Profile, policies: &[&str], data: Option<&str>) -> (Host, Seen) {
    let files: Vec<String> = policies.iter().map(|p| policy_file(p)).collect();
    let data = data.map(policy_file);
    let service = Mutex::new(Service::from_files(&files, data.as_deref()).unwrap());
    let h = host(profile);
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    h.set_callout_handler(move |call| {
        s.lock().unwrap().push(call.json());
        let a = service
            .lock()
            .unwrap()
            .answer(call.method(), call.path(), &call.body);
        CalloutReply::json(a.status, &a.body.to_string())
    });
    (h, seen)
}

fn upstream_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "authz",
        Profile::Kong => "127.0.0.1:8181",
    }
}

fn config(profile: Profile, path: &str, format: &str, allowed: &[&str]) -> Value {
    with(
        base_config(),
        json!({
            "cookie_names": ["jwt-token"],
            "authz": {"upstream": upstream_name(profile), "path": path, "input_format": format,
                      "timeout_ms": 300, "cache_ttl_seconds": 30, "allowed_headers": allowed}}),
    )
}

fn token(key: &str, extra: Value) -> String {
    let mut c = claims(key);
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    hs256(c)
}

fn calls(seen: &Seen) -> usize {
    seen.lock().unwrap().len()
}

fn last_input(seen: &Seen) -> Value {
    seen.lock().unwrap().last().unwrap()["input"].clone()
}

/// `make run`'s policy (roles -> permissions -> activities, the roles as OPA data) decides the
/// same in both input formats, and its authorized fields reach the upstream.
#[test]
fn the_rbac_policy_in_both_input_formats() {
    for profile in PROFILES {
        for format in ["bouncer", "opa-envoy"] {
            let (h, seen) = rego_host(profile, &["rbac.rego"], Some("rbac-data.json"));
            let cfg = config(
                profile,
                "/v1/data/bouncer/rbac/result",
                format,
                &["x-allowed-fields"],
            );
            let mut f = filter(&h, &cfg);
            let reader = bearer(&token("partner-key", json!({"sub": "partner-user-1"})));
            let out = run(
                &mut f,
                get("/api/v1/orders/42?page=2").header("authorization", &reader),
            );
            assert_eq!(
                upstream(&out, "x-allowed-fields"),
                Some("id,status,total"),
                "{format}"
            );
            let input = last_input(&seen);
            match format {
                "bouncer" => {
                    assert_eq!(input["subject"], "partner-user-1");
                    assert_eq!(input["path"], "/api/v1/orders/42");
                    assert_eq!(input["query"], "page=2");
                }
                _ => {
                    let http = &input["attributes"]["request"]["http"];
                    assert_eq!(http["method"], "GET");
                    assert_eq!(http["path"], "/api/v1/orders/42?page=2");
                    assert_eq!(http["host"], "example.com");
                    assert_eq!(input["parsed_path"], json!(["api", "v1", "orders", "42"]));
                    assert_eq!(input["parsed_query"], json!({"page": ["2"]}));
                    assert_eq!(input["bouncer"]["subject"], "partner-user-1");
                    assert_eq!(input["bouncer"]["consumer"]["username"], "partner");
                }
            }
            // The route rules let the partner POST /api/v1/orders; the policy does not.
            let out = run(
                &mut f,
                Request::new("POST", "/api/v1/orders").header("authorization", &reader),
            );
            assert_message(&out, 403, "You cannot consume this service");
            // A subject without a role: denied.
            let other = bearer(&token("partner-key", json!({"sub": "nobody"})));
            let out = run(
                &mut f,
                get("/api/v1/orders").header("authorization", &other),
            );
            assert_message(&out, 403, "You cannot consume this service");
            // The token's own permissions claim grants, without fields.
            let perms = bearer(&token(
                "partner-key",
                json!({"sub": "nobody", "permissions": ["view_orders"]}),
            ));
            let out = run(
                &mut f,
                get("/api/v1/orders").header("authorization", &perms),
            );
            assert_eq!(upstream(&out, "x-allowed-fields"), Some("id,status,total"));
            assert_eq!(calls(&seen), 4);
        }
    }
}

fn web_token(role: Option<&str>) -> String {
    let extra = match role {
        Some(r) => json!({ "role": r }),
        None => json!({}),
    };
    token("web-key", extra)
}

/// A policy written for OPA-Envoy (method + path + a JWT claim, `allowed`/`headers`/
/// `http_status`/`body`), unchanged but for reading the verified claims from `input.bouncer`.
#[test]
fn an_opa_envoy_policy() {
    for profile in PROFILES {
        let (h, seen) = rego_host(profile, &["opa-envoy-example.rego"], None);
        let cfg = config(
            profile,
            "/v1/data/envoy/authz/result",
            "opa-envoy",
            &["x-ext-auth-allow"],
        );
        let mut f = filter(&h, &cfg);
        let guest = web_token(Some("guest"));
        let admin = web_token(Some("admin"));
        let out = run(
            &mut f,
            get("/people/7")
                .header("cookie", &format!("theme=dark; jwt-token={guest}"))
                .header("user-agent", "curl/8")
                .header("x-consumer-id", "forged"),
        );
        assert_eq!(upstream(&out, "x-ext-auth-allow"), Some("yes"));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        // What the policy saw: the request without its credentials or reserved headers.
        let input = last_input(&seen);
        let text = input.to_string();
        assert!(!text.contains(&guest), "{text}");
        let headers = &input["attributes"]["request"]["http"]["headers"];
        assert_eq!(headers["cookie"], "theme=dark");
        assert_eq!(headers["user-agent"], "curl/8");
        assert_eq!(headers[":path"], "/people/7");
        assert!(headers.get("x-consumer-id").is_none(), "{headers}");
        assert_eq!(input["parsed_path"], json!(["people", "7"]));
        assert_eq!(input["bouncer"]["claims"]["role"], "guest");

        let post = |t: &str| Request::new("POST", "/people").header("authorization", &bearer(t));
        assert_eq!(
            upstream(&run(&mut f, post(&admin)), "x-ext-auth-allow"),
            Some("yes")
        );
        // The policy's own denials: its http_status and body.
        assert_message(&run(&mut f, post(&guest)), 403, "Unauthorized Request");
        let out = run(
            &mut f,
            get("/people/7").header("authorization", &bearer(&web_token(None))),
        );
        assert_message(&out, 401, "Authentication Failed");
        let r = out.local_response().unwrap();
        assert_eq!(r.header("www-authenticate"), None);
    }
}

/// The decision cache in front of the policy: an identical request asks no one; a request id
/// is left out of the body (no new decision); another user agent is another input.
#[test]
fn the_decision_cache_in_front_of_rego() {
    for profile in PROFILES {
        let (h, seen) = rego_host(profile, &["opa-envoy-example.rego"], None);
        let cfg = config(
            profile,
            "/v1/data/envoy/authz/result",
            "opa-envoy",
            &["x-ext-auth-allow"],
        );
        let mut f1 = filter(&h, &cfg);
        let mut f2 = filter(&h, &cfg); // another worker
        let guest = bearer(&web_token(Some("guest")));
        let req = |id: &str, ua: &str| {
            get("/people/7")
                .header("authorization", &guest)
                .header("x-request-id", id)
                .header("user-agent", ua)
        };
        assert_eq!(
            upstream(&run(&mut f1, req("1", "curl/8")), "x-ext-auth-allow"),
            Some("yes")
        );
        assert_eq!(calls(&seen), 1);
        assert_eq!(
            upstream(&run(&mut f2, req("2", "curl/8")), "x-ext-auth-allow"),
            Some("yes")
        );
        assert_eq!(
            calls(&seen),
            1,
            "the second request was answered by the cache"
        );
        flush_metrics(&mut [&mut f1, &mut f2]);
        assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(1));
        run(&mut f1, req("3", "httpie/3"));
        assert_eq!(calls(&seen), 2, "another user agent is another input");
        // A policy's denial is cached with its status and body.
        let nobody = bearer(&web_token(None));
        for _ in 0..3 {
            let out = run(&mut f2, get("/people/7").header("authorization", &nobody));
            assert_message(&out, 401, "Authentication Failed");
        }
        assert_eq!(calls(&seen), 3);
        flush_metrics(&mut [&mut f1, &mut f2]);
        assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(3));
        // The bouncer format of the same request is another body, hence another decision.
        let cfg_b = config(
            profile,
            "/v1/data/bouncer/rbac/result",
            "bouncer",
            &["x-allowed-fields"],
        );
        let (hb, seen_b) = rego_host(profile, &["rbac.rego"], Some("rbac-data.json"));
        let mut fb = filter(&hb, &cfg_b);
        let reader = bearer(&token("partner-key", json!({"sub": "partner-user-1"})));
        for _ in 0..2 {
            let out = run(
                &mut fb,
                get("/api/v1/orders").header("authorization", &reader),
            );
            assert_eq!(upstream(&out, "x-allowed-fields"), Some("id,status,total"));
        }
        assert_eq!(calls(&seen_b), 1);
    }
}

/// A decision path the policy does not define: OPA's undefined (`{}`) denies.
#[test]
fn undefined_denies() {
    for profile in PROFILES {
        let (h, seen) = rego_host(profile, &["opa-envoy-example.rego"], None);
        let cfg = config(profile, "/v1/data/envoy/authz/nothing", "opa-envoy", &[]);
        let mut f = filter(&h, &cfg);
        let out = run(
            &mut f,
            get("/people/7").header("authorization", &bearer(&web_token(Some("admin")))),
        );
        assert_message(&out, 403, "You cannot consume this service");
        assert_eq!(calls(&seen), 1);
        assert_eq!(h.metric("bouncer_authz_calls"), Some(1));
    }
}
