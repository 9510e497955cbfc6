//! Parsing and validating `#[dm(...)]` attributes.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr};

/// Collects errors so that the user sees all of them at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Node properties given in a `#[dm(...)]` attribute, validated. A key
/// left out takes what the DDF means when its element is left out
/// (dm_ddf-v1_2.dtd, DM 1.2 TND): no `access` is an empty `<AccessType/>`,
/// no `occurrence` is `One`, no `scope` is `Dynamic`. `format` has no
/// default (`<DFFormat>` is mandatory), except on the MO root, which is
/// always `node`.
pub struct NodeAttrs {
    pub name: Option<String>,
    pub format: Option<(String, Span)>,
    pub access: TokenStream,
    pub occurrence: Occurrence,
    pub scope: TokenStream,
    pub moid: Option<String>,
    pub ddf_url: Option<String>,
    /// `live`: every read of the node asks MO code (`self.read_<field>()`).
    pub live: Option<Span>,
    /// `skip`: the field is no node (MO code's own state).
    pub skip: Option<Span>,
    /// The span of the first key other than `live` and `skip`, which
    /// `skip` cannot go with.
    pub node_key: Option<Span>,
    /// Some key or value was rejected (and reported): skip further checks
    /// on this node so that one mistake gives one error.
    pub invalid: bool,
}

/// An occurrence, reduced to what code generation needs: may the node be
/// absent?
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Occ {
    /// One, OneOrMore, OneOrN.
    AtLeastOne,
    /// ZeroOrOne, ZeroOrMore, ZeroOrN.
    MaybeNone,
}

pub struct Occurrence {
    pub tokens: TokenStream,
    pub kind: Occ,
    /// The bounds a `NodeMap` of this occurrence has: (MIN, MAX), `None`
    /// for no upper bound.
    pub bounds: (u32, Option<u32>),
    /// The text as written, for messages.
    pub text: String,
}

impl Occurrence {
    /// `One`, what a node without `<Occurrence>` has.
    fn one() -> Occurrence {
        Occurrence {
            tokens: quote!(::dm_core::Occurrence::One),
            kind: Occ::AtLeastOne,
            bounds: (1, Some(1)),
            text: "One".to_owned(),
        }
    }
}

const FORMATS: [&str; 11] = [
    "node", "null", "b64", "bin", "bool", "chr", "int", "xml", "date", "time", "float",
];

