//! Finding credentials in a request: bearer tokens in headers, JWTs in query parameters and
//! cookies, API keys in headers and query parameters. Also the rewrites that hide them.

use crate::config::Policy;
use crate::wire::{split_byte, split_once_byte};
use std::borrow::Cow;

/// Where a credential was found (names borrowed from the request, unless decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location<'a> {
    Header(Cow<'a, str>),
    Query(Cow<'a, str>),
    Cookie(Cow<'a, str>),
}

/// What the request presents (borrowed from the request, unless decoded).
#[derive(Debug, Default)]
pub struct Presented<'a> {
    /// Distinct JWTs, in the order found: at most two (a second one decides the answer).
    pub tokens: Distinct<'a>,
    /// Distinct API keys, in the order found: at most two (likewise).
    pub api_keys: Distinct<'a>,
    /// Every place a credential was found (to hide them), each once; listed only with
    /// `hide_credentials`.
    pub locations: Vec<Location<'a>>,
}

/// The most distinct values of one kind [`extract`] keeps: two already decide
/// `Multiple tokens provided` or `Duplicate API key found`.
pub const MAX_DISTINCT: usize = 2;

/// At most [`MAX_DISTINCT`] distinct values, in the order found, held inline (a request's
/// credentials cost no allocation); reads as a slice.
#[derive(Debug, Default, Clone)]
pub struct Distinct<'a> {
    items: [Cow<'a, str>; MAX_DISTINCT],
    len: usize,
}

impl<'a> std::ops::Deref for Distinct<'a> {
    type Target = [Cow<'a, str>];
    fn deref(&self) -> &[Cow<'a, str>] {
        self.items.get(..self.len).unwrap_or_default()
    }
}

impl<T: AsRef<str>> PartialEq<Vec<T>> for Distinct<'_> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

fn push_distinct<'a>(list: &mut Distinct<'a>, v: Cow<'a, str>) {
    if list.contains(&v) {
        return;
    }
    if let Some(slot) = list.items.get_mut(list.len) {
        *slot = v;
        list.len = list.len.saturating_add(1);
    }
}

#[derive(Clone, Copy)]
enum Place {
    Header,
    Query,
    Cookie,
}

/// Note a place once: the list stays as short as the configured names. Only
/// `hide_credentials` reads the places: without it nothing is noted (no allocation).
fn locate<'a>(policy: &Policy, list: &mut Vec<Location<'a>>, place: Place, name: Cow<'a, str>) {
    if !policy.hide_credentials {
        return;
    }
    let seen = list.iter().any(|l| match (l, place) {
        (Location::Header(n), Place::Header)
        | (Location::Query(n), Place::Query)
        | (Location::Cookie(n), Place::Cookie) => *n == name,
        _ => false,
    });
    if !seen {
        list.push(match place {
            Place::Header => Location::Header(name),
            Place::Query => Location::Query(name),
            Place::Cookie => Location::Cookie(name),
        });
    }
}

impl Presented<'_> {
    /// Whether the answer is already `Multiple tokens provided` whatever else the request
    /// holds: two distinct tokens, or a token and an API key.
    pub fn decided(&self) -> bool {
        self.tokens.len() > 1 || (!self.tokens.is_empty() && !self.api_keys.is_empty())
    }
}

