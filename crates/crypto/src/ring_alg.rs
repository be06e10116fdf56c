//! `ring` verification behind the `jwt_compact::Algorithm` trait: RS*/PS* (2048 to 8192-bit
//! keys), ES256, ES384 and EdDSA. In wasm, ring's verification is 2 to 8 times faster than the
//! RustCrypto crates' (see `docs/PERFORMANCE.md`). HS* stay on jwt-compact's HMACs.
//!
//! Keys are still parsed and validated by the RustCrypto crates (so what a configuration
//! accepts does not change); ring gets the validated public key bytes. ring only verifies
//! here: its algorithms cannot sign (their signing key type is uninhabited).

use std::borrow::Cow;

use jwt_compact::{Algorithm, AlgorithmSignature};
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm};

/// Smallest and largest RSA moduli ring verifies, in bits; other sizes go to the `rsa` crate.
pub(crate) const RING_RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// No signing with these algorithms.
#[derive(Debug)]
pub(crate) enum NoSigningKey {}

/// A signature as received; ring checks its length and form.
#[derive(Debug)]
pub(crate) struct RingSignature(Vec<u8>);

impl AlgorithmSignature for RingSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RingSignature(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// RSA with PKCS#1 v1.5 or PSS padding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingRsa {
    name: &'static str,
    params: &'static RsaParameters,
}

impl RingRsa {
    pub(crate) const RS256: RingRsa = RingRsa::new("RS256", &signature::RSA_PKCS1_2048_8192_SHA256);
    pub(crate) const RS384: RingRsa = RingRsa::new("RS384", &signature::RSA_PKCS1_2048_8192_SHA384);
    pub(crate) const RS512: RingRsa = RingRsa::new("RS512", &signature::RSA_PKCS1_2048_8192_SHA512);
    pub(crate) const PS256: RingRsa = RingRsa::new("PS256", &signature::RSA_PSS_2048_8192_SHA256);
    pub(crate) const PS384: RingRsa = RingRsa::new("PS384", &signature::RSA_PSS_2048_8192_SHA384);
    pub(crate) const PS512: RingRsa = RingRsa::new("PS512", &signature::RSA_PSS_2048_8192_SHA512);

    const fn new(name: &'static str, params: &'static RsaParameters) -> RingRsa {
        RingRsa { name, params }
    }
}

impl Algorithm for RingRsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = RsaPublicKeyComponents<Vec<u8>>;
    type Signature = RingSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key
            .verify(self.params, message, &signature.0)
            .is_ok()
    }
}

/// ECDSA (raw `r || s`) and Ed25519, over the public key's bytes (an uncompressed SEC1 point,
/// or the 32 bytes of an Ed25519 key).
#[derive(Clone, Copy)]
pub(crate) struct RingRaw {
    name: &'static str,
    alg: &'static dyn VerificationAlgorithm,
}

impl std::fmt::Debug for RingRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl RingRaw {
    pub(crate) const ES256: RingRaw = RingRaw {
        name: "ES256",
        alg: &signature::ECDSA_P256_SHA256_FIXED,
    };
    pub(crate) const ES384: RingRaw = RingRaw {
        name: "ES384",
        alg: &signature::ECDSA_P384_SHA384_FIXED,
    };
    pub(crate) const ED25519: RingRaw = RingRaw {
        name: "EdDSA",
        alg: &signature::ED25519,
    };
}

impl Algorithm for RingRaw {
    type SigningKey = NoSigningKey;
    type VerifyingKey = Vec<u8>;
    type Signature = RingSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Vec<u8>,
        message: &[u8],
    ) -> bool {
        signature::UnparsedPublicKey::new(self.alg, verifying_key)
            .verify(message, &signature.0)
            .is_ok()
    }
}
