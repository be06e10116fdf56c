//! JWK sets: parsed once (from the configuration, or from a fetched JWKS document) into keys
//! that can be chosen by `kid` and `alg`.

use bouncer_crypto::{Alg, Key};
use serde_json::Value;

/// How to treat a key that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetMode {
    /// Configuration: a malformed key is an error naming it.
    Strict,
    /// A fetched document: malformed or unusable keys are skipped.
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
            match Self::entry(jwk) {
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
    fn entry(jwk: &Value) -> Result<Option<JwkEntry>, String> {
        if !jwk.is_object() {
            return Err("not a JSON object".to_owned());
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

    /// The keys that may verify a token of `alg` that names no `kid`.
    pub fn candidates(&self, alg: Alg) -> impl Iterator<Item = &JwkEntry> {
        self.keys.iter().filter(move |k| k.fits(alg))
    }
}
