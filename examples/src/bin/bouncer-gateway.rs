//! A local gateway for trying Bouncer without Kong or Envoy: it listens on 127.0.0.1, runs every
//! request through the real `bouncer.wasm` in the wasmtime harness (Kong's host behaviour), sends
//! the filter's callouts over real HTTP, and forwards allowed requests to an upstream.
//!
//! With no `--upstream`, a built-in echo upstream answers with what it received (so the identity
//! headers can be seen); with `--authz-policy`, the reference authorization service (Rego
//! evaluated by regorus, OPA's data API) runs too.
//!
//! Usage: `bouncer-gateway --config examples/gateway-config.json
//!          [--listen 127.0.0.1:8000] [--upstream HOST:PORT]
//!          [--authz-policy examples/policies/rbac.rego ... --authz-data FILE
//!           --authz-listen 127.0.0.1:8181]
//!          [--profile kong|envoy] [--cluster NAME=HOST:PORT ...] [--wasm PATH] [--demo-tokens]`
//! This is a demonstration and test tool; production is Kong or Envoy.

use bouncer_examples::authz::Service;
use bouncer_examples::http::{self, Message};
use bouncer_harness::{CalloutReply, Harness, Host, Profile, Request};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    config: String,
    listen: String,
    upstream: Option<String>,
    authz_policies: Vec<String>,
    authz_data: Option<String>,
    authz_listen: String,
    profile: Profile,
    clusters: HashMap<String, String>,
    wasm: Option<String>,
    demo_tokens: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bouncer-gateway --config FILE [--listen ADDR] [--upstream ADDR] \
         [--authz-policy FILE]... [--authz-data FILE] [--authz-listen ADDR] [--profile kong|envoy] \
         [--cluster NAME=ADDR]... [--wasm PATH] [--demo-tokens]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        config: String::new(),
        listen: "127.0.0.1:8000".into(),
        upstream: None,
        authz_policies: Vec::new(),
        authz_data: None,
        authz_listen: "127.0.0.1:8181".into(),
        profile: Profile::Kong,
        clusters: HashMap::new(),
        wasm: None,
        demo_tokens: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--config" => a.config = val(),
            "--listen" => a.listen = val(),
            "--upstream" => a.upstream = Some(val()),
            "--authz-policy" => a.authz_policies.push(val()),
            "--authz-data" => a.authz_data = Some(val()),
            "--authz-listen" => a.authz_listen = val(),
            "--profile" => {
                a.profile = match val().as_str() {
                    "kong" => Profile::Kong,
                    "envoy" => Profile::Envoy,
                    _ => usage(),
                }
            }
            "--cluster" => {
                let v = val();
                let (name, addr) = v.split_once('=').unwrap_or_else(|| usage());
                a.clusters.insert(name.to_owned(), addr.to_owned());
            }
            "--wasm" => a.wasm = Some(val()),
            "--demo-tokens" => a.demo_tokens = true,
            _ => usage(),
        }
    }
    if a.config.is_empty() {
        usage();
    }
    a
}

fn bind(addr: &str) -> TcpListener {
    TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: cannot listen on {addr}: {e}");
        std::process::exit(1)
    })
}

/// The built-in echo upstream: answers with the request it received, as JSON.
fn start_echo() -> String {
    let listener = bind("127.0.0.1:0");
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    std::thread::spawn(move || {
        http::serve(listener, |req| {
            let headers: serde_json::Map<String, Value> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            http::json_response(
                200,
                &json!({"upstream": "echo", "method": req.first, "path": req.second, "headers": headers}),
            )
        })
    });
    addr
}

fn start_authz(policies: &[String], data: Option<&str>, listen: &str) {
    let mut service = Service::from_files(policies, data).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: {e}");
        std::process::exit(1)
    });
    let listener = bind(listen);
    std::thread::spawn(move || {
        http::serve(listener, move |req| {
            let a = service.answer(&req.first, &req.second, &req.body);
            http::json_response(a.status, &a.body)
        })
    });
}

