//! The shipped Kong and Envoy example configurations load into the .wasm and serve requests.

use crate::support::*;
use bouncer_harness::Profile;
use serde_json::Value;

fn configs() -> Vec<(Profile, Value)> {
    let mut out = Vec::new();
    let kong: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kong/kong.yml")).unwrap(),
    )
    .unwrap();
    let kong: Value = serde_json::to_value(kong).unwrap();
    // filter_chains may sit at the top level or under services and routes.
    let mut stack = vec![kong];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(chains)) = m.get("filter_chains") {
                    for chain in chains {
                        for filt in chain["filters"].as_array().into_iter().flatten() {
                            if filt["name"] == "bouncer" {
                                let cfg = match &filt["config"] {
                                    Value::String(s) => serde_json::from_str(s).unwrap(),
                                    other => other.clone(),
                                };
                                out.push((Profile::Kong, cfg));
                            }
                        }
                    }
                }
                stack.extend(
                    m.into_iter()
                        .filter(|(k, _)| k != "filter_chains")
                        .map(|(_, v)| v),
                );
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    let envoy: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/envoy.yaml")).unwrap(),
    )
    .unwrap();
    let envoy: Value = serde_json::to_value(envoy).unwrap();
    let mut stack = vec![envoy];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if m.get("@type").and_then(Value::as_str)
                    == Some("type.googleapis.com/google.protobuf.StringValue")
                {
                    if let Some(Value::String(s)) = m.get("value") {
                        out.push((Profile::Envoy, serde_json::from_str(s).unwrap()));
                    }
                }
                stack.extend(m.into_iter().map(|(_, v)| v));
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[test]
fn shipped_configs_load_and_serve() {
    let configs = configs();
    assert!(
        configs.iter().any(|(p, _)| *p == Profile::Kong),
        "no Kong filter config found"
    );
    assert!(
        configs.iter().any(|(p, _)| *p == Profile::Envoy),
        "no Envoy filter config found"
    );
    for (profile, cfg) in configs {
        let h = host(profile);
        h.add_cluster("orders_api");
        h.add_cluster("idp_jwks");
        h.set_callout_handler(|_| bouncer_harness::CalloutReply::json(200, r#"{"result": true}"#));
        let mut f = filter(&h, &cfg);
        let out = run(&mut f, get("/"));
        assert!(
            matches!(out.status(), Some(401) | None),
            "{profile:?}: {out:?}"
        );
        let out = run(&mut f, get("/").header("authorization", "Bearer a.b.c"));
        assert!(
            out.is_allowed() || out.status() == Some(401),
            "{profile:?}: {out:?}"
        );
    }
}
