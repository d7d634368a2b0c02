//! The rules a message type must follow that can be decided from the syntax alone.
//!
//! Rules that need the compiler's layout (padding, alignment, zero size, and whether a
//! named field type is itself an `IpcMessage`) are emitted by `expand` as compile-time
//! assertions.

use syn::{Path, Type};

use crate::ast::{Container, Shape};
use crate::attr::{ReprItem, StrValue};
use crate::ctxt::Ctxt;
use crate::limits::{MAX_QUEUE_NAME_LEN, MAX_SHARED_NAME_LEN};

/// The largest queue capacity: the queue header keeps it in 32 bits, and it is a power
/// of two.
const MAX_CAPACITY: u64 = 1 << 31;

/// Runs every syntactic check, reporting each problem to `cx`.
pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_shape(cx, cont);
    check_generics(cx, cont);
    check_repr(cx, cont);
    if let Shape::Struct(fields) = &cont.shape {
        for field in fields {
            check_type(cx, field.ty);
        }
    }
    check_ipc(cx, cont);
}

/// Rule 2: only structs with at least one field.
fn check_shape(cx: &Ctxt, cont: &Container<'_>) {
    let ident = cont.ident;
    let message = match cont.shape {
        Shape::Struct(_) => return,
        Shape::Enum => format!(
            "rule 2 (plain structs only): `{ident}` is an enum; IpcMessage cannot be derived \
             for enums because another process may write a byte that is no variant; use a \
             struct with an integer field (e.g. `kind: u8`) and constants for its values"
        ),
        Shape::Union => format!(
            "rule 2 (plain structs only): `{ident}` is a union; IpcMessage cannot be derived \
             for unions; use a byte array field (`[u8; N]`) and decode it"
        ),
        Shape::Empty => format!(
            "rule 2 (plain structs only): `{ident}` has no fields; zero-sized messages are \
             refused: they carry no data"
        ),
    };
    cx.error_spanned_by(ident, message);
}

/// Rule 2: no generic parameters (nor where clauses).
fn check_generics(cx: &Ctxt, cont: &Container<'_>) {
    let generics = cont.generics;
    let ident = cont.ident;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            format!(
                "rule 2 (plain structs only): `{ident}` is generic; a message has one fixed \
                 layout and one fingerprint, so declare a concrete struct for each payload"
            ),
        );
    } else if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            format!("rule 2 (plain structs only): `{ident}` may not have a where clause"),
        );
    }
}

/// Rule 1: `repr(C)` or `repr(transparent)`, optionally with `align(N)`.
fn check_repr(cx: &Ctxt, cont: &Container<'_>) {
    if !matches!(cont.shape, Shape::Struct(_)) {
        return;
    }
    let repr = &cont.attrs.repr;
    let mut refused = false;
    for (item, tokens) in &repr.items {
        let message = match item {
            ReprItem::C | ReprItem::Transparent | ReprItem::Align => continue,
            ReprItem::Packed => "rule 1 (fixed layout): `repr(packed)` is refused: it lowers the \
                 alignment so fields cannot be borrowed, and the no-padding rule already fixes \
                 every byte; order the fields from the largest alignment to the smallest, or add \
                 explicit `_pad: [u8; N]` fields, and use `#[repr(C)]`"
                .to_owned(),
            ReprItem::Rust => "rule 1 (fixed layout): `repr(Rust)` does not fix the layout; use \
                 `#[repr(C)]`"
                .to_owned(),
            ReprItem::Int(name) => format!(
                "rule 1 (fixed layout): `repr({name})` is for enums; a message struct needs \
                 `#[repr(C)]` or `#[repr(transparent)]`"
            ),
            ReprItem::Other(name) => format!(
                "rule 1 (fixed layout): `repr({name})` is not supported; use `#[repr(C)]` or \
                 `#[repr(transparent)]`"
            ),
        };
        cx.error_spanned_by(tokens, message);
        refused = true;
    }
    let fixed = repr.has(|item| matches!(item, ReprItem::C | ReprItem::Transparent));
    // A refused repr's error already says what to write instead.
    if !fixed && !refused && !repr.malformed {
        cx.error_spanned_by(
            cont.ident,
            format!(
                "rule 1 (fixed layout): `{}` needs `#[repr(C)]` or `#[repr(transparent)]`: \
                 without it the compiler may reorder the fields, and another build could \
                 disagree on where each field is",
                cont.ident
            ),
        );
    }
}

