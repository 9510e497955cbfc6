//! The contract between an MO implementation and the runtime.
//!
//! An MO type is a struct per interior node (usually generated from a DDF by
//! `dm-codegen`) with `#[derive(ManagementObject)]` on the instance root and
//! `#[derive(MoNode)]` on the other interior nodes. The derive turns the
//! `#[dm(...)]` attributes into a static [`MoSchema`] and into path-based
//! accessors. The runtime does every access check against that schema
//! before it calls an MO: an MO only stores and acts.

use crate::live::{ChangeReporter, Completion};
use crate::map::{NodeMap, NodeMapError};
use crate::node::{Format, MoSchema, NodeSchema};
use crate::status::StatusCode;
use crate::value::{NodeData, Value};

/// Why an MO could not serve a request for a node. Paths are relative to
/// the node the request was made on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoError {
    /// No node exists at the path.
    #[error("no node at `{0}`")]
    NotFound(String),
    /// The data names a node the MO definition does not have.
    #[error("the MO defines no node `{0}`")]
    UnknownNode(String),
    /// A required node cannot be deleted (6.3.1.2).
    #[error("`{0}` is a required node")]
    Required(String),
    /// Data to create a node lacks one of its required children.
    #[error("`{0}` is required but missing from the data")]
    MissingNode(String),
    /// A value of the wrong format for its node.
    #[error("`{path}` takes {expected} data, got {found}")]
    BadValue {
        path: String,
        expected: Format,
        found: String,
    },
    /// An occurrence bound or a run-time node name was violated.
    #[error("`{path}`: {source}")]
    Occurrence { path: String, source: NodeMapError },
    /// The node cannot be executed (no Exec hook for it).
    #[error("`{0}` is not executable")]
    NotExecutable(String),
    /// The MO's validate hook rejected the new state.
    #[error("rejected by the MO: {0}")]
    Invalid(String),
    /// The MO failed while acting.
    #[error("MO failure: {0}")]
    Failed(String),
}

impl MoError {
    /// The Appendix C status for this error when it answers a command.
    /// Data the device cannot accept is 415 (HGET: "the retrieved data is
    /// unrecognized"); a full NodeMap is 506 ("not enough storage space").
    pub fn status(&self) -> StatusCode {
        match self {
            MoError::NotFound(_) => StatusCode::NOT_FOUND,
            MoError::Required(_) | MoError::NotExecutable(_) => StatusCode::COMMAND_NOT_ALLOWED,
            MoError::UnknownNode(_)
            | MoError::MissingNode(_)
            | MoError::BadValue { .. }
            | MoError::Invalid(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            MoError::Occurrence { source, .. } => match source {
                NodeMapError::Full { .. } => StatusCode::DEVICE_FULL,
                NodeMapError::AtMinimum { .. } => StatusCode::COMMAND_NOT_ALLOWED,
                NodeMapError::BadName(_) => StatusCode::BAD_REQUEST,
            },
            MoError::Failed(_) => StatusCode::INTERNAL_ERROR,
        }
    }
}

/// What an EXEC asks of an MO (spec 5.3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The server asked for asynchronous reporting (EXEC with a ServerURI,
    /// 5.4.1): the MO may answer [`ExecOutcome::Started`].
    pub asynchronous: bool,
    /// With `asynchronous`: the handle to finish the operation with once
    /// it ends (the MO keeps a clone when it answers `Started`).
    pub completion: Option<Completion>,
}

/// How an EXEC went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Done (200).
    Done,
    /// Started (202 in Package#3): the MO finishes the request's
    /// [`Completion`] when the operation ends, and its final status goes
    /// to the server in a Generic Alert (5.4.1).
    Started,
}

/// An interior node of an MO: its child definitions and access to its data
/// by path. Paths are relative to this node; `[]` is the node itself.
pub trait MoNode: Sized {
    /// The definitions of this node's children, in DDF order.
    const CHILDREN: &'static [NodeSchema];

    /// Some node of this one (or below) is read from the device at every
    /// read (`#[dm(live)]`): the MO owns that data.
    const LIVE: bool = false;

