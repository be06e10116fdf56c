//! Signed test tokens for Bouncer consumers: what `bouncer token` prints and what the local
//! gateway's `--demo-tokens` uses, so smoke tests need no Python.
//!
//! HS256/384/512 sign with a secret (the bytes of the consumer's `secret`, base64-decoded when
//! `secret_is_base64`); RS*, PS*, ES256, ES384 and EdDSA sign with a private key in PEM:
//! PKCS#8 (`BEGIN PRIVATE KEY`) for every algorithm, PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RSA.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};
use std::fmt;

/// The algorithms a token can be signed with (those the filter verifies).
pub const ALGORITHMS: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// Why a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub String);

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignError {}

fn err<T>(msg: impl Into<String>) -> Result<T, SignError> {
    Err(SignError(msg.into()))
}

/// What signs: an HMAC secret (raw bytes) or a private key in PEM.
pub enum SigningKey<'a> {
    Secret(&'a [u8]),
    PrivatePem(&'a str),
}

/// The DER inside a PEM block, and the block's label (`PRIVATE KEY`, `RSA PRIVATE KEY`, ...).
fn pem_der(pem: &str) -> Result<(String, Vec<u8>), SignError> {
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_owned());
            continue;
        }
        if line.starts_with("-----END ") {
            break;
        }
        if label.is_some() {
            body.push_str(line);
        }
    }
    let Some(label) = label else {
        return err("not a PEM file (no -----BEGIN line)");
    };
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| SignError("the PEM body is not valid base64".into()))?;
    Ok((label, der))
}

fn hmac_sign<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn pkcs8_hint(label: &str) -> String {
    format!(
        "unsupported PEM block '{label}': convert it to PKCS#8 with \
         `openssl pkcs8 -topk8 -nocrypt -in KEY.pem -out key-pkcs8.pem`"
    )
}

/// The signature of `input` under `alg` with `key`.
pub fn sign_bytes(alg: &str, key: &SigningKey<'_>, input: &[u8]) -> Result<Vec<u8>, SignError> {
    if !ALGORITHMS.contains(&alg) {
        return err(format!(
            "unsupported algorithm '{alg}' (one of {})",
            ALGORITHMS.join(" ")
        ));
    }
    let hmac = alg.starts_with("HS");
    let pem = match (key, hmac) {
        (SigningKey::Secret(s), true) => {
            if s.is_empty() {
                return err("the secret is empty");
            }
            return Ok(match alg {
                "HS384" => hmac_sign::<Hmac<sha2::Sha384>>(s, input),
                "HS512" => hmac_sign::<Hmac<sha2::Sha512>>(s, input),
                _ => hmac_sign::<Hmac<sha2::Sha256>>(s, input),
            });
        }
        (SigningKey::Secret(_), false) => {
            return err(format!("{alg} signs with a private key file, not a secret"))
        }
        (SigningKey::PrivatePem(_), true) => {
            return err(format!(
                "{alg} signs with the credential's secret, not a key file"
            ))
        }
        (SigningKey::PrivatePem(p), false) => p,
    };
    let (label, der) = pem_der(pem)?;
    let rng = ring::rand::SystemRandom::new();
    let bad_key =
        |e: ring::error::KeyRejected| SignError(format!("the private key does not fit {alg}: {e}"));
    if alg.starts_with("RS") || alg.starts_with("PS") {
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).map_err(bad_key)?,
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map_err(bad_key)?,
            other => return err(pkcs8_hint(other)),
        };
        let padding: &'static dyn signature::RsaEncoding = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            _ => &signature::RSA_PSS_SHA512,
        };
        let mut sig = vec![0u8; pair.public().modulus_len()];
        pair.sign(padding, &rng, input, &mut sig)
            .map_err(|_| SignError(format!("{alg} signing failed")))?;
        return Ok(sig);
    }
    if label != "PRIVATE KEY" {
        return err(pkcs8_hint(&label));
    }
    match alg {
        "ES256" | "ES384" => {
            let curve = if alg == "ES256" {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = EcdsaKeyPair::from_pkcs8(curve, &der, &rng).map_err(bad_key)?;
            let sig = pair
                .sign(&rng, input)
                .map_err(|_| SignError(format!("{alg} signing failed")))?;
            Ok(sig.as_ref().to_vec())
        }
        _ => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(bad_key)?;
            Ok(pair.sign(input).as_ref().to_vec())
        }
    }
}

