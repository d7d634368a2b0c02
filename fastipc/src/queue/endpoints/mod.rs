//! The endpoint table: fastipc's record, inside a queue it made, of the producers and
//! consumers attached to it (docs/LAYOUT.md §1 "Endpoint table"). It is what lossless
//! back-pressure, dead-producer recovery, disconnect and `fastipc inspect` read.
//!
//! ```text
//! endpoints_offset:  table header (64 bytes)
//! + 64 · (1 + i):    entry i (64 bytes, one cache line), i < MAX_ENDPOINTS
//! ```
//!
//! ## Table header (64 bytes)
//! | off | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `magic` | `b"FIPCEND1"` |
//! | 8 | 8 | `generation` | bumped (SeqCst) each time an entry becomes active: the seqlock of producers' floor scans |
//! | 16 | 8 | `consumers_ever` | non-zero once a consumer registered: until then the lossless floor is 0, so what producers send waits (up to a ring) for the first consumer |
//! | 24 | 4 | `producers_ever` | non-zero once a fastipc producer registered (disconnect needs one) |
//! | 28 | 4 | `prod_wake_seq` | futex word of producers blocked on a full lossless queue |
//! | 32 | 4 | `prod_sleepers` | "producers asleep" flag (0 or 1), same protocol as the header's `sleepers` |
//! | 36 | 4 | `high_water` | one more than the highest entry ever claimed (only grows): scans stop there |
//! | 40 | 24 | padding | 0 |
//!
//! ## Entry (64 bytes)
//! | off | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 4 | `state` | 0 free, 1 claiming (being filled by its registrant), 2 active |
//! | 4 | 4 | `role` | 1 producer, 2 consumer, 3 member of a shared-consumer group, 4 durable consumer |
//! | 8 | 4 | `pid` | registrant's process id |
//! | 12 | 4 | `pid_ns` | its pid namespace (inode of `/proc/self/ns/pid`; 0 unknown) |
//! | 16 | 8 | `start_time` | its start time, clock ticks after boot (0 unknown) |
//! | 24 | 8 | `position` | consumers: the published cursor (every message before it is read) |
//! | 32 | 8 | `intent` | producers: start of the claim in flight, [`NO_INTENT`] when none; durable consumers: their hold (module `durable`) |
//! | 40 | 8 | `intent_n` | producers: its size in elements |
//! | 48 | 8 | `count` | consumers: messages received as of the last publish; producers: 0 |
//! | 56 | 8 | `key` | durable consumers: the key they are found by; others 0 |
//!
//! ## Entry states
//! | from | to | by | how |
//! |---|---|---|---|
//! | free (0) | claiming (1) | a registrant | CAS (acquire) |
//! | claiming | active (2) | the registrant, after writing role, identity, position | store (release), then `generation += 1` (SeqCst) |
//! | active | free | the registrant on drop (deregistration) | store (SeqCst: a leaving producer then wakes pending receives, `Table::deregister`) |
//! | active | claiming | anyone who finds the registrant dead (the liveness check `OwnerDied` uses) | CAS (acquire); then free (store, release), or reused by a registrant |
//!
//! A process killed between its claiming CAS and its active store leaves an entry in
//! state 1 for good (a few instructions' window); it costs one entry.
//!
//! Peers (C++/Python) never read or write the table; a queue they made has no table
//! (`flags` bit 0 clear): it is lossy, and its endpoints register nowhere.
//!
//! Durable consumers (role 4, an entry that outlives its registrant): module `durable`.
//!
//! ## Single producer
//! In a queue whose header `flags` bit 2 is set, the only producer entries are those of
//! single-producer registrants (`Table::register_single_producer`; ordinary producers are
//! refused before they register). A registrant makes its entry active as any other (state
//! store, SeqCst), then loads the `state` (SeqCst) and role of every other entry, and frees
//! its own again when one is an active producer whose process may be alive. Two registrants
//! racing are a Dekker pair: all these SeqCst accesses are in one total order, so of two
//! registrants, the later one's scan comes after the earlier one's "active" store and sees
//! it (both may see each other and both back out; never both keep their entry). The
//! "active" store is written only after `role` (relaxed, before the release half of the
//! SeqCst store), so a scan that sees it sees the role. A dead holder's entry is left
//! active: readers stuck at its claim in flight read its `intent` to skip that claim, and
//! it is reclaimed as any dead entry. The holder frees its entry when dropped (state store,
//! SeqCst), and that store is read by the next registrant's scan (or by whoever reused the
//! entry, which the next registrant's scan then reads).
//!
//! ## The lossless floor
//! Producers of a lossless queue refuse a claim that would end past `F + capacity`, with
//! `F` the *floor*: the lowest published position of the active consumer entries; when
//! there is none, 0 until a consumer ever registered (messages wait for the first one),
//! and the head afterwards (a consumer that left, or died, holds nobody back: producers
//! may then overwrite, rescanning once a ring). Each producer caches `F` and rescans only
//! when a claim is refused. The invariant that makes a stale cache safe is "every cache is
//! at most the position of every active consumer": positions only grow; the head only
//! grows; and a consumer registers at the floor and then, after its `generation` bump,
//! raises its position to the floor of the *other* entries. A scan is a seqlock read
//! (`generation` loaded before and after, SeqCst; retried when it moved), so a scan that
//! saw no new entry ended before that entry's bump, and read positions (and a head) no
//! higher than the ones the new consumer raises itself to.

