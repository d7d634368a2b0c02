//! Unit tests of the typed endpoints: leases of zero-copy guards, the self-healing wake
//! flag, hostile shared cursors, pending batch items, and the typed attach checks.

use core::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use crate::error::{OpenError, SendError, TryRecvError};
use crate::queue::raw::NO_LEASE;
use crate::queue::test_util::TempName;
use crate::queue::{SharedCursor, SlickQueue};

fn is_held(r: Result<impl Sized, SendError>, index: u64) -> bool {
    matches!(r, Err(SendError::GuardHeld { held, .. }) if held == index)
}

// Review finding 1: a guard's slot cannot be reserved again through the same mapping
// while the guard lives (the reviewer's reproduction got two live `&mut` to one slot, and
// a miscompile in release builds).
#[test]
fn slot_guards_never_alias_after_one_lap() {
    let q = SlickQueue::<u64>::local(4).unwrap();
    let (tx1, tx2) = (q.producer().unwrap(), q.producer().unwrap());
    let mut g1 = tx1.reserve().unwrap(); // index 0, position 0
    *g1 = 10;
    for i in 1..4 {
        assert_eq!(tx2.send(&i).unwrap(), i); // 1..=3
    }
    // Index 4 is position 0 again: every way to reserve it is refused, nothing reserved.
    assert!(is_held(tx2.reserve(), 0));
    assert!(is_held(tx2.send(&4), 0));
    assert!(is_held(tx2.send_batch(&[4, 5]), 0));
    assert!(is_held(tx2.reserve_batch(1), 0));
    assert!(is_held(q.clone().producer().unwrap().send(&4), 0));
    assert!(is_held(q.ring().send_bytes(&4u64.to_le_bytes()), 0));
    assert!(is_held(q.ring().reserve(1), 0));
    assert_eq!(
        q.next_index(),
        4,
        "a refused reservation reserved something"
    );
    let err = tx2.send(&4).unwrap_err().to_string();
    assert!(
        err.contains("message 0") && err.contains("<local>"),
        "{err}"
    );
    assert_eq!(*g1, 10, "the guard's slot was written");
    assert_eq!(g1.commit(), 0);
    // Once committed, the slot is the ring's again.
    let mut g2 = tx2.reserve().unwrap();
    assert_eq!(g2.index(), 4);
    *g2 = 40;
    g2.commit();
    let mut rx = q.consumer_from_oldest().unwrap();
    let got: Vec<u64> = (0..4).map(|_| rx.try_recv().unwrap()).collect();
    assert_eq!(got, [1, 2, 3, 40]);
    assert_eq!(q.ring().leases().floor(), NO_LEASE);
}

#[test]
fn guards_do_not_reach_each_other_and_never_refuse_themselves() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let g0 = tx.reserve().unwrap(); // 0
    tx.send_batch(&[1, 2]).unwrap(); // 1..=2
    let g3 = tx.reserve_batch(2).unwrap(); // 3..=4
    assert_eq!(g3.index(), 3);
    tx.send_batch(&[5, 6, 7]).unwrap(); // 5..=7, ends at 8 = 0 + capacity
    // Another guard may not reach g0's slot either.
    assert!(is_held(tx.reserve(), 0));
    drop(g0);
    // Now g3 is the oldest lease: up to index 10 (3 + 8 - 1) may be reserved.
    tx.send_batch(&[8, 9, 10]).unwrap();
    assert!(is_held(tx.send(&11), 3));
    drop(g3);
    assert_eq!(q.ring().leases().floor(), NO_LEASE);

    // A batch guard that wraps starts a lap after the head it registered with: its own
    // lower bound must not refuse it.
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    tx.send_batch(&[0, 1]).unwrap(); // head 2
    let big = tx.reserve_batch(7).unwrap(); // 2 + 7 > 8: wraps to 8..15
    assert_eq!(big.index(), 8);
    assert_eq!(tx.send(&0).unwrap(), 15); // position 7: not the guard's
    assert!(is_held(tx.send(&0), 8)); // 16 is position 0: the guard's
    assert_eq!(big.commit(), 8);
    assert_eq!(tx.send(&0).unwrap(), 16);
}

