//! SlickQueue: a lock-free multi-producer, multi-consumer ring in shared memory, byte for
//! byte the queue of the C++ `slick::SlickQueue<T>` and Python `slick-queue-py` 2.3, with
//! typed endpoints, blocking receive, lag reporting and torn-read protection.
//!
//! | module | holds |
//! |---|---|
//! | [`layout`] | the header and slot structs, offsets pinned at compile time, the header decode |
//! | `raw` (private) | the algorithm over precomputed pointers, and its memory-ordering argument |
//! | [`Ring`] (`ring`) | the untyped, byte-level queue: create/attach handshake, reserve/publish/read/read_shared/read_last, inspect |
//! | [`SharedCursor`] (`cursor`) | the work-stealing cursor, optionally in its own 8-byte segment |
//! | [`WaitStrategy`] (`wait`) | how blocking receives spin, yield and sleep |
//! | `typed` | [`SlickQueue<T>`], [`Producer<T>`], [`Consumer<T>`], [`SharedConsumer<T>`] |
//!
//! ```
//! use fastipc::SlickQueue;
//!
//! let q = SlickQueue::<u64>::local(8)?;
//! let tx = q.producer();
//! let mut rx = q.consumer();
//! let t = std::thread::spawn(move || tx.send(&42));
//! assert_eq!(rx.recv()?, 42);
//! t.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Differences from the peers, all invisible in the shared bytes except the padding
//! fastipc owns (header bytes 32..40 and 56..64, and an optional trailer after the data):
//! - consumers re-validate every copy against the producers of later laps, so a lapped
//!   consumer does not return a message torn by them; it gets [`RecvError::Lagged`] with
//!   the count (exact for single sends) and continues from the oldest message still
//!   available (the peers jump a whole lap ahead). A fastipc producer that was itself
//!   lapped before writing neither writes nor publishes. A torn message can still get
//!   through only from a producer lapped *while* it writes: one descheduled in the middle
//!   of its copy while others send a whole ring, a guard held while other processes lap
//!   it, or any lapped C++ or Python producer (raw.rs states the argument exactly);
//! - consumers can block (`recv`, `recv_timeout`, ...), sleeping on a futex word that
//!   fastipc producers wake only when someone sleeps; peers' producers never wake anyone,
//!   so sleepers also re-check on a short timer;
//! - a queue made by fastipc records its message type, and attaching with another type
//!   fails with an error naming both.

pub mod layout;

mod cursor;
mod raw;
mod ring;
mod typed;
mod wait;

pub use crate::error::{QueueError, RecvError};
pub use cursor::{CURSOR_SIZE, SharedCursor};
pub use layout::{Geometry, HeaderSnapshot, TypeTrailer};
pub use ring::{Inspection, READY_TIMEOUT, ReadInfo, Reservation, Ring, RingSpec};
pub use typed::{BatchGuard, Consumer, Producer, SharedConsumer, SlickQueue, SlotGuard};
pub use wait::WaitStrategy;
