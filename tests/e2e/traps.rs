//! The trap test: thousands of malformed and random requests (seeded, so reproducible) through
//! one filter instance per host profile, with every feature configured. No trap, no 5xx but
//! the contract's two 503s, a `WWW-Authenticate` on every 401, no spoofed or control-character
//! header upstream, and bounded module memory.
//!
//! `BOUNCER_TRAP_REQUESTS` (default 20,000 per profile) and `BOUNCER_TRAP_SEED` change the run.

use crate::support::*;
use bouncer_harness::{CalloutReply, Outcome, Profile, Request, RequestState};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// xorshift64*: tiny, seeded, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A string of hostile characters: controls, DEL, separators, U+FFFD, multi-byte, and
    /// (lossily decoded) random bytes.
    fn junk(&mut self, max_len: usize) -> String {
        const POOL: &[&str] = &[
            "\u{0}",
            "\u{1}",
            "\t",
            "\n",
            "\r",
            "\u{1b}",
            "\u{7f}",
            " ",
            ".",
            "..",
            "=",
            ";",
            ",",
            "%",
            "%00",
            "%2E",
            "%zz",
            "&",
            "?",
            "/",
            "+",
            "\"",
            "'",
            "\\",
            "{",
            "}",
            "[",
            "]",
            ":",
            "\u{fffd}",
            "é",
            "😀",
            "\u{10ffff}",
            "\u{feff}",
            "\u{2028}",
            "a",
            "Z",
            "0",
            "-",
            "_",
            "eyJ",
            "Bearer",
            "null",
            "jwt-token",
            "apikey",
        ];
        let len = self.below(max_len + 1);
        let mut s = String::new();
        while s.len() < len {
            if self.chance(15) {
                let n = self.below(8) + 1;
                s.push_str(&String::from_utf8_lossy(&self.bytes(n)));
            } else {
                let piece = *self.pick(POOL);
                s.push_str(piece);
            }
        }
        s
    }
    /// A random JSON value, `depth` levels at most.
    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 7 } else { 9 }) {
            0 => Value::Null,
            1 => json!(self.chance(50)),
            2 => json!(self.next() as i64),
            3 => {
                let nums = [
                    json!(NOW + 600),
                    json!(NOW - 1),
                    json!(u64::MAX),
                    json!(-0.0),
                    json!(1e300),
                    json!(NOW as f64 + 0.5),
                    json!(i64::MIN),
                ];
                self.pick(&nums).clone()
            }
            4 | 5 => json!(self.junk(24)),
            6 => json!(self
                .pick(&[
                    "web-key",
                    "partner-key",
                    "bouncer-vectors",
                    "https://idp.example",
                    "https://remote.example",
                    "view_orders",
                    "view_roles",
                    "user-9",
                    "stolen"
                ])
                .to_string()),
            7 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(5) {
                    let k = self.claim_name();
                    m.insert(k, self.json(depth - 1));
                }
                Value::Object(m)
            }
        }
    }
    fn claim_name(&mut self) -> String {
        const NAMES: &[&str] = &[
            "iss",
            "sub",
            "exp",
            "nbf",
            "iat",
            "aud",
            "jti",
            "permissions",
            "customer_id",
            "roles",
            "kid",
            "alg",
            "crit",
            "jwk",
            "jku",
        ];
        if self.chance(80) {
            self.pick(NAMES).to_string()
        } else {
            self.junk(8)
        }
    }
}

