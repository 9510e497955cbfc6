//! The contract between an MO implementation and the runtime.
//!
//! An MO type is a struct per interior node (usually generated from a DDF by
//! `dm-codegen`) with `#[derive(ManagementObject)]` on the instance root and
//! `#[derive(MoNode)]` on the other interior nodes. The derive turns the
//! `#[dm(...)]` attributes into a static [`MoSchema`] and into path-based
//! accessors. The runtime does every access check against that schema
//! before it calls an MO: an MO only stores and acts.

use crate::node::{Format, MoSchema, NodeSchema};
use crate::value::{NodeData, Value};

/// Why an MO could not serve a request for a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoError {
    /// No node exists at the path (404).
    #[error("no node at `{0}`")]
    NotFound(String),
}

/// An interior node of an MO: its child definitions and read access to its
/// data by path.
pub trait MoNode {
    /// The definitions of this node's children, in DDF order.
    const CHILDREN: &'static [NodeSchema];

    /// Reads the node at `path` below this node (`[]` is this node itself).
    fn get_node(&self, path: &[&str]) -> Result<NodeData, MoError>;
}

/// One instance of a Management Object.
pub trait ManagementObject: Send + Sync {
    /// The MO definition this instance follows.
    fn schema(&self) -> &'static MoSchema;

    /// Reads the node at `path` below the instance root (`[]` is the root).
    fn get(&self, path: &[&str]) -> Result<NodeData, MoError>;
}

/// A Rust type that holds a leaf node's value.
pub trait LeafValue {
    /// The value in the node's format.
    fn to_value(&self, format: Format) -> Value;
}

impl LeafValue for String {
    fn to_value(&self, format: Format) -> Value {
        match format {
            Format::Xml => Value::Xml(self.clone()),
            Format::Date => Value::Date(self.clone()),
            Format::Time => Value::Time(self.clone()),
            _ => Value::Chr(self.clone()),
        }
    }
}

impl LeafValue for i64 {
    fn to_value(&self, _: Format) -> Value {
        Value::Int(*self)
    }
}

impl LeafValue for bool {
    fn to_value(&self, _: Format) -> Value {
        Value::Bool(*self)
    }
}

impl LeafValue for f64 {
    fn to_value(&self, _: Format) -> Value {
        Value::Float(*self)
    }
}

impl LeafValue for Vec<u8> {
    fn to_value(&self, format: Format) -> Value {
        match format {
            Format::B64 => Value::B64(self.clone()),
            _ => Value::Bin(self.clone()),
        }
    }
}

impl LeafValue for () {
    fn to_value(&self, _: Format) -> Value {
        Value::Null
    }
}

/// Helpers that derived code calls. Not a public API: may change at will.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn not_found(path: &[&str]) -> MoError {
        MoError::NotFound(path.join("/"))
    }

    /// A leaf read: only the empty remaining path names the leaf itself.
    pub fn leaf<T: LeafValue + ?Sized>(
        value: &T,
        format: Format,
        rest: &[&str],
        full: &[&str],
    ) -> Result<NodeData, MoError> {
        if rest.is_empty() {
            Ok(NodeData::Leaf(value.to_value(format)))
        } else {
            Err(not_found(full))
        }
    }

    /// An optional child that is absent.
    pub fn absent(full: &[&str]) -> Result<NodeData, MoError> {
        Err(not_found(full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_values_take_the_node_format() {
        assert_eq!("x".to_owned().to_value(Format::Xml), Value::Xml("x".into()));
        assert_eq!(vec![1u8].to_value(Format::B64), Value::B64(vec![1]));
        assert_eq!(().to_value(Format::Null), Value::Null);
        assert_eq!(
            __private::leaf(&5i64, Format::Int, &["x"], &["A", "x"]),
            Err(MoError::NotFound("A/x".into()))
        );
    }
}
