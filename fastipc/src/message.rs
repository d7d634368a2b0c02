//! Message types: plain data with a fixed layout that every process agrees on.
//!
//! [`IpcMessage`] marks a type whose bytes can be copied into shared memory by one
//! process and read back by another (possibly built by another compiler, or written in
//! another language). `#[derive(IpcMessage)]` implements it after checking the layout at
//! compile time; the primitives and arrays of messages implement it here.
#![cfg_attr(
    feature = "derive",
    doc = "\nThe derive's rules, the error each gives and the `#[ipc(...)]` keys are on \
           [its page](derive@crate::IpcMessage)."
)]
//!
//! Every message type carries a 64-bit layout [`IpcMessage::FINGERPRINT`], computed at
//! compile time with the `const fn`s of [`fingerprint`]. A queue records it, so a process
//! that attaches with another type is refused instead of misreading the bytes.

/// A fixed-layout plain-data message that may live in shared memory.
///
/// Implement it with `#[derive(IpcMessage)]`, which checks the rules below at compile
/// time.
#[cfg_attr(
    feature = "derive",
    doc = "See [the derive](derive@crate::IpcMessage) for the rules, their errors and the \
           `#[ipc(...)]` keys."
)]
///
/// # Safety
/// What soundness needs (the queue copies the bytes of a `Self` in and out of shared
/// memory, and hands out `&mut Self` into it):
/// - `Self: bytemuck::Pod` (the supertrait): a fixed layout, no padding, every bit
///   pattern valid, no pointers or references;
/// - `align_of::<Self>() <= 16` (what a queue's data area guarantees) and a size above 0.
///
/// # Portability rules
/// What makes the bytes mean the same thing in every process, checked by
/// `#[derive(IpcMessage)]` (which no `#[ipc(crate = ..)]` path can bypass); a
/// hand-written `unsafe impl` promises them too:
/// - the layout is `#[repr(C)]` or `#[repr(transparent)]` (or a primitive);
/// - every field is fixed-width plain data (integers, floats, arrays of them, nested
///   `IpcMessage`s): no `usize`/`isize`, `()`, or anything else whose size or meaning
///   depends on the process or the build;
/// - [`IpcMessage::FINGERPRINT`] is non-zero and changes whenever the field names, field
///   types, offsets, size or alignment change.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an IpcMessage",
    label = "not fixed-width plain data",
    note = "messages are integers (`u8`..`u128`, `i8`..`i128`), `f32`, `f64`, arrays of \
            messages, and structs with `#[derive(IpcMessage)]`"
)]
pub unsafe trait IpcMessage: bytemuck::Pod + Send + Sync + 'static {
    /// The type's name, for error messages (e.g. `"Tick"`).
    const NAME: &'static str;
    /// A non-zero hash of the layout: field names, types (recursively), offsets, size
    /// and alignment.
    const FINGERPRINT: u64;
}

/// `const fn` building blocks for layout fingerprints (64-bit FNV-1a, then a final mix).
///
/// ```
/// use fastipc::message::fingerprint;
/// let a = fingerprint::finish(fingerprint::str(fingerprint::SEED, "price"));
/// let b = fingerprint::finish(fingerprint::str(fingerprint::SEED, "prices"));
/// assert_ne!(a, b);
/// assert_ne!(a, 0);
/// ```
pub mod fingerprint {
    /// The starting value (the FNV-1a 64-bit offset basis).
    pub const SEED: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Folds `bytes` into `h`.
    pub const fn bytes(mut h: u64, bytes: &[u8]) -> u64 {
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(PRIME);
            i += 1;
        }
        h
    }

    /// Folds a string into `h`, length first so that `("ab", "c")` and `("a", "bc")`
    /// differ.
    pub const fn str(h: u64, s: &str) -> u64 {
        bytes(u64(h, s.len() as u64), s.as_bytes())
    }

    /// Folds a `u64` (little-endian bytes) into `h`.
    pub const fn u64(h: u64, v: u64) -> u64 {
        bytes(h, &v.to_le_bytes())
    }

    /// Final avalanche mix (splitmix64's finaliser); never returns 0, which queues use
    /// for "unknown type".
    pub const fn finish(h: u64) -> u64 {
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z == 0 { 1 } else { z }
    }

    /// The fingerprint of a primitive: its name, size and alignment.
    pub const fn primitive(name: &str, size: usize, align: usize) -> u64 {
        finish(u64(u64(str(SEED, name), size as u64), align as u64))
    }

    /// The fingerprint of `[T; len]` from `T`'s.
    pub const fn array(element: u64, len: usize) -> u64 {
        finish(u64(u64(str(SEED, "[;]"), element), len as u64))
    }

    /// Starts the fingerprint of a struct from its size, alignment and number of fields;
    /// fold each field in with [`field`], then [`finish`].
    ///
    /// `#[derive(IpcMessage)]` computes its `FINGERPRINT` this way. The struct's name is
    /// deliberately not part of it: the fingerprint says what the bytes mean, so two
    /// crates may declare the same message under their own names.
    ///
    /// ```
    /// use fastipc::message::fingerprint::{field, finish, message};
    /// use fastipc::IpcMessage;
    /// // struct { price: u64, qty: u32, side: u32 }
    /// let h = message(16, 8, 3);
    /// let h = field(h, "price", u64::FINGERPRINT, 0);
    /// let h = field(h, "qty", u32::FINGERPRINT, 8);
    /// let h = field(h, "side", u32::FINGERPRINT, 12);
    /// assert_ne!(finish(h), 0);
    /// ```
    pub const fn message(size: usize, align: usize, fields: usize) -> u64 {
        let h = str(SEED, "struct");
        u64(u64(u64(h, size as u64), align as u64), fields as u64)
    }

    /// Folds one field of a struct into `h`: its name, its type's fingerprint and its
    /// offset in bytes.
    pub const fn field(h: u64, name: &str, ty: u64, offset: usize) -> u64 {
        u64(u64(str(h, name), ty), offset as u64)
    }
}

