//! The layout's floor: the shared SLQ1 queue layout's own algorithm and nothing else, as
//! a C++ `slick::SlickQueue` or Python `slick-queue-py` peer runs it on the same bytes
//! (docs/LAYOUT.md section 1, "How the bytes are used").
//!
//! The segment is a plain `shm_open` + `mmap` of `/dev/shm/NAME` holding the real layout
//! (64-byte header, 16-byte control slots, elements), made with the peers' creation
//! handshake. Then:
//!
//! - **claim**: one `fetch_add` of `1 << 16` on `reserved` (the index lives in its high
//!   48 bits). The layout's claim is a compare-and-swap loop because a claim of `n`
//!   elements may have to skip to the next lap; every claim here is of one element in a
//!   power-of-two ring, which never skips, so the loop reduces to one add. The low 16
//!   bits (the size of the last claim) are set to 1 once, by the first claim of a fresh
//!   ring, so the bytes are what a peer writes.
//! - **write** the element, **publish**: slot `size = 1`, slot `data_index = index`
//!   (release), then raise `last_published` to the index (compare-and-swap if lower),
//!   as the peers do (the "SLQ1" marker promises `last_published` is kept).
//! - **read** with a private cursor: the slot's `data_index` (acquire) says whether the
//!   cursor's index is published, a wrap marker, or a lap newer (the reader lost
//!   `data_index - cursor` messages); re-check after reading `size`, copy, move on.
//!
//! No validation after the copy, no leases, no endpoint table, no lossless floor, no wake
//! word. The elements are copied with relaxed 8-byte atomic accesses (the peers use
//! plain copies, which are outside Rust's memory model when another process may write
//! meanwhile); fastipc copies the same way, so the two differ only by their algorithm.
//! A reader that a producer laps while it copies hands out the newer message: the peers'
//! readers do not look again, and the throughput loops count such items as lost.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

use crate::queues::{Got, Item, LossyReceiver, Receiver, Sender};

mod run;
#[cfg(test)]
mod tests;

pub use run::{FloorPingPong, produce_shared};

/// The layout's marker: "SLQ0" plus feature bit 0 (`last_published` is kept).
pub const MAGIC: u32 = 0x534C_5131;
const HEADER: usize = 64;
const SLOT: usize = 16;
// Header offsets (docs/LAYOUT.md, "Header").
const RESERVED: usize = 0;
const SIZE: usize = 8;
const ELEMENT_SIZE: usize = 12;
const LAST_PUBLISHED: usize = 16;
const MAGIC_AT: usize = 24;
const ITEMS_PER_SLOT: usize = 28;
const INIT_STATE: usize = 48;
const INIT_BUSY: u32 = 2;
const INIT_READY: u32 = 3;
/// The largest element the floor takes (so that a segment's length cannot overflow).
const MAX_ELEMENT: usize = 1 << 20;
/// One element claimed: the index's unit in `reserved`, and the claim size in its low bits.
const ONE: u64 = 1 << 16;

/// The segment length the peers compute for `capacity` elements of `element_size` bytes.
pub const fn segment_len(capacity: usize, element_size: usize) -> usize {
    HEADER + SLOT * capacity + element_size * capacity
}

/// A mapped SLQ1 ring in `/dev/shm`; the creator unlinks its name when dropped.
#[derive(Debug)]
pub struct FloorRing {
    base: NonNull<u8>,
    len: usize,
    mask: u64,
    element_size: usize,
    name: String,
    owner: bool,
}

// SAFETY: the mapping is process-wide memory that stays valid until `Drop`; every access
// through `FloorRing` is an atomic one (`word`), so sharing it between threads is sound.
unsafe impl Send for FloorRing {}
// SAFETY: as above: `&FloorRing` only hands out atomics.
unsafe impl Sync for FloorRing {}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// The shapes the floor handles: a power-of-two capacity up to 2^31 (the layout's), and
/// elements of whole 8-byte words (every message type of the benchmarks).
fn check_shape(capacity: usize, element_size: usize) -> std::io::Result<()> {
    if !capacity.is_power_of_two() || capacity > 1 << 31 {
        return Err(invalid(format!(
            "capacity {capacity} is not a power of two ≤ 2^31"
        )));
    }
    if element_size == 0 || !element_size.is_multiple_of(8) || element_size > MAX_ELEMENT {
        return Err(invalid(format!(
            "element size {element_size} is not a multiple of 8 up to {MAX_ELEMENT}"
        )));
    }
    Ok(())
}

