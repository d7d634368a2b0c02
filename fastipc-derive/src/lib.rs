//! `#[derive(IpcMessage)]` for fastipc (docs written below).

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// Derives `fastipc::IpcMessage` (see the crate documentation for the rules).
#[proc_macro_derive(IpcMessage, attributes(ipc))]
pub fn derive_ipc_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
