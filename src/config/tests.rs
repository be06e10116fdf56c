//! Configuration errors name the JSON path of the field; good configurations load.

use super::*;
use serde_json::{json, Value};

fn pem(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys/");
    std::fs::read_to_string(format!("{dir}{name}"))
        .unwrap_or_else(|e| panic!("test vectors missing ({dir}{name}): {e}"))
}

#[track_caller]
fn err(cfg: Value) -> String {
    match Policy::from_json(&cfg.to_string()) {
        Ok(_) => panic!("accepted: {cfg}"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn assert_err(cfg: Value, path_and_msg: &str) {
    let e = err(cfg);
    assert!(
        e.starts_with(path_and_msg),
        "got {e:?}, want {path_and_msg:?}"
    );
}

#[test]
fn empty_config_is_the_defaults() {
    let p = Policy::from_json("").unwrap();
    assert_eq!(p.header_names, vec!["authorization"]);
    assert_eq!(p.uri_param_names, vec!["jwt"]);
    assert_eq!(p.key_names, vec!["apikey"]);
    assert_eq!(p.key_claim_name, "iss");
    assert!(p.verify_exp && !p.verify_nbf);
    assert_eq!(p.max_token_bytes, 8192);
    assert!(p.run_on_preflight && !p.hide_credentials);
    // The six identity headers and the three method-override headers.
    assert_eq!(p.reserved.len(), 9);
    Policy::from_json("{}").unwrap();
}

#[test]
fn json_and_type_errors() {
    assert!(Policy::from_json("{").is_err());
    assert!(Policy::from_json("[]").is_err());
    assert!(Policy::from_json("{} x").is_err());
    assert_err(json!({"bogus": 1}), "bogus: unknown field `bogus`");
    assert_err(
        json!({"header_names": "authorization"}),
        "header_names: invalid type",
    );
    assert_err(
        json!({"consumers": [{"username": "a"}, {"usernam": "b"}]}),
        "consumers[1].usernam: unknown field `usernam`",
    );
    assert_err(
        json!({"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": 5}]}]}),
        "consumers[0].jwt_secrets[0].secret: invalid type",
    );
    assert_err(
        json!({"consumers": [{"id": "x"}]}),
        "consumers[0]: missing field `username`",
    );
    assert_err(
        json!({"max_token_bytes": -1}),
        "max_token_bytes: invalid value",
    );
}

