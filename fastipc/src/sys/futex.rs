//! The only futex calls in fastipc.
//!
//! A futex is a 32-bit word that threads (or processes, when the word lives in shared
//! memory) sleep on until another one wakes them. Two operations are wrapped here:
//!
//! - [`wait`] sleeps while the word still holds `expected`, until woken or until an
//!   absolute [`Deadline`] passes. It is `FUTEX_WAIT_BITSET` with `FUTEX_BITSET_MATCH_ANY`,
//!   the form of `FUTEX_WAIT` that takes an absolute `CLOCK_MONOTONIC` time, so a caller
//!   looping over spurious wake-ups keeps one fixed deadline. `EINTR` is retried inside.
//! - [`wake`] wakes up to `n` sleepers on the word.
//!
//! [`Scope::Shared`] is required whenever the word may be waited on from two processes
//! (it is keyed by the physical page); [`Scope::Private`] is a little cheaper and only
//! valid when every waiter and waker is a thread of one process.
//!
//! A `FUTEX_WAKE` with nobody waiting still costs a syscall (~180 ns on the reference
//! machine): callers keep a "someone may be sleeping" state so that they skip it.

use core::num::NonZeroU32;
use core::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use super::clock::Deadline;

/// Who may wait on or wake a futex word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Any process mapping the word (the word lives in shared memory). The default.
    #[default]
    Shared,
    /// Only threads of the calling process (`FUTEX_PRIVATE_FLAG`).
    Private,
}

impl Scope {
    fn flags(self) -> futex::Flags {
        match self {
            Scope::Shared => futex::Flags::empty(),
            Scope::Private => futex::Flags::PRIVATE,
        }
    }
}

/// How a [`wait`] ended. Either way, the caller re-reads the word: futex wake-ups may be
/// spurious and say nothing about the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitOutcome {
    /// Woken by [`wake`], or the word no longer held `expected` when the call started,
    /// or a spurious wake-up.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// `FUTEX_BITSET_MATCH_ANY`: match every waker.
const MATCH_ANY: NonZeroU32 = NonZeroU32::MAX;

/// Sleeps while `*word == expected`, until woken or until `deadline` passes.
///
/// Returns at once with [`WaitOutcome::Woken`] if the word does not hold `expected`
/// (the kernel checks it atomically with going to sleep, so no wake-up is lost between
/// the caller's last load and this call), and at once with [`WaitOutcome::TimedOut`] if
/// the deadline has already passed. Signals (`EINTR`) are retried with the same absolute
/// deadline. Should the kernel refuse the wait with any other error (a seccomp filter
/// forbidding futexes), it sleeps a millisecond and reports [`WaitOutcome::Woken`], so
/// callers poll instead of spinning; debug builds assert first. (Public as
/// [`FutexWord`](crate::FutexWord); the unit tests below show both outcomes.)
pub(crate) fn wait(
    word: &AtomicU32,
    expected: u32,
    deadline: Deadline,
    scope: Scope,
) -> WaitOutcome {
    loop {
        if deadline.has_passed() {
            return WaitOutcome::TimedOut;
        }
        match futex::wait_bitset(
            word,
            scope.flags(),
            expected,
            deadline.as_timespec(),
            MATCH_ANY,
        ) {
            Ok(()) | Err(Errno::AGAIN) => return WaitOutcome::Woken,
            Err(Errno::TIMEDOUT) => return WaitOutcome::TimedOut,
            Err(Errno::INTR) => continue,
            Err(e) => {
                debug_assert!(false, "FUTEX_WAIT_BITSET failed unexpectedly: {e}");
                return unexpected_error(deadline);
            }
        }
    }
}

/// The pause after an unexpected futex error (see [`unexpected_error`]).
const ERROR_PAUSE: Duration = Duration::from_millis(1);

/// What a wait does when the kernel refuses it with an error it has no reason to give
/// (with a valid `&AtomicU32` and a normalised timespec): `ENOSYS` or `EPERM` from a
/// seccomp filter that forbids futexes, say. Returning at once would turn every caller's
/// wait loop into a busy spin, so it sleeps [`ERROR_PAUSE`] (never past the deadline)
/// and reports a spurious wake-up: the caller re-checks its condition and its deadline
/// and waits again, polling at about a kilohertz instead of sleeping. Debug builds assert
/// first, so that such an environment is noticed in testing.
#[cold]
fn unexpected_error(deadline: Deadline) -> WaitOutcome {
    let pause = ERROR_PAUSE.min(deadline.remaining());
    if pause.is_zero() {
        return WaitOutcome::TimedOut;
    }
    std::thread::sleep(pause);
    WaitOutcome::Woken
}

/// Wakes up to `n` threads sleeping in [`wait`] on `word`; returns how many were woken.
///
/// `n = u32::MAX` wakes everyone (it is clamped to `i32::MAX`, the kernel's limit).
pub(crate) fn wake(word: &AtomicU32, n: u32, scope: Scope) -> usize {
    let n = n.min(i32::MAX as u32);
    futex::wake(word, scope.flags(), n).unwrap_or(0)
}

/// Wakes every thread sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32, scope: Scope) -> usize {
    wake(word, u32::MAX, scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    #[test]
    fn value_mismatch_returns_at_once() {
        let w = AtomicU32::new(7);
        for scope in [Scope::Shared, Scope::Private] {
            assert_eq!(wait(&w, 8, Deadline::NEVER, scope), WaitOutcome::Woken);
        }
    }

    #[test]
    fn past_deadline_times_out_without_sleeping() {
        let w = AtomicU32::new(0);
        let d = Deadline::after(Duration::ZERO);
        assert_eq!(wait(&w, 0, d, Scope::Private), WaitOutcome::TimedOut);
    }

    #[test]
    fn timeout_is_total() {
        let w = AtomicU32::new(0);
        let start = Instant::now();
        let d = Deadline::after(Duration::from_millis(30));
        assert_eq!(wait(&w, 0, d, Scope::Shared), WaitOutcome::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn an_unexpected_error_pauses_instead_of_returning_at_once() {
        let start = Instant::now();
        let far = Deadline::after(Duration::from_secs(60));
        assert_eq!(unexpected_error(far), WaitOutcome::Woken);
        // It slept (a lower bound: sleeping never ends early), so a caller looping on it
        // polls rather than spins.
        assert!(start.elapsed() >= ERROR_PAUSE);
        // Never past the deadline.
        assert_eq!(
            unexpected_error(Deadline::after(Duration::ZERO)),
            WaitOutcome::TimedOut
        );
    }

    #[test]
    fn wake_with_no_sleeper_wakes_nobody() {
        let w = AtomicU32::new(0);
        assert_eq!(wake(&w, 1, Scope::Private), 0);
        assert_eq!(wake_all(&w, Scope::Shared), 0);
    }

    #[test]
    fn wake_releases_a_sleeper() {
        for scope in [Scope::Shared, Scope::Private] {
            let w = Arc::new(AtomicU32::new(0));
            let w2 = Arc::clone(&w);
            let t = std::thread::spawn(move || {
                let deadline = Deadline::after(Duration::from_secs(10));
                while w2.load(Ordering::Acquire) == 0 {
                    if wait(&w2, 0, deadline, scope) == WaitOutcome::TimedOut {
                        return false;
                    }
                }
                true
            });
            std::thread::sleep(Duration::from_millis(10));
            w.store(1, Ordering::Release);
            wake_all(&w, scope);
            assert!(t.join().unwrap(), "sleeper was not woken ({scope:?})");
        }
    }
}
