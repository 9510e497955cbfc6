//! Data the MO owns (issue 18 item 1): the nodes chosen live
//! ([`EmitOptions::live`]) get `#[dm(live)]`, and each struct holding one a
//! `<Type>Live` trait with a typed `read_<field>` per live child, which the
//! derive calls at every read; and the fields MO code adds to a struct
//! ([`EmitOptions::fields`]), which are no node (`#[dm(skip)]`).
//!
//! Paths are DDF node names from the root, `/`-separated, the root named
//! as [`EmitOptions::moids`] names it (NodeName, or DFTitle when
//! un-named); an un-named node is named by its display name (`<Cell>`) or
//! its DFTitle (`Cell`). A path whose root is not in this DDF belongs to
//! another DDF of the build and is ignored here (the [`crate::Builder`]
//! checks that every path found its DDF).

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use dm_core::AccessType;

use super::*;

/// The live nodes and extra fields of one DDF, resolved.
#[derive(Default)]
pub(super) struct Owned {
    /// By node index: the node's field is `#[dm(live)]`.
    pub live: Vec<bool>,
    /// By interior node: its `<Type>Live` trait, when a child is live.
    pub traits: HashMap<NodeId, syn::Ident>,
    /// By interior node: the `#[dm(skip)]` fields MO code adds.
    pub fields: HashMap<NodeId, Vec<(syn::Ident, syn::Type)>>,
}

/// The root of `ddf` called `name`: its NodeName, or its DFTitle when it
/// has none (the key of [`EmitOptions::moids`]).
pub(crate) fn root_named(ddf: &Ddf, name: &str) -> Option<NodeId> {
    ddf.roots().iter().copied().find(|r| {
        let def = ddf.node(*r);
        def.name.as_deref().or(def.title.as_deref()) == Some(name)
    })
}

/// The node at `path`; `Ok(None)` when its root is not in this DDF,
/// `Err(reason)` when a segment names no node.
fn resolve(ddf: &Ddf, path: &str) -> Result<Option<NodeId>, String> {
    let mut segments = path.trim_matches('/').split('/');
    let Some(mut at) = segments.next().and_then(|root| root_named(ddf, root)) else {
        return Ok(None);
    };
    for seg in segments {
        let found = ddf.node(at).children.iter().copied().find(|c| {
            let def = ddf.node(*c);
            match &def.name {
                Some(n) => n == seg,
                None => def.display_name() == seg || def.title.as_deref() == Some(seg),
            }
        });
        at = found.ok_or_else(|| {
            let children: Vec<String> = ddf
                .node(at)
                .children
                .iter()
                .map(|c| ddf.node(*c).display_name())
                .collect();
            format!(
                "`{}` has no child `{seg}` (its children: {})",
                ddf.display_path(at),
                if children.is_empty() {
                    "none".to_owned()
                } else {
                    children.join(", ")
                }
            )
        })?;
    }
    Ok(Some(at))
}

/// `name: Type` of [`EmitOptions::fields`].
fn parse_field(spec: &str) -> Result<(syn::Ident, syn::Type), String> {
    let (name, ty) = spec
        .split_once(':')
        .filter(|(_, t)| !t.starts_with(':'))
        .ok_or("expected `name: Type`")?;
    let name: syn::Ident = syn::parse_str(name.trim())
        .map_err(|_| format!("`{}` is not a field name", name.trim()))?;
    let ty: syn::Type =
        syn::parse_str(ty.trim()).map_err(|_| format!("`{}` is not a type", ty.trim()))?;
    Ok((name, ty))
}

