//! Unit tests of the ring algorithm in local mode (heap memory, threads).

use super::attach::init_queue;
use super::*;
use crate::error::{Lapped, RecvTimeoutError, TryRecvError};
use crate::queue::SharedCursor;
use crate::queue::layout::{INVALID_INDEX, MAGIC, init_state, pack_reserved};
use crate::queue::payload;
use core::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

fn ring(capacity: usize, element_size: usize) -> Ring {
    Ring::local(&RingSpec::new(capacity, element_size)).unwrap()
}

fn send_u64(r: &Ring, v: u64) -> u64 {
    r.send_bytes(&v.to_le_bytes()).unwrap()
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn empty_queue_reads_nothing() {
    let r = ring(8, 8);
    let mut cursor = 0;
    let mut out = vec![1, 2, 3];
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    assert_eq!(cursor, 0);
    assert!(out.is_empty());
    assert_eq!(r.read_last(&mut out), None);
    let shared = SharedCursor::local(0);
    assert_eq!(r.read_shared(&shared, &mut out), Err(TryRecvError::Empty));
    assert_eq!(shared.load(), 0);
    assert_eq!(r.next_index(), 0);
    assert_eq!(r.oldest_index(), 0);
    let h = r.header();
    assert_eq!(h.magic, MAGIC);
    assert_eq!(h.init_state, init_state::READY);
    assert_eq!(h.last_published_index(), None);
    assert_eq!((h.capacity, h.element_size, h.items_per_slot), (8, 8, 1));
}

#[test]
fn out_of_order_publish_blocks_readers_at_the_first_hole() {
    let r = ring(8, 8);
    let mut a = r.reserve(1).unwrap();
    let mut b = r.reserve(1).unwrap();
    assert_eq!((a.index(), b.index()), (0, 1));
    a.write(0, &10u64.to_le_bytes()).unwrap();
    b.write(0, &11u64.to_le_bytes()).unwrap();
    assert_eq!(b.publish(), Ok(1));
    let mut cursor = 0;
    let mut out = Vec::new();
    // Index 1 is published, but index 0 (the first hole) is not: nothing to read.
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    assert_eq!(cursor, 0);
    // read_last already sees index 1.
    assert_eq!(r.read_last(&mut out).map(|i| i.index), Some(1));
    assert_eq!(a.publish(), Ok(0));
    assert_eq!(r.read(&mut cursor, &mut out).unwrap().index, 0);
    assert_eq!(u64s(&out), [10]);
    assert_eq!(r.read(&mut cursor, &mut out).unwrap().index, 1);
    assert_eq!(u64s(&out), [11]);
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    assert_eq!(cursor, 2);
}

#[test]
fn batch_reservations_wrap_with_a_marker() {
    let r = ring(8, 8);
    let mut cursor = 0;
    let mut out = Vec::new();
    let mut starts = Vec::new();
    let mut got = Vec::new();
    for batch in 0..3u64 {
        let mut res = r.reserve(3).unwrap();
        let values: Vec<u8> = (0..3)
            .flat_map(|k| (batch * 10 + k).to_le_bytes())
            .collect();
        res.write(0, &values).unwrap();
        starts.push(res.publish().unwrap());
        // Read as we go: the third reservation reuses positions 0..3.
        let info = r.read(&mut cursor, &mut out).unwrap();
        assert_eq!(info.count, 3);
        got.push((info.index, u64s(&out)));
    }
    // The third reservation (index 6, 6 + 3 > 8) skips to the next lap.
    assert_eq!(starts, [0, 3, 8]);
    assert_eq!(r.next_index(), 11);
    let marker = r.raw().slot(6);
    assert_eq!(marker.data_index.load(Relaxed), 8);
    assert_eq!(marker.size.load(Relaxed), 3);
    assert_eq!(
        got,
        [
            (0, vec![0, 1, 2]),
            (3, vec![10, 11, 12]),
            (8, vec![20, 21, 22])
        ]
    );
    assert_eq!(cursor, 11);
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    // A reader that was at the marker follows it; so does a shared cursor.
    let mut at_marker = 6;
    assert_eq!(r.read(&mut at_marker, &mut out).unwrap().index, 8);
    let shared = SharedCursor::local(6);
    assert_eq!(r.read_shared(&shared, &mut out).unwrap().index, 8);
    assert_eq!(shared.load(), 11);
    // A reader still at 0 was lapped by the reservation at 8.
    let mut stale = 0;
    assert_eq!(r.read(&mut stale, &mut out), Err(TryRecvError::Lagged(3)));
    assert_eq!(stale, 3);
}

#[test]
fn lossy_overwrite_reports_the_exact_loss_and_resumes_at_the_oldest() {
    let r = ring(8, 8);
    for v in 0..20 {
        send_u64(&r, v);
    }
    let mut cursor = 0;
    let mut out = Vec::new();
    // Items 0..12 were overwritten; 12..20 are still in the ring.
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Lagged(12)));
    assert_eq!(cursor, 12);
    let mut got = Vec::new();
    while r.read(&mut cursor, &mut out).is_ok() {
        got.extend(u64s(&out));
    }
    assert_eq!(got, (12..20).collect::<Vec<_>>());
    assert_eq!(r.oldest_index(), 12);

    // A reader lapped while positioned on a wrap marker's slot: reservations of 3 at 0,
    // 3, 8 (marker at 6 -> 8), 11, 16 (marker at 6 -> 16), 19; head 22.
    let r = ring(8, 8);
    for _ in 0..6 {
        r.send_bytes(&[0; 24]).unwrap();
    }
    assert_eq!(r.next_index(), 22);
    let mut stale = 6;
    // 6..14 are gone (2 padding positions, the batch at 8, the batch at 11 which the one
    // at 19 overwrote); the oldest intact reservation is the marker at 14 -> 16.
    assert_eq!(r.read(&mut stale, &mut out), Err(TryRecvError::Lagged(8)));
    assert_eq!(stale, 14);
    assert_eq!(r.read(&mut stale, &mut out).unwrap().index, 16);
    assert_eq!(r.read(&mut stale, &mut out).unwrap().index, 19);
}

