//! Helpers for the unit tests of every module.

use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test (of this or a concurrent run) uses: `fastipc-unit-TAG-PID-N`.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "fastipc-unit-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `fut` to completion on this thread: a minimal executor that parks the thread
/// between polls and is unparked by the waker (the async tests' runtime). Panics if the
/// future is still pending `limit` after the call: a wake-up that never came fails the
/// test instead of being rescued by a late poll.
pub(crate) fn block_on<F: core::future::Future>(fut: F, limit: std::time::Duration) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = core::pin::pin!(fut);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        assert!(
            std::time::Instant::now() < deadline,
            "the future was not woken within {limit:?}"
        );
    }
}

/// Polls `fut` once with a waker that does nothing.
pub(crate) fn poll_once<F: core::future::Future + Unpin>(
    fut: &mut F,
) -> core::task::Poll<F::Output> {
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    core::pin::Pin::new(fut).poll(&mut cx)
}
