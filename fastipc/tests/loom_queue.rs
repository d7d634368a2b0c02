//! loom models of the queue's protocols (docs/CHECKING.md).
//!
//! The ring works on structs of core atomics in a shared mapping, which loom cannot
//! instrument, so these are *faithful small models*, not the code itself: each function
//! below restates one function of `fastipc/src/queue/` step by step, with the same
//! orderings, at capacity 2, and names what it mirrors. What they prove is about the
//! protocol as written here; that the code follows it is checked by reading (and by the
//! ring's own tests and Miri). Left out: the packed batch size in `reserved` (only the
//! index is kept), prefetch hints, the recovery scan after a lag (a model stops at a lag
//! instead), hostile values, time-outs.
//!
//! Payloads are one word per element, written and read with relaxed atomic accesses: the
//! atomic-copy form of finding 7 of issue 10 (fastipc/src/queue/raw.rs "Memory-ordering
//! argument"). A zero-copy guard's `&mut T` is a loom `UnsafeCell`, so that loom reports
//! any access to it that the lease protocol does not order.
//!
//! loom treats sequentially consistent loads and stores as acquire/release only (no
//! single total order), so the wake protocol's Dekker-style pairs get a `fence(SeqCst)`
//! between their two steps in the model ("loom: SeqCst pair"); the code relies on C++'s
//! guarantee for SeqCst operations instead.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p fastipc --test loom_queue
//! --target-dir target/loom`.

#![cfg(loom)]

mod loom_support;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, fence};
use loom::thread;
use loom_support::{Futex, builder, write};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

const CAP: u64 = 2;
const MASK: u64 = CAP - 1;
/// `INVALID_INDEX` (queue/layout.rs) and `NO_LEASE` (queue/raw.rs).
const INVALID: u64 = u64::MAX;
const NO_LEASE: u64 = u64::MAX;

/// The value the producer of index `x` writes in its element: any other value in a copy
/// kept for `x` is a torn or foreign message.
fn tag(x: u64) -> u64 {
    100 + x
}

struct Slot {
    data_index: AtomicU64,
    size: AtomicU32,
}

/// A queue at capacity 2: header words, slots, payload words, the wake word.
struct Ring {
    reserved: AtomicU64,
    last_published: AtomicU64,
    sleepers: AtomicU32,
    wake_seq: AtomicU32,
    futex: Futex,
    slots: [Slot; 2],
    payload: [AtomicU64; 2],
}

enum Locate {
    Empty,
    Found {
        start: u64,
        end: u64,
    },
    /// The reader lost its place (lapped): the models stop there.
    Lost,
}

