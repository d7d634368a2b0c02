//! [`Consumer<T>`]: broadcast, with its own cursor, it sees every message
//! ([`SharedConsumer`](super::SharedConsumer) is the work-stealing one).
//!
//! Both consumers copy each message out with relaxed atomic loads (`payload`) and
//! validate it afterwards (raw.rs explains what that proves, and the one case it cannot
//! catch); both block with the same [`WaitStrategy`] (module `blocking`).

use core::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::watch::Watch;
use crate::error::{OpenError, RecvError, RecvTimeoutError, TryRecvError};
use crate::message::IpcMessage;
use crate::queue::endpoints::Role;
use crate::queue::payload;
use crate::queue::raw::{Peek, RawRing};
use crate::queue::read::Reader;
use crate::queue::ring::Ring;
use crate::queue::wait::{Pace, WaitStrategy};
use crate::sys::clock::Deadline;

use super::blocking::{Blocking, Iter, Receive, TryIter, untimed};
/// Every this many consecutive `Empty` results, a consumer checks whether the queue was
/// reset under it (its cursor beyond the head). Not on every one: the check loads the
/// header line that producers rewrite on every message, and a busy-spinning consumer
/// would pull it away from them on each poll. So a consumer of any wait strategy, and
/// one that only calls `try_recv`, notices a reset within this many calls.
pub(crate) const RESET_CHECK_INTERVAL: u32 = 64;

/// How many one-element reservations a [`Consumer::try_recv`] locates at once (a run,
/// `queue::read`): the calls after it deliver from the run without locating again (each
/// copy is still validated by its own slot). Batch receives locate runs as long as their
/// buffer.
pub(super) const RUN_LOOKAHEAD: u64 = 32;

/// The receiving end of a [`SlickQueue`](super::SlickQueue) with its own cursor: it sees
/// every message (broadcast), in publication order, unless producers lap it, in which
/// case it gets [`TryRecvError::Lagged`] with the number missed (exact for single sends; see
/// [`TryRecvError::Lagged`] for batches) and continues from the oldest message still in the
/// ring. When the queue is reset ([`SlickQueue::reset`](super::SlickQueue::reset)), it
/// restarts from index 0 within 64 receives that find nothing, whatever its wait strategy.
///
/// ```
/// use std::time::Duration;
/// use fastipc::SlickQueue;
/// use fastipc::queue::TryRecvError;
///
/// let q = SlickQueue::<u64>::local(4)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// for i in 0..6 {
///     tx.send(&i)?;                 // 6 messages into a ring of 4
/// }
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(2)));
/// assert_eq!(rx.recv()?, 2);        // the oldest still there
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1))?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer<T> {
    raw: RawRing,
    /// The next element to deliver, the run it belongs to, and a lag or corruption found
    /// after messages already delivered (reported by the next call, so no count is lost).
    reader: Reader,
    /// Consecutive-ish `Empty` results, for the reset check ([`RESET_CHECK_INTERVAL`]).
    empties: u32,
    wait: WaitStrategy,
    /// How often blocking receives yield while they spin, learnt from the last one.
    pace: Pace,
    watch: Watch,
    ring: Arc<Ring>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Drop for Consumer<T> {
    /// Deregisters, leaving as final position the start of the reservation being
    /// delivered (a boundary; a lossless queue keeps what it has not delivered).
    fn drop(&mut self) {
        self.watch.leave(self.reader.boundary());
    }
}

impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.ring.name())
            .field("next", &self.reader.next())
            .finish()
    }
}

impl<T: IpcMessage> Consumer<T> {
    pub(crate) fn new(ring: Arc<Ring>, cursor: u64) -> Result<Self, OpenError> {
        let (watch, cursor) = Watch::register(&ring, Role::Consumer, cursor)?;
        Ok(Consumer {
            raw: *ring.raw(),
            reader: Reader::new(cursor),
            empties: 0,
            wait: WaitStrategy::default(),
            pace: Pace::default(),
            watch,
            ring,
            _marker: PhantomData,
        })
    }

    /// Skips a claimed slot that no registered fastipc producer covers (a C++ or Python
    /// producer's claim, which cannot be attributed) once this consumer has waited at it
    /// for `after`, reporting `Abandoned(1)`. Off by default: such a producer may only be
    /// slow. A slot claimed by a registered fastipc producer is skipped only when that
    /// producer is dead, whatever this says.
    pub fn skip_unattributed_after(&mut self, after: Option<Duration>) {
        self.watch.set_skip_unattributed(after);
    }

