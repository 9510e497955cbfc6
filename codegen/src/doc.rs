//! MO reference pages (tera): one page per root node, in Markdown and HTML.
//!
//! Each page draws the tree in the spec's graphical notation (6.3.1.5):
//! occurrence markers `+ * ? +N *N` after the name, un-named nodes as
//! `<Title>`; in HTML, leaf nodes as rectangles and interior nodes with
//! rounded corners, required nodes with a solid and optional ones with a
//! dotted line. Then one section per node as in the spec's section 12: the
//! path, a table of Status, Occurrence, Format and Min. Access Types, and
//! the description.

use std::collections::HashMap;

use serde::Serialize;
use tera::{Context, Tera};

use crate::error::DocError;
use crate::ir::{CaseSense, Ddf, NodeId};
use crate::names::{snake_case, Namespace};

const MARKDOWN: &str = include_str!("../templates/mo.md.tera");
const HTML: &str = include_str!("../templates/mo.html.tera");

/// One rendered page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPage {
    /// File stem for the page: `dmacc` (`<stem>.md`, `<stem>.html`).
    pub stem: String,
    pub title: String,
    pub markdown: String,
    pub html: String,
}

#[derive(Serialize)]
struct TreeNode {
    label: String,
    marker: String,
    interior: bool,
    required: bool,
    anchor: String,
    children: Vec<TreeNode>,
}

#[derive(Serialize)]
struct TreeLine {
    prefix: String,
    label: String,
    marker: String,
    interior: bool,
}

#[derive(Serialize)]
struct NodeSection {
    anchor: String,
    path: String,
    /// The path up to and including the last `/`, and the node's own name.
    parent_path: String,
    name: String,
    /// Whether a DM Server may read the node (Get).
    readable: bool,
    status: &'static str,
    occurrence: String,
    format: String,
    access: String,
    description: Vec<String>,
    facts: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Page<'a> {
    title: String,
    /// The root's description, as paragraphs.
    lead: Vec<String>,
    moid: Option<String>,
    source: &'a str,
    facts: Vec<(String, String)>,
    tree: TreeNode,
    tree_lines: Vec<TreeLine>,
    nodes: Vec<NodeSection>,
}

/// Renders the pages of every root of `ddf`.
pub fn render(ddf: &Ddf, source_name: &str) -> Result<Vec<DocPage>, DocError> {
    let mut tera = Tera::default();
    tera.add_raw_templates([("mo.md", MARKDOWN), ("mo.html", HTML)])
        .map_err(|e| DocError::Templates {
            source: Box::new(e),
        })?;
    tera.register_filter("md", md_filter);
    let stem = source_name
        .rsplit_once('.')
        .map_or(source_name, |(s, _)| s)
        .to_owned();
    let mut stems = Namespace::default();
    let mut pages = Vec::new();
    for &root in ddf.roots() {
        let page_stem = if ddf.roots().len() == 1 {
            stems.unique(&stem, "-")
        } else {
            stems.unique(
                &format!("{stem}-{}", snake_case(&ddf.node(root).rust.type_name)),
                "-",
            )
        };
        let page = page(ddf, root, source_name);
        let ctx = Context::from_serialize(&page).map_err(|e| DocError::Context {
            source_name: source_name.to_owned(),
            page: page_stem.clone(),
            source: Box::new(e),
        })?;
        let render = |template: &'static str| {
            tera.render(template, &ctx).map_err(|e| DocError::Render {
                source_name: source_name.to_owned(),
                page: page_stem.clone(),
                template,
                source: Box::new(e),
            })
        };
        let markdown = render("mo.md")?;
        let html = render("mo.html")?;
        pages.push(DocPage {
            stem: page_stem,
            title: page.title,
            markdown,
            html,
        });
    }
    Ok(pages)
}

/// Escapes text for Markdown prose and table cells: `<` would open HTML,
/// `|` would end a cell.
fn md_filter(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let s = tera::try_get_value!("md", "value", String, value);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("\\|"),
            '*' | '_' | '`' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Ok(tera::Value::String(out))
}

