//! What a typed consumer does with its endpoint entry, all off the per-message path:
//! publishing its position (every [`Watch::step`] messages in a lossless queue, and
//! whenever it finds the queue empty), and, when it finds the queue empty, rate-limited
//! checks for a disconnect (every producer gone) and for a claim abandoned by a dead
//! producer (raw.rs "Abandoned claims").

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::TryRecvError;
use crate::queue::endpoints::{Role, Table};
use crate::queue::layout::INVALID_INDEX;
use crate::queue::raw::RawRing;
use crate::queue::ring::Ring;
use crate::queue::{Mode, WaitStrategy};

/// How long a consumer waits at a claimed but unpublished slot before it asks whether the
/// claimant is dead.
pub const STUCK_GRACE: Duration = Duration::from_millis(5);
/// The least time between two checks (disconnect, dead claimant) of one consumer.
const CHECK_EVERY: Duration = Duration::from_millis(2);
/// Checks between two liveness checks of the registered producers (a crashed producer is
/// noticed within about `CHECK_EVERY × JUDGE_EVERY`).
const JUDGE_EVERY: u32 = 5;
/// Empty results between two looks at the clock on the non-blocking path.
const EMPTIES_PER_CHECK: u32 = 64;
/// How often a pending async receive re-checks a queue whose producers all wake it
/// (typed/async_recv.rs, "When a pending receive re-polls"): only to notice a producer
/// that died without leaving (its liveness is judged at every fifth look).
pub const ASYNC_IDLE_CHECK: Duration = Duration::from_secs(1);

/// A consumer's registration and its rate-limited checks.
#[derive(Debug)]
pub(crate) struct Watch {
    table: Option<Table>,
    entry: usize,
    /// Position last published.
    published: u64,
    /// Publish again once the cursor reaches this (`u64::MAX`: only when empty).
    publish_at: u64,
    step: u64,
    first: u64,
    empties: u32,
    checks: u32,
    next_check: Instant,
    stuck: Option<(u64, Instant)>,
    /// The last idle `empty` skipped its checks (too soon after the previous ones).
    skipped: bool,
    skip_unattributed: Option<Duration>,
    // Keeps the table's memory mapped while `table` points into it; dropped last.
    _ring: Arc<Ring>,
}

impl Watch {
    /// Registers a consumer of `role` starting at `position` (raised to the lossless
    /// floor when below it); returns the watch and where the consumer starts.
    pub(crate) fn register(
        ring: &Arc<Ring>,
        role: Role,
        position: u64,
    ) -> Result<(Watch, u64), crate::error::OpenError> {
        let (table, entry, position) = match ring.table() {
            Some(t) => {
                let raw = *ring.raw();
                let (entry, p) = t
                    .register_consumer(role, position, ring.mode() == Mode::Lossless, || {
                        raw.next_index()
                    })
                    .ok_or_else(|| ring.endpoints_full())?;
                (Some(*t), entry, p)
            }
            None => (None, 0, position),
        };
        let step = match ring.mode() {
            Mode::Lossless => (ring.capacity() as u64 / 8).clamp(1, 256),
            Mode::Lossy => u64::MAX,
        };
        let watch = Watch {
            table,
            entry,
            published: position,
            publish_at: position.saturating_add(step),
            step,
            first: position,
            empties: 0,
            checks: 0,
            next_check: Instant::now(),
            stuck: None,
            skipped: false,
            skip_unattributed: None,
            _ring: Arc::clone(ring),
        };
        Ok((watch, position))
    }

    /// Sets the bound after which a claim no registered producer covers is skipped.
    pub(crate) fn set_skip_unattributed(&mut self, after: Option<Duration>) {
        self.skip_unattributed = after;
    }

    /// Called with a reservation boundary every message before which was delivered, after
    /// each delivery (once per receive call, a batch receive included) or claim:
    /// publishes it every `step` messages (lossless queues only).
    #[inline(always)]
    pub(crate) fn found(&mut self, cursor: u64) {
        // Nothing else here: this runs once per reservation (a stuck position is
        // recognised by its cursor in `empty`, which moves on with it).
        if cursor >= self.publish_at {
            self.publish(cursor);
        }
    }

    #[cold]
    fn publish(&mut self, cursor: u64) {
        self.publish_at = cursor.saturating_add(self.step);
        if let Some(t) = &self.table
            && cursor != self.published
        {
            self.published = cursor;
            let count = cursor.saturating_sub(self.first);
            if self.step == u64::MAX {
                // Lossy: nobody waits for this position.
                t.report_position(self.entry, cursor, count);
            } else {
                t.publish_position(self.entry, cursor, count);
            }
        }
    }