pub fn format_tokens(name: &str) -> TokenStream {
    let variant = match name {
        "node" => quote!(Node),
        "null" => quote!(Null),
        "b64" => quote!(B64),
        "bin" => quote!(Bin),
        "bool" => quote!(Bool),
        "chr" => quote!(Chr),
        "int" => quote!(Int),
        "xml" => quote!(Xml),
        "date" => quote!(Date),
        "time" => quote!(Time),
        _ => quote!(Float),
    };
    quote!(::dm_core::Format::#variant)
}

fn access_tokens(lit: &LitStr) -> syn::Result<TokenStream> {
    let mut bits = 0u8;
    for part in lit.value().split([',', ' ']).filter(|p| !p.is_empty()) {
        bits |= match part {
            "Add" => 1,
            "Delete" => 2,
            "Exec" => 4,
            "Get" => 8,
            "Replace" => 16,
            "Copy" => 0,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown access type `{other}`; expected Add, Delete, Exec, Get or Replace"
                    ),
                ))
            }
        };
    }
    Ok(quote!(::dm_core::AccessType::from_bits(#bits)))
}

fn occurrence_tokens(lit: &LitStr) -> syn::Result<Occurrence> {
    let text = lit.value();
    let bad = || {
        syn::Error::new(
            lit.span(),
            format!("unknown occurrence `{text}`; expected One, ZeroOrOne, ZeroOrMore, OneOrMore, ZeroOrN(n) or OneOrN(n)"),
        )
    };
    let (name, count) = match text.split_once('(') {
        Some((n, rest)) => {
            let c = rest
                .strip_suffix(')')
                .and_then(|c| c.trim().parse::<u32>().ok())
                .ok_or_else(bad)?;
            (n, Some(c))
        }
        None => (text.as_str(), None),
    };
    if count == Some(0) {
        // The DTD: "N > 1"; the code generator refuses 0 as well.
        return Err(syn::Error::new(
            lit.span(),
            format!("occurrence `{text}` allows no node; N must be at least 1"),
        ));
    }
    let count_tokens = match count {
        Some(c) => quote!(::core::option::Option::Some(#c)),
        None => quote!(::core::option::Option::None),
    };
    let (tokens, kind, bounds) = match (name, count) {
        ("One", None) => (
            quote!(::dm_core::Occurrence::One),
            Occ::AtLeastOne,
            (1, Some(1)),
        ),
        ("ZeroOrOne", None) => (
            quote!(::dm_core::Occurrence::ZeroOrOne),
            Occ::MaybeNone,
            (0, Some(1)),
        ),
        ("ZeroOrMore", None) => (
            quote!(::dm_core::Occurrence::ZeroOrMore),
            Occ::MaybeNone,
            (0, None),
        ),
        ("OneOrMore", None) => (
            quote!(::dm_core::Occurrence::OneOrMore),
            Occ::AtLeastOne,
            (1, None),
        ),
        ("ZeroOrN", _) => (
            quote!(::dm_core::Occurrence::ZeroOrN(#count_tokens)),
            Occ::MaybeNone,
            (0, count),
        ),
        ("OneOrN", _) => (
            quote!(::dm_core::Occurrence::OneOrN(#count_tokens)),
            Occ::AtLeastOne,
            (1, count),
        ),
        _ => return Err(bad()),
    };
    Ok(Occurrence {
        tokens,
        kind,
        bounds,
        text,
    })
}

fn scope_tokens(lit: &LitStr) -> syn::Result<TokenStream> {
    match lit.value().as_str() {
        "Permanent" => Ok(quote!(::dm_core::Scope::Permanent)),
        "Dynamic" => Ok(quote!(::dm_core::Scope::Dynamic)),
        other => Err(syn::Error::new(
            lit.span(),
            format!("unknown scope `{other}`; expected Permanent or Dynamic"),
        )),
    }
}

/// Reads every `#[dm(...)]` attribute in `attrs`, reporting each bad key or
/// value into `errors` and going on, so all mistakes surface together.
pub fn parse(attrs: &[Attribute], errors: &mut Errors) -> NodeAttrs {
    let mut out = NodeAttrs {
        name: None,
        format: None,
        access: quote!(::dm_core::AccessType::NONE),
        occurrence: Occurrence::one(),
        scope: quote!(::dm_core::Scope::Dynamic),
        moid: None,
        ddf_url: None,
        live: None,
        skip: None,
        node_key: None,
        invalid: false,
    };
    let mut failed = false;
    let mut fail = |errors: &mut Errors, e: syn::Error| {
        failed = true;
        errors.push(e);
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("dm")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            // The two flags: a bare key, no value.
            if key == "live" || key == "skip" {
                if meta.input.peek(syn::Token![=]) {
                    return Err(meta.error(format!(
                        "`{key}` takes no value: write #[dm({key})]"
                    )));
                }
                let span = meta.path.span();
                if key == "live" {
                    out.live = Some(span);
                } else {
                    out.skip = Some(span);
                }
                return Ok(());
            }
            out.node_key.get_or_insert(meta.path.span());
            let lit: LitStr = meta.value()?.parse()?;
            match key.as_str() {
                "name" => out.name = Some(lit.value()),
                "format" => {
                    let v = lit.value();
                    if !FORMATS.contains(&v.as_str()) {
                        fail(errors, syn::Error::new(
                            lit.span(),
                            format!("unknown format `{v}`; expected one of {}", FORMATS.join(", ")),
                        ));
                    }
                    out.format = Some((v, lit.span()));
                }
                "access" => match access_tokens(&lit) {
                    Ok(t) => out.access = t,
                    Err(e) => fail(errors, e),
                },
                "occurrence" => match occurrence_tokens(&lit) {
                    Ok(o) => out.occurrence = o,
                    Err(e) => fail(errors, e),
                },
                "scope" => match scope_tokens(&lit) {
                    Ok(t) => out.scope = t,
                    Err(e) => fail(errors, e),
                },
                "moid" => out.moid = Some(lit.value()),
                "ddf_url" if lit.value().is_empty() => fail(
                    errors,
                    syn::Error::new(
                        lit.span(),
                        "empty ddf_url: leave the key out when the MO publishes no DDF",
                    ),
                ),
                "ddf_url" => out.ddf_url = Some(lit.value()),
                _ => {
                    return Err(meta.error(format!(
                        "unknown dm attribute `{key}`; expected name, format, access, occurrence, scope, moid, ddf_url, live or skip"
                    )))
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            fail(errors, e);
        }
    }
    out.invalid = failed;
    out
}
