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

/// Kong with `kong/bouncer-location.conf` (plus a line for a `claims_to_headers` header), as
/// Kong runs a filter chain: in the access phase, after the snippet's `set` lines. Every
/// client copy of a reserved header disappears for real: nginx sends the filter's value from
/// the variable, and nothing when it is empty. (Before the fix the filter also removed the
/// client's copies, which zeroes their hash in nginx: the blanked copies were then forwarded
/// besides nginx's own.)
#[test]
fn kong_location_snippet_drops_client_copies() {
    use bouncer_harness::{KongLocation, Profile};
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kong/bouncer-location.conf"
    ))
    .unwrap();
    let snippet = format!(
        "{snippet}\nset $bouncer_customer_id \"\";\nproxy_set_header X-Customer-ID $bouncer_customer_id;\n"
    );
    let cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"}]}),
    );
    let h = host(Profile::Kong).with_location(KongLocation::parse(&snippet, true));
    let mut f = filter(&h, &cfg);
    let mut c = claims("web-key");
    c["customer_id"] = json!("cust-9");
    let out = run(
        &mut f,
        get("/")
            .header("authorization", &bearer(&hs256(c)))
            .header("x-consumer-id", "spoof")
            .header("X-Consumer-Username", "spoof")
            .header("x-anonymous-consumer", "true")
            .header("x-customer-id", "spoof"),
    );
    assert!(out.is_allowed(), "{out:?}");
    let all = |name: &str| out.request_headers.get_all(name);
    assert_eq!(all("x-consumer-id"), vec!["id-web"], "{out:?}");
    assert_eq!(all("x-consumer-username"), vec!["web"], "{out:?}");
    assert_eq!(all("x-consumer-custom-id"), vec!["web-app"]);
    assert_eq!(all("x-credential-identifier"), vec!["web-key"]);
    assert_eq!(all("x-consumer-groups"), vec!["first-party"]);
    assert!(all("x-anonymous-consumer").is_empty(), "{out:?}");
    assert_eq!(all("x-customer-id"), vec!["cust-9"]);
    // The anonymous consumer: nginx sends X-Anonymous-Consumer and no credential identifier.
    let anon = with(cfg.clone(), json!({"anonymous": "guest"}));
    let mut f = filter(&h, &anon);
    let out = run(
        &mut f,
        get("/")
            .header("x-credential-identifier", "spoof")
            .header("x-consumer-id", "spoof"),
    );
    let all = |name: &str| out.request_headers.get_all(name);
    assert_eq!(all("x-anonymous-consumer"), vec!["true"]);
    assert_eq!(all("x-consumer-username"), vec!["guest"]);
    assert!(all("x-credential-identifier").is_empty(), "{out:?}");
    assert_eq!(all("x-consumer-id"), vec!["guest"]);
}

/// HOSTS.md: in plain nginx's default phase order the filter runs in the rewrite phase, before
/// the snippet's `set` lines, which then wipe what it wrote. The filter finds no variable
/// there (reading an uninitialised one is NotFound) and falls back to blanking: no client copy
/// gets through, but nginx sends no identity header either. This is why the Kong README says
/// `proxy_wasm_request_headers_in_access on` for plain nginx.
#[test]
fn kong_location_in_the_rewrite_phase_is_harmless_but_sends_nothing() {
    use bouncer_harness::{KongLocation, Profile};
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kong/bouncer-location.conf"
    ))
    .unwrap();
    let h = host(Profile::Kong).with_location(KongLocation::parse(&snippet, false));
    let mut f = filter(&h, &base_config());
    let out = run(
        &mut f,
        get("/")
            .header("authorization", &bearer(&hs256(claims("web-key"))))
            .header("x-consumer-id", "spoof"),
    );
    assert!(out.is_allowed(), "{out:?}");
    assert!(
        out.request_headers
            .get_all("x-consumer-id")
            .iter()
            .all(|v| v.is_empty()),
        "{out:?}"
    );
    assert_eq!(upstream(&out, "x-consumer-username"), None);
    assert!(
        !out.properties.iter().any(|(_, v)| !v.is_empty()),
        "{:?}",
        out.properties
    );
}

/// Without the snippet (Envoy, or Kong without the variables) no variable is written.
#[test]
fn no_snippet_no_variables() {
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&hs256(claims("web-key")))),
        );
        assert_eq!(upstream(&out, "x-consumer-id"), Some("id-web"));
        assert!(
            !out.properties.iter().any(|(k, _)| k.starts_with("ngx.")),
            "{:?}",
            out.properties
        );
    }
}
