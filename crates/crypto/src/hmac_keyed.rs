//! HMAC verification with the key's two padded blocks hashed once, not per token.
//!
//! Keying an HMAC hashes one block of `key ^ ipad` and one of `key ^ opad` before the message:
//! for a usual HS256 token that is 2 of its 5 SHA-256 compressions. A secret is kept as its
//! bytes (keyed states for every consumer's secret would cost ~150 bytes each up front, see
//! [`crate::HmacKeys`]), so the keyed states of the secrets in use are kept here instead: a
//! small direct-mapped table per thread and hash, of fixed size whatever the number of
//! consumers. A slot holds a strong reference to the key it was keyed from, so a hit is that
//! very key (its allocation cannot be freed and reused while the slot holds it), and a slot
//! is found by the key's address. A key replaced by a new configuration stays alive until
//! its slot is taken by another key (at most [`SLOTS`] per hash).

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::Inner;

/// Slots per hash. 32 keyed SHA-256 states are ~5 KB, SHA-384/512 ~10 KB each.
pub(crate) const SLOTS: usize = 32;

struct Slot<M> {
    key: Arc<Inner>,
    mac: M,
}

type Table<M> = RefCell<Vec<Option<Slot<M>>>>;

fn table<M>() -> Table<M> {
    RefCell::new((0..SLOTS).map(|_| None).collect())
}

thread_local! {
    static HS256: Table<Hmac<Sha256>> = table();
    static HS384: Table<Hmac<Sha384>> = table();
    static HS512: Table<Hmac<Sha512>> = table();
}

/// The key's slot: allocations are at least 8-byte aligned, and keys parsed one after the
/// other sit at consecutive addresses, so they take consecutive slots.
fn slot_of(key: &Arc<Inner>) -> usize {
    (Arc::as_ptr(key) as usize >> 3) % SLOTS
}

/// Whether `tag` is the HMAC of `message` under `secret` (the secret of `key`), the tag
/// compared in constant time; a wrong length is false.
fn verify<M: Mac + KeyInit + Clone>(
    table: &'static LocalKey<Table<M>>,
    key: &Arc<Inner>,
    secret: &[u8],
    message: &[u8],
    tag: &[u8],
) -> bool {
    let i = slot_of(key);
    // `try_with` and `try_borrow`: never a panic (a thread's table being destroyed, or a
    // verification inside another); the HMAC is then keyed for this token alone.
    let keyed = table
        .try_with(|t| {
            let t = t.try_borrow().ok()?;
            match t.get(i) {
                Some(Some(s)) if Arc::ptr_eq(&s.key, key) => Some(s.mac.clone()),
                _ => None,
            }
        })
        .ok()
        .flatten();
    let mut mac = match keyed {
        Some(mac) => mac,
        None => {
            // HMAC takes a key of any length (a long one is hashed first).
            let Ok(mac) = <M as KeyInit>::new_from_slice(secret) else {
                return false;
            };
            let _ = table.try_with(|t| {
                if let Ok(mut t) = t.try_borrow_mut() {
                    if let Some(s) = t.get_mut(i) {
                        *s = Some(Slot {
                            key: Arc::clone(key),
                            mac: mac.clone(),
                        });
                    }
                }
            });
            mac
        }
    };
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

pub(crate) fn hs256(key: &Arc<Inner>, secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
    verify(&HS256, key, secret, message, tag)
}

pub(crate) fn hs384(key: &Arc<Inner>, secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
    verify(&HS384, key, secret, message, tag)
}

pub(crate) fn hs512(key: &Arc<Inner>, secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
    verify(&HS512, key, secret, message, tag)
}

#[cfg(test)]
mod tests {
    use crate::{Alg, Key};
    use jwt_compact::alg::{Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
    use jwt_compact::{Algorithm, AlgorithmSignature};

    /// The tag jwt-compact (the HMAC Bouncer used before) computes.
    fn reference(alg: Alg, secret: &[u8], message: &[u8]) -> Vec<u8> {
        match alg {
            Alg::HS256 => Hs256
                .sign(&Hs256Key::new(secret), message)
                .as_bytes()
                .to_vec(),
            Alg::HS384 => Hs384
                .sign(&Hs384Key::new(secret), message)
                .as_bytes()
                .to_vec(),
            Alg::HS512 => Hs512
                .sign(&Hs512Key::new(secret), message)
                .as_bytes()
                .to_vec(),
            _ => unreachable!(),
        }
    }

    fn secret(i: usize) -> Vec<u8> {
        // Lengths around the block sizes (64, 128) and longer, where the key is hashed first.
        let len = [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300][i % 12];
        (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
    }

    #[test]
    fn matches_the_reference_with_more_keys_than_slots() {
        let keys: Vec<(Vec<u8>, Key)> = (0..3 * super::SLOTS)
            .map(|i| (secret(i), Key::hmac(&secret(i))))
            .collect();
        // Interleaved, twice: slots are taken, evicted and hit.
        for round in 0..2 {
            for (i, (s, key)) in keys.iter().enumerate() {
                for alg in [Alg::HS256, Alg::HS384, Alg::HS512] {
                    let message = format!("header.payload-{i}-{round}");
                    let tag = reference(alg, s, message.as_bytes());
                    assert!(key.verify(alg, message.as_bytes(), &tag), "{alg:?} key {i}");
                    let mut bad = tag.clone();
                    bad[i % tag.len()] ^= 1;
                    assert!(!key.verify(alg, message.as_bytes(), &bad));
                    assert!(!key.verify(alg, message.as_bytes(), &tag[..tag.len() - 1]));
                    assert!(!key.verify(alg, b"other.message", &tag));
                    // The keyed state is not changed by a verification.
                    assert!(key.verify(alg, message.as_bytes(), &tag));
                }
            }
        }
    }

    #[test]
    fn a_new_key_is_never_taken_for_a_dropped_one() {
        let message = b"header.payload";
        for i in 0..4 * super::SLOTS {
            let old = Key::hmac(format!("old secret {i}").as_bytes());
            let old_tag = reference(Alg::HS256, format!("old secret {i}").as_bytes(), message);
            assert!(old.verify(Alg::HS256, message, &old_tag));
            drop(old);
            // Likely at the old key's address; the slot still holds the old key.
            let new = Key::hmac(format!("new secret {i}").as_bytes());
            assert!(!new.verify(Alg::HS256, message, &old_tag));
            let new_tag = reference(Alg::HS256, format!("new secret {i}").as_bytes(), message);
            assert!(new.verify(Alg::HS256, message, &new_tag));
        }
    }

    #[test]
    fn clones_share_the_keyed_state() {
        let key = Key::hmac(b"shared");
        let copy = key.clone();
        let tag = reference(Alg::HS512, b"shared", b"a.b");
        assert!(key.verify(Alg::HS512, b"a.b", &tag));
        assert!(copy.verify(Alg::HS512, b"a.b", &tag));
    }
}
