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
        // The same token again, from the token cache: the payload is still forwarded (a
        // verified token keeps it only where `forward_payload_header` is set).
        let again = run(&mut f, get("/").header("authorization", &bearer(&t)));
        assert_eq!(upstream(&again, "x-jwt-payload"), t.split('.').nth(1));
        assert_eq!(upstream(&again, "x-customer-id"), Some("cust-9"));
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

/// Every spelling of `name` with `_` for some of its `-` (the name itself excluded).
fn underscore_spellings(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('-').collect();
    let gaps = parts.len() - 1;
    (1..(1u32 << gaps))
        .map(|mask| {
            let mut s = parts[0].to_owned();
            for (i, p) in parts[1..].iter().enumerate() {
                s.push(if mask & (1 << i) != 0 { '_' } else { '-' });
                s.push_str(p);
            }
            s
        })
        .collect()
}

const IDENTITY: [&str; 6] = [
    "X-Consumer-ID",
    "X-Consumer-Username",
    "X-Consumer-Custom-ID",
    "X-Credential-Identifier",
    "X-Consumer-Groups",
    "X-Anonymous-Consumer",
];
const METHOD_OVERRIDE: [&str; 3] = [
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
];

/// Issue 12 (CONTRACT.md section 3): `X_Consumer_ID` is `X-Consumer-ID` to CGI, WSGI and Rack
/// upstreams. No underscore spelling of a reserved header reaches the upstream with a value, in
/// either host, on an allowed request, for the anonymous consumer and on the preflight bypass.
#[test]
fn underscore_spellings_of_reserved_headers_never_reach_the_upstream() {
    let cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"}],
               "forward_payload_header": "x-jwt-payload", "run_on_preflight": false}),
    );
    let mut names: Vec<String> = IDENTITY
        .iter()
        .chain(["X-Customer-ID", "X-JWT-Payload"].iter())
        .flat_map(|n| underscore_spellings(n))
        .collect();
    names.extend(names.clone().iter().map(|n| n.to_ascii_lowercase()));
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        let anon_cfg = with(cfg.clone(), json!({"anonymous": "guest"}));
        let mut anon = filter(&h, &anon_cfg);
        let token = bearer(&hs256(claims("web-key")));
        for name in &names {
            let requests = [
                (
                    "token",
                    get("/")
                        .header("authorization", &token)
                        .header(name, "admin"),
                ),
                ("preflight", {
                    bouncer_harness::Request::new("OPTIONS", "/")
                        .header("origin", "https://a")
                        .header("access-control-request-method", "GET")
                        .header(name, "admin")
                }),
            ];
            for (what, req) in requests {
                let out = run(&mut f, req);
                assert!(out.is_allowed(), "{profile:?} {what} {name}: {out:?}");
                assert!(
                    out.request_headers
                        .get_all(name)
                        .iter()
                        .all(|v| v.is_empty()),
                    "{profile:?} {what} {name}: {out:?}"
                );
            }
            let out = run(&mut anon, get("/").header(name, "admin"));
            assert!(
                out.request_headers
                    .get_all(name)
                    .iter()
                    .all(|v| v.is_empty()),
                "{profile:?} anonymous {name}: {out:?}"
            );
            // Without a credential the answer is the usual 401, not a 400.
            let out = run(&mut f, get("/").header(name, "admin"));
            assert_message(&out, 401, "Unauthorized");
        }
        // The filter's own values are unaffected.
        let out = run(
            &mut f,
            get("/")
                .header("authorization", &token)
                .header("X_Consumer_ID", "admin")
                .header("x_consumer_username", "admin"),
        );
        assert_eq!(upstream(&out, "x-consumer-id"), Some("id-web"));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        assert_eq!(upstream(&out, "x_consumer_id"), None);
    }
}

