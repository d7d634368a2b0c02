//! Parsing of the attributes the derive reads: `#[repr(...)]` and `#[ipc(...)]`.
//!
//! This phase only records what is written (and reports what cannot be understood at all:
//! unknown `ipc` keys, duplicates, literals of the wrong kind). Whether the values are
//! acceptable is decided in `check`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Lit, LitInt, LitStr, Meta};

use crate::ctxt::Ctxt;

/// One item of a `#[repr(...)]` list.
pub(crate) enum ReprItem {
    /// `C`
    C,
    /// `transparent`
    Transparent,
    /// `align(N)`: accepted; the alignment and padding assertions check its effect.
    Align,
    /// `packed` or `packed(N)`.
    Packed,
    /// `Rust`
    Rust,
    /// `u8`, `i32`, ... (enum discriminant reprs).
    Int(String),
    /// Anything else (e.g. `simd`).
    Other(String),
}

/// The struct's `repr` items, in source order, each with its tokens (for spans).
#[derive(Default)]
pub(crate) struct Repr {
    pub(crate) items: Vec<(ReprItem, TokenStream)>,
    /// A `repr` attribute syn could not read; rustc reports it, so the derive stays quiet
    /// about a missing repr.
    pub(crate) malformed: bool,
}

impl Repr {
    /// Whether `C` or `transparent` was written.
    pub(crate) fn has(&self, want: fn(&ReprItem) -> bool) -> bool {
        self.items.iter().any(|(item, _)| want(item))
    }
}

/// A string value with the literal it came from (for spans).
pub(crate) struct StrValue {
    pub(crate) value: String,
    pub(crate) lit: LitStr,
}

/// The struct's `#[ipc(...)]` keys. Each is `None` when absent.
#[derive(Default)]
pub(crate) struct Ipc {
    /// `queue = "NAME"`, with the key's span.
    pub(crate) queue: Option<(StrValue, Span)>,
    /// `capacity = N`, with the key's span.
    pub(crate) capacity: Option<(LitInt, Span)>,
    /// `shared = "NAME"`.
    pub(crate) shared: Option<StrValue>,
    /// `lossless` (a flag, no value): the queue is created lossless; with its span.
    pub(crate) lossless: Option<Span>,
    /// `single_producer` (a flag, no value): the queue is created single-producer and
    /// `T::producer()` is its `SingleProducer`; with its span.
    pub(crate) single_producer: Option<Span>,
    /// `crate = "path"`: where the fastipc crate is (default `::fastipc`).
    pub(crate) krate: Option<syn::Path>,
    /// Every known key written, valid or not: a key that was already reported as
    /// malformed does not also count as missing.
    pub(crate) written: Vec<String>,
}

/// The attributes of the struct that the derive reads.
pub(crate) struct Container {
    pub(crate) repr: Repr,
    pub(crate) ipc: Ipc,
}

/// The keys `#[ipc(...)]` accepts, for error messages.
const IPC_KEYS: &str = "`queue`, `capacity`, `lossless`, `single_producer`, `shared` or `crate`";

impl Container {
    /// Reads `#[repr]` and `#[ipc]` from the struct's attributes, reporting to `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut repr = Repr::default();
        let mut ipc = Ipc::default();
        for attr in attrs {
            if attr.path().is_ident("repr") {
                if parse_repr(attr, &mut repr.items).is_err() {
                    repr.malformed = true;
                }
            } else if attr.path().is_ident("ipc") {
                parse_ipc(cx, attr, &mut ipc);
            }
        }
        Container { repr, ipc }
    }
}

/// Reports any `#[ipc(...)]` on a field: the derive only reads them on the struct.
pub(crate) fn reject_field_attrs(cx: &Ctxt, attrs: &[Attribute]) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("ipc")) {
        cx.error_spanned_by(
            attr,
            "ipc attribute: `#[ipc(...)]` belongs on the struct, not on a field",
        );
    }
}

