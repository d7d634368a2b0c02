//! The ring algorithm (LAYOUT.md §1 "Algorithms"), over precomputed pointers into a
//! validated queue: reserve with wrap markers (refusing positions a lease of this mapping
//! holds), publish (skipped when lapped), locate a reservation at a cursor, post-copy
//! validation, recovery after a lap and its count, read_last, reset, and the wake
//! protocol of blocking consumers.
//!
//! # Memory-ordering argument
//!
//! The peers have no back-pressure, so a producer may overwrite a position while a
//! consumer copies it, and producers a lap apart may write the same position without
//! synchronising with each other. fastipc producers and consumers therefore access
//! payload bytes only through `payload`: relaxed atomic loads and stores, of one width
//! per queue, so never of two sizes on the same bytes (the "atomic memcpy" of C++
//! proposal P1478). Every race the protocol permits between fastipc endpoints of one
//! mapping is then a race between atomics, which the language's model defines, and the
//! argument below is an argument inside that model, with the consumer discarding every
//! copy it does not vouch for. (Miri checks it: `scripts/miri.sh` runs the lapped-reader
//! and lapped-producer tests under its data-race detector.) What stays outside the model
//! is stated at the end of this section. With `reserved` as the writers' "intent"
//! counter, the protocol is:
//!
//! - **Producer** (fastipc): claims `[start, start + n)` with a CAS on `reserved`
//!   (acq-rel), *marks* the slot of every position it is about to overwrite
//!   ([`INVALID_INDEX`] in the slot of `start`, "not published" to every reader, peers
//!   included; `start` in the slots of the other `n - 1` positions, which a reader lapped
//!   there takes for a wrap marker to `start`), issues a release fence, writes the wrap
//!   marker if it skipped the end of the ring (slot atomics, `data_index` last with
//!   release) and then the payload, checks that it was not lapped (below), and only then
//!   stores `slot.size` (relaxed) and `slot.data_index = start` (release).
//! - **Consumer**: loads `slot.data_index` (acquire); when it names the reservation it
//!   wants, that producer's payload and size writes happen-before everything the consumer
//!   does next. It copies elements `first..` of the reservation `start..end` with
//!   relaxed atomic loads and issues an acquire fence. Then:
//!   - a *one-element* reservation (every `send`) is kept only if the slot's `data_index`,
//!     loaded again (relaxed), still names `start`. This touches only the slot's cache
//!     line, which the consumer holds already; the header line, which producers rewrite
//!     on every message, stays with them (checking the head here instead costs a transfer
//!     of that line per message: half the throughput and 1.5 times the latency between
//!     two cores, see BENCHMARKS.md);
//!   - a *run* of consecutive one-element reservations copied at once (batch receives,
//!     `queue::read`) is checked the same way, element by element after one acquire
//!     fence: each slot, loaded again, still names its index; the elements before the
//!     first that fails are kept (each element's argument is the one above);
//!   - a larger reservation is kept only if `reserved` (loaded relaxed) shows
//!     `next_index <= first + capacity` and `next_index >= end`, and, when
//!     `first == start`, the slot still names `start` (the marks of positions inside a
//!     reservation cannot be told from the stale values they replace).
//!
//! Element `x` lives at position `x & mask`, which the producers of `x ± k·capacity`
//! write too. What a kept copy can contain:
//! - *Writes of later laps* (`x + k·capacity`, `k >= 1`): if the copy read any byte such
//!   a producer wrote, that producer's release fence (after its CAS and its marks)
//!   synchronises with the consumer's acquire fence through that byte, so its CAS and its
//!   mark of position `x & mask` happen-before the consumer's second loads. The slot then
//!   holds that mark or a later value, never `start` again (marks and indices written
//!   there later are all newer), and `reserved` shows
//!   `next_index > x + capacity >= first + capacity`: either check discards the copy and
//!   the consumer reports a lag. Never kept, from fastipc producers. C++ and Python producers do not mark: against them only
//!   the head check holds, so a one-element copy that one of them overwrites while it is
//!   being made is kept, torn when the element is larger than 8 bytes (an aligned 8-byte
//!   element is copied with one load), as their own consumers would keep it.
//! - *A reset* (which clears the slots before rewinding `reserved`) shows as
//!   `next_index < end` or a first slot that no longer names `start`, and the copy is
//!   discarded, unless producers refilled the reset queue past the same indices during
//!   the copy (the checks compare indices, which a reset reuses).
//! - *Writes of earlier laps* (`x - k·capacity`): a producer whose claim is older than the
//!   reservation the consumer validated; no check of the consumer can see it. A fastipc
//!   producer writes only if its own lap check passed, so this happens only in the window
//!   described next.
//!
//! # Single-producer mode
//!
//! A queue created single-producer (header `flags` bit 2) has exactly one fastipc
//! claimant while its producer handle lives: the `SingleProducer` registration refuses
//! every other one (typed/single.rs, endpoints/mod.rs "Single producer"), and the handle is
//! not `Sync`, so its claims and publishes are ordered by happens-before (one thread at a
//! time). Its claim ([`RawRing::reserve_single`]) loads `reserved` (acquire), checks
//! the same limits, records its intent, and *stores* the new head (release) instead of
//! the CAS; then the same marks, release fence and wrap marker. The argument above keeps
//! every step: what the consumer's checks use of the claim is that the claim and the
//! marks are sequenced before the release fence, so that a consumer whose acquire fence
//! synchronised with that fence through a payload byte finds `reserved` at or past the
//! new head (write-read coherence) and the slot marked or newer. The CAS's atomicity
//! only arbitrated between producers, and there is one. The release store (as the CAS's
//! release half) lets whoever reads the head with acquire also read the intent recorded
//! before it and everything this producer published earlier. A new holder (after the
//! previous one dropped its handle or died) first makes an acquire RMW of `reserved`
//! (`fetch_add(0)`), which reads the last value in its modification order, the previous
//! holder's last claim included, so it does not claim those positions again.
//!
//! Its publish ([`RawRing::publish_single`]) raises `last_published` with a load and a
//! SeqCst *store* instead of the CAS loop. That store followed by the SeqCst load of
//! `sleepers` is still the producer's half of the wake protocol below: the C++/Rust
//! model orders all SeqCst operations in one total order consistent with program order,
//! so of the consumer's (flag store; load of `last_published`) and the producer's (store
//! of `last_published`; load of the flag), one pair's load follows the other pair's store,
//! a valid Dekker pair. When the consumer's load comes later, it reads this store or a
//! later one of the same producer (or a reader's `abandon` RMW writing back what it
//! read), each of which was preceded in its thread by this publish's slot store, so its
//! re-check sees the message. That is why only one thread at a time may publish: a plain
//! store of another thread, read there, would carry none of this thread's writes (the
//! multi-producer path keeps the RMW, whose release sequence does). The zero-copy guards
//! and async-send futures of a single producer borrow the handle, so they are not `Send`
//! either. loom models SeqCst accesses weaker than the C++ model (docs/CHECKING.md), so the
//! model of this pair in `fastipc/tests/loom_queue.rs` places `fence(SeqCst)` as the
//! existing ones do.
//!
//! A C++ or Python producer on a single-producer queue breaks this: its CAS on
//! `reserved` can succeed between the single producer's load and store, and the store
//! then hands out the peer's positions again (both messages land in the same slots:
//! one is lost or torn). README "Known limitations" says so; fastipc cannot stop it.
//!
//! # Lapped producers, and the window that remains
//!
//! A producer is *lapped* when someone claimed an index `>= start + capacity`, i.e. when
//! `next_index > start + capacity`: a newer reservation owns its positions and may already
//! be published there. A lapped fastipc producer neither writes nor publishes: writing
//! would tear the newer message unnoticed, and publishing would move the slot back from
//! the newer index to `start`, so that readers at the newer index would wait for a lap
//! that may never come. Its message is lost exactly as if it had been published and then
//! overwritten: readers find the newer index and report a lag.
//!
//! The checks are loads, separate from the writes they guard, so a window remains: a
//! producer descheduled *after* its check and *before* its payload write (or its slot
//! store) completes, while others claim a whole lap, still writes. Its marks (stored right
//! after its CAS) can come late the same way. For `send` the check is
//! the claiming CAS itself, so the window is the copy of one message; for
//! `Reservation::write` it is the copy after each check; a zero-copy guard writes whenever
//! its owner does (see `lease`). What the window can cause:
//! - a late payload write into the newer, possibly published message: a consumer may
//!   return that message torn (bytes of both), undetected;
//! - a late slot store or mark: the slot moves back, and readers at the newer index see
//!   nothing there until the position is published again a lap later, then report the lag.
//!
//! What it cannot cause: a write outside the late producer's own positions or out of
//! bounds, a torn control word (sizes and indices are atomics), or a lag count other than
//! the documented one. Closing it would take a per-reservation handshake that the shared
//! layout does not have. C++ and Python producers make no check at all: lapped, they
//! write and publish.
//!
//! # What the model does not cover
//!
//! - **Zero-copy guards' raw pointers.** A `SlotGuard` or `BatchGuard` writes with the
//!   same relaxed atomics as `send` (their `write`), so those writes are inside the
//!   model. Their `as_mut_ptr` lets `unsafe` code write plainly; against claims of the
//!   same mapping such writes are ordered (the lease floor, below and in `lease`), but a
//!   lapped consumer still copying the previous message of that position loads the bytes
//!   atomically while they are written plainly, and a producer inside the window above
//!   can write into them late: both are data races in the model, which the caller of
//!   `as_mut_ptr` takes on (the consumer discards its copy; the late write is the
//!   window's torn message). No `&mut T` into the ring is handed out.
//! - **Other processes and other mappings**, peers included: their accesses to the
//!   shared bytes are outside the language's model, as for any shared memory. C++ and
//!   Python producers copy with plain stores; on x86-64 and aarch64 the hardware gives
//!   the per-byte atomicity the argument assumes of them.
//!
//! A fastipc producer also issues `PREFETCHW` hints for the slot and data lines of claims
//! a little ahead of its own (`RawRing::prefetch_ahead`). They move cache lines, never
//! data, and order nothing, so nothing above depends on them.
//!
//! C++ and Python producers do not issue the release fence either; on x86-64 their locked
//! CAS on `reserved` is a full barrier and stores are not reordered with older stores
//! (TSO), so the argument about later laps holds for them there too.
//!
//! # The end of the index space
//!
//! Like the peers, absolute indices live in 48 bits of `reserved`; a queue needs 2^48
//! messages (weeks at 10^8 per second) to use them up. The peers let the index wrap to 0
//! there, which their readers (and fastipc's, before this was defined) take for a queue
//! with nothing new: they stall. fastipc refuses instead: a claim that would end past
//! [`RawRing::index_limit`], `2^48 - capacity`, is refused before its CAS
//! (`SendError::IndexExhausted` for every producer endpoint; nothing reserved), so no
//! fastipc producer makes the index wrap, and every index a claim or a check computes
//! (`start + capacity` included) stays below 2^48. Consumers read everything published
//! up to the limit and then find nothing new, as on an idle queue, until a `reset`
//! (refused while a guard lives), which they follow to index 0 as after any reset. A C++
//! or Python producer does wrap the index; fastipc consumers see their cursor beyond the
//! head and follow it to 0 as a reset.
//!
//! # Leases
//!
//! [`RawRing::reserve`] is given the start of the oldest live lease of this mapping (the
//! process-local floor kept by `lease`) and refuses, before its CAS, any claim that would
//! end past `floor + capacity`, so nothing is reserved on refusal. It loads `reserved`
//! with acquire ordering and reads the floor (an acquire load) after each such load.
//! When the floor it read lets it reach a position a lease held, that value was stored
//! (release, under the lease table's lock) when or after that lease ended, so the
//! guard's last write (through `write` or its raw pointer) happens before this claim's writes (`lease`,
//! "Ordering"). A lease stores its
//! floor before its own claiming CAS (release); a claim whose CAS follows that one in
//! `reserved`'s modification order compared against a value at or after it, read by an
//! acquire load that synchronised with it, so it sees the floor. A claim whose CAS comes
//! first ends at or before the lease's start. Either way no claim made through this
//! mapping reaches a leased position while the lease lives.
//!
//! # Abandoned claims
//!
//! A claim that will never be published (its producer died between claim and publish, or
//! a zero-copy guard or `Reservation` was dropped without commit) would stall every reader
//! at its start `X`. [`RawRing::abandon`] turns it into a *skip marker*: the slot of `X`
//! gets `size = SKIP_TAG | lap(X)` (relaxed; the two top bits set, then the low 30 bits of
//! `X / capacity`), then `data_index = X + n` (release; a compare-exchange from the value
//! the caller saw when the caller is a reader acting for a dead producer, so a publish
//! that came meanwhile wins). `locate` recognises it in its wrap-marker branch
//! (`RawRing::skip_marker`): that size for `X`'s lap, which no publish and no wrap marker
//! stores (their sizes are at most 2^31), `X < d <= X + capacity`, and nobody claimed a
//! lap past `X` (the marks of a later lap's batch can hold such a value; the acquire fence
//! before that check mirrors the one of the corrupt-size branch). The size names the lap
//! because a peer's wrap marker is not written in the order a fastipc producer writes
//! one: slick-queue-py zeroes the slot, stores `data_index`, then `size`, so a reader can
//! see the marker's index beside a size of 0 or beside whatever size the slot held
//! before, an older skip marker's included; neither is this lap's tag (an older skip
//! marker in the same slot matches only 2^30 laps later with nothing written to that
//! slot's size in between). It reports `Abandoned(n)` and continues at `X + n`. A peer reader
//! takes it for a wrap marker and jumps to `X + n`. Producers record each claim's start
//! and size in their endpoint entry *before* the claiming CAS (`intent`), so a reader stuck
//! at an unpublished `X` (typed `watch`) can tell a dead claimant from a live one.
//!
//! # Wake protocol
//!
//! `sleepers` (header bytes 60..64) is a flag, "waiters present". A consumer that runs out
//! of spinning reads `wake_seq`, sets the flag (SeqCst store), loads `last_published`
//! (SeqCst), re-checks its slot, and sleeps on `wake_seq` with the value it read first. A
//! producer, after its release store of `data_index`, raises `last_published` with a
//! SeqCst RMW (always an RMW, even when the value does not change), then loads the flag
//! (SeqCst); when it is set, the producer clears it with a swap and, if the swap found it
//! set, bumps `wake_seq` and wakes every sleeper. All these SeqCst operations are in one
//! total order, so either the consumer's load of `last_published` reads the producer's
//! RMW (and its re-check sees the slot store), or the producer's load comes after the
//! consumer's flag store, and the first swap after that store (this producer's or
//! another's) finds the flag set and wakes; the consumer read `wake_seq` before its store,
//! so that wake-up changes the word it sleeps on and is never lost. Consumers never clear
//! the flag: one killed while asleep costs the next publish one needless wake, after which
//! the flag is clear again. Peers never wake anyone, so every sleep is also bounded by the
//! wait strategy's poll interval.

