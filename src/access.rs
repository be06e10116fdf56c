//! Route and method rules: consumer ACL routes, group routes and local permission activities.
//!
//! A route is a set of methods (or any) and a regex that must match the whole request path,
//! query string excluded. Regexes are compiled once at configuration time; `regex-lite`
//! matches in time linear in the path, so no path can make matching blow up.
//!
//! A route keeps the literal text its pattern starts with apart ([`split_literal`]) and
//! compiles only the rest, shared by every route with the same rest ([`RegexCache`]): 100,000
//! consumers with `/api/v1/tenants/<n>(/.*)?` hold one compiled regex, and a pattern that is
//! all literal compiles none (the path must equal it).

use regex_lite::Regex;
use std::collections::HashMap;
use std::sync::Arc;

/// The methods of [`KNOWN_METHODS`], one bit each, plus any others, upper-case.
#[derive(Debug, Clone)]
struct Methods {
    /// Bit `i` for `KNOWN_METHODS[i]`; [`ANY_METHOD`] for `"*"`.
    known: u16,
    other: Option<Box<Box<[Box<str>]>>>,
}

/// The bit of `"*"` in [`Methods::known`].
const ANY_METHOD: u16 = 1 << 15;

/// The methods a bit stands for.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn known_bit(method: &str) -> Option<u16> {
    KNOWN_METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .and_then(|i| 1u16.checked_shl(u32::try_from(i).ok()?))
}

impl Methods {
    fn matches(&self, method: &str) -> bool {
        self.known & ANY_METHOD != 0
            || known_bit(method).is_some_and(|b| self.known & b != 0)
            || self
                .other
                .iter()
                .flat_map(|o| o.iter())
                .any(|m| m.eq_ignore_ascii_case(method))
    }
}

/// Compiled regexes by source, so that routes with the same pattern share one. Used while
/// compiling a configuration, then dropped (the routes keep their regexes).
#[derive(Debug, Default)]
pub struct RegexCache {
    by_source: HashMap<String, Arc<Regex>>,
}

impl RegexCache {
    /// `^(?:source)$`, compiled once.
    fn get(&mut self, source: &str) -> Result<Arc<Regex>, String> {
        if let Some(r) = self.by_source.get(source) {
            return Ok(Arc::clone(r));
        }
        let regex = Regex::new(&format!("^(?:{source})$")).map_err(|e| e.to_string())?;
        let regex = Arc::new(regex);
        self.by_source.insert(source.to_owned(), Arc::clone(&regex));
        Ok(regex)
    }
}

/// The longest [`Literal`] kept inline.
const INLINE: usize = 30;

/// A route's literal prefix: inline up to [`INLINE`] bytes (one allocation per route, not two:
/// 100,000 consumers' `/api/v1/tenants/<n>` prefixes), else on the heap.
#[derive(Debug, Clone)]
enum Literal {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Literal {
    fn new(s: String) -> Literal {
        let mut bytes = [0u8; INLINE];
        match (bytes.get_mut(..s.len()), u8::try_from(s.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(s.as_bytes());
                Literal::Inline { len, bytes }
            }
            _ => Literal::Heap(s.into_boxed_str()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Literal::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Literal::Heap(s) => s,
        }
    }
}

/// One compiled route rule.
#[derive(Debug, Clone)]
pub struct Route {
    methods: Methods,
    /// The literal text every match starts with.
    prefix: Literal,
    /// What must match the rest of the path; `None`: the rest must be empty.
    rest: Option<Arc<Regex>>,
}

fn valid_method(m: &str) -> bool {
    !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
}

impl Route {
    /// Compile a rule. Errors give the field (`methods[i]`, `path`) and the problem.
    pub fn new(methods: &[String], path: &str) -> Result<Route, (String, String)> {
        Route::compile(methods, path, &mut RegexCache::default())
    }