fn page<'a>(ddf: &Ddf, root: NodeId, source: &'a str) -> Page<'a> {
    let def = ddf.node(root);
    let mut anchors = Namespace::default();
    let mut anchor_of = vec![String::new(); ddf.len()];
    ddf.walk(root, &mut |id| {
        let slug = slug(&ddf.display_path(id));
        anchor_of[id.index()] = anchors.unique(&slug, "-");
    });
    // An MO is named by its title (DMAcc); a Windows tree by its place.
    let title = match (&def.path, &def.moid) {
        (Some(p), None) => format!("{}/{}", p.trim_end_matches('/'), def.display_name()),
        _ => def
            .title
            .clone()
            .or_else(|| def.name.clone())
            .unwrap_or_else(|| def.display_name()),
    };
    let mut facts = Vec::new();
    if let Some(m) = &def.moid {
        facts.push(("MOID".to_owned(), m.clone()));
    }
    if let Some(p) = &def.path {
        facts.push(("Path".to_owned(), p.clone()));
    }
    facts.push(("DDF".to_owned(), source.to_owned()));
    if let Some(v) = &ddf.ver_dtd {
        facts.push(("VerDTD".to_owned(), v.clone()));
    }
    if let Some(m) = &ddf.man {
        facts.push(("Manufacturer".to_owned(), m.clone()));
    }
    if let Some(m) = &ddf.model {
        facts.push(("Model".to_owned(), m.clone()));
    }
    let mut tree_lines = Vec::new();
    tree_text(ddf, root, "", "", &mut tree_lines);
    let mut nodes = Vec::new();
    ddf.walk(root, &mut |id| nodes.push(section(ddf, id, &anchor_of)));
    Page {
        title,
        lead: def
            .description
            .as_deref()
            .map(paragraphs)
            .unwrap_or_default(),
        moid: def.moid.clone(),
        source,
        facts,
        tree: tree(ddf, root, &anchor_of),
        tree_lines,
        nodes,
    }
}

fn tree(ddf: &Ddf, id: NodeId, anchors: &[String]) -> TreeNode {
    let def = ddf.node(id);
    TreeNode {
        label: def.display_name(),
        marker: def.occurrence.marker(),
        interior: def.is_interior(),
        required: def.occurrence.min() >= 1,
        anchor: anchors[id.index()].clone(),
        children: def
            .children
            .iter()
            .map(|c| tree(ddf, *c, anchors))
            .collect(),
    }
}

/// The tree as text lines with box-drawing connectors; interior nodes end
/// in `/`.
fn tree_text(ddf: &Ddf, id: NodeId, prefix: &str, child_prefix: &str, out: &mut Vec<TreeLine>) {
    let def = ddf.node(id);
    out.push(TreeLine {
        prefix: prefix.to_owned(),
        label: def.display_name(),
        marker: def.occurrence.marker(),
        interior: def.is_interior(),
    });
    let n = def.children.len();
    for (i, c) in def.children.iter().enumerate() {
        let last = i + 1 == n;
        let (head, tail) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        tree_text(
            ddf,
            *c,
            &format!("{child_prefix}{head}"),
            &format!("{child_prefix}{tail}"),
            out,
        );
    }
}

