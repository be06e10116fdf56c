//! A proxy-wasm host on wasmtime for the end-to-end tests (work in progress).
