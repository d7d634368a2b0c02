//! Typed queue endpoints in one process: sending and receiving, batches, zero-copy
//! slots, exact lag, blocking receive and its wake-ups, type identity on attach, and the
//! multi-thread stress tests (broadcast and work stealing).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastipc::queue::{
    OpenError, RecvTimeoutError, SendError, SharedCursor, TryRecvError, WaitStrategy,
};
use fastipc::{IpcMessage, SlickQueue};
use fastipc_testkit::{ShmCleanup, unique_name, wait_until};

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Tick {
    ts: u64,
    price: f64,
}

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Quote {
    bid: u64,
    ask: u64,
}

#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Wide([u8; 32]);
// SAFETY: 32 bytes, no padding.
unsafe impl bytemuck::Zeroable for Wide {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Wide {}
// SAFETY: a deliberately over-aligned type (the derive refuses it), implemented by hand
// to test that queues refuse it too; it breaks the trait's alignment promise only to be
// refused.
unsafe impl IpcMessage for Wide {
    const NAME: &'static str = "Wide";
    const FINGERPRINT: u64 = 3;
}

#[test]
fn typed_send_receive_batches_and_slots() {
    let q = SlickQueue::<Tick>::local(16).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(&Tick { ts: 1, price: 1.5 }).unwrap();
    tx.send_batch(&[Tick { ts: 2, price: 2.5 }, Tick { ts: 3, price: 3.5 }])
        .unwrap();
    let mut slot = tx.reserve().unwrap();
    slot.write(Tick { ts: 4, price: 4.5 });
    assert_eq!(slot.commit(), Ok(3));
    let mut batch = tx.reserve_batch(2).unwrap();
    batch
        .write(&[Tick { ts: 5, price: 0.0 }, Tick { ts: 6, price: 0.0 }])
        .unwrap();
    assert_eq!(batch.commit(), Ok(4));
    // A batch is delivered element by element by try_recv.
    let got: Vec<u64> = (0..6).map(|_| rx.try_recv().unwrap().ts).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(q.latest().map(|t| t.ts), Some(6));
    assert_eq!(rx.latest().map(|t| t.ts), Some(6));
    assert!(matches!(
        tx.send_batch(&[Tick { ts: 0, price: 0.0 }; 17]),
        Err(SendError::InvalidBatch {
            len: 17,
            capacity: 16
        })
    ));
    assert!(tx.send_batch(&[]).is_ok());
    assert!(tx.reserve_batch(0).is_err());
    // recv_into splits a batch across calls without losing anything.
    tx.send_batch(&[Tick { ts: 7, price: 0.0 }; 5]).unwrap();
    let mut buf = [Tick { ts: 0, price: 0.0 }; 3];
    assert_eq!(rx.try_recv_into(&mut buf), Ok(3));
    assert_eq!(rx.try_recv_into(&mut buf), Ok(2));
    assert_eq!(rx.try_recv_into(&mut buf), Err(TryRecvError::Empty));
    assert_eq!(rx.try_recv_into(&mut []), Ok(0));
}

#[test]
fn consumers_from_now_and_from_oldest() {
    let q = SlickQueue::<u32>::local(8).unwrap();
    let tx = q.producer().unwrap();
    for i in 0..3 {
        tx.send(&i).unwrap();
    }
    let mut now = q.consumer().unwrap();
    let mut oldest = q.consumer_from_oldest().unwrap();
    tx.send(&3).unwrap();
    assert_eq!(now.try_recv(), Ok(3));
    let all: Vec<u32> = (0..4).map(|_| oldest.try_recv().unwrap()).collect();
    assert_eq!(all, [0, 1, 2, 3]);
    // After a lap, "oldest" is the oldest still in the ring.
    for i in 4..20 {
        tx.send(&i).unwrap();
    }
    let mut late = q.consumer_from_oldest().unwrap();
    assert_eq!(late.position(), 12);
    assert_eq!(late.try_recv(), Ok(12));
}

#[test]
fn lapped_consumer_gets_exact_lag_then_the_oldest() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for i in 0..30 {
        tx.send(&i).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(22)));
    let rest: Vec<u64> = (0..8).map(|_| rx.try_recv().unwrap()).collect();
    assert_eq!(rest, (22..30).collect::<Vec<_>>());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // Lapped in the middle of a batch: the rest of the batch counts as missed.
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    tx.send_batch(&[0, 1, 2, 3]).unwrap();
    assert_eq!(rx.try_recv(), Ok(0));
    tx.send_batch(&[4, 5, 6, 7]).unwrap();
    tx.send_batch(&[8, 9, 10, 11]).unwrap(); // overwrites 0..4
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(3)));
    let rest: Vec<u64> = (0..8).map(|_| rx.try_recv().unwrap()).collect();
    assert_eq!(rest, (4..12).collect::<Vec<_>>());

    // A lag met while a batch receive already holds messages is reported next.
    let q = SlickQueue::<u64>::local(4).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    tx.send(&0).unwrap();
    let mut buf = [0u64; 4];
    assert_eq!(rx.try_recv_into(&mut buf[..1]), Ok(1));
    for i in 1..10 {
        tx.send(&i).unwrap();
    }
    assert_eq!(rx.try_recv_into(&mut buf), Err(TryRecvError::Lagged(5)));
    assert_eq!(rx.try_recv_into(&mut buf), Ok(4));
    assert_eq!(buf, [6, 7, 8, 9]);
}

