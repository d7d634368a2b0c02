//! The queue's endpoint table between real processes (the `peer-endpoints` test peer):
//! lossless back-pressure, recovery from a producer killed mid-message, and disconnect.
//! No assertion is on speed; every wait is bounded.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, RecvTimeoutError, SendTimeoutError, SharedCursor, TryRecvError};
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, unique_name, wait_until};

const PEER: &str = env!("CARGO_BIN_EXE_peer-endpoints");
const TIMEOUT: Duration = Duration::from_secs(300);
const BOUND: Duration = Duration::from_secs(20);
const SEQ_BITS: u32 = 40;

fn peer(args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(PEER);
    cmd.args(args);
    ChildGuard::spawn(cmd)
}

#[test]
fn lossless_a_million_messages_to_a_slow_consumer_process() {
    let name = unique_name("q-ep-million");
    let _cleanup = ShmCleanup::new().segment(&name);
    let consumer = peer(&["consume", &name, "1024", "1", "1000000", "1000"]);
    let producer = peer(&["produce", &name, "1024", "0", "1000000"]);
    assert_eq!(producer.success(TIMEOUT).trim(), "sent 1000000");
    let out = consumer.success(TIMEOUT);
    assert!(out.contains("ok 1000000"), "{out}");
}

#[test]
fn lossless_start_order_reversed_loses_nothing() {
    let name = unique_name("q-ep-reversed");
    let _cleanup = ShmCleanup::new().segment(&name);
    let producer = peer(&["produce", &name, "256", "0", "100000"]);
    // The producer fills the ring and waits for the first consumer.
    assert!(wait_until(BOUND, || SlickQueue::<u64>::open(&name)
        .is_ok_and(|q| q.next_index() == 256)));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(SlickQueue::<u64>::open(&name).unwrap().next_index(), 256);
    let consumer = peer(&["consume", &name, "256", "1", "100000", "1000"]);
    assert_eq!(producer.success(TIMEOUT).trim(), "sent 100000");
    assert!(consumer.success(TIMEOUT).contains("ok 100000"));
}

#[test]
fn lossless_two_producers_and_a_shared_group_of_two_exactly_once() {
    let name = unique_name("q-ep-group");
    let cursor = format!("{name}-cur");
    let _cleanup = ShmCleanup::new().segment(&name).segment(&cursor);
    const PER: u64 = 100_000;
    let per = PER.to_string();
    let members: Vec<_> = (0..2)
        .map(|_| peer(&["steal", &name, "512", &cursor]))
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| peer(&["produce", &name, "512", &p.to_string(), &per]))
        .collect();
    for p in producers {
        assert_eq!(p.success(TIMEOUT).trim(), format!("sent {per}"));
    }
    let mut seen = HashSet::new();
    for m in members {
        let out = m.success(TIMEOUT);
        for line in out.lines().filter(|l| !matches!(*l, "ready" | "end")) {
            let v: u64 = line.parse().unwrap();
            assert!(seen.insert(v), "{v:#x} delivered twice");
        }
    }
    for p in 0..2u64 {
        for seq in 0..PER {
            assert!(seen.contains(&(p << SEQ_BITS | seq)), "{p}/{seq} lost");
        }
    }
    assert_eq!(seen.len() as u64, 2 * PER);
}

#[test]
fn lossless_a_killed_consumer_releases_the_producer() {
    let name = unique_name("q-ep-deadrx");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 64, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let mut stalled = peer(&["stall", &name, "64"]);
    Lines::of(&mut stalled).expect("ready", BOUND);
    for i in 0..64 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    // The stalled consumer holds the producer back...
    assert_eq!(
        tx.send_timeout(&64, Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(64))
    );
    assert_eq!(q.consumer_count(), 1);
    // ...until it is killed: then the producer goes on (within the bound).
    stalled.kill();
    let killed = std::time::Instant::now();
    tx.send_timeout(&64, BOUND).unwrap();
    eprintln!("producer released {:?} after the kill", killed.elapsed());
    for i in 65..1000 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    assert_eq!(q.consumer_count(), 0);
}

/// A durable consumer (the bridge exporter's) outlives its process: killed, it keeps
/// holding the producer back at its last published position; the next holder of its key
/// resumes there; a live holder is exclusive; releasing it lets the producer go on.
#[test]
fn lossless_a_killed_durable_consumer_keeps_holding_and_is_resumed() {
    use fastipc::queue::endpoints::Role;
    let name = unique_name("q-ep-durable");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 64, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    // Before any consumer came, the ring holds 64 for the first one.
    for i in 0..64 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    let mut first = peer(&["durable", &name, "9", "10"]);
    Lines::of(&mut first).expect("read 10", BOUND);
    for i in 64..74 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    first.kill();
    // Dead, it still holds the producer back (a plain consumer is evicted within about
    // 20 ms of the producer's checks: `lossless_a_killed_consumer_releases_the_producer`).
    assert_eq!(
        tx.send_timeout(&74, Duration::from_millis(300)),
        Err(SendTimeoutError::Timeout(74))
    );
    let durable: Vec<_> = q
        .ring()
        .endpoints()
        .into_iter()
        .filter(|e| e.role == Role::DurableConsumer)
        .collect();
    assert_eq!(durable.len(), 1, "{durable:?}");
    assert_eq!(
        (
            durable[0].alive,
            durable[0].position,
            durable[0].durable_key
        ),
        (false, 10, Some(9))
    );
    // The next holder resumes at 10: it reads 10 more, making room for 10.
    let mut second = peer(&["durable", &name, "9", "10"]);
    Lines::of(&mut second).expect("read 20", BOUND);
    for i in 74..84 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    // A live holder is exclusive, and cannot be released.
    let in_use = |r: Result<_, fastipc::error::OpenError>| {
        matches!(
            r,
            Err(fastipc::error::OpenError::DurableInUse { key: 9, .. })
        )
    };
    assert!(in_use(q.ring().register_durable(9, 0).map(|_| ())));
    assert!(in_use(q.ring().release_durable(9).map(|_| ())));
    second.kill();
    assert!(q.ring().release_durable(9).unwrap());
    // Nobody holds the producer back any more.
    for i in 84..1000 {
        tx.send_timeout(&i, BOUND).unwrap();
    }
    assert!(!q.ring().release_durable(9).unwrap());
}