/// A reserved header in two spellings is a duplicate: 400 with the reserved name, lowercase
/// with `-`, of the first repeated one in request order.
#[test]
fn mixed_spelling_duplicates_are_rejected() {
    let cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"}]}),
    );
    let token = bearer(&hs256(claims("web-key")));
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        for name in IDENTITY
            .iter()
            .chain(METHOD_OVERRIDE.iter())
            .chain(["X-Customer-ID"].iter())
        {
            let want = format!("Duplicate header '{}'", name.to_ascii_lowercase());
            for other in underscore_spellings(name) {
                for (a, b) in [
                    (name.to_string(), other.clone()),
                    (other.clone(), name.to_string()),
                ] {
                    for (va, vb) in [("x", "y"), ("", ""), ("", "admin")] {
                        let out = run(
                            &mut f,
                            get("/")
                                .header("authorization", &token)
                                .header(&a, va)
                                .header(&b, vb),
                        );
                        assert_message(&out, 400, &want);
                    }
                }
            }
        }
        // The first repeated one in request order names the answer.
        let out = run(
            &mut f,
            get("/")
                .header("x_consumer_groups", "a")
                .header("X_HTTP_Method", "DELETE")
                .header("x-http-method", "DELETE")
                .header("X-Consumer-Groups", "b"),
        );
        assert_message(&out, 400, "Duplicate header 'x-consumer-groups'");
    }
}

/// Issue 12: the method-override headers are reserved. An upstream framework that honours them
/// would run another method than the one the route rules checked (a partner allowed only GET
/// on orders could DELETE them).
#[test]
fn method_override_headers_never_reach_the_upstream() {
    let cfg = with(base_config(), json!({"run_on_preflight": false}));
    let partner = bearer(&hs256(claims("partner-key")));
    let mut names: Vec<String> = Vec::new();
    for n in METHOD_OVERRIDE {
        names.push(n.to_owned());
        names.push(n.to_ascii_lowercase());
        names.extend(underscore_spellings(n));
    }
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        for name in &names {
            for value in ["DELETE", "PUT", ""] {
                let out = run(
                    &mut f,
                    get("/api/v1/orders/7")
                        .header("authorization", &partner)
                        .header(name, value),
                );
                assert!(out.is_allowed(), "{profile:?} {name}: {out:?}");
                assert!(
                    out.request_headers
                        .get_all(name)
                        .iter()
                        .all(|v| v.is_empty()),
                    "{profile:?} {name}: {out:?}"
                );
                let pre = bouncer_harness::Request::new("OPTIONS", "/api/v1/orders/7")
                    .header("origin", "https://a")
                    .header("access-control-request-method", "GET")
                    .header(name, value);
                let out = run(&mut f, pre);
                assert!(out.is_allowed(), "{profile:?} preflight {name}: {out:?}");
                assert!(
                    out.request_headers
                        .get_all(name)
                        .iter()
                        .all(|v| v.is_empty()),
                    "{profile:?} preflight {name}: {out:?}"
                );
            }
        }
        // Envoy removes them outright.
        if profile == bouncer_harness::Profile::Envoy {
            let out = run(
                &mut f,
                get("/api/v1/orders/7")
                    .header("authorization", &partner)
                    .header("x-http-method-override", "DELETE")
                    .header("x_method_override", "DELETE"),
            );
            assert!(out
                .request_headers
                .get_all("x-http-method-override")
                .is_empty());
            assert!(out.request_headers.get_all("x_method_override").is_empty());
        }
    }
}

