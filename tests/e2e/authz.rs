//! The authorization callout: OPA-style request, answers, failures, the shared decision cache.

use crate::support::*;
use bouncer_harness::{CalloutReply, Host, Profile};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn upstream_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "authz",
        Profile::Kong => "127.0.0.1:8181",
    }
}

fn authz_config(profile: Profile, extra: Value) -> Value {
    let mut authz = json!({"upstream": upstream_name(profile), "authority": "authz.internal",
        "path": "/v1/data/http/authz", "timeout_ms": 300, "cache_ttl_seconds": 30,
        "skip_groups": ["first-party"], "allowed_headers": ["x-allowed-fields"]});
    for (k, v) in extra.as_object().unwrap() {
        authz[k] = v.clone();
    }
    with(base_config(), json!({ "authz": authz }))
}

/// A host whose authorization service answers `reply` and counts its calls.
fn answering(profile: Profile, reply: CalloutReply) -> (Host, Arc<AtomicUsize>) {
    let h = host(profile);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    h.set_callout_handler(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        reply.clone()
    });
    (h, calls)
}

fn partner_token() -> String {
    let mut c = claims("partner-key");
    c["permissions"] = json!(["view_orders"]);
    bearer(&hs256(c))
}

#[test]
fn the_callout_request() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::Manual);
        let mut f = filter(&h, &authz_config(profile, json!({})));
        let out = run(
            &mut f,
            get("/api/v1/orders/42?expand=1").header("authorization", &partner_token()),
        );
        assert!(out.is_pending(), "{out:?}");
        let call = f.pending_callouts().pop().unwrap();
        assert_eq!(call.upstream, upstream_name(profile));
        assert_eq!(call.method(), "POST");
        assert_eq!(call.path(), "/v1/data/http/authz");
        assert_eq!(call.authority(), "authz.internal");
        assert_eq!(call.headers.get("content-type"), Some("application/json"));
        assert_eq!(call.timeout, Duration::from_millis(300));
        let input = &call.json()["input"];
        assert_eq!(input["method"], "GET");
        assert_eq!(input["path"], "/api/v1/orders/42");
        assert_eq!(input["query"], "expand=1");
        assert_eq!(input["host"], "example.com");
        assert_eq!(input["subject"], "user-17");
        assert_eq!(input["permissions"], json!(["view_orders"]));
        assert_eq!(
            input["consumer"],
            json!({"id": "partner", "username": "partner", "groups": ["partners"], "self_signed": false})
        );
        assert_eq!(input["claims"]["iss"], "partner-key");
        let done = f
            .respond(call.token, CalloutReply::json(200, r#"{"result": true}"#))
            .unwrap();
        assert_eq!(upstream(&done, "x-consumer-username"), Some("partner"));
    }
}

