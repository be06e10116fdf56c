//! What the upstream receives: identity headers, claims as headers, the payload, and never a
//! client's copy of a reserved header (Kong: blanked in place; duplicates rejected).

use crate::support::*;
use serde_json::json;

#[test]
fn identity_and_claim_headers() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = with(
            base_config(),
            json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"},
                                         {"claim": "roles", "header": "x-roles"},
                                         {"claim": "evil", "header": "x-evil"}],
                   "forward_payload_header": "x-jwt-payload"}),
        );
        let mut f = filter(&host, &cfg);
        let mut c = claims("web-key");
        c["customer_id"] = json!("cust-9");
        c["roles"] = json!(["admin", 7]);
        c["evil"] = json!("x\r\nx-consumer-id: admin");
        let t = hs256(c);
        let out = run(
            &mut f,
            get("/")
                .header("authorization", &bearer(&t))
                .header("x-consumer-id", "spoofed")
                .header("x-anonymous-consumer", "true")
                .header("x-evil", "spoofed"),
        );
        assert_eq!(upstream(&out, "x-consumer-id"), Some("id-web"));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        assert_eq!(upstream(&out, "x-consumer-custom-id"), Some("web-app"));
        assert_eq!(upstream(&out, "x-credential-identifier"), Some("web-key"));
        assert_eq!(upstream(&out, "x-consumer-groups"), Some("first-party"));
        assert_eq!(upstream(&out, "x-anonymous-consumer"), None);
        assert_eq!(upstream(&out, "x-customer-id"), Some("cust-9"));
        assert_eq!(upstream(&out, "x-roles"), Some("admin,7"));
        assert_eq!(upstream(&out, "x-evil"), None);
        assert_eq!(upstream(&out, "x-jwt-payload"), t.split('.').nth(1));
        assert!(out
            .request_headers
            .get_all("x-consumer-id")
            .iter()
            .all(|v| *v == "id-web"));
    }
}

#[test]
fn reserved_headers_are_cleared_even_unauthenticated_paths() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(
            &host,
            &with(base_config(), json!({"run_on_preflight": false})),
        );
        let pre = bouncer_harness::Request::new("OPTIONS", "/")
            .header("origin", "https://a")
            .header("access-control-request-method", "GET")
            .header("x-consumer-username", "admin");
        let out = run(&mut f, pre);
        assert_eq!(upstream(&out, "x-consumer-username"), None);
        let out = run(
            &mut f,
            get("/")
                .header("x-consumer-groups", "")
                .header("x-consumer-groups", "admins"),
        );
        assert_message(&out, 400, "Duplicate header 'x-consumer-groups'");
    }
}

#[test]
fn non_utf8_and_control_bytes_in_headers_do_not_trap() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(&host, &base_config());
        let out = run(
            &mut f,
            get("/")
                .header("authorization", "Bearer \u{7f}\u{1}ab.c\u{fffd}.d")
                .header("x-odd", "\u{0}\u{fffd}"),
        );
        assert_message(&out, 401, "Bad token; invalid JSON");
    }
}

#[test]
fn kong_nginx_variables_mirror_reserved_headers() {
    use bouncer_harness::Profile;
    let h = host(Profile::Kong);
    // kong/bouncer-location.conf declares the variables (empty by default).
    for var in [
        "consumer_id",
        "consumer_username",
        "consumer_custom_id",
        "credential_identifier",
        "consumer_groups",
        "anonymous_consumer",
        "customer_id",
    ] {
        h.set_property(&["ngx", &format!("bouncer_{var}")], b"");
    }
    let cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"}]}),
    );
    let mut f = filter(&h, &cfg);
    let out = run(
        &mut f,
        get("/")
            .header("authorization", &bearer(&hs256(claims("web-key"))))
            .header("x-customer-id", "spoof"),
    );
    let prop = |name: &str| {
        out.properties
            .iter()
            .rev()
            .find(|(k, _)| k == &format!("ngx.{name}"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(prop("bouncer_consumer_id").as_deref(), Some("id-web"));
    assert_eq!(prop("bouncer_consumer_username").as_deref(), Some("web"));
    assert_eq!(
        prop("bouncer_consumer_groups").as_deref(),
        Some("first-party")
    );
    assert_eq!(prop("bouncer_anonymous_consumer").as_deref(), Some(""));
    assert_eq!(
        prop("bouncer_customer_id").as_deref(),
        Some(""),
        "a spoofed claim header is emptied"
    );
    // Without the snippet (Envoy, or Kong without the variables) nothing is written.
    let h = host(Profile::Envoy);
    let mut f = filter(&h, &cfg);
    let out = run(
        &mut f,
        get("/").header("authorization", &bearer(&hs256(claims("web-key")))),
    );
    assert!(
        !out.properties.iter().any(|(k, _)| k.starts_with("ngx.")),
        "{:?}",
        out.properties
    );
}
