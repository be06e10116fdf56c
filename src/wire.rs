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
pub fn decode_map(bytes: &mut [u8]) -> Option<Lowercase<'_>> {
    if bytes.is_empty() {
        return Some(Lowercase(Vec::new()));
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
        if name_len < data.len() {
            lowercase_prefix(data, name_len);
        }
        let (name, rest) = field(data, name_len, true)?;
        let (value, rest) = field(rest, value_len, false)?;
        data = rest;
        if !ascii {
            make_utf8(name);
            make_utf8(value);
        }
        let (name, value): (&[u8], &[u8]) = (name, value);
        out.push((utf8(name), utf8(value)));
    }
    Some(Lowercase(out))
}

/// A header map [`decode_map`] decoded: every name is lowercase (only `decode_map` makes
/// one, so the engine need not check the names again). Reads as a slice of pairs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lowercase<'a>(Vec<(&'a str, &'a str)>);

impl<'a> std::ops::Deref for Lowercase<'a> {
    type Target = [(&'a str, &'a str)];
    fn deref(&self) -> &[(&'a str, &'a str)] {
        &self.0
    }
}

/// The first `len` bytes of `buf` with their ASCII letters in lowercase (bytes from 0x80 up
/// left as they are, as `make_ascii_lowercase` leaves them), eight bytes at a time: a word
/// reaching past `len` keeps the bytes there as they are. (The byte loop costs wasm about 25
/// instructions a byte; a name is followed by its NUL and its value, so a short name still
/// has a whole word to read, except at the very end of the map.)
fn lowercase_prefix(buf: &mut [u8], len: usize) {
    // Each byte's low seven bits plus 0x80 - 'A' (0x3f) reach 0x80 from 'A' on, plus 0x80 -
    // 'Z' - 1 (0x25) from '[' on; no carry crosses a byte (at most 0x7f + 0x3f).
    fn lower(w: u64) -> u64 {
        let low = w & 0x7f7f_7f7f_7f7f_7f7f;
        let from_a = low.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
        let past_z = low.wrapping_add(0x2525_2525_2525_2525);
        // The high bit of each byte: set when the byte is 'A'..='Z' (and below 0x80).
        let upper = from_a & !past_z & !w & 0x8080_8080_8080_8080;
        w | (upper >> 2)
    }
    let mut at = 0usize;
    while at < len {
        let left = len.saturating_sub(at);
        let Some(c) = buf.get_mut(at..).and_then(|r| r.first_chunk_mut::<8>()) else {
            if let Some(rest) = buf.get_mut(at..len) {
                rest.make_ascii_lowercase();
            }
            return;
        };
        let w = u64::from_le_bytes(*c);
        let lowered = if left >= 8 {
            lower(w)
        } else {
            // `left` is 1..=7: the mask covers the name's bytes only.
            let mask = u64::MAX >> (8usize.saturating_sub(left).saturating_mul(8));
            (lower(w) & mask) | (w & !mask)
        };
        *c = lowered.to_le_bytes();
        at = at.saturating_add(8);
    }
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

/// `a == b`, eight bytes at a time (the last word overlapping the one before when the length
/// is not a multiple of eight): wasm's `memcmp` goes a byte at a time, and the token cache
/// compares a whole token on every hit.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word(s: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(s.get(..8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(w)
    }
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let tail = a.len().saturating_sub(8);
    let (ta, tb) = (
        a.get(tail..).unwrap_or_default(),
        b.get(tail..).unwrap_or_default(),
    );
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .all(|(x, y)| word(x) == word(y))
        && word(ta) == word(tb)
}

/// The position of the first `needle` in `hay`, eight bytes at a time. `str::split_once` and
/// `str::split` with a `char` set up a `CharSearcher` each time: ~170 instructions natively
/// for a 20-byte `:path`, and a cached request searched four times (the path's `?`, the
/// query's `&` and `=`).
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let pattern = u64::from(needle).wrapping_mul(ONES);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ pattern;
        // Nonzero exactly when a byte of `x` is zero, i.e. `c` holds `needle`.
        if x.wrapping_sub(ONES) & !x & (ONES << 7) != 0 {
            return c
                .iter()
                .position(|b| *b == needle)
                .map(|i| base.saturating_add(i));
        }
        base = base.saturating_add(8);
    }
    chunks
        .remainder()
        .iter()
        .position(|b| *b == needle)
        .map(|i| base.saturating_add(i))
}

