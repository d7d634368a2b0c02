//! `#[derive(IpcMessage)]`: message types for fastipc, with their layout checked at compile
//! time.
//!
//! Use it through `fastipc`: its `derive` feature, on by default, re-exports this macro
//! under the trait's name, as serde does. The derive's own documentation,
//! [`IpcMessage`](derive@IpcMessage), also shown as the derive macro `IpcMessage` in
//! `fastipc`'s documentation, has what a user needs: the rules with the error each gives,
//! the fingerprint and the `#[ipc(...)]` keys. This page adds how the generated code stays
//! sound.
//!
//! The generated code reaches fastipc through `::fastipc::__private`, or the path of
//! `#[ipc(crate = "...")]`. The generated impls do not trust that path: besides the rule
//! checks (which give the errors documented on the derive), the generated code asserts at
//! compile time, through `::core` alone and the very `bytemuck` and `IpcMessage` traits it
//! implements, that every field type is `Pod`, `Zeroable` and an `IpcMessage`, that the
//! size is the sum of the field sizes, that the alignment is at most 16 and the size not
//! 0; and it computes `FINGERPRINT` with `::core` alone. What soundness needs (`Pod`,
//! alignment, size) and what the portability rules need (fixed-width fields, a
//! meaningful fingerprint) are therefore both out of the path's reach: a `crate` path to
//! a stand-in whose checks do nothing fails to compile instead of yielding a `Pod` with
//! padding, a `bool`, a `usize` or a `()` inside, or a meaningless fingerprint. These
//! backstop assertions stay silent whenever a rule check fails, so each mistake is
//! reported once. The rule checks' traits are sealed: they cannot be implemented outside
//! fastipc, with or without `unsafe`. The impls, and the functions of `#[ipc(...)]`, carry the bound `where
//! for<'a> T: Copy`: without `Copy` they do not apply, and the one error is the derive's
//! own `Copy` check, on the struct.
//!
//! # Structure
//!
//! As serde_derive: `ast` and `attr` read the input, `check` applies the syntactic
//! rules, `expand` generates the code; every error is collected in a `ctxt::Ctxt` and
//! emitted together, and the macro never panics.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod limits;

use proc_macro::TokenStream;

