//! JWK (RFC 7517 / 7518 / 8037) -> key. Only public members are read.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::{ed25519_key, left_pad, p256_key, p384_key, rsa_key, HmacKeys, Inner, KeyError};

/// Makes a key from a SEC1 point.
type BuildKey = fn(&[u8]) -> Result<Inner, KeyError>;

/// base64url, padded or not.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn parse(jwk: &Value) -> Result<Inner, KeyError> {
    let jwk = jwk
        .as_object()
        .ok_or(KeyError::new("JWK is not a JSON object"))?;
    match string(jwk, "kty")? {
        "oct" => {
            let k = bytes(jwk, "k")?;
            Ok(Inner::Oct(HmacKeys::new(&k)))
        }
        "RSA" => rsa_key(&bytes(jwk, "n")?, &bytes(jwk, "e")?),
        "EC" => {
            let (size, build): (usize, BuildKey) = match string(jwk, "crv")? {
                "P-256" => (32, p256_key),
                "P-384" => (48, p384_key),
                _ => return Err(KeyError::new("unsupported EC curve")),
            };
            // RFC 7518 wants full-length coordinates; shorter ones are left-padded.
            let x = left_pad(&bytes(jwk, "x")?, size)
                .map_err(|_| KeyError::new("EC coordinate 'x' too long"))?;
            let y = left_pad(&bytes(jwk, "y")?, size)
                .map_err(|_| KeyError::new("EC coordinate 'y' too long"))?;
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            build(&point)
        }
        "OKP" => match string(jwk, "crv")? {
            "Ed25519" => ed25519_key(&bytes(jwk, "x")?),
            _ => Err(KeyError::new("unsupported OKP curve")),
        },
        _ => Err(KeyError::new("unsupported key type")),
    }
}

/// A required string member.
fn string<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, KeyError> {
    match jwk.get(name) {
        None => Err(KeyError::owned(format!("missing member '{name}'"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(KeyError::owned(format!("member '{name}' is not a string"))),
    }
}

/// A required base64url member, decoded.
fn bytes(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    B64URL
        .decode(string(jwk, name)?)
        .map_err(|_| KeyError::owned(format!("member '{name}' is not valid base64url")))
}
