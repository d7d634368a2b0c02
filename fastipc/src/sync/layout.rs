//! The byte layouts of the sync primitives (LAYOUT.md §2), shared with the Python
//! package `fastipc`: offsets, magic numbers, state values, and decoders that read a
//! header without using it (for tools such as `fastipc inspect`).
//!
//! All fields are little-endian and touched only with atomic instructions of their width
//! (by fastipc; the Python peer writes `last_acquired_ns` with a plain 8-byte copy).
//!
//! # Mutex (64 bytes)
//! | off | size | field | contents |
//! |---|---|---|---|
//! | 0 | 4 | magic | [`MUTEX_MAGIC`] (`"MUTX"`), or 0 in a mutex the Python `NamedMutex` created |
//! | 4 | 4 | flags | 0 |
//! | 8 | 4 | state | futex word, see [`MUTEX_UNLOCKED`], [`MUTEX_LOCKED`], [`MUTEX_CONTENDED`] |
//! | 12 | 4 | owner_pid | process id of the holder, 0 when free (cleared *before* the state is released) |
//! | 16 | 8 | last_acquired_ns | `CLOCK_REALTIME` ns of an acquisition (informative, see [`crate::sync::mutex`]) |
//! | 24..64 | 40 | reserved | 0 for the Python package; fastipc uses the words below |
//!
//! # Semaphore (64 bytes)
//! | off | size | field | contents |
//! |---|---|---|---|
//! | 0 | 4 | magic | [`SEMAPHORE_MAGIC`] (`"SEMA"`) |
//! | 4 | 4 | flags | 0 |
//! | 8 | 4 | count | futex word: tokens available |
//! | 12 | 4 | last_pid | process id of the last waiter that took a token (informative) |
//! | 16 | 8 | last_acquired_ns | `CLOCK_REALTIME` ns of a wait that had to wait (informative) |
//! | 24..64 | 40 | reserved | 0 for the Python package; fastipc uses the words below |
//!
//! # The reserved bytes fastipc uses
//! LAYOUT.md §2 calls bytes 24..64 of both headers reserved and 0. The Python package
//! zero-fills them when it creates a header (`ftruncate`) and never reads or writes them
//! afterwards (checked against the 0.1.5 sources and binary), so fastipc keeps state of
//! its own there. Every byte of 24..64 is accounted for here; whatever is not listed is
//! written 0 by [`Mutex::init`](super::Mutex::init) and
//! [`Semaphore::init`](super::Semaphore::init) and never touched again.
//!
//! ## Mutex
//! Each byte range below is only ever accessed with one width (the token as a u64, the
//! rest as u32s), so no atomic access overlaps another of a different size.
//!
//! | off | size | field | bits |
//! |---|---|---|---|
//! | 24 (header 8-aligned) or 28 (header 4 mod 8) | 8 | owner token ([`mutex_token_offset`]) | bits 63..1: a generation counter, bumped by every fastipc acquisition (a lock, or the takeover of a dead holder's lock); bit 0 ([`MUTEX_TOKEN_PUBLISHED`]): set while a fastipc holder is recorded in the side words below. 0 in a fresh header. Accessed only as one atomic u64: published (release) by a fastipc locker *after* the side words, unpublished (same generation, bit 0 clear) before the state is released, and the word a dead holder's lock is taken over with (one compare-and-swap from the value the waiter judged) |
//! | 36 | 4 | owner pid ([`OFF_MUTEX_OWNER_ID_PID`]) | all 32 bits: the process id of the fastipc holder the token names (side word) |
//! | 40 | 4 | owner pid namespace ([`OFF_MUTEX_OWNER_NS`]) | all 32 bits: the inode number of that holder's `/proc/self/ns/pid` (the kernel numbers them with 32 bits); 0 when it could not be read (side word) |
//! | 44 | 4 | owner start time ([`OFF_MUTEX_OWNER_START`]) | all 32 bits: the low 32 bits of that holder's start time (clock ticks after boot, `/proc/PID/stat` field 22; 0 if unknown) (side word) |
//! | 24..28 or 32..36 (the 4 bytes of 24..36 the token does not cover), 48..64 | 20 | unused | 0 |
//!
//! The side words are stored (release) before the token is published and left in place
//! on unlock: they describe a holder only while the token's bit 0 is set, and only the
//! acquisition that published that token (see [`crate::sync::mutex`], "Dead owners").
//!
//! ## Semaphore
//! | off | size | field | bits |
//! |---|---|---|---|
//! | 24 | 4 | sleepers ([`OFF_SEM_SLEEPERS`]) | all 32 bits: how many fastipc waiters have announced that they may sleep on `count` (incremented before a waiter re-reads the count and sleeps, decremented when it wakes; read-modify-writes, sequentially consistent). A waiter killed while announced leaves it one too high |
//! | 28 | 4 | made by (`OFF_SEM_MADE_BY`) | all 32 bits: `SEMAPHORE_MADE_BY_FASTIPC` (`"FIPC"`, `0x43504946`) when fastipc's init wrote the header, before anyone could see it; 0 in a semaphore the Python package created (whose creator may still be writing its count, see [`NamedSemaphore`](crate::named::NamedSemaphore)) |
//! | 32..64 | 32 | unused | 0 |
//!
//! # Event (4 bytes)
//! One u32 futex word: 0 clear, anything else set (fastipc and Python store 1). Nothing
//! else; no reserved bytes.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed},
};

