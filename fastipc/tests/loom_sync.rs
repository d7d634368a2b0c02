//! loom models of the sync primitives' protocols (docs/CHECKING.md).
//!
//! fastipc's primitives work on atomics in caller memory (shared mappings), which loom
//! cannot instrument, so each model here restates one protocol step by step over loom's
//! atomics, with the same orderings, and names the lines of `fastipc/src/sync/*.rs` it
//! mirrors. The futex is modelled in `loom_support` (no time-outs: a lost wake-up is a
//! deadlock, which loom reports). Spin phases are left out: they only repeat the first
//! attempt (`try_wait`, the CAS 0→1), which the models make once.
//!
//! loom treats sequentially consistent loads and stores as acquire/release only (it does
//! not build the single total order of C++), so a Dekker-style pair — each side writes
//! one word then reads the other's — needs `fence(SeqCst)` between its two steps for
//! loom to see the C++ guarantee. The models add that fence where the code relies on the
//! pair being sequentially consistent, marked "loom: SeqCst pair".
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p fastipc --test loom_sync
//! --target-dir target/loom` (each model bounded to 2 or 3 preemptions unless
//! `LOOM_MAX_PREEMPTIONS` says otherwise).

#![cfg(loom)]

mod loom_support;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, AtomicU64, fence};
use loom::thread;
use loom_support::{Futex, builder, read, write};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

// ---------------------------------------------------------------------------------------
// Semaphore (sync/semaphore.rs)
// ---------------------------------------------------------------------------------------

/// The semaphore's words: `count` (the futex word) and `sleepers`.
#[derive(Default)]
struct Semaphore {
    count: AtomicU32,
    sleepers: AtomicU32,
    futex: Futex,
}

impl Semaphore {
    /// `Semaphore::post` (the CAS loop adding `n`, then the read of `sleepers` and the
    /// wake: all of the count when it left 0, else `min(n, sleepers)`).
    fn post(&self, n: u32) {
        let mut cur = self.count.load(Relaxed);
        let prev = loop {
            match self
                .count
                .compare_exchange_weak(cur, cur + n, SeqCst, Relaxed)
            {
                Ok(_) => break cur,
                Err(actual) => cur = actual,
            }
        };
        fence(SeqCst); // loom: SeqCst pair (count RMW, then sleepers load)
        let sleepers = self.sleepers.load(SeqCst);
        if prev == 0 {
            self.futex.wake(n as usize);
        } else if sleepers > 0 {
            self.futex.wake(n.min(sleepers) as usize);
        }
    }

    /// `Semaphore::try_wait` (CAS `count - 1` with acquire while `count > 0`, then
    /// `pass_on`: wake one more registered sleeper when tokens are left).
    fn try_wait(&self) -> bool {
        let mut cur = self.count.load(Relaxed);
        while cur > 0 {
            match self
                .count
                .compare_exchange_weak(cur, cur - 1, Acquire, Relaxed)
            {
                Ok(_) => {
                    if cur > 1 && self.sleepers.load(Relaxed) > 0 {
                        self.futex.wake(1);
                    }
                    return true;
                }
                Err(actual) => cur = actual,
            }
        }
        false
    }

    /// `Semaphore::wait_slow`'s loop without its deadline: try, register in `sleepers`,
    /// re-read the count, sleep on `count == 0`, unregister, retry.
    fn wait(&self) {
        loop {
            if self.try_wait() {
                return;
            }
            self.sleepers.fetch_add(1, SeqCst);
            fence(SeqCst); // loom: SeqCst pair (sleepers RMW, then count load)
            if self.count.load(SeqCst) == 0 {
                self.futex.wait(&self.count, 0);
            }
            self.sleepers.fetch_sub(1, SeqCst);
        }
    }
}

/// (b) Two posters of one token each and two waiters, from a count of 0: both waiters
/// return (no lost wake-up: the "classic trap" of two posts with one wake-up is among
/// the interleavings), the count ends at 0 (tokens are conserved), and each waiter sees
/// the data its token's poster wrote before posting (acquire/release through the count).
#[test]
fn semaphore_two_posters_two_waiters() {
    builder(2).check(|| {
        let sem = Arc::new(Semaphore::default());
        let data = Arc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
        let posters: Vec<_> = (0..2)
            .map(|i| {
                let (sem, data) = (sem.clone(), data.clone());
                thread::spawn(move || {
                    // Written before the post; read only by waiters after theirs.
                    write(&data[i], 1);
                    sem.post(1);
                })
            })
            .collect();
        let other = {
            let sem = sem.clone();
            thread::spawn(move || sem.wait())
        };
        sem.wait();
        other.join().unwrap();
        for p in posters {
            p.join().unwrap();
        }
        assert_eq!(sem.count.load(Relaxed), 0);
        assert_eq!(sem.sleepers.load(Relaxed), 0);
    });
}

