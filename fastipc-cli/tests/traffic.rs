//! `fastipc send` / `fastipc recv` between real processes: CLI to CLI, losses reported,
//! `--from-now`, work stealing with `--shared-cursor`, and every error path of both.

mod common;

use common::{Finish, World};
use fastipc::queue::{Ring, RingSpec};
use fastipc_testkit::ChildGuard;

#[test]
fn recv_gets_every_element_that_send_writes_from_another_process() {
    let mut w = World::new("cli2cli");
    let q = w.segment("q");
    // The receiver starts first and waits for the queue to appear.
    let recv = ChildGuard::spawn(w.cli(&[
        "recv",
        &q,
        "--count",
        "5000",
        "--elem-size",
        "40",
        "--timeout",
        "30",
    ]));
    let sent = w.run(&[
        "send",
        &q,
        "--count",
        "5000",
        "--elem-size",
        "40",
        "--capacity",
        "8192",
        "--batch",
        "3",
    ]);
    let line = sent.ok().trim().to_owned();
    assert!(
        line.starts_with("sent 5000 elements of 40 B in 1667 reservations"),
        "{line}"
    );
    assert!(line.contains("capacity 8192"), "{line}");
    let got = recv.run();
    let summary = got.ok();
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert!(
        summary.starts_with("received 5000 of 5000, lost 0, corrupt 0, out of order 0 in "),
        "{summary}"
    );
    assert!(summary.contains("msg/s"), "{summary}");
    assert!(got.stderr.is_empty(), "{got:?}");
}

#[test]
fn a_paced_sender_attaches_to_an_existing_queue() {
    let mut w = World::new("paced");
    let q = w.segment("q");
    Ring::create(&q, &RingSpec::new(4096, 16)).unwrap();
    let recv = ChildGuard::spawn(w.cli(&[
        "recv",
        &q,
        "--count",
        "300",
        "--elem-size",
        "16",
        "--timeout",
        "30",
    ]));
    // The ring holds all 300, so the receiver (reading from the oldest) may attach at
    // any moment.
    let sent = w.run(&[
        "send",
        &q,
        "--count",
        "300",
        "--elem-size",
        "16",
        "--rate",
        "3000",
    ]);
    assert!(sent.ok().contains("(attached, capacity 4096)"), "{sent:?}");
    assert!(recv.run().ok().starts_with("received 300 of 300, lost 0"));
}

#[test]
fn recv_reports_what_a_lapping_producer_overwrote() {
    let mut w = World::new("lapped");
    let q = w.segment("q");
    w.run(&[
        "send",
        &q,
        "--count",
        "100",
        "--elem-size",
        "8",
        "--capacity",
        "16",
    ])
    .ok();
    // Reading from the oldest element still in the ring: 84..99.
    let got = w.run(&["recv", &q, "--count", "100", "--elem-size", "8"]);
    assert!(
        got.stdout
            .starts_with("received 16 of 100, lost 84, corrupt 0, out of order 0"),
        "{got:?}"
    );
    got.fails_with(
        1,
        &["16 of 100 elements arrived intact", "84 lost", "from 0 on"],
    );
}

#[test]
fn from_now_skips_what_the_ring_already_holds() {
    let mut w = World::new("fromnow");
    let q = w.segment("q");
    w.run(&["send", &q, "--count", "10", "--elem-size", "8"])
        .ok();
    let old = w.run(&["recv", &q, "--count", "10", "--elem-size", "8"]);
    assert!(old.ok().starts_with("received 10 of 10, lost 0"));
    let fresh = w.run(&[
        "recv",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--from-now",
        "--timeout",
        "0.3",
    ]);
    assert!(fresh.stdout.starts_with("received 0 of 1"), "{fresh:?}");
    fresh.fails_with(
        1,
        &["timed out", "nothing arrived (0 of 1 received)", "300.0 ms"],
    );
}

#[test]
fn two_receivers_sharing_a_cursor_split_the_stream() {
    let mut w = World::new("steal");
    let q = w.segment("q");
    let cursor = w.segment("cursor");
    Ring::create(&q, &RingSpec::new(2048, 24)).unwrap();
    let recv = |w: &World| {
        ChildGuard::spawn(w.cli(&[
            "recv",
            &q,
            "--count",
            "500",
            "--elem-size",
            "24",
            "--shared-cursor",
            &cursor,
            "--timeout",
            "30",
        ]))
    };
    let (a, b) = (recv(&w), recv(&w));
    w.run(&[
        "send",
        &q,
        "--count",
        "1000",
        "--elem-size",
        "24",
        "--batch",
        "2",
    ])
    .ok();
    // Each stops at 500, so together they take all 1000, each exactly 500.
    for r in [a.run(), b.run()] {
        assert!(
            r.ok()
                .starts_with("received 500 of 500, lost 0, corrupt 0, out of order 0"),
            "{r:?}"
        );
    }
    assert!(std::path::Path::new("/dev/shm").join(&cursor).exists());
}

