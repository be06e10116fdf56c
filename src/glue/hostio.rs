//! Host calls the SDK would make with a panic on odd input, made safely here.
//!
//! The SDK's `get_map` unwraps `String::from_utf8` on every header name and value, so one
//! non-UTF-8 header byte would trap the VM. Headers are read here with the raw import and
//! converted lossily instead.

use proxy_wasm::types::{MapType, Status};
use std::ptr::null_mut;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

fn le_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(arr)).ok()
}

/// Decode the proxy-wasm header map serialization; `None` when it is malformed.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = le_u32(bytes, 0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut out = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let s = n.checked_mul(8)?.checked_add(4)?;
        let klen = le_u32(bytes, s)?;
        let vlen = le_u32(bytes, s.checked_add(4)?)?;
        let key = bytes.get(data..data.checked_add(klen)?)?;
        data = data.checked_add(klen)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(vlen)?)?;
        data = data.checked_add(vlen)?.checked_add(1)?;
        // Kong passes names as the client wrote them; every comparison is in lowercase.
        let mut name = lossy(key);
        name.make_ascii_lowercase();
        out.push((name, lossy(value)));
    }
    Some(out)
}

/// `String::from_utf8_lossy`, with the common ASCII case checked eight bytes at a time and the
/// other valid case by the standard validator.
fn lossy(bytes: &[u8]) -> String {
    if is_ascii(bytes) {
        // SAFETY: ASCII is valid UTF-8.
        return unsafe { String::from_utf8_unchecked(bytes.to_vec()) };
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Whether every byte is ASCII, eight at a time (wasm has 64-bit integers; `is_ascii` and the
/// UTF-8 validator go a word, 4 bytes, at a time): a 55 KB cookie header is read quickly.
fn is_ascii(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let mut high = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        high |= u64::from_le_bytes(w);
    }
    high & 0x8080_8080_8080_8080 == 0 && chunks.remainder().is_ascii()
}

/// All pairs of a header map, lossily UTF-8; empty on any host error.
pub fn header_map(map: MapType) -> Vec<(String, String)> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated in our memory with
    // proxy_on_memory_allocate (the SDK's allocator), which we then own.
    let bytes = unsafe {
        match proxy_get_header_map_pairs(map, &mut data, &mut size) {
            Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => return Vec::new(),
        }
    };
    decode_map(&bytes).unwrap_or_default()
}

/// The `:status` of a callout answer, if it has one that parses.
pub fn call_status(headers: &[(String, String)]) -> Option<u16> {
    headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.trim().parse::<u16>().ok())
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> Status;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
}

/// The nginx variable `name` (Kong: `ngx.<name>`), if the host has it. Any host error is
/// "absent" (the SDK would panic on an unexpected status).
pub fn ngx_var(name: &str) -> Option<Vec<u8>> {
    let path = format!("ngx\0{name}");
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for header maps: the host hands us a buffer it allocated in our memory.
    unsafe {
        match proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) {
            Status::Ok if !data.is_null() => Some(Vec::from_raw_parts(data, size, size)),
            Status::Ok => Some(Vec::new()),
            _ => None,
        }
    }
}

/// Write the nginx variable `name`; errors are ignored (the variable is an optional extra).
pub fn set_ngx_var(name: &str, value: &str) {
    let path = format!("ngx\0{name}");
    // SAFETY: both buffers are valid for the call; the host copies them.
    unsafe {
        let _ = proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len());
    }
}

/// The nginx variable that mirrors a reserved header: `x-consumer-id` -> `bouncer_consumer_id`
/// (a leading `x-` dropped, `-` as `_`).
pub fn ngx_var_name(header: &str) -> String {
    let base = header.strip_prefix("x-").unwrap_or(header);
    format!("bouncer_{}", base.replace('-', "_"))
}
