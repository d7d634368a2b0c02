//! [`SharedConsumer<T>`]: a member of a work-stealing group, sharing a [`SharedCursor`]
//! with the others (every message goes to exactly one of them).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::watch::Watch;
use crate::error::{OpenError, RecvError, RecvTimeoutError, TryRecvError};
use crate::message::IpcMessage;
use crate::queue::cursor::SharedCursor;
use crate::queue::endpoints::Role;
use crate::queue::payload;
use crate::queue::raw::RawRing;
use crate::queue::ring::Ring;
use crate::queue::wait::{Pace, WaitStrategy};
use crate::sys::clock::Deadline;

use super::blocking::{Blocking, Iter, Receive, TryIter, untimed};
use super::consumer::RESET_CHECK_INTERVAL;

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

    /// As [`Consumer::skip_unattributed_after`](super::Consumer::skip_unattributed_after).
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
        Iter::new(self)
    }

    /// An iterator over the messages published now, without blocking: ends when the
    /// queue is empty or at the first error, which it then holds ([`TryIter::error`]).
    pub fn try_iter(&mut self) -> TryIter<'_, Self, T> {
        TryIter::new(self)
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

impl<T: IpcMessage> Receive<T> for SharedConsumer<T> {
    fn recv_next(&mut self) -> Result<T, RecvError> {
        self.recv()
    }
    fn try_recv_next(&mut self) -> Result<T, TryRecvError> {
        self.try_recv()
    }
}