#[test]
fn read_last_returns_the_newest_reservation() {
    let r = ring(4, 8);
    let mut out = Vec::new();
    assert_eq!(r.read_last(&mut out), None);
    for v in 0..6 {
        send_u64(&r, v);
    }
    assert_eq!(r.read_last(&mut out), Some(ReadInfo { index: 5, count: 1 }));
    assert_eq!(u64s(&out), [5]);
    let batch: Vec<u8> = [7u64, 8].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = r.send_bytes(&batch).unwrap();
    assert_eq!(at, 6); // position 2, fits
    assert_eq!(r.read_last(&mut out), Some(ReadInfo { index: 6, count: 2 }));
    assert_eq!(u64s(&out), [7, 8]);
    // The last published index is masked before indexing the slots.
    assert_eq!(r.header().last_published_index(), Some(6));
}

#[test]
fn work_stealing_delivers_each_item_to_exactly_one_of_three_consumers() {
    // Under Miri (scripts/miri.sh) 48 items: still three consumers racing for each claim.
    const ITEMS: u64 = if cfg!(miri) { 48 } else { 200 };
    let r = Arc::new(ring(256, 8));
    let cursor = SharedCursor::local(0);
    let taken = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (r, cursor, taken) = (Arc::clone(&r), cursor.clone(), Arc::clone(&taken));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut mine = Vec::new();
                let mut out = Vec::new();
                while taken.load(Relaxed) < ITEMS as usize && Instant::now() < deadline {
                    match r.read_shared(&cursor, &mut out) {
                        Ok(_) => {
                            mine.extend(u64s(&out));
                            taken.fetch_add(1, Relaxed);
                        }
                        Err(TryRecvError::Empty) => std::thread::yield_now(),
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                mine
            })
        })
        .collect();
    for v in 0..ITEMS {
        send_u64(&r, v);
        if v % 16 == 0 {
            std::thread::yield_now();
        }
    }
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(all.len(), ITEMS as usize, "every item exactly once");
    all.sort_unstable();
    assert_eq!(all, (0..ITEMS).collect::<Vec<_>>());
}

