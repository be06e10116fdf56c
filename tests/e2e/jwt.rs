//! JWT verification through the .wasm: every algorithm (PyJWT's tokens), the response table's
//! token rows word for word, claims, revocation.

use crate::support::*;
use serde_json::{json, Value};

/// One consumer per vector key, credential key `bouncer-vectors` (the vectors' `iss`).
fn vector_config(alg: &str) -> Value {
    let key = match alg {
        a if a.starts_with("HS") => {
            json!({"secret": read_vector_file("keys/hmac_secret.txt").trim()})
        }
        a if a.starts_with("RS") || a.starts_with("PS") => {
            json!({"rsa_public_key": read_vector_file("keys/rsa2048_public.pem")})
        }
        "ES256" => json!({"public_key": read_vector_file("keys/ec_p256_public.pem")}),
        "ES384" => json!({"public_key": read_vector_file("keys/ec_p384_public.pem")}),
        _ => json!({"public_key": read_vector_file("keys/ed25519_public.pem")}),
    };
    let mut cred = json!({"key": "bouncer-vectors", "algorithm": alg});
    for (k, v) in key.as_object().unwrap() {
        cred[k] = v.clone();
    }
    json!({"consumers": [{"username": "vectors", "jwt_secrets": [cred]}]})
}

#[test]
fn every_algorithm_verifies_pyjwt_tokens() {
    for profile in PROFILES {
        let host = host(profile);
        for alg in [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "EdDSA",
        ] {
            let mut f = filter(&host, &vector_config(alg));
            let ok = run(
                &mut f,
                get("/").header("authorization", &bearer(&vector(&format!("valid_{alg}")))),
            );
            assert!(ok.is_allowed(), "{profile:?} {alg}: {ok:?}");
            assert_eq!(upstream(&ok, "x-consumer-username"), Some("vectors"));
            assert_eq!(
                upstream(&ok, "x-credential-identifier"),
                Some("bouncer-vectors")
            );
            if let Ok(t) = std::panic::catch_unwind(|| vector(&format!("tampered_payload_{alg}"))) {
                let bad = run(&mut f, get("/").header("authorization", &bearer(&t)));
                assert_message(&bad, 401, "Invalid signature");
            }
        }
    }
}

#[test]
fn base64_secret_and_vector_failures() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = json!({"consumers": [{"username": "v", "jwt_secrets": [{"key": "bouncer-vectors", "algorithm": "HS256",
            "secret": read_vector_file("keys/hmac_secret.b64").trim(), "secret_is_base64": true}]}]});
        let mut f = filter(&host, &cfg);
        assert!(run(
            &mut f,
            get("/").header(
                "authorization",
                &bearer(&vector("valid_HS256_base64_secret"))
            )
        )
        .is_allowed());
        for (name, msg) in [
            ("alg_none", "Bad token; invalid alg"),
            ("alg_None_mixed_case", "Bad token; invalid alg"),
            ("alg_missing", "Bad token; invalid alg"),
            ("two_parts", "Bad token; invalid JSON"),
            ("padded_segments", "Bad token; invalid JSON"),
            ("payload_json_array", "Bad token; invalid JSON"),
            ("missing_iss", "No mandatory 'iss' in claims"),
            ("unknown_iss", "No credentials found for given 'iss'"),
            ("empty_signature_HS256", "Invalid signature"),
        ] {
            let out = run(
                &mut f,
                get("/").header("authorization", &bearer(&vector(name))),
            );
            assert_message(&out, 401, msg);
            let www = out.local_response().unwrap().header("www-authenticate");
            assert_eq!(www, Some("Bearer error=\"invalid_token\""), "{name}");
        }
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&vector("expired_HS256"))),
        );
        assert_response(&out, 401, json!({"exp": "token expired"}));
    }
}

#[test]
fn algorithm_confusion_is_refused() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(&host, &vector_config("RS256"));
        for name in [
            "alg_confusion_HS256_with_RSA_public_pem",
            "alg_mismatch_RS384_for_RS256_credential",
        ] {
            let out = run(
                &mut f,
                get("/").header("authorization", &bearer(&vector(name))),
            );
            assert_message(&out, 401, "Invalid algorithm");
        }
    }
}

#[test]
fn no_credential_and_realm() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(&host, &with(base_config(), json!({"realm": "orders"})));
        let out = run(&mut f, get("/"));
        assert_message(&out, 401, "Unauthorized");
        assert_eq!(
            out.local_response().unwrap().header("www-authenticate"),
            Some("Bearer realm=\"orders\"")
        );
        let out = run(
            &mut f,
            get("/").header("authorization", "Basic dXNlcjpwYXNz"),
        );
        assert_message(&out, 401, "Unauthorized");
        let out = run(&mut f, get("/").header("authorization", "Bearer not-a-jwt"));
        assert_message(&out, 401, "Bad token; invalid JSON");
        assert_eq!(
            out.local_response().unwrap().header("www-authenticate"),
            Some("Bearer realm=\"orders\", error=\"invalid_token\"")
        );
    }
}