/// The filter's configuration: every feature at once.
fn trap_config(profile: Profile) -> Value {
    let (authz, idp) = match profile {
        Profile::Envoy => ("authz", "idp"),
        Profile::Kong => ("127.0.0.1:8181", "127.0.0.1:9000"),
    };
    let jwk = |f: &str| -> Value { serde_json::from_str(&read_vector_file(f)).unwrap() };
    let mut cfg = with(
        base_config(),
        json!({
            "cookie_names": ["jwt-token"],
            "uri_param_names": ["jwt", "access_token"],
            "header_names": ["authorization", "x-token"],
            "key_names": ["apikey", "x-api-key"],
            "claims_to_verify": ["exp", "nbf"],
            "realm": "api",
            "run_on_preflight": false,
            "hide_credentials": true,
            "max_token_bytes": 4096,
            "claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"},
                                  {"claim": "roles", "header": "x-roles"},
                                  {"claim": "sub", "header": "x-user"}],
            "forward_payload_header": "x-jwt-payload",
            "acl": {"deny": ["banned"]},
            "group_routes": {"partners": [{"methods": ["GET", "POST"], "path": "^/api/v1/(orders|roles)(/[^/]+)*$"}]},
            "permissions": {"view_orders": [{"methods": ["GET"], "path": "^/api/v1/orders(/[^/]+)?$"}],
                            "view_roles": [{"methods": ["GET", "POST"], "path": "^/api/v1/roles(/[^/?#]+)?$"}]},
            "revocations": {"jti": ["stolen"], "subjects_issued_before": {"user-9": NOW - 100}},
            "authz": {"upstream": authz, "authority": "authz.internal", "path": "/v1/data/authz",
                      "timeout_ms": 300, "cache_ttl_seconds": 30, "skip_groups": ["first-party"],
                      "allowed_headers": ["x-allowed-fields"]},
            "jwks_providers": [
                {"issuer": "https://idp.example", "consumer": "staff",
                 "jwks": {"keys": [jwk("keys/rsa2048_public.jwk.json"), jwk("keys/ec_p256_public.jwk.json"),
                                   jwk("keys/ed25519_public.jwk.json"),
                                   {"kty": "oct", "kid": "hmac-1", "k": b64(SECRET)}]}},
                {"issuer": "https://remote.example", "consumer": "staff",
                 "upstream": idp, "authority": "idp.example.com", "path": "/jwks",
                 "refresh_seconds": 60, "timeout_ms": 200}
            ]
        }),
    );
    let consumers = cfg["consumers"].as_array_mut().unwrap();
    consumers.push(json!({"username": "staff", "groups": ["employees"]}));
    consumers.push(json!({"username": "banned-app", "groups": ["banned"],
        "jwt_secrets": [{"key": "banned-key", "algorithm": "HS256", "secret": SECRET}]}));
    consumers.push(json!({"username": "vectors", "groups": ["first-party"],
        "jwt_secrets": [{"key": "bouncer-vectors", "algorithm": "ES256",
                         "public_key": read_vector_file("keys/ec_p256_public.pem")}]}));
    // The base cast's `mobile` holds `bouncer-vectors` too: drop it (keys are unique).
    consumers.retain(|c| c["username"] != "mobile");
    cfg
}

/// The authorization service and the IdP: answers cycle through good, bad and hostile ones.
fn install_handler(h: &bouncer_harness::Host) {
    let n = AtomicU64::new(0);
    let jwks = json!({"keys": [
        serde_json::from_str::<Value>(&read_vector_file("keys/rsa2048_public.jwk.json")).unwrap(),
        {"kty": "oct", "kid": "remote-hmac", "k": b64(SECRET)}
    ]})
    .to_string();
    h.set_callout_handler(move |call| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        if call.path() == "/jwks" {
            return match i % 5 {
                0 => CalloutReply::json(500, "{}"),
                1 => CalloutReply::json(200, "{\"keys\": [1, {}, null]}"),
                _ => CalloutReply::json(200, &jwks),
            };
        }
        match i % 11 {
            0..=2 => CalloutReply::json(200, r#"{"result": true}"#),
            3 => CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "a,b", "x-consumer-id": "SPOOF"}}}"#,
            ),
            4 => CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "a\r\nx: SPOOF"}}}"#,
            ),
            5 => CalloutReply::json(200, r#"{"result": false}"#),
            6 => CalloutReply::json(500, r#"{"result": true}"#),
            7 => CalloutReply::Timeout,
            8 => CalloutReply::json(200, "{\"result\": [[[[[[[[[[[[[[[[").after(Duration::from_millis(10)),
            9 => CalloutReply::ok(200, vec![b'{'; 70_000]),
            _ => CalloutReply::json(200, r#"{"result": true}"#).after(Duration::from_secs(1)),
        }
    });
}

