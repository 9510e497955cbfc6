//! The node model of an MO definition (spec 6.3.1, DDF properties of 6.4).
//!
//! These types are plain data: the code generator writes them out as
//! `static` schemas, and the runtime reads them to check access types and
//! occurrences before it ever calls an MO.

use std::fmt;
use std::str::FromStr;

/// The format of a node's value (spec 6.3.1, "Format").
///
/// `Node` marks an interior node; every other format is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Node,
    Null,
    B64,
    Bin,
    Bool,
    Chr,
    Int,
    Xml,
    Date,
    Time,
    Float,
}

impl Format {
    /// Every format, in the order of the spec's table.
    pub const ALL: [Format; 11] = [
        Format::Node,
        Format::Null,
        Format::B64,
        Format::Bin,
        Format::Bool,
        Format::Chr,
        Format::Int,
        Format::Xml,
        Format::Date,
        Format::Time,
        Format::Float,
    ];

    /// The DDF element name of this format (`<chr/>`, `<node/>`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Node => "node",
            Format::Null => "null",
            Format::B64 => "b64",
            Format::Bin => "bin",
            Format::Bool => "bool",
            Format::Chr => "chr",
            Format::Int => "int",
            Format::Xml => "xml",
            Format::Date => "date",
            Format::Time => "time",
            Format::Float => "float",
        }
    }

    /// True for the interior-node format.
    pub const fn is_interior(self) -> bool {
        matches!(self, Format::Node)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the spec's values for some property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}`")]
pub struct UnknownName {
    /// Which property was being parsed (`format`, `access type`, ...).
    pub what: &'static str,
    /// The text that was found.
    pub found: String,
}

impl FromStr for Format {
    type Err = UnknownName;

    /// Parses a DDF format name. DDF element names are case-sensitive in the
    /// DTD, but real files write `B64` as well as `b64`, so case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                what: "format",
                found: s.to_owned(),
            })
    }
}

/// The set of DDF access types of a node (spec 6.3.1 "Min. Access Types",
/// 6.3.1.1). DM 1.x `Copy` is accepted when parsing a DDF but has no DM 2.0
/// command, so it is not represented.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessType(u8);

impl AccessType {
    pub const NONE: AccessType = AccessType(0);
    pub const ADD: AccessType = AccessType(1);
    pub const DELETE: AccessType = AccessType(2);
    pub const EXEC: AccessType = AccessType(4);
    pub const GET: AccessType = AccessType(8);
    pub const REPLACE: AccessType = AccessType(16);

    const NAMES: [(AccessType, &'static str); 5] = [
        (AccessType::ADD, "Add"),
        (AccessType::DELETE, "Delete"),
        (AccessType::EXEC, "Exec"),
        (AccessType::GET, "Get"),
        (AccessType::REPLACE, "Replace"),
    ];

    /// The raw bit set (stable: used in generated code).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds a set from raw bits, dropping unknown bits.
    pub const fn from_bits(bits: u8) -> AccessType {
        AccessType(bits & 0x1f)
    }

    /// The union of two sets.
    pub const fn union(self, other: AccessType) -> AccessType {
        AccessType(self.0 | other.0)
    }

    /// True when every access type of `other` is in `self`.
    pub const fn contains(self, other: AccessType) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when no access type is granted: the node is not exposed to a DM
    /// Server at all (spec 6.3.1).
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses one DDF access-type element name (`Add`, `Get`, ...).
    /// Returns `Ok(None)` for DM 1.x `Copy`, which DM 2.0 ignores.
    pub fn parse_one(name: &str) -> Result<Option<AccessType>, UnknownName> {
        if name == "Copy" {
            return Ok(None);
        }
        AccessType::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| Some(*a))
            .ok_or_else(|| UnknownName {
                what: "access type",
                found: name.to_owned(),
            })
    }

    /// The names of the access types in this set, in DTD order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        AccessType::NAMES
            .into_iter()
            .filter(move |(a, _)| self.contains(*a))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for AccessType {
    type Output = AccessType;
    fn bitor(self, rhs: AccessType) -> AccessType {
        self.union(rhs)
    }
}

impl fmt::Debug for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessType(")?;
        fmt::Display::fmt(self, f)?;
        write!(f, ")")
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for n in self.names() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
            first = false;
        }
        Ok(())
    }
}

