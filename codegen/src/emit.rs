//! Stage 3: IR -> Rust source (quote, formatted with prettyplease).
//!
//! Per docs/architecture.md "Typed codegen": one struct per interior node, one field
//! per child, typed by format (chr/xml/date/time `String`, int `i64`, bool
//! `bool`, float `f64`, b64/bin `Vec<u8>`, null `()`); a named node that may
//! be absent is an `Option`, an un-named node a `dm_core::NodeMap` bounded
//! by its occurrence. The `#[dm(...)]` attributes carry the node properties
//! to `dm-derive`, which builds the static schema and the path-based access
//! the runtime uses.
//!
//! # Access types in the typed API
//!
//! Fields are `pub(crate)`: the MO author's crate (which `include!`s the
//! generated file) is the device and may set everything, Get-only leaves
//! included. Other crates see inherent methods that follow the DDF access
//! types (spec 6.3.1 "Min. Access Types"), so that a node without Replace
//! has no setter at all:
//!
//! | child | Get | Replace | Add | Delete |
//! |---|---|---|---|---|
//! | leaf, named, One | `x() -> &str / i64 / ..` | `set_x(v)` | - | - |
//! | leaf, named, may be absent | `x() -> Option<..>` | `set_x(v)` (creates it) | `insert_x(v)` when no Replace | `remove_x()` |
//! | interior, named | `x() -> &T` / `Option<&T>` | - | `insert_x(T)` when it may be absent | `remove_x()` |
//! | un-named (`NodeMap`) | `x() -> &NodeMap` | leaves: `set_x(name, v)` | `insert_x(name, v)`, bounds enforced | `remove_x(name)`, minimum enforced |
//!
//! Every interior child also gets `x_mut()` (by name for un-named nodes):
//! it only reaches the accessors below, so the rules hold at every depth.
//! The DM existence rules of a command (Add only creates, Replace only
//! overwrites) are the runtime's to check (6.3.1.1); the typed API decides
//! which operations exist at all. A `null` leaf has no value to get or set.
//!
//! # Construction and defaults
//!
//! Each struct has `with_required(..)` taking its required (occurrence
//! minimum >= 1) children that have no default: leaves with a valid
//! `DefaultValue` (spec 6.4) start at it and interior nodes whose own
//! `with_required` takes nothing are built with it. Nodes that may be
//! absent start absent, `NodeMap`s start empty (a `OneOrMore` map is below
//! its minimum until filled, which `NodeMap::meets_minimum` tells). When
//! `with_required` takes nothing the struct also implements `Default` with
//! it. The name leaves `new` to the MO author (`DevInfo::new(&facts)`). Each leaf with a default value gets an
//! associated constant `X_DEFAULT`; an optional leaf with a default starts
//! absent: DefaultValue says what a node holds once it exists, not that it
//! exists.
//!
//! # Behaviour
//!
//! For each MO root (a root node with a MOID), a trait `<Root>Behaviour`
//! with one method per Exec node (spec 5.3.5), named after the node's path
//! (`Operations/Enable` -> `operations_enable`) and given the run-time names
//! of the un-named nodes on the path, plus `validate`, the hook run after
//! every write and before commit; and `impl dm_core::MoHooks for <Root>`
//! forwarding to it. The MO author implements the trait (empty when the MO
//! has no Exec node). Roots without a MOID (most Windows files) only get
//! `#[derive(MoNode)]` structs: a MOID is a global name that the MO's
//! owner assigns (6.1.1.1), and inventing one (from `DFType/MIME`, which
//! 334 Windows roots share, or from `Path`, a DM 1.x tree location) would
//! put an identifier on the wire that no DM Server knows.
//! [`EmitOptions::moids`] supplies one when a deployment has it. The trait
//! also carries the hooks `commit` (a write reaches the device),
//! `resume_exec` and `attach`, with defaults that do nothing.
//!
//! # Data the MO owns
//!
//! The nodes chosen in [`EmitOptions::live`] get `#[dm(live)]`, and each
//! struct holding one a `<Type>Live` trait with a typed `read_<field>`
//! returning the field's type, which the derive calls at every read; the
//! typed getter of such a node still returns the field. Fields of MO code
//! ([`EmitOptions::fields`]) are `#[dm(skip)]`. See `live`.
//!
//! The emitter reads in this order: here the types, fields and
//! constructors of each node; `accessors` the methods of each child;
//! `behaviour` the trait of each MO root; `layout` the last pass over the
//! formatted text (doc comments and attribute lines).