fn parse_repr(attr: &Attribute, items: &mut Vec<(ReprItem, TokenStream)>) -> syn::Result<()> {
    attr.parse_nested_meta(|meta| {
        let name = match meta.path.get_ident() {
            Some(ident) => ident.to_string(),
            None => return Err(meta.error("unexpected repr path")),
        };
        let mut tokens = meta.path.to_token_stream();
        if meta.input.peek(syn::token::Paren) {
            tokens.extend([meta.input.parse::<TokenTree>()?]);
        }
        let item = match name.as_str() {
            "C" => ReprItem::C,
            "transparent" => ReprItem::Transparent,
            "packed" => ReprItem::Packed,
            "Rust" => ReprItem::Rust,
            "align" => ReprItem::Align,
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
            | "i128" | "isize" => ReprItem::Int(name),
            _ => ReprItem::Other(name),
        };
        items.push((item, tokens));
        Ok(())
    })
}

fn parse_ipc(cx: &Ctxt, attr: &Attribute, ipc: &mut Ipc) {
    if !matches!(attr.meta, Meta::List(_)) {
        cx.error_spanned_by(
            attr,
            format!("ipc attribute: expected `#[ipc(key = value, ...)]` with keys {IPC_KEYS}"),
        );
        return;
    }
    let result = attr.parse_nested_meta(|meta| {
        let key = meta.path.span();
        let Some(name) = meta.path.get_ident().map(ToString::to_string) else {
            cx.error_spanned_by(
                &meta.path,
                format!("ipc attribute: unknown key; expected {IPC_KEYS}"),
            );
            return skip_value(&meta);
        };
        if name == "lossless" || name == "single_producer" {
            ipc.written.push(name.clone());
            let flag = if name == "lossless" {
                &mut ipc.lossless
            } else {
                &mut ipc.single_producer
            };
            if flag.is_some() {
                cx.error_at(key, format!("ipc attribute: duplicate key `{name}`"));
            } else if meta.input.peek(syn::Token![=]) {
                cx.error_at(key, format!("ipc attribute: `{name}` takes no value: write `{name}`"));
                return skip_value(&meta);
            }
            *flag = Some(key);
            return Ok(());
        }
        if !matches!(name.as_str(), "queue" | "capacity" | "shared" | "crate") {
            cx.error_at(
                key,
                format!("ipc attribute: unknown key `{name}`; expected {IPC_KEYS}"),
            );
            return skip_value(&meta);
        }
        ipc.written.push(name.clone());
        if !meta.input.peek(syn::Token![=]) {
            cx.error_at(
                key,
                format!("ipc attribute: `{name}` needs a value, e.g. {}", example(&name)),
            );
            return skip_value(&meta);
        }
        let value: Expr = meta.value()?.parse()?;
        let duplicate = match name.as_str() {
            "queue" => ipc.queue.is_some(),
            "capacity" => ipc.capacity.is_some(),
            "shared" => ipc.shared.is_some(),
            _ => ipc.krate.is_some(),
        };
        if duplicate {
            cx.error_at(key, format!("ipc attribute: duplicate key `{name}`"));
            return Ok(());
        }
        match (name.as_str(), literal(&value)) {
            ("capacity", Some(Lit::Int(lit))) => ipc.capacity = Some((lit.clone(), key)),
            ("capacity", _) => cx.error_spanned_by(
                &value,
                format!("ipc attribute: `capacity` takes an integer literal, e.g. {}", example(&name)),
            ),
            (_, Some(Lit::Str(lit))) => {
                let value = StrValue { value: lit.value(), lit: lit.clone() };
                match name.as_str() {
                    "queue" => ipc.queue = Some((value, key)),
                    "shared" => ipc.shared = Some(value),
                    _ => match lit.parse::<syn::Path>() {
                        Ok(path) => ipc.krate = Some(path),
                        Err(_) => cx.error_spanned_by(
                            lit,
                            "ipc attribute: `crate` takes the path of the fastipc crate, e.g. `crate = \"::fastipc\"`",
                        ),
                    },
                }
            }
            (_, _) => cx.error_spanned_by(
                &value,
                format!("ipc attribute: `{name}` takes a string literal, e.g. {}", example(&name)),
            ),
        }
        Ok(())
    });
    if let Err(error) = result {
        cx.syn_error(error);
    }
}

/// The literal `expr` is, if it is one.
fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

/// Consumes `= value` (if any) after a key that was reported, so parsing goes on with
/// the next key and reports its problems too.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// A correct use of `key`, for hints.
fn example(key: &str) -> &'static str {
    match key {
        "queue" => "`queue = \"ticks\"`",
        "capacity" => "`capacity = 4096`",
        "shared" => "`shared = \"state\"`",
        _ => "`crate = \"::fastipc\"`",
    }
}
