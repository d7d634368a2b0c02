//! Lossless back-pressure: the claim loop of a lossless queue's producers.
//!
//! A claim is refused (before its CAS, by [`RawRing::reserve`](super::raw::RawRing)) when
//! it would end past `floor + capacity`. In a lossless queue the floor is the lower of the
//! mapping's lease floor and the *lossless floor*: the lowest published position of the
//! registered consumers
//! (`endpoints`, "The lossless floor": 0 before any consumer registered, the head once
//! all have left). Each mapping caches the lossless floor in
//! [`Flow`] and rescans the table only when a claim is refused, so a send that has room
//! costs one more relaxed load of a process-local word.
//!
//! When the rescan does not make room, the producer spins a little (giving the CPU away
//! every [`SPINS_PER_YIELD`] rounds, or at every round once its mapping has learnt that
//! its consumers share its CPU), yields, then sleeps on
//! the table's producer wake word (set flag, rescan, sleep: the protocol of raw.rs "Wake
//! protocol", with consumers as the wakers: they check the flag each time they publish
//! their position, every few messages and before they sleep). Each sleep lasts at most
//! [`PRODUCER_POLL`], and every [`DEAD_CHECK_EVERY`] the producer checks whether the
//! consumer that sets the floor is dead, and evicts it if so: a consumer killed while it
//! holds producers back stops doing so within about `PRODUCER_POLL + DEAD_CHECK_EVERY`
//! (20 ms) of the producer's next check.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use super::endpoints::Table;
use super::lease::Leases;
use super::raw::{self, RawRing};
use super::wait::{Before, timed_yield};
use crate::sys::clock::Deadline;

/// The longest a producer blocked on a full lossless queue sleeps between two rescans.
pub const PRODUCER_POLL: Duration = Duration::from_millis(10);
/// How often a blocked producer checks whether the consumer holding it back is dead.
pub const DEAD_CHECK_EVERY: Duration = Duration::from_millis(10);

/// Spins (with a CPU hint) before a blocked producer starts yielding, then yields before
/// it sleeps.
const SPINS: u32 = 2000;
const YIELDS: u32 = 16;
/// While it spins a blocked producer gives the CPU away every this many rounds (each
/// round a rescan of the table, ~90 ns here), or at every round once its mapping has
/// learnt that its consumers run on its CPU (the rule of `queue::wait::Pace`, kept in
/// [`Flow`]): a consumer on the producer's own CPU cannot make room until the producer
/// yields (the whole spin phase, 2000 rounds, was ~170 µs lost per full ring there). Not
/// fewer: a consumer on another CPU publishes its position every `capacity / 8` messages,
/// and a producer that waited about 64 rounds for it would often pay a yield.
const SPINS_PER_YIELD: u32 = 256;

#[cfg(test)]
thread_local! {
    /// This thread's claims that had to wait for room, and the spin rounds they made
    /// (what a test of the yields in the spin phase counts).
    pub(crate) static WAITED: core::cell::Cell<(u64, u64)> = const { core::cell::Cell::new((0, 0)) };
}

/// The process-local cache of the lossless floor (one per mapping), and how often its
/// blocked producers yield while they spin.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    cache: AtomicU64,
    /// Spin rounds between two yields, learnt from how the last wait for room ended: 1,
    /// or (any other value, 0 at first) [`SPINS_PER_YIELD`]. Relaxed: a hint the
    /// mapping's producers share; any value is safe.
    every: AtomicU32,
}

/// What one non-blocking step of the lossless wait ([`Flow::step`]) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<R> {
    /// Claimed.
    Done(R),
    /// Still full, with the producers' "waiters present" flag raised after the producers'
    /// wake word was read as this value: sleep (or register) on the word with it.
    Wait(u32),
}

/// Why a claim reserved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The lossless queue stayed full until the deadline.
    Full,
    /// A zero-copy guard of this mapping holds the message at this index a lap behind.
    Guard(u64),
    /// The claim would end past the end of the 48-bit index space
    /// ([`RawRing::index_limit`]); only a reset helps.
    Exhausted,
}

impl From<raw::Refused> for Refused {
    /// A refusal of [`RawRing::reserve`] outside the lossless wait: a held floor can only
    /// be a lease (no lossless floor was passed).
    fn from(refused: raw::Refused) -> Refused {
        match refused {
            raw::Refused::Held(held) => Refused::Guard(held),
            raw::Refused::Exhausted => Refused::Exhausted,
        }
    }
}

impl Flow {
    /// The cached lossless floor (relaxed: a stale value is lower, hence safe).
    #[inline]
    pub(crate) fn cached(&self) -> u64 {
        self.cache.load(Relaxed)
    }

    /// Drops the cached floor (to 0, the lowest: the next refused claim rescans), after a
    /// reset rewound the index below it. Relaxed: the cache is only a hint checked
    /// against the table on every refusal.
    pub(crate) fn forget(&self) {
        self.cache.store(0, Relaxed);
    }

