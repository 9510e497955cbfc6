//! Node values and MO data trees, with the JSON encoding of spec 7.2.1.4.
//!
//! MO data has one encoder, the byte writers `write_json`; the `to_json`
//! trees are read back from what they write. JSON strings (here and in the
//! Package#2 scan) find their end and escapes eight bytes at a time
//! (`first_to_escape`), for the session goal (a device session within 2x
//! of bare hyper): with a byte loop instead, a session of
//! `cargo bench -p dmctl --bench session` takes 45 k more instructions,
//! +7 % (callgrind, 2026-12-04).

use base64::Engine as _;
use serde_json::Value as Json;

use crate::node::{Format, NodeSchema};

/// The value of a leaf node, tagged with its format (spec 6.3.1).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Chr(String),
    Xml(String),
    Date(String),
    Time(String),
    B64(Vec<u8>),
    Bin(Vec<u8>),
}

/// Data that does not fit the format of its node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}`: expected {expected} data, got {found}")]
pub struct ValueError {
    /// Path of the offending node below the node converted.
    pub path: String,
    pub expected: Format,
    pub found: String,
}

fn json_kind(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(_) => "a boolean".into(),
        Json::Number(_) => "a number".into(),
        Json::String(_) => "a string".into(),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

impl Value {
    /// Reads a leaf value from its JSON form (spec 7.2.1.4): the inverse of
    /// [`Value::to_json`]. `None` when the JSON does not fit `format`.
    pub fn from_json(json: &Json, format: Format) -> Option<Value> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
        Some(match (format, json) {
            (Format::Null, Json::Null) => Value::Null,
            (Format::Bool, Json::Bool(b)) => Value::Bool(*b),
            (Format::Int, Json::Number(n)) => Value::Int(n.as_i64()?),
            (Format::Float, Json::Number(n)) => Value::Float(n.as_f64()?),
            (Format::Chr, Json::String(s)) => Value::Chr(s.clone()),
            (Format::Xml, Json::String(s)) => Value::Xml(s.clone()),
            (Format::Date, Json::String(s)) => Value::Date(s.clone()),
            (Format::Time, Json::String(s)) => Value::Time(s.clone()),
            (Format::B64, Json::String(s)) => Value::B64(b64(s)?),
            (Format::Bin, Json::String(s)) => Value::Bin(b64(s)?),
            _ => return None,
        })
    }

    /// Reads a leaf value sent bare (Appendix F, Appendix I: `text/plain`
    /// bodies): text for every format but bin, whose bytes are the value.
    pub fn from_bare(bytes: &[u8], format: Format) -> Option<Value> {
        if format == Format::Bin {
            return Some(Value::Bin(bytes.to_vec()));
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let t = text.trim();
        Some(match format {
            Format::Null => Value::Null,
            Format::Bool => match t {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return None,
            },
            Format::Int => Value::Int(t.parse().ok()?),
            Format::Float => Value::Float(t.parse().ok()?),
            Format::B64 => Value::B64(base64::engine::general_purpose::STANDARD.decode(t).ok()?),
            Format::Chr => Value::Chr(text.to_owned()),
            Format::Xml => Value::Xml(text.to_owned()),
            Format::Date => Value::Date(t.to_owned()),
            Format::Time => Value::Time(t.to_owned()),
            Format::Node | Format::Bin => return None,
        })
    }

    /// The format this value has.
    pub fn format(&self) -> Format {
        match self {
            Value::Null => Format::Null,
            Value::Bool(_) => Format::Bool,
            Value::Int(_) => Format::Int,
            Value::Float(_) => Format::Float,
            Value::Chr(_) => Format::Chr,
            Value::Xml(_) => Format::Xml,
            Value::Date(_) => Format::Date,
            Value::Time(_) => Format::Time,
            Value::B64(_) => Format::B64,
            Value::Bin(_) => Format::Bin,
        }
    }

    /// The JSON form of the value inside MOData (spec 7.2.1.4), as a tree:
    /// what [`Value::write_json`] writes.
    pub fn to_json(&self) -> Json {
        tree_of(|out| self.write_json(out))
    }

    /// The media type and bytes of the value sent bare, outside MO
    /// serialization (Appendix F: "the value of the leaf node MAY be directly
    /// embedded ... specifying the Media Type of the node value").
    pub fn to_bare(&self) -> (&'static str, Vec<u8>) {
        let mut out = Vec::new();
        let content_type = self.write_bare(&mut out);
        (content_type, out)
    }

    /// Appends the bytes of [`Value::to_bare`] to `out`; returns the media
    /// type.
    pub fn write_bare(&self, out: &mut Vec<u8>) -> &'static str {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(out, "{b}"),
            Value::Int(i) => write!(out, "{i}"),
            Value::Float(f) => write!(out, "{f}"),
            Value::Chr(s) | Value::Date(s) | Value::Time(s) | Value::Xml(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(())
            }
            Value::B64(b) => {
                let start = out.len();
                out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(b, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + written);
                Ok(())
            }
            Value::Bin(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
        };
        self.bare_media_type()
    }

    /// The media type of the value sent bare.
    pub fn bare_media_type(&self) -> &'static str {
        match self {
            Value::Xml(_) => "application/xml",
            Value::Bin(_) => "application/octet-stream",
            _ => "text/plain",
        }
    }
}

