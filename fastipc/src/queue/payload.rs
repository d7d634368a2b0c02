//! Payload copies as relaxed atomic word accesses (the "atomic memcpy" of C++ proposal
//! P1478), on both sides: producers store a message into the ring with them, consumers
//! load it out with them. The seqlock protocol of raw.rs lets a producer of a later lap
//! rewrite bytes a consumer is copying (the copy is then discarded); with atomic accesses
//! on both sides such a pair is a race on atomics, which the language's model allows,
//! instead of a data race, which it does not.
//!
//! # One width per queue
//! Every access to a queue's payload bytes has the same width and alignment:
//! [`word_for`]`(element_size)`, the largest of 8, 4, 2 and 1 that divides the element
//! size. Elements start at multiples of the element size from the 16-aligned data area,
//! so each element is a whole number of such words, aligned. Whatever range a producer
//! writes and a consumer reads (one element, a batch, part of a batch, bytes at an offset
//! of a [`Ring`](super::Ring) reservation), they never touch one byte with accesses of
//! two sizes: the model leaves mixed-size atomic accesses to the same bytes undefined.
//! A write that covers part of a word (a `Reservation::write` at an odd offset) merges
//! its bytes into the word with a compare-exchange loop.
//!
//! The private side (the message being sent, the buffer being filled) is plain memory of
//! any alignment, accessed with unaligned plain reads and writes.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64};

/// The width in bytes of every payload access of a queue of `element_size`-byte
/// elements: 8, 4, 2 or 1, the largest that divides it.
#[inline(always)]
pub(crate) const fn word_for(element_size: usize) -> usize {
    match element_size.trailing_zeros() {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    }
}

macro_rules! width {
    ($w:ident, $int:ty, $atomic:ty) => {
        mod $w {
            use super::*;

            const W: usize = size_of::<$int>();

            /// The atomic word at `p`.
            ///
            /// # Safety
            /// `p` is `W`-aligned and valid for reads and writes of `W` bytes for `'a`,
            /// and every other access to those bytes meanwhile is atomic and of width `W`.
            #[inline(always)]
            unsafe fn at<'a>(p: *const u8) -> &'a $atomic {
                // SAFETY: the caller's contract is `from_ptr`'s: aligned, valid, and only
                // accessed by same-size atomics meanwhile.
                unsafe { <$atomic>::from_ptr(p.cast::<$int>().cast_mut()) }
            }

            /// See [`super::load`].
            #[inline(always)]
            pub(super) unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
                let mut i = 0;
                while i < len {
                    // SAFETY: `src + i` is `W`-aligned and `i + W <= len` (the caller's
                    // contract: aligned `src`, `len` a multiple of `W`), shared bytes
                    // accessed with width `W` only.
                    let v = unsafe { at(src.add(i)) }.load(Relaxed);
                    // SAFETY: `i + W <= len`: in bounds of `dst`, which may be unaligned.
                    unsafe { dst.add(i).cast::<$int>().write_unaligned(v) };
                    i += W;
                }
            }

            /// See [`super::store`].
            #[inline(always)]
            pub(super) unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
                let mut i = 0;
                while i < len {
                    // SAFETY: `i + W <= len`: in bounds of `src`, which may be unaligned.
                    let v = unsafe { src.add(i).cast::<$int>().read_unaligned() };
                    // SAFETY: as in `load`, for `dst`.
                    unsafe { at(dst.add(i)) }.store(v, Relaxed);
                    i += W;
                }
            }

            /// Stores `src[..len]` at byte `offset` of the word at `word`
            /// (`offset + len <= W`), keeping its other bytes: a compare-exchange loop,
            /// so that a concurrent writer of the other bytes loses nothing.
            ///
            /// # Safety
            /// As for `at(word)`; `src` valid for reads of `len` bytes.
            #[inline]
            pub(super) unsafe fn merge(word: *mut u8, offset: usize, src: *const u8, len: usize) {
                // SAFETY: caller contract.
                let a = unsafe { at(word) };
                let mut current = a.load(Relaxed);
                loop {
                    let mut bytes = current.to_ne_bytes();
                    // SAFETY: `offset + len <= W`: in bounds of `bytes`; `src` holds `len`
                    // bytes of private memory.
                    unsafe {
                        core::ptr::copy_nonoverlapping(src, bytes.as_mut_ptr().add(offset), len)
                    };
                    match a.compare_exchange_weak(
                        current,
                        <$int>::from_ne_bytes(bytes),
                        Relaxed,
                        Relaxed,
                    ) {
                        Ok(_) => return,
                        Err(actual) => current = actual,
                    }
                }
            }
        }
    };
}