/// Kong with `kong/bouncer-location.conf`: nginx drops the method-override headers and every
/// underscore spelling of the identity headers entirely (`proxy_set_header <name> "";`),
/// where the filter alone could only blank them. The snippet lists every spelling.
#[test]
fn kong_location_snippet_drops_method_override_and_underscore_spellings() {
    use bouncer_harness::{KongLocation, Profile};
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kong/bouncer-location.conf"
    ))
    .unwrap();
    let loc = KongLocation::parse(&snippet, true);
    let mut dropped: Vec<String> = Vec::new();
    for n in METHOD_OVERRIDE {
        dropped.push(n.to_owned());
        dropped.extend(underscore_spellings(n));
    }
    for n in IDENTITY {
        dropped.extend(underscore_spellings(n));
    }
    for name in &dropped {
        assert!(
            loc.proxy_set_constants
                .iter()
                .any(|(h, v)| h.eq_ignore_ascii_case(name) && v.is_empty()),
            "bouncer-location.conf lacks proxy_set_header {name} \"\";"
        );
    }
    assert_eq!(loc.proxy_set_constants.len(), dropped.len());
    let h = host(Profile::Kong).with_location(loc);
    let mut f = filter(&h, &base_config());
    let token = bearer(&hs256(claims("web-key")));
    for name in &dropped {
        let out = run(
            &mut f,
            get("/")
                .header("authorization", &token)
                .header(&name.to_ascii_lowercase(), "admin"),
        );
        assert!(out.is_allowed(), "{out:?}");
        assert!(
            out.request_headers.get_all(name).is_empty(),
            "{name}: {out:?}"
        );
        assert_eq!(upstream(&out, "x-consumer-id"), Some("id-web"));
    }
    // Identity headers: nginx still sends only the filter's values.
    let out = run(
        &mut f,
        get("/")
            .header("authorization", &token)
            .header("X_Consumer_ID", "admin")
            .header("x-http-method-override", "DELETE"),
    );
    assert_eq!(out.request_headers.get_all("x-consumer-id"), vec!["id-web"]);
    assert!(
        out.request_headers.get_all("x_consumer_id").is_empty(),
        "{out:?}"
    );
    assert!(out
        .request_headers
        .get_all("x-http-method-override")
        .is_empty());
}

/// A token verified by another worker (read from shared data, which names the credential by
/// its index in the configuration) gives the upstream the same identity headers, for a
/// credential that is not the configuration's first.
#[test]
fn a_token_verified_by_another_worker_names_the_same_credential() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = json!({"consumers": [
            {"username": "web", "jwt_secrets": [
                {"key": "a-web", "algorithm": "HS256", "secret": SECRET}]},
            {"username": "mobile", "custom_id": "app", "jwt_secrets": [
                {"key": "a-mobile", "algorithm": "HS256", "secret": SECRET},
                {"key": "bouncer-vectors", "algorithm": "RS256",
                 "rsa_public_key": read_vector_file("keys/rsa2048_public.pem")}]}]});
        let rs = || get("/").header("authorization", &bearer(&vector("valid_RS256")));
        let mut a = filter(&h, &cfg);
        let first = run(&mut a, rs());
        // The entry written for the other workers: digest, consumer, provider, flags, the
        // credential's index (u32 LE).
        let (key, entry) = (0..16384)
            .map(|n| format!("bouncer/tok/{n}"))
            .find_map(|k| h.shared_data(&k).map(|(v, _)| (k, v)))
            .expect("an entry for the other workers");
        assert_eq!(entry.len(), 45, "{profile:?}: {entry:?}");
        assert_eq!(entry[40], 2, "{profile:?}: named by its index");
        let check = |out: &bouncer_harness::Outcome| {
            assert_eq!(upstream(out, "x-consumer-username"), Some("mobile"));
            assert_eq!(upstream(out, "x-consumer-custom-id"), Some("app"));
            assert_eq!(
                upstream(out, "x-credential-identifier"),
                Some("bouncer-vectors")
            );
        };
        check(&first);
        let mut b = filter(&h, &cfg);
        bouncer_harness::count_host_calls(true);
        let other = run(&mut b, rs());
        let calls = bouncer_harness::take_host_calls();
        bouncer_harness::count_host_calls(false);
        assert_eq!(
            calls.get("proxy_set_shared_data"),
            None,
            "{profile:?}: read, not verified"
        );
        check(&other);
        // An index that names another consumer's credential (1: `a-web`, the keys in order)
        // is not trusted: the token is verified again.
        let mut forged = entry.clone();
        forged[41..45].copy_from_slice(&1u32.to_le_bytes());
        h.set_shared_data(&key, &forged);
        let mut c = filter(&h, &cfg);
        check(&run(&mut c, rs()));
    }
}