impl Ring {
    fn new() -> Ring {
        let slot = || Slot {
            data_index: AtomicU64::new(INVALID),
            size: AtomicU32::new(0),
        };
        Ring {
            reserved: AtomicU64::new(0),
            last_published: AtomicU64::new(INVALID),
            sleepers: AtomicU32::new(0),
            wake_seq: AtomicU32::new(0),
            futex: Futex::default(),
            slots: [slot(), slot()],
            payload: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn slot(&self, x: u64) -> &Slot {
        &self.slots[(x & MASK) as usize]
    }

    /// `RawRing::next_index`.
    fn next_index(&self) -> u64 {
        self.reserved.load(Acquire)
    }

    /// `RawRing::reserve`: acquire load of `reserved`; per attempt, skip to the next lap
    /// when the claim would straddle the end, read the lease floor, refuse a claim that
    /// ends past `floor + capacity`, CAS (acq-rel); then mark the slots (relaxed),
    /// release fence, wrap marker (size, then index with release).
    fn reserve(&self, n: u64, floor: impl Fn() -> u64) -> Result<u64, u64> {
        let mut current = self.reserved.load(Acquire);
        loop {
            let index = current;
            let pos = index & MASK;
            let wraps = pos + n > CAP;
            let start = if wraps { index + (CAP - pos) } else { index };
            let held = floor();
            if start + n > held.saturating_add(CAP) {
                return Err(held);
            }
            match self
                .reserved
                .compare_exchange(current, start + n, AcqRel, Acquire)
            {
                Ok(_) => {
                    self.slot(start).data_index.store(INVALID, Relaxed);
                    for k in 1..n {
                        self.slot(start + k).data_index.store(start, Relaxed);
                    }
                    fence(Release);
                    if wraps {
                        let marker = self.slot(index);
                        marker.size.store(n as u32, Relaxed);
                        marker.data_index.store(start, Release);
                    }
                    return Ok(start);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// `RawRing::reserve_single` (raw.rs "Single-producer mode"): the checks of
    /// `reserve`, then a release *store* of the new head instead of the CAS, then the
    /// same marks, release fence and wrap marker.
    fn reserve_single(&self, n: u64) -> u64 {
        let index = self.reserved.load(Acquire);
        let pos = index & MASK;
        let wraps = pos + n > CAP;
        let start = if wraps { index + (CAP - pos) } else { index };
        self.reserved.store(start + n, Release);
        self.slot(start).data_index.store(INVALID, Relaxed);
        for k in 1..n {
            self.slot(start + k).data_index.store(start, Relaxed);
        }
        fence(Release);
        if wraps {
            let marker = self.slot(index);
            marker.size.store(n as u32, Relaxed);
            marker.data_index.store(start, Release);
        }
        start
    }

    /// `RawRing::publish_single`: as `publish`, but `last_published` raised with a load
    /// and a SeqCst store (no RMW).
    fn publish_single(&self, start: u64, n: u64) -> bool {
        if self.lapped(start) {
            return false;
        }
        let slot = self.slot(start);
        slot.size.store(n as u32, Relaxed);
        slot.data_index.store(start, Release);
        let current = self.last_published.load(Relaxed);
        let new = if current == INVALID || current < start {
            start
        } else {
            current
        };
        self.last_published.store(new, SeqCst);
        fence(SeqCst); // loom: SeqCst pair (last_published store, then sleepers load)
        if self.sleepers.load(SeqCst) != 0 && self.sleepers.swap(0, SeqCst) != 0 {
            self.wake_seq.fetch_add(1, Release);
            self.futex.wake(usize::MAX);
        }
        true
    }

    /// A single producer's `send` of `n`: `reserve_single`, write, `publish_single`.
    fn send_single(&self, n: u64) -> u64 {
        let start = self.reserve_single(n);
        self.write(start, n);
        self.publish_single(start, n);
        start
    }

    /// `RawRing::lapped`.
    fn lapped(&self, start: u64) -> bool {
        self.reserved.load(Relaxed) > start + CAP
    }

    /// The payload copy into the reservation (`copy_to_shared`, relaxed word stores).
    fn write(&self, start: u64, n: u64) {
        for x in start..start + n {
            self.payload[(x & MASK) as usize].store(tag(x), Relaxed);
        }
    }

    /// `RawRing::publish` (and `wake_sleepers`): unless lapped, size (relaxed), index
    /// (release), the `last_published` RMW (SeqCst, always an RMW), then the flag
    /// (SeqCst load; swap it clear, bump `wake_seq`, wake everyone).
    fn publish(&self, start: u64, n: u64) -> bool {
        if self.lapped(start) {
            return false;
        }
        let slot = self.slot(start);
        slot.size.store(n as u32, Relaxed);
        slot.data_index.store(start, Release);
        let mut current = self.last_published.load(Relaxed);
        loop {
            let new = if current == INVALID || current < start {
                start
            } else {
                current
            };
            match self
                .last_published
                .compare_exchange_weak(current, new, SeqCst, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        fence(SeqCst); // loom: SeqCst pair (last_published RMW, then sleepers load)
        if self.sleepers.load(SeqCst) != 0 && self.sleepers.swap(0, SeqCst) != 0 {
            self.wake_seq.fetch_add(1, Release);
            self.futex.wake(usize::MAX);
        }
        true
    }

    /// `send` of one element / `send_batch` of `n`: reserve, write, publish.
    fn send(&self, n: u64) -> u64 {
        let start = self.reserve(n, || NO_LEASE).unwrap();
        self.write(start, n);
        self.publish(start, n);
        start
    }

    /// `RawRing::locate`: acquire load of the slot's index; empty when invalid or older;
    /// a wrap marker to the next lap is followed; anything newer is a lag.
    fn locate(&self, mut cursor: u64) -> Locate {
        for _ in 0..2 {
            let pos = cursor & MASK;
            let slot = self.slot(cursor);
            let d = slot.data_index.load(Acquire);
            if d == INVALID || d < cursor {
                return Locate::Empty;
            }
            if d & MASK != pos {
                if d != cursor + (CAP - pos) {
                    return Locate::Lost;
                }
                cursor = d;
                continue;
            }
            if d > cursor {
                return Locate::Lost;
            }
            let n = u64::from(slot.size.load(Relaxed));
            assert!(n != 0 && n <= CAP - pos, "a published size");
            return Locate::Found {
                start: cursor,
                end: cursor + n,
            };
        }
        panic!("more than one wrap marker in a row");
    }

    /// The consumer's copy (`copy_from_shared`, relaxed word loads).
    fn copy(&self, start: u64, end: u64) -> Vec<u64> {
        (start..end)
            .map(|x| self.payload[(x & MASK) as usize].load(Relaxed))
            .collect()
    }

    /// `RawRing::intact` after a copy of `first..end` of `start..end`: acquire fence;
    /// one element: the slot still names `start`; more: the head shows no later lap and
    /// no reset, and the first slot still names `start`.
    fn intact(&self, start: u64, first: u64, end: u64) -> bool {
        fence(Acquire);
        if end - start == 1 {
            return self.slot(start).data_index.load(Relaxed) == start;
        }
        let head = self.reserved.load(Relaxed);
        if head > first + CAP || head < end {
            return false;
        }
        first != start || self.slot(start).data_index.load(Relaxed) == start
    }

    /// One `try_recv` at `cursor`: `Some(Ok(next cursor))` after a kept copy (checked
    /// against the tags), `Some(Err(()))` at a lag, `None` when empty.
    fn try_recv(&self, cursor: u64) -> Option<Result<u64, ()>> {
        match self.locate(cursor) {
            Locate::Empty => None,
            Locate::Lost => Some(Err(())),
            Locate::Found { start, end } => {
                let copy = self.copy(start, end);
                if !self.intact(start, start, end) {
                    return Some(Err(()));
                }
                let want: Vec<u64> = (start..end).map(tag).collect();
                assert_eq!(copy, want, "a kept copy of {start}..{end} is torn");
                Some(Ok(end))
            }
        }
    }
}

/// (a) The wake protocol (raw.rs "Wake protocol", queue/wait.rs `sleep_once`): two
/// producers send one element each; a blocking consumer receives both. It sleeps only
/// after reading `wake_seq`, setting the flag (SeqCst), loading `last_published`
/// (SeqCst) and re-checking; a sleep that no publish ends is a lost wake-up, which loom
/// reports as a deadlock.
#[test]
fn wake_protocol_loses_no_wake_up() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                thread::spawn(move || {
                    ring.send(1);
                })
            })
            .collect();
        let mut cursor = 0;
        while cursor < 2 {
            if let Some(r) = ring.try_recv(cursor) {
                cursor = r.expect("no lag without a lap");
                continue;
            }
            // sleep_once
            let seq = ring.wake_seq.load(Acquire);
            ring.sleepers.store(1, SeqCst);
            fence(SeqCst); // loom: SeqCst pair (flag store, then last_published load)
            let _ = ring.last_published.load(SeqCst);
            if let Some(r) = ring.try_recv(cursor) {
                cursor = r.expect("no lag without a lap");
                continue;
            }
            ring.futex.wait(&ring.wake_seq, seq);
        }
        for p in producers {
            p.join().unwrap();
        }
    });
}

/// (a') The wake protocol with a single producer (raw.rs "Single-producer mode"): its
/// publish raises `last_published` with a plain SeqCst store, not an RMW; a blocking
/// consumer still receives both of its messages (no lost wake-up).
#[test]
fn single_producer_wake_protocol_loses_no_wake_up() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                ring.send_single(1);
                ring.send_single(1);
            })
        };
        let mut cursor = 0;
        while cursor < 2 {
            if let Some(r) = ring.try_recv(cursor) {
                cursor = r.expect("no lag without a lap");
                continue;
            }
            let seq = ring.wake_seq.load(Acquire);
            ring.sleepers.store(1, SeqCst);
            fence(SeqCst); // loom: SeqCst pair (flag store, then last_published load)
            let _ = ring.last_published.load(SeqCst);
            if let Some(r) = ring.try_recv(cursor) {
                cursor = r.expect("no lag without a lap");
                continue;
            }
            ring.futex.wait(&ring.wake_seq, seq);
        }
        producer.join().unwrap();
    });
}

