//! Self-signed consumers (CONTRACT.md section 1): a third party that holds its own signing
//! secret proves who it is and nothing more. Its permissions claim grants nothing, its claims
//! are not copied to headers, and the authorization service sees the consumer's `id` as the
//! subject, no permissions, its claims as they are and `consumer.self_signed: true`.

use crate::support::*;
use serde_json::{json, Value};

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