#[test]
fn shared_cursor_lag_is_counted_once() {
    let r = ring(8, 8);
    for v in 0..20 {
        send_u64(&r, v);
    }
    let cursor = SharedCursor::local(0);
    let mut out = Vec::new();
    assert_eq!(
        r.read_shared(&cursor, &mut out),
        Err(TryRecvError::Lagged(12))
    );
    assert_eq!(cursor.load(), 12);
    let mut got = Vec::new();
    while r.read_shared(&cursor, &mut out).is_ok() {
        got.extend(u64s(&out));
    }
    assert_eq!(got, (12..20).collect::<Vec<_>>());
}

#[test]
fn lapped_readers_never_see_torn_elements() {
    // Elements of 64 bytes, every byte the same counter value: a torn copy mixes two.
    read_while_lapped(4, 64, 2_000);
}

#[test]
fn lapped_readers_never_see_torn_batches() {
    // Batches of 3 elements of 64 bytes, every byte of a batch the same counter value;
    // multi-element reservations are validated by the head.
    read_while_lapped(8, 192, 200);
}

/// A producer thread sends `message_len`-byte messages (every byte of one the same
/// counter value) into a ring of `capacity` 64-byte elements, as fast as it can, while
/// this thread reads: every message read must be whole, at least `reads` of them (within
/// a bounded time), and the producer must have lapped the reader at least once.
fn read_while_lapped(capacity: usize, message_len: usize, reads: u32) {
    // Under Miri (scripts/miri.sh: its race detector checks the copies) a few reads do.
    let reads = if cfg!(miri) { reads.min(8) } else { reads };
    let r = Arc::new(ring(capacity, 64));
    let stop = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (r, stop) = (Arc::clone(&r), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut v, mut message) = (0u8, vec![0; message_len]);
            while stop.load(Relaxed) == 0 {
                message.fill(v);
                r.send_bytes(&message).unwrap();
                v = v.wrapping_add(1);
            }
        })
    };
    let mut cursor = 0;
    let mut out = Vec::new();
    let (mut good, mut lagged) = (0, 0u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while (good < reads || lagged == 0) && Instant::now() < deadline {
        match r.read(&mut cursor, &mut out) {
            Ok(_) => {
                assert!(out.iter().all(|&b| b == out[0]), "torn message: {out:?}");
                good += 1;
            }
            Err(TryRecvError::Lagged(n)) => lagged += n,
            Err(TryRecvError::Empty) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    stop.store(1, Relaxed);
    producer.join().unwrap();
    assert!(good > 0, "no message read intact");
    assert!(
        lagged > 0,
        "the producer never lapped the reader: nothing was tested"
    );
}

#[test]
fn corrupt_slot_sizes_are_reported_and_skipped() {
    let r = ring(8, 8);
    send_u64(&r, 1);
    send_u64(&r, 2);
    r.raw().slot(0).size.store(0, Relaxed);
    let mut cursor = 0;
    let mut out = Vec::new();
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Err(TryRecvError::Corrupt { index: 0, size: 0 })
    );
    assert_eq!(r.read(&mut cursor, &mut out).unwrap().index, 1);
    // A size running past the end of the ring.
    r.raw().slot(1).size.store(8, Relaxed);
    let mut cursor = 1;
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Err(TryRecvError::Corrupt { index: 1, size: 8 })
    );
}