/// Compile-time layout checks used by the code `#[derive(IpcMessage)]` generates.
///
/// Each check is a `const fn` with a trait bound that holds exactly when the rule does; a
/// failed bound becomes a compiler error with the rule's message (through
/// `#[diagnostic::on_unimplemented]`), at the span the derive gives the call. The
/// numbers (padding bytes, alignment) are const generic arguments, so the message can
/// show them.
///
/// These checks give the helpful errors; nothing relies on them for soundness or for the
/// rules. The derive proves what its `unsafe impl`s need, and that every field is a
/// message, a second time through `::core`, `bytemuck` and the `IpcMessage` trait it
/// implements, and computes the fingerprint with `::core` alone (see `fastipc-derive`'s
/// `expand`), which no `#[ipc(crate = ..)]` path can redirect. The traits are sealed: no
/// impl other than the ones here can be written, with or without `unsafe`.
///
/// The compiler quotes these signatures in its errors, so the snapshots in `tests/ui`
/// show them: after changing one, refresh the snapshots (see the README).
#[doc(hidden)]
pub mod rules {
    use super::IpcMessage;

    /// The seal: implemented here only, for the values the rules accept.
    mod sealed {
        pub trait Message {}
        impl<T: super::IpcMessage> Message for T {}
        pub trait Zero<const N: usize> {}
        impl<T> Zero<0> for T {}
        pub trait NotZeroSized<const ZERO: bool> {}
        impl<T> NotZeroSized<false> for T {}
        pub trait AlignAtMost16<const ALIGN: usize> {}
        impl<T> AlignAtMost16<1> for T {}
        impl<T> AlignAtMost16<2> for T {}
        impl<T> AlignAtMost16<4> for T {}
        impl<T> AlignAtMost16<8> for T {}
        impl<T> AlignAtMost16<16> for T {}
    }