/// A reader of a shared cursor claims whole reservations: one that reaches its `--count`
/// in the middle of one must not drop the rest silently (nobody else ever gets them), but
/// count them and fail, so the other reader's wait is explained.
#[test]
fn a_shared_reader_that_claims_more_than_its_count_reports_the_extra_elements() {
    let mut w = World::new("steal-extra");
    let q = w.segment("q");
    let cursor = w.segment("cursor");
    w.run(&[
        "send",
        &q,
        "--count",
        "4",
        "--elem-size",
        "16",
        "--batch",
        "4",
    ])
    .ok();
    let recv = |w: &World| {
        w.run(&[
            "recv",
            &q,
            "--count",
            "1",
            "--elem-size",
            "16",
            "--shared-cursor",
            &cursor,
            "--timeout",
            "0.5",
        ])
    };
    let first = recv(&w);
    assert!(
        first.stdout.starts_with(
            "received 1 of 1, lost 0, corrupt 0, out of order 0, beyond --count 3 in "
        ),
        "{first:?}"
    );
    first.fails_with(
        1,
        &[
            &q,
            "claimed 3 elements beyond --count 1",
            "sequence numbers 1..=3",
            "no other reader of the shared cursor will get them",
        ],
    );
    // The second reader finds nothing left, as the first one said.
    recv(&w).fails_with(1, &["nothing arrived (0 of 1 received)"]);
}

#[test]
fn element_sizes_below_eight_are_refused() {
    let mut w = World::new("small");
    let q = w.segment("q");
    for cmd in ["send", "recv"] {
        w.run(&[cmd, &q, "--count", "1", "--elem-size", "7"])
            .fails_with(1, &["element size 7 is too small", "at least 8 bytes"]);
    }
    assert!(!std::path::Path::new("/dev/shm").join(&q).exists());
}

#[test]
fn bad_capacities_and_batches_are_refused_before_anything_is_created() {
    let mut w = World::new("badcap");
    let q = w.segment("q");
    for cap in ["1000", "0"] {
        w.run(&[
            "send",
            &q,
            "--count",
            "1",
            "--elem-size",
            "8",
            "--capacity",
            cap,
        ])
        .fails_with(1, &[&format!("capacity {cap} is invalid"), "power of two"]);
    }
    w.run(&[
        "send",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--capacity",
        "8",
        "--batch",
        "9",
    ])
    .fails_with(1, &["--batch", "larger than the capacity 8"]);
    w.run(&[
        "send",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--rate",
        "0",
    ])
    .fails_with(1, &["--rate"]);
    // A rate so low that the last element's due time does not fit a duration: refused
    // up front, not a panic.
    w.run(&[
        "send",
        &q,
        "--count",
        "4",
        "--elem-size",
        "8",
        "--rate",
        "1e-30",
    ])
    .fails_with(
        1,
        &[
            "--rate",
            "1e-30 elements per second is too low for --count 4",
        ],
    );
    assert!(!std::path::Path::new("/dev/shm").join(&q).exists());
    // An existing queue of another capacity or element size.
    Ring::create(&q, &RingSpec::new(16, 8)).unwrap();
    w.run(&[
        "send",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--capacity",
        "32",
    ])
    .fails_with(1, &["has capacity 16, but 32 was asked for"]);
    w.run(&["send", &q, "--count", "1", "--elem-size", "16"])
        .fails_with(1, &["8 bytes per element", "16-byte elements"]);
}

#[test]
fn recv_times_out_on_a_missing_queue_and_on_silence() {
    let mut w = World::new("timeout");
    let q = w.segment("q");
    let missing = w.run(&[
        "recv",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--timeout",
        "0.2",
    ]);
    assert!(missing.stdout.is_empty(), "{missing:?}");
    missing.fails_with(1, &["timed out", &q, "it did not appear within 200.0 ms"]);
    Ring::create(&q, &RingSpec::new(8, 8)).unwrap();
    w.run(&[
        "recv",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--timeout",
        "0.2",
    ])
    .fails_with(1, &["nothing arrived (0 of 1 received) within 200.0 ms"]);
}

