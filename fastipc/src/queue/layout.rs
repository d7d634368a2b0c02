//! The bytes of a SlickQueue segment (LAYOUT.md §1), pinned by `#[repr(C)]` structs and
//! compile-time assertions on every offset, and the header decode used by attach and by
//! tools (`fastipc inspect`).
//!
//! ```text
//! 0          64                  64 + 16·capacity            + element_size·capacity
//! | header   | slot × capacity   | data: element × capacity  | [type trailer]
//! ```
//!
//! ## Header (64 bytes)
//! | off | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `reserved` | atomic u64: bits 16..64 = `next_index` (the next free absolute index, 48 bits), bits 0..16 = size of the last reservation |
//! | 8 | 4 | `size` | capacity in elements, a power of two |
//! | 12 | 4 | `element_size` | bytes per element |
//! | 16 | 8 | `last_published` | atomic u64: highest published index, `u64::MAX` = none yet |
//! | 24 | 4 | `magic` | `0x534C5130 \| features`: bit 0 last-published maintained, bit 1 items per slot ≠ 1, bits 2..4 must be 0 |
//! | 28 | 4 | `items_per_slot` | 0 or 1 (fastipc supports only 1) |
//! | 32 | 8 | `fingerprint` | fastipc: layout fingerprint of the message type, 0 = unknown (peers leave it 0) |
//! | 40 | 4 | `flags` | fastipc: bit 0 endpoint table present (`FLAG_ENDPOINTS`), bit 1 lossless (`FLAG_LOSSLESS`), bit 2 single producer (`FLAG_SINGLE_PRODUCER`, only with bit 0), bits 3..32 0 (reserved; peers leave the word 0 and never read it) |
//! | 44 | 4 | padding | 0 |
//! | 48 | 4 | `init_state` | atomic u32: 0 fresh, 1 legacy, 2 initialising, 3 ready |
//! | 52 | 4 | padding | **always 0**: the Python peer reads and CASes bytes 48..56 as one u64 |
//! | 56 | 4 | `wake_seq` | fastipc futex word: bumped by a producer that wakes sleepers |
//! | 60 | 4 | `sleepers` | fastipc: "waiters present" flag (0 or 1) |
//!
//! ### The wake word pair (bytes 56..64), bit by bit
//! - `wake_seq` (u32 at 56, wrapping; all 32 bits are one counter): its only meaning is
//!   "changed". A producer that clears the `sleepers` flag (below) increments it and then
//!   `FUTEX_WAKE`s every waiter on it. A consumer reads it *before* setting the flag and
//!   passes that value to `FUTEX_WAIT`, so a wake-up between its last check and its sleep
//!   is never lost (the kernel refuses to sleep when the value moved).
//! - `sleepers` (u32 at 60): bit 0 = "a consumer may be asleep on `wake_seq`"; bits 1..32
//!   are always written 0 (and any non-zero value reads as "set"). A consumer sets it
//!   (store 1) before its final check and never clears it. A producer, after publishing,
//!   loads it and only when it is set swaps in 0 and, if the swap found it set, bumps
//!   `wake_seq` and wakes everyone (the ≈180 ns syscall never runs while nobody sleeps).
//!   The flag heals itself: a consumer killed while asleep, or one that woke on its own
//!   timer, costs the next publish at most one needless wake, after which it is clear.
//!   raw.rs ("Wake protocol") proves that no wake-up is lost.
//!
//! Peers (C++/Python) never touch these bytes and never wake anyone, which is why a
//! sleeping consumer also wakes on a short timer.
//!
//! ## Slots (16 bytes each, from offset 64)
//! | off | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `data_index` | atomic u64: absolute index published here, `u64::MAX` = never |
//! | 8 | 4 | `size` | atomic u32: elements in the reservation (1 when fresh) |
//! | 12 | 4 | padding | 0 |
//!
//! ## Endpoint table (fastipc only, when `flags` bit 0 is set)
//! At [`Geometry::endpoints_offset`] (after the largest trailer, 64-aligned): a 64-byte
//! table header and [`MAX_ENDPOINTS`](super::endpoints::MAX_ENDPOINTS) 64-byte entries;
//! `queue::endpoints` documents every byte and its state machine.
//!
//! ## Type trailer (fastipc only, optional)
//! A queue created by fastipc for a named message type carries, after the data area at
//! the next multiple of 8, a trailer: `b"FIPCTYP1"`, the fingerprint (u64), the name's
//! length (u32), 4 zero bytes, then the name (UTF-8, at most [`MAX_TYPE_NAME`] bytes).
//! The C++ peer maps only the size it computes and the Python peer only needs the file to
//! be at least that large, so both ignore it; it lets an attach error name the type the
//! queue holds instead of only its fingerprint.

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::MemError;
use crate::mem::MemRef;