mod accessors;
mod behaviour;
mod layout;
mod live;

use std::cell::RefCell;
use std::collections::HashMap;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use dm_core::{Format, Occurrence, Scope, Value};

use crate::error::EmitError;
use crate::ir::{behaviour_trait_name, Ddf, Holder, NodeDef, NodeId};

use layout::{fill_docs, DOC_MARK};
pub(crate) use live::root_named;
use live::Owned;

/// Settings that change the output.
#[derive(Debug, Clone, Default)]
pub struct EmitOptions {
    /// The DDF URL recorded in the schema (MOS and MO serialization).
    pub ddf_url: Option<String>,
    /// File name shown in the `@generated` header.
    pub source_name: String,
    /// MOIDs for roots whose DDF has none, by root node name (or DFTitle
    /// for an un-named root): these roots become MOs.
    pub moids: HashMap<String, String>,
    /// Nodes whose data the MO owns, as paths of DDF node names from the
    /// root (`Battery/Level`; `Battery` for every child with Get of that
    /// root; `Battery/<Cell>` or `Battery/Cell` for an un-named node). Each
    /// gets `#[dm(live)]`, and its parent's struct a `<Type>Live` trait
    /// with a typed `read_<field>` that the MO author implements. A chosen
    /// node without Get is an error.
    pub live: Vec<String>,
    /// Fields MO code adds to the struct of an interior node: (path as in
    /// `live`, `name: Type`). Each is `#[dm(skip)] pub(crate) name: Type`,
    /// no node of the tree, starting at `Default::default()`; `Type` must
    /// be `Default + Clone + Debug + PartialEq`, as the struct derives those.
    pub fields: Vec<(String, String)>,
}

/// Emits the whole file.
///
/// Standard items are named by absolute path (`::core::option::Option`,
/// `::std::string::String`, ...), as prost does, so that the file compiles
/// in a module that defines or imports its own `Option`, `Result` or
/// `String`; the fixture crate's `shadowed` module checks it.
pub fn emit(ddf: &Ddf, opts: &EmitOptions) -> Result<String, EmitError> {
    let owned = Owned::resolve(ddf, opts)?;
    let mut e = Emitter {
        ddf,
        opts,
        owned,
        docs: RefCell::new(Vec::new()),
        new_takes_args: vec![None; ddf.len()],
    };
    let mut items = TokenStream::new();
    for &root in ddf.roots() {
        e.emit_node(root, &mut items);
    }
    let file: syn::File = syn::parse2(items).map_err(|source| EmitError::Unparsable {
        source_name: opts.source_name.clone(),
        source,
    })?;
    let header = format!(
        "// @generated by dm-codegen from {}. Do not edit: change the DDF and rebuild.\n\n",
        opts.source_name
    );
    let pretty = prettyplease::unparse(&file);
    Ok(fill_docs(header, &pretty, &e.docs.into_inner()))
}

struct Emitter<'a> {
    ddf: &'a Ddf,
    opts: &'a EmitOptions,
    /// The live nodes and extra fields chosen in `opts`.
    owned: Owned,
    /// Doc comment texts, emitted as short placeholders (see `doc_lines`).
    docs: RefCell<Vec<Vec<String>>>,
    /// Memo: does `with_required` of this interior node take arguments?
    new_takes_args: Vec<Option<bool>>,
}

