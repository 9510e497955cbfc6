//! Node values and MO data trees, with the JSON encoding of spec 7.2.1.4.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

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

impl Value {
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

    /// The JSON form of the value inside MOData (spec 7.2.1.4): bool, int and
    /// float as JSON types, b64 and bin as base64 strings, the rest as
    /// strings, null as JSON null.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            // A non-finite float has no JSON form; null is the honest answer.
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Chr(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s) => {
                Json::String(s.clone())
            }
            Value::B64(b) | Value::Bin(b) => {
                Json::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    /// The media type and bytes of the value sent bare, outside MO
    /// serialization (Appendix F: "the value of the leaf node MAY be directly
    /// embedded ... specifying the Media Type of the node value").
    pub fn to_bare(&self) -> (&'static str, Vec<u8>) {
        match self {
            Value::Null => ("text/plain", Vec::new()),
            Value::Bool(b) => ("text/plain", b.to_string().into_bytes()),
            Value::Int(i) => ("text/plain", i.to_string().into_bytes()),
            Value::Float(f) => ("text/plain", f.to_string().into_bytes()),
            Value::Chr(s) | Value::Date(s) | Value::Time(s) => {
                ("text/plain", s.clone().into_bytes())
            }
            Value::Xml(s) => ("application/xml", s.clone().into_bytes()),
            Value::B64(b) => (
                "text/plain",
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .into_bytes(),
            ),
            Value::Bin(b) => ("application/octet-stream", b.clone()),
        }
    }
}

/// The data of a node as read from an MO: a leaf value, or an interior node
/// with its children in MO order.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeData {
    Leaf(Value),
    Interior(Vec<(String, NodeData)>),
}

impl NodeData {
    /// The JSON form used as the value of a MOData member (spec 7.2.1.4):
    /// an interior node is an object of its children, a leaf its value.
    pub fn to_json(&self) -> Json {
        match self {
            NodeData::Leaf(v) => v.to_json(),
            NodeData::Interior(children) => Json::Object(
                children
                    .iter()
                    .map(|(name, child)| (name.clone(), child.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    /// Removes every descendant whose definition lacks the Get access type,
    /// so that it never leaves the device, not even inside its parent's data
    /// (spec 6.3.1.1; ARCHITECTURE "nodes without Get never leave").
    /// `schema` is the definition of this node. Children with no definition
    /// are removed too: what the DDF does not describe is not exposed.
    pub fn retain_readable(&mut self, schema: &NodeSchema) {
        if let NodeData::Interior(children) = self {
            children.retain_mut(|(name, child)| match schema.child(name) {
                Some(def) if def.access.contains(crate::AccessType::GET) => {
                    child.retain_readable(def);
                    true
                }
                _ => false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{AccessType, Occurrence, Scope};

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
}
