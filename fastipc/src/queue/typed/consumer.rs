//! [`Consumer<T>`] (broadcast: its own cursor, sees every message) and
//! [`SharedConsumer<T>`] (work stealing through a [`SharedCursor`]).
//!
//! Both copy each message out with relaxed atomic loads (`payload`) and validate it afterwards (raw.rs
//! explains what that proves, and the one case it cannot catch); both block with the
//! same [`WaitStrategy`].

use core::marker::PhantomData;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::watch::Watch;
use crate::error::{OpenError, RecvError, RecvTimeoutError, TryRecvError};
use crate::message::IpcMessage;
use crate::queue::cursor::SharedCursor;
use crate::queue::endpoints::Role;
use crate::queue::payload;
use crate::queue::raw::{Peek, RawRing};
use crate::queue::read::Reader;
use crate::queue::ring::Ring;
use crate::queue::wait::{Pace, WaitStrategy, wait_for};
use crate::sys::clock::Deadline;

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
const RUN_LOOKAHEAD: u64 = 32;

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
        Iter {
            rx: self,
            error: None,
            _marker: PhantomData,
        }
    }

    /// An iterator over the messages published now, without blocking: ends when the
    /// queue is empty or at the first error, which it then holds ([`TryIter::error`]).
    pub fn try_iter(&mut self) -> TryIter<'_, Self, T> {
        TryIter {
            rx: self,
            error: None,
            _marker: PhantomData,
        }
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
/// let mut a = q.shared_consumer(cursor.clone())?;
/// let mut b = q.shared_consumer(cursor)?;
/// let tx = q.producer()?;
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
    deferred: Option<TryRecvError>,
    /// `Empty` results, for the reset check ([`RESET_CHECK_INTERVAL`]).
    empties: u32,
    wait: WaitStrategy,
    /// How often blocking receives yield while they spin, learnt from the last one.
    pace: Pace,
    watch: Watch,
    ring: Arc<Ring>,
}

impl<T> Drop for SharedConsumer<T> {
    /// Deregisters, leaving the group's cursor as this member's final position.
    fn drop(&mut self) {
        let at = self.cursor.load();
        self.watch.leave(at);
    }
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
    pub(crate) fn new(ring: Arc<Ring>, cursor: SharedCursor) -> Result<Self, OpenError> {
        let (watch, _) = Watch::register(&ring, Role::SharedConsumer, cursor.load())?;
        Ok(SharedConsumer {
            raw: *ring.raw(),
            cursor,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            deferred: None,
            empties: 0,
            wait: WaitStrategy::default(),
            pace: Pace::default(),
            watch,
            ring,
        })
    }

    /// As [`Consumer::skip_unattributed_after`].
    pub fn skip_unattributed_after(&mut self, after: Option<Duration>) {
        self.watch.set_skip_unattributed(after);
    }

    /// A claim found nothing: every [`RESET_CHECK_INTERVAL`]th time, checks whether the
    /// queue was reset under the group (as for `Consumer`, not on every poll); then
    /// [`Self::empty`]. Inlined, as `Consumer::empty` is: a member spinning on an empty
    /// queue comes here on every poll.
    #[inline(always)]
    fn claim_empty(&mut self) -> TryRecvError {
        self.empties = self.empties.wrapping_add(1);
        if self.empties.is_multiple_of(RESET_CHECK_INTERVAL) {
            self.check_reset();
        }
        self.empty(false)
    }