use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicU32, AtomicU64};

use crate::mem::MemRef;
use crate::sys::futex::{self, Scope};
use crate::sys::process::ProcessId;

mod durable;
mod listing;

use durable::is_held;
pub use durable::{HOLD_LOCKED, HOLD_TAG, held};
pub use listing::{EndpointInfo, decode_table};

/// Entries in a table.
pub const MAX_ENDPOINTS: usize = 64;
/// Bytes per entry (one cache line).
pub const ENTRY_SIZE: usize = 64;
/// Bytes of the table: header and entries.
pub const TABLE_LEN: usize = ENTRY_SIZE * (1 + MAX_ENDPOINTS);
/// The table header's marker.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"FIPCEND1");
/// `intent` value meaning "no claim in flight" (a durable consumer's: dormant).
pub const NO_INTENT: u64 = u64::MAX;
/// Entry states.
pub mod state {
    /// Unused.
    pub const FREE: u32 = 0;
    /// Being filled in by its registrant.
    pub const CLAIMING: u32 = 1;
    /// Registered.
    pub const ACTIVE: u32 = 2;
}

/// What an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// A [`Producer`](crate::queue::Producer) (all clones of one share the entry).
    Producer,
    /// A [`Consumer`](crate::queue::Consumer).
    Consumer,
    /// A member of a [`SharedConsumer`](crate::queue::SharedConsumer) group.
    SharedConsumer,
    /// A consumer whose entry and position outlive its process, found again by a key
    /// ([`Ring::register_durable`](crate::queue::Ring::register_durable)).
    DurableConsumer,
}

impl Role {
    fn code(self) -> u32 {
        match self {
            Role::Producer => 1,
            Role::Consumer => 2,
            Role::SharedConsumer => 3,
            Role::DurableConsumer => 4,
        }
    }

    fn from_code(code: u32) -> Option<Role> {
        match code {
            1 => Some(Role::Producer),
            2 => Some(Role::Consumer),
            3 => Some(Role::SharedConsumer),
            4 => Some(Role::DurableConsumer),
            _ => None,
        }
    }

    /// Whether this role reads (its position holds producers back in lossless mode).
    pub fn is_consumer(self) -> bool {
        !matches!(self, Role::Producer)
    }

    /// `"producer"`, `"consumer"`, `"shared-consumer"` or `"durable-consumer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::SharedConsumer => "shared-consumer",
            Role::DurableConsumer => "durable-consumer",
        }
    }
}

/// The table header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct TableHeader {
    magic: AtomicU64,
    generation: AtomicU64,
    consumers_ever: AtomicU64,
    producers_ever: AtomicU32,
    prod_wake_seq: AtomicU32,
    prod_sleepers: AtomicU32,
    high_water: AtomicU32,
    pad: [AtomicU32; 6],
}

