//! Bouncer's benchmarks: see `benches/bouncer.rs` (`make bench`) and `docs/PERFORMANCE.md`.
