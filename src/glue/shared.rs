//! Shared data (all workers of a host) with compare-and-swap updates.
//!
//! Every key starts with `bouncer/`: in Kong's engine that is the `shm_kv` namespace
//! `bouncer` when nginx declares one (`nginx_wasm_shm_kv_bouncer`), else the default zone
//! `shm_kv *` (`nginx_wasm_shm_kv`). With neither, every call traps (HOSTS.md).

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Read a key: its bytes and CAS token.
pub fn get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

/// Write unconditionally; false on host error.
pub fn put(key: &str, value: &[u8]) -> bool {
    hostcalls::set_shared_data(key, Some(value), None).is_ok()
}

/// Read-modify-write with CAS, retried a few times. `f` returns the new value, or `None` to
/// leave the key alone (and return `None`). Returns the value written.
pub fn update<T>(key: &str, mut f: impl FnMut(Option<&[u8]>) -> Option<(Vec<u8>, T)>) -> Option<T> {
    for _ in 0..4 {
        let (current, cas) = get(key);
        let (new, out) = f(current.as_deref())?;
        match hostcalls::set_shared_data(key, Some(&new), cas) {
            Ok(()) => return Some(out),
            Err(Status::CasMismatch) => continue,
            Err(_) => return None,
        }
    }
    None
}
