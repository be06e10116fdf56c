//! Key parsing and verification against the public vectors in `shared/vectors`
//! (made with PyJWT; see its README.md), plus hand-made bad keys.
//!
//! The vectors live beside the repository: `<repo>/../shared/vectors`. If that folder
//! is missing these tests fail (they never pass vacuously).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bouncer_crypto::{ct_eq, sha256, Alg, Key};
use serde_json::{json, Value};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(VECTORS);
    assert!(
        dir.join("tokens.json").is_file(),
        "test vectors not found at {} (expected <repo>/../shared/vectors with tokens.json); \
         these tests need the shared/ folder beside the repository",
        dir.display()
    );
    dir
}

fn read(rel: &str) -> String {
    let path = vectors_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn json_file(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|err| panic!("{rel}: {err}"))
}

struct Token {
    name: String,
    key_ref: String,
    expect: String,
    alg: Option<Alg>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// Splits a compact JWS: alg from the header, signing input, decoded signature.
fn split(token: &str) -> (Option<Alg>, Vec<u8>, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a three-part token: {token}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let alg = header["alg"].as_str().and_then(Alg::parse);
    let signing_input = format!("{}.{}", parts[0], parts[1]).into_bytes();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    (alg, signing_input, signature)
}

fn tokens() -> Vec<Token> {
    let all = json_file("tokens.json");
    let list = all["tokens"]
        .as_array()
        .expect("tokens.json: no tokens array");
    list.iter()
        .filter_map(|t| {
            let token = t["token"].as_str().unwrap();
            if token.split('.').count() != 3 {
                return None;
            }
            let parts: Vec<&str> = token.split('.').collect();
            let h = URL_SAFE_NO_PAD.decode(parts[0]).ok()?;
            serde_json::from_slice::<Value>(&h).ok()?.as_object()?;
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).ok()?;
            let (alg, signing_input, _) = split(token);
            Some(Token {
                name: t["name"].as_str().unwrap().to_owned(),
                key_ref: t["key_ref"].as_str().unwrap().to_owned(),
                expect: t["expect"].as_str().unwrap().to_owned(),
                alg,
                signing_input,
                signature: sig,
            })
        })
        .collect()
}

fn token(name: &str) -> Token {
    tokens()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("vector {name} not in tokens.json"))
}

/// The key a vector names, from its PEM (or the HMAC secret file).
fn key_from_ref(key_ref: &str) -> Key {
    match key_ref {
        "keys/hmac_secret.txt" => Key::hmac(read(key_ref).as_bytes()),
        "keys/hmac_secret.b64" => Key::hmac(&STANDARD.decode(read(key_ref).trim()).unwrap()),
        pem => Key::from_pem(&read(pem)).unwrap_or_else(|err| panic!("{pem}: {err}")),
    }
}

/// The same key, from its JWK (an "oct" JWK built here for the HMAC secret).
fn jwk_from_ref(key_ref: &str) -> Key {
    let jwk = match key_ref {
        "keys/hmac_secret.txt" => json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(read(key_ref))}),
        "keys/hmac_secret.b64" => json!({
            "kty": "oct",
            "k": URL_SAFE_NO_PAD.encode(STANDARD.decode(read(key_ref).trim()).unwrap()),
        }),
        pem => json_file(&pem.replace("_public.pem", "_public.jwk.json")),
    };
    Key::from_jwk(&jwk).unwrap_or_else(|err| panic!("{key_ref} JWK: {err}"))
}

#[test]
fn vectors_folder_is_present() {
    let dir = vectors_dir();
    assert!(dir.join("rfc_examples.json").is_file());
    assert!(dir.join("keys").is_dir());
}

