//! The behaviour trait of an MO root: one method per Exec node (spec
//! 5.3.5) and the validate hook, and the `MoHooks` implementation that
//! forwards to it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::*;

impl Emitter<'_> {
    /// The behaviour trait of the MO rooted at `root` and its `MoHooks`
    /// implementation.
    pub(super) fn behaviour(&self, root: NodeId, moid: &str) -> TokenStream {
        let ident = self.type_ident(root);
        let trait_ident = format_ident!("{}", behaviour_trait_name(&ident.to_string()));
        let trait_doc = [
            format!(" What the author of the MO {} (`{moid}`) implements: one method per Exec node (spec 5.3.5) and the hooks (validate, commit, resume_exec, attach).", code(&self.ddf.display_path(root))),
            String::new(),
            format!(" `dm_core::MoHooks` is implemented for {ident} through this trait."),
        ];
        let trait_doc = self.doc_lines(trait_doc.to_vec());
        let mut methods = Vec::new();
        let mut arms: Vec<(Vec<bool>, TokenStream)> = Vec::new();
        for id in self.ddf.exec_nodes(root) {
            let def = self.node(id);
            let Some(name) = &def.rust.exec_method else {
                continue;
            };
            let method = format_ident!("{name}");
            let path = self.ddf.display_path(id);
            let mut doc = vec![format!(" EXEC on {} (spec 5.3.5).", code(&path))];
            if let Some(d) = &def.description {
                doc.push(String::new());
                doc.extend(doc_text(d));
            }
            let lineage = self.ddf.lineage(id);
            let unnamed = lineage[1..]
                .iter()
                .filter(|n| self.node(**n).name.is_none())
                .count();
            if unnamed > 0 {
                doc.push(String::new());
                doc.push(format!(
                    " `instance_names` holds the run-time names of the {unnamed} un-named node(s) on the path, from the root down."
                ));
            }
            let doc = self.doc_lines(doc);
            methods.push(quote! {
                #doc
                fn #method(
                    &mut self,
                    instance_names: &[&str],
                    request: &::dm_core::ExecRequest,
                ) -> ::core::result::Result<::dm_core::ExecOutcome, ::dm_core::MoError>;
            });
            let mut pattern = Vec::new();
            let mut bindings = Vec::new();
            let mut key = Vec::new();
            for n in &lineage[1..] {
                match &self.node(*n).name {
                    Some(name) => {
                        pattern.push(quote!(#name));
                        key.push(false);
                    }
                    None => {
                        let b = format_ident!("name{}", bindings.len());
                        pattern.push(quote!(#b));
                        bindings.push(quote!(*#b));
                        key.push(true);
                    }
                }
            }
            arms.push((
                key,
                quote! {
                    [#(#pattern),*] => #trait_ident::#method(self, &[#(#bindings),*], request),
                },
            ));
        }
        // Named segments before un-named ones at the same place, as the
        // runtime resolves names (a named child wins, 6.3.1.3).
        arms.sort_by(|a, b| a.0.cmp(&b.0));
        let arms = arms.into_iter().map(|(_, a)| a);
        let exec = (!methods.is_empty()).then(|| {
            quote! {
                fn exec(
                    &mut self,
                    path: &[&str],
                    request: &::dm_core::ExecRequest,
                ) -> ::core::result::Result<::dm_core::ExecOutcome, ::dm_core::MoError> {
                    match path {
                        #(#arms)*
                        _ => ::core::result::Result::Err(
                            ::dm_core::MoError::NotExecutable(path.join("/")),
                        ),
                    }
                }
            }
        });
        quote! {
            #trait_doc
            pub trait #trait_ident {
                #(#methods)*

                /// Checks the whole instance after every write (HGET, spec
                /// 5.3.1) and before it is committed; an error rolls the
                /// write back.
                fn validate(&self) -> ::core::result::Result<(), ::dm_core::MoError> {
                    ::core::result::Result::Ok(())
                }

                /// Carries the validated state to the device, once per
                /// write command (see `dm_core::MoHooks::commit`); an error
                /// fails the command and the previous state is committed
                /// again.
                fn commit(&mut self) -> ::core::result::Result<(), ::dm_core::MoError> {
                    ::core::result::Result::Ok(())
                }

                /// Takes back an EXEC answered `Started` before the agent
                /// stopped (see `dm_core::MoHooks::resume_exec`).
                fn resume_exec(&mut self, path: &[&str], completion: ::dm_core::Completion) {
                    let _ = (path, completion);
                }

                /// Takes the handle that reports changes made on the device
                /// (see `dm_core::MoHooks::attach`).
                fn attach(&mut self, reporter: ::dm_core::ChangeReporter) {
                    let _ = reporter;
                }
            }

            impl ::dm_core::MoHooks for #ident
            where
                #ident: #trait_ident,
            {
                #exec

                fn validate(&self) -> ::core::result::Result<(), ::dm_core::MoError> {
                    #trait_ident::validate(self)
                }

                fn commit(&mut self) -> ::core::result::Result<(), ::dm_core::MoError> {
                    #trait_ident::commit(self)
                }

                fn resume_exec(&mut self, path: &[&str], completion: ::dm_core::Completion) {
                    #trait_ident::resume_exec(self, path, completion)
                }

                fn attach(&mut self, reporter: ::dm_core::ChangeReporter) {
                    #trait_ident::attach(self, reporter)
                }
            }
        }
    }
}
