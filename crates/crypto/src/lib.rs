//! Key parsing and JWS signature verification for Bouncer.
//!
//! Keys are parsed once, at configuration time ([`Key::hmac`], [`Key::from_pem`],
//! [`Key::from_jwk`]); [`Key::verify`] is the per-request hot path. This crate does no
//! JWS framing: the caller splits the compact token, picks the [`Alg`] from the header
//! and hands over the signing input and the base64url-decoded signature.
//!
//! Every algorithm is dispatched in exactly one place: [`Key::verify`]. Backends: the `hmac`
//! crate for HS* (constant-time comparison; each secret in use keyed once, `hmac_keyed`);
//! through the `jwt_compact::Algorithm` trait, `ring` for RS*/PS* with 2048 to 8192-bit keys,
//! ES256, ES384 and EdDSA (the fastest verification in wasm: `docs/PERFORMANCE.md`) and
//! jwt-compact's RSA (the `rsa` crate) for the
//! other RSA sizes. Keys are parsed and validated by the RustCrypto crates in every case.
//!
//! Policy worth knowing:
//! - RSA moduli from 1024 to 16384 bits are accepted (1024 only for legacy keys; the
//!   config layer may want to warn). Exponent checks are the `rsa` crate's: odd, at
//!   least 3, at most 2^33 - 1, below the modulus.
//! - ECDSA signatures must be raw `r || s` (64 bytes for ES256, 96 for ES384); DER is
//!   rejected. High-S signatures are *accepted* (like OpenSSL and PyJWT): ECDSA
//!   verification as specified has no low-S rule, and JWS does not add one.
//! - Ed25519 keys that are not canonical curve points or have small order are
//!   rejected when parsed; signatures are checked by ring as RFC 8032 says (canonical S,
//!   the cofactorless equation, R compared byte for byte), as OpenSSL does.
//! - HMAC secrets of any length (even empty) are accepted here.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![forbid(unsafe_code)]

mod hmac_keyed;
mod jwk;
mod pem;
mod ring_alg;

use std::fmt;
use std::sync::Arc;

use jwt_compact::alg::{Rsa, RsaPublicKey};
use jwt_compact::{Algorithm, AlgorithmSignature};
use ring::signature::RsaPublicKeyComponents;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;

use crate::ring_alg::{RingRaw, RingRsa, RING_RSA_BITS};

/// JWS algorithms Bouncer accepts. `none` is never one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// Every algorithm, in declaration order.
    pub const ALL: [Alg; 12] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive JOSE name ("HS256", ..., "EdDSA"). Anything else
    /// (including "none" and "hs256") gives `None`.
    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE name, e.g. "RS256".
    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Whether this is one of the HMAC algorithms (HS256/384/512).
    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be parsed. `Display` gives a short lowercase message fit for a
/// config error; it never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(std::borrow::Cow<'static, str>);

impl KeyError {
    pub(crate) const fn new(message: &'static str) -> KeyError {
        KeyError(std::borrow::Cow::Borrowed(message))
    }

    pub(crate) fn owned(message: String) -> KeyError {
        KeyError(std::borrow::Cow::Owned(message))
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Smallest RSA modulus accepted, in bits.
pub(crate) const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted, in bits.
pub(crate) const RSA_MAX_BITS: usize = 16384;

/// The longest HMAC secret kept inline (in the key's one allocation).
const INLINE_SECRET: usize = 32;

/// An HMAC secret: its bytes, once, inline up to [`INLINE_SECRET`] bytes. The hash a
/// verification needs is keyed from them on first use and kept in a small table of fixed
/// size (`hmac_keyed`): keying HS256, HS384 and HS512 up front took ~350 bytes per secret
/// (100,000 consumers' secrets took 35 MB). Zeroed when dropped.
pub(crate) enum HmacKeys {
    Inline { len: u8, bytes: [u8; INLINE_SECRET] },
    Heap(Box<[u8]>),
}

impl HmacKeys {
    pub(crate) fn new(secret: &[u8]) -> HmacKeys {
        let mut bytes = [0u8; INLINE_SECRET];
        match (bytes.get_mut(..secret.len()), u8::try_from(secret.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(secret);
                HmacKeys::Inline { len, bytes }
            }
            _ => HmacKeys::Heap(secret.into()),
        }
    }

    fn secret(&self) -> &[u8] {
        match self {
            HmacKeys::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            HmacKeys::Heap(b) => b,
        }
    }
}

impl Drop for HmacKeys {
    fn drop(&mut self) {
        match self {
            HmacKeys::Inline { bytes, .. } => zeroize::Zeroize::zeroize(bytes),
            HmacKeys::Heap(b) => zeroize::Zeroize::zeroize(&mut **b),
        }
    }
}

/// An RSA public key plus its modulus as big-endian bytes of the key's size, used to
/// reject signature values >= n up front (the `rsa` crate's PSS path does not), and the
/// same key for ring when its size is one ring verifies.
pub(crate) struct RsaKey {
    key: RsaPublicKey,
    modulus: Box<[u8]>,
    ring: Option<RsaPublicKeyComponents<Vec<u8>>>,
}

// Lives behind the Arc in `Key`; the RSA variant is boxed so that the other keys (an HMAC
// secret of every consumer) do not pay for its size.
pub(crate) enum Inner {
    Oct(HmacKeys),
    Rsa(Box<RsaKey>),
    /// The uncompressed SEC1 point of a validated P-256 key.
    P256(Vec<u8>),
    /// The uncompressed SEC1 point of a validated P-384 key.
    P384(Vec<u8>),
    /// The 32 bytes of a validated Ed25519 key.
    Ed25519(Vec<u8>),
}

/// A parsed verification key. Cheap to clone (shared), `Send + Sync`; `Debug` shows
/// only the kind of key.
#[derive(Clone)]
pub struct Key(Arc<Inner>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Key");
        out.field("kind", &self.kind());
        if let Inner::Rsa(rsa) = &*self.0 {
            out.field("bits", &rsa.key.n().bits());
        }
        out.finish()
    }
}

impl Key {
    fn from_inner(inner: Inner) -> Key {
        Key(Arc::new(inner))
    }

