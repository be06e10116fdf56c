//! Route and method rules: consumer ACL routes, group routes and local permission activities.
//!
//! A route is a set of methods (or any) and a regex that must match the whole request path,
//! query string excluded. Regexes are compiled once at configuration time; `regex-lite`
//! matches in time linear in the path, so no path can make matching blow up.

use regex_lite::Regex;
use std::collections::HashMap;

/// One compiled route rule.
#[derive(Debug, Clone)]
pub struct Route {
    /// Upper-case methods; `None` means any method (`"*"`).
    methods: Option<Vec<String>>,
    regex: Regex,
}

fn valid_method(m: &str) -> bool {
    !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
}

impl Route {
    /// Compile a rule. Errors give the field (`methods[i]`, `path`) and the problem.
    pub fn new(methods: &[String], path: &str) -> Result<Route, (String, String)> {
        if methods.is_empty() {
            return Err(("methods".to_owned(), "must not be empty".to_owned()));
        }
        let mut list = Vec::with_capacity(methods.len());
        let mut any = false;
        for (i, m) in methods.iter().enumerate() {
            if m == "*" {
                any = true;
            } else if valid_method(m) {
                list.push(m.to_ascii_uppercase());
            } else {
                return Err((
                    format!("methods[{i}]"),
                    "must be an HTTP method or \"*\"".to_owned(),
                ));
            }
        }
        if path.is_empty() {
            return Err(("path".to_owned(), "must not be empty".to_owned()));
        }
        let regex = Regex::new(&format!("^(?:{path})$"))
            .map_err(|e| ("path".to_owned(), format!("invalid regex: {e}")))?;
        Ok(Route {
            methods: if any { None } else { Some(list) },
            regex,
        })
    }

    /// Whether the rule matches this method and path (path without query string).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = match &self.methods {
            None => true,
            Some(list) => list.iter().any(|m| m.eq_ignore_ascii_case(method)),
        };
        method_ok && self.regex.is_match(path)
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Whether a request path (query string excluded) is ambiguous (CONTRACT.md section 2): an
/// upstream may resolve it to another resource than the one a rule matched here. That is:
///
/// - it contains a percent-encoded `/`, `\`, `.`, `;` or NUL, or a `%25` (double encoding),
///   hex digits in either case (`%2e`, `%2F`, `%5c`, `%3B`, `%00`, `%25`);
/// - or, percent-decoded once and split at `/` or `\`, a segment is `.` or `..` once any
///   `;...` path parameter is cut off (`..`, `..;`, `.;x`, `..;jsessionid=1`: Tomcat, Jetty
///   and Spring cut the parameter before resolving dot segments).
///
/// Such a path is never matched by a route rule or a permission activity and never sent to
/// the authorization service. A `?` ends the path: callers may pass `:path` as it is.
pub fn ambiguous_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let raw = path.as_bytes();
    let encoded = raw.windows(3).any(|w| match w {
        [b'%', h, l] => matches!(
            (hex_digit(*h), hex_digit(*l)),
            (Some(2), Some(0xf | 0xe | 5))
                | (Some(5), Some(0xc))
                | (Some(3), Some(0xb))
                | (Some(0), Some(0))
        ),
        _ => false,
    });
    if encoded {
        return true;
    }
    // Decoded once. With the escapes above refused, decoding cannot make a separator, a dot
    // or a `;`; it is done anyway so that the definition holds as written.
    let decoded = percent_decode_once(raw);
    decoded
        .split(|b| *b == b'/' || *b == b'\\')
        .map(|seg| seg.split(|b| *b == b';').next().unwrap_or(seg))
        .any(|seg| seg == b"." || seg == b"..")
}

/// `%XX` escapes decoded once (`+` stays `+`: this is a path); invalid escapes are kept.
fn percent_decode_once(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !raw.contains(&b'%') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            if let [h, l, after @ ..] = tail {
                if let (Some(h), Some(l)) = (hex_digit(*h), hex_digit(*l)) {
                    out.push(h.wrapping_mul(16).wrapping_add(l));
                    rest = after;
                    continue;
                }
            }
        }
        out.push(b);
        rest = tail;
    }
    std::borrow::Cow::Owned(out)
}