    /// Nothing at the shared cursor: `Empty` or `Disconnected` (see `Consumer::empty`).
    #[inline(always)]
    fn empty(&mut self, idle: bool) -> TryRecvError {
        let at = self.cursor.load();
        self.watch
            .empty(&self.raw, at, idle)
            .unwrap_or(TryRecvError::Empty)
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
    /// let mut rx = q.shared_consumer(SharedCursor::local(0))?;
    /// q.producer()?.send_batch(&[1, 2, 3])?;
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
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(v);
        }
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        // Publish (every few messages) a position no later than what the claim below
        // copies: the cursor only grows, so the one read now is at or before it.
        self.watch.found(self.cursor.load());
        let (raw, scratch) = (self.raw, &mut self.scratch);
        let mut single = None;
        let claimed = self.cursor.claim(&raw, 1, |_, src, k| {
            if k == 1 {
                // SAFETY: as in `Consumer::try_recv`: `claim` gives one element of a
                // queue of T, and validates the copy before keeping it.
                single = Some(unsafe { super::load_message::<T>(src) });
                return;
            }
            single = None;
            scratch.clear();
            scratch.reserve(k);
            // SAFETY: `claim` gives the reservation's `k` elements contiguous from `src`
            // in the data area, aligned to the queue's word; the scratch vector has room
            // for `k` Ts (reserved above). `claim` validates the copy before keeping it.
            unsafe {
                payload::load(
                    src,
                    scratch.as_mut_ptr().cast::<u8>(),
                    k * size_of::<T>(),
                    raw.word(),
                )
            };
            // SAFETY: the first `k` Ts were just written in full, and any bytes are a
            // valid T (Pod).
            unsafe { scratch.set_len(k) };
        });
        let run = match claimed {
            Ok(c) => c,
            Err(TryRecvError::Empty) => return Err(self.claim_empty()),
            Err(e) => return Err(e),
        };
        if let Some(value) = single {
            return Ok(value);
        }
        debug_assert_eq!(self.scratch.len() as u64, run.end - run.start);
        let mut items = self.scratch.drain(..);
        let first = items.next().ok_or(TryRecvError::Empty)?;
        self.pending.extend(items);
        Ok(first)
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
        Iter {
            rx: self,
            error: None,
            _marker: PhantomData,
        }
    }

    /// An iterator over the messages published now, without blocking: ends when the
    /// queue is empty or at the first error, which it then holds ([`TryIter::error`]).
    pub fn try_iter(&mut self) -> TryIter<'_, Self, T> {
        TryIter {
            rx: self,
            error: None,
            _marker: PhantomData,
        }
    }

    /// Claims up to `buf.len()` messages without blocking; `Err(Empty)` when none.
    /// Messages claimed earlier ([`SharedConsumer::pending`]) come first; then
    /// consecutive one-element messages are claimed as one run (one copy, one validation,
    /// one move of the shared cursor); a batch reservation larger than the room left is
    /// claimed whole, its rest kept pending.
    pub fn try_recv_into(&mut self, buf: &mut [T]) -> Result<usize, TryRecvError> {
        let mut filled = 0;
        while filled < buf.len() {
            if let Some(v) = self.pending.pop_front() {
                buf[filled] = v;
                filled += 1;
                continue;
            }
            let result = match self.deferred.take() {
                Some(e) => Err(e),
                None => self.claim_into(&mut buf[filled..]),
            };
            match result {
                Ok(k) => filled += k,
                Err(TryRecvError::Empty) => break,
                Err(e) if filled > 0 => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if filled == 0 && !buf.is_empty() {
            return Err(TryRecvError::Empty);
        }
        Ok(filled)
    }

    /// Claims the run at the shared cursor (at most `out.len()` one-element messages, or
    /// one reservation) into `out`, the rest of a larger reservation into `pending`;
    /// returns how many went to `out`. `Empty` (or `Disconnected`) through [`Self::empty`].
    fn claim_into(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        self.watch.found(self.cursor.load());
        let (raw, scratch) = (self.raw, &mut self.scratch);
        let room = out.len();
        let dst = out.as_mut_ptr().cast::<u8>();
        let mut direct = true;
        let claimed = self.cursor.claim(&raw, room as u64, |_, src, k| {
            direct = k <= room;
            let (to, len) = if direct {
                (dst, k * size_of::<T>())
            } else {
                scratch.clear();
                scratch.reserve(k);
                (scratch.as_mut_ptr().cast::<u8>(), k * size_of::<T>())
            };
            // SAFETY: `claim` gives `k` elements contiguous from `src` in the data area,
            // aligned to the queue's word; `to` has room for `k` Ts (`out` when
            // `k <= room`, else the scratch vector, reserved above) and is private; any
            // bytes are a valid T (Pod). `claim` validates the copy before keeping it.
            unsafe { payload::load(src, to, len, raw.word()) };
            if !direct {
                // SAFETY: the first `k` Ts were just written in full.
                unsafe { scratch.set_len(k) };
            }
        });
        let run = match claimed {
            Ok(run) => run,
            Err(TryRecvError::Empty) => return Err(self.claim_empty()),
            Err(e) => return Err(e),
        };
        let k = (run.end - run.start) as usize;
        if direct {
            return Ok(k);
        }
        let mut items = self.scratch.drain(..k);
        for slot in out.iter_mut() {
            *slot = items.next().ok_or(TryRecvError::Empty)?;
        }
        self.pending.extend(items);
        Ok(room)
    }

    /// Waits (until `deadline`) for at least one message, then claims as many as are
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

    /// [`SharedConsumer::recv_into_deadline`] without a time limit.
    pub fn recv_into(&mut self, buf: &mut [T]) -> Result<usize, RecvError> {
        untimed(|| self.recv_into_deadline(&mut *buf, Deadline::NEVER))
    }
}

/// What the blocking receives of both consumers are made of.
pub(super) trait Blocking: Sized {
    /// The ring and how to wait on it.
    fn waits(&self) -> (RawRing, WaitStrategy, Pace);

    /// Keeps what a blocking receive learnt about yielding (see [`Pace`]).
    fn keep_pace(&mut self, pace: Pace);

    /// A cursor beyond the head means the queue was reset under this consumer; start
    /// over with the new generation, as the peers' reset check does. Called before each
    /// sleep, and by `try_recv` every [`RESET_CHECK_INTERVAL`]th `Empty`.
    fn check_reset(&mut self);

    /// Called when the re-check before a sleep found nothing: the watch's checks without
    /// rate limit on the empty count (`Empty` or `Disconnected`).
    fn idle_empty(&mut self) -> TryRecvError;

    /// After an `idle_empty` that found nothing: how long a pending async receive may
    /// wait before it looks again by itself (`Watch::async_repoll`).
    fn async_repoll(&self) -> Duration;

    /// Calls `attempt` until it finds something or `deadline` passes, waiting between
    /// attempts as the consumer's strategy says ([`wait_for`]); checks for a reset, a
    /// disconnect and a dead claimant before each sleep.
    fn block<R>(
        &mut self,
        deadline: Deadline,
        mut attempt: impl FnMut(&mut Self) -> Result<R, TryRecvError>,
    ) -> Result<R, RecvTimeoutError> {
        let (raw, wait, mut pace) = self.waits();
        let got = wait_for(&raw, &wait, deadline, &mut pace, |idle| {
            if idle {
                self.check_reset();
            }
            match attempt(self) {
                Err(TryRecvError::Empty) if idle => Err(self.idle_empty()),
                other => other,
            }
        });
        self.keep_pace(pace);
        got
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

impl<T: IpcMessage> Blocking for SharedConsumer<T> {
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
            .async_repoll(&self.raw, self.cursor.load(), &self.wait)
    }

    /// Moves the shared cursor back to 0 (a compare-exchange: one consumer of the group
    /// does it).
    /// The member's endpoint position follows (see `Consumer::restart_if_reset`).
    #[cold]
    fn check_reset(&mut self) {
        let c = self.cursor.load();
        if self.raw.next_index() < c {
            let _ = self.cursor.compare_exchange(c, 0);
            self.watch.rewind();
        }
    }
}

/// `f` with no deadline: `Timeout` cannot happen, so it is asked again rather than
/// reported.
fn untimed<R>(mut f: impl FnMut() -> Result<R, RecvTimeoutError>) -> Result<R, RecvError> {
    loop {
        match f() {
            Ok(r) => return Ok(r),
            Err(e) => {
                if let Some(e) = e.untimed() {
                    return Err(e);
                }
            }
        }
    }
}

/// What [`Iter`] and [`TryIter`] need of a consumer.
pub trait Receive<T> {
    /// The next message, waiting without a time limit.
    fn recv_next(&mut self) -> Result<T, RecvError>;
    /// The next message if one is published.
    fn try_recv_next(&mut self) -> Result<T, TryRecvError>;
}

impl<T: IpcMessage> Receive<T> for Consumer<T> {
    fn recv_next(&mut self) -> Result<T, RecvError> {
        self.recv()
    }
    fn try_recv_next(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }
}

impl<T: IpcMessage> Receive<T> for SharedConsumer<T> {
    fn recv_next(&mut self) -> Result<T, RecvError> {
        self.recv()
    }
    fn try_recv_next(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }
}

/// A blocking iterator over a consumer's messages ([`Consumer::iter`],
/// [`SharedConsumer::iter`]). It ends at a disconnect, or at the first other error, which
/// [`Iter::error`] then returns.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u32>::local(16)?;
/// let mut rx = q.consumer()?;
/// let tx = q.producer()?;
/// for i in 0..3 {
///     tx.send(&i)?;
/// }
/// drop(tx); // the only producer leaves: the iterator ends after the last message
/// let got: Vec<u32> = rx.iter().collect();
/// assert_eq!(got, [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<'a, C, T> {
    rx: &'a mut C,
    error: Option<RecvError>,
    _marker: PhantomData<fn() -> T>,
}

impl<C, T> Iter<'_, C, T> {
    /// The error that ended the iteration, if it was not a disconnect.
    pub fn error(&self) -> Option<RecvError> {
        self.error
    }
}

impl<C: Receive<T>, T> Iterator for Iter<'_, C, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.rx.recv_next() {
            Ok(v) => Some(v),
            Err(RecvError::Disconnected) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// A non-blocking iterator over the messages published now ([`Consumer::try_iter`],
/// [`SharedConsumer::try_iter`]): ends when the queue is empty, at a disconnect, or at the
/// first other error, which [`TryIter::error`] then returns.
#[derive(Debug)]
pub struct TryIter<'a, C, T> {
    rx: &'a mut C,
    error: Option<TryRecvError>,
    _marker: PhantomData<fn() -> T>,
}

impl<C, T> TryIter<'_, C, T> {
    /// The error that ended the iteration, if it was not `Empty` or a disconnect.
    pub fn error(&self) -> Option<TryRecvError> {
        self.error
    }
}

impl<C: Receive<T>, T> Iterator for TryIter<'_, C, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.rx.try_recv_next() {
            Ok(v) => Some(v),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}
