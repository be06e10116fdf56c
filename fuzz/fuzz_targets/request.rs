//! A whole request (method, path, any headers, in any order) through the pipeline.
#![no_main]

use arbitrary::Arbitrary;
use bouncer_fuzz::{policies, run};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    policy: u8,
    keys: u8,
    method: String,
    path: String,
    /// Header names are picked from the interesting ones (index) or given.
    headers: Vec<(Name, String)>,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

const KNOWN: [&str; 16] = [
    "authorization",
    "cookie",
    "apikey",
    "origin",
    "access-control-request-method",
    "x-consumer-id",
    "x-consumer-username",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "x-consumer-groups",
    "x-anonymous-consumer",
    "x-user-id",
    "x-jwt-payload",
    "x-allowed",
    ":method",
    ":path",
];

fuzz_target!(|input: Input| {
    let policies = policies();
    let p = &policies[usize::from(input.policy) % policies.len()];
    let mut headers = vec![
        (":method".to_owned(), input.method),
        (":path".to_owned(), input.path),
    ];
    for (n, v) in input.headers {
        let name = match n {
            Name::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].to_owned(),
            Name::Other(s) => s,
        };
        headers.push((name, v));
    }
    run(p, &headers, input.keys);
});