impl FromStr for AccessType {
    type Err = UnknownName;

    /// Parses a comma- or space-separated list such as `"Get, Replace"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split([',', ' '])
            .filter(|p| !p.is_empty())
            .try_fold(AccessType::NONE, |acc, p| {
                Ok(acc.union(AccessType::parse_one(p)?.unwrap_or(AccessType::NONE)))
            })
    }
}

/// How many instances of a node may exist (spec 6.3.1 "Occurrence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occurrence {
    One,
    ZeroOrOne,
    ZeroOrMore,
    OneOrMore,
    /// Zero up to the given number. `None` when a DDF omits the count, which
    /// real files do; it then behaves as `ZeroOrMore`.
    ZeroOrN(Option<u32>),
    /// One up to the given number; `None` as for `ZeroOrN`.
    OneOrN(Option<u32>),
}

impl Occurrence {
    /// The smallest number of instances allowed.
    pub const fn min(self) -> u32 {
        match self {
            Occurrence::One | Occurrence::OneOrMore | Occurrence::OneOrN(_) => 1,
            _ => 0,
        }
    }

    /// The largest number of instances allowed; `None` for no limit.
    pub const fn max(self) -> Option<u32> {
        match self {
            Occurrence::One | Occurrence::ZeroOrOne => Some(1),
            Occurrence::ZeroOrMore | Occurrence::OneOrMore => None,
            Occurrence::ZeroOrN(n) | Occurrence::OneOrN(n) => n,
        }
    }

    /// True when more than one instance may exist.
    pub const fn is_multiple(self) -> bool {
        !matches!(self, Occurrence::One | Occurrence::ZeroOrOne)
    }

    /// The DDF element name of this occurrence.
    pub const fn as_str(self) -> &'static str {
        match self {
            Occurrence::One => "One",
            Occurrence::ZeroOrOne => "ZeroOrOne",
            Occurrence::ZeroOrMore => "ZeroOrMore",
            Occurrence::OneOrMore => "OneOrMore",
            Occurrence::ZeroOrN(_) => "ZeroOrN",
            Occurrence::OneOrN(_) => "OneOrN",
        }
    }

    /// The marker of the spec's graphical notation (6.3.1.5): `""` for One,
    /// `?`, `*`, `+`, `*N`, `+N`.
    pub fn marker(self) -> String {
        match self {
            Occurrence::One => String::new(),
            Occurrence::ZeroOrOne => "?".into(),
            Occurrence::ZeroOrMore | Occurrence::ZeroOrN(None) => "*".into(),
            Occurrence::OneOrMore | Occurrence::OneOrN(None) => "+".into(),
            Occurrence::ZeroOrN(Some(n)) => format!("*{n}"),
            Occurrence::OneOrN(Some(n)) => format!("+{n}"),
        }
    }
}

impl fmt::Display for Occurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Occurrence::ZeroOrN(Some(n)) | Occurrence::OneOrN(Some(n)) => {
                write!(f, "{}({n})", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

impl FromStr for Occurrence {
    type Err = UnknownName;

    /// Parses `One`, `ZeroOrOne`, `ZeroOrMore`, `OneOrMore`, `ZeroOrN`,
    /// `ZeroOrN(5)`, `OneOrN`, `OneOrN(5)`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownName {
            what: "occurrence",
            found: s.to_owned(),
        };
        let (name, count) = match s.split_once('(') {
            Some((name, rest)) => {
                let n = rest.strip_suffix(')').ok_or_else(unknown)?;
                (name, Some(n.trim().parse::<u32>().map_err(|_| unknown())?))
            }
            None => (s, None),
        };
        Ok(match (name, count) {
            ("One", None) => Occurrence::One,
            ("ZeroOrOne", None) => Occurrence::ZeroOrOne,
            ("ZeroOrMore", None) => Occurrence::ZeroOrMore,
            ("OneOrMore", None) => Occurrence::OneOrMore,
            ("ZeroOrN", n) => Occurrence::ZeroOrN(n),
            ("OneOrN", n) => Occurrence::OneOrN(n),
            _ => return Err(unknown()),
        })
    }
}