/// The name of a child in [`NodeData`].
pub type NodeName = std::borrow::Cow<'static, str>;

/// The data of a node as read from an MO: a leaf value, or an interior node
/// with its children in MO order.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeData {
    Leaf(Value),
    /// Children by name; names the DDF gives are borrowed from the MO's
    /// schema, only run-time names (instances of an un-named node) own
    /// their text.
    Interior(Vec<(NodeName, NodeData)>),
}

impl NodeData {
    /// Reads MO data for the node defined by `schema` (spec 7.2.1.4): an
    /// object for an interior node, whose members must each name a child
    /// of the definition; a value of the node's format for a leaf.
    pub fn from_json(json: &Json, schema: &NodeSchema) -> Result<NodeData, ValueError> {
        let mut path = Vec::new();
        from_json_at(json, schema, &mut path)
    }

    /// The JSON form used as the value of a MOData member (spec 7.2.1.4),
    /// as a tree (for the local API and the plugin ABI, which hand data
    /// on as JSON values): what [`NodeData::write_json`] writes.
    pub fn to_json(&self) -> Json {
        tree_of(|out| self.write_json(out))
    }

    /// Removes every descendant whose definition lacks the Get access type,
    /// so that it never leaves the device, not even inside its parent's data
    /// (spec 6.3.1.1; docs/architecture.md "Access control").
    /// `schema` is the definition of this node. Children with no definition
    /// are removed too: what the DDF does not describe is not exposed.
    pub fn retain_readable(&mut self, schema: &NodeSchema) {
        if let NodeData::Interior(children) = self {
            // MOs list children in schema order (absent optional ones
            // left out), so the search goes on from the last definition
            // found; sibling names are unique (the code generator refuses
            // duplicates), so this finds what `child` finds.
            let mut next = 0;
            children.retain_mut(|(name, child)| {
                let ahead = schema.children.get(next..).unwrap_or_default();
                let def = match ahead.iter().position(|d| d.name == Some(&**name)) {
                    Some(k) => {
                        next += k + 1;
                        ahead.get(k)
                    }
                    None => schema.child(name),
                };
                retain_child(def, child)
            });
        }
    }
}

/// The JSON that `write` writes, read back as a tree: the byte writers
/// are the one encoding of MO data, the trees are made from them.
fn tree_of(write: impl FnOnce(&mut Vec<u8>)) -> Json {
    let mut out = Vec::new();
    write(&mut out);
    // The writers write JSON (the tests below and the round-trip tests
    // hold them to it); null would only stand for a bug there.
    serde_json::from_slice(&out).unwrap_or(Json::Null)
}

/// Keeps `child` (made readable) when its definition allows Get.
fn retain_child(def: Option<&NodeSchema>, child: &mut NodeData) -> bool {
    match def {
        Some(def) if def.access.contains(crate::AccessType::GET) => {
            child.retain_readable(def);
            true
        }
        _ => false,
    }
}

