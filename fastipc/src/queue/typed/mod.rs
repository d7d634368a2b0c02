//! Typed endpoints over a [`Ring`]: [`SlickQueue<T>`] makes or attaches the queue and
//! hands out [`Producer<T>`], [`Consumer<T>`] and [`SharedConsumer<T>`], each owning an
//! `Arc` of the mapping so it can move to another thread.

mod async_recv;
mod async_send;
#[cfg(test)]
mod async_send_tests;
#[cfg(test)]
mod async_tests;
mod blocking;
mod consumer;
mod guard;
mod producer;
mod shared_consumer;
mod single;
#[cfg(test)]
mod single_tests;
mod watch;

use core::marker::PhantomData;
use std::sync::Arc;

#[cfg(feature = "stream")]
pub use async_recv::RecvStream;
pub use async_recv::{RecvFuture, SharedRecvFuture};
pub use async_send::SendFuture;
pub use blocking::{Iter, Receive, TryIter};
pub use consumer::Consumer;
pub use guard::{BatchGuard, SlotGuard};
pub use producer::{Producer, ProducerKind};
pub use shared_consumer::SharedConsumer;
pub use single::SingleProducer;
pub use watch::{ASYNC_IDLE_CHECK, STUCK_GRACE};

use super::cursor::SharedCursor;
use super::layout::DATA_ALIGN;
use super::payload;
use super::raw::RawRing;
use super::read;
use super::ring::{Expect, Ring, RingSpec};
use super::{Mode, QueueOptions};
use crate::error::{OpenError, SendError};
use crate::message::IpcMessage;

/// A lock-free multi-producer, multi-consumer ring of `T` messages, byte-compatible with
/// the C++ `slick::SlickQueue<T>` and Python `slick-queue-py` 2.3.
///
/// In a lossy queue (the default, [`Mode::Lossy`]) producers never wait for consumers:
/// when consumers fall a whole ring behind, the oldest messages are overwritten and those
/// consumers get [`RecvError::Lagged`](crate::queue::RecvError::Lagged) with the count. In
/// a lossless queue ([`SlickQueue::create_with`] and the other `_with` constructors with
/// [`Mode::Lossless`]) producers wait instead while a registered consumer is a whole ring
/// behind. Otherwise the one thing that refuses a send is a zero-copy guard made through
/// the same mapping (this handle, its clones and their endpoints) still held a whole ring
/// behind ([`SendError::GuardHeld`](crate::queue::SendError::GuardHeld), see
/// [`Producer::reserve`]).
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u64>::local(1024)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?; // sees everything sent from now on
/// tx.send(&7)?;
/// tx.send_batch(&[8, 9])?;
/// assert_eq!(rx.try_recv()?, 7);
/// let mut buf = [0u64; 4];
/// assert_eq!(rx.try_recv_into(&mut buf)?, 2);
/// assert_eq!(&buf[..2], &[8, 9]);
/// assert_eq!(q.latest(), Some(9));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Messages are any [`IpcMessage`], usually derived:
///
/// ```
/// use fastipc::{IpcMessage, SlickQueue};
///
/// #[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Tick { ts_ns: u64, price: f64 }
///
/// let q = SlickQueue::<Tick>::local(64)?;
/// let mut rx = q.consumer()?;
/// q.producer()?.send(&Tick { ts_ns: 1, price: 9.5 })?;
/// assert_eq!(rx.try_recv()?, Tick { ts_ns: 1, price: 9.5 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Between processes, name the queue; the first to come creates it:
///
/// ```
/// use fastipc::SlickQueue;
///
/// # let name = format!("fastipc-doc-queue-{}", std::process::id());
/// let q = SlickQueue::<[u8; 32]>::open_or_create(&name, 256)?;
/// let again = SlickQueue::<[u8; 32]>::open(&name)?;      // e.g. in another process
/// assert_eq!(again.capacity(), 256);
/// assert!(SlickQueue::<u64>::open(&name).is_err());      // another type is refused
/// fastipc::queue::remove(&name)?;                    // by name, whatever the type
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlickQueue<T> {
    ring: Arc<Ring>,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SlickQueue<T> {
    fn clone(&self) -> Self {
        SlickQueue {
            ring: Arc::clone(&self.ring),
            _marker: PhantomData,
        }
    }
}

impl<T> core::fmt::Debug for SlickQueue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlickQueue")
            .field("name", &self.ring.name())
            .field("capacity", &self.ring.capacity())
            .field("element_size", &self.ring.element_size())
            .finish()
    }
}

