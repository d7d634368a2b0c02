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
    g1.write(10);
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
    assert_eq!(g1.peek(), 10, "the guard's slot was written");
    assert_eq!(g1.commit(), Ok(0));
    // Once committed, the slot is the ring's again.
    let mut g2 = tx2.reserve().unwrap();
    assert_eq!(g2.index(), 4);
    g2.write(40);
    assert_eq!(g2.commit(), Ok(4));
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
    assert_eq!(big.commit(), Ok(8));
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
                    g.write(pattern);
                    std::thread::yield_now();
                    assert_eq!(g.peek(), pattern, "another reservation wrote a held slot");
                    g.commit().unwrap();
                    held += 1;
                }
                held
            })
        })
        .collect();
    // Under Miri (scripts/miri.sh) a few refusals do: each one is a reservation that
    // reached a held slot and was turned away.
    let (want_refused, linger) = if cfg!(miri) { (4, 1) } else { (100, 50) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.load(Relaxed) < want_refused && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(linger));
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
#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
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
    g.write(666);
    drop(g);
    let mut b = tx.reserve_batch(2).unwrap(); // 2..=3, dropped too
    b.write_at(0, 777).unwrap();
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
        // Under Miri (scripts/miri.sh) 200 messages: still 12 laps of the ring, each
        // one waiting for the consumer's sleeps.
        const N: u64 = if cfg!(miri) { 200 } else { 20_000 };
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
            if i % (N / 10) == 0 {
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
            g.write(&[6, 7, 8]).unwrap();
            g.commit().unwrap()
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(!blocked.is_finished(), "a batch passed the floor");
        assert_eq!(q.next_index(), 6);
        // Room for the six only: reading them frees the floor, and the batch may be
        // published while this call is still running (it was seen, under load, to read
        // two of the batch too with a larger buffer).
        let mut buf = [0u64; 6];
        assert_eq!(rx.recv_into(&mut buf), Ok(6));
        assert_eq!(buf, [0, 1, 2, 3, 4, 5]);
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
        // Under Miri (scripts/miri.sh) 200 messages: still 25 laps of the ring, the two
        // members racing for every claim.
        const N: u64 = if cfg!(miri) { 200 } else { 10_000 };
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

    #[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
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

    // Merge of issue 10 into the endpoint layer: the end of the index space refuses a
    // lossless queue's claims at once with the typed error, whatever the floor (no
    // consumer has come, so the floor is 0 and a full-queue wait would never end).
    #[test]
    fn claims_past_the_index_limit_fail_at_once_in_every_send() {
        use crate::queue::layout::pack_reserved;

        let q = queue(8);
        let limit = (1u64 << 48) - 8;
        q.ring()
            .raw()
            .header()
            .reserved
            .store(pack_reserved(limit, 1), Relaxed);
        let tx = q.producer().unwrap();
        let exhausted = |e: &SendError| {
            matches!(e, SendError::IndexExhausted { next_index, limit: l, .. }
                if *next_index == limit && *l == limit)
        };
        match tx.try_send(&1) {
            Err(TrySendError::Failed(1, e)) => assert!(exhausted(&e), "{e}"),
            other => panic!("{other:?}"),
        }
        match tx.send_timeout(&2, Duration::from_secs(20)) {
            Err(SendTimeoutError::Failed(2, e)) => assert!(exhausted(&e), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(tx.send(&3).is_err_and(|e| exhausted(&e)));
        assert!(tx.send_batch(&[4, 5]).is_err_and(|e| exhausted(&e)));
        assert!(
            tx.reserve()
                .map(|g| g.index())
                .is_err_and(|e| exhausted(&e))
        );
        assert!(
            q.ring()
                .reserve_deadline(1, Instant::now() + Duration::from_secs(20))
                .map(|r| r.map(|r| r.index()))
                .is_err_and(|e| exhausted(&e))
        );
        assert_eq!(q.next_index(), limit, "a refused claim reserved something");
    }

    // Merge of issue 10 into the endpoint layer: after a reset, the floor lossless
    // producers use must come from the new generation. The consumer publishes its rewound
    // position as soon as it notices the reset (here in a blocking receive, which then
    // finds a message, so the empty-queue publication never runs), and the resetting
    // mapping drops its cached floor; otherwise the consumer's pre-reset position (9)
    // would let producers run 8 messages past it.
    #[test]
    fn after_a_reset_the_lossless_floor_follows_the_consumer() {
        let q = queue(8);
        let tx = q.producer().unwrap();
        let mut rx = q.consumer().unwrap();
        for i in 0..8 {
            tx.send(&i).unwrap();
        }
        for i in 0..8 {
            assert_eq!(rx.recv(), Ok(i));
        }
        // Refused at the cached floor, rescans, caches the consumer's position (8).
        assert_eq!(tx.try_send(&8), Ok(8));
        assert_eq!(rx.recv(), Ok(8));
        q.reset().unwrap();
        assert_eq!(tx.send(&100).unwrap(), 0);
        // No spinning: the first empty attempt is followed by the check before a sleep,
        // which finds the reset and then the message (not a spinning consumer's 64th
        // empty result, after which the empty-queue publication would run).
        rx.set_wait_strategy(crate::queue::WaitStrategy::default().spins(0).yields(0));
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(100));
        let published = q
            .ring()
            .endpoints()
            .iter()
            .find(|e| e.role.is_consumer())
            .map(|e| e.position);
        assert!(matches!(published, Some(0 | 1)), "{published:?}");
        // The consumer published 0 or 1 (it has read index 0): at most a ring's worth
        // past it fits (indices 1..8 or 1..=8), not the 16 its old position allowed.
        let mut sent = 0;
        while tx.try_send(&(200 + sent)).is_ok() {
            sent += 1;
            assert!(sent <= 8, "producers ran past the consumer's new position");
        }
        assert!(sent >= 7, "only {sent} sends fitted");
        for i in 0..sent {
            assert_eq!(rx.try_recv(), Ok(200 + i));
        }
    }
}

// Issue 10, finding 1: `reset` rewound the index but not the lease floor, so the next
// `send` landed on the slot behind a live guard's `&mut T`. A reset is now refused while
// a guard of the mapping lives, and the guard keeps its slot.
#[test]
fn reset_is_refused_while_a_guard_lives() {
    let q = SlickQueue::<u64>::local(4).unwrap();
    let tx = q.producer().unwrap();
    let mut g = tx.reserve().unwrap(); // index 0, position 0
    g.write(111);
    let refused = q.reset();
    assert!(
        matches!(
            &refused,
            Err(SendError::ResetWhileGuardHeld { held: 0, .. })
        ),
        "{refused:?}"
    );
    assert_eq!(q.next_index(), 1, "a refused reset rewound the queue");
    // A send after the refused reset goes to index 1; one that would reach position 0
    // is refused, as before the reset attempt.
    assert_eq!(tx.send(&222).unwrap(), 1);
    assert_eq!(
        g.peek(),
        111,
        "a send after the reset wrote the guard's slot"
    );
    for i in 2..4 {
        tx.send(&i).unwrap();
    }
    assert!(is_held(tx.send(&4), 0));
    assert_eq!(g.peek(), 111);
    assert!(
        q.ring().reset().is_err(),
        "Ring::reset is refused the same way"
    );
    assert_eq!(g.commit(), Ok(0));
    // Without guards the reset goes through and leaves no floor behind.
    q.reset().unwrap();
    assert_eq!(q.next_index(), 0);
    assert_eq!(q.ring().leases().floor(), NO_LEASE);
    let mut g = tx.reserve().unwrap();
    assert_eq!(g.index(), 0);
    g.write(5);
    assert_eq!(g.commit(), Ok(0));
    let mut rx = q.consumer_from_oldest().unwrap();
    assert_eq!(rx.try_recv(), Ok(5));
}

// Issue 10, finding 3: the lease floor was loaded and stored relaxed, so nothing ordered
// a guard's last write through `&mut T` before the write of the send that reuses its slot
// a lap later. The threads below coordinate only through relaxed flags (which order
// nothing), so the one thing that can order the guard's write before the send's is the
// floor. Under Miri (scripts/miri.sh) a relaxed floor is reported as a data race.
#[test]
fn a_guards_last_write_happens_before_the_next_lap_reuses_its_slot() {
    let q = SlickQueue::<u64>::local(2).unwrap();
    let (txa, txb) = (q.producer().unwrap(), q.producer().unwrap());
    let reserved = Arc::new(AtomicBool::new(false));
    let b_sent = Arc::new(AtomicBool::new(false));
    let (r, s) = (Arc::clone(&reserved), Arc::clone(&b_sent));
    let spin_until = |flag: &AtomicBool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !flag.load(Relaxed) {
            assert!(Instant::now() < deadline, "the other thread never came");
            std::thread::yield_now();
        }
    };
    let a = std::thread::spawn(move || {
        let mut g = txa.reserve().unwrap(); // index 0
        r.store(true, Relaxed);
        spin_until(&s);
        // A plain write (not `write`'s atomic stores): the floor must order it.
        // SAFETY: the guard's slot, valid and aligned for a u64 until the commit; no
        // other access in this test touches position 0 before the commit.
        unsafe { g.as_mut_ptr().write(7) };
        g.commit().unwrap()
    });
    let b = std::thread::spawn(move || {
        spin_until(&reserved);
        assert_eq!(txb.send(&1).unwrap(), 1);
        b_sent.store(true, Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match txb.send(&2) {
                Ok(index) => return index,
                Err(SendError::GuardHeld { held: 0, .. }) => {
                    assert!(Instant::now() < deadline, "the guard was never released");
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(a.join().unwrap(), 0);
    assert_eq!(
        b.join().unwrap(),
        2,
        "the second send reuses the guard's slot"
    );
    let mut rx = q.consumer_from_oldest().unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
}

// Issue 10, finding 5: the reset check ran only before a sleep, so a busy-spinning
// consumer, or one that only calls `try_recv`, never noticed a reset (its cursor stays
// beyond the new head, where nothing is published for a long time). Every consumer now
// notices within RESET_CHECK_INTERVAL calls that find nothing.
#[test]
fn every_consumer_notices_a_reset_within_a_bounded_number_of_calls() {
    use super::consumer::RESET_CHECK_INTERVAL;
    use crate::queue::WaitStrategy;

    let q = SlickQueue::<u64>::local(16).unwrap();
    let tx = q.producer().unwrap();
    let mut polling = q.consumer().unwrap();
    let mut spinning = q
        .consumer()
        .unwrap()
        .with_wait_strategy(WaitStrategy::busy_spin());
    let mut shared = q.shared_consumer(SharedCursor::local(0)).unwrap();
    for i in 0..5 {
        tx.send(&i).unwrap();
        assert_eq!(polling.try_recv(), Ok(i));
        assert_eq!(spinning.try_recv(), Ok(i));
        assert_eq!(shared.try_recv(), Ok(i));
    }
    q.reset().unwrap();
    tx.send(&100).unwrap();
    // `try_recv` alone: the message of the new generation within the bound.
    let calls = (1..=RESET_CHECK_INTERVAL + 1).find(|_| polling.try_recv() == Ok(100));
    assert!(calls.is_some(), "try_recv never noticed the reset");
    let calls = (1..=RESET_CHECK_INTERVAL + 1).find(|_| shared.try_recv() == Ok(100));
    assert!(
        calls.is_some(),
        "SharedConsumer::try_recv never noticed the reset"
    );
    assert_eq!(shared.cursor().load(), 1);
    // A busy-spinning blocking receive (it never sleeps, so never ran the old check).
    assert_eq!(spinning.recv_timeout(Duration::from_secs(20)), Ok(100));
    assert_eq!(spinning.position(), 1);
}

// Issue 10, finding 6: past 2^48 indices the packed head wrapped to 0 and consumers
// stalled (`try_recv` Empty forever, `latest` stuck). Claims that would end past
// `2^48 - capacity` are now refused with a typed error; consumers read everything up to
// the limit, and a reset restarts the index space for producers and consumers alike.
#[test]
fn the_index_space_ends_with_a_typed_error_and_a_reset_restarts_it() {
    use super::consumer::RESET_CHECK_INTERVAL;
    use crate::queue::layout::pack_reserved;

    let exhausted = |r: Result<_, SendError>, at: u64, limit: u64| {
        matches!(r, Err(SendError::IndexExhausted { next_index, limit: l, .. })
            if next_index == at && l == limit)
    };
    let q = SlickQueue::<u64>::local(8).unwrap();
    let limit = (1u64 << 48) - 8;
    let near = limit - 3; // position 5 of 8
    q.ring()
        .raw()
        .header()
        .reserved
        .store(pack_reserved(near, 1), Relaxed);
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    assert_eq!(rx.position(), near);
    // A batch that would wrap the ring starts at the limit: refused, nothing reserved.
    assert!(exhausted(
        tx.send_batch(&[1, 2, 3, 4]).map(|_| 0),
        near,
        limit
    ));
    for i in 0..3 {
        assert_eq!(tx.send(&i).unwrap(), near + i);
    }
    assert_eq!(q.next_index(), limit);
    assert!(exhausted(tx.send(&9), limit, limit));
    assert!(exhausted(tx.reserve().map(|g| g.index()), limit, limit));
    assert!(exhausted(
        q.ring().send_bytes(&9u64.to_le_bytes()),
        limit,
        limit
    ));
    let err = tx.send(&9).unwrap_err().to_string();
    assert!(err.contains("reset the queue"), "{err}");
    assert_eq!(q.next_index(), limit, "a refused claim reserved something");
    // Consumers get everything published before the limit, then nothing new.
    for i in 0..3 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(q.latest(), Some(2));
    // A reset starts over; the consumer follows within the reset check's bound.
    q.reset().unwrap();
    assert_eq!(tx.send(&50).unwrap(), 0);
    let got = (0..=RESET_CHECK_INTERVAL).find(|_| rx.try_recv() == Ok(50));
    assert!(got.is_some(), "the consumer did not follow the reset");
    assert_eq!(q.latest(), Some(50));
}

// Issue 12: a slot holds the stale bytes of an older message when reserved; `write`
// replaces all of them, so what is published is exactly the value written.
#[test]
fn write_publishes_exactly_the_value_over_stale_bytes() {
    let q = SlickQueue::<[u64; 4]>::local(2).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    tx.send(&[9; 4]).unwrap(); // 0, position 0
    tx.send(&[8; 4]).unwrap(); // 1, position 1
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok([9; 4]), Ok([8; 4])));
    let mut g = tx.reserve().unwrap(); // 2, position 0 again
    assert_eq!(
        g.peek(),
        [9; 4],
        "the slot holds the older message when reserved"
    );
    g.write([1, 0, 0, 0]);
    g.write([1, 0, 0, 4]); // the last write is the message
    assert_eq!(g.commit(), Ok(2));
    assert_eq!(rx.try_recv(), Ok([1, 0, 0, 4]));
    // Batches: a whole-batch write must match the reservation, and covers every slot.
    let mut b = tx.reserve_batch(2).unwrap(); // wraps past position 1: 4..=5 (positions 0, 1)
    assert_eq!(b.index(), 4);
    assert_eq!(b.peek(), [[1, 0, 0, 4], [8; 4]]);
    assert!(matches!(
        b.write(&[[5; 4]]),
        Err(SendError::BatchWrite {
            first: 0,
            len: 1,
            reserved: 2
        })
    ));
    assert!(matches!(
        b.write_at(2, [5; 4]),
        Err(SendError::BatchWrite { first: 2, .. })
    ));
    assert_eq!(b.peek(), [[1, 0, 0, 4], [8; 4]], "a refused write wrote");
    b.write(&[[5; 4], [6; 4]]).unwrap();
    b.write_at(1, [7; 4]).unwrap();
    assert_eq!(b.commit(), Ok(4));
    let mut out = [[0u64; 4]; 2];
    assert_eq!(rx.try_recv_into(&mut out), Ok(2));
    assert_eq!(out, [[5; 4], [7; 4]]);
}

#[test]
fn reserve_with_starts_from_zero_and_knows_its_index() {
    let q = SlickQueue::<[u64; 3]>::local(2).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    tx.send_batch(&[[7; 3], [7; 3]]).unwrap(); // 0..=1: stale bytes in both positions
    assert_eq!(rx.try_recv(), Ok([7; 3]));
    assert_eq!(rx.try_recv(), Ok([7; 3]));
    let mut seen = None;
    let index = tx
        .reserve_with(|index, msg| {
            seen = Some((index, *msg));
            msg[0] = index;
            msg[2] = 42;
        })
        .unwrap();
    assert_eq!(index, 2);
    assert_eq!(seen, Some((2, [0; 3])), "fill did not start from zero");
    assert_eq!(rx.try_recv(), Ok([2, 0, 42]));
    // The lease is gone: the next lap reaches position 0 again.
    tx.send(&[1; 3]).unwrap();
    assert_eq!(tx.send(&[1; 3]).unwrap(), 4);
    assert_eq!(q.ring().leases().floor(), NO_LEASE);
}

// Issue 12: `commit`/`publish` said nothing when producers that do not see the guard's
// lease (another process, here another mapping of the same segment) lapped it and the
// message was dropped; they now return `Err(Lapped)`, and the guard's writes after the
// lap do not tear the newer message.
#[test]
#[cfg_attr(
    miri,
    ignore = "maps one shared-memory segment twice: Miri cannot map one"
)]
fn commit_after_a_lap_reports_the_drop() {
    use crate::error::Lapped;
    let name = TempName::new("lapped-guard");
    let here = SlickQueue::<[u64; 4]>::create(&name.0, 4).unwrap();
    let there = SlickQueue::<[u64; 4]>::open(&name.0).unwrap(); // its own lease table
    let (tx, other) = (here.producer().unwrap(), there.producer().unwrap());
    let mut g = tx.reserve().unwrap(); // 0
    assert!(!g.is_lapped());
    for v in 1..=4u64 {
        other.send(&[v; 4]).unwrap(); // 1..=4; 4 is position 0, the guard's
    }
    assert!(g.is_lapped());
    g.write([666; 4]); // skipped: would tear message 4
    assert_eq!(g.commit(), Err(Lapped { index: 0, len: 1 }));
    let mut rx = here.consumer_from_oldest().unwrap();
    let got: Vec<_> = (0..4).map(|_| rx.try_recv().unwrap()[0]).collect();
    assert_eq!(
        got,
        [1, 2, 3, 4],
        "the lapped guard tore or hid a newer message"
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // A batch: same report, with its length.
    let mut b = tx.reserve_batch(2).unwrap(); // 5..=6
    for v in 7..=10u64 {
        other.send(&[v; 4]).unwrap(); // 7..=10; 9 and 10 reuse 5's and 6's positions
    }
    assert!(b.is_lapped());
    b.write(&[[666; 4]; 2]).unwrap();
    assert_eq!(b.commit(), Err(Lapped { index: 5, len: 2 }));
    // reserve_with: lapped while `fill` runs.
    let lapped = tx.reserve_with(|_, msg| {
        for v in 12..=15u64 {
            other.send(&[v; 4]).unwrap();
        }
        *msg = [666; 4];
    });
    assert!(
        matches!(lapped, Err(SendError::Lapped(Lapped { index: 11, len: 1 }))),
        "{lapped:?}"
    );
    let mut got = Vec::new();
    for _ in 0..32 {
        match rx.try_recv() {
            Ok(msg) => got.push(msg[0]),
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, [12, 13, 14, 15]);
    assert!(
        !got.contains(&666),
        "a lapped guard's message was published: {got:?}"
    );
    assert_eq!(here.ring().leases().floor(), NO_LEASE);
}
