//! Load between real processes: 4 producers and 4 consumers of one queue (the
//! `peer-load` peer), every message counted by its producer and sequence number.
//! - broadcast, room for everything: each consumer gets every message once, in order per
//!   producer;
//! - broadcast, a small ring: consumers fall behind, and what each one misses is exactly
//!   the sum of the `Lagged(n)` it was told, with nothing twice or out of order;
//! - work stealing: every message claimed by exactly one consumer.
//!
//! 25,000 messages per producer; `FASTIPC_LONG=1` makes it 250,000 (RELIABILITY.md).

use std::collections::HashSet;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::SharedCursor;
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, unique_name};

const PEER: &str = env!("CARGO_BIN_EXE_peer-load");
const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
/// Bound on each process (the machine is shared; the long run moves 4 M deliveries).
const LIMIT: Duration = Duration::from_secs(600);

fn per_producer() -> u64 {
    if std::env::var_os("FASTIPC_LONG").is_some_and(|v| v != "0") {
        250_000
    } else {
        25_000
    }
}

fn peer(args: &[&str]) -> ChildGuard {
    let mut cmd = std::process::Command::new(PEER);
    cmd.args(args);
    ChildGuard::spawn(cmd)
}

/// Spawns a consumer and waits until it has attached ("ready").
fn ready_peer(args: &[&str]) -> (ChildGuard, Lines) {
    let mut child = peer(args);
    let lines = Lines::of(&mut child);
    lines.expect("ready", LIMIT);
    (child, lines)
}

fn produce(name: &str, per: u64) {
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| peer(&["produce", name, &p.to_string(), &per.to_string()]))
        .collect();
    for p in producers {
        assert_eq!(p.success(LIMIT).trim(), format!("sent {per}"));
    }
}

/// The remaining lines of a consumer, once it exited successfully.
fn finish(mut child: ChildGuard, lines: Lines) -> Vec<String> {
    let status = child.wait_timeout(LIMIT).expect("consumer did not finish");
    assert!(status.success(), "consumer failed: {status:?}");
    let mut out = Vec::new();
    while let Some(line) = lines.next(Duration::from_secs(5)) {
        out.push(line);
    }
    out
}

/// Runs one broadcast round; returns each consumer's (received, lagged, missing).
fn broadcast(tag: &str, capacity: usize) -> Vec<(u64, u64, u64)> {
    let name = unique_name(tag);
    let _cleanup = ShmCleanup::new().segment(&name);
    let per = per_producer();
    let _q = SlickQueue::<u64>::create(&name, capacity).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| ready_peer(&["broadcast", &name, &PRODUCERS.to_string(), &per.to_string()]))
        .collect();
    produce(&name, per);
    consumers
        .into_iter()
        .map(|(child, lines)| {
            let out = finish(child, lines);
            let words: Vec<&str> = out.last().expect("a summary").split(' ').collect();
            match words[..] {
                ["received", r, "lagged", l, "missing", m] => {
                    (r.parse().unwrap(), l.parse().unwrap(), m.parse().unwrap())
                }
                _ => panic!("unexpected summary {out:?}"),
            }
        })
        .collect()
}

#[test]
fn broadcast_with_room_for_everything_delivers_every_message_once_in_order() {
    let per = per_producer();
    let total = PRODUCERS * per;
    let counts = broadcast("rel-load-bc", (total as usize).next_power_of_two());
    for (i, &(received, lagged, missing)) in counts.iter().enumerate() {
        assert_eq!((received, lagged, missing), (total, 0, 0), "consumer {i}");
    }
    eprintln!(
        "broadcast: {PRODUCERS} producers x {per}, {CONSUMERS} consumers: {} deliveries checked",
        total * CONSUMERS as u64
    );
}

#[test]
fn broadcast_through_a_small_ring_reports_exactly_what_it_loses() {
    let per = per_producer();
    let total = PRODUCERS * per;
    let counts = broadcast("rel-load-lag", 64);
    let mut lost = 0;
    for (i, &(received, lagged, missing)) in counts.iter().enumerate() {
        assert_eq!(received + missing, total, "consumer {i}");
        assert_eq!(lagged, missing, "consumer {i}: Lagged(n) summed vs missing");
        lost += missing;
    }
    eprintln!(
        "small ring: {CONSUMERS} consumers received {} of {} deliveries; the {lost} missing \
         were all reported by Lagged(n)",
        total * CONSUMERS as u64 - lost,
        total * CONSUMERS as u64
    );
}

#[test]
fn work_stealing_hands_every_message_to_exactly_one_consumer() {
    let per = per_producer();
    let total = PRODUCERS * per;
    let name = unique_name("rel-load-steal");
    let cursor_name = format!("{name}-cur");
    let _cleanup = ShmCleanup::new().segment(&name).segment(&cursor_name);
    let q = SlickQueue::<u64>::create(&name, (total as usize).next_power_of_two()).unwrap();
    let _cursor = SharedCursor::create(&cursor_name, q.next_index()).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| ready_peer(&["steal", &name, &cursor_name, &total.to_string()]))
        .collect();
    produce(&name, per);
    let mut seen = HashSet::new();
    for (child, lines) in consumers {
        let out = finish(child, lines);
        let got: u64 = out[0].strip_prefix("got ").unwrap().parse().unwrap();
        assert_eq!(got as usize, out.len() - 1);
        for line in &out[1..] {
            let (id, seq) = line.split_once(' ').unwrap();
            let key: (u64, u64) = (id.parse().unwrap(), seq.parse().unwrap());
            assert!(seen.insert(key), "{key:?} claimed twice");
        }
    }
    assert_eq!(seen.len() as u64, total, "every message exactly once");
    eprintln!("work stealing: {total} messages, each claimed exactly once");
}