#[test]
fn recv_timeout_times_out_on_an_empty_queue() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let mut rx = q.consumer().unwrap();
    let start = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    let mut rx = rx.with_wait_strategy(WaitStrategy::busy_spin());
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    let mut buf = [0u64; 2];
    assert_eq!(
        rx.recv_into_deadline(&mut buf, fastipc::Deadline::after(Duration::from_millis(5))),
        Err(RecvTimeoutError::Timeout)
    );
}

#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
#[test]
fn sleeping_consumer_is_woken_by_a_rust_producer() {
    let name = unique_name("q-wake");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 64).unwrap();
    let tx = q.producer().unwrap();
    // Sleep at once, and never poll before the test's deadline: only a wake-up can
    // deliver the message in time.
    let strategy = WaitStrategy::default()
        .spins(0)
        .yields(0)
        .poll_interval(Duration::from_secs(120));
    let mut rx = q.consumer().unwrap().with_wait_strategy(strategy);
    let consumer = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(60)));
    assert!(
        wait_until(Duration::from_secs(20), || q.ring().header().sleepers == 1),
        "the consumer never went to sleep"
    );
    tx.send(&99).unwrap();
    assert_eq!(consumer.join().unwrap(), Ok(99));
    assert_eq!(q.ring().header().sleepers, 0);
    assert!(q.ring().header().wake_seq >= 1, "the producer did not wake");
}

#[test]
fn producers_do_not_wake_when_nobody_sleeps() {
    let q = SlickQueue::<u64>::local(64).unwrap();
    let tx = q.producer().unwrap();
    for i in 0..10 {
        tx.send(&i).unwrap();
    }
    assert_eq!(q.ring().header().wake_seq, 0);
    assert_eq!(q.ring().header().sleepers, 0);
}

#[test]
fn reset_is_noticed_by_a_waiting_consumer() {
    let q = SlickQueue::<u64>::local(16).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    for i in 0..5 {
        tx.send(&i).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(i));
    }
    q.reset().unwrap();
    tx.send(&100).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(100));
}