impl FloorRing {
    /// Creates `/dev/shm/NAME` (it must not exist) with the peers' handshake: size the
    /// file, compare-and-swap `init_state` 0 → 2, write the header and every slot, store 3.
    pub fn create(name: &str, capacity: usize, element_size: usize) -> std::io::Result<FloorRing> {
        check_shape(capacity, element_size)?;
        let len = segment_len(capacity, element_size);
        let fd = shm::open(
            format!("/{name}"),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_raw_mode(0o600),
        )?;
        let ring = rustix::fs::ftruncate(&fd, len as u64)
            .map_err(std::io::Error::from)
            .and_then(|()| FloorRing::map(&fd, name, len, capacity, element_size, true));
        let ring = match ring {
            Ok(r) => r,
            Err(e) => {
                let _ = shm::unlink(format!("/{name}"));
                return Err(e);
            }
        };
        // Acquire/relaxed: the handshake's claim publishes nothing; the store of 3 does.
        if ring
            .u32(INIT_STATE)
            .compare_exchange(0, INIT_BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(invalid(format!("{name}: someone else is initialising it")));
        }
        ring.u32(MAGIC_AT).store(MAGIC, Ordering::Relaxed);
        ring.u32(SIZE).store(capacity as u32, Ordering::Relaxed);
        ring.u32(ELEMENT_SIZE)
            .store(element_size as u32, Ordering::Relaxed);
        ring.u32(ITEMS_PER_SLOT).store(1, Ordering::Relaxed);
        ring.word(RESERVED).store(0, Ordering::Relaxed);
        ring.word(LAST_PUBLISHED).store(u64::MAX, Ordering::Relaxed);
        for index in 0..capacity as u64 {
            ring.slot_index(index).store(u64::MAX, Ordering::Relaxed);
            ring.slot_size(index).store(1, Ordering::Relaxed);
        }
        // Release: an attacher that acquires 3 sees every field written above.
        ring.u32(INIT_STATE).store(INIT_READY, Ordering::Release);
        Ok(ring)
    }

    /// Attaches to a ring another process created: waits (up to 2 s, as the peers do)
    /// for `init_state` 3, then checks the marker, the capacity and the element size.
    pub fn open(name: &str, capacity: usize, element_size: usize) -> std::io::Result<FloorRing> {
        check_shape(capacity, element_size)?;
        let len = segment_len(capacity, element_size);
        let fd = shm::open(format!("/{name}"), shm::OFlags::RDWR, Mode::empty())?;
        let actual = rustix::fs::fstat(&fd)?.st_size;
        if actual < len as i64 {
            return Err(invalid(format!(
                "{name}: {actual} bytes, the layout needs {len}"
            )));
        }
        let ring = FloorRing::map(&fd, name, len, capacity, element_size, false)?;
        let start = Instant::now();
        // Acquire: pairs with the creator's release store of 3 (the header is complete).
        while ring.u32(INIT_STATE).load(Ordering::Acquire) != INIT_READY {
            if start.elapsed() > Duration::from_secs(2) {
                return Err(invalid(format!("{name}: never initialised")));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let (magic, cap, esize) = (
            ring.u32(MAGIC_AT).load(Ordering::Relaxed),
            ring.u32(SIZE).load(Ordering::Relaxed) as usize,
            ring.u32(ELEMENT_SIZE).load(Ordering::Relaxed) as usize,
        );
        if magic != MAGIC || cap != capacity || esize != element_size {
            return Err(invalid(format!(
                "{name}: marker {magic:#x}, capacity {cap}, element size {esize}; expected {MAGIC:#x}, {capacity}, {element_size}"
            )));
        }
        Ok(ring)
    }

    fn map(
        fd: &rustix::fd::OwnedFd,
        name: &str,
        len: usize,
        capacity: usize,
        element_size: usize,
        owner: bool,
    ) -> std::io::Result<FloorRing> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint) of a file at
        // least `len` bytes long (sized by the creator, checked by attachers); it is
        // unmapped only in `Drop`, and only atomics are ever made from it.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| invalid("mmap returned null"))?;
        Ok(FloorRing {
            base,
            len,
            mask: capacity as u64 - 1,
            element_size,
            name: name.to_owned(),
            owner,
        })
    }

