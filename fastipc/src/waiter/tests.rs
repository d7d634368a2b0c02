//! The waiter table and threads, through bare registrations and counting wakers.

use super::*;
use crate::sys::futex::wake_all;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::Wake;
use std::time::Instant;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (Arc::clone(&c), Waker::from(c))
}

/// Waits (bounded) until `c` counts at least one wake-up.
fn woken(c: &Count) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if c.0.load(SeqCst) > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

#[test]
fn a_woken_word_fires_its_registration_and_only_it() {
    let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let (mut ra, mut rb) = (Registration::new(), Registration::new());
    assert!(ra.arm(&a, 0, Scope::Shared, None, &wa));
    assert!(rb.arm(&b, 0, Scope::Private, None, &wb));
    assert!(ra.is_armed() && rb.is_armed());
    std::thread::sleep(Duration::from_millis(20));
    a.store(1, Relaxed);
    wake_all(&a, Scope::Shared);
    assert!(woken(&ca), "the registration on `a` was not woken");
    assert!(!ra.is_armed(), "a fired registration is removed");
    // `b` neither changed nor was woken: it stays armed, unless a spurious wake-up fired
    // it (a word of the group, `a` or another test's, differed when the thread started a
    // wait: then every registration of the group fires, by design).
    if cb.0.load(SeqCst) == 0 {
        assert!(rb.is_armed());
    }
    rb.disarm();
    assert!(!rb.is_armed());
}

#[test]
fn a_word_that_changed_before_the_wait_fires_at_once() {
    let w = AtomicU32::new(5);
    let (c, waker) = counter();
    let mut r = Registration::new();
    // Registered with a stale value: the thread's futex_waitv returns EAGAIN.
    assert!(r.arm(&w, 4, Scope::Shared, None, &waker));
    assert!(woken(&c));
}

#[test]
fn the_repoll_interval_fires_without_any_change() {
    let w = AtomicU32::new(0);
    let (c, waker) = counter();
    let mut r = Registration::new();
    let start = Instant::now();
    assert!(r.arm(
        &w,
        0,
        Scope::Private,
        Some(Duration::from_millis(10)),
        &waker
    ));
    assert!(woken(&c));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(!r.is_armed());
}

#[test]
fn rearming_replaces_the_waker_and_dropping_disarms() {
    let w = AtomicU32::new(0);
    let (c1, w1) = counter();
    let (c2, w2) = counter();
    let mut r = Registration::new();
    assert!(r.arm(&w, 0, Scope::Shared, None, &w1));
    assert!(r.arm(&w, 0, Scope::Shared, None, &w2));
    w.store(1, Relaxed);
    wake_all(&w, Scope::Shared);
    assert!(woken(&c2));
    assert_eq!(c1.0.load(SeqCst), 0, "the replaced waker was woken");
    // Re-arm with the new value, then drop: the registration is gone.
    assert!(r.arm(&w, 1, Scope::Shared, None, &w1));
    let token = r.token.expect("armed");
    drop(r);
    assert!(!group::is_armed(token));
}

#[test]
fn more_registrations_than_one_group_holds_all_fire() {
    let n = GROUP_WORDS * 2 + 5;
    let words: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let counts: Vec<(Arc<Count>, Waker)> = (0..n).map(|_| counter()).collect();
    let mut regs: Vec<Registration> = (0..n).map(|_| Registration::new()).collect();
    for i in 0..n {
        assert!(regs[i].arm(&words[i], 0, Scope::Shared, None, &counts[i].1));
    }
    assert!(stats().threads >= 3, "{:?}", stats());
    for (w, (c, _)) in words.iter().zip(&counts) {
        w.store(1, Relaxed);
        wake_all(w, Scope::Shared);
        assert!(woken(c));
    }
}