/// Size of the header in bytes.
pub(crate) const HEADER_SIZE: usize = 64;
/// Size of one control slot in bytes.
pub(crate) const SLOT_SIZE: usize = 16;
/// The layout marker with no feature bits: `"SLQ0"` read as a little-endian u32.
pub const MAGIC_PREFIX: u32 = 0x534C_5130;
/// The feature nibble of the marker.
pub const MAGIC_FEATURE_MASK: u32 = 0xF;
/// Feature bit 0: `last_published` is maintained.
pub(crate) const FEATURE_READ_LAST: u32 = 0x1;
/// Feature bit 1: `items_per_slot != 1`.
pub(crate) const FEATURE_ITEMS_PER_SLOT: u32 = 0x2;
/// The feature bits any peer knows; bits 2 and 3 must be zero.
pub(crate) const KNOWN_FEATURES: u32 = FEATURE_READ_LAST | FEATURE_ITEMS_PER_SLOT;
/// The marker fastipc (and every peer by default) writes: `"SLQ1"`, bytes `31 51 4C 53`.
pub(crate) const MAGIC: u32 = MAGIC_PREFIX | FEATURE_READ_LAST;
/// `data_index` / `last_published` value meaning "nothing published".
pub(crate) const INVALID_INDEX: u64 = u64::MAX;
/// The largest capacity the 32-bit `size` field can hold as a power of two.
pub(crate) const MAX_CAPACITY: usize = 1 << 31;
/// The alignment the data area guarantees to elements (its offset is a multiple of 16
/// from a page- or cache-line-aligned base).
pub(crate) const DATA_ALIGN: usize = 16;
/// Bits of `next_index` kept in the `reserved` word.
pub(crate) const INDEX_BITS: u32 = 48;
/// Mask of the index part of `reserved` (before shifting).
pub(crate) const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// Header `flags` bit 0: the queue carries a fastipc endpoint table.
pub(crate) const FLAG_ENDPOINTS: u32 = 0x1;
/// Header `flags` bit 1: the queue is lossless (producers wait for registered consumers).
pub(crate) const FLAG_LOSSLESS: u32 = 0x2;
/// Header `flags` bit 2: the queue was declared to have one producer at a time
/// (`SingleProducer`; raw.rs "Single-producer mode"). Only set with [`FLAG_ENDPOINTS`].
pub(crate) const FLAG_SINGLE_PRODUCER: u32 = 0x4;

/// `init_state` values of the creation handshake.
pub mod init_state {
    /// Zeroed file, nobody has claimed initialisation.
    pub const FRESH: u32 = 0;
    /// A segment from before the handshake existed (accepted after a grace period when
    /// its size fields are non-zero, as the peers do).
    pub const LEGACY: u32 = 1;
    /// The creator is writing the header.
    pub const INITIALISING: u32 = 2;
    /// The header and slots are written; the queue is usable.
    pub const READY: u32 = 3;
}