    /// One step of [`Flow::claim`] that never waits, for an async send: claims if there
    /// is room; otherwise, when `check_dead`, evicts the consumer that sets the floor if
    /// it is dead; then reads the producers' wake word, raises their "waiters present"
    /// flag and claims once more (the rescan after the flag of the module docs), so that
    /// a consumer that makes room after this step wakes the word.
    pub(crate) fn step<R>(
        &self,
        raw: &RawRing,
        table: &Table,
        leases: &Leases,
        check_dead: bool,
        mut attempt: impl FnMut(u64) -> Result<R, raw::Refused>,
    ) -> Result<Step<R>, Refused> {
        let passed = Deadline::after(Duration::ZERO);
        match self.claim(raw, table, leases, passed, &mut attempt) {
            Err(Refused::Full) => {}
            other => return other.map(Step::Done),
        }
        if check_dead {
            let (_, holder) = table.floor(None, raw.next_index());
            if let Some(i) = holder {
                table.evict_if_dead(i);
            }
        }
        let seq = table.prepare_sleep();
        match self.claim(raw, table, leases, passed, &mut attempt) {
            Err(Refused::Full) => Ok(Step::Wait(seq)),
            other => other.map(Step::Done),
        }
    }

    /// Claims with `attempt(lossless_floor)` (which returns `Err(Refused::Held(floor))`
    /// when refused, the floor being the lower of the lease floor and the one passed, or
    /// `Err(Refused::Exhausted)` at the end of the index space, returned at once), waiting
    /// for room as the module documentation says, until `deadline`.
    ///
    /// The first attempt, which succeeds whenever the cached floor leaves room, is inlined
    /// into the caller; the wait is out of line.
    #[inline(always)]
    pub(crate) fn claim<R>(
        &self,
        raw: &RawRing,
        table: &Table,
        leases: &Leases,
        deadline: Deadline,
        mut attempt: impl FnMut(u64) -> Result<R, raw::Refused>,
    ) -> Result<R, Refused> {
        let cached = self.cached();
        match attempt(cached) {
            Ok(r) => Ok(r),
            Err(raw::Refused::Exhausted) => Err(Refused::Exhausted),
            Err(raw::Refused::Held(held)) => {
                self.wait_for_room(raw, table, leases, deadline, (cached, held), attempt)
            }
        }
    }

    /// The rest of [`Flow::claim`] after a refused first attempt, made with the cached
    /// floor `refused.0` and refused at floor `refused.1`.
    #[cold]
    #[inline(never)]
    fn wait_for_room<R>(
        &self,
        raw: &RawRing,
        table: &Table,
        leases: &Leases,
        deadline: Deadline,
        refused: (u64, u64),
        mut attempt: impl FnMut(u64) -> Result<R, raw::Refused>,
    ) -> Result<R, Refused> {
        #[cfg(test)]
        WAITED.with(|w| w.set((w.get().0 + 1, w.get().1)));
        let mut round = 0u32;
        // Read the clock only once the claim has to wait: a send with room must not pay
        // for a clock read (the common case of every lossless send).
        let mut next_dead_check: Option<Instant> = None;
        let mut first = Some(refused);
        // Relaxed, here and at the store below: a hint, no other memory depends on it.
        let every = match self.every.load(Relaxed) {
            1 => 1,
            _ => SPINS_PER_YIELD,
        };
        let mut before = Before::Start;
        let mut idle_yields = 0;
        loop {
            let (cached, held) = match first.take() {
                Some(refused) => refused,
                None => {
                    let cached = self.cached();
                    match attempt(cached) {
                        Ok(r) => {
                            if let Some(e) = before.teaches(SPINS_PER_YIELD) {
                                self.every.store(e, Relaxed);
                            }
                            return Ok(r);
                        }
                        Err(raw::Refused::Held(held)) => (cached, held),
                        Err(raw::Refused::Exhausted) => return Err(Refused::Exhausted),
                    }
                }
            };
            let lease = leases.floor();
            if lease <= held && lease < cached {
                return Err(Refused::Guard(lease));
            }
            let (floor, holder) = table.floor(None, raw.next_index());
            if floor > cached {
                self.cache.store(floor, Relaxed);
                continue;
            }
            if lease <= held {
                // The lease and the lossless floor are the same position: waiting for
                // the consumers does not help while the guard lives.
                return Err(Refused::Guard(lease));
            }
            if deadline.has_passed() {
                return Err(Refused::Full);
            }
            round += 1;
            if round <= SPINS {
                #[cfg(test)]
                WAITED.with(|w| w.set((w.get().0, w.get().1 + 1)));
                core::hint::spin_loop();
                before = Before::Spin;
                // Not near the deadline: under load a yield may not come back for a
                // scheduler slice (`Deadline::allows_yield`).
                if round.is_multiple_of(every) && deadline.allows_yield() {
                    before = timed_yield();
                    // A yield counts as the rounds it replaces: as many yields either way.
                    round += SPINS_PER_YIELD - every;
                }
                continue;
            }
            before = Before::Idle;
            if idle_yields < YIELDS {
                idle_yields += 1;
                std::thread::yield_now();
                continue;
            }
            if let Some(i) = holder {
                let now = Instant::now();
                let due = *next_dead_check.get_or_insert(now + DEAD_CHECK_EVERY);
                if now >= due {
                    next_dead_check = Some(now + DEAD_CHECK_EVERY);
                    if table.evict_if_dead(i) {
                        continue;
                    }
                }
            }
            let seq = table.prepare_sleep();
            let (floor, _) = table.floor(None, raw.next_index());
            if floor > cached {
                self.cache.store(floor, Relaxed);
                continue;
            }
            table.sleep(seq, deadline.min(Deadline::after(PRODUCER_POLL)));
        }
    }
}
