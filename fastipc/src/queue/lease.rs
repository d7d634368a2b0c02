//! Leases: the positions that zero-copy guards ([`SlotGuard`](super::SlotGuard),
//! [`BatchGuard`](super::BatchGuard)) of one mapping hold, so that no other reservation
//! made through that mapping reaches them while a guard may write them.
//!
//! # Why
//! The ring has no back-pressure: `capacity` reservations after a producer's, its
//! positions are reserved again. A guard writes its slot whenever its owner calls
//! `write` (or through `as_mut_ptr`), long after its claim; if another reservation of
//! this process could reach the same bytes while the guard lives, the two would write one
//! message over the other (and plain writes through `as_mut_ptr` would race with the
//! other's stores: undefined behaviour). Leases rule that out within the mapping.
//!
//! # How
//! Each mapping (one [`Ring`](super::Ring), shared through its `Arc` by every handle made
//! from it) keeps a table of live leases and `floor`, the start of the oldest one
//! ([`NO_LEASE`] when there is none). Every reservation made through the mapping (`send`,
//! `send_batch`, `reserve`, `reserve_batch`, `Ring::reserve`, `Ring::send_bytes`) reads the
//! floor inside its CAS loop and is refused, before its CAS, when it would end past
//! `floor + capacity`: an acquire load of a process-local word (a plain load on x86-64),
//! the only cost when no lease is live. A guard takes its reservation through [`Leases::reserve`], under the table's
//! lock: it stores a conservative floor first (the head read now, a lower bound of where
//! its reservation will start), makes its claim, then refines the floor to the
//! reservation's start. raw.rs ("Leases") proves that no concurrent claim slips past.
//! When a guard is committed or dropped, its lease ends and the floor moves on.
//!
//! # Ordering
//! Exclusivity needs more than "no claim reaches a leased position": the guard's writes
//! (plain ones through `as_mut_ptr` included) must also *happen before* the write of the claim that reuses the slot
//! after the lease ends, or the two are a data race in the language's model (the refusal
//! orders nothing by itself). Every store of `floor` is a release store made under the
//! table's lock, and [`Leases::floor`] is an acquire load. A claim that reaches a position
//! a lease held was allowed by a floor value stored after that lease ended (a value from
//! before the lease started is ruled out by raw.rs "Leases"); that store is the ending
//! `release`, or a later one made under the same lock, which the lock orders after it. The
//! claim's acquire load synchronises with that store, so the guard's last write (before
//! its publish, before `release`) happens before the claim, and before everything the
//! claiming producer writes next. Its payload writes are relaxed atomics (raw.rs) and the
//! guard's are plain, so this order is what makes them not race.
//!
//! # What stays outside
//! - Other processes, and other mappings of the same segment in this process (another
//!   `open` of the same name), do not see this table. Their writes are outside the
//!   language's model, as for any shared memory. They may lap a guard; the guard's bytes
//!   then belong to their newer message, so what the guard's owner writes afterwards lands
//!   in that message (keep guards short-lived on queues other processes write), and at
//!   commit the guard sees it was lapped and is not published: readers report the lag.
//! - A producer of this process that claimed its reservation before the guard, a lap
//!   behind it, and is still copying its message when the guard claims its slot (raw.rs,
//!   "the window that remains"), can still write into the guard's bytes. The same window
//!   lets two copying producers tear each other's messages. Closing it would take a
//!   handshake on every send, which the lease budget (one relaxed load) excludes.

use std::sync::{Mutex, MutexGuard};

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Release};

use super::raw::{Claim, NO_LEASE, RawRing, Refused};

/// The leases of one mapping: the floor every reservation checks, and the table behind it.
#[derive(Debug)]
pub(crate) struct Leases {
    /// Start of the oldest live lease, [`NO_LEASE`] when none. Written only under `table`'s
    /// lock (release); read by every reservation of the mapping (acquire): see "Ordering"
    /// in the module documentation and raw.rs "Leases".
    floor: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// `(id, start)` of every live lease.
    live: Vec<(u64, u64)>,
}

