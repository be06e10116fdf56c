//! JWS compact parsing and claim checks. Signature verification is `bouncer_crypto`'s.
//!
//! Parsing is strict: exactly three segments, each unpadded canonical base64url, header and
//! payload JSON objects without duplicate top-level members (so `alg` cannot be given twice
//! and read differently by two parsers).

use bouncer_crypto::Alg;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Why a token could not be parsed; each maps to one 401 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than `max_token_bytes`.
    TooLarge,
    /// Not three segments, bad base64url, bad JSON, or not JSON objects.
    InvalidJson,
    /// `alg` missing, not a string, unknown or `none`.
    InvalidAlg,
}

/// A token split, decoded and parsed; nothing about it is trusted yet.
#[derive(Debug)]
pub struct Token<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The payload segment exactly as received (base64url).
    pub payload_segment: &'a str,
    pub header: Header,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
    pub alg: Alg,
}

/// A token's JOSE header.
#[derive(Debug)]
pub enum Header {
    /// Exactly `{"alg":"<alg>","typ":"JWT"}`, `{"typ":"JWT","alg":"<alg>"}` or
    /// `{"alg":"<alg>"}` (what most signers write), recognised without a JSON parse; the
    /// algorithm is the token's `alg`.
    Usual { typ: bool },
    /// Any other header.
    Parsed(Map<String, Value>),
}

impl Token<'_> {
    /// A member of the header.
    pub fn header_value(&self, name: &str) -> Option<Cow<'_, Value>> {
        match &self.header {
            Header::Parsed(map) => map.get(name).map(Cow::Borrowed),
            Header::Usual { typ } => match name {
                "alg" => Some(Cow::Owned(Value::String(self.alg.name().to_owned()))),
                "typ" if *typ => Some(Cow::Owned(Value::String("JWT".to_owned()))),
                _ => None,
            },
        }
    }
}

/// The algorithm of a [`Header::Usual`] header, and whether it has `"typ":"JWT"`. Nothing else
/// is recognised: anything more (another member, a space, an escape) goes through the JSON
/// parse, which reads these three forms the same way.
fn usual_header(bytes: &[u8]) -> Option<(Alg, bool)> {
    const TYP: &[u8] = br#""typ":"JWT""#;
    let inner = bytes.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let (member, typ) = if let Some(r) = inner.strip_prefix(TYP).and_then(|r| r.strip_prefix(b","))
    {
        (r, true)
    } else if let Some(r) = inner.strip_suffix(TYP).and_then(|r| r.strip_suffix(b",")) {
        (r, true)
    } else {
        (inner, false)
    };
    let name = member.strip_prefix(br#""alg":""#)?.strip_suffix(b"\"")?;
    Some((Alg::parse(std::str::from_utf8(name).ok()?)?, typ))
}

/// Inserts a member unless the object has one of that name: one search of the map (not one
/// to check, one to insert). False for a duplicate. Inlined: a call per member was ~200 wasm
/// instructions of a new token.
#[inline(always)]
fn insert_new(map: &mut Map<String, Value>, name: String, value: Value) -> bool {
    match map.entry(name) {
        serde_json::map::Entry::Occupied(_) => false,
        serde_json::map::Entry::Vacant(slot) => {
            slot.insert(value);
            true
        }
    }
}

/// A JSON object that rejects duplicate top-level members.
struct StrictObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    if !insert_new(&mut map, k, v) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                }
                Ok(StrictObject(map))
            }
        }
        d.deserialize_map(V)
    }
}

/// The value of each base64url character (RFC 4648 section 5), [`INVALID`] for any other byte.
// Indexing in a constant: an out-of-bounds index would fail the build, not a request.
#[allow(clippy::indexing_slicing)]
const BASE64URL: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};
const INVALID: u8 = 0xff;

fn sextet(c: u8) -> u32 {
    u32::from(BASE64URL.get(usize::from(c)).copied().unwrap_or(INVALID))
}

