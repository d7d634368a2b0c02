//! Atomic views over caller memory, with the semantics of the Python package's
//! `FutexWord`, `AtomicU32` and `AtomicU64`: [`FutexWord`], [`SharedU32`] and
//! [`SharedU64`] (named apart from `core`'s atomics, which they wrap).
//!
//! Each view borrows a [`MemRef`] (a local buffer or a shared mapping) and checks length
//! and alignment when it is made, returning [`MemError`] rather than panicking. Loads are
//! acquire, stores release, and compare-and-swap is strong and returns the value it found.

use core::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::time::Duration;

use crate::error::MemError;
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope, WaitOutcome};

/// A 32-bit futex word at the start of caller memory: atomic load/store plus wait/wake.
///
/// ```
/// use std::time::Duration;
/// use fastipc::{FutexWord, MemRef, Scope};
///
/// let mut buf = [0u32; 1];
/// let word = FutexWord::new(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)), Scope::Private)?;
/// assert!(!word.wait(0, Some(Duration::from_millis(1)))); // nobody wakes us: timeout
/// word.store_release(1);
/// assert!(word.wait(0, None)); // the word is not 0: returns at once
/// assert_eq!(word.wake(1), 0);  // nobody sleeping
/// # Ok::<(), fastipc::MemError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FutexWord<'a> {
    word: &'a core::sync::atomic::AtomicU32,
    scope: Scope,
}

