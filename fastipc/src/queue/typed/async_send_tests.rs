//! Async sends through a minimal executor (`test_util::block_on`): woken by a consumer
//! thread that makes room, cancel safe, registrations removed, never pending when lossy.

use std::task::Poll;
use std::time::Duration;

use crate::SlickQueue;
use crate::error::TryRecvError;
use crate::queue::Mode;
use crate::test_util::{block_on, poll_once};

const LIMIT: Duration = Duration::from_secs(30);
/// Longer than any test: a send that no consumer wakes hangs until `LIMIT` fails it.
const NO_REPOLL: Duration = Duration::from_secs(3600);

#[test]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, which calls futex_waitv: Miri does not implement it"
)]
fn a_send_waits_for_room_and_the_consumer_wakes_it() {
    let q = SlickQueue::<u32>::local_with(2, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    let n = 2_000;
    let mut waited = 0;
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut got = Vec::with_capacity(n as usize);
            for i in 0..n {
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
                got.push(rx.recv_timeout(2 * LIMIT).unwrap());
            }
            (got, rx.try_recv())
        });
        for i in 0..n {
            let mut fut = tx.send_async(&i).with_repoll(NO_REPOLL);
            let sent = match poll_once(&mut fut) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    waited += 1;
                    block_on(fut, LIMIT)
                }
            };
            assert_eq!(sent, Ok(u64::from(i)));
        }
        let (got, rest) = reader.join().unwrap();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        assert_eq!(rest, Err(TryRecvError::Empty));
    });
    // Two slots and a reader that pauses: the sends filled the queue and waited.
    assert!(waited > 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, which calls futex_waitv: Miri does not implement it"
)]
fn a_send_dropped_mid_wait_sends_nothing_and_the_next_one_goes_through() {
    let q = SlickQueue::<u32>::local_with(2, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    tx.send(&1).unwrap();
    tx.send(&2).unwrap();
    let mut fut = tx.send_async(&99);
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    let armed = fut.probe();
    assert!(armed());
    drop(fut);
    assert!(!armed(), "the dropped send's registration is still there");
    // Nothing of 99 was sent: the consumer reads 1, 2, then finds the queue empty.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // The empty consumer published its position: there is room, the send is ready at once.
    let mut fut = tx.send_async(&3);
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(2)));
    assert!(!fut.probe()());
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Pending, then ready once room is made: the registration goes when it completes.
    tx.send(&4).unwrap();
    tx.send(&5).unwrap();
    let mut fut = tx.send_async(&6).with_repoll(NO_REPOLL);
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    let armed = fut.probe();
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(block_on(fut, LIMIT), Ok(5));
    assert!(!armed(), "a completed send's registration is still there");
    assert_eq!(rx.try_recv(), Ok(6));
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn a_completed_send_is_not_sent_again() {
    let q = SlickQueue::<u32>::local(2).unwrap();
    let tx = q.producer().unwrap();
    let mut fut = tx.send_async(&1);
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(0)));
    let _ = poll_once(&mut fut);
}

#[test]
fn a_lossy_send_is_ready_at_its_first_poll() {
    let q = SlickQueue::<u32>::local(2).unwrap();
    let tx = q.producer().unwrap();
    let _rx = q.consumer().unwrap();
    // A lossy queue overwrites: however far behind the consumer is, no send waits.
    for i in 0..10u32 {
        let mut fut = tx.send_async(&i);
        assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(u64::from(i))));
        assert!(!fut.probe()());
    }
}