/// (b') One waiter, one poster: the token's poster's writes are visible to the waiter
/// once it returns (its successful CAS acquires the poster's SeqCst RMW).
#[test]
fn semaphore_wait_acquires_the_post() {
    builder(2).check(|| {
        let sem = Arc::new(Semaphore::default());
        let data = Arc::new(UnsafeCell::new(0u32));
        let poster = {
            let (sem, data) = (sem.clone(), data.clone());
            thread::spawn(move || {
                write(&data, 7);
                sem.post(1);
            })
        };
        sem.wait();
        assert_eq!(read(&data), 7);
        poster.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// Event (sync/event.rs)
// ---------------------------------------------------------------------------------------

/// Finding 2 of issue 10: "write data; set() — wait(); read data". `Event::set` swaps in
/// 1 (acq-rel) and wakes everyone if the word was 0; every return of `Event::wait_slow`
/// (spin poll, check before and after each sleep) follows an acquire load that read a
/// non-zero word. loom reports the read of `data` as racing with its write if a return
/// path loads with `Relaxed`.
#[test]
fn event_wait_acquires_the_set() {
    builder(2).check(|| {
        let word = Arc::new(AtomicU32::new(0));
        let futex = Arc::new(Futex::default());
        let data = Arc::new(UnsafeCell::new(0u32));
        let setter = {
            let (word, futex, data) = (word.clone(), futex.clone(), data.clone());
            thread::spawn(move || {
                write(&data, 42);
                if word.swap(1, AcqRel) == 0 {
                    futex.wake(usize::MAX);
                }
            })
        };
        // wait(): the first check (is_set), one spin poll, then the sleep loop.
        let spin_poll = |w: &AtomicU32| w.load(Acquire) != 0;
        if !(word.load(Acquire) != 0 || spin_poll(&word)) {
            while word.load(Acquire) == 0 {
                futex.wait(&word, 0);
            }
        }
        assert_eq!(read(&data), 42);
        setter.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// Mutex: the three states (sync/mutex.rs, `try_lock`, `spin`, `lock_contended`, `release`)
// ---------------------------------------------------------------------------------------

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

#[derive(Default)]
struct StateWord {
    state: AtomicU32,
    futex: Futex,
}

impl StateWord {
    /// `Mutex::lock`: CAS 0→1 (acquire); one spin poll (plain load, CAS 0→1 when it
    /// reads 0); then `swap(2)` (acquire) until it returns 0, sleeping on
    /// `FUTEX_WAIT(state, 2)` in between.
    fn lock(&self) {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed)
            .is_ok()
        {
            return;
        }
        if self.state.load(Relaxed) == UNLOCKED
            && self
                .state
                .compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed)
                .is_ok()
        {
            return;
        }
        while self.state.swap(CONTENDED, Acquire) != UNLOCKED {
            self.futex.wait(&self.state, CONTENDED);
        }
    }

    /// `Mutex::release`: `swap(0)` (release), and `FUTEX_WAKE(1)` if the old state was 2.
    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Release) == CONTENDED {
            self.futex.wake(1);
        }
    }
}

/// (f) Three lockers, one critical section each, incrementing a plain counter: mutual
/// exclusion (loom reports overlapping accesses to the counter), no lost wake-up (taking
/// the lock 0→1 while others sleep included), the counter ends at 3 and the lock free.
#[test]
fn mutex_states_exclude_and_wake() {
    builder(2).check(|| {
        let m = Arc::new(StateWord::default());
        let counter = Arc::new(UnsafeCell::new(0u32));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let (m, counter) = (m.clone(), counter.clone());
                thread::spawn(move || {
                    m.lock();
                    write(&counter, read(&counter) + 1);
                    m.unlock();
                })
            })
            .collect();
        m.lock();
        write(&counter, read(&counter) + 1);
        m.unlock();
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(read(&counter), 3);
        assert_eq!(m.state.load(Relaxed), UNLOCKED);
    });
}

// ---------------------------------------------------------------------------------------
// Mutex: the owner token and the dead-owner takeover (sync/mutex.rs, `mark_owner`,
// `publish`, `release`, `recover_from_dead_owner`; module docs "Why a successful
// takeover only takes a dead holder's lock")
// ---------------------------------------------------------------------------------------

const PUBLISHED: u64 = 1;

/// The header words the takeover uses.
#[derive(Default)]
struct Header {
    state: AtomicU32,
    owner: AtomicU32,
    token: AtomicU64,
    side_pid: AtomicU32,
    side_ns: AtomicU32,
}

/// A holder: process id and pid namespace. (The start time is one more side word
/// written and read like the pid; left out.)
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Who {
    pid: u32,
    ns: u32,
}

/// The waiters' namespace; the only process judged dead is `H`'s pid read in it.
const WAITER_NS: u32 = 1;
/// A live holder in another namespace whose pid names no process in the waiters'.
const H: Who = Who { pid: 10, ns: 2 };
/// A live holder of the waiters' namespace.
const H2: Who = Who {
    pid: 20,
    ns: WAITER_NS,
};
/// A dead holder of the waiters' namespace.
const DEAD: Who = Who {
    pid: 30,
    ns: WAITER_NS,
};
/// Waiters (live, of their own namespace).
const W1: Who = Who {
    pid: 40,
    ns: WAITER_NS,
};
const W2: Who = Who {
    pid: 50,
    ns: WAITER_NS,
};

