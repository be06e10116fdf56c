//! The proxy-wasm header map serialization (ABI 0.2.1), decoded in place: pure code, so that
//! it is tested natively. The glue reads the map's bytes from the host and decodes them here.
//!
//! The SDK's own decoder unwraps `String::from_utf8` on every name and value, so one
//! non-UTF-8 header byte would trap the VM; and it allocates two strings per header. This one
//! borrows every name and value from the host's buffer.

fn le_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(arr)).ok()
}

/// The next field of `len` bytes and the rest after its NUL terminator. `terminated`: the NUL
/// must be there (a name's, which a value follows); a value's may be missing at the very end.
fn field(data: &mut [u8], len: usize, terminated: bool) -> Option<(&mut [u8], &mut [u8])> {
    if len > data.len() || terminated && len == data.len() {
        return None;
    }
    let (field, rest) = data.split_at_mut(len);
    let rest = rest.get_mut(1..).unwrap_or_default();
    Some((field, rest))
}

/// Decode a serialized header map in place and borrow its pairs: names in lowercase (Kong
/// passes them as the client wrote them; every comparison is in lowercase), and every byte
/// that is not part of valid UTF-8 replaced by `?` (a client's odd byte never traps the VM,
/// and never turns into another header's name). One pass, one allocation (the list), no
/// allocation per header. `None` when the map is malformed.
pub fn decode_map(bytes: &mut [u8]) -> Option<Vec<(&str, &str)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = le_u32(bytes, 0)?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > bytes.len() {
        return None;
    }
    let (sizes, mut data) = bytes.split_at_mut(sizes_end);
    let sizes: &[u8] = sizes;
    // The usual map is ASCII throughout: checked once, not field by field.
    let ascii = is_ascii(data);
    let mut out = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let s = n.checked_mul(8)?.checked_add(4)?;
        let name_len = le_u32(sizes, s)?;
        let value_len = le_u32(sizes, s.checked_add(4)?)?;
        let (name, rest) = field(data, name_len, true)?;
        let (value, rest) = field(rest, value_len, false)?;
        data = rest;
        name.make_ascii_lowercase();
        if !ascii {
            make_utf8(name);
            make_utf8(value);
        }
        let (name, value): (&[u8], &[u8]) = (name, value);
        out.push((utf8(name), utf8(value)));
    }
    Some(out)
}

/// A field [`make_utf8`] made valid.
fn utf8(field: &[u8]) -> &str {
    // SAFETY: `decode_map` passed every field through `make_utf8`, whose result is valid
    // UTF-8 whatever its input, or found the whole map ASCII (lowercasing keeps it so), and
    // changed nothing since (validating twice costs more than
    // the rest of reading a cached request's headers).
    unsafe { std::str::from_utf8_unchecked(field) }
}

/// Make `bytes` valid UTF-8 in place: every byte that is not part of valid UTF-8 becomes
/// `?` (ASCII, the common case, is checked eight bytes at a time).
fn make_utf8(bytes: &mut [u8]) {
    if is_ascii(bytes) || std::str::from_utf8(bytes).is_ok() {
        return;
    }
    let mut at = 0usize;
    while let Some(rest) = bytes.get_mut(at..) {
        match std::str::from_utf8(rest) {
            Ok(_) => return,
            Err(e) => {
                let bad = e
                    .error_len()
                    .unwrap_or(usize::MAX)
                    .min(rest.len().saturating_sub(e.valid_up_to()));
                rest.iter_mut()
                    .skip(e.valid_up_to())
                    .take(bad)
                    .for_each(|b| *b = b'?');
                at = at
                    .saturating_add(e.valid_up_to())
                    .saturating_add(bad.max(1));
            }
        }
    }
    // Unreachable (the loop ends on a valid rest); kept so the result is valid regardless.
    if std::str::from_utf8(bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = b'?');
    }
}

/// Whether every byte is ASCII, eight at a time (wasm has 64-bit integers; `is_ascii` and the
/// UTF-8 validator go a word, 4 bytes, at a time): a 55 KB cookie header is read quickly.
fn is_ascii(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let mut high = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        high |= u64::from_le_bytes(w);
    }
    high & 0x8080_8080_8080_8080 == 0 && chunks.remainder().is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn names_lowercase_values_as_sent() {
        let mut b = encode(&[
            (b":path", b"/A?b=C"),
            (b"Authorization", b"Bearer AbC"),
            (b"X-Empty", b""),
        ]);
        let m = decode_map(&mut b).unwrap();
        assert_eq!(
            m,
            vec![
                (":path", "/A?b=C"),
                ("authorization", "Bearer AbC"),
                ("x-empty", "")
            ]
        );
        let mut empty = Vec::new();
        assert_eq!(decode_map(&mut empty), Some(vec![]));
    }

    #[test]
    fn bytes_that_are_not_utf8_become_question_marks() {
        let mut b = encode(&[
            (b"x-a\xff", b"caf\xc3\xa9 \xe2\x82 \xf0\x9f\x98\x80\xff"),
            (b"X-Consumer-ID\xc0\xae", b"\xed\xa0\x80"),
        ]);
        let m = decode_map(&mut b).unwrap();
        // Valid multibyte characters stay; each byte of an invalid sequence is replaced.
        assert_eq!(m[0], ("x-a?", "café ?? 😀?"));
        // An odd byte never makes a reserved name (nor any other valid name) out of a header.
        assert_eq!(m[1], ("x-consumer-id??", "???"));
    }

    #[test]
    fn malformed_maps_are_refused() {
        let good = encode(&[(b"a", b"b"), (b"cc", b"dd")]);
        for cut in 1..good.len() - 1 {
            let mut b = good[..cut].to_vec();
            assert_eq!(decode_map(&mut b), None, "cut at {cut}");
        }
        // A count far larger than the buffer.
        let mut b = u32::MAX.to_le_bytes().to_vec();
        assert_eq!(decode_map(&mut b), None);
        // Lengths that overflow.
        let mut b = 1u32.to_le_bytes().to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_map(&mut b), None);
    }

    #[test]
    fn long_ascii_and_long_mixed_values() {
        let long = "k".repeat(70_000);
        let mut mixed = long.clone().into_bytes();
        mixed.insert(35_000, 0xff);
        let mut b = encode(&[(b"cookie", long.as_bytes()), (b"x", &mixed)]);
        let m = decode_map(&mut b).unwrap();
        assert_eq!(m[0].1, long);
        assert_eq!(m[1].1.len(), 70_001);
        assert_eq!(m[1].1.as_bytes()[35_000], b'?');
    }

    #[test]
    fn any_bytes_become_valid_utf8_and_valid_text_is_kept() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..20_000usize {
            let mut b: Vec<u8> = (0..n % 40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly high bytes: lone continuations, truncated and overlong sequences.
                    (x as u8) | if x & 0x100 == 0 { 0x80 } else { 0 }
                })
                .collect();
            let before = b.clone();
            make_utf8(&mut b);
            let text = std::str::from_utf8(&b).expect("valid after make_utf8");
            assert_eq!(b.len(), before.len());
            if let Ok(orig) = std::str::from_utf8(&before) {
                assert_eq!(text, orig);
            }
            // Only invalid bytes change, and they become '?'.
            for (a, z) in before.iter().zip(&b) {
                assert!(a == z || *z == b'?');
            }
        }
    }
}