#[test]
fn bad_parameters_are_typed_errors() {
    assert!(matches!(
        Ring::local(&RingSpec::new(12, 8)),
        Err(OpenError::InvalidCapacity { capacity: 12, .. })
    ));
    assert!(matches!(
        Ring::local(&RingSpec::new(0, 8)),
        Err(OpenError::InvalidCapacity { .. })
    ));
    assert!(matches!(
        Ring::local(&RingSpec::new(8, 0)),
        Err(OpenError::InvalidElementSize { .. })
    ));
    let r = ring(8, 4);
    assert!(matches!(
        r.reserve(0),
        Err(SendError::InvalidBatch { len: 0, .. })
    ));
    assert!(matches!(
        r.reserve(9),
        Err(SendError::InvalidBatch {
            len: 9,
            capacity: 8
        })
    ));
    assert!(matches!(
        r.send_bytes(&[0; 6]),
        Err(SendError::NotWholeElements {
            len: 6,
            element_size: 4
        })
    ));
    let mut res = r.reserve(2).unwrap();
    assert!(matches!(
        res.write(4, &[0; 5]),
        Err(SendError::WriteOutOfBounds {
            offset: 4,
            len: 5,
            reserved: 8
        })
    ));
    assert!(res.write(usize::MAX, &[0]).is_err());
    assert!(res.write(4, &[0; 4]).is_ok());
}

#[test]
fn dropped_reservations_are_skipped() {
    let r = ring(8, 8);
    drop(r.reserve(1).unwrap());
    send_u64(&r, 9);
    let mut cursor = 0;
    let mut out = Vec::new();
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Err(TryRecvError::Abandoned(1))
    );
    assert_eq!(r.read(&mut cursor, &mut out).unwrap().index, 1);
    assert_eq!(u64s(&out), [9]);
    // At the last position, the skip marker points where a wrap marker would.
    for v in 2..7 {
        send_u64(&r, v); // 2..=6
    }
    for _ in 2..7 {
        r.read(&mut cursor, &mut out).unwrap();
    }
    drop(r.reserve(1).unwrap()); // 7
    send_u64(&r, 8);
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Err(TryRecvError::Abandoned(1))
    );
    assert_eq!(r.read(&mut cursor, &mut out).unwrap().index, 8);
    assert_eq!(u64s(&out), [8]);
}

/// A peer producer's wrap marker is not one store: slick-queue-py packs the slot with
/// `struct.pack_into`, which zeroes the slot's 16 bytes, then writes `data_index`, then
/// `size`. A reader that sees the new index before the size must follow the marker, not
/// take it for an abandoned claim (whether the slot's size then reads 0, or the size of
/// an older skip marker left in that slot).
#[test]
fn a_wrap_marker_seen_before_its_size_is_followed() {
    let r = ring(8, 8);
    let mut cursor = 0;
    let mut out = Vec::new();
    for v in 0..6 {
        send_u64(&r, v);
        r.read(&mut cursor, &mut out).unwrap();
    }
    // A peer reserves 3 at 6: 6 + 3 > 8, so it claims 8..11 and marks slot 6: zeroes it,
    // then stores the index (the size not yet).
    r.raw()
        .header()
        .reserved
        .store(pack_reserved(11, 3), Relaxed);
    r.raw().slot(6).size.store(0, Relaxed);
    r.raw().slot(6).data_index.store(8, Relaxed);
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    assert_eq!(cursor, 8);

    // A slot whose last claim was abandoned, a lap later: the marker's index is seen
    // with the skip marker's size still in place.
    let r = ring(8, 8);
    let mut cursor = 0;
    for v in 0..6 {
        send_u64(&r, v);
        r.read(&mut cursor, &mut out).unwrap();
    }
    drop(r.reserve(1).unwrap()); // 6: a skip marker
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Err(TryRecvError::Abandoned(1))
    );
    for v in 7..14 {
        send_u64(&r, v); // positions 7, 0..=5: slot 6 keeps its skip marker
        r.read(&mut cursor, &mut out).unwrap();
    }
    assert_eq!(cursor, 14);
    r.raw()
        .header()
        .reserved
        .store(pack_reserved(19, 3), Relaxed);
    r.raw().slot(14).data_index.store(16, Relaxed);
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    assert_eq!(cursor, 16);
}

#[test]
fn reset_rewinds_everything() {
    let r = ring(8, 8);
    for v in 0..5 {
        send_u64(&r, v);
    }
    r.reset().unwrap();
    let h = r.header();
    assert_eq!(h.next_index(), 0);
    assert_eq!(h.last_published_index(), None);
    let mut cursor = 0;
    let mut out = Vec::new();
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Empty));
    send_u64(&r, 42);
    r.read(&mut cursor, &mut out).unwrap();
    assert_eq!(u64s(&out), [42]);
}

