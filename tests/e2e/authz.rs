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
        assert_eq!(input["subject"], "user-17");
        assert_eq!(input["permissions"], json!(["view_orders"]));
        assert_eq!(
            input["consumer"],
            json!({"id": "partner", "username": "partner", "groups": ["partners"]})
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
