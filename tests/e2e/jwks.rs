//! JWKS providers: local keys, remote fetch, rotation, unknown-kid refetch and its rate limit,
//! the first request waiting for the first fetch, failures keeping old keys, malformed answers,
//! and workers sharing one fetch.

use crate::support::*;
use bouncer_harness::{CalloutReply, Host, Profile};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn jwk(file: &str) -> Value {
    serde_json::from_str(&read_vector_file(file)).unwrap()
}

fn rsa() -> Value {
    jwk("keys/rsa2048_public.jwk.json")
}

fn ec() -> Value {
    jwk("keys/ec_p256_public.jwk.json")
}

fn idp_upstream(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "idp",
        Profile::Kong => "127.0.0.1:9000",
    }
}

fn remote_config(profile: Profile) -> Value {
    json!({
        "consumers": [{"username": "staff", "groups": ["employees"]}],
        "jwks_providers": [{"issuer": "bouncer-vectors", "consumer": "staff",
            "upstream": idp_upstream(profile), "authority": "idp.example.com",
            "path": "/.well-known/jwks.json", "refresh_seconds": 600, "timeout_ms": 500}]
    })
}

/// A host whose IdP serves `jwks` (changeable) and counts fetches.
struct Idp {
    host: Host,
    body: Arc<Mutex<CalloutReply>>,
    fetches: Arc<AtomicUsize>,
}

fn idp(profile: Profile, keys: Vec<Value>) -> Idp {
    let host = host(profile);
    let body = Arc::new(Mutex::new(CalloutReply::json(
        200,
        &json!({ "keys": keys }).to_string(),
    )));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (b, n) = (Arc::clone(&body), Arc::clone(&fetches));
    host.set_callout_handler(move |call| {
        assert_eq!(call.path(), "/.well-known/jwks.json");
        assert_eq!(call.method(), "GET");
        assert_eq!(call.authority(), "idp.example.com");
        n.fetch_add(1, Ordering::SeqCst);
        b.lock().unwrap().clone()
    });
    Idp {
        host,
        body,
        fetches,
    }
}

impl Idp {
    fn serve(&self, keys: Vec<Value>) {
        *self.body.lock().unwrap() = CalloutReply::json(200, &json!({ "keys": keys }).to_string());
    }
    fn fail(&self, reply: CalloutReply) {
        *self.body.lock().unwrap() = reply;
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn rs256() -> String {
    bearer(&vector("valid_RS256"))
}

fn es256() -> String {
    bearer(&vector("valid_ES256"))
}

#[test]
fn local_keys() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = json!({
            "consumers": [{"username": "staff"}],
            "jwks_providers": [{"issuer": "bouncer-vectors", "consumer": "staff", "jwks": {"keys": [rsa(), ec()]}}]
        });
        let mut f = filter(&h, &cfg);
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("staff"));
        assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
        let out = run(&mut f, get("/").header("authorization", &es256()));
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            Some("vec-ec256-1")
        );
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&vector("valid_ES384"))),
        );
        assert_message(&out, 401, "No credentials found for given 'kid'");
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&vector("tampered_payload_RS256"))),
        );
        assert_message(&out, 401, "Invalid signature");
    }
}

#[test]
fn remote_fetch_and_two_workers_share_it() {
    for profile in PROFILES {
        let idp = idp(profile, vec![rsa()]);
        let mut f1 = filter(&idp.host, &remote_config(profile));
        assert_eq!(
            idp.fetches(),
            0,
            "no callout from on_configure (Kong traps it)"
        );
        assert_eq!(f1.tick_period(), Some(Duration::from_secs(1)));
        f1.tick().unwrap();
        assert_eq!(idp.fetches(), 1, "fetched on the first tick");
        let mut f2 = filter(&idp.host, &remote_config(profile));
        f2.tick().unwrap();
        assert_eq!(idp.fetches(), 1, "the second worker uses the shared keys");
        for f in [&mut f1, &mut f2] {
            let out = run(f, get("/").header("authorization", &rs256()));
            assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
        }
        // Ticks before the refresh is due fetch nothing; after it, exactly one worker fetches.
        f1.tick().unwrap();
        f2.tick().unwrap();
        assert_eq!(idp.fetches(), 1);
        idp.host.advance(Duration::from_secs(601));
        f1.tick().unwrap();
        f2.tick().unwrap();
        assert_eq!(idp.fetches(), 2);
        assert_eq!(idp.host.metric("bouncer_jwks_fetches"), Some(2));
    }
}