#[test]
fn guards_in_many_threads_never_share_a_slot() {
    // Guards only (plain sends have the documented check-to-write window): each thread
    // fills its slot with its own pattern, yields while holding it, and checks that
    // nobody else wrote it.
    let q = SlickQueue::<[u64; 4]>::local(4).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (1..=4u64)
        .map(|t| {
            let (tx, stop, refused) = (
                q.producer().unwrap(),
                Arc::clone(&stop),
                Arc::clone(&refused),
            );
            std::thread::spawn(move || {
                let mut held = 0u64;
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    let mut g = match tx.reserve() {
                        Ok(g) => g,
                        Err(SendError::GuardHeld { .. }) => {
                            refused.fetch_add(1, Relaxed);
                            std::thread::yield_now();
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    };
                    let pattern = [t << 32 | held; 4];
                    *g = pattern;
                    std::thread::yield_now();
                    assert_eq!(*g, pattern, "another reservation wrote a held slot");
                    g.commit();
                    held += 1;
                }
                held
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.load(Relaxed) < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Relaxed);
    let held: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(held > 0);
    assert!(
        refused.load(Relaxed) > 0,
        "no reservation ever reached a held slot: nothing was tested"
    );
    assert_eq!(q.ring().leases().floor(), NO_LEASE);
}

// Review finding 11: a consumer killed while asleep leaves the "waiters present" flag
// set; that must cost at most one needless wake, not one per publish forever.
#[test]
fn a_sleeper_that_died_costs_one_wake_at_most() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let header = q.ring().raw().header();
    header.sleepers.store(1, Relaxed); // a consumer registered, then was killed
    tx.send(&1).unwrap();
    assert_eq!(header.wake_seq.load(Relaxed), 1, "the first publish wakes");
    assert_eq!(header.sleepers.load(Relaxed), 0, "and clears the flag");
    for i in 2..10 {
        tx.send(&i).unwrap();
    }
    assert_eq!(
        header.wake_seq.load(Relaxed),
        1,
        "later publishes must not wake nobody"
    );
}

#[test]
fn a_woken_consumer_receives_and_the_flag_is_clear() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let strategy = crate::queue::WaitStrategy::default()
        .spins(0)
        .yields(0)
        .poll_interval(Duration::from_secs(120));
    let mut rx = q.consumer().unwrap().with_wait_strategy(strategy);
    let consumer = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(60)));
    let header = q.ring().raw().header();
    let deadline = Instant::now() + Duration::from_secs(20);
    while header.sleepers.load(Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the consumer never went to sleep"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    q.producer().unwrap().send(&7).unwrap();
    assert_eq!(consumer.join().unwrap(), Ok(7));
    assert_eq!(header.sleepers.load(Relaxed), 0);
}

// Review finding 6, typed: a shared cursor near u64::MAX (a peer can write it).
#[test]
fn shared_consumer_survives_a_hostile_cursor() {
    let q = SlickQueue::<u64>::local(4).unwrap();
    let c = u64::MAX - 3; // position 0
    let slot = q.ring().raw().slot(0);
    slot.data_index.store(c, Relaxed);
    slot.size.store(4, Relaxed);
    let mut rx = q.shared_consumer(SharedCursor::local(c)).unwrap();
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.try_recv()));
    assert_eq!(
        got.expect("a hostile cursor value panicked"),
        Err(TryRecvError::Corrupt { index: c, size: 4 })
    );
    assert_eq!(rx.cursor().load(), 0);
}

// Review finding 16: items of a claimed batch are not silently lost.
#[test]
fn pending_batch_items_can_be_taken() {
    let q = SlickQueue::<u32>::local(16).unwrap();
    let cursor = SharedCursor::local(0);
    let mut a = q.shared_consumer(cursor.clone()).unwrap();
    let mut b = q.shared_consumer(cursor).unwrap();
    q.producer().unwrap().send_batch(&[1, 2, 3, 4]).unwrap();
    assert_eq!(a.try_recv(), Ok(1));
    assert_eq!(
        b.try_recv(),
        Err(TryRecvError::Empty),
        "the batch is a's alone"
    );
    assert_eq!(a.pending(), 3);
    assert_eq!(a.try_recv(), Ok(2));
    assert_eq!(a.take_pending(), [3, 4]);
    assert_eq!((a.pending(), a.try_recv()), (0, Err(TryRecvError::Empty)));
}