    /// Reads the node at `path`.
    fn get_node(&self, path: &[&str]) -> Result<NodeData, MoError>;

    /// Writes `data` at `path`: a leaf's value, or an interior node's
    /// children. Children absent from `data` are kept (merge), and named
    /// instances of un-named nodes are created as needed.
    fn put_node(&mut self, path: &[&str], data: &NodeData) -> Result<(), MoError>;

    /// Deletes the node at `path` (never `[]`) with everything below it.
    fn delete_node(&mut self, path: &[&str]) -> Result<(), MoError>;

    /// Builds this node from data that holds every required child.
    fn from_node(data: &NodeData) -> Result<Self, MoError>;
}

/// What an MO author supplies beyond the data: EXEC and validation. The
/// code generator emits an implementation that forwards to a typed
/// behaviour trait with one method per Exec node.
pub trait MoHooks {
    /// Executes the node at `path` (spec 5.3.5).
    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        let _ = request;
        Err(MoError::NotExecutable(path.join("/")))
    }

    /// Checks the whole instance after a write, before it is committed; an
    /// error rolls the write back.
    fn validate(&self) -> Result<(), MoError> {
        Ok(())
    }

    /// Carries the instance's state, as the validated write left it, to
    /// the device. Called once per command and instance, inside the
    /// command's transaction; an error fails the command, and the runtime
    /// then puts the previous state back and commits that again, so the
    /// device ends as before the command (also when a later instance of
    /// the same command fails).
    fn commit(&mut self) -> Result<(), MoError> {
        Ok(())
    }

    /// At a start, an EXEC of `path` that this instance answered
    /// `Started` before the agent stopped has not finished: `completion`
    /// is its new handle. The default keeps nothing: the EXEC then ends
    /// with the runtime's timeout status.
    fn resume_exec(&mut self, path: &[&str], completion: Completion) {
        let _ = (path, completion);
    }

    /// Gives the instance the handle it reports changes on the device
    /// with; called once, when the runtime takes the instance.
    fn attach(&mut self, reporter: ChangeReporter) {
        let _ = reporter;
    }
}

/// One change of a write command, with its path below the instance root.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Write data at the path (see [`MoNode::put_node`]).
    Put { path: Vec<String>, data: NodeData },
    /// Delete the node at the path with its descendants.
    Delete { path: Vec<String> },
}

/// One instance of a Management Object, as the runtime drives it.
pub trait ManagementObject: Send + Sync + 'static {
    /// The MO definition this instance follows.
    fn schema(&self) -> &'static MoSchema;

    /// Reads the node at `path` below the instance root (`[]` is the root).
    fn get(&self, path: &[&str]) -> Result<NodeData, MoError>;

    /// Applies every change of one command, then the MO's validate hook,
    /// all or nothing: on error the instance is left exactly as it was.
    fn apply(&mut self, changes: &[Change]) -> Result<(), MoError>;

    /// Executes the node at `path`.
    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError>;

    /// See [`MoHooks::commit`].
    fn commit(&mut self) -> Result<(), MoError> {
        Ok(())
    }

    /// See [`MoHooks::resume_exec`].
    fn resume_exec(&mut self, path: &[&str], completion: Completion) {
        let _ = (path, completion);
    }

    /// See [`MoHooks::attach`].
    fn attach(&mut self, reporter: ChangeReporter) {
        let _ = reporter;
    }

    /// The MO owns its data: some node is read from the device at every
    /// read. The runtime keeps none of it in the state directory, and a
    /// `cv` never answers 304 for it (spec 11: the runtime cannot tell
    /// that device data did not change).
    fn owns_data(&self) -> bool {
        false
    }

    /// The derive's fast paths for the runtime (see
    /// [`__private::FastAccess`]); `None`, the default, makes the runtime
    /// read through [`ManagementObject::get`]. Not for MO authors.
    #[doc(hidden)]
    fn __fast(&self) -> Option<&dyn __private::FastAccess> {
        None
    }
}

