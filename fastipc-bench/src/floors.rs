//! The floors: the bare mechanism each fastipc feature is built on, with nothing else.
//!
//! - [`SpinLock`]: a CAS-acquire / store-release spin lock (the uncontended lock floor).
//! - [`spin_ping`] / [`spin_pong`]: two parties bouncing one shared cache line (the
//!   spinning ping-pong floor).
//! - [`futex_ping`] / [`futex_pong`]: the same over a futex word, each side sleeping in
//!   `FUTEX_WAIT` and the other always calling `FUTEX_WAKE` (the blocking hand-off floor).
//! - [`socket_ping`] / [`socket_pong`]: blocking 8-byte writes and reads on a Unix
//!   stream socket (what a user would write without shared memory).
//!
//! The ping-pong protocol on one word: round `i` (from 0) sends `2i + 1` and waits for
//! `2i + 2`. The ping side times each round trip; the pong side runs `rounds` rounds.

use std::cell::UnsafeCell;
use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastipc::{Deadline, FutexWord, Scope};

use crate::clock;

/// How long any spinning wait in a measurement may last before the run is called broken
/// (a peer that died, a harness bug): the harness fails instead of hanging.
pub const STALL: Duration = Duration::from_secs(20);

/// Counts the spins of one wait and looks at the clock only every 65536 of them, so a
/// dead peer turns into an error after [`STALL`] without a clock read in the hot loop.
/// Make a new one for each wait: it is free (no clock read until a wait gets long).
#[derive(Debug, Default)]
pub struct Watchdog {
    spins: u32,
    since: Option<Instant>,
}

impl Watchdog {
    /// A fresh wait.
    #[inline(always)]
    pub const fn new() -> Watchdog {
        Watchdog {
            spins: 0,
            since: None,
        }
    }

    /// One more spin; an error once the wait has lasted about [`STALL`].
    #[inline(always)]
    pub fn spin(&mut self, what: &str) -> std::io::Result<()> {
        self.spins = self.spins.wrapping_add(1);
        if self.spins & 0xFFFF == 0 {
            self.check(what)?;
        }
        core::hint::spin_loop();
        Ok(())
    }

    #[cold]
    fn check(&mut self, what: &str) -> std::io::Result<()> {
        match self.since {
            None => self.since = Some(Instant::now()),
            Some(t) if t.elapsed() > STALL => return Err(stalled(what)),
            Some(_) => {}
        }
        Ok(())
    }
}

fn stalled(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no progress for {STALL:?} (peer gone?)"),
    )
}

/// A test-and-test-and-set spin lock: CAS 0→1 with acquire to lock, store 0 with release
/// to unlock. Nothing cheaper can be a lock, so it is the floor of uncontended
/// lock+unlock.
#[derive(Debug, Default)]
pub struct SpinLock<T> {
    /// 0 free, 1 held.
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and a guard exists only while
// `state` is 1, which one thread at a time can make it (the CAS); so `&SpinLock<T>` gives
// exclusive access to `T` just as a mutex does.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A free lock holding `value`.
    pub const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Spins until the lock is taken.
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        while self
            .state
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.state.load(Ordering::Relaxed) != 0 {
                core::hint::spin_loop();
            }
        }
        SpinGuard { lock: self }
    }
}

/// Holds a [`SpinLock`]; unlocks on drop.
#[derive(Debug)]
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock (state 1 set by
        // our CAS), so no other reference to the value is live.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only guard reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.state.store(0, Ordering::Release);
    }
}

/// Ping side of the cache-line floor: `warmup` untimed then `n` timed round trips on
/// `word`; returns each round trip in clock ticks.
pub fn spin_ping(word: &AtomicU64, warmup: usize, n: usize) -> std::io::Result<Vec<u64>> {
    let mut rtts = Vec::with_capacity(n);
    for i in 0..(warmup + n) as u64 {
        let t0 = clock::now();
        word.store(2 * i + 1, Ordering::Release);
        let mut dog = Watchdog::new();
        while word.load(Ordering::Acquire) != 2 * i + 2 {
            dog.spin("cache-line ping")?;
        }
        let t1 = clock::now();
        if i as usize >= warmup {
            rtts.push(t1 - t0);
        }
    }
    Ok(rtts)
}

