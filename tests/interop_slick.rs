//! Interop with the real Python peer `slick-queue-py==2.3.0` (from PyPI, in the venv made
//! by `scripts/test.sh`): both directions, mixed producers, a mixed work-stealing group,
//! creation on either side, read_last, 8- and 256-byte elements, batches across a wrap,
//! a sleeping Rust consumer fed by a Python producer (which never wakes anyone), and a
//! pending async receive reached by a Python producer through its re-poll.

mod async_support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use fastipc::queue::{RecvTimeoutError, Ring, SharedCursor, TryRecvError, WaitStrategy};
use fastipc::{IpcMessage, SlickQueue};
use fastipc_testkit::{ChildGuard, ShmCleanup, python, python_command, unique_name, wait_until};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Helpers every script starts with.
const PRELUDE: &str = r#"
import struct, sys, time
from slick_queue_py import SlickQueue, AtomicCursor, _open_shm

DEADLINE = time.monotonic() + 60

def check_deadline(what):
    if time.monotonic() > DEADLINE:
        raise SystemExit("timed out: " + what)

def open_existing(name, es):
    # The queue may not exist yet: retry, bounded.
    while True:
        try:
            return SlickQueue(name=name, element_size=es)
        except FileNotFoundError:
            check_deadline("queue " + name + " never appeared")
            time.sleep(0.001)

def element(v, es):
    # An element of `es` bytes: the u64 value repeated.
    return struct.pack("<Q", v) * (es // 8)

def value(data, es):
    words = struct.unpack("<%dQ" % (es // 8), data)
    assert all(w == words[0] for w in words), "torn element %r" % (words,)
    return words[0]

def read_one(q, idx, what):
    while True:
        data, size, nidx = q.read(idx)
        if data is not None:
            return data, size, nidx
        check_deadline(what)
        time.sleep(0.0002)

def send(q, values, es):
    i = q.reserve(len(values))
    for k, v in enumerate(values):
        q[i + k][:] = element(v, es)
    q.publish(i, len(values))
    return i
"#;

fn script(body: &str) -> String {
    format!("{PRELUDE}\n{body}")
}

fn spawn_py(py: &Path, body: &str, args: &[&str]) -> ChildGuard {
    ChildGuard::spawn(python_command(py, &script(body), args))
}

/// `[u64; 32]`: a 256-byte element whose words all hold the same value.
type Wide = [u64; 32];

fn wide(v: u64) -> Wide {
    [v; 32]
}

#[test]
fn python_creates_and_produces_rust_consumes() {
    let Some(py) = python() else { return };
    for es in [8usize, 256] {
        let name = unique_name("qi-py2rs");
        let _cleanup = ShmCleanup::new().segment(&name);
        const N: u64 = 500;
        let producer = spawn_py(
            &py,
            r#"
name, es, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
q = SlickQueue(name=name, size=1024, element_size=es)
for v in range(n):
    send(q, [v], es)
    if v % 50 == 0:
        time.sleep(0.001)
q.close()
print("produced", n)
"#,
            &[&name, &es.to_string(), &N.to_string()],
        );
        // Attach while Python produces (the ring holds all N, so reading from the
        // oldest sees every one whenever we attach).
        assert!(wait_until(Duration::from_secs(30), || {
            Ring::open(&name, Some(es)).is_ok()
        }));
        let got: Vec<u64> = if es == 8 {
            let q = SlickQueue::<u64>::open(&name).unwrap();
            assert_eq!(q.ring().header().fingerprint, 0, "Python records no type");
            assert!(q.ring().type_trailer().is_none());
            let mut rx = q.consumer_from_oldest().unwrap();
            (0..N).map(|_| rx.recv_timeout(TIMEOUT).unwrap()).collect()
        } else {
            let q = SlickQueue::<Wide>::open(&name).unwrap();
            let mut rx = q.consumer_from_oldest().unwrap();
            (0..N)
                .map(|_| {
                    let w = rx.recv_timeout(TIMEOUT).unwrap();
                    assert!(w.iter().all(|&x| x == w[0]), "torn element");
                    w[0]
                })
                .collect()
        };
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "element size {es}");
        assert!(producer.success(TIMEOUT).contains("produced 500"));
    }
}

#[test]
fn rust_creates_and_produces_python_consumes() {
    let Some(py) = python() else { return };
    for es in [8usize, 256] {
        let name = unique_name("qi-rs2py");
        let _cleanup = ShmCleanup::new().segment(&name);
        const N: u64 = 500;
        // Rust creates (fingerprint in header bytes 32..40, type trailer after the data).
        let ring = if es == 8 {
            SlickQueue::<u64>::create(&name, 1024)
                .unwrap()
                .ring()
                .header()
        } else {
            SlickQueue::<Wide>::create(&name, 1024)
                .unwrap()
                .ring()
                .header()
        };
        assert_ne!(ring.fingerprint, 0);
        let consumer = spawn_py(
            &py,
            r#"
name, es, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
q = open_existing(name, es)
assert struct.unpack_from("<Q", q._buf, 32)[0] != 0, "fingerprint expected in bytes 32..40"
idx, got = 0, []
while len(got) < n:
    data, size, idx = read_one(q, idx, "item %d" % len(got))
    for k in range(size):
        got.append(value(data[k * es:(k + 1) * es], es))
assert got == list(range(n)), got[:10]
print("consumed", len(got), q.loss_count())
q.close()
"#,
            &[&name, &es.to_string(), &N.to_string()],
        );
        if es == 8 {
            let tx = SlickQueue::<u64>::open(&name).unwrap().producer().unwrap();
            for v in 0..N {
                tx.send(&v).unwrap();
            }
        } else {
            let tx = SlickQueue::<Wide>::open(&name).unwrap().producer().unwrap();
            for v in 0..N {
                tx.send(&wide(v)).unwrap();
            }
        }
        let out = consumer.success(TIMEOUT);
        assert!(out.contains("consumed 500 0"), "{out}");
    }
}

#[test]
fn python_attaches_to_a_rust_queue_through_its_create_path() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-pycreate");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<[u64; 2]>::create(&name, 64).unwrap();
    let mut rx = q.consumer().unwrap();
    // `SlickQueue(name, size, element_size)` finds the name taken, runs the handshake
    // (init_state CAS fails, waits for 3) and validates size and element size; it also
    // produces and consumes on the segment, which is larger than it computes (trailer).
    let out = spawn_py(
        &py,
        r#"
name = sys.argv[1]
q = SlickQueue(name=name, size=64, element_size=16)
assert q._shm.size > 64 + 16 * 64 + 16 * 64, "the trailer is part of the file"
i = send(q, [5], 16)
data, size, _ = read_one(q, i, "own item")
assert value(data, 16) == 5 and size == 1
try:
    SlickQueue(name=name, size=64, element_size=8)
    raise SystemExit("a wrong element size was accepted")
except ValueError:
    pass
q.close()
print("ok")
"#,
        &[&name],
    )
    .success(TIMEOUT);
    assert_eq!(out.trim(), "ok");
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok([5, 5]));
}

