//! The floor of `make bench`, compiled to `wasm32-wasip1` and run by the bench with wasmtime:
//!
//! - `floor_verify`: the bare verification of a compact JWS with `bouncer_crypto` (split off the
//!   signature, base64url-decode it, `Key::verify`): what no filter can go below.
//! - `floor_verify_rustcrypto`: the same with the RustCrypto crates called directly through
//!   `jwt-compact` (the backend `bouncer_crypto` had before `ring`), for comparison.
//! - a no-op proxy-wasm filter (every callback returns `Continue`): the harness's own cost per
//!   request, subtracted from Bouncer's to get the filter's work.
//!
//! Keys are parsed once (`floor_key`), as the filter parses them once at configuration time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bouncer_crypto::{Alg, Key};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa};
use jwt_compact::{Algorithm, AlgorithmSignature};
use std::sync::Mutex;

/// A key parsed by both backends.
struct Keys {
    bouncer: Key,
    rustcrypto: Option<RustCryptoKey>,
}

enum RustCryptoKey {
    Hmac(Hs256Key),
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_compact::PublicKey),
}

static KEYS: Mutex<Vec<Keys>> = Mutex::new(Vec::new());

/// Memory for the host to write into (never freed: the bench allocates a few buffers once).
#[no_mangle]
pub extern "C" fn floor_alloc(len: u32) -> *mut u8 {
    let mut v = vec![0_u8; len as usize];
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

fn bytes<'a>(ptr: *const u8, len: u32) -> &'a [u8] {
    // SAFETY: the host passes a buffer it got from `floor_alloc` and wrote `len` bytes into.
    unsafe { std::slice::from_raw_parts(ptr, len as usize) }
}

fn rustcrypto_key(kind: u32, material: &[u8]) -> Option<RustCryptoKey> {
    use p256::pkcs8::DecodePublicKey;
    if kind == 0 {
        return Some(RustCryptoKey::Hmac(Hs256Key::new(material)));
    }
    let pem = std::str::from_utf8(material).ok()?;
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(pem) {
        return Some(RustCryptoKey::Rsa(k));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        return Some(RustCryptoKey::P256(k));
    }
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        return Some(RustCryptoKey::P384(k));
    }
    ed25519_compact::PublicKey::from_pem(pem)
        .ok()
        .map(RustCryptoKey::Ed25519)
}

/// Parses a key: `kind` 0 is an HMAC secret (raw bytes), 1 a PEM public key. Returns its
/// index, or -1.
#[no_mangle]
pub extern "C" fn floor_key(kind: u32, ptr: *const u8, len: u32) -> i32 {
    let material = bytes(ptr, len);
    let bouncer = match kind {
        0 => Key::hmac(material),
        _ => match std::str::from_utf8(material).ok().map(Key::from_pem) {
            Some(Ok(k)) => k,
            _ => return -1,
        },
    };
    let rustcrypto = rustcrypto_key(kind, material);
    let Ok(mut keys) = KEYS.lock() else {
        return -1;
    };
    keys.push(Keys {
        bouncer,
        rustcrypto,
    });
    i32::try_from(keys.len() - 1).unwrap_or(-1)
}

/// Splits a compact JWS into the signing input and the decoded signature.
fn split(token: &[u8]) -> Option<(&[u8], Vec<u8>)> {
    let dot = token.iter().rposition(|&b| b == b'.')?;
    let sig = URL_SAFE_NO_PAD.decode(token.get(dot + 1..)?).ok()?;
    Some((token.get(..dot)?, sig))
}

fn with_key<T>(key: u32, f: impl FnOnce(&Keys) -> T) -> Option<T> {
    let keys = KEYS.lock().ok()?;
    keys.get(key as usize).map(f)
}

/// Verifies the token at `ptr` with key `key` and algorithm `alg` (index in `Alg::ALL`):
/// 1 valid, 0 not.
#[no_mangle]
pub extern "C" fn floor_verify(key: u32, alg: u32, ptr: *const u8, len: u32) -> i32 {
    let Some(alg) = Alg::ALL.get(alg as usize).copied() else {
        return 0;
    };
    let Some((input, sig)) = split(bytes(ptr, len)) else {
        return 0;
    };
    with_key(key, |k| k.bouncer.verify(alg, input, &sig)).unwrap_or(false) as i32
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    A::Signature::try_from_slice(sig).is_ok_and(|s| alg.verify_signature(&s, key, msg))
}