use crate::error::SyncError;
use crate::mem::MemRef;
use crate::sys::clock::realtime_ns;

/// Size of a mutex header in bytes.
pub const MUTEX_SIZE: usize = 64;
/// Magic number at offset 0 of a mutex: `"MUTX"` read as a little-endian u32.
pub const MUTEX_MAGIC: u32 = 0x4D55_5458;
/// Size of a semaphore header in bytes.
pub const SEMAPHORE_SIZE: usize = 64;
/// Magic number at offset 0 of a semaphore: `"SEMA"` read as a little-endian u32.
pub const SEMAPHORE_MAGIC: u32 = 0x5345_4D41;
/// Size of an event in bytes.
pub const EVENT_SIZE: usize = 4;
/// Alignment every primitive's memory needs.
pub(crate) const ALIGN: usize = 4;

/// Offset of the magic number (mutex and semaphore).
pub(crate) const OFF_MAGIC: usize = 0;
/// Offset of the flags word (mutex and semaphore).
pub(crate) const OFF_FLAGS: usize = 4;
/// Offset of the mutex's state word (the futex word).
pub(crate) const OFF_MUTEX_STATE: usize = 8;
/// Offset of the mutex's owner process id.
pub(crate) const OFF_MUTEX_OWNER: usize = 12;
/// Offset of `last_acquired_ns` (mutex and semaphore): low half here, high half 4 later.
pub(crate) const OFF_LAST_NS: usize = 16;
/// Offset of the semaphore's count (the futex word).
pub(crate) const OFF_SEM_COUNT: usize = 8;
/// Offset of the semaphore's `last_pid`.
pub(crate) const OFF_SEM_LAST_PID: usize = 12;
/// Offset of the semaphore's fastipc sleeper count.
pub(crate) const OFF_SEM_SLEEPERS: usize = 24;
/// Offset of the semaphore's creator mark (fastipc only): `SEMAPHORE_MADE_BY_FASTIPC`
/// when [`Semaphore::init`](super::Semaphore::init) wrote the header.
pub(crate) const OFF_SEM_MADE_BY: usize = 28;
/// The creator mark of a semaphore fastipc initialised: `"FIPC"` in memory order. A
/// semaphore the Python package created has 0 there.
pub(crate) const SEMAPHORE_MADE_BY_FASTIPC: u32 = u32::from_le_bytes(*b"FIPC");
/// Offset of the mutex's owner pid (fastipc only, a side word of the owner token): the
/// process id of the holder the published token names.
pub(crate) const OFF_MUTEX_OWNER_ID_PID: usize = 36;
/// Offset of the mutex's owner pid namespace (fastipc only, a side word of the owner
/// token): the pid namespace of the holder the published token names.
pub(crate) const OFF_MUTEX_OWNER_NS: usize = 40;
/// Offset of the mutex's owner start time (fastipc only, a side word of the owner
/// token): the low 32 bits of the start time of the holder the published token names.
pub(crate) const OFF_MUTEX_OWNER_START: usize = 44;
/// Bit 0 of the mutex's owner token: set while a fastipc holder is recorded.
pub(crate) const MUTEX_TOKEN_PUBLISHED: u64 = 1;
/// First offset of the reserved area (mutex and semaphore; checked by the tests).
#[cfg(test)]
const OFF_RESERVED: usize = 24;