/// Byte offsets of the header fields.
pub(crate) mod offset {
    /// `reserved` (atomic u64).
    pub(crate) const RESERVED: usize = 0;
    /// `size` (u32 capacity).
    pub(crate) const SIZE: usize = 8;
    /// `element_size` (u32).
    pub(crate) const ELEMENT_SIZE: usize = 12;
    /// `last_published` (atomic u64).
    pub(crate) const LAST_PUBLISHED: usize = 16;
    /// `magic` (u32).
    pub(crate) const MAGIC: usize = 24;
    /// `items_per_slot` (u32).
    pub(crate) const ITEMS_PER_SLOT: usize = 28;
    /// fastipc's message fingerprint (u64).
    pub(crate) const FINGERPRINT: usize = 32;
    /// fastipc's flags word (u32).
    pub(crate) const FLAGS: usize = 40;
    /// `init_state` (atomic u32).
    pub(crate) const INIT_STATE: usize = 48;
    /// Padding that must stay zero (the Python peer CASes 48..56 as one u64).
    pub(crate) const INIT_STATE_HIGH: usize = 52;
    /// fastipc's futex word (u32).
    pub(crate) const WAKE_SEQ: usize = 56;
    /// fastipc's "waiters present" flag (u32, 0 or 1).
    pub(crate) const SLEEPERS: usize = 60;
}

/// The 64-byte queue header, every field an atomic so that a `&Header` over shared
/// memory is sound whatever other processes do to it.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    /// Packed `(next_index << 16) | (last_reserve_n & 0xFFFF)`.
    pub reserved: AtomicU64,
    /// Capacity in elements.
    pub size: AtomicU32,
    /// Bytes per element.
    pub element_size: AtomicU32,
    /// Highest published index, `INVALID_INDEX` when none.
    pub last_published: AtomicU64,
    /// Layout marker and feature bits.
    pub magic: AtomicU32,
    /// Elements per control slot (0 reads as 1).
    pub items_per_slot: AtomicU32,
    /// fastipc: message layout fingerprint, 0 = unknown.
    pub fingerprint: AtomicU64,
    /// fastipc flags: `FLAG_ENDPOINTS`, `FLAG_LOSSLESS`, `FLAG_SINGLE_PRODUCER` (0 in
    /// peer-made queues).
    pub flags: AtomicU32,
    /// Padding (0).
    pub pad_44: AtomicU32,
    /// Creation handshake state, see [`init_state`].
    pub init_state: AtomicU32,
    /// Padding that must stay 0.
    pub pad_52: AtomicU32,
    /// fastipc: futex word of sleeping consumers.
    pub wake_seq: AtomicU32,
    /// fastipc: "waiters present" flag, 0 or 1 (bit 0; the other bits stay 0).
    pub sleepers: AtomicU32,
}

const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(align_of::<Header>() == 8);
    assert!(offset_of!(Header, reserved) == offset::RESERVED);
    assert!(offset_of!(Header, size) == offset::SIZE);
    assert!(offset_of!(Header, element_size) == offset::ELEMENT_SIZE);
    assert!(offset_of!(Header, last_published) == offset::LAST_PUBLISHED);
    assert!(offset_of!(Header, magic) == offset::MAGIC);
    assert!(offset_of!(Header, items_per_slot) == offset::ITEMS_PER_SLOT);
    assert!(offset_of!(Header, fingerprint) == offset::FINGERPRINT);
    assert!(offset_of!(Header, flags) == offset::FLAGS);
    assert!(offset_of!(Header, pad_44) == 44);
    assert!(offset_of!(Header, init_state) == offset::INIT_STATE);
    assert!(offset_of!(Header, pad_52) == offset::INIT_STATE_HIGH);
    assert!(offset_of!(Header, wake_seq) == offset::WAKE_SEQ);
    assert!(offset_of!(Header, sleepers) == offset::SLEEPERS);
    assert!(MAGIC == u32::from_le_bytes(*b"1QLS"));
};

impl Header {
    /// The header at offset 0 of `mem` (at least 64 bytes, 8-aligned).
    pub(crate) fn from_mem<'a>(mem: &MemRef<'a>) -> Result<&'a Header, MemError> {
        let ptr = mem.ptr_at(0, HEADER_SIZE, align_of::<Header>())?;
        // SAFETY: `ptr_at` checked 64 in-bounds bytes at an 8-aligned address, valid for
        // 'a (the MemRef contract). `Header` is 64 bytes of atomics only (sizes and offsets
        // asserted above), every bit pattern is valid for them, and all other access to
        // these bytes is atomic or by other processes, which atomics tolerate.
        Ok(unsafe { &*ptr.cast::<Header>() })
    }
}