/// Bytes a JSON string cannot hold as they are (RFC 8259 7): the control
/// characters, `"` and `\\`.
pub(crate) const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first byte of `s` that [`NEEDS_ESCAPE`]: a JSON
/// string's closing quote or what must be escaped in it, found eight bytes
/// at a time (the SWAR zero-byte test; the module's head gives its figure).
pub(crate) fn first_to_escape(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A quote, a backslash, or a byte below 0x20 (a byte with the high
        // bit set is never below 0x20, hence the `!w` mask).
        let hit = has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hit != 0 {
            // The lowest flagged byte is a true hit: a subtraction's
            // borrow only runs upwards, past the first real one.
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| NEEDS_ESCAPE[usize::from(*b)])
        .map(|i| at + i)
}

/// Writes `s` as a JSON string, escaped as serde_json escapes it (short
/// forms where JSON has them, else `\u00xx`), so either writer gives the
/// same bytes. Runs without escapes are copied whole.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(run) = first_to_escape(&bytes[start..]) {
        let i = start + run;
        let b = bytes[i];
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                let [high, low] = crate::hex::digits(b, crate::hex::Case::Lower);
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

impl Value {
    /// Appends the value's JSON form inside MOData (spec 7.2.1.4): bool,
    /// int and float as JSON types, b64 and bin as base64 strings, the rest
    /// as strings, null as JSON null.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            // Numbers as serde_json writes them (itoa, ryu); writing to a
            // Vec cannot fail.
            Value::Int(i) => {
                let _ = serde_json::to_writer(&mut *out, i);
            }
            Value::Float(f) if f.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, f);
            }
            // A non-finite float has no JSON form; null is the honest answer.
            Value::Float(_) => out.extend_from_slice(b"null"),
            Value::Chr(v) | Value::Xml(v) | Value::Date(v) | Value::Time(v) => {
                write_json_str(out, v);
            }
            Value::B64(b) | Value::Bin(b) => {
                write_json_str(out, &base64::engine::general_purpose::STANDARD.encode(b));
            }
        }
    }
}