#[test]
fn rotation_and_unknown_kid_refetch_rate_limit() {
    for profile in PROFILES {
        let idp = idp(profile, vec![rsa()]);
        let mut f = filter(&idp.host, &remote_config(profile));
        assert!(run(&mut f, get("/").header("authorization", &rs256())).is_allowed());
        // The IdP rotates: the EC key appears, the RSA key is gone.
        idp.serve(vec![ec()]);
        let out = run(&mut f, get("/").header("authorization", &es256()));
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            Some("vec-ec256-1"),
            "unknown kid refetched at once"
        );
        assert_eq!(idp.fetches(), 2);
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_message(&out, 401, "No credentials found for given 'kid'");
        assert_eq!(
            idp.fetches(),
            2,
            "at most one unknown-kid refetch per refresh_seconds"
        );
        for _ in 0..20 {
            run(
                &mut f,
                get("/").header("authorization", &bearer(&vector("valid_ES384"))),
            );
        }
        assert_eq!(
            idp.fetches(),
            2,
            "a flood of bad kids cannot hammer the IdP"
        );
        idp.host.advance(Duration::from_secs(601));
        run(
            &mut f,
            get("/").header("authorization", &bearer(&vector("valid_ES384"))),
        );
        assert_eq!(idp.fetches(), 3);
    }
}

#[test]
fn first_request_waits_for_the_first_fetch() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::Manual);
        let mut f = filter(&h, &remote_config(profile));
        assert_eq!(
            f.pending_root_callouts().len(),
            0,
            "nothing fetched before a tick"
        );
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert!(out.is_pending(), "waits instead of failing: {out:?}");
        let call = f
            .pending_callouts()
            .into_iter()
            .find(|c| !c.from_root)
            .unwrap();
        let done = f
            .respond(
                call.token,
                CalloutReply::json(200, &json!({"keys": [rsa()]}).to_string()),
            )
            .unwrap();
        assert_eq!(
            upstream(&done, "x-credential-identifier"),
            Some("vec-rsa-1")
        );
        // A fetch that fails while a request waits: 503.
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::Manual);
        let mut f = filter(&h, &remote_config(profile));
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert!(out.is_pending());
        let call = f
            .pending_callouts()
            .into_iter()
            .find(|c| !c.from_root)
            .unwrap();
        let done = f.respond(call.token, CalloutReply::Timeout).unwrap();
        assert_message(&done, 503, "Signing keys unavailable");
    }
}