/// One 16-byte control slot.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    /// Absolute index published here (or a wrap marker's target), `INVALID_INDEX`
    /// when never published.
    pub data_index: AtomicU64,
    /// Elements in the reservation published here.
    pub size: AtomicU32,
    /// Padding (0).
    pub pad: AtomicU32,
}

const _: () = {
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(align_of::<Slot>() == 8);
    assert!(offset_of!(Slot, data_index) == 0);
    assert!(offset_of!(Slot, size) == 8);
    assert!(offset_of!(Slot, pad) == 12);
};

/// Packs `reserved` as the peers do: `((index & 0xFFFF_FFFF_FFFF) << 16) | (n & 0xFFFF)`.
pub(crate) const fn pack_reserved(index: u64, n: u64) -> u64 {
    ((index & INDEX_MASK) << 16) | (n & 0xFFFF)
}

/// The `next_index` part of a `reserved` word.
pub(crate) const fn reserved_index(reserved: u64) -> u64 {
    reserved >> 16
}

/// The "last reservation size" part of a `reserved` word (truncated to 16 bits).
pub(crate) const fn reserved_count(reserved: u64) -> u16 {
    (reserved & 0xFFFF) as u16
}

/// Bytes a queue of `capacity` elements of `element_size` bytes needs (header, slots,
/// data), computed without overflow for any header values.
pub(crate) const fn required_len(capacity: u64, element_size: u64) -> u128 {
    HEADER_SIZE as u128
        + SLOT_SIZE as u128 * capacity as u128
        + element_size as u128 * capacity as u128
}

/// Where the parts of a queue live, for a validated capacity and element size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Geometry {
    /// Capacity in elements (a power of two, at most `MAX_CAPACITY`).
    pub capacity: usize,
    /// Bytes per element (non-zero, fits in u32).
    pub element_size: usize,
    /// Offset of the data area: `64 + 16 × capacity`.
    pub data_offset: usize,
    /// Bytes of header, slots and data (without any trailer).
    pub len: usize,
}

impl Geometry {
    /// The geometry of a new queue, or why the parameters cannot make one. The total size
    /// must fit in `isize` so that it can be allocated and mapped.
    pub fn new(capacity: usize, element_size: usize) -> Result<Geometry, GeometryError> {
        if capacity == 0 || !capacity.is_power_of_two() {
            return Err(GeometryError::Capacity(
                "must be a power of two (1, 2, 4, ...)",
            ));
        }
        if capacity > MAX_CAPACITY {
            return Err(GeometryError::Capacity(
                "larger than 2^31, the largest power of two the header's 32-bit field holds",
            ));
        }
        if element_size == 0 {
            return Err(GeometryError::ElementSize(
                "zero-sized elements cannot be queued",
            ));
        }
        if u32::try_from(element_size).is_err() {
            return Err(GeometryError::ElementSize(
                "larger than the header's 32-bit field can hold",
            ));
        }
        let len = required_len(capacity as u64, element_size as u64);
        if len > isize::MAX as u128 {
            return Err(GeometryError::Capacity(
                "capacity × element size is larger than memory can hold",
            ));
        }
        Ok(Geometry {
            capacity,
            element_size,
            data_offset: HEADER_SIZE + SLOT_SIZE * capacity,
            len: len as usize,
        })
    }

    /// Offset of the type trailer: the end of the data area rounded up to 8.
    pub fn trailer_offset(&self) -> usize {
        self.len.next_multiple_of(8)
    }

    /// Offset of the endpoint table: after the largest possible type trailer, rounded up
    /// to 64 (a cache line), so it does not depend on the type's name.
    pub fn endpoints_offset(&self) -> usize {
        (self.trailer_offset() + TRAILER_FIXED + MAX_TYPE_NAME).next_multiple_of(64)
    }

    /// Bytes a fastipc-made queue with an endpoint table takes.
    pub fn len_with_endpoints(&self) -> usize {
        self.endpoints_offset() + super::endpoints::TABLE_LEN
    }
}

