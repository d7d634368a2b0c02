//! SlickQueue: a lock-free multi-producer, multi-consumer ring in shared memory, byte for
//! byte the queue of the C++ `slick::SlickQueue<T>` and Python `slick-queue-py` 2.3, with
//! typed endpoints, blocking receive, lag reporting and torn-read protection.
//!
//! | module | holds |
//! |---|---|
//! | `layout` (crate-private; its public types are re-exported here and in [`crate::inspect`]) | the header and slot structs, offsets pinned at compile time, the header decode |
//! | `raw` (private) | the algorithm over precomputed pointers, and its memory-ordering argument (`raw/single`: the single producer's claim and publish) |
//! | `read` (private) | the one read primitive: locate a run, copy, validate once, recover after a lap |
//! | `payload` (private) | payload copies as relaxed atomic words of one width per queue |
//! | `lease` (private) | the positions zero-copy guards of one mapping hold, refused to other reservations |
//! | [`endpoints`] | the endpoint table after the data: registration, liveness, the lossless floor, its decode for tools |
//! | `flow` (private) | the claim loop of a lossless queue's producers (cached floor, rescan, sleep, dead-consumer eviction) |
//! | [`Ring`] (`ring/`) | the untyped, byte-level queue: `attach` (spec, create/attach handshake, checks), `data` (reserve/publish/read/read_shared/read_last), `inspect` |
//! | [`SharedCursor`] (`cursor`) | the work-stealing cursor, optionally in its own 8-byte segment |
//! | [`WaitStrategy`] (`wait`) | how blocking receives spin, yield and sleep |
//! | `typed` | [`SlickQueue<T>`], [`Producer<T>`], [`SingleProducer<T>`], their guards, [`Consumer<T>`], [`SharedConsumer<T>`], and the consumers' `watch` (position publishing, disconnect and dead-claimant checks) |
//! | this module | [`remove`] (a queue by name, whatever its type) |
//!
//! ```
//! use fastipc::SlickQueue;
//!
//! let q = SlickQueue::<u64>::local(8)?;
//! let tx = q.producer()?;
//! let mut rx = q.consumer()?;
//! let t = std::thread::spawn(move || tx.send(&42));
//! assert_eq!(rx.recv()?, 42);
//! assert_eq!(t.join().unwrap()?, 0); // send returns the message's index
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Differences from the peers, all invisible in the shared bytes except the padding
//! fastipc owns (header bytes 32..44 and 56..64, an optional trailer and the endpoint
//! table after the data):
//! - every fastipc endpoint registers in the queue's endpoint table; a queue can be
//!   created lossless ([`Mode::Lossless`]: producers wait for registered consumers),
//!   consumers learn that every producer left ([`RecvError::Disconnected`]), and a claim
//!   its producer abandoned (died, or dropped its guard) is skipped with
//!   [`RecvError::Abandoned`] instead of stalling every reader;
//! - consumers re-validate every copy against the producers of later laps, so a lapped
//!   consumer does not return a message torn by them (fastipc producers mark a slot
//!   before rewriting its position, and a one-element message is validated by its slot;
//!   a C++ or Python producer of a later lap does not mark, so against it only batches
//!   are validated); it gets [`TryRecvError::Lagged`] with
//!   the count (exact for single sends) and continues from the oldest message still
//!   available (the peers jump a whole lap ahead). A fastipc producer that was itself
//!   lapped before writing neither writes nor publishes. A torn message can still get
//!   through only from a producer lapped *while* it writes: one descheduled in the middle
//!   of its copy while others send a whole ring, a guard held while other processes lap
//!   it, any lapped C++ or Python producer, or a C++ or Python producer of a later lap
//!   overwriting a one-element message larger than 8 bytes while it is being copied
//!   (raw.rs states the argument exactly);
//! - a queue can be declared single-producer ([`QueueOptions::single_producer`]): its one
//!   [`SingleProducer`] (one at a time in all processes, enforced by its registration)
//!   claims with plain stores instead of read-modify-writes; peers' producers must not
//!   write such a queue (raw.rs, "Single-producer mode");
//! - zero-copy guards ([`Producer::reserve`]) hold a lease: no reservation through the
//!   same mapping may reach their slot a lap later ([`SendError::GuardHeld`]);
//! - consumers can block (`recv`, `recv_timeout`, ...), sleeping on a futex word that
//!   fastipc producers wake only when someone sleeps; peers' producers never wake anyone,
//!   so sleepers also re-check on a short timer;
//! - a queue made by fastipc records its message type, and attaching with another type
//!   fails with an error naming both.