/// Decodes unpadded, canonical base64url: what `base64`'s `URL_SAFE_NO_PAD` accepts (no `=`,
/// no length of 4n+1, the unused low bits of the last character zero), exactly (a unit test
/// compares the two on every short string, the fuzz target `token` on any bytes). Written out
/// because Kong's engine runs the crate's general decoder slowly (0.5 to 0.6 µs of a new
/// token's three segments, against ~0.25-0.31 µs for this one).
pub fn decode_base64url(seg: &[u8]) -> Option<Vec<u8>> {
    let chunks = seg.chunks_exact(4);
    let tail = chunks.remainder();
    let tail_bytes = match tail.len() {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    let mut out = Vec::with_capacity((seg.len() / 4).checked_mul(3)?.checked_add(tail_bytes)?);
    for c in chunks {
        let [a, b, c, d] = [c.first(), c.get(1), c.get(2), c.get(3)]
            .map(|x| x.map_or(u32::from(INVALID), |&x| sextet(x)));
        let n = a << 18 | b << 12 | c << 6 | d;
        // An invalid character's value has bits above the sextet's six.
        if (a | b | c | d) > 63 {
            return None;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *tail {
        [] => {}
        [a, b] => {
            let (a, b) = (sextet(a), sextet(b));
            if (a | b) > 63 || b & 0x0f != 0 {
                return None;
            }
            out.push((a << 2 | b >> 4) as u8);
        }
        [a, b, c] => {
            let (a, b, c) = (sextet(a), sextet(b), sextet(c));
            if (a | b | c) > 63 || c & 0x03 != 0 {
                return None;
            }
            let n = a << 12 | b << 6 | c;
            out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
        }
        _ => return None,
    }
    Some(out)
}

fn decode_segment(seg: &str) -> Result<Vec<u8>, ParseError> {
    decode_base64url(seg.as_bytes()).ok_or(ParseError::InvalidJson)
}

/// A header's or the claims' JSON object: [`flat_object`] when it can read it, else the JSON
/// parse ([`strict_object`]), which reads what `flat_object` reads the same way.
fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match flat_object(bytes) {
        Some(map) => Ok(map),
        None => strict_object(bytes),
    }
}

/// The JSON parse of an object without duplicate top-level members.
pub fn strict_object(bytes: &[u8]) -> Result<Map<String, Value>, ParseError> {
    serde_json::from_slice::<StrictObject>(bytes)
        .map(|o| o.0)
        .map_err(|_| ParseError::InvalidJson)
}

/// The usual claims object read without the JSON parser: members whose values are strings
/// without escapes, integers of up to 19 digits, `true`, `false`, `null`, or arrays of
/// those; JSON whitespace anywhere between them. `None` for anything else (an escape, a
/// control character, a fraction or exponent, a negative or longer number, a nested array or
/// object, a duplicate member, a syntax error), which then goes through [`strict_object`]: it
/// gives the same map for everything this accepts (a unit test and the fuzz target `token`
/// compare the two). serde_json's generic parse was ~1.7 µs of a new token's module code in
/// the cold harness (docs/PERFORMANCE.md).
pub fn flat_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut c = Cursor { bytes, at: 0 };
    let mut map = Map::new();
    c.require(b'{')?;
    if !c.eat(b'}') {
        loop {
            c.require(b'"')?;
            let name = c.string()?;
            c.require(b':')?;
            let value = c.scalar_or_array()?;
            if !insert_new(&mut map, name, value) {
                return None;
            }
            if c.eat(b'}') {
                break;
            }
            c.require(b',')?;
        }
    }
    c.skip_whitespace();
    (c.at == bytes.len()).then_some(map)
}

/// [`flat_object`]'s position in its input.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Moves past `n` bytes (never beyond `usize::MAX`: `at` stays an index or past the end).
    fn bump(&mut self, n: usize) {
        self.at = self.at.saturating_add(n);
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.bump(1);
        }
    }

    /// After any whitespace, the next byte, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = self.bytes.get(self.at).copied()?;
        self.bump(1);
        Some(b)
    }

    /// Consumes `want` (after any whitespace), which must be next.
    fn require(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Consumes `want` (after any whitespace) if it is next.
    fn eat(&mut self, want: u8) -> bool {
        self.skip_whitespace();
        let next = self.bytes.get(self.at) == Some(&want);
        if next {
            self.bump(1);
        }
        next
    }

    /// The rest of a string whose opening quote was consumed: no escape, no control
    /// character, valid UTF-8.
    fn string(&mut self) -> Option<String> {
        let rest = self.bytes.get(self.at..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let (text, after) = rest.split_at(len);
        if after.first() != Some(&b'"') {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        self.bump(len.saturating_add(1));
        Some(text.to_owned())
    }

    /// A value: a scalar, or an array of scalars.
    fn scalar_or_array(&mut self) -> Option<Value> {
        self.skip_whitespace();
        if self.bytes.get(self.at) != Some(&b'[') {
            return self.scalar();
        }
        self.bump(1);
        let mut items = Vec::new();
        if !self.eat(b']') {
            loop {
                items.push(self.scalar()?);
                if self.eat(b']') {
                    break;
                }
                self.require(b',')?;
            }
        }
        Some(Value::Array(items))
    }

    /// A string without escapes, an integer of up to 19 digits, `true`, `false` or `null`.
    fn scalar(&mut self) -> Option<Value> {
        match self.next()? {
            b'"' => self.string().map(Value::String),
            b't' => self.literal(b"rue", Value::Bool(true)),
            b'f' => self.literal(b"alse", Value::Bool(false)),
            b'n' => self.literal(b"ull", Value::Null),
            first @ b'0'..=b'9' => {
                let mut n = u64::from(first.wrapping_sub(b'0'));
                let start = self.at;
                while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.at) {
                    // A leading zero is not JSON.
                    if n == 0 {
                        return None;
                    }
                    // No overflow in 19 digits (checked below): a checked multiplication is
                    // a 128-bit libcall in wasm32.
                    n = n
                        .wrapping_mul(10)
                        .wrapping_add(u64::from(d.wrapping_sub(b'0')));
                    self.bump(1);
                }
                // Twenty digits or more may not fit: the JSON parse's.
                if self.at.saturating_sub(start) >= 19 {
                    return None;
                }
                // A fraction or an exponent: the JSON parse's (as a float).
                if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.at) {
                    return None;
                }
                Some(Value::Number(n.into()))
            }
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8], value: Value) -> Option<Value> {
        let end = self.at.checked_add(rest.len())?;
        (self.bytes.get(self.at..end)? == rest).then(|| {
            self.at = end;
            value
        })
    }
}

