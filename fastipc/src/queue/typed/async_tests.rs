//! Async receives through a minimal executor (`test_util::block_on`): woken by a
//! producer thread, cancel safe, registrations removed.

use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::SeqCst;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::SlickQueue;
use crate::error::RecvError;
use crate::queue::{SharedCursor, WaitStrategy};
use crate::test_util::{block_on, poll_once};

const LIMIT: Duration = Duration::from_secs(30);

/// A wait strategy whose re-poll interval is longer than any test: a receive that is not
/// woken hangs until `LIMIT` fails the test.
const NO_REPOLL_SECS: u64 = 3600;
static NO_REPOLL: std::sync::LazyLock<WaitStrategy> = std::sync::LazyLock::new(|| {
    WaitStrategy::default().poll_interval(Duration::from_secs(NO_REPOLL_SECS))
});

/// Sends `0..n`, each after the consumer acknowledged the previous one and a short pause,
/// so that the consumer is waiting when it arrives. The producer never finishes while the
/// consumer waits (a finished scoped thread unparks the scope's owner, which would let a
/// receive that nobody woke poll again): a missing wake-up fails the consumer's bounded
/// `block_on` instead.
fn paced(tx: &crate::queue::Producer<u32>, n: u32, acked: &AtomicU32) {
    for i in 0..n {
        let deadline = Instant::now() + 2 * LIMIT;
        while acked.load(SeqCst) < i {
            assert!(Instant::now() < deadline, "the consumer stopped at {i}");
            std::thread::sleep(Duration::from_micros(50));
        }
        std::thread::sleep(Duration::from_micros(100));
        tx.send(&i).unwrap();
    }
}

#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
#[test]
fn recv_async_is_woken_by_a_producer_thread_for_every_message() {
    let q = SlickQueue::<u32>::local(64).unwrap();
    // No re-poll to speak of: every wait must end with the producer's wake-up.
    let mut rx = q.consumer().unwrap().with_wait_strategy(*NO_REPOLL);
    let tx = q.producer().unwrap();
    let (n, acked) = (300, AtomicU32::new(0));
    std::thread::scope(|s| {
        s.spawn(|| paced(&tx, n, &acked));
        for i in 0..n {
            assert_eq!(block_on(rx.recv_async(), LIMIT), Ok(i));
            acked.store(i + 1, SeqCst);
        }
    });
}

#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
#[test]
fn a_dropped_pending_receive_loses_nothing_and_leaves_no_registration() {
    let q = SlickQueue::<u32>::local(64).unwrap();
    let mut rx = q.consumer().unwrap();
    // A live producer throughout: with none left, an empty queue reports `Disconnected`.
    let tx = q.producer().unwrap();
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    let armed = fut.probe();
    assert!(armed());
    drop(fut);
    assert!(!armed(), "the dropped future's registration is still there");
    tx.send(&9).unwrap();
    // A new future on a queue with a message is ready at once, and never registers.
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(9)));
    assert!(!fut.probe()());
    drop(fut);
    // Pending, then ready: the registration is removed when it completes.
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    let armed = fut.probe();
    assert!(armed());
    tx.send(&10).unwrap();
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(10)));
    assert!(!armed(), "a completed future's registration is still there");
}

