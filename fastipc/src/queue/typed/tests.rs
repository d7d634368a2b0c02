//! Unit tests of the typed endpoints: the self-healing wake flag, hostile shared cursors,
//! pending batch items, and the typed attach checks.

use core::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::error::{QueueError, RecvError};
use crate::queue::test_util::TempName;
use crate::queue::{SharedCursor, SlickQueue};

// Review finding 11: a consumer killed while asleep leaves the "waiters present" flag
// set; that must cost at most one needless wake, not one per publish forever.
#[test]
fn a_sleeper_that_died_costs_one_wake_at_most() {
    let q = SlickQueue::<u64>::local(8).unwrap();
    let tx = q.producer();
    let header = q.ring().raw().header();
    header.sleepers.store(1, Relaxed); // a consumer registered, then was killed
    tx.send(&1);
    assert_eq!(header.wake_seq.load(Relaxed), 1, "the first publish wakes");
    assert_eq!(header.sleepers.load(Relaxed), 0, "and clears the flag");
    for i in 2..10 {
        tx.send(&i);
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
    let mut rx = q.consumer().with_wait_strategy(strategy);
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
    q.producer().send(&7);
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
    let mut rx = q.shared_consumer(SharedCursor::local(c));
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.try_recv()));
    assert_eq!(
        got.expect("a hostile cursor value panicked"),
        Err(RecvError::Corrupt { index: c, size: 4 })
    );
    assert_eq!(rx.cursor().load(), 0);
}

// Review finding 16: items of a claimed batch are not silently lost.
#[test]
fn pending_batch_items_can_be_taken() {
    let q = SlickQueue::<u32>::local(16).unwrap();
    let cursor = SharedCursor::local(0);
    let mut a = q.shared_consumer(cursor.clone());
    let mut b = q.shared_consumer(cursor);
    q.producer().send_batch(&[1, 2, 3, 4]).unwrap();
    assert_eq!(a.try_recv(), Ok(1));
    assert_eq!(
        b.try_recv(),
        Err(RecvError::Empty),
        "the batch is a's alone"
    );
    assert_eq!(a.pending(), 3);
    assert_eq!(a.try_recv(), Ok(2));
    assert_eq!(a.take_pending(), [3, 4]);
    assert_eq!((a.pending(), a.try_recv()), (0, Err(RecvError::Empty)));
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
        Err(QueueError::InvalidCapacity { capacity: 12, .. })
    ));
    assert!(matches!(
        SlickQueue::<[u8; 1 << 20]>::local(1 << 31),
        Err(QueueError::Alloc(_))
    ));
}