use core::ptr::NonNull;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::fence;

use super::layout::{
    Geometry, HEADER_SIZE, Header, INDEX_BITS, INVALID_INDEX, Slot, pack_reserved, reserved_index,
};
use super::payload;
use crate::error::TryRecvError;
use crate::mem::MemRef;
use crate::sys::futex::{self, Scope};

/// How far [`RawRing::recover`] scans for the oldest published reservation before it
/// settles for the head.
const RECOVERY_SCAN_LIMIT: u64 = 1 << 16;

/// Wrap-marker hops [`RawRing::locate`] follows before calling the slot corrupt (a
/// correct ring needs at most one: markers always point at position 0).
const MAX_MARKER_HOPS: u32 = 4;

/// The two top bits of a skip marker's `size` ([`RawRing::skip_size`]).
const SKIP_TAG: u32 = 0b11 << 30;

mod single;
pub(crate) use single::{Claim, Shared, Single};

/// How many slots ahead of a claim [`RawRing::prefetch_ahead`] prefetches (16-byte
/// slots: the next slot line).
const PREFETCH_SLOTS: u64 = 4;

/// How many bytes ahead of a claim's element [`RawRing::prefetch_ahead`] prefetches.
const PREFETCH_BYTES: usize = 512;

/// Whether the CPU implements `PREFETCHW` (CPUID leaf 0x8000_0001, ECX bit 8). Always
/// false under Miri, which cannot run `cpuid` (the hint changes no memory, so the
/// algorithm Miri checks is the same).
fn has_prefetchw() -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::__cpuid;
        // Leaf 0x8000_0001 exists when the highest extended leaf reaches it.
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    {
        false
    }
}