fn section(ddf: &Ddf, id: NodeId, anchors: &[String]) -> NodeSection {
    let def = ddf.node(id);
    let mut facts = Vec::new();
    if let Some(t) = &def.title {
        facts.push(("Title".to_owned(), t.clone()));
    }
    facts.push(("Scope".to_owned(), def.scope.as_str().to_owned()));
    if !def.mime().is_empty() {
        let all: Vec<&str> = def.mime().iter().map(|m| &**m).collect();
        facts.push(("MIME".to_owned(), all.join(", ")));
    }
    if let Some(d) = def.default_value.as_ref().or(def.value.as_ref()) {
        facts.push(("Default".to_owned(), d.clone()));
    }
    if def.case_sense.is_some() || def.parent.is_none() {
        let cs = match ddf.case_sense(id) {
            CaseSense::Sensitive => "case sensitive",
            CaseSense::Insensitive => "case insensitive",
        };
        facts.push(("Names".to_owned(), cs.to_owned()));
    }
    let exts = ddf.extensions_of(id);
    if !exts.is_empty() {
        let mut names: Vec<&str> = exts.iter().map(|e| e.name()).collect();
        names.dedup();
        facts.push(("Extensions".to_owned(), names.join(", ")));
    }
    let description = def
        .description
        .as_deref()
        .map(paragraphs)
        .unwrap_or_default();
    let path = ddf.display_path(id);
    let name = def.display_name();
    let parent_path = path[..path.len() - name.len()].to_owned();
    NodeSection {
        anchor: anchors[id.index()].clone(),
        path,
        parent_path,
        name,
        readable: def.access.contains(dm_core::AccessType::GET),
        status: def.status(),
        occurrence: def.occurrence.to_string(),
        format: def.format.to_string(),
        access: if def.access.is_empty() {
            "(none: not exposed)".to_owned()
        } else {
            def.access.to_string()
        },
        description,
        facts,
    }
}

/// Description text as paragraphs: lines trimmed, blank lines separate.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(line);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn slug(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "node".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_paragraphs() {
        assert_eq!(slug("<DMAcc>/Auth/Noti"), "dmacc-auth-noti");
        assert_eq!(slug("<>"), "node");
        assert_eq!(paragraphs(" a\n b \n\n c\n"), ["a b", "c"]);
    }

    #[test]
    fn pages_use_the_graphical_notation_and_the_section_12_table() {
        let xml = r#"<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName/><DFProperties><AccessType><Get/></AccessType>
            <Description>Root &lt;x&gt; | pipe</Description><DFFormat><node/></DFFormat><Occurrence><ZeroOrMore/></Occurrence>
            <DFTitle>Demo</DFTitle><DFType><DDFName>urn:x:demo:1</DDFName></DFType></DFProperties>
            <Node><NodeName/><DFProperties><AccessType><Add/></AccessType><DFFormat><int/></DFFormat>
            <Occurrence><OneOrN>3</OneOrN></Occurrence><DFTitle>Item</DFTitle></DFProperties></Node>
            <Node><NodeName>Opt</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat>
            <Occurrence><ZeroOrN>2</ZeroOrN></Occurrence></DFProperties></Node></Node></MgmtTree>"#;
        let ddf = Ddf::parse(std::path::Path::new("demo.ddf"), xml).unwrap();
        let pages = render(&ddf, "demo.ddf").unwrap();
        assert_eq!(pages.len(), 1);
        let page = &pages[0];
        assert_eq!((page.stem.as_str(), page.title.as_str()), ("demo", "Demo"));
        let md = &page.markdown;
        assert!(md.contains("<Demo>*/\n├── <Item>+3\n└── Opt*2\n"), "{md}");
        assert!(md.contains("### `<Demo>/<Item>` (no Get)"), "{md}");
        assert!(md.contains("| Required | OneOrN(3) | int | Add |"), "{md}");
        assert!(md.contains("| Optional | ZeroOrN(2) | chr | Get |"), "{md}");
        assert!(md.contains("Root &lt;x&gt; \\| pipe"), "{md}");
        let html = &page.html;
        assert!(html.contains(r##"class="box leaf optional" href="#demo-opt">Opt</a><span class="marker">*2</span>"##), "{html}");
        assert!(html.contains(r#"class="box interior optional""#), "{html}");
        assert!(html.contains("Root &lt;x&gt; | pipe"), "{html}");
        assert!(html.contains(r#"<span class="badge""#), "{html}");
    }

    #[test]
    fn markdown_escapes() {
        let v = md_filter(&tera::Value::from("a<b>|*c*"), &HashMap::new()).unwrap();
        assert_eq!(v, tera::Value::from("a&lt;b&gt;\\|\\*c\\*"));
    }
}
