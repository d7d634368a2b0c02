//! How a blocking receive waits: spin, then yield (unless the deadline is near: see
//! [`Deadline::allows_yield`]), then sleep on the queue's futex word
//! (header bytes 56..64, see [`layout`](super::layout)) with a bounded poll interval,
//! because C++ and Python producers never wake anyone.

use core::sync::atomic::Ordering::{Acquire, SeqCst};
use std::time::Duration;

use super::raw::RawRing;
use crate::error::{RecvTimeoutError, TryRecvError};
use crate::sys::clock::Deadline;
use crate::sys::futex;

/// How a blocking receive waits for the next message.
///
/// ```
/// use std::time::Duration;
/// use fastipc::queue::WaitStrategy;
///
/// let low_latency = WaitStrategy::busy_spin();
/// let frugal = WaitStrategy::default().spins(0).yields(0).poll_interval(Duration::from_millis(5));
/// assert_eq!(frugal.poll(), Duration::from_millis(5));
/// assert!(low_latency.never_sleeps());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitStrategy {
    /// Polls with a spin hint before yielding; [`SPIN_FOREVER`] never stops spinning.
    spins: u32,
    yields: u32,
    poll: Duration,
    peers: bool,
}

/// The spin count that means "never stop spinning".
const SPIN_FOREVER: u32 = u32::MAX;

impl Default for WaitStrategy {
    /// Spin about 2000 times (tens of microseconds; every 64th round yields the CPU, so a
    /// producer on the same CPU gets to run), yield 16 times, then sleep on the futex,
    /// re-checking at least every millisecond.
    fn default() -> Self {
        WaitStrategy {
            spins: 2000,
            yields: 16,
            poll: Duration::from_millis(1),
            peers: false,
        }
    }
}

impl WaitStrategy {
    /// Never sleeps: spins (checking the deadline) until a message arrives. Lowest
    /// latency; burns a core while waiting. The same as `spins(u32::MAX)`.
    pub fn busy_spin() -> WaitStrategy {
        WaitStrategy::default().spins(SPIN_FOREVER)
    }

    /// Sets how many times to poll with a CPU spin hint before yielding; `u32::MAX`
    /// spins until a message arrives or the deadline passes, never yielding or sleeping.
    pub fn spins(mut self, n: u32) -> WaitStrategy {
        self.spins = n;
        self
    }

    /// Sets how many times to poll with `thread::yield_now` before sleeping.
    pub fn yields(mut self, n: u32) -> WaitStrategy {
        self.yields = n;
        self
    }

    /// Sets the longest sleep between two checks (peers' producers never wake a sleeping
    /// consumer, so this bounds the latency of their messages). Clamped to at least 10 µs.
    pub fn poll_interval(mut self, interval: Duration) -> WaitStrategy {
        self.poll = interval.max(Duration::from_micros(10));
        self
    }

    /// Declares that producers which never wake anyone (C++ or Python peers) may publish
    /// on this queue *alongside fastipc producers*, so that a pending async receive
    /// re-polls every [`poll`](WaitStrategy::poll) even on a queue whose endpoint table
    /// lists live fastipc producers. Without it such a receive re-checks only every
    /// [`ASYNC_IDLE_CHECK`](crate::queue::ASYNC_IDLE_CHECK) (or `poll`, if longer), and a
    /// peer's message waits until then unless a fastipc message comes first. Blocking
    /// receives always re-check every `poll`. See [`Consumer::recv_async`](crate::queue::Consumer::recv_async).
    pub fn peer_producers(mut self, peers: bool) -> WaitStrategy {
        self.peers = peers;
        self
    }

    /// Whether [`WaitStrategy::peer_producers`] was declared.
    pub fn expects_peer_producers(&self) -> bool {
        self.peers
    }

    /// The longest sleep between two checks.
    pub fn poll(&self) -> Duration {
        self.poll
    }

    /// Whether this strategy spins forever rather than sleeping.
    pub fn never_sleeps(&self) -> bool {
        self.spins == SPIN_FOREVER
    }
}

/// Calls `attempt` until it returns anything but `Err(Empty)` or `deadline` passes
/// (`Err(Timeout)`), waiting between attempts as `strategy` says. `attempt(true)` is the
/// re-check just before a sleep: consumers also check there (off the fast path) whether
/// the queue was reset under them.
pub(crate) fn wait_for<R>(
    raw: &RawRing,
    strategy: &WaitStrategy,
    deadline: Deadline,
    mut attempt: impl FnMut(bool) -> Result<R, TryRecvError>,
) -> Result<R, RecvTimeoutError> {
    let mut round: u64 = 0;
    loop {
        match attempt(false) {
            Err(TryRecvError::Empty) => {}
            other => return other.map_err(TryRecvError::timed_out),
        }
        round += 1;
        if strategy.never_sleeps() || round <= u64::from(strategy.spins) {
            core::hint::spin_loop();
            if round.is_multiple_of(64) {
                if deadline.has_passed() {
                    return Err(RecvTimeoutError::Timeout);
                }
                // Give the CPU away now and then while spinning: a producer that runs on
                // this same CPU cannot publish while we spin, and `sched_yield` returns
                // at once when nothing else is runnable here.
                // Not near the deadline: under load a yield may not come back for a
                // scheduler slice (see `Deadline::allows_yield`).
                if !strategy.never_sleeps() && deadline.allows_yield() {
                    std::thread::yield_now();
                }
            }
            continue;
        }
        if deadline.has_passed() {
            return Err(RecvTimeoutError::Timeout);
        }
        // Near the deadline, sleep on the futex (absolute deadline) rather than yield:
        // a yield under load may not come back before it.
        if round <= u64::from(strategy.spins) + u64::from(strategy.yields)
            && deadline.allows_yield()
        {
            std::thread::yield_now();
            continue;
        }
        if let Some(r) = sleep_once(raw, strategy, deadline, &mut attempt) {
            return r;
        }
    }
}

/// Sets the "waiters present" flag, re-checks, and sleeps until woken or the poll
/// interval (or the deadline) passes. `Some(result)` when the re-check found something.
/// The flag is left for the producer that wakes to clear (raw.rs, "Wake protocol").
fn sleep_once<R>(
    raw: &RawRing,
    strategy: &WaitStrategy,
    deadline: Deadline,
    attempt: &mut impl FnMut(bool) -> Result<R, TryRecvError>,
) -> Option<Result<R, RecvTimeoutError>> {
    let header = raw.header();
    // Read before registering: a wake-up after this point changes the word, and
    // FUTEX_WAIT then returns at once instead of sleeping.
    let seq = header.wake_seq.load(Acquire);
    header.sleepers.store(1, SeqCst);
    // The consumer's half of the SeqCst handshake (raw.rs, "Wake protocol"): after this
    // load, either a producer that published before it is visible to the re-check below,
    // or that producer (or a later one) will find the flag set and wake us.
    let _ = header.last_published.load(SeqCst);
    let found = match attempt(true) {
        Err(TryRecvError::Empty) => None,
        other => Some(other.map_err(TryRecvError::timed_out)),
    };
    if found.is_none() {
        let until = deadline.min(Deadline::after(strategy.poll));
        futex::wait(&header.wake_seq, seq, until, raw.scope());
    }
    found
}