impl<'a> FutexWord<'a> {
    /// The word at offset 0 of `mem` (at least 4 bytes, 4-aligned). Use
    /// [`Scope::Shared`] when other processes may wait on or wake it.
    pub fn new(mem: MemRef<'a>, scope: Scope) -> Result<FutexWord<'a>, MemError> {
        Ok(FutexWord {
            word: mem.atomic_u32(0)?,
            scope,
        })
    }

    /// A futex word over an atomic the caller already has (in a mapping of its own, say).
    ///
    /// ```
    /// use std::sync::atomic::AtomicU32;
    /// use fastipc::{FutexWord, Scope};
    /// let word = AtomicU32::new(3);
    /// let futex = FutexWord::from_atomic(&word, Scope::Private);
    /// assert!(futex.wait_until(0, fastipc::Deadline::NEVER)); // not 0: returns at once
    /// assert_eq!(futex.wake(1), 0);
    /// ```
    pub fn from_atomic(word: &'a core::sync::atomic::AtomicU32, scope: Scope) -> FutexWord<'a> {
        FutexWord { word, scope }
    }

    /// Loads the value (acquire).
    pub fn load_acquire(&self) -> u32 {
        self.word.load(Acquire)
    }

    /// Stores a value (release).
    pub fn store_release(&self, value: u32) {
        self.word.store(value, Release)
    }

    /// Sleeps while the word equals `expected`, for at most `timeout` in total (`None`:
    /// no limit). Returns `true` if woken or if the word did not hold `expected`, `false`
    /// on timeout. Wake-ups may be spurious: re-check the word.
    pub fn wait(&self, expected: u32, timeout: Option<Duration>) -> bool {
        self.wait_until(expected, Deadline::from_timeout(timeout))
    }

    /// [`FutexWord::wait`] with an absolute deadline (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn wait_until(&self, expected: u32, deadline: impl Into<Deadline>) -> bool {
        futex::wait(self.word, expected, deadline.into(), self.scope) == WaitOutcome::Woken
    }

    /// Wakes up to `n` sleepers; returns how many woke.
    pub fn wake(&self, n: u32) -> usize {
        futex::wake(self.word, n, self.scope)
    }

    /// The underlying atomic.
    pub fn as_atomic(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.word
    }
}

macro_rules! atomic_view {
    ($(#[$doc:meta])* $name:ident, $int:ty, $std:ty, $width:literal, $getter:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a> {
            cell: &'a $std,
        }

        impl<'a> $name<'a> {
            #[doc = concat!("The value at offset 0 of `mem` (at least ", $width, " bytes, ", $width, "-aligned).")]
            pub fn new(mem: MemRef<'a>) -> Result<$name<'a>, MemError> {
                Ok($name { cell: mem.$getter(0)? })
            }

            /// Loads the value (acquire).
            pub fn load(&self) -> $int {
                self.cell.load(Acquire)
            }

            /// Stores a value (release).
            pub fn store(&self, value: $int) {
                self.cell.store(value, Release)
            }

            /// Strong compare-and-swap (acq-rel on success, acquire on failure):
            /// `Ok(previous)` if the value was `expected` and is now `new`, else
            /// `Err(actual)` with the value found.
            pub fn compare_exchange(&self, expected: $int, new: $int) -> Result<$int, $int> {
                self.cell.compare_exchange(expected, new, AcqRel, Acquire)
            }

            /// Compare-and-swap reporting only success, as the Python peer's `cas`.
            pub fn cas(&self, expected: $int, new: $int) -> bool {
                self.compare_exchange(expected, new).is_ok()
            }

            /// Adds (wrapping) and returns the previous value (acq-rel).
            pub fn fetch_add(&self, value: $int) -> $int {
                self.cell.fetch_add(value, AcqRel)
            }

            /// Swaps in a value and returns the previous one (acq-rel).
            pub fn swap(&self, value: $int) -> $int {
                self.cell.swap(value, AcqRel)
            }

            /// The underlying atomic.
            pub fn as_atomic(&self) -> &'a $std {
                self.cell
            }
        }
    };
}

atomic_view!(
    /// An atomic `u32` at the start of caller memory (the Python package's `AtomicU32`).
    ///
    /// ```
    /// use fastipc::{MemRef, SharedU32};
    /// let mut buf = [0u32; 1];
    /// let a = SharedU32::new(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
    /// assert_eq!(a.compare_exchange(0, 5), Ok(0));
    /// assert_eq!(a.compare_exchange(0, 6), Err(5));
    /// # Ok::<(), fastipc::MemError>(())
    /// ```
    SharedU32, u32, core::sync::atomic::AtomicU32, "4", atomic_u32
);
atomic_view!(
    /// An atomic `u64` at the start of caller memory (the Python package's `AtomicU64`).
    ///
    /// ```
    /// use fastipc::{MemRef, SharedU64};
    /// let mut buf = [0u64; 1];
    /// let a = SharedU64::new(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
    /// a.store(u64::MAX);
    /// assert_eq!(a.load(), u64::MAX);
    /// # Ok::<(), fastipc::MemError>(())
    /// ```
    SharedU64, u64, core::sync::atomic::AtomicU64, "8", atomic_u64
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn short_and_misaligned_buffers_are_errors() {
        let mut buf = [0u64; 2];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        assert!(matches!(
            FutexWord::new(MemRef::from_mut(&mut bytes[..3]), Scope::Private),
            Err(MemError::TooShort { .. })
        ));
        assert!(matches!(
            SharedU32::new(MemRef::from_mut(&mut bytes[1..])),
            Err(MemError::Misaligned { .. })
        ));
        assert!(matches!(
            SharedU64::new(MemRef::from_mut(&mut bytes[4..])),
            Err(MemError::Misaligned { .. })
        ));
        assert!(matches!(
            SharedU64::new(MemRef::from_mut(&mut bytes[8..12])),
            Err(MemError::TooShort { .. })
        ));
    }

    #[test]
    fn cas_returns_the_actual_value() {
        let mut buf = [0u64; 1];
        let a = SharedU64::new(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf))).unwrap();
        assert_eq!(a.compare_exchange(0, 10), Ok(0));
        assert_eq!(a.compare_exchange(0, 11), Err(10));
        assert!(!a.cas(0, 12));
        assert!(a.cas(10, 12));
        assert_eq!(a.fetch_add(3), 12);
        assert_eq!(a.swap(1), 15);
        assert_eq!(a.load(), 1);
    }

    #[test]
    fn futex_word_wakes_a_waiting_thread() {
        let mut buf = [0u32; 1];
        let word = FutexWord::new(
            MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)),
            Scope::Private,
        )
        .unwrap();
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let deadline = Deadline::after(Duration::from_secs(10));
                while word.load_acquire() == 0 {
                    if !word.wait_until(0, deadline) {
                        return false;
                    }
                }
                true
            });
            std::thread::sleep(Duration::from_millis(10));
            word.store_release(1);
            word.wake(u32::MAX);
            assert!(t.join().unwrap());
        });
    }

    #[test]
    fn futex_word_timeout_is_bounded() {
        let mut buf = [0u32; 1];
        let word = FutexWord::new(
            MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)),
            Scope::Shared,
        )
        .unwrap();
        let start = Instant::now();
        assert!(!word.wait(0, Some(Duration::from_millis(20))));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!word.wait(0, Some(Duration::ZERO)));
    }
}
