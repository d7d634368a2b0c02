//! `#[derive(IpcMessage)]` end to end between real processes (the `peer-derive` binary):
//! a producer and a consumer process exchange a derived message through the generated
//! `Quote::producer()` / `Quote::consumer()`, every value counted and checked; a consumer
//! of another message type on the same queue is refused with an error naming both.
//!
//! The queue's name is fixed at compile time by `#[ipc(queue = ..)]`, so two runs of this
//! file (two checkouts tested at once) would share it. Each test holds the named mutex
//! `RUN_LOCK` while it uses the queue, so such runs take turns.

mod derive_messages;

use std::process::Command;
use std::time::Duration;

use derive_messages::{Other, Quote};
use fastipc::queue::OpenError;
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup};

/// Generous: the machine has two vCPUs shared with other builds.
const LONG: Duration = Duration::from_secs(120);
/// Serialises the runs that use [`QUEUE`].
const RUN_LOCK: &str = "fipct-derive-e2e";
/// The queue of `Quote` (as in its attribute).
const QUEUE: &str = "fipct-derive-e2e-quotes";
/// Quotes exchanged: below the capacity, so nothing may be overwritten.
const N: u64 = 10_000;

fn peer(args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-derive"));
    cmd.args(args);
    ChildGuard::spawn(cmd)
}

/// Runs `test` holding the run lock, and removes the queue when it ends (even when it
/// fails), before the lock is released.
fn exclusive(test: impl FnOnce()) {
    fastipc_testkit::exclusive(RUN_LOCK, LONG, || {
        // A queue left by a run that was killed: start afresh.
        let _ = fastipc::queue::remove(QUEUE);
        let _cleanup = ShmCleanup::new().segment(QUEUE);
        test();
    });
}

#[test]
fn two_processes_exchange_a_derived_message_through_the_generated_endpoints() {
    exclusive(|| {
        let mut consumer = peer(&["consume", &N.to_string(), "60000"]);
        let lines = Lines::of(&mut consumer);
        assert_eq!(lines.next(LONG).as_deref(), Some("ready"));
        let producer = peer(&["produce", &N.to_string()]);
        assert_eq!(producer.success(LONG).trim(), format!("sent {N}"));
        assert_eq!(
            lines.next(LONG).as_deref(),
            Some(format!("received {N}").as_str())
        );
        assert!(consumer.wait_timeout(LONG).is_some_and(|s| s.success()));
        // The generated `queue()` sees what the processes did.
        let q = Quote::queue().unwrap();
        assert_eq!(q.capacity(), 16384);
        assert_eq!(q.next_index(), N);
        assert_eq!(q.latest().map(|quote| quote.seq), Some(N - 1));
    });
}

#[test]
fn a_consumer_of_another_type_is_refused_naming_both_types() {
    exclusive(|| {
        let _queue = Quote::queue().unwrap();
        let message = peer(&["consume-other"]).success(LONG);
        assert!(
            message.contains("Quote") && message.contains("Other"),
            "{message}"
        );
        // The same in this process, as a typed error.
        let err = Other::consumer().unwrap_err();
        assert!(
            matches!(&err, OpenError::TypeMismatch { found, expected, .. }
            if found.contains("Quote") && expected.contains("Other")),
            "{err:?}"
        );
        // And a producer, through `producer()`.
        assert!(matches!(
            Other::producer(),
            Err(OpenError::TypeMismatch { .. })
        ));
    });
}
