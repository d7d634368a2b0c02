//! Memory that fastipc objects live in.
//!
//! - [`MemRef`] is a borrowed byte range that other threads or processes may be changing
//!   at the same time. It is never turned into a `&[u8]` or `&mut [u8]` (that would promise
//!   the compiler nobody else writes it); it hands out atomics at checked offsets, and
//!   raw pointers for the algorithms that copy payloads under their own protocol.
//! - [`Region`] owns such memory: a zeroed, cache-line-aligned heap block ("local mode",
//!   threads of one process) or a named shared segment ("shared mode"). Every algorithm is
//!   written once over a `MemRef` and serves both.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64};
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};

use crate::error::MemError;
use crate::sys::shm::Segment;

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

/// The alignment of heap regions: a cache line, so that no other data shares the
/// region's first line.
pub const REGION_ALIGN: usize = 64;

/// Memory owned by a fastipc object: a heap block or a named shared segment.
///
/// ```
/// use fastipc::Region;
/// let r = Region::heap(256);
/// assert_eq!(r.len(), 256);
/// assert!(!r.is_shared());
/// assert_eq!(r.mem().as_ptr() as usize % 64, 0);
/// ```
#[derive(Debug)]
pub struct Region {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Heap { ptr: NonNull<u8>, layout: Layout },
    Shared(Segment),
}

// SAFETY: the heap block is owned by the Region and only reached through `MemRef`s
// (atomics and unsafe raw pointers), exactly like shared memory, so moving or sharing the
// owner between threads is sound. `Segment` (an `MmapRaw`) is Send + Sync already.
unsafe impl Send for Region {}
// SAFETY: as for Send above.
unsafe impl Sync for Region {}

impl Region {
    /// A zeroed heap block of `len` bytes (at least one), aligned to [`REGION_ALIGN`].
    /// Aborts the process if the memory cannot be allocated, as `Vec` does; see
    /// [`Region::try_heap`] for sizes that come from input.
    pub fn heap(len: usize) -> Region {
        match Region::try_heap(len) {
            Ok(region) => region,
            Err(_) => handle_alloc_error(Region::layout(len).unwrap_or(Layout::new::<u8>())),
        }
    }

    /// A zeroed heap block of `len` bytes (at least one), aligned to [`REGION_ALIGN`], or
    /// [`MemError::OutOfMemory`] when it cannot be allocated (or `len` rounded up to the
    /// alignment exceeds `isize::MAX`).
    ///
    /// ```
    /// use fastipc::{MemError, Region};
    /// assert_eq!(Region::try_heap(128)?.len(), 128);
    /// assert!(matches!(Region::try_heap(usize::MAX), Err(MemError::OutOfMemory { .. })));
    /// # Ok::<(), MemError>(())
    /// ```
    pub fn try_heap(len: usize) -> Result<Region, MemError> {
        let layout = Region::layout(len).ok_or(MemError::OutOfMemory { len })?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(MemError::OutOfMemory { len })?;
        Ok(Region {
            inner: Inner::Heap { ptr, layout },
        })
    }

    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len.max(1), REGION_ALIGN).ok()
    }

    /// A region over a mapped shared segment.
    pub fn shared(segment: Segment) -> Region {
        Region {
            inner: Inner::Shared(segment),
        }
    }

    /// The region's memory.
    pub fn mem(&self) -> MemRef<'_> {
        match &self.inner {
            // SAFETY: the block is allocated for `layout.size()` bytes until `self` drops,
            // and it is only ever reached through MemRefs.
            Inner::Heap { ptr, layout } => unsafe {
                MemRef::from_raw_parts(ptr.as_ptr(), layout.size())
            },
            Inner::Shared(seg) => seg.mem(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.mem().len()
    }

    /// Whether the region is empty (never: heap regions have at least one byte and
    /// segments are never empty).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the region is a named shared segment.
    pub fn is_shared(&self) -> bool {
        matches!(self.inner, Inner::Shared(_))
    }

    /// The shared segment, in shared mode.
    pub fn segment(&self) -> Option<&Segment> {
        match &self.inner {
            Inner::Shared(seg) => Some(seg),
            Inner::Heap { .. } => None,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Inner::Heap { ptr, layout } = self.inner {
            // SAFETY: allocated in `Region::heap` with this very layout, freed only here.
            unsafe { dealloc(ptr.as_ptr(), layout) }
        }
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

    #[test]
    fn heap_regions_are_zeroed_and_aligned() {
        for len in [0, 1, 63, 64, 4096 + 7] {
            let r = Region::heap(len);
            assert_eq!(r.len(), len.max(1));
            assert_eq!(r.mem().as_ptr() as usize % REGION_ALIGN, 0);
            for off in (0..r.len() / 4 * 4).step_by(4) {
                assert_eq!(r.mem().atomic_u32(off).unwrap().load(Ordering::Relaxed), 0);
            }
        }
    }

    #[test]
    fn impossible_heap_regions_are_errors() {
        for len in [usize::MAX, isize::MAX as usize, 1 << 62] {
            assert!(
                matches!(Region::try_heap(len), Err(MemError::OutOfMemory { len: l }) if l == len),
                "{len}"
            );
        }
    }

    #[test]
    fn heap_region_is_shared_between_threads() {
        let r = Region::heap(64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        r.mem()
                            .atomic_u64(0)
                            .unwrap()
                            .fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(r.mem().atomic_u64(0).unwrap().load(Ordering::Relaxed), 4000);
    }
}