#[test]
fn send_and_recv_refuse_a_segment_that_is_not_a_queue() {
    let mut w = World::new("foreign-q");
    let q = w.segment("q");
    std::fs::write(
        std::path::Path::new("/dev/shm").join(&q),
        "just some text that another program keeps in shared memory, nothing like a queue header",
    )
    .unwrap();
    for cmd in ["send", "recv"] {
        w.run(&[cmd, &q, "--count", "1", "--elem-size", "8"])
            .fails_with(1, &[&q]);
    }
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    let w = World::new("usage");
    for args in [
        &["send", "q", "--count", "lots", "--elem-size", "8"][..],
        &["recv", "q", "--elem-size", "8"],
        &["frobnicate"],
    ] {
        w.run(args).fails_with(2, &["fastipc --help"]);
    }
    w.run(&[
        "recv",
        "q",
        "--count",
        "1",
        "--elem-size",
        "8",
        "--timeout=-1",
    ])
    .fails_with(
        1,
        &["--timeout", "-1 is not a non-negative number of seconds"],
    );
    // Too long to wait for: said so, in a short line.
    let line = w
        .run(&[
            "recv",
            "q",
            "--count",
            "1",
            "--elem-size",
            "8",
            "--timeout",
            "1e300",
        ])
        .fails_with(1, &["--timeout", "1e300 seconds is longer than"])
        .to_owned();
    assert!(line.len() < 200, "{line}");
}

/// Issue 9: a lossless queue made by `send --lossless` holds the sender back for a paced
/// receiver (nothing lost), and `inspect --json` lists both endpoints while they run.
#[test]
fn a_lossless_send_waits_for_a_paced_recv_and_inspect_lists_both() {
    let mut w = World::new("lossless");
    let q = w.segment("q");
    let recv = ChildGuard::spawn(w.cli(&[
        "recv",
        &q,
        "--count",
        "3000",
        "--elem-size",
        "16",
        "--rate",
        "3000",
        "--timeout",
        "30",
    ]));
    let send = ChildGuard::spawn(w.cli(&[
        "send",
        &q,
        "--count",
        "3000",
        "--elem-size",
        "16",
        "--capacity",
        "64",
        "--lossless",
    ]));
    // Both register while they run: the sender is held back by the paced receiver.
    let mut listed = None;
    let deadline = std::time::Instant::now() + common::LONG;
    while std::time::Instant::now() < deadline {
        let run = w.run(&["inspect", &q, "--json"]);
        if run.status.success() {
            let v = run.json();
            let endpoints = v["endpoints"].as_array().cloned().unwrap_or_default();
            if endpoints.len() == 2 {
                listed = Some(v);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let v = listed.expect("inspect never listed both endpoints");
    assert_eq!(v["queue_mode"], "lossless");
    assert_eq!(v["single_producer"], false);
    let endpoints = v["endpoints"].as_array().unwrap();
    let consumer = endpoints
        .iter()
        .find(|e| e["role"] == "consumer")
        .expect("a consumer entry");
    assert_eq!(consumer["alive"], true);
    assert!(consumer["pid"].as_u64().unwrap() > 0);
    assert!(
        consumer["position"].is_u64() && consumer["lag"].is_u64(),
        "{consumer}"
    );
    assert!(consumer["lag"].as_u64().unwrap() <= 64, "{consumer}");
    assert!(endpoints.iter().any(|e| e["role"] == "producer"));
    let sent = send.run();
    assert!(sent.ok().starts_with("sent 3000 elements"), "{sent:?}");
    let got = recv.run();
    assert!(
        got.ok()
            .starts_with("received 3000 of 3000, lost 0, corrupt 0, out of order 0"),
        "{got:?}"
    );
    let line = ls_line(&w, &q);
    assert!(line.contains("lossless"), "{line}");
}

/// A queue declared single-producer has one producer, a `SingleProducer` of the library:
/// `fastipc send` is refused (naming the declaration), with or without `--capacity`, and
/// claims nothing.
#[test]
fn send_refuses_a_single_producer_queue() {
    let mut w = World::new("single-q");
    let q = w.segment("q");
    let options = fastipc::queue::QueueOptions::new().single_producer();
    let ring = Ring::create(&q, &RingSpec::new(64, 8).with_options(options)).unwrap();
    w.run(&["send", &q, "--count", "1", "--elem-size", "8"])
        .fails_with(1, &[&q, "single-producer"]);
    w.run(&[
        "send",
        &q,
        "--count",
        "1",
        "--elem-size",
        "8",
        "--capacity",
        "64",
    ])
    .fails_with(1, &[&q, "single-producer"]);
    assert_eq!(ring.next_index(), 0, "nothing was claimed");
    // `inspect` and `ls` say so.
    let v = w.run(&["inspect", &q, "--json"]).json();
    assert_eq!(v["single_producer"], true, "{v}");
    assert_eq!(v["queue_mode"], "lossy", "{v}");
    let text = w.run(&["inspect", &q]).ok().to_owned();
    assert!(text.contains("lossy, single producer"), "{text}");
    let line = ls_line(&w, &q);
    assert!(line.contains("lossy, single producer"), "{line}");
}

/// The line `fastipc ls` prints for `name` (empty when it prints none).
fn ls_line(w: &World, name: &str) -> String {
    let ls = w.run(&["ls"]);
    ls.ok()
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_default()
        .to_owned()
}
