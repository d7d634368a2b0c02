//! Clocks: absolute monotonic deadlines for futex waits, and the realtime clock that the
//! primitives record as "last acquired" (informative only).
//!
//! Deadlines are absolute `CLOCK_MONOTONIC` instants, so a timeout covers a whole
//! operation however many spurious wake-ups, signals or retries it goes through.

use std::time::{Duration, Instant};

use rustix::time::{ClockId, Timespec, clock_gettime};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Deadlines further away than this are treated as "never": a caller that passes
/// `Duration::MAX` means "wait forever", and no arithmetic may overflow on the way.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How much time must remain before a deadline for a wait to yield the CPU rather than
/// sleep (see [`Deadline::allows_yield`]): longer than the scheduler slice a busy core
/// may hand to another task (CFS/EEVDF: up to a few milliseconds).
pub(crate) const YIELD_SLACK: Duration = Duration::from_millis(5);

/// An absolute point on the monotonic clock (`CLOCK_MONOTONIC`), or "never".
///
/// Build one with [`Deadline::after`] from a timeout, then pass it down unchanged through
/// every retry: the remaining time shrinks by itself.
///
/// ```
/// use std::time::Duration;
/// use fastipc::Deadline;
///
/// let d = Deadline::after(Duration::from_millis(5));
/// assert!(!d.is_never());
/// assert!(d.remaining() <= Duration::from_millis(5));
/// assert!(Deadline::after(Duration::MAX).is_never());
/// assert!(Deadline::after(Duration::ZERO).has_passed());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// `None` means never.
    at: Option<Timespec>,
}

impl From<Instant> for Deadline {
    /// [`Deadline::from_instant`]: `recv_deadline(Instant::now() + d)` works.
    fn from(instant: Instant) -> Deadline {
        Deadline::from_instant(instant)
    }
}

impl Deadline {
    /// A deadline that never passes.
    pub const NEVER: Deadline = Deadline { at: None };

    /// The deadline `timeout` from now. Timeouts longer than a century mean "never".
    pub fn after(timeout: Duration) -> Deadline {
        if timeout >= FOREVER {
            return Deadline::NEVER;
        }
        let now = monotonic_now();
        Deadline {
            at: Some(add(now, timeout)),
        }
    }

    /// The deadline that corresponds to a [`std::time::Instant`] (which is also
    /// `CLOCK_MONOTONIC` on Linux). An instant in the past gives a deadline that has passed.
    pub fn from_instant(instant: Instant) -> Deadline {
        Deadline::after(instant.saturating_duration_since(Instant::now()))
    }

    /// A deadline `timeout` from now, or never when `timeout` is `None`.
    pub fn from_timeout(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// Whether this deadline is "never".
    pub fn is_never(&self) -> bool {
        self.at.is_none()
    }

    /// Whether the deadline has passed (never true for [`Deadline::NEVER`]).
    pub fn has_passed(&self) -> bool {
        match self.at {
            None => false,
            Some(at) => !later(&at, &monotonic_now()),
        }
    }

    /// Time left until the deadline: zero once passed, `Duration::MAX` for never.
    pub fn remaining(&self) -> Duration {
        match self.at {
            None => Duration::MAX,
            Some(at) => {
                let now = monotonic_now();
                if later(&at, &now) {
                    to_duration(&at).saturating_sub(to_duration(&now))
                } else {
                    Duration::ZERO
                }
            }
        }
    }

    /// Whether a `sched_yield` still fits before the deadline: always for
    /// [`Deadline::NEVER`], else when more than 5 ms remain. Under CPU load a
    /// yield can give the core away for a whole scheduler slice (milliseconds), so a
    /// spin-then-yield wait near its deadline must sleep (futex, absolute deadline)
    /// instead, or a 1 ms timeout returns milliseconds late.
    pub(crate) fn allows_yield(&self) -> bool {
        self.remaining() > YIELD_SLACK
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (None, _) => other,
            (_, None) => self,
            (Some(a), Some(b)) => {
                if later(&a, &b) {
                    other
                } else {
                    self
                }
            }
        }
    }

