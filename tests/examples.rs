//! Runs every example in `examples/` as a user would, with a timeout, and checks what it
//! prints and its exit status, so CI proves they work.
//!
//! Finding the binaries: `cargo test` builds the examples (it compiles them to check they
//! build) into `target/<profile>/examples/NAME`, next to the `deps/` folder this test runs
//! from. So that a filtered run (`cargo test --test examples`) never runs a stale or
//! missing binary, the test first runs `cargo build --examples` for the same profile;
//! when everything is built already, that costs a fraction of a second.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use fastipc_testkit::ChildGuard;

/// Generous: an example waits its turn if another run of it holds its run lock, and the
/// machine is shared.
const LIMIT: Duration = Duration::from_secs(180);

/// `target/<profile>/examples/NAME`, built up to date.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/examples-HASH -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--examples", "--quiet", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let out = ChildGuard::spawn(cmd).output(LIMIT);
        assert!(
            out.status.success(),
            "cargo build --examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs example `name` with `args`; returns its stdout, after checking it succeeded.
fn run(name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(example(name));
    cmd.args(args);
    ChildGuard::spawn(cmd).success(LIMIT)
}

#[test]
fn quickstart_exchanges_every_tick_between_two_processes() {
    let out = run("quickstart", &["--millis", "200"]);
    let sent = out
        .lines()
        .find_map(|l| l.strip_prefix("producer: sent "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no producer report in:\n{out}"));
    assert!(
        out.contains(&format!("consumer: received {sent} ticks")),
        "{out}"
    );
    assert!(out.contains("0 lost, 0 corrupt, 0 out of order"), "{out}");
    assert!(out.contains("quickstart: done, queues removed"), "{out}");
}

/// Lossless: the producer may start first; its ticks wait for the consumer.
#[test]
fn quickstart_works_with_the_producer_started_first() {
    let out = run("quickstart", &["--millis", "200", "--producer-first"]);
    assert!(out.contains("0 lost, 0 corrupt, 0 out of order"), "{out}");
    assert!(out.contains("quickstart: done, queues removed"), "{out}");
}

#[test]
fn shared_cell_example_loses_no_update() {
    let out = run("shared_cell", &["--updates", "20000"]);
    assert!(
        out.contains("shared_cell: 40000 updates by two processes"),
        "{out}"
    );
    assert!(out.contains("by_worker: [20000, 20000]"), "{out}");
    assert!(out.contains("shared_cell: no update lost"), "{out}");
}

#[test]
fn sync_example_hands_every_job_to_the_worker() {
    let out = run("sync", &["--jobs", "7"]);
    for job in 0..7 {
        assert!(out.contains(&format!("worker: took job {job}")), "{out}");
    }
    assert!(
        out.contains("launcher: the worker took all 7 jobs"),
        "{out}"
    );
}

#[test]
fn async_consumer_example_receives_every_message_next_to_a_ticker() {
    let out = run("async_consumer", &["--count", "3000"]);
    assert!(
        out.contains("consumer: received 3000 messages in order"),
        "{out}"
    );
    assert!(out.contains(" ticks on the same thread meanwhile"), "{out}");
    // futex_waitv, or the polling fallback on a kernel before 5.16: one thread either way.
    assert!(out.contains("waiter: 1 thread(s), "), "{out}");
}

#[test]
fn async_consumer_example_with_the_polling_fallback_forced_by_the_environment() {
    let mut cmd = Command::new(example("async_consumer"));
    cmd.args(["--count", "1000"]).env("FASTIPC_WAITER", "poll");
    let out = ChildGuard::spawn(cmd).success(LIMIT);
    assert!(
        out.contains("consumer: received 1000 messages in order"),
        "{out}"
    );
    assert!(
        out.contains("waiter: 1 thread(s), polling fallback"),
        "{out}"
    );
}
