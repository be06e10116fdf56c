//! `make run` as a test: start the local gateway with the demo configuration and the reference
//! authorization service, then run the curl lines it prints and check each gives the status its
//! comment announces. Needs the release .wasm (`make build`).

use bouncer_examples::http;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Turn one printed curl line into (method, path, headers).
fn parse_curl(line: &str) -> (String, String, Vec<(String, String)>) {
    let mut method = "GET".to_owned();
    let mut url = String::new();
    let mut headers = Vec::new();
    let mut words = line.split_whitespace().skip(1).peekable();
    let mut rest = String::new();
    while let Some(w) = words.next() {
        match w {
            "-i" => {}
            "-X" => method = words.next().unwrap().to_owned(),
            "-H" => {
                // The header is quoted and may contain spaces: read to the closing quote.
                let mut h = words.next().unwrap().trim_start_matches('\'').to_owned();
                while !h.ends_with('\'') {
                    h.push(' ');
                    h.push_str(words.next().unwrap());
                }
                let h = h.trim_end_matches('\'');
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            u if u.starts_with("http://") => url = u.to_owned(),
            other => rest.push_str(other),
        }
    }
    assert!(rest.is_empty(), "unparsed curl words: {rest}");
    let path = url
        .trim_start_matches("http://")
        .split_once('/')
        .map(|(_, p)| format!("/{p}"))
        .unwrap();
    (method, path, headers)
}

#[test]
fn make_run_demo_gives_the_statuses_it_prints() {
    let wasm = bouncer_harness::bouncer_wasm_path();
    assert!(
        wasm.exists(),
        "build the filter first (make build): {}",
        wasm.display()
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let authz_port = free_port();
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/examples/gateway-config.json")).unwrap(),
    )
    .unwrap();
    config["authz"]["upstream"] = format!("127.0.0.1:{authz_port}").into();
    let cfg_path = std::env::temp_dir().join(format!("bouncer-gw-{}.json", std::process::id()));
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bouncer-gateway"))
        .args([
            "--config",
            cfg_path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--authz-policy",
            &format!("{root}/examples/policies/rbac.rego"),
            "--authz-data",
            &format!("{root}/examples/policies/rbac-data.json"),
        ])
        .args([
            "--authz-listen",
            &format!("127.0.0.1:{authz_port}"),
            "--demo-tokens",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut expected = None;
    let mut checks = Vec::new();
    let start = Instant::now();
    let mut line = String::new();
    while start.elapsed() < Duration::from_secs(120) {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim();
        if let Some(c) = l.strip_prefix("# ") {
            expected = c
                .split(':')
                .next()
                .and_then(|s| s.trim().parse::<u16>().ok());
        } else if l.starts_with("curl ") {
            let url = l
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap();
            let addr = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            checks.push((expected.unwrap(), addr, parse_curl(l)));
        } else if l.starts_with("Ready") {
            break;
        }
    }
    assert_eq!(
        checks.len(),
        6,
        "the gateway printed {} curl lines",
        checks.len()
    );
    let head_check = checks
        .iter()
        .find(|(want, _, (method, _, _))| *want == 200 && method == "GET")
        .cloned();
    for (want, addr, (method, path, headers)) in checks {
        let resp = http::request(
            &addr,
            &method,
            &path,
            &headers,
            b"",
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            resp.first,
            want.to_string(),
            "{method} {path}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        if want == 200 {
            let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            assert!(body["headers"]["x-consumer-username"].is_string(), "{body}");
            // The partner went through the authorization service: rbac.rego's fields.
            if body["headers"]["x-consumer-username"] == "partner-acme" {
                assert_eq!(
                    body["headers"]["x-allowed-fields"], "id,status,total",
                    "{body}"
                );
            }
        }
    }
    // HEAD: allowed by the filter, answered with the upstream's length and no body (the
    // gateway once waited for a body a HEAD answer never has, and answered 502).
    let (_, addr, (_, path, headers)) = &head_check.expect("a 200 curl line");
    let resp = http::request(addr, "HEAD", path, headers, b"", Duration::from_secs(60)).unwrap();
    assert_eq!(resp.first, "200", "{:?}", resp);
    assert!(resp.body.is_empty());
    assert!(
        resp.header("content-length").is_some_and(|l| l != "0"),
        "{resp:?}"
    );
    let _ = std::fs::remove_file(cfg_path);
}