pub mod endpoints;
pub(crate) mod layout;

mod cursor;
mod flow;
mod lease;
mod payload;
mod raw;
mod read;
mod ring;
mod typed;
mod wait;
#[cfg(test)]
mod wait_tests;

use std::time::Duration;

use crate::error::ShmError;
pub use crate::error::{
    Lapped, OpenError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use crate::sys::shm::Segment;
pub use cursor::{CURSOR_SIZE, SharedCursor};
pub use endpoints::{EndpointInfo, MAX_ENDPOINTS, Role};
pub use flow::{DEAD_CHECK_EVERY, PRODUCER_POLL};
pub use layout::{Geometry, GeometryError, HeaderSnapshot, TypeTrailer};
pub use ring::{Inspection, ReadInfo, Registration, Reservation, Ring, RingSpec};
#[cfg(feature = "stream")]
pub use typed::RecvStream;
pub use typed::{
    ASYNC_IDLE_CHECK, BatchGuard, Consumer, Iter, Producer, ProducerKind, Receive, STUCK_GRACE,
    SharedConsumer, SingleProducer, SlickQueue, SlotGuard, TryIter,
};
pub use typed::{RecvFuture, SendFuture, SharedRecvFuture};
pub use wait::WaitStrategy;

/// How a queue treats consumers that fall a whole ring behind; chosen when the queue is
/// created and recorded in it (header `flags` bit 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Producers never wait: they overwrite what slow consumers have not read, and those
    /// consumers get `Lagged(n)`. The peers' (C++/Python) behaviour, and the default.
    #[default]
    Lossy,
    /// Producers never overwrite a message a registered, live fastipc consumer (or
    /// shared-consumer group) has not read: `send` waits, `try_send` returns `Full`.
    /// Peers' consumers are not registered and not protected.
    Lossless,
}

impl Mode {
    pub(crate) fn from_flags(flags: u32) -> Mode {
        if flags & layout::FLAG_LOSSLESS != 0 {
            Mode::Lossless
        } else {
            Mode::Lossy
        }
    }

    pub(crate) fn flag(self) -> u32 {
        match self {
            Mode::Lossy => 0,
            Mode::Lossless => layout::FLAG_LOSSLESS,
        }
    }

    /// `"lossy"` or `"lossless"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Lossy => "lossy",
            Mode::Lossless => "lossless",
        }
    }
}

impl core::fmt::Display for Mode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a queue is made: its [`Mode`], and whether it is declared to have a single
/// producer. Both are recorded in the queue when it is created; an attacher through an
/// `open_or_create` constructor asking for other options is refused
/// ([`OpenError::ModeMismatch`], [`OpenError::SingleProducerMismatch`]). A [`Mode`]
/// converts into options with one producer declared or not (the `_with` constructors take
/// either).
///
/// A **single-producer** queue has one producer at a time in all processes:
/// [`SlickQueue::single_producer`] hands it out (a second one is refused with
/// [`OpenError::SingleProducerInUse`] while the first lives), and it claims with plain
/// stores instead of read-modify-writes (faster; see [`SingleProducer`]). C++ and Python
/// producers must not write such a queue (README, "Known limitations").
///
/// ```
/// use fastipc::queue::{Mode, QueueOptions};
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u64>::local_with(64, QueueOptions::new().single_producer())?;
/// assert!(q.is_single_producer());
/// let tx = q.single_producer()?;
/// let mut rx = q.consumer()?;
/// tx.send(&7)?;
/// assert_eq!(rx.try_recv()?, 7);
/// assert!(q.producer().is_err()); // one producer, and it is `tx`
///
/// let lossless = QueueOptions::from(Mode::Lossless).single_producer();
/// assert_eq!(lossless.mode, Mode::Lossless);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Lossy (the default) or lossless.
    pub mode: Mode,
    /// Declared to have one producer at a time ([`SingleProducer`]).
    pub single_producer: bool,
}

