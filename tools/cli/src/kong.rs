//! `bouncer import-kong`: a Kong declarative (decK) file's consumers, credentials and `jwt`,
//! `acl` and `key-auth` plugins as a Bouncer configuration.
//!
//! Everything that could not be converted, or whose meaning changes on the way, is a note on
//! stderr. The output is checked with the filter's own validation before it is written.

use crate::{key_sha256, read_text, Failure};
use bouncer::config::Policy;
use serde::Serialize;
use serde_yaml::Value as Y;
use std::collections::BTreeMap;
use std::path::Path;

/// The Bouncer configuration as it is written (field order kept, defaults left out).
#[derive(Serialize, Default)]
struct Out {
    #[serde(skip_serializing_if = "Option::is_none")]
    header_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_param_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_claim_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims_to_verify: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_expiration: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_on_preflight: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hide_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_names: Option<Vec<String>>,
    consumers: Vec<Consumer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acl: Option<Acl>,
}

#[derive(Serialize, Default)]
struct Consumer {
    username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    jwt_secrets: Vec<JwtSecret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keyauth_credentials: Vec<KeyAuth>,
}

#[derive(Serialize)]
struct JwtSecret {
    key: String,
    algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    secret_is_base64: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rsa_public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

#[derive(Serialize)]
struct KeyAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    key_sha256: String,
}

#[derive(Serialize)]
struct Acl {
    #[serde(skip_serializing_if = "Option::is_none")]
    allow: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hide_groups_header: bool,
}

/// A plugin instance found in the file: its name, where it applies, its config.
struct Plugin {
    name: String,
    scope: String,
    global: bool,
    enabled: bool,
    config: Y,
}

fn s(v: &Y, k: &str) -> Option<String> {
    match v.get(k)? {
        Y::String(s) => Some(s.clone()),
        Y::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn seq<'a>(v: &'a Y, k: &str) -> impl Iterator<Item = &'a Y> {
    v.get(k).and_then(Y::as_sequence).into_iter().flatten()
}

fn strings(v: &Y, k: &str) -> Option<Vec<String>> {
    let list = v.get(k)?;
    if list.is_null() {
        return None;
    }
    Some(
        list.as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|x| match x {
                Y::String(s) => Some(s.clone()),
                Y::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
    )
}

fn boolean(v: &Y, k: &str) -> Option<bool> {
    v.get(k).and_then(Y::as_bool)
}

fn name_of(v: &Y, i: usize) -> String {
    s(v, "name")
        .map(|n| format!("'{n}'"))
        .unwrap_or_else(|| format!("#{i}"))
}

/// Every plugin of the file with its scope: top level (global unless it names a service,
/// route or consumer), under a service, a route or a consumer.
fn collect_plugins(doc: &Y) -> Vec<Plugin> {
    let mut out = Vec::new();
    let mut add = |p: &Y, scope: String, global: bool| {
        out.push(Plugin {
            name: s(p, "name").unwrap_or_default(),
            scope,
            global,
            enabled: boolean(p, "enabled") != Some(false),
            config: p.get("config").cloned().unwrap_or(Y::Null),
        });
    };
    for p in seq(doc, "plugins") {
        let scoped: Vec<String> = ["service", "route", "consumer", "consumer_group"]
            .iter()
            .filter_map(|k| {
                let v = p.get(*k)?;
                let n = match v {
                    Y::String(s) => s.clone(),
                    other => s(other, "name")
                        .or_else(|| s(other, "id"))
                        .unwrap_or_default(),
                };
                Some(format!("{k} '{n}'"))
            })
            .collect();
        if scoped.is_empty() {
            add(p, "global".into(), true);
        } else {
            add(p, scoped.join(", "), false);
        }
    }
    for (si, svc) in seq(doc, "services").enumerate() {
        let sname = name_of(svc, si);
        for p in seq(svc, "plugins") {
            add(p, format!("service {sname}"), false);
        }
        for (ri, r) in seq(svc, "routes").enumerate() {
            for p in seq(r, "plugins") {
                add(
                    p,
                    format!("route {} of service {sname}", name_of(r, ri)),
                    false,
                );
            }
        }
    }
    for (ri, r) in seq(doc, "routes").enumerate() {
        for p in seq(r, "plugins") {
            add(p, format!("route {}", name_of(r, ri)), false);
        }
    }
    for (ci, c) in seq(doc, "consumers").enumerate() {
        let cname = s(c, "username").unwrap_or_else(|| format!("#{ci}"));
        for p in seq(c, "plugins") {
            add(p, format!("consumer '{cname}'"), false);
        }
    }
    out
}

/// The notes: what was changed or could not be converted.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn add(&mut self, n: impl Into<String>) {
        self.0.push(n.into());
    }
}