/// The literal text every match of `pattern` must start with (conservative: it may be
/// shorter than the real prefix, never longer). Top-level alternation gives "".
pub fn literal_prefix(pattern: &str) -> String {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    if p.contains('|') {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                // An escaped punctuation character is itself; classes like \d end the prefix.
                Some(e) if e.is_ascii_punctuation() => e,
                _ => break,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => break,
            c => c,
        };
        // A quantifier after this character makes it optional or repeated: stop before it.
        if matches!(chars.peek(), Some('?' | '*' | '{')) {
            break;
        }
        out.push(lit);
    }
    out
}

/// Routes indexed by the literal prefix of their regex, so that a request only runs the
/// regexes whose prefix it starts with: thousands of rules cost about what one does.
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    routes: Vec<Route>,
    /// (prefix length, prefix -> route indices), by increasing length.
    by_prefix: Vec<(usize, HashMap<String, Vec<usize>>)>,
}

impl RouteIndex {
    /// Index compiled routes; `patterns` are their source regexes, in the same order.
    pub fn new(routes: Vec<(Route, String)>) -> RouteIndex {
        let mut by_len: std::collections::BTreeMap<usize, HashMap<String, Vec<usize>>> =
            std::collections::BTreeMap::new();
        let mut list = Vec::with_capacity(routes.len());
        for (i, (route, pattern)) in routes.into_iter().enumerate() {
            let prefix = literal_prefix(&pattern);
            by_len
                .entry(prefix.len())
                .or_default()
                .entry(prefix)
                .or_default()
                .push(i);
            list.push(route);
        }
        RouteIndex {
            routes: list,
            by_prefix: by_len.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Whether any route matches. An ambiguous path ([`ambiguous_path`]) matches none.
    pub fn any_match(&self, method: &str, path: &str) -> bool {
        !ambiguous_path(path) && self.any_match_unchecked(method, path)
    }

    /// [`Self::any_match`] for a path already known not to be ambiguous.
    fn any_match_unchecked(&self, method: &str, path: &str) -> bool {
        for (len, map) in &self.by_prefix {
            let Some(head) = path.get(..*len) else {
                // Longer than the path (or not at a char boundary): no route of this
                // length can match... unless the boundary is the issue, so check it.
                if *len > path.len() {
                    break;
                }
                continue;
            };
            if let Some(ids) = map.get(head) {
                if ids
                    .iter()
                    .filter_map(|i| self.routes.get(*i))
                    .any(|r| r.matches(method, path))
                {
                    return true;
                }
            }
        }
        false
    }
}

/// A consumer's route ACL: empty means unrestricted.
#[derive(Debug, Clone, Default)]
pub struct RouteSet {
    index: RouteIndex,
}

impl RouteSet {
    pub fn new(routes: Vec<(Route, String)>) -> RouteSet {
        RouteSet {
            index: RouteIndex::new(routes),
        }
    }

    /// Whether the set restricts anything at all.
    pub fn is_restricted(&self) -> bool {
        !self.index.is_empty()
    }

    /// Whether a request may pass: unrestricted, or some rule matches (never for an ambiguous
    /// path).
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.index.is_empty() || self.index.any_match(method, path)
    }
}

/// The local permission model: permission name -> activities.
#[derive(Debug, Default)]
pub struct Permissions {
    by_name: HashMap<String, RouteIndex>,
}

impl Permissions {
    pub fn new(entries: Vec<(String, Vec<(Route, String)>)>) -> Permissions {
        Permissions {
            by_name: entries
                .into_iter()
                .map(|(n, acts)| (n, RouteIndex::new(acts)))
                .collect(),
        }
    }