#[test]
fn every_valid_token_verifies_with_pem_and_jwk() {
    let mut seen = HashSet::new();
    for t in tokens().iter().filter(|t| t.name.starts_with("valid_")) {
        assert_eq!(t.expect, "valid", "{}", t.name);
        let alg = t.alg.unwrap_or_else(|| panic!("{}: no usable alg", t.name));
        for (how, key) in [
            ("PEM", key_from_ref(&t.key_ref)),
            ("JWK", jwk_from_ref(&t.key_ref)),
        ] {
            assert!(key.fits(alg), "{} {how}", t.name);
            assert!(
                key.verify(alg, &t.signing_input, &t.signature),
                "{} should verify with its {how} key",
                t.name
            );
            // Any other algorithm with the same key and signature fails.
            for other in Alg::ALL.into_iter().filter(|a| *a != alg) {
                assert!(
                    !key.verify(other, &t.signing_input, &t.signature),
                    "{} as {other}",
                    t.name
                );
            }
            // A flipped bit in the input or signature fails.
            let mut input = t.signing_input.clone();
            input[0] ^= 1;
            assert!(
                !key.verify(alg, &input, &t.signature),
                "{} flipped input",
                t.name
            );
            let mut sig = t.signature.clone();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            assert!(
                !key.verify(alg, &t.signing_input, &sig),
                "{} flipped sig",
                t.name
            );
        }
        seen.insert(alg);
    }
    assert_eq!(
        seen.len(),
        Alg::ALL.len(),
        "a valid_* vector per algorithm: {seen:?}"
    );
}

#[test]
fn hmac_with_base64_secret() {
    let t = token("valid_HS256_base64_secret");
    assert_eq!(t.key_ref, "keys/hmac_secret.b64");
    let secret = STANDARD.decode(read(&t.key_ref).trim()).unwrap();
    assert_eq!(secret, read("keys/hmac_secret.txt").as_bytes());
    assert!(Key::hmac(&secret).verify(Alg::HS256, &t.signing_input, &t.signature));
    // The base64 text itself as the secret is a different key.
    let raw = read(&t.key_ref);
    assert!(!Key::hmac(raw.trim().as_bytes()).verify(Alg::HS256, &t.signing_input, &t.signature));
}

#[test]
fn tampered_and_wrong_key_tokens_fail() {
    let mut count = 0;
    for t in tokens()
        .iter()
        .filter(|t| t.name.starts_with("tampered_") || t.name.starts_with("wrong_key_"))
    {
        assert_eq!(t.expect, "Invalid signature", "{}", t.name);
        let alg = t.alg.unwrap();
        for key in [key_from_ref(&t.key_ref), jwk_from_ref(&t.key_ref)] {
            assert!(key.fits(alg), "{}", t.name);
            assert!(
                !key.verify(alg, &t.signing_input, &t.signature),
                "{}",
                t.name
            );
        }
        count += 1;
    }
    assert!(count >= 11, "only {count} tampered/wrong-key vectors");
}

#[test]
fn empty_signature_fails() {
    let t = token("empty_signature_HS256");
    assert!(t.signature.is_empty());
    assert!(!key_from_ref(&t.key_ref).verify(Alg::HS256, &t.signing_input, &t.signature));
}

#[test]
fn algorithm_mismatch_fails() {
    // RS384-signed, checked as RS256 (what an RS256 credential would ask for).
    let t = token("alg_mismatch_RS384_for_RS256_credential");
    assert_eq!(t.alg, Some(Alg::RS384));
    let key = key_from_ref(&t.key_ref);
    assert!(!key.verify(Alg::RS256, &t.signing_input, &t.signature));
    assert!(!key.verify(Alg::PS384, &t.signing_input, &t.signature));
    assert!(key.verify(Alg::RS384, &t.signing_input, &t.signature));

    // ES256 header against a P-384 key: the key does not fit ES256 at all.
    let t = token("alg_mismatch_ES256_header_ES384_key");
    let key = key_from_ref(&t.key_ref);
    assert!(!key.fits(Alg::ES256));
    assert!(!key.verify(Alg::ES256, &t.signing_input, &t.signature));
    assert!(!key.verify(Alg::ES384, &t.signing_input, &t.signature));
}

