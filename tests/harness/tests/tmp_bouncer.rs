use bouncer_harness::*;
#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let h = &Harness::load("/tmp/target-harness/wasm32-wasip1/release/bouncer.wasm").unwrap();
    eprintln!(
        "load {:?} from {}",
        t.elapsed(),
        bouncer_wasm_path().display()
    );
    for host in [Host::envoy(), Host::kong()] {
        match h.filter(&host, "{}") {
            Ok(mut f) => {
                let out = f.run(Request::new("GET", "/api")).unwrap();
                eprintln!(
                    "{:?}: {:?} {:?} {:?}",
                    host.profile(),
                    out.state,
                    out.status(),
                    out.response.as_ref().map(|r| r.body_str())
                );
                let out = f
                    .run(Request::new("GET", "/api").header("authorization", "Bearer a.b.c"))
                    .unwrap();
                eprintln!(
                    "{:?}: {:?} {:?} {:?}",
                    host.profile(),
                    out.state,
                    out.status(),
                    out.response.as_ref().map(|r| r.body_str())
                );
                eprintln!("logs {:?}", out.logs);
            }
            Err(e) => eprintln!("{:?}: {e}", host.profile()),
        }
        let e = h.filter(&host, r#"{"bogus": 1}"#).unwrap_err();
        eprintln!("{e}");
    }
}