impl QueueOptions {
    /// Lossy, any number of producers: what [`SlickQueue::create`] makes.
    pub fn new() -> QueueOptions {
        QueueOptions::default()
    }

    /// These options in `mode`.
    pub fn mode(mut self, mode: Mode) -> QueueOptions {
        self.mode = mode;
        self
    }

    /// These options, declared single-producer.
    pub fn single_producer(mut self) -> QueueOptions {
        self.single_producer = true;
        self
    }
}

impl From<Mode> for QueueOptions {
    fn from(mode: Mode) -> QueueOptions {
        QueueOptions {
            mode,
            single_producer: false,
        }
    }
}

/// How long an attacher waits for a creator, as the peers do: for the segment to be sized
/// (a POSIX-style creator between `shm_open` and `ftruncate`), then for the queue to be
/// initialised (`init_state == 3`).
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Removes the name of queue `name` from /dev/shm; `Ok(false)` if there was none.
/// Processes attached keep their mapping, and queues are never removed implicitly.
/// Removing a queue does not depend on its message type, so this takes none.
///
/// ```
/// use fastipc::SlickQueue;
///
/// # let name = format!("fastipc-doc-remove-{}", std::process::id());
/// let q = SlickQueue::<u64>::create(&name, 8)?;
/// assert!(fastipc::queue::remove(&name)?);
/// assert!(!fastipc::queue::remove(&name)?); // already gone
/// assert_eq!(q.capacity(), 8); // this handle keeps its mapping
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove(name: &str) -> Result<bool, ShmError> {
    match Segment::unlink(name) {
        Ok(()) => Ok(true),
        Err(ShmError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens `name` with `open`; when it does not exist, creates it with `create`; when
/// someone else created it meanwhile, opens again. Each failed round lost a race to a
/// concurrent creator or remover, so the rounds are bounded
/// ([`Segment::OPEN_OR_CREATE_ROUNDS`], as for plain segments).
pub(crate) fn open_or_create_with<R>(
    name: &str,
    mut open: impl FnMut() -> Result<R, OpenError>,
    mut create: impl FnMut() -> Result<R, OpenError>,
) -> Result<R, OpenError> {
    for _ in 0..Segment::OPEN_OR_CREATE_ROUNDS {
        match open() {
            Err(OpenError::Shm(ShmError::NotFound { .. })) => {}
            other => return other,
        }
        match create() {
            Err(OpenError::Shm(ShmError::AlreadyExists { .. })) => {}
            other => return other,
        }
    }
    Err(OpenError::Shm(ShmError::Os {
        name: name.to_owned(),
        op: "open_or_create",
        source: std::io::Error::other("the segment kept appearing and disappearing"),
    }))
}

/// Helpers for the queue's unit tests: unique segment names removed on drop.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::sys::shm::Segment;

    /// A segment name no other test uses; the segment is removed when this is dropped.
    pub(crate) struct TempName(pub(crate) String);

    impl TempName {
        pub(crate) fn new(tag: &str) -> TempName {
            TempName(crate::test_util::unique(&format!("queue-{tag}")))
        }
    }

    impl Drop for TempName {
        fn drop(&mut self) {
            let _ = Segment::unlink(&self.0);
        }
    }
}
