//! [`Consumer<T>`] (broadcast: its own cursor, sees every message) and
//! [`SharedConsumer<T>`] (work stealing through a [`SharedCursor`]).
//!
//! Both copy each message out with volatile reads and validate it afterwards (raw.rs
//! explains what that proves, and the one case it cannot catch); both block with the
//! same [`WaitStrategy`].

use core::marker::PhantomData;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::error::RecvError;
use crate::message::IpcMessage;
use crate::queue::cursor::SharedCursor;
use crate::queue::raw::{Locate, RawRing, copy_from_shared};
use crate::queue::ring::Ring;
use crate::queue::wait::{WaitStrategy, wait_for};
use crate::sys::clock::Deadline;

/// The receiving end of a [`SlickQueue`](super::SlickQueue) with its own cursor: it sees
/// every message (broadcast), in publication order, unless producers lap it, in which
/// case it gets [`RecvError::Lagged`] with the number missed (exact for single sends; see
/// [`RecvError::Lagged`] for batches) and continues from the oldest message still in the
/// ring.
///
/// ```
/// use std::time::Duration;
/// use fastipc::SlickQueue;
/// use fastipc::queue::RecvError;
///
/// let q = SlickQueue::<u64>::local(4)?;
/// let tx = q.producer();
/// let mut rx = q.consumer();
/// assert_eq!(rx.try_recv(), Err(RecvError::Empty));
/// for i in 0..6 {
///     tx.send(&i)?;                 // 6 messages into a ring of 4
/// }
/// assert_eq!(rx.try_recv(), Err(RecvError::Lagged(2)));
/// assert_eq!(rx.recv()?, 2);        // the oldest still there
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1))?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer<T> {
    raw: RawRing,
    /// Next element to deliver.
    next: u64,
    /// Start and end of the reservation being delivered (`next == end`: at a boundary,
    /// the next call locates a new reservation at `next`).
    start: u64,
    end: u64,
    /// A lag or corruption found while filling a batch that already held messages:
    /// reported by the next call, so no count is lost.
    deferred: Option<RecvError>,
    wait: WaitStrategy,
    ring: Arc<Ring>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.ring.name())
            .field("next", &self.next)
            .finish()
    }
}

impl<T: IpcMessage> Consumer<T> {
    pub(crate) fn new(ring: Arc<Ring>, cursor: u64) -> Self {
        Consumer {
            raw: *ring.raw(),
            next: cursor,
            start: cursor,
            end: cursor,
            deferred: None,
            wait: WaitStrategy::default(),
            ring,
            _marker: PhantomData,
        }
    }

    /// Sets how blocking receives wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// This consumer with another wait strategy.
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// The absolute index of the next message this consumer will deliver.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Takes the next message if one is published; never blocks.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, RecvError> {
        if self.next == self.end {
            self.locate()?;
        }
        let index = self.next;
        // SAFETY: the element's position is inside the data area (masked), aligned for T
        // (checked for T on attach/create; the data area is 16-aligned), and T is Pod so
        // any bytes are a valid T. Producers may be rewriting it (a lap): the read is
        // volatile and `intact` below rejects the copy in that case.
        let value = unsafe { self.raw.element_ptr(index).cast::<T>().read_volatile() };
        if self.raw.intact(self.start, index, self.end) {
            self.next = index + 1;
            Ok(value)
        } else {
            Err(self.lag(index))
        }
    }

    /// Positions on the reservation at `self.next` (at a boundary).
    #[inline]
    fn locate(&mut self) -> Result<(), RecvError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        match self.raw.locate(self.next) {
            Locate::Found { start, end } => {
                self.start = start;
                self.next = start;
                self.end = end;
                Ok(())
            }
            Locate::Empty { cursor } => {
                self.next = cursor;
                self.end = cursor;
                Err(RecvError::Empty)
            }
            Locate::Skip { cursor, error } => {
                self.next = cursor;
                self.end = cursor;
                Err(error)
            }
        }
    }

    /// The copy of element `at` was overwritten: continue at the oldest still available.
    #[cold]
    fn lag(&mut self, at: u64) -> RecvError {
        let (next, error) = self.raw.lost(at);
        self.next = next;
        self.end = next;
        error
    }

    /// Copies up to `buf.len()` consecutive messages into `buf` without blocking; returns
    /// how many (at least one), or `Err(Empty)` when none is published.
    pub fn try_recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.next == self.end {
                match self.locate() {
                    Ok(()) => {}
                    Err(RecvError::Empty) => break,
                    // Report it on the next call, after what is already copied.
                    Err(e) if filled > 0 => {
                        self.deferred = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let k = ((self.end - self.next) as usize).min(buf.len() - filled);
            let dst = buf.as_mut_ptr().wrapping_add(filled).cast::<u8>();
            // SAFETY: elements `next..next + k` are contiguous inside the data area (a
            // reservation never straddles the end) and `buf[filled..filled + k]` is
            // private; the bytes form valid Ts (Pod). Racing rewrites are detected below.
            unsafe { copy_from_shared(self.raw.element_ptr(self.next), dst, k * size_of::<T>()) };
            if !self.raw.intact(self.start, self.next, self.end) {
                if filled > 0 {
                    break;
                }
                return Err(self.lag(self.next));
            }
            self.next += k as u64;
            filled += k;
        }
        if filled == 0 && !buf.is_empty() {
            return Err(RecvError::Empty);
        }
        Ok(filled)
    }

    /// Waits for the next message without a time limit.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(Deadline::NEVER)
    }

    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// Waits until `deadline` for the next message.
    pub fn recv_deadline(&mut self, deadline: Deadline) -> Result<T, RecvError> {
        self.block(deadline, Self::try_recv)
    }

    /// Waits (until `deadline`) for at least one message, then copies as many as are
    /// available, up to `buf.len()`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [T],
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.block(deadline, |c| c.try_recv_into(buf))
    }

    /// [`Consumer::recv_into_deadline`] without a time limit.
    pub fn recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        self.recv_into_deadline(buf, Deadline::NEVER)
    }

    /// The most recently published message (does not move this consumer).
    pub fn latest(&self) -> Option<T> {
        super::read_latest(&self.raw)
    }
}

