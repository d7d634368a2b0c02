//! `futex_waitv(2)` (Linux ≥ 5.16): sleep until any one of up to 128 futex words is woken
//! or no longer holds its expected value. The process-wide async waiter
//! ([`waiter`](crate::waiter)) is its only user.
//!
//! The words are passed by address and only the kernel reads them: this module never
//! dereferences them, so a stale address (memory unmapped or reused since) makes the call
//! fail with `EFAULT`, compare against unrelated bytes, or sleep on an unrelated key — a
//! spurious outcome, never undefined behaviour in this process.

use core::sync::atomic::AtomicU32;

use rustix::io::Errno;
use rustix::thread::futex;

use super::clock::Deadline;
use super::futex::Scope;

/// The most words one call takes (`FUTEX_WAITV_MAX`).
pub(crate) const MAX_WORDS: usize = 128;

/// One word of a [`waitv`] call: sleep while the 32-bit word at `addr` holds `expected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitWord {
    /// The word's address. Never dereferenced by fastipc (module docs).
    pub(crate) addr: *const AtomicU32,
    /// The value the caller last saw.
    pub(crate) expected: u32,
    /// [`Scope::Private`] only when every waker is a thread of this process.
    pub(crate) scope: Scope,
}

/// How a [`waitv`] call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitvOutcome {
    /// Woken through the word at this index (by `FUTEX_WAKE`, or spuriously).
    Woken(usize),
    /// At least one word did not hold its expected value when the call started (`EAGAIN`):
    /// which one is not said.
    Changed,
    /// The deadline passed.
    TimedOut,
    /// A signal interrupted the call; try again.
    Interrupted,
    /// The kernel has no `futex_waitv` (`ENOSYS`, before 5.16) or a filter forbids it
    /// (`EPERM`): use another way to wait.
    Unsupported,
    /// Any other error: a word's address is not mapped (`EFAULT`), or the arguments were
    /// refused (`EINVAL`: more than [`MAX_WORDS`] words, a misaligned address).
    Failed(Errno),
}

/// Sleeps until one of `words` is woken or does not hold its expected value, or until
/// `deadline` (absolute, `CLOCK_MONOTONIC`) passes.
pub(crate) fn waitv(words: &[WaitWord], deadline: Deadline) -> WaitvOutcome {
    if words.len() > MAX_WORDS {
        return WaitvOutcome::Failed(Errno::INVAL);
    }
    let mut waits = [futex::Wait::new(); MAX_WORDS];
    for (w, word) in waits.iter_mut().zip(words) {
        w.val = u64::from(word.expected);
        w.uaddr = futex::WaitPtr::new(word.addr.cast_mut().cast());
        w.flags = match word.scope {
            Scope::Shared => futex::WaitFlags::SIZE_U32,
            Scope::Private => futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE,
        };
    }
    match futex::waitv(
        &waits[..words.len()],
        futex::WaitvFlags::empty(),
        deadline.as_timespec(),
        futex::ClockId::Monotonic,
    ) {
        Ok(i) => WaitvOutcome::Woken(i),
        Err(Errno::AGAIN) => WaitvOutcome::Changed,
        Err(Errno::TIMEDOUT) => WaitvOutcome::TimedOut,
        Err(Errno::INTR) => WaitvOutcome::Interrupted,
        Err(Errno::NOSYS | Errno::PERM) => WaitvOutcome::Unsupported,
        Err(e) => WaitvOutcome::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::futex::wake_all;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn word(w: &AtomicU32, expected: u32, scope: Scope) -> WaitWord {
        WaitWord {
            addr: w,
            expected,
            scope,
        }
    }

    /// Whether the kernel has futex_waitv (the tests below need it).
    fn supported() -> bool {
        let w = AtomicU32::new(1);
        waitv(&[word(&w, 0, Scope::Private)], Deadline::NEVER) != WaitvOutcome::Unsupported
    }

    #[test]
    fn a_changed_word_returns_at_once() {
        if !supported() {
            return;
        }
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(1));
        let words = [word(&a, 0, Scope::Shared), word(&b, 0, Scope::Private)];
        assert_eq!(waitv(&words, Deadline::NEVER), WaitvOutcome::Changed);
    }

    #[test]
    fn the_deadline_ends_the_wait_and_too_many_words_are_refused() {
        if !supported() {
            return;
        }
        let a = AtomicU32::new(0);
        let d = Deadline::after(Duration::from_millis(5));
        assert_eq!(
            waitv(&[word(&a, 0, Scope::Shared)], d),
            WaitvOutcome::TimedOut
        );
        let many = vec![word(&a, 0, Scope::Shared); MAX_WORDS + 1];
        assert_eq!(waitv(&many, d), WaitvOutcome::Failed(Errno::INVAL));
    }

    #[test]
    fn a_wake_on_any_word_returns_its_index() {
        if !supported() {
            return;
        }
        for scope in [Scope::Shared, Scope::Private] {
            let words: Arc<Vec<AtomicU32>> = Arc::new((0..3).map(|_| AtomicU32::new(0)).collect());
            let w2 = Arc::clone(&words);
            let t = std::thread::spawn(move || {
                let list: Vec<WaitWord> = w2.iter().map(|w| word(w, 0, scope)).collect();
                let d = Deadline::after(Duration::from_secs(20));
                loop {
                    match waitv(&list, d) {
                        WaitvOutcome::Interrupted => continue,
                        // A spurious wake-up of another word: not ours to report.
                        WaitvOutcome::Woken(i) if w2[i].load(Ordering::Acquire) == 0 => continue,
                        other => return other,
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            words[2].store(1, Ordering::Release);
            wake_all(&words[2], scope);
            let out = t.join().unwrap();
            // Woken through word 2, or word 2 had changed before the call started.
            assert!(
                matches!(out, WaitvOutcome::Woken(2) | WaitvOutcome::Changed),
                "{out:?} ({scope:?})"
            );
        }
    }
}
