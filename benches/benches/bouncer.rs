//! `make bench`: what a request costs through the release `bouncer.wasm` in the harness (a
//! proxy-wasm host on wasmtime; the module compiled once, instances reused as a proxy would),
//! against the floor: the bare signature verification of the same tokens compiled to wasm
//! (`benches/floor`, run by wasmtime too) and natively. Prints one table; medians from this run.
//!
//! Environment:
//! - `BENCH_TOKENS` (default 101): fresh tokens per algorithm and mode (new, cached elsewhere).
//! - `BENCH_SAMPLES` (default 51): samples of the batched measurements; `BENCH_BATCH` (200).
//! - `BENCH_MEMORY_TOKENS` (default 100000): distinct tokens for the memory check (0: skip).
//! - `BENCH_MODULES="label=path.wasm,..."`: instead of the full table, a short comparison of
//!   several builds of the filter (opt-level, wasm-opt): size and the main request costs.
//! - `BENCH_SCALE` (default 100000): consumers for the configuration-scale rows (issue 15):
//!   time to configure 10,000 and N consumers and linear memory after, and memory per
//!   consumer for each credential kind (0: skip). `BENCH_SCALE_ONLY=1`: only those rows.
//! - `BOUNCER_BENCH_WASM`: the filter module to measure (default: the release build).
//! - `BENCH_COLD_ONLY=1`: only the cold-cache rows (`BENCH_EVICT_KIB`, default 1024, written
//!   before each request); `BENCH_COLD_BASE=path.wasm` adds another build's rows to them,
//!   interleaved request by request (two builds compared in one run).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bouncer_crypto::{Alg, Key};
use bouncer_harness::scale::{Routes, Scale};
use bouncer_harness::{CalloutReply, Filter, Harness, Host, Request};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The hosts' fixed clock.
const NOW: u64 = 1_800_000_000;
/// The request every measurement sends (plus its credential).
const PATH: &str = "/api/v1/orders/42?expand=items";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vectors() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/keys"
    ))
}

fn read_key(name: &str) -> String {
    let p = vectors().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy, Debug)]
struct Stats {
    /// Median, microseconds.
    med: f64,
    p25: f64,
    p75: f64,
}

fn stats(mut us: Vec<f64>) -> Stats {
    assert!(!us.is_empty());
    us.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    Stats {
        med: at(0.5),
        p25: at(0.25),
        p75: at(0.75),
    }
}

