//! API keys (Kong key-auth): header or query, by SHA-256 digest.

use crate::support::*;
use serde_json::json;

#[test]
fn api_keys() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(
            &host,
            &with(base_config(), json!({"key_names": ["apikey", "x-api-key"]})),
        );
        for req in [
            get("/api/v1/orders").header("apikey", "partner-api-key"),
            get("/api/v1/orders").header("x-api-key", "partner-api-key"),
            get("/api/v1/orders?apikey=partner-api-key"),
            get("/api/v1/orders?apikey=partner-api-key").header("apikey", "partner-api-key"),
        ] {
            let out = run(&mut f, req);
            assert_eq!(upstream(&out, "x-consumer-username"), Some("partner"));
            assert_eq!(
                upstream(&out, "x-credential-identifier"),
                Some("partner-key-1")
            );
            assert_eq!(upstream(&out, "x-consumer-groups"), Some("partners"));
        }
        let out = run(&mut f, get("/").header("apikey", "wrong"));
        assert_message(&out, 401, "Unauthorized");
        assert_eq!(
            out.local_response().unwrap().header("www-authenticate"),
            Some("Key")
        );
        let out = run(&mut f, get("/?apikey=one").header("apikey", "two"));
        assert_message(&out, 401, "Duplicate API key found");
        // The key never reaches a log.
        assert!(!f
            .logs()
            .iter()
            .any(|l| l.message.contains("partner-api-key")));
    }
}

#[test]
fn hide_credentials() {
    for profile in PROFILES {
        let host = host(profile);
        let mut f = filter(
            &host,
            &with(
                base_config(),
                json!({"hide_credentials": true, "cookie_names": ["sso"]}),
            ),
        );
        let out = run(
            &mut f,
            get("/api/v1/orders").header("apikey", "partner-api-key"),
        );
        assert_eq!(upstream(&out, "apikey"), None);
        let web = hs256(claims("web-key"));
        let out = run(&mut f, get("/").header("authorization", &bearer(&web)));
        assert_eq!(upstream(&out, "authorization"), None);
        let out = run(
            &mut f,
            get("/").header("cookie", &format!("a=1; sso={web}; b=2")),
        );
        assert_eq!(upstream(&out, "cookie"), Some("a=1; b=2"));
        let out = run(&mut f, get(&format!("/p?x=1&jwt={web}")));
        assert_eq!(out.request_headers.get(":path"), Some("/p?x=1"));
    }
}