/// Whether a node is created by the device and lives as long as its parent
/// (`Permanent`) or may be created and deleted by a DM Server (`Dynamic`);
/// spec 6.3.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Permanent,
    Dynamic,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Permanent => "Permanent",
            Scope::Dynamic => "Dynamic",
        }
    }
}

impl FromStr for Scope {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Permanent" => Ok(Scope::Permanent),
            "Dynamic" => Ok(Scope::Dynamic),
            _ => Err(UnknownName {
                what: "scope",
                found: s.to_owned(),
            }),
        }
    }
}

/// The definition of one node of an MO, as the runtime sees it.
///
/// `name` is `None` for an un-named node (`<x>` in the spec, an empty
/// `NodeName` in a DDF): its instances are named at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSchema {
    pub name: Option<&'static str>,
    pub format: Format,
    pub access: AccessType,
    pub occurrence: Occurrence,
    pub scope: Scope,
    pub children: &'static [NodeSchema],
}

impl NodeSchema {
    /// The child definition that a run-time node called `name` instantiates:
    /// the named child of that name, or else the un-named child.
    pub fn child(&self, name: &str) -> Option<&'static NodeSchema> {
        self.children
            .iter()
            .find(|c| c.name == Some(name))
            .or_else(|| self.children.iter().find(|c| c.name.is_none()))
    }

    /// The definition reached by following `path` from this node.
    pub fn descendant(&self, path: &[&str]) -> Option<&NodeSchema> {
        path.iter().try_fold(self, |node, seg| node.child(seg))
    }
}

/// The definition of a whole Management Object: its MOID (spec 6.1.1.1),
/// where its DDF is published, and the tree below its instance root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoSchema {
    pub moid: &'static str,
    /// The DDF URL given in MOS (spec 5.2.2) and MO serialization (7.2.1.4);
    /// `None` when the MO publishes none.
    pub ddf_url: Option<&'static str>,
    /// The instance root node (the `<x>` of section 12).
    pub root: NodeSchema,
}

/// A schema in JSON could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema JSON: {0}")]
pub struct SchemaJsonError(String);

impl NodeSchema {
    /// The definition as JSON, for crossing the plugin boundary as data.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "format": self.format.as_str(),
            "access": self.access.bits(),
            "occurrence": self.occurrence.to_string(),
            "scope": self.scope.as_str(),
            "children": self.children.iter().map(NodeSchema::to_json).collect::<Vec<_>>(),
        })
    }

    /// Reads a definition written by [`NodeSchema::to_json`]. The strings
    /// and child lists are leaked to get `'static` data: this is meant for
    /// schemas loaded once per process (plugins are never unloaded).
    pub fn leak_from_json(json: &serde_json::Value) -> Result<NodeSchema, SchemaJsonError> {
        let bad = |what: &str| SchemaJsonError(format!("bad or missing `{what}`"));
        let text = |key: &str| {
            json.get(key)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| bad(key))
        };
        let name = match json.get("name") {
            Some(serde_json::Value::Null) | None => None,
            Some(serde_json::Value::String(s)) => Some(&*Box::leak(s.clone().into_boxed_str())),
            Some(_) => return Err(bad("name")),
        };
        let access = json
            .get("access")
            .and_then(serde_json::Value::as_u64)
            .and_then(|b| u8::try_from(b).ok())
            .ok_or_else(|| bad("access"))?;
        let children = json
            .get("children")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("children"))?
            .iter()
            .map(NodeSchema::leak_from_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodeSchema {
            name,
            format: text("format")?
                .parse()
                .map_err(|e: UnknownName| SchemaJsonError(e.to_string()))?,
            access: AccessType::from_bits(access),
            occurrence: text("occurrence")?
                .parse()
                .map_err(|e: UnknownName| SchemaJsonError(e.to_string()))?,
            scope: text("scope")?
                .parse()
                .map_err(|e: UnknownName| SchemaJsonError(e.to_string()))?,
            children: Box::leak(children.into_boxed_slice()),
        })
    }
}