#[test]
fn token_places_and_multiple_tokens() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = with(
            base_config(),
            json!({"cookie_names": ["jwt-token"], "uri_param_names": ["jwt", "access_token"]}),
        );
        let mut f = filter(&host, &cfg);
        let web = hs256(claims("web-key"));
        let partner = hs256(claims("partner-key"));
        for req in [
            get("/").header("authorization", &bearer(&web)),
            get("/").header("authorization", &format!("bEaReR   {web}")),
            get(&format!("/?jwt={web}")),
            get(&format!("/?a=1&access_token={web}")),
            get("/").header("cookie", &format!("theme=dark; jwt-token={web}")),
            get(&format!("/?jwt={web}")).header("authorization", &bearer(&web)),
        ] {
            let out = run(&mut f, req);
            assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        }
        let out = run(
            &mut f,
            get(&format!("/?jwt={partner}")).header("authorization", &bearer(&web)),
        );
        assert_message(&out, 401, "Multiple tokens provided");
        let out = run(
            &mut f,
            get("/")
                .header("authorization", &bearer(&web))
                .header("apikey", "partner-api-key"),
        );
        assert_message(&out, 401, "Multiple tokens provided");
    }
}

#[test]
fn claims_and_limits() {
    for profile in PROFILES {
        let host = host(profile);
        let cfg = with(
            base_config(),
            json!({"claims_to_verify": ["exp", "nbf"], "maximum_expiration": 3600, "audiences": ["orders-api"],
                   "max_token_bytes": 600}),
        );
        let mut f = filter(&host, &cfg);
        let t = |c: Value| get("/").header("authorization", &bearer(&hs256(c)));
        let ok = json!({"iss": "web-key", "exp": NOW + 60, "aud": ["x", "orders-api"]});
        assert!(run(&mut f, t(ok)).is_allowed());
        let out = run(
            &mut f,
            t(json!({"iss": "web-key", "exp": NOW - 1, "nbf": NOW + 50, "aud": "x"})),
        );
        assert_response(
            &out,
            401,
            json!({"exp": "token expired", "nbf": "token not valid yet", "aud": "audience not allowed"}),
        );
        let out = run(
            &mut f,
            t(json!({"iss": "web-key", "exp": NOW + 7200, "aud": "orders-api"})),
        );
        assert_response(
            &out,
            401,
            json!({"exp": "exceeds maximum allowed expiration"}),
        );
        let out = run(&mut f, t(json!({"iss": "web-key", "aud": "orders-api"})));
        assert_response(&out, 401, json!({"exp": "must be a number"}));
        let out = run(
            &mut f,
            t(
                json!({"iss": "web-key", "exp": NOW + 60, "aud": "orders-api", "pad": "x".repeat(600)}),
            ),
        );
        assert_message(&out, 401, "Bad token; too large");
        // The clock moves: a token valid now expires later, cached or not.
        let t60 = hs256(json!({"iss": "web-key", "exp": NOW + 60, "aud": "orders-api"}));
        assert!(run(&mut f, get("/").header("authorization", &bearer(&t60))).is_allowed());
        host.advance(std::time::Duration::from_secs(61));
        let out = run(&mut f, get("/").header("authorization", &bearer(&t60)));
        assert_response(&out, 401, json!({"exp": "token expired"}));
    }
}

#[test]
fn revocation() {
    for profile in PROFILES {
        let host = host(profile);
        let mut cfg = with(
            base_config(),
            json!({"revocations": {"jti": ["stolen"], "subjects_issued_before": {"user-9": NOW - 100}}}),
        );
        cfg["consumers"][0]["issued_before"] = json!(NOW - 50);
        let mut f = filter(&host, &cfg);
        let t = |c: Value| get("/").header("authorization", &bearer(&hs256(c)));
        for c in [
            json!({"iss": "partner-key", "exp": NOW + 60, "jti": "stolen"}),
            json!({"iss": "partner-key", "exp": NOW + 60, "sub": "user-9", "iat": NOW - 200}),
            json!({"iss": "web-key", "exp": NOW + 60, "iat": NOW - 60}),
            json!({"iss": "web-key", "exp": NOW + 60}),
        ] {
            assert_message(&run(&mut f, t(c)), 401, "Token revoked");
        }
        assert!(run(
            &mut f,
            t(json!({"iss": "web-key", "exp": NOW + 60, "iat": NOW - 10}))
        )
        .is_allowed());
    }
}

#[test]
fn anonymous_and_preflight() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(
            &host,
            &with(
                base_config(),
                json!({"anonymous": "guest", "run_on_preflight": false}),
            ),
        );
        for req in [
            get("/"),
            get("/").header("authorization", "Bearer x.y.z"),
            get("/").header("apikey", "nope"),
        ] {
            let out = run(&mut f, req);
            assert_eq!(upstream(&out, "x-consumer-username"), Some("guest"));
            assert_eq!(upstream(&out, "x-anonymous-consumer"), Some("true"));
            assert_eq!(upstream(&out, "x-credential-identifier"), None);
        }
        let pre = bouncer_harness::Request::new("OPTIONS", "/api")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST");
        let out = run(&mut f, pre);
        assert!(out.is_allowed());
        assert_eq!(upstream(&out, "x-consumer-username"), None);
    }
}
