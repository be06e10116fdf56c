//! A whole request (method, path, any headers, in any order) through the pipeline. Paths are
//! raw or built from segments that probe the contract's "ambiguous path" (dot segments with
//! `;` parameters, percent-encodings, backslashes); header names are raw or picked from the
//! reserved ones, credential headers and their `_`/case spellings.
#![no_main]

use arbitrary::Arbitrary;
use bouncer_fuzz::{policies, run};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    policy: u8,
    keys: u8,
    method: String,
    path: PathIn,
    /// Header names are picked from the interesting ones (index) or given.
    headers: Vec<(Name, String)>,
}

#[derive(Arbitrary, Debug)]
enum PathIn {
    Raw(String),
    /// Segments from [`SEGMENTS`], joined by `/` or `\` (the bool), then a query.
    Built(Vec<(u8, bool)>, Option<Vec<u8>>),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

const KNOWN: [&str; 28] = [
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
    "x_consumer_id",
    "X_Consumer-Username",
    "x-credential_identifier",
    "X-ANONYMOUS_CONSUMER",
    "x_user_id",
    "x-http-method-override",
    "X_HTTP_Method",
    "x-method_override",
    "X-HTTP-Method",
    "x_allowed",
    "Authorization",
    "APIKEY",
];

const SEGMENTS: [&str; 24] = [
    "api", "v1", "orders", "42", "", ".", "..", "..;", ".;x", "..;jsessionid=1", "%2e", "%2E%2e",
    "%2f", "%5C", "%3b", "%00", "%252e", ".%2e", "a.b", "c..d", ".well-known", ";x", "%41", "roles",
];

const QUERY: [&str; 10] = [
    "jwt=abc", "apikey=k", "%61pikey=k", "a=1", "jwt", "x=%2e%2e", "b=2&c=3", "api%6Bey=z",
    "JWT=upper", "",
];

fn build_path(p: PathIn) -> String {
    match p {
        PathIn::Raw(s) => s,
        PathIn::Built(segs, query) => {
            let mut out = String::new();
            for (i, back) in segs.into_iter().take(12) {
                out.push(if back { '\\' } else { '/' });
                out.push_str(SEGMENTS[usize::from(i) % SEGMENTS.len()]);
            }
            if out.is_empty() {
                out.push('/');
            }
            if let Some(q) = query {
                out.push('?');
                let parts: Vec<&str> = q
                    .into_iter()
                    .take(6)
                    .map(|i| QUERY[usize::from(i) % QUERY.len()])
                    .collect();
                out.push_str(&parts.join("&"));
            }
            out
        }
    }
}

fuzz_target!(|input: Input| {
    let policies = policies();
    let p = &policies[usize::from(input.policy) % policies.len()];
    let mut headers = vec![
        (":method".to_owned(), input.method),
        (":path".to_owned(), build_path(input.path)),
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