    /// [`Route::new`], sharing compiled regexes through `cache`.
    pub fn compile(
        methods: &[String],
        path: &str,
        cache: &mut RegexCache,
    ) -> Result<Route, (String, String)> {
        if methods.is_empty() {
            return Err(("methods".to_owned(), "must not be empty".to_owned()));
        }
        let mut known = 0u16;
        let mut other: Vec<Box<str>> = Vec::new();
        for (i, m) in methods.iter().enumerate() {
            if m == "*" {
                known |= ANY_METHOD;
            } else if valid_method(m) {
                match known_bit(m) {
                    Some(b) => known |= b,
                    None => other.push(m.to_ascii_uppercase().into_boxed_str()),
                }
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
        let (prefix, rest) = split_literal(path);
        let rest = if rest.is_empty() {
            None
        } else {
            Some(
                cache
                    .get(rest)
                    .map_err(|e| ("path".to_owned(), format!("invalid regex: {e}")))?,
            )
        };
        Ok(Route {
            methods: Methods {
                known,
                other: (!other.is_empty()).then(|| Box::new(other.into_boxed_slice())),
            },
            prefix: Literal::new(prefix),
            rest,
        })
    }

    /// Whether the rule matches this method and path (path without query string).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.methods.matches(method) && self.matches_path(path)
    }

    fn matches_path(&self, path: &str) -> bool {
        match (path.strip_prefix(self.prefix.as_str()), &self.rest) {
            (None, _) => false,
            (Some(rest), None) => rest.is_empty(),
            (Some(rest), Some(regex)) => regex.is_match(rest),
        }
    }
}

/// Whether `rest` (the part of a pattern after a literal prefix) may be matched on its own
/// against the part of a path after that prefix: it has no assertion that looks at the text
/// before it (`^` other than a class negation, `\A`, `\b`, `\B`, `\<`, `\>`) and no
/// alternation (which would take the prefix into one branch only).
fn separable(rest: &str) -> bool {
    let mut chars = rest.chars();
    let mut after_open_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if matches!(chars.next(), None | Some('A' | 'b' | 'B' | '<' | '>')) {
                    return false;
                }
                after_open_class = false;
            }
            '^' if !after_open_class => return false,
            '|' => return false,
            _ => after_open_class = c == '[',
        }
    }
    true
}

