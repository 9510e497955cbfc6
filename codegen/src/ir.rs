//! Stage 2: element tree -> validated IR.
//!
//! Strict where meaning would be lost (a missing DFFormat or AccessType, an
//! unknown format, a leaf with children, duplicate sibling names); lenient
//! about the rest (DFProperties children in any order, empty DDFName/MIME,
//! space-padded names, `ZeroOrN` without a count). Rust names are resolved
//! here, before anything is emitted.

use std::collections::HashSet;

use dm_core::{AccessType, Format, Occurrence, Scope};

use crate::error::DdfErrorKind;
use crate::parse::Element;

/// A validated DDF: one or more root node definitions.
#[derive(Debug, Clone)]
pub struct Ddf {
    pub man: Option<String>,
    pub model: Option<String>,
    pub roots: Vec<NodeDef>,
}

/// One node definition, valid by construction.
#[derive(Debug, Clone)]
pub struct NodeDef {
    /// `None` for an un-named node (empty `NodeName`).
    pub name: Option<String>,
    /// `Path` of a root node, as written.
    pub path: Option<String>,
    pub format: Format,
    pub access: AccessType,
    pub occurrence: Occurrence,
    pub scope: Scope,
    pub title: Option<String>,
    pub description: Option<String>,
    pub default_value: Option<String>,
    /// The MOID of the MO rooted here (`DFType/DDFName`), when not empty.
    pub moid: Option<String>,
    pub mime: Vec<String>,
    pub case_sensitive: Option<bool>,
    pub children: Vec<NodeDef>,
    /// Rust names chosen for this node.
    pub rust: RustNames,
    /// Byte offset of the `<Node>` start tag.
    pub offset: usize,
}

impl NodeDef {
    /// The name as shown to people: `<Title>` or `<x>` for un-named nodes.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("<{}>", self.title.as_deref().unwrap_or("x")),
        }
    }
}

/// The Rust identifiers for a node.
#[derive(Debug, Clone, Default)]
pub struct RustNames {
    /// Struct name (interior nodes only).
    pub type_name: String,
    /// Field name in the parent's struct.
    pub field_name: String,
}

type Fault = (usize, DdfErrorKind);