#[test]
fn rust_and_python_producers_share_a_queue() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-mixprod");
    let _cleanup = ShmCleanup::new().segment(&name);
    const N: u64 = 1000;
    let q = SlickQueue::<u64>::create(&name, 4096).unwrap();
    let mut rx = q.consumer().unwrap();
    let python_producer = spawn_py(
        &py,
        r#"
name, n = sys.argv[1], int(sys.argv[2])
q = SlickQueue(name=name, size=4096, element_size=8)
for s in range(n):
    send(q, [(1 << 40) | s], 8)
q.close()
print("sent")
"#,
        &[&name, &N.to_string()],
    );
    let tx = q.producer().unwrap();
    let rust_producer = std::thread::spawn(move || {
        for s in 0..N {
            tx.send(&s).unwrap();
            if s % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let mut next = [0u64; 2];
    let deadline = Instant::now() + TIMEOUT;
    for _ in 0..2 * N {
        // Python producers do not register: once the Rust one is done, the consumer may
        // be told `Disconnected` while Python still sends (documented); it is not final.
        let v = loop {
            match rx.recv_deadline(deadline) {
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(1)),
                other => break other.unwrap(),
            }
        };
        let (p, s) = ((v >> 40) as usize, v & ((1 << 40) - 1));
        assert_eq!(s, next[p], "producer {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, [N, N]);
    rust_producer.join().unwrap();
    python_producer.success(TIMEOUT);
    assert!(matches!(
        rx.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Disconnected)
    ));
}

#[test]
fn rust_consumer_steals_work_with_python_consumers() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-steal");
    let cursor_name = format!("{name}-c");
    let ready_name = format!("{name}-r");
    let _cleanup = ShmCleanup::new()
        .segment(&name)
        .segment(&cursor_name)
        .segment(&ready_name);
    const N: u64 = 3000;
    let q = SlickQueue::<u64>::create(&name, 4096).unwrap();
    let cursor = SharedCursor::create(&cursor_name, q.next_index()).unwrap();
    // Each Python consumer increments this once it is attached.
    let ready = SharedCursor::create(&ready_name, 0).unwrap();
    let pythons: Vec<_> = (0..2)
        .map(|_| {
            spawn_py(
                &py,
                r#"
name, cname, rname, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
q = open_existing(name, 8)
shm = _open_shm(cname, create=False)
cursor = AtomicCursor(shm.buf, 0)
rshm = _open_shm(rname, create=False)
ready = AtomicCursor(rshm.buf, 0)
while not ready.compare_exchange_weak(ready.load(), ready.load() + 1)[0]:
    pass
ready.release(); rshm.close()
mine = []
while True:
    data, size, idx = q.read(cursor)
    if data is not None:
        mine.extend(value(data[k * 8:(k + 1) * 8], 8) for k in range(size))
        continue
    if cursor.load() >= n:
        break
    check_deadline("stealing")
    time.sleep(0.0002)
cursor.release()
shm.close()
q.close()
print(" ".join(map(str, mine)))
"#,
                &[&name, &cursor_name, &ready_name, &N.to_string()],
            )
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || ready.load() == 2),
        "the Python consumers did not attach"
    );
    let mut rust = q.shared_consumer(cursor.clone()).unwrap();
    let rust_consumer = std::thread::spawn(move || {
        let mut mine = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match rust.recv_timeout(Duration::from_millis(10)) {
                Ok(v) => mine.push(v),
                Err(RecvTimeoutError::Timeout) if rust.cursor().load() >= N => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "stealing did not finish");
        }
        mine
    });
    let tx = q.producer().unwrap();
    for v in 0..N {
        tx.send(&v).unwrap();
        if v % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut all = rust_consumer.join().unwrap();
    let rust_share = all.len();
    assert!(rust_share > 0, "the Rust consumer took no part");
    for p in pythons {
        all.extend(
            p.success(TIMEOUT)
                .split_whitespace()
                .map(|s| s.parse::<u64>().unwrap()),
        );
    }
    assert!(all.len() > rust_share, "the Python consumers took no part");
    assert_eq!(
        all.len() as u64,
        N,
        "each item exactly once (rust took {rust_share})"
    );
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique, (0..N).collect::<HashSet<_>>());
}

