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
//!
//! Two field keys take no value:
//!
//! - `#[dm(live)]` on a child node (leaf, `Option`, interior node or
//!   `NodeMap`): the MO owns that data. Every read the derive generates
//!   (`get_node` of the node and of every path below it, `has_node` for
//!   ClientURI resolution, the root JSON writer) calls
//!   `self.read_<field>()`, which returns `Result<FieldType, MoError>`,
//!   instead of reading the field; its error is the read's error. Writes
//!   still go to the field (the MO's `MoHooks::commit` carries them to the
//!   device). `MoNode::LIVE` is true for a node with a live field or a live
//!   node below, and a derived MO whose root is LIVE `owns_data()`.
//! - `#[dm(skip)]` on a field that is no node (a device handle, a
//!   `ChangeReporter`, a pending `Completion`): no path reaches it and
//!   `from_node` starts it at `Default::default()`.

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