/// The three `.`-separated segments of a compact JWS (`None` unless there are exactly two
/// dots), each dot found eight bytes at a time by [`crate::wire::find_byte`] (`str::split`
/// searched four times, each search with its own setup: 0.27 µs of a new token's work in
/// Kong's engine).
pub fn segments(token: &str) -> Option<(&str, &str, &str)> {
    use crate::wire::{find_byte, split_once_byte};
    let (header, rest) = split_once_byte(token, b'.')?;
    let (payload, signature) = split_once_byte(rest, b'.')?;
    if find_byte(signature.as_bytes(), b'.').is_some() {
        return None;
    }
    Some((header, payload, signature))
}

/// Split, decode and parse a compact JWS. The order of checks is the contract's: size, then
/// structure and JSON, then `alg`.
pub fn parse(token: &str, max_bytes: usize) -> Result<Token<'_>, ParseError> {
    if token.len() > max_bytes {
        return Err(ParseError::TooLarge);
    }
    let (h, p, s) = segments(token).ok_or(ParseError::InvalidJson)?;
    let header_bytes = decode_segment(h)?;
    let (header, alg) = match usual_header(&header_bytes) {
        Some((alg, typ)) => (Header::Usual { typ }, Some(alg)),
        None => {
            let header = json_object(&header_bytes)?;
            // RFC 7515 4.1.11: a recipient must reject `crit` extensions it does not
            // understand, and Bouncer understands none.
            if header.contains_key("crit") {
                return Err(ParseError::InvalidJson);
            }
            (Header::Parsed(header), None)
        }
    };
    let claims = json_object(&decode_segment(p)?)?;
    let signature = decode_segment(s)?;
    let alg = match (alg, &header) {
        (Some(alg), _) => alg,
        (None, Header::Parsed(map)) => match map.get("alg") {
            Some(Value::String(name)) => Alg::parse(name).ok_or(ParseError::InvalidAlg)?,
            _ => return Err(ParseError::InvalidAlg),
        },
        (None, Header::Usual { .. }) => return Err(ParseError::InvalidAlg),
    };
    // h.len() + 1 + p.len() <= token.len(): both are prefixes of `token`.
    let signing_input = token
        .get(..h.len().saturating_add(1).saturating_add(p.len()))
        .ok_or(ParseError::InvalidJson)?;
    Ok(Token {
        signing_input,
        payload_segment: p,
        header,
        claims,
        signature,
        alg,
    })
}

