//! The queue between real processes (the `peer-queue` test peer): two producers and two
//! consumers in broadcast and in work stealing, batch receives (`recv_into`) of what other
//! processes send, with exact lag counts, and a blocking receive in another process.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::SharedCursor;
use fastipc_testkit::{ChildGuard, ShmCleanup, unique_name, wait_until};

const PEER: &str = env!("CARGO_BIN_EXE_peer-queue");
const PER_PRODUCER: u64 = 20_000;
const TIMEOUT: Duration = Duration::from_secs(120);

fn peer(args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(PEER);
    cmd.args(args);
    ChildGuard::spawn(cmd)
}

/// Starts two producers of [`PER_PRODUCER`] messages each on queue `name` and checks that
/// they and every one of `consumers` (started before, each reading every message of both)
/// report success.
fn two_producers_reach_every_consumer(name: &str, consumers: Vec<ChildGuard>) {
    let per = PER_PRODUCER.to_string();
    let producers: Vec<_> = (0..2)
        .map(|p| peer(&["produce", name, &p.to_string(), &per]))
        .collect();
    for p in producers {
        assert_eq!(p.success(TIMEOUT).trim(), format!("sent {per}"));
    }
    for c in consumers {
        assert_eq!(
            c.success(TIMEOUT).trim(),
            format!("ok {}", 2 * PER_PRODUCER)
        );
    }
}

#[test]
fn processes_broadcast_two_producers_two_consumers() {
    let name = unique_name("q-mp-bcast");
    let _cleanup = ShmCleanup::new().segment(&name);
    // Capacity above the 40 000 items: nothing is overwritten, so every consumer (which
    // reads from the oldest) must see every item, in per-producer order.
    let _q = SlickQueue::<u64>::create(&name, 1 << 16).unwrap();
    let per = PER_PRODUCER.to_string();
    let consumers = (0..2)
        .map(|_| peer(&["consume", &name, "2", &per]))
        .collect();
    two_producers_reach_every_consumer(&name, consumers);
}

#[test]
fn processes_work_stealing_exactly_once() {
    let name = unique_name("q-mp-steal");
    let cursor_name = format!("{name}-cur");
    let _cleanup = ShmCleanup::new().segment(&name).segment(&cursor_name);
    let q = SlickQueue::<u64>::create(&name, 1 << 16).unwrap();
    let _cursor = SharedCursor::create(&cursor_name, q.next_index()).unwrap();
    let per = PER_PRODUCER.to_string();
    let total = (2 * PER_PRODUCER).to_string();
    let consumers: Vec<_> = (0..2)
        .map(|_| peer(&["steal", &name, &cursor_name, &total]))
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| peer(&["produce", &name, &p.to_string(), &per]))
        .collect();
    for p in producers {
        p.success(TIMEOUT);
    }
    let mut seen = HashSet::new();
    let mut count = 0u64;
    for c in consumers {
        for line in c.success(TIMEOUT).lines() {
            let v: u64 = line.parse().unwrap();
            count += 1;
            assert!(seen.insert(v), "{v:#x} consumed twice");
        }
    }
    assert_eq!(count, 2 * PER_PRODUCER, "every item exactly once");
    for p in 0..2u64 {
        for seq in 0..PER_PRODUCER {
            assert!(seen.contains(&(p << 40 | seq)), "item {p}/{seq} lost");
        }
    }
}

#[test]
fn blocking_receive_in_another_process() {
    let name = unique_name("q-mp-recv");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 64).unwrap();
    let child = peer(&["recv", &name, "60000"]);
    assert!(
        wait_until(Duration::from_secs(30), || q.ring().header().sleepers >= 1),
        "the other process never went to sleep on the queue"
    );
    q.producer().unwrap().send(&4242).unwrap();
    let out = child.success(TIMEOUT);
    assert!(out.contains("got 4242"), "{out}");
}

#[test]
fn processes_batch_receive_every_message_in_order() {
    let name = unique_name("q-mp-batch");
    let _cleanup = ShmCleanup::new().segment(&name);
    let _q = SlickQueue::<u64>::create(&name, 1 << 16).unwrap();
    let per = PER_PRODUCER.to_string();
    let consumers = ["1", "64"]
        .iter()
        .map(|buf| peer(&["consume-batch", &name, "2", &per, buf]))
        .collect();
    two_producers_reach_every_consumer(&name, consumers);
}

#[test]
fn a_batch_receive_lapped_by_another_process_reports_the_exact_loss() {
    let name = unique_name("q-mp-batch-lag");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 64).unwrap();
    let mut rx = q.consumer().unwrap();
    // 200 single messages into a ring of 64: the consumer at 0 loses the 136 oldest.
    assert_eq!(
        peer(&["produce", &name, "0", "200"])
            .success(TIMEOUT)
            .trim(),
        "sent 200"
    );
    let mut buf = [0u64; 32];
    assert_eq!(
        rx.try_recv_into(&mut buf),
        Err(fastipc::queue::TryRecvError::Lagged(136))
    );
    let mut got = Vec::new();
    while let Ok(n) = rx.try_recv_into(&mut buf) {
        assert!(n <= buf.len());
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, (136..200).collect::<Vec<u64>>());
}