/// Why [`Geometry::new`] refused its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeometryError {
    /// The capacity is unusable, with the reason.
    Capacity(&'static str),
    /// The element size is unusable, with the reason.
    ElementSize(&'static str),
}

/// Every header field, read once (atomically, field by field): what `fastipc inspect`
/// prints and what attach validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderSnapshot {
    /// The raw `reserved` word.
    pub reserved: u64,
    /// Capacity in elements (unvalidated).
    pub capacity: u32,
    /// Bytes per element (unvalidated).
    pub element_size: u32,
    /// `last_published` (`INVALID_INDEX` = none).
    pub last_published: u64,
    /// The full marker word at offset 24.
    pub magic: u32,
    /// `items_per_slot` as stored (0 reads as 1).
    pub items_per_slot: u32,
    /// fastipc fingerprint (0 = unknown).
    pub fingerprint: u64,
    /// fastipc flags (bytes 40..44): `FLAG_ENDPOINTS`, `FLAG_LOSSLESS`,
    /// `FLAG_SINGLE_PRODUCER`.
    pub flags: u32,
    /// Bytes 44..48 (padding, 0 expected).
    pub pad_44: u32,
    /// `init_state`.
    pub init_state: u32,
    /// Bytes 52..56 (must be 0).
    pub pad_52: u32,
    /// fastipc wake counter.
    pub wake_seq: u32,
    /// fastipc "waiters present" flag (non-zero = set).
    pub sleepers: u32,
}

impl HeaderSnapshot {
    /// Reads every field of `header` (acquire on `init_state` first, so the fields a
    /// ready creator wrote are visible).
    pub(crate) fn load(header: &Header) -> HeaderSnapshot {
        let init_state = header.init_state.load(Acquire);
        HeaderSnapshot {
            reserved: header.reserved.load(Relaxed),
            capacity: header.size.load(Relaxed),
            element_size: header.element_size.load(Relaxed),
            last_published: header.last_published.load(Relaxed),
            magic: header.magic.load(Relaxed),
            items_per_slot: header.items_per_slot.load(Relaxed),
            fingerprint: header.fingerprint.load(Relaxed),
            flags: header.flags.load(Relaxed),
            pad_44: header.pad_44.load(Relaxed),
            init_state,
            pad_52: header.pad_52.load(Relaxed),
            wake_seq: header.wake_seq.load(Relaxed),
            sleepers: header.sleepers.load(Relaxed),
        }
    }

    /// Decodes the header at the start of `mem` (at least 64 bytes, 8-aligned) without
    /// validating anything.
    ///
    /// ```
    /// use fastipc::MemRef;
    /// use fastipc::inspect::{HeaderSnapshot, MAGIC_PREFIX};
    ///
    /// let magic = MAGIC_PREFIX | 1; // "SLQ1"
    /// let mut buf = [0u64; 8];
    /// buf[3] = u64::from(magic); // bytes 24..28
    /// let snap = HeaderSnapshot::decode(&MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
    /// assert_eq!(snap.magic, magic);
    /// assert_eq!(snap.features(), 1);
    /// assert_eq!(snap.next_index(), 0);
    /// # Ok::<(), fastipc::MemError>(())
    /// ```
    pub fn decode(mem: &MemRef<'_>) -> Result<HeaderSnapshot, MemError> {
        Ok(HeaderSnapshot::load(Header::from_mem(mem)?))
    }

    /// The next free absolute index (`reserved >> 16`).
    pub fn next_index(&self) -> u64 {
        reserved_index(self.reserved)
    }

    /// The size of the last reservation as recorded (16 bits).
    pub fn last_reserve_count(&self) -> u16 {
        reserved_count(self.reserved)
    }

    /// The highest published index, if any.
    pub fn last_published_index(&self) -> Option<u64> {
        (self.last_published != INVALID_INDEX).then_some(self.last_published)
    }

    /// The feature nibble of the marker.
    pub fn features(&self) -> u32 {
        self.magic & MAGIC_FEATURE_MASK
    }

    /// Whether the marker has the "SLQ" prefix.
    pub fn has_slq_prefix(&self) -> bool {
        self.magic & !MAGIC_FEATURE_MASK == MAGIC_PREFIX
    }

    /// `items_per_slot` with 0 read as 1.
    pub fn effective_items_per_slot(&self) -> u32 {
        if self.items_per_slot == 0 {
            1
        } else {
            self.items_per_slot
        }
    }