/// The claim checks to apply.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules<'a> {
    pub verify_exp: bool,
    pub verify_nbf: bool,
    pub maximum_expiration: f64,
    pub clock_skew: f64,
    pub audiences: &'a [String],
}

/// Check `exp`, `nbf`, `maximum_expiration` and `aud`. On failure, the map of every failure
/// (claim name -> message), which is the 401 body.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: f64,
) -> Result<(), Map<String, Value>> {
    let mut errors = Map::new();
    let mut fail = |k: &str, msg: &str| {
        errors.insert(k.to_owned(), Value::String(msg.to_owned()));
    };
    let exp = claims.get("exp");
    let exp_num = exp.and_then(Value::as_f64);
    if rules.verify_exp || rules.maximum_expiration > 0.0 {
        match exp_num {
            None => fail("exp", "must be a number"),
            Some(e) => {
                if rules.verify_exp && e <= now - rules.clock_skew {
                    fail("exp", "token expired");
                } else if rules.maximum_expiration > 0.0 && e - now > rules.maximum_expiration {
                    fail("exp", "exceeds maximum allowed expiration");
                }
            }
        }
    }
    if rules.verify_nbf {
        match claims.get("nbf") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_f64() {
                None => fail("nbf", "must be a number"),
                Some(n) if n > now + rules.clock_skew => fail("nbf", "token not valid yet"),
                Some(_) => {}
            },
        }
    }
    if !rules.audiences.is_empty() && !audience_ok(claims.get("aud"), rules.audiences) {
        fail("aud", "audience not allowed");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn audience_ok(aud: Option<&Value>, allowed: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => allowed.iter().any(|x| x == a),
        Some(Value::Array(list)) => list
            .iter()
            .any(|v| v.as_str().is_some_and(|a| allowed.iter().any(|x| x == a))),
        _ => false,
    }
}