impl<T: IpcMessage> SlickQueue<T> {
    /// Creates the shared queue `name` for `capacity` (a power of two) messages; fails if
    /// the name is taken. The message type's fingerprint and name are recorded.
    pub fn create(name: &str, capacity: usize) -> Result<Self, OpenError> {
        Self::create_with(name, capacity, Mode::Lossy)
    }

    /// [`SlickQueue::create`] with `options`: a [`Mode`] ([`Mode::Lossless`]: producers
    /// wait for the registered consumers instead of overwriting what they have not read)
    /// or [`QueueOptions`] (a mode, and whether the queue has a single producer).
    pub fn create_with(
        name: &str,
        capacity: usize,
        options: impl Into<QueueOptions>,
    ) -> Result<Self, OpenError> {
        check_type::<T>()?;
        Ok(Self::wrap(Ring::create(
            name,
            &spec::<T>(capacity).with_options(options.into()),
        )?))
    }

    /// Attaches to the existing shared queue `name`, which must hold `T`: same element
    /// size, and same fingerprint when the creator recorded one. Either mode and either
    /// producer declaration are accepted ([`SlickQueue::mode`] and
    /// [`SlickQueue::is_single_producer`] tell which).
    pub fn open(name: &str) -> Result<Self, OpenError> {
        check_type::<T>()?;
        Ok(Self::wrap(Ring::open_expecting(name, &expect::<T>(None))?))
    }

    /// Attaches to `name` if it exists (it must hold `T` and have this capacity, which
    /// must be valid either way), else creates it.
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, OpenError> {
        Self::open_or_create_with(name, capacity, Mode::Lossy)
    }

