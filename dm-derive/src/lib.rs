//! Derives that plug MO structs into `dm-core`.
//!
//! `#[derive(MoNode)]` on an interior-node struct and
//! `#[derive(ManagementObject)]` on an MO's instance root read the `#[dm(...)]`
//! attributes (node name, format, access types, occurrence, scope) and emit
//! the static schema plus path-based read access. The stages are those of
//! thiserror: parse the attributes, validate them (collecting every error
//! with its span), then expand; after errors, a fallback implementation
//! is emitted beside them so one mistake gives one error. Generated code
//! reaches its runtime only through `::dm_core`, and the standard library
//! by absolute paths (`::core::option::Option`), so a user's own `Option`
//! or `Result` does not break it.

mod attr;
mod expand;
mod fallback;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `dm_core::MoNode` for an interior node.
#[proc_macro_derive(MoNode, attributes(dm))]
pub fn derive_mo_node(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::mo_node(&input)
        .unwrap_or_else(|e| with_fallback(e, fallback::mo_node(&input)))
        .into()
}

/// Implements `dm_core::MoNode` and `dm_core::ManagementObject` for the
/// instance root of an MO; the struct needs `#[dm(moid = "...")]`.
#[proc_macro_derive(ManagementObject, attributes(dm))]
pub fn derive_management_object(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::management_object(&input)
        .unwrap_or_else(|e| with_fallback(e, fallback::management_object(&input)))
        .into()
}

/// The errors, then the fallback implementation.
fn with_fallback(
    errors: syn::Error,
    fallback: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut out = errors.into_compile_error();
    out.extend(fallback);
    out
}