impl NodeData {
    /// Appends the JSON form used as the value of a MOData member (spec
    /// 7.2.1.4): an interior node is an object of its children, a leaf its
    /// value. The MO data of every read goes out this way.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            NodeData::Leaf(v) => v.write_json(out),
            NodeData::Interior(children) => {
                out.push(b'{');
                for (i, (name, child)) in children.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, name);
                    out.push(b':');
                    child.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

fn from_json_at(
    json: &Json,
    schema: &NodeSchema,
    path: &mut Vec<String>,
) -> Result<NodeData, ValueError> {
    let mismatch = |path: &[String], expected: Format, found: String| ValueError {
        path: path.join("/"),
        expected,
        found,
    };
    if schema.format.is_interior() {
        let Json::Object(members) = json else {
            return Err(mismatch(path, Format::Node, json_kind(json)));
        };
        let mut children = Vec::with_capacity(members.len());
        for (name, value) in members {
            path.push(name.clone());
            let child = schema.child(name).ok_or_else(|| {
                mismatch(path, Format::Node, "a node the MO does not define".into())
            })?;
            // The schema's own name where the DDF gives one.
            let own: NodeName = child
                .name
                .map_or_else(|| name.clone().into(), NodeName::Borrowed);
            children.push((own, from_json_at(value, child, path)?));
            path.pop();
        }
        return Ok(NodeData::Interior(children));
    }
    Value::from_json(json, schema.format)
        .map(NodeData::Leaf)
        .ok_or_else(|| mismatch(path, schema.format, json_kind(json)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{AccessType, Occurrence, Scope};

    #[test]
    fn write_json_writes_the_json_of_7_2_1_4() {
        let tree = NodeData::Interior(vec![
            ("n".into(), NodeData::Leaf(Value::Null)),
            ("b".into(), NodeData::Leaf(Value::Bool(true))),
            ("i".into(), NodeData::Leaf(Value::Int(-7))),
            ("f".into(), NodeData::Leaf(Value::Float(0.1))),
            ("nan".into(), NodeData::Leaf(Value::Float(f64::NAN))),
            ("c".into(), NodeData::Leaf(Value::Chr("a\"\u{1}".into()))),
            ("x".into(), NodeData::Leaf(Value::Xml("<a/>".into()))),
            ("d".into(), NodeData::Leaf(Value::Date("2016-01-01".into()))),
            ("t".into(), NodeData::Leaf(Value::Time("10:00:00".into()))),
            ("64".into(), NodeData::Leaf(Value::B64(vec![0, 255, 7]))),
            ("bin".into(), NodeData::Leaf(Value::Bin(vec![1, 2]))),
            ("empty".into(), NodeData::Interior(Vec::new())),
            (
                "deep".into(),
                NodeData::Interior(vec![("k".into(), NodeData::Leaf(Value::Int(1)))]),
            ),
        ]);
        let mut written = Vec::new();
        tree.write_json(&mut written);
        // 7.2.1.4: JSON types for bool, int and float, base64 for b64 and
        // bin, strings for the rest; escapes as RFC 8259 writes them.
        assert_eq!(
            String::from_utf8(written).unwrap(),
            concat!(
                r#"{"n":null,"b":true,"i":-7,"f":0.1,"nan":null,"c":"a\"\u0001","#,
                r#""x":"<a/>","d":"2016-01-01","t":"10:00:00","64":"AP8H","bin":"AQI=","#,
                r#""empty":{},"deep":{"k":1}}"#
            )
        );
        assert_eq!(tree.to_json()["deep"], serde_json::json!({"k": 1}));
    }

    #[test]
    fn first_to_escape_finds_the_first_quote_escape_or_control_byte() {
        let slow = |s: &[u8]| s.iter().position(|b| NEEDS_ESCAPE[usize::from(*b)]);
        // Every stop byte at every position of strings up to 24 bytes,
        // among plain ASCII and bytes of multi-byte UTF-8, with a second
        // stop byte after it to tempt the borrow: the first is found.
        let stops = [b'"', b'\\', 0x00, 0x1f, b'\n'];
        let fillers = [b'a', b'~', 0x20, 0x21, 0x7f, 0x80, 0x9f, 0xa0, 0xff];
        for len in 0..24 {
            for filler in fillers {
                let plain = vec![filler; len];
                assert_eq!(first_to_escape(&plain), slow(&plain));
                assert_eq!(first_to_escape(&plain), None);
                for at in 0..len {
                    for stop in stops {
                        let mut s = plain.clone();
                        s[at] = stop;
                        if at + 1 < len {
                            s[at + 1] = b'"';
                        }
                        assert_eq!(first_to_escape(&s), Some(at), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..0x80).map(char::from).collect();
        every_ascii.push_str("é€😀\u{7f}\u{80}\u{2028}");
        // Escapes inside and across the eight-byte words of the scan.
        let spread = "0123456\"89abcdef\n123456789\\é\u{1f}xyz0123456789abcdefgh\t";
        for s in [
            every_ascii.as_str(),
            "",
            "plain",
            "\"",
            "a\\b",
            "\u{0}end",
            spread,
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn json_encoding_follows_7_2_1_4() {
        assert_eq!(Value::Int(7).to_json(), serde_json::json!(7));
        assert_eq!(Value::Bool(true).to_json(), serde_json::json!(true));
        assert_eq!(Value::Chr("en".into()).to_json(), serde_json::json!("en"));
        assert_eq!(
            Value::Bin(b"hi".to_vec()).to_json(),
            serde_json::json!("aGk=")
        );
        assert_eq!(Value::Float(f64::NAN).to_json(), Json::Null);
        let tree = NodeData::Interior(vec![
            ("DevID".into(), NodeData::Leaf(Value::Chr("IMEI:1".into()))),
            ("Ext".into(), NodeData::Interior(vec![])),
        ]);
        assert_eq!(tree.to_json().to_string(), r#"{"DevID":"IMEI:1","Ext":{}}"#);
    }

    #[test]
    fn json_and_bare_values_read_back_by_format() {
        for v in [
            Value::Null,
            Value::Bool(false),
            Value::Int(-3),
            Value::Float(1.5),
            Value::Chr("a".into()),
            Value::Xml("<a/>".into()),
            Value::Date("2026-11-22".into()),
            Value::Time("10:00:00".into()),
            Value::B64(vec![0, 255]),
            Value::Bin(vec![1, 2, 3]),
        ] {
            assert_eq!(Value::from_json(&v.to_json(), v.format()), Some(v.clone()));
            let (_, bare) = v.to_bare();
            assert_eq!(
                Value::from_bare(&bare, v.format()),
                Some(v.clone()),
                "bare {v:?}"
            );
        }
        assert_eq!(Value::from_json(&serde_json::json!("1"), Format::Int), None);
        assert_eq!(Value::from_json(&serde_json::json!(1.5), Format::Int), None);
        assert_eq!(
            Value::from_json(&serde_json::json!("@@"), Format::Bin),
            None
        );
        assert_eq!(Value::from_bare(b"yes", Format::Bool), None);
    }

    #[test]
    fn mo_data_reads_against_the_schema() {
        const ID: NodeSchema = NodeSchema {
            name: Some("ID"),
            format: Format::Int,
            access: AccessType::GET,
            occurrence: Occurrence::One,
            scope: Scope::Dynamic,
            children: &[],
        };
        const ENTRY: NodeSchema = NodeSchema {
            name: None,
            format: Format::Node,
            children: &[ID],
            ..ID
        };
        let root = NodeSchema {
            name: None,
            format: Format::Node,
            children: &[ENTRY],
            ..ID
        };
        let json = serde_json::json!({"a": {"ID": 1}, "b": {"ID": 2}});
        let data = NodeData::from_json(&json, &root).unwrap();
        assert_eq!(data.to_json(), json);
        let e = NodeData::from_json(&serde_json::json!({"a": {"ID": "x"}}), &root).unwrap_err();
        assert_eq!((e.path.as_str(), e.expected), ("a/ID", Format::Int));
        let e = NodeData::from_json(&serde_json::json!({"a": {"Nope": 1}}), &root).unwrap_err();
        assert_eq!(e.path, "a/Nope");
        assert!(NodeData::from_json(&serde_json::json!([1]), &root).is_err());
    }

    #[test]
    fn nodes_without_get_are_pruned_from_parent_data() {
        const SECRET: NodeSchema = NodeSchema {
            name: Some("Secret"),
            format: Format::Bin,
            access: AccessType::REPLACE,
            occurrence: Occurrence::One,
            scope: Scope::Dynamic,
            children: &[],
        };
        const NAME: NodeSchema = NodeSchema {
            name: Some("Name"),
            access: AccessType::GET,
            format: Format::Chr,
            ..SECRET
        };
        let root = NodeSchema {
            name: None,
            format: Format::Node,
            access: AccessType::GET,
            children: &[SECRET, NAME],
            ..SECRET
        };
        let mut data = NodeData::Interior(vec![
            ("Secret".into(), NodeData::Leaf(Value::Bin(vec![1, 2]))),
            ("Name".into(), NodeData::Leaf(Value::Chr("a".into()))),
            ("Undeclared".into(), NodeData::Leaf(Value::Chr("b".into()))),
        ]);
        data.retain_readable(&root);
        assert_eq!(data.to_json().to_string(), r#"{"Name":"a"}"#);
    }

    #[test]
    fn pruning_finds_definitions_in_any_order_and_the_unnamed_child() {
        const LEAF: NodeSchema = NodeSchema {
            name: Some("A"),
            format: Format::Chr,
            access: AccessType::GET,
            occurrence: Occurrence::ZeroOrOne,
            scope: Scope::Dynamic,
            children: &[],
        };
        const HIDDEN: NodeSchema = NodeSchema {
            name: Some("B"),
            access: AccessType::REPLACE,
            ..LEAF
        };
        const C: NodeSchema = NodeSchema {
            name: Some("C"),
            ..LEAF
        };
        const ANY: NodeSchema = NodeSchema { name: None, ..LEAF };
        let root = NodeSchema {
            name: None,
            format: Format::Node,
            children: &[LEAF, HIDDEN, C, ANY],
            ..LEAF
        };
        let chr = |s: &str| NodeData::Leaf(Value::Chr(s.into()));
        let names = |data: &NodeData| match data {
            NodeData::Interior(c) => c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            NodeData::Leaf(_) => Vec::new(),
        };
        // Schema order with "A" absent; then out of order; then names only
        // the un-named child takes, a hidden one among them.
        for (given, kept) in [
            (vec!["B", "C", "x"], vec!["C", "x"]),
            (vec!["C", "B", "A", "y"], vec!["C", "A", "y"]),
            (vec!["x", "C", "A", "B"], vec!["x", "C", "A"]),
        ] {
            let mut data = NodeData::Interior(
                given
                    .iter()
                    .map(|n| (n.to_string().into(), chr(n)))
                    .collect(),
            );
            data.retain_readable(&root);
            assert_eq!(names(&data), kept, "{given:?}");
        }
    }

    #[test]
    fn bare_values_as_appendix_f_sends_them() {
        let cases = [
            (Value::Null, "text/plain", &b""[..]),
            (Value::Bool(true), "text/plain", b"true"),
            (Value::Int(-42), "text/plain", b"-42"),
            (Value::Float(1.5), "text/plain", b"1.5"),
            (Value::Chr("IMEI:1".into()), "text/plain", b"IMEI:1"),
            (Value::Xml("<a/>".into()), "application/xml", b"<a/>"),
            (
                Value::B64(vec![0xde, 0xad, 0xbe, 0xef, 1]),
                "text/plain",
                b"3q2+7wE=",
            ),
            (Value::B64(Vec::new()), "text/plain", b""),
            (
                Value::Bin(vec![0, 255]),
                "application/octet-stream",
                &[0, 255],
            ),
        ];
        for (value, content_type, bytes) in cases {
            // Appended after what is already there.
            let mut out = b"x".to_vec();
            assert_eq!(value.write_bare(&mut out), content_type, "{value:?}");
            assert_eq!(&out[1..], bytes, "{value:?}");
            assert_eq!(value.to_bare(), (content_type, bytes.to_vec()));
        }
    }
}
