//! How a blocking receive waits: spin (yielding every 64 polls, or at every poll when
//! its [`Pace`] has learnt that its producer shares the CPU), then yield (unless the
//! deadline is near: see [`Deadline::allows_yield`]), then sleep on the queue's futex word
//! (header bytes 56..64, see [`layout`](super::layout)) with a bounded poll interval,
//! because C++ and Python producers never wake anyone.

use core::sync::atomic::Ordering::{Acquire, SeqCst};
use std::time::{Duration, Instant};

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
    /// re-checking at least every millisecond. A consumer whose last blocking receive
    /// found its message right after a yield that ran another task on its CPU yields at
    /// every spin round instead (a yield counting as 64 rounds): its producer shares the
    /// CPU, and polling cannot find what that producer has no CPU to publish.
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

/// Spin rounds between two yields while a blocking receive spins, unless its [`Pace`]
/// has learnt that yielding at once pays.
pub(crate) const SPINS_PER_YIELD: u32 = 64;

/// A yield that lasted at least this long ran another task on this CPU before it
/// returned. A yield with nothing else runnable here is one system call (median
/// 0.34–0.59 µs on the reference host, see BENCHMARKS.md); one that ran a process or
/// thread taking its turn on the same CPU lasts two context switches and that task's work
/// (2–3.5 µs there). On a host where a context switch is much faster than 1 µs the
/// same-CPU case may go unnoticed, and the wait keeps yielding every 64 polls.
pub(crate) const YIELD_SWITCHED: Duration = Duration::from_micros(1);

/// How often a consumer's blocking receive yields the CPU while it spins, learnt from how
/// its last wait ended. Each consumer keeps its own.
///
/// A producer on another CPU publishes while the consumer spins, and spinning answers
/// within a poll; a producer on the *same* CPU cannot run until the consumer gives the
/// CPU away, so every poll before the yield is lost time (64 polls were about half of a
/// same-core hand-off). The evidence is how the last wait ended:
///
/// | the message was found | what it says | yield after |
/// |---|---|---|
/// | by the first poll (it was already there) | nothing | unchanged |
/// | by a poll after a spin round | spinning finds messages | 64 polls ([`SPINS_PER_YIELD`]) |
/// | right after a yield that returned at once (under [`YIELD_SWITCHED`]) | the producer ran elsewhere meanwhile | 64 polls |
/// | right after a yield that ran another task on this CPU | the producer needed this CPU | every poll |
/// | in the yield or sleep phases | the producer is slow, not where it runs | unchanged |
///
/// A wrong guess costs one wait: a consumer yielding at every poll whose producer runs
/// elsewhere finds the message after a short yield and goes back to spinning (and pays
/// at most one bare `sched_yield`, 0.3 µs here, meanwhile); one spinning whose producer
/// shares its CPU pays the 64 polls once. On a CPU that other tasks also want, yields
/// run them and a consumer may keep yielding at every poll: it then gives them the CPU
/// rather than spinning over them. A yield counts as the 64 spin rounds it replaces, so
/// the spin phase lasts as many yields either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Spin rounds between two yields: [`SPINS_PER_YIELD`], or 1.
    every: u32,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            every: SPINS_PER_YIELD,
        }
    }
}

/// What came just before the poll that found a message (what [`Pace::learn`] reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Before {
    /// Nothing: the wait's first poll.
    Start,
    /// A spin round.
    Spin,
    /// A yield of the spin phase; `switched`: it lasted [`YIELD_SWITCHED`] or more.
    Yield { switched: bool },
    /// The yield or sleep phases.
    Idle,
}

impl Before {
    /// What a wait that found its message (or its room) right after `self` teaches
    /// ([`Pace`]'s table): yield at every spin round (`Some(1)`), every `spacing` rounds,
    /// or nothing new (`None`). The lossless producers' wait for room (`flow`) learns by
    /// the same rule.
    pub(crate) fn teaches(self, spacing: u32) -> Option<u32> {
        match self {
            Before::Start | Before::Idle => None,
            Before::Spin | Before::Yield { switched: false } => Some(spacing),
            Before::Yield { switched: true } => Some(1),
        }
    }
}

impl Pace {
    /// Adjusts to how a wait ended (the table above).
    pub(crate) fn learn(&mut self, before: Before) {
        if let Some(every) = before.teaches(SPINS_PER_YIELD) {
            self.every = every;
        }
    }

    /// Whether the last wait taught this pace to yield at every poll.
    #[cfg(test)]
    pub(crate) fn yields_at_once(&self) -> bool {
        self.every == 1
    }

    /// A pace that yields at every poll (what a same-CPU hand-off teaches).
    #[cfg(test)]
    pub(crate) fn at_once() -> Pace {
        Pace { every: 1 }
    }
}

/// Yields the CPU, timed: what a wait that finds its message (or its room) right after
/// it learns ([`Before::Yield`], `switched` when the yield lasted [`YIELD_SWITCHED`] or
/// more, that is, ran another task on this CPU).
pub(crate) fn timed_yield() -> Before {
    let start = Instant::now();
    std::thread::yield_now();
    Before::Yield {
        switched: start.elapsed() >= YIELD_SWITCHED,
    }
}

/// Calls `attempt` until it returns anything but `Err(Empty)` or `deadline` passes
/// (`Err(Timeout)`), waiting between attempts as `strategy` says, yielding while it
/// spins as `pace` has learnt (and teaching it how this wait ended). `attempt(true)` is
/// the re-check just before a sleep: consumers also check there (off the fast path)
/// whether the queue was reset under them.
pub(crate) fn wait_for<R>(
    raw: &RawRing,
    strategy: &WaitStrategy,
    deadline: Deadline,
    pace: &mut Pace,
    mut attempt: impl FnMut(bool) -> Result<R, TryRecvError>,
) -> Result<R, RecvTimeoutError> {
    // Spin-phase rounds (a yield counting as the `SPINS_PER_YIELD` rounds it replaces).
    let mut round: u64 = 0;
    // Yields of the yield phase so far.
    let mut idle_yields: u32 = 0;
    let mut before = Before::Start;
    let every = u64::from(pace.every);
    loop {
        match attempt(false) {
            Err(TryRecvError::Empty) => {}
            other => {
                pace.learn(before);
                return other.map_err(TryRecvError::timed_out);
            }
        }
        round += 1;
        if strategy.never_sleeps() {
            core::hint::spin_loop();
            if round.is_multiple_of(u64::from(SPINS_PER_YIELD)) && deadline.has_passed() {
                return Err(RecvTimeoutError::Timeout);
            }
            continue;
        }
        if round <= u64::from(strategy.spins) {
            core::hint::spin_loop();
            before = Before::Spin;
            if round.is_multiple_of(every) {
                if deadline.has_passed() {
                    return Err(RecvTimeoutError::Timeout);
                }
                // Give the CPU away now and then while spinning: a producer that runs on
                // this same CPU cannot publish while we spin, and `sched_yield` returns
                // at once when nothing else is runnable here.
                // Not near the deadline: under load a yield may not come back for a
                // scheduler slice (see `Deadline::allows_yield`).
                if deadline.allows_yield() {
                    before = timed_yield();
                    round += u64::from(SPINS_PER_YIELD) - every;
                }
            }
            continue;
        }
        before = Before::Idle;
        if deadline.has_passed() {
            return Err(RecvTimeoutError::Timeout);
        }
        // Near the deadline, sleep on the futex (absolute deadline) rather than yield:
        // a yield under load may not come back before it.
        if idle_yields < strategy.yields && deadline.allows_yield() {
            idle_yields += 1;
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
