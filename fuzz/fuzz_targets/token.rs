//! A token (any bytes) through the JWS parser, then through the whole pipeline from the
//! `authorization` header, the `jwt` query parameter and the `jwt-token` cookie.
#![no_main]

use bouncer_fuzz::{policies, request, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    if let Ok(t) = bouncer::jwt::parse(&token, 8192) {
        assert!(token.starts_with(t.signing_input));
    }
    for (i, p) in policies().iter().enumerate() {
        let h = request(
            "/",
            vec![("authorization".into(), format!("Bearer {token}"))],
        );
        run(p, &h, i as u8);
        if i == 0 {
            run(p, &request(&format!("/?jwt={token}"), vec![]), 0);
            let c = vec![("cookie".into(), format!("a=1; jwt-token={token}"))];
            run(p, &request("/", c), 0);
        }
    }
});
