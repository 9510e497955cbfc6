//! The validated model of a DDF (stage 2 of the pipeline).
//!
//! A [`Ddf`] holds its node definitions in an arena keyed by [`NodeId`], in
//! document order (a parent before its children). Every definition carries
//! the `dm-core` node model (spec 6.3.1: format, access types, occurrence,
//! scope) and the Rust names chosen for it, resolved here, before anything
//! is emitted, so that name clashes and keywords are settled in one place.

use std::sync::Arc;

use dm_core::{AccessType, Format, Occurrence, Scope, Value};

use crate::error::Diagnostic;
use crate::names::{camel_case, screaming, snake_case, Namespace, Reserved};

/// The index of a node definition in its [`Ddf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Whether node names below a node compare with case (spec 6.4 CaseSense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseSense {
    Sensitive,
    Insensitive,
}

/// An element the DDF DTD does not define (`MSFT:AllowedValues`, ...),
/// kept as written. The extensions of a file share one buffer holding
/// their texts (and nothing else of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub(crate) texts: Arc<String>,
    /// `raw` is `texts[start..end]`.
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) name_len: usize,
    /// The node it belongs to (`u32::MAX` for the tree's own).
    pub(crate) node: u32,
    /// Byte offset of the start tag in the DDF file.
    pub offset: usize,
}

impl Extension {
    /// The qualified element name, `MSFT:AllowedValues`.
    pub fn name(&self) -> &str {
        self.texts
            .get(self.start + 1..self.start + 1 + self.name_len)
            .unwrap_or_default()
    }

    /// The element's source text, start tag to end tag.
    pub fn raw(&self) -> &str {
        self.texts.get(self.start..self.end).unwrap_or_default()
    }
}

/// A validated DDF: one or more root node definitions (spec 6.4: MgmtTree is
/// a container for one or more MOs).
#[derive(Debug, Clone, Default)]
pub struct Ddf {
    pub ver_dtd: Option<String>,
    pub man: Option<String>,
    pub model: Option<String>,
    /// Foreign elements directly inside `MgmtTree`.
    pub extensions: Vec<Extension>,
    /// The foreign elements of the nodes, grouped by node in node order
    /// (one vector for the file rather than one per node).
    pub(crate) node_extensions: Vec<Extension>,
    /// What the parser accepted but wants a person to look at.
    pub warnings: Vec<Diagnostic>,
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) roots: Vec<NodeId>,
}

/// The `DFType/MIME` values of a node: almost always one, and the same few
/// strings throughout a file, so they are shared rather than copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Mime {
    #[default]
    None,
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl Mime {
    pub(crate) fn push(&mut self, m: Arc<str>) {
        *self = match std::mem::take(self) {
            Mime::None => Mime::One(m),
            Mime::One(first) => Mime::Many(vec![first, m]),
            Mime::Many(mut all) => {
                all.push(m);
                Mime::Many(all)
            }
        };
    }

    fn as_slice(&self) -> &[Arc<str>] {
        match self {
            Mime::None => &[],
            Mime::One(m) => std::slice::from_ref(m),
            Mime::Many(all) => all,
        }
    }
}

/// How a parent's struct holds a child (docs/architecture.md "Typed codegen").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A named node that always exists: `T`.
    Plain,
    /// A named node that may be absent (occurrence minimum 0): `Option<T>`.
    Optional,
    /// An un-named node: `NodeMap<T, MIN, MAX>`; `max` is `None` for no
    /// upper bound (`dm_core::UNBOUNDED`).
    Map { min: u32, max: Option<u32> },
}