/// `has_exited` as a waiter of `WAITER_NS` judges it.
fn judged_dead(pid: u32, ns: u32) -> bool {
    ns == WAITER_NS && (pid == H.pid || pid == DEAD.pid)
}

fn next_token(t: u64) -> u64 {
    (((t >> 1) + 1) << 1) | PUBLISHED
}

impl Header {
    /// `publish`: side words (release), the next token (release), `owner_pid`.
    fn publish(&self, unpublished: u64, me: Who) {
        self.side_pid.store(me.pid, Release);
        self.side_ns.store(me.ns, Release);
        self.token.store(next_token(unpublished), Release);
        self.owner.store(me.pid, Relaxed);
    }

    /// A fastipc lock that finds the state free (`try_lock` + `mark_owner`); the
    /// contended path ends in the same `mark_owner`. Returns whether it took the lock.
    fn try_lock(&self, me: Who) -> bool {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed)
            .is_err()
        {
            return false;
        }
        let t = self.token.load(Relaxed);
        assert_eq!(t & PUBLISHED, 0, "no Python peer here: the token is clear");
        self.publish(t, me);
        true
    }

    /// `release`: `owner_pid`, the token's bit 0, then the state (release).
    fn unlock(&self) {
        self.owner.store(0, Relaxed);
        let t = self.token.load(Relaxed);
        self.token.store(t & !PUBLISHED, Relaxed);
        self.state.swap(UNLOCKED, Release);
    }

    /// `recover_from_dead_owner`, one round (no stale-token branch: no Python peer
    /// here). Returns the holder taken over, if this waiter won.
    fn recover(&self, me: Who) -> Option<Who> {
        if self.state.load(Acquire) == UNLOCKED {
            return None;
        }
        let token = self.token.load(Acquire);
        if token & PUBLISHED == 0 {
            return None;
        }
        let pid = self.side_pid.load(Acquire);
        let ns = self.side_ns.load(Acquire);
        let owner = self.owner.load(Acquire);
        if owner != 0 && owner != pid {
            return None; // stale: a Python holder (never here)
        }
        if pid == me.pid || !judged_dead(pid, ns) {
            return None;
        }
        let taken = next_token(token & !PUBLISHED) & !PUBLISHED;
        if self
            .token
            .compare_exchange(token, taken, AcqRel, Acquire)
            .is_err()
        {
            return None;
        }
        self.publish(taken, me);
        self.state.swap(CONTENDED, Acquire);
        Some(Who { pid, ns })
    }
}

/// (f) Finding 4 of issue 10: a live holder `H` of another pid namespace unlocks and
/// relocks while `H2`, of the waiter's namespace, locks and unlocks in between; a waiter
/// checks the holder meanwhile. Nobody is dead, so no takeover may succeed, whatever the
/// interleaving (a waiter that mixes `H`'s pid with `H2`'s namespace judges `H` dead:
/// its compare-and-swap must then fail). The same model with the compare-and-swap on the
/// identity (the pid) instead of the token fails.
#[test]
fn mutex_takeover_never_takes_a_live_relocked_lock() {
    // Three preemptions: the failing interleaving of the identity comparison needs
    // them (the waiter, then the holder, each stopped once more).
    builder(3).check(|| {
        let h = Arc::new(Header::default());
        assert!(h.try_lock(H));
        let holder = {
            let h = h.clone();
            thread::spawn(move || {
                h.unlock();
                // H relocks, possibly after H2 came and went.
                while !h.try_lock(H) {
                    thread::yield_now();
                }
            })
        };
        let other = {
            let h = h.clone();
            thread::spawn(move || {
                if h.try_lock(H2) {
                    h.unlock();
                }
            })
        };
        let taken = h.recover(W1);
        holder.join().unwrap();
        other.join().unwrap();
        assert_eq!(taken, None, "a live holder's lock was taken over");
    });
}

/// (f) A dead holder's lock, two waiters: exactly one takes it over, and it is then
/// recorded as the holder (its token published with its side words).
#[test]
fn mutex_takeover_of_a_dead_holder_has_one_winner() {
    builder(2).check(|| {
        let h = Arc::new(Header::default());
        assert!(h.try_lock(DEAD));
        let second = {
            let h = h.clone();
            thread::spawn(move || h.recover(W2))
        };
        let first = h.recover(W1);
        let second = second.join().unwrap();
        let winners = [first, second].iter().filter(|w| w.is_some()).count();
        // A waiter may also find the winner's token (alive) or its unpublished one: at
        // most one wins, and since both checked a dead holder's token first, one did.
        assert_eq!(winners, 1, "{first:?} {second:?}");
        assert_eq!(first.or(second), Some(DEAD));
        let winner = if first.is_some() { W1 } else { W2 };
        assert_eq!(h.side_pid.load(Acquire), winner.pid);
        assert_eq!(h.token.load(Acquire) & PUBLISHED, PUBLISHED);
        assert_ne!(h.state.load(Acquire), UNLOCKED);
    });
}