/// One entry.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Entry {
    state: AtomicU32,
    role: AtomicU32,
    pid: AtomicU32,
    pid_ns: AtomicU32,
    start_time: AtomicU64,
    position: AtomicU64,
    intent: AtomicU64,
    intent_n: AtomicU64,
    count: AtomicU64,
    key: AtomicU64,
}

const _: () = {
    assert!(size_of::<TableHeader>() == ENTRY_SIZE);
    assert!(size_of::<Entry>() == ENTRY_SIZE);
    assert!(core::mem::offset_of!(TableHeader, generation) == 8);
    assert!(core::mem::offset_of!(TableHeader, consumers_ever) == 16);
    assert!(core::mem::offset_of!(TableHeader, producers_ever) == 24);
    assert!(core::mem::offset_of!(TableHeader, prod_wake_seq) == 28);
    assert!(core::mem::offset_of!(TableHeader, prod_sleepers) == 32);
    assert!(core::mem::offset_of!(TableHeader, high_water) == 36);
    assert!(core::mem::offset_of!(Entry, role) == 4);
    assert!(core::mem::offset_of!(Entry, pid) == 8);
    assert!(core::mem::offset_of!(Entry, pid_ns) == 12);
    assert!(core::mem::offset_of!(Entry, start_time) == 16);
    assert!(core::mem::offset_of!(Entry, position) == 24);
    assert!(core::mem::offset_of!(Entry, intent) == 32);
    assert!(core::mem::offset_of!(Entry, intent_n) == 40);
    assert!(core::mem::offset_of!(Entry, count) == 48);
    assert!(core::mem::offset_of!(Entry, key) == 56);
};

/// Pointers to a validated table (Copy, like [`RawRing`](super::raw::RawRing)).
///
/// Invariant: `header` points to a live, 64-aligned [`TABLE_LEN`]-byte table for as long
/// as the value is used (it is paired with the `Ring` that owns the memory).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Table {
    header: NonNull<TableHeader>,
    scope: Scope,
}

// SAFETY: the table is made of atomics only, in memory that outlives every use (type
// invariant); any thread may access it.
unsafe impl Send for Table {}
// SAFETY: as above: all access goes through atomics.
unsafe impl Sync for Table {}

impl Table {
    /// The table at `offset` of `mem`, if the bytes are in bounds, aligned and carry the
    /// marker.
    ///
    /// # Safety
    /// The memory `mem` describes must stay mapped for as long as the returned value (or
    /// any copy of it) is used.
    pub(crate) unsafe fn at(mem: &MemRef<'_>, offset: usize, scope: Scope) -> Option<Table> {
        let ptr = mem.ptr_at(offset, TABLE_LEN, 64).ok()?;
        let header = NonNull::new(ptr.cast::<TableHeader>())?;
        let table = Table { header, scope };
        (table.header().magic.load(Acquire) == TABLE_MAGIC).then_some(table)
    }

    /// Writes a fresh table at `offset` of `mem` (memory nobody else sees yet, zeroed);
    /// whether `mem` had room for it.
    pub(crate) fn init(mem: &MemRef<'_>, offset: usize) -> bool {
        let Ok(ptr) = mem.ptr_at(offset, TABLE_LEN, 64) else {
            return false;
        };
        // SAFETY: `ptr_at` checked TABLE_LEN in-bounds, 64-aligned bytes; they are
        // atomics only, so a shared reference is sound whatever else happens.
        let header = unsafe { &*ptr.cast::<TableHeader>() };
        header.magic.store(TABLE_MAGIC, Release);
        true
    }

    fn header(&self) -> &TableHeader {
        // SAFETY: type invariant: live, aligned, atomics only.
        unsafe { self.header.as_ref() }
    }

    fn entry(&self, i: usize) -> &Entry {
        debug_assert!(i < MAX_ENDPOINTS);
        let ptr = self.header.as_ptr().cast::<Entry>().wrapping_add(1 + i);
        // SAFETY: `i < MAX_ENDPOINTS` (all callers iterate below it or hold an index
        // `register` returned), so the entry lies inside the table; atomics only.
        unsafe { &*ptr }
    }

