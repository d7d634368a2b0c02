//! The messages of the derive end-to-end tests: compiled into the tests
//! (`tests/derive_processes.rs`) and into their peer (`src/bin/peer-derive.rs`), so the
//! two sides always declare the same layouts.

use fastipc::IpcMessage;

/// A derived message with a default queue.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(queue = "fipct-derive-e2e-quotes", capacity = 16384)]
pub(crate) struct Quote {
    pub(crate) seq: u64,
    pub(crate) bid: f64,
    pub(crate) ask: f64,
    pub(crate) bid_qty: u32,
    pub(crate) ask_qty: u32,
    pub(crate) check: u64,
}

/// Another message type, of the same size as [`Quote`] but another layout, declaring the
/// same queue.
#[derive(IpcMessage, Clone, Copy, Debug)]
#[repr(C)]
#[ipc(queue = "fipct-derive-e2e-quotes", capacity = 16384)]
pub(crate) struct Other {
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    e: u64,
}