    /// [`SlickQueue::open_or_create`] with `options` (a [`Mode`] or [`QueueOptions`]): an
    /// existing queue must have been made with the same ([`OpenError::ModeMismatch`] or
    /// [`OpenError::SingleProducerMismatch`] names both otherwise).
    ///
    /// ```
    /// use fastipc::queue::{Mode, OpenError};
    /// use fastipc::SlickQueue;
    ///
    /// # let name = format!("fastipc-doc-mode-{}", std::process::id());
    /// let q = SlickQueue::<u64>::open_or_create_with(&name, 64, Mode::Lossless)?;
    /// assert_eq!(q.mode(), Mode::Lossless);
    /// let lossy = SlickQueue::<u64>::open_or_create(&name, 64);
    /// assert!(matches!(lossy, Err(OpenError::ModeMismatch { .. })));
    /// fastipc::queue::remove(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create_with(
        name: &str,
        capacity: usize,
        options: impl Into<QueueOptions>,
    ) -> Result<Self, OpenError> {
        check_type::<T>()?;
        let options = options.into();
        let spec = spec::<T>(capacity).with_options(options);
        let mut expect = expect::<T>(Some(capacity));
        expect.mode = Some(options.mode);
        expect.single_producer = Some(options.single_producer);
        Ok(Self::wrap(Ring::open_or_create_expecting(
            name, &spec, &expect,
        )?))
    }

    /// A queue in private memory for threads of one process.
    pub fn local(capacity: usize) -> Result<Self, OpenError> {
        Self::local_with(capacity, Mode::Lossy)
    }

    /// [`SlickQueue::local`] with `options` (a [`Mode`] or [`QueueOptions`]).
    pub fn local_with(
        capacity: usize,
        options: impl Into<QueueOptions>,
    ) -> Result<Self, OpenError> {
        check_type::<T>()?;
        Ok(Self::wrap(Ring::local(
            &spec::<T>(capacity).with_options(options.into()),
        )?))
    }

    /// The queue's delivery mode.
    pub fn mode(&self) -> Mode {
        self.ring.mode()
    }

    /// Whether the queue was created single-producer ([`QueueOptions::single_producer`]):
    /// its producer is then [`SlickQueue::single_producer`], and
    /// [`SlickQueue::producer`] is refused.
    pub fn is_single_producer(&self) -> bool {
        self.ring.is_single_producer()
    }

    /// Registered producers whose processes may still run (clones of one producer count
    /// once; 0 in a queue made by a peer, whose endpoints register nowhere).
    pub fn producer_count(&self) -> usize {
        self.ring.producer_count()
    }

    /// Registered consumers (members of shared-consumer groups included) whose processes
    /// may still run.
    pub fn consumer_count(&self) -> usize {
        self.ring.consumer_count()
    }

    fn wrap(ring: Ring) -> Self {
        SlickQueue {
            ring: Arc::new(ring),
            _marker: PhantomData,
        }
    }

    /// A producer (cheap; any number may exist, in any thread or process). Producers
    /// made from this handle or its clones share one mapping, and with it the leases of
    /// their zero-copy guards.
    ///
    /// The producer registers in the queue's endpoint table (clones share its entry) and
    /// deregisters when the last clone is dropped; [`OpenError::EndpointsFull`] when the
    /// table has no free entry. Refused on a single-producer queue
    /// ([`OpenError::SingleProducerQueue`]): use [`SlickQueue::single_producer`].
    pub fn producer(&self) -> Result<Producer<T>, OpenError> {
        Producer::new(Arc::clone(&self.ring))
    }

    /// The one producer of a single-producer queue ([`QueueOptions::single_producer`]).
    /// While it lives, every other producer of the queue is refused, in every process:
    /// another `single_producer()` with [`OpenError::SingleProducerInUse`] (naming the
    /// holder's process), [`SlickQueue::producer`], byte-level sends and `fastipc send`
    /// with their own errors. When its holder's process dies, the next call takes over.
    /// [`OpenError::NotSingleProducer`] on a queue not created single-producer.
    ///
    /// ```
    /// use fastipc::queue::{OpenError, QueueOptions};
    /// use fastipc::SlickQueue;
    ///
    /// let q = SlickQueue::<u64>::local_with(8, QueueOptions::new().single_producer())?;
    /// let tx = q.single_producer()?;
    /// assert!(matches!(q.single_producer(), Err(OpenError::SingleProducerInUse { .. })));
    /// drop(tx);
    /// let _again = q.single_producer()?; // free again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn single_producer(&self) -> Result<SingleProducer<T>, OpenError> {
        SingleProducer::new(Arc::clone(&self.ring))
    }

    /// A consumer that sees every message published from now on; in a lossless queue,
    /// from the oldest message no consumer has read yet ([`SlickQueue::start_index`]), so
    /// that what producers sent before it came is delivered. It registers in the
    /// queue's endpoint table ([`OpenError::EndpointsFull`] when full) and deregisters
    /// when dropped.
    pub fn consumer(&self) -> Result<Consumer<T>, OpenError> {
        Consumer::new(Arc::clone(&self.ring), self.ring.start_index())
    }

    /// A consumer that starts at the oldest message still in the ring (in a lossless
    /// queue, not before the oldest one no other consumer has read).
    pub fn consumer_from_oldest(&self) -> Result<Consumer<T>, OpenError> {
        Consumer::new(Arc::clone(&self.ring), self.ring.oldest_index())
    }

    /// A consumer in a work-stealing group: every consumer sharing `cursor` (threads,
    /// processes, Rust or Python) gets each message exactly once. Each member registers
    /// (role shared-consumer). Start a new group's cursor at [`SlickQueue::start_index`].
    pub fn shared_consumer(&self, cursor: SharedCursor) -> Result<SharedConsumer<T>, OpenError> {
        SharedConsumer::new(Arc::clone(&self.ring), cursor)
    }

    /// Where [`SlickQueue::consumer`] starts: the head in a lossy queue, the oldest
    /// message not yet read by any registered consumer in a lossless one.
    pub fn start_index(&self) -> u64 {
        self.ring.start_index()
    }

    /// The most recently published message, if any (the last element of the last
    /// published batch).
    pub fn latest(&self) -> Option<T> {
        read_latest(self.ring.raw())
    }

    /// Capacity in messages.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The segment name (`None` for a local queue).
    pub fn name(&self) -> Option<&str> {
        self.ring.name()
    }

    /// Whether this handle created the queue.
    pub fn created(&self) -> bool {
        self.ring.created()
    }

    /// The absolute index the next message will get.
    pub fn next_index(&self) -> u64 {
        self.ring.next_index()
    }

    /// The untyped queue underneath.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Clears the queue back to index 0, as the peers' `reset()`; consumers of every wait
    /// strategy notice within a bounded number of receives and restart from 0. Refused
    /// with [`SendError::ResetWhileGuardHeld`] while a zero-copy guard of this mapping
    /// lives (see [`Ring::reset`]).
    pub fn reset(&self) -> Result<(), SendError> {
        self.ring.reset()
    }
}