    /// Registers an endpoint of `role` at `position` (consumers) and returns its entry,
    /// or `None` when every entry is held by a live endpoint. Dead registrants' entries
    /// are reclaimed on the way.
    pub(crate) fn register(&self, role: Role, position: u64) -> Option<usize> {
        self.register_noting(role, position, 0).map(|(i, _)| i)
    }

    /// Registers the single producer of a single-producer queue (module docs, "Single
    /// producer"): a producer entry, kept only if no *other* active producer entry names
    /// a live process. `Err(Some(pid))` names such a holder (the entry was freed again);
    /// `Err(None)` when the table is full. Entries of dead holders are left in place
    /// for the readers' dead-claimant check, which needs their `intent`.
    pub(crate) fn register_single_producer(&self) -> Result<usize, Option<u32>> {
        let i = self.register(Role::Producer, 0).ok_or(None)?;
        // Every entry, not only up to `high_water`: the Dekker argument below is on the
        // `state` words alone.
        for j in (0..MAX_ENDPOINTS).filter(|&j| j != i) {
            let e = self.entry(j);
            // SeqCst: pairs with the SeqCst store of "active" of every registrant.
            if e.state.load(SeqCst) != state::ACTIVE
                || e.role.load(Relaxed) != Role::Producer.code()
            {
                continue;
            }
            let holder = self.identity(e);
            if !holder.is_dead() {
                self.deregister(i, None);
                return Err(Some(holder.pid));
            }
        }
        Ok(i)
    }

    /// [`Table::register`], also returning whether a consumer had ever registered before
    /// this one (always `true` for producers).
    fn register_noting(&self, role: Role, position: u64, key: u64) -> Option<(usize, bool)> {
        let me = ProcessId::current();
        for pass in 0..2 {
            for i in 0..MAX_ENDPOINTS {
                let e = self.entry(i);
                let claimed = match e.state.load(Relaxed) {
                    state::FREE => e
                        .state
                        .compare_exchange(state::FREE, state::CLAIMING, Acquire, Relaxed)
                        .is_ok(),
                    state::ACTIVE if pass == 1 => self.reclaim_if_dead(i),
                    _ => false,
                };
                if !claimed {
                    continue;
                }
                // Before "active" (and the generation bump): a scan that reads the old
                // value and misses this entry is retried (module docs).
                self.header().high_water.fetch_max(i as u32 + 1, SeqCst);
                e.role.store(role.code(), Relaxed);
                e.pid.store(me.pid, Relaxed);
                e.pid_ns.store(me.pid_namespace, Relaxed);
                e.start_time.store(me.start_time, Relaxed);
                e.position.store(position, Relaxed);
                let hold = if role == Role::DurableConsumer {
                    held(me.pid)
                } else {
                    NO_INTENT
                };
                e.intent.store(hold, Relaxed);
                e.intent_n.store(0, Relaxed);
                e.count.store(0, Relaxed);
                e.key.store(key, Relaxed);
                // Release: whoever sees "active" sees the fields above.
                e.state.store(state::ACTIVE, SeqCst);
                // After "active": a scan that finds the flag set and no active consumer
                // knows that every consumer that ever came has left.
                let was_ever = if role == Role::Producer {
                    self.header().producers_ever.store(1, SeqCst);
                    true
                } else {
                    self.header().consumers_ever.swap(1, SeqCst) != 0
                };
                // The seqlock bump that makes concurrent floor scans retry (module docs).
                self.header().generation.fetch_add(1, SeqCst);
                return Some((i, was_ever));
            }
        }
        None
    }

    /// Whether entry `i` is active and its registrant certainly dead; if so, takes it over
    /// (state claiming): the caller then owns it. Never a durable consumer's entry.
    fn reclaim_if_dead(&self, i: usize) -> bool {
        let e = self.entry(i);
        if e.state.load(Acquire) != state::ACTIVE
            || e.role.load(Relaxed) == Role::DurableConsumer.code()
            || !self.identity(e).is_dead()
        {
            return false;
        }
        if e.state
            .compare_exchange(state::ACTIVE, state::CLAIMING, Acquire, Relaxed)
            .is_err()
        {
            return false;
        }
        true
    }

