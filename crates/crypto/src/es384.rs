//! `ES384` (ECDSA on P-384 with SHA-384) for the `jwt_compact::Algorithm` trait.
//!
//! jwt-compact 0.8 has no ES384, so this fills the gap with the RustCrypto `p384`
//! crate, shaped like jwt-compact's own `Es256`.

use core::num::NonZeroUsize;
use std::borrow::Cow;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::{
    signature::{DigestSigner, DigestVerifier},
    Signature, SigningKey, VerifyingKey,
};
use sha2::{Digest, Sha384};

/// Length of a raw `r || s` P-384 signature.
const SIGNATURE_LEN: usize = 96;

/// An `ES384` signature: raw `r || s`, 48 bytes each (JWS form, never DER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Es384Signature(Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(SIGNATURE_LEN);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        // `Signature::try_from` wants exactly 96 bytes and r, s in [1, n).
        Signature::try_from(slice)
            .map(Self)
            .map_err(|_| anyhow::anyhow!("invalid ES384 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

/// `ES384`: ECDSA on secp384r1 (P-384) with SHA-384.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Es384;

impl Algorithm for Es384 {
    type SigningKey = SigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        let mut digest = Sha384::default();
        digest.update(message);
        Es384Signature(signing_key.sign_digest(digest))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        let mut digest = Sha384::default();
        digest.update(message);
        verifying_key.verify_digest(digest, &signature.0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_round_trips() {
        let sk = SigningKey::from_slice(&[7_u8; 48]).unwrap();
        let vk = *sk.verifying_key();
        let sig = Es384.sign(&sk, b"hello");
        assert_eq!(sig.as_bytes().len(), 96);
        assert!(Es384.verify_signature(&sig, &vk, b"hello"));
        assert!(!Es384.verify_signature(&sig, &vk, b"hellO"));
        let again = Es384Signature::try_from_slice(&sig.as_bytes()).unwrap();
        assert_eq!(again, sig);
    }

    #[test]
    fn rejects_wrong_lengths_and_zero_scalars() {
        assert!(Es384Signature::try_from_slice(&[1_u8; 95]).is_err());
        assert!(Es384Signature::try_from_slice(&[1_u8; 97]).is_err());
        assert!(Es384Signature::try_from_slice(&[0_u8; 96]).is_err());
    }
}