/// One node definition, valid by construction.
#[derive(Debug, Clone)]
pub struct NodeDef {
    /// `None` for an un-named node (empty `NodeName`, spec 6.3.1.3).
    pub name: Option<String>,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    /// `Path` of a root node, as written but trimmed (`./Vendor/MSFT`, `.`).
    pub path: Option<String>,
    pub format: Format,
    pub access: AccessType,
    pub occurrence: Occurrence,
    pub scope: Scope,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `DefaultValue` as written (trimmed).
    pub default_value: Option<String>,
    /// The DM 1.2 `Value` element as written (trimmed).
    pub value: Option<String>,
    /// `DefaultValue` (else `Value`) as data of the node's format, when it is
    /// valid for that format.
    pub default: Option<Value>,
    /// The MOID of the MO rooted here (`DFType/DDFName`), when not empty.
    pub moid: Option<String>,
    pub(crate) mime: Mime,
    pub case_sense: Option<CaseSense>,
    /// This node's foreign elements: `Ddf::node_extensions[ext.0..ext.1]`.
    pub(crate) ext: (u32, u32),
    /// Rust names chosen for this node.
    pub rust: RustNames,
    /// Byte offset of the `<Node>` start tag.
    pub offset: usize,
}

/// The Rust names of a node: its struct (interior nodes), its field in the
/// parent's struct, and the parent's accessor methods for it, which follow
/// from the field name and the node's access types (see `emit.rs`). A
/// method is `None` when the access types do not allow it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RustNames {
    /// Struct name (interior nodes only).
    pub type_name: String,
    /// Field name in the parent's struct.
    pub field_name: String,
    /// The behaviour trait method of an Exec node (below an MO root).
    pub exec_method: Option<String>,
    members: Members,
}

/// Which accessors a child has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Members {
    getter: bool,
    setter: bool,
    inserter: bool,
    remover: bool,
    get_mut: bool,
    default_const: bool,
}

impl RustNames {
    /// The field name without a keyword's `_`: compound names use it
    /// (`type_` -> `set_type`).
    fn stem(&self) -> &str {
        self.field_name
            .strip_suffix('_')
            .unwrap_or(&self.field_name)
    }

    /// `x()`: Get (not for `null` leaves).
    pub fn getter(&self) -> Option<String> {
        self.members.getter.then(|| self.field_name.clone())
    }

    /// `set_x(v)`: leaves with Replace.
    pub fn setter(&self) -> Option<String> {
        self.members.setter.then(|| format!("set_{}", self.stem()))
    }

    /// `insert_x(..)`: optional and un-named nodes with Add; optional
    /// leaves only when they lack Replace.
    pub fn inserter(&self) -> Option<String> {
        self.members
            .inserter
            .then(|| format!("insert_{}", self.stem()))
    }

    /// `remove_x(..)`: optional and un-named nodes with Delete.
    pub fn remover(&self) -> Option<String> {
        self.members
            .remover
            .then(|| format!("remove_{}", self.stem()))
    }

    /// `x_mut(..)`: every interior child.
    pub fn get_mut(&self) -> Option<String> {
        self.members.get_mut.then(|| format!("{}_mut", self.stem()))
    }

    /// `X_DEFAULT`: leaves with a valid default value.
    pub fn default_const(&self) -> Option<String> {
        self.members
            .default_const
            .then(|| format!("{}_DEFAULT", screaming(self.stem())))
    }

    /// Every member name of the parent's struct for this child.
    pub(crate) fn members(&self) -> impl Iterator<Item = String> {
        self.all()
    }

    /// Every member name, for clash checks.
    fn all(&self) -> impl Iterator<Item = String> {
        [
            self.getter(),
            self.setter(),
            self.inserter(),
            self.remover(),
            self.get_mut(),
            self.default_const(),
        ]
        .into_iter()
        .flatten()
    }
}

impl NodeDef {
    /// `DFType/MIME`: the media types of a leaf's value (spec 6.4).
    pub fn mime(&self) -> &[Arc<str>] {
        self.mime.as_slice()
    }

    /// The name as shown to people: `<Title>` or `<x>` for un-named nodes.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("<{}>", self.title.as_deref().unwrap_or("x")),
        }
    }

    pub fn is_interior(&self) -> bool {
        self.format.is_interior()
    }

    pub fn holder(&self) -> Holder {
        match (&self.name, self.occurrence.min()) {
            (None, min) => Holder::Map {
                min,
                max: self.occurrence.max(),
            },
            (Some(_), 0) => Holder::Optional,
            (Some(_), _) => Holder::Plain,
        }
    }

    /// Spec 6.3.1 "Status": Required when the node must exist (occurrence
    /// minimum at least one), else Optional.
    pub fn status(&self) -> &'static str {
        if self.occurrence.min() >= 1 {
            "Required"
        } else {
            "Optional"
        }
    }
}