/// Mutex state: free.
pub const MUTEX_UNLOCKED: u32 = 0;
/// Mutex state: held, and nobody has announced that it sleeps on the state word.
pub const MUTEX_LOCKED: u32 = 1;
/// Mutex state: held, and waiters may sleep on the state word (the unlocker must wake one).
pub const MUTEX_CONTENDED: u32 = 2;

/// Offset of the mutex's owner token (a u64) for a header at address `addr`: 24 when
/// `addr` is 8-aligned (every mapped segment), else 28. Both lie in the reserved area,
/// which the Python peer never touches once the mutex exists.
pub(crate) const fn mutex_token_offset(addr: usize) -> usize {
    if addr.is_multiple_of(8) { 24 } else { 28 }
}

/// A checked view of the first `LEN` bytes of a primitive's memory: the constructor
/// verifies the length and the 4-byte alignment once, so field accessors are free. Only
/// the address is kept (the length is the type's `LEN`), so views and guards stay small.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHeader<'a, const LEN: usize> {
    base: NonNull<u8>,
    _mem: PhantomData<MemRef<'a>>,
}

impl<'a, const LEN: usize> RawHeader<'a, LEN> {
    /// Checks that `mem` holds at least `LEN` bytes from a 4-aligned address.
    pub(crate) fn new(mem: MemRef<'a>, object: &'static str) -> Result<Self, SyncError> {
        let ptr = mem
            .ptr_at(0, LEN, ALIGN)
            .map_err(|source| SyncError::Buffer { object, source })?;
        // SAFETY: `ptr_at(0, ..)` returns the range's first address, which a MemRef
        // never lets be null (its constructors require a non-null pointer).
        let base = unsafe { NonNull::new_unchecked(ptr) };
        Ok(RawHeader {
            base,
            _mem: PhantomData,
        })
    }

    /// The u32 at offset `OFF` (checked at compile time to lie inside the header).
    #[inline(always)]
    pub(crate) fn word<const OFF: usize>(&self) -> &'a AtomicU32 {
        const { assert!(OFF.is_multiple_of(4) && OFF + 4 <= LEN) };
        // SAFETY: `new` checked that the memory holds at least LEN bytes from the
        // 4-aligned address `base`; OFF is a multiple of 4 with OFF + 4 <= LEN (asserted
        // at compile time), so the word is in bounds and aligned. By the MemRef contract
        // the bytes stay valid for 'a and every access to them is atomic.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().wrapping_add(OFF).cast()) }
    }

    /// The u32 at a run-time offset, if it lies inside the header and is aligned.
    pub(crate) fn word_at(&self, off: usize) -> Option<&'a AtomicU32> {
        if !off.is_multiple_of(4) || off.checked_add(4)? > LEN {
            return None;
        }
        // SAFETY: as in `word`, with the bounds and alignment checked just above.
        Some(unsafe { AtomicU32::from_ptr(self.base.as_ptr().wrapping_add(off).cast()) })
    }

    /// The header's address.
    pub(crate) fn addr(&self) -> usize {
        self.base.as_ptr() as usize
    }
}