/// Times `f` once per input (for expensive, use-once inputs such as fresh tokens).
fn time_each<T>(inputs: Vec<T>, mut f: impl FnMut(T)) -> Stats {
    let mut us = Vec::with_capacity(inputs.len());
    for x in inputs {
        let t = Instant::now();
        f(x);
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    stats(us)
}

/// Times batches: `make` builds a batch (untimed), `f` runs on each element (timed); the
/// sample is the mean over the batch.
fn time_batches<T>(
    samples: usize,
    mut make: impl FnMut() -> Vec<T>,
    mut f: impl FnMut(T),
) -> Stats {
    let mut us = Vec::with_capacity(samples);
    for _ in 0..samples {
        let batch = make();
        let n = batch.len() as f64;
        let t = Instant::now();
        for x in batch {
            f(x);
        }
        us.push(t.elapsed().as_secs_f64() * 1e6 / n);
    }
    stats(us)
}

// ---------------------------------------------------------------------------------------------
// Tokens

enum Signer {
    Hmac(Vec<u8>),
    Rs256(rsa::pkcs1v15::SigningKey<sha2::Sha256>),
    Ps256(rsa::pss::BlindedSigningKey<sha2::Sha256>),
    Es256(p256::ecdsa::SigningKey),
    Es384(p384::ecdsa::SigningKey),
    EdDSA(ed25519_compact::SecretKey),
}

struct Algo {
    /// Row label.
    label: &'static str,
    alg: Alg,
    kid: &'static str,
    signer: Signer,
    /// Key material for the config and the floor: the HMAC secret or the public PEM.
    public: String,
}

impl Algo {
    fn all() -> Vec<Algo> {
        use p256::pkcs8::DecodePrivateKey;
        let rsa_key =
            || rsa::RsaPrivateKey::from_pkcs8_pem(&read_key("rsa2048_private.pem")).unwrap();
        let secret = read_key("hmac_secret.txt").trim().to_owned();
        vec![
            Algo {
                label: "HS256",
                alg: Alg::HS256,
                kid: "",
                signer: Signer::Hmac(secret.clone().into_bytes()),
                public: secret,
            },
            Algo {
                label: "RS256 (2048)",
                alg: Alg::RS256,
                kid: "vec-rsa-1",
                signer: Signer::Rs256(rsa::pkcs1v15::SigningKey::new(rsa_key())),
                public: read_key("rsa2048_public.pem"),
            },
            Algo {
                label: "PS256 (2048)",
                alg: Alg::PS256,
                kid: "vec-rsa-1",
                signer: Signer::Ps256(rsa::pss::BlindedSigningKey::new(rsa_key())),
                public: read_key("rsa2048_public.pem"),
            },
            Algo {
                label: "ES256",
                alg: Alg::ES256,
                kid: "vec-ec256-1",
                signer: Signer::Es256(
                    p256::ecdsa::SigningKey::from_pkcs8_pem(&read_key("ec_p256_private.pem"))
                        .unwrap(),
                ),
                public: read_key("ec_p256_public.pem"),
            },
            Algo {
                label: "ES384",
                alg: Alg::ES384,
                kid: "vec-ec384-1",
                signer: Signer::Es384(
                    p384::ecdsa::SigningKey::from_pkcs8_pem(&read_key("ec_p384_private.pem"))
                        .unwrap(),
                ),
                public: read_key("ec_p384_public.pem"),
            },
            Algo {
                label: "EdDSA",
                alg: Alg::EdDSA,
                kid: "vec-ed25519-1",
                signer: Signer::EdDSA(
                    ed25519_compact::KeyPair::from_pem(&read_key("ed25519_private.pem"))
                        .unwrap()
                        .sk,
                ),
                public: read_key("ed25519_public.pem"),
            },
        ]
    }

    fn iss(&self) -> String {
        format!("bench-{}", self.alg.name().to_ascii_lowercase())
    }

    fn alg_index(&self) -> u32 {
        Alg::ALL.iter().position(|a| *a == self.alg).unwrap() as u32
    }

    /// The consumer's credential in the filter's configuration.
    fn credential(&self) -> Value {
        let mut c = json!({"key": self.iss(), "algorithm": self.alg.name()});
        match self.alg {
            Alg::HS256 => c["secret"] = json!(self.public),
            Alg::RS256 | Alg::PS256 => c["rsa_public_key"] = json!(self.public),
            _ => c["public_key"] = json!(self.public),
        }
        c
    }

    /// A fresh token: `n` makes it unique (jti and sub).
    fn token(&self, n: u64, extra: &Value) -> String {
        let mut header = json!({"alg": self.alg.name(), "typ": "JWT"});
        if !self.kid.is_empty() {
            header["kid"] = json!(self.kid);
        }
        let mut claims = json!({
            "iss": self.iss(), "sub": format!("user-{n}"), "aud": "api",
            "iat": NOW - 60, "exp": NOW + 3600,
            "jti": format!("{}-{n}", self.alg.name()),
            "scope": "orders:read orders:write",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let msg = input.as_bytes();
        let sig: Vec<u8> = match &self.signer {
            Signer::Hmac(secret) => {
                use hmac::Mac;
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            Signer::Rs256(k) => {
                use rsa::signature::{SignatureEncoding, Signer as _};
                k.sign(msg).to_vec()
            }
            Signer::Ps256(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                k.sign_with_rng(&mut rsa::rand_core::OsRng, msg).to_vec()
            }
            Signer::Es256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            Signer::Es384(k) => {
                use p384::ecdsa::signature::Signer as _;
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            Signer::EdDSA(k) => k.sign(msg, None).to_vec(),
        };
        format!("{input}.{}", b64(sig))
    }
}

fn request(token: &str) -> Request {
    request_to("GET", PATH).header("authorization", &format!("Bearer {token}"))
}

fn request_to(method: &str, path: &str) -> Request {
    Request::new(method, path)
        .header("user-agent", "bouncer-bench/1.0")
        .header("accept", "application/json")
        .header("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e")
}

fn run_ok(f: &mut Filter, r: Request) {
    let out = f.run(r).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.is_allowed(), "request not allowed: {out:?}");
}

// ---------------------------------------------------------------------------------------------
// The floor: bare verification in wasm (benches/floor) and natively

struct Floor {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
    buf: u32,
    verify: wasmtime::TypedFunc<(u32, u32, u32, u32), i32>,
    verify_rc: wasmtime::TypedFunc<(u32, u32, u32, u32), i32>,
    keys: Vec<u32>,
}

impl Floor {
    fn new(path: &Path, algos: &[Algo]) -> Floor {
        use wasmtime::{Config, Engine, Linker, Module, Store};
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{}: {e} (build it: make bench builds it)", path.display()));
        let engine = Engine::new(&Config::new()).unwrap();
        let module = Module::new(&engine, bytes).unwrap();
        let mut linker = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = linker.instantiate(&mut store, &module).unwrap();
        if let Ok(init) = inst.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).unwrap();
        }
        let memory = inst.get_memory(&mut store, "memory").unwrap();
        let alloc = inst
            .get_typed_func::<u32, u32>(&mut store, "floor_alloc")
            .unwrap();
        let key = inst
            .get_typed_func::<(u32, u32, u32), i32>(&mut store, "floor_key")
            .unwrap();
        let buf = alloc.call(&mut store, 16384).unwrap();
        let mut keys = Vec::new();
        for a in algos {
            let kind = u32::from(a.alg != Alg::HS256);
            memory
                .write(&mut store, buf as usize, a.public.as_bytes())
                .unwrap();
            let k = key
                .call(&mut store, (kind, buf, a.public.len() as u32))
                .unwrap();
            assert!(k >= 0, "floor: key for {} refused", a.label);
            keys.push(k as u32);
        }
        Floor {
            verify: inst.get_typed_func(&mut store, "floor_verify").unwrap(),
            verify_rc: inst
                .get_typed_func(&mut store, "floor_verify_rustcrypto")
                .unwrap(),
            store,
            memory,
            buf,
            keys,
        }
    }

    /// Writes the token (untimed), returns a closure-ready length.
    fn load(&mut self, token: &str) -> u32 {
        self.memory
            .write(&mut self.store, self.buf as usize, token.as_bytes())
            .unwrap();
        token.len() as u32
    }

    fn run(&mut self, rustcrypto: bool, algo: usize, alg: u32, len: u32) -> bool {
        let f = if rustcrypto {
            &self.verify_rc
        } else {
            &self.verify
        };
        f.call(&mut self.store, (self.keys[algo], alg, self.buf, len))
            .unwrap()
            == 1
    }
}

fn native_key(a: &Algo) -> Key {
    if a.alg == Alg::HS256 {
        Key::hmac(a.public.as_bytes())
    } else {
        Key::from_pem(&a.public).unwrap()
    }
}

fn native_verify(key: &Key, alg: Alg, token: &str) -> bool {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    key.verify(alg, input.as_bytes(), &sig)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn host() -> Host {
    Host::envoy().at_unix(NOW).with_clusters(&["authz"])
}

fn filter(h: &Harness, host: &Host, config: &Value) -> Filter {
    h.filter(host, &config.to_string())
        .unwrap_or_else(|e| panic!("config refused: {e}"))
}

fn algo_config(algos: &[Algo]) -> Value {
    let consumers: Vec<Value> = algos
        .iter()
        .map(|a| {
            json!({"username": format!("c-{}", a.iss()), "groups": ["first-party"],
                        "jwt_secrets": [a.credential()]})
        })
        .collect();
    json!({"consumers": consumers, "audiences": ["api"]})
}

struct Params {
    tokens: usize,
    samples: usize,
    batch: usize,
}

/// The host calls one request makes (all its callbacks), counted by the harness.
fn host_calls(f: &mut Filter, r: Request) -> u64 {
    bouncer_harness::count_host_calls(true);
    f.run(r).unwrap_or_else(|e| panic!("{e}"));
    let n = bouncer_harness::take_host_calls().values().sum();
    bouncer_harness::count_host_calls(false);
    n
}

/// A timing and the host calls of one such request.
#[derive(Clone, Copy)]
struct Row {
    s: Stats,
    calls: u64,
}

/// A cached-token request, repeated: (filter, token) -> median per request.
fn cached(p: &Params, f: &mut Filter, token: &str) -> Stats {
    for _ in 0..20 {
        run_ok(f, request(token));
    }
    time_batches(
        p.samples,
        || (0..p.batch).map(|_| request(token)).collect(),
        |r| run_ok(f, r),
    )
}

/// [`cached`], with the host calls of one more such request.
fn cached_row(p: &Params, f: &mut Filter, token: &str) -> Row {
    let s = cached(p, f, token);
    Row {
        s,
        calls: host_calls(f, request(token)),
    }
}

/// The same request (with no credential handling differences) through the no-op filter, or
/// (`config` "host-calls") through the host-call floor: the calls of a cached request, no work.
fn noop_request(p: &Params, noop: &Harness, token: &str, config: &str) -> Row {
    let host = host();
    let mut f = noop.filter(&host, config).unwrap();
    cached_row(p, &mut f, token)
}

struct AlgRow {
    label: &'static str,
    /// Host calls of a request with a new token, a cached one, one cached by another instance.
    calls: [u64; 3],
    new: Stats,
    local: Stats,
    shared: Stats,
    floor: Stats,
    floor_rc: Stats,
    native: Stats,
}

fn per_algorithm(p: &Params, h: &Harness, floor: &mut Floor, algos: &[Algo]) -> Vec<AlgRow> {
    let config = algo_config(algos);
    let mut rows = Vec::new();
    let mut serial = 0_u64;
    let mut fresh = |a: &Algo, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                serial += 1;
                a.token(serial, &json!({}))
            })
            .collect()
    };
    for (i, a) in algos.iter().enumerate() {
        let host = host();
        let mut fa = filter(h, &host, &config);
        let mut fb = filter(h, &host, &config);
        let key = native_key(a);
        let alg = a.alg_index();
        // Warm up every path.
        for t in fresh(a, 5) {
            run_ok(&mut fa, request(&t));
            let len = floor.load(&t);
            assert!(floor.run(false, i, alg, len) && floor.run(true, i, alg, len));
            assert!(native_verify(&key, a.alg, &t));
        }
        // (a), (d), (e), interleaved over the same fresh tokens.
        let tokens = fresh(a, p.tokens);
        let (mut new, mut fl, mut fl_rc, mut nat) = (vec![], vec![], vec![], vec![]);
        for t in &tokens {
            let r = request(t);
            let s = Instant::now();
            run_ok(&mut fa, r);
            new.push(s.elapsed().as_secs_f64() * 1e6);
            let len = floor.load(t);
            let s = Instant::now();
            let ok = floor.run(false, i, alg, len);
            fl.push(s.elapsed().as_secs_f64() * 1e6);
            assert!(ok);
            let s = Instant::now();
            let ok = floor.run(true, i, alg, len);
            fl_rc.push(s.elapsed().as_secs_f64() * 1e6);
            assert!(ok);
            let s = Instant::now();
            let ok = native_verify(&key, a.alg, t);
            nat.push(s.elapsed().as_secs_f64() * 1e6);
            assert!(ok);
        }
        // (c): instance A verifies, instance B (same host) sees the token for the first time.
        let tokens = fresh(a, p.tokens);
        let mut shared = Vec::new();
        for t in tokens {
            run_ok(&mut fa, request(&t));
            let r = request(&t);
            let s = Instant::now();
            run_ok(&mut fb, r);
            shared.push(s.elapsed().as_secs_f64() * 1e6);
        }
        // Host calls of (a) and (c).
        let t = fresh(a, 1).remove(0);
        let calls_new = host_calls(&mut fa, request(&t));
        let calls_shared = host_calls(&mut fb, request(&t));
        // (b): one token, cached in this instance.
        let t = fresh(a, 1).remove(0);
        let local = cached(p, &mut fb, &t);
        let calls_local = host_calls(&mut fb, request(&t));
        // Hot counters are handed to the host on the tick.
        fa.tick().unwrap_or_else(|e| panic!("{e}"));
        fb.tick().unwrap_or_else(|e| panic!("{e}"));
        let hits_shared = host.metric("bouncer_token_cache_hits_shared").unwrap_or(0);
        // HMAC tokens skip the shared level (verifying costs less than looking up).
        assert!(
            a.alg == Alg::HS256 || hits_shared >= p.tokens as u64,
            "{}: only {hits_shared} shared-cache hits",
            a.label
        );
        rows.push(AlgRow {
            label: a.label,
            calls: [calls_new, calls_local, calls_shared],
            new: stats(new),
            local,
            shared: stats(shared),
            floor: stats(fl),
            floor_rc: stats(fl_rc),
            native: stats(nat),
        });
        eprintln!("  {} done", a.label);
    }
    rows
}

