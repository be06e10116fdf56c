//! Configuration scale (issue 15), natively: the heap a compiled configuration keeps and the
//! peak while compiling it, counted by a global allocator, for each credential kind. The
//! figures for the .wasm (linear memory) are in `tests/e2e/scale.rs` and `make bench`.

use bouncer::config::Policy;
use bouncer_harness::scale::{Routes, Scale};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time (the counters are process-wide).
static ONE: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// (bytes kept by the policy, peak bytes above the text while compiling).
fn measure(text: &str) -> (usize, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let policy = Policy::from_json(text).expect("configuration compiles");
    let kept = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    drop(policy);
    (kept, peak)
}

/// (bytes kept per consumer, peak bytes per consumer while compiling).
fn per_consumer(scale: Scale) -> (f64, f64) {
    let n = scale.consumers as f64;
    let (kept, peak) = measure(&scale.config());
    (kept as f64 / n, peak as f64 / n)
}

/// Bytes per consumer natively (64-bit), printed for the record and bounded. Before issue 15
/// a consumer of issue 15 (HS256 secret, API key, one route) kept 2,673 bytes and peaked at
/// 4,350 while compiling (the configuration as a `serde_json::Value`, the raw structs, a
/// regex per route, three keyed HMACs per secret); now it keeps 400 and peaks at 410: the
/// compiled form is all there is at any time, nothing raw is held beside it.
#[test]
fn memory_per_consumer_by_kind() {
    let _one = ONE.lock().unwrap();
    let n = 10_000;
    let (bare, bare_peak) = per_consumer(Scale::bare(n));
    eprintln!("native bytes per consumer: bare {bare:.0} kept, peak {bare_peak:.0}");
    let kinds = [
        (
            "HS256 secret",
            Scale {
                hs256: true,
                ..Scale::bare(n)
            },
            160.0,
        ),
        (
            "RSA public key",
            Scale {
                rsa: true,
                ..Scale::bare(n)
            },
            1400.0,
        ),
        (
            "API key",
            Scale {
                api_key: true,
                ..Scale::bare(n)
            },
            100.0,
        ),
        (
            "one distinct route",
            Scale {
                routes: Routes::Distinct,
                ..Scale::bare(n)
            },
            100.0,
        ),
        (
            "one shared route",
            Scale {
                routes: Routes::Shared,
                ..Scale::bare(n)
            },
            100.0,
        ),
        (
            "two groups",
            Scale {
                groups: 2,
                ..Scale::bare(n)
            },
            120.0,
        ),
        ("issue 15 (HS256, key, route)", Scale::issue15(n), 320.0),
    ];
    assert!(bare < 220.0, "a bare consumer keeps {bare:.0} bytes");
    for (label, scale, bound) in kinds {
        let (kept, peak) = per_consumer(scale);
        let added = kept - bare;
        eprintln!("native bytes per consumer: {label}: +{added:.0} kept, peak {peak:.0}");
        assert!(
            added < bound,
            "{label}: +{added:.0} bytes per consumer (bound {bound})"
        );
        // Nothing but the compiled form (and small tables while sorting) at the peak.
        assert!(
            peak < kept * 1.1 + 16.0,
            "{label}: peak {peak:.0} for {kept:.0} kept"
        );
    }
}

/// A refused configuration (a duplicate at the end) is parsed twice, the second time exactly;
/// it still reports where.
#[test]
fn a_duplicate_among_many_is_found_where_it_is() {
    let _one = ONE.lock().unwrap();
    let text = Scale::issue15(5_000).config();
    let text = text.replacen(r#""username": "user-4999""#, r#""username": "user-17""#, 1);
    let e = Policy::from_json(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "consumers[4999].username: duplicate username 'user-17'"
    );
}
