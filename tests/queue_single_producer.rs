//! Single-producer queues between real processes (the `peer-endpoints` test peer): the
//! declaration recorded in the queue and read by attachers, one producer at a time in
//! all processes, a killed holder taken over, and every message delivered exactly once
//! through every claim path. No assertion is on speed; every wait is bounded.

use std::process::Command;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, OpenError, QueueOptions, RecvTimeoutError, TryRecvError};
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, unique_name};

const PEER: &str = env!("CARGO_BIN_EXE_peer-endpoints");
const TIMEOUT: Duration = Duration::from_secs(300);
const BOUND: Duration = Duration::from_secs(20);

fn peer(args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(PEER);
    cmd.args(args);
    ChildGuard::spawn(cmd)
}

fn single() -> QueueOptions {
    QueueOptions::new().single_producer()
}

#[test]
fn the_declaration_is_recorded_and_read_by_an_attacher() {
    let name = unique_name("q-sp-flag");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 64, single()).unwrap();
    assert!(q.is_single_producer());
    assert_eq!(q.ring().header().flags & 0b100, 0b100, "flags bit 2");
    let again = SlickQueue::<u64>::open(&name).unwrap();
    assert!(again.is_single_producer());
    assert!(again.ring().is_single_producer());
    let same = SlickQueue::<u64>::open_or_create_with(&name, 64, single()).unwrap();
    assert!(!same.created() && same.is_single_producer());
    let plain = SlickQueue::<u64>::create(&format!("{name}-plain"), 64).unwrap();
    let _cleanup_plain = ShmCleanup::new().segment(format!("{name}-plain"));
    assert!(!plain.is_single_producer());
    assert_eq!(plain.ring().header().flags & 0b100, 0);
}

#[test]
fn an_attacher_asking_for_the_other_declaration_is_refused_naming_both() {
    let name = unique_name("q-sp-mismatch");
    let _cleanup = ShmCleanup::new().segment(&name);
    let _q = SlickQueue::<u64>::create_with(&name, 64, single()).unwrap();
    let err = SlickQueue::<u64>::open_or_create_with(&name, 64, Mode::Lossy).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::SingleProducerMismatch {
                requested: false,
                found: true,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("is single-producer") && text.contains("multi-producer was asked"),
        "{text}"
    );
    let other = unique_name("q-sp-mismatch2");
    let _cleanup2 = ShmCleanup::new().segment(&other);
    let _p = SlickQueue::<u64>::create(&other, 64).unwrap();
    let err = SlickQueue::<u64>::open_or_create_with(&other, 64, single()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::SingleProducerMismatch {
                requested: true,
                found: false,
                ..
            }
        ),
        "{err:?}"
    );
    // Plain `open` accepts either.
    assert!(SlickQueue::<u64>::open(&other).is_ok());
}

/// A holder in another process refuses this one (naming it), then, SIGKILLed with a
/// claim in flight, is taken over: the claim is skipped as abandoned and the new
/// holder's messages all arrive.
#[test]
fn a_second_producer_is_refused_across_processes_and_a_killed_holder_is_taken_over() {
    let name = unique_name("q-sp-takeover");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 1024, single()).unwrap();
    let mut rx = q.consumer().unwrap();
    let mut holder = peer(&["single-hold", &name]);
    Lines::of(&mut holder).expect("holding 0", BOUND);
    let pid = holder.id();
    match q.single_producer() {
        Err(OpenError::SingleProducerInUse { pid: p, .. }) => assert_eq!(p, pid),
        other => panic!("a second single producer: {other:?}"),
    }
    assert!(matches!(
        q.producer(),
        Err(OpenError::SingleProducerQueue { .. })
    ));
    // Another process is refused too, naming the same holder.
    let out = peer(&["single-try", &name]).success(BOUND);
    assert_eq!(out.trim(), format!("refused {pid}"));
    holder.kill();
    let tx = q
        .single_producer()
        .expect("the dead holder's place is taken over");
    assert_eq!(tx.producer_count(), 1);
    for i in 0..100u64 {
        tx.send(&i).unwrap();
    }
    assert_eq!(rx.recv_timeout(BOUND), Err(RecvTimeoutError::Abandoned(1)));
    for i in 0..100u64 {
        assert_eq!(rx.recv_timeout(BOUND), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // And while this one lives, another process is refused, naming this process.
    let out = peer(&["single-try", &name]).success(BOUND);
    assert_eq!(out.trim(), format!("refused {}", std::process::id()));
    drop(tx);
    let out = peer(&["single-try", &name]).success(BOUND);
    assert_eq!(out.trim(), "took");
}

/// A lossless single-producer queue: a producer process sends 200,000 messages through
/// every claim path (send, send_timeout, try_send, send_batch, slot guards, reserve_with,
/// batch guards, async send) into a small ring; this process receives each exactly once,
/// in order.
#[test]
fn every_message_of_a_single_producer_process_arrives_exactly_once_in_order() {
    let name = unique_name("q-sp-exact");
    let _cleanup = ShmCleanup::new().segment(&name);
    const COUNT: u64 = 200_000;
    let options = QueueOptions::from(Mode::Lossless).single_producer();
    let q = SlickQueue::<u64>::open_or_create_with(&name, 256, options).unwrap();
    let mut rx = q.consumer().unwrap();
    let producer = peer(&["single-produce", &name, "256", &COUNT.to_string()]);
    let mut buf = [0u64; 64];
    let mut next = 0;
    while next < COUNT {
        // Single receives and batch receives in turn.
        if next % 2 == 0 {
            let v = rx.recv_timeout(TIMEOUT).unwrap();
            assert_eq!(v, next);
            next += 1;
        } else {
            let k = rx
                .recv_into_deadline(&mut buf, fastipc::Deadline::after(TIMEOUT))
                .unwrap();
            for &v in &buf[..k] {
                assert_eq!(v, next);
                next += 1;
            }
        }
    }
    assert_eq!(producer.success(TIMEOUT).trim(), format!("sent {COUNT}"));
    assert_eq!(rx.recv_timeout(BOUND), Err(RecvTimeoutError::Disconnected));
}