    /// An HMAC secret (raw bytes). An empty secret is allowed by this layer.
    pub fn hmac(secret: &[u8]) -> Key {
        Key::from_inner(Inner::Oct(HmacKeys::new(secret)))
    }

    /// A PEM public key: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) holding RSA, EC
    /// P-256, EC P-384 or Ed25519, or PKCS#1 (`BEGIN RSA PUBLIC KEY`). Surrounding
    /// whitespace and CR LF line ends are fine.
    pub fn from_pem(pem: &str) -> Result<Key, KeyError> {
        pem::parse(pem).map(Key::from_inner)
    }

    /// A JWK (RFC 7517): kty "RSA" (n, e), "EC" (crv P-256 / P-384, x, y), "OKP"
    /// (crv Ed25519, x) or "oct" (k). Members are base64url, padded or not. Private
    /// members are ignored.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Key, KeyError> {
        jwk::parse(jwk).map(Key::from_inner)
    }

    /// Whether this key can verify `alg` at all: oct -> HS*, RSA -> RS*/PS*,
    /// P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA.
    pub fn fits(&self, alg: Alg) -> bool {
        match &*self.0 {
            Inner::Oct(_) => alg.is_hmac(),
            Inner::Rsa(_) => matches!(
                alg,
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ),
            Inner::P256(_) => alg == Alg::ES256,
            Inner::P384(_) => alg == Alg::ES384,
            Inner::Ed25519(_) => alg == Alg::EdDSA,
        }
    }

    /// Verifies a JWS signature. `signing_input` is the ASCII `header_b64.payload_b64`,
    /// `signature` the base64url-decoded signature. False (never a panic) when the key
    /// does not fit `alg`, when the signature has the wrong length or form (ECDSA must
    /// be raw `r || s`), or when it does not verify. HMAC comparison is constant-time.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], signature: &[u8]) -> bool {
        let (msg, sig) = (signing_input, signature);
        // The one dispatch from (key, alg) to a backend.
        match (&*self.0, alg) {
            (Inner::Oct(k), Alg::HS256) => hmac_keyed::hs256(&self.0, k.secret(), msg, sig),
            (Inner::Oct(k), Alg::HS384) => hmac_keyed::hs384(&self.0, k.secret(), msg, sig),
            (Inner::Oct(k), Alg::HS512) => hmac_keyed::hs512(&self.0, k.secret(), msg, sig),
            (Inner::Rsa(k), Alg::RS256) => check_rsa(Rsa::rs256(), RingRsa::RS256, k, msg, sig),
            (Inner::Rsa(k), Alg::RS384) => check_rsa(Rsa::rs384(), RingRsa::RS384, k, msg, sig),
            (Inner::Rsa(k), Alg::RS512) => check_rsa(Rsa::rs512(), RingRsa::RS512, k, msg, sig),
            (Inner::Rsa(k), Alg::PS256) => check_rsa(Rsa::ps256(), RingRsa::PS256, k, msg, sig),
            (Inner::Rsa(k), Alg::PS384) => check_rsa(Rsa::ps384(), RingRsa::PS384, k, msg, sig),
            (Inner::Rsa(k), Alg::PS512) => check_rsa(Rsa::ps512(), RingRsa::PS512, k, msg, sig),
            (Inner::P256(k), Alg::ES256) => check_len(&RingRaw::ES256, k, msg, sig, 64),
            (Inner::P384(k), Alg::ES384) => check_len(&RingRaw::ES384, k, msg, sig, 96),
            (Inner::Ed25519(k), Alg::EdDSA) => check_len(&RingRaw::ED25519, k, msg, sig, 64),
            _ => false,
        }
    }

    /// Short kind for logs and metadata: "oct", "RSA", "EC P-256", "EC P-384",
    /// "OKP Ed25519".
    pub fn kind(&self) -> &'static str {
        match &*self.0 {
            Inner::Oct(_) => "oct",
            Inner::Rsa(_) => "RSA",
            Inner::P256(_) => "EC P-256",
            Inner::P384(_) => "EC P-384",
            Inner::Ed25519(_) => "OKP Ed25519",
        }
    }
}