impl Ddf {
    /// The root node definitions, in file order.
    pub fn roots(&self) -> &[NodeId] {
        &self.roots
    }

    pub fn node(&self, id: NodeId) -> &NodeDef {
        &self.nodes[id.index()]
    }

    /// Foreign elements in a node or its `DFProperties` (`MSFT:...`, or
    /// elements the DTD does not know), kept as written.
    pub fn extensions_of(&self, id: NodeId) -> &[Extension] {
        let (start, end) = self.node(id).ext;
        self.node_extensions
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut NodeDef {
        &mut self.nodes[id.index()]
    }

    /// Every node definition with its id, in document order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeDef)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (NodeId(i as u32), n))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The root a node belongs to.
    pub fn root_of(&self, mut id: NodeId) -> NodeId {
        while let Some(p) = self.node(id).parent {
            id = p;
        }
        id
    }

    /// The nodes from the root down to `id`, both included.
    pub fn lineage(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        let mut cur = id;
        while let Some(p) = self.node(cur).parent {
            out.push(p);
            cur = p;
        }
        out.reverse();
        out
    }

    /// The path of a node as the spec's section 12 writes it: display names
    /// from the root, `<x>/Auth/Noti`.
    pub fn display_path(&self, id: NodeId) -> String {
        self.lineage(id)
            .iter()
            .map(|n| self.node(*n).display_name())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether names at `id` compare with case: the nearest `CaseSense` on
    /// the node or an ancestor; case sensitive when none says (DM 1.2 TND).
    pub fn case_sense(&self, id: NodeId) -> CaseSense {
        self.lineage(id)
            .iter()
            .rev()
            .find_map(|n| self.node(*n).case_sense)
            .unwrap_or(CaseSense::Sensitive)
    }

    /// The roots that start an MO: those with a MOID (DFType/DDFName).
    pub fn mo_roots(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.roots
            .iter()
            .copied()
            .filter(|r| self.node(*r).moid.is_some())
    }

    /// The Exec nodes of the tree at `root`, in document order.
    pub fn exec_nodes(&self, root: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        self.walk(root, &mut |id| {
            if self.node(id).access.contains(AccessType::EXEC) {
                out.push(id);
            }
        });
        out
    }

    /// Calls `f` on `id` and its descendants, parents first.
    pub fn walk(&self, id: NodeId, f: &mut dyn FnMut(NodeId)) {
        f(id);
        for c in &self.node(id).children {
            self.walk(*c, f);
        }
    }
}

/// The name of the behaviour trait of an MO root type.
pub fn behaviour_trait_name(root_type: &str) -> String {
    format!("{root_type}Behaviour")
}

/// Chooses every Rust name of the file: struct names unique across the
/// file (behaviour traits included), field and method names unique per
/// struct, behaviour methods unique per trait.
pub(crate) fn resolve_names(ddf: &mut Ddf) {
    let mut types = Namespace::default();
    // Root names first, so that they get the plain name and children the
    // numbered one on a clash. Two roots of one name in different places
    // (`./Device/...` and `./User/...`) take the first differing Path
    // segment as a prefix.
    let roots = ddf.roots.clone();
    let bases: Vec<String> = roots.iter().map(|r| root_base_name(ddf.node(*r))).collect();
    for (i, r) in roots.iter().enumerate() {
        let clash = bases
            .iter()
            .enumerate()
            .any(|(j, b)| j != i && *b == bases[i]);
        let base = if clash {
            match path_prefix(ddf.node(*r).path.as_deref()) {
                Some(p) => format!("{}{}", camel_case(&p), bases[i]),
                None => bases[i].clone(),
            }
        } else {
            bases[i].clone()
        };
        let name = types.unique(&base, "");
        // Every root may become an MO (a MOID can come from the emit
        // options), so every root's behaviour trait name is taken.
        types.insert(behaviour_trait_name(&name));
        ddf.node_mut(*r).rust.type_name = name;
    }
    for r in &roots {
        name_types(ddf, *r, &mut types);
    }
    for i in 0..ddf.nodes.len() {
        if ddf.nodes[i].is_interior() {
            name_members(ddf, NodeId(i as u32));
        }
    }
    if ddf
        .nodes
        .iter()
        .any(|n| n.access.contains(AccessType::EXEC))
    {
        for r in roots {
            name_exec_methods(ddf, r);
        }
    }
}

fn root_base_name(root: &NodeDef) -> String {
    let source = root
        .name
        .clone()
        .or_else(|| root.title.clone())
        .or_else(|| {
            // urn:oma:mo:oma-dm-devinfo:1.2 -> oma-dm-devinfo
            root.moid
                .as_deref()
                .and_then(|m| m.rsplit(':').nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "Root".into());
    camel_case(&source)
}

/// `./Device/Vendor/MSFT/Policy/Config` -> `Device`.
fn path_prefix(path: Option<&str>) -> Option<String> {
    path?
        .split('/')
        .find(|s| !s.is_empty() && *s != ".")
        .map(str::to_owned)
}

fn name_types(ddf: &mut Ddf, id: NodeId, types: &mut Namespace) {
    let parent = ddf.node(id).rust.type_name.clone();
    for i in 0..ddf.node(id).children.len() {
        let c = ddf.node(id).children[i];
        let child = ddf.node(c);
        if child.is_interior() {
            let own = child
                .name
                .as_deref()
                .or(child.title.as_deref())
                .unwrap_or("Instance");
            let name = types.unique(&format!("{parent}{}", camel_case(own)), "");
            ddf.node_mut(c).rust.type_name = name;
            name_types(ddf, c, types);
        }
    }
}

/// Method names an accessor must not take: the constructor (and `new`,
/// left to the MO author), the derive's
/// `SCHEMA`, the methods of the `dm-core` traits (an inherent method of the
/// same name would shadow them in method calls) and of the std traits that
/// clippy expects to be implemented rather than imitated.
static RESERVED_METHODS: Reserved = Reserved::new(&[
    "SCHEMA",
    "add",
    "apply",
    "as_mut",
    "as_ref",
    "bitand",
    "bitor",
    "bitxor",
    "borrow",
    "borrow_mut",
    "boxed_clone",
    "clone",
    "cmp",
    "default",
    "delete",
    "delete_node",
    "deref",
    "deref_mut",
    "div",
    "drop",
    "eq",
    "exec",
    "fmt",
    "from",
    "from_iter",
    "from_node",
    "from_str",
    "get",
    "get_node",
    "hash",
    "index",
    "index_mut",
    "into",
    "into_iter",
    "mul",
    "ne",
    "neg",
    "new",
    "next",
    "not",
    "partial_cmp",
    "put",
    "put_node",
    "rem",
    "schema",
    "shl",
    "shr",
    "sub",
    "to_owned",
    "to_string",
    "type_id",
    "validate",
    "with_required",
]);

/// Field, accessor and default-constant names of the children of `id`.
/// The accessors a child gets follow from its holder and access types
/// (see `emit.rs` for what each does).
///
/// Almost always the snake_case names of the children cannot clash: they
/// are distinct, none looks like an accessor (`set_..`, `insert_..`,
/// `remove_..`, `.._mut`, a keyword's `.._`) and none is reserved. That is
/// checked first, with no allocation; only otherwise are names taken one
/// by one from a [`Namespace`].
fn name_members(ddf: &mut Ddf, id: NodeId) {
    let children = std::mem::take(&mut ddf.node_mut(id).children);
    let mut plain = true;
    let mut bases = crate::names::FxStrSet::default();
    bases.reserve(children.len());
    for &c in &children {
        let members = members_of(ddf.node(c));
        let child = ddf.node(c);
        let base = match &child.name {
            Some(n) => snake_case(n),
            None => snake_case(child.title.as_deref().unwrap_or("instances")),
        };
        let names = &mut ddf.node_mut(c).rust;
        names.members = members;
        names.field_name = base;
    }
    for &c in &children {
        let base = ddf.node(c).rust.field_name.as_str();
        if RESERVED_METHODS.contains(base) || !bases.insert(base) {
            plain = false;
            break;
        }
    }
    // A child named like another's accessor (`SetFoo` beside `Foo`, which
    // Windows policies have), a keyword's `_` beside its plain stem, or
    // `set_x` and `x_mut` shapes that could meet (`set_a_mut`).
    if plain {
        let taken =
            |stem: &str| bases.contains(stem) || bases.contains(format!("{stem}_").as_str());
        let (mut prefixed, mut suffixed) = (false, false);
        plain = bases.iter().all(|base| {
            let stem = base.strip_suffix('_').unwrap_or(base);
            let after_prefix = ["set_", "insert_", "remove_"]
                .iter()
                .find_map(|p| base.strip_prefix(p));
            let before_mut = base.strip_suffix("_mut");
            prefixed |= after_prefix.is_some();
            suffixed |= before_mut.is_some();
            !(after_prefix.is_some_and(taken)
                || before_mut.is_some_and(taken)
                || (stem.len() < base.len() && bases.contains(stem))
                || RESERVED_MUT_STEMS.contains(&stem))
        }) && !(prefixed && suffixed);
    }
    drop(bases);
    if !plain {
        let mut fields = Namespace::default();
        let mut methods = Namespace::new(&RESERVED_METHODS);
        for &c in &children {
            let mut names = ddf.node(c).rust.clone();
            let base = std::mem::take(&mut names.field_name);
            let mut n = 1;
            loop {
                names.field_name = if n == 1 {
                    base.clone()
                } else {
                    format!("{base}_{n}")
                };
                n += 1;
                if fields.contains(&names.field_name) || names.all().any(|m| methods.contains(&m)) {
                    continue;
                }
                for m in names.all() {
                    methods.insert(m);
                }
                fields.insert(names.field_name.clone());
                break;
            }
            ddf.node_mut(c).rust = names;
        }
    }
    ddf.node_mut(id).children = children;
}

/// Stems whose `_mut` accessor is a reserved name (`as_mut`, ...).
const RESERVED_MUT_STEMS: [&str; 4] = ["as", "borrow", "deref", "index"];

fn members_of(child: &NodeDef) -> Members {
    let access = child.access;
    let holder = child.holder();
    let interior = child.is_interior();
    let null = child.format == Format::Null;
    let wants = |a: AccessType| access.contains(a);
    // A null leaf has no value: "setting" one only makes sense as creating
    // it.
    let setter = !interior && wants(AccessType::REPLACE) && (!null || holder == Holder::Optional);
    Members {
        getter: wants(AccessType::GET) && !null,
        setter,
        inserter: match holder {
            Holder::Map { .. } => wants(AccessType::ADD),
            Holder::Optional => wants(AccessType::ADD) && (interior || !setter),
            Holder::Plain => false,
        },
        remover: holder != Holder::Plain && wants(AccessType::DELETE),
        get_mut: interior,
        default_const: child.default.is_some() && !null,
    }
}

/// Behaviour methods: the field names on the path from the MO root,
/// joined by `_` (`Operations/Enable` -> `operations_enable`).
fn name_exec_methods(ddf: &mut Ddf, root: NodeId) {
    static RESERVED: Reserved = Reserved::new(&["validate"]);
    let mut methods = Namespace::new(&RESERVED);
    for id in ddf.exec_nodes(root) {
        let base = ddf
            .lineage(id)
            .iter()
            .skip(1)
            .map(|n| {
                ddf.node(*n)
                    .rust
                    .field_name
                    .trim_end_matches('_')
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("_");
        // An executable MO root itself (path `[]`).
        let base = if base.is_empty() {
            "exec_root".to_owned()
        } else {
            snake_case(&base)
        };
        let name = methods.unique(&base, "_");
        ddf.node_mut(id).rust.exec_method = Some(name);
    }
}

/// The default value of a leaf as data of its format (spec 6.4
/// DefaultValue). Booleans also take `0`/`1` and any letter case, as the
/// Windows files write them. `None` when the text does not fit.
pub(crate) fn typed_default(format: Format, text: &str) -> Option<Value> {
    let t = text.trim();
    Some(match format {
        Format::Node => return None,
        Format::Null => Value::Null,
        Format::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return None,
        },
        // Windows files write some defaults in hex (`0x0`).
        Format::Int => Value::Int(
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => i64::from_str_radix(hex, 16).ok()?,
                None => t.parse().ok()?,
            },
        ),
        Format::Float => Value::Float(t.parse().ok().filter(|f: &f64| f.is_finite())?),
        Format::B64 => {
            use base64::Engine as _;
            Value::B64(base64::engine::general_purpose::STANDARD.decode(t).ok()?)
        }
        Format::Bin => Value::Bin(text.as_bytes().to_vec()),
        Format::Chr => Value::Chr(text.to_owned()),
        Format::Xml => Value::Xml(text.to_owned()),
        Format::Date => Value::Date(t.to_owned()),
        Format::Time => Value::Time(t.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_the_node_format() {
        assert_eq!(typed_default(Format::Bool, "True"), Some(Value::Bool(true)));
        assert_eq!(typed_default(Format::Bool, "0"), Some(Value::Bool(false)));
        assert_eq!(typed_default(Format::Bool, "yes"), None);
        assert_eq!(typed_default(Format::Int, " 42 "), Some(Value::Int(42)));
        assert_eq!(typed_default(Format::Int, "0x10"), Some(Value::Int(16)));
        assert_eq!(typed_default(Format::Int, "ten"), None);
        assert_eq!(
            typed_default(Format::B64, "AA=="),
            Some(Value::B64(vec![0]))
        );
        assert_eq!(typed_default(Format::Float, "inf"), None);
        assert_eq!(
            typed_default(Format::Chr, " a "),
            Some(Value::Chr(" a ".into()))
        );
    }

    /// Every member name of every struct is unique, whatever the node names
    /// (the fast path of `name_members` must agree with the slow one).
    #[test]
    fn member_names_never_clash() {
        let leaf = |name: &str, access: &str| {
            format!(
                "<Node><NodeName>{name}</NodeName><DFProperties><AccessType>{access}</AccessType>\
                 <DefaultValue>1</DefaultValue><DFFormat><int/></DFFormat><Occurrence><ZeroOrOne/></Occurrence></DFProperties></Node>"
            )
        };
        let interior = |name: &str, kids: &str| {
            format!(
                "<Node><NodeName>{name}</NodeName><DFProperties><AccessType><Add/><Delete/><Get/></AccessType>\
                 <DFFormat><node/></DFFormat><Occurrence><ZeroOrOne/></Occurrence></DFProperties>{kids}</Node>"
            )
        };
        let all = "<Add/><Delete/><Get/><Replace/>";
        let sets: [&[&str]; 7] = [
            &["Foo", "SetFoo", "FooMut", "RemoveFoo"],
            &["type", "type_", "Type"],
            &[
                "Get",
                "New",
                "Schema",
                "Index",
                "as",
                "Borrow",
                "WithRequired",
            ],
            &["SetA", "AMut", "set_a_mut", "SetAMut"],
            &["x", "X_", "x__", "InsertX"],
            &["Default", "Validate", "Exec", "get_node", "Clone"],
            &["Plain", "Other", "Third"],
        ];
        for names in sets {
            let mut kids = String::new();
            for (i, n) in names.iter().enumerate() {
                if i % 2 == 0 {
                    kids.push_str(&leaf(n, all));
                } else {
                    kids.push_str(&interior(n, ""));
                }
            }
            let xml = format!(
                "<MgmtTree><VerDTD>1.2</VerDTD>{}</MgmtTree>",
                interior("Root", &kids)
            );
            let ddf = Ddf::parse(std::path::Path::new("t.ddf"), &xml).unwrap();
            let root = ddf.node(ddf.roots()[0]);
            let mut seen = std::collections::HashSet::new();
            for m in RESERVED_METHODS.names_for_test() {
                seen.insert(m.to_string());
            }
            for c in &root.children {
                for m in ddf.node(*c).rust.all() {
                    assert!(seen.insert(m.clone()), "{names:?}: `{m}` twice");
                }
            }
        }
    }

    #[test]
    fn path_prefixes_skip_the_dot() {
        assert_eq!(
            path_prefix(Some("./Device/Vendor/MSFT")).as_deref(),
            Some("Device")
        );
        assert_eq!(path_prefix(Some(".")), None);
        assert_eq!(path_prefix(None), None);
    }
}