fn spec<T: IpcMessage>(capacity: usize) -> RingSpec {
    RingSpec::new(capacity, size_of::<T>()).with_type(T::NAME, T::FINGERPRINT)
}

fn expect<T: IpcMessage>(capacity: Option<usize>) -> Expect {
    Expect {
        capacity,
        element_size: Some(size_of::<T>()),
        ty: Some((T::NAME.to_owned(), T::FINGERPRINT)),
        mode: None,
        single_producer: None,
    }
}

fn check_type<T: IpcMessage>() -> Result<(), OpenError> {
    if align_of::<T>() > DATA_ALIGN {
        return Err(OpenError::UnsupportedAlignment {
            type_name: T::NAME,
            align: align_of::<T>(),
        });
    }
    Ok(())
}

/// Copies the message at `src` (an element of a queue of `T`) out of the ring.
///
/// # Safety
/// `src` is `raw.element_ptr(x)` of a live queue whose element size is `size_of::<T>()`
/// (checked on attach and create).
#[inline(always)]
pub(crate) unsafe fn load_message<T: IpcMessage>(src: *const u8) -> T {
    let mut value = core::mem::MaybeUninit::<T>::uninit();
    let (len, word) = (size_of::<T>(), payload::word_for(size_of::<T>()));
    // SAFETY: one element: in the data area, aligned to the queue's word (elements start
    // at multiples of the element size from the 16-aligned data area), `len` a multiple
    // of it; `value` is private. Concurrent producers write with `payload` too.
    unsafe { payload::load(src, value.as_mut_ptr().cast::<u8>(), len, word) };
    // SAFETY: every byte was written just above, and T is Pod: any bytes are a valid T.
    unsafe { value.assume_init() }
}

/// Copies `msgs` into the ring at `dst` (consecutive elements of a queue of `T`).
///
/// # Safety
/// `dst` is `raw.element_ptr(x)` of a live queue whose element size is `size_of::<T>()`,
/// and `msgs.len()` elements from it lie in the data area (a reservation's).
#[inline(always)]
pub(crate) unsafe fn store_messages<T: IpcMessage>(msgs: &[T], dst: *mut u8) {
    let word = payload::word_for(size_of::<T>());
    // SAFETY: the caller's range, aligned to the queue's word, a whole number of
    // elements; `msgs` is private memory (any alignment).
    unsafe { payload::store(msgs.as_ptr().cast::<u8>(), dst, size_of_val(msgs), word) };
}

/// The last element of the last published reservation, validated after the copy.
fn read_latest<T: IpcMessage>(raw: &RawRing) -> Option<T> {
    for _ in 0..64 {
        let (start, end) = raw.locate_last()?;
        let run = raw.extend_run(start, end, 1);
        let mut value = <T as bytemuck::Zeroable>::zeroed();
        let (_, taken) = read::take(raw, &run, end - 1, 1, |src, _| {
            // SAFETY: `take` gives the last element of the reservation, in a queue of T
            // (element size checked on attach). Producers may be rewriting it; `take`
            // rejects such a copy.
            value = unsafe { load_message::<T>(src) };
        });
        if taken.lost.is_none() {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests;