// Review finding 2: a producer lapped between its reservation and its write must not
// tear the newer message that now owns the position (and is already published).
#[test]
fn lapped_producer_does_not_tear_a_published_message() {
    let r = ring(4, 64);
    let mut slow = r.reserve(1).unwrap(); // index 0, position 0
    for _ in 0..3 {
        r.send_bytes(&[1; 64]).unwrap(); // 1..=3
    }
    assert_eq!(r.send_bytes(&[7; 64]).unwrap(), 4); // position 0 again, published
    // The slow producer writes its stale message now: skipped, not an error.
    slow.write(0, &[9; 32]).unwrap();
    let (mut cursor, mut out) = (4, Vec::new());
    assert_eq!(
        r.read(&mut cursor, &mut out),
        Ok(ReadInfo { index: 4, count: 1 })
    );
    assert_eq!(out, [7; 64], "the published message was torn");
    drop(slow);
}

// Review finding 3: the lapped producer's publish must not move the slot back from the
// newer index, which would make published messages unreachable.
#[test]
fn lapped_producer_publish_does_not_move_the_slot_back() {
    let r = ring(4, 8);
    let slow = r.reserve(1).unwrap(); // index 0
    for v in 1..=5u64 {
        send_u64(&r, v); // 1..=5 (4 lands on position 0)
    }
    // Reported as dropped, not as published.
    assert_eq!(slow.publish(), Err(Lapped { index: 0, len: 1 }));
    assert_eq!(r.raw().slot(0).data_index.load(Relaxed), 4);
    let (mut cursor, mut out) = (4, Vec::new());
    assert_eq!(r.read(&mut cursor, &mut out).map(|i| i.index), Ok(4));
    assert_eq!(u64s(&out), [4]);
    assert_eq!(r.read(&mut cursor, &mut out).map(|i| i.index), Ok(5));
    // A reader still at 0 learns it was lapped: 0 and 1 are gone, 2..=5 still there.
    let mut stale = 0;
    assert_eq!(r.read(&mut stale, &mut out), Err(TryRecvError::Lagged(2)));
    assert_eq!(stale, 2);
    // Dropping a lapped reservation does not publish it either.
    let slower = r.reserve(1).unwrap(); // index 6
    for v in 7..=11u64 {
        send_u64(&r, v); // 10 lands on position 2
    }
    drop(slower);
    assert_eq!(r.raw().slot(2).data_index.load(Relaxed), 10);
}

// Review finding 6: a slot or shared cursor near u64::MAX (any peer can write them) must
// be reported as corrupt, never overflow.
#[test]
fn hostile_cursor_values_do_not_overflow() {
    let r = ring(4, 8);
    let c = u64::MAX - 3; // position 0
    r.raw().slot(0).data_index.store(c, Relaxed);
    r.raw().slot(0).size.store(4, Relaxed);
    let cursor = SharedCursor::local(c);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = Vec::new();
        let shared = r.read_shared(&cursor, &mut out);
        let mut own = c;
        (shared, r.read(&mut own, &mut out), own)
    }));
    let (shared, own, own_cursor) = res.expect("a hostile cursor value panicked");
    let corrupt = Err(TryRecvError::Corrupt { index: c, size: 4 });
    assert_eq!(shared, corrupt);
    assert_eq!(own, corrupt);
    // Both move past it (to the head, as after a reset: nothing above the head exists).
    assert_eq!((cursor.load(), own_cursor), (0, 0));
}

