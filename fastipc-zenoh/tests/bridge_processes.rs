//! Bridges between processes over TCP on 127.0.0.1 (multicast scouting off): a producer
//! process, an exporter process, an importer process and a consumer process, on two
//! queue names.

mod support;

use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, Role};
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, unique_name};
use support::probe::Probe;
use support::{STEP, bridge_cmd, field, peer_cmd, start_export, start_import};

const CAPACITY: usize = 1 << 17;

/// 100,000 64-byte messages cross two bridge processes in order, every field checked
/// (by the consumer peer); the bridges' counts agree and nothing is reported lost.
#[test]
fn hundred_thousand_messages_cross_two_bridges_in_order() {
    let (src, dst) = (unique_name("bsrc"), unique_name("bdst"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let _source = SlickQueue::<Probe>::create(&src, CAPACITY).unwrap();
    let cap = CAPACITY.to_string();
    let mut consumer = ChildGuard::spawn(peer_cmd(&["consume", &dst, &cap, "99999", "300"]));
    let consumer_lines = Lines::of(&mut consumer);
    consumer_lines.expect("ready", STEP);
    let (importer, port) = start_import(&key, &dst, &["--status-interval", "0.2"]);
    let exporter = start_export(
        &src,
        &key,
        port,
        &["--lossless", "--status-interval", "0.2"],
    );

    let sent =
        ChildGuard::spawn(peer_cmd(&["produce", &src, "0", "100000", "0"])).success(STEP * 2);
    assert_eq!(sent.trim(), "sent 100000");
    assert_eq!(
        consumer_lines.next(STEP * 5).as_deref(),
        Some("received 100000 gaps 0 missing 0")
    );
    assert!(consumer.wait_timeout(STEP).is_some_and(|s| s.success()));

    let (ok, exported, status) = exporter.stop_with("TERM");
    assert!(ok, "exporter: {exported}");
    assert!(
        status.contains(&format!("export {src} -> {key}: ")),
        "status lines: {status}"
    );
    assert!(
        status.contains("msg/s") && status.contains("lagged 0"),
        "{status}"
    );
    assert_eq!(field(&exported, "messages"), 100_000, "{exported}");
    assert_eq!(field(&exported, "lagged"), 0, "{exported}");
    assert!(field(&exported, "batches") < 100_000, "batched: {exported}");
    let (ok, imported, status) = importer.stop_with("TERM");
    assert!(ok, "importer: {imported}");
    assert!(
        status.contains(&format!("import {key} -> {dst}: ")),
        "status lines: {status}"
    );
    assert!(
        status.contains("msg/s") && status.contains("lost 0"),
        "{status}"
    );
    assert_eq!(field(&imported, "messages"), 100_000, "{imported}");
    assert_eq!(field(&imported, "lost"), 0, "{imported}");
    assert_eq!(field(&imported, "malformed"), 0, "{imported}");
}

/// An importer whose queue holds another 64-byte type refuses the first batch, exits
/// with an error naming both types, and writes nothing.
#[test]
fn import_into_a_queue_of_another_type_is_refused_naming_both() {
    let (src, dst) = (unique_name("bsrc"), unique_name("bdst"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let _source = SlickQueue::<Probe>::create(&src, 1024).unwrap();
    let other = SlickQueue::<[u64; 8]>::create(&dst, 1024).unwrap();
    let (mut importer, port) = start_import(&key, &dst, &["--status-interval", "0"]);
    let exporter = start_export(&src, &key, port, &["--status-interval", "0"]);
    ChildGuard::spawn(peer_cmd(&["produce", &src, "0", "10", "0"])).success(STEP);

    let status = importer
        .child
        .wait_timeout(STEP)
        .expect("the importer stops");
    assert!(!status.success());
    let out = importer.child.output(STEP);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("type mismatch"), "{stderr}");
    assert!(
        stderr.contains("`Probe`"),
        "names the bridged type: {stderr}"
    );
    assert!(
        stderr.contains("`[u64; 8]`"),
        "names the local type: {stderr}"
    );
    assert_eq!(other.next_index(), 0, "nothing was written");
    drop(exporter);
}

/// An exporter killed with SIGKILL and started again: traffic resumes, and the consumer
/// side's importer reports exactly what the consumer missed (lossy).
#[test]
fn a_killed_exporter_restarts_and_the_gap_is_counted() {
    let (src, dst) = (unique_name("bsrc"), unique_name("bdst"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let _source = SlickQueue::<Probe>::create(&src, CAPACITY).unwrap();
    let cap = CAPACITY.to_string();
    let mut consumer = ChildGuard::spawn(peer_cmd(&["consume", &dst, &cap, "5099", "300"]));
    let consumer_lines = Lines::of(&mut consumer);
    consumer_lines.expect("ready", STEP);
    let (importer, port) = start_import(&key, &dst, &["--status-interval", "0"]);
    let mut exporter = start_export(&src, &key, port, &["--status-interval", "0"]);

    // 5000 messages over about 5 s; the exporter dies 1 s in and comes back.
    let producer = ChildGuard::spawn(peer_cmd(&["produce", &src, "0", "5000", "1000"]));
    std::thread::sleep(Duration::from_secs(1));
    exporter.child.kill();
    std::thread::sleep(Duration::from_millis(200));
    let exporter = start_export(&src, &key, port, &["--status-interval", "0"]);
    assert_eq!(producer.success(STEP * 2).trim(), "sent 5000");
    // A tail sent surely after the restart.
    ChildGuard::spawn(peer_cmd(&["produce", &src, "5000", "100", "0"])).success(STEP);

    let line = consumer_lines.next(STEP * 2).expect("the consumer reports");
    let words: Vec<&str> = line.split_whitespace().collect();
    let (received, missing): (u64, u64) = (words[1].parse().unwrap(), words[5].parse().unwrap());
    assert_eq!(received + missing, 5100, "{line}");
    assert!(missing > 0, "the kill lost messages: {line}");
    // SIGINT (Ctrl-C) stops as cleanly as SIGTERM.
    let (ok, exported, _) = exporter.stop_with("INT");
    assert!(ok, "{exported}");
    assert!(
        field(&exported, "messages") >= 100,
        "the restarted exporter sent the tail: {exported}"
    );
    let (ok, imported, _) = importer.stop_with("INT");
    assert!(ok, "{imported}");
    assert_eq!(
        field(&imported, "lost"),
        missing,
        "{imported} vs consumer {line}"
    );
    assert!(field(&imported, "restart_gap") > 0, "{imported}");
    assert_eq!(field(&imported, "messages"), received, "{imported}");
}

/// Both queues lossless, the exporter with `--resume`: killed with SIGKILL in the middle
/// of the stream and started again a second later, it resumes at the position importers
/// acknowledged. Meanwhile its durable consumer entry holds the producer back (the source
/// ring, 1024 messages, is far smaller than what is sent while it is down), and the
/// importer drops what it receives twice: the consumer gets every message exactly once,
/// in order, and nothing is reported lost.
#[test]
fn a_killed_lossless_exporter_resumes_where_it_stopped_and_loses_nothing() {
    const COUNT: u64 = 20_000;
    let (src, dst) = (unique_name("bsrc"), unique_name("bdst"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let source = SlickQueue::<Probe>::create_with(&src, 1024, Mode::Lossless).unwrap();
    let cap = CAPACITY.to_string();
    let last = (COUNT - 1).to_string();
    let mut consumer =
        ChildGuard::spawn(peer_cmd(&["consume", &dst, &cap, &last, "300", "lossless"]));
    let consumer_lines = Lines::of(&mut consumer);
    consumer_lines.expect("ready", STEP);
    let lossless = ["--lossless", "--status-interval", "0"];
    let (importer, port) = start_import(&key, &dst, &lossless);
    let resume = ["--lossless", "--resume", "--status-interval", "0"];
    let mut exporter = start_export(&src, &key, port, &resume);

    // 20,000 messages over about 4 s; the exporter dies 1 s in, for 1 s (5000 messages).
    let count = COUNT.to_string();
    let producer = ChildGuard::spawn(peer_cmd(&["produce", &src, "0", &count, "5000"]));
    std::thread::sleep(Duration::from_secs(1));
    exporter.child.kill();
    let durable = || {
        source
            .ring()
            .endpoints()
            .into_iter()
            .find(|e| e.role == Role::DurableConsumer)
    };
    let kept = durable().expect("the exporter's position is kept");
    std::thread::sleep(Duration::from_secs(1));
    // Held back: the producer could not get further than a ring past the kept position.
    assert!(
        source.next_index() <= kept.position + 1024,
        "{} sent, kept position {}",
        source.next_index(),
        kept.position
    );
    let exporter = start_export(&src, &key, port, &resume);
    assert_eq!(producer.success(STEP * 2).trim(), format!("sent {COUNT}"));
    assert_eq!(
        consumer_lines.next(STEP * 2).as_deref(),
        Some(format!("received {COUNT} gaps 0 missing 0").as_str())
    );
    let (ok, exported, _) = exporter.stop_with("TERM");
    assert!(ok, "{exported}");
    let (ok, imported, _) = importer.stop_with("TERM");
    assert!(ok, "{imported}");
    assert_eq!(field(&imported, "lost"), 0, "{imported}");
    // Every message written once: duplicates (sent again after the restart, from the
    // acknowledged position) were recognised and dropped.
    assert_eq!(field(&imported, "messages"), COUNT, "{imported}");
    eprintln!("after the restart: {imported}");
    // The kept position stays until forgotten; then nothing holds the producers back.
    assert!(durable().is_some());
    let out = ChildGuard::spawn(bridge_cmd(&["forget", &src, &key])).success(STEP);
    assert_eq!(out.trim(), "forgotten");
    assert!(durable().is_none());
}