// How the runtime reaches the derive's fast paths through any instance.
// They are inherent methods of the trait object, not trait methods, so an
// MO author neither sees nor implements them: a derived MO answers from
// its fields (through `__fast`), any other MO through `get`, with the same
// result either way (checked by dm-core/tests/derive.rs and the agent's
// tests over the standard MOs).
#[doc(hidden)]
impl dyn ManagementObject {
    /// True when the instance has a node at `path`, as `get` would find
    /// it. ClientURI resolution (spec 6.1.2) asks this for every segment,
    /// so a derived MO answers without reading the data.
    #[doc(hidden)]
    pub fn contains(&self, path: &[&str]) -> bool {
        match self.__fast() {
            Some(fast) => fast.contains(path),
            None => self.get(path).is_ok(),
        }
    }

    /// Appends the MOData value a GET of the instance root gives (spec
    /// 7.2.1.4): the bytes [`NodeData::write_json`] writes for `get(&[])`
    /// once [`NodeData::retain_readable`] has left out the nodes without
    /// Get, written straight from a derived MO's fields. Returns false,
    /// writing nothing, for an MO without that writer: the caller then
    /// reads with `get`.
    #[doc(hidden)]
    pub fn write_root_json(&self, out: &mut Vec<u8>) -> bool {
        self.__fast().is_some_and(|fast| fast.write_root_json(out))
    }
}

/// A Rust type that holds a leaf node's value.
pub trait LeafValue: Sized {
    /// The value in the node's format.
    fn to_value(&self, format: Format) -> Value;

    /// The Rust value of `value`, or `None` when the format does not fit.
    fn from_value(value: &Value) -> Option<Self>;

    /// Appends the JSON of `self.to_value(format)`; types whose value
    /// would be a copy write it without one.
    fn write_json(&self, format: Format, out: &mut Vec<u8>) {
        self.to_value(format).write_json(out);
    }
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