/// `PREFETCHW` of the line holding `ptr`: fetch it with ownership, invalidating other
/// cores' copies. Only called when [`has_prefetchw`] said the CPU has the instruction.
#[inline(always)]
fn prefetch_for_write(ptr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHW is a hint that never faults, whatever the address (an unmapped
    // or invalid one is ignored), and changes neither memory nor registers; the caller
    // checked that the CPU implements it.
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) ptr, options(nostack, readonly, preserves_flags));
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = ptr;
}

/// The lease floor meaning "no lease is live".
pub(crate) const NO_LEASE: u64 = u64::MAX;

/// Why [`RawRing::reserve`] refused a claim (nothing was reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It would reach a position the lease starting at this index holds.
    Held(u64),
    /// It would end past [`RawRing::index_limit`]: the index space is used up until the
    /// queue is reset.
    Exhausted,
}

/// Precomputed pointers into a validated queue and its geometry.
///
/// Invariant: a `RawRing` is only made by [`RawRing::new`] over a queue whose header,
/// `capacity` slots and `capacity × element_size` data bytes lie inside one live mapping
/// (or heap block), and every holder of a `RawRing` also holds (an `Arc` of) the owner of
/// that memory for as long as it uses it. The pointers are never turned into references
/// to anything but atomics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawRing {
    header: NonNull<Header>,
    slots: NonNull<Slot>,
    data: NonNull<u8>,
    mask: u64,
    capacity: u64,
    element_size: usize,
    scope: Scope,
    /// Whether the CPU has `PREFETCHW` (see [`prefetch_for_write`]).
    prefetchw: bool,
}

