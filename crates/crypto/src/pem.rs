//! PEM -> DER, then SubjectPublicKeyInfo or PKCS#1 -> key.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use spki::der::Decode;
use spki::ObjectIdentifier;

use crate::{ed25519_key, p256_key, p384_key, rsa_key, Inner, KeyError};

/// rsaEncryption (PKCS #1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / P-256.
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 / P-384.
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// id-Ed25519 (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Standard base64 as in PEM bodies, padding optional.
const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const NOT_PEM: KeyError = KeyError::new("not a PEM public key");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `BEGIN PUBLIC KEY`: SubjectPublicKeyInfo.
    Spki,
    /// `BEGIN RSA PUBLIC KEY`: PKCS#1 RSAPublicKey.
    Pkcs1,
}

pub(crate) fn parse(pem: &str) -> Result<Inner, KeyError> {
    let (format, der) = decode(pem)?;
    match format {
        Format::Spki => from_spki(&der),
        Format::Pkcs1 => from_pkcs1(&der),
    }
}

/// Unwraps one PEM block: its format (from the label) and its DER bytes.
fn decode(pem: &str) -> Result<(Format, Vec<u8>), KeyError> {
    let text = pem.trim();
    let rest = text.strip_prefix("-----BEGIN ").ok_or(NOT_PEM)?;
    let (label, rest) = rest.split_once("-----").ok_or(NOT_PEM)?;
    let format = match label {
        "PUBLIC KEY" => Format::Spki,
        "RSA PUBLIC KEY" => Format::Pkcs1,
        _ if label.ends_with("PRIVATE KEY") => {
            return Err(KeyError::new(
                "PEM holds a private key; give the public key",
            ))
        }
        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
            return Err(KeyError::new(
                "PEM holds a certificate; give its public key",
            ))
        }
        _ => return Err(NOT_PEM),
    };
    let (body, end) = rest
        .split_once("-----END ")
        .ok_or(KeyError::new("PEM has no END line"))?;
    match end.strip_suffix("-----") {
        Some(end_label) if end_label == label => {}
        _ => return Err(KeyError::new("PEM END line does not match BEGIN")),
    }
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if body.is_empty() {
        return Err(KeyError::new("empty PEM body"));
    }
    let der = PEM_BASE64
        .decode(body.as_bytes())
        .map_err(|_| KeyError::new("invalid base64 in PEM body"))?;
    Ok((format, der))
}

/// A DER SubjectPublicKeyInfo holding RSA, EC P-256/P-384 or Ed25519.
pub(crate) fn from_spki(der: &[u8]) -> Result<Inner, KeyError> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|_| KeyError::new("invalid DER in public key"))?;
    let key = info
        .subject_public_key
        .as_bytes()
        .ok_or(KeyError::new("invalid DER in public key"))?;
    let algorithm = &info.algorithm;
    if algorithm.oid == RSA_ENCRYPTION {
        from_pkcs1(key)
    } else if algorithm.oid == EC_PUBLIC_KEY {
        let curve = algorithm
            .parameters_oid()
            .map_err(|_| KeyError::new("unsupported EC curve"))?;
        if curve == P256 {
            p256_key(key)
        } else if curve == P384 {
            p384_key(key)
        } else {
            Err(KeyError::new("unsupported EC curve"))
        }
    } else if algorithm.oid == ED25519 {
        if algorithm.parameters.is_some() {
            return Err(KeyError::new("invalid DER in public key"));
        }
        ed25519_key(key)
    } else {
        Err(KeyError::new("unsupported public key algorithm"))
    }
}

/// A DER PKCS#1 RSAPublicKey.
fn from_pkcs1(der: &[u8]) -> Result<Inner, KeyError> {
    let key = pkcs1::RsaPublicKey::from_der(der)
        .map_err(|_| KeyError::new("invalid DER in RSA public key"))?;
    rsa_key(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let err = |pem: &str| decode(pem).unwrap_err().to_string();
        assert_eq!(err(""), "not a PEM public key");
        assert_eq!(err("   \r\n "), "not a PEM public key");
        assert_eq!(err("MIIBIjANBg"), "not a PEM public key");
        assert_eq!(
            err("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
            "PEM holds a private key; give the public key"
        );
        assert_eq!(
            err("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"),
            "PEM holds a private key; give the public key"
        );
        assert_eq!(
            err("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            "PEM holds a certificate; give its public key"
        );
        assert_eq!(
            err("-----BEGIN FOO-----\nAAAA\n-----END FOO-----"),
            "not a PEM public key"
        );
        assert_eq!(
            err("-----BEGIN PUBLIC KEY-----\nAAAA\n"),
            "PEM has no END line"
        );
        assert_eq!(
            err("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----"),
            "PEM END line does not match BEGIN"
        );
        assert_eq!(
            err("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\ntrailing"),
            "PEM END line does not match BEGIN"
        );
        assert_eq!(
            err("-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----"),
            "empty PEM body"
        );
        assert_eq!(
            err("-----BEGIN PUBLIC KEY-----\nA*AA\n-----END PUBLIC KEY-----"),
            "invalid base64 in PEM body"
        );
    }

    #[test]
    fn body_whitespace_and_crlf() {
        let (format, der) =
            decode("\r\n  -----BEGIN RSA PUBLIC KEY-----\r\nAQID\r\n BA==\t\r\n-----END RSA PUBLIC KEY-----\r\n")
                .unwrap();
        assert_eq!(format, Format::Pkcs1);
        assert_eq!(der, vec![1, 2, 3, 4]);
    }
}