/// An HS256 token: the same signing code as `bouncer token` (crates/token).
fn hs256(secret: &str, claims: &Value) -> String {
    bouncer_token::hs256(secret, claims).unwrap_or_default()
}

/// Ready-made curl lines for the demo configuration: signed with its consumers' secrets.
fn print_demo(config: &Value, listen: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secret = |key: &str| -> Option<String> {
        config["consumers"].as_array()?.iter().find_map(|c| {
            c["jwt_secrets"]
                .as_array()?
                .iter()
                .find_map(|s| (s["key"] == key).then(|| s["secret"].as_str().map(str::to_owned))?)
        })
    };
    let (Some(web), Some(acme)) = (secret("web-2026"), secret("acme-2026")) else {
        eprintln!("(no demo tokens: the configuration has no web-2026 / acme-2026 credentials)");
        return;
    };
    let web_token = hs256(
        &web,
        &json!({"iss": "web-2026", "sub": "alice", "iat": now, "exp": now + 3600}),
    );
    let acme_token = hs256(
        &acme,
        &json!({"iss": "acme-2026", "sub": "partner-user-1", "iat": now, "exp": now + 3600}),
    );
    let expired = hs256(
        &web,
        &json!({"iss": "web-2026", "sub": "alice", "exp": now - 60}),
    );
    println!("Bouncer gateway on http://{listen}. Try:\n");
    println!("# 200: the web app's token; the echo upstream shows the X-Consumer-* headers it got");
    println!("curl -i http://{listen}/api/v1/orders -H 'Authorization: Bearer {web_token}'\n");
    println!(
        "# 200: the partner, allowed by the authorization service (x-allowed-fields upstream)"
    );
    println!("curl -i http://{listen}/api/v1/orders/42 -H 'Authorization: Bearer {acme_token}'\n");
    println!("# 401: no credential / an expired token");
    println!("curl -i http://{listen}/api/v1/orders");
    println!("curl -i http://{listen}/api/v1/orders -H 'Authorization: Bearer {expired}'\n");
    println!("# 403: the partner may only GET /api/v1/orders[/id]");
    println!("curl -i -X DELETE http://{listen}/api/v1/orders/42 -H 'Authorization: Bearer {acme_token}'\n");
    println!("# 200: the partner's API key (X-Credential-Identifier: acme-key-1)");
    println!("curl -i http://{listen}/api/v1/orders -H 'apikey: acme-demo-api-key'\n");
    println!("# Your own tokens, for any consumer of a configuration (no Python needed):");
    println!(
        "cargo run -q -p bouncer-cli -- token --config examples/gateway-config.json \\\n    --consumer partner-acme --claims '{{\"sub\": \"partner-user-2\"}}'\n"
    );
    println!("Ready (Ctrl-C stops the gateway).");
}