/// Builds the IR from the parsed element tree.
pub fn build(root: &Element) -> Result<Ddf, Fault> {
    if root.name != "MgmtTree" {
        return Err((root.offset, DdfErrorKind::NotMgmtTree(root.name.clone())));
    }
    let text_of = |name: &str| {
        root.child(name)
            .map(|e| e.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let mut roots = root
        .children_named("Node")
        .map(node)
        .collect::<Result<Vec<_>, _>>()?;
    if roots.is_empty() {
        return Err((root.offset, DdfErrorKind::NoNode));
    }
    let mut used = HashSet::new();
    for r in &mut roots {
        let base = root_type_name(r);
        name_types(r, base, &mut used);
    }
    Ok(Ddf {
        man: text_of("Man"),
        model: text_of("Mod"),
        roots,
    })
}

fn node(el: &Element) -> Result<NodeDef, Fault> {
    let name_el = el
        .child("NodeName")
        .ok_or((el.offset, DdfErrorKind::MissingNodeName))?;
    // Real files pad names with spaces; an empty name is an un-named node.
    let name = Some(name_el.text.trim().to_owned()).filter(|n| !n.is_empty());
    let shown = name.clone().unwrap_or_else(|| "<x>".into());
    let props = el
        .child("DFProperties")
        .ok_or_else(|| (el.offset, DdfErrorKind::MissingDfProperties(shown.clone())))?;
    let bad = |at: &Element, reason: String| {
        (
            at.offset,
            DdfErrorKind::BadProperty {
                node: shown.clone(),
                reason,
            },
        )
    };

    let access_el = props
        .child("AccessType")
        .ok_or_else(|| (props.offset, DdfErrorKind::MissingAccessType(shown.clone())))?;
    let mut access = AccessType::NONE;
    for a in &access_el.children {
        let one = AccessType::parse_one(&a.name).map_err(|e| bad(a, e.to_string()))?;
        access = access.union(one.unwrap_or(AccessType::NONE));
    }

    let format_el = props
        .child("DFFormat")
        .ok_or_else(|| (props.offset, DdfErrorKind::MissingFormat(shown.clone())))?;
    let format = match format_el.children.as_slice() {
        [one] => one
            .name
            .parse::<Format>()
            .map_err(|e| bad(one, e.to_string()))?,
        [] => return Err((format_el.offset, DdfErrorKind::MissingFormat(shown.clone()))),
        [_, second, ..] => return Err(bad(second, "<DFFormat> names more than one format".into())),
    };

    let occurrence = match props.child("Occurrence") {
        None => Occurrence::One,
        Some(o) => match o.children.as_slice() {
            [one] => {
                let count = one.text.trim();
                let text = if count.is_empty() {
                    one.name.clone()
                } else {
                    format!("{}({count})", one.name)
                };
                text.parse::<Occurrence>()
                    .map_err(|e| bad(one, e.to_string()))?
            }
            _ => return Err(bad(o, "<Occurrence> must hold exactly one element".into())),
        },
    };

    // The DM 1.2 TND makes Dynamic the scope of a node that names none.
    let scope = match props.child("Scope") {
        None => Scope::Dynamic,
        Some(s) => match s.children.as_slice() {
            [one] => one
                .name
                .parse::<Scope>()
                .map_err(|e| bad(one, e.to_string()))?,
            _ => return Err(bad(s, "<Scope> must hold Permanent or Dynamic".into())),
        },
    };

    let text = |parent: &Element, name: &str| {
        parent
            .child(name)
            .map(|e| e.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let (moid, mime) = match props.child("DFType") {
        None => (None, Vec::new()),
        Some(t) => (
            text(t, "DDFName"),
            t.children_named("MIME")
                .map(|m| m.text.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect(),
        ),
    };
    let case_sensitive = props
        .child("CaseSense")
        .and_then(|c| c.children.first())
        .map(|c| c.name == "CS");

    let children = el
        .children_named("Node")
        .map(node)
        .collect::<Result<Vec<_>, _>>()?;
    if !format.is_interior() && !children.is_empty() {
        return Err((children[0].offset, DdfErrorKind::LeafWithChildren(shown)));
    }
    let mut seen = HashSet::new();
    let mut unnamed = false;
    for c in &children {
        match &c.name {
            Some(n) if !seen.insert(n.as_str()) => {
                return Err((
                    c.offset,
                    DdfErrorKind::DuplicateSibling {
                        parent: shown,
                        name: n.clone(),
                    },
                ))
            }
            None if unnamed => {
                return Err((c.offset, DdfErrorKind::DuplicateUnnamed { parent: shown }))
            }
            None => unnamed = true,
            _ => {}
        }
    }

    let mut def = NodeDef {
        name,
        path: text(el, "Path"),
        format,
        access,
        occurrence,
        scope,
        title: text(props, "DFTitle"),
        description: text(props, "Description"),
        default_value: text(props, "DefaultValue"),
        moid,
        mime,
        case_sensitive,
        children,
        rust: RustNames::default(),
        offset: el.offset,
    };
    name_fields(&mut def);
    Ok(def)
}

/// Field names of `def`'s children: snake_case, keywords escaped, clashes
/// numbered.
fn name_fields(def: &mut NodeDef) {
    let mut used = HashSet::new();
    for c in &mut def.children {
        let base = match &c.name {
            Some(n) => snake_case(n),
            None => snake_case(c.title.as_deref().unwrap_or("instances")),
        };
        c.rust.field_name = unique(base, &mut used);
    }
}

fn root_type_name(root: &NodeDef) -> String {
    let source = root
        .name
        .clone()
        .or_else(|| root.title.clone())
        .or_else(|| {
            root.moid
                .as_deref()
                .and_then(|m| m.split(':').rev().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "Root".into());
    camel_case(&source)
}

/// Struct names: the root's name, then parent name + child name for each
/// interior node, made unique across the file.
fn name_types(def: &mut NodeDef, base: String, used: &mut HashSet<String>) {
    def.rust.type_name = unique(base, used);
    let parent = def.rust.type_name.clone();
    for c in &mut def.children {
        if c.format.is_interior() {
            let own = c
                .name
                .clone()
                .or_else(|| c.title.clone())
                .unwrap_or_else(|| "Instance".into());
            name_types(c, format!("{parent}{}", camel_case(&own)), used);
        }
    }
}

fn unique(base: String, used: &mut HashSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// `DevID` -> `dev_id`, `SrvURI` -> `srv_uri`, `HwV` -> `hw_v`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                let boundary =
                    prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower);
                if boundary && !out.ends_with('_') {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_owned();
    if out.is_empty() {
        out.push_str("node");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "n_");
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// `dev-info` -> `DevInfo`; keeps inner capitals (`DevInfo` stays).
pub fn camel_case(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() {
        out.push_str("Node");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_follow_rust_conventions() {
        let cases = [
            ("DevID", "dev_id"),
            ("SrvURI", "srv_uri"),
            ("HwV", "hw_v"),
            ("CBT", "cbt"),
            ("AAuthLevel", "a_auth_level"),
            ("type", "type_"),
            ("3GPP", "n_3gpp"),
            ("{GUID}", "guid"),
            ("", "node"),
        ];
        for (input, expected) in cases {
            assert_eq!(snake_case(input), expected, "{input}");
        }
        assert_eq!(camel_case("oma-dm-devinfo"), "OmaDmDevinfo");
        assert_eq!(camel_case("DevInfo"), "DevInfo");
        assert_eq!(camel_case("self"), "Self_");
    }
}