/// Route ACL with `n` rules; the request matches the last one. `indexed`: each rule starts
/// with a distinct literal prefix (the common case); else none has one (every regex runs).
fn acl_config(hs: &Algo, n: usize, indexed: bool) -> Value {
    let routes: Vec<Value> = (0..n)
        .map(|i| {
            let path = if indexed {
                format!("/api/v1/svc{i}/orders(/[^/]+)?")
            } else {
                format!("(/api/v1/svc{i})/orders(/[^/]+)?")
            };
            json!({"methods": ["GET", "POST"], "path": path})
        })
        .collect();
    json!({"consumers": [{"username": "c", "jwt_secrets": [hs.credential()], "routes": routes}],
           "audiences": ["api"]})
}

fn acl(p: &Params, h: &Harness, hs: &Algo, n: usize, indexed: bool) -> Row {
    let host = host();
    let mut f = filter(h, &host, &acl_config(hs, n, indexed));
    let t = hs.token(1, &json!({}));
    let path = format!("/api/v1/svc{}/orders/42", n - 1);
    let req = || request_to("GET", &path).header("authorization", &format!("Bearer {t}"));
    for _ in 0..20 {
        run_ok(&mut f, req());
    }
    let s = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_ok(&mut f, r),
    );
    Row {
        s,
        calls: host_calls(&mut f, req()),
    }
}

/// Local permission model with `n` activities (`n / 10` permissions of 10 activities); the
/// token holds up to five permissions, the last of which has the matching activity.
fn permissions(p: &Params, h: &Harness, hs: &Algo, n: usize) -> Row {
    let perms = n / 10;
    let mut model = serde_json::Map::new();
    for j in 0..perms {
        let acts: Vec<Value> = (0..10)
            .map(|k| json!({"methods": ["GET"], "path": format!("/api/v1/p{j}/r{k}(/[^/]+)?")}))
            .collect();
        model.insert(format!("perm{j}"), json!(acts));
    }
    let config = json!({"consumers": [{"username": "c", "jwt_secrets": [hs.credential()]}],
                        "audiences": ["api"], "permissions": model});
    let host = host();
    let mut f = filter(h, &host, &config);
    let held: Vec<String> = (perms.saturating_sub(5)..perms)
        .map(|j| format!("perm{j}"))
        .collect();
    let t = hs.token(1, &json!({ "permissions": held }));
    let path = format!("/api/v1/p{}/r9/42", perms - 1);
    let req = || request_to("GET", &path).header("authorization", &format!("Bearer {t}"));
    for _ in 0..20 {
        run_ok(&mut f, req());
    }
    let s = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_ok(&mut f, r),
    );
    Row {
        s,
        calls: host_calls(&mut f, req()),
    }
}