// Review finding 12: a POSIX-style creator (shm_open, then ftruncate later, as the Python
// peer does) slower than the plain segment grow wait must still be waited for, as long as
// the peers wait (READY_TIMEOUT).
#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
#[test]
fn attach_waits_for_a_slow_posix_creator_to_size_the_segment() {
    use crate::queue::test_util::TempName;
    use rustix::fs::Mode;
    use rustix::shm;
    let name = TempName::new("slow-creator");
    let fd = shm::open(
        name.0.as_str(),
        shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
        Mode::RUSR | Mode::WUSR,
    )
    .unwrap();
    let geometry = Geometry::new(8, 8).unwrap();
    let creator = {
        let name = name.0.clone();
        std::thread::spawn(move || {
            // Longer than Segment::open's own 250 ms, well inside READY_TIMEOUT.
            std::thread::sleep(Duration::from_millis(700));
            rustix::fs::ftruncate(&fd, geometry.len as u64).unwrap();
            let seg = Segment::open(&name, geometry.len).unwrap();
            // SAFETY: no trailer; the attacher only reads header atomics meanwhile.
            unsafe { init_queue(&seg.mem(), &geometry, &RingSpec::new(8, 8), None) };
        })
    };
    let started = Instant::now();
    let ring = Ring::open(&name.0, Some(8));
    creator.join().unwrap();
    let ring = ring.expect("the attach gave up on a creator the peers would wait for");
    assert_eq!(ring.capacity(), 8);
    assert!(started.elapsed() >= Duration::from_millis(600));
    // A segment that never grows is still refused, after READY_TIMEOUT.
    let stuck = TempName::new("never-sized");
    let _fd = shm::open(
        stuck.0.as_str(),
        shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
        Mode::RUSR | Mode::WUSR,
    )
    .unwrap();
    assert!(matches!(
        Ring::open(&stuck.0, None),
        Err(OpenError::Truncated { size: 0, .. })
    ));
}

// Review finding 13: sizes the geometry accepts but memory cannot hold are errors, not
// aborts.
#[cfg_attr(
    miri,
    ignore = "asks for 2^52 bytes: Miri aborts instead of failing the allocation"
)]
#[test]
fn impossible_local_queues_are_errors() {
    // 2^31 elements of 2 MiB: 2^52 bytes, more than a user address space.
    let spec = RingSpec::new(1 << 31, 1 << 21);
    assert!(matches!(
        Ring::local(&spec),
        Err(OpenError::Alloc(crate::MemError::OutOfMemory { .. }))
    ));
}

#[test]
fn read_deadline_waits_for_a_producer_and_times_out_without_one() {
    use crate::queue::WaitStrategy;
    use std::time::Duration;
    let r = Arc::new(ring(8, 8));
    let strategy = WaitStrategy::default();
    let (mut cursor, mut out) = (0, Vec::new());
    let soon = Deadline::after(Duration::from_millis(20));
    assert_eq!(
        r.read_deadline(&mut cursor, &mut out, &strategy, soon),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(cursor, 0);
    let producer = {
        let r = Arc::clone(&r);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            send_u64(&r, 41);
            send_u64(&r, 42);
        })
    };
    let later = Deadline::after(Duration::from_secs(30));
    let info = r
        .read_deadline(&mut cursor, &mut out, &strategy, later)
        .unwrap();
    assert_eq!((info.index, u64s(&out)), (0, vec![41]));
    let shared = SharedCursor::local(cursor);
    let info = r
        .read_shared_deadline(&shared, &mut out, &strategy, later)
        .unwrap();
    assert_eq!((info.index, u64s(&out)), (1, vec![42]));
    assert_eq!(shared.load(), 2);
    assert_eq!(
        r.read_shared_deadline(&shared, &mut out, &strategy, soon),
        Err(RecvTimeoutError::Timeout)
    );
    producer.join().unwrap();
}