// Review finding 13: the typed open_or_create validates the capacity even when the queue
// exists, and impossible local queues are errors.
#[test]
fn typed_open_or_create_validates_the_capacity_first() {
    let name = TempName::new("typed-geometry");
    let q = SlickQueue::<u64>::open_or_create(&name.0, 8).unwrap();
    assert!(q.created());
    assert!(matches!(
        SlickQueue::<u64>::open_or_create(&name.0, 12),
        Err(OpenError::InvalidCapacity { capacity: 12, .. })
    ));
    assert!(matches!(
        SlickQueue::<[u8; 1 << 20]>::local(1 << 31),
        Err(OpenError::Alloc(_))
    ));
}

// Issue 9: a guard dropped without `commit()` published the slot's stale bytes as a
// message; now consumers skip it (`Abandoned`), plain and shared alike, and every later
// message is delivered.
#[test]
fn guards_dropped_without_commit_are_skipped_not_delivered() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    let mut shared = q.shared_consumer(SharedCursor::local(0)).unwrap();
    tx.send(&1).unwrap(); // 0
    let mut g = tx.reserve().unwrap(); // 1: stale bytes, then dropped
    *g = 666;
    drop(g);
    let mut b = tx.reserve_batch(2).unwrap(); // 2..=3, dropped too
    b[0] = 777;
    drop(b);
    tx.send(&2).unwrap(); // 4
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Abandoned(1)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Abandoned(2)));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(shared.try_recv(), Ok(1));
    assert_eq!(shared.try_recv(), Err(TryRecvError::Abandoned(1)));
    assert_eq!(shared.try_recv(), Err(TryRecvError::Abandoned(2)));
    assert_eq!(shared.try_recv(), Ok(2));
    // The last element of the ring: the skip marker points at the next lap's start,
    // where a wrap marker would; its size (0) tells them apart.
    for v in 3..5 {
        tx.send(&v).unwrap(); // 5..=6
    }
    for v in 3..5 {
        assert_eq!(rx.try_recv(), Ok(v));
    }
    drop(tx.reserve().unwrap()); // 7, the last position
    tx.send(&9).unwrap(); // 8
    assert_eq!(rx.try_recv(), Err(TryRecvError::Abandoned(1)));
    assert_eq!(rx.try_recv(), Ok(9));
}

mod lossless {
    use super::*;
    use crate::error::{RecvError, RecvTimeoutError, SendTimeoutError, TrySendError};
    use crate::queue::Mode;

    fn queue(capacity: usize) -> SlickQueue<u64> {
        SlickQueue::<u64>::local_with(capacity, Mode::Lossless).unwrap()
    }

    #[test]
    fn try_send_hands_the_message_back_when_full() {
        let q = queue(4);
        let tx = q.producer().unwrap();
        let mut rx = q.consumer().unwrap();
        for i in 0..4 {
            assert_eq!(tx.try_send(&i), Ok(i));
        }
        assert_eq!(tx.try_send(&4), Err(TrySendError::Full(4)));
        assert_eq!(q.next_index(), 4, "a refused send reserved something");
        assert_eq!(
            tx.send_timeout(&4, Duration::from_millis(20)),
            Err(SendTimeoutError::Timeout(4))
        );
        // Reading frees room only once the position is published: at the latest when
        // the consumer finds the queue empty.
        let got: Vec<u64> = rx.try_iter().collect();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(tx.try_send(&4), Ok(4));
        assert_eq!(rx.try_recv(), Ok(4));
    }

    #[test]
    fn messages_sent_before_the_first_consumer_wait_for_it() {
        let q = queue(8);
        let tx = q.producer().unwrap();
        for i in 0..8 {
            tx.send(&i).unwrap();
        }
        assert!(matches!(tx.try_send(&8), Err(TrySendError::Full(8))));
        let mut rx = q.consumer().unwrap();
        assert_eq!(rx.position(), 0);
        for i in 0..8 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        // A consumer that leaves holds nobody back: with no consumer left, producers
        // overwrite, and the next consumer starts at the head.
        tx.send(&8).unwrap();
        assert_eq!(rx.try_recv(), Ok(8));
        drop(rx);
        for i in 9..30 {
            assert_eq!(tx.try_send(&i), Ok(i));
        }
        let mut next = q.consumer().unwrap();
        assert_eq!(next.try_recv(), Err(TryRecvError::Empty));
        tx.send(&30).unwrap();
        assert_eq!(next.try_recv(), Ok(30));
    }