#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
#[test]
fn a_pending_receive_raises_the_waiters_flag_so_the_producer_wakes() {
    let q = SlickQueue::<u32>::local(64).unwrap();
    let mut rx = q.consumer().unwrap();
    let header = q.ring().raw().header();
    let before = header.wake_seq.load(core::sync::atomic::Ordering::SeqCst);
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert_eq!(
        header.sleepers.load(core::sync::atomic::Ordering::SeqCst),
        1
    );
    q.producer().unwrap().send(&1).unwrap();
    // The producer found the flag, cleared it and bumped the word the future registered.
    assert_eq!(
        header.sleepers.load(core::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_ne!(
        header.wake_seq.load(core::sync::atomic::Ordering::SeqCst),
        before
    );
    assert_eq!(block_on(fut, LIMIT), Ok(1));
}

#[test]
fn errors_are_delivered_as_recv_does() {
    let q = SlickQueue::<u64>::local(4).unwrap();
    let mut rx = q.consumer().unwrap();
    let tx = q.producer().unwrap();
    for i in 0..6 {
        tx.send(&i).unwrap();
    }
    assert_eq!(block_on(rx.recv_async(), LIMIT), Err(RecvError::Lagged(2)));
    assert_eq!(block_on(rx.recv_async(), LIMIT), Ok(2));
}

#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
#[test]
fn shared_consumers_split_the_messages_and_keep_batch_rests() {
    let q = SlickQueue::<u32>::local(64).unwrap();
    let cursor = SharedCursor::local(q.next_index());
    let mut a = q
        .shared_consumer(cursor.clone())
        .unwrap()
        .with_wait_strategy(*NO_REPOLL);
    let mut b = q
        .shared_consumer(cursor)
        .unwrap()
        .with_wait_strategy(*NO_REPOLL);
    let mut fa = a.recv_async();
    assert_eq!(poll_once(&mut fa), Poll::Pending);
    // A live producer throughout: once every producer left, an empty queue reports
    // `Disconnected` instead of waiting.
    let tx = q.producer().unwrap();
    tx.send_batch(&[1, 2, 3]).unwrap();
    assert_eq!(block_on(fa, LIMIT), Ok(1));
    // The batch's rest is `a`'s: `b` waits for the next message.
    let mut fb = b.recv_async();
    assert_eq!(poll_once(&mut fb), Poll::Pending);
    drop(fb);
    assert_eq!(block_on(a.recv_async(), LIMIT), Ok(2));
    let (n, acked) = (50, AtomicU32::new(0));
    std::thread::scope(|s| {
        s.spawn(|| paced(&tx, n, &acked));
        for i in 0..n {
            assert_eq!(block_on(b.recv_async(), LIMIT), Ok(i));
            acked.store(i + 1, SeqCst);
        }
    });
    assert_eq!(block_on(a.recv_async(), LIMIT), Ok(3));
}

#[cfg(feature = "stream")]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
#[test]
fn the_stream_yields_every_message() {
    use core::pin::Pin;
    use futures_core::Stream;
    let q = SlickQueue::<u32>::local(256).unwrap();
    let mut rx = q.consumer().unwrap().with_wait_strategy(*NO_REPOLL);
    let tx = q.producer().unwrap();
    let mut stream = rx.stream();
    let (n, acked) = (100, AtomicU32::new(0));
    std::thread::scope(|s| {
        s.spawn(|| paced(&tx, n, &acked));
        for i in 0..n {
            let next = core::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx));
            assert_eq!(block_on(next, LIMIT), Some(Ok(i)));
            acked.store(i + 1, SeqCst);
        }
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
fn a_pending_receive_re_polls_only_when_a_producer_may_not_wake_it() {
    use crate::queue::ASYNC_IDLE_CHECK;
    let q = SlickQueue::<u32>::local(64).unwrap();
    let default = WaitStrategy::default();
    // No fastipc producer ever registered: whatever arrives comes from a peer (or from a
    // byte-level writer): re-polled every `poll` (1 ms).
    let mut rx = q.consumer().unwrap();
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert!(fut.repoll_in().unwrap() <= default.poll());
    drop(fut);
    // A fastipc producer registered: it wakes the receive, which only looks again
    // every ASYNC_IDLE_CHECK, for a producer that died without leaving. (The checks
    // before the first look are rate-limited: let them be due.)
    let tx = q.producer().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    let repoll = fut.repoll_in().unwrap();
    assert!(repoll > ASYNC_IDLE_CHECK / 2, "{repoll:?}");
    drop(fut);
    // Declared peers alongside: every `poll` again.
    rx.set_wait_strategy(default.peer_producers(true));
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert!(fut.repoll_in().unwrap() <= default.poll());
    drop(fut);
    // A claim in flight at the cursor: looked at again every `poll` (a dead claimant is
    // skipped only by looking).
    rx.set_wait_strategy(default);
    let guard = tx.reserve().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert!(fut.repoll_in().unwrap() <= default.poll());
    drop(fut);
    drop(guard);
    assert!(matches!(
        rx.try_recv(),
        Err(crate::error::TryRecvError::Abandoned(1))
    ));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
fn a_leaving_producer_wakes_a_pending_receive_with_the_disconnect() {
    let q = SlickQueue::<u32>::local(64).unwrap();
    let mut rx = q.consumer().unwrap();
    let tx = q.producer().unwrap();
    let mut fut = rx.recv_async();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert!(fut.repoll_in().unwrap() > Duration::from_millis(100));
    let header = q.ring().raw().header();
    let before = header.wake_seq.load(SeqCst);
    drop(tx);
    // The producer found the flag and woke the word the future registered.
    assert_ne!(header.wake_seq.load(SeqCst), before);
    assert_eq!(block_on(fut, LIMIT), Err(RecvError::Disconnected));
}
