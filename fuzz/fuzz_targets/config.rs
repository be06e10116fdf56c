//! A configuration string: compiles or fails with a message; when it compiles, a few requests
//! through it still answer per the contract.
#![no_main]

use bouncer::config::Policy;
use bouncer_fuzz::{request, run};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJrMSIsImV4cCI6MTgwMDAwMDEwMH0.\
                     bm90LWEtcmVhbC1zaWduYXR1cmUtYnV0LTMyLWJ5dGVzISE";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Policy::from_json(&text) {
        Ok(p) => {
            run(&p, &request("/", vec![]), 0);
            let h = vec![("authorization".into(), format!("Bearer {TOKEN}"))];
            run(&p, &request("/api/v1/orders?apikey=k", h), 1);
            let h = vec![
                ("origin".into(), "https://a".into()),
                ("access-control-request-method".into(), "GET".into()),
                ("cookie".into(), format!("jwt-token={TOKEN}")),
            ];
            let mut req = request("/x?jwt=a.b.c", h);
            req[0].1 = "OPTIONS".into();
            run(&p, &req, 2);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(!e.message.is_empty());
        }
    }
});