#[test]
fn answers() {
    let cases: Vec<(CalloutReply, Option<&str>)> = vec![
        (CalloutReply::json(200, r#"{"result": true}"#), Some("")),
        (
            CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "name,email", "x-not-allowed": "1"}}}"#,
            ),
            Some("name,email"),
        ),
        (CalloutReply::json(200, r#"{"result": false}"#), None),
        (CalloutReply::json(200, r#"{}"#), None), // OPA's undefined
        (
            CalloutReply::json(200, r#"{"result": {"allow": false}}"#),
            None,
        ),
        (CalloutReply::json(403, r#"{"result": true}"#), None),
    ];
    for profile in PROFILES {
        for (reply, expect) in &cases {
            let (h, _) = answering(profile, reply.clone());
            let mut f = filter(&h, &authz_config(profile, json!({})));
            let out = run(
                &mut f,
                get("/api/v1/orders")
                    .header("authorization", &partner_token())
                    .header("x-allowed-fields", "*"),
            );
            match expect {
                Some(fields) => {
                    assert_eq!(
                        upstream(&out, "x-allowed-fields").unwrap_or(""),
                        *fields,
                        "{reply:?}"
                    );
                    assert_eq!(upstream(&out, "x-not-allowed"), None);
                }
                None => assert_message(&out, 403, "You cannot consume this service"),
            }
        }
    }
}

#[test]
fn failures() {
    for profile in PROFILES {
        for reply in [
            CalloutReply::json(500, "{}"),
            CalloutReply::json(503, r#"{"result": true}"#),
            CalloutReply::Timeout,
            CalloutReply::ConnectFailure,
            CalloutReply::json(200, r#"{"result": true}"#).after(Duration::from_secs(5)),
        ] {
            let (h, _) = answering(profile, reply.clone());
            let mut f = filter(&h, &authz_config(profile, json!({})));
            let out = run(
                &mut f,
                get("/api/v1/orders").header("authorization", &partner_token()),
            );
            let failed = engine_failure(&reply, Duration::from_millis(300));
            assert_authz_unavailable(&out, profile, failed, 503);
            let mut f = filter(&h, &authz_config(profile, json!({"status_on_error": 502})));
            assert_authz_unavailable(
                &run(
                    &mut f,
                    get("/api/v1/orders").header("authorization", &partner_token()),
                ),
                profile,
                failed,
                502,
            );
            let mut f = filter(
                &h,
                &authz_config(profile, json!({"failure_mode_allow": true})),
            );
            assert!(
                run(
                    &mut f,
                    get("/api/v1/orders").header("authorization", &partner_token())
                )
                .is_allowed(),
                "{reply:?}"
            );
            assert!(h.metric("bouncer_authz_errors").unwrap_or(0) >= 3);
        }
    }
}

/// CONTRACT.md section 4: only a timeout, a failed connection or a 5xx are failures; any other
/// answer that is not an allow denies, even with `failure_mode_allow`.
#[test]
fn an_answer_that_is_not_json_denies() {
    for profile in PROFILES {
        for reply in [
            CalloutReply::json(200, "not json"),
            CalloutReply::ok(200, ""),
            CalloutReply::ok(200, vec![0xff; 70 * 1024]),
            CalloutReply::json(404, "<html>"),
        ] {
            for extra in [json!({}), json!({"failure_mode_allow": true})] {
                let (h, _) = answering(profile, reply.clone());
                let mut f = filter(&h, &authz_config(profile, extra));
                let out = run(
                    &mut f,
                    get("/api/v1/orders").header("authorization", &partner_token()),
                );
                assert_message(&out, 403, "You cannot consume this service");
                assert_eq!(
                    h.metric("bouncer_authz_errors").unwrap_or(0),
                    0,
                    "{reply:?}"
                );
            }
        }
    }
}

#[test]
fn skip_groups_make_no_call() {
    for profile in PROFILES {
        let (h, calls) = answering(profile, CalloutReply::json(200, r#"{"result": false}"#));
        let mut f = filter(&h, &authz_config(profile, json!({})));
        assert!(run(
            &mut f,
            get("/anything").header("authorization", &bearer(&hs256(claims("web-key"))))
        )
        .is_allowed());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn decisions_are_cached_shared_and_expire() {
    for profile in PROFILES {
        let (h, calls) = answering(
            profile,
            CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "a"}}}"#,
            ),
        );
        let cfg = authz_config(profile, json!({"cache_ttl_seconds": 30}));
        let mut f1 = filter(&h, &cfg);
        let mut f2 = filter(&h, &cfg); // another worker
        let t = partner_token();
        let req = || get("/api/v1/orders/1").header("authorization", &t);
        assert_eq!(
            upstream(&run(&mut f1, req()), "x-allowed-fields"),
            Some("a")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            upstream(&run(&mut f1, req()), "x-allowed-fields"),
            Some("a")
        );
        assert_eq!(
            upstream(&run(&mut f2, req()), "x-allowed-fields"),
            Some("a")
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "second worker used the shared cache"
        );
        flush_metrics(&mut [&mut f1, &mut f2]);
        assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(2));
        // Another path is another decision.
        run(&mut f2, get("/api/v1/orders/2").header("authorization", &t));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Expiry.
        h.advance(Duration::from_secs(31));
        run(&mut f1, req());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Denials are cached too; errors are not.
        let (h, calls) = answering(profile, CalloutReply::json(200, r#"{"result": false}"#));
        let mut f = filter(&h, &cfg);
        for _ in 0..3 {
            assert_message(&run(&mut f, req()), 403, "You cannot consume this service");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (h, calls) = answering(profile, CalloutReply::Timeout);
        let mut f = filter(&h, &cfg);
        for _ in 0..3 {
            assert_authz_unavailable(&run(&mut f, req()), profile, true, 503);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

/// A 200 too large to read is still an answer, not a failure: it denies (CONTRACT.md
/// section 4: only a timeout, a failed connection or a 5xx give `status_on_error`).
#[test]
fn huge_answers_deny() {
    for profile in PROFILES {
        let big = format!(r#"{{"result": true, "pad": "{}"}}"#, "x".repeat(10 << 20));
        let (h, _) = answering(profile, CalloutReply::json(200, &big));
        let mut f = filter(&h, &authz_config(profile, json!({})));
        assert_message(
            &run(
                &mut f,
                get("/api/v1/orders").header("authorization", &partner_token()),
            ),
            403,
            "You cannot consume this service",
        );
    }
}

/// A host whose authorization service records every input and answers with `decide(input)`.
fn recording(
    profile: Profile,
    decide: impl Fn(&Value) -> bool + Send + Sync + 'static,
) -> (Host, Arc<std::sync::Mutex<Vec<Value>>>) {
    let h = host(profile);
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let s = Arc::clone(&seen);
    h.set_callout_handler(move |c| {
        let input = c.json()["input"].clone();
        let allow = decide(&input);
        s.lock().unwrap().push(input);
        CalloutReply::json(200, &json!({ "result": allow }).to_string())
    });
    (h, seen)
}

/// CONTRACT.md section 4: the decision cache is keyed by the configuration and the exact body,
/// so a decision about one identity is never served to another that shares its `sub`.
#[test]
fn decisions_are_keyed_by_the_exact_body() {
    for profile in PROFILES {
        let mut cfg = authz_config(profile, json!({}));
        cfg["consumers"][1]["routes"] = json!([]);
        cfg["consumers"][1]["jwt_secrets"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "partner-key-2", "algorithm": "HS256", "secret": SECRET}));
        // The service trusts only the first issuer, and no admin scope.
        let (h, seen) = recording(profile, |input| {
            input["claims"]["iss"] == "partner-key" && input["claims"]["scope"].is_null()
        });
        let mut f1 = filter(&h, &cfg);
        let mut f2 = filter(&h, &cfg); // another worker
        let calls = || seen.lock().unwrap().len();
        let trusted = bearer(&hs256(claims("partner-key")));
        let req = |t: &str| get("/api/v1/orders/1").header("authorization", t);
        assert!(run(&mut f1, req(&trusted)).is_allowed());
        assert_eq!(calls(), 1);

        // Same sub, another issuer: its own callout, and its own answer.
        let other_iss = bearer(&hs256(claims("partner-key-2")));
        assert_message(
            &run(&mut f1, req(&other_iss)),
            403,
            "You cannot consume this service",
        );
        assert_eq!(calls(), 2);
        // Same sub and issuer, another scope claim.
        let mut c = claims("partner-key");
        c["scope"] = json!("admin");
        let scoped = bearer(&hs256(c));
        assert_message(
            &run(&mut f2, req(&scoped)),
            403,
            "You cannot consume this service",
        );
        assert_eq!(calls(), 3);
        // Another host.
        assert!(run(
            &mut f1,
            req(&trusted).header(":authority", "other.example.com")
        )
        .is_allowed());
        assert_eq!(calls(), 4);
        assert_eq!(seen.lock().unwrap()[3]["host"], "other.example.com");

        // The same body shares a decision, in this worker and in another one; also when the
        // token comes in the query (the callout never sees it).
        assert!(run(&mut f1, req(&trusted)).is_allowed());
        assert!(run(&mut f2, req(&trusted)).is_allowed());
        let t = hs256(claims("partner-key"));
        assert!(run(&mut f2, get(&format!("/api/v1/orders/1?jwt={t}"))).is_allowed());
        assert_message(
            &run(&mut f2, req(&other_iss)),
            403,
            "You cannot consume this service",
        );
        assert_eq!(calls(), 4, "{:?}", seen.lock().unwrap());
        flush_metrics(&mut [&mut f1, &mut f2]);
        assert_eq!(h.metric("bouncer_authz_cache_hits"), Some(4));
    }
}

/// CONTRACT.md section 4: `input.query` never carries a credential, whether or not
/// `hide_credentials` is set; `input.host` is the `:authority`; a numeric `sub` is its text.
#[test]
fn the_callout_never_sees_a_credential() {
    for profile in PROFILES {
        for hide in [false, true] {
            let mut cfg = authz_config(profile, json!({}));
            cfg["hide_credentials"] = json!(hide);
            cfg["key_names"] = json!(["apikey", "x-api-key"]);
            cfg["consumers"][1]["routes"] = json!([]);
            let (h, seen) = recording(profile, |_| true);
            let mut f = filter(&h, &cfg);
            let mut c = claims("partner-key");
            c["sub"] = json!(12345);
            let t = hs256(c);
            for (path, query) in [
                (format!("/o?a=1&jwt={t}&b=%2F"), "a=1&b=%2F"),
                (format!("/o?jwt={t}"), ""),
                (format!("/o?%6Awt={t}&z=%7e"), "z=%7e"),
            ] {
                let out = run(&mut f, get(&path).header(":authority", "api.example.com"));
                assert!(out.is_allowed(), "{path}: {out:?}");
                let input = seen.lock().unwrap().last().unwrap().clone();
                assert_eq!(input["query"], query, "{path}");
                assert_eq!(input["host"], "api.example.com");
                assert_eq!(input["subject"], "12345");
                assert!(!input.to_string().contains(&t));
            }
            for (path, query) in [
                ("/o?apikey=partner-api-key&x=1", "x=1"),
                ("/o?x=1&%61pikey=partner-api-key", "x=1"),
                ("/o?x-api-key=partner-api-key&y=a+b&x=1", "y=a+b&x=1"),
                ("/o?api%6Bey=partner-api-key", ""),
            ] {
                let out = run(&mut f, get(path));
                assert!(out.is_allowed(), "{path}: {out:?}");
                let input = seen.lock().unwrap().last().unwrap().clone();
                assert_eq!(input["query"], query, "{path}");
                assert_eq!(input["subject"], "partner");
                assert!(!input.to_string().contains("partner-api-key"));
            }
        }
    }
}