/// The 64-byte headers (mutex and semaphore; `MUTEX_SIZE == SEMAPHORE_SIZE`).
impl<'a> RawHeader<'a, MUTEX_SIZE> {
    /// `last_acquired_ns` (offset 16), read as two u32 halves, low first. Informative:
    /// the halves may come from two writes.
    pub(crate) fn last_acquired_ns(&self) -> u64 {
        let lo = self.word::<OFF_LAST_NS>().load(Relaxed);
        let hi = self.word::<{ OFF_LAST_NS + 4 }>().load(Relaxed);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Writes `CLOCK_REALTIME` now into `last_acquired_ns` (two u32 halves, low first).
    pub(crate) fn stamp_last_acquired(&self) {
        let ns = realtime_ns();
        self.word::<OFF_LAST_NS>().store(ns as u32, Relaxed);
        self.word::<{ OFF_LAST_NS + 4 }>()
            .store((ns >> 32) as u32, Relaxed);
    }

    /// Writes 0 into every u32 from offset 4 to the end, except the 8 bytes of the mutex
    /// token when `skip_token` (a mutex `init` then clears it as a u64: the token's bytes
    /// are only ever accessed with one width).
    pub(crate) fn zero_after_magic(&self, skip_token: bool) {
        let token = mutex_token_offset(self.addr());
        for off in (OFF_FLAGS..MUTEX_SIZE).step_by(4) {
            if skip_token && (token..token + 8).contains(&off) {
                continue;
            }
            if let Some(w) = self.word_at(off) {
                w.store(0, Relaxed);
            }
        }
    }

    /// The mutex's owner token (see [`mutex_token_offset`]).
    #[inline(always)]
    pub(crate) fn token(&self) -> &'a AtomicU64 {
        let off = mutex_token_offset(self.addr());
        // SAFETY: the header is 4-aligned and MUTEX_SIZE (64) bytes long (checked in
        // `new`); `off` is 24 when the base is 8-aligned and 28 when it is 4 mod 8, so
        // base + off is 8-aligned and off + 8 <= 36 <= 64. Valid for 'a and only
        // accessed atomically, as a u64, by fastipc (MemRef contract).
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().wrapping_add(off).cast()) }
    }

    /// The fastipc holder the mutex's token names, if it is published (the side words
    /// read one by one: a snapshot only while nothing changes).
    pub(crate) fn owner_identity(&self) -> Option<OwnerIdentity> {
        if self.token().load(Acquire) & MUTEX_TOKEN_PUBLISHED == 0 {
            return None;
        }
        Some(OwnerIdentity {
            pid: self.word::<OFF_MUTEX_OWNER_ID_PID>().load(Acquire),
            start_time_low: self.word::<OFF_MUTEX_OWNER_START>().load(Acquire),
        })
    }
}

/// The fastipc identity of a mutex holder: its process id and the low 32 bits of its
/// start time (clock ticks after boot), which together survive process-id reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct OwnerIdentity {
    /// The holder's process id.
    pub pid: u32,
    /// Low 32 bits of the holder's start time; 0 when unknown.
    pub start_time_low: u32,
}

impl OwnerIdentity {
    /// The identity of process `pid` that started at `start_time_low` (the low 32 bits of
    /// its start time in clock ticks after boot; 0 when unknown).
    pub const fn new(pid: u32, start_time_low: u32) -> OwnerIdentity {
        OwnerIdentity {
            pid,
            start_time_low,
        }
    }

    /// Decodes `pid << 32 | start_time_low` (a compact form for tools; the mutex header
    /// keeps the two halves in side words of its owner token); `None` for 0.
    pub const fn from_word(word: u64) -> Option<OwnerIdentity> {
        if word == 0 {
            None
        } else {
            Some(OwnerIdentity {
                pid: (word >> 32) as u32,
                start_time_low: word as u32,
            })
        }
    }

    /// Encodes the identity as `pid << 32 | start_time_low`.
    pub const fn to_word(self) -> u64 {
        ((self.pid as u64) << 32) | self.start_time_low as u64
    }
}