impl Table {
    fn oldest(&self) -> u64 {
        self.live
            .iter()
            .map(|&(_, start)| start)
            .min()
            .unwrap_or(NO_LEASE)
    }
}

/// A live lease on the reservation that starts at `start`. Ended by [`Leases::release`].
#[derive(Debug)]
pub(crate) struct Lease {
    id: u64,
    start: u64,
}

impl Lease {
    /// Absolute index of the leased reservation's first element.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }
}

impl Default for Leases {
    fn default() -> Self {
        Leases {
            floor: AtomicU64::new(NO_LEASE),
            table: Mutex::new(Table::default()),
        }
    }
}

impl Leases {
    /// The start of the oldest live lease ([`NO_LEASE`] when none), for
    /// [`RawRing::reserve`].
    #[inline]
    pub(crate) fn floor(&self) -> u64 {
        // Acquire: pairs with the release stores below; a claim allowed by the floor it
        // read happens after the end of every lease that floor no longer counts.
        self.floor.load(Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // The table is consistent between statements (no user code runs under the lock),
        // so a panic elsewhere cannot have left it half-updated.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves `n` elements (`1 <= n <= capacity`) of `raw` and leases them, unless that
    /// would reach a position another lease holds, or pass `floor + capacity` (the
    /// lossless floor; `NO_LEASE` when none): `Err(Refused::Held(floor))`, nothing
    /// reserved; or the end of the index space: `Err(Refused::Exhausted)`. `intent` as for
    /// [`RawRing::reserve`]; `C` says how the claim is made (a single producer's leases
    /// are all made by its one thread at a time, so the ordering argument of raw.rs
    /// "Leases" holds by program order).
    pub(crate) fn reserve<C: Claim>(
        &self,
        raw: &RawRing,
        n: u64,
        floor: u64,
        intent: impl Fn(u64),
    ) -> Result<Lease, Refused> {
        let mut table = self.lock();
        let others = table.oldest();
        // Registered before the claim, with a lower bound of its start: the head now
        // (the claim's CAS compares against this value or a later one, and heads only
        // grow). raw.rs "Leases": every claim ordered after ours sees it.
        let lower_bound = raw.next_index();
        self.floor.store(others.min(lower_bound), Release);
        match raw.reserve_as::<C>(n, || others.min(floor), intent) {
            Ok(start) => {
                let id = table.next_id;
                table.next_id += 1;
                table.live.push((id, start));
                self.floor.store(others.min(start), Release);
                Ok(Lease { id, start })
            }
            Err(held) => {
                self.floor.store(others, Release);
                Err(held)
            }
        }
    }

    /// Runs `reset` (the ring's rewind) unless a lease is live (`Err(floor)`, nothing
    /// done), under the table's lock so that no guard is made meanwhile, and leaves the
    /// floor at [`NO_LEASE`]: a reset rewinds the index, and a floor kept from before it
    /// would compare against indices of the old generation.
    pub(crate) fn reset_unleased(&self, reset: impl FnOnce()) -> Result<(), u64> {
        let table = self.lock();
        if !table.live.is_empty() {
            return Err(table.oldest());
        }
        reset();
        self.floor.store(NO_LEASE, Release);
        Ok(())
    }

    /// Ends `lease`: its positions may be reserved again. Call it only after the guard's
    /// last access to them (after its publish).
    pub(crate) fn release(&self, lease: &Lease) {
        let mut table = self.lock();
        if let Some(i) = table.live.iter().position(|&(id, _)| id == lease.id) {
            table.live.swap_remove(i);
        }
        // Release: the guard's last write, through `write` or its pointer (before its publish, before
        // this call) happens before every claim that reads this floor or a later one.
        self.floor.store(table.oldest(), Release);
    }
}
