//! The byte layout of a [`SharedCell`](super::SharedCell) segment: a mutex, a small
//! header naming the value's type, then the value. Offsets, constants, and a decoder that
//! reads a segment without attaching to it (for tools such as `fastipc inspect`).
//!
//! # Segment `/dev/shm/__fastipc_cell_NAME`
//! | off | size | field | contents |
//! |---|---|---|---|
//! | 0 | 64 | mutex | a fastipc [`Mutex`](crate::sync::Mutex) header (LAYOUT.md §2); it guards the value |
//! | 64 | 4 | magic | [`CELL_MAGIC`] (`"CELL"`) |
//! | 68 | 4 | version | [`CELL_VERSION`] (1) |
//! | 72 | 8 | fingerprint | the value type's [`IpcMessage::FINGERPRINT`](crate::IpcMessage::FINGERPRINT) (never 0) |
//! | 80 | 4 | value offset | [`VALUE_OFFSET`] (128) |
//! | 84 | 4 | value size | `size_of::<T>()` |
//! | 88 | 4 | value align | `align_of::<T>()` (at most 16) |
//! | 92 | 4 | type name length | bytes of the type name stored at 96 (at most [`TYPE_NAME_CAPACITY`]) |
//! | 96 | 32 | type name | the type's [`IpcMessage::NAME`](crate::IpcMessage::NAME), UTF-8, cut at a character boundary to fit; for error messages only |
//! | 128 | size | value | the `T`, 16-aligned (the mapping is page-aligned) |
//!
//! All header fields are little-endian and written once, by the creator, before the
//! segment gets its name ([`Segment::create`](crate::Segment::create) links a fully
//! initialised file), so an attacher never sees a half-written header. The value is read
//! and written only while holding the mutex. The value has its own cache line(s) after the
//! header's two.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::error::{MemError, SyncError};
use crate::mem::MemRef;
use crate::sync::layout::{MUTEX_SIZE, MutexInfo};

/// Segment-name prefix of a shared cell.
pub const CELL_PREFIX: &str = "__fastipc_cell_";
/// Magic number at offset 64: `"CELL"` read as a little-endian u32.
pub const CELL_MAGIC: u32 = 0x4C4C_4543;
/// The layout version this crate writes and reads.
pub const CELL_VERSION: u32 = 1;

/// Offset of the mutex header.
pub const OFF_MUTEX: usize = 0;
/// Offset of the cell magic.
pub const OFF_CELL_MAGIC: usize = MUTEX_SIZE;
/// Offset of the layout version.
pub const OFF_VERSION: usize = 68;
/// Offset of the value type's fingerprint (u64).
pub const OFF_FINGERPRINT: usize = 72;
/// Offset of the field holding the value's offset.
pub const OFF_VALUE_OFFSET: usize = 80;
/// Offset of the value's size.
pub const OFF_VALUE_SIZE: usize = 84;
/// Offset of the value's alignment.
pub const OFF_VALUE_ALIGN: usize = 88;
/// Offset of the stored type name's length.
pub const OFF_TYPE_NAME_LEN: usize = 92;
/// Offset of the type name bytes.
pub const OFF_TYPE_NAME: usize = 96;
/// Room for the type name, in bytes.
pub const TYPE_NAME_CAPACITY: usize = 32;
/// Size of the mutex and the cell header together.
pub const HEADER_SIZE: usize = 128;
/// Offset of the value.
pub const VALUE_OFFSET: usize = HEADER_SIZE;
/// The largest value alignment the layout guarantees (the value offset is a multiple).
pub const MAX_VALUE_ALIGN: usize = 16;

const _: () = {
    assert!(OFF_TYPE_NAME + TYPE_NAME_CAPACITY == HEADER_SIZE);
    assert!(VALUE_OFFSET.is_multiple_of(MAX_VALUE_ALIGN));
    assert!(TYPE_NAME_CAPACITY.is_multiple_of(4));
};

/// The segment length of a cell holding a value of `value_size` bytes.
pub const fn segment_len(value_size: usize) -> usize {
    VALUE_OFFSET + value_size
}

/// What a cell's header says about its value type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValueType {
    /// The type's layout fingerprint.
    pub fingerprint: u64,
    /// `size_of` the type.
    pub size: u32,
    /// `align_of` the type.
    pub align: u32,
    /// The type's name as stored (possibly cut short; for messages only).
    pub name: String,
}