/// A cached token whose request hits the authorization decision cache, and the same without
/// any authorization configured.
fn authz(p: &Params, h: &Harness, hs: &Algo) -> (Row, Row) {
    let t = hs.token(1, &json!({"permissions": ["view_orders"]}));
    let base = json!({"consumers": [{"username": "c", "jwt_secrets": [hs.credential()]}],
                      "audiences": ["api"]});
    let mut with_authz = base.clone();
    with_authz["authz"] = json!({"upstream": "authz", "authority": "authz.internal",
        "path": "/v1/data/http/authz", "cache_ttl_seconds": 3600});
    let h1 = host();
    h1.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
    let mut f = filter(h, &h1, &with_authz);
    let hit = cached_row(p, &mut f, &t);
    let calls = h1.metric("bouncer_authz_calls").unwrap_or(0);
    assert_eq!(
        calls, 1,
        "the decision cache should answer all but the first"
    );
    let h2 = host();
    let mut f = filter(h, &h2, &base);
    (hit, cached_row(p, &mut f, &t))
}

/// The OPA rows: the `opa-envoy` body answered by the decision cache; an uncached callout
/// answered with a constant (the callout's own cost); an uncached callout whose answer the
/// reference service computes by evaluating `examples/policies/rbac.rego` with regorus; and
/// that evaluation alone, natively, on the body the filter sent.
struct OpaRows {
    cached: Row,
    uncached_constant: Row,
    uncached_rego: Row,
    rego_alone: Stats,
}

fn opa(p: &Params, h: &Harness, hs: &Algo) -> OpaRows {
    use bouncer_examples::authz::Service;
    use std::sync::{Arc, Mutex};
    let t = hs.token(1, &json!({"permissions": ["view_orders"]}));
    let config = |ttl: u64| {
        json!({"consumers": [{"username": "c", "jwt_secrets": [hs.credential()]}],
               "audiences": ["api"],
               "authz": {"upstream": "authz", "authority": "authz.internal",
                         "path": "/v1/data/bouncer/rbac/result", "input_format": "opa-envoy",
                         "allowed_headers": ["x-allowed-fields"], "cache_ttl_seconds": ttl}})
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies");
    let service = Service::from_files(
        &[format!("{dir}/rbac.rego")],
        Some(&format!("{dir}/rbac-data.json")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let answer =
        r#"{"result": {"allowed": true, "headers": {"x-allowed-fields": "id,status,total"}}}"#;

    let h1 = host();
    h1.set_callout_handler(move |_| CalloutReply::json(200, answer));
    let mut f = filter(h, &h1, &config(3600));
    let cached_stats = cached_row(p, &mut f, &t);
    assert_eq!(h1.metric("bouncer_authz_calls"), Some(1));

    let h2 = host();
    h2.set_callout_handler(move |_| CalloutReply::json(200, answer));
    let mut f = filter(h, &h2, &config(0));
    let uncached_constant = cached_row(p, &mut f, &t);

    let h3 = host();
    let last_body: Arc<Mutex<Vec<u8>>> = Arc::default();
    let lb = Arc::clone(&last_body);
    let svc = Mutex::new(service.clone());
    h3.set_callout_handler(move |call| {
        let a = svc
            .lock()
            .unwrap()
            .answer(call.method(), call.path(), &call.body);
        *lb.lock().unwrap() = call.body.clone();
        assert_eq!(a.body["result"]["allowed"], true, "{}", a.body);
        CalloutReply::json(a.status, &a.body.to_string())
    });
    let mut f = filter(h, &h3, &config(0));
    let uncached_rego = cached_row(p, &mut f, &t);
    let calls = h3.metric("bouncer_authz_calls").unwrap_or(0);
    assert!(
        calls > 20,
        "every request asked the service ({calls} calls)"
    );

    let body = last_body.lock().unwrap().clone();
    let mut alone = service;
    let rego_alone = time_batches(
        p.samples,
        || (0..p.batch).map(|_| ()).collect(),
        |()| {
            let a = alone.answer("POST", "/v1/data/bouncer/rbac/result", &body);
            assert_eq!(a.status, 200);
        },
    );
    OpaRows {
        cached: cached_stats,
        uncached_constant,
        uncached_rego,
        rego_alone,
    }
}

/// A CORS preflight let through unauthenticated (`run_on_preflight: false`): the filter reads
/// the headers, checks the reserved ones and counts the request; no credential, no edits.
fn preflight(p: &Params, h: &Harness, hs: &Algo) -> Row {
    let config = json!({"run_on_preflight": false,
        "consumers": [{"username": "c", "jwt_secrets": [hs.credential()]}]});
    let host = host();
    let mut f = filter(h, &host, &config);
    let req = || {
        request_to("OPTIONS", PATH)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET")
    };
    for _ in 0..20 {
        run_ok(&mut f, req());
    }
    let s = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_ok(&mut f, r),
    );
    Row {
        s,
        calls: host_calls(&mut f, req()),
    }
}

fn api_key(p: &Params, h: &Harness) -> Row {
    use sha2::Digest;
    let key = "bench-api-key-0123456789abcdef";
    let digest: String = sha2::Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = json!({"consumers": [{"username": "svc", "groups": ["services"],
        "keyauth_credentials": [{"id": "svc-key-1", "key_sha256": digest}]}]});
    let host = host();
    let mut f = filter(h, &host, &config);
    let req = || request_to("GET", PATH).header("apikey", key);
    for _ in 0..20 {
        run_ok(&mut f, req());
    }
    let s = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_ok(&mut f, r),
    );
    Row {
        s,
        calls: host_calls(&mut f, req()),
    }
}

/// Cold caches: each request timed alone, after the bench wrote `BENCH_EVICT_KIB` (default
/// 1024, this machine's L2 per core) of other memory, so that the module's code and data come
/// from the last-level cache or memory, as in Kong's engine, where nginx and the kernel run
/// between two requests (and between two callbacks). Warm, the harness runs a cached request's
/// module code in about a third of the time perf measures in the engine; cold, within about
/// 10 % of it (docs/PERFORMANCE.md, "Cold caches").
struct Evictor(Vec<u8>);

impl Evictor {
    fn new() -> Evictor {
        Evictor(vec![0; env_usize("BENCH_EVICT_KIB", 1024).max(1) * 1024])
    }

    fn evict(&mut self) {
        for i in (0..self.0.len()).step_by(64) {
            self.0[i] = self.0[i].wrapping_add(1);
        }
        std::hint::black_box(&self.0);
    }
}

/// The cold-cache rows: the no-op, the host-call floor, cached HS256 and RS256, an API key
/// and a new HS256 token, in that order, interleaved request by request (so that a slow
/// stretch of the machine falls on every row alike). With `other` (a second build of the
/// filter, `BENCH_COLD_BASE`), its four Bouncer rows follow, interleaved with the rest: two
/// builds compared in one run, request by request.
fn cold_rows(
    p: &Params,
    h: &Harness,
    other: Option<&Harness>,
    noop: &Harness,
    algos: &[Algo],
) -> Vec<(String, Stats)> {
    use sha2::Digest;
    let hs = &algos[0];
    let rs = algos.iter().find(|a| a.alg == Alg::RS256).unwrap();
    let key = "bench-api-key-0123456789abcdef";
    let digest: String = sha2::Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut config = algo_config(algos);
    config["consumers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"username": "svc", "groups": ["services"],
            "keyauth_credentials": [{"id": "svc-key-1", "key_sha256": digest}]}));
    let host = host();
    let mut fnoop = noop.filter(&host, "").unwrap();
    let mut ffloor = noop.filter(&host, "host-calls:4").unwrap();
    let mut filters: Vec<Filter> = std::iter::once(h)
        .chain(other)
        .map(|m| filter(m, &host, &config))
        .collect();
    let hs_token = hs.token(1, &json!({}));
    let rs_token = rs.token(1, &json!({}));
    let samples = (p.samples * 10).max(50);
    let fresh: Vec<String> = (0..samples)
        .map(|i| hs.token(20_000_000 + i as u64, &json!({})))
        .collect();
    for _ in 0..20 {
        run_ok(&mut fnoop, request(&hs_token));
        run_ok(&mut ffloor, request(&hs_token));
        for f in &mut filters {
            run_ok(f, request(&hs_token));
            run_ok(f, request(&rs_token));
            run_ok(f, request_to("GET", PATH).header("apikey", key));
        }
    }
    let mut ev = Evictor::new();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); 2 + 4 * filters.len()];
    bouncer_harness::time_host_calls(true);
    for token in &fresh {
        // The module's time: the request's minus its host calls' (the harness's host code,
        // cold too, is not what Kong's engine would spend).
        let mut one = |f: &mut Filter, r: Request| {
            ev.evict();
            bouncer_harness::take_host_time();
            let t = Instant::now();
            run_ok(f, r);
            let all = t.elapsed();
            all.saturating_sub(bouncer_harness::take_host_time())
                .as_secs_f64()
                * 1e6
        };
        times[0].push(one(&mut fnoop, request(&hs_token)));
        times[1].push(one(&mut ffloor, request(&hs_token)));
        for (i, f) in filters.iter_mut().enumerate() {
            let row = 2 + 4 * i;
            times[row].push(one(f, request(&hs_token)));
            times[row + 1].push(one(f, request(&rs_token)));
            times[row + 2].push(one(f, request_to("GET", PATH).header("apikey", key)));
            times[row + 3].push(one(f, request(token)));
        }
    }
    bouncer_harness::time_host_calls(false);
    let mut labels = vec![
        "no-op filter".to_owned(),
        "host-call floor (the calls of a cached request)".to_owned(),
    ];
    for build in ["", " (BENCH_COLD_BASE)"].iter().take(filters.len()) {
        for row in ["cached HS256", "cached RS256", "API key", "new HS256 token"] {
            labels.push(format!("{row}{build}"));
        }
    }
    labels
        .into_iter()
        .zip(times.into_iter().map(stats))
        .collect()
}

