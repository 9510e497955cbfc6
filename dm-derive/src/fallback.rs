//! What the derives emit beside their errors (as thiserror's `fallback.rs`
//! does): an implementation of the traits with the right signatures and
//! no behaviour, so that code using the type (a parent's `NodeMap<T>`,
//! `T::SCHEMA`, `impl MoHooks for T`) type-checks and the user sees the one
//! real error instead of a cascade of "trait not implemented". The bodies
//! are never run: the crate does not compile.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

/// `impl MoNode` with no children, and the hidden `FastNode` with its
/// defaults.
pub fn mo_node(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[allow(unused_variables, clippy::all)]
        impl #impl_generics ::dm_core::MoNode for #ident #ty_generics #where_clause {
            const CHILDREN: &'static [::dm_core::NodeSchema] = &[];

            fn get_node(
                &self,
                path: &[&str],
            ) -> ::core::result::Result<::dm_core::NodeData, ::dm_core::MoError> {
                ::core::unreachable!()
            }

            fn put_node(
                &mut self,
                path: &[&str],
                data: &::dm_core::NodeData,
            ) -> ::core::result::Result<(), ::dm_core::MoError> {
                ::core::unreachable!()
            }

            fn delete_node(
                &mut self,
                path: &[&str],
            ) -> ::core::result::Result<(), ::dm_core::MoError> {
                ::core::unreachable!()
            }

            fn from_node(
                data: &::dm_core::NodeData,
            ) -> ::core::result::Result<Self, ::dm_core::MoError> {
                ::core::unreachable!()
            }
        }

        // A derived parent asks its interior children for these too.
        impl #impl_generics ::dm_core::__private::FastNode for #ident #ty_generics #where_clause {}
    }
}

/// `impl MoNode`, the inherent `SCHEMA` and `impl ManagementObject`.
pub fn management_object(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let node = mo_node(input);
    quote! {
        #node

        #[allow(dead_code)]
        impl #impl_generics #ident #ty_generics #where_clause {
            /// The MO definition (a placeholder: the derive failed).
            pub const SCHEMA: ::dm_core::MoSchema = ::dm_core::MoSchema {
                moid: "",
                ddf_url: ::core::option::Option::None,
                root: ::dm_core::NodeSchema {
                    name: ::core::option::Option::None,
                    format: ::dm_core::Format::Node,
                    access: ::dm_core::AccessType::NONE,
                    occurrence: ::dm_core::Occurrence::One,
                    scope: ::dm_core::Scope::Dynamic,
                    children: &[],
                },
            };
        }

        #[allow(unused_variables, clippy::all)]
        impl #impl_generics ::dm_core::ManagementObject for #ident #ty_generics #where_clause {
            fn schema(&self) -> &'static ::dm_core::MoSchema {
                ::core::unreachable!()
            }

            fn get(
                &self,
                path: &[&str],
            ) -> ::core::result::Result<::dm_core::NodeData, ::dm_core::MoError> {
                ::core::unreachable!()
            }

            fn apply(
                &mut self,
                changes: &[::dm_core::Change],
            ) -> ::core::result::Result<(), ::dm_core::MoError> {
                ::core::unreachable!()
            }

            fn exec(
                &mut self,
                path: &[&str],
                request: &::dm_core::ExecRequest,
            ) -> ::core::result::Result<::dm_core::ExecOutcome, ::dm_core::MoError> {
                ::core::unreachable!()
            }
        }
    }
}