const KEYS: &[&str] = &[
    "web-key",
    "partner-key",
    "banned-key",
    "bouncer-vectors",
    "https://idp.example",
    "https://remote.example",
    "nobody",
];

const RESERVED: &[&str] = &[
    "x-consumer-id",
    "x-consumer-username",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "x-consumer-groups",
    "x-anonymous-consumer",
    "x-customer-id",
    "x-roles",
    "x-user",
    "x-jwt-payload",
    "x-allowed-fields",
];

/// Valid-looking claims (sometimes broken) for a random credential.
fn random_claims(r: &mut Rng, now: u64) -> Value {
    let iss = if r.chance(50) {
        *r.pick(&["web-key", "partner-key"])
    } else {
        *r.pick(KEYS)
    };
    let mut c = json!({"iss": iss, "sub": format!("user-{}", r.below(12)),
                       "iat": now - 10, "exp": now + 600});
    if r.chance(50) {
        c["permissions"] = json!([r.pick(&["view_orders", "view_roles", "admin"]).to_string()]);
    }
    if r.chance(20) {
        c["customer_id"] = if r.chance(50) {
            json!(r.junk(12))
        } else {
            r.json(2)
        };
    }
    if r.chance(10) {
        c["roles"] = r.json(2);
    }
    if r.chance(10) {
        c["jti"] = json!("stolen");
    }
    if r.chance(40) {
        for _ in 0..r.below(3) {
            let k = r.claim_name();
            c[k] = r.json(2);
        }
    }
    c
}

fn random_header(r: &mut Rng) -> Value {
    let alg = if r.chance(70) {
        json!("HS256")
    } else if r.chance(85) {
        json!(r
            .pick(&["HS384", "RS256", "ES256", "EdDSA", "none"])
            .to_string())
    } else {
        r.json(1)
    };
    let mut h = json!({"alg": alg, "typ": "JWT"});
    if r.chance(30) {
        h["kid"] = if r.chance(60) {
            json!(r
                .pick(&["hmac-1", "remote-hmac", "vec-rsa-1", "unknown"])
                .to_string())
        } else {
            r.json(1)
        };
    }
    if r.chance(10) {
        let k = r.claim_name();
        h[k] = r.json(2);
    }
    h
}

/// A token: well signed, mutated, vector, or junk.
fn random_token(r: &mut Rng, vectors: &[String], now: u64) -> String {
    match r.below(12) {
        0..=5 => {
            // HMAC-signed whatever the header's alg says (HS256 when it names none).
            let h = random_header(r);
            let secret = if r.chance(90) { SECRET } else { "wrong" };
            sign_hmac(&h, &random_claims(r, now), secret)
        }
        6..=8 => {
            let base = if r.chance(50) {
                hs256(random_claims(r, now))
            } else {
                r.pick(vectors).clone()
            };
            mutate(r, base)
        }
        9 => r.pick(vectors).clone(),
        10 => {
            let h = if r.chance(50) {
                b64(r.json(3).to_string())
            } else {
                let n = r.below(40);
                b64(r.bytes(n))
            };
            let p = b64(r.json(3).to_string());
            let n = r.below(70);
            format!("{h}.{p}.{}", b64(r.bytes(n)))
        }
        _ => r.junk(60),
    }
}

