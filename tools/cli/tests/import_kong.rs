//! `bouncer import-kong` on a realistic decK file (tests/data/kong-deck.yaml), and the
//! converted configuration through the real `bouncer.wasm` (the wasmtime harness, Kong's and
//! Envoy's host behaviour): the tokens and keys Kong's jwt, key-auth and acl plugins accept
//! get 200 with Kong's identity headers, a wrong key or token 401, a group outside the ACL 403.

use bouncer_harness::{Harness, Host, Outcome, Profile, Request};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::SystemTime;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deck() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kong-deck.yaml")
}

fn bouncer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn hex_sha256(key: &[u8]) -> String {
    bouncer_crypto::sha256(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The conversion, written to a file (as an operator would), and its notes.
fn converted() -> &'static (PathBuf, Value, String) {
    static C: OnceLock<(PathBuf, Value, String)> = OnceLock::new();
    C.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bouncer-cli-import");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("bouncer.json");
        let o = bouncer(&[
            "import-kong",
            deck().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(o.stdout.is_empty(), "with -o nothing goes to stdout");
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        (out, config, text(&o.stderr))
    })
}

fn module() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let path = bouncer_harness::bouncer_wasm_path();
        Harness::load(&path).unwrap_or_else(|e| {
            panic!("{e}: build it first with `make build` ({})", path.display())
        })
    })
}

fn token(args: &[&str]) -> String {
    let (path, _, _) = converted();
    let mut all = vec!["token", "--config", path.to_str().unwrap()];
    all.extend(args);
    let o = bouncer(&all);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_owned()
}

fn upstream<'a>(out: &'a Outcome, name: &str) -> Option<&'a str> {
    assert!(out.is_allowed(), "not allowed: {out:?}");
    out.request_headers.get(name).filter(|v| !v.is_empty())
}

#[track_caller]
fn assert_denied(out: &Outcome, status: u16, body: Value) {
    let r = out
        .local_response()
        .unwrap_or_else(|| panic!("expected {status}, got {out:?}"));
    assert_eq!(r.status, status, "{out:?}");
    assert_eq!(r.json(), body, "{out:?}");
}

