//! A token (any bytes) through the JWS parser, then through the whole pipeline from the
//! `authorization` header, the `jwt` query parameter and the `jwt-token` cookie. The bytes
//! also go to the parser's base64url decoder, which must decode exactly as the `base64`
//! crate's `URL_SAFE_NO_PAD` does.
#![no_main]

use bouncer_fuzz::{policies, request, run};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        bouncer::jwt::decode_base64url(data),
        URL_SAFE_NO_PAD.decode(data).ok()
    );
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