fn mutate(r: &mut Rng, token: String) -> String {
    let mut t: Vec<char> = token.chars().collect();
    for _ in 0..=r.below(4) {
        if t.is_empty() {
            break;
        }
        let i = r.below(t.len());
        match r.below(9) {
            0 => t[i] = *r.pick(&['A', '_', '-', '.', '=', '+', '/', '\u{0}', 'é']),
            1 => {
                t.remove(i);
            }
            2 => t.truncate(i),
            3 => t.insert(i, '.'),
            4 => t.extend(".".chars().chain(r.junk(10).chars())),
            5 => {
                let s: String = t.iter().collect();
                let segs: Vec<&str> = s.split('.').collect();
                let mut segs: Vec<String> = segs.iter().map(|x| x.to_string()).collect();
                if segs.len() > 1 {
                    let a = r.below(segs.len());
                    let b = r.below(segs.len());
                    segs.swap(a, b);
                }
                t = segs.join(".").chars().collect();
            }
            6 => {
                let s: String = t.iter().collect();
                let mut segs: Vec<String> = s.split('.').map(str::to_owned).collect();
                let k = r.below(segs.len());
                segs[k] = b64(r.json(3).to_string());
                t = segs.join(".").chars().collect();
            }
            7 => {
                let s: String = t.iter().collect();
                t = format!("{s}{s}").chars().collect();
            }
            _ => t[i] = (b'A' + (r.next() % 26) as u8) as char,
        }
    }
    t.into_iter().collect()
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn random_request(r: &mut Rng, vectors: &[String], now: u64) -> Request {
    let method = if r.chance(90) {
        r.pick(&["GET", "GET", "POST", "OPTIONS", "DELETE", "HEAD"])
            .to_string()
    } else {
        r.junk(6)
    };
    let mut path = if r.chance(80) {
        r.pick(&[
            "/",
            "/api/v1/orders",
            "/api/v1/orders/42",
            "/api/v1/orders/42/items",
            "/api/v1/roles/7",
            "/api/v1/roles",
            "/admin",
        ])
        .to_string()
    } else {
        format!("/{}", r.junk(40))
    };
    let token = random_token(r, vectors, now);
    let mut query = Vec::new();
    if r.chance(8) {
        let name = r.pick(&["jwt", "access_token", "j%77t"]).to_string();
        let v = if r.chance(50) {
            pct(&token)
        } else {
            token.clone()
        };
        query.push(format!("{name}={v}"));
    }
    if r.chance(5) {
        let k = if r.chance(50) {
            "partner-api-key".to_owned()
        } else {
            r.junk(12)
        };
        query.push(format!("apikey={}", pct(&k)));
    }
    if r.chance(15) {
        query.push(r.junk(30));
    }
    if !query.is_empty() || r.chance(5) {
        path = format!("{path}?{}", query.join("&"));
    }
    let mut req = Request::new(&method, &path);
    if r.chance(5) {
        req = req.header(":authority", &r.junk(10));
    }
    let with_header = r.chance(75);
    if with_header {
        let scheme = if r.chance(80) {
            "Bearer "
        } else {
            r.pick(&["bearer\t", "BEARER  ", "Basic ", "", "Bearer", " Bearer "])
        };
        let name = if r.chance(85) {
            "authorization"
        } else {
            "x-token"
        };
        req = req.header(name, &format!("{scheme}{token}"));
        if r.chance(5) {
            let again = if r.chance(50) {
                token.clone()
            } else {
                random_token(r, vectors, now)
            };
            req = req.header(name, &format!("Bearer {again}"));
        }
    }
    if r.chance(8) {
        let t = if r.chance(70) {
            token.clone()
        } else {
            random_token(r, vectors, now)
        };
        let mut cookie = format!("theme={}; jwt-token={t}", r.junk(5));
        if r.chance(20) {
            cookie = format!("{cookie}; {}", r.junk(30));
        }
        req = req.header("cookie", &cookie);
    }
    if r.chance(if with_header { 3 } else { 40 }) {
        let k = if r.chance(60) {
            "partner-api-key".to_owned()
        } else {
            r.junk(20)
        };
        let name = *r.pick(&["apikey", "x-api-key"]);
        req = req.header(name, &k);
    }
    if r.chance(15) {
        let name = *r.pick(RESERVED);
        req = req.header(name, "SPOOF");
        if r.chance(30) {
            req = req.header(name, if r.chance(50) { "" } else { "SPOOF" });
        }
    }
    if r.chance(5) {
        req = req
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST");
    }
    for _ in 0..r.below(3) {
        let name: String = r
            .junk(10)
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ':')
            .collect();
        if !name.is_empty() && !RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            req = req.header(&name, &r.junk(40));
        }
    }
    req
}

