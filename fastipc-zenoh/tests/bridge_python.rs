//! Interop with the Python Zenoh client (`eclipse-zenoh` from PyPI, in the test venv): a
//! Python subscriber decodes what an exporter publishes, and a Python publisher's
//! batches arrive in a fastipc queue through an importer. Both follow docs/BRIDGE.md
//! with nothing but `struct`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fastipc::IpcMessage;
use fastipc::SlickQueue;
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, in_ci, python, python_command, unique_name};
use support::probe::Probe;
use support::{STEP, bridge_cmd, field, peer_cmd, start_import};

/// The eclipse-zenoh version pinned in scripts/test.sh.
const ZENOH_PY: &str = "1.10.2";

/// The venv's interpreter when it has eclipse-zenoh at the pinned version; `None` (skip,
/// with a note) otherwise, and a failure under `CI=true`.
fn zenoh_python() -> Option<PathBuf> {
    let py = python()?;
    let out = Command::new(&py)
        .args([
            "-c",
            "import zenoh, importlib.metadata as m; print(m.version('eclipse-zenoh'))",
        ])
        .output()
        .expect("python runs");
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && found == ZENOH_PY {
        return Some(py);
    }
    let msg = format!(
        "eclipse-zenoh=={ZENOH_PY} is not in {} (found {found:?}; run `bash scripts/test.sh`)",
        py.display()
    );
    assert!(!in_ci(), "{msg}");
    eprintln!("skipping: {msg}");
    None
}

/// The decoder side: subscribes, decodes every batch of docs/BRIDGE.md and checks each
/// Probe field; prints the type it saw.
const SUBSCRIBER: &str = r#"
import struct, sys, time, zenoh
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", f'["tcp/127.0.0.1:{port}"]')
conf.insert_json5("scouting/multicast/enabled", "false")
with zenoh.open(conf) as s:
    sub = s.declare_subscriber(key)
    print("ready", flush=True)
    got, deadline, seen = 0, time.time() + 120, None
    while got < n:
        if time.time() > deadline:
            sys.exit(f"timed out after {got} messages")
        sample = sub.try_recv()
        if sample is None:
            time.sleep(0.001)
            continue
        b = sample.payload.to_bytes()
        (magic, ver, flags, name_len, es, count, fp, source, stream, seq, first,
         lagged, abandoned, corrupt, unmatched) = struct.unpack_from("<4sBBHII9Q", b, 0)
        assert magic == b"FQZB" and ver == 2, (magic, ver)
        name = b[88:88 + name_len].decode()
        data = b[88 + name_len:]
        assert len(data) == count * es and es == 64, (len(data), count, es)
        assert seq == got, (seq, got)
        for i in range(count):
            sq, triple, inv, half, raw = struct.unpack_from("<QQQd32s", data, i * es)
            assert sq == got, (sq, got)
            assert triple == sq * 3 + 1 and inv == sq ^ (2**64 - 1) and half == sq / 2
            assert raw == bytes((sq + j) % 256 for j in range(32))
            got += 1
        seen = (name, fp)
    print(f"ok {got} {seen[0]} {seen[1]:#x}", flush=True)
"#;

/// The publisher side: publishes `n` Probes in batches of 50, untyped (fingerprint 0),
/// once the importer's subscription matches.
const PUBLISHER: &str = r#"
import struct, sys, time, zenoh
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", f'["tcp/127.0.0.1:{port}"]')
conf.insert_json5("scouting/multicast/enabled", "false")
with zenoh.open(conf) as s:
    pub = s.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
    deadline = time.time() + 60
    while not pub.matching_status.matching:
        if time.time() > deadline:
            sys.exit("no subscriber matched")
        time.sleep(0.01)
    name = b"python"
    sent = 0
    while sent < n:
        count = min(50, n - sent)
        head = struct.pack("<4sBBHII8Q", b"FQZB", 1, 0, len(name), 64, count,
                           0, 7, 8, sent, sent, 0, 0, 0)
        body = b"".join(
            struct.pack("<QQQd32s", q, q * 3 + 1, q ^ (2**64 - 1), q / 2,
                        bytes((q + j) % 256 for j in range(32)))
            for q in range(sent, sent + count))
        pub.put(head + name + body)
        sent += count
    time.sleep(0.5)  # let the last batches leave before the session closes
    print(f"published {sent}", flush=True)