    /// Whether any of the named permissions has an activity matching the request (none
    /// matches an ambiguous path).
    pub fn grants<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        method: &str,
        path: &str,
    ) -> bool {
        !ambiguous_path(path)
            && names.into_iter().any(|n| {
                self.by_name
                    .get(n)
                    .is_some_and(|acts| acts.any_match_unchecked(method, path))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(methods: &[&str], path: &str) -> Route {
        let m: Vec<String> = methods.iter().map(|s| s.to_string()).collect();
        Route::new(&m, path).unwrap()
    }

    fn rp(methods: &[&str], path: &str) -> (Route, String) {
        (route(methods, path), path.to_string())
    }

    #[test]
    fn full_match_only() {
        let r = route(&["GET"], "/api/v1/orders(/[^/]+)?");
        assert!(r.matches("GET", "/api/v1/orders"));
        assert!(r.matches("GET", "/api/v1/orders/42"));
        assert!(!r.matches("GET", "/api/v1/orders/42/items"));
        assert!(!r.matches("GET", "/x/api/v1/orders"));
        assert!(!r.matches("POST", "/api/v1/orders"));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        let r = route(&["*"], "/a|/b");
        assert!(r.matches("DELETE", "/a"));
        assert!(r.matches("GET", "/b"));
        assert!(!r.matches("GET", "/a/x"));
        assert!(!r.matches("GET", "/x/b"));
    }

    #[test]
    fn method_case_insensitive() {
        let r = route(&["get"], "/x");
        assert!(r.matches("GET", "/x"));
    }

    #[test]
    fn bad_rules() {
        assert_eq!(Route::new(&[], "/x").unwrap_err().0, "methods");
        assert_eq!(
            Route::new(&["G ET".into()], "/x").unwrap_err().0,
            "methods[0]"
        );
        assert_eq!(Route::new(&["GET".into()], "(").unwrap_err().0, "path");
        assert_eq!(Route::new(&["GET".into()], "").unwrap_err().0, "path");
    }

    #[test]
    fn route_set_and_permissions() {
        let set = RouteSet::new(vec![rp(&["GET"], "/a"), rp(&["POST"], "/b")]);
        assert!(set.allows("GET", "/a"));
        assert!(set.allows("POST", "/b"));
        assert!(!set.allows("GET", "/b"));
        assert!(RouteSet::default().allows("PUT", "/anything"));
        let p = Permissions::new(vec![("view".into(), vec![rp(&["GET"], "/r(/[^/]+)?")])]);
        assert!(p.grants(["x", "view"], "GET", "/r/1"));
        assert!(!p.grants(["x"], "GET", "/r/1"));
        assert!(!p.grants(["view"], "POST", "/r/1"));
    }

    /// CONTRACT.md section 2: the ambiguous-path definition, case by case.
    #[test]
    fn ambiguous_path_definition() {
        let ambiguous = [
            // dot segments, anywhere, trailing too
            "/..",
            "/.",
            "..",
            ".",
            "/a/..",
            "/a/.",
            "/a/../b",
            "/a/./b",
            "/a/b/..",
            "/a//../b",
            // a ;parameter cut off before dot segments are resolved (Tomcat, Jetty, Spring)
            "/a/..;/b",
            "/a/..;",
            "/a/.;/b",
            "/a/.;x",
            "/a/..;jsessionid=1",
            "/a/..;jsessionid=1/admin",
            "/a/.;jsessionid=1",
            "/a/..;a;b/c",
            "/api/v1/orders/..;/..;/admin",
            // backslash separators
            "/a\\..\\b",
            "/a\\..",
            "/a\\.",
            "\\..\\admin",
            "/a\\..;x\\b",
            "/a/..\\b",
            // percent-encoded dot, slash, backslash, semicolon, NUL, percent; either case
            "/a/%2e%2e/b",
            "/a/%2E%2E/b",
            "/a/%2e%2E",
            "/a/%2E",
            "/a/.%2e/b",
            "/a/%2e./b",
            "/a/x%2ey",
            "/a%2fb",
            "/a%2Fb",
            "/a/..%2F..%2Fadmin",
            "/a%5cb",
            "/a%5Cb",
            "/a%3bb",
            "/a%3Bb",
            "/a/..%3b/b",
            "/a%00",
            "/a%00b",
            "/a%25",
            "/a%252e%252e/b",
            "/a%252E",
            "/a%25%32%65",
            "%2e%2e",
            "/%2e",
            // ambiguity before a `?` still counts
            "/a/..?x=1",
            "/a/..;?x=1",
            "/a%2f?x",
        ];
        for p in ambiguous {
            assert!(ambiguous_path(p), "{p} should be ambiguous");
        }
        let plain = [
            "",
            "/",
            "//",
            "/a",
            "/a/",
            "/a.b/c..d/.well-known",
            "/.well-known/jwks.json",
            "/a/...",
            "/a/.../b",
            "/a/..a",
            "/a/a..",
            "/a/.a",
            "/a/.hidden/b",
            "/a/b.",
            "/a;x/b",
            "/a;../b",
            "/a;jsessionid=1",
            "/a/b;.",
            "/a/x;..;y",
            "/a\\b",
            "/a\\.b",
            "/a\\...\\b",
            "/a%41b",
            "/a%20b",
            "/a%2",
            "/a%",
            "/a%%",
            "/a%zz",
            "/a%2g",
            "/a%e2%82%ac",
            "/a+b",
            "/caf\u{e9}/x",
            // the query is no part of the path
            "/a?x=..",
            "/a?x=/../",
            "/a?x=%2e%2e",
            "/a?next=%2F..%2F&y=%00",
            "/a?..;",
            "/a?%25",
            "/a?",
        ];
        for p in plain {
            assert!(!ambiguous_path(p), "{p} should not be ambiguous");
        }
    }

    #[test]
    fn ambiguous_paths_match_no_rule() {
        let set = RouteSet::new(vec![rp(&["GET"], "/api/.*"), rp(&["*"], ".*")]);
        let p = Permissions::new(vec![("all".into(), vec![rp(&["*"], ".*")])]);
        for path in [
            "/api/..;/admin",
            "/api/%2e%2e/admin",
            "/api/x/.",
            "/api%2fx",
        ] {
            assert!(!set.allows("GET", path), "{path}");
            assert!(!p.grants(["all"], "GET", path), "{path}");
        }
        assert!(set.allows("GET", "/api/a.b/c..d/.well-known"));
        assert!(p.grants(["all"], "GET", "/api/a.b"));
        // No rules: no restriction, whatever the path.
        assert!(RouteSet::default().allows("GET", "/api/..;/admin"));
    }

    #[test]
    fn long_path_is_linear() {
        let r = route(&["GET"], "(a+)+b");
        let path = "a".repeat(100_000);
        assert!(!r.matches("GET", &path));
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(
            literal_prefix("^/api/v1/orders(/[^/]+)?$"),
            "/api/v1/orders"
        );
        assert_eq!(literal_prefix("/api/v1/x.y"), "/api/v1/x");
        assert_eq!(literal_prefix("/ab?"), "/a");
        assert_eq!(literal_prefix("/ab*"), "/a");
        assert_eq!(literal_prefix("/ab{2}"), "/a");
        assert_eq!(literal_prefix("/a\\.b"), "/a.b");
        assert_eq!(literal_prefix("/a\\d"), "/a");
        assert_eq!(literal_prefix("/a|/b"), "");
        assert_eq!(literal_prefix(".*"), "");
        assert_eq!(literal_prefix("/é/x+"), "/é/x");
    }

    #[test]
    fn index_agrees_with_a_scan() {
        let patterns = [
            "/api/v1/orders(/[^/]+)?",
            "/api/v1/ab?c",
            "/a|/b",
            "/api/.*",
            "/x\\.y",
            "/ü/[0-9]+",
            "/api/v1/orders/[0-9]+/items",
            ".*/admin",
            "/api/v1/orders/(new|old)",
        ];
        let routes: Vec<(Route, String)> = patterns.iter().map(|p| rp(&["GET"], p)).collect();
        let idx = RouteIndex::new(routes.clone());
        for path in [
            "/api/v1/orders",
            "/api/v1/orders/1",
            "/api/v1/ac",
            "/api/v1/abc",
            "/a",
            "/b",
            "/api/zzz",
            "/x.y",
            "/xzy",
            "/ü/12",
            "/ü/",
            "/api/v1/orders/5/items",
            "/q/admin",
            "/api/v1/orders/new",
            "",
            "/",
            "/nothing",
        ] {
            let scan = routes.iter().any(|(r, _)| r.matches("GET", path));
            assert_eq!(idx.any_match("GET", path), scan, "{path}");
        }
    }

    #[test]
    fn many_rules() {
        let routes: Vec<(Route, String)> = (0..5000)
            .map(|i| rp(&["GET"], &format!("/api/v1/resource{i}(/[^/]+)?")))
            .collect();
        let set = RouteSet::new(routes);
        assert!(set.allows("GET", "/api/v1/resource4999/7"));
        assert!(set.allows("GET", "/api/v1/resource0"));
        assert!(!set.allows("GET", "/api/v1/resource5000"));
        assert!(!set.allows("POST", "/api/v1/resource1"));
    }
}