    /// The absolute `CLOCK_MONOTONIC` time, for `FUTEX_WAIT_BITSET`; `None` for never.
    pub(crate) fn as_timespec(&self) -> Option<&Timespec> {
        self.at.as_ref()
    }
}

/// The current `CLOCK_MONOTONIC` time.
fn monotonic_now() -> Timespec {
    clock_gettime(ClockId::Monotonic)
}

/// `CLOCK_REALTIME` in nanoseconds since the Unix epoch, as the Python peer records it in
/// the primitives' `last_acquired_ns` fields. Informative only; never used for timing.
///
/// Under Miri, which cannot read `CLOCK_REALTIME` under isolation: a stand-in (see the
/// body), since nothing depends on the value.
pub(crate) fn realtime_ns() -> u64 {
    // Miri's isolation has no realtime clock: a stand-in (2021-01-01 plus the monotonic
    // clock), as informative as the real one for a test run.
    #[cfg(miri)]
    let ts = {
        let mono = clock_gettime(ClockId::Monotonic);
        Timespec {
            tv_sec: 1_609_459_200 + mono.tv_sec,
            tv_nsec: mono.tv_nsec,
        }
    };
    #[cfg(not(miri))]
    let ts = clock_gettime(ClockId::Realtime);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(NANOS_PER_SEC).saturating_add(nanos)
}

fn add(ts: Timespec, d: Duration) -> Timespec {
    // `d` < FOREVER (about 3e9 s), so neither field overflows an i64.
    let mut secs = ts.tv_sec + d.as_secs() as i64;
    let mut nanos = ts.tv_nsec + i64::from(d.subsec_nanos());
    if nanos >= NANOS_PER_SEC as i64 {
        nanos -= NANOS_PER_SEC as i64;
        secs += 1;
    }
    Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    }
}

/// `a > b`.
fn later(a: &Timespec, b: &Timespec) -> bool {
    (a.tv_sec, a.tv_nsec) > (b.tv_sec, b.tv_nsec)
}

fn to_duration(ts: &Timespec) -> Duration {
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_has_passed_at_once() {
        assert!(Deadline::after(Duration::ZERO).has_passed());
        assert_eq!(Deadline::after(Duration::ZERO).remaining(), Duration::ZERO);
    }

    #[test]
    fn huge_timeouts_mean_never_without_overflow() {
        for t in [Duration::MAX, FOREVER, Duration::from_secs(u64::MAX)] {
            let d = Deadline::after(t);
            assert!(d.is_never());
            assert!(!d.has_passed());
            assert_eq!(d.remaining(), Duration::MAX);
        }
    }

    #[test]
    fn remaining_shrinks_and_passes() {
        let d = Deadline::after(Duration::from_millis(20));
        let r = d.remaining();
        assert!(r <= Duration::from_millis(20) && r > Duration::ZERO);
        std::thread::sleep(Duration::from_millis(25));
        assert!(d.has_passed());
    }

    #[test]
    fn nanosecond_carry() {
        let ts = Timespec {
            tv_sec: 1,
            tv_nsec: 999_999_999,
        };
        let t = add(ts, Duration::new(0, 2));
        assert_eq!((t.tv_sec, t.tv_nsec), (2, 1));
    }

    #[test]
    fn min_prefers_the_earlier() {
        let a = Deadline::after(Duration::from_secs(1));
        let b = Deadline::after(Duration::from_secs(60));
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        assert_eq!(Deadline::NEVER.min(a), a);
        assert_eq!(a.min(Deadline::NEVER), a);
    }

    #[test]
    fn from_instant_in_the_past_has_passed() {
        let past = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        assert!(Deadline::from_instant(past).has_passed());
    }

    #[test]
    fn an_instant_converts_to_the_same_deadline() {
        let past: Deadline = (Instant::now() - Duration::from_millis(1)).into();
        assert!(past.has_passed());
        let later: Deadline = (Instant::now() + Duration::from_secs(60)).into();
        assert!(!later.has_passed() && !later.is_never());
        let r = later.remaining();
        assert!(r <= Duration::from_secs(60) && r > Duration::from_secs(30));
    }

    #[test]
    fn realtime_is_after_2020() {
        assert!(realtime_ns() > 1_577_836_800 * NANOS_PER_SEC);
    }
}
