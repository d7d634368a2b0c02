//! What the loom models share: a model of the futex (`FUTEX_WAIT` / `FUTEX_WAKE`) built
//! on loom's `Mutex` and `Condvar`, and the model's run settings.
//!
//! The kernel checks the futex word and puts the caller to sleep atomically with respect
//! to every wake of the same word (both take the word's hash-bucket lock, with full
//! barriers): a wake that comes after a waiter's check finds it asleep. Here the bucket
//! lock is a loom `Mutex`. A waiter sleeps until a wake hands it one of the `n` wake-ups
//! it grants (no spurious wake-ups, no time-outs: a waiter that nobody wakes sleeps for
//! ever, which loom reports as a deadlock — a lost wake-up is a failure, not a delay).

#![allow(dead_code)] // each model file uses a part

use loom::sync::atomic::AtomicU32;
use loom::sync::{Condvar, Mutex};
use std::sync::atomic::Ordering::SeqCst;

/// One futex word's sleepers (the model keeps one per word).
pub(crate) struct Futex {
    bucket: Mutex<Sleepers>,
    woken: Condvar,
}

#[derive(Default)]
struct Sleepers {
    /// Threads inside `wait`.
    asleep: usize,
    /// Wake-ups granted and not yet taken.
    granted: usize,
}

impl Default for Futex {
    fn default() -> Self {
        Futex {
            bucket: Mutex::new(Sleepers::default()),
            woken: Condvar::new(),
        }
    }
}

impl Futex {
    /// `FUTEX_WAIT(word, expected)`: returns at once if `word != expected`, else sleeps
    /// until a `wake` picks this sleeper. The check is made under the bucket lock, with a
    /// sequentially consistent load (the kernel's barrier).
    pub(crate) fn wait(&self, word: &AtomicU32, expected: u32) {
        let mut s = self.bucket.lock().unwrap();
        if word.load(SeqCst) != expected {
            return;
        }
        s.asleep += 1;
        while s.granted == 0 {
            s = self.woken.wait(s).unwrap();
        }
        s.granted -= 1;
        s.asleep -= 1;
    }

    /// `FUTEX_WAKE(word, n)`: wakes up to `n` of the threads asleep now; returns how many.
    pub(crate) fn wake(&self, n: usize) -> usize {
        let mut s = self.bucket.lock().unwrap();
        let k = n.min(s.asleep - s.granted);
        s.granted += k;
        if k > 0 {
            self.woken.notify_all();
        }
        k
    }
}

/// A loom builder bounded to `preemptions` preemptions per execution (what the CI run
/// uses) unless the environment sets `LOOM_MAX_PREEMPTIONS` (read by loom itself).
pub(crate) fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(preemptions);
    }
    b
}

/// Writes `value` into a loom cell: the models' plain (non-atomic) data.
pub(crate) fn write<T>(cell: &loom::cell::UnsafeCell<T>, value: T) {
    // SAFETY: loom checks, before it calls the closure, that no other access to the cell
    // is concurrent with this one (else it fails the model with "Causality violation"),
    // so the pointer is valid and nothing else reads or writes through it meanwhile.
    cell.with_mut(|p| unsafe { *p = value })
}

/// Reads a loom cell (see [`write`]).
pub(crate) fn read<T: Copy>(cell: &loom::cell::UnsafeCell<T>) -> T {
    // SAFETY: as in `write`: loom has checked that no write is concurrent with this read.
    cell.with(|p| unsafe { *p })
}