    /// The capacity in elements.
    pub fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    /// The atomic `A` at byte offset `off`.
    ///
    /// # Safety
    /// `off + size_of::<A>() <= self.len` and `off` is a multiple of `align_of::<A>()`.
    #[inline(always)]
    unsafe fn at<A>(&self, off: usize) -> &A {
        let p = self.base.as_ptr().wrapping_add(off).cast::<A>();
        // SAFETY: in bounds and aligned (the caller's contract) in a page-aligned mapping
        // that lives as long as `&self`; `A` is an atomic and every process touches these
        // bytes only atomically (the peers' own code aside, which is the comparison).
        unsafe { &*p }
    }

    /// A header word (`off` one of the header constants).
    #[inline(always)]
    fn word(&self, off: usize) -> &AtomicU64 {
        // Callers pass constants: the check folds away.
        assert!(off + 8 <= HEADER && off.is_multiple_of(8));
        // SAFETY: checked just above: 8-aligned and inside the header, and the mapping
        // is at least `segment_len` > 64 bytes long.
        unsafe { self.at(off) }
    }

    /// A 4-byte header field (`off` one of the header constants).
    #[inline(always)]
    fn u32(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= HEADER && off.is_multiple_of(4));
        // SAFETY: as in `word`: 4-aligned and inside the header.
        unsafe { self.at(off) }
    }

    /// The `data_index` of the slot of absolute index `index`.
    #[inline(always)]
    fn slot_index(&self, index: u64) -> &AtomicU64 {
        let pos = (index & self.mask) as usize;
        // SAFETY: `pos < capacity`, so the slot's 16 bytes end at most at
        // `64 + 16·capacity <= len`; `64 + 16·pos` is a multiple of 8.
        unsafe { self.at(HEADER + SLOT * pos) }
    }

    /// The `size` of the slot of absolute index `index`.
    #[inline(always)]
    fn slot_size(&self, index: u64) -> &AtomicU32 {
        let pos = (index & self.mask) as usize;
        // SAFETY: as in `slot_index`, 8 bytes further, 4-aligned.
        unsafe { self.at(HEADER + SLOT * pos + 8) }
    }

    /// The element of absolute index `index`, as `element_size / 8` atomic words.
    #[inline(always)]
    fn element(&self, index: u64) -> &[AtomicU64] {
        let pos = (index & self.mask) as usize;
        let off = HEADER + SLOT * self.capacity() + pos * self.element_size;
        let p = self.base.as_ptr().wrapping_add(off).cast::<AtomicU64>();
        // SAFETY: `pos < capacity`, so the element ends at most at `segment_len <= len`;
        // `off` is a multiple of 8 (16·capacity and the element size, checked at
        // creation and attach, are); the words are only ever accessed atomically, and
        // the mapping lives as long as `&self`.
        unsafe { std::slice::from_raw_parts(p, self.element_size / 8) }
    }

    /// Claims one element: its absolute index.
    #[inline(always)]
    fn claim(&self) -> u64 {
        // Relaxed: the claim only has to be unique (every add on one word is totally
        // ordered); what the element holds is published by the slot's release store.
        let old = self.word(RESERVED).fetch_add(ONE, Ordering::Relaxed);
        if old & 0xFFFF != 1 {
            // The first claim of a fresh ring: record the claim size (1) in the low bits
            // as the peers' compare-and-swap does. Adds of `ONE` never touch them.
            self.word(RESERVED).fetch_or(1, Ordering::Relaxed);
        }
        old >> 16
    }

    /// Publishes `index`: slot size, slot index (release), then `last_published`.
    #[inline(always)]
    fn publish(&self, index: u64) {
        self.slot_size(index).store(1, Ordering::Relaxed);
        // Release: a reader that acquires this index sees the element written before.
        self.slot_index(index).store(index, Ordering::Release);
        let last = self.word(LAST_PUBLISHED);
        let mut cur = last.load(Ordering::Relaxed);
        while cur == u64::MAX || cur < index {
            // Release: a `read_last` reader that acquires it sees the element.
            match last.compare_exchange_weak(cur, index, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Drop for FloorRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of `len` bytes; no reference into it
        // outlives `self` (every accessor borrows `self`).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), self.len) };
        if self.owner {
            let _ = shm::unlink(format!("/{}", self.name));
        }
    }
}

fn check_size<T>(ring: &FloorRing) -> std::io::Result<()> {
    if size_of::<T>() != ring.element_size {
        return Err(invalid(format!(
            "a {}-byte message in a ring of {}-byte elements",
            size_of::<T>(),
            ring.element_size
        )));
    }
    Ok(())
}

/// A producer of the layout's algorithm (never waits: a lossy ring).
#[derive(Debug)]
pub struct FloorProducer<T> {
    ring: Arc<FloorRing>,
    _t: PhantomData<fn(T)>,
}

impl<T: Item> FloorProducer<T> {
    /// A producer on `ring` (whose element size must be `size_of::<T>()`).
    pub fn new(ring: Arc<FloorRing>) -> std::io::Result<FloorProducer<T>> {
        check_size::<T>(&ring)?;
        Ok(FloorProducer {
            ring,
            _t: PhantomData,
        })
    }

    /// Claims, writes and publishes `item`.
    #[inline]
    pub fn push(&self, item: &T) {
        let index = self.ring.claim();
        for (dst, w) in self.ring.element(index).iter().zip(item.words()) {
            dst.store(*w, Ordering::Relaxed);
        }
        self.ring.publish(index);
    }
}

impl<T: Item> Sender for FloorProducer<T> {
    type Item = T;
    #[inline]
    fn send(&mut self, item: T) -> std::io::Result<()> {
        self.push(&item);
        Ok(())
    }
}

/// A consumer of the layout's algorithm with a private cursor (starting at index 0).
#[derive(Debug)]
pub struct FloorConsumer<T> {
    ring: Arc<FloorRing>,
    cursor: u64,
    /// An item read together with a lag, handed out after the lag is reported.
    pending: Option<T>,
}

impl<T: Item> FloorConsumer<T> {
    /// A consumer on `ring` from index 0 (whose element size must be `size_of::<T>()`).
    pub fn new(ring: Arc<FloorRing>) -> std::io::Result<FloorConsumer<T>> {
        check_size::<T>(&ring)?;
        Ok(FloorConsumer {
            ring,
            cursor: 0,
            pending: None,
        })
    }

    /// The layout's read: the next message, a lag, or nothing.
    #[inline]
    pub fn poll(&mut self) -> std::io::Result<Got<T>> {
        if let Some(item) = self.pending.take() {
            return Ok(Got::Item(item));
        }
        let ring = &*self.ring;
        loop {
            let pos = self.cursor & ring.mask;
            // Acquire: pairs with the producer's release store of the index, so the
            // element and the slot size written before it are visible.
            let idx = ring.slot_index(pos).load(Ordering::Acquire);
            if idx == u64::MAX || idx < self.cursor {
                return Ok(Got::Empty);
            }
            if idx > self.cursor && idx & ring.mask != pos {
                // A wrap marker: the reservation moved to the next lap.
                self.cursor = idx;
                continue;
            }
            let n = ring.slot_size(pos).load(Ordering::Relaxed);
            // Acquire fence: the re-check below is ordered after the size read.
            fence(Ordering::Acquire);
            if ring.slot_index(pos).load(Ordering::Relaxed) != idx {
                continue;
            }
            if n != 1 {
                return Err(invalid(format!(
                    "a claim of {n} elements at index {idx}: the floor's producers claim one"
                )));
            }
            let elem = ring.element(idx);
            let item = T::from_words(|k| elem[k].load(Ordering::Relaxed));
            let lost = idx - self.cursor;
            self.cursor = idx + 1;
            if lost > 0 {
                self.pending = Some(item);
                return Ok(Got::Lagged(lost));
            }
            return Ok(Got::Item(item));
        }
    }
}

impl<T: Item> LossyReceiver for FloorConsumer<T> {
    type Item = T;
    #[inline]
    fn poll(&mut self) -> std::io::Result<Got<T>> {
        FloorConsumer::poll(self)
    }
}

impl<T: Item> Receiver for FloorConsumer<T> {
    type Item = T;
    #[inline]
    fn try_recv(&mut self) -> std::io::Result<Option<T>> {
        match self.poll()? {
            Got::Empty => Ok(None),
            Got::Item(v) => Ok(Some(v)),
            Got::Lagged(n) => Err(std::io::Error::other(format!(
                "layout floor: {n} messages overwritten under a credit window"
            ))),
        }
    }
}
