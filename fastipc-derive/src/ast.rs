//! The derive input, reduced to what the checks and the expansion need.

use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Member, Type, Visibility};

use crate::attr;
use crate::ctxt::Ctxt;

/// The item `#[derive(IpcMessage)]` was put on.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: attr::Container,
    pub(crate) shape: Shape<'a>,
}

/// What kind of item it is.
pub(crate) enum Shape<'a> {
    /// A struct with named fields or a tuple struct (fields in declaration order).
    Struct(Vec<Field<'a>>),
    /// `struct S;`, `struct S {}` or `struct S();`: no fields.
    Empty,
    /// An enum (refused).
    Enum,
    /// A union (refused).
    Union,
}

/// One field of the struct.
pub(crate) struct Field<'a> {
    /// How `offset_of!` names it: the identifier, or the index of a tuple field.
    pub(crate) member: Member,
    /// The name that enters the fingerprint: the identifier without `r#`, or the index.
    pub(crate) name: String,
    pub(crate) ty: &'a Type,
}

impl<'a> Container<'a> {
    /// Reads the derive input. Attribute problems go to `cx`; shape problems are left for
    /// `check`.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        let shape = match &input.data {
            Data::Enum(_) => Shape::Enum,
            Data::Union(_) => Shape::Union,
            Data::Struct(data) if data.fields.is_empty() => Shape::Empty,
            Data::Struct(data) => Shape::Struct(fields(cx, &data.fields)),
        };
        Container {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs,
            shape,
        }
    }
}

fn fields<'a>(cx: &Ctxt, fields: &'a Fields) -> Vec<Field<'a>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            attr::reject_field_attrs(cx, &field.attrs);
            let (member, name) = match &field.ident {
                Some(ident) => (Member::Named(ident.clone()), ident.unraw().to_string()),
                None => (Member::Unnamed(i.into()), i.to_string()),
            };
            Field {
                member,
                name,
                ty: &field.ty,
            }
        })
        .collect()
}