#[test]
fn field_errors() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"header_names": ["bad header"]}),
            "header_names[0]: not a valid header name",
        ),
        (
            json!({"key_names": [""]}),
            "key_names[0]: not a valid header name",
        ),
        (
            json!({"uri_param_names": [""]}),
            "uri_param_names[0]: must not be empty",
        ),
        (
            json!({"key_claim_name": ""}),
            "key_claim_name: must not be empty",
        ),
        (
            json!({"claims_to_verify": ["exp", "iat"]}),
            "claims_to_verify[1]: must be one of exp, nbf",
        ),
        (
            json!({"maximum_expiration": -5}),
            "maximum_expiration: must be a non-negative number",
        ),
        (
            json!({"clock_skew_seconds": -1}),
            "clock_skew_seconds: must be a non-negative number",
        ),
        (json!({"realm": "a\"b"}), "realm: must not contain quotes"),
        (
            json!({"max_token_bytes": 0}),
            "max_token_bytes: must be at least 1",
        ),
        (
            json!({"anonymous": "ghost"}),
            "anonymous: no consumer with username 'ghost'",
        ),
        (
            json!({"acl": {}}),
            "acl: exactly one of allow and deny is required",
        ),
        (
            json!({"acl": {"allow": ["a"], "deny": ["b"]}}),
            "acl: exactly one of allow and deny",
        ),
        (
            json!({"group_routes": {"p": [{"methods": [], "path": "/x"}]}}),
            "group_routes.p[0].methods: must not be empty",
        ),
        (
            json!({"group_routes": {"p": [{"methods": ["GET"], "path": "("}]}}),
            "group_routes.p[0].path: invalid regex",
        ),
        (
            json!({"consumers": [{"username": ""}]}),
            "consumers[0].username: must not be empty",
        ),
        (
            json!({"consumers": [{"username": "a"}, {"username": "a"}]}),
            "consumers[1].username: duplicate username 'a'",
        ),
        (
            json!({"consumers": [{"username": "a", "id": "x"}, {"username": "b", "id": "x"}]}),
            "consumers[1].id: duplicate id 'x'",
        ),
        (
            json!({"consumers": [{"username": "a", "routes": [{"methods": ["G T"], "path": "/"}]}]}),
            "consumers[0].routes[0].methods[0]",
        ),
        (
            json!({"consumers": [{"username": "a", "keyauth_credentials": [{"key_sha256": "abc"}]}]}),
            "consumers[0].keyauth_credentials[0].key_sha256: must be 64 hexadecimal characters",
        ),
        (
            json!({"consumers": [{"username": "a", "groups": ["x,y"]}]}),
            "consumers[0].groups[0]",
        ),
        (
            json!({"claims_to_headers": [{"claim": "sub", "header": "bad name"}]}),
            "claims_to_headers[0].header: not a valid header name",
        ),
        (
            json!({"forward_payload_header": ":path"}),
            "forward_payload_header: not a valid header name",
        ),
        (
            json!({"header_names": ["x-consumer-id"]}),
            "header_names[0]: 'x-consumer-id' is a header the filter sets",
        ),
        (
            json!({"authz": {"status_on_error": 200}}),
            "authz.status_on_error",
        ),
        (
            json!({"authz": {"upstream": "opa"}}),
            "authz.path: required with upstream",
        ),
        (
            json!({"authz": {"path": "/x"}}),
            "authz.path: only used with upstream",
        ),
        (
            json!({"authz": {"upstream": "opa", "path": "/x", "input_format": "opa"}}),
            "authz.input_format: must be \"bouncer\" or \"opa-envoy\"",
        ),
        (
            json!({"authz": {"upstream": "opa", "path": "/x", "input_format": "OPA-ENVOY"}}),
            "authz.input_format: must be",
        ),
        (
            json!({"authz": {"input_format": "opa-envoy"}}),
            "authz.input_format: only used with upstream",
        ),
        (
            json!({"permissions": {"view": [{"methods": ["GET"], "path": "["}]}}),
            "permissions.view[0].path: invalid regex",
        ),
        (
            json!({"jwks_providers": [{"issuer": "i", "consumer": "ghost", "jwks": {"keys": []}}]}),
            "jwks_providers[0].consumer: no consumer with username 'ghost'",
        ),
        (
            json!({"consumers": [{"username": "c"}], "jwks_providers": [{"issuer": "i", "consumer": "c"}]}),
            "jwks_providers[0]: exactly one of jwks and upstream",
        ),
        (
            json!({"consumers": [{"username": "c"}], "jwks_providers": [{"issuer": "i", "consumer": "c", "jwks": {"keys": [{"kty": "RSA"}]}}]}),
            "jwks_providers[0].jwks.keys[0]",
        ),
        (
            json!({"consumers": [{"username": "c"}], "jwks_providers": [{"issuer": "i", "consumer": "c", "jwks": []}]}),
            "jwks_providers[0].jwks: must be an object",
        ),
        (
            json!({"consumers": [{"username": "c"}], "jwks_providers": [{"issuer": "i", "consumer": "c", "upstream": "idp", "path": "/j", "refresh_seconds": 0}]}),
            "jwks_providers[0].refresh_seconds: must be at least 1",
        ),
        (
            json!({"claims_to_headers": [{"claim": "sub", "header": "X-Consumer-ID"}]}),
            "claims_to_headers[0].header: 'x-consumer-id' is already set by the filter",
        ),
        (
            json!({"claims_to_headers": [{"claim": "a", "header": "x-a"}, {"claim": "b", "header": "x-a"}]}),
            "claims_to_headers[1].header: 'x-a' is already set",
        ),
        (
            json!({"claims_to_headers": [{"claim": "a", "header": "x-a"}], "forward_payload_header": "x-a"}),
            "forward_payload_header: 'x-a' is already set",
        ),
        (
            json!({"authz": {"upstream": "opa", "path": "/v", "allowed_headers": ["x-consumer-groups"]}}),
            "authz.allowed_headers[0]: 'x-consumer-groups' is already set",
        ),
        (
            json!({"consumers": [{"username": "a", "groups": {"x": 1}}]}),
            "consumers[0].groups: invalid type: map",
        ),
    ];
    for (cfg, want) in cases {
        assert_err(cfg, want);
    }
}

