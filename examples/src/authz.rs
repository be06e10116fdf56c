//! The reference authorization service: Rego policies evaluated by `regorus` (a Rego
//! interpreter in Rust), served as OPA's data API, so Bouncer's callout reaches it exactly as
//! it would reach OPA:
//!
//! `POST /v1/data/<path>` with `{"input": ...}` answers `{"result": <data.path>}`, or `{}`
//! when `data.path` is undefined (OPA's answer for an undefined document). A path may name a
//! rule (`/v1/data/bouncer/rbac/result`) or a package (`/v1/data/envoy/authz`: its whole
//! document). Policies and the data document are files (`examples/policies/`); nothing of the
//! model is code here.

use serde_json::{json, Value};

/// Loaded policies and data, ready to answer.
#[derive(Clone)]
pub struct Service {
    engine: regorus::Engine,
}

/// An answer of the data API: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Service {
    /// Policies as (file name, Rego text), and an optional JSON data document (`data`).
    pub fn new(policies: &[(String, String)], data: Option<&str>) -> Result<Service, String> {
        let mut engine = regorus::Engine::new();
        for (name, text) in policies {
            engine
                .add_policy(name.clone(), text.clone())
                .map_err(|e| format!("{name}: {e}"))?;
        }
        if let Some(d) = data {
            let v = regorus::Value::from_json_str(d).map_err(|e| format!("data: {e}"))?;
            engine.add_data(v).map_err(|e| format!("data: {e}"))?;
        }
        Ok(Service { engine })
    }

    /// Read the policy files and the data file.
    pub fn from_files(policies: &[String], data: Option<&str>) -> Result<Service, String> {
        let mut texts = Vec::new();
        for p in policies {
            let t = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            texts.push((p.clone(), t));
        }
        let data = match data {
            Some(d) => Some(std::fs::read_to_string(d).map_err(|e| format!("{d}: {e}"))?),
            None => None,
        };
        Service::new(&texts, data.as_deref())
    }

    /// The value of `data.<path>` (its segments, e.g. `["envoy", "authz", "result"]`) for
    /// `input`; `None` when it is undefined.
    pub fn evaluate(&mut self, path: &[&str], input: &Value) -> Result<Option<Value>, String> {
        let input = regorus::Value::from_json_str(&input.to_string()).map_err(|e| e.to_string())?;
        self.engine.set_input(input);
        // Bracket notation: a segment need not be a Rego identifier (`order-reader`).
        let mut query = "data".to_owned();
        for seg in path {
            query.push('[');
            query.push_str(&Value::from(*seg).to_string());
            query.push(']');
        }
        // A rule is evaluated as a rule (no query to compile); anything else (a package, a
        // path into data, a name nothing defines) as a query.
        let value = match self.engine.eval_rule(query.clone()) {
            Ok(v) => v,
            Err(_) => {
                let results = self
                    .engine
                    .eval_query(query, false)
                    .map_err(|e| e.to_string())?;
                match results
                    .result
                    .into_iter()
                    .next()
                    .and_then(|r| r.expressions.into_iter().next())
                {
                    Some(e) => e.value,
                    None => return Ok(None),
                }
            }
        };
        if value == regorus::Value::Undefined {
            return Ok(None);
        }
        let text = value.to_json_str().map_err(|e| e.to_string())?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Answer one data-API request: `POST /v1/data/<path>` with `{"input": ...}`.
    pub fn answer(&mut self, method: &str, target: &str, body: &[u8]) -> Answer {
        let error = |status: u16, code: &str, message: &str| Answer {
            status,
            body: json!({"code": code, "message": message}),
        };
        let path = target.split('?').next().unwrap_or_default();
        let Some(rest) = path
            .strip_prefix("/v1/data")
            .filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return error(404, "resource_not_found", "only /v1/data/<path> is served");
        };
        if !method.eq_ignore_ascii_case("POST") {
            return error(405, "method_not_allowed", "POST {\"input\": ...}");
        }
        let doc: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return error(400, "invalid_parameter", &format!("body: {e}")),
            }
        };
        let input = doc.get("input").cloned().unwrap_or(Value::Null);
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match self.evaluate(&segments, &input) {
            Ok(Some(result)) => Answer {
                status: 200,
                body: json!({ "result": result }),
            },
            Ok(None) => Answer {
                status: 200,
                body: json!({}),
            },
            Err(e) => error(500, "internal_error", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> String {
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies").to_owned()
    }

    fn rbac() -> Service {
        let r = root();
        Service::from_files(
            &[format!("{r}/rbac.rego")],
            Some(&format!("{r}/rbac-data.json")),
        )
        .unwrap()
    }

    fn ask(s: &mut Service, path: &str, input: Value) -> Answer {
        s.answer(
            "POST",
            path,
            json!({ "input": input }).to_string().as_bytes(),
        )
    }

    #[test]
    fn the_rbac_policy_reads_both_input_formats() {
        let mut s = rbac();
        let q = "/v1/data/bouncer/rbac/result";
        let fields = json!({"result": {"allowed": true, "headers": {"x-allowed-fields": "id,status,total"}}});
        let bouncer = |m: &str, p: &str, sub: &str, perms: Value| {
            json!({"method": m, "path": p, "query": "", "subject": sub, "permissions": perms,
                   "consumer": {"id": "c", "username": "c", "groups": [], "self_signed": false},
                   "claims": {}})
        };
        let envoy = |m: &str, p: &str, sub: &str, perms: Value| {
            json!({"attributes": {"request": {"http": {"method": m, "path": p, "host": "h",
                    "scheme": "https", "headers": {}}}},
                   "parsed_path": [], "parsed_query": {},
                   "bouncer": {"subject": sub, "permissions": perms, "claims": {},
                               "consumer": {"id": "c", "username": "c", "groups": [], "self_signed": false}}})
        };
        for input in [bouncer, envoy] {
            let a = ask(
                &mut s,
                q,
                input("GET", "/api/v1/orders/42", "partner-user-1", json!([])),
            );
            assert_eq!(a.body, fields);
            let a = ask(
                &mut s,
                q,
                input("get", "/api/v1/orders", "partner-acme", json!([])),
            );
            assert_eq!(a.body, fields);
            let a = ask(
                &mut s,
                q,
                input("PUT", "/api/v1/orders/42", "partner-user-1", json!([])),
            );
            assert_eq!(a.body, json!({"result": {"allowed": false}}));
            // The token's own permissions grant too; a permission without fields, no header.
            let a = ask(
                &mut s,
                q,
                input("PUT", "/api/v1/orders/42", "x", json!(["edit_orders"])),
            );
            assert_eq!(a.body, json!({"result": {"allowed": true}}));
            // url_regex matches the whole path.
            let a = ask(
                &mut s,
                q,
                input("GET", "/api/v1/orders/42/x", "partner-user-1", json!([])),
            );
            assert_eq!(a.body, json!({"result": {"allowed": false}}));
        }
        // The opa-envoy path carries the query: it is not part of the match.
        let a = ask(
            &mut s,
            q,
            envoy("GET", "/api/v1/orders?page=2", "partner-user-1", json!([])),
        );
        assert_eq!(a.body, fields);
    }

    #[test]
    fn the_data_api() {
        let mut s = rbac();
        // Undefined is `{}`; a package is its whole document.
        assert_eq!(
            ask(&mut s, "/v1/data/bouncer/rbac/nothing", json!({})).body,
            json!({})
        );
        let a = ask(&mut s, "/v1/data/rbac/roles/order-reader", json!({}));
        assert_eq!(a.body, json!({"result": ["view_orders"]}));
        assert_eq!(s.answer("GET", "/v1/data/x", b"").status, 405);
        assert_eq!(s.answer("POST", "/v2/data/x", b"").status, 404);
        assert_eq!(s.answer("POST", "/v1/datax", b"").status, 404);
        assert_eq!(s.answer("POST", "/v1/data/x", b"{").status, 400);
        assert!(Service::new(&[("bad.rego".into(), "package".into())], None).is_err());
        assert!(Service::new(&[], Some("[")).is_err());
    }

    #[test]
    fn the_opa_envoy_example() {
        let r = root();
        let mut s = Service::from_files(&[format!("{r}/opa-envoy-example.rego")], None).unwrap();
        let q = "/v1/data/envoy/authz/result";
        let input = |m: &str, p: &str, claims: Value| {
            let parsed: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            json!({"attributes": {"request": {"http": {"method": m, "path": p, "host": "h",
                    "scheme": "https", "headers": {}}}},
                   "parsed_path": parsed, "parsed_query": {},
                   "bouncer": {"subject": "s", "permissions": [], "claims": claims,
                               "consumer": {"id": "c", "username": "c", "groups": [], "self_signed": false}}})
        };
        let ok = json!({"result": {"allowed": true, "headers": {"x-ext-auth-allow": "yes"},
                                   "http_status": 200}});
        assert_eq!(
            ask(
                &mut s,
                q,
                input("GET", "/people/7", json!({"role": "guest"}))
            )
            .body,
            ok
        );
        assert_eq!(
            ask(
                &mut s,
                q,
                input("POST", "/people", json!({"role": "admin"}))
            )
            .body,
            ok
        );
        assert_eq!(
            ask(
                &mut s,
                q,
                input("POST", "/people", json!({"role": "guest"}))
            )
            .body,
            json!({"result": {"allowed": false, "headers": {"x-ext-auth-allow": "yes"},
                              "http_status": 403, "body": "Unauthorized Request"}})
        );
        assert_eq!(
            ask(&mut s, q, input("GET", "/people/7", json!({}))).body,
            json!({"result": {"allowed": false, "headers": {"x-ext-auth-allow": "yes"},
                              "http_status": 401, "body": "Authentication Failed"}})
        );
    }
}