/// A mutex header as read at one moment (fields read one by one, not as a snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MutexInfo {
    /// Magic number: [`MUTEX_MAGIC`], or 0 in a mutex made by the Python `NamedMutex`.
    pub magic: u32,
    /// Flags word (0).
    pub flags: u32,
    /// State word: [`MUTEX_UNLOCKED`], [`MUTEX_LOCKED`] or [`MUTEX_CONTENDED`].
    pub state: u32,
    /// Holder's process id, 0 when free or not yet recorded.
    pub owner_pid: u32,
    /// `CLOCK_REALTIME` ns of an acquisition (informative).
    pub last_acquired_ns: u64,
    /// The fastipc holder's identity, if a fastipc process holds the lock (its owner
    /// token is published).
    pub owner_identity: Option<OwnerIdentity>,
    /// The pid namespace of the holder `owner_identity` names (the inode number of its
    /// `/proc/self/ns/pid`); 0 when unknown. Left in place on unlock: meaningful only
    /// while `owner_identity` is recorded.
    pub owner_pid_namespace: u32,
}

impl MutexInfo {
    /// Reads the mutex header at the start of `mem` (64 bytes, 4-aligned). The magic is
    /// reported, not checked.
    ///
    /// ```
    /// use fastipc::MemRef;
    /// use fastipc::sync::{Mutex, MutexInfo};
    /// let mut buf = [0u64; 8];
    /// let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    /// let m = Mutex::init(mem)?;
    /// let _g = m.lock().unwrap();
    /// let info = MutexInfo::read(mem)?;
    /// assert!(info.is_locked() && info.has_valid_magic());
    /// assert_eq!(info.owner_pid, std::process::id());
    /// # Ok::<(), fastipc::error::SyncError>(())
    /// ```
    pub fn read(mem: MemRef<'_>) -> Result<MutexInfo, SyncError> {
        Ok(MutexInfo::of(&RawHeader::new(mem, "mutex")?))
    }

    /// Decodes a checked header.
    pub(crate) fn of(h: &RawHeader<'_, MUTEX_SIZE>) -> MutexInfo {
        MutexInfo {
            magic: h.word::<OFF_MAGIC>().load(Acquire),
            flags: h.word::<OFF_FLAGS>().load(Acquire),
            state: h.word::<OFF_MUTEX_STATE>().load(Acquire),
            owner_pid: h.word::<OFF_MUTEX_OWNER>().load(Acquire),
            last_acquired_ns: h.last_acquired_ns(),
            owner_identity: h.owner_identity(),
            owner_pid_namespace: h.word::<OFF_MUTEX_OWNER_NS>().load(Acquire),
        }
    }

    /// Whether the lock is held.
    pub fn is_locked(&self) -> bool {
        self.state != MUTEX_UNLOCKED
    }

    /// Whether waiters may be sleeping on the state word.
    pub fn has_waiters(&self) -> bool {
        self.state == MUTEX_CONTENDED
    }

    /// Whether the magic is one a mutex may carry ([`MUTEX_MAGIC`] or 0).
    pub fn has_valid_magic(&self) -> bool {
        self.magic == MUTEX_MAGIC || self.magic == 0
    }
}

/// A semaphore header as read at one moment (fields read one by one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemaphoreInfo {
    /// Magic number: [`SEMAPHORE_MAGIC`].
    pub magic: u32,
    /// Flags word (0).
    pub flags: u32,
    /// Tokens available.
    pub count: u32,
    /// Process id of the last waiter that took a token.
    pub last_pid: u32,
    /// `CLOCK_REALTIME` ns of a wait that had to wait (informative).
    pub last_acquired_ns: u64,
    /// fastipc waiters registered to sleep (a waiter killed while asleep stays counted).
    pub sleepers: u32,
    /// Whether fastipc initialised the header (`SEMAPHORE_MADE_BY_FASTIPC` at
    /// `OFF_SEM_MADE_BY`); `false` for one the Python package created.
    pub made_by_fastipc: bool,
}

impl SemaphoreInfo {
    /// Reads the semaphore header at the start of `mem` (64 bytes, 4-aligned). The magic
    /// is reported, not checked.
    pub fn read(mem: MemRef<'_>) -> Result<SemaphoreInfo, SyncError> {
        Ok(SemaphoreInfo::of(&RawHeader::new(mem, "semaphore")?))
    }