#[test]
fn kong_empty_lists_as_objects() {
    // Kong's cjson encodes an empty Lua table as {}.
    let p = Policy::from_json(
        r#"{"cookie_names": {}, "audiences": {}, "consumers": [{"username": "a", "groups": {}, "routes": {}}],
            "acl": {"deny": ["x"]}, "claims_to_headers": {}}"#,
    )
    .unwrap();
    assert!(p.cookie_names.is_empty() && p.audiences.is_empty());
    assert!(p.consumers[0].groups.is_empty());
}

fn secret_cfg(secret: Value) -> Value {
    json!({"consumers": [{"username": "a", "jwt_secrets": [secret]}]})
}

#[test]
fn credential_errors() {
    let rsa = pem("rsa2048_public.pem");
    let ec = pem("ec_p256_public.pem");
    let p = "consumers[0].jwt_secrets[0]";
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"key": "", "algorithm": "HS256", "secret": "s"}),
            format!("{p}.key: must not be empty"),
        ),
        (
            json!({"key": "k", "algorithm": "none", "secret": "s"}),
            format!("{p}.algorithm: must be one of"),
        ),
        (
            json!({"key": "k", "algorithm": "hs256", "secret": "s"}),
            format!("{p}.algorithm: must be one of"),
        ),
        (
            json!({"key": "k", "algorithm": "HS256"}),
            format!("{p}.secret: required for algorithm HS256"),
        ),
        (
            json!({"key": "k", "algorithm": "HS256", "secret": ""}),
            format!("{p}.secret: must not be empty"),
        ),
        (
            json!({"key": "k", "algorithm": "HS256", "secret": "%%%", "secret_is_base64": true}),
            format!("{p}.secret: not valid base64"),
        ),
        (
            json!({"key": "k", "algorithm": "HS256", "secret": "s", "rsa_public_key": rsa}),
            format!("{p}.rsa_public_key: not used with algorithm HS256"),
        ),
        (
            json!({"key": "k", "algorithm": "RS256", "rsa_public_key": "nope"}),
            format!("{p}.rsa_public_key: "),
        ),
        (
            json!({"key": "k", "algorithm": "RS256", "rsa_public_key": ec}),
            format!("{p}.rsa_public_key: a EC P-256 key cannot verify RS256"),
        ),
        (
            json!({"key": "k", "algorithm": "ES384", "public_key": ec}),
            format!("{p}.public_key: a EC P-256 key cannot verify ES384"),
        ),
        (
            json!({"key": "k", "algorithm": "ES256", "public_key": ec, "jwk": {"kty": "EC"}}),
            format!("{p}.jwk: give either public_key or jwk"),
        ),
        (
            json!({"key": "k", "algorithm": "ES256", "jwk": {"kty": "EC", "crv": "P-256"}}),
            format!("{p}.jwk: "),
        ),
        (
            json!({"key": "k", "algorithm": "RS256", "rsa_public_key": rsa, "secret_is_base64": true}),
            format!("{p}.secret_is_base64: not used"),
        ),
    ];
    for (secret, want) in cases {
        assert_err(secret_cfg(secret), &want);
    }
    // Duplicate credential keys across consumers.
    let cfg = json!({"consumers": [
        {"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": "s"}]},
        {"username": "b", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": "t"}]}]});
    assert_err(
        cfg,
        "consumers[1].jwt_secrets[0].key: duplicate credential key 'k'",
    );
}

#[test]
fn errors_never_echo_secrets() {
    let e = err(secret_cfg(
        json!({"key": "k", "algorithm": "RS256", "rsa_public_key": "-----BEGIN PUBLIC KEY-----\nSECRETSTUFF\n-----END PUBLIC KEY-----"}),
    ));
    assert!(!e.contains("SECRETSTUFF"), "{e}");
    let e = err(secret_cfg(
        json!({"key": "k", "algorithm": "HS256", "secret": "TOPSECRET!!", "secret_is_base64": true}),
    ));
    assert!(!e.contains("TOPSECRET"), "{e}");
}

#[test]
fn a_full_config_loads() {
    let cfg = json!({
        "header_names": ["Authorization", "x-token"],
        "cookie_names": ["jwt-token"],
        "claims_to_verify": ["exp", "nbf"],
        "maximum_expiration": 86400,
        "clock_skew_seconds": 30,
        "audiences": ["api"],
        "realm": "bouncer",
        "anonymous": "guest",
        "run_on_preflight": false,
        "hide_credentials": true,
        "consumers": [
            {"username": "web", "custom_id": "web", "groups": ["first-party"],
             "jwt_secrets": [
                {"key": "web-hs", "algorithm": "HS512", "secret": "c2VjcmV0", "secret_is_base64": true},
                {"key": "web-rs", "algorithm": "PS256", "rsa_public_key": pem("rsa2048_public.pem")},
                {"key": "web-es", "algorithm": "ES384", "public_key": pem("ec_p384_public.pem")},
                {"key": "web-ed", "algorithm": "EdDSA", "public_key": pem("ed25519_public.pem")},
                {"key": "web-jwk", "algorithm": "RS256", "jwk": serde_json::from_str::<Value>(&pem("rsa2048_public.jwk.json")).unwrap()}
             ]},
            {"username": "guest"},
            {"username": "svc", "keyauth_credentials": [{"id": "svc-1", "key_sha256": "a".repeat(64)}],
             "routes": [{"methods": ["*"], "path": "/internal/.*"}]}
        ],
        "acl": {"deny": ["banned"]},
        "group_routes": {"partners": [{"methods": ["GET"], "path": "/api/.*"}]},
        "jwks_providers": [
            {"issuer": "https://idp", "consumer": "web", "audiences": ["api"],
             "jwks": {"keys": [serde_json::from_str::<Value>(&pem("ec_p256_public.jwk.json")).unwrap(),
                               {"kty": "RSA", "use": "enc", "n": "x", "e": "AQAB"}]}},
            {"issuer": "https://remote", "consumer": "web", "upstream": "idp_cluster",
             "authority": "idp.example.com", "path": "/.well-known/jwks.json", "refresh_seconds": 60, "timeout_ms": 500}
        ],
        "authz": {"upstream": "opa", "path": "/v1/data/authz", "allowed_headers": ["x-allowed-fields"], "skip_groups": ["first-party"]},
        "permissions": {"view": [{"methods": ["GET"], "path": "/v"}]},
        "claims_to_headers": [{"claim": "sub", "header": "x-user-id"}],
        "forward_payload_header": "x-jwt-payload",
        "revocations": {"jti": ["j1"], "subjects_issued_before": {"u1": 1700000000}},
        "max_token_bytes": 4096
    });
    let p = Policy::from_json(&cfg.to_string()).unwrap();
    assert_eq!(p.header_names, vec!["authorization", "x-token"]);
    assert_eq!(p.jwt_credentials.len(), 5);
    assert_eq!(p.api_keys.len(), 1);
    assert_eq!(p.providers.len(), 2);
    assert!(p.reserved.contains(&"x-allowed-fields".to_string()));
    assert!(p.reserved.contains(&"x-user-id".to_string()));
    assert!(p.reserved.contains(&"x-jwt-payload".to_string()));
    assert_eq!(
        p.authz.as_ref().map(|a| a.input_format),
        Some(InputFormat::Bouncer)
    );
    for (v, want) in [
        ("bouncer", InputFormat::Bouncer),
        ("opa-envoy", InputFormat::OpaEnvoy),
    ] {
        let c = json!({"authz": {"upstream": "opa", "path": "/p", "input_format": v}});
        let p = Policy::from_json(&c.to_string()).unwrap();
        assert_eq!(p.authz.map(|a| a.input_format), Some(want));
    }
    match &p.providers[0].source {
        KeySource::Local(set) => assert_eq!(set.keys.len(), 1, "the enc key is skipped"),
        KeySource::Remote(_) => panic!("local expected"),
    }
}

#[test]
fn type_errors_do_not_echo_values() {
    for cfg in [
        r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": 98765432109876543}]}]}"#,
        r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": 9876543210.125}]}]}"#,
        r#"{"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "HS256", "secret": ["hunter22"]}]}]}"#,
        r#"{"max_token_bytes": "hunter22"}"#,
    ] {
        let e = Policy::from_json(cfg).unwrap_err().to_string();
        assert!(
            !e.contains("98765") && !e.contains("9876543210") && !e.contains("hunter22"),
            "{e}"
        );
        assert!(e.contains("invalid type"), "{e}");
    }
}

#[test]
fn self_signed_consumers() {
    let p = Policy::from_json(
        &json!({"consumers": [{"username": "a"}, {"username": "b", "self_signed": true},
                              {"username": "c", "self_signed": false}]})
        .to_string(),
    )
    .unwrap();
    let flags: Vec<bool> = p.consumers.iter().map(|c| c.self_signed).collect();
    assert_eq!(flags, vec![false, true, false]);
    assert_err(
        json!({"consumers": [{"username": "a", "self_signed": "yes"}]}),
        "consumers[0].self_signed: invalid type",
    );
    assert_err(
        json!({"consumers": [{"username": "a", "self_signed": null}]}),
        "consumers[0].self_signed: invalid type",
    );
}

/// CONTRACT.md section 1 (revision 2): the headers the filter sets may not be a hop-by-hop or
/// framing header, `host`, `cookie`, `authorization`, a credential header, an identity or
/// method-override header, in any case or spelling with `_` for `-`; the error names the field.
#[test]
fn forbidden_header_targets() {
    type Field = (&'static str, fn(&str) -> Value);
    let fields: [Field; 4] = [
        (
            "claims_to_headers[0].header",
            |h| json!({"claims_to_headers": [{"claim": "sub", "header": h}]}),
        ),
        (
            "forward_payload_header",
            |h| json!({ "forward_payload_header": h }),
        ),
        (
            "authz.allowed_headers[1]",
            |h| json!({"authz": {"upstream": "opa", "path": "/v", "allowed_headers": ["x-ok", h]}}),
        ),
        // Without a callout the list is unused, and still may not name such a header.
        (
            "authz.allowed_headers[0]",
            |h| json!({"authz": {"allowed_headers": [h]}}),
        ),
    ];
    let forbidden = [
        ("Connection", "hop-by-hop"),
        ("keep-alive", "hop-by-hop"),
        ("Keep_Alive", "hop-by-hop"),
        ("proxy-connection", "hop-by-hop"),
        ("TE", "hop-by-hop"),
        ("trailer", "hop-by-hop"),
        ("Transfer-Encoding", "hop-by-hop"),
        ("transfer_encoding", "hop-by-hop"),
        ("upgrade", "hop-by-hop"),
        ("Content-Length", "hop-by-hop"),
        ("content_length", "hop-by-hop"),
        ("Host", "hop-by-hop"),
        ("cookie", "hop-by-hop"),
        ("Authorization", "hop-by-hop"),
        ("apikey", "credential header (key_names)"),
        ("X-HTTP-Method-Override", "method-override"),
        ("x_http_method_override", "method-override"),
        ("x-http-method", "method-override"),
        ("X-Method_Override", "method-override"),
        ("x-consumer-id", "already set by the filter"),
        ("X_Consumer_ID", "already set by the filter"),
        ("x-consumer_custom-id", "already set by the filter"),
        ("x_credential_identifier", "already set by the filter"),
        ("X-Anonymous_Consumer", "already set by the filter"),
        ("x_consumer_groups", "already set by the filter"),
        ("x_consumer_username", "already set by the filter"),
    ];
    for (field, cfg) in fields {
        for (h, why) in forbidden {
            let e = Policy::from_json(&cfg(h).to_string()).unwrap_err();
            let lower = h.to_ascii_lowercase();
            assert_eq!(e.path, field, "{h}: {e}");
            assert!(
                e.message.contains(why) && e.message.contains(&format!("'{lower}'")),
                "{h}: {e}"
            );
        }
        // Pseudo-headers are no header names at all.
        for h in [":path", ":authority", ":method"] {
            let e = Policy::from_json(&cfg(h).to_string()).unwrap_err();
            assert_eq!(e.to_string(), format!("{field}: not a valid header name"));
        }
        // Look-alikes that are other headers are fine.
        for h in [
            "x-te",
            "hosts",
            "x-consumer-idx",
            "x-http-methods",
            "x-authorization",
        ] {
            Policy::from_json(&cfg(h).to_string()).unwrap_or_else(|e| panic!("{h}: {e}"));
        }
    }
    // The configured credential names, in any spelling, are credential headers.
    for (extra, want) in [
        (
            json!({"header_names": ["x-token"], "claims_to_headers": [{"claim": "sub", "header": "X_Token"}]}),
            "claims_to_headers[0].header: 'x_token' is a credential header (header_names)",
        ),
        (
            json!({"key_names": ["x-api-key"], "forward_payload_header": "x-api_key"}),
            "forward_payload_header: 'x-api_key' is a credential header (key_names)",
        ),
        (
            json!({"key_names": ["x_api_key"], "authz": {"allowed_headers": ["X-API-KEY"]}}),
            "authz.allowed_headers[0]: 'x-api-key' is a credential header (key_names)",
        ),
        // Another key name frees the default one.
        (
            json!({"key_names": ["x-key"], "forward_payload_header": "x-key"}),
            "forward_payload_header: 'x-key' is a credential header (key_names)",
        ),
        // Two targets that are one header with `_` read as `-`.
        (
            json!({"claims_to_headers": [{"claim": "a", "header": "x-user-id"}, {"claim": "b", "header": "x_user_id"}]}),
            "claims_to_headers[1].header: 'x_user_id' is already set by the filter",
        ),
        (
            json!({"claims_to_headers": [{"claim": "a", "header": "x-user-id"}], "forward_payload_header": "X_User-Id"}),
            "forward_payload_header: 'x_user-id' is already set by the filter",
        ),
        (
            json!({"forward_payload_header": "x-jwt", "authz": {"upstream": "opa", "path": "/v", "allowed_headers": ["x_jwt"]}}),
            "authz.allowed_headers[0]: 'x_jwt' is already set by the filter",
        ),
        // A credential header in any spelling of a reserved one.
        (
            json!({"header_names": ["x_http_method"]}),
            "header_names[0]: 'x_http_method' is a header the filter sets",
        ),
        (
            json!({"key_names": ["X_Consumer_Groups"]}),
            "key_names[0]: 'x_consumer_groups' is a header the filter sets",
        ),
    ] {
        let e = Policy::from_json(&extra.to_string()).unwrap_err();
        assert!(e.to_string().starts_with(want), "got {e}, want {want}");
    }
    Policy::from_json(
        &json!({"key_names": ["x-key"], "forward_payload_header": "apikey"}).to_string(),
    )
    .unwrap();
}

/// Consumers are compiled while parsed, first without uniqueness checks or paths: the error
/// reported is still the first in document order, the checks of each consumer in their order,
/// and serde's errors anywhere in the text come first.
#[test]
fn streamed_consumers_report_the_first_error_in_order() {
    let hs = |key: &str, secret: &str| json!({"key": key, "algorithm": "HS256", "secret": secret});
    let key = |hex: &str| json!({"key_sha256": hex});
    let a64 = "a".repeat(64);
    // A duplicate username comes before the same consumer's bad secret.
    assert_err(
        json!({"consumers": [{"username": "a"},
            {"username": "a", "jwt_secrets": [hs("k", "")]}]}),
        "consumers[1].username: duplicate username 'a'",
    );
    // An earlier consumer's error comes before a later duplicate.
    assert_err(
        json!({"consumers": [{"username": "a"}, {"username": "b", "jwt_secrets": [hs("k", "")]},
            {"username": "a"}]}),
        "consumers[1].jwt_secrets[0].secret: must not be empty",
    );
    // A duplicate API key within one consumer, before its next key's error.
    assert_err(
        json!({"consumers": [{"username": "a",
            "keyauth_credentials": [key(&a64), key(&a64), key("zz")]}]}),
        "consumers[0].keyauth_credentials[1].key_sha256: duplicate API key",
    );
    // A duplicate credential key across consumers; a duplicate id.
    assert_err(
        json!({"consumers": [{"username": "a", "jwt_secrets": [hs("k", "s")]},
            {"username": "b", "jwt_secrets": [hs("j", "s"), hs("k", "s")]}]}),
        "consumers[1].jwt_secrets[1].key: duplicate credential key 'k'",
    );
    assert_err(
        json!({"consumers": [{"username": "a", "id": "x"}, {"username": "b", "id": "x"}]}),
        "consumers[1].id: duplicate id 'x'",
    );
    // A type error after the consumers comes before their semantic errors.
    assert_err(
        json!({"consumers": [{"username": ""}], "max_token_bytes": "x"}),
        "max_token_bytes: invalid type",
    );
    // Checks before the consumers' come first; group routes are added wherever they are.
    assert_err(
        json!({"consumers": [{"username": ""}], "group_routes": {"g": [{"methods": [], "path": "/"}]}}),
        "group_routes.g[0].methods: must not be empty",
    );
    let p = Policy::from_json(
        &json!({"consumers": [{"username": "a", "groups": ["g"],
                    "routes": [{"methods": ["GET"], "path": "/own"}]}],
                "group_routes": {"g": [{"methods": ["POST"], "path": "/group(/.*)?"}]},
                "acl": {"deny": ["x"], "hide_groups_header": true}})
        .to_string(),
    )
    .unwrap();
    let c = &p.consumers[0];
    assert!(c.routes.allows("GET", "/own") && c.routes.allows("POST", "/group/1"));
    assert!(!c.routes.allows("GET", "/group/1"));
    assert_eq!(c.groups_header, None);
    // Many consumers, credentials found by the sorted tables.
    let consumers: Vec<Value> = (0..300)
        .map(|i| {
            json!({"username": format!("u{i}"), "jwt_secrets": [hs(&format!("k{i}"), "s")],
                   "keyauth_credentials": [key(&format!("{i:064x}"))]})
        })
        .collect();
    let p = Policy::from_json(&json!({ "consumers": consumers }).to_string()).unwrap();
    for i in [0usize, 1, 150, 299] {
        let cred = p.jwt_credentials.get(&format!("k{i}")).unwrap();
        assert_eq!(
            (cred.consumer, cred.key_id.as_str()),
            (i, format!("k{i}").as_str())
        );
        let digest = parse_hex32(&format!("{i:064x}")).unwrap();
        assert_eq!(p.api_keys.get(&digest).unwrap().consumer, i);
    }
    assert!(p.jwt_credentials.get("k300").is_none());
    assert!(p.api_keys.get(&[0xff; 32]).is_none());
}

#[test]
fn base64_secrets_decode_in_both_alphabets() {
    assert_eq!(decode_base64_secret("-_8").unwrap(), vec![0xfb, 0xff]);
    assert_eq!(decode_base64_secret("+/8=").unwrap(), vec![0xfb, 0xff]);
    assert!(decode_base64_secret("not base64!").is_none());
}
