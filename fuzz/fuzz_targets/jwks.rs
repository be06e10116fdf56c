//! A fetched JWKS document (any bytes): parsed leniently; every key it yields verifies (or
//! not) any signature without panicking.
#![no_main]

use bouncer::jwks::{KeySet, MAX_KEYS};
use bouncer_crypto::Alg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The last 64 bytes (when there are more) double as a signature to verify.
    let sig = data
        .get(data.len().saturating_sub(64)..)
        .unwrap_or_default();
    let Ok(set) = KeySet::parse_body(data) else {
        return;
    };
    assert!(set.keys.len() <= MAX_KEYS);
    for e in &set.keys {
        for alg in Alg::ALL {
            if e.fits(alg) {
                let _ = e.key.verify(alg, b"e30.e30", sig);
            }
        }
        if let Some(kid) = &e.kid {
            assert!(set.by_kid(kid).is_some());
        }
    }
    for alg in Alg::ALL {
        let _ = set.candidates(alg).count();
    }
});