width!(w8, u64, AtomicU64);
width!(w4, u32, AtomicU32);
width!(w2, u16, AtomicU16);
width!(w1, u8, AtomicU8);

/// Copies `len` payload bytes from the ring at `src` into private memory at `dst`, with
/// relaxed atomic loads of width `word`.
///
/// # Safety
/// `word` is [`word_for`] of the queue's element size; `src` is `word`-aligned, `len` a
/// multiple of `word`, `src..src + len` inside the queue's data area (live) and
/// `dst..dst + len` valid for writes, not overlapping it, accessed by nothing else
/// meanwhile. Every other access to the ring's bytes meanwhile is by this module, or
/// ordered with this copy (happens-before either way).
#[inline(always)]
pub(crate) unsafe fn load(src: *const u8, dst: *mut u8, len: usize, word: usize) {
    debug_assert!((src as usize).is_multiple_of(word) && len.is_multiple_of(word));
    match word {
        // SAFETY: the caller's contract, for width 8.
        8 => unsafe { w8::load(src, dst, len) },
        // SAFETY: the caller's contract, for width 4.
        4 => unsafe { w4::load(src, dst, len) },
        // SAFETY: the caller's contract, for width 2.
        2 => unsafe { w2::load(src, dst, len) },
        // SAFETY: the caller's contract, for width 1.
        _ => unsafe { w1::load(src, dst, len) },
    }
}

/// Copies `len` bytes of private memory at `src` into the ring at `dst`, with relaxed
/// atomic stores of width `word`.
///
/// # Safety
/// As for [`load`], with the roles swapped: `dst` is in the ring (`word`-aligned, `len` a
/// multiple of `word`) and `src` is private memory valid for reads.
#[inline(always)]
pub(crate) unsafe fn store(src: *const u8, dst: *mut u8, len: usize, word: usize) {
    debug_assert!((dst as usize).is_multiple_of(word) && len.is_multiple_of(word));
    match word {
        // SAFETY: the caller's contract, for width 8.
        8 => unsafe { w8::store(src, dst, len) },
        // SAFETY: the caller's contract, for width 4.
        4 => unsafe { w4::store(src, dst, len) },
        // SAFETY: the caller's contract, for width 2.
        2 => unsafe { w2::store(src, dst, len) },
        // SAFETY: the caller's contract, for width 1.
        _ => unsafe { w1::store(src, dst, len) },
    }
}