    /// The bytes header, slots and data need according to this header.
    pub fn required_len(&self) -> u128 {
        required_len(u64::from(self.capacity), u64::from(self.element_size))
    }
}

/// The trailer's marker: `b"FIPCTYP1"`.
pub(crate) const TRAILER_MAGIC: u64 = u64::from_le_bytes(*b"FIPCTYP1");
/// Bytes of the trailer before the name.
pub(crate) const TRAILER_FIXED: usize = 24;
/// The longest type name a trailer records (longer names are cut at a char boundary).
pub(crate) const MAX_TYPE_NAME: usize = 256;

/// The type identity recorded in a fastipc-made queue's trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeTrailer {
    /// The message type's layout fingerprint.
    pub fingerprint: u64,
    /// The message type's name.
    pub name: String,
}

impl TypeTrailer {
    /// Bytes the trailer for `name` takes.
    pub fn len_for(name: &str) -> usize {
        TRAILER_FIXED + truncate_name(name).len()
    }

    /// Writes the trailer at `offset` of `mem` (nothing when the range is out of bounds).
    ///
    /// # Safety
    /// Nothing else may access those bytes meanwhile (memory nobody else can see yet: a
    /// segment being created): they are written non-atomically.
    pub(crate) unsafe fn write(mem: &MemRef<'_>, offset: usize, fingerprint: u64, name: &str) {
        let name = truncate_name(name);
        let mut bytes = Vec::with_capacity(TRAILER_FIXED + name.len());
        bytes.extend_from_slice(&TRAILER_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&fingerprint.to_le_bytes());
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(name.as_bytes());
        if let Ok(dst) = mem.ptr_at(offset, bytes.len(), 1) {
            // SAFETY: `ptr_at` checked the range; nothing else accesses these bytes
            // (caller contract).
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) }
        }
    }

    /// Reads a trailer at `offset` of `mem`, if a well-formed one is there. Never reads
    /// out of bounds; a missing, short or garbled trailer is `None`.
    pub fn read(mem: &MemRef<'_>, offset: usize) -> Option<TypeTrailer> {
        let mut fixed = [0u8; TRAILER_FIXED];
        read_bytes(mem, offset, &mut fixed)?;
        let word = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().unwrap_or([0; 8]));
        if word(0) != TRAILER_MAGIC {
            return None;
        }
        let fingerprint = word(8);
        let len = u32::from_le_bytes(fixed[16..20].try_into().unwrap_or([0; 4])) as usize;
        if len > MAX_TYPE_NAME {
            return None;
        }
        let mut name = vec![0u8; len];
        read_bytes(mem, offset.checked_add(TRAILER_FIXED)?, &mut name)?;
        Some(TypeTrailer {
            fingerprint,
            name: String::from_utf8_lossy(&name).into_owned(),
        })
    }
}

