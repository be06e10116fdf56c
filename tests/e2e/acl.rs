//! Group ACLs, per-consumer and per-group route rules, local permissions: 403s.

use crate::support::*;
use serde_json::json;

#[test]
fn acl_allow_deny() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(
            &host,
            &with(base_config(), json!({"acl": {"allow": ["first-party"]}})),
        );
        assert!(run(
            &mut f,
            get("/").header("authorization", &bearer(&hs256(claims("web-key"))))
        )
        .is_allowed());
        let out = run(
            &mut f,
            get("/api/v1/orders").header("apikey", "partner-api-key"),
        );
        assert_message(&out, 403, "You cannot consume this service");
        assert!(out
            .local_response()
            .unwrap()
            .header("www-authenticate")
            .is_none());
        let mut f = filter(
            &host,
            &with(
                base_config(),
                json!({"acl": {"deny": ["partners"], "hide_groups_header": true}}),
            ),
        );
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&hs256(claims("web-key")))),
        );
        assert_eq!(upstream(&out, "x-consumer-groups"), None);
        assert_message(
            &run(
                &mut f,
                get("/api/v1/orders").header("apikey", "partner-api-key"),
            ),
            403,
            "You cannot consume this service",
        );
    }
}

#[test]
fn route_rules() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = with(
            base_config(),
            json!({"group_routes": {"partners": [{"methods": ["GET"], "path": "/api/v1/catalog/.*"}]}}),
        );
        let mut f = filter(&host, &cfg);
        let key = |r: bouncer_harness::Request| r.header("apikey", "partner-api-key");
        for (m, p, ok) in [
            ("GET", "/api/v1/orders", true),
            ("GET", "/api/v1/orders/42?expand=items", true),
            ("POST", "/api/v1/orders", true),
            ("GET", "/api/v1/catalog/shoes", true),
            ("DELETE", "/api/v1/orders/42", false),
            ("GET", "/api/v1/orders/42/items", false),
            ("GET", "/api/v2/orders", false),
            ("POST", "/api/v1/catalog/x", false),
        ] {
            let out = run(&mut f, key(bouncer_harness::Request::new(m, p)));
            if ok {
                assert!(out.is_allowed(), "{m} {p}");
            } else {
                assert_message(&out, 403, "You cannot consume this service");
            }
        }
        // A 1 MB path against the route regexes: linear time, a clean 403.
        let long = format!("/api/v1/orders/{}/x", "a".repeat(1 << 20));
        let out = run(&mut f, key(get(&long)));
        assert_eq!(out.status(), Some(403), "a 1 MB path is refused");
        let long_ok = format!("/api/v1/orders/{}", "a".repeat(1 << 20));
        assert!(run(&mut f, key(get(&long_ok))).is_allowed());
    }
}

#[test]
fn local_permissions() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = with(
            base_config(),
            json!({"permissions": {"view_roles": [{"methods": ["GET"], "path": "/api/v1/roles(/[^/?#]+)?"}]},
                   "authz": {"skip_groups": ["first-party"], "permissions_claim": "perms"}}),
        );
        let mut f = filter(&host, &cfg);
        let mut c = claims("partner-key");
        c["perms"] = json!(["view_roles"]);
        let t = bearer(&hs256(c));
        // The partner's own routes do not cover /api/v1/roles: routes deny first.
        assert_message(
            &run(&mut f, get("/api/v1/roles/1").header("authorization", &t)),
            403,
            "You cannot consume this service",
        );
        let mut cfg2 = cfg.clone();
        cfg2["consumers"][1]["routes"] = json!([]);
        let mut f = filter(&host, &cfg2);
        assert!(run(&mut f, get("/api/v1/roles/1").header("authorization", &t)).is_allowed());
        assert_message(
            &run(
                &mut f,
                bouncer_harness::Request::new("PUT", "/api/v1/roles/1").header("authorization", &t),
            ),
            403,
            "You cannot consume this service",
        );
        assert_message(
            &run(
                &mut f,
                get("/api/v1/roles").header("apikey", "partner-api-key"),
            ),
            403,
            "You cannot consume this service",
        );
        // First-party apps skip the permission model.
        assert!(run(
            &mut f,
            bouncer_harness::Request::new("DELETE", "/x")
                .header("authorization", &bearer(&hs256(claims("web-key"))))
        )
        .is_allowed());
    }
}
