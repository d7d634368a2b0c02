//! The benchmark runs end to end at a small scale (`--smoke`), so CI keeps it working;
//! the figures it prints are not checked (speed is not asserted).

use std::process::Command;
use std::time::Duration;

use fastipc_testkit::ChildGuard;

#[test]
fn bridge_bench_smoke_prints_every_row() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bridge-bench"));
    cmd.arg("--smoke");
    let out = ChildGuard::spawn(cmd).success(Duration::from_secs(300));
    for row in [
        "| plain Zenoh, one message per payload (express) | 8 B | 2000 |",
        "| plain Zenoh, one put per payload (Zenoh batching) | 64 B | 2000 |",
        "| fastipc bridge (queue to queue, batched) | 8 B | 2000 |",
        "| fastipc bridge (queue to queue, batched) | 64 B | 2000 |",
        "| plain Zenoh (express) | 64 B |",
        "| fastipc bridge (queue to queue, 1 ms batch window) | 64 B |",
    ] {
        assert!(out.contains(row), "missing {row:?} in:\n{out}");
    }
    assert!(
        !out.contains("NaN"),
        "every latency row has samples:\n{out}"
    );
}