    /// A cursor beyond the head means the queue was reset under this consumer: start
    /// over at 0 (the new generation), as the peers' reset check does, and publish the
    /// rewound position in the endpoint table at once (lossless producers compare the
    /// new generation's indices with it).
    #[cold]
    fn restart_if_reset(&mut self) {
        if self.raw.next_index() < self.reader.end() {
            self.reader.restart(0);
            self.watch.rewind();
        }
    }

    /// Sets how blocking receives wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// What blocking receives have learnt about yielding ([`Pace`]).
    #[cfg(test)]
    pub(crate) fn pace(&self) -> Pace {
        self.pace
    }

    /// This consumer with another wait strategy.
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// The absolute index of the next message this consumer will deliver.
    pub fn position(&self) -> u64 {
        self.reader.next()
    }

    /// Takes the next message if one is published; never blocks.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        // Fast path: one published message at the cursor (what a consumer that keeps up
        // finds), or nothing there yet; everything else, and a copy that a lap
        // overwrote, takes `read`.
        let raw = self.raw;
        match self.reader.peek(&raw) {
            Peek::Single => {
                let c = self.reader.next();
                // SAFETY: as for `read`'s copy below: the element of index `c` of a
                // queue of T, in the data area and aligned to the queue's word; the copy
                // is validated by `take_single` before it is returned.
                let value = unsafe { super::load_message::<T>(raw.element_ptr(c)) };
                if let Some(boundary) = self.reader.take_single(&raw, c) {
                    self.watch.found(boundary);
                    return Ok(value);
                }
            }
            Peek::Empty => return Err(self.empty(false)),
            Peek::Other => {}
        }
        let mut value = <T as bytemuck::Zeroable>::zeroed();
        let watch = &mut self.watch;
        let got = self.reader.read(
            &self.raw,
            1,
            RUN_LOOKAHEAD,
            |start| watch.found(start),
            |src, _| {
                // SAFETY: `read` gives the address of one element of a queue of T
                // (element size checked on attach/create), in the data area and aligned
                // to the queue's word. Producers may be rewriting it (a lap): `read`
                // validates the copy and reports the lag instead of returning it.
                value = unsafe { super::load_message::<T>(src) };
            },
        );
        match got {
            Ok(_) => Ok(value),
            Err(e) => Err(self.report(e)),
        }
    }

    /// What to report for `error` from the reader: an `Empty` goes through the watch's
    /// off-path work ([`Consumer::empty`]).
    #[inline]
    fn report(&mut self, error: TryRecvError) -> TryRecvError {
        match error {
            TryRecvError::Empty => self.empty(false),
            e => e,
        }
    }

    /// Nothing at the cursor: what to report (`Empty`, or `Disconnected`), after the
    /// watch's off-path work (module `watch`).
    /// Every [`RESET_CHECK_INTERVAL`]th `Empty` also checks for a reset.
    ///
    /// Inlined: a consumer spinning on an empty queue comes here on every poll, and the
    /// work is in the rarely taken branches (`restart_if_reset`, the watch's checks).
    #[inline(always)]
    fn empty(&mut self, idle: bool) -> TryRecvError {
        self.empties = self.empties.wrapping_add(1);
        if self.empties.is_multiple_of(RESET_CHECK_INTERVAL) {
            self.restart_if_reset();
        }
        self.watch
            .empty(&self.raw, self.reader.next(), idle)
            .unwrap_or(TryRecvError::Empty)
    }

    /// Copies up to `buf.len()` consecutive messages into `buf` without blocking; returns
    /// how many (at least one), or `Err(Empty)` when none is published.
    ///
    /// Consecutive published messages are located as one run and copied with one copy
    /// and one validation (`queue::read`), not message by message. A lap that overtakes
    /// part of the copy keeps the intact prefix and reports the exact `Lagged(n)` on the
    /// next call; a lap found before anything was copied is reported at once.
    ///
    /// ```
    /// use fastipc::SlickQueue;
    /// use fastipc::queue::TryRecvError;
    ///
    /// let q = SlickQueue::<u64>::local(8)?;
    /// let (tx, mut rx) = (q.producer()?, q.consumer()?);
    /// for i in 0..5 {
    ///     tx.send(&i)?;
    /// }
    /// let mut buf = [0u64; 16];
    /// assert_eq!(rx.try_recv_into(&mut buf)?, 5);
    /// assert_eq!(buf[..5], [0, 1, 2, 3, 4]);
    /// for i in 5..20 {
    ///     tx.send(&i)?;                          // laps the consumer
    /// }
    /// assert_eq!(rx.try_recv_into(&mut buf), Err(TryRecvError::Lagged(7)));
    /// assert_eq!(rx.try_recv_into(&mut buf)?, 8); // 12..20, in two runs (the ring ends at 16)
    /// assert_eq!(buf[..8], [12, 13, 14, 15, 16, 17, 18, 19]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_into(&mut self, buf: &mut [T]) -> Result<usize, TryRecvError> {
        let mut filled = 0;
        let word = self.raw.word();
        while filled < buf.len() {
            let dst = buf[filled..].as_mut_ptr().cast::<u8>();
            let watch = &mut self.watch;
            let room = (buf.len() - filled) as u64;
            let got = self.reader.read(
                &self.raw,
                room,
                room,
                |start| watch.found(start),
                |src, k| {
                    // SAFETY: `read` gives `k <= buf.len() - filled` elements contiguous
                    // from `src` inside the data area, aligned to the queue's word;
                    // `buf[filled..filled + k]` is private and has room for them; the
                    // bytes form valid Ts (Pod). Racing rewrites are detected by `read`,
                    // which then keeps only the intact prefix.
                    unsafe { payload::load(src, dst, k * size_of::<T>(), word) };
                },
            );
            match got {
                Ok((_, kept)) => filled += kept as usize,
                Err(e) => match self.report(e) {
                    TryRecvError::Empty => break,
                    // Report it on the next call, after what is already copied.
                    e if filled > 0 => {
                        self.reader.defer(e);
                        break;
                    }
                    e => return Err(e),
                },
            }
        }
        if filled == 0 && !buf.is_empty() {
            return Err(TryRecvError::Empty);
        }
        Ok(filled)
    }

    /// Waits for the next message without a time limit.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        untimed(|| self.recv_deadline(Deadline::NEVER))
    }

    /// Waits at most `timeout` for the next message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// Waits until `deadline` (a [`Deadline`] or a [`std::time::Instant`]) for the next
    /// message.
    pub fn recv_deadline(&mut self, deadline: impl Into<Deadline>) -> Result<T, RecvTimeoutError> {
        self.block(deadline.into(), Self::try_recv)
    }

    /// A blocking iterator over the messages: ends when the queue is disconnected (every
    /// producer gone and everything read), and also, like `std::sync::mpsc`, at the first
    /// other error (`Lagged`, `Abandoned`, `Corrupt`), which the iterator then holds
    /// ([`Iter::error`]); call `iter()` again to go on past it.
    pub fn iter(&mut self) -> Iter<'_, Self, T> {
        Iter::new(self)
    }

    /// An iterator over the messages published now, without blocking: ends when the
    /// queue is empty or at the first error, which it then holds ([`TryIter::error`]).
    pub fn try_iter(&mut self) -> TryIter<'_, Self, T> {
        TryIter::new(self)
    }

    /// Waits (until `deadline`) for at least one message, then copies as many as are
    /// available, up to `buf.len()`.
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut [T],
        deadline: impl Into<Deadline>,
    ) -> Result<usize, RecvTimeoutError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.block(deadline.into(), |c| c.try_recv_into(buf))
    }

    /// [`Consumer::recv_into_deadline`] without a time limit.
    pub fn recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        untimed(|| self.recv_into_deadline(&mut *buf, Deadline::NEVER))
    }

    /// The most recently published message (does not move this consumer).
    pub fn latest(&self) -> Option<T> {
        super::read_latest(&self.raw)
    }
}

impl<T: IpcMessage> Blocking for Consumer<T> {
    fn waits(&self) -> (RawRing, WaitStrategy, Pace) {
        (self.raw, self.wait, self.pace)
    }

    fn keep_pace(&mut self, pace: Pace) {
        self.pace = pace;
    }

    fn idle_empty(&mut self) -> TryRecvError {
        self.empty(true)
    }

    fn async_repoll(&self) -> Duration {
        self.watch
            .async_repoll(&self.raw, self.reader.next(), &self.wait)
    }

    fn check_reset(&mut self) {
        self.restart_if_reset();
    }
}

impl<T: IpcMessage> Receive<T> for Consumer<T> {
    fn recv_next(&mut self) -> Result<T, RecvError> {
        self.recv()
    }
    fn try_recv_next(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }
}