/// A cell segment's header as read at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CellInfo {
    /// The mutex guarding the value.
    pub mutex: MutexInfo,
    /// Magic number: [`CELL_MAGIC`] in a cell.
    pub magic: u32,
    /// Layout version: [`CELL_VERSION`].
    pub version: u32,
    /// Offset of the value: [`VALUE_OFFSET`].
    pub value_offset: u32,
    /// The value's type.
    pub value_type: ValueType,
}

impl CellInfo {
    /// Reads the header of a cell segment (at least [`HEADER_SIZE`] bytes, 8-aligned),
    /// without checking it; see [`CellInfo::is_valid`].
    ///
    /// ```
    /// use fastipc::{IpcMessage, MemRef};
    /// use fastipc::named::cell::layout::{self, CellInfo};
    /// let mut buf = [0u64; layout::HEADER_SIZE / 8 + 1];
    /// let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    /// // SAFETY: a buffer of this example's own; no cell uses it.
    /// unsafe { layout::write_header::<u64>(mem)? };
    /// let info = CellInfo::read(mem)?;
    /// assert!(info.is_valid());
    /// assert_eq!(info.value_type.fingerprint, u64::FINGERPRINT);
    /// assert_eq!(info.value_type.name, "u64");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(mem: MemRef<'_>) -> Result<CellInfo, SyncError> {
        let mem_err = |source: MemError| SyncError::Buffer {
            object: "shared cell",
            source,
        };
        let mutex = MutexInfo::read(mem)?;
        let word = |off: usize| -> Result<u32, SyncError> {
            Ok(mem.atomic_u32(off).map_err(mem_err)?.load(Acquire))
        };
        let magic = word(OFF_CELL_MAGIC)?;
        let fingerprint = mem
            .atomic_u64(OFF_FINGERPRINT)
            .map_err(mem_err)?
            .load(Acquire);
        let name_len = (word(OFF_TYPE_NAME_LEN)? as usize).min(TYPE_NAME_CAPACITY);
        let mut name = [0u8; TYPE_NAME_CAPACITY];
        for (i, chunk) in name.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&word(OFF_TYPE_NAME + 4 * i)?.to_le_bytes());
        }
        Ok(CellInfo {
            mutex,
            magic,
            version: word(OFF_VERSION)?,
            value_offset: word(OFF_VALUE_OFFSET)?,
            value_type: ValueType {
                fingerprint,
                size: word(OFF_VALUE_SIZE)?,
                align: word(OFF_VALUE_ALIGN)?,
                name: String::from_utf8_lossy(&name[..name_len]).into_owned(),
            },
        })
    }

    /// Whether the header is one this crate writes: magic, version and value offset as
    /// expected, a valid mutex magic, a non-zero fingerprint, an alignment that is a
    /// power of two no larger than [`MAX_VALUE_ALIGN`].
    pub fn is_valid(&self) -> bool {
        self.mutex.has_valid_magic()
            && self.magic == CELL_MAGIC
            && self.version == CELL_VERSION
            && self.value_offset as usize == VALUE_OFFSET
            && self.value_type.fingerprint != 0
            && self.value_type.align.is_power_of_two()
            && self.value_type.align as usize <= MAX_VALUE_ALIGN
    }
}

/// Writes a fresh cell header for values of type `T` (the mutex unlocked, then the cell
/// fields) at the start of `mem`, which must hold at least [`HEADER_SIZE`] bytes from an
/// 8-aligned address. The value bytes are left alone.
///
/// Only a creator calls this, before anyone else can see the memory.
///
/// # Safety
/// No [`SharedCell`](super::SharedCell) may be using `mem` (in this process or another):
/// the header write unlocks its mutex, so while one of its guards is alive another could
/// be taken, and two `&mut T` to the value would exist. Memory nobody else can reach yet
/// (a segment not linked under its name, a buffer of the caller's) is always fine.
pub unsafe fn write_header<T: crate::IpcMessage>(mem: MemRef<'_>) -> Result<(), SyncError> {
    let mem_err = |source: MemError| SyncError::Buffer {
        object: "shared cell",
        source,
    };
    // Checks the whole header's length and alignment up front.
    mem.ptr_at(0, HEADER_SIZE, 8).map_err(mem_err)?;
    crate::sync::Mutex::init(mem)?;
    let word = |off: usize, v: u32| -> Result<(), SyncError> {
        mem.atomic_u32(off).map_err(mem_err)?.store(v, Relaxed);
        Ok(())
    };
    let (name, name_len) = type_name_bytes(T::NAME);
    for (i, chunk) in name.chunks_exact(4).enumerate() {
        let bytes = [chunk[0], chunk[1], chunk[2], chunk[3]];
        word(OFF_TYPE_NAME + 4 * i, u32::from_le_bytes(bytes))?;
    }
    word(OFF_TYPE_NAME_LEN, name_len as u32)?;
    word(OFF_VALUE_ALIGN, align_of::<T>() as u32)?;
    word(OFF_VALUE_SIZE, size_of_u32::<T>())?;
    word(OFF_VALUE_OFFSET, VALUE_OFFSET as u32)?;
    mem.atomic_u64(OFF_FINGERPRINT)
        .map_err(mem_err)?
        .store(T::FINGERPRINT, Relaxed);
    word(OFF_VERSION, CELL_VERSION)?;
    mem.atomic_u32(OFF_CELL_MAGIC)
        .map_err(mem_err)?
        .store(CELL_MAGIC, Release);
    Ok(())
}