#[test]
fn the_conversion_keeps_what_bouncer_has_and_says_what_it_does_not() {
    let (_, config, notes) = converted();
    // Plugin settings.
    assert_eq!(config["cookie_names"], json!(["sso_session"]));
    assert_eq!(config["claims_to_verify"], json!(["exp"]));
    assert_eq!(config["maximum_expiration"], json!(86400));
    assert_eq!(config["key_names"], json!(["apikey", "x-api-key"]));
    assert_eq!(config["hide_credentials"], json!(true));
    assert_eq!(
        config["acl"],
        json!({"allow": ["first-party", "partners", "devices"]})
    );
    assert!(config.get("anonymous").is_none());
    // Consumers: Kong's id, custom_id and ACL groups; credentials by kind.
    let consumers = config["consumers"].as_array().unwrap();
    let names: Vec<&str> = consumers
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "web-app",
            "mobile-app",
            "sensor-fleet",
            "partner-acme",
            "partner-globex",
            "suspended-partner",
            "ci-runner"
        ]
    );
    let mobile = &consumers[1]["jwt_secrets"][0];
    assert_eq!(mobile["algorithm"], "RS256");
    assert!(mobile["rsa_public_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(
        mobile.get("secret").is_none(),
        "Kong's generated secret of an RS256 credential is dropped"
    );
    let sensors = consumers[2]["jwt_secrets"].as_array().unwrap();
    assert_eq!(sensors.len(), 1, "the ES512 credential is not converted");
    assert!(
        sensors[0]["public_key"].is_string(),
        "ES256 takes public_key"
    );
    // Keys are hashed: no plaintext key reaches the output.
    let out_text = config.to_string();
    for key in [
        "acme-live-key-3f1c9a7e",
        "globex-key-primary-8b2d",
        "globex-key-rotating-4e6a",
        "suspended-key-1a2b3c",
    ] {
        assert!(!out_text.contains(key), "{key} in the output");
    }
    assert_eq!(
        consumers[3]["keyauth_credentials"],
        json!([{"id": "9c0d1e2f-0000-4000-8000-00000000b001",
                "key_sha256": hex_sha256(b"acme-live-key-3f1c9a7e")}])
    );
    // The notes: each thing it could not convert or changed.
    for needle in [
        "changed: 4 plaintext API keys hashed to key_sha256",
        "the jwt plugin is scoped to service 'orders'",
        "the key-auth plugin is scoped to service 'partner-feed'",
        "the acl plugin on service 'partner-feed' has the same config as on service 'orders'",
        "not converted: jwt_secret 'sensors-legacy' of 'sensor-fleet': algorithm ES512",
        "not converted: 1 basicauth_credentials of consumer 'ci-runner'",
        "1 consumers have no id in the file (ci-runner)",
        "an API key of 'partner-globex' has a ttl",
        "1 API keys have no id",
        "hide_credentials hides JWTs too",
        "not converted: plugin correlation-id (global)",
        "not converted: plugin rate-limiting (route 'orders-api' of service 'orders'; consumer 'partner-acme')",
    ] {
        assert!(notes.contains(needle), "missing note {needle:?} in:\n{notes}");
    }
    // And it passes `bouncer check`.
    let o = bouncer(&["check", converted().0.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("jwt credentials: 5 (ES256 1, HS256 2, HS512 1, RS256 1)"));
    assert!(text(&o.stdout).contains("api keys: 4"));
}

#[test]
fn the_converted_config_answers_as_kongs_plugins_through_the_wasm() {
    let (path, _, _) = converted();
    let config = std::fs::read_to_string(path).unwrap();
    let web = token(&["--consumer", "web-app", "--claims", r#"{"sub": "alice"}"#]);
    let mobile = token(&[
        "--consumer",
        "mobile-app",
        "--key-file",
        "tests/vectors/keys/rsa2048_private.pem",
    ]);
    let sensors = token(&[
        "--consumer",
        "sensor-fleet",
        "--key-file",
        "tests/vectors/keys/ec_p256_private.pem",
    ]);
    let acme = token(&["--consumer", "partner-acme"]);
    let suspended = token(&["--consumer", "suspended-partner"]);
    let expired = token(&["--consumer", "web-app", "--exp", "-120"]);
    let too_long = token(&["--consumer", "web-app", "--exp", "172800"]);
    // Signed with a secret that is not web-app's.
    let forged = bouncer_token::hs256(
        "not-the-web-secret",
        &json!({"iss": "web-2026", "exp": 4102444800u64}),
    )
    .unwrap();
    let bearer = |t: &str| format!("Bearer {t}");

    for profile in [Profile::Kong, Profile::Envoy] {
        let host = Host::new(profile);
        host.set_time(SystemTime::now());
        let mut f = module()
            .filter(&host, &config)
            .unwrap_or_else(|e| panic!("the converted config was refused: {e}"));
        let mut run = |req: Request| f.run(req).unwrap();

        // JWTs, as Kong's jwt plugin: 200 with the consumer's identity headers.
        for (tok, username, id, custom_id, credential, groups) in [
            (
                &web,
                "web-app",
                "2f6a52d4-3c1d-4b5e-9d8e-0a1b2c3d4e01",
                Some("web"),
                "web-2026",
                "first-party",
            ),
            (
                &mobile,
                "mobile-app",
                "2f6a52d4-3c1d-4b5e-9d8e-0a1b2c3d4e02",
                Some("mobile"),
                "mobile-2026",
                "first-party",
            ),
            (
                &sensors,
                "sensor-fleet",
                "2f6a52d4-3c1d-4b5e-9d8e-0a1b2c3d4e03",
                None,
                "sensors-2026",
                "devices",
            ),
            (
                &acme,
                "partner-acme",
                "2f6a52d4-3c1d-4b5e-9d8e-0a1b2c3d4e04",
                Some("acme"),
                "acme-2026",
                "partners",
            ),
        ] {
            let out =
                run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(tok)));
            assert_eq!(
                upstream(&out, "x-consumer-username"),
                Some(username),
                "{profile:?}"
            );
            assert_eq!(upstream(&out, "x-consumer-id"), Some(id));
            assert_eq!(upstream(&out, "x-consumer-custom-id"), custom_id);
            assert_eq!(upstream(&out, "x-credential-identifier"), Some(credential));
            assert_eq!(upstream(&out, "x-consumer-groups"), Some(groups));
            // key-auth's hide_credentials: the upstream does not get the token.
            assert_eq!(upstream(&out, "authorization"), None);
        }
        // The SSO cookie and the `jwt` query parameter, as the jwt plugin's config says.
        let out =
            run(Request::new("GET", "/api/v1/orders")
                .header("cookie", &format!("sso_session={web}")));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web-app"));
        let out = run(Request::new("GET", &format!("/api/v1/orders?jwt={mobile}")));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("mobile-app"));

        // API keys, as Kong's key-auth: either key name, header or query.
        for req in [
            Request::new("GET", "/api/v1/feed").header("apikey", "acme-live-key-3f1c9a7e"),
            Request::new("GET", "/api/v1/feed").header("x-api-key", "acme-live-key-3f1c9a7e"),
            Request::new("GET", "/api/v1/feed?apikey=acme-live-key-3f1c9a7e"),
        ] {
            let out = run(req);
            assert_eq!(upstream(&out, "x-consumer-username"), Some("partner-acme"));
            assert_eq!(
                upstream(&out, "x-credential-identifier"),
                Some("9c0d1e2f-0000-4000-8000-00000000b001")
            );
            assert_eq!(upstream(&out, "x-consumer-groups"), Some("partners"));
            assert_eq!(upstream(&out, "apikey"), None, "hide_credentials");
        }
        let out =
            run(Request::new("GET", "/api/v1/feed").header("apikey", "globex-key-primary-8b2d"));
        assert_eq!(
            upstream(&out, "x-consumer-username"),
            Some("partner-globex")
        );
        let out =
            run(Request::new("GET", "/api/v1/feed").header("apikey", "globex-key-rotating-4e6a"));
        assert_eq!(
            upstream(&out, "x-consumer-username"),
            Some("partner-globex")
        );
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            None,
            "a key without id"
        );

        // 401s, Kong's messages.
        let out =
            run(Request::new("GET", "/api/v1/feed").header("apikey", "acme-live-key-3f1c9a7f"));
        assert_denied(&out, 401, json!({"message": "Unauthorized"}));
        assert_eq!(
            out.local_response().unwrap().header("www-authenticate"),
            Some("Key")
        );
        let out = run(Request::new("GET", "/api/v1/orders"));
        assert_denied(&out, 401, json!({"message": "Unauthorized"}));
        let out =
            run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(&forged)));
        assert_denied(&out, 401, json!({"message": "Invalid signature"}));
        let out =
            run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(&expired)));
        assert_denied(&out, 401, json!({"exp": "token expired"}));
        let out =
            run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(&too_long)));
        assert_denied(
            &out,
            401,
            json!({"exp": "exceeds maximum allowed expiration"}),
        );
        // The ES512 credential was not converted: its key is unknown.
        let es512 =
            bouncer_token::hs256("x", &json!({"iss": "sensors-legacy", "exp": 4102444800u64}))
                .unwrap();
        let out =
            run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(&es512)));
        assert_denied(
            &out,
            401,
            json!({"message": "No credentials found for given 'iss'"}),
        );

        // 403: the ACL, for a valid token and a valid key of a group it does not allow.
        let out =
            run(Request::new("GET", "/api/v1/orders").header("authorization", &bearer(&suspended)));
        assert_denied(
            &out,
            403,
            json!({"message": "You cannot consume this service"}),
        );
        let out = run(Request::new("GET", "/api/v1/feed").header("apikey", "suspended-key-1a2b3c"));
        assert_denied(
            &out,
            403,
            json!({"message": "You cannot consume this service"}),
        );
    }
}