"#;

/// A Python subscriber decodes every message an exporter publishes, and sees its type.
#[test]
fn python_subscriber_decodes_what_the_exporter_publishes() {
    let Some(py) = zenoh_python() else { return };
    let src = unique_name("bpy");
    let _cleanup = ShmCleanup::new().segment(&src);
    let key = format!("fastipc/test/{src}");
    let _source = SlickQueue::<Probe>::create(&src, 4096).unwrap();
    // The exporter listens (retrying ports), the Python subscriber connects.
    let (exporter, port) = listen_export(&src, &key);
    let mut sub = ChildGuard::spawn(python_command(
        &py,
        SUBSCRIBER,
        &[&port.to_string(), &key, "3000"],
    ));
    let sub_lines = Lines::of(&mut sub);
    sub_lines.expect("ready", STEP);
    exporter.lines.expect("matched", STEP);
    ChildGuard::spawn(peer_cmd(&["produce", &src, "0", "3000", "0"])).success(STEP);
    let line = sub_lines.next(STEP * 2);
    let want = format!("ok 3000 Probe {:#x}", Probe::FINGERPRINT);
    assert_eq!(
        line.as_deref(),
        Some(want.as_str()),
        "{:?}",
        sub.output(STEP)
    );
    let (ok, _) = exporter.terminate();
    assert!(ok);
}

/// A Python publisher's batches arrive, every field intact, in a fastipc queue of Probe
/// through an importer (untyped batches: only the element size is checked).
#[test]
fn python_publisher_reaches_a_fastipc_queue_through_an_importer() {
    let Some(py) = zenoh_python() else { return };
    let dst = unique_name("bpy");
    let _cleanup = ShmCleanup::new().segment(&dst);
    let key = format!("fastipc/test/{dst}");
    let mut consumer = ChildGuard::spawn(peer_cmd(&["consume", &dst, "4096", "1999", "120"]));
    let consumer_lines = Lines::of(&mut consumer);
    consumer_lines.expect("ready", STEP);
    let (importer, port) = start_import(&key, &dst, &["--status-interval", "0"]);
    let out = ChildGuard::spawn(python_command(
        &py,
        PUBLISHER,
        &[&port.to_string(), &key, "2000"],
    ))
    .success(STEP * 2);
    assert_eq!(out.trim(), "published 2000");
    assert_eq!(
        consumer_lines.next(STEP).as_deref(),
        Some("received 2000 gaps 0 missing 0")
    );
    let (ok, imported) = importer.terminate();
    assert!(ok, "{imported}");
    assert_eq!(field(&imported, "messages"), 2000);
    assert_eq!(field(&imported, "lost"), 0);
}

/// `fastipc-bridge export QUEUE KEY --listen` on a free port (retrying on conflicts).
fn listen_export(queue: &str, key: &str) -> (support::Bridge, u16) {
    for attempt in 0..10u16 {
        let port = 20000
            + ((std::process::id() as u16)
                .wrapping_mul(7)
                .wrapping_add(attempt * 997))
                % 40000;
        let listen = format!("tcp/127.0.0.1:{port}");
        let mut child = ChildGuard::spawn(bridge_cmd(&[
            "export",
            queue,
            key,
            "--listen",
            &listen,
            "--no-multicast",
            // Blocking congestion control: a Python subscriber slowed down by a loaded
            // machine must not lose batches (its check wants every one).
            "--lossless",
            "--status-interval",
            "0",
        ]));
        let lines = Lines::of(&mut child);
        if lines.next(STEP).as_deref() == Some("ready") {
            return (support::Bridge { child, lines }, port);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no exporter could listen");
}
