//! The reference authorization service's model: roles grant permissions, permissions grant
//! activities (methods + a full-match path regex, like an activities table with a `url_regex`
//! column), and a permission may name the fields its holders may see ("authorized fields",
//! sent back as `x-allowed-fields`).
//!
//! ```json
//! {
//!   "subjects": {"user-17": ["support"]},
//!   "roles": {"support": ["view_roles"]},
//!   "permissions": {
//!     "view_roles": {"activities": [{"methods": ["GET"], "path": "/api/v1/roles(/[^/]+)?"}],
//!                    "fields": ["name", "email"]}
//!   }
//! }
//! ```
//!
//! A request is allowed when any permission of the subject's roles, or any permission the
//! token carried (`input.permissions`), has an activity matching `input.method` and
//! `input.path`.

use regex_lite::Regex;
use serde_json::{json, Value};
use std::collections::HashMap;

struct Activity {
    methods: Vec<String>,
    path: Regex,
}

struct Permission {
    activities: Vec<Activity>,
    fields: Vec<String>,
}

/// The role -> permission -> activity model.
pub struct Model {
    subjects: HashMap<String, Vec<String>>,
    roles: HashMap<String, Vec<String>>,
    permissions: HashMap<String, Permission>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn string_lists(v: Option<&Value>) -> HashMap<String, Vec<String>> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), strings(Some(v))))
                .collect()
        })
        .unwrap_or_default()
}

impl Model {
    /// Parse a model document.
    pub fn from_json(text: &str) -> Result<Model, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("model: {e}"))?;
        let mut permissions = HashMap::new();
        if let Some(perms) = doc.get("permissions").and_then(Value::as_object) {
            for (name, p) in perms {
                let mut activities = Vec::new();
                for (i, a) in p
                    .get("activities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let path = a.get("path").and_then(Value::as_str).ok_or_else(|| {
                        format!("permissions.{name}.activities[{i}].path: required")
                    })?;
                    let path = Regex::new(&format!("^(?:{path})$"))
                        .map_err(|e| format!("permissions.{name}.activities[{i}].path: {e}"))?;
                    let methods = strings(a.get("methods"))
                        .into_iter()
                        .map(|m| m.to_ascii_uppercase())
                        .collect();
                    activities.push(Activity { methods, path });
                }
                permissions.insert(
                    name.clone(),
                    Permission {
                        activities,
                        fields: strings(p.get("fields")),
                    },
                );
            }
        }
        Ok(Model {
            subjects: string_lists(doc.get("subjects")),
            roles: string_lists(doc.get("roles")),
            permissions,
        })
    }

    /// Answer one callout body (`{"input": {...}}`) with the response body.
    pub fn decide(&self, body: &[u8]) -> Value {
        let Ok(doc) = serde_json::from_slice::<Value>(body) else {
            return json!({});
        };
        let Some(input) = doc.get("input") else {
            return json!({});
        };
        let method = input.get("method").and_then(Value::as_str).unwrap_or("");
        let path = input.get("path").and_then(Value::as_str).unwrap_or("");
        let subject = input.get("subject").and_then(Value::as_str).unwrap_or("");
        let mut names: Vec<String> = strings(input.get("permissions"));
        for role in self.subjects.get(subject).into_iter().flatten() {
            names.extend(self.roles.get(role).into_iter().flatten().cloned());
        }
        let mut fields: Vec<String> = Vec::new();
        let mut allow = false;
        for n in &names {
            let Some(p) = self.permissions.get(n) else {
                continue;
            };
            let hit = p.activities.iter().any(|a| {
                (a.methods.is_empty()
                    || a.methods
                        .iter()
                        .any(|m| m == "*" || m.eq_ignore_ascii_case(method)))
                    && a.path.is_match(path)
            });
            if hit {
                allow = true;
                for f in &p.fields {
                    if !fields.contains(f) {
                        fields.push(f.clone());
                    }
                }
            }
        }
        if !allow {
            return json!({"result": false});
        }
        if fields.is_empty() {
            json!({"result": true})
        } else {
            json!({"result": {"allow": true, "headers": {"x-allowed-fields": fields.join(",")}}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"{
        "subjects": {"user-17": ["support"]},
        "roles": {"support": ["view_roles"]},
        "permissions": {
            "view_roles": {"activities": [{"methods": ["GET"], "path": "/api/v1/roles(/[^/]+)?"}],
                           "fields": ["name", "email"]},
            "edit_roles": {"activities": [{"methods": ["PUT", "POST"], "path": "/api/v1/roles/[^/]+"}]}
        }
    }"#;

    fn ask(m: &Model, input: Value) -> Value {
        m.decide(json!({ "input": input }).to_string().as_bytes())
    }

    #[test]
    fn decides() {
        let m = Model::from_json(MODEL).unwrap();
        assert_eq!(
            ask(
                &m,
                json!({"method": "GET", "path": "/api/v1/roles/4", "subject": "user-17"})
            ),
            json!({"result": {"allow": true, "headers": {"x-allowed-fields": "name,email"}}})
        );
        assert_eq!(
            ask(
                &m,
                json!({"method": "PUT", "path": "/api/v1/roles/4", "subject": "user-17"})
            ),
            json!({"result": false})
        );
        assert_eq!(
            ask(
                &m,
                json!({"method": "PUT", "path": "/api/v1/roles/4", "subject": "x", "permissions": ["edit_roles"]})
            ),
            json!({"result": true})
        );
        assert_eq!(m.decide(b"garbage"), json!({}));
        assert!(
            Model::from_json(r#"{"permissions": {"p": {"activities": [{"path": "("}]}}}"#).is_err()
        );
    }
}