    /// Called when nothing is published at `cursor` (a boundary). Publishes the position
    /// if it changed; then, at most every [`CHECK_EVERY`] (and on the non-blocking path
    /// only every [`EMPTIES_PER_CHECK`] empty results), checks for a disconnect and for a
    /// dead claimant at `cursor`. `Some(Disconnected)` once every producer is gone and
    /// everything was read.
    ///
    /// Inlined up to the rate limit: a consumer spinning on an empty queue comes here on
    /// every poll, and only every [`EMPTIES_PER_CHECK`]th of those goes further
    /// ([`Watch::check`]).
    #[inline(always)]
    pub(crate) fn empty(&mut self, raw: &RawRing, cursor: u64, idle: bool) -> Option<TryRecvError> {
        if cursor != self.published {
            self.publish(cursor);
        }
        self.table.as_ref()?;
        self.empties = self.empties.wrapping_add(1);
        if !idle && !self.empties.is_multiple_of(EMPTIES_PER_CHECK) {
            return None;
        }
        self.check(raw, cursor)
    }

    /// The part of [`Watch::empty`] past its rate limit on the number of empty results:
    /// at most every [`CHECK_EVERY`], the disconnect and dead-claimant checks.
    #[cold]
    #[inline(never)]
    fn check(&mut self, raw: &RawRing, cursor: u64) -> Option<TryRecvError> {
        let table = self.table?;
        let now = Instant::now();
        self.skipped = now < self.next_check;
        if self.skipped {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let head = raw.next_index();
        if head <= cursor {
            self.stuck = None;
            // Liveness (syscalls) only every JUDGE_EVERY-th check; deregistration shows
            // at every one.
            self.checks = self.checks.wrapping_add(1);
            let judge = self.checks.is_multiple_of(JUDGE_EVERY);
            let gone = table.producers_ever() && table.live_producers(judge) == 0;
            // Re-read the head: a producer that published and left after the first read.
            return (gone && raw.next_index() <= cursor).then_some(TryRecvError::Disconnected);
        }
        // Claimed (the head is past it) but not published.
        match self.stuck {
            Some((at, _)) if at == cursor => {}
            _ => {
                self.stuck = Some((cursor, now));
                return None;
            }
        }
        let since = self.stuck.map_or(now, |(_, t)| t);
        if now.duration_since(since) < STUCK_GRACE {
            return None;
        }
        let seen = raw
            .slot(cursor)
            .data_index
            .load(core::sync::atomic::Ordering::Acquire);
        if seen != INVALID_INDEX && seen >= cursor {
            return None; // Published (or marked) meanwhile: the next locate sees it.
        }
        let mut dead = None;
        for (i, start, n) in table.claims_covering(cursor) {
            if start != cursor || !table.is_dead(i) {
                return None; // A live claimant (or one we cannot judge): keep waiting.
            }
            dead = Some(n);
        }
        let n = match dead {
            Some(n) => n,
            None => match self.skip_unattributed {
                Some(bound) if now.duration_since(since) >= bound => 1,
                _ => return None,
            },
        };
        raw.abandon(cursor, n.clamp(1, raw.capacity()), Some(seen));
        self.stuck = None;
        None
    }

    /// How long a pending async receive at `cursor`, whose last check found nothing
    /// ([`Watch::empty`] with `idle`), may wait before it looks again by itself when
    /// nobody wakes it (typed/async_recv.rs, "When a pending receive re-polls"):
    /// - `wait.poll()` when a producer that never wakes may publish: the queue has no
    ///   endpoint table (a peer made it), no fastipc producer ever registered in it, or
    ///   the consumer declared [`WaitStrategy::peer_producers`];
    /// - `wait.poll()` while a claim at `cursor` is unpublished (a dead claimant is
    ///   skipped only by looking again);
    /// - until the next allowed check, when the last one was skipped as too soon and no
    ///   producer is registered now (the disconnect is due);
    /// - otherwise `max(wait.poll(), ASYNC_IDLE_CHECK)`: every producer is a fastipc
    ///   producer, which wakes the receive when it publishes or leaves; only a producer
    ///   that dies without leaving needs a look now and then.
    pub(crate) fn async_repoll(&self, raw: &RawRing, cursor: u64, wait: &WaitStrategy) -> Duration {
        let poll = wait.poll();
        let Some(table) = &self.table else {
            return poll;
        };
        if wait.expects_peer_producers() || !table.producers_ever() || raw.next_index() > cursor {
            return poll;
        }
        // A check skipped as too soon after the previous one: what it would have seen of
        // the producers without syscalls. While one is registered, its leaving wakes the
        // receive (its entry freed, SeqCst, then the flag the receive raised before this
        // scan); with none left, the disconnect is due at the next allowed check.
        if self.skipped && table.live_producers(false) == 0 {
            return self
                .next_check
                .saturating_duration_since(Instant::now())
                .max(Duration::from_micros(10));
        }
        poll.max(ASYNC_IDLE_CHECK)
    }

    /// After a reset rewound the queue and this consumer's cursor to 0: publishes
    /// position 0 at once (a lossless producer must not go on comparing the new
    /// generation's indices with this consumer's position from before the reset) and
    /// forgets a claim it was waiting at.
    #[cold]
    pub(crate) fn rewind(&mut self) {
        self.stuck = None;
        self.publish(0);
    }

    /// Deregisters, leaving `position` as this consumer's final position.
    pub(crate) fn leave(&mut self, position: u64) {
        if let Some(t) = self.table.take() {
            t.deregister(self.entry, Some(position));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let p = self.published;
        self.leave(p);
    }
}
