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

/// A consumer's route ACL: empty means unrestricted.
#[derive(Debug, Clone, Default)]
pub struct RouteSet {
    routes: Vec<Route>,
}

impl RouteSet {
    pub fn new(routes: Vec<Route>) -> RouteSet {
        RouteSet { routes }
    }

    /// Whether the set restricts anything at all.
    pub fn is_restricted(&self) -> bool {
        !self.routes.is_empty()
    }

    /// Whether a request may pass: unrestricted, or some rule matches.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.routes.is_empty() || self.routes.iter().any(|r| r.matches(method, path))
    }
}

/// The local permission model: permission name -> activities.
#[derive(Debug, Default)]
pub struct Permissions {
    by_name: HashMap<String, Vec<Route>>,
}

impl Permissions {
    pub fn new(entries: Vec<(String, Vec<Route>)>) -> Permissions {
        Permissions {
            by_name: entries.into_iter().collect(),
        }
    }

    /// Whether any of the named permissions has an activity matching the request.
    pub fn grants<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        method: &str,
        path: &str,
    ) -> bool {
        names.into_iter().any(|n| {
            self.by_name
                .get(n)
                .is_some_and(|acts| acts.iter().any(|r| r.matches(method, path)))
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
        let set = RouteSet::new(vec![route(&["GET"], "/a"), route(&["POST"], "/b")]);
        assert!(set.allows("GET", "/a"));
        assert!(set.allows("POST", "/b"));
        assert!(!set.allows("GET", "/b"));
        assert!(RouteSet::default().allows("PUT", "/anything"));
        let p = Permissions::new(vec![("view".into(), vec![route(&["GET"], "/r(/[^/]+)?")])]);
        assert!(p.grants(["x", "view"], "GET", "/r/1"));
        assert!(!p.grants(["x"], "GET", "/r/1"));
        assert!(!p.grants(["view"], "POST", "/r/1"));
    }

    #[test]
    fn long_path_is_linear() {
        let r = route(&["GET"], "(a+)+b");
        let path = "a".repeat(100_000);
        assert!(!r.matches("GET", &path));
    }
}