/// `s.split_once(sep)` for an ASCII `sep`, with [`find_byte`].
pub fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let at = find_byte(s.as_bytes(), sep)?;
    // An ASCII byte of a `str` is a character boundary on both sides.
    Some((s.get(..at)?, s.get(at.checked_add(1)?..)?))
}

/// `s.split(sep)` for an ASCII `sep`, with [`find_byte`]: the same pieces, empty ones
/// included (one empty piece for an empty `s`).
pub fn split_byte(s: &str, sep: u8) -> SplitByte<'_> {
    SplitByte { rest: Some(s), sep }
}

/// The iterator of [`split_byte`].
pub struct SplitByte<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, self.sep) {
            Some((piece, tail)) => {
                self.rest = Some(tail);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
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

    /// Every byte at every position of prefixes up to 24 bytes of buffers up to 3 bytes
    /// longer: the prefix as `make_ascii_lowercase` makes it, the rest untouched.
    #[test]
    fn lowercase_prefix_is_make_ascii_lowercase() {
        for len in 0..24usize {
            for extra in 0..4usize {
                for at in 0..(len + extra).max(1) {
                    for b in 0..=255u8 {
                        let mut buf: Vec<u8> =
                            (0..len + extra).map(|i| b"Xy-Z@[`{"[i % 8]).collect();
                        if let Some(x) = buf.get_mut(at) {
                            *x = b;
                        }
                        let mut expected = buf.clone();
                        expected[..len].make_ascii_lowercase();
                        lowercase_prefix(&mut buf, len);
                        assert_eq!(buf, expected, "{len} {extra} {at} {b}");
                    }
                }
            }
        }
    }

    /// Equal and unequal slices of every length up to 40, differing at every position.
    /// `find_byte`, `split_once_byte` and `split_byte` against `str`'s own on every string up
    /// to 20 characters over an alphabet of the separators, a letter and a two-byte character.
    #[test]
    fn byte_searches_are_strs() {
        let alphabet = ['?', '&', '=', 'a', 'é'];
        let mut strings = vec![String::new()];
        let mut frontier = vec![String::new()];
        for len in 1..=20 {
            let mut next = Vec::new();
            for s in &frontier {
                for (i, c) in alphabet.iter().enumerate() {
                    // All strings up to 6 characters, then a sample of longer ones.
                    if len > 6 && (s.len() + i) % 5 != 0 {
                        continue;
                    }
                    let mut t = s.clone();
                    t.push(*c);
                    next.push(t);
                }
            }
            next.truncate(4000);
            strings.extend(next.iter().cloned());
            frontier = next;
        }
        for s in &strings {
            for sep in [b'?', b'&', b'=', b'z'] {
                let c = char::from(sep);
                assert_eq!(find_byte(s.as_bytes(), sep), s.find(c), "{s:?} {c}");
                assert_eq!(split_once_byte(s, sep), s.split_once(c), "{s:?} {c}");
                assert_eq!(
                    split_byte(s, sep).collect::<Vec<_>>(),
                    s.split(c).collect::<Vec<_>>(),
                    "{s:?} {c}"
                );
            }
        }
    }

    #[test]
    fn same_bytes_is_equality() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "{len} {at}");
                assert!(!same_bytes(&b, &a), "{len} {at}");
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!same_bytes(&a, &longer), "{len}");
        }
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
            *m,
            [
                (":path", "/A?b=C"),
                ("authorization", "Bearer AbC"),
                ("x-empty", "")
            ]
        );
        let mut empty = Vec::new();
        assert_eq!(decode_map(&mut empty).as_deref(), Some(&[][..]));
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