impl MoSchema {
    /// The MO definition as JSON (see [`NodeSchema::to_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "moid": self.moid,
            "ddf_url": self.ddf_url,
            "root": self.root.to_json(),
        })
    }

    /// Reads and leaks an MO definition written by [`MoSchema::to_json`].
    pub fn leak_from_json(json: &serde_json::Value) -> Result<&'static MoSchema, SchemaJsonError> {
        let text = |key: &str| {
            json.get(key)
                .and_then(serde_json::Value::as_str)
                .map(|s| &*Box::leak(s.to_owned().into_boxed_str()))
                .ok_or_else(|| SchemaJsonError(format!("bad or missing `{key}`")))
        };
        let root =
            NodeSchema::leak_from_json(json.get("root").unwrap_or(&serde_json::Value::Null))?;
        Ok(Box::leak(Box::new(MoSchema {
            moid: text("moid")?,
            // Absent, null or (from an older plugin) empty: no DDF URL.
            ddf_url: json
                .get("ddf_url")
                .and_then(serde_json::Value::as_str)
                .filter(|u| !u.is_empty())
                .map(|u| &*Box::leak(u.to_owned().into_boxed_str())),
            root,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_round_trip_through_json() {
        const LEAF: NodeSchema = NodeSchema {
            name: Some("ID"),
            format: Format::Chr,
            access: AccessType::GET,
            occurrence: Occurrence::ZeroOrN(Some(3)),
            scope: Scope::Dynamic,
            children: &[],
        };
        let schema = MoSchema {
            moid: "urn:x:1.0",
            ddf_url: Some("http://x"),
            root: NodeSchema {
                name: None,
                format: Format::Node,
                occurrence: Occurrence::One,
                children: &[LEAF],
                ..LEAF
            },
        };
        let back = MoSchema::leak_from_json(&schema.to_json()).unwrap();
        assert_eq!(*back, schema);
        let no_ddf = MoSchema {
            ddf_url: None,
            ..schema
        };
        assert_eq!(
            *MoSchema::leak_from_json(&no_ddf.to_json()).unwrap(),
            no_ddf
        );
        assert!(MoSchema::leak_from_json(&serde_json::json!({"moid": "x"})).is_err());
    }

    #[test]
    fn formats_round_trip_through_their_ddf_names() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert_eq!("B64".parse::<Format>(), Ok(Format::B64));
        assert!("string".parse::<Format>().is_err());
    }

    #[test]
    fn access_type_lists_parse_and_print() {
        let a: AccessType = "Get, Replace".parse().unwrap();
        assert!(a.contains(AccessType::GET));
        assert!(a.contains(AccessType::REPLACE));
        assert!(!a.contains(AccessType::ADD));
        assert_eq!(a.to_string(), "Get, Replace");
        assert_eq!("Copy".parse::<AccessType>(), Ok(AccessType::NONE));
        assert!("Read".parse::<AccessType>().is_err());
    }

    #[test]
    fn occurrence_bounds_and_markers_follow_6_3_1_5() {
        let cases = [
            ("One", 1, Some(1), ""),
            ("ZeroOrOne", 0, Some(1), "?"),
            ("ZeroOrMore", 0, None, "*"),
            ("OneOrMore", 1, None, "+"),
            ("ZeroOrN(4)", 0, Some(4), "*4"),
            ("OneOrN(3)", 1, Some(3), "+3"),
            ("ZeroOrN", 0, None, "*"),
        ];
        for (text, min, max, marker) in cases {
            let o: Occurrence = text.parse().unwrap();
            assert_eq!((o.min(), o.max(), o.marker().as_str()), (min, max, marker));
        }
        assert!("OneOrN(x)".parse::<Occurrence>().is_err());
        assert!("Many".parse::<Occurrence>().is_err());
    }

    #[test]
    fn child_lookup_prefers_named_over_unnamed() {
        const LEAF: NodeSchema = NodeSchema {
            name: Some("ID"),
            format: Format::Chr,
            access: AccessType::GET,
            occurrence: Occurrence::One,
            scope: Scope::Permanent,
            children: &[],
        };
        const ANY: NodeSchema = NodeSchema {
            name: None,
            format: Format::Int,
            ..LEAF
        };
        let root = NodeSchema {
            name: None,
            format: Format::Node,
            children: &[LEAF, ANY],
            ..LEAF
        };
        assert_eq!(root.child("ID").map(|c| c.format), Some(Format::Chr));
        assert_eq!(root.child("other").map(|c| c.format), Some(Format::Int));
        assert_eq!(root.descendant(&[]).map(|c| c.format), Some(Format::Node));
    }
}