/// A numeric claim (NumericDate) if present and a number.
pub fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Option<f64> {
    claims.get(name).and_then(Value::as_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `split('.')` taken three times and a fourth `None`, on every string of up to 20
    /// characters from {'a', '.', 'é'} (multibyte, so a dot is never mistaken in one).
    #[test]
    fn segments_is_split_on_dots() {
        fn reference(t: &str) -> Option<(&str, &str, &str)> {
            let mut parts = t.split('.');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(p), Some(s), None) => Some((h, p, s)),
                _ => None,
            }
        }
        let alphabet = ['a', '.', 'é'];
        for len in 0..=12u32 {
            for mut code in 0..3usize.pow(len) {
                let mut t = String::new();
                for _ in 0..len {
                    t.push(alphabet[code % 3]);
                    code /= 3;
                }
                assert_eq!(segments(&t), reference(&t), "{t:?}");
            }
        }
        for t in [
            "a.b.c",
            "aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb.ccccccccccccccc",
            "..",
            "a.b.c.",
            ".a.b",
        ] {
            assert_eq!(segments(t), reference(t), "{t:?}");
        }
    }
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn base64url_decodes_as_the_crate_does() {
        // Every string of up to 5 characters over valid characters of each kind (for the
        // tail bits), padding, the standard alphabet's two, a space and a non-ASCII byte.
        let chars = b"AQgwz09-_P=+/ \x80";
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..5 {
            let last: Vec<Vec<u8>> = inputs
                .iter()
                .filter(|i| i.len() == inputs.last().unwrap().len())
                .cloned()
                .collect();
            for i in last {
                for &c in chars {
                    let mut n = i.clone();
                    n.push(c);
                    inputs.push(n);
                }
            }
        }
        assert!(inputs.len() > 800_000);
        for i in &inputs {
            assert_eq!(decode_base64url(i), URL_SAFE_NO_PAD.decode(i).ok(), "{i:?}");
        }
        // Longer, random-ish: every byte value at every position of an 11-byte token.
        let base = URL_SAFE_NO_PAD.encode(b"a JWS part");
        for pos in 0..base.len() {
            for b in 0..=255u8 {
                let mut s = base.clone().into_bytes();
                s[pos] = b;
                assert_eq!(decode_base64url(&s), URL_SAFE_NO_PAD.decode(&s).ok());
            }
        }
    }

    #[test]
    fn usual_headers_read_as_the_json_parse_reads_them() {
        // Headers built from pieces: the three usual forms and near misses of them.
        let algs = [
            "HS256", "HS384", "RS256", "ES256", "EdDSA", "none", "HS257", "hs256", "",
        ];
        let forms = [
            r#"{"alg":"A","typ":"JWT"}"#,
            r#"{"typ":"JWT","alg":"A"}"#,
            r#"{"alg":"A"}"#,
            r#"{"alg": "A"}"#,
            r#"{"alg":"A","typ":"jwt"}"#,
            r#"{"alg":"A","typ":"JWT","kid":"k"}"#,
            r#"{"alg":"A","alg":"A"}"#,
            r#"{"typ":"JWT","alg":"A","typ":"JWT"}"#,
            r#"{"alg":"A","typ":"JWT","typ":"JWT"}"#,
            r#"{"alg":"A","crit":["x"]}"#,
            r#"{"alg":"A",}"#,
            r#"{"alg":"A"}}"#,
            r#"{"alg":"A" }"#,
            r#"{"a\u006cg":"A"}"#,
            r#"{"alg":"A","typ":"JWT",}"#,
            r#"{"typ":"JWT",,"alg":"A"}"#,
            r#"{"typ":"JWT""alg":"A"}"#,
        ];
        let mut usual = 0;
        for form in forms {
            for alg in algs {
                let h = form.replace('A', alg);
                let t = tok(&h, r#"{"iss":"a"}"#, "c2ln");
                // The JSON parse alone, as before the usual forms were recognised.
                let by_json = strict_object(h.as_bytes()).and_then(|map| {
                    if map.contains_key("crit") {
                        return Err(ParseError::InvalidJson);
                    }
                    match map.get("alg") {
                        Some(Value::String(n)) => Alg::parse(n)
                            .map(|a| (a, map.clone()))
                            .ok_or(ParseError::InvalidAlg),
                        _ => Err(ParseError::InvalidAlg),
                    }
                });
                match (parse(&t, 8192), by_json) {
                    (Ok(p), Ok((alg, map))) => {
                        assert_eq!(p.alg, alg, "{h}");
                        for name in ["alg", "typ", "kid", "crit", "x"] {
                            assert_eq!(
                                p.header_value(name).as_deref(),
                                map.get(name),
                                "{h} {name}"
                            );
                        }
                        if matches!(p.header, Header::Usual { .. }) {
                            usual += 1;
                        }
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "{h}"),
                    (a, b) => panic!("{h}: {a:?} against {b:?}"),
                }
            }
        }
        // HS256, HS384, RS256, ES256, EdDSA in each of the three usual forms.
        assert_eq!(usual, 15);
    }

    /// `flat_object` must read what it accepts exactly as the JSON parse does, and leave the
    /// rest to it.
    fn same_as_json(text: &[u8]) -> bool {
        let flat = flat_object(text);
        if let Some(map) = &flat {
            assert_eq!(
                Ok(map),
                strict_object(text).as_ref(),
                "{}",
                text.escape_ascii()
            );
        }
        assert_eq!(
            json_object(text),
            strict_object(text),
            "{}",
            text.escape_ascii()
        );
        flat.is_some()
    }

    #[test]
    fn flat_objects_read_as_the_json_parse_reads_them() {
        let read = [
            r#"{}"#,
            r#" { } "#,
            r#"{"iss":"web-key","sub":"user-17","iat":1799999990,"exp":1800000600}"#,
            r#"{ "iss" : "a" , "n" : 0 ,"t":true,"f":false,"z":null }"#,
            "{\n\t\"aud\":\r[\"a\", \"b\"],\"e\":[],\"m\":[1,true,null,\"x\"]}\n",
            r#"{"exp":9999999999999999999}"#,
            r#"{"name":"Zoë 東京","":""}"#,
            r#"{"groups":["first-party"]}"#,
        ];
        for text in read {
            assert!(same_as_json(text.as_bytes()), "not read: {text}");
        }
        let left = [
            r#"{"exp":18446744073709551615}"#,
            r#"{"exp":18446744073709551616}"#,
            r#"{"exp":10000000000000000000}"#,
            r#"{"exp":-1}"#,
            r#"{"exp":-0}"#,
            r#"{"exp":1.5}"#,
            r#"{"exp":1e3}"#,
            r#"{"exp":1E3}"#,
            r#"{"exp":01}"#,
            r#"{"exp":00}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\""}"#,
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"\t\"}",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[[1]]}"#,
            r#"{"a":[{}]}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1}x"#,
            r#"{"a":1}}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":nul}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{a:1}"#,
            r#"["a"]"#,
            r#""a""#,
            r#"{"a":1"#,
            r#"{"a":"1}"#,
            "",
            "{",
            "\u{c}{}",
        ];
        for text in left {
            assert!(!same_as_json(text.as_bytes()), "read: {text}");
        }
        assert!(!same_as_json(b"{\"a\":\"\xff\"}"));
        assert!(!same_as_json(b"{\"\xc3\":1}"));
        // Every object one byte away from usual claims (each byte replaced by, or preceded
        // by, one of the bytes JSON's grammar turns on): read the same or left to the parse.
        let base = br#"{"iss":"k","exp":10,"aud":["a",7,true],"n":null,"f":false}"#;
        let bytes = b" \t\n\"\\,:[]{}0123456789-+.eEtrufalsn\x00\x1f\x7f\xc3\xa9\xff";
        let (mut cases, mut flat) = (0, 0);
        for at in 0..=base.len() {
            for &b in bytes {
                let mut replaced = base.to_vec();
                if at < base.len() {
                    replaced[at] = b;
                    cases += 1;
                    flat += usize::from(same_as_json(&replaced));
                }
                let mut inserted = base.to_vec();
                inserted.insert(at, b);
                cases += 1;
                flat += usize::from(same_as_json(&inserted));
            }
        }
        assert!(cases > 4000 && flat > 1000, "{cases} cases, {flat} read");
    }

    fn tok(h: &str, p: &str, sig: &str) -> String {
        format!("{}.{}.{}", b64(h), b64(p), sig)
    }

    #[test]
    fn parses_a_token() {
        let t = tok(r#"{"alg":"HS256"}"#, r#"{"iss":"a"}"#, "c2ln");
        let p = parse(&t, 8192).unwrap();
        assert_eq!(p.alg, Alg::HS256);
        assert_eq!(p.signature, b"sig");
        assert_eq!(p.claims["iss"], "a");
        assert!(t.starts_with(p.signing_input));
        assert_eq!(p.signing_input.matches('.').count(), 1);
    }

    #[test]
    fn size_limit_is_inclusive() {
        let t = tok(r#"{"alg":"HS256"}"#, r#"{"iss":"a"}"#, "c2ln");
        assert!(parse(&t, t.len()).is_ok());
        assert_eq!(parse(&t, t.len() - 1).unwrap_err(), ParseError::TooLarge);
    }

    #[test]
    fn structure_errors() {
        for bad in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "e30.e30",
            "e30.e30.e30.e30",
        ] {
            assert_eq!(
                parse(bad, 8192).unwrap_err(),
                ParseError::InvalidJson,
                "{bad}"
            );
        }
        // padding, standard alphabet, bad JSON, arrays, duplicate members
        let padded = format!("{}=.{}.", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        assert_eq!(parse(&padded, 8192).unwrap_err(), ParseError::InvalidJson);
        let std_sig = tok(r#"{"alg":"HS256"}"#, "{}", "ab+/");
        assert_eq!(parse(&std_sig, 8192).unwrap_err(), ParseError::InvalidJson);
        for (h, p) in [
            ("not json", "{}"),
            ("[1]", "{}"),
            (r#"{"alg":"HS256"}"#, "[1]"),
            (r#"{"alg":"HS256"}"#, "\"s\""),
            (r#"{"alg":"HS256","alg":"none"}"#, "{}"),
            (r#"{"alg":"HS256"}"#, r#"{"iss":"a","iss":"b"}"#),
            (r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, "{}"),
        ] {
            assert_eq!(
                parse(&tok(h, p, ""), 8192).unwrap_err(),
                ParseError::InvalidJson,
                "{h} {p}"
            );
        }
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let t = tok(r#"{"alg":"HS256"}"#, &format!(r#"{{"a":{deep}}}"#), "");
        assert_eq!(parse(&t, 1 << 20).unwrap_err(), ParseError::InvalidJson);
    }

    #[test]
    fn alg_errors() {
        for h in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":"HS999"}"#,
            r#"{"alg":5}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            assert_eq!(
                parse(&tok(h, "{}", ""), 8192).unwrap_err(),
                ParseError::InvalidAlg,
                "{h}"
            );
        }
        // JSON errors come before alg errors
        assert_eq!(
            parse(&tok(r#"{"alg":"none"}"#, "[]", ""), 8192).unwrap_err(),
            ParseError::InvalidJson
        );
    }

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn rules(aud: &[String]) -> ClaimRules<'_> {
        ClaimRules {
            verify_exp: true,
            verify_nbf: true,
            maximum_expiration: 0.0,
            clock_skew: 0.0,
            audiences: aud,
        }
    }

    #[test]
    fn exp_nbf() {
        let r = rules(&[]);
        assert!(check_claims(&claims(r#"{"exp":1001}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":1000.5}"#), &r, 1000.0).is_ok());
        let e = check_claims(&claims(r#"{"exp":1000}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["exp"], "token expired");
        let e = check_claims(&claims(r#"{}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["exp"], "must be a number");
        let e = check_claims(&claims(r#"{"exp":"2000"}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["exp"], "must be a number");
        let e = check_claims(&claims(r#"{"exp":2000,"nbf":1001}"#), &r, 1000.0).unwrap_err();
        assert_eq!(
            Value::Object(e),
            serde_json::json!({"nbf": "token not valid yet"})
        );
        let e = check_claims(&claims(r#"{"exp":900,"nbf":1001}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e.len(), 2);
        let e = check_claims(&claims(r#"{"exp":2000,"nbf":"x"}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["nbf"], "must be a number");
        // huge numbers and floats
        assert!(check_claims(&claims(r#"{"exp":1e300}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":99999999999999999999999}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":-1e300}"#), &r, 1000.0).is_err());
    }

    #[test]
    fn skew() {
        let mut r = rules(&[]);
        r.clock_skew = 10.0;
        assert!(check_claims(&claims(r#"{"exp":995}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":990}"#), &r, 1000.0).is_err());
        assert!(check_claims(&claims(r#"{"exp":2000,"nbf":1010}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":2000,"nbf":1011}"#), &r, 1000.0).is_err());
    }

    #[test]
    fn maximum_expiration() {
        let mut r = rules(&[]);
        r.verify_exp = false;
        r.maximum_expiration = 100.0;
        assert!(check_claims(&claims(r#"{"exp":1100}"#), &r, 1000.0).is_ok());
        let e = check_claims(&claims(r#"{"exp":1101}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["exp"], "exceeds maximum allowed expiration");
        let e = check_claims(&claims(r#"{}"#), &r, 1000.0).unwrap_err();
        assert_eq!(e["exp"], "must be a number");
        // expired is not reported when exp is not verified
        assert!(check_claims(&claims(r#"{"exp":10}"#), &r, 1000.0).is_ok());
    }

    #[test]
    fn audiences() {
        let aud = vec!["api".to_string(), "web".to_string()];
        let r = rules(&aud);
        assert!(check_claims(&claims(r#"{"exp":2000,"aud":"api"}"#), &r, 1000.0).is_ok());
        assert!(check_claims(&claims(r#"{"exp":2000,"aud":["x","web"]}"#), &r, 1000.0).is_ok());
        for bad in [
            r#"{"exp":2000}"#,
            r#"{"exp":2000,"aud":"x"}"#,
            r#"{"exp":2000,"aud":[1]}"#,
        ] {
            let e = check_claims(&claims(bad), &r, 1000.0).unwrap_err();
            assert_eq!(e["aud"], "audience not allowed");
        }
    }
}