fn print_cold(cold: &[(String, Stats)]) {
    println!();
    println!(
        "Cold caches: the module's time per request (the request's minus its host calls'), {} KiB written before each request, rows interleaved:",
        env_usize("BENCH_EVICT_KIB", 1024).max(1)
    );
    println!("| request, cold caches | module µs, median [p25–p75] | over the no-op | over the host-call floor |");
    println!("| --- | ---: | ---: | ---: |");
    for (what, s) in cold {
        println!(
            "| {what} | {} | {:.2} | {:.2} |",
            spread(*s),
            s.med - cold[0].1.med,
            s.med - cold[1].1.med
        );
    }
}

/// A cached HS256 token in a `jwt-token` cookie, a request with 4,000 distinct `jwt-token`
/// cookies (55 KB: the answer is `Multiple tokens provided`, found at the second), and that
/// request through the no-op filter (what carrying 55 KB costs the host alone).
fn cookies(p: &Params, h: &Harness, noop: &Harness, hs: &Algo) -> (Row, Row, Row) {
    let config = json!({"consumers": [{"username": "c", "jwt_secrets": [hs.credential()]}],
                        "audiences": ["api"], "cookie_names": ["jwt-token"]});
    let host = host();
    let mut f = filter(h, &host, &config);
    let t = hs.token(1, &json!({}));
    let one = format!("jwt-token={t}");
    let req = || request_to("GET", PATH).header("cookie", &one);
    for _ in 0..20 {
        run_ok(&mut f, req());
    }
    let one_cookie = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_ok(&mut f, r),
    );
    let one_cookie = Row {
        s: one_cookie,
        calls: host_calls(&mut f, req()),
    };
    let many: Vec<String> = (0..4000).map(|i| format!("jwt-token=t{i:05}")).collect();
    let many = many.join("; ");
    assert!(many.len() >= 55_000);
    let req = || request_to("GET", PATH).header("cookie", &many);
    let run_401 = |f: &mut Filter, r: Request| {
        let out = f.run(r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status(), Some(401), "{out:?}");
    };
    for _ in 0..20 {
        run_401(&mut f, req());
    }
    let many_cookies = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| run_401(&mut f, r),
    );
    let many_cookies = Row {
        s: many_cookies,
        calls: host_calls(&mut f, req()),
    };
    let mut f = noop.filter(&host, "").unwrap();
    let noop_many = time_batches(
        p.samples,
        || (0..p.batch).map(|_| req()).collect(),
        |r| {
            f.run(r).unwrap_or_else(|e| panic!("{e}"));
        },
    );
    let noop_many = Row {
        s: noop_many,
        calls: host_calls(&mut f, req()),
    };
    (one_cookie, many_cookies, noop_many)
}