/// A consumer in a work-stealing group: consumers sharing one [`SharedCursor`] (threads,
/// processes, Rust or the Python peer's `AtomicCursor` consumers) each get a disjoint
/// share of the messages, every message going to exactly one of them.
///
/// A batch reservation is claimed whole: its messages are copied out at once and
/// delivered by this consumer one by one. Messages claimed but not yet delivered are
/// this consumer's alone: [`SharedConsumer::pending`] counts them, and
/// [`SharedConsumer::take_pending`] hands them over; dropping the consumer drops them (no
/// other consumer of the group will see them).
///
/// ```
/// use fastipc::SlickQueue;
/// use fastipc::queue::SharedCursor;
///
/// let q = SlickQueue::<u32>::local(64)?;
/// let cursor = SharedCursor::local(q.next_index());
/// let mut a = q.shared_consumer(cursor.clone());
/// let mut b = q.shared_consumer(cursor);
/// let tx = q.producer();
/// for i in 0..4 {
///     tx.send(&i)?;
/// }
/// let got = [a.try_recv()?, b.try_recv()?, a.try_recv()?, b.try_recv()?];
/// assert_eq!(got, [0, 1, 2, 3]);
/// assert!(a.try_recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedConsumer<T> {
    raw: RawRing,
    cursor: SharedCursor,
    pending: VecDeque<T>,
    scratch: Vec<T>,
    /// A lag or corruption found while filling a batch that already held messages.
    deferred: Option<RecvError>,
    wait: WaitStrategy,
    ring: Arc<Ring>,
}