    /// Rule 3: a field's type is itself a message.
    #[diagnostic::on_unimplemented(
        message = "rule 3 (fixed-width fields): `{Self}` is not an IpcMessage",
        label = "not fixed-width plain data",
        note = "a field must be an integer (`u8`..`u128`, `i8`..`i128`), `f32`, `f64`, an array \
                of those, or a `#[derive(IpcMessage)]` struct"
    )]
    pub trait FieldIsMessage: sealed::Message {
        /// The field type's [`IpcMessage::FINGERPRINT`].
        const FINGERPRINT: u64;
    }
    impl<T: IpcMessage> FieldIsMessage for T {
        const FINGERPRINT: u64 = T::FINGERPRINT;
    }

    /// Rule 4, whole struct: `PAD` = size minus the sum of the field sizes must be 0.
    #[diagnostic::on_unimplemented(
        message = "rule 4 (no padding): `{Self}` has {PAD} padding byte(s)",
        label = "{PAD} byte(s) of this struct belong to no field",
        note = "padding bytes are uninitialised: another process would read garbage",
        note = "add explicit `_pad: [u8; N]` fields where the compiler leaves gaps (the other \
                errors point at them), or order the fields from the largest alignment to the \
                smallest"
    )]
    pub trait NoPadding<const PAD: usize>: sealed::Zero<PAD> {}
    impl<T> NoPadding<0> for T {}

    /// Rule 4, per field: `GAP` bytes between this field's end and the next field (or
    /// the struct's end) must be 0.
    #[diagnostic::on_unimplemented(
        message = "rule 4 (no padding): {GAP} padding byte(s) follow this field of `{Self}`",
        label = "add `_pad: [u8; {GAP}]` after this field, or reorder the fields"
    )]
    pub trait NoPaddingAfterField<const GAP: usize>: sealed::Zero<GAP> {}
    impl<T> NoPaddingAfterField<0> for T {}

    /// Rule 5: alignment at most 16.
    #[diagnostic::on_unimplemented(
        message = "rule 5 (alignment at most 16): `{Self}` is aligned to {ALIGN} bytes",
        label = "aligned to {ALIGN} bytes",
        note = "a queue's data area guarantees 16-byte alignment, no more; use `align(16)` or less"
    )]
    pub trait AlignAtMost16<const ALIGN: usize>: sealed::AlignAtMost16<ALIGN> {}
    impl<T> AlignAtMost16<1> for T {}
    impl<T> AlignAtMost16<2> for T {}
    impl<T> AlignAtMost16<4> for T {}
    impl<T> AlignAtMost16<8> for T {}
    impl<T> AlignAtMost16<16> for T {}

    /// `bytemuck::Pod`, and so `IpcMessage`, needs `Copy`: derive `Clone, Copy` next to
    /// `IpcMessage` (or implement them by hand). The derive asserts this first, so that a
    /// missing `Copy` gives this one error on the struct instead of errors from inside
    /// `bytemuck` (the derive's impls only apply when the type is `Copy`).
    ///
    /// # Safety
    /// Implemented only for `Copy` types (the blanket impl).
    #[diagnostic::on_unimplemented(
        message = "`IpcMessage` needs `#[derive(Clone, Copy)]`",
        label = "`{Self}` is not `Copy`",
        note = "a message is plain data copied in and out of shared memory: derive `Clone, Copy` \
                next to `IpcMessage`"
    )]
    pub unsafe trait MessageIsCopy {}
    // SAFETY: `T: Copy` is what the trait states.
    unsafe impl<T: Copy> MessageIsCopy for T {}

    /// Rule 2: not zero-sized (`ZERO` = size is 0).
    #[diagnostic::on_unimplemented(
        message = "rule 2 (plain structs only): `{Self}` is zero-sized",
        label = "every field of this struct is zero-sized",
        note = "a message must carry data; remove the zero-sized fields or add a real one"
    )]
    pub trait NotZeroSized<const ZERO: bool>: sealed::NotZeroSized<ZERO> {}
    impl<T> NotZeroSized<false> for T {}

    /// Fails to compile unless `T` is `Copy` (which `bytemuck::Pod` needs).
    pub const fn assert_copy<T: MessageIsCopy>() {}
    /// A field type's fingerprint; fails to compile unless `T` is a message (rule 3).
    pub const fn field_fingerprint<T: FieldIsMessage>() -> u64 {
        T::FINGERPRINT
    }
    /// Fails to compile unless `PAD` is 0 (rule 4).
    pub const fn assert_no_padding<T: NoPadding<PAD>, const PAD: usize>() {}
    /// Fails to compile unless `GAP` is 0 (rule 4).
    pub const fn assert_no_padding_after_field<T: NoPaddingAfterField<GAP>, const GAP: usize>() {}
    /// Fails to compile unless `ALIGN` is at most 16 (rule 5).
    pub const fn assert_align_at_most_16<T: AlignAtMost16<ALIGN>, const ALIGN: usize>() {}
    /// Fails to compile if `ZERO` is true (rule 2).
    pub const fn assert_not_zero_sized<T: NotZeroSized<ZERO>, const ZERO: bool>() {}
}

macro_rules! primitive_messages {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive integer or float: fixed size, no padding, every bit pattern
        // valid, alignment at most 16; the fingerprint hashes its name, size and alignment.
        unsafe impl IpcMessage for $t {
            const NAME: &'static str = stringify!($t);
            const FINGERPRINT: u64 =
                fingerprint::primitive(stringify!($t), size_of::<$t>(), align_of::<$t>());
        }
    )*};
}

primitive_messages!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

// SAFETY: an array of messages has no padding between elements (size is a multiple of
// alignment), the element's alignment, and a fingerprint derived from the element's and
// the length.
unsafe impl<T: IpcMessage, const N: usize> IpcMessage for [T; N]
where
    [T; N]: bytemuck::Pod,
{
    /// `[ELEMENT; N]`, e.g. `[u64; 3]` or `[[u8; 4]; 2]`, built at compile time (an
    /// element name longer than 40 bytes is cut and marked with `..`).
    const NAME: &'static str = {
        let (buf, len) = &<Self as ArrayName>::NAME_BYTES;
        match core::str::from_utf8(buf.split_at(*len).0) {
            Ok(name) => name,
            // Not reached: `array_name` cuts only at character boundaries.
            Err(_) => "array",
        }
    };
    const FINGERPRINT: u64 = fingerprint::array(T::FINGERPRINT, N);
}