/// (d'') [`claim_mark_publish_validate_with_a_wrap`] with a single producer's claims
/// (a store of the head instead of the CAS): every kept copy is still its reservation's.
#[test]
fn single_producer_claim_mark_publish_validate_with_a_wrap() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                assert_eq!(ring.send_single(1), 0);
                assert_eq!(ring.send_single(2), 2);
            })
        };
        let mut cursor = 0;
        for _ in 0..3 {
            if let Some(Ok(next)) = ring.try_recv(cursor) {
                cursor = next;
            }
        }
        producer.join().unwrap();
        assert_eq!(ring.slot(1).data_index.load(Relaxed), 2, "wrap marker");
    });
}

/// (d) Claim, mark, publish, validate at capacity 2, wrap marker included: a producer
/// sends index 0, then a batch of 2 that does not fit at position 1 and so starts at
/// index 2 (a wrap marker in slot 1) and laps index 0. A consumer reading from 0 meanwhile
/// keeps only copies that hold exactly their reservation's values (`try_recv` asserts
/// it), follows the marker, and otherwise reports a lag.
#[test]
fn claim_mark_publish_validate_with_a_wrap() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                assert_eq!(ring.send(1), 0);
                assert_eq!(ring.send(2), 2);
            })
        };
        let mut cursor = 0;
        for _ in 0..3 {
            // A lag or an empty ring: try again (the assertions are inside try_recv).
            if let Some(Ok(next)) = ring.try_recv(cursor) {
                cursor = next;
            }
        }
        producer.join().unwrap();
        assert_eq!(ring.slot(1).data_index.load(Relaxed), 2, "wrap marker");
    });
}

