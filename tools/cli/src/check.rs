//! `bouncer check`: the filter's own validation (`Policy::from_json`, what `on_configure`
//! runs) on a configuration file, or on every `bouncer` filter of a Kong declarative file.

use crate::{read_text, Failure};
use bouncer::config::{Acl, KeySource, Policy};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A one-screen summary of a compiled configuration.
pub fn summary(p: &Policy) -> Vec<String> {
    let mut lines = Vec::new();
    let anonymous = p
        .anonymous
        .and_then(|i| p.consumers.get(i))
        .map(|c| format!(" (anonymous: {})", c.username))
        .unwrap_or_default();
    lines.push(format!("consumers: {}{anonymous}", p.consumers.len()));
    let mut algs: BTreeMap<&str, usize> = BTreeMap::new();
    for c in p.jwt_credentials.iter() {
        *algs.entry(c.alg.name()).or_default() += 1;
    }
    let algs: Vec<String> = algs.iter().map(|(a, n)| format!("{a} {n}")).collect();
    let algs = if algs.is_empty() {
        String::new()
    } else {
        format!(" ({})", algs.join(", "))
    };
    lines.push(format!(
        "jwt credentials: {}{algs}",
        p.jwt_credentials.len()
    ));
    lines.push(format!("api keys: {}", p.api_keys.len()));
    let remote = p
        .providers
        .iter()
        .filter(|pr| matches!(pr.source, KeySource::Remote(_)))
        .count();
    lines.push(format!(
        "jwks providers: {} ({remote} fetched, {} local)",
        p.providers.len(),
        p.providers.len().saturating_sub(remote)
    ));
    lines.push(match &p.acl {
        None => "acl: none".to_owned(),
        Some(Acl::Allow(g)) => format!("acl: allow {}", g.join(", ")),
        Some(Acl::Deny(g)) => format!("acl: deny {}", g.join(", ")),
    });
    let restricted = p
        .consumers
        .iter()
        .filter(|c| c.routes.is_restricted())
        .count();
    lines.push(format!("consumers with route rules: {restricted}"));
    lines.push(format!(
        "local permissions: {}",
        if p.permissions.is_some() { "yes" } else { "no" }
    ));
    lines.push(match &p.authz {
        None => "authorization callout: none".to_owned(),
        Some(a) => format!(
            "authorization callout: POST {} on {} ({} input, timeout {} ms)",
            a.path,
            a.upstream,
            match a.input_format {
                bouncer::config::InputFormat::Bouncer => "bouncer",
                bouncer::config::InputFormat::OpaEnvoy => "opa-envoy",
            },
            a.timeout_ms
        ),
    });
    lines
}

/// Whether the file is read as a Kong declarative file (YAML) rather than a configuration.
fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Every `bouncer` filter configuration of a Kong declarative file, with where it is.
fn kong_filters(doc: &serde_yaml::Value) -> Vec<(String, Result<String, String>)> {
    use serde_yaml::Value as Y;
    let mut out = Vec::new();
    let mut chains = |owner: &str, v: &Y| {
        for (ci, chain) in v
            .get("filter_chains")
            .and_then(Y::as_sequence)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let chain_name = chain
                .get("name")
                .and_then(Y::as_str)
                .map(|n| format!("'{n}'"))
                .unwrap_or_else(|| format!("[{ci}]"));
            for (fi, f) in chain
                .get("filters")
                .and_then(Y::as_sequence)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if f.get("name").and_then(Y::as_str) != Some("bouncer") {
                    continue;
                }
                let at = format!("{owner}filter_chains {chain_name} filters[{fi}]");
                // Kong 3.4 takes the configuration as a JSON string, later versions as an
                // object too; no `config` is the empty configuration.
                let text = match f.get("config") {
                    None | Some(Y::Null) => Ok(String::new()),
                    Some(Y::String(s)) => Ok(s.clone()),
                    Some(other) => serde_json::to_value(other)
                        .map(|v| v.to_string())
                        .map_err(|e| format!("not expressible as JSON: {e}")),
                };
                out.push((at, text));
            }
        }
    };
    chains("", doc);
    let name = |v: &Y, i: usize| {
        v.get("name")
            .and_then(Y::as_str)
            .map(|n| format!("'{n}'"))
            .unwrap_or_else(|| format!("[{i}]"))
    };
    for (si, s) in doc
        .get("services")
        .and_then(Y::as_sequence)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let sname = name(s, si);
        chains(&format!("service {sname} "), s);
        for (ri, r) in s
            .get("routes")
            .and_then(Y::as_sequence)
            .into_iter()
            .flatten()
            .enumerate()
        {
            chains(&format!("service {sname} route {} ", name(r, ri)), r);
        }
    }
    for (ri, r) in doc
        .get("routes")
        .and_then(Y::as_sequence)
        .into_iter()
        .flatten()
        .enumerate()
    {
        chains(&format!("route {} ", name(r, ri)), r);
    }
    out
}

pub fn run(path: &Path) -> Result<(), Failure> {
    let text = read_text(path)?;
    if !is_yaml(path) {
        return match Policy::from_json(&text) {
            Ok(policy) => {
                println!("ok");
                for line in summary(&policy) {
                    println!("  {line}");
                }
                Ok(())
            }
            Err(e) => Err(Failure::refused(format!(
                "{}: invalid configuration: {e}",
                path.display()
            ))),
        };
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| Failure::io(format!("{}: not YAML: {e}", path.display())))?;
    let filters = kong_filters(&doc);
    if filters.is_empty() {
        return Err(Failure::refused(format!(
            "{}: no filter chain with a `bouncer` filter",
            path.display()
        )));
    }
    let mut bad = 0usize;
    for (at, text) in &filters {
        let result = text.clone().and_then(|t| {
            // A string config is taken as it is; an object must be one too.
            if let Ok(Value::String(_)) = serde_json::from_str::<Value>(&t) {
                return Err("the configuration must be a JSON object".to_owned());
            }
            Policy::from_json(&t).map_err(|e| e.to_string())
        });
        match result {
            Ok(policy) => {
                println!("ok: {at}");
                for line in summary(&policy) {
                    println!("  {line}");
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("{}: {at}: invalid configuration: {e}", path.display());
            }
        }
    }
    if bad == 0 {
        Ok(())
    } else {
        Err(Failure::refused(format!(
            "{bad} of {} bouncer filter configurations invalid",
            filters.len()
        )))
    }
}