/// Copies `bytes` into the ring at byte `offset` from `base`, any offset and length: whole
/// words with [`store`], the partial words at either end merged into their word.
///
/// # Safety
/// As for [`store`] over the words that `base + offset .. base + offset + bytes.len()`
/// touches: `base` is `word`-aligned and those whole words lie inside the data area.
#[inline]
pub(crate) unsafe fn store_at(base: *mut u8, offset: usize, bytes: &[u8], word: usize) {
    let (mut at, end) = (offset, offset + bytes.len());
    let mut src = bytes.as_ptr();
    while at < end {
        let in_word = at % word;
        let word_start = at - in_word;
        let take = (word - in_word).min(end - at);
        if take == word {
            // Whole words, as many as fit.
            let whole = (end - at) / word * word;
            // SAFETY: `at` is word-aligned (`in_word == 0`) and `whole` bytes from it lie
            // in the range the caller vouches for; `src` has `whole` bytes left.
            unsafe { store(src, base.wrapping_add(at), whole, word) };
            at += whole;
            // SAFETY: `whole` bytes of `bytes` were consumed; at most its end.
            src = unsafe { src.add(whole) };
            continue;
        }
        let dst = base.wrapping_add(word_start);
        // Each arm: the word at `word_start` is one the range touches (caller contract),
        // `take` bytes of `src` are left, and `in_word + take <= word`.
        match word {
            // SAFETY: as stated above, for width 8.
            8 => unsafe { w8::merge(dst, in_word, src, take) },
            // SAFETY: as stated above, for width 4.
            4 => unsafe { w4::merge(dst, in_word, src, take) },
            // SAFETY: as stated above, for width 2.
            2 => unsafe { w2::merge(dst, in_word, src, take) },
            // SAFETY: as stated above, for width 1.
            _ => unsafe { w1::merge(dst, in_word, src, take) },
        }
        at += take;
        // SAFETY: `take` bytes of `bytes` were consumed; at most its end.
        src = unsafe { src.add(take) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_divides_the_element_size() {
        let widths: Vec<usize> = [1, 2, 3, 4, 6, 8, 12, 16, 24, 40, 100]
            .iter()
            .map(|&s| word_for(s))
            .collect();
        assert_eq!(widths, [1, 2, 1, 4, 2, 8, 4, 8, 8, 8, 4]);
    }

    #[test]
    fn loads_and_stores_copy_every_width() {
        let mut ring = vec![0u64; 16];
        let src: Vec<u8> = (1..=64u8).collect();
        for word in [1, 2, 4, 8] {
            for (start, len) in [(0, 0), (0, 8), (8, 16), (16, 40), (24, 8)] {
                ring.iter_mut().for_each(|w| *w = 0);
                let base = ring.as_mut_ptr().cast::<u8>();
                // SAFETY: `start + len <= 64 <= 128` bytes of `ring`, aligned to every
                // width; `src` (from offset 1: unaligned) holds 63 >= len bytes.
                unsafe {
                    store(
                        src.as_ptr().wrapping_add(1),
                        base.wrapping_add(start),
                        len,
                        word,
                    )
                };
                let mut out = vec![0u8; len + 1];
                // SAFETY: as above; `out` (from offset 1) holds `len` bytes.
                unsafe {
                    load(
                        base.wrapping_add(start),
                        out.as_mut_ptr().wrapping_add(1),
                        len,
                        word,
                    )
                };
                assert_eq!(&out[1..], &src[1..1 + len], "word {word} at {start}");
                let bytes: &[u8] = bytemuck::cast_slice(&ring);
                assert!(bytes[..start].iter().all(|&b| b == 0));
                assert!(bytes[start + len..].iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn store_at_keeps_the_bytes_around_a_partial_write() {
        for word in [1, 2, 4, 8] {
            for offset in [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16] {
                for len in [0, 1, 3, 7, 8, 9, 20] {
                    let mut ring = vec![u64::MAX; 8];
                    let bytes: Vec<u8> = (0..len as u8).collect();
                    // SAFETY: `offset + len <= 37 <= 64` bytes of `ring`, whose start is
                    // aligned to every width.
                    unsafe { store_at(ring.as_mut_ptr().cast(), offset, &bytes, word) };
                    let got: &[u8] = bytemuck::cast_slice(&ring);
                    assert_eq!(
                        &got[offset..offset + len],
                        &bytes[..],
                        "{word} {offset} {len}"
                    );
                    assert!(got[..offset].iter().all(|&b| b == 0xFF));
                    assert!(got[offset + len..].iter().all(|&b| b == 0xFF));
                }
            }
        }
    }
}