/// `Bearer <token>`, scheme case-insensitive; anything else is no credential.
pub fn bearer(value: &str) -> Option<&str> {
    let v = value.trim_start_matches([' ', '\t']);
    let scheme = v.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = v.get(6..)?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let token = rest.trim_matches([' ', '\t']);
    (!token.is_empty()).then_some(token)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Percent-decode a query component (`+` is a space, as nginx and Kong read it). Invalid
/// escapes are kept as they are; invalid UTF-8 is replaced.
pub fn url_decode(s: &str) -> String {
    decode(s, true).into_owned()
}

/// Percent-decode a path segment (`+` stays a `+`). Invalid escapes are kept as they are;
/// invalid UTF-8 is replaced.
pub fn path_decode(s: &str) -> String {
    decode(s, false).into_owned()
}

/// `s` decoded; borrowed when there is nothing to decode.
fn decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || plus_is_space && b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let decoded = match (
                    bytes.get(i.saturating_add(1)),
                    bytes.get(i.saturating_add(2)),
                ) {
                    (Some(&h), Some(&l)) => hex(h)
                        .zip(hex(l))
                        .and_then(|(h, l)| h.checked_mul(16)?.checked_add(l)),
                    _ => None,
                };
                if let Some(d) = decoded {
                    out.push(d);
                    i = i.saturating_add(2);
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i = i.saturating_add(1);
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Split `:path` into path and query (without `?`).
pub fn split_path(path: &str) -> (&str, &str) {
    match split_once_byte(path, b'?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    }
}

/// Query parameters as (decoded name, decoded value, raw pair); a name or value with nothing
/// to decode is borrowed.
pub fn query_params(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>, &str)> {
    split_byte(query, b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
            (decode(n, true), decode(v, true), pair)
        })
}

/// Cookies of one `cookie` header value as (name, value).
pub fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    split_byte(header, b';').filter_map(|c| {
        let (n, v) = split_once_byte(c, b'=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        Some((n.trim(), v))
    })
}

/// Collect the credentials the request presents, per the configured places, in one linear
/// pass: at most [`MAX_DISTINCT`] distinct tokens and API keys are kept, each place is listed
/// once (with `hide_credentials`), and the scan stops as soon as the answer is decided
/// ([`Presented::decided`]), unless the request may still go on as the `anonymous` consumer
/// with `hide_credentials`: then every place is needed, to hide them all.
pub fn extract<'a>(
    policy: &Policy,
    headers: &[crate::engine::Header<'a>],
    path: &'a str,
) -> Presented<'a> {
    let mut p = Presented::default();
    extract_into(policy, headers, path, &mut p);
    p
}

/// [`extract`] into `p` (empty): the pipeline's form, which moves no `Presented` around (in
/// wasmtime a move of that size is a call out of the module, `memory.copy`).
pub fn extract_into<'a>(
    policy: &Policy,
    headers: &[crate::engine::Header<'a>],
    path: &'a str,
    p: &mut Presented<'a>,
) {
    let all_places = policy.hide_credentials && policy.anonymous.is_some();
    let done = |p: &Presented| !all_places && p.decided();
    for &(name, value) in headers {
        if policy.header_names.iter().any(|n| n == name) {
            if let Some(t) = bearer(value) {
                push_distinct(&mut p.tokens, Cow::Borrowed(t));
                locate(policy, &mut p.locations, Place::Header, Cow::Borrowed(name));
            }
        }
        if policy.key_names.iter().any(|n| n == name) && !value.is_empty() {
            push_distinct(&mut p.api_keys, Cow::Borrowed(value));
            locate(policy, &mut p.locations, Place::Header, Cow::Borrowed(name));
        }
        if done(p) {
            return;
        }
        if name == "cookie" && !policy.cookie_names.is_empty() {
            for (cn, cv) in cookies(value) {
                if !cv.is_empty() && policy.cookie_names.iter().any(|n| n == cn) {
                    push_distinct(&mut p.tokens, Cow::Borrowed(cv));
                    locate(policy, &mut p.locations, Place::Cookie, Cow::Borrowed(cn));
                    if done(p) {
                        return;
                    }
                }
            }
        }
    }
    let (_, query) = split_path(path);
    let wanted = !policy.uri_param_names.is_empty() || !policy.key_names.is_empty();
    if wanted && !query.is_empty() {
        // As `query_params` reads them, but a value is decoded only when its name is one of
        // the configured ones (most parameters are not).
        for pair in split_byte(query, b'&') {
            let (n, v) = split_once_byte(pair, b'=').unwrap_or((pair, ""));
            if v.is_empty() {
                continue;
            }
            let n = decode(n, true);
            if policy.uri_param_names.iter().any(|u| *u == n) {
                push_distinct(&mut p.tokens, decode(v, true));
                locate(policy, &mut p.locations, Place::Query, n);
            } else if policy.key_names.iter().any(|k| *k == n) {
                push_distinct(&mut p.api_keys, decode(v, true));
                locate(policy, &mut p.locations, Place::Query, n);
            }
            if done(p) {
                return;
            }
        }
    }
}

/// `:path` without the named query parameters. When none remain the path ends in `?`, which
/// Kong needs to drop the old query string (HOSTS.md).
pub fn strip_query_params(path: &str, names: &[&str]) -> String {
    let (p, query) = split_path(path);
    let kept: Vec<&str> = query_params(query)
        .filter(|(n, _, _)| !names.contains(&n.as_ref()))
        .map(|(_, _, raw)| raw)
        .collect();
    format!("{p}?{}", kept.join("&"))
}

/// A `cookie` header value without the named cookies.
pub fn strip_cookies(values: &[&str], names: &[&str]) -> String {
    let mut kept = Vec::new();
    for v in values {
        for c in v.split(';') {
            let name = c.split_once('=').map_or(c, |(n, _)| n).trim();
            if !c.trim().is_empty() && !names.contains(&name) {
                kept.push(c.trim());
            }
        }
    }
    kept.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER   abc  "), Some("abc"));
        assert_eq!(bearer("  Bearer\tabc"), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
        assert_eq!(bearer("Beärer abc"), None);
        assert_eq!(bearer(""), None);
    }

    #[test]
    fn decoding() {
        assert_eq!(url_decode("a%2Eb"), "a.b");
        assert_eq!(url_decode("a+b"), "a b");
        assert_eq!(url_decode("%"), "%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("%ff"), "\u{fffd}");
        assert_eq!(path_decode("a+b%20c"), "a+b c");
        assert_eq!(path_decode("%zz"), "%zz");
        assert_eq!(path_decode("plain"), "plain");
    }

    fn policy(extra: &str) -> Policy {
        let text = format!(
            r#"{{"cookie_names": ["jwt-token"], "consumers": [{{"username": "guest"}}]{extra}}}"#
        );
        Policy::from_json(&text).unwrap()
    }

    fn cookie_request(cookie: String) -> Vec<(String, String)> {
        vec![("cookie".to_owned(), cookie)]
    }

    /// 4,000 distinct `jwt-token` cookies: two tokens are kept (the second decides), the place
    /// once; the same token 4,000 times is one token. (The quadratic scan kept all 4,000.)
    #[test]
    fn many_cookies_keep_two_tokens_and_one_place() {
        let p = policy(r#", "hide_credentials": true"#);
        let distinct: Vec<String> = (0..4000).map(|i| format!("jwt-token=t{i:05}")).collect();
        let request = cookie_request(distinct.join("; "));
        let got = extract(&p, &crate::engine::header_refs(&request), "/");
        assert_eq!(got.tokens, vec!["t00000".to_owned(), "t00001".to_owned()]);
        assert!(got.decided());
        assert_eq!(got.locations, vec![Location::Cookie("jwt-token".into())]);
        let same = vec!["jwt-token=t1"; 4000].join("; ");
        let request = cookie_request(same);
        let got = extract(&p, &crate::engine::header_refs(&request), "/");
        assert_eq!(got.tokens, vec!["t1".to_owned()]);
        assert!(!got.decided());
        assert_eq!(got.locations, vec![Location::Cookie("jwt-token".into())]);
    }

    /// Every kind of place, many times over: each place is listed once, values stop at two.
    #[test]
    fn places_are_listed_once_and_values_stop_at_two() {
        let p = policy(r#", "key_names": ["apikey", "x-key"], "hide_credentials": true"#);
        let mut headers = Vec::new();
        for i in 0..500 {
            headers.push(("apikey".to_owned(), format!("k{i}")));
            headers.push(("x-key".to_owned(), "k0".to_owned()));
        }
        let query: Vec<String> = (0..500).map(|i| format!("apikey=q{i}")).collect();
        let path = format!("/?{}", query.join("&"));
        let got = extract(&p, &crate::engine::header_refs(&headers), &path);
        assert!(got.tokens.is_empty());
        assert_eq!(got.api_keys, vec!["k0".to_owned(), "k1".to_owned()]);
        assert_eq!(
            got.locations,
            vec![
                Location::Header("apikey".into()),
                Location::Header("x-key".into()),
                Location::Query("apikey".into()),
            ]
        );
        // Two keys do not decide: a token later still makes it "Multiple tokens provided".
        let path = format!("{path}&jwt=tok");
        let got = extract(&p, &crate::engine::header_refs(&headers), &path);
        assert_eq!(got.tokens, vec!["tok".to_owned()]);
        assert!(got.decided());
    }

    /// Stopping early would leave credentials to an anonymous request's upstream: with
    /// `anonymous` and `hide_credentials` every place is found.
    #[test]
    fn anonymous_with_hidden_credentials_finds_every_place() {
        let cookie = format!("jwt-token=a; jwt-token=b; {}", "x=1; ".repeat(100));
        let headers = vec![
            ("cookie".to_owned(), cookie),
            ("apikey".to_owned(), "k".to_owned()),
        ];
        let p = policy(r#", "hide_credentials": true"#);
        assert_eq!(
            extract(&p, &crate::engine::header_refs(&headers), "/?jwt=c").locations,
            vec![Location::Cookie("jwt-token".into())]
        );
        // Without `hide_credentials` no place is listed (nothing reads them).
        let p = policy("");
        let got = extract(&p, &crate::engine::header_refs(&headers), "/?jwt=c");
        assert_eq!(got.tokens, vec!["a".to_owned(), "b".to_owned()]);
        assert!(got.locations.is_empty());
        let p = policy(r#", "anonymous": "guest", "hide_credentials": true"#);
        let got = extract(&p, &crate::engine::header_refs(&headers), "/?jwt=c");
        assert_eq!(got.tokens, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            got.locations,
            vec![
                Location::Cookie("jwt-token".into()),
                Location::Header("apikey".into()),
                Location::Query("jwt".into()),
            ]
        );
    }

    #[test]
    fn query_and_cookie_rewrites() {
        assert_eq!(strip_query_params("/a?jwt=x&b=1", &["jwt"]), "/a?b=1");
        assert_eq!(strip_query_params("/a?jwt=x", &["jwt"]), "/a?");
        assert_eq!(
            strip_query_params("/a?b=1&jwt=x&jwt=y&c", &["jwt"]),
            "/a?b=1&c"
        );
        assert_eq!(strip_cookies(&["a=1; jwt=x; b=2"], &["jwt"]), "a=1; b=2");
        assert_eq!(strip_cookies(&["jwt=x"], &["jwt"]), "");
        let cs: Vec<_> = cookies("a=1; b=\"2\"; bad; c=").collect();
        assert_eq!(cs, vec![("a", "1"), ("b", "2"), ("c", "")]);
    }
}
