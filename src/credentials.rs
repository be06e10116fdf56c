//! Finding credentials in a request: bearer tokens in headers, JWTs in query parameters and
//! cookies, API keys in headers and query parameters. Also the rewrites that hide them.

use crate::config::Policy;

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Header(String),
    Query(String),
    Cookie(String),
}

/// What the request presents.
#[derive(Debug, Default)]
pub struct Presented {
    /// Distinct JWTs, in the order found.
    pub tokens: Vec<String>,
    /// Distinct API keys, in the order found.
    pub api_keys: Vec<String>,
    /// Every place a credential was found (to hide them).
    pub locations: Vec<Location>,
}

fn push_distinct(list: &mut Vec<String>, v: String) {
    if !list.contains(&v) {
        list.push(v);
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
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
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
    String::from_utf8_lossy(&out).into_owned()
}

/// Split `:path` into path and query (without `?`).
pub fn split_path(path: &str) -> (&str, &str) {
    match path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    }
}

/// Query parameters as (decoded name, decoded value, raw pair).
pub fn query_params(query: &str) -> impl Iterator<Item = (String, String, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (url_decode(n), url_decode(v), pair)
    })
}

/// Cookies of one `cookie` header value as (name, value).
pub fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|c| {
        let (n, v) = c.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        Some((n.trim(), v))
    })
}

/// Collect every credential the request presents, per the configured places.
pub fn extract(policy: &Policy, headers: &[(String, String)], path: &str) -> Presented {
    let mut p = Presented::default();
    for (name, value) in headers {
        if policy.header_names.contains(name) {
            if let Some(t) = bearer(value) {
                push_distinct(&mut p.tokens, t.to_owned());
                p.locations.push(Location::Header(name.clone()));
            }
        }
        if policy.key_names.contains(name) && !value.is_empty() {
            push_distinct(&mut p.api_keys, value.clone());
            p.locations.push(Location::Header(name.clone()));
        }
        if name == "cookie" && !policy.cookie_names.is_empty() {
            for (cn, cv) in cookies(value) {
                if !cv.is_empty() && policy.cookie_names.iter().any(|n| n == cn) {
                    push_distinct(&mut p.tokens, cv.to_owned());
                    p.locations.push(Location::Cookie(cn.to_owned()));
                }
            }
        }
    }
    let (_, query) = split_path(path);
    let wanted = !policy.uri_param_names.is_empty() || !policy.key_names.is_empty();
    if wanted && !query.is_empty() {
        for (n, v, _) in query_params(query) {
            if v.is_empty() {
                continue;
            }
            if policy.uri_param_names.contains(&n) {
                push_distinct(&mut p.tokens, v);
                p.locations.push(Location::Query(n));
            } else if policy.key_names.contains(&n) {
                push_distinct(&mut p.api_keys, v);
                p.locations.push(Location::Query(n));
            }
        }
    }
    p
}

/// `:path` without the named query parameters. When none remain the path ends in `?`, which
/// Kong needs to drop the old query string (HOSTS.md).
pub fn strip_query_params(path: &str, names: &[&str]) -> String {
    let (p, query) = split_path(path);
    let kept: Vec<&str> = query_params(query)
        .filter(|(n, _, _)| !names.contains(&n.as_str()))
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