fn truncate_name(name: &str) -> &str {
    if name.len() <= MAX_TYPE_NAME {
        return name;
    }
    let mut end = MAX_TYPE_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Copies `out.len()` bytes from `offset` of `mem` with volatile byte reads (the bytes
/// live in shared memory that another process could be writing); `None` if out of bounds.
fn read_bytes(mem: &MemRef<'_>, offset: usize, out: &mut [u8]) -> Option<()> {
    let src = mem.ptr_at(offset, out.len(), 1).ok()?;
    for (i, b) in out.iter_mut().enumerate() {
        let p = src.wrapping_add(i);
        // SAFETY: `ptr_at` checked that `offset..offset + out.len()` is inside `mem`, so
        // `p` is in bounds and valid for reads; a volatile read of a `u8` has no
        // alignment requirement and every value is valid.
        *b = unsafe { p.read_volatile() };
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_packing_matches_the_peers() {
        assert_eq!(pack_reserved(0, 0), 0);
        assert_eq!(pack_reserved(5, 3), (5 << 16) | 3);
        assert_eq!(pack_reserved(1 << 48, 1), 1, "index is cut to 48 bits");
        assert_eq!(
            pack_reserved(7, 0x1_0002),
            (7 << 16) | 2,
            "size is cut to 16 bits"
        );
        let r = pack_reserved(123_456, 42);
        assert_eq!(reserved_index(r), 123_456);
        assert_eq!(reserved_count(r), 42);
    }

    #[test]
    fn geometry_checks_parameters() {
        let g = Geometry::new(8, 8).unwrap();
        assert_eq!(g.data_offset, 64 + 128);
        assert_eq!(g.len, 64 + 128 + 64);
        assert_eq!(g.trailer_offset(), g.len);
        assert_eq!(Geometry::new(1, 3).unwrap().trailer_offset(), 64 + 16 + 8);
        assert!(matches!(
            Geometry::new(0, 8),
            Err(GeometryError::Capacity(_))
        ));
        assert!(matches!(
            Geometry::new(12, 8),
            Err(GeometryError::Capacity(_))
        ));
        assert!(matches!(
            Geometry::new(MAX_CAPACITY * 2, 8),
            Err(GeometryError::Capacity(_))
        ));
        assert!(matches!(
            Geometry::new(8, 0),
            Err(GeometryError::ElementSize(_))
        ));
        assert!(matches!(
            Geometry::new(8, 1 << 32),
            Err(GeometryError::ElementSize(_))
        ));
    }

    #[test]
    fn required_len_never_overflows() {
        assert_eq!(
            required_len(u64::from(u32::MAX), u64::from(u32::MAX)),
            64 + 16 * u128::from(u32::MAX) + u128::from(u32::MAX) * u128::from(u32::MAX)
        );
    }

    #[test]
    fn snapshot_decodes_every_field() {
        let mut buf = [0u64; 8];
        {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            bytes[0..8].copy_from_slice(&pack_reserved(9, 2).to_le_bytes());
            bytes[8..12].copy_from_slice(&16u32.to_le_bytes());
            bytes[12..16].copy_from_slice(&24u32.to_le_bytes());
            bytes[16..24].copy_from_slice(&7u64.to_le_bytes());
            bytes[24..28].copy_from_slice(b"1QLS");
            bytes[28..32].copy_from_slice(&0u32.to_le_bytes());
            bytes[32..40].copy_from_slice(&0xABCDu64.to_le_bytes());
            bytes[48..52].copy_from_slice(&3u32.to_le_bytes());
            bytes[56..60].copy_from_slice(&5u32.to_le_bytes());
            bytes[60..64].copy_from_slice(&1u32.to_le_bytes());
        }
        let s =
            HeaderSnapshot::decode(&MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf))).unwrap();
        assert_eq!(s.next_index(), 9);
        assert_eq!(s.last_reserve_count(), 2);
        assert_eq!(s.capacity, 16);
        assert_eq!(s.element_size, 24);
        assert_eq!(s.last_published_index(), Some(7));
        assert_eq!(s.magic, MAGIC);
        assert!(s.has_slq_prefix());
        assert_eq!(s.effective_items_per_slot(), 1);
        assert_eq!(s.fingerprint, 0xABCD);
        assert_eq!(s.init_state, init_state::READY);
        assert_eq!((s.wake_seq, s.sleepers), (5, 1));
        assert_eq!(s.required_len(), 64 + 16 * 16 + 24 * 16);
    }

    #[test]
    fn trailer_round_trips_and_rejects_garbage() {
        let mut buf = vec![0u64; 64];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
        assert_eq!(TypeTrailer::read(&mem, 8), None);
        // SAFETY: `buf` is this test's own memory.
        unsafe { TypeTrailer::write(&mem, 8, 77, "Tick") };
        assert_eq!(
            TypeTrailer::read(&mem, 8),
            Some(TypeTrailer {
                fingerprint: 77,
                name: "Tick".into()
            })
        );
        // Out of bounds: no panic, no read.
        assert_eq!(TypeTrailer::read(&mem, 500), None);
        assert_eq!(TypeTrailer::read(&mem, usize::MAX - 3), None);
        // A name length pointing past the end.
        let long = "x".repeat(400);
        // SAFETY: as above.
        unsafe { TypeTrailer::write(&mem, 0, 1, &long) };
        assert_eq!(
            TypeTrailer::read(&mem, 0).unwrap().name.len(),
            MAX_TYPE_NAME
        );
        assert_eq!(TypeTrailer::len_for(&long), TRAILER_FIXED + MAX_TYPE_NAME);
    }
}