    fn identity(&self, e: &Entry) -> ProcessId {
        ProcessId {
            pid: e.pid.load(Relaxed),
            start_time: e.start_time.load(Relaxed),
            pid_namespace: e.pid_ns.load(Relaxed),
        }
    }

    /// Evicts entry `i` if its registrant is certainly dead; returns whether it did.
    pub(crate) fn evict_if_dead(&self, i: usize) -> bool {
        if self.reclaim_if_dead(i) {
            self.entry(i).state.store(state::FREE, Release);
            self.wake_producers();
            true
        } else {
            false
        }
    }

    /// Deregisters entry `i` (ours). A consumer passes its final position.
    pub(crate) fn deregister(&self, i: usize, position: Option<u64>) {
        let e = self.entry(i);
        if let Some(p) = position {
            e.position.fetch_max(p, SeqCst);
        }
        // SeqCst (not only release): a leaving producer then loads the queue's waiters
        // flag (SeqCst) to wake pending receives, which raise the flag (SeqCst) before
        // they look for live producers (SeqCst loads in `live_producers`): either they
        // see the entry free, or the producer sees their flag and wakes them.
        e.state.store(state::FREE, SeqCst);
        self.wake_producers();
    }

    /// Publishes consumer entry `i`'s position (SeqCst: the consumer's half of the
    /// producers' wake protocol) and wakes blocked producers if any sleep.
    #[inline]
    pub(crate) fn publish_position(&self, i: usize, position: u64, count: u64) {
        let e = self.entry(i);
        e.count.store(count, Relaxed);
        e.position.store(position, SeqCst);
        if self.header().prod_sleepers.load(SeqCst) != 0 {
            self.wake_producers();
        }
    }

    /// Reports consumer entry `i`'s position in a lossy queue, where no producer waits
    /// for it (relaxed: for `inspect` and the disconnect check only).
    pub(crate) fn report_position(&self, i: usize, position: u64, count: u64) {
        let e = self.entry(i);
        e.count.store(count, Relaxed);
        e.position.store(position, Relaxed);
    }

    /// Records producer entry `i`'s claim in flight (before its claiming CAS).
    #[inline(always)]
    pub(crate) fn set_intent(&self, i: usize, start: u64, n: u64) {
        let e = self.entry(i);
        e.intent_n.store(n, Relaxed);
        // Release: a consumer that reads this intent (acquire) reads its size too. The
        // claiming CAS that follows is AcqRel, so a consumer that saw the claim's effect
        // on `reserved` and then loads the intent sees it (or a later one).
        e.intent.store(start, Release);
    }

    /// Clears producer entry `i`'s recorded claim after a refused attempt (its intent
    /// may name a start that another producer claimed: a live producer must not seem to
    /// cover that claim, or a reader would wait for it forever).
    #[cold]
    pub(crate) fn clear_intent(&self, i: usize) {
        self.entry(i).intent.store(NO_INTENT, Release);
    }

    /// Clears the flag and wakes producers asleep on a full queue, if the flag was set.
    #[cold]
    pub(crate) fn wake_producers(&self) {
        let h = self.header();
        if h.prod_sleepers.swap(0, SeqCst) != 0 {
            h.prod_wake_seq.fetch_add(1, Release);
            futex::wake_all(&h.prod_wake_seq, self.scope);
        }
    }

    /// The lossless floor (module docs) and the entry that sets it (`None` when no
    /// consumer does), read as a seqlock; `head` is the queue's head, read before.
    /// `except` skips one entry (a registering consumer's own).
    pub(crate) fn floor(&self, except: Option<usize>, head: u64) -> (u64, Option<usize>) {
        loop {
            let g1 = self.header().generation.load(SeqCst);
            let mut best = (u64::MAX, None);
            for i in 0..self.scan_len() {
                if Some(i) == except {
                    continue;
                }
                let e = self.entry(i);
                if e.state.load(SeqCst) != state::ACTIVE
                    || !Role::from_code(e.role.load(Relaxed)).is_some_and(Role::is_consumer)
                {
                    continue;
                }
                let p = e.position.load(SeqCst);
                if p < best.0 {
                    best = (p, Some(i));
                }
            }
            if best.1.is_none() {
                best.0 = if self.header().consumers_ever.load(SeqCst) == 0 {
                    0
                } else {
                    head
                };
            }
            if self.header().generation.load(SeqCst) == g1 {
                return best;
            }
        }
    }

