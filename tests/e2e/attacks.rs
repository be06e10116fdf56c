//! The attack suite of the hardening issue: each case through the release `.wasm` under both
//! host profiles. A case that finds a filter bug keeps asserting the correct behaviour and is
//! ignored with the reason "bug: ..." until the filter is fixed; none is pending.

use crate::support::*;
use bouncer_harness::{CalloutReply, Filter, Host, Outcome, Profile, Request};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Tokens signed by an attacker's own keys (made with openssl 3: an Ed25519 key and an RSA-2048
// key with a self-signed certificate, none of them in tests/vectors), each carrying the
// attacker's public key in its JOSE header. Claims: iss `bouncer-vectors`, sub `attacker`,
// iat NOW-10, exp NOW+600. The public keys are below, to prove the signatures are good.

/// `{"alg":"EdDSA","typ":"JWT","kid":"vec-ed25519-1","jwk":{attacker's OKP key}}`.
const EDDSA_JWK_KID: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6InZlYy1lZDI1NTE5LTEiLCJqd2siOnsia3R5IjoiT0tQIiwiY3J2IjoiRWQyNTUxOSIsIngiOiI4OTlVdkVaWk1ZdmlCd2hXUTBEdExvY0c1VVVJZTZDXzRDbkx4T1JMWDdzIn19.eyJpc3MiOiJib3VuY2VyLXZlY3RvcnMiLCJzdWIiOiJhdHRhY2tlciIsImlhdCI6MTc5OTk5OTk5MCwiZXhwIjoxODAwMDAwNjAwfQ.e11XWleplEkp_ofaqtg5GwAEynAyyrX22ucdl1Ps8VgaCkRrp8FJl_rJ5dfJU2_qneEh97DrfKlL3Z4ctJVhBw";
/// `{"alg":"EdDSA","typ":"JWT","jwk":{attacker's OKP key}}` (no `kid`).
const EDDSA_JWK_NO_KID: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImp3ayI6eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6Ijg5OVV2RVpaTVl2aUJ3aFdRMER0TG9jRzVVVUllNkNfNENuTHhPUkxYN3MifX0.eyJpc3MiOiJib3VuY2VyLXZlY3RvcnMiLCJzdWIiOiJhdHRhY2tlciIsImlhdCI6MTc5OTk5OTk5MCwiZXhwIjoxODAwMDAwNjAwfQ.En-cVHqQGK8_cpnKhbxwIJDH-i2hy64eRuab_iI7fYjrHaw2gXmgRalT5jeFEw8c-I1FUIivVIRY3ptBMzrFDQ";
/// `{"alg":"RS256","typ":"JWT","kid":"vec-rsa-1","jwk":{attacker's RSA key},"x5c":[attacker's cert]}`.
const RS256_JWK_X5C_KID: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InZlYy1yc2EtMSIsImp3ayI6eyJrdHkiOiJSU0EiLCJuIjoidmNFakx1aUFsSFV1UE8xa3Jjd2RMYjVLQVFPMk1wYVJfVXpta01Uc3E2b2lCUkZDZjBZRUVHMEtQN0tLV0xQX1JfcVpibC04OFlVTmE1Z1NjY21iamdxTXoyTVJNT3RrT0JCa180MmdWSG1sZlEweFlFaW9RdHBMcVlYNXYxWHpJZFp6Vy1feXhwSjZueFdlSXAzSWMzaXhKb1FaWFRrMlBJQzJPYjVCYjZzcklvakVmNERGbXlhQnQzZUxrUEUxRmxUODVHREQwQnY1M2NHUFhkZGFna0xoRk9WNXZXWWtFTC1VX3p6c3hLX3ZvWnF2eXhZcXNNYzZBRmpMMXlwX29mWEJEZF9UdkVuMGQ0dHZnLVVIU2VhbUVEOGZuMWItSEE5ek9sdDVyLUkyMWRKTnBSRVJWMFg5Z0xxcTdydTY2dkdYOEQwTjNDRXhNbS01OF9IQnZRIiwiZSI6IkFRQUIifSwieDVjIjpbIk1JSURDVENDQWZHZ0F3SUJBZ0lVWXRzVmNvVWcwYU9BcVErQnNJcW1FUm1PUGh3d0RRWUpLb1pJaHZjTkFRRUxCUUF3RXpFUk1BOEdBMVVFQXd3SVlYUjBZV05yWlhJd0lCY05Nall4TVRJMU1UWXdOREV6V2hnUE1qRXlOakV4TURFeE5qQTBNVE5hTUJNeEVUQVBCZ05WQkFNTUNHRjBkR0ZqYTJWeU1JSUJJakFOQmdrcWhraUc5dzBCQVFFRkFBT0NBUThBTUlJQkNnS0NBUUVBdmNFakx1aUFsSFV1UE8xa3Jjd2RMYjVLQVFPMk1wYVIvVXpta01Uc3E2b2lCUkZDZjBZRUVHMEtQN0tLV0xQL1IvcVpibCs4OFlVTmE1Z1NjY21iamdxTXoyTVJNT3RrT0JCay80MmdWSG1sZlEweFlFaW9RdHBMcVlYNXYxWHpJZFp6VysveXhwSjZueFdlSXAzSWMzaXhKb1FaWFRrMlBJQzJPYjVCYjZzcklvakVmNERGbXlhQnQzZUxrUEUxRmxUODVHREQwQnY1M2NHUFhkZGFna0xoRk9WNXZXWWtFTCtVL3p6c3hLL3ZvWnF2eXhZcXNNYzZBRmpMMXlwL29mWEJEZC9UdkVuMGQ0dHZnK1VIU2VhbUVEOGZuMWIrSEE5ek9sdDVyK0kyMWRKTnBSRVJWMFg5Z0xxcTdydTY2dkdYOEQwTjNDRXhNbSs1OC9IQnZRSURBUUFCbzFNd1VUQWRCZ05WSFE0RUZnUVV6TFdrc252ejJXeVhGRHFjbmtSVXk3WmcwNmd3SHdZRFZSMGpCQmd3Rm9BVXpMV2tzbnZ6Mld5WEZEcWNua1JVeTdaZzA2Z3dEd1lEVlIwVEFRSC9CQVV3QXdFQi96QU5CZ2txaGtpRzl3MEJBUXNGQUFPQ0FRRUFLL2J6Rm1yTjg3bTNJcHZDVGRrNDhsUk5wWUNISkhrOU5GVEtTWnorV0FJcmF1N08vdDJORlY3TVpiYXpEeUZZQWF5c2UwbWxCWEQrS0VSSmYvZ0lwL0NYV2JSZHNOUi9PSXQyNHMxQ3NzeFZDU25KSlBDTU5hSGp3UGU0STlETFJvcDF2dWc4cU5oa0dvSnFsNS9KTFdhVmY1T1UxUC9ydUJTT2MxVXgzeS9kdk1mVVRTMUJSbkQ2RDNCK2JvaVc2YXF4N3dkdkVFZzB1V1oyUjJYRHhFWHh0YzVSVVE1eFVvVzdXdnJ4UmZzUjI0b3NtZDNmRFFDT1p6V0N0aUpxOENMcFM0b0pvL2hUV2lKU2t2b25sN1RHRTdsOFBCcVpPdCtDVlliN1BQVk1laEpRRkhIK1lteUdFdDdyMC82RndFSi9COVJyR2RkWHBXTVFPbVVGdUE9PSJdfQ.eyJpc3MiOiJib3VuY2VyLXZlY3RvcnMiLCJzdWIiOiJhdHRhY2tlciIsImlhdCI6MTc5OTk5OTk5MCwiZXhwIjoxODAwMDAwNjAwfQ.DoqdoeoWEungxyNA7JimzaeFX9Ti-_qzE6cnClHJ6Oz0ruSwA2dXr_7DBglqg4KhFLOvTnj-cv4NwJMxASQrIG2QKWUbbZE-cKGGr4pF5yKM0azz6e7Yp62K011J8pVspA9S6XIAbMVQ1cDR_GNX8R4ScvWY_8sLDSLA4OnL8YxiA0rtnK5w6K17NhSLHOCUoRRDwvPZ2HTr9k5D9BoZfCDtT2A-hZwWdVD1TK_jNDQTG3KlnwTQbSxsNApz2_ej8SCFJEBuXjVjx6VE3bT_VWqBeTwIaGUyudiNUssmT_FGmvI2rs103gDc4-G2BR2BFYS433hvXP74dg7fKgQ13Q";
/// `{"alg":"RS256","typ":"JWT","kid":"evil-1","jku":"https://evil.example/jwks.json",
/// "x5u":"https://evil.example/cert.pem","jwk":{attacker's RSA key}}`.
const RS256_JKU_X5U_EVIL_KID: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImV2aWwtMSIsImprdSI6Imh0dHBzOi8vZXZpbC5leGFtcGxlL2p3a3MuanNvbiIsIng1dSI6Imh0dHBzOi8vZXZpbC5leGFtcGxlL2NlcnQucGVtIiwiandrIjp7Imt0eSI6IlJTQSIsIm4iOiJ2Y0VqTHVpQWxIVXVQTzFrcmN3ZExiNUtBUU8yTXBhUl9Vem1rTVRzcTZvaUJSRkNmMFlFRUcwS1A3S0tXTFBfUl9xWmJsLTg4WVVOYTVnU2NjbWJqZ3FNejJNUk1PdGtPQkJrXzQyZ1ZIbWxmUTB4WUVpb1F0cExxWVg1djFYeklkWnpXLV95eHBKNm54V2VJcDNJYzNpeEpvUVpYVGsyUElDMk9iNUJiNnNySW9qRWY0REZteWFCdDNlTGtQRTFGbFQ4NUdERDBCdjUzY0dQWGRkYWdrTGhGT1Y1dldZa0VMLVVfenpzeEtfdm9acXZ5eFlxc01jNkFGakwxeXBfb2ZYQkRkX1R2RW4wZDR0dmctVUhTZWFtRUQ4Zm4xYi1IQTl6T2x0NXItSTIxZEpOcFJFUlYwWDlnTHFxN3J1NjZ2R1g4RDBOM0NFeE1tLTU4X0hCdlEiLCJlIjoiQVFBQiJ9fQ.eyJpc3MiOiJib3VuY2VyLXZlY3RvcnMiLCJzdWIiOiJhdHRhY2tlciIsImlhdCI6MTc5OTk5OTk5MCwiZXhwIjoxODAwMDAwNjAwfQ.raMuus2kzjWExHaZlirEtM5l0_s4BI2euaOZIqy9px6oVj8JhQYfD_Hls4f6e_9egalVmzhjkZO6Z3ioEQdjt2ShltHaTNGem7gr7eT_8O8vwvVN1t48xo6gKkf_oZX9Udu-p29QdYAfCEb5e5u9KuL_RfGzRWz3KOFpOcJzNIbYuyUcETI1Jb48WrmaT4XIVB_oaoU3NZBPkz85YJ7kBk_19FnL786E951dz15xqDvmFGMFGqD26XSXoZPF1K42p-uwg9_9zA-k7_o7WJS91iIZxEWD3DFy9jJtPCRBuAXBCkXusnVhlABoiYBY72MROPUbZIwhfEEH4szz1fNYeQ";
const ATTACKER_ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA899UvEZZMYviBwhWQ0DtLocG5UUIe6C/4CnLxORLX7s=\n-----END PUBLIC KEY-----\n";
const ATTACKER_RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvcEjLuiAlHUuPO1krcwd
Lb5KAQO2MpaR/UzmkMTsq6oiBRFCf0YEEG0KP7KKWLP/R/qZbl+88YUNa5gSccmb
jgqMz2MRMOtkOBBk/42gVHmlfQ0xYEioQtpLqYX5v1XzIdZzW+/yxpJ6nxWeIp3I
c3ixJoQZXTk2PIC2Ob5Bb6srIojEf4DFmyaBt3eLkPE1FlT85GDD0Bv53cGPXdda
gkLhFOV5vWYkEL+U/zzsxK/voZqvyxYqsMc6AFjL1yp/ofXBDd/TvEn0d4tvg+UH
SeamED8fn1b+HA9zOlt5r+I21dJNpRERV0X9gLqq7ru66vGX8D0N3CExMm+58/HB
vQIDAQAB
-----END PUBLIC KEY-----
";