/// Rule 3: field types that can never be fixed-width plain data are refused here, each
/// with a hint. Other named types are checked by the compiler (they must implement
/// `IpcMessage`).
fn check_type(cx: &Ctxt, ty: &Type) {
    const RULE: &str = "rule 3 (fixed-width fields)";
    let hint = match ty {
        Type::Array(array) => return check_type(cx, &array.elem),
        Type::Paren(paren) => return check_type(cx, &paren.elem),
        Type::Group(group) => return check_type(cx, &group.elem),
        Type::Path(path) if path.qself.is_none() => match path_hint(&path.path) {
            Some(hint) => hint,
            None => return,
        },
        Type::Reference(_) => "references are refused: they point into one process's memory; \
             store an index or an offset (`u64`) instead"
            .to_owned(),
        Type::Ptr(_) => "raw pointers are refused: an address means nothing in another process; \
             store an offset (`u64`) instead"
            .to_owned(),
        Type::FnPtr(_) => "function pointers are refused: code addresses differ between \
             processes; store a tag (`u32`) and dispatch on it"
            .to_owned(),
        Type::Slice(_) => "slices are refused: they have no fixed size; use an array `[T; N]` \
             and a length field"
            .to_owned(),
        Type::Tuple(tuple) if tuple.elems.is_empty() => {
            "`()` is refused: it is zero-sized and carries no data; remove the field".to_owned()
        }
        Type::Tuple(_) => "tuples are refused: their layout is not fixed; use a nested \
             `#[derive(IpcMessage)]` struct or an array"
            .to_owned(),
        Type::TraitObject(_) => "trait objects are refused: they are unsized and hold a \
             pointer to one process's vtable"
            .to_owned(),
        Type::ImplTrait(_) => "`impl Trait` is refused: name a concrete field type".to_owned(),
        Type::Never(_) => "`!` is refused: a message must hold a value".to_owned(),
        Type::Infer(_) => "`_` is refused: name the field type".to_owned(),
        // Qualified paths, macros and tokens syn does not interpret: the compiler checks
        // that the type implements `IpcMessage`.
        _ => return,
    };
    cx.error_spanned_by(ty, format!("{RULE}: {hint}"));
}

/// The hint for a path type that is refused by name, if it is.
fn path_hint(path: &Path) -> Option<String> {
    let last = path.segments.last()?;
    let first = &path.segments.first()?.ident;
    // Only names that mean the standard type: written alone, or through std/core/alloc.
    let standard = (path.segments.len() == 1 && path.leading_colon.is_none())
        || first == "std"
        || first == "core"
        || first == "alloc";
    if !standard {
        return None;
    }
    let name = last.ident.to_string();
    let hint = match name.as_str() {
        "bool" => "`bool` is refused: a byte other than 0 or 1 written by another process \
             would be undefined behaviour; use `u8` for a flag"
            .to_owned(),
        "char" => "`char` is refused: not every `u32` is a valid `char`; use `u32` (a Unicode \
             scalar value) or a `[u8; N]` UTF-8 buffer"
            .to_owned(),
        "usize" | "isize" => {
            let fixed = if name == "usize" { "u64" } else { "i64" };
            format!(
                "`{name}` is refused: its width depends on the process; use `{fixed}` instead \
                 of `{name}`: processes of other widths share this layout"
            )
        }
        "str" | "String" => format!(
            "`{name}` is refused: it is not fixed-size inline data; use a `[u8; N]` buffer \
             and a length field"
        ),
        "Vec" | "VecDeque" => format!(
            "`{name}` is refused: it owns heap memory of one process; use an array `[T; N]` \
             and a length field"
        ),
        "Box" | "Rc" | "Arc" => format!(
            "`{name}` is refused: it points to heap memory of one process; store the data \
             inline"
        ),
        "Option" => "`Option` is refused: its layout is not plain data; use a flag field \
             (`u8`) next to the value"
            .to_owned(),
        "PhantomData" | "PhantomPinned" => format!(
            "`{name}` is refused: a zero-sized marker carries no data, and a message is not \
             generic; remove the field"
        ),
        "Duration" | "Instant" | "SystemTime" => {
            format!("`{name}` is refused: its layout is not fixed; store nanoseconds in a `u64`")
        }
        _ => return None,
    };
    Some(hint)
}