/// The one instance of a plugin to convert: the global one, else the only one; other
/// instances are notes.
fn choose<'a>(plugins: &'a [Plugin], name: &str, notes: &mut Notes) -> Option<&'a Plugin> {
    for p in plugins.iter().filter(|p| p.name == name && !p.enabled) {
        notes.add(format!(
            "not converted: the disabled {name} plugin on {}",
            p.scope
        ));
    }
    let plugins: Vec<&Plugin> = plugins.iter().filter(|p| p.enabled).collect();
    let all: Vec<&Plugin> = plugins
        .iter()
        .copied()
        .filter(|p| p.name == name && !p.scope.starts_with("consumer"))
        .collect();
    for p in plugins
        .iter()
        .filter(|p| p.name == name && p.scope.starts_with("consumer"))
    {
        notes.add(format!(
            "not converted: the {name} plugin on {}: Kong does not scope {name} to consumers",
            p.scope
        ));
    }
    let chosen = all
        .iter()
        .find(|p| p.global)
        .or_else(|| all.first())
        .copied()?;
    if !chosen.global {
        notes.add(format!(
            "changed: the {name} plugin is scoped to {}; Bouncer's configuration applies to the \
             filter chain it is attached to: attach that chain there",
            chosen.scope
        ));
    }
    for p in all.iter().filter(|p| !std::ptr::eq(**p, chosen)) {
        if p.config == chosen.config {
            notes.add(format!(
                "the {name} plugin on {} has the same config as on {}: one filter chain per \
                 scope with this configuration",
                p.scope, chosen.scope
            ));
        } else {
            notes.add(format!(
                "not converted: the {name} plugin on {} (its config differs from the one on {} \
                 that was converted): run import-kong on a file with that scope's plugins for \
                 its own filter chain",
                p.scope, chosen.scope
            ));
        }
    }
    Some(chosen)
}

/// Config keys a plugin has that the converter knows; others are notes.
fn unknown_keys(p: &Plugin, known: &[&str], notes: &mut Notes) {
    if let Some(map) = p.config.as_mapping() {
        for (k, v) in map {
            let Some(k) = k.as_str() else { continue };
            let unset = v.is_null()
                || v.as_bool() == Some(false)
                || v.as_sequence().is_some_and(|s| s.is_empty());
            if !known.contains(&k) && !unset {
                notes.add(format!(
                    "not converted: {}.config.{k} (on {}): Bouncer has no such option",
                    p.name, p.scope
                ));
            }
        }
    }
}

/// A consumer reference (username or id) as a username.
fn consumer_ref(consumers: &[(Consumer, Option<String>)], r: &str) -> Option<String> {
    consumers
        .iter()
        .find(|(c, kong_id)| c.username == r || kong_id.as_deref() == Some(r))
        .map(|(c, _)| c.username.clone())
}

struct Counts {
    hashed: usize,
    keys_without_id: usize,
}

fn convert_jwt_secret(
    j: &Y,
    who: &str,
    secret_is_base64: bool,
    notes: &mut Notes,
) -> Option<JwtSecret> {
    let Some(key) = s(j, "key") else {
        notes.add(format!(
            "not converted: a jwt_secret of consumer '{who}' without `key` (Kong generated it; \
             export it with `deck gateway dump`)"
        ));
        return None;
    };
    let algorithm = s(j, "algorithm").unwrap_or_else(|| "HS256".into());
    let mut out = JwtSecret {
        key: key.clone(),
        algorithm: algorithm.clone(),
        secret: None,
        secret_is_base64: false,
        rsa_public_key: None,
        public_key: None,
    };
    match algorithm.as_str() {
        "HS256" | "HS384" | "HS512" => {
            let Some(secret) = s(j, "secret") else {
                notes.add(format!(
                    "not converted: jwt_secret '{key}' of '{who}' has no `secret` (Kong generated \
                     it; export it with `deck gateway dump`)"
                ));
                return None;
            };
            out.secret = Some(secret);
            out.secret_is_base64 = secret_is_base64;
        }
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA" => {
            let Some(pem) = s(j, "rsa_public_key") else {
                notes.add(format!(
                    "not converted: jwt_secret '{key}' of '{who}' ({algorithm}) has no \
                     rsa_public_key"
                ));
                return None;
            };
            if algorithm.starts_with("ES") || algorithm == "EdDSA" {
                out.public_key = Some(pem);
            } else {
                out.rsa_public_key = Some(pem);
            }
        }
        other => {
            notes.add(format!(
                "not converted: jwt_secret '{key}' of '{who}': algorithm {other} is not \
                 supported by Bouncer (tokens naming it get 401 No credentials found)"
            ));
            return None;
        }
    }
    Some(out)
}