/// Pong side of the cache-line floor: answers `rounds` pings on `word`.
pub fn spin_pong(word: &AtomicU64, rounds: usize) -> std::io::Result<()> {
    for i in 0..rounds as u64 {
        let mut dog = Watchdog::new();
        while word.load(Ordering::Acquire) != 2 * i + 1 {
            dog.spin("cache-line pong")?;
        }
        word.store(2 * i + 2, Ordering::Release);
    }
    Ok(())
}

/// Waits in `FUTEX_WAIT` (no spinning at all) until `word` holds `want`.
fn futex_wait_for(
    word: &AtomicU32,
    want: u32,
    scope: Scope,
    deadline: Deadline,
) -> std::io::Result<()> {
    loop {
        let cur = word.load(Ordering::Acquire);
        if cur == want {
            return Ok(());
        }
        if !FutexWord::from_atomic(word, scope).wait_until(cur, deadline) {
            return Err(stalled("futex ping-pong"));
        }
    }
}

/// Ping side of the futex floor: each message is a store and an unconditional
/// `FUTEX_WAKE`, each wait a plain `FUTEX_WAIT`. Returns round trips in ticks.
pub fn futex_ping(
    word: &AtomicU32,
    scope: Scope,
    warmup: usize,
    n: usize,
) -> std::io::Result<Vec<u64>> {
    let mut rtts = Vec::with_capacity(n);
    let deadline = Deadline::after(STALL);
    for i in 0..(warmup + n) as u32 {
        let t0 = clock::now();
        word.store(2 * i + 1, Ordering::Release);
        FutexWord::from_atomic(word, scope).wake(1);
        futex_wait_for(word, 2 * i + 2, scope, deadline)?;
        let t1 = clock::now();
        if i as usize >= warmup {
            rtts.push(t1 - t0);
        }
    }
    Ok(rtts)
}

/// Pong side of the futex floor: answers `rounds` pings on `word`.
pub fn futex_pong(word: &AtomicU32, scope: Scope, rounds: usize) -> std::io::Result<()> {
    let deadline = Deadline::after(STALL);
    for i in 0..rounds as u32 {
        futex_wait_for(word, 2 * i + 1, scope, deadline)?;
        word.store(2 * i + 2, Ordering::Release);
        FutexWord::from_atomic(word, scope).wake(1);
    }
    Ok(())
}

/// Ping side of the Unix-socket comparator: 8-byte blocking write, 8-byte blocking read.
pub fn socket_ping(sock: &mut UnixStream, warmup: usize, n: usize) -> std::io::Result<Vec<u64>> {
    sock.set_read_timeout(Some(STALL))?;
    let mut rtts = Vec::with_capacity(n);
    let mut buf = [0u8; 8];
    for i in 0..(warmup + n) as u64 {
        let t0 = clock::now();
        sock.write_all(&i.to_le_bytes())?;
        sock.read_exact(&mut buf)?;
        let t1 = clock::now();
        if u64::from_le_bytes(buf) != i {
            return Err(std::io::Error::other(
                "socket ping-pong: reply out of order",
            ));
        }
        if i as usize >= warmup {
            rtts.push(t1 - t0);
        }
    }
    Ok(rtts)
}

/// Pong side of the Unix-socket comparator: echoes `rounds` 8-byte messages.
pub fn socket_pong(sock: &mut UnixStream, rounds: usize) -> std::io::Result<()> {
    sock.set_read_timeout(Some(STALL))?;
    let mut buf = [0u8; 8];
    for _ in 0..rounds {
        sock.read_exact(&mut buf)?;
        sock.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn spin_lock_excludes() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 20_000);
    }

    #[test]
    fn ping_pongs_complete_in_threads() {
        let w = Arc::new(AtomicU64::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || spin_pong(&w2, 100));
        assert_eq!(spin_ping(&w, 10, 90).unwrap().len(), 90);
        t.join().unwrap().unwrap();

        let f = Arc::new(AtomicU32::new(0));
        let f2 = Arc::clone(&f);
        let t = std::thread::spawn(move || futex_pong(&f2, Scope::Private, 50));
        assert_eq!(futex_ping(&f, Scope::Private, 0, 50).unwrap().len(), 50);
        t.join().unwrap().unwrap();

        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || socket_pong(&mut b, 20));
        assert_eq!(socket_ping(&mut a, 5, 15).unwrap().len(), 15);
        t.join().unwrap().unwrap();
    }
}
