//! Self-signed consumers (CONTRACT.md section 1): a third party that holds its own signing
//! secret proves who it is and nothing more. Its permissions claim grants nothing, its claims
//! are not copied to headers, and the authorization service sees the consumer's `id` as the
//! subject, no permissions, its claims as they are and `consumer.self_signed: true`.

use crate::support::*;
use bouncer_harness::{CalloutReply, Profile};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn upstream_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "authz",
        Profile::Kong => "127.0.0.1:8181",
    }
}

/// The partner signs its own tokens; it is free of route rules here so that only the
/// permission model and the callout decide.
fn config(extra: Value) -> Value {
    let mut cfg = with(
        base_config(),
        json!({"claims_to_headers": [{"claim": "sub", "header": "x-user-id"},
                                      {"claim": "permissions", "header": "x-permissions"}],
               "forward_payload_header": "x-jwt-payload"}),
    );
    cfg["consumers"][1]["id"] = json!("8d1f2c1e-0000-4000-8000-000000000001");
    cfg["consumers"][1]["routes"] = json!([]);
    cfg["consumers"][1]["self_signed"] = json!(true);
    with(cfg, extra)
}

/// What a partner that signs its own tokens may claim.
fn forged_admin(key: &str) -> (String, Value) {
    let mut c = claims(key);
    c["sub"] = json!("admin");
    c["permissions"] = json!(["admin"]);
    (hs256(c.clone()), c)
}

#[test]
fn a_self_signed_permissions_claim_grants_nothing() {
    let cfg = config(json!({
        "permissions": {"admin": [{"methods": ["*"], "path": ".*"}]},
        "authz": {"skip_groups": ["nobody"]}}));
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        let (partner, _) = forged_admin("partner-key");
        for path in ["/admin", "/api/v1/orders"] {
            assert_message(
                &run(&mut f, get(path).header("authorization", &bearer(&partner))),
                403,
                "You cannot consume this service",
            );
        }
        // The same claim from the platform's own app grants.
        let (web, _) = forged_admin("web-key");
        assert!(run(&mut f, get("/admin").header("authorization", &bearer(&web))).is_allowed());
    }
}

#[test]
fn self_signed_claims_are_not_copied_but_the_payload_is_forwarded() {
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &config(json!({})));
        let (partner, _) = forged_admin("partner-key");
        let out = run(
            &mut f,
            get("/api/v1/orders")
                .header("authorization", &bearer(&partner))
                .header("x-user-id", "admin"),
        );
        assert_eq!(upstream(&out, "x-user-id"), None, "{profile:?}");
        assert_eq!(upstream(&out, "x-permissions"), None);
        assert_eq!(upstream(&out, "x-jwt-payload"), partner.split('.').nth(1));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("partner"));
        let (web, _) = forged_admin("web-key");
        let out = run(&mut f, get("/").header("authorization", &bearer(&web)));
        assert_eq!(upstream(&out, "x-user-id"), Some("admin"));
        assert_eq!(upstream(&out, "x-permissions"), Some("admin"));
    }
}

#[test]
fn the_callout_sees_the_consumer_not_the_claims() {
    for profile in PROFILES {
        let cfg = config(json!({"authz": {"upstream": upstream_name(profile),
            "path": "/v1/data/authz", "skip_groups": []}}));
        let h = host(profile);
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let s = Arc::clone(&seen);
        // A service that grants whatever a subject called admin asks.
        h.set_callout_handler(move |c| {
            let input = c.json()["input"].clone();
            let allow = input["subject"] == "admin" || input["permissions"] == json!(["admin"]);
            s.lock().unwrap().push(input);
            CalloutReply::json(200, &json!({ "result": allow }).to_string())
        });
        let mut f = filter(&h, &cfg);
        let (partner, claims_sent) = forged_admin("partner-key");
        assert_message(
            &run(
                &mut f,
                get("/admin").header("authorization", &bearer(&partner)),
            ),
            403,
            "You cannot consume this service",
        );
        let input = seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(input["subject"], "8d1f2c1e-0000-4000-8000-000000000001");
        assert_eq!(input["permissions"], json!([]));
        assert_eq!(input["claims"], claims_sent);
        assert_eq!(input["consumer"]["self_signed"], true);
        assert_eq!(
            input["consumer"]["id"],
            "8d1f2c1e-0000-4000-8000-000000000001"
        );
        // Its API key: the same subject.
        run(&mut f, get("/admin").header("apikey", "partner-api-key"));
        let input = seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(input["subject"], "8d1f2c1e-0000-4000-8000-000000000001");
        assert_eq!(input["consumer"]["self_signed"], true);
        // The platform's own app: its sub and its permissions, self_signed false.
        let (web, _) = forged_admin("web-key");
        assert!(run(&mut f, get("/admin").header("authorization", &bearer(&web))).is_allowed());
        let input = seen.lock().unwrap().last().unwrap().clone();
        assert_eq!(input["subject"], "admin");
        assert_eq!(input["permissions"], json!(["admin"]));
        assert_eq!(input["consumer"]["self_signed"], false);
    }
}
