//! `fastipc send` and `fastipc recv`: test traffic on a queue, in a pattern any peer in
//! any language can produce and verify element by element.
//!
//! # The pattern
//! Element number `seq` (0, 1, 2, ...) of `B >= 8` bytes holds `seq` as a little-endian
//! u64 in bytes 0..8, and at every byte `j >= 8` the value `(seq × 7 + j) mod 256`.
//! In Python: `struct.pack("<Q", seq) + bytes((seq * 7 + j) % 256 for j in range(8, B))`.
//!
//! # Verification
//! `recv` checks every element it gets ([`verify`]) and counts ([`Tally`]):
//! - *exclusive* reading (its own cursor) expects `0, 1, 2, ..., N-1` in order: a jump
//!   forward is that many elements *lost* (a producer lapped the reader, or they were
//!   overwritten before it attached), a sequence number that goes back or lies past
//!   `N-1` is *out of order*. It ends when every number up to `N-1` is accounted for.
//! - *shared* reading (`--shared-cursor`, work stealing) gets some of the elements: the
//!   numbers it sees must only increase, and the elements the queue reports as lost
//!   (`Lagged`) to this reader count as lost. It ends after `N` elements. A read claims a
//!   whole reservation (a `send --batch K` writes `K` elements in one), so the read that
//!   reaches `N` may hold more: those are still checked and counted as *beyond
//!   `--count`*, and the run fails, because no other reader of the cursor will ever get
//!   them (the error says which sequence numbers they were).
//!
//! A run is a success when exactly `N` elements arrived intact, in order, with none lost
//! and none claimed beyond `N`.

use std::fmt;
use std::time::{Duration, Instant};

use fastipc::Deadline;
use fastipc::error::{OpenError, RecvTimeoutError, ShmError};
use fastipc::queue::{Mode as QueueMode, Ring, RingSpec, Role, SharedCursor, WaitStrategy};

use crate::error::{CliError, number, secs};
use crate::progress::{Progress, UPDATE_EVERY};

mod pattern;
mod recv;
mod send;
mod tally;

pub use pattern::{Corruption, DEFAULT_CAPACITY, SEQ_LEN, check_element_size, fill, verify};
pub use recv::{RecvOptions, RecvSummary, recv, wait_for_queue};
pub use send::{SendOptions, SendSummary, send};
pub use tally::{Mode, Tally, rate};
// The helpers the submodules share (each reaches its siblings through `super::*`).
use tally::*;

#[cfg(test)]
mod tests;
