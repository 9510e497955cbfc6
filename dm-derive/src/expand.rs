//! Expansion of the derives.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields};

use crate::attr::{self, Errors, Occ};

/// How a field holds its child node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A named node that always exists: `T`.
    Plain,
    /// A named node that may be absent: `Option<T>`.
    Optional,
    /// An un-named node: `NodeMap<T, MIN, MAX>`, instances named at run time.
    Map,
}

/// One child node, validated.
struct Child {
    ident: syn::Ident,
    /// `None` for the un-named child.
    name: Option<String>,
    interior: bool,
    kind: Kind,
    schema: TokenStream,
    format: TokenStream,
    /// The node's `AccessType` expression.
    access: TokenStream,
    /// `#[dm(live)]`: the method every read calls, `read_<field>`.
    live: Option<syn::Ident>,
    /// The node type of an interior child (`T` of `T`, `Option<T>`,
    /// `NodeMap<T, ..>`), whose `LIVE` this node's takes in.
    node_type: Option<syn::Type>,
}

/// The fields of a node struct: its child nodes, and the `#[dm(skip)]`
/// fields that are no node (MO code's own state).
struct NodeFields {
    children: Vec<Child>,
    skipped: Vec<syn::Ident>,
}

fn children(input: &DeriveInput, errors: &mut Errors) -> NodeFields {
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "MO node structs cannot be generic",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(f) => f.named.iter().collect::<Vec<_>>(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(f) => {
                errors.push(syn::Error::new(
                    f.span(),
                    "MO node structs need named fields, one per child node",
                ));
                Vec::new()
            }
        },
        _ => {
            errors.push(syn::Error::new(
                input.ident.span(),
                "MO nodes are structs, one field per child node",
            ));
            Vec::new()
        }
    };
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut unnamed_seen = false;
    for field in fields {
        let attrs = attr::parse(&field.attrs, errors);
        let Some(ident) = field.ident.clone() else {
            continue;
        };
        if attrs.invalid {
            continue;
        }
        if let Some(span) = attrs.skip {
            if attrs.live.is_some() {
                errors.push(syn::Error::new(
                    span,
                    "a field is `skip` (no node) or `live` (a node read from the MO), not both",
                ));
            } else if let Some(key) = attrs.node_key {
                errors.push(syn::Error::new(
                    key,
                    "a `skip` field is no node and takes no node property: \
                     write #[dm(skip)] alone",
                ));
            } else {
                skipped.push(ident);
            }
            continue;
        }
        let name = attrs.name;
        let Some((format_name, _)) = attrs.format else {
            errors.push(syn::Error::new(
                ident.span(),
                "missing #[dm(format = \"...\")]: the DDF format of this node",
            ));
            continue;
        };
        let occurrence = attrs.occurrence;
        let occ_tokens = occurrence.tokens.clone();
        let kind = match (&name, occurrence.kind) {
            (None, _) => Kind::Map,
            (Some(_), Occ::MaybeNone) => Kind::Optional,
            (Some(_), Occ::AtLeastOne) => Kind::Plain,
        };
        if kind == Kind::Map {
            if unnamed_seen {
                errors.push(syn::Error::new(
                    ident.span(),
                    "a node has at most one un-named child (fields without `name`)",
                ));
            }
            unnamed_seen = true;
            check_map_bounds(&field.ty, &occurrence, errors);
        }
        let interior = format_name == "node";
        let format = attr::format_tokens(&format_name);
        let access = attrs.access;
        let scope = attrs.scope;
        let ty = &field.ty;
        // Option<T> and NodeMap<T, ..> hold T; the schema is T's.
        let node_type = interior.then(|| match kind {
            Kind::Plain => ty.clone(),
            Kind::Optional | Kind::Map => first_type_argument(ty).unwrap_or(ty).clone(),
        });
        let child_defs = match &node_type {
            Some(inner) => quote!(<#inner as ::dm_core::MoNode>::CHILDREN),
            None => quote!(&[]),
        };
        // `r#type` reads through `read_type`.
        let live = attrs
            .live
            .map(|span| syn::Ident::new(&format!("read_{}", ident.unraw()), span));
        let name_tokens = match &name {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let schema = quote! {
            ::dm_core::NodeSchema {
                name: #name_tokens,
                format: #format,
                access: #access,
                occurrence: #occ_tokens,
                scope: #scope,
                children: #child_defs,
            }
        };
        out.push(Child {
            ident,
            name,
            interior,
            kind,
            schema,
            format,
            access,
            live,
            node_type,
        });
    }
    NodeFields {
        children: out,
        skipped,
    }
}

/// `live` and `skip` are field keys: on the struct itself they are
/// refused (an MO root or node is live through its fields).
fn refuse_flags_on_struct(attrs: &attr::NodeAttrs, root: bool, errors: &mut Errors) {
    if let Some(span) = attrs.live {
        let what = if root {
            "an MO root cannot be `live`: put #[dm(live)] on the fields (child nodes) \
             whose data the MO owns"
        } else {
            "`live` goes on a field (the child node whose data the MO owns), not on the struct"
        };
        errors.push(syn::Error::new(span, what));
    }
    if let Some(span) = attrs.skip {
        errors.push(syn::Error::new(
            span,
            "`skip` goes on a field that is no node, not on the struct",
        ));
    }
}

/// Where a read finds a child's value: `(statement, expression of &T)`.
/// A stored child is its field; a live one is what `read_<field>()`
/// answers now, bound by the statement; `on_err` ends the read when that
/// fails (`?`, or the fallback of a read that cannot fail).
fn source(c: &Child, on_err: &ReadError) -> (TokenStream, TokenStream) {
    let ident = &c.ident;
    match &c.live {
        None => (quote!(), quote!(&self.#ident)),
        Some(read) => {
            let bind = match on_err {
                ReadError::Propagate => quote!(let __dm_live = self.#read()?;),
                ReadError::Answer(v) => quote! {
                    let ::core::result::Result::Ok(__dm_live) = self.#read() else {
                        return #v;
                    };
                },
            };
            (bind, quote!(&__dm_live))
        }
    }
}

/// What a read does when a live child's read fails.
enum ReadError {
    /// Returns the `MoError` (the runtime answers its status).
    Propagate,
    /// Returns this value.
    Answer(TokenStream),
}

/// For an un-named child written `NodeMap<T, MIN, MAX>` with literal
/// bounds: a MAX of 0 is refused (it once meant "no limit"; that is
/// `dm_core::UNBOUNDED` now, the default MAX), and bounds that disagree
/// with the occurrence are reported, since `NodeMap` enforces its bounds
/// and the schema tells the DM Server the occurrence (spec 6.3.1).
fn check_map_bounds(ty: &syn::Type, occurrence: &attr::Occurrence, errors: &mut Errors) {
    let syn::Type::Path(p) = ty else { return };
    let Some(last) = p.path.segments.last() else {
        return;
    };
    if last.ident != "NodeMap" {
        return;
    }
    let syn::PathArguments::AngleBracketed(a) = &last.arguments else {
        return;
    };
    /// A bound as written: a number, `UNBOUNDED`, or something else
    /// (a constant the derive cannot evaluate: not checked).
    enum Bound {
        Number(u64),
        Unbounded,
        Other,
    }
    let bound = |arg: &syn::GenericArgument| match arg {
        syn::GenericArgument::Const(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        })) => i.base10_parse::<u64>().map_or(Bound::Other, Bound::Number),
        // `UNBOUNDED` (parsed as a type) or `{ ::dm_core::UNBOUNDED }`.
        syn::GenericArgument::Type(syn::Type::Path(syn::TypePath { path, .. }))
        | syn::GenericArgument::Const(syn::Expr::Path(syn::ExprPath { path, .. }))
            if is_unbounded(path) =>
        {
            Bound::Unbounded
        }
        syn::GenericArgument::Const(syn::Expr::Block(b)) => match b.block.stmts.as_slice() {
            [syn::Stmt::Expr(syn::Expr::Path(p), None)] if is_unbounded(&p.path) => {
                Bound::Unbounded
            }
            _ => Bound::Other,
        },
        _ => Bound::Other,
    };
    let args: Vec<&syn::GenericArgument> = a.args.iter().collect();
    let min = args.get(1).map_or(Bound::Number(0), |a| bound(a));
    let max = args.get(2).map_or(Bound::Unbounded, |a| bound(a));
    if let (Some(arg), Bound::Number(0)) = (args.get(2), &max) {
        errors.push(syn::Error::new_spanned(
            arg,
            "a NodeMap maximum of 0 allows no instance; \
             for no upper bound write `{ ::dm_core::UNBOUNDED }` or leave MAX out",
        ));
        return;
    }
    let (want_min, want_max) = occurrence.bounds;
    let min_ok = match min {
        Bound::Number(n) => n == u64::from(want_min),
        Bound::Unbounded => false,
        Bound::Other => true,
    };
    let max_ok = match (max, want_max) {
        (Bound::Number(n), Some(w)) => n == u64::from(w),
        (Bound::Unbounded, None) => true,
        (Bound::Other, _) => true,
        _ => false,
    };
    if !(min_ok && max_ok) {
        let max_text =
            want_max.map_or_else(|| "{ ::dm_core::UNBOUNDED }".to_owned(), |m| m.to_string());
        errors.push(syn::Error::new_spanned(
            a,
            format!(
                "NodeMap bounds do not match occurrence `{}`: expected NodeMap<_, {want_min}, {max_text}>",
                occurrence.text
            ),
        ));
    }
}

fn is_unbounded(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| s.ident == "UNBOUNDED")
}

