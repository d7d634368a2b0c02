//! The shared state of the `SharedCell<T>` multi-process tests: compiled into the tests
//! (`tests/shared_cell.rs`) and into their peer (`src/bin/peer-cell.rs`), so the two
//! sides always declare the same layout.

use fastipc::IpcMessage;

/// What the peer's `hold` leaves in `total`: the first half of an update that never
/// finishes.
pub(crate) const HALF_DONE: u64 = 0xDEAD;

/// The shared state the peers update.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct Tally {
    /// Updates by every process.
    pub(crate) total: u64,
    /// Updates by peer `i`.
    pub(crate) per_peer: [u64; 4],
    /// Twice `total`, written in the same critical section (a torn update shows).
    pub(crate) double: u64,
    /// The process that made the last update.
    pub(crate) last_pid: u32,
    pub(crate) _pad: u32,
}
