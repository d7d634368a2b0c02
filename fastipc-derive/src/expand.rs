//! Code generation: the impls, the compile-time layout assertions and the endpoint
//! functions of the `#[ipc(...)]` attribute.

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::DeriveInput;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{Container, Field, Shape};
use crate::attr::ReprItem;
use crate::check;
use crate::ctxt::Ctxt;

/// Parses, checks and expands one derive input. On any error the output is only the
/// errors (every one found), as `compile_error!`s at their spans.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, input);
    check::check(&cx, &cont);
    if let Err(errors) = cx.check() {
        return errors;
    }
    match &cont.shape {
        Shape::Struct(fields) => expand(&cont, fields),
        // `check` reports every other shape, so this arm is not reached; if it were, no
        // impl is better than a wrong one.
        _ => TokenStream::new(),
    }
}

fn expand(cont: &Container<'_>, fields: &[Field<'_>]) -> TokenStream {
    let ident = cont.ident;
    let krate = match &cont.attrs.ipc.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::fastipc),
    };
    let p = quote!(#krate::__private);
    let name = ident.unraw().to_string();
    let assertions = assertions(cont, fields, &p);
    let fingerprint = fingerprint(cont, fields, &p);
    let endpoints = endpoints(cont, &p);
    let copy = copy_bound(ident);
    quote! {
        #assertions

        // SAFETY: `Pod` and `Zeroable` need a fixed layout, `Pod` fields and no padding.
        // The derive checked `#[repr(C)]`/`#[repr(transparent)]` itself, and the
        // assertions above prove the rest twice: with the rule checks of `#p` (which give
        // the helpful errors), and with a backstop that uses `::core` alone and the
        // `bytemuck::Pod` named here (so that a `#[ipc(crate = ..)]` path cannot skip it:
        // if it redirects `bytemuck`, these impls are of a stand-in trait). They also hold
        // the alignment to 16 and the size above 0, which `IpcMessage` adds, and that each
        // field is an `IpcMessage` (the trait named here); `FINGERPRINT` is computed with
        // `::core` alone (`fingerprint`).
        //
        // `Pod` needs `Copy`, which the user derives (or writes) next to `IpcMessage`. The
        // impls hold only where the type is `Copy` (a bound under a binder, which rustc
        // does not check eagerly for a concrete type): without `Copy` they do not apply,
        // and the one error is the `assert_copy` above, on the struct, instead of two
        // from inside `bytemuck`.
        #[automatically_derived]
        unsafe impl #p::bytemuck::Zeroable for #ident {}
        #[automatically_derived]
        unsafe impl #p::bytemuck::Pod for #ident #copy {}

        #[automatically_derived]
        unsafe impl #p::IpcMessage for #ident #copy {
            const NAME: &'static str = #name;
            const FINGERPRINT: u64 = #fingerprint;
        }

        #endpoints
    }
}