    #[test]
    fn a_slow_consumer_loses_nothing() {
        let q = queue(16);
        let tx = q.producer().unwrap();
        let mut rx = q.consumer().unwrap();
        const N: u64 = 20_000;
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                if i % 3 == 0 {
                    tx.send_batch(&[i]).unwrap();
                } else {
                    tx.send(&i).unwrap();
                }
            }
        });
        for i in 0..N {
            if i % 2000 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(rx.recv(), Ok(i));
        }
        sender.join().unwrap();
        // The only producer left: disconnected once everything was read.
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    }

    #[test]
    fn batches_and_guards_obey_the_floor() {
        let q = queue(8);
        let tx = q.producer().unwrap();
        let mut rx = q.consumer().unwrap();
        tx.send_batch(&[0, 1, 2, 3, 4, 5]).unwrap();
        // Two more fit; a batch of three does not (it would wrap to the next lap).
        let tx2 = tx.clone();
        let blocked = std::thread::spawn(move || {
            let mut g = tx2.reserve_batch(3).unwrap();
            g.copy_from_slice(&[6, 7, 8]);
            g.commit()
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(!blocked.is_finished(), "a batch passed the floor");
        assert_eq!(q.next_index(), 6);
        let mut buf = [0u64; 8];
        assert_eq!(rx.recv_into(&mut buf), Ok(6));
        // Its index: the batch wraps to the next lap (positions 6..8 cannot hold 3).
        assert_eq!(blocked.join().unwrap(), 8);
        assert_eq!(rx.recv(), Ok(6));
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(rx.try_recv(), Ok(8));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_shared_group_gets_every_message_once() {
        let q = queue(8);
        let cursor = SharedCursor::local(q.start_index());
        let tx = q.producer().unwrap();
        const N: u64 = 10_000;
        let members: Vec<_> = (0..2)
            .map(|_| {
                let mut rx = q.shared_consumer(cursor.clone()).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match rx.recv_timeout(Duration::from_secs(20)) {
                            Ok(v) => got.push(v),
                            Err(RecvTimeoutError::Disconnected) => return got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for i in 0..N {
            tx.send(&i).unwrap();
        }
        drop(tx);
        let mut all: Vec<u64> = members
            .into_iter()
            .flat_map(|m| m.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..N).collect::<Vec<_>>());
    }

    #[test]
    fn the_mode_is_recorded_and_checked() {
        let name = TempName::new("mode");
        let q = SlickQueue::<u64>::create_with(&name.0, 8, Mode::Lossless).unwrap();
        assert_eq!(q.mode(), Mode::Lossless);
        assert_eq!(
            SlickQueue::<u64>::open(&name.0).unwrap().mode(),
            Mode::Lossless
        );
        let err = SlickQueue::<u64>::open_or_create(&name.0, 8).unwrap_err();
        assert!(matches!(
            err,
            OpenError::ModeMismatch {
                requested: Mode::Lossy,
                found: Mode::Lossless,
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("lossless") && text.contains("lossy"),
            "{text}"
        );
    }

    #[test]
    fn endpoints_register_and_the_table_has_a_clear_limit() {
        let q = queue(8);
        let tx = q.producer().unwrap();
        let _tx2 = tx.clone(); // clones share the entry
        let rx = q.consumer().unwrap();
        assert_eq!((q.producer_count(), q.consumer_count()), (1, 1));
        let mut many = Vec::new();
        let err = loop {
            match q.consumer() {
                Ok(c) => many.push(c),
                Err(e) => break e,
            }
        };
        assert_eq!(many.len(), crate::queue::MAX_ENDPOINTS - 2);
        assert!(
            matches!(err, OpenError::EndpointsFull { max: 64, .. }),
            "{err}"
        );
        many.clear();
        drop(rx);
        assert_eq!((q.producer_count(), q.consumer_count()), (1, 0));
    }
}