    /// Decodes a checked header.
    pub(crate) fn of(h: &RawHeader<'_, SEMAPHORE_SIZE>) -> SemaphoreInfo {
        SemaphoreInfo {
            magic: h.word::<OFF_MAGIC>().load(Acquire),
            flags: h.word::<OFF_FLAGS>().load(Acquire),
            count: h.word::<OFF_SEM_COUNT>().load(Acquire),
            last_pid: h.word::<OFF_SEM_LAST_PID>().load(Acquire),
            last_acquired_ns: h.last_acquired_ns(),
            sleepers: h.word::<OFF_SEM_SLEEPERS>().load(Acquire),
            made_by_fastipc: h.word::<OFF_SEM_MADE_BY>().load(Acquire) == SEMAPHORE_MADE_BY_FASTIPC,
        }
    }

    /// Whether the magic is [`SEMAPHORE_MAGIC`] (0 only transiently, while a Python
    /// creator initialises it).
    pub fn has_valid_magic(&self) -> bool {
        self.magic == SEMAPHORE_MAGIC
    }
}

/// An event word as read at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventInfo {
    /// The raw word: 0 clear, otherwise set.
    pub value: u32,
}

impl EventInfo {
    /// Reads the event word at the start of `mem` (4 bytes, 4-aligned).
    pub fn read(mem: MemRef<'_>) -> Result<EventInfo, SyncError> {
        let h = RawHeader::<EVENT_SIZE>::new(mem, "event")?;
        Ok(EventInfo {
            value: h.word::<0>().load(Acquire),
        })
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.value != 0
    }
}

