//! Metrics and logs: every denial logged once at info with its reason and consumer, never a
//! token, key or secret; the contract's counters.

use crate::support::*;
use serde_json::json;

#[test]
fn metrics_and_denial_logs() {
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(
            &h,
            &with(base_config(), json!({"acl": {"deny": ["partners"]}})),
        );
        let web = hs256(claims("web-key"));
        run(&mut f, get("/").header("authorization", &bearer(&web)));
        run(&mut f, get("/").header("authorization", &bearer(&web)));
        let bad = hs256(json!({"iss": "web-key", "exp": 1}));
        let out = run(&mut f, get("/").header("authorization", &bearer(&bad)));
        let denial_logs: Vec<_> = out
            .logs
            .iter()
            .filter(|l| l.message.contains("denied"))
            .collect();
        assert_eq!(denial_logs.len(), 1, "{:?}", out.logs);
        assert!(denial_logs[0].message.contains("401"));
        let out = run(
            &mut f,
            get("/api/v1/orders").header("apikey", "partner-api-key"),
        );
        let denial_logs: Vec<_> = out
            .logs
            .iter()
            .filter(|l| l.message.contains("denied"))
            .collect();
        assert_eq!(denial_logs.len(), 1);
        assert!(
            denial_logs[0].message.contains("partner"),
            "names the consumer"
        );
        // Allowed requests are counted in the worker and flushed on the tick.
        assert_eq!(h.metric("bouncer_requests_allowed").unwrap_or(0), 0);
        flush_metrics(&mut [&mut f]);
        assert_eq!(h.metric("bouncer_requests_allowed"), Some(2));
        assert_eq!(h.metric("bouncer_requests_denied_401"), Some(1));
        assert_eq!(h.metric("bouncer_requests_denied_403"), Some(1));
        for l in h.logs() {
            for secret in [web.as_str(), bad.as_str(), SECRET, "partner-api-key"] {
                assert!(
                    !l.message.contains(secret),
                    "a secret in a log line: {}",
                    l.message
                );
            }
        }
    }
}

#[test]
fn bad_config_is_refused_with_its_path_and_the_old_one_keeps_serving() {
    for profile in PROFILES {
        let h = host(profile);
        let bad = json!({"consumers": [{"username": "a", "jwt_secrets": [{"key": "k", "algorithm": "RS256", "rsa_public_key": "nope"}]}]});
        let err = module().filter(&h, &bad.to_string()).unwrap_err();
        assert!(
            err.logged("consumers[0].jwt_secrets[0].rsa_public_key"),
            "{err}"
        );
        let mut f = filter(&h, &base_config());
        assert!(!f.reconfigure(&bad.to_string()).unwrap());
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&hs256(claims("web-key")))),
        );
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        assert!(f
            .reconfigure(
                &json!({"consumers": [{"username": "solo"}], "anonymous": "solo"}).to_string()
            )
            .unwrap());
        let out = run(&mut f, get("/"));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("solo"));
    }
}
