//! In-process tests of single-producer queues: one producer at a time across handles,
//! mappings and threads; every other claimant refused; exactly-once delivery through
//! every claim path. The cross-process ones are in tests/queue_single_producer.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{OpenError, SendError, TrySendError};
use crate::queue::test_util::TempName;
use crate::queue::{Mode, QueueOptions, Role};

use super::SlickQueue;

fn single() -> QueueOptions {
    QueueOptions::new().single_producer()
}

#[test]
#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
fn a_second_single_producer_is_refused_in_this_process_until_the_first_is_dropped() {
    let name = TempName::new("sp-second");
    let q = SlickQueue::<u64>::create_with(&name.0, 16, single()).unwrap();
    let other_mapping = SlickQueue::<u64>::open(&name.0).unwrap();
    let tx = q.single_producer().unwrap();
    for handle in [&q, &q.clone(), &other_mapping] {
        match handle.single_producer() {
            Err(OpenError::SingleProducerInUse { pid, .. }) => {
                assert_eq!(pid, std::process::id())
            }
            other => panic!("second single producer: {other:?}"),
        }
    }
    assert_eq!(q.producer_count(), 1);
    drop(tx);
    assert_eq!(q.producer_count(), 0);
    let tx = other_mapping.single_producer().unwrap();
    assert!(q.single_producer().is_err());
    drop(tx);
}

#[test]
fn every_other_claimant_is_refused_on_a_single_producer_queue() {
    let q = SlickQueue::<u64>::local_with(16, single()).unwrap();
    assert!(matches!(
        q.producer(),
        Err(OpenError::SingleProducerQueue { .. })
    ));
    let ring = q.ring();
    assert!(matches!(
        ring.send_bytes(&1u64.to_le_bytes()),
        Err(SendError::SingleProducerQueue { .. })
    ));
    assert!(matches!(
        ring.reserve(1),
        Err(SendError::SingleProducerQueue { .. })
    ));
    assert!(matches!(
        ring.register(Role::Producer, 0),
        Err(OpenError::SingleProducerQueue { .. })
    ));
    // Consumers register as usual.
    assert!(ring.register(Role::Consumer, 0).unwrap().is_some());
    assert_eq!(ring.next_index(), 0, "nothing was claimed");
    // And the other way round: no single producer on an ordinary queue.
    let plain = SlickQueue::<u64>::local(16).unwrap();
    assert!(matches!(
        plain.single_producer(),
        Err(OpenError::NotSingleProducer { .. })
    ));
    assert!(plain.producer().is_ok());
}

/// Threads of separate mappings race for the single producer over and over: never two
/// at once (the registration's check after registering, endpoints/mod.rs "Single producer").
#[test]
#[cfg_attr(miri, ignore = "creates a shared-memory segment: Miri cannot map one")]
fn racing_registrants_never_hold_the_single_producer_together() {
    let name = TempName::new("sp-race");
    let _q = SlickQueue::<u64>::create_with(&name.0, 16, single()).unwrap();
    let holders = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (holders, taken, name) = (Arc::clone(&holders), Arc::clone(&taken), &name.0);
            s.spawn(move || {
                let q = SlickQueue::<u64>::open(name).unwrap();
                for _ in 0..300 {
                    match q.single_producer() {
                        Ok(tx) => {
                            let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                            assert_eq!(now, 1, "two single producers at once");
                            taken.fetch_add(1, Ordering::Relaxed);
                            tx.send(&1).unwrap();
                            std::thread::yield_now();
                            holders.fetch_sub(1, Ordering::SeqCst);
                        }
                        Err(OpenError::SingleProducerInUse { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    assert!(taken.load(Ordering::Relaxed) > 0);
}

/// A lossless ring of 8: the producer thread sends 0..N through every path, with two
/// guards held at once and batches that wrap the ring (their indices then skip the end of
/// the ring); the consumer gets each message once, in order.
#[test]
fn every_path_of_a_single_producer_thread_delivers_exactly_once_in_order() {
    const N: u64 = 20_000;
    let q = SlickQueue::<u64>::local_with(8, QueueOptions::from(Mode::Lossless).single_producer())
        .unwrap();
    let tx = q.single_producer().unwrap();
    let mut rx = q.consumer().unwrap();
    let sender = std::thread::spawn(move || {
        let mut seq = 0;
        while seq < N {
            match seq % 7 {
                0 => {
                    // Two guards at once, committed in reverse order.
                    let mut a = tx.reserve().unwrap();
                    let mut b = tx.reserve().unwrap();
                    a.write(seq);
                    b.write(seq + 1);
                    let (ib, ia) = (b.commit().unwrap(), a.commit().unwrap());
                    assert_eq!(ib, ia + 1);
                    seq += 2;
                }
                1 => {
                    let k = 3.min(N - seq);
                    let msgs: Vec<u64> = (seq..seq + k).collect();
                    tx.send_batch(&msgs).unwrap();
                    seq += k;
                }
                2 => {
                    let k = 5.min(N - seq);
                    let mut g = tx.reserve_batch(k as usize).unwrap();
                    g.write(&(seq..seq + k).collect::<Vec<_>>()).unwrap();
                    g.commit().unwrap();
                    seq += k;
                }
                3 => loop {
                    match tx.try_send(&seq) {
                        Ok(_) => {
                            seq += 1;
                            break;
                        }
                        Err(TrySendError::Full(_)) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                },
                4 => {
                    tx.send_timeout(&seq, Duration::from_secs(60)).unwrap();
                    seq += 1;
                }
                5 => {
                    tx.reserve_with(|_, m| *m = seq).unwrap();
                    seq += 1;
                }
                _ => {
                    tx.send(&seq).unwrap();
                    seq += 1;
                }
            }
        }
    });
    let mut buf = [0u64; 4];
    let mut next = 0;
    while next < N {
        let k = rx
            .recv_into_deadline(&mut buf, crate::Deadline::after(Duration::from_secs(60)))
            .unwrap();
        for &v in &buf[..k] {
            assert_eq!(v, next);
            next += 1;
        }
    }
    sender.join().unwrap();
}

/// An async send of the single producer waits in a full lossless queue and is woken by
/// the consumer (polled on the producer's thread; the future is not `Send`).
#[test]
#[cfg_attr(
    miri,
    ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
)]
fn an_async_send_of_the_single_producer_waits_for_room() {
    let q = SlickQueue::<u64>::local_with(2, QueueOptions::from(Mode::Lossless).single_producer())
        .unwrap();
    let tx = q.single_producer().unwrap();
    let mut rx = q.consumer().unwrap();
    let reader =
        std::thread::spawn(move || (0..50).map(|_| rx.recv().unwrap()).collect::<Vec<_>>());
    for i in 0..50u64 {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(tx.send_async(&i));
        let index = loop {
            if let std::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                break r.unwrap();
            }
            std::thread::yield_now();
        };
        assert_eq!(index, i);
    }
    assert_eq!(reader.join().unwrap(), (0..50).collect::<Vec<_>>());
}
