//! Self-tests of the harness against testdata/echo-filter (built by build.rs), in both profiles.

use bouncer_harness::{
    CalloutReply, Harness, HarnessError, Host, LogLevel, Profile, Request, RequestState,
};
use std::sync::OnceLock;
use std::time::Duration;

fn echo() -> &'static Harness {
    static ECHO: OnceLock<Harness> = OnceLock::new();
    ECHO.get_or_init(|| Harness::load(env!("ECHO_FILTER_WASM")).expect("echo filter loads"))
}

fn both() -> [Host; 2] {
    [Host::envoy(), Host::kong()]
}

fn edits() -> Request {
    Request::new("GET", "/p?x=1")
        .header("X-A", "old")
        .header("x-a", "old2")
        .header("x-gone", "bye")
        .header("x-gone", "bye2")
        .header("x-set", "x-a=1")
        .header("x-add", "x-b=2")
        .header("x-remove", "x-gone")
}

#[test]
fn envoy_header_edits() {
    let host = Host::envoy();
    let mut f = echo().filter(&host, r#"{"name": "e1"}"#).unwrap();
    let out = f.run(edits()).unwrap();
    assert_eq!(out.state, RequestState::Allowed, "{out:?}");
    let h = &out.request_headers;
    assert_eq!(
        &h[..4].iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        &[":method", ":path", ":authority", ":scheme"]
    );
    assert_eq!(h.get(":authority"), Some("example.com"));
    assert_eq!(h.get_all("x-a"), vec!["1"]);
    assert_eq!(h.get("x-b"), Some("2"));
    assert!(!h.contains("x-gone"));
    assert_eq!(out.header("x-eos"), Some("true"));
    // response phase ran on the upstream response
    let resp = out.response.as_ref().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-echo-response"), Some("200"));
    assert!(out.logged("request 2 with"), "{:?}", out.logs);
    assert!(out.logged("log 2"));
}

#[test]
fn kong_header_edits_as_on_the_wire() {
    let host = Host::kong();
    let mut f = echo().filter(&host, "{}").unwrap();
    let out = f.run(edits()).unwrap();
    let h = &out.request_headers;
    assert_eq!(
        h.get_all("x-a"),
        vec!["1", "old2"],
        "only the first copy is replaced"
    );
    assert_eq!(
        h.get_all("x-gone"),
        vec!["bye", "bye2"],
        "removal has no effect"
    );
    assert_eq!(h.get("x-b"), Some("2"));
    assert_eq!(
        out.header("x-eos"),
        Some("false"),
        "end_of_stream is always false in Kong"
    );

    let out = f
        .run(Request::new("GET", "/").header("x-replace-all", "1"))
        .unwrap();
    assert!(
        !out.request_headers.contains("x-only"),
        "set_http_request_headers has no effect"
    );
    assert!(out.request_headers.contains("x-replace-all"));
}

#[test]
fn envoy_replace_all_headers() {
    let mut f = echo().filter(&Host::envoy(), "{}").unwrap();
    let out = f
        .run(Request::new("GET", "/").header("x-replace-all", "1"))
        .unwrap();
    assert_eq!(out.header(":path"), Some("/replaced"));
    assert_eq!(out.header("x-only"), Some("1"));
    assert!(!out.request_headers.contains("x-replace-all"));
}

#[test]
fn local_response_and_response_phase() {
    for host in both() {
        let mut f = echo().filter(&host, "{}").unwrap();
        let out = f
            .run(Request::new("GET", "/").header("x-deny", "403"))
            .unwrap();
        assert_eq!(out.state, RequestState::LocalResponse);
        let resp = out.local_response().unwrap();
        assert_eq!(resp.status, 403);
        assert_eq!(out.json()["message"], "denied");
        assert_eq!(resp.header("content-type"), Some("application/json"));
        // Kong runs on_http_response_headers for the local response, Envoy does not.
        let seen = resp.header("x-echo-response");
        match host.profile() {
            Profile::Envoy => assert_eq!(seen, None),
            Profile::Kong => assert_eq!(seen, Some("403")),
        }
        assert!(out.logged("log "), "on_log ran: {:?}", out.logs);
    }
}

#[test]
fn request_body_and_upstream_response() {
    let mut f = echo().filter(&Host::envoy(), "{}").unwrap();
    let req = Request::new("POST", "/b").body("hello").upstream_response(
        201,
        &[("server", "up"), ("x-u", "1")],
        "made",
    );
    let out = f.run(req).unwrap();
    assert_eq!(out.header("x-eos"), Some("false"));
    assert!(
        out.logged("request body 5 bytes, eos=true: hello"),
        "{:?}",
        out.logs
    );
    let resp = out.response.unwrap();
    assert_eq!((resp.status, resp.body_str().as_str()), (201, "made"));
    assert_eq!(resp.header("x-u"), Some("1"));
    assert_eq!(
        resp.header("server"),
        None,
        "removed in on_http_response_headers"
    );
}

#[test]
fn config_errors_and_updates() {
    for host in both() {
        let err = echo().filter(&host, r#"{"reject": true}"#).unwrap_err();
        assert!(matches!(err, HarnessError::Config { .. }), "{err}");
        assert!(err.logged("config rejected"), "{err}");

        let mut f = echo().filter(&host, r#"{"name": "one"}"#).unwrap();
        let root = f.root_context_id();
        assert!(f.reconfigure(r#"{"name": "two"}"#).unwrap());
        let out = f
            .run(Request::new("GET", "/").header("x-config-name", ""))
            .unwrap();
        assert_eq!(out.header("x-config-name-value"), Some("two"));
        assert!(!f.reconfigure(r#"{"reject": true}"#).unwrap());
        let out = f
            .run(Request::new("GET", "/").header("x-config-name", ""))
            .unwrap();
        assert_eq!(
            out.header("x-config-name-value"),
            Some("two"),
            "a refused update keeps the previous config"
        );
        match host.profile() {
            Profile::Envoy => assert_eq!(f.root_context_id(), root),
            Profile::Kong => assert_ne!(f.root_context_id(), root, "Kong: a new root context"),
        }
    }
}

#[test]
fn callout_answered_by_handler() {
    for host in both() {
        let upstream = match host.profile() {
            Profile::Envoy => "authz",
            Profile::Kong => "127.0.0.1:8181",
        };
        host.add_cluster("authz");
        host.set_callout_handler(|c| {
            assert_eq!(
                (c.method(), c.path(), c.authority()),
                ("POST", "/check", "authz.local")
            );
            CalloutReply::json(200, "allowed").with_header("X-Reply", "1")
        });
        let mut f = echo().filter(&host, "{}").unwrap();
        let out = f
            .run(Request::new("GET", "/").header("x-callout", upstream))
            .unwrap();
        assert!(out.is_allowed(), "{out:?}");
        assert_eq!(out.header("x-callout-body"), Some("allowed"));
        assert_eq!(out.callouts.len(), 1);
        let c = &out.callouts[0];
        assert_eq!(
            (c.upstream.as_str(), c.body_str().as_str(), c.timeout),
            (upstream, "ping", Duration::from_millis(300))
        );
        assert!(!c.from_root);
        assert!(out.pending_callouts.is_empty());
        assert!(f.pending_callouts().is_empty());
    }
}

#[test]
fn dispatch_errors() {
    let host = Host::envoy();
    let mut f = echo().filter(&host, "{}").unwrap();
    let out = f
        .run(Request::new("GET", "/").header("x-callout", "no_such_cluster"))
        .unwrap();
    assert_eq!(out.status(), Some(500));
    assert_eq!(out.json()["message"], "dispatch failed: BadArgument");
    // Envoy: BadArgument; Kong traps on a dispatch that fails before connecting.
    host.add_cluster("authz");
    let out = f
        .run(Request::new("GET", "/").header("x-callout-no-path", "authz"))
        .unwrap();
    assert_eq!(out.json()["message"], "dispatch failed: BadArgument");
    let mut f = echo().filter(&Host::kong(), "{}").unwrap();
    let err = f
        .run(Request::new("GET", "/").header("x-callout-no-path", "authz"))
        .unwrap_err();
    assert!(
        err.to_string().contains("dispatch failed: no :path"),
        "{err}"
    );
}

#[test]
fn kong_unresolvable_upstream_fails_through_the_callback() {
    let host = Host::kong();
    let mut f = echo().filter(&host, "{}").unwrap();
    let out = f
        .run(Request::new("GET", "/").header("x-callout", "authz_cluster"))
        .unwrap();
    assert_eq!(out.status(), Some(503));
    assert_eq!(out.json()["message"], "callout failed: resolver failure");
    assert_eq!(out.callouts.len(), 1, "the dispatch itself succeeded");
}

#[test]
fn manual_answers_and_interleaving() {
    for host in both() {
        host.add_cluster("authz");
        let mut f = echo().filter(&host, "{}").unwrap();
        let a = f
            .run(Request::new("GET", "/a").header("x-callout", "authz"))
            .unwrap();
        assert!(a.is_pending());
        let token = a.pending_callouts[0];
        assert_eq!(a.callouts[0].token, token);
        let b = f
            .run(Request::new("GET", "/b").header("x-callout", "authz"))
            .unwrap();
        let c = f.run(Request::new("GET", "/c")).unwrap();
        assert!(c.is_allowed());
        assert_eq!(f.pending_callouts().len(), 2);

        let a = f.respond(token, CalloutReply::ok(200, "yes")).unwrap();
        assert_eq!(a.context_id, 2);
        assert!(a.is_allowed());
        assert_eq!(a.header("x-callout-body"), Some("yes"));

        let b = f
            .respond(b.pending_callouts[0], CalloutReply::Timeout)
            .unwrap();
        match host.profile() {
            Profile::Envoy => {
                assert_eq!(b.status(), Some(503));
                assert_eq!(b.json()["message"], "callout failed");
            }
            Profile::Kong => {
                // ngx_wasm_module 3bed278: a local response with a body, sent after a callout
                // that carried a body and timed out, never reaches the client.
                assert_eq!(b.state, RequestState::Reset, "{b:?}");
                assert!(b.response.is_none());
                assert!(f
                    .host()
                    .logs()
                    .iter()
                    .any(|l| l.message.contains("zero size buf")));
            }
        }
        assert!(matches!(
            f.respond(token, CalloutReply::Timeout),
            Err(HarnessError::Usage(_))
        ));

        let d = f
            .run(Request::new("GET", "/d").header("x-callout", "authz"))
            .unwrap();
        let d = f
            .respond(d.pending_callouts[0], CalloutReply::ConnectFailure)
            .unwrap();
        if host.profile() == Profile::Kong {
            assert_eq!(d.json()["message"], "callout failed: broken connection");
        }
        let e = f
            .run(Request::new("GET", "/e").header("x-callout", "authz"))
            .unwrap();
        let e = f
            .respond(e.pending_callouts[0], CalloutReply::ok(403, ""))
            .unwrap();
        assert_eq!(e.json()["message"], "callout said 403");
    }
}

#[test]
fn delayed_answers_move_the_clock() {
    let host = Host::envoy().with_clusters(&["authz"]);
    let t0 = host.now();
    host.set_callout_handler(|_| CalloutReply::ok(200, "late").after(Duration::from_millis(100)));
    let mut f = echo().filter(&host, "{}").unwrap();
    assert!(f
        .run(Request::new("GET", "/").header("x-callout", "authz"))
        .unwrap()
        .is_allowed());
    assert_eq!(
        host.now().duration_since(t0).unwrap(),
        Duration::from_millis(100)
    );
    host.set_callout_handler(|_| CalloutReply::ok(200, "too late").after(Duration::from_secs(5)));
    let out = f
        .run(Request::new("GET", "/").header("x-callout", "authz"))
        .unwrap();
    assert_eq!(out.status(), Some(503), "past the 300 ms timeout");
    assert_eq!(
        host.now().duration_since(t0).unwrap(),
        Duration::from_millis(400)
    );
}

#[test]
fn shared_data_cas_and_metrics_across_instances() {
    for host in both() {
        let mut f1 = echo().filter(&host, "{}").unwrap();
        let mut f2 = echo().filter(&host, "{}").unwrap();
        for i in 1..=5 {
            let f = if i % 2 == 0 { &mut f1 } else { &mut f2 };
            let out = f
                .run(Request::new("GET", "/").header("x-counter", "hits"))
                .unwrap();
            assert_eq!(out.header("x-count"), Some(i.to_string().as_str()));
        }
        let (value, cas) = host.shared_data("hits").unwrap();
        assert_eq!((value.as_slice(), cas > 0), (&b"5"[..], true));
        assert_eq!(host.metric("echo_requests"), Some(5));

        host.set_shared_data("k", b"v");
        let out = f1
            .run(Request::new("GET", "/").header("x-cas-stale", "k"))
            .unwrap();
        assert_eq!(out.header("x-cas"), Some("CasMismatch"));
        assert_eq!(host.shared_data("k").unwrap().0, b"first");
    }
}

#[test]
fn ticks_and_root_callouts() {
    for host in both() {
        let upstream = match host.profile() {
            Profile::Envoy => "idp",
            Profile::Kong => "10.1.2.3:443",
        };
        host.add_cluster("idp");
        let kong = host.profile() == Profile::Kong;
        let config = format!(
            r#"{{"tick_ms": 5000, "root_fetch": true, "fetch_on_configure": {}, "upstream": "{upstream}"}}"#,
            !kong
        );
        let mut f = echo().filter(&host, &config).unwrap();
        assert_eq!(f.tick_period(), Some(Duration::from_secs(5)));
        if kong {
            // Kong: the first fetch comes from the first tick.
            assert!(f.pending_root_callouts().is_empty());
            f.tick().unwrap();
        }
        let pending = f.pending_root_callouts();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].path(), pending[0].from_root), ("/keys", true));
        let out = f
            .respond(pending[0].token, CalloutReply::ok(200, "k1"))
            .unwrap();
        assert_eq!(out.state, RequestState::Root);
        assert!(out.logged("root callout 1 answered"), "{:?}", out.logs);
        assert_eq!(host.shared_data("keys").unwrap().0, b"k1");

        host.set_callout_handler(|_| CalloutReply::ok(200, "k2"));
        host.advance(Duration::from_secs(5));
        let out = f.tick().unwrap();
        assert!(
            out.logged(if kong { "tick 2" } else { "tick 1" }),
            "{:?}",
            out.logs
        );
        assert_eq!(out.callouts.len(), 1);
        assert_eq!(host.shared_data("keys").unwrap().0, b"k2");
        assert!(f.pending_root_callouts().is_empty());
    }
}

#[test]
fn traps_carry_the_panic_message_and_poison() {
    for host in both() {
        let mut f = echo().filter(&host, "{}").unwrap();
        let err = f
            .run(Request::new("GET", "/").header("x-panic", "oops"))
            .unwrap_err();
        let HarnessError::Trap(msg) = &err else {
            panic!("{err}")
        };
        assert!(msg.contains("boom: oops"), "{msg}");
        assert!(msg.contains("proxy_on_request_headers"), "{msg}");
        assert!(matches!(
            f.run(Request::new("GET", "/")),
            Err(HarnessError::Poisoned(_))
        ));
        assert!(f.poisoned().is_some());
    }
    let mut f = echo().filter(&Host::kong(), "{}").unwrap();
    let err = f
        .run(Request::new("GET", "/").header("x-done", "1"))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("proxy_done: not implemented by Kong"),
        "{err}"
    );
}

#[test]
fn kong_refuses_modules_importing_get_log_level() {
    // (module (import "env" "proxy_get_log_level" (func (param i32) (result i32))) (memory 1) (export "memory" (memory 0)))
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[1, 6, 1, 0x60, 1, 0x7f, 1, 0x7f]);
    wasm.extend_from_slice(&[2, 27, 1, 3]);
    wasm.extend_from_slice(b"env");
    wasm.push(19);
    wasm.extend_from_slice(b"proxy_get_log_level");
    wasm.extend_from_slice(&[0, 0]);
    wasm.extend_from_slice(&[5, 3, 1, 0, 1]);
    wasm.extend_from_slice(&[7, 10, 1, 6]);
    wasm.extend_from_slice(b"memory");
    wasm.extend_from_slice(&[2, 0]);
    let h = Harness::from_bytes(&wasm).unwrap();
    let err = h.filter(&Host::kong(), "{}").unwrap_err();
    assert!(err.to_string().contains("proxy_get_log_level"), "{err}");
    let err = h.filter(&Host::envoy(), "{}").unwrap_err();
    assert!(err.to_string().contains("proxy_on_context_create"), "{err}");
}

/// `wasm` with the export `name` left out of its export section (nothing else changed).
fn without_export(wasm: &[u8], name: &str) -> Vec<u8> {
    fn leb(b: &[u8], i: &mut usize) -> usize {
        let (mut r, mut s) = (0, 0);
        loop {
            let x = b[*i];
            *i += 1;
            r |= usize::from(x & 0x7f) << s;
            s += 7;
            if x < 0x80 {
                return r;
            }
        }
    }
    fn put(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let x = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(x);
                return;
            }
            out.push(x | 0x80);
        }
    }
    let mut out = wasm[..8].to_vec();
    let mut i = 8;
    let mut dropped = false;
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let size = leb(wasm, &mut i);
        let body = &wasm[i..i + size];
        i += size;
        let mut new_body = body.to_vec();
        if id == 7 {
            let mut k = 0;
            let n = leb(body, &mut k);
            let mut kept = Vec::new();
            let mut count = 0;
            for _ in 0..n {
                let start = k;
                let len = leb(body, &mut k);
                let export = &body[k..k + len];
                k += len + 1;
                leb(body, &mut k);
                if export == name.as_bytes() {
                    dropped = true;
                } else {
                    kept.extend_from_slice(&body[start..k]);
                    count += 1;
                }
            }
            new_body.clear();
            put(&mut new_body, count);
            new_body.extend_from_slice(&kept);
        }
        out.push(id);
        put(&mut out, new_body.len());
        out.extend_from_slice(&new_body);
    }
    assert!(dropped, "no export {name}");
    out
}