/// `T` for a type written `Option<T>` or `NodeMap<T, ..>`.
fn first_type_argument(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => match a.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn mo_node_impl(input: &DeriveInput, fields: &NodeFields) -> TokenStream {
    let children = &fields.children[..];
    let ident = &input.ident;
    let schemas = children.iter().map(|c| &c.schema);
    let n = children.len();
    let list = children.iter().map(|c| {
        let Child { ident, format, .. } = c;
        let read = |v: TokenStream| {
            if c.interior {
                quote!(::dm_core::MoNode::get_node(#v, &[])?)
            } else {
                quote!(::dm_core::NodeData::Leaf(::dm_core::LeafValue::to_value(#v, #format)))
            }
        };
        let r = read(quote!(v));
        let (bind, src) = source(c, &ReadError::Propagate);
        let _ = ident;
        let push = match (c.kind, &c.name) {
            (Kind::Map, _) | (_, None) => quote! {
                for (n, v) in (#src).iter() {
                    children.push((::std::borrow::Cow::Owned(::std::string::String::from(n)), #r));
                }
            },
            (Kind::Optional, Some(name)) => quote! {
                if let ::core::option::Option::Some(v) = #src {
                    children.push((::std::borrow::Cow::Borrowed(#name), #r));
                }
            },
            (Kind::Plain, Some(name)) => quote! {
                let v = #src;
                children.push((::std::borrow::Cow::Borrowed(#name), #r));
            },
        };
        quote!({ #bind #push })
    });
    let read_rest = |c: &Child| {
        let format = &c.format;
        if c.interior {
            quote!(::dm_core::MoNode::get_node(v, rest))
        } else {
            quote!(::dm_core::__private::leaf(v, #format, rest, path))
        }
    };
    let (arms, fallback) = dispatch_on_first_name(
        children,
        &ReadError::Propagate,
        read_rest,
        &quote!(::dm_core::__private::absent(path)),
        &quote!(::core::result::Result::Err(
            ::dm_core::__private::not_found(path)
        )),
    );
    let has_rest = |c: &Child| {
        if c.interior {
            quote!(::dm_core::__private::FastNode::has_node(v, rest))
        } else {
            quote!({
                let _ = v;
                rest.is_empty()
            })
        }
    };
    // A live read that fails cannot be answered here: "there is a node"
    // sends the caller on to `get_node`, which reports the error, rather
    // than a 404 for a node that may well exist.
    let (mut has_arms, has_fallback) = dispatch_on_first_name(
        children,
        &ReadError::Answer(quote!(true)),
        has_rest,
        &quote!(false),
        &quote!(false),
    );
    // A required live leaf exists whatever its value: no read to say so
    // (a read of the device per ClientURI segment would double every GET).
    for (arm, c) in has_arms
        .iter_mut()
        .zip(children.iter().filter(|c| named_arm(c)))
    {
        if let (Some(_), false, Kind::Plain, Some(name)) = (&c.live, c.interior, c.kind, &c.name) {
            *arm = quote!(#name => rest.is_empty(),);
        }
    }
    let live = children.iter().map(|c| match (&c.live, &c.node_type) {
        (Some(_), _) => quote!(true),
        (None, Some(t)) => quote!(<#t as ::dm_core::MoNode>::LIVE),
        (None, None) => quote!(false),
    });
    let writes = write_fns(input, fields);
    let readable_json = readable_json_fn(children);
    quote! {
        impl ::dm_core::MoNode for #ident {
            const CHILDREN: &'static [::dm_core::NodeSchema] = &[#(#schemas),*];

            const LIVE: bool = false #(|| #live)*;

            #writes

            fn get_node(
                &self,
                path: &[&str],
            ) -> ::core::result::Result<::dm_core::NodeData, ::dm_core::MoError> {
                let ::core::option::Option::Some((first, rest)) = path.split_first() else {
                    let mut children = ::std::vec::Vec::with_capacity(#n);
                    #(#list)*
                    return ::core::result::Result::Ok(::dm_core::NodeData::Interior(children));
                };
                #[allow(clippy::match_single_binding)]
                match *first {
                    #(#arms)*
                    #fallback
                }
            }
        }

        // The runtime's fast paths (reached through `ManagementObject::__fast`).
        impl ::dm_core::__private::FastNode for #ident {
            #readable_json

            fn has_node(&self, path: &[&str]) -> bool {
                let ::core::option::Option::Some((first, rest)) = path.split_first() else {
                    return true;
                };
                #[allow(clippy::match_single_binding)]
                match *first {
                    #(#has_arms)*
                    #has_fallback
                }
            }
        }
    }
}

/// `write_readable_json`: the JSON of `get_node(&[])` without the children
/// that lack Get, written from the fields in the order `get_node` lists
/// them (spec 7.2.1.4), so a GET of an instance root builds no tree.
fn readable_json_fn(children: &[Child]) -> TokenStream {
    let p = quote!(::dm_core::__private);
    let members = children.iter().map(|c| {
        let Child {
            ident,
            format,
            access,
            ..
        } = c;
        let value = if c.interior {
            quote!(::dm_core::__private::FastNode::write_readable_json(v, out)?;)
        } else {
            quote!(::dm_core::LeafValue::write_json(v, #format, out);)
        };
        let _ = ident;
        let (bind, src) = source(c, &ReadError::Propagate);
        let member = match (c.kind, &c.name) {
            (Kind::Map, _) | (_, None) => quote! {
                for (n, v) in (#src).iter() {
                    #p::json_member(out, &mut first, n);
                    #value
                }
            },
            (Kind::Optional, Some(name)) => {
                let key = static_key(name);
                quote! {
                    if let ::core::option::Option::Some(v) = #src {
                        #key
                        #value
                    }
                }
            }
            (Kind::Plain, Some(name)) => {
                let key = static_key(name);
                quote! {
                    let v = #src;
                    #key
                    #value
                }
            }
        };
        // Constant per field: the optimizer keeps the member or drops it
        // (and a live child without Get is never read).
        quote! {
            if (#access).contains(::dm_core::AccessType::GET) {
                #bind
                #member
            }
        }
    });
    quote! {
        fn write_readable_json(
            &self,
            out: &mut ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<(), ::dm_core::MoError> {
            out.push(b'{');
            #[allow(unused_mut, unused_variables)]
            let mut first = true;
            #(#members)*
            out.push(b'}');
            ::core::result::Result::Ok(())
        }
    }
}

/// Starts the member of a named child. A name that JSON holds as it is
/// (the usual DDF name) is written as two byte literals made here, with and
/// without the comma; any other goes through the escaping writer.
fn static_key(name: &str) -> TokenStream {
    let plain = name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if !plain {
        return quote!(::dm_core::__private::json_member(out, &mut first, #name););
    }
    let lead = syn::LitByteStr::new(
        format!("\"{name}\":").as_bytes(),
        proc_macro2::Span::call_site(),
    );
    let next = syn::LitByteStr::new(
        format!(",\"{name}\":").as_bytes(),
        proc_macro2::Span::call_site(),
    );
    quote! {
        out.extend_from_slice(if ::core::mem::take(&mut first) { #lead } else { #next });
    }
}

/// The `match *first { .. }` arms of a read that walks `path`: one per
/// named child (with `v` bound to the field and `rest` the remaining path,
/// `on_child` says what to do with them; `absent` for an empty optional),
/// then the fallback: names that match no named child address an instance
/// of the un-named child if there is one, else `no_such`.
/// Whether `dispatch_on_first_name` makes an arm of its own for `c`.
fn named_arm(c: &Child) -> bool {
    c.kind != Kind::Map && c.name.is_some()
}

fn dispatch_on_first_name(
    children: &[Child],
    on_err: &ReadError,
    on_child: impl Fn(&Child) -> TokenStream,
    absent: &TokenStream,
    no_such: &TokenStream,
) -> (Vec<TokenStream>, TokenStream) {
    let arms = children
        .iter()
        .filter(|c| named_arm(c))
        .filter_map(|c| {
            let r = on_child(c);
            let (bind, src) = source(c, on_err);
            match (c.kind, &c.name) {
                (Kind::Map, _) | (_, None) => None,
                (Kind::Optional, Some(name)) => Some(quote! {
                    #name => {
                        #bind
                        match #src {
                            ::core::option::Option::Some(v) => #r,
                            ::core::option::Option::None => #absent,
                        }
                    }
                }),
                (Kind::Plain, Some(name)) => Some(quote! {
                    #name => {
                        #bind
                        let v = #src;
                        #r
                    }
                }),
            }
        })
        .collect();
    let fallback = match children.iter().find(|c| c.kind == Kind::Map) {
        Some(c) => {
            let r = on_child(c);
            let (bind, src) = source(c, on_err);
            quote! {
                _ => {
                    #bind
                    match (#src).get(first) {
                        ::core::option::Option::Some(v) => #r,
                        ::core::option::Option::None => #absent,
                    }
                }
            }
        }
        None => quote!(_ => #no_such,),
    };
    (arms, fallback)
}

/// `put_node`, `delete_node` and `from_node`: each child kind calls one
/// `dm_core::__private` helper, which keeps the generated code small.
fn write_fns(input: &DeriveInput, fields: &NodeFields) -> TokenStream {
    let children = &fields.children[..];
    let p = quote!(::dm_core::__private);
    let map = children.iter().find(|c| c.kind == Kind::Map);
    let named: Vec<&String> = children.iter().filter_map(|c| c.name.as_ref()).collect();

    let put_arms = children.iter().filter_map(|c| {
        let (ident, format, name) = (&c.ident, &c.format, c.name.as_ref()?);
        Some(match (c.kind, c.interior) {
            (Kind::Plain, false) => {
                quote!(#name => #p::put_leaf(&mut self.#ident, #format, rest, data, path),)
            }
            (Kind::Optional, false) => {
                quote!(#name => #p::put_opt_leaf(&mut self.#ident, #format, rest, data, path),)
            }
            (Kind::Plain, true) => {
                quote!(#name => ::dm_core::MoNode::put_node(&mut self.#ident, rest, data),)
            }
            (Kind::Optional, true) => {
                quote!(#name => #p::put_opt_node(&mut self.#ident, rest, data),)
            }
            (Kind::Map, _) => return None,
        })
    });
    let put_fallback = match map {
        Some(c) if c.interior => {
            let ident = &c.ident;
            quote!(_ => #p::put_map_node(&mut self.#ident, first, rest, data, path),)
        }
        Some(c) => {
            let (ident, format) = (&c.ident, &c.format);
            quote!(_ => #p::put_map_leaf(&mut self.#ident, #format, first, rest, data, path),)
        }
        None => quote!(_ => #p::unknown(path),),
    };

    let delete_arms = children.iter().filter_map(|c| {
        let (ident, name) = (&c.ident, c.name.as_ref()?);
        let below = if c.interior {
            match c.kind {
                Kind::Plain => quote!(::dm_core::MoNode::delete_node(&mut self.#ident, rest)),
                _ => quote!(#p::delete_in_opt(&mut self.#ident, rest, path)),
            }
        } else {
            quote!(#p::absent(path))
        };
        let here = match c.kind {
            Kind::Plain => quote!(#p::required(path)),
            _ => quote!(#p::delete_opt(&mut self.#ident, path)),
        };
        Some(quote!(#name => if rest.is_empty() { #here } else { #below },))
    });
    let delete_fallback = match map {
        Some(c) => {
            let ident = &c.ident;
            let below = if c.interior {
                quote!(#p::delete_in_map(&mut self.#ident, first, rest, path))
            } else {
                quote!(#p::absent(path))
            };
            quote!(_ => if rest.is_empty() { #p::delete_map(&mut self.#ident, first, path) } else { #below },)
        }
        None => quote!(_ => #p::absent(path),),
    };

    let has_map = map.is_some();
    let inits = children.iter().map(|c| {
        let (ident, format) = (&c.ident, &c.format);
        let value = match (c.kind, c.interior, &c.name) {
            (Kind::Map, false, _) | (_, false, None) => {
                quote!(#p::map_leaf_from(children, NAMED, #format)?)
            }
            (Kind::Map, true, _) | (_, true, None) => quote!(#p::map_node_from(children, NAMED)?),
            (Kind::Plain, false, Some(n)) => quote!(#p::leaf_from(children, #n, #format)?),
            (Kind::Optional, false, Some(n)) => quote!(#p::opt_leaf_from(children, #n, #format)?),
            (Kind::Plain, true, Some(n)) => quote!(#p::node_from(children, #n)?),
            (Kind::Optional, true, Some(n)) => quote!(#p::opt_node_from(children, #n)?),
        };
        quote!(#ident: #value,)
    });
    // MO code's own state starts afresh: it is no data of the tree.
    let inits = inits.chain(
        fields
            .skipped
            .iter()
            .map(|i| quote!(#i: ::core::default::Default::default(),)),
    );
    let unit = matches!(&input.data, Data::Struct(s) if matches!(s.fields, Fields::Unit));
    let build = if unit {
        quote!(Self)
    } else {
        quote!(Self { #(#inits)* })
    };

    quote! {
        fn put_node(
            &mut self,
            path: &[&str],
            data: &::dm_core::NodeData,
        ) -> ::core::result::Result<(), ::dm_core::MoError> {
            let ::core::option::Option::Some((first, rest)) = path.split_first() else {
                return #p::put_children(self, data, path);
            };
            #[allow(clippy::match_single_binding)]
            match *first {
                #(#put_arms)*
                #put_fallback
            }
        }

        fn delete_node(&mut self, path: &[&str]) -> ::core::result::Result<(), ::dm_core::MoError> {
            let ::core::option::Option::Some((first, rest)) = path.split_first() else {
                return #p::required(path);
            };
            #[allow(clippy::match_single_binding)]
            match *first {
                #(#delete_arms)*
                #delete_fallback
            }
        }

        #[allow(unused_variables)]
        fn from_node(data: &::dm_core::NodeData) -> ::core::result::Result<Self, ::dm_core::MoError> {
            const NAMED: &[&str] = &[#(#named),*];
            let children = #p::children_of(data, NAMED, #has_map)?;
            ::core::result::Result::Ok(#build)
        }
    }
}

pub fn mo_node(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let own = attr::parse(&input.attrs, &mut errors);
    refuse_flags_on_struct(&own, false, &mut errors);
    let children = children(input, &mut errors);
    errors.finish()?;
    Ok(mo_node_impl(input, &children))
}

pub fn management_object(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let root = attr::parse(&input.attrs, &mut errors);
    refuse_flags_on_struct(&root, true, &mut errors);
    let children = children(input, &mut errors);
    if root.moid.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "missing #[dm(moid = \"...\")] on the MO root struct",
        ));
    }
    if let Some((f, span)) = &root.format {
        if f != "node" {
            errors.push(syn::Error::new(
                *span,
                "an MO instance root is an interior node: format must be \"node\"",
            ));
        }
    }
    errors.finish()?;
    let ident = &input.ident;
    let moid = root.moid.unwrap_or_default();
    let ddf_url = match root.ddf_url {
        Some(url) => quote!(::core::option::Option::Some(#url)),
        None => quote!(::core::option::Option::None),
    };
    let access = root.access;
    let scope = root.scope;
    let occurrence = root.occurrence.tokens;
    let node_impl = mo_node_impl(input, &children);
    Ok(quote! {
        #node_impl

        impl #ident {
            /// The MO definition, from the DDF.
            pub const SCHEMA: ::dm_core::MoSchema = ::dm_core::MoSchema {
                moid: #moid,
                ddf_url: #ddf_url,
                root: ::dm_core::NodeSchema {
                    name: ::core::option::Option::None,
                    format: ::dm_core::Format::Node,
                    access: #access,
                    occurrence: #occurrence,
                    scope: #scope,
                    children: <#ident as ::dm_core::MoNode>::CHILDREN,
                },
            };
        }

        impl ::dm_core::ManagementObject for #ident {
            fn schema(&self) -> &'static ::dm_core::MoSchema {
                static SCHEMA: ::dm_core::MoSchema = #ident::SCHEMA;
                &SCHEMA
            }

            fn get(
                &self,
                path: &[&str],
            ) -> ::core::result::Result<::dm_core::NodeData, ::dm_core::MoError> {
                ::dm_core::MoNode::get_node(self, path)
            }

            fn apply(
                &mut self,
                changes: &[::dm_core::Change],
            ) -> ::core::result::Result<(), ::dm_core::MoError> {
                ::dm_core::__private::apply(self, changes)
            }

            fn exec(
                &mut self,
                path: &[&str],
                request: &::dm_core::ExecRequest,
            ) -> ::core::result::Result<::dm_core::ExecOutcome, ::dm_core::MoError> {
                <Self as ::dm_core::MoHooks>::exec(self, path, request)
            }

            fn commit(&mut self) -> ::core::result::Result<(), ::dm_core::MoError> {
                <Self as ::dm_core::MoHooks>::commit(self)
            }

            fn resume_exec(&mut self, path: &[&str], completion: ::dm_core::Completion) {
                <Self as ::dm_core::MoHooks>::resume_exec(self, path, completion)
            }

            fn attach(&mut self, reporter: ::dm_core::ChangeReporter) {
                <Self as ::dm_core::MoHooks>::attach(self, reporter)
            }

            fn owns_data(&self) -> bool {
                <Self as ::dm_core::MoNode>::LIVE
            }

            fn __fast(
                &self,
            ) -> ::core::option::Option<&dyn ::dm_core::__private::FastAccess> {
                ::core::option::Option::Some(self)
            }
        }
    })
}
