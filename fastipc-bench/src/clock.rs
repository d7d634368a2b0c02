//! A cheap timestamp for per-message latencies.
//!
//! On x86-64 this reads the time-stamp counter (`rdtsc`, ~10 ns in a KVM guest with an
//! invariant TSC, about half of `Instant::now()`), calibrated once against the monotonic
//! clock; elsewhere it falls back to `Instant`. Ticks are only compared within one thread,
//! so a TSC that differed between CPUs would not matter.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A raw timestamp in ticks; convert differences with [`ticks_to_ns`].
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86-64 CPU, reads only the time-stamp counter
        // and touches no memory; the intrinsic has no other precondition.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Nanoseconds per tick, measured once (20 ms against `Instant`).
pub fn ns_per_tick() -> f64 {
    static CAL: OnceLock<f64> = OnceLock::new();
    *CAL.get_or_init(|| {
        if cfg!(not(target_arch = "x86_64")) {
            return 1.0;
        }
        let (i0, t0) = (Instant::now(), now());
        while i0.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let (i1, t1) = (Instant::now(), now());
        (i1 - i0).as_nanos() as f64 / (t1 - t0).max(1) as f64
    })
}

/// Converts a tick difference to nanoseconds.
#[inline]
pub fn ticks_to_ns(ticks: u64) -> f64 {
    ticks as f64 * ns_per_tick()
}

/// `CLOCK_MONOTONIC` in nanoseconds: comparable between processes (unlike [`now`]).
#[inline]
pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