/// The reproduction: a producer process killed while it holds a zero-copy guard;
/// another producer then sends 100. Consumers (plain and shared) report the abandoned
/// slot and get all 100.
#[test]
fn a_producer_killed_holding_a_guard_is_skipped() {
    let name = unique_name("q-ep-deadtx");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 1024).unwrap();
    let mut rx = q.consumer().unwrap();
    let mut group = q
        .shared_consumer(SharedCursor::local(q.next_index()))
        .unwrap();
    let mut holder = peer(&["hold-guard", &name]);
    Lines::of(&mut holder).expect("holding 0", BOUND);
    holder.kill();
    let killed = std::time::Instant::now();
    let tx = q.producer().unwrap();
    for i in 0..100u64 {
        tx.send(&i).unwrap();
    }
    assert_eq!(rx.recv_timeout(BOUND), Err(RecvTimeoutError::Abandoned(1)));
    eprintln!(
        "abandoned slot skipped {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(
        group.recv_timeout(BOUND),
        Err(RecvTimeoutError::Abandoned(1))
    );
    for i in 0..100u64 {
        assert_eq!(rx.recv_timeout(BOUND), Ok(i));
        assert_eq!(group.recv_timeout(BOUND), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// 20 producers killed at random moments of a send loop: no consumer hangs, and every
/// claimed index is either received or counted in an `Abandoned` (or `Lagged`) report.
#[test]
fn producers_killed_at_random_points_lose_exactly_what_is_reported() {
    let name = unique_name("q-ep-kills");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 1 << 20).unwrap();
    let mut rx = q.consumer().unwrap();
    let marker = q.producer().unwrap();
    const MARK: u64 = 999;
    let (mut received, mut skipped, mut holes) = (0u64, 0u64, 0u64);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..20u64 {
        let mut sender = peer(&["send-loop", &name, &round.to_string()]);
        Lines::of(&mut sender).expect("started", BOUND);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(200 + rng % 5000));
        sender.kill();
        marker.send(&(MARK << SEQ_BITS | round)).unwrap();
        // Drain up to this round's marker: the killed producer's messages in order.
        let mut next = 0u64;
        loop {
            match rx.recv_timeout(BOUND) {
                Ok(v) if v == MARK << SEQ_BITS | round => {
                    received += 1;
                    break;
                }
                Ok(v) => {
                    assert_eq!((v >> SEQ_BITS, v & ((1 << SEQ_BITS) - 1)), (round, next));
                    next += 1;
                    received += 1;
                }
                Err(RecvTimeoutError::Abandoned(n) | RecvTimeoutError::Lagged(n)) => {
                    skipped += n;
                    holes += 1;
                }
                Err(e) => panic!("round {round}: {e} after {next} messages"),
            }
        }
    }
    assert_eq!(
        received + skipped,
        q.next_index(),
        "every claimed index is received or reported ({holes} holes)"
    );
    eprintln!("{holes} holes ({skipped} skipped) from 20 kills, {received} received");
    assert!(holes <= 20, "{holes} holes from 20 kills");
}

#[test]
fn producers_that_exit_disconnect_after_the_last_message() {
    let name = unique_name("q-ep-exit");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 1024, Mode::Lossless).unwrap();
    let mut rx = q.consumer().unwrap();
    let producers: Vec<_> = (0..2)
        .map(|p| peer(&["produce", &name, "1024", &p.to_string(), "3000"]))
        .collect();
    // Both registered (they cannot finish: 6000 messages do not fit in 1024 unread).
    assert!(wait_until(BOUND, || q.producer_count() == 2));
    let mut iter = rx.iter();
    let got = iter.by_ref().count();
    assert_eq!((got, iter.error()), (6000, None));
    assert_eq!(q.producer_count(), 0);
    for p in producers {
        assert_eq!(p.success(TIMEOUT).trim(), "sent 3000");
    }
}

#[test]
fn producers_that_crash_disconnect_too() {
    let name = unique_name("q-ep-crash");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 1 << 20).unwrap();
    let mut rx = q.consumer().unwrap();
    let mut sender = peer(&["send-loop", &name, "0"]);
    Lines::of(&mut sender).expect("started", BOUND);
    std::thread::sleep(Duration::from_millis(5));
    sender.kill();
    let (mut received, mut skipped) = (0u64, 0u64);
    loop {
        match rx.recv_timeout(BOUND) {
            Ok(_) => received += 1,
            Err(RecvTimeoutError::Abandoned(n)) => skipped += n,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e} after {received}"),
        }
    }
    assert_eq!(received + skipped, q.next_index());
}
