//! Memory owned by a fastipc object: [`Region`], a zeroed, cache-line-aligned heap block
//! ("local mode", threads of one process) or a named shared segment ("shared mode").
//!
//! Above the syscall layer (it holds a [`Segment`]) and the memory views below it (it hands
//! out [`MemRef`]s).

use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};

use crate::error::MemError;
use crate::mem::MemRef;
use crate::sys::shm::Segment;

/// The alignment of heap regions: a cache line, so that no other data shares the
/// region's first line.
const REGION_ALIGN: usize = 64;

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
    /// The alignment of heap regions: a cache line, so that no other data shares the
    /// region's first line.
    pub const HEAP_ALIGN: usize = REGION_ALIGN;

    /// A zeroed heap block of `len` bytes (at least one), aligned to [`Region::HEAP_ALIGN`].
    /// Aborts the process if the memory cannot be allocated, as `Vec` does; see
    /// [`Region::try_heap`] for sizes that come from input.
    pub fn heap(len: usize) -> Region {
        match Region::try_heap(len) {
            Ok(region) => region,
            Err(_) => handle_alloc_error(Region::layout(len).unwrap_or(Layout::new::<u8>())),
        }
    }

    /// A zeroed heap block of `len` bytes (at least one), aligned to [`Region::HEAP_ALIGN`], or
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
