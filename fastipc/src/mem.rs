//! Views of memory that fastipc objects live in.
//!
//! [`MemRef`] is a borrowed byte range that other threads or processes may be changing at
//! the same time. It is never turned into a `&[u8]` or `&mut [u8]` (that would promise the
//! compiler nobody else writes it); it hands out atomics at checked offsets, and raw
//! pointers for the algorithms that copy payloads under their own protocol. Every
//! algorithm is written once over a `MemRef`, whoever owns the memory: a
//! [`Region`](crate::Region) (a heap block or a named shared segment), or the caller.
//!
//! This module sits below the syscall layer (a mapped segment hands out a `MemRef`); it
//! depends on nothing but the error type.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::MemError;

/// A borrowed byte range that may be shared with other threads and processes.
///
/// All access is atomic ([`MemRef::atomic_u32`], [`MemRef::atomic_u64`]) or goes through
/// [`MemRef::ptr_at`] into code with its own synchronisation protocol.
///
/// ```
/// use std::sync::atomic::Ordering;
/// use fastipc::MemRef;
///
/// let mut buf = [0u64; 8]; // 64 bytes, 8-aligned
/// let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
/// mem.atomic_u32(8)?.store(1, Ordering::Release);
/// assert_eq!(mem.atomic_u32(8)?.load(Ordering::Acquire), 1);
/// assert!(mem.atomic_u32(62).is_err()); // runs past the end
/// assert!(mem.atomic_u32(1).is_err());  // misaligned
/// # Ok::<(), fastipc::MemError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MemRef<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _owner: PhantomData<&'a [UnsafeCell<u8>]>,
}

// SAFETY: a MemRef only gives out atomics (which are Sync) and raw pointers whose use is
// `unsafe` for the caller; it never creates plain references to the bytes, so sharing or
// sending it between threads cannot by itself cause a data race.
unsafe impl Send for MemRef<'_> {}
// SAFETY: as for Send above.
unsafe impl Sync for MemRef<'_> {}

impl<'a> MemRef<'a> {
    /// Views a buffer the caller owns exclusively for `'a` (a local buffer, for threads of
    /// one process). The exclusive borrow guarantees nothing else touches it meanwhile.
    pub fn from_mut(buf: &'a mut [u8]) -> MemRef<'a> {
        let len = buf.len();
        MemRef {
            ptr: NonNull::from(buf).cast(),
            len,
            _owner: PhantomData,
        }
    }

    /// Views `len` bytes at `ptr`.
    ///
    /// # Safety
    /// For all of `'a`, `ptr..ptr + len` must be valid for reads and writes (a live
    /// mapping or allocation), `ptr` must not be null, and every other access to those
    /// bytes, in this process or another, must be atomic or follow the protocol of the
    /// object that lives there (no plain `&`/`&mut` references to them may exist).
    pub unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> MemRef<'a> {
        MemRef {
            // SAFETY: the caller promises `ptr` is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            len,
            _owner: PhantomData,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte's address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The sub-range `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Result<MemRef<'a>, MemError> {
        let ptr = self.ptr_at(offset, len, 1)?;
        // SAFETY: `ptr_at` checked that `offset..offset + len` lies inside `self`, which
        // satisfies `from_raw_parts`'s contract for `'a`.
        Ok(unsafe { MemRef::from_raw_parts(ptr, len) })
    }

    /// The address of `offset`, after checking that `len` bytes from there lie inside the
    /// range and that the address is a multiple of `align` (a power of two).
    pub fn ptr_at(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8, MemError> {
        let too_short = MemError::TooShort {
            offset,
            needed: len,
            available: self.len,
        };
        let end = offset.checked_add(len).ok_or(too_short.clone())?;
        if end > self.len {
            return Err(too_short);
        }
        // SAFETY: offset <= end <= len, so the result stays inside (or one past) the range.
        let ptr = unsafe { self.ptr.as_ptr().add(offset) };
        if !(ptr as usize).is_multiple_of(align) {
            return Err(MemError::Misaligned {
                addr: ptr as usize,
                align,
            });
        }
        Ok(ptr)
    }

    /// The 4-byte-aligned `u32` at `offset`, as an atomic.
    pub fn atomic_u32(&self, offset: usize) -> Result<&'a AtomicU32, MemError> {
        let ptr = self.ptr_at(offset, 4, align_of::<AtomicU32>())?;
        // SAFETY: `ptr` is in bounds and aligned (checked above), valid for `'a` (the
        // MemRef contract), and all concurrent access to it is atomic (same contract).
        Ok(unsafe { AtomicU32::from_ptr(ptr.cast()) })
    }

    /// The 8-byte-aligned `u64` at `offset`, as an atomic.
    pub fn atomic_u64(&self, offset: usize) -> Result<&'a AtomicU64, MemError> {
        let ptr = self.ptr_at(offset, 8, align_of::<AtomicU64>())?;
        // SAFETY: as in `atomic_u32`, with 8 bytes and 8-byte alignment checked.
        Ok(unsafe { AtomicU64::from_ptr(ptr.cast()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn bounds_and_alignment_are_checked() {
        let mut buf = [0u64; 4];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
        assert_eq!(mem.len(), 32);
        assert!(mem.atomic_u64(24).is_ok());
        assert!(matches!(mem.atomic_u64(32), Err(MemError::TooShort { .. })));
        assert!(matches!(
            mem.atomic_u64(4),
            Err(MemError::Misaligned { align: 8, .. })
        ));
        assert!(matches!(
            mem.atomic_u32(2),
            Err(MemError::Misaligned { align: 4, .. })
        ));
        assert!(matches!(
            mem.atomic_u32(usize::MAX),
            Err(MemError::TooShort { .. })
        ));
        assert!(matches!(mem.slice(30, 4), Err(MemError::TooShort { .. })));
        let tail = mem.slice(16, 16).unwrap();
        tail.atomic_u64(0).unwrap().store(5, Ordering::Relaxed);
        assert_eq!(mem.atomic_u64(16).unwrap().load(Ordering::Relaxed), 5);
    }
}