#[test]
fn never_loaded_is_503_and_failures_keep_old_keys() {
    for profile in PROFILES {
        let idp = idp(profile, vec![]);
        idp.fail(CalloutReply::json(500, "{}"));
        let mut f = filter(&idp.host, &remote_config(profile));
        assert_message(
            &run(&mut f, get("/").header("authorization", &rs256())),
            503,
            "Signing keys unavailable",
        );
        assert_eq!(idp.host.metric("bouncer_jwks_errors"), Some(1));
        // Retried with backoff on the tick.
        idp.serve(vec![rsa()]);
        idp.host.advance(Duration::from_secs(2));
        f.tick().unwrap();
        assert!(run(&mut f, get("/").header("authorization", &rs256())).is_allowed());
        // A failed refresh keeps serving the last good keys.
        for bad in [
            CalloutReply::json(500, "{}"),
            CalloutReply::Timeout,
            CalloutReply::json(200, "not json"),
            CalloutReply::json(200, r#"{"keys": "x"}"#),
            CalloutReply::json(200, r#"{"keys": []}"#),
            CalloutReply::json(200, r#"{"keys": [{"kty": "RSA", "kid": "broken"}]}"#),
        ] {
            idp.fail(bad);
            idp.host.advance(Duration::from_secs(700));
            f.tick().unwrap();
            assert!(run(&mut f, get("/").header("authorization", &rs256())).is_allowed());
        }
        assert!(idp.host.metric("bouncer_jwks_errors").unwrap() >= 7);
    }
}

#[test]
fn malformed_first_answers_are_503_not_traps() {
    for profile in PROFILES {
        for body in [
            "",
            "[]",
            "{\"keys\": null}",
            "{\"keys\": [1, \"x\", {}]}",
            &"[".repeat(10_000),
        ] {
            let idp = idp(profile, vec![]);
            idp.fail(CalloutReply::json(200, body));
            let mut f = filter(&idp.host, &remote_config(profile));
            assert_message(
                &run(&mut f, get("/").header("authorization", &rs256())),
                503,
                "Signing keys unavailable",
            );
        }
    }
}

/// HOSTS.md: Kong's engine traps a callout made from `on_configure`, and the worker that runs it
/// exits for good. A remote provider must start there and fetch from the first tick (or from
/// the first request, which fetches for itself).
#[test]
fn a_remote_provider_starts_in_kong_and_fetches_on_the_first_tick() {
    let server = idp(Profile::Kong, vec![rsa()]);
    let mut f = bouncer_harness::bouncer()
        .filter(&server.host, &remote_config(Profile::Kong).to_string())
        .unwrap_or_else(|e| panic!("the filter must start in Kong: {e}"));
    assert!(f.pending_root_callouts().is_empty());
    f.tick().unwrap();
    assert_eq!(server.fetches(), 1);
    let out = run(&mut f, get("/").header("authorization", &rs256()));
    assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
    // A worker whose first request comes before its first tick fetches for that request.
    let server = idp(Profile::Kong, vec![rsa()]);
    let mut f = filter(&server.host, &remote_config(Profile::Kong));
    let out = run(&mut f, get("/").header("authorization", &rs256()));
    assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
    assert_eq!(server.fetches(), 1);
}

/// The JWKS answer for `keys`.
fn keys_reply(keys: Vec<Value>) -> CalloutReply {
    CalloutReply::json(200, &json!({ "keys": keys }).to_string())
}

/// CONTRACT.md section 1 (revision 2): an answer to an older fetch never replaces a key set
/// published from a newer one. A slow scheduled refresh is dispatched; the IdP rotates (RSA out,
/// EC in); an unknown-`kid` refetch is dispatched and answered with the rotated set; then the
/// slow refresh lands with the old set. The removed key stays removed, in this worker (which
/// had verified and cached an RSA token) and in another one.
#[test]
fn a_late_refresh_never_resurrects_a_removed_key() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::Manual);
        let mut f = filter(&h, &remote_config(profile));
        f.tick().unwrap();
        let first = f.pending_root_callouts();
        assert_eq!(first.len(), 1, "{profile:?}: the first fetch");
        f.respond(first[0].token, keys_reply(vec![rsa()])).unwrap();
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
        // The scheduled refresh starts, and is slow.
        h.advance(Duration::from_secs(601));
        f.tick().unwrap();
        let slow = f.pending_root_callouts();
        assert_eq!(slow.len(), 1, "{profile:?}: the scheduled refresh");
        // A token with the new kid: refetched at once, answered with the rotated set.
        let out = run(&mut f, get("/").header("authorization", &es256()));
        assert!(
            out.is_pending(),
            "{profile:?}: waits for the refetch: {out:?}"
        );
        let refetch = f
            .pending_callouts()
            .into_iter()
            .find(|c| !c.from_root)
            .expect("the unknown-kid refetch");
        let out = f.respond(refetch.token, keys_reply(vec![ec()])).unwrap();
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            Some("vec-ec256-1")
        );
        // The slow refresh lands with the old set: dropped.
        f.respond(slow[0].token, keys_reply(vec![rsa()])).unwrap();
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_message(&out, 401, "No credentials found for given 'kid'");
        let out = run(&mut f, get("/").header("authorization", &es256()));
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            Some("vec-ec256-1")
        );
        // Another worker reads the shared set: the rotated one.
        let mut f2 = filter(&h, &remote_config(profile));
        let out = run(&mut f2, get("/").header("authorization", &rs256()));
        assert_message(&out, 401, "No credentials found for given 'kid'");
        // Ticks (which re-read shared data) do not bring it back either.
        f.tick().unwrap();
        f2.tick().unwrap();
        for w in [&mut f, &mut f2] {
            let out = run(w, get("/").header("authorization", &rs256()));
            assert_message(&out, 401, "No credentials found for given 'kid'");
        }
        assert!(f.pending_callouts().is_empty() && f2.pending_callouts().is_empty());
        // The next refresh is newer than everything: it publishes as usual.
        h.advance(Duration::from_secs(601));
        f.tick().unwrap();
        let next = f.pending_root_callouts();
        assert_eq!(next.len(), 1, "{profile:?}: the next scheduled refresh");
        f.respond(next[0].token, keys_reply(vec![rsa(), ec()]))
            .unwrap();
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
    }
}