/// Room for an array's name: `[`, the element's name, `; `, up to 20 digits and `]`.
const ARRAY_NAME_CAPACITY: usize = 64;

/// An array's name as bytes, computed once per array type (a generic `const` cannot build
/// a `&str` directly; a reference to this constant is `'static`).
trait ArrayName {
    const NAME_BYTES: ([u8; ARRAY_NAME_CAPACITY], usize);
}

impl<T: IpcMessage, const N: usize> ArrayName for [T; N] {
    const NAME_BYTES: ([u8; ARRAY_NAME_CAPACITY], usize) = array_name(T::NAME, N);
}

/// `[element; len]` in a fixed buffer, and its length in bytes. An element name that does
/// not fit is cut at a character boundary and followed by `..`.
const fn array_name(element: &str, len: usize) -> ([u8; ARRAY_NAME_CAPACITY], usize) {
    const fn push(buf: &mut [u8; ARRAY_NAME_CAPACITY], at: &mut usize, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            buf[*at] = bytes[i];
            *at += 1;
            i += 1;
        }
    }
    // Room left for the element: all but `[`, `; `, 20 digits and `]`.
    const ROOM: usize = ARRAY_NAME_CAPACITY - 1 - 2 - 20 - 1;
    let mut buf = [0u8; ARRAY_NAME_CAPACITY];
    let mut at = 0;
    push(&mut buf, &mut at, b"[");
    let element = element.as_bytes();
    if element.len() <= ROOM {
        push(&mut buf, &mut at, element);
    } else {
        // Cut before `..`, at a character boundary (not in the middle of a UTF-8
        // sequence: continuation bytes are 0b10xx_xxxx).
        let mut cut = ROOM - 2;
        while cut > 0 && element[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        push(&mut buf, &mut at, element.split_at(cut).0);
        push(&mut buf, &mut at, b"..");
    }
    push(&mut buf, &mut at, b"; ");
    let mut digits = [0u8; 20];
    let (mut count, mut rest) = (0, len);
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    while count > 0 {
        count -= 1;
        push(&mut buf, &mut at, &[digits[count]]);
    }
    push(&mut buf, &mut at, b"]");
    (buf, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_fingerprints_differ_and_are_non_zero() {
        let all = [
            u8::FINGERPRINT,
            u16::FINGERPRINT,
            u32::FINGERPRINT,
            u64::FINGERPRINT,
            u128::FINGERPRINT,
            i8::FINGERPRINT,
            i16::FINGERPRINT,
            i32::FINGERPRINT,
            i64::FINGERPRINT,
            i128::FINGERPRINT,
            f32::FINGERPRINT,
            f64::FINGERPRINT,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_ne!(*a, 0);
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn array_fingerprints_depend_on_element_and_length() {
        assert_ne!(<[u8; 4]>::FINGERPRINT, <[u8; 8]>::FINGERPRINT);
        assert_ne!(<[u8; 4]>::FINGERPRINT, <[i8; 4]>::FINGERPRINT);
        assert_ne!(<[u32; 1]>::FINGERPRINT, u32::FINGERPRINT);
        assert_eq!(<[u8; 4]>::FINGERPRINT, <[u8; 4]>::FINGERPRINT);
    }

    #[test]
    fn arrays_are_named_after_their_element_and_length() {
        assert_eq!(<[u64; 3]>::NAME, "[u64; 3]");
        assert_eq!(<[[u8; 4]; 2]>::NAME, "[[u8; 4]; 2]");
        assert_eq!(<[f32; 0]>::NAME, "[f32; 0]");
        assert_eq!(<[i8; 1234567]>::NAME, "[i8; 1234567]");
        let (buf, len) = array_name("u8", usize::MAX);
        assert_eq!(&buf[..len], format!("[u8; {}]", usize::MAX).as_bytes());
        // A long element name is cut at a character boundary and marked.
        let long = "é".repeat(30);
        let (buf, len) = array_name(&long, 7);
        let name = core::str::from_utf8(&buf[..len]).unwrap();
        assert!(
            name.starts_with("[éé") && name.ends_with("..; 7]"),
            "{name}"
        );
        assert!(name.len() <= ARRAY_NAME_CAPACITY);
    }

    #[test]
    fn finish_never_yields_zero() {
        // splitmix's finaliser maps 0 to 0; `finish` must not.
        assert_ne!(fingerprint::finish(0), 0);
    }
}