    // Every text format is a JSON string (see `Value::write_json`).
    fn write_json(&self, _: Format, out: &mut Vec<u8>) {
        crate::value::write_json_str(out, self);
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Chr(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl LeafValue for i64 {
    fn to_value(&self, _: Format) -> Value {
        Value::Int(*self)
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl LeafValue for bool {
    fn to_value(&self, _: Format) -> Value {
        Value::Bool(*self)
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl LeafValue for f64 {
    fn to_value(&self, _: Format) -> Value {
        Value::Float(*self)
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            // An integer is a valid float value.
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl LeafValue for Vec<u8> {
    fn to_value(&self, format: Format) -> Value {
        match format {
            Format::B64 => Value::B64(self.clone()),
            _ => Value::Bin(self.clone()),
        }
    }

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::B64(b) | Value::Bin(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl LeafValue for () {
    fn to_value(&self, _: Format) -> Value {
        Value::Null
    }

    fn from_value(value: &Value) -> Option<Self> {
        matches!(value, Value::Null).then_some(())
    }
}

/// Helpers that derived code calls. Not a public API: may change at will.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// The node-level fast paths the derive gives every node it derives,
    /// for the runtime rather than for MO authors. The defaults read
    /// through [`MoNode::get_node`]: a hand-written node that a derived
    /// parent holds implements this trait with an empty body.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is an interior node of a derived MO but is not derived",
        note = "derive `MoNode` for it, or write `impl dm_core::__private::FastNode for {Self} {{}}`"
    )]
    pub trait FastNode: MoNode {
        /// True when there is a node at `path`, as `get_node` would find
        /// it. The derive answers without reading the data.
        fn has_node(&self, path: &[&str]) -> bool {
            self.get_node(path).is_ok()
        }

        /// Appends this node's JSON as a GET writes it: the children with
        /// Get (by [`MoNode::CHILDREN`]), in the bytes of `get_node(&[])`,
        /// then [`NodeData::retain_readable`] and [`NodeData::write_json`].
        /// The derive writes it from the fields, without building the tree.
        fn write_readable_json(&self, out: &mut Vec<u8>) -> Result<(), MoError> {
            let mut data = self.get_node(&[])?;
            data.retain_readable(&NodeSchema {
                name: None,
                format: Format::Node,
                access: crate::AccessType::GET,
                occurrence: crate::Occurrence::One,
                scope: crate::Scope::Permanent,
                children: Self::CHILDREN,
            });
            data.write_json(out);
            Ok(())
        }
    }

    /// What a derived MO hands the runtime from
    /// [`ManagementObject::__fast`]: the instance-level form of
    /// [`FastNode`], callable through a trait object.
    pub trait FastAccess {
        /// [`FastNode::has_node`] of the instance root.
        fn contains(&self, path: &[&str]) -> bool;

        /// [`FastNode::write_readable_json`] of the instance root; on error
        /// nothing is written and the answer is false.
        fn write_root_json(&self, out: &mut Vec<u8>) -> bool;
    }

    impl<T: FastNode> FastAccess for T {
        fn contains(&self, path: &[&str]) -> bool {
            self.has_node(path)
        }

        fn write_root_json(&self, out: &mut Vec<u8>) -> bool {
            let start = out.len();
            let written = self.write_readable_json(out).is_ok();
            if !written {
                out.truncate(start);
            }
            written
        }
    }

    pub fn not_found(path: &[&str]) -> MoError {
        MoError::NotFound(path.join("/"))
    }

    /// [`ManagementObject::apply`] for derived MOs: the changes go to a
    /// copy, which replaces the instance only once it validated.
    pub fn apply<T: MoNode + MoHooks + Clone>(
        this: &mut T,
        changes: &[Change],
    ) -> Result<(), MoError> {
        let mut next = this.clone();
        for change in changes {
            match change {
                Change::Put { path, data } => {
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    next.put_node(&path, data)?;
                }
                Change::Delete { path } => {
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    next.delete_node(&path)?;
                }
            }
        }
        MoHooks::validate(&next)?;
        *this = next;
        Ok(())
    }

    /// Starts member `name` of a JSON object being written: a comma before
    /// all but the first, the quoted name, the colon.
    pub fn json_member(out: &mut Vec<u8>, first: &mut bool, name: &str) {
        if !std::mem::take(first) {
            out.push(b',');
        }
        crate::value::write_json_str(out, name);
        out.push(b':');
    }

    /// A leaf read: only the empty remaining path names the leaf itself.
    pub fn leaf<T: LeafValue>(
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
    pub fn absent<T>(full: &[&str]) -> Result<T, MoError> {
        Err(not_found(full))
    }

    fn describe(data: &NodeData) -> String {
        match data {
            NodeData::Leaf(v) => format!("{} data", v.format()),
            NodeData::Interior(_) => "an interior node".to_owned(),
        }
    }

    fn leaf_value<T: LeafValue>(
        data: &NodeData,
        format: Format,
        path: &[&str],
    ) -> Result<T, MoError> {
        let bad = || MoError::BadValue {
            path: path.join("/"),
            expected: format,
            found: describe(data),
        };
        match data {
            NodeData::Leaf(v) => T::from_value(v).ok_or_else(bad),
            NodeData::Interior(_) => Err(bad()),
        }
    }

    fn occurrence(path: &[&str]) -> impl FnOnce(NodeMapError) -> MoError {
        let path = path.join("/");
        move |source| MoError::Occurrence { path, source }
    }

    /// A fresh interior node for a write below it: built from no data, so
    /// it must have no required child.
    fn fresh<T: MoNode>(rest: &[&str], data: &NodeData) -> Result<T, MoError> {
        if rest.is_empty() {
            T::from_node(data)
        } else {
            let mut node = T::from_node(&NodeData::Interior(Vec::new()))?;
            node.put_node(rest, data)?;
            Ok(node)
        }
    }

    pub fn put_children<N: MoNode>(
        node: &mut N,
        data: &NodeData,
        path: &[&str],
    ) -> Result<(), MoError> {
        match data {
            NodeData::Interior(children) => {
                for (name, child) in children {
                    node.put_node(&[&**name], child)?;
                }
                Ok(())
            }
            NodeData::Leaf(v) => Err(MoError::BadValue {
                path: path.join("/"),
                expected: Format::Node,
                found: format!("{} data", v.format()),
            }),
        }
    }

    pub fn put_leaf<T: LeafValue>(
        slot: &mut T,
        format: Format,
        rest: &[&str],
        data: &NodeData,
        path: &[&str],
    ) -> Result<(), MoError> {
        if !rest.is_empty() {
            return Err(not_found(path));
        }
        *slot = leaf_value(data, format, path)?;
        Ok(())
    }

    pub fn put_opt_leaf<T: LeafValue>(
        slot: &mut Option<T>,
        format: Format,
        rest: &[&str],
        data: &NodeData,
        path: &[&str],
    ) -> Result<(), MoError> {
        if !rest.is_empty() {
            return Err(not_found(path));
        }
        *slot = Some(leaf_value(data, format, path)?);
        Ok(())
    }

    pub fn put_map_leaf<T: LeafValue, const MIN: usize, const MAX: usize>(
        map: &mut NodeMap<T, MIN, MAX>,
        format: Format,
        name: &str,
        rest: &[&str],
        data: &NodeData,
        path: &[&str],
    ) -> Result<(), MoError> {
        if !rest.is_empty() {
            return Err(not_found(path));
        }
        let value = leaf_value(data, format, path)?;
        map.insert(name, value).map_err(occurrence(path))?;
        Ok(())
    }

    pub fn put_opt_node<T: MoNode>(
        slot: &mut Option<T>,
        rest: &[&str],
        data: &NodeData,
    ) -> Result<(), MoError> {
        match slot {
            Some(node) => node.put_node(rest, data),
            None => {
                *slot = Some(fresh(rest, data)?);
                Ok(())
            }
        }
    }

    pub fn put_map_node<T: MoNode, const MIN: usize, const MAX: usize>(
        map: &mut NodeMap<T, MIN, MAX>,
        name: &str,
        rest: &[&str],
        data: &NodeData,
        path: &[&str],
    ) -> Result<(), MoError> {
        if let Some(node) = map.get_mut(name) {
            return node.put_node(rest, data);
        }
        let node = fresh(rest, data)?;
        map.insert(name, node).map_err(occurrence(path))?;
        Ok(())
    }

    pub fn unknown<T>(path: &[&str]) -> Result<T, MoError> {
        Err(MoError::UnknownNode(path.join("/")))
    }

    pub fn required<T>(path: &[&str]) -> Result<T, MoError> {
        Err(MoError::Required(path.join("/")))
    }

    pub fn delete_opt<T>(slot: &mut Option<T>, path: &[&str]) -> Result<(), MoError> {
        match slot.take() {
            Some(_) => Ok(()),
            None => Err(not_found(path)),
        }
    }

    pub fn delete_in_opt<T: MoNode>(
        slot: &mut Option<T>,
        rest: &[&str],
        path: &[&str],
    ) -> Result<(), MoError> {
        match slot {
            Some(node) => node.delete_node(rest),
            None => Err(not_found(path)),
        }
    }

    pub fn delete_map<T, const MIN: usize, const MAX: usize>(
        map: &mut NodeMap<T, MIN, MAX>,
        name: &str,
        path: &[&str],
    ) -> Result<(), MoError> {
        match map.remove(name) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(not_found(path)),
            Err(e) => Err(occurrence(path)(e)),
        }
    }

    pub fn delete_in_map<T: MoNode, const MIN: usize, const MAX: usize>(
        map: &mut NodeMap<T, MIN, MAX>,
        name: &str,
        rest: &[&str],
        path: &[&str],
    ) -> Result<(), MoError> {
        match map.get_mut(name) {
            Some(node) => node.delete_node(rest),
            None => Err(not_found(path)),
        }
    }

    /// The children in `data`, checking that each names a node of the
    /// definition: a named child in `named`, or else an instance of the
    /// un-named child when there is one.
    pub fn children_of<'a>(
        data: &'a NodeData,
        named: &[&str],
        has_unnamed: bool,
    ) -> Result<&'a [(crate::NodeName, NodeData)], MoError> {
        match data {
            NodeData::Interior(children) => {
                if !has_unnamed {
                    if let Some((n, _)) = children.iter().find(|(n, _)| !named.contains(&&**n)) {
                        return Err(MoError::UnknownNode(n.to_string()));
                    }
                }
                Ok(children)
            }
            NodeData::Leaf(v) => Err(MoError::BadValue {
                path: String::new(),
                expected: Format::Node,
                found: format!("{} data", v.format()),
            }),
        }
    }

    fn find<'a>(children: &'a [(crate::NodeName, NodeData)], name: &str) -> Option<&'a NodeData> {
        children.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    pub fn leaf_from<T: LeafValue>(
        children: &[(crate::NodeName, NodeData)],
        name: &str,
        format: Format,
    ) -> Result<T, MoError> {
        match find(children, name) {
            Some(d) => leaf_value(d, format, &[name]),
            None => Err(MoError::MissingNode(name.to_owned())),
        }
    }

    pub fn opt_leaf_from<T: LeafValue>(
        children: &[(crate::NodeName, NodeData)],
        name: &str,
        format: Format,
    ) -> Result<Option<T>, MoError> {
        find(children, name)
            .map(|d| leaf_value(d, format, &[name]))
            .transpose()
    }

    pub fn node_from<T: MoNode>(
        children: &[(crate::NodeName, NodeData)],
        name: &str,
    ) -> Result<T, MoError> {
        match find(children, name) {
            Some(d) => T::from_node(d),
            None => Err(MoError::MissingNode(name.to_owned())),
        }
    }

    pub fn opt_node_from<T: MoNode>(
        children: &[(crate::NodeName, NodeData)],
        name: &str,
    ) -> Result<Option<T>, MoError> {
        find(children, name).map(T::from_node).transpose()
    }

    fn map_from<T, const MIN: usize, const MAX: usize>(
        children: &[(crate::NodeName, NodeData)],
        named: &[&str],
        mut convert: impl FnMut(&str, &NodeData) -> Result<T, MoError>,
    ) -> Result<NodeMap<T, MIN, MAX>, MoError> {
        let mut map = NodeMap::new();
        for (name, data) in children.iter().filter(|(n, _)| !named.contains(&&**n)) {
            let value = convert(name, data)?;
            map.insert(name.to_string(), value)
                .map_err(occurrence(&[&**name]))?;
        }
        if !map.meets_minimum() {
            return Err(MoError::MissingNode(format!("at least {MIN} instance(s)")));
        }
        Ok(map)
    }

    pub fn map_leaf_from<T: LeafValue, const MIN: usize, const MAX: usize>(
        children: &[(crate::NodeName, NodeData)],
        named: &[&str],
        format: Format,
    ) -> Result<NodeMap<T, MIN, MAX>, MoError> {
        map_from(children, named, |name, d| leaf_value(d, format, &[name]))
    }

    pub fn map_node_from<T: MoNode, const MIN: usize, const MAX: usize>(
        children: &[(crate::NodeName, NodeData)],
        named: &[&str],
    ) -> Result<NodeMap<T, MIN, MAX>, MoError> {
        map_from(children, named, |_, d| T::from_node(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_appendix_c_statuses() {
        assert_eq!(
            MoError::NotFound("a".into()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            MoError::Required("a".into()).status(),
            StatusCode::COMMAND_NOT_ALLOWED
        );
        let full = MoError::Occurrence {
            path: "a".into(),
            source: NodeMapError::Full {
                name: "x".into(),
                max: 1,
            },
        };
        assert_eq!(full.status(), StatusCode::DEVICE_FULL);
        assert_eq!(
            MoError::Failed("x".into()).status(),
            StatusCode::INTERNAL_ERROR
        );
    }

    #[test]
    fn leaf_values_convert_both_ways() {
        assert_eq!(
            String::from_value(&Value::Xml("x".into())),
            Some("x".into())
        );
        assert_eq!(i64::from_value(&Value::Chr("1".into())), None);
        assert_eq!(f64::from_value(&Value::Int(2)), Some(2.0));
        assert_eq!(<()>::from_value(&Value::Null), Some(()));
    }

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