/// Derives `fastipc::IpcMessage` for a struct after checking its layout at compile time.
///
/// ```
/// use fastipc::IpcMessage;
///
/// #[derive(IpcMessage, Clone, Copy, Debug)]
/// #[repr(C)]
/// struct Tick {
///     ts_ns: u64,
///     price: f64,
///     qty: u32,
///     side: u8,
///     _pad: [u8; 3],
/// }
///
/// assert_eq!(Tick::NAME, "Tick");
/// assert_ne!(Tick::FINGERPRINT, 0);
/// assert_eq!(size_of::<Tick>(), 24);
/// ```
///
/// The derive implements `bytemuck::Zeroable`, `bytemuck::Pod` and `fastipc::IpcMessage`
/// (`NAME` and `FINGERPRINT`). Derive `Clone` and `Copy` next to it: `Pod` needs them. The
/// generated code reaches fastipc through `::fastipc::__private`, so the user crate needs no
/// `bytemuck` dependency and may import the derive under any name; only the crate itself
/// must be reachable as `::fastipc`. If `Cargo.toml` renames it (`ipc = { package =
/// "fastipc", ... }`), say where it is with `#[ipc(crate = "ipc")]`.
///
/// Without `Copy` (derived or written by hand), the derive gives one error, on the struct:
///
/// ```compile_fail,E0277
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage)]
/// #[repr(C)]
/// struct Tick {
///     price: u64,
/// }
/// ```
/// ```text
/// error[E0277]: `IpcMessage` needs `#[derive(Clone, Copy)]`
///  --> src/main.rs:4:8
///   |
/// 4 | struct Tick {
///   |        ^^^^ `Tick` is not `Copy`
/// ```
///
/// # The rules
///
/// Each broken rule is a compile error that names the rule and points at the item or field
/// at fault. The derive reports every problem it finds, not only the first. Rules 1 to 3
/// are read from the syntax; the compiler's layout decides rules 2 (zero size), 4 and 5 and
/// whether a named field type is a message, through compile-time assertions whose errors
/// carry the numbers.
///
/// ## Rule 1: a fixed layout
///
/// The struct is `#[repr(C)]` or `#[repr(transparent)]`: without it the compiler may reorder
/// fields, and another build (or language) could disagree on where each field is.
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// struct Tick {
///     price: u64,
/// }
/// ```
/// ```text
/// error: rule 1 (fixed layout): `Tick` needs `#[repr(C)]` or `#[repr(transparent)]`: without
///        it the compiler may reorder the fields, and another build could disagree on where
///        each field is
///  --> src/main.rs:4:8
///   |
/// 4 | struct Tick {
///   |        ^^^^
/// ```
///
/// `repr(packed)` is refused: it lowers the struct's alignment so that its fields cannot be
/// borrowed, and it is never needed, since rule 4 already fixes every byte. `align(N)` is
/// accepted: rules 4 and 5 still hold for the result (an `align(16)` that adds trailing bytes
/// is refused as padding) and the alignment is part of the fingerprint.
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C, packed)]
/// struct Tick {
///     price: u64,
///     qty: u32,
/// }
/// ```
/// ```text
/// error: rule 1 (fixed layout): `repr(packed)` is refused: it lowers the alignment so fields
///        cannot be borrowed, and the no-padding rule already fixes every byte; order the
///        fields from the largest alignment to the smallest, or add explicit `_pad: [u8; N]`
///        fields, and use `#[repr(C)]`
///  --> src/main.rs:3:11
///   |
/// 3 | #[repr(C, packed)]
///   |           ^^^^^^
/// ```
///
/// `repr(Rust)`, the integer reprs of enums (`repr(u8)`, ...) and any other repr are refused
/// the same way.
///
/// ## Rule 2: plain, concrete, non-empty structs
///
/// Enums (another process may write a byte that is no variant), unions, structs without
/// fields, zero-sized structs and generic structs (a message has one layout and one
/// fingerprint) are refused.
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(u8)]
/// enum Side { Buy, Sell }
/// ```
/// ```text
/// error: rule 2 (plain structs only): `Side` is an enum; IpcMessage cannot be derived for
///        enums because another process may write a byte that is no variant; use a struct
///        with an integer field (e.g. `kind: u8`) and constants for its values
///  --> src/main.rs:4:6
///   |
/// 4 | enum Side { Buy, Sell }
///   |      ^^^^
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// union Value { int: u64, float: f64 }
/// ```
/// ```text
/// error: rule 2 (plain structs only): `Value` is a union; IpcMessage cannot be derived for
///        unions; use a byte array field (`[u8; N]`) and decode it
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Heartbeat;
/// ```
/// ```text
/// error: rule 2 (plain structs only): `Heartbeat` has no fields; zero-sized messages are
///        refused: they carry no data
/// ```
///
/// ```compile_fail,E0277
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Nothing {
///     marker: [u64; 0],
/// }
/// ```
/// ```text
/// error[E0277]: rule 2 (plain structs only): `Nothing` is zero-sized
///  --> src/main.rs:4:8
///   |
/// 4 | struct Nothing {
///   |        ^^^^^^^ every field of this struct is zero-sized
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Envelope<T> {
///     seq: u64,
///     payload: T,
/// }
/// ```
/// ```text
/// error: rule 2 (plain structs only): `Envelope` is generic; a message has one fixed layout
///        and one fingerprint, so declare a concrete struct for each payload
///  --> src/main.rs:4:16
///   |
/// 4 | struct Envelope<T> {
///   |                ^^^
/// ```
///
/// ## Rule 3: fixed-width plain data in every field
///
/// A field is `u8`..`u128`, `i8`..`i128`, `f32`, `f64`, an array of messages (arrays nest),
/// or another `IpcMessage` (a nested `#[derive(IpcMessage)]` struct). Paths such as
/// `core::primitive::u32` and type aliases are fine. Types that can never qualify are
/// refused by name, each with a hint:
///
/// | field type | hint |
/// |---|---|
/// | `bool` | use `u8` for a flag (a byte other than 0 or 1 would be undefined behaviour) |
/// | `char` | use `u32` or a `[u8; N]` UTF-8 buffer |
/// | `usize`, `isize` | use `u64` / `i64`: processes of other widths share this layout |
/// | `&T`, `&mut T` | store an index or an offset (`u64`) |
/// | `*const T`, `*mut T` | store an offset (`u64`) |
/// | `fn(..)` | store a tag (`u32`) and dispatch on it |
/// | `Option<T>` | use a flag field next to the value |
/// | `Box`, `Rc`, `Arc` | store the data inline |
/// | `String`, `str`, `Vec`, `VecDeque` | use a `[T; N]` buffer and a length field |
/// | `[T]` | use an array `[T; N]` and a length field |
/// | `PhantomData`, `PhantomPinned`, `()` | remove the field |
/// | tuples | use a nested `#[derive(IpcMessage)]` struct or an array |
/// | `dyn Trait`, `impl Trait`, `!`, `_` | name a concrete field type |
/// | `Duration`, `Instant`, `SystemTime` | store nanoseconds in a `u64` |
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Order {
///     qty: u32,
///     flags: [bool; 4],
/// }
/// ```
/// ```text
/// error: rule 3 (fixed-width fields): `bool` is refused: a byte other than 0 or 1 written by
///        another process would be undefined behaviour; use `u8` for a flag
///  --> src/main.rs:6:13
///   |
/// 6 |     flags: [bool; 4],
///   |             ^^^^
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Cursor {
///     index: usize,
/// }
/// ```
/// ```text
/// error: rule 3 (fixed-width fields): `usize` is refused: its width depends on the process;
///        use `u64` instead of `usize`: processes of other widths share this layout
///  --> src/main.rs:5:12
///   |
/// 5 |     index: usize,
///   |            ^^^^^
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Handles {
///     by_ref: &'static u64,
/// }
/// ```
/// ```text
/// error: rule 3 (fixed-width fields): references are refused: they point into one process's
///        memory; store an index or an offset (`u64`) instead
///  --> src/main.rs:5:13
///   |
/// 5 |     by_ref: &'static u64,
///   |             ^^^^^^^^^^^^
/// ```
///
/// Any other named type must implement `IpcMessage`; the derive asserts it per field, so the
/// compiler's error lands on the field's type (this also catches a `bool` behind a type
/// alias):
///
/// ```compile_fail,E0277
/// # use fastipc::IpcMessage;
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Price {
///     cents: u64,
/// }
///
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Tick {
///     price: Price,
/// }
/// ```
/// ```text
/// error[E0277]: rule 3 (fixed-width fields): `Price` is not an IpcMessage
///   --> src/main.rs:11:12
///    |
/// 11 |     price: Price,
///    |            ^^^^^ not fixed-width plain data
/// ```
///
/// ## Rule 4: no padding
///
/// The struct's size equals the sum of its fields' sizes, so every byte is initialised and
/// means the same to every process. The error says how many padding bytes the struct has,
/// and a second error points at each field that padding follows, with the `_pad` field to
/// add:
///
/// ```compile_fail,E0277
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// struct Tick {
///     ts_ns: u64,
///     price: f64,
///     qty: u32,
///     side: u8,
/// }
/// ```
/// ```text
/// error[E0277]: rule 4 (no padding): `Tick` has 3 padding byte(s)
///  --> src/main.rs:4:8
///   |
/// 4 | struct Tick {
///   |        ^^^^ 3 byte(s) of this struct belong to no field
///   |
///   = note: padding bytes are uninitialised: another process would read garbage
///   = note: add explicit `_pad: [u8; N]` fields where the compiler leaves gaps (the other
///           errors point at them), or order the fields from the largest alignment to the
///           smallest
///
/// error[E0277]: rule 4 (no padding): 3 padding byte(s) follow this field of `Tick`
///  --> src/main.rs:8:5
///   |
/// 8 |     side: u8,
///   |     ^^^^ add `_pad: [u8; 3]` after this field, or reorder the fields
/// ```
///
/// ## Rule 5: alignment at most 16
///
/// A queue's data area guarantees 16-byte alignment and no more.
///
/// ```compile_fail,E0277
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C, align(64))]
/// struct CacheLine {
///     words: [u64; 8],
/// }
/// ```
/// ```text
/// error[E0277]: rule 5 (alignment at most 16): `CacheLine` is aligned to 64 bytes
///  --> src/main.rs:4:8
///   |
/// 4 | struct CacheLine {
///   |        ^^^^^^^^^ aligned to 64 bytes
/// ```
///
/// # The fingerprint
///
/// `FINGERPRINT` is computed at compile time (as `fastipc::message::fingerprint` documents,
/// by code the derive generates with `::core` alone) from the
/// struct's size, alignment and field count, then, for each field in order, its name, its
/// type's `FINGERPRINT` (primitives hash their name, size and alignment; arrays their
/// element's fingerprint and length; nested messages their own fingerprint, so the hash is
/// recursive) and its offset (`core::mem::offset_of!`). Reordering, renaming, retyping or
/// resizing a field, at any depth, changes it.
///
/// The struct's own name is left out on purpose: the fingerprint describes what the bytes
/// mean, not what a crate calls them, so a consumer may mirror a producer's message under
/// its own name (or after a rename) and still attach. Field names do count: swapping `bid`
/// and `ask` keeps every type and offset but changes the meaning. `NAME` still carries the
/// struct's name for error messages.
///
/// # Attributes
///
/// `#[ipc(...)]` on the struct (several attributes may be combined; each key at most once):
///
/// | key | meaning |
/// |---|---|
/// | `queue = "NAME", capacity = N` | generates `T::queue()` (`SlickQueue::<T>::open_or_create_with(NAME, N, Mode::Lossy)`), `T::producer()` and `T::consumer()`, with the struct's visibility |
/// | `lossless` (with `queue`) | the queue is lossless: `T::queue()` is `SlickQueue::<T>::open_or_create_with(NAME, N, Mode::Lossless)` (producers wait for registered consumers instead of overwriting) |
/// | `single_producer` (with `queue`) | the queue is declared single-producer: `T::queue()` passes `QueueOptions::from(mode).single_producer()`, and `T::producer()` returns its `SingleProducer<T>` (one at a time in all processes; claims without read-modify-writes) |
/// | `shared = "NAME"` | generates `T::shared()`, the named `SharedCell<T>` |
/// | `crate = "path"` | where the fastipc crate is, if not `::fastipc` |
///
/// The generated functions are inherent associated functions of the struct, so a function
/// of the same name in another `impl` block of the struct (a user's own `queue()`, say) is
/// a compile error (E0592, duplicate definitions): rename it, or leave the attribute out
/// and call `SlickQueue::open_or_create` / `SharedCell::open_or_create` directly. A trait
/// method of the same name is shadowed by the generated one in `T::queue()` calls; call
/// it as `Trait::queue()` then.
///
/// `queue` and `capacity` go together. `capacity` is an integer literal, a power of two, at
/// least 1 and at most 2^31 (the queue header keeps it in 32 bits). A name is a non-empty
/// string literal that is one /dev/shm entry: no `/`, no NUL, not `.` or `..`, and as short
/// as the runtime needs it: a `queue` name at most 255 bytes (the queue's segment is
/// `/dev/shm/NAME`), a `shared` name at most 235 (the cell's segment adds the prefix
/// `__fastipc_cell_`, its registry entry the suffix `.pids`). Unknown keys, missing values, literals of the wrong kind, duplicate keys and
/// `#[ipc]` on a field are errors at the offending tokens:
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// #[ipc(queue = "ticks", capacity = 1000)]
/// struct Tick {
///     price: u64,
/// }
/// ```
/// ```text
/// error: ipc attribute: `capacity` must be a power of two (slots are found with a mask);
///        1000 is not: use 512 or 1024
///  --> src/main.rs:4:35
///   |
/// 4 | #[ipc(queue = "ticks", capacity = 1000)]
///   |                                   ^^^^
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// #[ipc(queue = "ticks", capacity = 1024, size = 64)]
/// struct Tick {
///     price: u64,
/// }
/// ```
/// ```text
/// error: ipc attribute: unknown key `size`; expected `queue`, `capacity`, `shared` or `crate`
///  --> src/main.rs:4:41
///   |
/// 4 | #[ipc(queue = "ticks", capacity = 1024, size = 64)]
///   |                                         ^^^^
/// ```
///
/// ```compile_fail
/// # use fastipc::IpcMessage;
/// #[derive(IpcMessage, Clone, Copy)]
/// #[repr(C)]
/// #[ipc(queue = "market/ticks", capacity = 1024)]
/// struct Tick {
///     price: u64,
/// }
/// ```
/// ```text
/// error: ipc attribute: the queue name `market/ticks` contains `/`: a name is a single entry
///        of /dev/shm
/// ```
///
/// The full list of cases, each with the compiler's exact output, is the trybuild suite in
/// the workspace's `tests/ui/`.
#[proc_macro_derive(IpcMessage, attributes(ipc))]
pub fn derive_ipc_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