/// Layout checks against the byte values the Python package writes.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_spell_their_names_in_memory_order() {
        assert_eq!(&MUTEX_MAGIC.to_le_bytes(), b"XTUM");
        assert_eq!(&SEMAPHORE_MAGIC.to_le_bytes(), b"AMES");
    }

    #[test]
    fn token_offset_stays_in_the_reserved_area_clear_of_the_side_words() {
        for base in [0usize, 4, 8, 12, 4096, 4100] {
            let off = mutex_token_offset(base);
            assert!(off >= OFF_RESERVED && off + 8 <= OFF_MUTEX_OWNER_ID_PID);
            assert_eq!((base + off) % 8, 0);
        }
        let sides = [
            OFF_MUTEX_OWNER_ID_PID,
            OFF_MUTEX_OWNER_NS,
            OFF_MUTEX_OWNER_START,
        ];
        assert_eq!(sides, [36, 40, 44]);
        let id = OwnerIdentity {
            pid: 1234,
            start_time_low: 99,
        };
        assert_eq!(OwnerIdentity::from_word(id.to_word()), Some(id));
        assert_eq!(OwnerIdentity::from_word(0), None);
    }

    /// The bytes of a 64-byte mutex header at `mem`, each field read atomically at the
    /// one width it is accessed with (the token as a u64, everything else as u32s).
    fn mutex_bytes(mem: MemRef<'_>) -> Vec<u8> {
        let token = mutex_token_offset(mem.as_ptr() as usize);
        let mut b = Vec::new();
        let mut off = 0;
        while off < 64 {
            if off == token {
                b.extend(mem.atomic_u64(off).unwrap().load(Acquire).to_le_bytes());
                off += 8;
            } else {
                b.extend(mem.atomic_u32(off).unwrap().load(Acquire).to_le_bytes());
                off += 4;
            }
        }
        b
    }

    /// The bytes of a 64-byte semaphore header at `mem` (every field is a u32).
    fn semaphore_bytes(mem: MemRef<'_>) -> Vec<u8> {
        (0..64)
            .step_by(4)
            .flat_map(|off| mem.atomic_u32(off).unwrap().load(Acquire).to_le_bytes())
            .collect()
    }

    /// Offsets of the non-zero bytes.
    fn nonzero(bytes: &[u8]) -> Vec<usize> {
        (0..bytes.len()).filter(|&i| bytes[i] != 0).collect()
    }

    #[test]
    fn init_writes_only_the_documented_bytes_over_any_previous_contents() {
        use crate::sync::{Mutex, Semaphore};
        for base in [0, 4] {
            // A fresh buffer of 0xFF bytes per header (written before any atomic access,
            // so no byte is accessed atomically at two widths).
            let mut buf = [u64::MAX; 9];
            let all: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            let mem = MemRef::from_mut(&mut all[base..base + 64]);
            let m = Mutex::init(mem).unwrap();
            assert_eq!(nonzero(&mutex_bytes(mem)), [0, 1, 2, 3], "only the magic");
            // Held by this process: state, owner, token (at 24 or 28), side words.
            let guard = m.try_lock().unwrap();
            let token = mutex_token_offset(mem.as_ptr() as usize);
            let b = mutex_bytes(mem);
            for i in nonzero(&b) {
                let documented = i < 16 || (token..token + 8).contains(&i) || (36..48).contains(&i);
                assert!(documented, "byte {i} of a held mutex (base {base})");
            }
            assert_eq!(
                &b[OFF_MUTEX_OWNER..OFF_MUTEX_OWNER + 4],
                std::process::id().to_le_bytes()
            );
            assert_eq!(
                &b[OFF_MUTEX_OWNER_ID_PID..OFF_MUTEX_OWNER_ID_PID + 4],
                std::process::id().to_le_bytes()
            );
            assert_eq!(b[token] & 1, 1, "the token is published");
            drop(guard);
            assert_eq!(mutex_bytes(mem)[token] & 1, 0, "unpublished by the unlock");

            let mut buf = [u64::MAX; 9];
            let all: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            let mem = MemRef::from_mut(&mut all[base..base + 64]);
            Semaphore::init(mem, 7).unwrap();
            let b = semaphore_bytes(mem);
            assert_eq!(&b[0..4], b"AMES");
            assert_eq!(&b[8..12], 7u32.to_le_bytes());
            assert_eq!(&b[OFF_SEM_MADE_BY..OFF_SEM_MADE_BY + 4], b"FIPC");
            let rest: Vec<usize> = nonzero(&b)
                .into_iter()
                .filter(|&i| i >= 4 && !(8..12).contains(&i) && !(28..32).contains(&i))
                .collect();
            assert!(rest.is_empty(), "stray bytes {rest:?}");
            assert!(SemaphoreInfo::read(mem).unwrap().made_by_fastipc);
        }
    }

    #[test]
    fn decoders_check_length_and_alignment() {
        let mut buf = [0u64; 9];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        assert!(matches!(
            MutexInfo::read(MemRef::from_mut(&mut bytes[..63])),
            Err(SyncError::Buffer { .. })
        ));
        assert!(matches!(
            SemaphoreInfo::read(MemRef::from_mut(&mut bytes[2..])),
            Err(SyncError::Buffer { .. })
        ));
        assert!(matches!(
            EventInfo::read(MemRef::from_mut(&mut bytes[..3])),
            Err(SyncError::Buffer { .. })
        ));
        // 4-aligned but not 8-aligned is fine.
        assert!(MutexInfo::read(MemRef::from_mut(&mut bytes[4..68])).is_ok());
    }

    #[test]
    fn decoders_read_fields_at_their_offsets() {
        let mut buf = [0u64; 8];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        bytes[0..4].copy_from_slice(&SEMAPHORE_MAGIC.to_le_bytes());
        bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
        bytes[12..16].copy_from_slice(&42u32.to_le_bytes());
        bytes[16..24].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        bytes[24..28].copy_from_slice(&3u32.to_le_bytes());
        let info = SemaphoreInfo::read(MemRef::from_mut(bytes)).unwrap();
        assert_eq!(
            info,
            SemaphoreInfo {
                magic: SEMAPHORE_MAGIC,
                flags: 0,
                count: 7,
                last_pid: 42,
                last_acquired_ns: 0x0102_0304_0506_0708,
                sleepers: 3,
                made_by_fastipc: false,
            }
        );
        assert!(info.has_valid_magic());
    }
}