#[test]
fn algorithm_confusion_fails() {
    for name in [
        "alg_confusion_HS256_with_RSA_public_pem",
        "alg_confusion_HS256_with_EC_public_pem",
    ] {
        let t = token(name);
        assert_eq!(t.alg, Some(Alg::HS256));
        let pem = read(&t.key_ref);
        // The vector is real: HMAC keyed with the PEM text does verify ...
        assert!(Key::hmac(pem.as_bytes()).verify(Alg::HS256, &t.signing_input, &t.signature));
        // ... but the parsed public key never does HMAC.
        let key = Key::from_pem(&pem).unwrap();
        assert!(!key.fits(Alg::HS256));
        assert!(!key.verify(Alg::HS256, &t.signing_input, &t.signature));
    }
}

#[test]
fn der_encoded_es256_signature_fails() {
    let t = token("ES256_signature_DER_encoded");
    assert_eq!(t.signature.first(), Some(&0x30), "vector is DER");
    assert_ne!(t.signature.len(), 64);
    for key in [key_from_ref(&t.key_ref), jwk_from_ref(&t.key_ref)] {
        assert!(!key.verify(Alg::ES256, &t.signing_input, &t.signature));
    }
    // Also when the DER happens to be 64 bytes long it is not read as r || s: pad a
    // copy of the signature to 64 bytes and check it still fails.
    let mut padded = t.signature.clone();
    padded.resize(64, 0);
    assert!(!key_from_ref(&t.key_ref).verify(Alg::ES256, &t.signing_input, &padded));
}

/// Bouncer ACCEPTS high-S ECDSA signatures (r, n - s): ECDSA and JWS define no low-S
/// rule, OpenSSL and PyJWT accept them, and the contract allows either answer.
#[test]
fn high_s_es256_is_accepted() {
    let t = token("ES256_high_s_malleated");
    assert_eq!(t.expect, "valid|Invalid signature");
    assert_eq!(t.signature.len(), 64);
    for key in [key_from_ref(&t.key_ref), jwk_from_ref(&t.key_ref)] {
        assert!(key.verify(Alg::ES256, &t.signing_input, &t.signature));
    }
}

#[test]
fn rfc_examples_verify() {
    let all = json_file("rfc_examples.json");
    let examples = all["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 4);
    for ex in examples {
        let name = ex["name"].as_str().unwrap();
        let (alg, input, sig) = split(ex["token"].as_str().unwrap());
        let alg = alg.unwrap();
        assert_eq!(alg.name(), ex["alg"].as_str().unwrap(), "{name}");
        let mut keys = vec![("JWK", Key::from_jwk(&ex["jwk"]).unwrap())];
        if let Some(pem) = ex.get("public_key_pem").and_then(Value::as_str) {
            keys.push(("PEM", Key::from_pem(pem).unwrap()));
        } else {
            assert!(alg.is_hmac(), "{name} has no PEM");
        }
        for (how, key) in keys {
            assert!(key.verify(alg, &input, &sig), "{name} with {how}");
            let mut bad = input.clone();
            bad.push(b'x');
            assert!(!key.verify(alg, &bad, &sig), "{name} with {how}, altered");
        }
    }
}

#[test]
fn pem_variants_are_tolerated() {
    let t = token("valid_RS256");
    let pem = read("keys/rsa2048_public.pem");
    // CR LF line ends and surrounding whitespace.
    let crlf = format!("\r\n  {}\r\n\r\n", pem.trim().replace('\n', "\r\n"));
    assert!(Key::from_pem(&crlf)
        .unwrap()
        .verify(Alg::RS256, &t.signing_input, &t.signature));
    // The body as one long line.
    let lines: Vec<&str> = pem.trim().lines().collect();
    let one_line = format!(
        "{}\n{}\n{}",
        lines[0],
        lines[1..lines.len() - 1].concat(),
        lines[lines.len() - 1]
    );
    assert!(Key::from_pem(&one_line)
        .unwrap()
        .verify(Alg::RS256, &t.signing_input, &t.signature));
}

fn pem_body_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body.trim()).unwrap()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\r\n{}\r\n-----END {label}-----\r\n",
        lines.join("\r\n")
    )
}