/// The Rust type of a leaf's value.
fn leaf_type(format: Format) -> TokenStream {
    match format {
        Format::Chr | Format::Xml | Format::Date | Format::Time => quote!(::std::string::String),
        Format::Int => quote!(i64),
        Format::Bool => quote!(bool),
        Format::Float => quote!(f64),
        Format::B64 | Format::Bin => quote!(::std::vec::Vec<u8>),
        Format::Null | Format::Node => quote!(()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LeafKind {
    Text,
    Bytes,
    Copy,
    Null,
}

fn leaf_kind(format: Format) -> LeafKind {
    match format {
        Format::Chr | Format::Xml | Format::Date | Format::Time => LeafKind::Text,
        Format::B64 | Format::Bin => LeafKind::Bytes,
        Format::Int | Format::Bool | Format::Float => LeafKind::Copy,
        Format::Null | Format::Node => LeafKind::Null,
    }
}

/// A setter's parameter type and how it becomes the field's value.
fn param(format: Format) -> (TokenStream, TokenStream) {
    match leaf_kind(format) {
        LeafKind::Text => (
            quote!(impl ::core::convert::Into<::std::string::String>),
            quote!(value.into()),
        ),
        LeafKind::Bytes => (
            quote!(impl ::core::convert::Into<::std::vec::Vec<u8>>),
            quote!(value.into()),
        ),
        LeafKind::Copy | LeafKind::Null => {
            let t = leaf_type(format);
            (t, quote!(value))
        }
    }
}

/// Makes description text safe as rustdoc Markdown: no HTML tags, no link
/// brackets, no code fences (which would become doctests in the MO
/// author's crate).
fn doc_text(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let l = l.trim();
            let mut out = String::with_capacity(l.len() + 1);
            out.push(' ');
            if l.starts_with("```") || l.starts_with("~~~") {
                out.push('\\');
            }
            for c in l.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '[' => out.push_str("\\["),
                    ']' => out.push_str("\\]"),
                    _ => out.push(c),
                }
            }
            out
        })
        .collect()
}

/// `` `<x>/SrvID` `` as doc text (inside code spans nothing is escaped).
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

fn access_text(def: &NodeDef) -> String {
    if def.access.is_empty() {
        "no access".to_owned()
    } else {
        def.access.to_string()
    }
}