/// A compact JWS: header `{"alg", "typ": "JWT"}` (plus `kid` when given) over `claims`.
pub fn sign(
    alg: &str,
    key: &SigningKey<'_>,
    kid: Option<&str>,
    claims: &Value,
) -> Result<String, SignError> {
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("typ".into(), json!("JWT"));
    if let Some(kid) = kid {
        header.insert("kid".into(), json!(kid));
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = sign_bytes(alg, key, input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// An HS256 token over `claims` with the secret's bytes (the demo's tokens).
pub fn hs256(secret: &str, claims: &Value) -> Result<String, SignError> {
    sign(
        "HS256",
        &SigningKey::Secret(secret.as_bytes()),
        None,
        claims,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bouncer_crypto::{Alg, Key};

    fn vector_key(name: &str) -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/keys/");
        std::fs::read_to_string(format!("{p}{name}")).unwrap()
    }

    /// Every algorithm's token verifies with the filter's own verifier and the public key.
    #[test]
    fn every_algorithm_verifies_with_the_filters_crypto() {
        let cases = [
            ("HS256", "hmac", ""),
            ("HS384", "hmac", ""),
            ("HS512", "hmac", ""),
            ("RS256", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("RS384", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("RS512", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("PS256", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("PS384", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("PS512", "rsa2048_private.pem", "rsa2048_public.pem"),
            ("ES256", "ec_p256_private.pem", "ec_p256_public.pem"),
            ("ES384", "ec_p384_private.pem", "ec_p384_public.pem"),
            ("EdDSA", "ed25519_private.pem", "ed25519_public.pem"),
        ];
        for (alg, private, public) in cases {
            let (token, key) = if private == "hmac" {
                let t = sign(
                    alg,
                    &SigningKey::Secret(b"s3cret"),
                    None,
                    &json!({"iss": "k"}),
                );
                (t.unwrap(), Key::hmac(b"s3cret"))
            } else {
                let pem = vector_key(private);
                let t = sign(
                    alg,
                    &SigningKey::PrivatePem(&pem),
                    Some("kid-1"),
                    &json!({"iss": "k"}),
                );
                (t.unwrap(), Key::from_pem(&vector_key(public)).unwrap())
            };
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            let a = Alg::parse(alg).unwrap();
            assert!(
                key.verify(a, input.as_bytes(), &sig),
                "{alg} does not verify"
            );
            // Another payload under the same signature does not.
            let forged = format!(
                "{}.{}",
                input.split('.').next().unwrap(),
                URL_SAFE_NO_PAD.encode("{}")
            );
            assert!(
                !key.verify(a, forged.as_bytes(), &sig),
                "{alg} verifies a forgery"
            );
            let header: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(input.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg);
        }
    }

    #[test]
    fn wrong_key_kinds_are_errors() {
        let rsa = vector_key("rsa2048_private.pem");
        let ec = vector_key("ec_p256_private.pem");
        assert!(sign("RS256", &SigningKey::Secret(b"x"), None, &json!({})).is_err());
        assert!(sign("HS256", &SigningKey::PrivatePem(&rsa), None, &json!({})).is_err());
        assert!(sign("HS256", &SigningKey::Secret(b""), None, &json!({})).is_err());
        assert!(sign("none", &SigningKey::Secret(b"x"), None, &json!({})).is_err());
        assert!(sign(
            "ES256",
            &SigningKey::PrivatePem("garbage"),
            None,
            &json!({})
        )
        .is_err());
        assert!(sign("ES256", &SigningKey::PrivatePem(&rsa), None, &json!({})).is_err());
        assert!(sign("ES384", &SigningKey::PrivatePem(&ec), None, &json!({})).is_err());
        assert!(sign("RS256", &SigningKey::PrivatePem(&ec), None, &json!({})).is_err());
    }
}