/// `size_of::<T>()` as the header stores it. A message larger than 4 GiB does not fit a
/// cell; the typed API refuses it before writing ([`fits`]).
fn size_of_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// Whether a value of type `T` can live in a cell: its size fits the header's 32 bits and
/// its alignment is at most [`MAX_VALUE_ALIGN`] (every `IpcMessage` promises that).
pub const fn fits<T>() -> bool {
    size_of::<T>() <= u32::MAX as usize && align_of::<T>() <= MAX_VALUE_ALIGN
}

/// `name` cut to [`TYPE_NAME_CAPACITY`] bytes at a character boundary, zero-filled, and
/// the length kept.
fn type_name_bytes(name: &str) -> ([u8; TYPE_NAME_CAPACITY], usize) {
    let mut len = name.len().min(TYPE_NAME_CAPACITY);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    let mut out = [0u8; TYPE_NAME_CAPACITY];
    out[..len].copy_from_slice(&name.as_bytes()[..len]);
    (out, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IpcMessage;
    use crate::region::Region;

    #[test]
    fn header_round_trips_and_fills_exactly_128_bytes() {
        let r = Region::heap(segment_len(16));
        // SAFETY: the test's own heap region; no cell uses it.
        unsafe { write_header::<[u64; 2]>(r.mem()) }.unwrap();
        let info = CellInfo::read(r.mem()).unwrap();
        assert!(info.is_valid(), "{info:?}");
        assert_eq!(info.magic, CELL_MAGIC);
        assert_eq!(info.version, CELL_VERSION);
        assert_eq!(info.value_offset as usize, VALUE_OFFSET);
        assert_eq!(
            info.value_type,
            ValueType {
                fingerprint: <[u64; 2]>::FINGERPRINT,
                size: 16,
                align: 8,
                name: "[u64; 2]".into(),
            }
        );
        assert!(!info.mutex.is_locked());
        // The bytes: magic "CELL" at 64, version 1 at 68.
        assert_eq!(
            r.mem().atomic_u32(64).unwrap().load(Relaxed).to_le_bytes(),
            *b"CELL"
        );
    }

    #[test]
    fn long_and_multibyte_type_names_are_cut_at_a_character_boundary() {
        let (bytes, len) = type_name_bytes(&"é".repeat(20));
        assert_eq!(len, 32);
        assert_eq!(std::str::from_utf8(&bytes[..len]).unwrap(), "é".repeat(16));
        let (_, len) = type_name_bytes(&format!("a{}", "é".repeat(20)));
        assert_eq!(len, 31);
        let (bytes, len) = type_name_bytes("Tick");
        assert_eq!(&bytes[..len], b"Tick");
        assert!(bytes[len..].iter().all(|&b| b == 0));
    }

    #[test]
    fn zeroed_or_foreign_headers_are_not_valid() {
        let r = Region::heap(HEADER_SIZE);
        assert!(!CellInfo::read(r.mem()).unwrap().is_valid());
        // SAFETY: the test's own heap region; no cell uses it.
        unsafe { write_header::<u32>(r.mem()) }.unwrap();
        r.mem().atomic_u32(OFF_VERSION).unwrap().store(2, Relaxed);
        assert!(!CellInfo::read(r.mem()).unwrap().is_valid());
    }

    #[test]
    fn short_buffers_are_errors() {
        let r = Region::heap(HEADER_SIZE);
        let short = r.mem().slice(0, HEADER_SIZE - 4).unwrap();
        assert!(matches!(
            // SAFETY: the test's own heap region; no cell uses it.
            unsafe { write_header::<u32>(short) },
            Err(SyncError::Buffer { .. })
        ));
        assert!(CellInfo::read(short).is_err());
    }
}
