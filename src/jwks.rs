//! JWK sets: parsed once (from the configuration, or from a fetched JWKS document) into keys
//! that can be chosen by `kid` and `alg`.

use bouncer_crypto::{Alg, Key};
use serde_json::Value;

/// How to treat a key that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetMode {
    /// Configuration: a malformed key is an error naming it.
    Strict,
    /// A fetched document: malformed or unusable keys are skipped, and so are symmetric
    /// (`kty` `oct`) keys: a JWKS endpoint is public, so a secret there is no secret.
    Lenient,
}

/// One usable key of a set.
#[derive(Debug)]
pub struct JwkEntry {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one we know.
    pub alg: Option<Alg>,
    pub key: Key,
    /// SHA-256 of the JWK's JSON (members sorted): names this exact key.
    pub fingerprint: [u8; 32],
}

impl JwkEntry {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        match self.alg {
            Some(a) => a == alg,
            None => self.key.fits(alg),
        }
    }
}

/// A parsed JWK set.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<JwkEntry>,
}

/// The largest number of keys taken from one set.
pub const MAX_KEYS: usize = 64;

/// The most keys a token without `kid` is tried against (the first that fit its `alg`, in the
/// set's order): anyone can send such a token with a made-up signature, and each try is a
/// signature check (up to 6 ms for ES384 in wasm). A set that rotates keys holds two or three
/// of one kind; a token whose key comes later must name it by `kid`.
pub const MAX_KIDLESS_CANDIDATES: usize = 4;

impl KeySet {
    /// Parse `{"keys": [...]}`. Errors give a path suffix (`.keys[1].x`) and a message.
    pub fn parse(doc: &Value, mode: KeySetMode) -> Result<KeySet, (String, String)> {
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err((
                String::new(),
                "must be an object with a \"keys\" array".to_owned(),
            ));
        };
        let mut keys = Vec::new();
        for (i, jwk) in list.iter().enumerate() {
            match Self::entry(jwk, mode) {
                Ok(Some(e)) => {
                    if keys.len() >= MAX_KEYS {
                        if mode == KeySetMode::Strict {
                            return Err((String::new(), format!("more than {MAX_KEYS} keys")));
                        }
                        break;
                    }
                    keys.push(e);
                }
                Ok(None) => {}
                Err(msg) => {
                    if mode == KeySetMode::Strict {
                        return Err((format!(".keys[{i}]"), msg));
                    }
                }
            }
        }
        Ok(KeySet { keys })
    }

    /// Parse a fetched JWKS body leniently.
    pub fn parse_body(body: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
        Self::parse(&doc, KeySetMode::Lenient).map_err(|(_, m)| m)
    }

    /// `Ok(None)`: a key that is well formed but not for signatures (or of an algorithm we do
    /// not verify); it is skipped in both modes.
    fn entry(jwk: &Value, mode: KeySetMode) -> Result<Option<JwkEntry>, String> {
        if !jwk.is_object() {
            return Err("not a JSON object".to_owned());
        }
        let symmetric = |kty: Option<&str>| kty.is_some_and(|k| k.eq_ignore_ascii_case("oct"));
        if mode == KeySetMode::Lenient && symmetric(jwk.get("kty").and_then(Value::as_str)) {
            return Ok(None);
        }
        if let Some(u) = jwk.get("use") {
            if u.as_str() != Some("sig") {
                return Ok(None);
            }
        }
        let kid = match jwk.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("kid: must be a string".to_owned()),
        };
        let alg = match jwk.get("alg") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Alg::parse(s) {
                Some(a) => Some(a),
                None => return Ok(None),
            },
            Some(_) => return Err("alg: must be a string".to_owned()),
        };
        let key = Key::from_jwk(jwk).map_err(|e| e.to_string())?;
        if mode == KeySetMode::Lenient && symmetric(Some(key.kind())) {
            return Ok(None);
        }
        if let Some(a) = alg {
            if !key.fits(a) {
                return Err(format!("a {} key cannot verify {}", key.kind(), a.name()));
            }
        }
        let fingerprint = bouncer_crypto::sha256(jwk.to_string().as_bytes());
        Ok(Some(JwkEntry {
            kid,
            alg,
            key,
            fingerprint,
        }))
    }

    /// The key with this `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&JwkEntry> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys that may verify a token of `alg` that names no `kid`: the first
    /// [`MAX_KIDLESS_CANDIDATES`] of the set that fit.
    pub fn candidates(&self, alg: Alg) -> impl Iterator<Item = &JwkEntry> {
        self.keys
            .iter()
            .filter(move |k| k.fits(alg))
            .take(MAX_KIDLESS_CANDIDATES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/keys/rsa2048_public.jwk.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A fetched JWKS is public: its symmetric keys are ignored, whatever their spelling or
    /// `alg`. Keys in the configuration keep them.
    #[test]
    fn remote_sets_ignore_oct_keys() {
        let oct = |kid: &str, kty: &str| json!({"kty": kty, "kid": kid, "alg": "HS256", "k": "c2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY"});
        let doc = json!({"keys": [oct("sym", "oct"), rsa(), oct("sym2", "OCT"),
                                  {"kty": "oct", "kid": "sym3", "k": "c2VjcmV0"}]});
        let remote = KeySet::parse_body(doc.to_string().as_bytes()).unwrap();
        assert_eq!(remote.keys.len(), 1);
        assert_eq!(remote.keys[0].kid.as_deref(), Some("vec-rsa-1"));
        assert!(remote.by_kid("sym").is_none());
        assert_eq!(remote.candidates(Alg::HS256).count(), 0);
        // Only oct keys: nothing usable.
        let only = json!({"keys": [oct("sym", "oct")]});
        assert!(KeySet::parse_body(only.to_string().as_bytes())
            .unwrap()
            .keys
            .is_empty());
        // The configuration's own keys keep their behaviour.
        let local = KeySet::parse(
            &json!({"keys": [oct("sym", "oct"), rsa()]}),
            KeySetMode::Strict,
        )
        .unwrap();
        assert_eq!(local.keys.len(), 2);
        assert!(local.by_kid("sym").is_some());
    }
}
