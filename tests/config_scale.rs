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

fn per_consumer(scale: Scale) -> (f64, f64) {
    let n = scale.consumers as f64;
    let (kept, peak) = measure(&scale.config());
    let (kept0, peak0) = measure(&Scale::bare(scale.consumers).config());
    let _ = peak0;
    ((kept as f64 - kept0 as f64) / n, peak as f64 / n)
}

/// Bytes per consumer natively (64-bit), printed for the record and bounded: a compiled
/// consumer of issue 15 (HS256 secret, API key, one route) keeps well under 1 KiB.
#[test]
fn memory_per_consumer_by_kind() {
    let _one = ONE.lock().unwrap();
    let n = 10_000;
    let (bare, bare_peak) = {
        let (kept, peak) = measure(&Scale::bare(n).config());
        (kept as f64 / n as f64, peak as f64 / n as f64)
    };
    eprintln!("native bytes per consumer: bare {bare:.0} kept, peak {bare_peak:.0}");
    let kinds = [
        ("HS256 secret", Scale { hs256: true, ..Scale::bare(n) }),
        ("RSA public key", Scale { rsa: true, ..Scale::bare(n) }),
        ("API key", Scale { api_key: true, ..Scale::bare(n) }),
        ("one distinct route", Scale { routes: Routes::Distinct, ..Scale::bare(n) }),
        ("one shared route", Scale { routes: Routes::Shared, ..Scale::bare(n) }),
        ("two groups", Scale { groups: 2, ..Scale::bare(n) }),
        ("issue 15 (HS256, key, route)", Scale::issue15(n)),
    ];
    for (label, scale) in kinds {
        let (kept, peak) = per_consumer(scale);
        eprintln!("native bytes per consumer: {label}: +{kept:.0} kept, peak {peak:.0}");
    }
}