#[test]
fn pkcs1_rsa_public_key_pem() {
    let spki = pem_body_der(&read("keys/rsa2048_public.pem"));
    // SPKI = SEQ { AlgorithmIdentifier (15 bytes), BIT STRING { 0x00, RSAPublicKey } }.
    let pkcs1 = &spki[24..];
    assert_eq!(&pkcs1[..2], &[0x30, 0x82], "PKCS#1 RSAPublicKey SEQUENCE");
    let key = Key::from_pem(&to_pem("RSA PUBLIC KEY", pkcs1)).unwrap();
    assert_eq!(key.kind(), "RSA");
    for name in ["valid_RS256", "valid_PS512"] {
        let t = token(name);
        assert!(
            key.verify(t.alg.unwrap(), &t.signing_input, &t.signature),
            "{name}"
        );
    }
    // A PKCS#1 body under the SPKI label (and vice versa) is refused.
    assert!(Key::from_pem(&to_pem("PUBLIC KEY", pkcs1)).is_err());
    assert!(Key::from_pem(&to_pem("RSA PUBLIC KEY", &spki)).is_err());
}

#[test]
fn kinds_and_fits_matrix() {
    use Alg::*;
    let cases: [(&str, &str, &[Alg]); 5] = [
        ("keys/hmac_secret.txt", "oct", &[HS256, HS384, HS512]),
        (
            "keys/rsa2048_public.pem",
            "RSA",
            &[RS256, RS384, RS512, PS256, PS384, PS512],
        ),
        ("keys/ec_p256_public.pem", "EC P-256", &[ES256]),
        ("keys/ec_p384_public.pem", "EC P-384", &[ES384]),
        ("keys/ed25519_public.pem", "OKP Ed25519", &[EdDSA]),
    ];
    for (key_ref, kind, fitting) in cases {
        for key in [key_from_ref(key_ref), jwk_from_ref(key_ref)] {
            assert_eq!(key.kind(), kind);
            for alg in Alg::ALL {
                assert_eq!(key.fits(alg), fitting.contains(&alg), "{kind} / {alg:?}");
            }
        }
    }
}

#[test]
fn verify_never_panics_on_junk() {
    let keys = [
        key_from_ref("keys/hmac_secret.txt"),
        Key::hmac(b""),
        key_from_ref("keys/rsa2048_public.pem"),
        key_from_ref("keys/ec_p256_public.pem"),
        key_from_ref("keys/ec_p384_public.pem"),
        key_from_ref("keys/ed25519_public.pem"),
    ];
    let lengths = [
        0, 1, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 128, 255, 256, 257, 512, 4096,
    ];
    for key in &keys {
        for alg in Alg::ALL {
            for len in lengths {
                for fill in [0x00_u8, 0x01, 0x7f, 0xff] {
                    assert!(
                        !key.verify(alg, b"e30.e30", &vec![fill; len]),
                        "{key:?} {alg} {len}"
                    );
                    assert!(!key.verify(alg, b"", &vec![fill; len]));
                }
            }
        }
    }
}

#[test]
fn rsa_signature_not_below_modulus_is_refused() {
    use rsa::BigUint;
    let jwk = json_file("keys/rsa2048_public.jwk.json");
    let n = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let key = key_from_ref("keys/rsa2048_public.pem");
    // The modulus itself (and anything above, same length) is never a signature.
    let n_bytes = n.to_bytes_be();
    assert_eq!(n_bytes.len(), 256);
    for alg in [Alg::RS256, Alg::PS256] {
        assert!(!key.verify(alg, b"x.y", &n_bytes));
        assert!(!key.verify(alg, b"x.y", &[0xff; 256]));
    }
    // s + n, where it still fits in 256 bytes, is congruent to a valid signature s
    // and must still be refused (the rsa crate's PSS check alone would accept it).
    let mut tried = 0;
    for name in [
        "valid_RS256",
        "valid_RS384",
        "valid_RS512",
        "valid_PS256",
        "valid_PS384",
        "valid_PS512",
    ] {
        let t = token(name);
        let lifted = (BigUint::from_bytes_be(&t.signature) + &n).to_bytes_be();
        if lifted.len() == 256 {
            assert!(
                !key.verify(t.alg.unwrap(), &t.signing_input, &lifted),
                "{name}"
            );
            tried += 1;
        }
    }
    assert!(tried > 0, "no vector signature small enough to lift by n");
}

