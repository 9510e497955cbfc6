//! The accessor methods of each child, following its access types (the
//! table of the module docs of `emit`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::*;

impl Emitter<'_> {
    /// The accessor methods of child `c` (see the module docs).
    pub(super) fn accessors(&self, c: NodeId) -> TokenStream {
        let def = self.node(c);
        let names = &def.rust;
        let field = format_ident!("{}", names.field_name);
        let path = code(&self.ddf.display_path(c));
        let value_ty = self.value_type(c);
        let kind = if def.is_interior() {
            None
        } else {
            Some(leaf_kind(def.format))
        };
        let holder = def.holder();
        let mut out = TokenStream::new();

        if let Some(getter) = names.getter() {
            let getter = format_ident!("{getter}");
            let doc = if self.is_live(c) {
                // A GET asks the MO (`read_<field>`); the field is what a
                // write left for `commit`.
                self.doc_line(format!(
                    " The value of {path} held in the struct (as this crate or a Replace set it); a GET reads the device instead, through `read_{}`.",
                    names.field_name
                ))
            } else {
                self.doc_line(format!(" Reads {path} (Get)."))
            };
            let (ret, body) = match (holder, kind) {
                (Holder::Plain, Some(LeafKind::Text)) => (quote!(&str), quote!(&self.#field)),
                (Holder::Plain, Some(LeafKind::Bytes)) => (quote!(&[u8]), quote!(&self.#field)),
                (Holder::Plain, Some(_)) => (value_ty.clone(), quote!(self.#field)),
                (Holder::Plain, None) => (quote!(&#value_ty), quote!(&self.#field)),
                (Holder::Optional, Some(LeafKind::Text)) => (
                    quote!(::core::option::Option<&str>),
                    quote!(self.#field.as_deref()),
                ),
                (Holder::Optional, Some(LeafKind::Bytes)) => (
                    quote!(::core::option::Option<&[u8]>),
                    quote!(self.#field.as_deref()),
                ),
                (Holder::Optional, Some(_)) => (
                    quote!(::core::option::Option<#value_ty>),
                    quote!(self.#field),
                ),
                (Holder::Optional, None) => (
                    quote!(::core::option::Option<&#value_ty>),
                    quote!(self.#field.as_ref()),
                ),
                (Holder::Map { .. }, _) => {
                    let t = self.field_type(c);
                    (quote!(&#t), quote!(&self.#field))
                }
            };
            out.extend(quote! {
                #doc
                pub fn #getter(&self) -> #ret {
                    #body
                }
            });
        }

        if let (Some(setter), Some(kind)) = (names.setter(), kind) {
            let setter = format_ident!("{setter}");
            let (pty, conv) = param(def.format);
            match holder {
                Holder::Plain => {
                    let doc = self.doc_line(format!(" Writes {path} (Replace)."));
                    out.extend(quote! {
                        #doc
                        pub fn #setter(&mut self, value: #pty) {
                            self.#field = #conv;
                        }
                    });
                }
                Holder::Optional if kind == LeafKind::Null => {
                    let doc = self.doc_line(format!(" Creates {path} (Replace); it has no value."));
                    out.extend(quote! {
                        #doc
                        pub fn #setter(&mut self) {
                            self.#field = ::core::option::Option::Some(());
                        }
                    });
                }
                Holder::Optional => {
                    let doc = self.doc_line(format!(
                        " Writes {path} (Replace), creating it when absent."
                    ));
                    out.extend(quote! {
                        #doc
                        pub fn #setter(&mut self, value: #pty) {
                            self.#field = ::core::option::Option::Some(#conv);
                        }
                    });
                }
                Holder::Map { .. } => {
                    let doc = self.doc_line(format!(
                        " Writes the instance `name` of {path} (Replace); `MoError::NotFound` when there is none."
                    ));
                    out.extend(quote! {
                        #doc
                        pub fn #setter(
                            &mut self,
                            name: &str,
                            value: #pty,
                        ) -> ::core::result::Result<(), ::dm_core::MoError> {
                            match self.#field.get_mut(name) {
                                ::core::option::Option::Some(slot) => {
                                    *slot = #conv;
                                    ::core::result::Result::Ok(())
                                }
                                ::core::option::Option::None => ::core::result::Result::Err(
                                    ::dm_core::MoError::NotFound(::std::string::String::from(name)),
                                ),
                            }
                        }
                    });
                }
            }
        }

        if let Some(inserter) = names.inserter() {
            let inserter = format_ident!("{inserter}");
            let (pty, conv) = match kind {
                Some(_) => param(def.format),
                None => (value_ty.clone(), quote!(value)),
            };
            match holder {
                Holder::Map { .. } => {
                    let doc = self.doc_line(format!(
                        " Adds (or replaces) the instance `name` of {path} (Add). Fails on a name that is not `1*unreserved` and past the occurrence maximum."
                    ));
                    out.extend(quote! {
                        #doc
                        pub fn #inserter(
                            &mut self,
                            name: impl ::core::convert::Into<::std::string::String>,
                            value: #pty,
                        ) -> ::core::result::Result<
                            ::core::option::Option<#value_ty>,
                            ::dm_core::NodeMapError,
                        > {
                            self.#field.insert(name, #conv)
                        }
                    });
                }
                _ if kind == Some(LeafKind::Null) => {
                    let doc = self.doc_line(format!(" Creates {path} (Add); it has no value."));
                    out.extend(quote! {
                        #doc
                        pub fn #inserter(&mut self) -> ::core::option::Option<()> {
                            self.#field.replace(())
                        }
                    });
                }
                _ => {
                    let doc = self.doc_line(format!(" Adds {path} (Add); returns what was there."));
                    out.extend(quote! {
                        #doc
                        pub fn #inserter(
                            &mut self,
                            value: #pty,
                        ) -> ::core::option::Option<#value_ty> {
                            self.#field.replace(#conv)
                        }
                    });
                }
            }
        }

        if let Some(remover) = names.remover() {
            let remover = format_ident!("{remover}");
            match holder {
                Holder::Map { .. } => {
                    let doc = self.doc_line(format!(
                        " Deletes the instance `name` of {path} (Delete); refuses to go below the occurrence minimum."
                    ));
                    out.extend(quote! {
                        #doc
                        pub fn #remover(
                            &mut self,
                            name: &str,
                        ) -> ::core::result::Result<
                            ::core::option::Option<#value_ty>,
                            ::dm_core::NodeMapError,
                        > {
                            self.#field.remove(name)
                        }
                    });
                }
                _ => {
                    let doc =
                        self.doc_line(format!(" Deletes {path} (Delete); returns what was there."));
                    out.extend(quote! {
                        #doc
                        pub fn #remover(&mut self) -> ::core::option::Option<#value_ty> {
                            self.#field.take()
                        }
                    });
                }
            }
        }

        if let Some(get_mut) = names.get_mut() {
            let get_mut = format_ident!("{get_mut}");
            let doc = self.doc_line(format!(
                " The children of {path}, to use their own accessors (which follow their access types)."
            ));
            let m = match holder {
                Holder::Plain => quote! {
                    pub fn #get_mut(&mut self) -> &mut #value_ty {
                        &mut self.#field
                    }
                },
                Holder::Optional => quote! {
                    pub fn #get_mut(&mut self) -> ::core::option::Option<&mut #value_ty> {
                        self.#field.as_mut()
                    }
                },
                Holder::Map { .. } => quote! {
                    pub fn #get_mut(
                        &mut self,
                        name: &str,
                    ) -> ::core::option::Option<&mut #value_ty> {
                        self.#field.get_mut(name)
                    }
                },
            };
            out.extend(quote! {
                #doc
                #m
            });
        }
        out
    }
}
