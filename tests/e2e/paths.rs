//! Ambiguous paths (CONTRACT.md section 2): a path an upstream may resolve to another resource
//! than the one the filter matched (dot segments, also behind a `;` parameter as Tomcat, Jetty
//! and Spring cut it; encoded separators, dots, `;`, NUL or `%25`) is never matched by a route
//! rule or a permission activity and never sent to the authorization service.

use crate::support::*;
use bouncer_harness::{CalloutReply, Profile, Request};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Each of these reaches `/api/v1/admin` (or another resource) upstream, while its text starts
/// with a prefix that the rules below allow.
const AMBIGUOUS: &[&str] = &[
    "/api/v1/orders/..;/admin",
    "/api/v1/orders/..;/..;/v1/admin",
    "/api/v1/orders/..;jsessionid=1/admin",
    "/api/v1/orders/.;x",
    "/api/v1/orders/..;",
    "/api/v1/orders/..;jsessionid=1",
    "/api/v1/orders/..",
    "/api/v1/orders/.",
    "/api/v1/orders/../admin",
    "/api/v1/orders/%2e%2E",
    "/api/v1/orders/%2E",
    "/api/v1/orders/.%2e",
    "/api/v1/orders/..%2Fadmin",
    "/api/v1/orders/..%2fadmin",
    "/api/v1/orders/a%5cb",
    "/api/v1/orders/a%5C..",
    "/api/v1/orders/x%3B",
    "/api/v1/orders/x%3b",
    "/api/v1/orders/x%00",
    "/api/v1/orders/%252e%252e",
    "/api/v1/orders/x%25",
    "/api/v1/orders\\..\\admin",
    "/api/v1/orders/x\\..",
    "/api/v1/orders/..?expand=1",
    "/api/v1/orders/..;?expand=1",
];

/// Look like tricks, but are not ambiguous: they keep matching as before.
const PLAIN: &[&str] = &[
    "/api/v1/orders/a.b",
    "/api/v1/orders/...",
    "/api/v1/orders/.well-known",
    "/api/v1/orders/c..d",
    "/api/v1/orders/x;y",
    "/api/v1/orders/x?next=/../admin&y=%2e%2e%2F%00%25",
];

#[track_caller]
fn forbidden(out: &bouncer_harness::Outcome, path: &str) {
    let r = out
        .local_response()
        .unwrap_or_else(|| panic!("{path}: expected a 403, got {out:?}"));
    assert_eq!(r.status, 403, "{path}: {out:?}");
    assert_message(out, 403, "You cannot consume this service");
}

fn partner_with_permissions(perms: &[&str]) -> String {
    let mut c = claims("partner-key");
    c["permissions"] = json!(perms);
    bearer(&hs256(c))
}

fn web() -> String {
    bearer(&hs256(claims("web-key")))
}

#[test]
fn ambiguous_paths_never_match_a_route_rule() {
    // The partner's own routes, and a consumer kept to routes by its group only.
    let mut cfg = with(
        base_config(),
        json!({"group_routes": {"auditors": [{"methods": ["GET"], "path": "/api/v1/orders(/.*)?"}]}}),
    );
    cfg["consumers"][3]["groups"] = json!(["auditors"]);
    cfg["consumers"][3]["keyauth_credentials"] =
        json!([{"id": "guest-key-1", "key_sha256": hex_sha256("guest-api-key")}]);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        for key in ["partner-api-key", "guest-api-key"] {
            for path in AMBIGUOUS {
                forbidden(&run(&mut f, get(path).header("apikey", key)), path);
            }
            for path in &PLAIN[..1] {
                assert!(
                    run(&mut f, get(path).header("apikey", key)).is_allowed(),
                    "{key} {path}"
                );
            }
        }
        for path in PLAIN {
            assert!(
                run(&mut f, get(path).header("apikey", "guest-api-key")).is_allowed(),
                "{path}"
            );
        }
        // A consumer without route rules needs no path decision: unaffected, the path as sent.
        for path in AMBIGUOUS {
            let out = run(&mut f, get(path).header("authorization", &web()));
            assert!(out.is_allowed(), "{profile:?} {path}: {out:?}");
            assert_eq!(out.request_headers.get(":path"), Some(*path));
        }
    }
}

#[test]
fn ambiguous_paths_never_match_a_permission_activity() {
    let mut cfg = with(
        base_config(),
        json!({"permissions": {"view_orders": [{"methods": ["GET"], "path": "/api/v1/orders(/.*)?"}],
                               "everything": [{"methods": ["*"], "path": ".*"}]},
               "authz": {"skip_groups": ["first-party"]}}),
    );
    cfg["consumers"][1]["routes"] = json!([]);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        for perms in [&["view_orders"][..], &["everything"]] {
            let t = partner_with_permissions(perms);
            for path in AMBIGUOUS {
                forbidden(&run(&mut f, get(path).header("authorization", &t)), path);
            }
            for path in PLAIN {
                assert!(
                    run(&mut f, get(path).header("authorization", &t)).is_allowed(),
                    "{perms:?} {path}"
                );
            }
        }
        // A skip group needs no permission: unaffected.
        for path in AMBIGUOUS {
            assert!(
                run(&mut f, get(path).header("authorization", &web())).is_allowed(),
                "{path}"
            );
        }
    }
}

fn authz_upstream(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "authz",
        Profile::Kong => "127.0.0.1:8181",
    }
}

#[test]
fn ambiguous_paths_are_never_sent_to_the_authorization_service() {
    for profile in PROFILES {
        let mut cfg = with(
            base_config(),
            json!({"authz": {"upstream": authz_upstream(profile), "path": "/v1/data/authz",
                             "skip_groups": ["first-party"]}}),
        );
        cfg["consumers"][1]["routes"] = json!([]);
        let h = host(profile);
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let s = Arc::clone(&seen);
        // An authorization service that allows everything it is asked.
        h.set_callout_handler(move |c| {
            s.lock().unwrap().push(c.json());
            CalloutReply::json(200, r#"{"result": true}"#)
        });
        let mut f = filter(&h, &cfg);
        let t = partner_with_permissions(&[]);
        for path in PLAIN {
            assert!(
                run(&mut f, get(path).header("authorization", &t)).is_allowed(),
                "{path}"
            );
        }
        let asked = seen.lock().unwrap().len();
        assert_eq!(asked, PLAIN.len());
        for path in AMBIGUOUS {
            for req in [
                get(path).header("authorization", &t),
                get(path).header("apikey", "partner-api-key"),
                Request::new("POST", path).header("authorization", &t),
            ] {
                forbidden(&run(&mut f, req), path);
            }
        }
        assert_eq!(
            seen.lock().unwrap().len(),
            asked,
            "{profile:?}: the callout was dispatched for an ambiguous path: {:?}",
            &seen.lock().unwrap()[asked..]
        );
        assert_eq!(h.metric("bouncer_authz_calls"), Some(asked as u64));
        // The anonymous consumer is asked about too, so it is refused too.
        let mut f = filter(&h, &with(cfg.clone(), json!({"anonymous": "guest"})));
        forbidden(&run(&mut f, get(AMBIGUOUS[0])), AMBIGUOUS[0]);
        assert_eq!(seen.lock().unwrap().len(), asked);
        // A skip group makes no callout: unaffected.
        for path in AMBIGUOUS {
            assert!(
                run(&mut f, get(path).header("authorization", &web())).is_allowed(),
                "{path}"
            );
        }
        assert_eq!(seen.lock().unwrap().len(), asked);
    }
}