#[test]
fn inspection_from_a_snapshot_matches_the_attach_checks() {
    let r = ring(16, 8);
    let len = r.geometry().len as u64;
    let good = Inspection::from_snapshot("x", r.header(), len, |off| {
        assert_eq!(off, r.geometry().trailer_offset());
        None
    });
    assert_eq!(good.validation.unwrap(), r.geometry());
    let mut snap = r.header();
    snap.magic = 0x1234_5678;
    let bad = Inspection::from_snapshot("x", snap, len, |_| panic!("not asked"));
    assert!(matches!(bad.validation, Err(OpenError::BadMagic { .. })));
    snap = r.header();
    snap.init_state = init_state::INITIALISING;
    let busy = Inspection::from_snapshot("x", snap, len, |_| panic!("not asked"));
    let err = busy.validation.unwrap_err();
    assert!(
        matches!(err, OpenError::NotReady { state: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("is not initialised yet"), "{err}");
}

/// An `init_state` that is no handshake state: attaching and inspecting both call the
/// header corrupt (inspecting used to say "not initialised within 0ns"); a legacy header
/// that is filled in is ready for both.
#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
#[test]
fn attach_and_inspection_judge_init_state_alike() {
    use crate::queue::test_util::TempName;
    let temp = TempName::new("init-state");
    let name = temp.0.as_str();
    let r = Ring::create(name, &RingSpec::new(16, 8)).unwrap();
    let len = r.geometry().len as u64;
    let state = &r.raw().header().init_state;
    state.store(7, Relaxed);
    let attach = Ring::open(name, None).unwrap_err();
    let inspect = Inspection::from_snapshot(name, r.header(), len, |_| None)
        .validation
        .unwrap_err();
    for err in [&attach, &inspect] {
        assert!(
            matches!(err, OpenError::CorruptHeader { reason, .. } if reason.contains("init_state is 7")),
            "{err:?}"
        );
    }
    assert_eq!(attach.to_string(), inspect.to_string());

    state.store(init_state::LEGACY, Relaxed);
    assert!(Ring::open(name, None).is_ok());
    let legacy = Inspection::from_snapshot(name, r.header(), len, |_| None);
    assert_eq!(legacy.validation.unwrap(), r.geometry());
}

#[test]
fn reserving_marks_every_slot_it_will_overwrite_before_any_byte_is_written() {
    let r = ring(8, 8);
    for i in 0..8 {
        send_u64(&r, i);
    }
    // A one-element reservation over position 0 (index 8) marks its slot "not published".
    let one = r.reserve(1).unwrap();
    assert_eq!(one.index(), 8);
    assert_eq!(r.raw().slot(8).data_index.load(Relaxed), INVALID_INDEX);
    // A three-element one over positions 1..4 marks its first slot "not published" and
    // the other two as pointing at its start (a lapped reader there jumps to it).
    let three = r.reserve(3).unwrap();
    assert_eq!(three.index(), 9);
    assert_eq!(r.raw().slot(9).data_index.load(Relaxed), INVALID_INDEX);
    assert_eq!(r.raw().slot(10).data_index.load(Relaxed), 9);
    assert_eq!(r.raw().slot(11).data_index.load(Relaxed), 9);
    // Positions not reserved keep what they hold.
    assert_eq!(r.raw().slot(12).data_index.load(Relaxed), 4);
    assert_eq!(three.publish(), Ok(9));
    assert_eq!(one.publish(), Ok(8));
    assert_eq!(r.raw().slot(8).data_index.load(Relaxed), 8);
    assert_eq!(r.raw().slot(9).data_index.load(Relaxed), 9);
}

#[test]
fn a_single_message_copy_raced_by_a_marking_producer_is_rejected() {
    let r = ring(4, 8);
    send_u64(&r, 7); // index 0
    let raw = r.raw();
    assert!(raw.intact(0, 0, 1), "nothing raced the copy");
    // Three more, then a producer claims index 4 (position 0 again) and marks it: a copy
    // of index 0 made now is no longer trustworthy, and the slot alone says so.
    for v in 1..4 {
        send_u64(&r, v);
    }
    let lapping = r.reserve(1).unwrap();
    assert!(!raw.intact(0, 0, 1), "the marked slot rejects the copy");
    assert_eq!(lapping.publish(), Ok(4));
    assert!(!raw.intact(0, 0, 1), "the slot now names index 4");
    let mut cursor = 0;
    let mut out = Vec::new();
    assert_eq!(r.read(&mut cursor, &mut out), Err(TryRecvError::Lagged(1)));
}

// Issue 13, consumer-side batching: consecutive one-element messages are located as one
// run (one acquire load per slot, stopping at the ring's end, at a batch, at a hole, at
// the limit).
#[test]
fn runs_extend_over_published_single_messages_only() {
    let r = ring(8, 8);
    for v in 0..3 {
        send_u64(&r, v);
    }
    let raw = r.raw();
    let run = crate::queue::read::locate(raw, 0, 8).unwrap();
    assert_eq!((run.start, run.end, run.singles), (0, 3, true));
    assert_eq!(crate::queue::read::locate(raw, 0, 2).unwrap().end, 2);
    r.send_bytes(&[0; 16]).unwrap(); // a batch of 2 at 3..5: the run stops before it
    send_u64(&r, 5);
    assert_eq!(crate::queue::read::locate(raw, 0, 8).unwrap().end, 3);
    let batch = crate::queue::read::locate(raw, 3, 8).unwrap();
    assert_eq!((batch.start, batch.end, batch.singles), (3, 5, false));
    let hole = r.reserve(1).unwrap(); // 6, claimed but not published
    send_u64(&r, 7);
    assert_eq!(crate::queue::read::locate(raw, 5, 8).unwrap().end, 6);
    drop(hole);
    for v in 8..12 {
        send_u64(&r, v);
    }
    // 7 is the last position: the run at 7 ends there, the next lap starts a new one.
    assert_eq!(crate::queue::read::locate(raw, 7, 8).unwrap().end, 8);
    assert_eq!(crate::queue::read::locate(raw, 8, 8).unwrap().end, 12);
}

// A lap that overtakes a batch copy: nothing torn is kept, and the lag is exact.
#[test]
fn a_batch_copy_overtaken_by_a_lap_reports_the_exact_loss() {
    let r = ring(8, 8);
    for v in 0..8 {
        send_u64(&r, v);
    }
    let raw = *r.raw();
    let mut reader = crate::queue::read::Reader::new(0);
    let mut copy = [0u64; 8];
    let got = reader.read(
        &raw,
        8,
        8,
        |_| {},
        |src, k| {
            assert_eq!(k, 8);
            // SAFETY: `read` gives 8 elements of 8 bytes from `src`; `copy` holds 8.
            unsafe { payload::load(src, copy.as_mut_ptr().cast(), 64, raw.word()) };
            // Three more messages while the copy is being validated: positions 0..3.
            for v in 8..11 {
                send_u64(&r, v);
            }
        },
    );
    assert_eq!(got, Err(TryRecvError::Lagged(3)));
    assert_eq!(reader.next(), 3);
    let mut values = Vec::new();
    while let Ok((first, k)) = reader.read(
        &raw,
        8,
        8,
        |_| {},
        |src, k| {
            let mut out = [0u64; 8];
            // SAFETY: as above, `k <= 8`.
            unsafe { payload::load(src, out.as_mut_ptr().cast(), k * 8, raw.word()) };
            values.extend_from_slice(&out[..k]);
        },
    ) {
        assert_eq!(first + k, reader.next());
    }
    assert_eq!(values, (3..11).collect::<Vec<u64>>());
}

// A copy whose later part was overtaken keeps the intact prefix (each element of a run of
// single messages is validated by its own slot), and the reader stops where it failed.
#[test]
fn a_batch_copy_keeps_its_intact_prefix() {
    let r = ring(8, 8);
    for v in 0..6 {
        send_u64(&r, v);
    }
    let raw = *r.raw();
    let mut reader = crate::queue::read::Reader::new(0);
    let got = reader.read(
        &raw,
        8,
        8,
        |_| {},
        |_, k| {
            assert_eq!(k, 6);
            // As a producer of the next lap marks position 4 before rewriting it.
            raw.slot(4).data_index.store(INVALID_INDEX, Relaxed);
        },
    );
    assert_eq!(got, Ok((0, 4)));
    assert_eq!(reader.next(), 4);
    assert_eq!(
        reader.read(&raw, 8, 8, |_| {}, |_, _| {}),
        Err(TryRecvError::Empty)
    );
}