/// (d') Two producers claim concurrently (one element each, no lap) and a consumer reads
/// both positions: every kept copy is its reservation's.
#[test]
fn concurrent_claims_publish_their_own_values() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                thread::spawn(move || {
                    ring.send(1);
                })
            })
            .collect();
        let mut cursor = 0;
        for _ in 0..2 {
            if let Some(Ok(next)) = ring.try_recv(cursor) {
                cursor = next;
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(ring.reserved.load(Relaxed), 2);
    });
}

/// (e) The shared-cursor claim (queue/cursor.rs `SharedCursor::claim`): locate at the
/// cursor (acquire load), copy, validate, then move the cursor past the reservation with
/// a CAS (acq-rel) — a claim is only made for a copy that passed. Two consumers share a
/// cursor while a producer sends two elements; after everyone is done, whatever is left
/// is drained. Every index is delivered exactly once.
#[test]
fn shared_cursor_delivers_each_reservation_once() {
    /// One `claim`: `Some(start)` when this reader claimed the reservation at `start`.
    fn claim(ring: &Ring, cursor: &AtomicU64) -> Option<u64> {
        for _ in 0..2 {
            let c = cursor.load(Acquire);
            match ring.locate(c) {
                Locate::Empty => return None,
                Locate::Lost => panic!("no lap in this model"),
                Locate::Found { start, end } => {
                    let copy = ring.copy(start, end);
                    if !ring.intact(start, start, end) {
                        panic!("no lap in this model");
                    }
                    if cursor.compare_exchange(c, end, AcqRel, Acquire).is_ok() {
                        assert_eq!(copy, [tag(start)]);
                        return Some(start);
                    }
                }
            }
        }
        None
    }

    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let cursor = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                ring.send(1);
                ring.send(1);
            })
        };
        let consumer = {
            let (ring, cursor, delivered) = (ring.clone(), cursor.clone(), delivered.clone());
            thread::spawn(move || {
                if let Some(x) = claim(&ring, &cursor) {
                    delivered[x as usize].fetch_add(1, Relaxed);
                }
            })
        };
        if let Some(x) = claim(&ring, &cursor) {
            delivered[x as usize].fetch_add(1, Relaxed);
        }
        producer.join().unwrap();
        consumer.join().unwrap();
        while let Some(x) = claim(&ring, &cursor) {
            delivered[x as usize].fetch_add(1, Relaxed);
        }
        for (x, d) in delivered.iter().enumerate() {
            assert_eq!(d.load(Relaxed), 1, "index {x} delivered {d:?} times");
        }
    });
}

/// (c) The lease floor against a concurrent reserve (queue/lease.rs `Leases::reserve`
/// and `release`, raw.rs "Leases"). A guard's lease stores a conservative floor (the
/// head, release) before its claim, refines it to its start after, writes through its
/// `&mut T`, then ends the lease (floor back to none, release). A producer of the same
/// mapping sends twice meanwhile, reading the floor (acquire) after each load of
/// `reserved`; refused claims are dropped. loom reports any write of the producer to the
/// guard's element that is not ordered after the guard's end. (At main, 2bd2b2d, the
/// floor is loaded and stored relaxed — finding 3 of issue 10 — and this model fails
/// with those orderings.)
#[test]
fn lease_floor_keeps_reservations_off_a_live_guard() {
    builder(2).check(|| {
        let ring = Arc::new(Ring::new());
        let floor = Arc::new(AtomicU64::new(NO_LEASE));
        let cells = Arc::new([UnsafeCell::new(0u64), UnsafeCell::new(0u64)]);
        let producer = {
            let (ring, floor, cells) = (ring.clone(), floor.clone(), cells.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    if let Ok(start) = ring.reserve(1, || floor.load(Acquire)) {
                        write(&cells[(start & MASK) as usize], tag(start));
                        ring.publish(start, 1);
                    }
                }
            })
        };
        // The guard (Leases::reserve under the table lock; no other lease).
        let others = NO_LEASE;
        let lower_bound = ring.next_index();
        floor.store(others.min(lower_bound), Release);
        match ring.reserve(1, || others) {
            Ok(start) => {
                floor.store(others.min(start), Release);
                write(&cells[(start & MASK) as usize], tag(start));
                ring.publish(start, 1);
                // Leases::release: the floor moves on.
                floor.store(NO_LEASE, Release);
            }
            Err(_) => floor.store(others, Release),
        }
        producer.join().unwrap();
    });
}
