//! Heap allocations of the engine's hot paths, counted natively by a global allocator: a
//! figure no machine noise moves (as the host calls `tests/e2e/hotpath.rs` pins). In Kong's
//! engine an allocation and its free cost ~40-80 ns (more when the memory is cold:
//! docs/PERFORMANCE.md), so every one on the hot path is counted here, and a change that adds
//! one fails. The bounds are today's counts; lower them when a change removes allocations.
//! (The glue adds two per request in wasm: the host's header buffer and the decoded list.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bouncer::config::Policy;
use bouncer::engine::VerifiedToken;
use bouncer::engine::{self, CacheHit, Env, Outcome, RemoteKeys, RequestView, Signals};
use hmac::{Hmac, Mac};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The per-worker token cache, as the glue's first level behaves.
#[derive(Default)]
struct Cache(RefCell<HashMap<String, Arc<VerifiedToken>>>);

impl Env for Cache {
    fn keys(&self, _provider: usize) -> RemoteKeys {
        RemoteKeys::Unavailable
    }
    fn cached(&self, token: &str) -> Option<CacheHit> {
        self.0.borrow().get(token).cloned().map(CacheHit::Full)
    }
    fn remember(&self, token: &str, verified: &Arc<VerifiedToken>) {
        self.0
            .borrow_mut()
            .insert(token.to_owned(), Arc::clone(verified));
    }
}

const SECRET: &str = "perf-secret-0123456789abcdef0123";

fn hs256(claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

fn policy() -> Policy {
    Policy::from_json(&format!(
        r#"{{"consumers": [
            {{"username": "web", "id": "id-web", "custom_id": "web-app", "groups": ["first-party"],
              "jwt_secrets": [{{"key": "web-key", "algorithm": "HS256", "secret": "{SECRET}"}}]}},
            {{"username": "bot", "id": "id-bot", "groups": ["service"],
              "keyauth_credentials": [{{"id": "bot-key-1", "key_sha256": "890679b27709ed1c42effa4422002ac643c1387e6b397cf3e7eeaf761fadc9c6"}}]}}]}}"#
    ))
    .unwrap()
}

const NOW: f64 = 1_800_000_000.0;

/// Allocations of one `evaluate` (the outcome dropped inside the count) with `credential` as
/// the request's credential header.
fn count(policy: &Policy, env: &Cache, credential: (&str, &str)) -> usize {
    let headers = [
        (":method", "GET"),
        (":path", "/api/v1/orders/42?expand=items"),
        (":authority", "api.example"),
        (":scheme", "https"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
        credential,
    ];
    let req = RequestView::from_headers(&headers);
    let mut signals = Signals::default();
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let outcome = engine::evaluate(policy, &req, NOW, env, &mut signals);
    let allowed = matches!(outcome, Outcome::Allow(_));
    drop(outcome);
    COUNTING.with(|c| c.set(false));
    assert!(allowed);
    COUNT.with(Cell::get)
}

#[test]
fn hot_paths_allocate_no_more_than_today() {
    let policy = policy();
    let env = Cache::default();
    let token = |i: u32| {
        hs256(&format!(
            r#"{{"iss":"web-key","sub":"user-1","exp":{},"jti":"j{i}"}}"#,
            NOW + 3600.0
        ))
    };
    // The first verification keys the secret's HMAC (a table allocated once per thread).
    let warm = format!("Bearer {}", token(0));
    count(&policy, &env, ("authorization", &warm));

    let new = format!("Bearer {}", token(1));
    let new_count = count(&policy, &env, ("authorization", &new));
    let cached_count = count(&policy, &env, ("authorization", &new));
    let key_count = count(&policy, &env, ("apikey", "perf-api-key"));
    eprintln!(
        "allocations: new HS256 {new_count}, cached HS256 {cached_count}, API key {key_count}"
    );
    // A new token: its three decoded segments, the claims (a map node, the members' keys and
    // string values: 8), the verified token, the test cache's copy of the token, the edits.
    // (The payload segment is kept only where `forward_payload_header` sends it; the
    // credential is named by its index in the configuration, its key borrowed from there.)
    assert!(new_count <= 14, "new HS256 token: {new_count} allocations");
    // A cached token: the edits.
    assert!(
        cached_count <= 1,
        "cached HS256 token: {cached_count} allocations"
    );
    // An API key: the edits (the key's id is borrowed).
    assert!(key_count <= 1, "API key: {key_count} allocations");
}
