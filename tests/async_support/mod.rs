//! Helpers of the async tests: a minimal executor (no runtime), the producer peer, and the
//! check of a received sequence.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use fastipc::SlickQueue;
use fastipc::queue::{Consumer, WaitStrategy};
use fastipc_testkit::ChildGuard;

/// Generous: the machine is shared.
pub const LIMIT: Duration = Duration::from_secs(120);

/// A consumer strategy whose re-poll interval outlasts every test: a receive that no
/// producer wakes hangs, and the test's deadline fails it.
pub fn no_repoll() -> WaitStrategy {
    WaitStrategy::default().poll_interval(Duration::from_secs(3600))
}

/// The minimal executor: polls `fut` on this thread, parking between polls; the waker
/// unparks. Panics when the future is still pending `limit` after the call.
pub fn block_on<F: Future>(fut: F, limit: Duration) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
        assert!(Instant::now() < deadline, "not woken within {limit:?}");
    }
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

/// `peer-queue pace NAME 0 COUNT BURST PAUSE_US`: `COUNT` messages `0..COUNT` in bursts,
/// pausing before each, so that a consumer that keeps up waits and is woken.
pub fn paced_producer(name: &str, count: u64, burst: u64, pause_us: u64) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-queue"));
    cmd.args([
        "pace",
        name,
        "0",
        &count.to_string(),
        &burst.to_string(),
        &pause_us.to_string(),
    ]);
    ChildGuard::spawn(cmd)
}

/// A named queue big enough that `count` messages never lap a consumer (every message
/// must arrive), and its consumer from now on, without re-polling.
pub fn queue_for(name: &str, count: u64) -> (SlickQueue<u64>, Consumer<u64>) {
    let q = SlickQueue::<u64>::create(name, (count as usize).next_power_of_two()).unwrap();
    let rx = q.consumer().unwrap().with_wait_strategy(no_repoll());
    (q, rx)
}

/// `peer-queue consume NAME 1 COUNT BURST PAUSE_US`: reads `COUNT` messages `0..COUNT`
/// from the oldest, checking each, pausing before every `BURST` (so that a small lossless
/// queue fills and its producer waits); prints "ok COUNT".
pub fn paced_consumer(name: &str, count: u64, burst: u64, pause_us: u64) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-queue"));
    cmd.args([
        "consume",
        name,
        "1",
        &count.to_string(),
        &burst.to_string(),
        &pause_us.to_string(),
    ]);
    ChildGuard::spawn(cmd)
}