// SAFETY: the pointers target shared memory that is only accessed through atomics or the
// seqlock protocol above, which are designed for concurrent use from any thread; the
// memory's owner is kept alive by whoever holds the RawRing (type invariant).
unsafe impl Send for RawRing {}
// SAFETY: as for Send: every operation through `&RawRing` is thread-safe by protocol.
unsafe impl Sync for RawRing {}

/// What [`RawRing::peek`] found at a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peek {
    /// A published one-element reservation starting at the cursor.
    Single,
    /// Nothing published at the cursor yet.
    Empty,
    /// Anything else (a batch, a marker, a newer index): ask [`RawRing::locate`].
    Other,
}

/// What [`RawRing::locate`] found at a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Locate {
    /// A published reservation of the elements `start..end` (never empty, never past the
    /// end of the ring, `end` computed without overflow).
    Found { start: u64, end: u64 },
    /// Nothing published at `cursor` yet (the cursor after following wrap markers).
    Empty { cursor: u64 },
    /// The reader lost its place (lapped, or a corrupt slot): it continues at `cursor`
    /// and reports `error` ([`TryRecvError::Lagged`], [`TryRecvError::Corrupt`], or
    /// [`TryRecvError::Empty`] when nothing was actually lost).
    Skip { cursor: u64, error: TryRecvError },
}

/// Published elements `start..end` that a reader located at once ([`RawRing::extend_run`]):
/// one reservation of any size, or (`singles`) consecutive one-element reservations.
/// Never empty, never past the end of the ring, so its elements are contiguous in the
/// data area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Every reservation in the run holds one element: each index in it is a
    /// reservation boundary, and each element is validated by its own slot.
    pub(crate) singles: bool,
}