/// Runs one algorithm through the `jwt_compact::Algorithm` trait. The length is checked
/// first: some `try_from_slice` implementations assume it.
fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if let Some(len) = <A::Signature as AlgorithmSignature>::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => alg.verify_signature(&signature, key, message),
        Err(_) => false,
    }
}

/// [`check`] for algorithms whose signature type has no fixed length: `len` is required.
fn check_len<A: Algorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
    len: usize,
) -> bool {
    signature.len() == len && check(alg, key, message, signature)
}

/// RSA goes through [`check`] too, after requiring exactly k bytes holding a value
/// below the modulus (big-endian of equal length, so byte order is numeric order):
/// ring for the sizes it verifies, else the `rsa` crate.
fn check_rsa(alg: Rsa, fast: RingRsa, key: &RsaKey, message: &[u8], signature: &[u8]) -> bool {
    signature.len() == key.modulus.len()
        && signature < &*key.modulus
        && match &key.ring {
            Some(k) => check(&fast, k, message, signature),
            None => check(&alg, &key.key, message, signature),
        }
}

/// Builds an RSA key from big-endian modulus and exponent bytes (leading zeros fine),
/// applying the size policy.
pub(crate) fn rsa_key(n: &[u8], e: &[u8]) -> Result<Inner, KeyError> {
    let n = BigUint::from_bytes_be(n);
    let e = BigUint::from_bytes_be(e);
    let bits = n.bits();
    if bits < RSA_MIN_BITS {
        return Err(KeyError::owned(format!(
            "RSA modulus too small ({bits} bits, at least {RSA_MIN_BITS} needed)"
        )));
    }
    if bits > RSA_MAX_BITS {
        return Err(KeyError::owned(format!(
            "RSA modulus too large ({bits} bits, at most {RSA_MAX_BITS} allowed)"
        )));
    }
    let key = RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS).map_err(|err| match err {
        rsa::Error::InvalidModulus | rsa::Error::ModulusTooLarge => {
            KeyError::new("invalid RSA modulus")
        }
        _ => KeyError::new("invalid RSA public exponent"),
    })?;
    let modulus = left_pad(&key.n().to_bytes_be(), key.size())?;
    let ring = RING_RSA_BITS
        .contains(&bits)
        .then(|| RsaPublicKeyComponents {
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
        });
    Ok(Inner::Rsa(Box::new(RsaKey {
        key,
        modulus: modulus.into_boxed_slice(),
        ring,
    })))
}

/// Left-pads big-endian `bytes` with zeros to `len`; an error if it is longer.
pub(crate) fn left_pad(bytes: &[u8], len: usize) -> Result<Vec<u8>, KeyError> {
    let pad = len
        .checked_sub(bytes.len())
        .ok_or(KeyError::new("integer too long for the key size"))?;
    let mut out = vec![0_u8; pad];
    out.extend_from_slice(bytes);
    Ok(out)
}

/// An EC P-256 key from a SEC1 point (compressed or not), kept uncompressed.
pub(crate) fn p256_key(sec1: &[u8]) -> Result<Inner, KeyError> {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
        .map(|k| Inner::P256(k.to_encoded_point(false).as_bytes().to_vec()))
        .map_err(|_| KeyError::new("invalid EC P-256 public key"))
}

/// An EC P-384 key from a SEC1 point (compressed or not), kept uncompressed.
pub(crate) fn p384_key(sec1: &[u8]) -> Result<Inner, KeyError> {
    p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
        .map(|k| Inner::P384(k.to_encoded_point(false).as_bytes().to_vec()))
        .map_err(|_| KeyError::new("invalid EC P-384 public key"))
}

/// An Ed25519 key from its 32 bytes; non-canonical and small-order points are refused.
pub(crate) fn ed25519_key(raw: &[u8]) -> Result<Inner, KeyError> {
    let key = ed25519_compact::PublicKey::from_slice(raw)
        .map_err(|_| KeyError::new("invalid Ed25519 public key length"))?;
    key.validate()
        .map_err(|_| KeyError::new("invalid Ed25519 public key"))?;
    Ok(Inner::Ed25519(key.to_vec()))
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Constant-time equality of two byte strings (the length may leak, contents do not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Key>();
        assert_traits::<KeyError>();
    }

    #[test]
    fn left_pad_pads_and_refuses_overflow() {
        assert_eq!(left_pad(&[1, 2], 4).unwrap(), vec![0, 0, 1, 2]);
        assert_eq!(left_pad(&[1, 2], 2).unwrap(), vec![1, 2]);
        assert!(left_pad(&[1, 2, 3], 2).is_err());
    }

    #[test]
    fn hmac_wrong_length_never_panics() {
        let key = Key::hmac(b"secret");
        for alg in [Alg::HS256, Alg::HS384, Alg::HS512] {
            for len in [0, 1, 31, 32, 33, 47, 48, 49, 63, 64, 65, 200] {
                assert!(!key.verify(alg, b"a.b", &vec![0_u8; len]));
            }
        }
    }
}