/// An HMAC token over exactly these JSON texts (duplicate members, odd numbers, ...).
fn hs_raw(alg: &str, header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = match alg {
        "HS384" => {
            let mut m = Hmac::<sha2::Sha384>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        "HS512" => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(sig))
}

/// An HS256 token with [`SECRET`] over exactly these JSON texts.
fn hs(header: &str, payload: &str) -> String {
    hs_raw("HS256", header, payload, SECRET.as_bytes())
}

/// A valid `web-key` payload as text, with `extra` members appended (raw JSON).
fn web_payload(extra: &str) -> String {
    let base = format!(
        r#""iss":"web-key","sub":"user-17","iat":{},"exp":{}"#,
        NOW - 10,
        NOW + 600
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

fn auth(token: &str) -> Request {
    get("/").header("authorization", &bearer(token))
}

/// A 401 after a token failed: the message and `WWW-Authenticate: Bearer error="invalid_token"`.
#[track_caller]
fn token_401(out: &Outcome, message: &str) {
    assert_message(out, 401, message);
    assert_invalid_token(out);
}

#[track_caller]
fn assert_invalid_token(out: &Outcome) {
    let r = out
        .local_response()
        .unwrap_or_else(|| panic!("expected a 401, got {out:?}"));
    assert_eq!(r.status, 401, "{out:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\""),
        "{out:?}"
    );
}

#[track_caller]
fn no_callouts(f: &Filter, out: &Outcome) {
    assert!(out.callouts.is_empty(), "callouts: {:?}", out.callouts);
    assert!(f.pending_callouts().is_empty());
}

fn pem_key(alg: &str) -> (&'static str, String) {
    match alg {
        a if a.starts_with("RS") || a.starts_with("PS") => (
            "rsa_public_key",
            read_vector_file("keys/rsa2048_public.pem"),
        ),
        "ES256" => ("public_key", read_vector_file("keys/ec_p256_public.pem")),
        "ES384" => ("public_key", read_vector_file("keys/ec_p384_public.pem")),
        _ => ("public_key", read_vector_file("keys/ed25519_public.pem")),
    }
}

/// One consumer `vectors` whose credential `bouncer-vectors` (the vectors' `iss`) is `alg`
/// with the vectors' key.
fn vector_config(alg: &str) -> Value {
    let mut cred = json!({"key": "bouncer-vectors", "algorithm": alg});
    if alg.starts_with("HS") {
        cred["secret"] = json!(read_vector_file("keys/hmac_secret.txt").trim());
    } else {
        let (field, pem) = pem_key(alg);
        cred[field] = json!(pem);
    }
    json!({"consumers": [{"username": "vectors", "jwt_secrets": [cred]}]})
}

fn vector_jwk(file: &str) -> Value {
    serde_json::from_str(&read_vector_file(file)).unwrap()
}

/// The vectors' public keys as JWKs: RSA `vec-rsa-1`, P-256 `vec-ec256-1`, Ed25519
/// `vec-ed25519-1`.
fn vector_jwks() -> Vec<Value> {
    vec![
        vector_jwk("keys/rsa2048_public.jwk.json"),
        vector_jwk("keys/ec_p256_public.jwk.json"),
        vector_jwk("keys/ed25519_public.jwk.json"),
    ]
}

/// A JWKS provider for issuer `bouncer-vectors` with local keys.
fn local_provider_config(keys: Vec<Value>) -> Value {
    json!({
        "consumers": [{"username": "staff"}],
        "jwks_providers": [{"issuer": "bouncer-vectors", "consumer": "staff", "jwks": {"keys": keys}}]
    })
}

fn idp_upstream(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "idp",
        Profile::Kong => "127.0.0.1:9000",
    }
}

fn remote_provider_config(profile: Profile) -> Value {
    json!({
        "consumers": [{"username": "staff"}],
        "jwks_providers": [{"issuer": "bouncer-vectors", "consumer": "staff",
            "upstream": idp_upstream(profile), "authority": "idp.example.com",
            "path": "/.well-known/jwks.json", "refresh_seconds": 600, "timeout_ms": 500}]
    })
}

/// A host whose IdP serves `keys`, recording every callout.
fn idp_host(
    profile: Profile,
    keys: Vec<Value>,
) -> (Host, Arc<Mutex<Vec<bouncer_harness::Callout>>>) {
    let h = host(profile);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let body = json!({ "keys": keys }).to_string();
    h.set_callout_handler(move |call| {
        s.lock().unwrap().push(call.clone());
        CalloutReply::json(200, &body)
    });
    (h, seen)
}

#[track_caller]
fn only_the_configured_idp(profile: Profile, seen: &[bouncer_harness::Callout]) {
    for c in seen {
        assert_eq!(c.upstream, idp_upstream(profile), "{c:?}");
        assert_eq!(c.authority(), "idp.example.com", "{c:?}");
        assert_eq!(c.path(), "/.well-known/jwks.json", "{c:?}");
        assert_eq!(c.method(), "GET", "{c:?}");
        assert!(!format!("{c:?}").contains("evil"), "{c:?}");
    }
}

// ---------------------------------------------------------------------------------------
// alg none, empty signatures, algorithm confusion
// ---------------------------------------------------------------------------------------

#[test]
fn alg_none_in_any_case_is_refused() {
    let algs: Vec<Value> = [
        "none",
        "None",
        "NONE",
        "nOnE",
        "nonE",
        "none ",
        " none",
        "none\u{0}",
        "",
        "hs256",
        "HS256 ",
        "Hs256",
        "RS256\u{0}",
        "HS256\n",
    ]
    .iter()
    .map(|a| json!(a))
    .chain([
        Value::Null,
        json!(["HS256"]),
        json!({"alg": "HS256"}),
        json!(256),
        json!(true),
    ])
    .collect();
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        let mut p = filter(
            &h,
            &local_provider_config(vec![
                json!({"kty": "oct", "kid": "hmac-1", "k": b64(SECRET)}),
            ]),
        );
        for alg in &algs {
            for kid in [None, Some("hmac-1")] {
                let mut header = json!({ "alg": alg, "typ": "JWT" });
                if let Some(k) = kid {
                    header["kid"] = json!(k);
                }
                let header = header.to_string();
                for payload in [
                    web_payload(""),
                    format!(r#"{{"iss":"bouncer-vectors","exp":{}}}"#, NOW + 600),
                ] {
                    let valid_hmac = hs(&header, &payload);
                    let unsigned = format!("{}.{}.", b64(&header), b64(&payload));
                    let garbage = format!("{}.{}.c2ln", b64(&header), b64(&payload));
                    for t in [&valid_hmac, &unsigned, &garbage] {
                        for instance in [&mut f, &mut p] {
                            let out = run(instance, auth(t));
                            token_401(&out, "Bad token; invalid alg");
                        }
                    }
                }
            }
        }
        for name in ["alg_none", "alg_None_mixed_case", "alg_none_with_signature"] {
            let out = run(&mut f, auth(&vector(name)));
            token_401(&out, "Bad token; invalid alg");
        }
        assert_eq!(h.metric("bouncer_requests_allowed").unwrap_or(0), 0);
    }
}

#[test]
fn empty_and_zero_signatures_are_refused() {
    for profile in PROFILES {
        let h = host(profile);
        for alg in [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "EdDSA",
        ] {
            let mut f = filter(&h, &vector_config(alg));
            let valid = vector(&format!("valid_{alg}"));
            assert!(run(&mut f, auth(&valid)).is_allowed(), "{alg}");
            let (input, sig) = valid.rsplit_once('.').unwrap();
            let sig_len = decoded_len(sig);
            for forged in [
                format!("{input}."),
                format!("{input}.AA"),
                format!("{input}.{}", b64(vec![0u8; sig_len])),
                format!("{input}.{}", b64(vec![0xffu8; sig_len])),
                format!("{input}.{}", b64(vec![0u8; sig_len + 1])),
                format!("{input}.{}", b64(vec![0u8; 1024])),
            ] {
                let out = run(&mut f, auth(&forged));
                token_401(&out, "Invalid signature");
            }
        }
    }
}

/// The decoded length of an unpadded base64url string.
fn decoded_len(s: &str) -> usize {
    s.len() * 3 / 4
}

#[test]
fn hmac_signed_with_a_public_key_is_refused() {
    for profile in PROFILES {
        let h = host(profile);
        // The vectors: HS256 keyed with the PEM bytes of the RS256 / ES256 credential's key.
        let mut rs = filter(&h, &vector_config("RS256"));
        let out = run(
            &mut rs,
            auth(&vector("alg_confusion_HS256_with_RSA_public_pem")),
        );
        token_401(&out, "Invalid algorithm");
        let mut es = filter(&h, &vector_config("ES256"));
        let out = run(
            &mut es,
            auth(&vector("alg_confusion_HS256_with_EC_public_pem")),
        );
        token_401(&out, "Invalid algorithm");
        // Every HMAC, keyed with every public key's PEM (and its JWK text), against every
        // asymmetric credential.
        let payload = format!(
            r#"{{"iss":"bouncer-vectors","sub":"x","exp":{}}}"#,
            NOW + 600
        );
        for alg in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            let mut f = filter(&h, &vector_config(alg));
            let (_, pem) = pem_key(alg);
            for secret in [
                pem.clone(),
                pem.trim_end().to_owned(),
                pem.replace('\n', "\r\n"),
            ] {
                for hmac in ["HS256", "HS384", "HS512"] {
                    let header = format!(r#"{{"alg":"{hmac}","typ":"JWT"}}"#);
                    let t = hs_raw(hmac, &header, &payload, secret.as_bytes());
                    token_401(&run(&mut f, auth(&t)), "Invalid algorithm");
                }
            }
        }
        // The same against a JWKS provider holding the public keys as JWKs.
        let mut p = filter(&h, &local_provider_config(vector_jwks()));
        for (jwk_file, pem_file) in [
            ("keys/rsa2048_public.jwk.json", "keys/rsa2048_public.pem"),
            ("keys/ec_p256_public.jwk.json", "keys/ec_p256_public.pem"),
            ("keys/ed25519_public.jwk.json", "keys/ed25519_public.pem"),
        ] {
            let jwk = vector_jwk(jwk_file);
            let kid = jwk["kid"].as_str().unwrap().to_owned();
            for secret in [
                read_vector_file(pem_file),
                read_vector_file(jwk_file),
                jwk.to_string(),
            ] {
                let with_kid = format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#);
                let t = hs_raw("HS256", &with_kid, &payload, secret.as_bytes());
                let out = run(&mut p, auth(&t));
                token_401(&out, "Invalid algorithm");
                no_callouts(&p, &out);
                let t = hs_raw("HS256", r#"{"alg":"HS256"}"#, &payload, secret.as_bytes());
                let out = run(&mut p, auth(&t));
                token_401(&out, "No credentials found for given 'kid'");
            }
        }
        assert_eq!(h.metric("bouncer_requests_allowed").unwrap_or(0), 0);
    }
}

// ---------------------------------------------------------------------------------------
// crit, jku/x5u/jwk/x5c, kid
// ---------------------------------------------------------------------------------------

#[test]
fn crit_header_is_refused() {
    let mut accepted = Vec::new();
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        // Control: the same token without crit passes.
        assert!(run(&mut f, auth(&hs(r#"{"alg":"HS256"}"#, &web_payload("")))).is_allowed());
        for header in [
            r#"{"alg":"HS256","crit":["x-must-understand"],"x-must-understand":true}"#,
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":["x-missing"]}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"x"}"#,
            r#"{"alg":"HS256","crit":null}"#,
        ] {
            let out = run(&mut f, auth(&hs(header, &web_payload(""))));
            // The contract names no message; RFC 7515 4.1.11 says the token must be rejected.
            if out.status() != Some(401) {
                accepted.push((profile, header, out.status()));
            } else {
                assert_invalid_token(&out);
            }
        }
    }
    assert!(accepted.is_empty(), "accepted with crit: {accepted:#?}");
}

#[test]
fn jku_x5u_jwk_x5c_never_fetch_or_choose_keys() {
    for profile in PROFILES {
        let h = host(profile);
        // Control: the attacker's tokens are well signed (a credential with their key takes them).
        let mut own = filter(
            &h,
            &json!({"consumers": [
                {"username": "a", "jwt_secrets": [{"key": "bouncer-vectors", "algorithm": "EdDSA",
                                                   "public_key": ATTACKER_ED25519_PEM}]}]}),
        );
        assert!(run(&mut own, auth(EDDSA_JWK_KID)).is_allowed());
        assert!(run(&mut own, auth(EDDSA_JWK_NO_KID)).is_allowed());
        let mut own = filter(
            &h,
            &json!({"consumers": [
                {"username": "a", "jwt_secrets": [{"key": "bouncer-vectors", "algorithm": "RS256",
                                                   "rsa_public_key": ATTACKER_RSA_PEM}]}]}),
        );
        assert!(run(&mut own, auth(RS256_JWK_X5C_KID)).is_allowed());
        assert!(run(&mut own, auth(RS256_JKU_X5U_EVIL_KID)).is_allowed());

        // Consumer credentials with the real keys.
        let mut ed = filter(&h, &vector_config("EdDSA"));
        let mut rs = filter(&h, &vector_config("RS256"));
        for (f, t) in [(&mut ed, EDDSA_JWK_KID), (&mut rs, RS256_JWK_X5C_KID)] {
            let out = run(f, auth(t));
            token_401(&out, "Invalid signature");
            no_callouts(f, &out);
        }
        for (f, t) in [
            (&mut ed, EDDSA_JWK_NO_KID),
            (&mut rs, RS256_JKU_X5U_EVIL_KID),
        ] {
            let out = run(f, auth(t));
            token_401(&out, "Invalid signature");
            no_callouts(f, &out);
        }
        // An HS256 token carrying its own `oct` key.
        let mut web = filter(&h, &base_config());
        let header = json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64("attacker")},
                            "jku": "https://evil.example/jwks"})
        .to_string();
        let t = hs_raw("HS256", &header, &web_payload(""), b"attacker");
        let out = run(&mut web, auth(&t));
        token_401(&out, "Invalid signature");
        no_callouts(&web, &out);

        // A provider with local keys: no callout, the embedded key is never used.
        let mut p = filter(&h, &local_provider_config(vector_jwks()));
        for (t, msg) in [
            (EDDSA_JWK_KID, "Invalid signature"),
            (EDDSA_JWK_NO_KID, "Invalid signature"),
            (RS256_JWK_X5C_KID, "Invalid signature"),
            (
                RS256_JKU_X5U_EVIL_KID,
                "No credentials found for given 'kid'",
            ),
        ] {
            let out = run(&mut p, auth(t));
            token_401(&out, msg);
            no_callouts(&p, &out);
        }

        // A remote provider: the only fetches go to the configured IdP, at most one
        // unknown-kid refetch however often the token comes.
        let (h2, seen) = idp_host(profile, vector_jwks());
        let mut r = filter(&h2, &remote_provider_config(profile));
        r.tick().unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1, "the first tick's fetch");
        for _ in 0..10 {
            for (t, msg) in [
                (
                    RS256_JKU_X5U_EVIL_KID,
                    "No credentials found for given 'kid'",
                ),
                (EDDSA_JWK_KID, "Invalid signature"),
                (RS256_JWK_X5C_KID, "Invalid signature"),
            ] {
                token_401(&run(&mut r, auth(t)), msg);
            }
        }
        let seen = seen.lock().unwrap();
        assert!(seen.len() <= 2, "{} fetches", seen.len());
        only_the_configured_idp(profile, &seen);
    }
}

#[test]
fn hostile_kids_get_a_clean_401_and_no_callout_storm() {
    let kids: Vec<Value> = [
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/dev/zero",
        "file:///etc/passwd",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "'; DROP TABLE keys; --",
        "{\"$ne\": null}",
        "a\u{0}b",
        "\u{0}",
        "hmac-1\u{0}",
        "hmac-1\u{0}evil",
        "hmac-1 ",
        " hmac-1",
        "HMAC-1",
        "hmac-1\r\nx-consumer-id: admin",
        "%00",
        "*",
        "",
        "\u{fffd}\u{7f}",
    ]
    .iter()
    .map(|k| json!(k))
    .chain([
        json!("k".repeat(6000)),
        json!(1),
        json!(["hmac-1"]),
        json!({"kid": "hmac-1"}),
        json!(true),
    ])
    .collect();
    let oct = json!({"kty": "oct", "kid": "hmac-1", "k": b64(SECRET)});
    let payload = format!(
        r#"{{"iss":"bouncer-vectors","sub":"x","exp":{}}}"#,
        NOW + 600
    );
    for profile in PROFILES {
        // Local keys: no callout at all.
        let h = host(profile);
        let mut f = filter(
            &h,
            &with(
                local_provider_config(vec![oct.clone()]),
                json!({"max_token_bytes": 16384}),
            ),
        );
        let good = hs(r#"{"alg":"HS256","kid":"hmac-1"}"#, &payload);
        assert_eq!(
            upstream(&run(&mut f, auth(&good)), "x-credential-identifier"),
            Some("hmac-1")
        );
        for kid in &kids {
            let t = hs(&json!({"alg": "HS256", "kid": kid}).to_string(), &payload);
            let out = run(&mut f, auth(&t));
            token_401(&out, "No credentials found for given 'kid'");
            no_callouts(&f, &out);
        }
        // A remote provider: a flood of hostile kids makes at most one refetch. (Its `oct`
        // key is ignored, CONTRACT.md revision 2: the good token is the RSA vector.)
        let rsa: Value =
            serde_json::from_str(&read_vector_file("keys/rsa2048_public.jwk.json")).unwrap();
        let (h, seen) = idp_host(profile, vec![oct.clone(), rsa]);
        let mut f = filter(
            &h,
            &with(
                remote_provider_config(profile),
                json!({"max_token_bytes": 16384}),
            ),
        );
        assert_message(
            &run(&mut f, auth(&good)),
            401,
            "No credentials found for given 'kid'",
        );
        let good = vector("valid_RS256");
        assert!(run(&mut f, auth(&good)).is_allowed());
        for _ in 0..10 {
            for kid in &kids {
                let t = hs(&json!({"alg": "HS256", "kid": kid}).to_string(), &payload);
                let out = run(&mut f, auth(&t));
                token_401(&out, "No credentials found for given 'kid'");
            }
        }
        let seen = seen.lock().unwrap();
        assert!(seen.len() <= 2, "{} fetches for hostile kids", seen.len());
        only_the_configured_idp(profile, &seen);
        assert!(h.metric("bouncer_jwks_fetches").unwrap_or(0) <= 2);
    }
}

// ---------------------------------------------------------------------------------------
// JSON: duplicates, nesting, numbers
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_members_are_bad_json() {
    let p = web_payload("");
    let future = NOW + 600;
    let cases: Vec<(String, String)> = vec![
        (r#"{"alg":"HS256","alg":"HS256"}"#.into(), p.clone()),
        (r#"{"alg":"HS256","alg":"none"}"#.into(), p.clone()),
        (r#"{"alg":"none","alg":"HS256"}"#.into(), p.clone()),
        (r#"{"alg":"HS256","\u0061lg":"none"}"#.into(), p.clone()),
        (r#"{"alg":"HS256","kid":"a","kid":"b"}"#.into(), p.clone()),
        (
            r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#.into(),
            p.clone(),
        ),
        (
            r#"{"alg":"HS256"}"#.into(),
            format!(r#"{{"iss":"web-key","iss":"partner-key","exp":{future}}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.into(),
            format!(r#"{{"iss":"partner-key","\u0069ss":"web-key","exp":{future}}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.into(),
            format!(r#"{{"iss":"web-key","exp":1,"exp":{future}}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.into(),
            format!(r#"{{"iss":"web-key","exp":{future},"sub":"a","sub":"b"}}"#),
        ),
        (
            r#"{"alg":"HS256"}"#.into(),
            format!(
                r#"{{"iss":"web-key","exp":{future},"permissions":[],"permissions":["admin"]}}"#
            ),
        ),
    ];
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &base_config());
        for (header, payload) in &cases {
            let out = run(&mut f, auth(&hs(header, payload)));
            token_401(&out, "Bad token; invalid JSON");
        }
        assert_eq!(h.metric("bouncer_requests_allowed").unwrap_or(0), 0);
    }
}

#[test]
fn deeply_nested_json_is_refused_without_a_trap() {
    let n = 10_000;
    let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    let mixed = format!("{}{}", r#"[{"a":"#.repeat(n / 2), "}]".repeat(n / 2));
    let unclosed = "[".repeat(n);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(
            &h,
            &with(base_config(), json!({"max_token_bytes": 1_000_000})),
        );
        for deep in [&arrays, &objects, &mixed, &unclosed] {
            let in_header = hs(
                &format!(r#"{{"alg":"HS256","x":{deep}}}"#),
                &web_payload(""),
            );
            token_401(&run(&mut f, auth(&in_header)), "Bad token; invalid JSON");
            let in_payload = hs(
                r#"{"alg":"HS256"}"#,
                &web_payload(&format!(r#""x":{deep}"#)),
            );
            token_401(&run(&mut f, auth(&in_payload)), "Bad token; invalid JSON");
            let whole = hs(r#"{"alg":"HS256"}"#, deep);
            token_401(&run(&mut f, auth(&whole)), "Bad token; invalid JSON");
        }
        // Just under any sane limit: a nested claim is forwarded as JSON, no trap.
        let mut f = filter(
            &h,
            &with(
                base_config(),
                json!({"claims_to_headers": [{"claim": "deep", "header": "x-deep"}]}),
            ),
        );
        let shallow = format!("{}{}", "[".repeat(60), "]".repeat(60));
        let out = run(
            &mut f,
            auth(&hs(
                r#"{"alg":"HS256"}"#,
                &web_payload(&format!(r#""deep":{shallow}"#)),
            )),
        );
        assert!(out.is_allowed(), "{out:?}");
        // A 10,000-deep configuration is refused, not a trap.
        let cfg = format!(r#"{{"consumers":[],"x":{arrays}}}"#);
        match module().filter(&h, &cfg) {
            Err(bouncer_harness::HarnessError::Config { .. }) => {}
            other => panic!("{profile:?}: {:?}", other.map(|_| "accepted")),
        }
    }
}

/// What a request must get.
#[derive(Debug, Clone)]
enum Expect {
    Allowed,
    Status(u16, Value),
}

fn msg(m: &str) -> Expect {
    Expect::Status(401, json!({ "message": m }))
}

fn claims_err(k: &str, v: &str) -> Expect {
    Expect::Status(401, json!({ k: v }))
}

#[track_caller]
fn expect(out: &Outcome, e: &Expect, what: &str) {
    match e {
        Expect::Allowed => assert!(out.is_allowed(), "{what}: {out:?}"),
        Expect::Status(s, body) => {
            let r = out
                .local_response()
                .unwrap_or_else(|| panic!("{what}: expected {s}, got {out:?}"));
            assert_eq!((r.status, r.json()), (*s, body.clone()), "{what}");
        }
    }
}

#[test]
fn odd_numbers_in_exp_nbf_iat() {
    let expired = claims_err("exp", "token expired");
    let nan = claims_err("exp", "must be a number");
    let bad_json = msg("Bad token; invalid JSON");
    let now = NOW;
    // (claims other than iss, expectation) with exp and nbf verified.
    let cases: Vec<(String, Expect)> = vec![
        ("\"exp\":18446744073709551616".into(), Expect::Allowed),
        ("\"exp\":9223372036854775808".into(), Expect::Allowed),
        ("\"exp\":1e300".into(), Expect::Allowed),
        ("\"exp\":1.8000006e9".into(), Expect::Allowed),
        ("\"exp\":18000006E2".into(), Expect::Allowed),
        (format!("\"exp\":{now}.5"), Expect::Allowed),
        (format!("\"exp\":{now}"), expired.clone()),
        (format!("\"exp\":{now}.0"), expired.clone()),
        ("\"exp\":-9223372036854775809".into(), expired.clone()),
        ("\"exp\":-1e300".into(), expired.clone()),
        ("\"exp\":-0".into(), expired.clone()),
        ("\"exp\":-0.0".into(), expired.clone()),
        ("\"exp\":0e10".into(), expired.clone()),
        ("\"exp\":5e-324".into(), expired.clone()),
        ("\"exp\":\"1800000600\"".into(), nan.clone()),
        ("\"exp\":null".into(), nan.clone()),
        ("\"exp\":true".into(), nan.clone()),
        ("\"exp\":[1800000600]".into(), nan.clone()),
        ("\"exp\":{\"n\":1800000600}".into(), nan.clone()),
        ("\"exp\":1e400".into(), bad_json.clone()),
        ("\"exp\":-1e400".into(), bad_json.clone()),
        ("\"exp\":01800000600".into(), bad_json.clone()),
        ("\"exp\":+1800000600".into(), bad_json.clone()),
        ("\"exp\":.5".into(), bad_json.clone()),
        ("\"exp\":1.e5".into(), bad_json.clone()),
        ("\"exp\":NaN".into(), bad_json.clone()),
        ("\"exp\":Infinity".into(), bad_json.clone()),
        ("\"exp\":0x6B49D200".into(), bad_json.clone()),
        (
            format!("\"exp\":{},\"nbf\":1e300", now + 600),
            claims_err("nbf", "token not valid yet"),
        ),
        (
            format!("\"exp\":{},\"nbf\":18446744073709551616", now + 600),
            claims_err("nbf", "token not valid yet"),
        ),
        (format!("\"exp\":{},\"nbf\":-0", now + 600), Expect::Allowed),
        (
            format!("\"exp\":{},\"nbf\":-1e300", now + 600),
            Expect::Allowed,
        ),
        (
            format!("\"exp\":{},\"nbf\":null", now + 600),
            Expect::Allowed,
        ),
        (
            format!("\"exp\":{},\"nbf\":\"0\"", now + 600),
            claims_err("nbf", "must be a number"),
        ),
        (
            format!("\"exp\":{},\"iat\":1e400", now + 600),
            bad_json.clone(),
        ),
    ];
    // iat against a consumer's issued_before (NOW - 50).
    let revoked = msg("Token revoked");
    let iat_cases: Vec<(String, Expect)> = vec![
        ("-0".into(), revoked.clone()),
        ("-1e300".into(), revoked.clone()),
        ("\"1800000000\"".into(), revoked.clone()),
        ("null".into(), revoked.clone()),
        ("1e300".into(), Expect::Allowed),
        ("18446744073709551616".into(), Expect::Allowed),
        (format!("{}.5", now - 50), Expect::Allowed),
        (format!("{}", now - 50), Expect::Allowed),
        (format!("{}.5", now - 51), revoked.clone()),
    ];
    // With maximum_expiration, huge exps are refused.
    let max_cases: Vec<(String, Expect)> = vec![
        (
            "18446744073709551616".into(),
            claims_err("exp", "exceeds maximum allowed expiration"),
        ),
        (
            "1e300".into(),
            claims_err("exp", "exceeds maximum allowed expiration"),
        ),
        (format!("{}", now + 3600), Expect::Allowed),
        (
            format!("{}.5", now + 3600),
            claims_err("exp", "exceeds maximum allowed expiration"),
        ),
    ];
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(
            &h,
            &with(base_config(), json!({"claims_to_verify": ["exp", "nbf"]})),
        );
        for (claims, e) in &cases {
            let t = hs(
                r#"{"alg":"HS256"}"#,
                &format!(r#"{{"iss":"web-key",{claims}}}"#),
            );
            expect(&run(&mut f, auth(&t)), e, claims);
        }
        let mut cfg = base_config();
        cfg["consumers"][0]["issued_before"] = json!(NOW - 50);
        let mut f = filter(&h, &cfg);
        for (iat, e) in &iat_cases {
            let t = hs(
                r#"{"alg":"HS256"}"#,
                &format!(r#"{{"iss":"web-key","exp":{},"iat":{iat}}}"#, now + 600),
            );
            expect(&run(&mut f, auth(&t)), e, iat);
        }
        let mut f = filter(
            &h,
            &with(base_config(), json!({"maximum_expiration": 3600})),
        );
        for (exp, e) in &max_cases {
            let t = hs(
                r#"{"alg":"HS256"}"#,
                &format!(r#"{{"iss":"web-key","exp":{exp}}}"#),
            );
            expect(&run(&mut f, auth(&t)), e, exp);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Header bytes, claim values as headers, spoofed headers
// ---------------------------------------------------------------------------------------

#[test]
fn control_bytes_and_huge_values_in_headers() {
    // The harness carries header values as Rust strings: NUL, C0 controls, DEL, CR/LF and
    // U+FFFD (what the filter's lossy reading makes of non-UTF-8 bytes) are what it can send.
    let odd = [
        "\u{0}",
        "\u{1}\u{2}\u{3}",
        "\r\n",
        "\n\nx-consumer-id: admin",
        "\u{7f}",
        "\u{fffd}\u{fffd}",
        "\u{1b}[2J",
        "\u{feff}",
        "\u{202e}",
        "\u{10ffff}",
    ];
    let big = "A".repeat(1 << 20);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(
            &h,
            &with(base_config(), json!({"cookie_names": ["jwt-token"]})),
        );
        let web = hs256(claims("web-key"));
        for o in odd {
            for (name, value, message, scheme) in [
                (
                    "authorization",
                    format!("Bearer {o}"),
                    "Bad token; invalid JSON",
                    "Bearer error=\"invalid_token\"",
                ),
                (
                    "authorization",
                    format!("Bearer {web}{o}"),
                    "Bad token; invalid JSON",
                    "Bearer error=\"invalid_token\"",
                ),
                (
                    "authorization",
                    format!("Bearer {o}{web}"),
                    "Bad token; invalid JSON",
                    "Bearer error=\"invalid_token\"",
                ),
                (
                    "cookie",
                    format!("jwt-token={web}{o}"),
                    "Bad token; invalid JSON",
                    "Bearer error=\"invalid_token\"",
                ),
                (
                    "apikey",
                    format!("partner-api-key{o}"),
                    "Unauthorized",
                    "Key",
                ),
                ("apikey", o.to_owned(), "Unauthorized", "Key"),
            ] {
                if name == "cookie" && o.trim().is_empty() {
                    continue; // cookie values are trimmed: the token is intact
                }
                let out = run(&mut f, get("/").header(name, &value));
                assert_message(&out, 401, message);
                assert_eq!(
                    out.local_response().unwrap().header("www-authenticate"),
                    Some(scheme),
                    "{name}: {value:?}"
                );
            }
            // Junk elsewhere does not disturb a good token.
            let out = run(
                &mut f,
                get(&format!("/p{o}?q={o}"))
                    .header("authorization", &bearer(&web))
                    .header("x-junk", o)
                    .header("cookie", &format!("a={o}; b")),
            );
            assert_eq!(upstream(&out, "x-consumer-username"), Some("web"), "{o:?}");
            // Percent-encoded control bytes in a query credential.
            let out = run(&mut f, get(&format!("/?jwt={web}%00")));
            assert_message(&out, 401, "Bad token; invalid JSON");
            let out = run(&mut f, get("/?apikey=partner-api-key%0d%0a"));
            assert_message(&out, 401, "Unauthorized");
        }
        // Huge values.
        let t0 = Instant::now();
        let out = run(
            &mut f,
            get("/").header("authorization", &format!("Bearer {big}")),
        );
        assert_message(&out, 401, "Bad token; too large");
        let out = run(&mut f, get("/").header("apikey", &big));
        assert_message(&out, 401, "Unauthorized");
        let out = run(
            &mut f,
            get("/").header("cookie", &format!("jwt-token={big}")),
        );
        assert_message(&out, 401, "Bad token; too large");
        let out = run(&mut f, get(&format!("/?jwt={big}")));
        assert_message(&out, 401, "Bad token; too large");
        let out = run(
            &mut f,
            get("/")
                .header("authorization", &bearer(&web))
                .header("x-big", &big)
                .header(&"x".repeat(65536), "v"),
        );
        assert!(out.is_allowed());
        // Ten thousand headers.
        let mut req = get("/").header("authorization", &bearer(&web));
        for i in 0..10_000 {
            req = req.header(&format!("x-h-{i}"), "v");
        }
        assert!(run(&mut f, req).is_allowed());
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "huge headers took {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn claim_values_never_reach_headers_unencoded() {
    let bad = [
        "a\r\nx-consumer-id: admin",
        "a\nb",
        "a\rb",
        "\u{0}",
        "a\u{b}b",
        "\u{7f}",
        "\u{1b}[31m",
        "a\u{c}",
        "\u{1f}",
    ];
    let good = [
        ("tab\tok", "tab\tok"),
        ("ünïcødé", "ünïcødé"),
        ("\u{2028}", "\u{2028}"),
        ("\u{85}", "\u{85}"),
    ];
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(
            base_config(),
            json!({"claims_to_headers": [{"claim": "v", "header": "x-v"}]}),
        );
        let mut f = filter(&h, &cfg);
        let send = |f: &mut Filter, v: Value| {
            let mut c = claims("web-key");
            c["v"] = v;
            run(f, auth(&hs256(c)))
        };
        for b in bad {
            for v in [json!(b), json!(["ok", b]), json!([b])] {
                let out = send(&mut f, v.clone());
                assert_eq!(upstream(&out, "x-v"), None, "{v}");
                assert_eq!(upstream(&out, "x-consumer-id"), Some("id-web"));
            }
            // Inside an object the value is sent as JSON, escaped.
            // Inside an object the value is sent as JSON, its control characters escaped (DEL,
            // which JSON does not escape, keeps it from being sent).
            let out = send(&mut f, json!({ "k": b }));
            if let Some(sent) = upstream(&out, "x-v") {
                assert_eq!(
                    serde_json::from_str::<Value>(sent).unwrap(),
                    json!({ "k": b })
                );
            } else {
                assert!(b.contains('\u{7f}'), "{b:?}");
            }
            for (_, value) in out.request_headers.iter() {
                assert!(
                    !value.bytes().any(|c| c < 0x20 && c != b'\t' || c == 0x7f),
                    "{value:?}"
                );
            }
        }
        for (v, sent) in good {
            assert_eq!(upstream(&send(&mut f, json!(v)), "x-v"), Some(sent));
        }
        // The authorization service's headers obey the same rule.
        let h = host(profile);
        h.set_callout_handler(|_| {
            CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "a\r\nx-consumer-id: admin", "x-other": "1\n"}}}"#,
            )
        });
        let cfg = with(
            base_config(),
            json!({"authz": {"upstream": authz_upstream(profile), "path": "/authz",
                             "allowed_headers": ["x-allowed-fields", "x-other"]}}),
        );
        let mut f = filter(&h, &cfg);
        let out = run(
            &mut f,
            get("/api/v1/orders").header("authorization", &bearer(&hs256(claims("partner-key")))),
        );
        assert_eq!(upstream(&out, "x-allowed-fields"), None);
        assert_eq!(upstream(&out, "x-other"), None);
        assert_eq!(upstream(&out, "x-consumer-id"), Some("partner"));
    }
}

fn authz_upstream(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => "authz",
        Profile::Kong => "127.0.0.1:8181",
    }
}

#[test]
fn spoofed_reserved_headers_never_reach_the_upstream() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| CalloutReply::json(200, r#"{"result": true}"#));
        let mut cfg = with(
            base_config(),
            json!({"claims_to_headers": [{"claim": "customer_id", "header": "x-customer-id"}],
                   "forward_payload_header": "x-jwt-payload",
                   "authz": {"upstream": authz_upstream(profile), "path": "/authz",
                             "allowed_headers": ["x-allowed-fields"], "skip_groups": ["first-party"]}}),
        );
        cfg["consumers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"username": "plain", "jwt_secrets": [{"key": "plain-key", "algorithm": "HS256", "secret": SECRET}]}));
        let mut f = filter(&h, &cfg);
        let reserved = [
            "x-consumer-id",
            "x-consumer-username",
            "x-consumer-custom-id",
            "x-credential-identifier",
            "x-consumer-groups",
            "x-anonymous-consumer",
            "x-customer-id",
            "x-jwt-payload",
            "x-allowed-fields",
        ];
        // `plain` has no custom id and no groups, its token no customer_id, the callout adds no
        // header: every reserved header the filter does not set must arrive blank or absent.
        let plain = bearer(&hs256(claims("plain-key")));
        let set_by_filter = [
            ("x-consumer-id", "plain"),
            ("x-consumer-username", "plain"),
            ("x-credential-identifier", "plain-key"),
        ];
        for name in reserved {
            for spoof in ["spoofed", "admin, root", ""] {
                let out = run(
                    &mut f,
                    get("/api")
                        .header("authorization", &plain)
                        .header(name, spoof),
                );
                let expected = set_by_filter
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v);
                if name == "x-jwt-payload" {
                    assert_eq!(
                        upstream(&out, name),
                        plain.split('.').nth(1),
                        "{profile:?} {name}"
                    );
                } else {
                    assert_eq!(upstream(&out, name), expected, "{profile:?} {name}");
                }
                for v in out.request_headers.get_all(name) {
                    assert!(
                        !v.contains("spoofed") && !v.contains("admin"),
                        "{name}: {v}"
                    );
                }
            }
            // Twice, same or different values, empty too: 400.
            for (a, b) in [("spoofed", "spoofed"), ("a", "b"), ("", ""), ("", "admin")] {
                let out = run(
                    &mut f,
                    get("/api")
                        .header("authorization", &plain)
                        .header(name, a)
                        .header(name, b),
                );
                assert_message(&out, 400, &format!("Duplicate header '{name}'"));
            }
            // Mixed case (the harness lowercases names, as Envoy does; Kong's engine hands
            // them over as written and the filter lowercases them): still the same header.
            let mixed: String = name
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            let out = run(
                &mut f,
                get("/api")
                    .header("authorization", &plain)
                    .header(&mixed, "x")
                    .header(&mixed.to_ascii_uppercase(), "y"),
            );
            assert_message(&out, 400, &format!("Duplicate header '{name}'"));
            // Also on an anonymous or unauthenticated path.
            let out = run(&mut f, get("/").header(name, "spoofed"));
            assert_message(&out, 401, "Unauthorized");
        }
        // The anonymous consumer never carries a client's credential identifier or groups.
        let mut anon = filter(&h, &with(cfg.clone(), json!({"anonymous": "guest"})));
        for name in reserved {
            let out = run(&mut anon, get("/").header(name, "spoofed"));
            let v = upstream(&out, name);
            assert!(
                v.is_none() || !v.unwrap().contains("spoofed"),
                "{name}: {v:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokens in several places, cookies, long paths
// ---------------------------------------------------------------------------------------

#[test]
fn tokens_in_several_places_at_once() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(
            base_config(),
            json!({"cookie_names": ["jwt-token", "sso"], "uri_param_names": ["jwt", "access_token"],
                   "header_names": ["authorization", "x-token"], "key_names": ["apikey"]}),
        );
        let mut f = filter(&h, &cfg);
        let web = hs256(claims("web-key"));
        let web_pct = web.replace('.', "%2E");
        let partner = hs256(claims("partner-key"));
        let bad = "x.y.z";
        let same = [
            get(&format!("/?jwt={web}")).header("authorization", &bearer(&web)),
            get(&format!("/?jwt={web}"))
                .header("authorization", &bearer(&web))
                .header("cookie", &format!("jwt-token={web}")),
            get(&format!("/?jwt={web}&jwt={web}&access_token={web_pct}"))
                .header("x-token", &bearer(&web))
                .header("cookie", &format!("jwt-token={web}; sso=\"{web}\"")),
            get("/")
                .header("authorization", &bearer(&web))
                .header("authorization", &format!("bearer  {web} ")),
            get("/")
                .header("cookie", &format!("jwt-token={web}"))
                .header("cookie", &format!("jwt-token={web}")),
        ];
        for req in same {
            let out = run(&mut f, req);
            assert_eq!(
                upstream(&out, "x-consumer-username"),
                Some("web"),
                "{out:?}"
            );
        }
        let different = [
            get(&format!("/?jwt={partner}")).header("authorization", &bearer(&web)),
            get("/")
                .header("authorization", &bearer(&web))
                .header("cookie", &format!("jwt-token={partner}")),
            get(&format!("/?jwt={web}")).header("cookie", &format!("sso={partner}")),
            get("/")
                .header("authorization", &bearer(&web))
                .header("authorization", &bearer(&partner)),
            get("/")
                .header("authorization", &bearer(&web))
                .header("x-token", &bearer(bad)),
            get(&format!("/?jwt={web}&jwt={partner}")),
            get(&format!("/?jwt={bad}")).header("authorization", &bearer(&web)),
            get("/")
                .header("cookie", &format!("jwt-token={web}"))
                .header("cookie", &format!("jwt-token={partner}")),
            get(&format!("/?jwt={web}")).header("apikey", "partner-api-key"),
            get("/")
                .header("cookie", &format!("sso={web}"))
                .header("apikey", "partner-api-key"),
            get("/?apikey=partner-api-key").header("authorization", &bearer(&web)),
        ];
        for req in different {
            let out = run(&mut f, req);
            token_401(&out, "Multiple tokens provided");
        }
        // The same API key twice counts once; two different ones are a duplicate.
        let out = run(
            &mut f,
            get("/api/v1/orders?apikey=partner-api-key").header("apikey", "partner-api-key"),
        );
        assert_eq!(upstream(&out, "x-consumer-username"), Some("partner"));
        let out = run(
            &mut f,
            get("/api/v1/orders?apikey=partner-api-key&apikey=x"),
        );
        assert_message(&out, 401, "Duplicate API key found");
        // hide_credentials removes every copy.
        let mut f = filter(&h, &with(cfg, json!({"hide_credentials": true})));
        let out = run(
            &mut f,
            get(&format!("/p?a=1&jwt={web}&acc%65ss_token={web}"))
                .header("authorization", &bearer(&web))
                .header("x-token", &bearer(&web))
                .header("cookie", &format!("theme=dark; jwt-token={web}; sso={web}")),
        );
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        assert_eq!(upstream(&out, "authorization"), None);
        assert_eq!(upstream(&out, "x-token"), None);
        assert_eq!(upstream(&out, "cookie"), Some("theme=dark"));
        assert_eq!(out.header(":path"), Some("/p?a=1"));
        for (_, v) in out.request_headers.iter() {
            assert!(
                !v.contains(&web),
                "a hidden token reached the upstream: {v}"
            );
        }
    }
}

#[test]
fn ten_thousand_cookies() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(base_config(), json!({"cookie_names": ["jwt-token"]}));
        let mut f = filter(&h, &cfg);
        let web = hs256(claims("web-key"));
        let partner = hs256(claims("partner-key"));
        let many: Vec<String> = (0..10_000).map(|i| format!("c{i}=v{i}")).collect();
        let many = many.join("; ");
        let t0 = Instant::now();
        let out = run(
            &mut f,
            get("/").header("cookie", &format!("{many}; jwt-token={web}")),
        );
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        let out = run(&mut f, get("/").header("cookie", &many));
        assert_message(&out, 401, "Unauthorized");
        let same = vec![format!("jwt-token={web}"); 10_000].join("; ");
        let out = run(&mut f, get("/").header("cookie", &same));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        let out = run(
            &mut f,
            get("/").header("cookie", &format!("{same}; jwt-token={partner}")),
        );
        token_401(&out, "Multiple tokens provided");
        let empty = vec!["jwt-token="; 10_000].join("; ");
        let out = run(&mut f, get("/").header("cookie", &empty));
        assert_message(&out, 401, "Unauthorized");
        // 10,000 cookie headers.
        let mut req = get("/");
        for i in 0..10_000 {
            req = req.header("cookie", &format!("c{i}=v"));
        }
        let out = run(&mut f, req.header("cookie", &format!("jwt-token={web}")));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        // hide_credentials keeps the other 10,000.
        let mut f = filter(&h, &with(cfg, json!({"hide_credentials": true})));
        let out = run(
            &mut f,
            get("/").header("cookie", &format!("{many}; jwt-token={web}")),
        );
        assert_eq!(upstream(&out, "cookie"), Some(many.as_str()));
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "cookies took {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn megabyte_paths_against_route_regexes_run_in_linear_time() {
    let mb = 1 << 20;
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(
            base_config(),
            json!({
                "group_routes": {"slow": [{"methods": ["*"], "path": "^/(a|aa)*(a+)+$"}]},
                "permissions": {"view_roles": [{"methods": ["GET"], "path": "^/api/v1/roles(/[^/?#]+)?$"}]},
                "authz": {"skip_groups": ["partners", "slow"]}
            }),
        );
        let mut cfg = cfg;
        cfg["consumers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"username": "slowpoke", "groups": ["slow"],
                         "jwt_secrets": [{"key": "slow-key", "algorithm": "HS256", "secret": SECRET}]}));
        let mut f = filter(&h, &cfg);
        let key = |p: &str| get(p).header("apikey", "partner-api-key");
        let slow = bearer(&hs256(claims("slow-key")));
        let mut roles = claims("web-key");
        roles["permissions"] = json!(["view_roles"]);
        let roles = bearer(&hs256(roles));
        let cases: Vec<(Request, u16)> = vec![
            (key(&format!("/api/v1/orders/{}", "a".repeat(mb))), 200),
            (key(&format!("/api/v1/orders/{}", "a/".repeat(mb / 2))), 403),
            (key(&format!("/{}", "x".repeat(mb))), 403),
            (
                key(&format!("/api/v1/orders?{}", "a=1&".repeat(mb / 4))),
                200,
            ),
            (key(&format!("/api/v1/orders/1?{}", "?".repeat(mb))), 200),
            (
                get(&format!("/{}", "a".repeat(mb))).header("authorization", &slow),
                200,
            ),
            (
                get(&format!("/{}b", "a".repeat(mb))).header("authorization", &slow),
                403,
            ),
            (
                get(&format!("/api/v1/roles/{}", "r".repeat(mb))).header("authorization", &roles),
                200,
            ),
            (
                get(&format!("/api/v1/roles/{}/", "r".repeat(mb))).header("authorization", &roles),
                403,
            ),
        ];
        for (i, (req, status)) in cases.into_iter().enumerate() {
            let t0 = Instant::now();
            let out = run(&mut f, req);
            let took = t0.elapsed();
            assert_eq!(
                out.status(),
                Some(status),
                "case {i}: {:?}",
                out.local_response()
            );
            if status == 403 {
                assert_message(&out, 403, "You cannot consume this service");
            }
            assert!(took < Duration::from_secs(3), "case {i} took {took:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile authorization and JWKS answers
// ---------------------------------------------------------------------------------------

fn partner_token() -> String {
    let mut c = claims("partner-key");
    c["permissions"] = json!(["view_orders"]);
    bearer(&hs256(c))
}

#[test]
fn a_100_mb_authz_answer_is_a_clean_403() {
    let huge = {
        let mut b = br#"{"result": true, "pad": ""#.to_vec();
        b.resize(100 << 20, b'x');
        b.extend_from_slice(br#""}"#);
        b
    };
    let nested = format!("{}{}", r#"{"result":"#.repeat(5_000), "}".repeat(5_000));
    for profile in PROFILES {
        for (body, status_on_error) in [(huge.clone(), 503u16), (nested.clone().into_bytes(), 503)]
        {
            let h = host(profile);
            let calls = Arc::new(AtomicUsize::new(0));
            let c = Arc::clone(&calls);
            let reply = CalloutReply::Ok {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            };
            h.set_callout_handler(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                reply.clone()
            });
            let cfg = with(
                base_config(),
                json!({"authz": {"upstream": authz_upstream(profile), "path": "/authz",
                                 "status_on_error": status_on_error}}),
            );
            let mut f = filter(&h, &cfg);
            let before = f.memory_size();
            let out = run(
                &mut f,
                get("/api/v1/orders").header("authorization", &partner_token()),
            );
            // A 200 that is not a readable allow is an answer that denies (not an error).
            assert_message(&out, 403, "You cannot consume this service");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            let after = f.memory_size();
            assert!(
                after < before + (8 << 20),
                "memory {before} -> {after} after a huge answer"
            );
            // A denial is cached like any other; no error is counted.
            run(
                &mut f,
                get("/api/v1/orders").header("authorization", &partner_token()),
            );
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(h.metric("bouncer_authz_errors").unwrap_or(0), 0);
        }
    }
}

#[test]
fn an_authz_answer_that_never_comes_is_a_clean_503() {
    for profile in PROFILES {
        for (reply, status_on_error) in [
            (CalloutReply::Timeout, 503u16),
            (
                CalloutReply::json(200, r#"{"result": true}"#).after(Duration::from_secs(3600)),
                503,
            ),
            (
                CalloutReply::json(200, r#"{"result": true}"#).after(Duration::from_millis(300)),
                503,
            ),
            (
                CalloutReply::json(200, r#"{"result": true}"#).after(Duration::from_secs(3600)),
                504,
            ),
        ] {
            let h = host(profile);
            h.set_callout_handler(move |_| reply.clone());
            let cfg = with(
                base_config(),
                json!({"authz": {"upstream": authz_upstream(profile), "path": "/authz",
                                 "timeout_ms": 300, "status_on_error": status_on_error}}),
            );
            let mut f = filter(&h, &cfg);
            let out = run(
                &mut f,
                get("/api/v1/orders").header("authorization", &partner_token()),
            );
            assert_authz_unavailable(&out, profile, true, status_on_error);
            assert!(out
                .local_response()
                .unwrap()
                .header("www-authenticate")
                .is_none());
            assert_eq!(out.callouts.len(), 1);
            assert_eq!(out.callouts[0].timeout, Duration::from_millis(300));
        }
    }
}

#[test]
fn a_100_mb_jwks_answer_is_refused() {
    let mut huge = br#"{"keys": [], "pad": ""#.to_vec();
    huge.resize(100 << 20, b'x');
    huge.extend_from_slice(br#""}"#);
    for profile in PROFILES {
        let h = host(profile);
        let reply = CalloutReply::Ok {
            status: 200,
            headers: vec![],
            body: huge.clone(),
        };
        h.set_callout_handler(move |_| reply.clone());
        let mut f = filter(&h, &remote_provider_config(profile));
        let out = run(&mut f, auth(&vector("valid_RS256")));
        assert_message(&out, 503, "Signing keys unavailable");
        assert!(f.memory_size() < 64 << 20, "memory {}", f.memory_size());
    }
}

#[test]
fn hidden_credentials_sent_twice_never_reach_the_upstream() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(
            base_config(),
            json!({"cookie_names": ["jwt-token"], "header_names": ["authorization", "x-token"],
                   "key_names": ["apikey"], "hide_credentials": true}),
        );
        let mut f = filter(&h, &cfg);
        let web = hs256(claims("web-key"));
        let mut leaks = Vec::new();
        for (what, req, secret) in [
            (
                "x-token twice",
                get("/")
                    .header("x-token", &bearer(&web))
                    .header("x-token", &bearer(&web)),
                web.as_str(),
            ),
            (
                "authorization twice",
                get("/")
                    .header("authorization", &bearer(&web))
                    .header("authorization", &bearer(&web)),
                web.as_str(),
            ),
            (
                "cookie header twice",
                get("/")
                    .header("cookie", &format!("a=1; jwt-token={web}"))
                    .header("cookie", &format!("jwt-token={web}; b=2")),
                web.as_str(),
            ),
            (
                "apikey twice",
                get("/api/v1/orders")
                    .header("apikey", "partner-api-key")
                    .header("apikey", "partner-api-key"),
                "partner-api-key",
            ),
        ] {
            let out = run(&mut f, req);
            // The filter refuses a repeated header that carries a credential it must hide
            // (Kong would forward every copy but the first); nothing reaches the upstream.
            if !out.is_allowed() {
                assert_eq!(out.status(), Some(400), "{what}: {out:?}");
                assert!(out.json()["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Duplicate header '"));
                continue;
            }
            for (k, v) in out.request_headers.iter() {
                if v.contains(secret) {
                    leaks.push(format!("{profile:?} {what}: upstream got {k}: {v}"));
                }
            }
        }
        assert!(leaks.is_empty(), "{leaks:#?}");
    }
}

// ---------------------------------------------------------------------------------------
// Issue 12: numeric jti / sub, forbidden header targets
// ---------------------------------------------------------------------------------------

/// `"jti": 123` is revoked by `"123"`, and `revocations.subjects_issued_before` catches a
/// numeric `sub` (CONTRACT.md section 1): before the fix a number was never compared, so an
/// issuer minting numeric ids could not revoke anything. Also on the token cache's hit.
#[test]
fn numeric_jti_and_sub_do_not_escape_revocation() {
    let cfg = with(
        base_config(),
        json!({"revocations": {"jti": ["123", "9007199254740993"],
                               "subjects_issued_before": {"42": NOW - 5}}}),
    );
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &cfg);
        let token = |extra: Value| {
            let mut c = claims("web-key");
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            bearer(&hs256(c))
        };
        for extra in [
            json!({"jti": 123}),
            json!({"jti": "123"}),
            json!({"jti": 9_007_199_254_740_993_u64}),
            json!({"sub": 42}),
            json!({"sub": "42"}),
        ] {
            let t = token(extra.clone());
            for _ in 0..2 {
                let out = run(&mut f, get("/").header("authorization", &t));
                assert_message(&out, 401, "Token revoked");
            }
        }
        for extra in [
            json!({"jti": 124}),
            json!({"jti": 12.3}),
            json!({"sub": 42, "iat": NOW - 1}),
            json!({"sub": 420}),
        ] {
            let out = run(&mut f, get("/").header("authorization", &token(extra)));
            assert!(out.is_allowed(), "{profile:?}: {out:?}");
        }
    }
}

/// A header the filter sets may not be one the proxy or the upstream reads as something else:
/// the `.wasm` refuses such a configuration, naming the field (CONTRACT.md section 1).
#[test]
fn forbidden_header_targets_are_refused() {
    let cases = [
        (
            json!({"claims_to_headers": [{"claim": "sub", "header": "x-ok"}, {"claim": "sub", "header": "Transfer-Encoding"}]}),
            "claims_to_headers[1].header",
        ),
        (
            json!({"claims_to_headers": [{"claim": "sub", "header": "X_Consumer_ID"}]}),
            "claims_to_headers[0].header",
        ),
        (
            json!({"forward_payload_header": "host"}),
            "forward_payload_header",
        ),
        (
            json!({"forward_payload_header": "x-http-method-override"}),
            "forward_payload_header",
        ),
        (
            json!({"key_names": ["x-api-key"], "forward_payload_header": "x_api_key"}),
            "forward_payload_header",
        ),
        (
            json!({"authz": {"upstream": "authz", "path": "/a", "allowed_headers": ["content-length"]}}),
            "authz.allowed_headers[0]",
        ),
        (
            json!({"authz": {"upstream": "authz", "path": "/a", "allowed_headers": ["x-a", "Cookie"]}}),
            "authz.allowed_headers[1]",
        ),
        (
            json!({"authz": {"upstream": "authz", "path": "/a", "allowed_headers": ["authorization"]}}),
            "authz.allowed_headers[0]",
        ),
    ];
    for profile in PROFILES {
        let h = host(profile);
        for (extra, path) in &cases {
            let cfg = with(base_config(), extra.clone());
            match module().filter(&h, &cfg.to_string()) {
                Ok(_) => panic!("{profile:?}: accepted {extra}"),
                Err(e) => {
                    assert!(e.logged(&format!("{path}: ")), "{profile:?} {extra}: {e}");
                }
            }
        }
    }
}

/// Issue 12: 4,000 distinct `jwt-token` cookies (55 KB) answer `Multiple tokens provided` at the
/// cost of a few (extraction stops at the second distinct credential, and is linear); the same
/// token 4,000 times counts once. (`make bench` measures the cost: "55 KB of cookies".)
#[test]
fn thousands_of_cookies_answer_as_two_and_cheaply() {
    for profile in PROFILES {
        let h = host(profile);
        let cfg = with(base_config(), json!({"cookie_names": ["jwt-token"]}));
        let mut f = filter(&h, &cfg);
        let cookie: Vec<String> = (0..4000).map(|i| format!("jwt-token=t{i:05}")).collect();
        let cookie = cookie.join("; ");
        assert!(cookie.len() >= 55_000, "{}", cookie.len());
        for _ in 0..20 {
            let out = run(&mut f, get("/").header("cookie", &cookie));
            assert_message(&out, 401, "Multiple tokens provided");
        }
        let t = hs256(claims("web-key"));
        let same = vec![format!("jwt-token={t}"); 4000].join("; ");
        let out = run(&mut f, get("/").header("cookie", &same));
        assert_eq!(upstream(&out, "x-consumer-username"), Some("web"));
        // The cost is measured by `make bench` ("55 KB of cookies" against one cookie), not
        // timed here: these machines are shared and noisy.
    }
}

/// Issue 12: an underscore copy of a header the authorization service may set
/// (`X_Allowed_Fields` for `x-allowed-fields`) never reaches the upstream beside the service's
/// value, and with the real one it is a duplicate.
#[test]
fn underscore_copies_of_authz_headers_never_reach_the_upstream() {
    for profile in PROFILES {
        let h = host(profile);
        h.set_callout_handler(|_| {
            CalloutReply::json(
                200,
                r#"{"result": {"allow": true, "headers": {"x-allowed-fields": "name"}}}"#,
            )
        });
        let cfg = with(
            base_config(),
            json!({"authz": {"upstream": authz_upstream(profile), "path": "/authz",
                             "allowed_headers": ["x-allowed-fields"]}}),
        );
        let mut f = filter(&h, &cfg);
        let t = bearer(&hs256(claims("web-key")));
        for spelling in ["X_Allowed_Fields", "x-allowed_fields", "x_allowed-fields"] {
            let out = run(
                &mut f,
                get("/api")
                    .header("authorization", &t)
                    .header(spelling, "name,email,ssn"),
            );
            assert_eq!(
                upstream(&out, "x-allowed-fields"),
                Some("name"),
                "{profile:?}"
            );
            assert!(
                out.request_headers
                    .get_all(spelling)
                    .iter()
                    .all(|v| v.is_empty()),
                "{profile:?} {spelling}: {out:?}"
            );
            let out = run(
                &mut f,
                get("/api")
                    .header("authorization", &t)
                    .header("x-allowed-fields", "")
                    .header(spelling, "name,email,ssn"),
            );
            assert_message(&out, 400, "Duplicate header 'x-allowed-fields'");
        }
    }
}

/// Issue 12: a token without `kid` is tried against at most 4 keys of the provider that fit
/// its `alg` (a made-up signature cost up to 64 signature checks): with 64 kid-less keys, one
/// signed by the 4th verifies, one signed by the 5th is `Invalid signature`, and none fitting
/// is `No credentials found for given 'kid'`.
#[test]
fn a_kidless_token_costs_at_most_four_signature_checks() {
    let secret = |i: usize| format!("kidless-secret-{i:02}-0123456789abcdef");
    let keys: Vec<Value> = (0..64)
        .map(|i| json!({"kty": "oct", "alg": "HS256", "k": b64(secret(i))}))
        .collect();
    let payload = format!(r#"{{"iss":"bouncer-vectors","exp":{}}}"#, NOW + 600);
    for profile in PROFILES {
        let h = host(profile);
        let mut f = filter(&h, &local_provider_config(keys.clone()));
        let signed = |i: usize| {
            hs_raw(
                "HS256",
                r#"{"alg":"HS256"}"#,
                &payload,
                secret(i).as_bytes(),
            )
        };
        assert_eq!(
            upstream(&run(&mut f, auth(&signed(3))), "x-consumer-username"),
            Some("staff")
        );
        for i in [4, 63] {
            token_401(&run(&mut f, auth(&signed(i))), "Invalid signature");
        }
        let other = hs_raw(
            "HS384",
            r#"{"alg":"HS384"}"#,
            &payload,
            secret(0).as_bytes(),
        );
        token_401(
            &run(&mut f, auth(&other)),
            "No credentials found for given 'kid'",
        );
    }
}