/// The same race with the order reversed (the refresh answers first, then the refetch): both
/// publish, the newer last.
#[test]
fn answers_in_order_both_publish() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::Manual);
        let mut f = filter(&h, &remote_config(profile));
        f.tick().unwrap();
        let first = f.pending_root_callouts();
        f.respond(first[0].token, keys_reply(vec![rsa()])).unwrap();
        h.advance(Duration::from_secs(601));
        f.tick().unwrap();
        let slow = f.pending_root_callouts();
        assert_eq!(slow.len(), 1);
        let out = run(&mut f, get("/").header("authorization", &es256()));
        assert!(out.is_pending());
        let refetch = f
            .pending_callouts()
            .into_iter()
            .find(|c| !c.from_root)
            .unwrap();
        f.respond(slow[0].token, keys_reply(vec![rsa()])).unwrap();
        let out = f.respond(refetch.token, keys_reply(vec![ec()])).unwrap();
        assert_eq!(
            upstream(&out, "x-credential-identifier"),
            Some("vec-ec256-1")
        );
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_message(&out, 401, "No credentials found for given 'kid'");
    }
}

/// CONTRACT.md section 1 (revision 2): `oct` keys of a fetched JWKS are ignored (the endpoint
/// is public: anyone could sign with them). An HS256 token signed with the served secret is
/// refused as for a kid the provider does not have; so is one without `kid`.
#[test]
fn remote_oct_keys_are_ignored() {
    for profile in PROFILES {
        let secret = "published-secret-0123456789abcdef";
        let oct = json!({"kty": "oct", "kid": "sym-1", "alg": "HS256", "k": b64(secret)});
        let oct_no_alg = json!({"kty": "oct", "kid": "sym-2", "k": b64(secret)});
        let idp = idp(profile, vec![oct, oct_no_alg, rsa()]);
        let mut f = filter(&idp.host, &remote_config(profile));
        f.tick().unwrap();
        let claims = json!({"iss": "bouncer-vectors", "sub": "attacker", "exp": NOW + 600});
        for header in [
            json!({"alg": "HS256", "kid": "sym-1"}),
            json!({"alg": "HS256", "kid": "sym-2"}),
            json!({"alg": "HS256"}),
        ] {
            let t = sign_hmac(&header, &claims, secret);
            let out = run(&mut f, get("/").header("authorization", &bearer(&t)));
            assert_message(&out, 401, "No credentials found for given 'kid'");
        }
        // The set's other keys work.
        let out = run(&mut f, get("/").header("authorization", &rs256()));
        assert_eq!(upstream(&out, "x-credential-identifier"), Some("vec-rsa-1"));
        // A set of nothing but oct keys is no usable set.
        let idp = idp_only_oct(profile, secret);
        let mut f = filter(&idp.host, &remote_config(profile));
        let t = sign_hmac(&json!({"alg": "HS256", "kid": "sym-1"}), &claims, secret);
        let out = run(&mut f, get("/").header("authorization", &bearer(&t)));
        assert_message(&out, 503, "Signing keys unavailable");
    }
}

fn idp_only_oct(profile: Profile, secret: &str) -> Idp {
    idp(
        profile,
        vec![json!({"kty": "oct", "kid": "sym-1", "alg": "HS256", "k": b64(secret)})],
    )
}