impl<T> core::fmt::Debug for SharedConsumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedConsumer")
            .field("queue", &self.ring.name())
            .field("cursor", &self.cursor)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<T: IpcMessage> SharedConsumer<T> {
    pub(crate) fn new(ring: Arc<Ring>, cursor: SharedCursor) -> Self {
        SharedConsumer {
            raw: *ring.raw(),
            cursor,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            deferred: None,
            wait: WaitStrategy::default(),
            ring,
        }
    }

    /// Sets how blocking receives wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// This consumer with another wait strategy.
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// The shared cursor.
    pub fn cursor(&self) -> &SharedCursor {
        &self.cursor
    }

    /// How many messages this consumer claimed (the rest of a batch reservation) but has
    /// not delivered yet. They are delivered before anything else, and lost if the
    /// consumer is dropped first: see [`SharedConsumer::take_pending`].
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes the messages claimed but not yet delivered, in order, e.g. before dropping
    /// the consumer (no other consumer of the group can see them: the shared cursor has
    /// moved past them).
    ///
    /// ```
    /// use fastipc::SlickQueue;
    /// use fastipc::queue::SharedCursor;
    ///
    /// let q = SlickQueue::<u32>::local(16)?;
    /// let mut rx = q.shared_consumer(SharedCursor::local(0));
    /// q.producer().send_batch(&[1, 2, 3])?;
    /// assert_eq!(rx.try_recv()?, 1);     // claims the whole batch
    /// assert_eq!(rx.pending(), 2);
    /// assert_eq!(rx.take_pending(), [2, 3]);
    /// assert_eq!(rx.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_pending(&mut self) -> Vec<T> {
        self.pending.drain(..).collect()
    }

    /// Claims and returns the next message if one is published; never blocks.
    pub fn try_recv(&mut self) -> Result<T, RecvError> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(v);
        }
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let (raw, scratch) = (self.raw, &mut self.scratch);
        let (first, start, end) = self.cursor.claim(&raw, |start, end| {
            if end - start == 1 {
                // SAFETY: as in `Consumer::try_recv`: in bounds, aligned, Pod, a volatile
                // read that `claim` validates before keeping it.
                return Some(unsafe { raw.element_ptr(start).cast::<T>().read_volatile() });
            }
            let n = (end - start) as usize;
            scratch.clear();
            scratch.reserve(n);
            let (src, len) = (raw.element_ptr(start), n * size_of::<T>());
            // SAFETY: the reservation's `n` elements are contiguous in the data area; the
            // scratch vector has room for `n` Ts (reserved above). `claim` validates the
            // copy before keeping it.
            unsafe { copy_from_shared(src, scratch.as_mut_ptr().cast::<u8>(), len) };
            // SAFETY: the first `n` Ts were just written in full, and any bytes are a
            // valid T (Pod).
            unsafe { scratch.set_len(n) };
            None
        })?;
        if let Some(value) = first {
            return Ok(value);
        }
        debug_assert_eq!(self.scratch.len() as u64, end - start);
        let mut items = self.scratch.drain(..);
        let first = items.next().ok_or(RecvError::Empty)?;
        self.pending.extend(items);
        Ok(first)
    }

    /// Waits for the next message without a time limit.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_deadline(Deadline::NEVER)
    }

    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// Waits until `deadline` for the next message.
    pub fn recv_deadline(&mut self, deadline: Deadline) -> Result<T, RecvError> {
        self.block(deadline, Self::try_recv)
    }

    /// Claims up to `buf.len()` messages without blocking; `Err(Empty)` when none.
    pub fn try_recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.try_recv() {
                Ok(v) => {
                    buf[filled] = v;
                    filled += 1;
                }
                Err(RecvError::Empty) => break,
                Err(e) if filled > 0 => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if filled == 0 && !buf.is_empty() {
            return Err(RecvError::Empty);
        }
        Ok(filled)
    }

    /// Waits (until `deadline`) for at least one message, then claims as many as are
    /// available, up to `buf.len()`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [T],
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.block(deadline, |c| c.try_recv_into(buf))
    }

    /// [`SharedConsumer::recv_into_deadline`] without a time limit.
    pub fn recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        self.recv_into_deadline(buf, Deadline::NEVER)
    }
}

/// What the blocking receives of both consumers are made of.
pub(super) trait Blocking: Sized {
    /// The ring and how to wait on it.
    fn waits(&self) -> (RawRing, WaitStrategy);

    /// Called before sleeping: a cursor beyond the head means the queue was reset under
    /// this consumer; start over with the new generation, as the peers' reset check does.
    fn check_reset(&mut self);

    /// Calls `attempt` until it finds something or `deadline` passes, waiting between
    /// attempts as the consumer's strategy says ([`wait_for`]); checks for a reset before
    /// each sleep.
    fn block<R>(
        &mut self,
        deadline: Deadline,
        mut attempt: impl FnMut(&mut Self) -> Result<R, RecvError>,
    ) -> Result<R, RecvError> {
        let (raw, wait) = self.waits();
        wait_for(&raw, &wait, deadline, |idle| {
            if idle {
                self.check_reset();
            }
            attempt(self)
        })
    }
}

impl<T: IpcMessage> Blocking for Consumer<T> {
    fn waits(&self) -> (RawRing, WaitStrategy) {
        (self.raw, self.wait)
    }

    fn check_reset(&mut self) {
        if self.raw.next_index() < self.end {
            self.next = 0;
            self.start = 0;
            self.end = 0;
        }
    }
}

impl<T: IpcMessage> Blocking for SharedConsumer<T> {
    fn waits(&self) -> (RawRing, WaitStrategy) {
        (self.raw, self.wait)
    }

    /// Moves the shared cursor back to 0 (a compare-exchange: one consumer of the group
    /// does it).
    fn check_reset(&mut self) {
        let c = self.cursor.load();
        if self.raw.next_index() < c {
            let _ = self.cursor.compare_exchange(c, 0);
        }
    }
}