#[test]
fn kong_refuses_modules_missing_a_callback_it_calls() {
    let wasm = std::fs::read(env!("ECHO_FILTER_WASM")).unwrap();
    for name in bouncer_harness::KONG_REQUIRED_EXPORTS {
        let h = Harness::from_bytes(&without_export(&wasm, name)).unwrap();
        let err = h.filter(&Host::kong(), "{}").unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
        assert!(err.to_string().contains("SIGSEGV"), "{err}");
        // Envoy checks each callback before calling it.
        let mut f = h.filter(&Host::envoy(), "{}").unwrap();
        f.run(Request::new("GET", "/")).unwrap();
    }
}

#[test]
fn wasi_output_time_properties_memory() {
    for host in both() {
        let host = host.with_location(bouncer_harness::KongLocation::parse(
            "set $consumer \"\";",
            true,
        ));
        host.set_property(&["foo", "bar"], b"baz");
        let mut f = echo().filter(&host, "{}").unwrap();
        let out = f
            .run(Request::new("GET", "/").header("x-eprint", "to stderr"))
            .unwrap();
        assert!(
            out.logs
                .iter()
                .any(|l| l.level == LogLevel::Error && l.message == "to stderr"),
            "{:?}",
            out.logs
        );
        assert!(f.logs().iter().any(|l| l.message == "to stderr"));

        let out = f
            .run(Request::new("GET", "/").header("x-time", ""))
            .unwrap();
        assert_eq!(
            out.header("x-now"),
            Some(host.now_unix().to_string().as_str())
        );
        host.advance(Duration::from_secs(60));
        let out = f
            .run(Request::new("GET", "/").header("x-time", ""))
            .unwrap();
        assert_eq!(
            out.header("x-now"),
            Some(host.now_unix().to_string().as_str())
        );

        let out = f
            .run(Request::new("GET", "/x?y=1").header("x-property", "request.path"))
            .unwrap();
        assert_eq!(out.header("x-property-value"), Some("/x?y=1"));
        let out = f
            .run(Request::new("GET", "/").header("x-property", "foo.bar"))
            .unwrap();
        assert_eq!(out.header("x-property-value"), Some("baz"));
        let out = f
            .run(Request::new("GET", "/").header("x-set-property", "ngx.consumer=abc"))
            .unwrap();
        // (Kong: `ngx.*` is a variable the location declares; see kong_location_variables.)
        assert_eq!(
            out.properties,
            vec![("ngx.consumer".to_string(), b"abc".to_vec())]
        );

        let before = f.memory_size();
        f.run(Request::new("GET", "/").header("x-alloc", "4000000"))
            .unwrap();
        assert!(
            f.memory_size() >= before + 3_000_000,
            "{before} -> {}",
            f.memory_size()
        );
    }
}