#[test]
fn import_kong_writes_to_stdout_and_refuses_what_is_no_deck_file() {
    let o = bouncer(&["import-kong", deck().to_str().unwrap()]);
    assert!(o.status.success());
    let from_stdout: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(&from_stdout, &converted().1);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bouncer-cli-import");
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("list.yaml");
    std::fs::write(&list, "- a\n- b\n").unwrap();
    assert_eq!(
        bouncer(&["import-kong", list.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "consumers: [\n").unwrap();
    assert_eq!(
        bouncer(&["import-kong", bad.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        bouncer(&["import-kong", "no/such.yaml"]).status.code(),
        Some(2)
    );
    // Plugin options Bouncer lacks, anonymous by id, both plugins global without anonymous.
    let other = dir.join("other.yaml");
    std::fs::write(
        &other,
        r#"_format_version: "3.0"
consumers:
  - username: guest
    id: 11111111-0000-4000-8000-000000000000
  - custom_id: app-without-username
    keyauth_credentials: [{key: k1}]
jwt_secrets:
  - consumer: {username: app-without-username}
    key: app-b64
    algorithm: HS256
    secret: c2VjcmV0LXNlY3JldC1zZWNyZXQ
acls:
  - consumer: 11111111-0000-4000-8000-000000000000
    group: guests
plugins:
  - name: jwt
    config: {anonymous: 11111111-0000-4000-8000-000000000000, run_on_preflight: false, secret_is_base64: true}
  - name: key-auth
    config: {key_in_body: true, key_in_query: false, anonymous: guest, run_on_preflight: false}
  - name: acl
    config: {deny: [blocked], include_consumer_groups: true, hide_groups_header: true}
  - name: acl
    route: admin
    enabled: false
    config: {allow: [admins]}
"#,
    )
    .unwrap();
    let o = bouncer(&["import-kong", other.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["anonymous"], "guest");
    assert_eq!(c["run_on_preflight"], false);
    assert_eq!(
        c["claims_to_verify"],
        json!([]),
        "Kong's jwt verifies no claims by default"
    );
    assert_eq!(
        c["acl"],
        json!({"deny": ["blocked"], "hide_groups_header": true})
    );
    assert_eq!(
        c["consumers"][0]["groups"],
        json!(["guests"]),
        "a top-level acl by id"
    );
    assert_eq!(c["consumers"][1]["username"], "app-without-username");
    // A top-level jwt_secret by username; the plugin's secret_is_base64 on the credential.
    assert_eq!(
        c["consumers"][1]["jwt_secrets"],
        json!([{"key": "app-b64", "algorithm": "HS256", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ",
                "secret_is_base64": true}])
    );
    let notes = text(&o.stderr);
    for needle in [
        "its custom_id 'app-without-username' is its username",
        "key_in_body",
        "key_in_header / key_in_query = false",
        "kept: the jwt plugin verifies no claims",
        "acl.config.include_consumer_groups",
        "not converted: the disabled acl plugin on route 'admin'",
        "secret_is_base64 is set on each HS credential",
    ] {
        assert!(notes.contains(needle), "missing {needle:?} in:\n{notes}");
    }
}