#[test]
fn read_last_across_languages() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-last");
    let _cleanup = ShmCleanup::new().segment(&name);
    // Python creates and publishes; Rust reads the last; Rust publishes; Python reads.
    let created = spawn_py(
        &py,
        r#"
name = sys.argv[1]
q = SlickQueue(name=name, size=16, element_size=8)
for v in range(20):
    send(q, [v], 8)
send(q, [100, 101, 102], 8)
q.close()
print("ok")
"#,
        &[&name],
    )
    .success(TIMEOUT);
    assert_eq!(created.trim(), "ok");
    let q = SlickQueue::<u64>::open(&name).unwrap();
    assert_eq!(q.latest(), Some(102));
    let mut bytes = Vec::new();
    let info = q.ring().read_last(&mut bytes).unwrap();
    assert_eq!(info.count, 3);
    assert_eq!(bytes.len(), 24);
    q.producer().unwrap().send(&777).unwrap();
    assert_eq!(q.latest(), Some(777));
    let out = spawn_py(
        &py,
        r#"
q = open_existing(sys.argv[1], 8)
data, size = q.read_last()
print(value(data, 8), size)
q.close()
"#,
        &[&name],
    )
    .success(TIMEOUT);
    assert_eq!(out.trim(), "777 1");
}

/// Python produces batches of 3 into a ring of 8 (wrapping every few batches), one at a
/// time: it waits for Rust's acknowledgement on a second queue before the next.
#[test]
fn python_batches_across_a_wrap_to_rust() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-pywrap");
    let ack = format!("{name}-ack");
    let _cleanup = ShmCleanup::new().segment(&name).segment(&ack);
    const BATCHES: u64 = 10;
    let q = SlickQueue::<u64>::create(&name, 8).unwrap();
    let acks = SlickQueue::<u64>::create(&ack, 16).unwrap();
    let mut rx = q.consumer().unwrap();
    let ack_tx = acks.producer().unwrap();
    let producer = spawn_py(
        &py,
        r#"
name, ackname, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = open_existing(name, 8)
acks = open_existing(ackname, 8)
starts, aidx = [], 0
for b in range(batches):
    starts.append(send(q, [b * 10 + k for k in range(3)], 8))
    data, size, aidx = read_one(acks, aidx, "ack %d" % b)
    assert value(data, 8) == b
acks.close(); q.close()
print(" ".join(map(str, starts)))
"#,
        &[&name, &ack, &BATCHES.to_string()],
    );
    let mut buf = [0u64; 3];
    for b in 0..BATCHES {
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = rx.recv_into_deadline(&mut buf, fastipc::Deadline::after(TIMEOUT));
            got.extend_from_slice(&buf[..n.unwrap()]);
        }
        assert_eq!(got, [b * 10, b * 10 + 1, b * 10 + 2]);
        ack_tx.send(&b).unwrap();
    }
    let starts = producer.success(TIMEOUT);
    // 0, 3, then 6 + 3 > 8 wraps to 8, 11, 14 -> 16, ...: the batches crossed the end.
    assert!(starts.starts_with("0 3 8 11 16 19 24"), "{starts}");
}