#[test]
fn parallel_instances_share_one_host() {
    let host = Host::envoy();
    // Seeded: a first insert carries no CAS (0 = unconditional), so two workers could both
    // create the key; from then on, the CAS makes every increment count.
    host.set_shared_data("n", b"0");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let host = host.clone();
            std::thread::spawn(move || {
                let mut f = echo().filter(&host, "{}").unwrap();
                for _ in 0..50 {
                    f.run(Request::new("GET", "/").header("x-counter", "n"))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(host.shared_data("n").unwrap().0, b"200");
    assert_eq!(host.metric("echo_requests"), Some(200));
}

#[test]
fn many_requests_without_trap() {
    let host = Host::envoy();
    host.set_log_capacity(0);
    let mut f = echo().filter(&host, "{}").unwrap();
    let start = std::time::Instant::now();
    let n = 5000;
    for i in 0..n {
        let out = f
            .run(
                Request::new("GET", &format!("/item/{i}"))
                    .header("authorization", &format!("Bearer {}", "x".repeat(i % 300))),
            )
            .unwrap();
        assert!(out.is_allowed());
    }
    let per = start.elapsed() / n as u32;
    eprintln!("{per:?} per request; memory {} bytes", f.memory_size());
    assert!(
        f.memory_size() < 4 << 20,
        "memory stays bounded: {}",
        f.memory_size()
    );
}

#[test]
fn root_context_resumes_waiting_requests_in_envoy_only() {
    for host in both() {
        host.add_cluster("idp");
        let upstream = match host.profile() {
            Profile::Envoy => "idp",
            Profile::Kong => "127.0.0.1:9000",
        };
        let kong = host.profile() == Profile::Kong;
        let config = format!(
            r#"{{"root_fetch": true, "fetch_on_configure": {}, "tick_ms": 1000, "upstream": "{upstream}"}}"#,
            !kong
        );
        let mut f = echo().filter(&host, &config).unwrap();
        if kong {
            f.tick().unwrap();
        }
        let waiting = f
            .run(Request::new("GET", "/").header("x-wait-root", "1"))
            .unwrap();
        assert!(waiting.is_pending());
        let token = f.pending_root_callouts()[0].token;
        match host.profile() {
            Profile::Envoy => {
                let root = f.respond(token, CalloutReply::ok(200, "k")).unwrap();
                assert_eq!(root.state, RequestState::Root);
                let done = f.outcome(waiting.context_id).unwrap();
                assert!(done.is_allowed(), "{done:?}");
                assert!(f.outcome(waiting.context_id).is_none(), "handed out once");
            }
            Profile::Kong => {
                // set_effective_context is a no-op: the root cannot resume a request.
                let err = f.respond(token, CalloutReply::ok(200, "k")).unwrap_err();
                assert!(matches!(err, HarnessError::Trap(_)), "{err}");
            }
        }
    }
}

#[test]
fn kong_sets_a_tick_period_once_per_root() {
    let config = r#"{"tick_ms": 1000, "tick_twice": true}"#;
    let f = echo().filter(&Host::envoy(), config).unwrap();
    assert_eq!(f.tick_period(), Some(Duration::from_secs(2)));
    let err = echo().filter(&Host::kong(), config).unwrap_err();
    assert!(err.to_string().contains("tick_period already set"), "{err}");
}

#[test]
fn handles_are_thread_safe() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<bouncer_harness::Filter>();
    send_sync::<Host>();
    send_sync::<Harness>();
    send_sync::<HarnessError>();
}

#[test]
fn kong_traps_a_dispatch_outside_the_allowed_callbacks() {
    // on_configure: the filter fails to start (the nginx worker exits for good).
    let config = r#"{"root_fetch": true, "upstream": "127.0.0.1:9000"}"#;
    assert!(echo()
        .filter(&Host::envoy().with_clusters(&["127.0.0.1:9000"]), config)
        .is_ok());
    let err = echo().filter(&Host::kong(), config).unwrap_err();
    assert!(
        matches!(&err, HarnessError::Trap(m) if m.contains("can only send HTTP dispatch during")
            && m.contains("proxy_on_configure")),
        "{err}"
    );
    // From a tick it works.
    let config = r#"{"root_fetch": true, "fetch_on_configure": false, "tick_ms": 1000, "upstream": "127.0.0.1:9000"}"#;
    let mut f = echo().filter(&Host::kong(), config).unwrap();
    f.tick().unwrap();
    assert_eq!(f.pending_root_callouts().len(), 1);
}

#[test]
fn kong_shared_data_needs_a_shm_zone() {
    let host = Host::kong().without_shm_zone();
    let mut f = echo().filter(&host, "{}").unwrap();
    let err = f
        .run(Request::new("GET", "/").header("x-counter", "k"))
        .unwrap_err();
    assert!(
        err.to_string().contains("could not resolve namespace"),
        "{err}"
    );
    // A zone named after the key's namespace, or the default `*`.
    let host = Host::kong_with_conf("nginx_wasm_shm_kv_echo = 1m");
    assert!(host.shm_resolves("echo/k"));
    assert!(!host.shm_resolves("k"));
    assert!(Host::kong_with_conf("nginx_wasm_shm_kv = 1m").shm_resolves("k"));
    assert!(Host::envoy().without_shm_zone().shm_resolves("k"));
}

#[test]
fn kong_location_variables() {
    use bouncer_harness::KongLocation;
    let snippet = "set $consumer \"none\";\nproxy_set_header X-Consumer $consumer;\n";
    // Access phase (Kong): the variable is declared and set; nginx sends it instead of every
    // client copy.
    let host = Host::kong().with_location(KongLocation::parse(snippet, true));
    let mut f = echo().filter(&host, "{}").unwrap();
    let out = f
        .run(
            Request::new("GET", "/")
                .header("x-set-property", "ngx.consumer=abc")
                .header("x-consumer", "spoof"),
        )
        .unwrap();
    assert_eq!(out.request_headers.get_all("x-consumer"), vec!["abc"]);
    let out = f
        .run(Request::new("GET", "/").header("x-property", "ngx.consumer"))
        .unwrap();
    assert_eq!(out.header("x-property-value"), Some("none"));
    // An undeclared variable cannot be set (NotFound: the SDK's set_property panics on it).
    let err = f
        .run(Request::new("GET", "/").header("x-set-property", "ngx.other=1"))
        .unwrap_err();
    assert!(err.to_string().contains("unexpected status: 1"), "{err}");
    // Rewrite phase (plain nginx's default): `set` runs after the filter and wipes the value.
    let host = Host::kong().with_location(KongLocation::parse(snippet, false));
    let mut f = echo().filter(&host, "{}").unwrap();
    let out = f
        .run(Request::new("GET", "/").header("x-set-property", "ngx.consumer=abc"))
        .unwrap();
    assert_eq!(
        out.request_headers.get_all("x-consumer"),
        vec!["none"],
        "{out:?}"
    );
    let out = f
        .run(Request::new("GET", "/").header("x-property", "ngx.consumer"))
        .unwrap();
    assert_eq!(
        out.header("x-property-value"),
        Some("<none>"),
        "uninitialised while the filter runs"
    );
}