fn main() {
    let args = parse_args();
    let config_text = std::fs::read_to_string(&args.config).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: {}: {e}", args.config);
        std::process::exit(1)
    });
    let config: Value = serde_json::from_str(&config_text).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: {}: {e}", args.config);
        std::process::exit(1)
    });
    let wasm = args
        .wasm
        .clone()
        .map(Into::into)
        .unwrap_or_else(bouncer_harness::bouncer_wasm_path);
    let harness = Harness::load(&wasm).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: {e} (build it with `make build`)");
        std::process::exit(1)
    });
    if !args.authz_policies.is_empty() {
        start_authz(
            &args.authz_policies,
            args.authz_data.as_deref(),
            &args.authz_listen,
        );
    }
    let upstream = args.upstream.clone().unwrap_or_else(start_echo);

    let host = Host::new(args.profile);
    host.set_time(SystemTime::now());
    for name in args.clusters.keys() {
        host.add_cluster(name);
    }
    let clusters = Arc::new(args.clusters.clone());
    host.set_callout_handler(move |call| {
        let addr = clusters
            .get(&call.upstream)
            .cloned()
            .unwrap_or_else(|| call.upstream.clone());
        let headers: Vec<(String, String)> = call
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .cloned()
            .chain(std::iter::once((
                "host".to_owned(),
                call.authority().to_owned(),
            )))
            .collect();
        match http::request(
            &addr,
            call.method(),
            call.path(),
            &headers,
            &call.body,
            call.timeout,
        ) {
            Ok(resp) => CalloutReply::Ok {
                status: resp.first.parse().unwrap_or(502),
                headers: resp.headers,
                body: resp.body,
            },
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                CalloutReply::Timeout
            }
            Err(_) => CalloutReply::ConnectFailure,
        }
    });
    let mut filter = harness.filter(&host, &config_text).unwrap_or_else(|e| {
        eprintln!("bouncer-gateway: the filter refused the configuration: {e}");
        std::process::exit(1)
    });

    let listener = bind(&args.listen);
    let listen = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen.clone());
    if args.demo_tokens {
        print_demo(&config, &listen);
    } else {
        println!("Bouncer gateway on http://{listen}, upstream {upstream}");
    }
    // Let a script reading our output see it now.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = listener.set_nonblocking(true);
    let mut last_tick = Instant::now();
    loop {
        host.set_time(SystemTime::now());
        if last_tick.elapsed() >= filter.tick_period().unwrap_or(Duration::from_secs(3600)) {
            last_tick = Instant::now();
            if let Err(e) = filter.tick() {
                eprintln!("bouncer-gateway: tick: {e}");
            }
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => continue,
        };
        let _ = stream.set_nonblocking(false);
        serve_one(stream, &mut filter, &upstream);
    }
}

/// One request per connection (`Connection: close`).
fn serve_one(mut s: std::net::TcpStream, filter: &mut bouncer_harness::Filter, upstream: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = s.try_clone() else { return };
    let mut reader = std::io::BufReader::new(clone);
    let (resp, head) = match http::read_request(&mut reader) {
        Ok(req) => {
            let head = req.first.eq_ignore_ascii_case("HEAD");
            (handle(req, filter, upstream), head)
        }
        Err(_) => (
            http::json_response(400, &json!({"message": "Bad request"})),
            false,
        ),
    };
    let _ = http::write_response(&mut s, &resp, head);
}

fn handle(req: Message, filter: &mut bouncer_harness::Filter, upstream: &str) -> Message {
    let mut r = Request::new(&req.first, &req.second);
    for (k, v) in &req.headers {
        if k != "host" && k != "content-length" && k != "connection" {
            r = r.header(k, v);
        }
    }
    if let Some(host) = req.header("host") {
        r = r.header(":authority", host);
    }
    let out = match filter.run(r) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bouncer-gateway: the filter failed: {e}");
            return http::json_response(500, &json!({"message": "An unexpected error occurred"}));
        }
    };
    if let Some(local) = out.local_response() {
        return Message {
            first: local.status.to_string(),
            second: String::new(),
            headers: local.headers.to_vec(),
            body: local.body.clone(),
        };
    }
    if !out.is_allowed() {
        return http::json_response(504, &json!({"message": "The filter did not finish"}));
    }
    let path = out.request_headers.get(":path").unwrap_or("/").to_owned();
    // Kong semantics: a blanked header counts as absent; nginx sends no empty header.
    let headers: Vec<(String, String)> = out
        .request_headers
        .iter()
        .filter(|(k, v)| !k.starts_with(':') && !v.is_empty())
        .cloned()
        .collect();
    match http::request(
        upstream,
        &req.first,
        &path,
        &headers,
        &req.body,
        Duration::from_secs(30),
    ) {
        Ok(resp) => resp,
        Err(e) => http::json_response(502, &json!({"message": format!("upstream: {e}")})),
    }
}