/// The invariants every outcome must hold; returns the status for the tally.
fn check(i: usize, out: &Outcome) -> u16 {
    match out.state {
        RequestState::Allowed => {
            for name in RESERVED {
                for v in out.request_headers.get_all(name) {
                    assert!(
                        !v.contains("SPOOF"),
                        "#{i}: {name}: {v:?} reached the upstream"
                    );
                    assert!(
                        !v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f),
                        "#{i}: {name}: {v:?} has a control character"
                    );
                }
            }
            out.status().unwrap_or(200)
        }
        RequestState::LocalResponse => {
            let r = out.local_response().unwrap();
            if r.status == 503 && r.body.is_empty() {
                // Kong, after a callout the engine failed (see assert_authz_unavailable).
                assert!(
                    out.logged("authorization service unavailable"),
                    "#{i}: {out:?}"
                );
                return r.status;
            }
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "#{i}: {out:?}"
            );
            let body = r.json();
            match r.status {
                400 | 403 => assert!(body["message"].is_string(), "#{i}: {body}"),
                401 => assert!(
                    r.header("www-authenticate").is_some(),
                    "#{i}: a 401 without WWW-Authenticate: {out:?}"
                ),
                503 => assert!(
                    body["message"] == "Signing keys unavailable"
                        || body["message"] == "Authorization service unavailable",
                    "#{i}: {body}"
                ),
                s => panic!("#{i}: status {s}: {out:?}"),
            }
            r.status
        }
        other => panic!("#{i}: request left {other:?}: {out:?}"),
    }
}

/// Distinct good tokens sent first: more than the verified-token cache holds.
const WARM_UP: usize = 9000;

