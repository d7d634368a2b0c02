//! The queue between real processes (the `peer-queue` test peer): two producers and two
//! consumers in broadcast and in work stealing, and a blocking receive in another process.

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

#[test]
fn processes_broadcast_two_producers_two_consumers() {
    let name = unique_name("q-mp-bcast");
    let _cleanup = ShmCleanup::new().segment(&name);
    // Capacity above the 40 000 items: nothing is overwritten, so every consumer (which
    // reads from the oldest) must see every item, in per-producer order.
    let _q = SlickQueue::<u64>::create(&name, 1 << 16).unwrap();
    let per = PER_PRODUCER.to_string();
    let consumers: Vec<_> = (0..2)
        .map(|_| peer(&["consume", &name, "2", &per]))
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| peer(&["produce", &name, &p.to_string(), &per]))
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