impl Emitter<'_> {
    /// A doc comment of several lines (each starting with a space, or
    /// empty), as one placeholder attribute.
    fn doc_lines(&self, lines: Vec<String>) -> TokenStream {
        let mut docs = self.docs.borrow_mut();
        let mark = format!("{}{}", &DOC_MARK[3..], docs.len());
        docs.push(lines);
        quote!(#[doc = #mark])
    }

    fn doc_line(&self, line: String) -> TokenStream {
        self.doc_lines(vec![line])
    }

    fn node(&self, id: NodeId) -> &NodeDef {
        self.ddf.node(id)
    }

    fn moid_of(&self, id: NodeId) -> Option<String> {
        let def = self.node(id);
        if def.parent.is_some() {
            return None;
        }
        def.moid.clone().or_else(|| {
            let key = def.name.clone().or_else(|| def.title.clone())?;
            self.opts.moids.get(&key).cloned()
        })
    }

    /// The doc comment of a node: what the spec's section 12 tables show,
    /// then the description.
    fn doc(&self, id: NodeId) -> TokenStream {
        let def = self.node(id);
        let mut lines = vec![format!(
            " {}: {}, {}, {}, {}.",
            code(&self.ddf.display_path(id)),
            def.status(),
            def.occurrence,
            def.format,
            access_text(def)
        )];
        if let Some(d) = &def.description {
            lines.push(String::new());
            lines.extend(doc_text(d));
        }
        self.doc_lines(lines)
    }

    /// The `#[dm(...)]` keys of a node, leaving out what the derive takes
    /// by default because the DDF does when the element is absent
    /// (`dm_derive` attr.rs): no access, occurrence `One`, scope `Dynamic`;
    /// and the format of an MO root, which can only be `node`.
    fn attr_parts(def: &NodeDef, mo_root: bool) -> Vec<TokenStream> {
        let mut parts = Vec::with_capacity(4);
        if !mo_root {
            let format = def.format.as_str();
            parts.push(quote!(format = #format));
        }
        if !def.access.is_empty() {
            let access = def.access.names().collect::<Vec<_>>().join(", ");
            parts.push(quote!(access = #access));
        }
        if def.occurrence != Occurrence::One {
            let occurrence = def.occurrence.to_string();
            parts.push(quote!(occurrence = #occurrence));
        }
        if def.scope != Scope::Dynamic {
            let scope = def.scope.as_str();
            parts.push(quote!(scope = #scope));
        }
        parts
    }

    fn type_ident(&self, id: NodeId) -> syn::Ident {
        format_ident!("{}", self.node(id).rust.type_name)
    }

    /// The value type of a child: its struct or its leaf type.
    fn value_type(&self, id: NodeId) -> TokenStream {
        let def = self.node(id);
        if def.is_interior() {
            let t = self.type_ident(id);
            quote!(#t)
        } else {
            leaf_type(def.format)
        }
    }

    /// The field type of a child: value type wrapped by its holder.
    fn field_type(&self, id: NodeId) -> TokenStream {
        let base = self.value_type(id);
        match self.node(id).holder() {
            Holder::Plain => base,
            Holder::Optional => quote!(::core::option::Option<#base>),
            Holder::Map { min, max } => {
                let min = Literal::usize_unsuffixed(min as usize);
                let max = match max {
                    Some(max) => {
                        let max = Literal::usize_unsuffixed(max as usize);
                        quote!(#max)
                    }
                    // A const argument that is a path of several
                    // segments must be braced.
                    None => quote!({ ::dm_core::UNBOUNDED }),
                };
                quote!(::dm_core::NodeMap<#base, #min, #max>)
            }
        }
    }

    fn new_takes_args(&mut self, id: NodeId) -> bool {
        if let Some(known) = self.new_takes_args[id.index()] {
            return known;
        }
        let children = self.node(id).children.clone();
        let takes = children.into_iter().any(|c| self.is_new_param(c));
        self.new_takes_args[id.index()] = Some(takes);
        takes
    }

    /// A child that `with_required` of its parent takes as an argument.
    fn is_new_param(&mut self, c: NodeId) -> bool {
        let def = self.node(c);
        if def.holder() != Holder::Plain {
            return false;
        }
        if def.is_interior() {
            self.new_takes_args(c)
        } else {
            def.format != Format::Null && def.default.is_none()
        }
    }

    fn emit_node(&mut self, id: NodeId, out: &mut TokenStream) {
        let def = self.node(id);
        let ident = self.type_ident(id);
        let fields: Vec<TokenStream> = def
            .children
            .iter()
            .map(|&c| {
                let child = self.node(c);
                let field = format_ident!("{}", child.rust.field_name);
                let ty = self.field_type(c);
                let mut props = Self::attr_parts(child, false);
                if let Some(n) = &child.name {
                    props.insert(0, quote!(name = #n));
                }
                if self.is_live(c) {
                    props.push(quote!(live));
                }
                let doc = self.doc(c);
                quote! {
                    #doc
                    #[dm(#(#props),*)]
                    pub(crate) #field: #ty,
                }
            })
            .collect();
        let (extra, _) = self.extra_fields(id);
        let doc = self.doc(id);
        let moid = self.moid_of(id);
        let derive = match &moid {
            Some(moid) => {
                let mut props = vec![quote!(moid = #moid)];
                if let Some(url) = &self.opts.ddf_url {
                    props.push(quote!(ddf_url = #url));
                }
                props.extend(Self::attr_parts(def, true));
                quote! {
                    #[derive(Debug, Clone, PartialEq, ::dm_core::ManagementObject)]
                    #[dm(#(#props),*)]
                }
            }
            None => quote!(#[derive(Debug, Clone, PartialEq, ::dm_core::MoNode)]),
        };
        out.extend(quote! {
            #doc
            #derive
            pub struct #ident {
                #(#fields)*
                #(#extra)*
            }
        });
        out.extend(self.inherent_impl(id));
        out.extend(self.live_trait(id));
        if let Some(moid) = &moid {
            out.extend(self.behaviour(id, moid));
        }
        for c in self.node(id).children.clone() {
            if self.node(c).is_interior() {
                self.emit_node(c, out);
            }
        }
    }

    /// `new`, `Default`, default constants and the accessors.
    fn inherent_impl(&mut self, id: NodeId) -> TokenStream {
        let ident = self.type_ident(id);
        let children = self.node(id).children.clone();
        let mut consts = Vec::new();
        let mut params = Vec::new();
        let mut inits = Vec::new();
        let mut methods = Vec::new();
        for &c in &children {
            if let Some(k) = self.default_const(c) {
                consts.push(k);
            }
            let (param, init) = self.new_part(c);
            params.extend(param);
            inits.push(init);
            methods.push(self.accessors(c));
        }
        let (_, extra) = self.extra_fields(id);
        inits.extend(extra);
        let new_doc = self.doc_line(format!(
            " A new {} node: required children from the arguments or their default values, optional ones absent, un-named ones empty.",
            code(&self.ddf.display_path(id))
        ));
        let many = (params.len() > 7).then(|| quote!(#[allow(clippy::too_many_arguments)]));
        let default_impl = params.is_empty().then(|| {
            quote! {
                impl ::core::default::Default for #ident {
                    fn default() -> Self {
                        Self::with_required()
                    }
                }
            }
        });
        quote! {
            impl #ident {
                #(#consts)*

                #new_doc
                #many
                pub fn with_required(#(#params),*) -> Self {
                    Self { #(#inits),* }
                }

                #(#methods)*
            }

            #default_impl
        }
    }

    fn default_const(&self, c: NodeId) -> Option<TokenStream> {
        let def = self.node(c);
        let name = format_ident!("{}", def.rust.default_const()?);
        let doc = self.doc_line(format!(
            " Default value of {} (DDF `DefaultValue`).",
            code(&self.ddf.display_path(c))
        ));
        let (ty, lit) = match def.default.as_ref()? {
            Value::Chr(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s) => {
                (quote!(&'static str), quote!(#s))
            }
            Value::Int(i) => {
                let l = Literal::i64_unsuffixed(*i);
                (quote!(i64), quote!(#l))
            }
            Value::Bool(b) => (quote!(bool), quote!(#b)),
            Value::Float(f) => {
                let l = Literal::f64_unsuffixed(*f);
                (quote!(f64), quote!(#l))
            }
            Value::B64(b) | Value::Bin(b) => {
                let l = Literal::byte_string(b);
                (quote!(&'static [u8]), quote!(#l))
            }
            Value::Null => return None,
        };
        Some(quote! {
            #doc
            pub const #name: #ty = #lit;
        })
    }

    /// The parameter (if any) and the field initializer of `new` for `c`.
    fn new_part(&mut self, c: NodeId) -> (Option<TokenStream>, TokenStream) {
        let field = format_ident!("{}", self.node(c).rust.field_name);
        let def = self.node(c);
        match def.holder() {
            Holder::Optional => (None, quote!(#field: ::core::option::Option::None)),
            Holder::Map { .. } => (None, quote!(#field: ::dm_core::NodeMap::new())),
            Holder::Plain if def.is_interior() => {
                let t = self.type_ident(c);
                if self.new_takes_args(c) {
                    (Some(quote!(#field: #t)), quote!(#field))
                } else {
                    (None, quote!(#field: #t::with_required()))
                }
            }
            Holder::Plain => {
                let kind = leaf_kind(def.format);
                if kind == LeafKind::Null {
                    return (None, quote!(#field: ()));
                }
                if let Some(k) = def.rust.default_const() {
                    let k = format_ident!("{k}");
                    let init = match kind {
                        LeafKind::Text => quote!(::std::string::String::from(Self::#k)),
                        LeafKind::Bytes => quote!(Self::#k.to_vec()),
                        _ => quote!(Self::#k),
                    };
                    return (None, quote!(#field: #init));
                }
                let (ty, _) = param(def.format);
                let init = match kind {
                    LeafKind::Text | LeafKind::Bytes => quote!(#field: #field.into()),
                    _ => quote!(#field),
                };
                (Some(quote!(#field: #ty)), init)
            }
        }
    }
}