#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
#[test]
fn attaching_with_another_type_names_both() {
    let name = unique_name("q-types");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<Tick>::create(&name, 8).unwrap();
    assert!(q.created());
    assert_eq!(q.ring().header().fingerprint, Tick::FINGERPRINT);
    let t = q.ring().type_trailer().unwrap();
    assert_eq!(
        (t.name.as_str(), t.fingerprint),
        ("Tick", Tick::FINGERPRINT)
    );

    let err = SlickQueue::<Quote>::open(&name).unwrap_err();
    assert!(matches!(err, OpenError::TypeMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("`Tick`") && msg.contains("`Quote`"), "{msg}");

    let err = SlickQueue::<u32>::open(&name).unwrap_err();
    assert!(
        matches!(err, OpenError::ElementSizeMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`Tick`") && msg.contains("`u32`"), "{msg}");

    let err = SlickQueue::<Tick>::open_or_create(&name, 16).unwrap_err();
    assert!(matches!(
        err,
        OpenError::CapacityMismatch {
            requested: 16,
            found: 8,
            ..
        }
    ));
    let again = SlickQueue::<Tick>::open_or_create(&name, 8).unwrap();
    assert!(!again.created());
    assert!(matches!(
        SlickQueue::<Tick>::create(&name, 8),
        Err(OpenError::Shm(fastipc::ShmError::AlreadyExists { .. }))
    ));
    assert!(fastipc::queue::remove(&name).unwrap());
    assert!(!fastipc::queue::remove(&name).unwrap());
}

#[test]
fn over_aligned_types_are_refused() {
    assert!(matches!(
        SlickQueue::<Wide>::local(8),
        Err(OpenError::UnsupportedAlignment {
            type_name: "Wide",
            align: 32
        })
    ));
}

#[test]
fn endpoints_move_to_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<fastipc::queue::Producer<Tick>>();
    assert_send::<fastipc::queue::Consumer<Tick>>();
    assert_send::<fastipc::queue::SharedConsumer<Tick>>();
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    drop(q); // the endpoints keep the ring alive
    let receiver = std::thread::spawn(move || rx.recv_timeout(Duration::from_secs(30)));
    std::thread::spawn(move || tx.send(&1))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(1));
}

// Fewer under Miri (scripts/miri.sh), whose interpreter is slow; the races are the same.
const PER_PRODUCER: u64 = if cfg!(miri) { 100 } else { 20_000 };

fn tag(producer: u64, seq: u64) -> u64 {
    producer << 40 | seq
}

/// Two producer threads each send their `PER_PRODUCER` tagged values, in order; returns
/// once both are done.
fn produce_from_two_threads(q: &SlickQueue<u64>) {
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let tx = q.producer().unwrap();
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    tx.send(&tag(p, seq)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
}

#[test]
fn threads_broadcast_two_producers_two_consumers() {
    // Large enough that nothing is overwritten: every consumer sees every item.
    let q = SlickQueue::<u64>::local(1 << 16).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = q.consumer().unwrap();
            std::thread::spawn(move || {
                let mut next = [0u64; 2];
                for _ in 0..2 * PER_PRODUCER {
                    let v = rx.recv_timeout(Duration::from_secs(30)).expect("recv");
                    let (p, seq) = ((v >> 40) as usize, v & ((1 << 40) - 1));
                    assert_eq!(seq, next[p], "producer {p} out of order");
                    next[p] += 1;
                }
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
                next
            })
        })
        .collect();
    produce_from_two_threads(&q);
    for c in consumers {
        assert_eq!(c.join().unwrap(), [PER_PRODUCER; 2]);
    }
}

#[test]
fn threads_work_stealing_two_producers_two_consumers_exactly_once() {
    let q = SlickQueue::<u64>::local(1 << 16).unwrap();
    let cursor = SharedCursor::local(q.next_index());
    let done = Arc::new(AtomicBool::new(false));
    let total = 2 * PER_PRODUCER;
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = q.shared_consumer(cursor.clone()).unwrap();
            let (cursor, done) = (cursor.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match rx.recv_timeout(Duration::from_millis(10)) {
                        Ok(v) => mine.push(v),
                        // Both producers dropped: the group is told so once all is read.
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                            if done.load(Ordering::Acquire) && cursor.load() >= total {
                                break;
                            }
                        }
                        Err(e) => panic!("{e}"),
                    }
                    assert!(Instant::now() < deadline, "stealing did not finish");
                }
                mine
            })
        })
        .collect();
    produce_from_two_threads(&q);
    done.store(true, Ordering::Release);
    let mut seen = HashSet::new();
    let mut count = 0;
    for c in consumers {
        let mine = c.join().unwrap();
        // Each consumer's share is in per-producer order too.
        let mut last = [None::<u64>; 2];
        for &v in &mine {
            let p = (v >> 40) as usize;
            assert!(last[p] < Some(v), "out of order within a consumer");
            last[p] = Some(v);
        }
        count += mine.len();
        seen.extend(mine);
    }
    assert_eq!(count as u64, total, "every item exactly once");
    assert_eq!(seen.len() as u64, total, "no duplicates");
    for p in 0..2 {
        for seq in 0..PER_PRODUCER {
            assert!(seen.contains(&tag(p, seq)));
        }
    }
}

#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
#[test]
fn racing_open_or_create_has_exactly_one_creator() {
    let name = unique_name("q-race");
    let _cleanup = ShmCleanup::new().segment(&name);
    let barrier = Arc::new(std::sync::Barrier::new(6));
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let (name, barrier) = (name.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let q = SlickQueue::<u64>::open_or_create(&name, 128).unwrap();
                q.producer().unwrap().send(&i).unwrap();
                q.created()
            })
        })
        .collect();
    let creators = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|&created| created)
        .count();
    assert_eq!(creators, 1);
    let q = SlickQueue::<u64>::open(&name).unwrap();
    let mut rx = q.consumer_from_oldest().unwrap();
    let mut got: Vec<u64> = (0..6).map(|_| rx.try_recv().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}