/// A pattern as (literal prefix, rest): every match of `^(?:pattern)$` is the prefix followed
/// by a match of `^(?:rest)$`, and the other way round. The prefix stops before the first
/// character that is no plain literal (a meta character, an escape other than escaped
/// punctuation, or a character a quantifier applies to); the rest is kept whole (the prefix
/// is empty) when it could read the text before it or holds an alternation
/// ([`separable`]). A leading `^` is dropped (it is implied).
pub fn split_literal(pattern: &str) -> (String, &str) {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    let mut prefix = String::new();
    let mut rest = p;
    loop {
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        let lit = match c {
            '\\' => match chars.next() {
                // Escaped punctuation is itself (`\<` and `\>` are word boundaries).
                Some(e) if e.is_ascii_punctuation() && e != '<' && e != '>' => e,
                _ => break,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' | '|' => break,
            c => c,
        };
        // A quantifier after this character applies to it: it belongs to the rest.
        if matches!(chars.clone().next(), Some('?' | '*' | '+' | '{')) {
            break;
        }
        prefix.push(lit);
        rest = chars.as_str();
    }
    if prefix.is_empty() || !separable(rest) {
        return (String::new(), pattern);
    }
    (prefix, rest)
}

/// The literal text every match of `pattern` must start with: the prefix of
/// [`split_literal`].
pub fn literal_prefix(pattern: &str) -> String {
    split_literal(pattern).0
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
    let path = crate::wire::split_once_byte(path, b'?').map_or(path, |(p, _)| p);
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

/// Up to this many routes are scanned in order (each a prefix check before any regex); more
/// are indexed by prefix.
const SCAN_LIMIT: usize = 8;

/// Routes indexed by their literal prefix, so that a request only runs the regexes whose
/// prefix it starts with: thousands of rules cost about what one does.
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    routes: Box<[Route]>,
    /// With more than [`SCAN_LIMIT`] routes: (prefix length, prefix -> route indices), by
    /// increasing length.
    by_prefix: Option<Box<[PrefixLevel]>>,
}

/// The routes whose prefix has one length: (length, prefix -> route indices).
type PrefixLevel = (usize, HashMap<Box<str>, Vec<usize>>);

impl RouteIndex {
    /// Index compiled routes.
    pub fn new(routes: Vec<Route>) -> RouteIndex {
        let by_prefix = (routes.len() > SCAN_LIMIT).then(|| {
            let mut by_len: std::collections::BTreeMap<usize, HashMap<Box<str>, Vec<usize>>> =
                std::collections::BTreeMap::new();
            for (i, route) in routes.iter().enumerate() {
                by_len
                    .entry(route.prefix.as_str().len())
                    .or_default()
                    .entry(route.prefix.as_str().into())
                    .or_default()
                    .push(i);
            }
            by_len.into_iter().collect()
        });
        RouteIndex {
            routes: routes.into_boxed_slice(),
            by_prefix,
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
        let Some(by_prefix) = &self.by_prefix else {
            return self.routes.iter().any(|r| r.matches(method, path));
        };
        for (len, map) in by_prefix.iter() {
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

/// A consumer's route ACL: empty means unrestricted. One route (the common case) is one
/// allocation; more are a [`RouteIndex`].
#[derive(Debug, Clone, Default)]
pub enum RouteSet {
    #[default]
    Unrestricted,
    One(Box<Route>),
    Many(Box<RouteIndex>),
}

impl RouteSet {
    pub fn new(mut routes: Vec<Route>) -> RouteSet {
        match routes.len() {
            0 => RouteSet::Unrestricted,
            1 => match routes.pop() {
                Some(r) => RouteSet::One(Box::new(r)),
                None => RouteSet::Unrestricted,
            },
            _ => RouteSet::Many(Box::new(RouteIndex::new(routes))),
        }
    }

    /// The same routes followed by `more`.
    pub fn extended(self, more: impl IntoIterator<Item = Route>) -> RouteSet {
        let mut routes = match self {
            RouteSet::Unrestricted => Vec::new(),
            RouteSet::One(r) => vec![*r],
            RouteSet::Many(index) => index.routes.into_vec(),
        };
        routes.extend(more);
        RouteSet::new(routes)
    }

    /// Whether the set restricts anything at all.
    pub fn is_restricted(&self) -> bool {
        !matches!(self, RouteSet::Unrestricted)
    }

    /// Whether a request may pass: unrestricted, or some rule matches (never for an ambiguous
    /// path).
    pub fn allows(&self, method: &str, path: &str) -> bool {
        match self {
            RouteSet::Unrestricted => true,
            RouteSet::One(r) => !ambiguous_path(path) && r.matches(method, path),
            RouteSet::Many(index) => index.any_match(method, path),
        }
    }
}

/// The local permission model: permission name -> activities.
#[derive(Debug, Default)]
pub struct Permissions {
    by_name: HashMap<String, RouteIndex>,
}

impl Permissions {
    pub fn new(entries: Vec<(String, Vec<Route>)>) -> Permissions {
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

    fn rp(methods: &[&str], path: &str) -> Route {
        route(methods, path)
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
        // A quantified character belongs to the rest.
        assert_eq!(literal_prefix("/é/x+"), "/é/");
        // `\\<` and `\\>` are word boundaries, not literals.
        // `\\<` and `\\>` are word boundaries: the rest would read the prefix.
        assert_eq!(literal_prefix("/a\\<b"), "");
        assert_eq!(literal_prefix("/a\\>"), "");
    }

    /// A route split into literal prefix and rest matches exactly what the whole pattern
    /// matches, and refuses exactly the patterns the whole one refuses.
    #[test]
    fn split_agrees_with_the_whole_regex() {
        let patterns = [
            "/api/v1/tenants/17(/.*)?",
            "^/api/v1/orders(/[^/]+)?$",
            "/api/v1/orders",
            "/a\\.b",
            "/a\\/b/\\-c",
            "/ab?c",
            "/ab*",
            "/ab+",
            "/a\\.+",
            "/ab{2}",
            "/ab{2,}c",
            "/a\\d+",
            "/a|/b",
            "/a(b|c)",
            "/a\\|b",
            "/a^b",
            "/a\\^b",
            "/a[^b]c",
            "/a\\[^b]",
            "/a[]^]",
            "/tenant\\b",
            "/tenant\\Bx",
            "/a\\<b",
            "/a\\>",
            "/a\\Ab",
            "/a$",
            "/a$b",
            "/a\\z",
            "/a(?i)BC",
            "/a(?m)^b",
            "/a)(b",
            "/a(?x) b c",
            "/é/x+",
            "/ü/[0-9]+",
            ".*",
            "/a/.*",
            "/a b",
            "/a\\ b",
        ];
        let paths = [
            "",
            "/",
            "/a",
            "/ab",
            "/abc",
            "/abbc",
            "/abb",
            "/a.b",
            "/a..",
            "/a/b/-c",
            "/ac",
            "/a12",
            "/b",
            "/a|b",
            "/a^b",
            "/axc",
            "/a[b",
            "/a^",
            "/a]",
            "/tenant",
            "/tenantx",
            "/tenant/",
            "/a>",
            "/a<b",
            "/abC",
            "/aBC",
            "/a\nb",
            "/abcd",
            "/é/xx",
            "/é/",
            "/ü/12",
            "/a/",
            "/a/x/y",
            "/a b",
            "/api/v1/tenants/17",
            "/api/v1/tenants/17/x",
            "/api/v1/tenants/170",
            "/api/v1/orders",
            "/api/v1/orders/1",
            "/api/v1/orders/1/2",
        ];
        let mut cache = RegexCache::default();
        for pattern in patterns {
            let whole = Regex::new(&format!("^(?:{pattern})$")).unwrap();
            let split = Route::compile(&["*".to_owned()], pattern, &mut cache).unwrap();
            for path in paths {
                assert_eq!(
                    split.matches("GET", path),
                    whole.is_match(path),
                    "{pattern} on {path}"
                );
            }
        }
        for bad in [
            "/a(", "/a)", "/a\\", "/a\\e", "/a[", "/a{2", "/a**", "(", "/a\\1",
        ] {
            let whole = Regex::new(&format!("^(?:{bad})$")).is_err();
            let split = Route::compile(&["*".to_owned()], bad, &mut cache).is_err();
            assert_eq!(split, whole, "{bad}");
        }
    }

    #[test]
    fn shared_patterns_share_one_regex() {
        let mut cache = RegexCache::default();
        let m = ["GET".to_owned()];
        let a = Route::compile(&m, "/t/1(/.*)?", &mut cache).unwrap();
        let b = Route::compile(&m, "/t/2(/.*)?", &mut cache).unwrap();
        let (Some(ra), Some(rb)) = (&a.rest, &b.rest) else {
            panic!("both have a rest")
        };
        assert!(Arc::ptr_eq(ra, rb));
        let literal = Route::compile(&m, "/t/plain", &mut cache).unwrap();
        assert!(literal.rest.is_none());
        assert!(literal.matches("get", "/t/plain"));
        assert!(!literal.matches("GET", "/t/plain/"));
        let other =
            Route::compile(&["purge".to_owned(), "GET".to_owned()], "/x", &mut cache).unwrap();
        assert!(other.matches("PURGE", "/x"));
        assert!(other.matches("get", "/x"));
        assert!(!other.matches("POST", "/x"));
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
        let routes: Vec<Route> = patterns.iter().map(|p| rp(&["GET"], p)).collect();
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
            let scan = routes.iter().any(|r| r.matches("GET", path));
            assert_eq!(idx.any_match("GET", path), scan, "{path}");
        }
    }

    #[test]
    fn many_rules() {
        let routes: Vec<Route> = (0..5000)
            .map(|i| rp(&["GET"], &format!("/api/v1/resource{i}(/[^/]+)?")))
            .collect();
        let set = RouteSet::new(routes);
        assert!(set.allows("GET", "/api/v1/resource4999/7"));
        assert!(set.allows("GET", "/api/v1/resource0"));
        assert!(!set.allows("GET", "/api/v1/resource5000"));
        assert!(!set.allows("POST", "/api/v1/resource1"));
    }
}