fn key_err(result: Result<Key, bouncer_crypto::KeyError>) -> String {
    match result {
        Ok(key) => panic!("expected a KeyError, got {key:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn bad_pem_is_a_key_error() {
    assert_eq!(key_err(Key::from_pem("")), "not a PEM public key");
    assert_eq!(key_err(Key::from_pem(" \r\n\t")), "not a PEM public key");
    assert_eq!(key_err(Key::from_pem("garbage")), "not a PEM public key");
    assert_eq!(
        key_err(Key::from_pem(
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----"
        )),
        "invalid base64 in PEM body"
    );
    assert_eq!(
        key_err(Key::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )),
        "invalid DER in public key"
    );
    // Private keys (PKCS#8 here) are refused by label, whatever the algorithm.
    for private in [
        "keys/rsa2048_private.pem",
        "keys/ec_p256_private.pem",
        "keys/ec_p384_private.pem",
        "keys/ed25519_private.pem",
    ] {
        assert_eq!(
            key_err(Key::from_pem(&read(private))),
            "PEM holds a private key; give the public key",
            "{private}"
        );
    }
    // A public key under a wrong label.
    let der = pem_body_der(&read("keys/ec_p256_public.pem"));
    assert_eq!(
        key_err(Key::from_pem(&to_pem("CERTIFICATE", &der))),
        "PEM holds a certificate; give its public key"
    );
    assert_eq!(
        key_err(Key::from_pem(&to_pem("EC PUBLIC KEY", &der))),
        "not a PEM public key"
    );
    // Truncated DER, for every key type.
    for public in [
        "keys/rsa2048_public.pem",
        "keys/ec_p256_public.pem",
        "keys/ec_p384_public.pem",
        "keys/ed25519_public.pem",
    ] {
        let der = pem_body_der(&read(public));
        for cut in [1, 2, der.len() / 2, der.len() - 1] {
            let err = key_err(Key::from_pem(&to_pem("PUBLIC KEY", &der[..cut])));
            assert_eq!(err, "invalid DER in public key", "{public} cut at {cut}");
        }
        // Trailing bytes after the DER are refused too.
        let mut long = der.clone();
        long.push(0);
        assert_eq!(
            key_err(Key::from_pem(&to_pem("PUBLIC KEY", &long))),
            "invalid DER in public key"
        );
    }
    // Truncated PKCS#1.
    let spki = pem_body_der(&read("keys/rsa2048_public.pem"));
    assert_eq!(
        key_err(Key::from_pem(&to_pem(
            "RSA PUBLIC KEY",
            &spki[24..spki.len() - 3]
        ))),
        "invalid DER in RSA public key"
    );
}

#[test]
fn unsupported_spki_algorithms_and_curves() {
    // P-384's curve OID 1.3.132.0.34 (2b 81 04 00 22) -> secp256k1 1.3.132.0.10.
    let mut der = pem_body_der(&read("keys/ec_p384_public.pem"));
    let at = der
        .windows(5)
        .position(|w| w == [0x2b, 0x81, 0x04, 0x00, 0x22])
        .unwrap();
    der[at + 4] = 0x0a;
    assert_eq!(
        key_err(Key::from_pem(&to_pem("PUBLIC KEY", &der))),
        "unsupported EC curve"
    );
    // Ed25519's OID 1.3.101.112 (2b 65 70) -> X25519 1.3.101.110.
    let mut der = pem_body_der(&read("keys/ed25519_public.pem"));
    let at = der
        .windows(3)
        .position(|w| w == [0x2b, 0x65, 0x70])
        .unwrap();
    der[at + 2] = 0x6e;
    assert_eq!(
        key_err(Key::from_pem(&to_pem("PUBLIC KEY", &der))),
        "unsupported public key algorithm"
    );
    // A P-256 point moved off the curve.
    let mut der = pem_body_der(&read("keys/ec_p256_public.pem"));
    let last = der.len() - 1;
    der[last] ^= 1;
    assert_eq!(
        key_err(Key::from_pem(&to_pem("PUBLIC KEY", &der))),
        "invalid EC P-256 public key"
    );
}

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn bad_jwk_is_a_key_error() {
    let rsa = json_file("keys/rsa2048_public.jwk.json");
    let ec = json_file("keys/ec_p256_public.jwk.json");
    let ed = json_file("keys/ed25519_public.jwk.json");
    let without = |jwk: &Value, member: &str| {
        let mut jwk = jwk.clone();
        jwk.as_object_mut().unwrap().remove(member);
        jwk
    };
    let with = |jwk: &Value, member: &str, value: Value| {
        let mut jwk = jwk.clone();
        jwk[member] = value;
        jwk
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!(null), "JWK is not a JSON object"),
        (json!(""), "JWK is not a JSON object"),
        (json!([rsa.clone()]), "JWK is not a JSON object"),
        (json!({}), "missing member 'kty'"),
        (json!({"kty": ""}), "unsupported key type"),
        (json!({"kty": 1}), "member 'kty' is not a string"),
        (json!({"kty": "rsa"}), "unsupported key type"),
        (json!({"kty": "oct"}), "missing member 'k'"),
        (
            json!({"kty": "oct", "k": "a+b/"}),
            "member 'k' is not valid base64url",
        ),
        (json!({"kty": "oct", "k": 12}), "member 'k' is not a string"),
        (without(&rsa, "n"), "missing member 'n'"),
        (without(&rsa, "e"), "missing member 'e'"),
        (
            with(&rsa, "n", json!("")),
            "RSA modulus too small (0 bits, at least 1024 needed)",
        ),
        (
            with(&rsa, "n", json!("!!")),
            "member 'n' is not valid base64url",
        ),
        (with(&rsa, "e", json!("")), "invalid RSA public exponent"),
        (with(&rsa, "e", json!("AQ")), "invalid RSA public exponent"),
        (
            with(&rsa, "e", json!(b64u(&[1, 0, 0]))),
            "invalid RSA public exponent",
        ),
        (
            with(&rsa, "e", json!(b64u(&[1; 9]))),
            "invalid RSA public exponent",
        ),
        (
            with(&rsa, "n", json!(b64u(&[0xff; 64]))),
            "RSA modulus too small (512 bits, at least 1024 needed)",
        ),
        (
            with(&rsa, "n", json!(b64u(&[0xfe; 256]))),
            "invalid RSA modulus",
        ),
        (
            with(&rsa, "n", json!(b64u(&[0xff; 2049]))),
            "RSA modulus too large (16392 bits, at most 16384 allowed)",
        ),
        (without(&ec, "crv"), "missing member 'crv'"),
        (without(&ec, "x"), "missing member 'x'"),
        (without(&ec, "y"), "missing member 'y'"),
        (with(&ec, "crv", json!("P-521")), "unsupported EC curve"),
        (with(&ec, "crv", json!("secp256k1")), "unsupported EC curve"),
        (
            with(&ec, "crv", json!("P-384")),
            "invalid EC P-384 public key",
        ),
        (
            with(&ec, "x", json!(b64u(&[1; 33]))),
            "EC coordinate 'x' too long",
        ),
        (
            with(&ec, "y", json!(b64u(&[1; 32]))),
            "invalid EC P-256 public key",
        ),
        (with(&ec, "x", json!("")), "invalid EC P-256 public key"),
        (without(&ed, "x"), "missing member 'x'"),
        (without(&ed, "crv"), "missing member 'crv'"),
        (with(&ed, "crv", json!("X25519")), "unsupported OKP curve"),
        (with(&ed, "crv", json!("Ed448")), "unsupported OKP curve"),
        (
            with(&ed, "x", json!(b64u(&[1; 31]))),
            "invalid Ed25519 public key length",
        ),
        (
            with(&ed, "x", json!("")),
            "invalid Ed25519 public key length",
        ),
        // The identity point: small order.
        (
            with(&ed, "x", json!(b64u(&[&[1_u8][..], &[0; 31]].concat()))),
            "invalid Ed25519 public key",
        ),
    ];
    for (jwk, message) in cases {
        assert_eq!(key_err(Key::from_jwk(&jwk)), message, "{jwk}");
    }
}

