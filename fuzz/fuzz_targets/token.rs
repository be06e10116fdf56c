//! A token (any bytes) through the JWS parser, then through the whole pipeline from the
//! `authorization` header, the `jwt` query parameter and the `jwt-token` cookie. The bytes
//! also go to the parser's base64url decoder, which must decode exactly as the `base64`
//! crate's `URL_SAFE_NO_PAD` does, and (as JSON: the bytes, and decoded from base64url, and
//! a token's payload segment decoded) to the parser's flat-object reader, which must read
//! exactly what the JSON parse reads wherever it reads anything.
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
    let payload = bouncer::jwt::segments(&token).and_then(|(_, p, _)| URL_SAFE_NO_PAD.decode(p).ok());
    for json in [Some(data.to_vec()), URL_SAFE_NO_PAD.decode(data).ok(), payload].into_iter().flatten() {
        if let Some(map) = bouncer::jwt::flat_object(&json) {
            assert_eq!(Ok(map), bouncer::jwt::strict_object(&json));
        }
    }
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