/// Rust sends batches of 3 into a ring of 8 with `send_batch`, one at a time; Python
/// reads each as one batch (following the wrap markers) and acknowledges it.
#[test]
fn rust_batches_across_a_wrap_to_python() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-rswrap");
    let ack = format!("{name}-ack");
    let _cleanup = ShmCleanup::new().segment(&name).segment(&ack);
    const BATCHES: u64 = 10;
    let q = SlickQueue::<u64>::create(&name, 8).unwrap();
    let acks = SlickQueue::<u64>::create(&ack, 16).unwrap();
    let tx = q.producer().unwrap();
    let mut ack_rx = acks.consumer().unwrap();
    let consumer = spawn_py(
        &py,
        r#"
name, ackname, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = open_existing(name, 8)
acks = open_existing(ackname, 8)
idx, seen = 0, []
for b in range(batches):
    data, size, idx = read_one(q, idx, "batch %d" % b)
    assert size == 3, size
    vals = [value(data[k * 8:(k + 1) * 8], 8) for k in range(3)]
    assert vals == [b * 10 + k for k in range(3)], vals
    seen.append(idx - 3)
    send(acks, [b], 8)
print(" ".join(map(str, seen)), "lost", q.loss_count())
acks.close(); q.close()
"#,
        &[&name, &ack, &BATCHES.to_string()],
    );
    for b in 0..BATCHES {
        tx.send_batch(&[b * 10, b * 10 + 1, b * 10 + 2]).unwrap();
        assert_eq!(ack_rx.recv_timeout(TIMEOUT), Ok(b));
    }
    let out = consumer.success(TIMEOUT);
    assert!(out.starts_with("0 3 8 11 16 19 24"), "{out}");
    assert!(out.trim().ends_with("lost 0"), "{out}");
}

#[test]
fn sleeping_rust_consumer_receives_from_a_python_producer() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-sleep");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 64).unwrap();
    // Go to sleep at once; the default poll interval re-checks every millisecond.
    let strategy = WaitStrategy::default().spins(0).yields(0);
    let mut rx = q.consumer().unwrap().with_wait_strategy(strategy);
    let consumer = std::thread::spawn(move || rx.recv_timeout(TIMEOUT));
    assert!(wait_until(Duration::from_secs(30), || {
        q.ring().header().sleepers == 1
    }));
    spawn_py(
        &py,
        r#"
q = open_existing(sys.argv[1], 8)
send(q, [31337], 8)
q.close()
"#,
        &[&name],
    )
    .success(TIMEOUT);
    assert_eq!(consumer.join().unwrap(), Ok(31337));
    assert_eq!(
        q.ring().header().wake_seq,
        0,
        "nobody woke the consumer: it found the message by itself"
    );
}