impl RawRing {
    /// Pointers into the queue at the start of `mem`.
    ///
    /// # Safety
    /// `mem` holds at least `geom.len` bytes, its start is 16-aligned, the header's
    /// capacity and element size are `geom`'s, and the memory outlives every use of the
    /// returned value (see the type invariant).
    pub(crate) unsafe fn new(mem: &MemRef<'_>, geom: &Geometry, scope: Scope) -> RawRing {
        debug_assert!(mem.len() >= geom.len);
        // SAFETY: a MemRef's address is never null.
        let base = unsafe { NonNull::new_unchecked(mem.as_ptr()) };
        // SAFETY: the caller guarantees `geom.len` bytes from `base`; the slots start at
        // 64, inside that range.
        let slots = unsafe { base.add(HEADER_SIZE) };
        // SAFETY: the data area starts at `geom.data_offset < geom.len`, inside the range.
        let data = unsafe { base.add(geom.data_offset) };
        RawRing {
            header: base.cast(),
            slots: slots.cast(),
            data,
            mask: geom.capacity as u64 - 1,
            capacity: geom.capacity as u64,
            element_size: geom.element_size,
            scope,
            prefetchw: has_prefetchw(),
        }
    }

    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: type invariant: the header is live, 8-aligned (the base is 16-aligned)
        // and made of atomics only.
        unsafe { self.header.as_ref() }
    }

    /// The slot at position `index & mask`.
    #[inline]
    pub(crate) fn slot(&self, index: u64) -> &Slot {
        let slot = self
            .slots
            .as_ptr()
            .wrapping_add((index & self.mask) as usize);
        // SAFETY: the position is `< capacity` and the slot array holds `capacity`
        // 16-byte, 8-aligned slots of atomics, live for as long as `self` is used (type
        // invariant); atomics tolerate any concurrent access.
        unsafe { &*slot }
    }

    /// Address of the element with absolute index `index` (position `index & mask`).
    #[inline]
    pub(crate) fn element_ptr(&self, index: u64) -> *mut u8 {
        // The position is `< capacity`, so the offset is inside the
        // `capacity × element_size` data area (type invariant).
        let pos = (index & self.mask) as usize;
        self.data.as_ptr().wrapping_add(pos * self.element_size)
    }

    /// The width of every payload access of this queue ([`payload::word_for`]).
    #[inline]
    pub(crate) fn word(&self) -> usize {
        payload::word_for(self.element_size)
    }

    /// Capacity in elements.
    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The highest index a claim may end at: `2^48 - capacity` (module documentation,
    /// "The end of the index space").
    #[inline]
    pub(crate) fn index_limit(&self) -> u64 {
        (1u64 << INDEX_BITS) - self.capacity
    }

    /// The next free absolute index: where a consumer that reads "from now" starts.
    pub(crate) fn next_index(&self) -> u64 {
        reserved_index(self.header().reserved.load(Acquire))
    }

    /// Claims `n` consecutive elements (`1 <= n <= capacity`, checked by the caller) and
    /// returns the absolute index of the first. A reservation never straddles the end of
    /// the ring: when it would, it starts at the next lap and leaves a wrap marker in the
    /// slot where it would have started.
    ///
    /// `floor()` is the start of the oldest live lease of this mapping ([`NO_LEASE`] when
    /// none); it is read after every load of `reserved`. A claim that would end past
    /// `floor + capacity` (reach a leased position) is refused before its CAS, so nothing
    /// is reserved: `Err(Refused::Held(floor))`. See "Leases" in the module documentation.
    /// A claim that would end past [`RawRing::index_limit`] is refused the same way
    /// (`Err(Refused::Exhausted)`): see "The end of the index space".
    ///
    /// `intent(start)` is called before every claiming CAS with the start it attempts
    /// (producers record it in their endpoint entry: see "Abandoned claims"); never for a
    /// refused claim.
    ///
    /// Always inlined: it is the claim of every send, and its closures must fold into
    /// the caller's (`scripts/instructions.sh`: out of line, a lossy send cost 179
    /// instructions instead of 126).
    #[inline(always)]
    pub(crate) fn reserve(
        &self,
        n: u64,
        floor: impl Fn() -> u64,
        intent: impl Fn(u64),
    ) -> Result<u64, Refused> {
        debug_assert!(n >= 1 && n <= self.capacity);
        let reserved = &self.header().reserved;
        let mut current = reserved.load(Acquire);
        loop {
            let index = reserved_index(current);
            let pos = index & self.mask;
            let wraps = pos + n > self.capacity;
            let start = if wraps {
                index + (self.capacity - pos)
            } else {
                index
            };
            // `start < 2^48 + capacity`: no overflow.
            if start + n > self.index_limit() {
                return Err(Refused::Exhausted);
            }
            let held = floor();
            if start + n > held.saturating_add(self.capacity) {
                return Err(Refused::Held(held));
            }
            intent(start);
            match reserved.compare_exchange_weak(
                current,
                pack_reserved(start + n, n),
                AcqRel,
                Acquire,
            ) {
                Ok(_) => {
                    // Seqlock writer side: mark the slot of every position about to be
                    // overwritten, then order the claim and the marks before every write
                    // that follows, the wrap marker's included (module documentation).
                    self.slot(start).data_index.store(INVALID_INDEX, Relaxed);
                    for k in 1..n {
                        self.slot(start + k).data_index.store(start, Relaxed);
                    }
                    fence(Release);
                    self.prefetch_ahead(start);
                    if wraps {
                        // Wrap marker in the skipped slot: readers at `index` jump to
                        // `start`. Size first, index (release) last, as a publish.
                        let marker = self.slot(index);
                        marker.size.store(n as u32, Relaxed);
                        marker.data_index.store(start, Release);
                    }
                    return Ok(start);
                }
                Err(actual) => {
                    current = actual;
                    core::hint::spin_loop();
                }
            }
        }
    }

    /// [`RawRing::reserve`] or [`RawRing::reserve_single`], as `C` says.
    #[inline(always)]
    pub(crate) fn reserve_as<C: Claim>(
        &self,
        n: u64,
        floor: impl Fn() -> u64,
        intent: impl Fn(u64),
    ) -> Result<u64, Refused> {
        if C::SINGLE {
            self.reserve_single(n, floor, intent)
        } else {
            self.reserve(n, floor, intent)
        }
    }

    /// [`RawRing::publish`] or [`RawRing::publish_single`], as `C` says.
    #[inline(always)]
    pub(crate) fn publish_as<C: Claim>(&self, start: u64, n: u64) -> bool {
        if C::SINGLE {
            self.publish_single(start, n)
        } else {
            self.publish(start, n)
        }
    }

    /// Asks the CPU to fetch, for writing, the slot line and the data line that the
    /// claims a little after `start` will write: the slot [`PREFETCH_SLOTS`] positions
    /// ahead (the next slot line) and the element [`PREFETCH_BYTES`] bytes ahead. A
    /// consumer that has caught up reads the lines the producer writes, and each claim
    /// ends with a locked instruction (the `last_published` RMW) that waits for the
    /// producer's stores, so without the hint every new line costs the producer a stall
    /// for its ownership; with it, the line moves while the producer works on the
    /// current one. A hint only: it changes no memory and orders nothing.
    #[inline(always)]
    fn prefetch_ahead(&self, start: u64) {
        if self.prefetchw {
            let slot: *const Slot = self.slot(start.wrapping_add(PREFETCH_SLOTS));
            let ahead = (PREFETCH_BYTES / self.element_size.max(1)) as u64;
            prefetch_for_write(slot.cast());
            prefetch_for_write(self.element_ptr(start.wrapping_add(ahead)));
        }
    }

    /// Whether the reservation starting at `start` was lapped: someone claimed an index
    /// `>= start + capacity`, so a newer reservation owns its positions.
    #[inline]
    pub(crate) fn lapped(&self, start: u64) -> bool {
        reserved_index(self.header().reserved.load(Relaxed)) > start.saturating_add(self.capacity)
    }

    /// Publishes the reservation of `n` elements at `start` unless it was lapped: slot
    /// size, then slot index (release), then raises `last_published` and wakes sleeping
    /// consumers if any. Returns whether it published.
    #[inline]
    pub(crate) fn publish(&self, start: u64, n: u64) -> bool {
        if self.lapped(start) {
            // Publishing would move the slot back from a newer index (module docs).
            return false;
        }
        let slot = self.slot(start);
        slot.size.store(n as u32, Relaxed);
        slot.data_index.store(start, Release);
        let header = self.header();
        let last = &header.last_published;
        let mut current = last.load(Relaxed);
        loop {
            // Always an RMW (SeqCst), even when `last_published` is already higher: it is
            // the producer's half of the sleeper handshake (module documentation).
            let new = if current == INVALID_INDEX || current < start {
                start
            } else {
                current
            };
            match last.compare_exchange_weak(current, new, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if header.sleepers.load(SeqCst) != 0 {
            self.wake_sleepers();
        }
        true
    }

    /// Clears the "waiters present" flag and, if it was set, wakes every consumer
    /// sleeping on the queue's futex word.
    #[cold]
    pub(crate) fn wake_sleepers(&self) {
        let header = self.header();
        if header.sleepers.swap(0, SeqCst) != 0 {
            header.wake_seq.fetch_add(1, Release);
            futex::wake_all(&header.wake_seq, self.scope);
        }
    }

    /// The futex scope of the queue's wake word.
    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    /// Finds the reservation a reader whose cursor is `cursor` reads next, following wrap
    /// markers; when the reader lost its place, where it continues and what it reports.
    #[inline]
    pub(crate) fn locate(&self, mut cursor: u64) -> Locate {
        let mut hops = 0;
        loop {
            let pos = cursor & self.mask;
            let slot = self.slot(cursor);
            let d = slot.data_index.load(Acquire);
            if d == INVALID_INDEX || d < cursor {
                return Locate::Empty { cursor };
            }
            if d & self.mask != pos {
                // A wrap marker. It belongs to the reservation attempted at `cursor` when
                // it points to the start of the next lap; a later one means this reader
                // was lapped.
                let Some(next_lap) = cursor.checked_add(self.capacity - pos) else {
                    return self.corrupt(cursor, slot.size.load(Relaxed));
                };
                if let Some(n) = self.skip_marker(cursor, d) {
                    return Locate::Skip {
                        cursor: d,
                        error: TryRecvError::Abandoned(n),
                    };
                }
                if d != next_lap {
                    return self.skip_lost(cursor);
                }
                hops += 1;
                if hops > MAX_MARKER_HOPS {
                    return self.corrupt(cursor, slot.size.load(Relaxed));
                }
                cursor = d;
                continue;
            }
            if d > cursor {
                return self.skip_lost(cursor);
            }
            let n = slot.size.load(Relaxed);
            return match cursor.checked_add(u64::from(n)) {
                Some(end) if n != 0 && u64::from(n) <= self.capacity - pos => {
                    Locate::Found { start: cursor, end }
                }
                // No producer publishes such a size (or a cursor so close to `u64::MAX`),
                // but a lapping producer writing a wrap marker here stores its
                // (straddling) size before its index: tell the two apart by whether
                // anyone reserved a lap ahead of this reader.
                _ => {
                    fence(Acquire);
                    if self.lapped(cursor) {
                        self.skip_lost(cursor)
                    } else {
                        self.corrupt(cursor, n)
                    }
                }
            };
        }
    }

    /// What the slot of `cursor` says at a glance, for a reader's fast path: [`Peek::Single`]
    /// when it holds a published one-element reservation that starts at `cursor`
    /// (`data_index == cursor`, read with acquire ordering, and size 1: the commonest
    /// case of [`RawRing::locate`]'s `Found`); [`Peek::Empty`] when nothing is published
    /// there yet (`data_index` invalid or older than `cursor`: `locate`'s `Empty`, which
    /// follows no marker and moves no cursor); else [`Peek::Other`], which says nothing:
    /// the reader takes `locate`. The acquire load plays the same part as in `locate`: a
    /// load that read a publish's release store makes the producer's payload and size
    /// writes happen-before the reader's copy.
    #[inline(always)]
    pub(crate) fn peek(&self, cursor: u64) -> Peek {
        let slot = self.slot(cursor);
        let d = slot.data_index.load(Acquire);
        if d == cursor {
            if slot.size.load(Relaxed) == 1 {
                Peek::Single
            } else {
                Peek::Other
            }
        } else if d == INVALID_INDEX || d < cursor {
            Peek::Empty
        } else {
            Peek::Other
        }
    }

    /// Whether the slot of `cursor`, holding `d` (not `cursor`'s position), is a skip
    /// marker ("Abandoned claims" in the module documentation): the size
    /// [`RawRing::skip_size`] gives `cursor`, which no publish and no wrap marker stores, and `cursor < d <= cursor + capacity`, with nobody
    /// having claimed a lap past `cursor` (a later lap's marks could hold such a value).
    /// Returns the number of abandoned elements.
    #[cold]
    fn skip_marker(&self, cursor: u64, d: u64) -> Option<u64> {
        let size = self.slot(cursor).size.load(Relaxed);
        if size != self.skip_size(cursor) || d <= cursor || d - cursor > self.capacity {
            return None;
        }
        fence(Acquire);
        (!self.lapped(cursor)).then_some(d - cursor)
    }

    /// The `size` a skip marker at `start` holds: [`SKIP_TAG`] (two top bits, which no
    /// reservation's size has: it is at most `MAX_CAPACITY`, 2^31) with the low 30 bits
    /// of `start`'s lap (`start / capacity`), so that a skip marker left in a slot from
    /// an earlier lap does not make a later wrap marker there, seen before its size,
    /// look abandoned ("Abandoned claims" in the module documentation).
    #[inline]
    fn skip_size(&self, start: u64) -> u32 {
        let lap = start >> self.capacity.trailing_zeros();
        SKIP_TAG | (lap as u32 & !SKIP_TAG)
    }

    /// Turns the claim `start..start + n`, which will never be published, into a skip
    /// marker: size [`RawRing::skip_size`], then `data_index = start + n` (a compare-exchange from `seen`, the
    /// value the caller found there, so a publish that came meanwhile wins). Readers
    /// (fastipc and peers) then jump to `start + n`; fastipc readers report
    /// `Abandoned(n)`. Then wakes sleeping consumers as a publish does. Returns whether
    /// the marker was written. Skipped when the claim was lapped (a newer reservation
    /// owns the slot).
    pub(crate) fn abandon(&self, start: u64, n: u64, seen: Option<u64>) -> bool {
        if self.lapped(start) {
            return false;
        }
        let slot = self.slot(start);
        let marker = start + n;
        let size = self.skip_size(start);
        let written = match seen {
            None => {
                slot.size.store(size, Relaxed);
                slot.data_index.store(marker, Release);
                true
            }
            Some(seen) => {
                // Size first: a reader that sees the marker (acquire) sees its size. If the
                // exchange fails, the size store may have landed on a slot a live writer
                // is publishing; the caller only asks when the claimant is dead.
                slot.size.store(size, Relaxed);
                slot.data_index
                    .compare_exchange(seen, marker, Release, Relaxed)
                    .is_ok()
            }
        };
        // The producer's half of the sleeper handshake, without moving `last_published`.
        self.header().last_published.fetch_add(0, SeqCst);
        if self.header().sleepers.load(SeqCst) != 0 {
            self.wake_sleepers();
        }
        written
    }

    /// After copying elements `first..` of the reservation `start..end`: whether the copy
    /// is intact (see the module documentation). A one-element reservation is checked by
    /// its slot alone, which must still name `start` (no fastipc producer of a later lap
    /// marked it, no reset cleared it). A larger one by the head: no producer of a later
    /// lap can have been rewriting those bytes (nobody reserved `first + capacity` yet),
    /// and the queue was not reset (the head is still at or past `end`, and the slot still
    /// names `start` when the copy began at it).
    #[inline]
    pub(crate) fn intact(&self, start: u64, first: u64, end: u64) -> bool {
        fence(Acquire);
        if end - start == 1 {
            return self.slot(start).data_index.load(Relaxed) == start;
        }
        let head = reserved_index(self.header().reserved.load(Relaxed));
        if head > first.saturating_add(self.capacity) || head < end {
            return false;
        }
        first != start || self.slot(start).data_index.load(Relaxed) == start
    }

    /// The reservation `start..end` that [`RawRing::locate`] found, as a [`Run`]; when it
    /// holds one element, extended over the one-element reservations published after it,
    /// up to `limit` elements in all (at least the one found) and not past the end of the
    /// ring. Each extension is an acquire load of the next slot that finds it naming its
    /// own index with size 1: that producer's payload and size writes happen-before what
    /// the reader does next, as for the first (module documentation, "Consumer").
    #[inline]
    pub(crate) fn extend_run(&self, start: u64, end: u64, limit: u64) -> Run {
        if end - start != 1 {
            return Run {
                start,
                end,
                singles: false,
            };
        }
        let stop = start.saturating_add(limit.max(1));
        let mut end = end;
        while end < stop && end & self.mask != 0 {
            let slot = self.slot(end);
            if slot.data_index.load(Acquire) != end || slot.size.load(Relaxed) != 1 {
                break;
            }
            end += 1;
        }
        Run {
            start,
            end,
            singles: true,
        }
    }

    /// After copying elements `first..first + k` of `run`: how many of them, from
    /// `first`, are intact. A run of one-element reservations is checked slot by slot
    /// after one acquire fence, each element exactly as [`RawRing::intact`] checks a
    /// one-element reservation (so an intact prefix is kept and the first element that
    /// fails is where the reader lost its place); a larger reservation all or nothing,
    /// by [`RawRing::intact`].
    #[inline]
    pub(crate) fn intact_prefix(&self, run: &Run, first: u64, k: u64) -> u64 {
        if !run.singles {
            return if self.intact(run.start, first, run.end) {
                k
            } else {
                0
            };
        }
        fence(Acquire);
        for x in first..first + k {
            if self.slot(x).data_index.load(Relaxed) != x {
                return x - first;
            }
        }
        k
    }

    /// The one place a lost position is turned into a place to continue and a report: a
    /// reader that lost its place at `at` (lapped, or its copy of the reservation at `at`
    /// was overwritten) continues at [`RawRing::recover`]`(at)` and reports
    /// `Lagged(next - at)`, or `Empty` when nothing was lost (a reset).
    ///
    /// The count is the number of absolute indices skipped: every message in them, plus
    /// the positions a wrapping batch left unused at the end of the ring (at most the
    /// batch size minus one per lap; never any when every reservation holds one message).
    /// Which positions were padding is recorded only in wrap markers that the lap
    /// overwrote, so it cannot be subtracted.
    #[cold]
    pub(crate) fn lost(&self, at: u64) -> (u64, TryRecvError) {
        let next = self.recover(at);
        let error = match next.saturating_sub(at) {
            0 => TryRecvError::Empty,
            missed => TryRecvError::Lagged(missed),
        };
        (next, error)
    }

    /// [`RawRing::lost`] as a [`Locate`].
    #[cold]
    fn skip_lost(&self, at: u64) -> Locate {
        let (cursor, error) = self.lost(at);
        Locate::Skip { cursor, error }
    }

    /// A slot at `index` holds a size no producer writes: skip past it.
    #[cold]
    fn corrupt(&self, index: u64, size: u32) -> Locate {
        Locate::Skip {
            cursor: self.recover(index.saturating_add(1)),
            error: TryRecvError::Corrupt { index, size },
        }
    }

    /// Where a reader that lost its place at `from` continues: the oldest reservation
    /// start whose elements are all still in the ring, or the head when none can be found
    /// (everything in between counts as missed). Never returns less than `from` unless
    /// the queue was reset.
    pub(crate) fn recover(&self, from: u64) -> u64 {
        let head = reserved_index(self.header().reserved.load(Acquire));
        if head < from {
            // The queue was reset under this reader: start over at the new head.
            return head;
        }
        let oldest = from.max(head.saturating_sub(self.capacity));
        if oldest == from {
            return from;
        }
        let end = head.min(oldest.saturating_add(RECOVERY_SCAN_LIMIT.min(self.capacity)));
        let mut x = oldest;
        while x < end {
            let pos = x & self.mask;
            let d = self.slot(x).data_index.load(Acquire);
            if d == x {
                return x;
            }
            if d != INVALID_INDEX
                && d & self.mask != pos
                && x.checked_add(self.capacity - pos) == Some(d)
            {
                // The wrap marker of a reservation attempted at `x`: `locate` follows it.
                return x;
            }
            x += 1;
        }
        head
    }

    /// The last published reservation `start..end` if its slot still describes it.
    pub(crate) fn locate_last(&self) -> Option<(u64, u64)> {
        let li = self.header().last_published.load(Acquire);
        if li == INVALID_INDEX {
            return None;
        }
        let slot = self.slot(li);
        if slot.data_index.load(Acquire) != li {
            return None;
        }
        let n = slot.size.load(Relaxed);
        let pos = li & self.mask;
        if n == 0 || u64::from(n) > self.capacity - pos {
            return None;
        }
        Some((li, li.checked_add(u64::from(n))?))
    }

    /// Clears every slot, then rewinds `reserved` and `last_published`, as the peers'
    /// `reset()` does.
    ///
    /// # Safety
    /// No lease of this mapping may be live, nor be made until this returns (the caller
    /// holds the lease table's lock: `Leases::reset_unleased`): once the index is rewound,
    /// new claims would reach a leased slot while its guard may still write it.
    /// Concurrent copying producers are no hazard to memory (payload bytes are atomics);
    /// their messages may be lost or land in the new generation.
    pub(crate) unsafe fn reset(&self) {
        for i in 0..self.capacity {
            let slot = self.slot(i);
            slot.data_index.store(INVALID_INDEX, Relaxed);
            slot.size.store(1, Relaxed);
        }
        fence(Release);
        let header = self.header();
        header.reserved.store(0, Release);
        header.last_published.store(INVALID_INDEX, Release);
    }
}
