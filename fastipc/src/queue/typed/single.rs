//! [`SingleProducer<T>`]: the one producer of a queue created single-producer
//! ([`QueueOptions::single_producer`](crate::queue::QueueOptions::single_producer)), which
//! claims and publishes with plain stores instead of read-modify-writes (queue/raw.rs,
//! "Single-producer mode").
//!
//! The plain stores are correct only while no other claimant exists, and this type is how
//! that is enforced:
//! - in other processes and other handles: its registration (queue/endpoints/mod.rs, "Single
//!   producer") refuses a second one while it lives; ordinary producers, byte-level sends
//!   and producer registrations are refused on such a queue whatever its state;
//! - in this process: it is neither `Clone` nor `Sync`, so one thread at a time uses it,
//!   and its guards and async-send futures borrow it, so they are not `Send` either (their
//!   commit publishes, which must stay on that one thread). It is `Send`: it can move to
//!   another thread as a whole. It wraps a private [`Producer`] and forwards each method
//!   by hand rather than through `Deref`, which would hand out a `&Producer`, a `Send`
//!   reference through which two threads could claim at once.

use core::cell::Cell;
use core::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::async_send::SendFuture;
use super::guard::{BatchGuard, SlotGuard};
use super::producer::{Producer, ProducerKind, sealed};
use crate::error::{OpenError, SendError, SendTimeoutError, TrySendError};
use crate::message::IpcMessage;
use crate::queue::raw::Single;
use crate::queue::ring::Ring;
use crate::sys::clock::Deadline;

/// The one producer of a single-producer queue:
/// [`SlickQueue::single_producer`](crate::SlickQueue::single_producer) hands it out, at
/// most one at a time in all processes. It has [`Producer`]'s methods, with the same
/// meaning and errors, and its sends cost no read-modify-write of the shared header
/// (BENCHMARKS.md measures it against the multi-producer `send`).
///
/// `Send` (move it to the thread that sends), not `Sync` and not `Clone`: two threads
/// sending at once through one handle would be two claimants. So this does not compile:
///
/// ```compile_fail
/// fn shared<S: Sync>(_: &S) {}
/// let q = fastipc::SlickQueue::<u64>::local_with(8, fastipc::queue::QueueOptions::new().single_producer()).unwrap();
/// let tx = q.single_producer().unwrap();
/// shared(&tx); // `SingleProducer` is not `Sync`
/// ```
///
/// ```compile_fail
/// let q = fastipc::SlickQueue::<u64>::local_with(8, fastipc::queue::QueueOptions::new().single_producer()).unwrap();
/// let tx = q.single_producer().unwrap();
/// let again = tx.clone(); // `SingleProducer` is not `Clone`
/// ```
///
/// nor may one of its guards go to another thread while it sends (a guard's commit
/// publishes, and publishes must stay on one thread):
///
/// ```compile_fail
/// let q = fastipc::SlickQueue::<u64>::local_with(8, fastipc::queue::QueueOptions::new().single_producer()).unwrap();
/// let tx = q.single_producer().unwrap();
/// let slot = tx.reserve().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || slot.commit()); // the guard is not `Send`
///     tx.send(&1).unwrap();
/// });
/// ```
///
/// while the producer itself moves freely:
///
/// ```
/// use fastipc::queue::QueueOptions;
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u64>::local_with(8, QueueOptions::new().single_producer())?;
/// let tx = q.single_producer()?;
/// let mut rx = q.consumer()?;
/// std::thread::spawn(move || tx.send(&5)).join().unwrap()?;
/// assert_eq!(rx.try_recv()?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SingleProducer<T> {
    inner: Producer<T>,
    /// Not `Sync` (a `Cell` is `Send` and not `Sync`).
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> core::fmt::Debug for SingleProducer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SingleProducer")
            .field("producer", &self.inner)
            .finish()
    }
}

impl<T> sealed::Sealed for SingleProducer<T> {}

impl<T: IpcMessage> ProducerKind<T> for SingleProducer<T> {
    const SINGLE: bool = true;
    fn producer(&self) -> &Producer<T> {
        &self.inner
    }
}

impl<T: IpcMessage> SingleProducer<T> {
    pub(super) fn new(ring: Arc<Ring>) -> Result<Self, OpenError> {
        Ok(SingleProducer {
            inner: Producer::new_single(ring)?,
            _not_sync: PhantomData,
        })
    }

    /// [`Producer::send`].
    #[inline]
    pub fn send(&self, msg: &T) -> Result<u64, SendError> {
        self.inner.send_as::<Single>(msg)
    }

    /// [`Producer::try_send`].
    pub fn try_send(&self, msg: &T) -> Result<u64, TrySendError<T>> {
        self.inner.try_send_as::<Single>(msg)
    }

    /// [`Producer::send_timeout`].
    pub fn send_timeout(&self, msg: &T, timeout: Duration) -> Result<u64, SendTimeoutError<T>> {
        self.inner
            .send_deadline_as::<Single>(msg, Deadline::after(timeout))
    }

    /// [`Producer::send_deadline`].
    pub fn send_deadline(
        &self,
        msg: &T,
        deadline: impl Into<Deadline>,
    ) -> Result<u64, SendTimeoutError<T>> {
        self.inner.send_deadline_as::<Single>(msg, deadline.into())
    }

    /// [`Producer::send_batch`].
    pub fn send_batch(&self, msgs: &[T]) -> Result<u64, SendError> {
        self.inner.send_batch_as::<Single>(msgs)
    }

    /// [`Producer::reserve`]; the guard borrows this producer and is not `Send`.
    pub fn reserve(&self) -> Result<SlotGuard<'_, T, Self>, SendError> {
        Producer::reserve_by(self)
    }

    /// [`Producer::reserve_with`].
    pub fn reserve_with(&self, fill: impl FnOnce(u64, &mut T)) -> Result<u64, SendError> {
        Producer::reserve_with_by(self, fill)
    }

    /// [`Producer::reserve_batch`]; the guard borrows this producer and is not `Send`.
    pub fn reserve_batch(&self, n: usize) -> Result<BatchGuard<'_, T, Self>, SendError> {
        Producer::reserve_batch_by(self, n)
    }

    /// [`Producer::send_async`]. The future borrows this producer and is not `Send`: poll
    /// it on the thread that owns the producer (a current-thread runtime, a local task
    /// set, or any executor that does not move it).
    pub fn send_async<'a>(&'a self, msg: &'a T) -> SendFuture<'a, T, Self> {
        SendFuture::new(self, msg)
    }

    /// [`Producer::producer_count`]: 1 while this producer lives (its process is alive).
    pub fn producer_count(&self) -> usize {
        self.inner.producer_count()
    }

    /// Capacity of the queue in messages.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}