impl Owned {
    pub(super) fn resolve(ddf: &Ddf, opts: &EmitOptions) -> Result<Owned, EmitError> {
        let source_name = || opts.source_name.clone();
        let bad_path = |option: &'static str, path: &str, reason: String| EmitError::BadPath {
            source_name: source_name(),
            option,
            path: path.to_owned(),
            reason,
        };
        let mut owned = Owned {
            live: vec![false; ddf.len()],
            ..Owned::default()
        };
        for path in &opts.live {
            let Some(id) = resolve(ddf, path).map_err(|r| bad_path("live", path, r))? else {
                continue;
            };
            let def = ddf.node(id);
            if def.parent.is_none() {
                // The whole MO: every child it reads. A child without Get
                // (an Exec node) has nothing to read.
                for &c in &def.children {
                    owned.live[c.index()] = ddf.node(c).access.contains(AccessType::GET);
                }
            } else if def.access.contains(AccessType::GET) {
                owned.live[id.index()] = true;
            } else {
                return Err(EmitError::LiveWithoutGet {
                    source_name: source_name(),
                    path: ddf.display_path(id),
                });
            }
        }
        for (path, spec) in &opts.fields {
            let Some(id) = resolve(ddf, path).map_err(|r| bad_path("field", path, r))? else {
                continue;
            };
            let bad_field = |reason: String| EmitError::BadField {
                source_name: source_name(),
                path: ddf.display_path(id),
                spec: spec.clone(),
                reason,
            };
            let def = ddf.node(id);
            if !def.is_interior() {
                return Err(bad_field("a leaf has no struct to hold a field".into()));
            }
            let (name, ty) = parse_field(spec).map_err(bad_field)?;
            let taken = def
                .children
                .iter()
                .any(|c| name == ddf.node(*c).rust.field_name);
            let list = owned.fields.entry(id).or_default();
            if taken || list.iter().any(|(n, _)| *n == name) {
                return Err(bad_field(format!(
                    "the struct already has a field `{name}`"
                )));
            }
            list.push((name, ty));
        }
        owned.name_traits(ddf, opts)?;
        Ok(owned)
    }

    /// `<Type>Live` for each struct with a live child (numbered on a clash
    /// with a type of the file), and a check that no `read_<field>` is
    /// shadowed by an inherent method of that struct.
    fn name_traits(&mut self, ddf: &Ddf, opts: &EmitOptions) -> Result<(), EmitError> {
        let mut parents: Vec<NodeId> = ddf
            .nodes()
            .filter(|(id, def)| self.live[id.index()] && def.parent.is_some())
            .filter_map(|(_, def)| def.parent)
            .collect();
        parents.sort_by_key(|p| p.index());
        parents.dedup();
        if parents.is_empty() {
            return Ok(());
        }
        let mut types: HashSet<String> = ddf
            .nodes()
            .filter(|(_, d)| d.is_interior())
            .map(|(_, d)| d.rust.type_name.clone())
            .collect();
        types.extend(
            ddf.roots()
                .iter()
                .map(|r| behaviour_trait_name(&ddf.node(*r).rust.type_name)),
        );
        for p in parents {
            let base = format!("{}Live", ddf.node(p).rust.type_name);
            let name = (1..)
                .map(|n| match n {
                    1 => base.clone(),
                    n => format!("{base}{n}"),
                })
                .find(|n| !types.contains(n))
                .unwrap_or(base);
            types.insert(name.clone());
            self.traits.insert(p, format_ident!("{name}"));
            let children = &ddf.node(p).children;
            let members: HashSet<String> = children
                .iter()
                .flat_map(|c| ddf.node(*c).rust.members())
                .chain(["with_required".to_owned(), "new".to_owned()])
                .collect();
            for &c in children.iter().filter(|c| self.live[c.index()]) {
                let method = read_method(ddf.node(c));
                if members.contains(&method) {
                    return Err(EmitError::LiveNameClash {
                        source_name: opts.source_name.clone(),
                        path: ddf.display_path(c),
                        method,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The derive's read method of a live child: `read_<field>`.
fn read_method(def: &NodeDef) -> String {
    format!("read_{}", def.rust.field_name)
}

impl Emitter<'_> {
    pub(super) fn is_live(&self, id: NodeId) -> bool {
        self.owned.live[id.index()]
    }

    /// The `#[dm(skip)]` fields of struct `id` and their initializers.
    pub(super) fn extra_fields(&self, id: NodeId) -> (Vec<TokenStream>, Vec<TokenStream>) {
        let Some(fields) = self.owned.fields.get(&id) else {
            return (Vec::new(), Vec::new());
        };
        fields
            .iter()
            .map(|(name, ty)| {
                let doc = self.doc_line(
                    " MO code's own state, no node of the tree (added at generation).".into(),
                );
                (
                    quote! {
                        #doc
                        #[dm(skip)]
                        pub(crate) #name: #ty,
                    },
                    quote!(#name: ::core::default::Default::default()),
                )
            })
            .unzip()
    }

    /// The `<Type>Live` trait of struct `id`, if it has live children.
    pub(super) fn live_trait(&self, id: NodeId) -> Option<TokenStream> {
        let trait_ident = self.owned.traits.get(&id)?;
        let ident = self.type_ident(id);
        let doc = self.doc_lines(vec![
            format!(
                " Reads of the nodes of {} whose data the MO owns (chosen live at generation), implemented by the MO author.",
                code(&self.ddf.display_path(id))
            ),
            String::new(),
            format!(
                " Every read of such a node or below (GET, ClientURI resolution, the JSON of the instance) calls its method at read time instead of reading the field of `{ident}`; an error answers the read with its status (`MoError::Failed`: 500, spec Appendix C). Writes still go to the fields: `MoHooks::commit` carries them to the device."
            ),
        ]);
        let methods = self
            .node(id)
            .children
            .iter()
            .filter(|c| self.is_live(**c))
            .map(|&c| {
                let def = self.node(c);
                let method = format_ident!("{}", read_method(def));
                let ty = self.field_type(c);
                let mut lines = vec![format!(
                    " Reads {} ({}) from the device, now.",
                    code(&self.ddf.display_path(c)),
                    def.format
                )];
                if let Some(d) = &def.description {
                    lines.push(String::new());
                    lines.extend(doc_text(d));
                }
                let doc = self.doc_lines(lines);
                quote! {
                    #doc
                    fn #method(&self) -> ::core::result::Result<#ty, ::dm_core::MoError>;
                }
            });
        Some(quote! {
            #doc
            pub trait #trait_ident {
                #(#methods)*
            }
        })
    }
}