/// The conversion: the configuration and the notes.
fn convert(doc: &Y, notes: &mut Notes) -> Out {
    let plugins = collect_plugins(doc);
    let mut out = Out::default();

    // Plugin settings that affect credentials.
    let jwt = choose(&plugins, "jwt", notes);
    let key_auth = choose(&plugins, "key-auth", notes);
    let acl = choose(&plugins, "acl", notes);
    let jwt_base64 = jwt
        .and_then(|p| boolean(&p.config, "secret_is_base64"))
        .unwrap_or(false);

    // Consumers, with Kong's id kept beside each for references.
    let mut consumers: Vec<(Consumer, Option<String>)> = Vec::new();
    let mut counts = Counts {
        hashed: 0,
        keys_without_id: 0,
    };
    let mut without_id = Vec::new();
    for (ci, c) in seq(doc, "consumers").enumerate() {
        let kong_id = s(c, "id");
        let custom_id = s(c, "custom_id");
        let username = match (s(c, "username"), &custom_id, &kong_id) {
            (Some(u), _, _) => u,
            (None, Some(cid), _) => {
                notes.add(format!(
                    "changed: consumer #{ci} has no username: its custom_id '{cid}' is its \
                     username (Bouncer requires one)"
                ));
                cid.clone()
            }
            (None, None, Some(id)) => {
                notes.add(format!(
                    "changed: consumer #{ci} has no username: its id '{id}' is its username"
                ));
                id.clone()
            }
            (None, None, None) => {
                notes.add(format!(
                    "not converted: consumer #{ci} has neither username, custom_id nor id"
                ));
                continue;
            }
        };
        if kong_id.is_none() {
            without_id.push(username.clone());
        }
        let mut groups: Vec<String> = Vec::new();
        for a in seq(c, "acls") {
            if let Some(g) = s(a, "group") {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        let mut consumer = Consumer {
            username: username.clone(),
            id: kong_id.clone(),
            custom_id,
            groups,
            ..Consumer::default()
        };
        for j in seq(c, "jwt_secrets") {
            if let Some(j) = convert_jwt_secret(j, &username, jwt_base64, notes) {
                consumer.jwt_secrets.push(j);
            }
        }
        for k in seq(c, "keyauth_credentials") {
            push_key(&mut consumer, k, &mut counts, notes);
        }
        for other in [
            "basicauth_credentials",
            "hmacauth_credentials",
            "oauth2_credentials",
            "mtls_auth_credentials",
        ] {
            let n = seq(c, other).count();
            if n > 0 {
                notes.add(format!(
                    "not converted: {n} {other} of consumer '{username}' (Bouncer takes JWTs \
                     and API keys only)"
                ));
            }
        }
        if seq(c, "groups").count() > 0 {
            notes.add(format!(
                "not converted: consumer '{username}' is in Kong consumer groups (no such \
                 concept in Bouncer; ACL groups are converted)"
            ));
        }
        consumers.push((consumer, kong_id));
    }
    // Top-level credentials naming their consumer.
    for (field, kind) in [
        ("jwt_secrets", 0u8),
        ("keyauth_credentials", 1),
        ("acls", 2),
    ] {
        for (i, e) in seq(doc, field).enumerate() {
            let r = match e.get("consumer") {
                Some(Y::String(r)) => Some(r.clone()),
                Some(m) => s(m, "username").or_else(|| s(m, "id")),
                None => None,
            };
            let Some(username) = r.as_deref().and_then(|r| consumer_ref(&consumers, r)) else {
                notes.add(format!(
                    "not converted: {field}[{i}] names no consumer of the file"
                ));
                continue;
            };
            let Some((c, _)) = consumers.iter_mut().find(|(c, _)| c.username == username) else {
                continue;
            };
            match kind {
                0 => {
                    if let Some(j) = convert_jwt_secret(e, &username, jwt_base64, notes) {
                        c.jwt_secrets.push(j);
                    }
                }
                1 => push_key(c, e, &mut counts, notes),
                _ => {
                    if let Some(g) = s(e, "group") {
                        if !c.groups.contains(&g) {
                            c.groups.push(g);
                        }
                    }
                }
            }
        }
    }
    if seq(doc, "consumer_groups").count() > 0 {
        notes.add("not converted: consumer_groups (no such concept in Bouncer)");
    }
    if !without_id.is_empty() {
        notes.add(format!(
            "changed: {} consumers have no id in the file ({}): Kong generated a UUID for \
             X-Consumer-ID; Bouncer sends the username (set `id` to keep Kong's)",
            without_id.len(),
            without_id.join(", ")
        ));
    }
    if counts.hashed > 0 {
        notes.add(format!(
            "changed: {} plaintext API keys hashed to key_sha256 (the output holds no key; keep \
             the decK file as secret as before)",
            counts.hashed
        ));
    }
    if counts.keys_without_id > 0 {
        notes.add(format!(
            "changed: {} API keys have no id: Kong sent its generated id as \
             X-Credential-Identifier; Bouncer sends none for them",
            counts.keys_without_id
        ));
    }

    // The jwt plugin.
    let has_jwt_secrets = consumers.iter().any(|(c, _)| !c.jwt_secrets.is_empty());
    let has_keys = consumers
        .iter()
        .any(|(c, _)| !c.keyauth_credentials.is_empty());
    let mut anonymous: Vec<(String, Option<String>)> = Vec::new();
    let mut preflight: Vec<(String, bool)> = Vec::new();
    match jwt {
        Some(p) => {
            let c = &p.config;
            out.uri_param_names = strings(c, "uri_param_names");
            out.cookie_names = strings(c, "cookie_names").filter(|v| !v.is_empty());
            out.header_names = strings(c, "header_names")
                .map(|v| v.into_iter().map(|h| h.to_ascii_lowercase()).collect());
            out.key_claim_name = s(c, "key_claim_name").filter(|k| k != "iss");
            let claims = strings(c, "claims_to_verify").unwrap_or_default();
            if claims.is_empty() {
                notes.add(
                    "kept: the jwt plugin verifies no claims (claims_to_verify unset), so \
                     claims_to_verify is [] (Bouncer's default is [\"exp\"]: add it to reject \
                     tokens without an unexpired exp)",
                );
            }
            out.claims_to_verify = Some(claims);
            // As written (86400 stays an integer).
            out.maximum_expiration = c
                .get("maximum_expiration")
                .filter(|m| m.as_f64().is_some_and(|m| m > 0.0))
                .and_then(|m| serde_json::to_value(m).ok());
            if jwt_base64 {
                notes.add(
                    "changed: jwt.config.secret_is_base64 is set on each HS credential \
                     (per credential in Bouncer)",
                );
            }
            if let Some(r) = s(c, "realm") {
                out.realm = Some(r);
            }
            anonymous.push(("jwt".into(), s(c, "anonymous")));
            preflight.push(("jwt".into(), boolean(c, "run_on_preflight").unwrap_or(true)));
            unknown_keys(
                p,
                &[
                    "uri_param_names",
                    "cookie_names",
                    "header_names",
                    "claims_to_verify",
                    "key_claim_name",
                    "secret_is_base64",
                    "maximum_expiration",
                    "run_on_preflight",
                    "anonymous",
                    "realm",
                ],
                notes,
            );
        }
        None if has_jwt_secrets => notes.add(
            "changed: the file has jwt_secrets but no jwt plugin: Bouncer accepts these \
             consumers' JWTs (remove the jwt_secrets if that is not wanted)",
        ),
        None => {}
    }

    // The key-auth plugin.
    match key_auth {
        Some(p) => {
            let c = &p.config;
            if let Some(names) = strings(c, "key_names") {
                out.key_names = Some(names.into_iter().map(|h| h.to_ascii_lowercase()).collect());
            }
            if boolean(c, "key_in_header") == Some(false)
                || boolean(c, "key_in_query") == Some(false)
            {
                notes.add(
                    "changed: key-auth.config.key_in_header / key_in_query = false: Bouncer reads \
                     API keys from both headers and query parameters",
                );
            }
            if boolean(c, "key_in_body") == Some(true) {
                notes.add(
                    "not converted: key-auth.config.key_in_body: Bouncer does not read keys from \
                     the body (such requests get 401)",
                );
            }
            if boolean(c, "hide_credentials") == Some(true) {
                out.hide_credentials = Some(true);
            }
            if let Some(r) = s(c, "realm") {
                if out.realm.as_ref().is_some_and(|o| o != &r) {
                    notes.add(format!(
                        "changed: key-auth.config.realm '{r}' differs from jwt's: jwt's is kept"
                    ));
                } else {
                    out.realm = Some(r);
                }
            }
            anonymous.push(("key-auth".into(), s(c, "anonymous")));
            preflight.push((
                "key-auth".into(),
                boolean(c, "run_on_preflight").unwrap_or(true),
            ));
            unknown_keys(
                p,
                &[
                    "key_names",
                    "key_in_header",
                    "key_in_query",
                    "key_in_body",
                    "hide_credentials",
                    "anonymous",
                    "run_on_preflight",
                    "realm",
                ],
                notes,
            );
        }
        None if has_keys => notes.add(
            "changed: the file has keyauth_credentials but no key-auth plugin: Bouncer accepts \
             these API keys (remove them if that is not wanted)",
        ),
        None => {}
    }
    let overlap = match (jwt, key_auth) {
        (Some(j), Some(k)) => j.global || k.global || j.scope == k.scope,
        _ => false,
    };
    if let (Some(j), Some(k), false) = (jwt, key_auth, overlap) {
        notes.add(format!(
            "changed: jwt ({}) and key-auth ({}) apply to different scopes in Kong: the one \
             Bouncer configuration takes JWTs and API keys wherever it is attached",
            j.scope, k.scope
        ));
    }
    if out.hide_credentials == Some(true) && jwt.is_some() {
        notes.add(
            "changed: key-auth.config.hide_credentials: Bouncer's hide_credentials hides JWTs \
             too (Kong's jwt plugin has no such option and forwards them)",
        );
    }
    if overlap && anonymous.iter().any(|(_, a)| a.is_none()) {
        notes.add(
            "changed: jwt and key-auth are both enabled without `anonymous` on both: Kong then \
             requires a JWT AND an API key on every request; Bouncer takes either one (a \
             request carrying both gets 401 Multiple tokens provided)",
        );
    }

    // anonymous: Kong's logical OR needs it on every authentication plugin; Kong names the
    // consumer by id or username.
    let named: Vec<&String> = anonymous.iter().filter_map(|(_, a)| a.as_ref()).collect();
    if !named.is_empty() {
        let resolved: Vec<Option<String>> =
            named.iter().map(|a| consumer_ref(&consumers, a)).collect();
        match resolved.first() {
            Some(Some(u))
                if named.len() == anonymous.len()
                    && resolved.iter().all(|r| r.as_ref() == Some(u)) =>
            {
                out.anonymous = Some(u.clone());
            }
            Some(None) => notes.add(format!(
                "not converted: anonymous '{}' is no consumer of the file (requests without \
                 credentials get 401)",
                named.first().map(|s| s.as_str()).unwrap_or_default()
            )),
            _ => notes.add(
                "not converted: `anonymous` is not the same consumer on every authentication \
                 plugin: left out (requests without credentials get 401)",
            ),
        }
    }
    if preflight.iter().any(|(_, r)| *r) && preflight.iter().any(|(_, r)| !*r) {
        notes.add(
            "changed: run_on_preflight differs between jwt and key-auth: true is kept \
             (preflight requests are authenticated)",
        );
        out.run_on_preflight = None;
    } else if preflight.first().is_some_and(|(_, r)| !*r) {
        out.run_on_preflight = Some(false);
    }

    // The acl plugin.
    if let Some(p) = acl {
        let c = &p.config;
        let allow = strings(c, "allow").or_else(|| strings(c, "whitelist"));
        let deny = strings(c, "deny").or_else(|| strings(c, "blacklist"));
        if c.get("whitelist").is_some() || c.get("blacklist").is_some() {
            notes.add("changed: acl whitelist / blacklist (Kong < 2.1) became allow / deny");
        }
        match (
            allow.filter(|a| !a.is_empty()),
            deny.filter(|d| !d.is_empty()),
        ) {
            (Some(a), None) => {
                out.acl = Some(Acl {
                    allow: Some(a),
                    deny: None,
                    hide_groups_header: boolean(c, "hide_groups_header").unwrap_or(false),
                })
            }
            (None, Some(d)) => {
                out.acl = Some(Acl {
                    allow: None,
                    deny: Some(d),
                    hide_groups_header: boolean(c, "hide_groups_header").unwrap_or(false),
                })
            }
            _ => notes.add(format!(
                "not converted: the acl plugin on {} needs exactly one of allow and deny",
                p.scope
            )),
        }
        for opt in ["always_use_authenticated_groups", "include_consumer_groups"] {
            if boolean(c, opt) == Some(true) {
                notes.add(format!(
                    "not converted: acl.config.{opt}: Bouncer checks the groups of the \
                     authenticated consumer (or the anonymous one)"
                ));
            }
        }
        unknown_keys(
            p,
            &[
                "allow",
                "deny",
                "whitelist",
                "blacklist",
                "hide_groups_header",
                "always_use_authenticated_groups",
                "include_consumer_groups",
            ],
            notes,
        );
    } else if consumers.iter().any(|(c, _)| !c.groups.is_empty()) {
        notes.add(
            "changed: no acl plugin: the consumers' groups are sent upstream as \
             X-Consumer-Groups (Kong's acl plugin sets that header)",
        );
    }

    // Plugins the converter does not take.
    let mut others: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &plugins {
        if p.enabled && !["jwt", "key-auth", "acl"].contains(&p.name.as_str()) {
            others
                .entry(p.name.clone())
                .or_default()
                .push(p.scope.clone());
        }
    }
    for (name, scopes) in others {
        notes.add(format!(
            "not converted: plugin {name} ({}): keep it in Kong beside the filter chain",
            scopes.join("; ")
        ));
    }

    out.consumers = consumers.into_iter().map(|(c, _)| c).collect();
    out
}

fn push_key(c: &mut Consumer, k: &Y, counts: &mut Counts, notes: &mut Notes) {
    let Some(key) = s(k, "key") else {
        notes.add(format!(
            "not converted: a keyauth_credential of '{}' without `key` (Kong generated it; \
             export it with `deck gateway dump`)",
            c.username
        ));
        return;
    };
    let id = s(k, "id");
    if id.is_none() {
        counts.keys_without_id += 1;
    }
    if k.get("ttl").and_then(Y::as_u64).is_some_and(|t| t > 0) {
        notes.add(format!(
            "changed: an API key of '{}' has a ttl: Bouncer's keys do not expire",
            c.username
        ));
    }
    counts.hashed += 1;
    c.keyauth_credentials.push(KeyAuth {
        id,
        key_sha256: key_sha256(key.as_bytes()),
    });
}

pub fn run(file: &Path, output: Option<&Path>) -> Result<(), Failure> {
    let text = read_text(file)?;
    let doc: Y = serde_yaml::from_str(&text)
        .map_err(|e| Failure::io(format!("{}: not YAML or JSON: {e}", file.display())))?;
    if !doc.is_mapping() {
        return Err(Failure::refused(format!(
            "{}: not a Kong declarative file (no top-level mapping)",
            file.display()
        )));
    }
    if doc.get("_format_version").is_none() {
        eprintln!(
            "bouncer: note: {} has no _format_version: read as a declarative file anyway",
            file.display()
        );
    }
    let mut notes = Notes::default();
    let out = convert(&doc, &mut notes);
    // Serialised from the structs, so fields keep their documented order.
    let text = serde_json::to_string_pretty(&out)
        .map_err(|e| Failure::refused(format!("the conversion failed: {e}")))?;
    for n in &notes.0 {
        eprintln!("- {n}");
    }
    // What is written must load in the filter.
    Policy::from_json(&text).map_err(|e| {
        Failure::refused(format!(
            "the converted configuration does not pass the filter's validation: {e}"
        ))
    })?;
    match output {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .map_err(|e| Failure::io(format!("{}: {e}", path.display())))?,
        None => println!("{text}"),
    }
    eprintln!(
        "bouncer: converted {} consumers; {} notes above",
        out.consumers.len(),
        notes.0.len()
    );
    Ok(())
}