/// The `#[ipc(...)]` values: names of segments and the queue capacity.
fn check_ipc(cx: &Ctxt, cont: &Container<'_>) {
    let ipc = &cont.attrs.ipc;
    if let Some((name, _)) = &ipc.queue {
        check_name(cx, "queue", name, MAX_QUEUE_NAME_LEN);
    }
    if let Some(name) = &ipc.shared {
        check_name(cx, "shared", name, MAX_SHARED_NAME_LEN);
    }
    if let Some((lit, _)) = &ipc.capacity {
        match lit.base10_parse::<u64>() {
            Ok(0) => cx.error_spanned_by(
                lit,
                "ipc attribute: `capacity` must not be zero: a queue holds at least one message",
            ),
            Ok(n) if n > MAX_CAPACITY => cx.error_spanned_by(
                lit,
                format!(
                    "ipc attribute: `capacity` {n} is too large: the queue header keeps it in \
                     32 bits, so at most {MAX_CAPACITY}"
                ),
            ),
            Ok(n) if !n.is_power_of_two() => cx.error_spanned_by(
                lit,
                format!(
                    "ipc attribute: `capacity` must be a power of two (slots are found with a \
                     mask); {n} is not: use {} or {}",
                    prev_power_of_two(n),
                    n.checked_next_power_of_two().unwrap_or(MAX_CAPACITY)
                ),
            ),
            Ok(_) => {}
            Err(_) => cx.error_spanned_by(
                lit,
                format!("ipc attribute: `capacity` must be at most {MAX_CAPACITY}"),
            ),
        }
    }
    let written = |key: &str| ipc.written.iter().any(|k| k == key);
    if let (Some(key), None) = (ipc.lossless, &ipc.queue) {
        cx.error_at(
            key,
            "ipc attribute: `lossless` needs `queue = \"NAME\", capacity = N`: it is the mode of that queue",
        );
    }
    if let (Some(key), None) = (ipc.single_producer, &ipc.queue) {
        cx.error_at(
            key,
            "ipc attribute: `single_producer` needs `queue = \"NAME\", capacity = N`: it declares that queue's one producer",
        );
    }
    match (&ipc.queue, &ipc.capacity) {
        (Some((_, key)), None) if !written("capacity") => cx.error_at(
            *key,
            "ipc attribute: `queue` needs `capacity = N` too: the number of messages the \
             queue holds, a power of two",
        ),
        (None, Some((_, key))) if !written("queue") => cx.error_at(
            *key,
            "ipc attribute: `capacity` needs `queue = \"NAME\"`: it is the size of that queue",
        ),
        _ => {}
    }
}

/// A name must be one non-empty file name in /dev/shm, short enough for the runtime
/// (`max` bytes: see `limits`).
fn check_name(cx: &Ctxt, key: &str, name: &StrValue, max: usize) {
    let value = &name.value;
    let problem = if value.is_empty() {
        "is empty".to_owned()
    } else if value == "." || value == ".." {
        format!("`{value}` is not a segment name")
    } else if value.contains('/') {
        format!("`{value}` contains `/`: a name is a single entry of /dev/shm")
    } else if value.contains('\0') {
        "contains a NUL byte".to_owned()
    } else if value.len() > max {
        let why = if key == "queue" {
            "a file name in /dev/shm holds 255"
        } else {
            "255 for a file name in /dev/shm, minus the prefix `__fastipc_cell_` and the \
             registry's `.pids` suffix"
        };
        format!("is {} bytes long; at most {max} fit ({why})", value.len())
    } else {
        return;
    };
    cx.error_spanned_by(
        &name.lit,
        format!("ipc attribute: the {key} name {problem}"),
    );
}

/// The largest power of two below `n` (`n` > 1 and not a power of two).
fn prev_power_of_two(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}