/// A pending `recv_async` re-polls every `WaitStrategy::poll` (1 ms) wherever a producer
/// that never wakes anyone may publish, and a Python producer's message reaches it then:
/// on a queue Python made (no endpoint table), on a fastipc queue where no fastipc
/// producer ever registered, and on one with a live fastipc producer whose consumer
/// declared `peer_producers(true)`. The Python script sends once it sees the receive's
/// "waiters present" flag (header byte 60), so the receive is pending when it comes.
#[test]
fn a_pending_async_receive_is_reached_by_a_python_producer() {
    use async_support::{block_on, poll_once};
    use std::task::Poll;
    let Some(py) = python() else { return };
    let body = r#"
name, how = sys.argv[1], sys.argv[2]
q = SlickQueue(name=name, size=64, element_size=8) if how == "create" else open_existing(name, 8)
while struct.unpack_from("<I", q._buf, 60)[0] == 0:
    check_deadline("no pending receive")
    time.sleep(0.001)
send(q, [31337], 8)
q.close()
print("sent")
"#;
    for case in ["python-made", "no-fastipc-producer", "declared-peers"] {
        let name = unique_name("qi-async");
        let _cleanup = ShmCleanup::new().segment(&name);
        let made_here = case != "python-made";
        let q = if made_here {
            Some(SlickQueue::<u64>::create(&name, 64).unwrap())
        } else {
            None
        };
        let how = if made_here { "open" } else { "create" };
        let producer = spawn_py(&py, body, &[&name, how]);
        assert!(wait_until(Duration::from_secs(30), || {
            Ring::open(&name, Some(8)).is_ok()
        }));
        let q = q.unwrap_or_else(|| SlickQueue::<u64>::open(&name).unwrap());
        // Header flags bit 0: the endpoint table.
        assert_eq!(q.ring().header().flags & 1 != 0, made_here, "{case}");
        // A fastipc producer that never sends: registered, so only the declaration makes
        // the receive re-poll.
        let _tx = (case == "declared-peers").then(|| q.producer().unwrap());
        let strategy = WaitStrategy::default().peer_producers(case == "declared-peers");
        let mut rx = q.consumer().unwrap().with_wait_strategy(strategy);
        let mut fut = rx.recv_async();
        assert_eq!(poll_once(&mut fut), Poll::Pending, "{case}");
        assert_eq!(block_on(fut, TIMEOUT), Ok(31337), "{case}");
        assert!(producer.success(TIMEOUT).contains("sent"), "{case}");
        assert_eq!(
            q.ring().header().wake_seq,
            0,
            "{case}: nobody woke the receive: its re-poll found the message"
        );
    }
}

#[test]
fn fingerprint_padding_is_ignored_by_python_and_zero_from_python() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-fp");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 8).unwrap();
    assert_eq!(q.ring().header().fingerprint, u64::FINGERPRINT);
    let out = spawn_py(
        &py,
        r#"
q = open_existing(sys.argv[1], 8)
print(hex(struct.unpack_from("<Q", q._buf, 32)[0]), q.size, q.element_size)
q.close()
"#,
        &[&name],
    )
    .success(TIMEOUT);
    assert_eq!(out.trim(), format!("{:#x} 8 8", u64::FINGERPRINT));
}

/// A lossless queue made by fastipc (flags word and endpoint table after the data) is a
/// plain queue to slick-queue-py: a Python producer and a Python consumer use it as
/// before. They are not registered, so a Python consumer is not protected, and a Python
/// producer does not wait (docs: peers are lossy); this checks only what is documented:
/// what Python sends, a registered Rust consumer gets, and what a Rust producer sends
/// within a ring before any fastipc consumer came, Python reads from the oldest.
#[test]
fn python_producer_and_consumer_on_a_lossless_queue() {
    let Some(py) = python() else { return };
    let name = unique_name("qi-lossless");
    let _cleanup = ShmCleanup::new().segment(&name);
    const N: u64 = 500;
    let q = SlickQueue::<u64>::create_with(&name, 1024, fastipc::queue::Mode::Lossless).unwrap();
    assert_eq!(
        q.ring().header().flags,
        0b11,
        "endpoint table and lossless bits"
    );
    // Rust produces N (< capacity, no consumer yet: they wait in the ring); Python
    // consumes from the oldest.
    let tx = q.producer().unwrap();
    for v in 0..N {
        assert_eq!(tx.try_send(&v), Ok(v));
    }
    let consumer = spawn_py(
        &py,
        r#"
name, n = sys.argv[1], int(sys.argv[2])
q = open_existing(name, 8)
idx, got = 0, []
while len(got) < n:
    data, size, idx = read_one(q, idx, "item %d" % len(got))
    for k in range(size):
        got.append(value(data[k * 8:(k + 1) * 8], 8))
assert got == list(range(n)), got[:10]
print("consumed", len(got))
q.close()
"#,
        &[&name, &N.to_string()],
    );
    assert!(consumer.success(TIMEOUT).contains(&format!("consumed {N}")));
    // A registered Rust consumer (it starts at the oldest unread: 0) gets the Rust
    // messages, then what a Python producer sends.
    let mut rx = q.consumer().unwrap();
    for v in 0..N {
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(v));
    }
    let producer = spawn_py(
        &py,
        r#"
name, n = sys.argv[1], int(sys.argv[2])
q = SlickQueue(name=name, size=1024, element_size=8)
for s in range(n):
    send(q, [1000 + s], 8)
q.close()
print("sent")
"#,
        &[&name, &N.to_string()],
    );
    let deadline = Instant::now() + TIMEOUT;
    for s in 0..N {
        let v = loop {
            match rx.recv_deadline(deadline) {
                // Python producers do not register (documented): not final.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(1)),
                other => break other.unwrap(),
            }
        };
        assert_eq!(v, 1000 + s);
    }
    producer.success(TIMEOUT);
}
