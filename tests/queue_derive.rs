//! `#[derive(IpcMessage)]` with `#[ipc(queue = .., capacity = ..)]` against the real
//! queue: the generated `queue()`, `producer()` and `consumer()`.
//!
//! The queue's name is fixed at compile time, so two runs of this file at once (two
//! checkouts tested together) would share it, and one run's cleanup would remove the
//! queue under the other. Each test that uses it holds the named mutex `RUN_LOCK`, so
//! such runs take turns.

use std::time::{Duration, Instant};

use fastipc::named::NamedMutex;
use fastipc::{IpcMessage, Segment};
use fastipc_testkit::{ShmCleanup, exclusive};

const QUEUE: &str = "fipct-queue-derive-ticks";
/// Serialises the runs that use [`QUEUE`].
const RUN_LOCK: &str = "fipct-queue-derive-run";
/// Generous: the machine has two vCPUs shared with other builds.
const LONG: Duration = Duration::from_secs(120);

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(queue = "fipct-queue-derive-ticks", capacity = 64)]
struct DerivedTick {
    ts: u64,
    price: f64,
}

#[test]
fn generated_endpoints_use_the_named_queue() {
    exclusive(RUN_LOCK, LONG, endpoints_round_trip);
}

/// What `generated_endpoints_use_the_named_queue` does holding the run lock: starts
/// afresh (a queue left by a run that was killed is removed), and removes the queue when
/// it ends, even when it fails, before the lock is released.
fn endpoints_round_trip() {
    let _ = fastipc::queue::remove(QUEUE);
    let _cleanup = ShmCleanup::new().segment(QUEUE);
    let q = DerivedTick::queue().unwrap();
    assert_eq!(q.capacity(), 64);
    assert_eq!(q.name(), Some(QUEUE));
    let trailer = q.ring().type_trailer().unwrap();
    assert_eq!(trailer.name, "DerivedTick");
    assert_eq!(trailer.fingerprint, DerivedTick::FINGERPRINT);

    let mut rx = DerivedTick::consumer().unwrap();
    // A value no other run of this test sends (belt and braces: runs take turns).
    let nonce = u64::from(std::process::id()) << 32
        | u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        );
    DerivedTick::producer()
        .unwrap()
        .send(&DerivedTick {
            ts: nonce,
            price: 1.25,
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let t = rx.recv_timeout(left).expect("the message arrives");
        if t.ts == nonce {
            assert_eq!(t.price, 1.25);
            break;
        }
    }
}

/// Another run (another checkout) in the middle of its test, played by this thread: it
/// holds the run lock and uses the queue. The test above waits for the lock, and neither
/// uses nor removes the queue meanwhile; it runs once the lock is released.
#[test]
fn a_run_waits_while_another_run_holds_the_queue() {
    let lock = NamedMutex::open(RUN_LOCK).unwrap();
    let held = match lock.lock_timeout(LONG) {
        Ok(guard) => guard,
        Err(e) => e.into_guard().expect("the run lock within LONG"),
    };
    let other = DerivedTick::queue().unwrap();
    let mut other_rx = DerivedTick::consumer().unwrap();
    let waiting = std::thread::spawn(generated_endpoints_use_the_named_queue);
    // Long enough for the waiting test to run to its end if it did not wait (it takes
    // milliseconds); when it waits, this only delays the check.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!waiting.is_finished(), "it ran without the run lock");
    assert!(
        Segment::exists(QUEUE),
        "the queue was removed under its user"
    );
    DerivedTick::producer()
        .unwrap()
        .send(&DerivedTick { ts: 7, price: 0.5 })
        .unwrap();
    let got = other_rx.recv_timeout(LONG).expect("our own message");
    assert_eq!((got.ts, got.price), (7, 0.5));
    drop((other, other_rx));
    let _ = fastipc::queue::remove(QUEUE);
    drop(held);
    assert!(
        fastipc_testkit::wait_until(LONG, || waiting.is_finished()),
        "the waiting test did not finish after the lock was released"
    );
    waiting.join().expect("the waiting test passes");
}

const SP_QUEUE: &str = "fipct-queue-derive-sp-orders";
/// Serialises the runs that use [`SP_QUEUE`].
const SP_RUN_LOCK: &str = "fipct-queue-derive-sp-run";

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(
    queue = "fipct-queue-derive-sp-orders",
    capacity = 16,
    lossless,
    single_producer
)]
struct DerivedOrder {
    id: u64,
}

/// `#[ipc(single_producer)]`: the generated queue is declared single-producer (and
/// lossless), and the generated `producer()` is its one `SingleProducer`.
#[test]
fn single_producer_attribute_gives_the_one_producer() {
    exclusive(SP_RUN_LOCK, LONG, || {
        let _ = fastipc::queue::remove(SP_QUEUE);
        let _cleanup = ShmCleanup::new().segment(SP_QUEUE);
        let q = DerivedOrder::queue().unwrap();
        assert!(q.is_single_producer());
        assert_eq!(q.mode(), fastipc::queue::Mode::Lossless);
        let tx: fastipc::queue::SingleProducer<DerivedOrder> = DerivedOrder::producer().unwrap();
        assert!(matches!(
            DerivedOrder::producer(),
            Err(fastipc::OpenError::SingleProducerInUse { .. })
        ));
        let mut rx = DerivedOrder::consumer().unwrap();
        tx.send(&DerivedOrder { id: 3 }).unwrap();
        assert_eq!(rx.recv_timeout(LONG), Ok(DerivedOrder { id: 3 }));
        // An ordinary queue of that name would be refused: the declaration is checked.
        let plain = fastipc::SlickQueue::<DerivedOrder>::open_or_create_with(
            SP_QUEUE,
            16,
            fastipc::queue::Mode::Lossless,
        );
        assert!(matches!(
            plain,
            Err(fastipc::OpenError::SingleProducerMismatch { .. })
        ));
    });
}