/// Like [`floor_verify`] with the RustCrypto crates through `jwt-compact` (HS256, RS256, PS256,
/// ES256, ES384, EdDSA).
#[no_mangle]
pub extern "C" fn floor_verify_rustcrypto(key: u32, alg: u32, ptr: *const u8, len: u32) -> i32 {
    let Some(alg) = Alg::ALL.get(alg as usize).copied() else {
        return 0;
    };
    let Some((msg, sig)) = split(bytes(ptr, len)) else {
        return 0;
    };
    let ok = with_key(key, |k| match (&k.rustcrypto, alg) {
        (Some(RustCryptoKey::Hmac(k)), Alg::HS256) => check(&Hs256, k, msg, &sig),
        (Some(RustCryptoKey::Rsa(k)), Alg::RS256) => check(&Rsa::rs256(), k, msg, &sig),
        (Some(RustCryptoKey::Rsa(k)), Alg::PS256) => check(&Rsa::ps256(), k, msg, &sig),
        (Some(RustCryptoKey::P256(k)), Alg::ES256) => check(&Es256, k, msg, &sig),
        (Some(RustCryptoKey::P384(k)), Alg::ES384) => {
            use p384::ecdsa::signature::DigestVerifier;
            use sha2::Digest;
            let Ok(s) = p384::ecdsa::Signature::try_from(sig.as_slice()) else {
                return false;
            };
            k.verify_digest(sha2::Sha384::new_with_prefix(msg), &s)
                .is_ok()
        }
        (Some(RustCryptoKey::Ed25519(k)), Alg::EdDSA) => check(&Ed25519, k, msg, &sig),
        _ => false,
    });
    ok.unwrap_or(false) as i32
}

/// The no-op filter: the harness and ABI cost of a request, with no filter work. Configured
/// with `host-calls` it is instead the **host-call floor** of a cached request: exactly the
/// calls Bouncer makes for a repeated token (`tests/e2e/hotpath.rs`): the request header map
/// read once, the clock once, and the five identity headers set with
/// `proxy_replace_header_map_value`, with no other work (no decoding, no lookups);
/// `host-calls:N` sets the first N of those headers.
/// Configured with `sha256:N` it hashes N 64-byte blocks per request (the message is
/// `64 N - 9` bytes, so SHA-256's padding fits in the last block): the cost of hashing in a
/// host's engine is the slope between two values of N.
#[cfg(target_arch = "wasm32")]
mod noop {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, MapType, Status};
    use std::ptr::null_mut;

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> Status;
    }

    /// The identity headers of the perf consumer `web` (custom id, credential, groups).
    const HEADERS: [(&str, &str); 5] = [
        ("x-consumer-id", "id-web"),
        ("x-consumer-username", "web"),
        ("x-consumer-custom-id", "web-app"),
        ("x-credential-identifier", "web-key"),
        ("x-consumer-groups", "first-party"),
    ];

    #[derive(Default)]
    pub struct Root {
        host_calls: bool,
        identity_headers: usize,
        sha256_blocks: usize,
    }
    impl Context for Root {}
    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let config = self.get_plugin_configuration().unwrap_or_default();
            let text = std::str::from_utf8(&config).unwrap_or_default();
            // `host-calls`: the five headers; `host-calls:N`: the first N of them.
            self.identity_headers = match text.strip_prefix("host-calls") {
                Some("") => HEADERS.len(),
                Some(n) => n
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .map_or(0, |n: usize| n.min(HEADERS.len())),
                None => 0,
            };
            self.host_calls = text.starts_with("host-calls");
            self.sha256_blocks = text
                .strip_prefix("sha256:")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            true
        }
        fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Http {
                host_calls: self.host_calls,
                identity_headers: self.identity_headers,
                sha256_blocks: self.sha256_blocks,
            }))
        }
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }
    struct Http {
        host_calls: bool,
        identity_headers: usize,
        sha256_blocks: usize,
    }
    impl Context for Http {}
    impl HttpContext for Http {
        fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
            if self.sha256_blocks > 0 {
                let message = vec![7_u8; 64 * self.sha256_blocks - 9];
                std::hint::black_box(bouncer_crypto::sha256(std::hint::black_box(&message)));
            }
            if self.host_calls {
                let mut data: *mut u8 = null_mut();
                let mut size: usize = 0;
                // SAFETY: the host hands over a buffer it allocated with the SDK's allocator.
                let map = unsafe {
                    match proxy_get_header_map_pairs(
                        MapType::HttpRequestHeaders,
                        &mut data,
                        &mut size,
                    ) {
                        Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
                        _ => Vec::new(),
                    }
                };
                std::hint::black_box(&map);
                std::hint::black_box(self.get_current_time());
                for (name, value) in HEADERS.iter().take(self.identity_headers) {
                    self.set_http_request_header(name, Some(value));
                }
            }
            Action::Continue
        }
    }
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(noop::Root::default())
    });
}}