#[test]
fn jwk_leniency() {
    let t = token("valid_RS256");
    let mut jwk = json_file("keys/rsa2048_public.jwk.json");
    // Padded base64url, a leading zero byte on n, and private members are all fine.
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let padded = base64::engine::general_purpose::URL_SAFE.encode([&[0_u8][..], &n].concat());
    assert!(padded.ends_with('='));
    jwk["n"] = json!(padded);
    jwk["e"] = json!("AQAB");
    jwk["d"] = json!("not even base64 !!");
    jwk["alg"] = json!("RS256");
    let key = Key::from_jwk(&jwk).unwrap();
    assert!(key.verify(Alg::RS256, &t.signing_input, &t.signature));

    // Empty and padded HMAC secrets.
    assert_eq!(
        Key::from_jwk(&json!({"kty": "oct", "k": ""}))
            .unwrap()
            .kind(),
        "oct"
    );
    let secret = read("keys/hmac_secret.txt");
    let k = base64::engine::general_purpose::URL_SAFE.encode(&secret);
    let t = token("valid_HS512");
    let key = Key::from_jwk(&json!({"kty": "oct", "k": k, "use": "sig"})).unwrap();
    assert!(key.verify(Alg::HS512, &t.signing_input, &t.signature));
}

#[test]
fn debug_and_errors_hide_secrets() {
    let secret = read("keys/hmac_secret.txt");
    let key = Key::hmac(secret.as_bytes());
    let shown = format!("{key:?} {key:#?}");
    assert!(!shown.contains(&secret[..8]), "{shown}");
    assert!(
        !shown.contains(&format!("{}", secret.as_bytes()[0])),
        "{shown}"
    );
    assert_eq!(format!("{key:?}"), "Key { kind: \"oct\" }");
    let key = jwk_from_ref("keys/hmac_secret.txt");
    assert_eq!(format!("{key:?}"), "Key { kind: \"oct\" }");
    let rsa = key_from_ref("keys/rsa2048_public.pem");
    assert_eq!(format!("{rsa:?}"), "Key { kind: \"RSA\", bits: 2048 }");

    // Error messages never echo what was given.
    let sneaky = "s3cr3t-VALUE";
    let inputs = [
        json!({"kty": sneaky}),
        json!({"kty": "oct", "k": format!("{sneaky}!")}),
        json!({"kty": "EC", "crv": sneaky, "x": sneaky, "y": sneaky}),
        json!({"kty": "OKP", "crv": sneaky, "x": sneaky}),
        json!({"kty": "RSA", "n": sneaky, "e": sneaky}),
    ];
    for jwk in inputs {
        let err = Key::from_jwk(&jwk).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(sneaky), "{err:?}");
    }
    for pem in [
        format!("-----BEGIN {sneaky}-----\nAAAA\n-----END {sneaky}-----"),
        format!("-----BEGIN PUBLIC KEY-----\n{sneaky}\n-----END PUBLIC KEY-----"),
        sneaky.to_owned(),
    ] {
        let err = Key::from_pem(&pem).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(sneaky), "{err:?}");
    }
}

#[test]
fn alg_names_round_trip() {
    for alg in Alg::ALL {
        assert_eq!(Alg::parse(alg.name()), Some(alg));
        assert_eq!(alg.to_string(), alg.name());
        assert_eq!(alg.is_hmac(), alg.name().starts_with("HS"));
    }
    let names: BTreeSet<&str> = Alg::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(names.len(), 12);
    for bad in [
        "none", "None", "NONE", "hs256", "Hs256", "HS256 ", " HS256", "", "ES512", "EDDSA",
        "eddsa", "Ed25519", "RS1", "HS999",
    ] {
        assert_eq!(Alg::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn sha256_and_ct_eq() {
    let digest = sha256(b"abc");
    assert_eq!(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"abcd"));
    assert!(!ct_eq(b"abc", b""));
}