#[test]
fn thousands_of_hostile_requests_no_trap_no_5xx_bounded_memory() {
    let per_profile: usize = std::env::var("BOUNCER_TRAP_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("BOUNCER_TRAP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_b0a7);
    let doc: Value = serde_json::from_str(&read_vector_file("tokens.json")).unwrap();
    let vectors: Vec<String> = doc["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect();
    let mut report = Vec::new();
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    for profile in PROFILES {
        let start = Instant::now();
        let mut r = Rng::new(seed);
        let h = host(profile);
        install_handler(&h);
        let mut f = filter(&h, &trap_config(profile));
        let mut tally: BTreeMap<u16, usize> = BTreeMap::new();
        // Warm-up: fill the verified-token cache (two generations of 4096 in each worker)
        // with distinct good tokens, so what follows measures growth past its bound.
        let mem_start = f.memory_size();
        for i in 0..WARM_UP {
            let mut c = claims("web-key");
            c["jti"] = json!(format!("warm-{i}"));
            let out = f
                .run(get("/").header("authorization", &bearer(&hs256(c))))
                .unwrap_or_else(|e| panic!("{profile:?} warm-up #{i} trapped: {e}"));
            assert!(out.is_allowed(), "{out:?}");
        }
        let mem_warm = f.memory_size();
        let mut mem_half = 0;
        for i in 0..per_profile {
            if i == per_profile / 2 {
                mem_half = f.memory_size();
            }
            if i % 97 == 0 {
                h.advance(Duration::from_secs(7));
                f.tick()
                    .unwrap_or_else(|e| panic!("{profile:?} tick before #{i}: {e}"));
            }
            let req = random_request(&mut r, &vectors, h.now_unix());
            let shown = format!("{req:?}");
            let out = f
                .run(req)
                .unwrap_or_else(|e| panic!("{profile:?} #{i} trapped: {e}\nrequest: {shown}"));
            *tally.entry(check(i, &out)).or_default() += 1;
            if let Some(resp) = out.local_response() {
                if resp.body.is_empty() {
                    *messages
                        .entry(format!("{} (no body)", resp.status))
                        .or_default() += 1;
                    continue;
                }
                let body = resp.json();
                let m = body["message"]
                    .as_str()
                    .map_or_else(|| body.to_string(), str::to_owned);
                *messages.entry(format!("{} {m}", resp.status)).or_default() += 1;
            }
        }
        let mem_end = f.memory_size();
        let took = start.elapsed();
        report.push(format!(
            "{profile:?}: {WARM_UP} good + {per_profile} hostile requests in {took:.1?}, statuses {tally:?}, \
             memory {} KiB at start, {} KiB after warm-up, {} KiB half-way, {} KiB at the end",
            mem_start / 1024,
            mem_warm / 1024,
            mem_half / 1024,
            mem_end / 1024
        ));
        assert!(f.poisoned().is_none());
        for l in h.logs() {
            assert!(
                !l.message.contains(SECRET) && !l.message.contains("partner-api-key"),
                "a secret in a log line: {}",
                l.message
            );
        }
        assert!(
            mem_end < 2 * mem_warm,
            "{profile:?}: memory grew from {mem_warm} to {mem_end}"
        );
        // Every kind of answer was exercised.
        for s in [200, 400, 401, 403, 503] {
            assert!(tally.contains_key(&s), "{profile:?}: no {s} in {tally:?}");
        }
    }
    println!("{}", report.join("\n"));
    println!("{messages:#?}");
}

/// The per-worker verified-token cache's byte budget (`LOCAL_BUDGET` in src/glue/tokens.rs).
const TOKEN_CACHE_BUDGET: usize = 8 << 20;
/// Beyond the budget: the allocator's slack and what one request holds for a moment.
const MEMORY_MARGIN: usize = 4 << 20;

/// A valid HS256 token for `web-key`, padded to exactly-or-just-under `max_token_bytes` (8192)
/// with a claim that costs the most once parsed: an array of zeros (2 bytes of JSON each, a
/// whole `serde_json::Value` each in memory).
fn padded_token(i: usize) -> String {
    let make = |n: usize| {
        let mut c = claims("web-key");
        c["jti"] = json!(format!("pad-{i:08}"));
        c["pad"] = json!(vec![0; n]);
        hs256(c)
    };
    // The length does not depend on `i` (fixed-width `jti`): search once.
    static ZEROS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let n = *ZEROS.get_or_init(|| {
        let (mut lo, mut hi) = (0_usize, 8192_usize);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if make(mid).len() <= 8192 {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    });
    make(n)
}

/// CONTRACT.md section 1 (revision 2): tokens padded to `max_token_bytes` cannot grow a
/// worker's memory past the token cache's byte budget. (Before it, 8,192 such entries could
/// hold ~900 MiB: the entry count was the only bound.)
#[test]
fn padded_tokens_cannot_grow_memory_past_the_cache_budget() {
    let n: usize = std::env::var("BOUNCER_PADDED_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        let t = padded_token(0);
        assert!(t.len() > 8100 && t.len() <= 8192, "{}", t.len());
        let out = run(&mut f, get("/").header("authorization", &bearer(&t)));
        assert!(out.is_allowed(), "{out:?}");
        let start = f.memory_size();
        let mut ceiling = start;
        for i in 1..=n {
            let out = run(
                &mut f,
                get("/").header("authorization", &bearer(&padded_token(i))),
            );
            assert!(out.is_allowed(), "{profile:?} #{i}: {out:?}");
            ceiling = ceiling.max(f.memory_size());
        }
        // The last ones are still cached (served without verifying: no new cache miss).
        let misses = h.metric("bouncer_token_cache_misses");
        let out = run(
            &mut f,
            get("/").header("authorization", &bearer(&padded_token(n))),
        );
        assert!(out.is_allowed());
        assert_eq!(h.metric("bouncer_token_cache_misses"), misses);
        println!(
            "{profile:?}: {n} distinct tokens of {} bytes: memory {} KiB after the first, ceiling {} KiB (+{} KiB; budget {} KiB)",
            t.len(),
            start / 1024,
            ceiling / 1024,
            (ceiling - start) / 1024,
            TOKEN_CACHE_BUDGET / 1024
        );
        assert!(
            ceiling - start <= TOKEN_CACHE_BUDGET + MEMORY_MARGIN,
            "{profile:?}: memory grew from {start} to {ceiling}"
        );
    }
}