    /// Registers a consumer at `position`, then, in a lossless queue, raises it to the
    /// floor of the other entries (module docs, "The lossless floor"); returns the entry
    /// and the position.
    pub(crate) fn register_consumer(
        &self,
        role: Role,
        position: u64,
        lossless: bool,
        head: impl Fn() -> u64,
    ) -> Option<(usize, u64)> {
        self.register_consumer_keyed(role, position, lossless, head, 0)
    }

    fn register_consumer_keyed(
        &self,
        role: Role,
        position: u64,
        lossless: bool,
        head: impl Fn() -> u64,
        key: u64,
    ) -> Option<(usize, u64)> {
        let (i, was_ever) = self.register_noting(role, position, key)?;
        if !lossless {
            // Producers of a lossy queue read no floor: the position is only reported.
            return Some((i, position));
        }
        let (others, holder) = self.floor(Some(i), head());
        // The first consumer ever: every scan before it found the floor 0.
        let others = if holder.is_none() && !was_ever {
            0
        } else {
            others
        };
        let p = position.max(others);
        if p != position {
            self.entry(i).position.store(p, SeqCst);
        }
        Some((i, p))
    }

    /// The producers' half of their wake protocol: reads the wake word, sets the flag;
    /// the caller then re-scans the floor and sleeps with [`Table::sleep`] on the value.
    pub(crate) fn prepare_sleep(&self) -> u32 {
        let h = self.header();
        let seq = h.prod_wake_seq.load(Acquire);
        h.prod_sleepers.store(1, SeqCst);
        seq
    }

    /// The producers' wake word and its futex scope: what an async send registers with
    /// the [waiter](crate::waiter) instead of sleeping on it ([`Table::sleep`]).
    pub(crate) fn producers_word(&self) -> (&AtomicU32, Scope) {
        (&self.header().prod_wake_seq, self.scope)
    }

    /// Sleeps until woken or `until`.
    pub(crate) fn sleep(&self, seq: u32, until: crate::sys::clock::Deadline) {
        futex::wait(&self.header().prod_wake_seq, seq, until, self.scope);
    }

    /// Producer entries whose claim in flight covers absolute index `x`: `(entry, start,
    /// n)`.
    pub(crate) fn claims_covering(&self, x: u64) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        (0..self.scan_len()).filter_map(move |i| {
            let e = self.entry(i);
            if e.state.load(Acquire) != state::ACTIVE || e.role.load(Relaxed) != 1 {
                return None;
            }
            let start = e.intent.load(Acquire);
            let n = e.intent_n.load(Relaxed);
            (start != NO_INTENT && start <= x && x < start.saturating_add(n))
                .then_some((i, start, n))
        })
    }

    /// Whether entry `i`'s registrant is certainly dead.
    pub(crate) fn is_dead(&self, i: usize) -> bool {
        let e = self.entry(i);
        e.state.load(Acquire) == state::ACTIVE && self.identity(e).is_dead()
    }

    /// How many entries a scan looks at: up to the highest ever claimed (a hostile value
    /// is capped at the table's size).
    fn scan_len(&self) -> usize {
        (self.header().high_water.load(SeqCst) as usize).min(MAX_ENDPOINTS)
    }

    /// Whether any fastipc producer ever registered.
    pub(crate) fn producers_ever(&self) -> bool {
        self.header().producers_ever.load(SeqCst) != 0
    }

    /// Active producer entries; with `judge`, the dead ones found are evicted first
    /// (liveness checks: off the fast path only).
    pub(crate) fn live_producers(&self, judge: bool) -> usize {
        (0..self.scan_len())
            .filter(|&i| {
                let e = self.entry(i);
                e.state.load(SeqCst) == state::ACTIVE
                    && e.role.load(Relaxed) == Role::Producer.code()
                    && !(judge && self.evict_if_dead(i))
            })
            .count()
    }
}
