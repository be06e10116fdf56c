//! Host calls the SDK would make with a panic on odd input, made safely here.
//!
//! The SDK's `get_map` unwraps `String::from_utf8` on every header name and value, so one
//! non-UTF-8 header byte would trap the VM. Headers are read here with the raw import and
//! converted lossily instead.

use proxy_wasm::types::{MapType, Status};
use std::ptr::null_mut;

pub use crate::wire::decode_map;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// A header map as the host serialized it (empty on any host error): decode it with
/// [`decode_map`].
pub fn header_map_bytes(map: MapType) -> Vec<u8> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated in our memory with
    // proxy_on_memory_allocate (the SDK's allocator), which we then own.
    unsafe {
        match proxy_get_header_map_pairs(map, &mut data, &mut size) {
            Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}

/// The `:status` of a callout answer, if it has one that parses.
pub fn call_status(headers: &[(&str, &str)]) -> Option<u16> {
    headers
        .iter()
        .find(|(k, _)| *k == ":status")
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