/// Linear memory of one instance after `n` distinct tokens of `algo`, at checkpoints; and the
/// host's shared data held by the token cache.
fn memory(h: &Harness, algo: &Algo, n: usize) -> (Vec<(usize, usize)>, usize, usize) {
    let host = host();
    let mut f = filter(h, &host, &algo_config(std::slice::from_ref(algo)));
    let mut points = vec![(0, f.memory_size())];
    let checkpoints = [n / 100, n / 10, n / 4, n / 2, 3 * n / 4, n];
    for i in 1..=n {
        run_ok(
            &mut f,
            request(&algo.token(1_000_000 + i as u64, &json!({}))),
        );
        if checkpoints.contains(&i) {
            points.push((i, f.memory_size()));
        }
    }
    let (mut entries, mut bytes) = (0, 0);
    for slot in 0..16384 {
        if let Some((v, _)) = host.shared_data(&format!("bouncer/tok/{slot}")) {
            entries += 1;
            bytes += v.len();
        }
    }
    (points, entries, bytes)
}

// ---------------------------------------------------------------------------------------------
// Configuration scale (issue 15)

const MIB: f64 = 1024.0 * 1024.0;

/// Configure a fresh instance with `text`: (seconds, linear memory after `on_configure`).
fn configure(h: &Harness, text: &str) -> (f64, usize) {
    let host = host();
    let started = Instant::now();
    let f = h
        .filter(&host, text)
        .unwrap_or_else(|e| panic!("config refused: {e}"));
    (started.elapsed().as_secs_f64(), f.memory_size())
}

/// One configuration: the median time of `runs`, the memory (the same every run), the text.
struct ScaleRow {
    label: String,
    consumers: usize,
    seconds: f64,
    memory: usize,
    text: usize,
}

