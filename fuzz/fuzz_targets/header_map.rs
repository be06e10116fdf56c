//! Any bytes as a serialized proxy-wasm header map (the bytes a host hands the glue):
//! `bouncer::wire::decode_map` never panics, a map it accepts has valid UTF-8 lowercase names,
//! and a decoded map goes through the whole pipeline.
#![no_main]

use bouncer_fuzz::{policies, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    let Some(map) = bouncer::wire::decode_map(&mut bytes) else {
        return;
    };
    for (name, _) in map.iter() {
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
    }
    let owned: Vec<(String, String)> = map
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(p) = policies().first() {
        run(p, &owned, 0);
    }
});