/// The layout rules the compiler decides, as assertions in an anonymous constant (always
/// evaluated). Each is a call of a `const fn` whose trait bound fails with the rule's
/// message, spanned where the problem is.
fn assertions(cont: &Container<'_>, fields: &[Field<'_>], p: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let span = ident.span();
    let sizes = fields.iter().map(|field| {
        let ty = field.ty;
        quote!(#p::size_of::<#ty>())
    });
    // Rule 4, per field: the gap between a field's end and the next field (or the end of
    // the struct). In `repr(C)` fields follow declaration order, so gaps are never
    // negative; in `repr(transparent)` every field is at offset 0 and the total check
    // below is the whole rule.
    let transparent = cont
        .attrs
        .repr
        .has(|item| matches!(item, ReprItem::Transparent));
    let gaps = fields
        .iter()
        .enumerate()
        .filter(|_| !transparent)
        .map(|(i, field)| {
            let ty = field.ty;
            let member = &field.member;
            let end = match fields.get(i + 1) {
                Some(next) => {
                    let next = &next.member;
                    quote!(#p::offset_of!(#ident, #next))
                }
                None => quote!(#p::size_of::<#ident>()),
            };
            let at = match &field.member {
                syn::Member::Named(name) => name.span(),
                syn::Member::Unnamed(_) => ty.span(),
            };
            // rustc points at the type argument whose bound fails: give it the field's span.
            let mut this = ident.clone();
            this.set_span(at);
            quote_spanned! {at=>
                #p::assert_no_padding_after_field::<
                    #this,
                    { #end - (#p::offset_of!(#ident, #member) + #p::size_of::<#ty>()) },
                >();
            }
        });
    // Rule 3, spanned on each field's type: a failed field check also taints this body,
    // so that the backstop below stays quiet and only the rule's own error shows.
    let field_checks = fields.iter().map(|field| field_fingerprint(field.ty, p));
    let backstop = backstop(cont, fields, p);
    quote_spanned! {span=>
        const _: () = {
            // `Pod` needs `Copy` (see `expand`).
            #p::assert_copy::<#ident>();
            // Rule 2: not zero-sized.
            #p::assert_not_zero_sized::<#ident, { #p::size_of::<#ident>() == 0 }>();
            // Rule 4: the size is the sum of the field sizes.
            #p::assert_no_padding::<
                #ident,
                { #p::size_of::<#ident>() - (0 #(+ #sizes)*) },
            >();
            #(#gaps)*
            // Rule 5: alignment at most 16.
            #p::assert_align_at_most_16::<#ident, { #p::align_of::<#ident>() }>();
            // Rule 3: every field type is a message.
            #(#field_checks;)*

            #backstop
        };
    }
}

/// The backstop of the `unsafe impl`s: rules 2 to 5 once more, through `::core`, the
/// `bytemuck` traits the impls name and the `IpcMessage` trait the impl names, so that no
/// `#[ipc(crate = ..)]` path can turn them off (a stand-in `__private` can replace the
/// checks above with no-ops; it cannot replace these: if it redirects `bytemuck` or
/// `IpcMessage`, the impls are of stand-in traits, and the type is no fastipc message). Each is a `const` assertion in the body of the rule checks: when one
/// of those fails, the body has a type error and is not evaluated, so the backstop never
/// adds an error to a rule's own; it fires only when the checks above were bypassed.
///
/// Whether a field type is `Pod` (and `Zeroable`, which the other impl names) is asked
/// without a trait bound, which would fail to compile with an error of its own: an
/// inherent constant that exists only where the bound holds shadows a trait's default
/// (the probe is resolved for the concrete type).
fn backstop(cont: &Container<'_>, fields: &[Field<'_>], p: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let sizes = fields.iter().map(|field| {
        let ty = field.ty;
        quote!(::core::mem::size_of::<#ty>())
    });
    let pod_fields = fields.iter().map(|field| {
        let ty = field.ty;
        let message = |which: &str| {
            Literal::string(&format!(
                "rule 3 (fixed-width fields): field `{}` of `{ident}` is not plain data \
                 (`bytemuck::{which}`)",
                field.name
            ))
        };
        let (pod, zeroable) = (message("Pod"), message("Zeroable"));
        let not_message = Literal::string(&format!(
            "rule 3 (fixed-width fields): field `{}` of `{ident}` is not an IpcMessage",
            field.name
        ));
        quote_spanned! {ty.span()=>
            ::core::assert!(__FastipcProbe::<#ty>::POD, #pod);
            ::core::assert!(__FastipcProbe::<#ty>::ZEROABLE, #zeroable);
            ::core::assert!(__FastipcProbe::<#ty>::MESSAGE, #not_message);
        }
    });
    let padding = Literal::string(&format!(
        "rule 4 (no padding): the size of `{ident}` is not the sum of its field sizes"
    ));
    let alignment = Literal::string(&format!(
        "rule 5 (alignment at most 16): `{ident}` is aligned to more than 16 bytes"
    ));
    let zero_sized = Literal::string(&format!(
        "rule 2 (plain structs only): `{ident}` is zero-sized"
    ));
    let span = ident.span();
    let layout = quote_spanned! {span=>
        ::core::assert!(
            ::core::mem::size_of::<#ident>() == 0 #(+ #sizes)*,
            #padding
        );
        ::core::assert!(::core::mem::align_of::<#ident>() <= 16, #alignment);
        ::core::assert!(::core::mem::size_of::<#ident>() != 0, #zero_sized);
    };
    quote! {
        #[allow(dead_code)]
        struct __FastipcProbe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
        impl<T: ?::core::marker::Sized + #p::bytemuck::Pod> __FastipcProbe<T> {
            const POD: bool = true;
        }
        impl<T: ?::core::marker::Sized + #p::bytemuck::Zeroable> __FastipcProbe<T> {
            const ZEROABLE: bool = true;
        }
        impl<T: ?::core::marker::Sized + #p::IpcMessage> __FastipcProbe<T> {
            const MESSAGE: bool = true;
        }
        trait __FastipcNotPlainData {
            const POD: bool = false;
            const ZEROABLE: bool = false;
            const MESSAGE: bool = false;
        }
        impl<T: ?::core::marker::Sized> __FastipcNotPlainData for __FastipcProbe<T> {}

        #(#pod_fields)*
        #layout
    }
}

/// `FINGERPRINT`: size, alignment and field count, then each field's name, type
/// fingerprint and offset, in declaration order, hashed exactly as
/// `fastipc::message::fingerprint` documents (`tests/derive.rs` checks the two agree).
/// The struct's own name is left out (see the crate docs).
///
/// Computed by code generated here, with `::core` alone and each field type's
/// fingerprint read through the `IpcMessage` trait that the impl names, so that a
/// `#[ipc(crate = ..)]` path cannot give a real message a meaningless fingerprint. A field
/// type that is not a message reads 0 (a probe, as in [`backstop`], without an error of
/// its own): such a struct does not compile anyway (rule 3).
fn fingerprint(cont: &Container<'_>, fields: &[Field<'_>], p: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let count = Literal::usize_unsuffixed(fields.len());
    // One nested expression, no `let`: a binding could be captured by a user constant of
    // the same name (a pattern), whatever its hygiene.
    let mut hash = quote! {
        __fastipc_u64(
            __fastipc_u64(
                __fastipc_u64(
                    __fastipc_str(0xcbf2_9ce4_8422_2325, "struct"),
                    ::core::mem::size_of::<#ident>() as u64,
                ),
                ::core::mem::align_of::<#ident>() as u64,
            ),
            #count,
        )
    };
    for field in fields {
        let ty = field.ty;
        let member = &field.member;
        let name = &field.name;
        hash = quote! {
            __fastipc_u64(
                __fastipc_u64(
                    __fastipc_str(#hash, #name),
                    __FastipcField::<#ty>::FINGERPRINT,
                ),
                ::core::mem::offset_of!(#ident, #member) as u64,
            )
        };
    }
    quote! {{
        #[allow(dead_code)]
        struct __FastipcField<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
        impl<T: ?::core::marker::Sized + #p::IpcMessage> __FastipcField<T> {
            const FINGERPRINT: u64 = <T as #p::IpcMessage>::FINGERPRINT;
        }
        trait __FastipcNotMessage {
            const FINGERPRINT: u64 = 0;
        }
        impl<T: ?::core::marker::Sized> __FastipcNotMessage for __FastipcField<T> {}
        // 64-bit FNV-1a and splitmix64's finaliser, as `fastipc::message::fingerprint`.
        // Every binding is prefixed: a user constant of the same name in scope would turn
        // it into a pattern.
        const fn __fastipc_bytes(__fastipc_h: u64, __fastipc_b: &[u8]) -> u64 {
            let mut __fastipc_x = __fastipc_h;
            let mut __fastipc_i = 0;
            while __fastipc_i < __fastipc_b.len() {
                __fastipc_x ^= __fastipc_b[__fastipc_i] as u64;
                __fastipc_x = __fastipc_x.wrapping_mul(0x0000_0100_0000_01b3);
                __fastipc_i += 1;
            }
            __fastipc_x
        }
        const fn __fastipc_u64(__fastipc_h: u64, __fastipc_v: u64) -> u64 {
            __fastipc_bytes(__fastipc_h, &__fastipc_v.to_le_bytes())
        }
        const fn __fastipc_str(__fastipc_h: u64, __fastipc_s: &str) -> u64 {
            __fastipc_bytes(
                __fastipc_u64(__fastipc_h, __fastipc_s.len() as u64),
                __fastipc_s.as_bytes(),
            )
        }
        const fn __fastipc_finish(__fastipc_h: u64) -> u64 {
            let mut __fastipc_z = __fastipc_h;
            __fastipc_z = (__fastipc_z ^ (__fastipc_z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            __fastipc_z = (__fastipc_z ^ (__fastipc_z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            __fastipc_z ^= __fastipc_z >> 31;
            if __fastipc_z == 0 { 1 } else { __fastipc_z }
        }
        __fastipc_finish(#hash)
    }}
}

/// The inherent functions of `#[ipc(queue = ..., capacity = ...)]` and
/// `#[ipc(shared = ...)]`, with the struct's visibility.
fn endpoints(cont: &Container<'_>, p: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let vis = cont.vis;
    let ipc = &cont.attrs.ipc;
    // Like the impls, the functions exist only where the type is `Copy` (else the derive
    // reports the one `assert_copy` error, not one more per function).
    let copy = copy_bound(ident);
    let mut fns = TokenStream::new();
    if let (Some((queue, _)), Some((capacity, _))) = (&ipc.queue, &ipc.capacity) {
        let queue_name = &queue.value;
        // `check` proved the literal is a power of two no larger than 2^31.
        let capacity = match capacity.base10_parse::<u64>() {
            Ok(n) => Literal::u64_unsuffixed(n),
            Err(error) => return error.to_compile_error(),
        };
        let (mode, mode_doc) = if ipc.lossless.is_some() {
            (quote!(Lossless), "lossless")
        } else {
            (quote!(Lossy), "lossy")
        };
        // Without `single_producer` the options are the bare `Mode` (as before the key
        // existed); with it, `QueueOptions` declaring the one producer.
        let (options, producer_ty, take, mode_doc) = if ipc.single_producer.is_some() {
            (
                quote!(#p::QueueOptions::from(#p::Mode::#mode).single_producer()),
                quote!(#p::SingleProducer<Self>),
                quote!(single_producer),
                format!("{mode_doc} single-producer"),
            )
        } else {
            (
                quote!(#p::Mode::#mode),
                quote!(#p::Producer<Self>),
                quote!(producer),
                mode_doc.to_owned(),
            )
        };
        let doc_queue = format!(
            "Opens the {mode_doc} queue `{queue_name}` of `{ident}` messages, creating it with \
             room for {capacity} messages if it does not exist yet (`#[ipc(queue = ...)]`)."
        );
        let doc_producer = if ipc.single_producer.is_some() {
            format!(
                "The single producer of the queue `{queue_name}` (see [`{ident}::queue`]): one \
                 at a time in all processes (`#[ipc(single_producer)]`)."
            )
        } else {
            format!("A producer on the queue `{queue_name}` (see [`{ident}::queue`]).")
        };
        let doc_consumer = format!(
            "A consumer on the queue `{queue_name}`, reading from now on (see \
             [`{ident}::queue`])."
        );
        fns.extend(quote! {
            #[doc = #doc_queue]
            #[allow(dead_code)]
            #vis fn queue() -> #p::Result<#p::SlickQueue<Self>, #p::OpenError> #copy {
                #p::SlickQueue::<Self>::open_or_create_with(#queue_name, #capacity, #options)
            }
            #[doc = #doc_producer]
            #[allow(dead_code)]
            #vis fn producer() -> #p::Result<#producer_ty, #p::OpenError> #copy {
                Self::queue()?.#take()
            }
            #[doc = #doc_consumer]
            #[allow(dead_code)]
            #vis fn consumer() -> #p::Result<#p::Consumer<Self>, #p::OpenError> #copy {
                Self::queue()?.consumer()
            }
        });
    }
    if let Some(shared) = &ipc.shared {
        let shared_name = &shared.value;
        let doc = format!(
            "Opens the named shared `{ident}` `{shared_name}`, creating it zeroed if it does \
             not exist yet (`#[ipc(shared = ...)]`)."
        );
        fns.extend(quote! {
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn shared() -> #p::Result<#p::SharedCell<Self>, #p::SharedCellError> #copy {
                #p::SharedCell::<Self>::open_or_create(#shared_name)
            }
        });
    }
    if fns.is_empty() {
        return fns;
    }
    quote! {
        #[automatically_derived]
        impl #ident {
            #fns
        }
    }
}

/// `where for<'a> T: Copy`: a bound that holds exactly when the message type is `Copy`,
/// under a binder so that rustc checks it where the impl or function is used rather than
/// rejecting it as a false bound of a concrete type.
fn copy_bound(ident: &syn::Ident) -> TokenStream {
    quote!(where for<'__fastipc> #ident: ::core::marker::Copy)
}

/// `#p::field_fingerprint::<T>()`, the rule 3 check of one field, spanned on its type so
/// that rustc's error lands on the field.
fn field_fingerprint(ty: &syn::Type, p: &TokenStream) -> TokenStream {
    quote_spanned!(ty.span()=> #p::field_fingerprint::<#ty>())
}