fn scale_row(h: &Harness, label: &str, scale: Scale, runs: usize) -> ScaleRow {
    let text = scale.config();
    let mut times = Vec::new();
    let mut memory = 0;
    for _ in 0..runs {
        let (t, m) = configure(h, &text);
        times.push(t);
        memory = m;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    ScaleRow {
        label: label.to_owned(),
        consumers: scale.consumers,
        seconds: times[times.len() / 2],
        memory,
        text: text.len(),
    }
}

/// Per credential kind, over `n` consumers: (kind, memory per consumer, text per consumer),
/// each as the difference to `n` consumers without it.
fn scale_kinds(h: &Harness, n: usize) -> (ScaleRow, Vec<(&'static str, f64, f64)>) {
    let bare = scale_row(h, "bare", Scale::bare(n), 1);
    let kinds = [
        (
            "HS256 secret",
            Scale {
                hs256: true,
                ..Scale::bare(n)
            },
        ),
        (
            "RSA public key (2048 bits)",
            Scale {
                rsa: true,
                ..Scale::bare(n)
            },
        ),
        (
            "API key (key_sha256)",
            Scale {
                api_key: true,
                ..Scale::bare(n)
            },
        ),
        (
            "one route of its own",
            Scale {
                routes: Routes::Distinct,
                ..Scale::bare(n)
            },
        ),
        (
            "one route shared by all",
            Scale {
                routes: Routes::Shared,
                ..Scale::bare(n)
            },
        ),
        (
            "two groups",
            Scale {
                groups: 2,
                ..Scale::bare(n)
            },
        ),
    ];
    let rows = kinds
        .into_iter()
        .map(|(label, scale)| {
            let r = scale_row(h, label, scale, 1);
            let per = |a: usize, b: usize| (a as f64 - b as f64) / n as f64;
            (label, per(r.memory, bare.memory), per(r.text, bare.text))
        })
        .collect();
    (bare, rows)
}

fn print_scale(rows: &[ScaleRow], empty: usize, bare: &ScaleRow, kinds: &[(&str, f64, f64)]) {
    println!();
    println!(
        "configuration scale (issue 15): a fresh instance configured (on_vm_start + on_configure), median of 3 (1 for the last); linear memory after it; an instance configured with {{}} has {:.1} MiB",
        empty as f64 / MIB
    );
    println!();
    println!("| configuration | consumers | configure (s) | linear memory (MiB) | of which the text (MiB) | per consumer (bytes) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.1} | {:.0} |",
            r.label,
            r.consumers,
            r.seconds,
            r.memory as f64 / MIB,
            r.text as f64 / MIB,
            (r.memory as f64 - empty as f64) / r.consumers as f64
        );
    }
    println!();
    println!(
        "memory per consumer by what it holds ({} consumers; a consumer with a username and an id: {:.0} bytes, {:.0} of them its text):",
        bare.consumers,
        (bare.memory as f64 - empty as f64) / bare.consumers as f64,
        bare.text as f64 / bare.consumers as f64
    );
    println!();
    println!("| each consumer also holds | + linear memory per consumer (bytes) | + of which its text (bytes) |");
    println!("| --- | ---: | ---: |");
    for (label, mem, text) in kinds {
        println!("| {label} | {mem:.0} | {text:.0} |");
    }
}

/// The scale rows: 10,000 and `n` consumers of issue 15 (own routes, shared routes), and the
/// memory per credential kind.
fn scale(h: &Harness, n: usize) {
    let (_, empty) = configure(h, "{}");
    let mut rows = vec![scale_row(
        h,
        "HS256 secret, API key, own route",
        Scale::issue15(10_000),
        3,
    )];
    rows.push(scale_row(
        h,
        "HS256 secret, API key, own route",
        Scale::issue15(n),
        3,
    ));
    rows.push(scale_row(
        h,
        "HS256 secret, API key, shared route",
        Scale {
            routes: Routes::Shared,
            ..Scale::issue15(n)
        },
        3,
    ));
    rows.push(scale_row(
        h,
        "RS256 key, API key, own route, two groups",
        Scale {
            rsa: true,
            api_key: true,
            routes: Routes::Distinct,
            groups: 2,
            ..Scale::bare(n)
        },
        1,
    ));
    let (bare, kinds) = scale_kinds(h, n);
    print_scale(&rows, empty, &bare, &kinds);
}

// ---------------------------------------------------------------------------------------------
// Output

fn us(s: Stats) -> String {
    if s.med >= 100.0 {
        format!("{:.0}", s.med)
    } else if s.med >= 10.0 {
        format!("{:.1}", s.med)
    } else {
        format!("{:.2}", s.med)
    }
}

fn spread(s: Stats) -> String {
    format!(
        "{} [{}–{}]",
        us(s),
        us(Stats { med: s.p25, ..s }),
        us(Stats { med: s.p75, ..s })
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

fn filter_path() -> PathBuf {
    std::env::var_os("BOUNCER_BENCH_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(bouncer_harness::bouncer_wasm_path)
}

fn load(path: &Path) -> Harness {
    Harness::load(path).unwrap_or_else(|e| panic!("{e} (run `make bench`, which builds it)"))
}

fn modules_mode(list: &str, p: &Params, algos: &[Algo]) {
    println!("| build | size (bytes) | HS256 new | RS256 new | ES256 new | EdDSA new | cached | API key |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (label, path) = item.split_once('=').expect("label=path");
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let h = load(Path::new(path));
        let config = algo_config(algos);
        let mut cells = Vec::new();
        let mut serial = 10_000_000_u64;
        for a in algos
            .iter()
            .filter(|a| matches!(a.alg, Alg::HS256 | Alg::RS256 | Alg::ES256 | Alg::EdDSA))
        {
            let host = host();
            let mut f = filter(&h, &host, &config);
            let tokens: Vec<String> = (0..p.tokens)
                .map(|_| {
                    serial += 1;
                    a.token(serial, &json!({}))
                })
                .collect();
            for t in tokens.iter().take(5) {
                run_ok(&mut f, request(t));
            }
            cells.push(time_each(tokens.into_iter().skip(5).collect(), |t| {
                run_ok(&mut f, request(&t))
            }));
        }
        let host = host();
        let mut f = filter(&h, &host, &config);
        cells.push(cached(p, &mut f, &algos[0].token(1, &json!({}))));
        cells.push(api_key(p, &h).s);
        let cells: Vec<String> = cells.into_iter().map(us).collect();
        println!("| {label} | {size} | {} |", cells.join(" | "));
    }
}

/// `BENCH_PROFILE=cached|new|shared|authz`: one scenario in a loop for about ten
/// seconds (for `perf record`, with `BOUNCER_HARNESS_PERFMAP=1 BOUNCER_HARNESS_NO_CACHE=1`).
fn profile(what: &str, algos: &[Algo]) {
    let h = load(&filter_path());
    let hs = &algos[0];
    let host = host();
    host.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
    let mut config = algo_config(algos);
    if what == "authz" {
        config["authz"] = json!({"upstream": "authz", "authority": "authz.internal",
            "path": "/v1/data/http/authz", "cache_ttl_seconds": 3600});
    }
    let mut fa = filter(&h, &host, &config);
    let mut fb = filter(&h, &host, &config);
    let t = hs.token(1, &json!({}));
    let end = Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0_u64;
    while Instant::now() < end {
        for _ in 0..100 {
            n += 1;
            match what {
                "new" => run_ok(&mut fa, request(&hs.token(n + 100, &json!({})))),
                "shared" => {
                    let t = hs.token(n + 100, &json!({}));
                    run_ok(&mut fa, request(&t));
                    run_ok(&mut fb, request(&t));
                }
                _ => run_ok(&mut fa, request(&t)),
            }
        }
    }
    eprintln!("{n} requests");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let p = Params {
        tokens: env_usize("BENCH_TOKENS", 101).max(3),
        samples: env_usize("BENCH_SAMPLES", 51).max(3),
        batch: env_usize("BENCH_BATCH", 200).max(1),
    };
    let algos = Algo::all();
    if let Ok(list) = std::env::var("BENCH_MODULES") {
        modules_mode(&list, &p, &algos);
        return;
    }
    if let Ok(what) = std::env::var("BENCH_PROFILE") {
        profile(&what, &algos);
        return;
    }
    let scale_n = env_usize("BENCH_SCALE", 100_000);
    if std::env::var("BENCH_SCALE_ONLY").is_ok_and(|v| v == "1") {
        eprintln!("bench: configuration scale ({scale_n} consumers)");
        scale(&load(&filter_path()), scale_n.max(10_000));
        return;
    }
    let started = Instant::now();
    let wasm = filter_path();
    if std::env::var("BENCH_COLD_ONLY").is_ok_and(|v| v == "1") {
        let floor_path =
            bouncer_harness::bouncer_wasm_path().with_file_name("bouncer_bench_floor.wasm");
        eprintln!("bench: cold caches only ({})", wasm.display());
        let base = std::env::var_os("BENCH_COLD_BASE")
            .filter(|p| !p.is_empty())
            .map(|path| load(Path::new(&path)));
        print_cold(&cold_rows(
            &p,
            &load(&wasm),
            base.as_ref(),
            &load(&floor_path),
            &algos,
        ));
        return;
    }
    let floor_path =
        bouncer_harness::bouncer_wasm_path().with_file_name("bouncer_bench_floor.wasm");
    eprintln!(
        "bench: filter {} , floor {}",
        wasm.display(),
        floor_path.display()
    );
    let h = load(&wasm);
    let noop = load(&floor_path);
    let mut floor = Floor::new(&floor_path, &algos);

    eprintln!("bench: per algorithm ({} fresh tokens per mode)", p.tokens);
    let rows = per_algorithm(&p, &h, &mut floor, &algos);
    let hs = &algos[0];
    eprintln!("bench: harness baseline, API key, ACL, permissions, authz, OPA");
    let base = noop_request(&p, &noop, &hs.token(1, &json!({})), "");
    // The bench's consumer gets four identity headers.
    let host_floor = noop_request(&p, &noop, &hs.token(1, &json!({})), "host-calls:4");
    let apikey = api_key(&p, &h);
    let pre = preflight(&p, &h, hs);
    let acl1 = acl(&p, &h, hs, 1, true);
    let acl100 = acl(&p, &h, hs, 100, true);
    let acl5000 = acl(&p, &h, hs, 5000, true);
    let acl5000_linear = acl(&p, &h, hs, 5000, false);
    let perm10 = permissions(&p, &h, hs, 10);
    let perm5000 = permissions(&p, &h, hs, 5000);
    let (authz_hit, no_authz) = authz(&p, &h, hs);
    let opa_rows = opa(&p, &h, hs);
    let (one_cookie, many_cookies, noop_cookies) = cookies(&p, &h, &noop, hs);
    eprintln!("bench: cold caches");
    let cold = cold_rows(&p, &h, None, &noop, &algos);
    let mem_tokens = env_usize("BENCH_MEMORY_TOKENS", 100_000);
    let mem = (mem_tokens > 0).then(|| {
        eprintln!("bench: memory after {mem_tokens} distinct EdDSA tokens");
        let eddsa = algos.iter().find(|a| a.alg == Alg::EdDSA).unwrap();
        memory(&h, eddsa, mem_tokens)
    });

    assert_eq!(
        host_floor.calls, rows[0].calls[1],
        "the host-call floor makes the calls of a cached HS256 request"
    );
    let net = |s: Stats| s.med - base.s.med;
    println!();
    println!("Bouncer bench: {}", machine());
    println!(
        "filter: {} ({} bytes); medians of {} fresh tokens per cell (a, c, d, e) or of {} batches of {} requests (b, others); µs",
        wasm.display(),
        std::fs::metadata(&wasm).map_or(0, |m| m.len()),
        p.tokens,
        p.samples,
        p.batch
    );
    println!("harness baseline (a no-op proxy-wasm filter, same request): {} µs per request, {} host calls; \"net\" = minus this", spread(base.s), base.calls);
    println!(
        "host-call floor (the calls of a cached request with the bench consumer's four identity headers, no other work): {} µs, net {:.2}, {} host calls; cached HS256 (b) is {:.2} µs above it",
        spread(host_floor.s),
        net(host_floor.s),
        host_floor.calls,
        rows[0].local.med - host_floor.s.med
    );
    println!();
    println!("| algorithm | (a) new token | (b) cached here | (b) net | (c) cached by another instance | (c) net | (d) wasm floor | (e) native | (a)/(d) | (c)net/(b)net | RustCrypto wasm floor | host calls (a)/(b)/(c) |");
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {:.2} | {:.2} | {} | {}/{}/{} |",
            r.label,
            spread(r.new),
            spread(r.local),
            net(r.local),
            spread(r.shared),
            net(r.shared),
            spread(r.floor),
            spread(r.native),
            r.new.med / r.floor.med,
            net(r.shared) / net(r.local),
            spread(r.floor_rc),
            r.calls[0],
            r.calls[1],
            r.calls[2],
        );
    }
    println!();
    println!("| request (cached HS256 token unless said) | median µs [p25–p75] | net µs | ratio | host calls |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let line = |what: &str, r: Row, ratio: String| {
        println!(
            "| {what} | {} | {:.2} | {ratio} | {} |",
            spread(r.s),
            net(r.s),
            r.calls
        );
    };
    line(
        "CORS preflight let through (headers read, nothing else)",
        pre,
        String::new(),
    );
    line(
        "API key (SHA-256 + constant-time compare)",
        apikey,
        String::new(),
    );
    line("route ACL, 1 rule", acl1, "1.00".into());
    line(
        "route ACL, 100 rules",
        acl100,
        format!(
            "{:.2} (net {:.2})",
            acl100.s.med / acl1.s.med,
            net(acl100.s) / net(acl1.s)
        ),
    );
    line(
        "route ACL, 5,000 rules",
        acl5000,
        format!(
            "{:.2} (net {:.2})",
            acl5000.s.med / acl1.s.med,
            net(acl5000.s) / net(acl1.s)
        ),
    );
    line(
        "route ACL, 5,000 rules without literal prefix (worst case)",
        acl5000_linear,
        format!("{:.2}", acl5000_linear.s.med / acl1.s.med),
    );
    line("permissions, 10 activities", perm10, "1.00".into());
    line(
        "permissions, 5,000 activities",
        perm5000,
        format!(
            "{:.2} (net {:.2})",
            perm5000.s.med / perm10.s.med,
            net(perm5000.s) / net(perm10.s)
        ),
    );
    line("no authorization configured", no_authz, "1.00".into());
    line(
        "authz callout answered by the decision cache",
        authz_hit,
        format!("{:.2}", authz_hit.s.med / no_authz.s.med),
    );
    line(
        "authz opa-envoy body answered by the decision cache",
        opa_rows.cached,
        format!("{:.2}", opa_rows.cached.s.med / no_authz.s.med),
    );
    line(
        "authz opa-envoy callout, uncached, constant answer (the callout's cost)",
        opa_rows.uncached_constant,
        format!("{:.2}", opa_rows.uncached_constant.s.med / no_authz.s.med),
    );
    line(
        "authz opa-envoy callout, uncached, answered by regorus evaluating rbac.rego",
        opa_rows.uncached_rego,
        format!("{:.2}", opa_rows.uncached_rego.s.med / no_authz.s.med),
    );
    println!(
        "| regorus alone (native): rbac.rego on that body, data API answer | {} | | | |",
        spread(opa_rows.rego_alone)
    );
    line("token in a cookie", one_cookie, "1.00".into());
    line(
        "the same 55 KB through the no-op filter (the host's share)",
        noop_cookies,
        format!("{:.2}", noop_cookies.s.med / one_cookie.s.med),
    );
    line(
        "55 KB of cookies: 4,000 distinct jwt-token (401 Multiple tokens provided)",
        many_cookies,
        format!(
            "{:.2} (net {:.2})",
            many_cookies.s.med / one_cookie.s.med,
            net(many_cookies.s) / net(one_cookie.s)
        ),
    );
    print_cold(&cold);
    if let Some((points, entries, bytes)) = mem {
        println!();
        let pts: Vec<String> = points
            .iter()
            .map(|(n, m)| format!("{n}: {} KiB", m / 1024))
            .collect();
        let half = points
            .iter()
            .find(|(n, _)| *n == mem_tokens / 2)
            .map(|p| p.1);
        let last = points.last().map(|p| p.1);
        let bounded = half.is_some() && half == last;
        println!(
            "memory after N distinct EdDSA tokens (linear memory of one instance): {}",
            pts.join(", ")
        );
        println!(
            "memory bounded (no growth over the second half): {}; shared data: {entries} token slots, {} KiB",
            if bounded { "yes" } else { "NO" },
            bytes / 1024
        );
    }
    if scale_n > 0 {
        eprintln!("bench: configuration scale ({scale_n} consumers)");
        scale(&h, scale_n.max(10_000));
    }
    println!();
    println!("bench: {:.0} s", started.elapsed().as_secs_f64());
}
