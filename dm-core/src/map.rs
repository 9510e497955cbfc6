//! `NodeMap`: the instances of an un-named node (spec 6.3.1.3), keyed by
//! the names they get at run time, in the order they were added, with the
//! occurrence bounds of the DDF enforced (6.3.1: "The DM Server can add the
//! node up to the number specified as the part of MO specification").

use std::collections::HashMap;
use std::fmt;

/// Why a [`NodeMap`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeMapError {
    #[error("`{0}` is not a node name (1*unreserved, spec 6.1.1)")]
    BadName(String),
    #[error("at most {max} instance(s) allowed; cannot add `{name}`")]
    Full { name: String, max: usize },
    #[error("at least {min} instance(s) required; cannot remove `{name}`")]
    AtMinimum { name: String, min: usize },
}

/// The `MAX` of a [`NodeMap`] without upper bound (occurrence `ZeroOrMore`,
/// `OneOrMore`, or `ZeroOrN`/`OneOrN` without a count): no map can hold
/// `usize::MAX` entries, so the bound never refuses an insert.
pub const UNBOUNDED: usize = usize::MAX;

/// Instances of an un-named node. `MIN` and `MAX` are the occurrence bounds
/// (spec 6.3.1 "Occurrence"): `ZeroOrN(5)` is `NodeMap<T, 0, 5>`,
/// `OneOrMore` is `NodeMap<T, 1, UNBOUNDED>` (`UNBOUNDED` is the default
/// `MAX`). A `MAX` of 0 (a map that may hold nothing) or below `MIN` does
/// not compile: the DDF forbids `ZeroOrN(0)` ("N > 1", dm_ddf-v1_2.dtd).
#[derive(Clone)]
pub struct NodeMap<T, const MIN: usize = 0, const MAX: usize = UNBOUNDED> {
    entries: Vec<(String, T)>,
    /// Position of each name, once the map holds [`INDEXED_FROM`] entries:
    /// a DACMO instance holds one per instance of its MOID, and finding
    /// names by scanning made a command adding thousands quadratic.
    index: Option<HashMap<String, usize>>,
}

/// Maps this large keep an index of their names; smaller ones scan, which
/// is faster there and costs no memory.
const INDEXED_FROM: usize = 32;

impl<T: PartialEq, const MIN: usize, const MAX: usize> PartialEq for NodeMap<T, MIN, MAX> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<T, const MIN: usize, const MAX: usize> NodeMap<T, MIN, MAX> {
    /// Evaluated (at compile time) by every constructor: see the type's
    /// docs for why these bounds are refused.
    const BOUNDS_ARE_VALID: () = {
        assert!(
            MAX > 0,
            "NodeMap: MAX of 0 allows no instance; use dm_core::UNBOUNDED for no limit"
        );
        assert!(MIN <= MAX, "NodeMap: MIN is above MAX");
    };
}

impl<T, const MIN: usize, const MAX: usize> Default for NodeMap<T, MIN, MAX> {
    fn default() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::BOUNDS_ARE_VALID;
        NodeMap {
            entries: Vec::new(),
            index: None,
        }
    }
}

impl<T: fmt::Debug, const MIN: usize, const MAX: usize> fmt::Debug for NodeMap<T, MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// True for a valid run-time node name: `1*unreserved` (RFC 3986).
pub fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

impl<T, const MIN: usize, const MAX: usize> NodeMap<T, MIN, MAX> {
    /// An empty map. Note that an empty map with `MIN > 0` is below its
    /// occurrence; [`NodeMap::meets_minimum`] tells.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the map holds at least `MIN` instances.
    pub fn meets_minimum(&self) -> bool {
        self.entries.len() >= MIN
    }

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(n, _)| n == name),
        }
    }

    /// Builds or drops the index as the map's size asks.
    fn reindex(&mut self) {
        self.index = (self.entries.len() >= INDEXED_FROM).then(|| {
            self.entries
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect()
        });
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.position(name).map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        let i = self.position(name)?;
        Some(&mut self.entries[i].1)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The instances in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Adds or replaces the instance called `name`. Adding past `MAX`
    /// fails and leaves the map unchanged; replacing never counts.
    pub fn insert(&mut self, name: impl Into<String>, value: T) -> Result<Option<T>, NodeMapError> {
        let name = name.into();
        if !is_node_name(&name) {
            return Err(NodeMapError::BadName(name));
        }
        if let Some(slot) = self.get_mut(&name) {
            return Ok(Some(std::mem::replace(slot, value)));
        }
        if self.entries.len() >= MAX {
            return Err(NodeMapError::Full { name, max: MAX });
        }
        match &mut self.index {
            Some(index) => {
                index.insert(name.clone(), self.entries.len());
                self.entries.push((name, value));
            }
            None => {
                self.entries.push((name, value));
                if self.entries.len() >= INDEXED_FROM {
                    self.reindex();
                }
            }
        }
        Ok(None)
    }

    /// Removes the instance called `name`; refuses to go below `MIN`.
    pub fn remove(&mut self, name: &str) -> Result<Option<T>, NodeMapError> {
        let Some(index) = self.position(name) else {
            return Ok(None);
        };
        if self.entries.len() <= MIN {
            return Err(NodeMapError::AtMinimum {
                name: name.to_owned(),
                min: MIN,
            });
        }
        let removed = self.entries.remove(index).1;
        if self.index.is_some() {
            // The entries after it moved up one.
            self.reindex();
        }
        Ok(Some(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_one_or_n_are_enforced() {
        let mut m: NodeMap<i64, 1, 2> = NodeMap::new();
        assert!(!m.meets_minimum());
        assert_eq!(m.insert("a", 1), Ok(None));
        assert_eq!(m.insert("b", 2), Ok(None));
        assert_eq!(m.insert("a", 3), Ok(Some(1)), "replacing does not count");
        assert_eq!(
            m.insert("c", 4),
            Err(NodeMapError::Full {
                name: "c".into(),
                max: 2
            })
        );
        assert_eq!(m.remove("a"), Ok(Some(3)));
        assert!(matches!(m.remove("b"), Err(NodeMapError::AtMinimum { .. })));
        assert_eq!(m.remove("zz"), Ok(None));
        assert_eq!(m.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn names_must_be_unreserved_characters() {
        let mut m: NodeMap<()> = NodeMap::new();
        for bad in ["", "a/b", "a b", "(x)", "*"] {
            assert!(
                matches!(m.insert(bad, ()), Err(NodeMapError::BadName(_))),
                "{bad:?}"
            );
        }
        assert!(m.insert("miid-1.x_~", ()).is_ok());
    }

    #[test]
    fn a_large_map_finds_names_through_its_index_as_a_small_one_does() {
        let mut m: NodeMap<usize> = NodeMap::new();
        for i in 0..100 {
            assert_eq!(m.insert(format!("n{i}"), i), Ok(None));
        }
        assert!(m.index.is_some());
        assert_eq!(m.insert("n7", 70), Ok(Some(7)));
        assert_eq!(m.get("n99"), Some(&99));
        // Removing shifts the later entries: the index follows.
        for i in (0..100).step_by(2) {
            assert!(m.remove(&format!("n{i}")).unwrap().is_some());
        }
        for i in 0..100 {
            let expect = (i % 2 == 1).then_some(if i == 7 { 70 } else { i });
            assert_eq!(m.get(&format!("n{i}")).copied(), expect, "n{i}");
        }
        assert_eq!(m.iter().next().map(|(n, _)| n), Some("n1"), "order kept");
        // Equality looks at the entries alone.
        let rebuilt: NodeMap<usize> = m.iter().fold(NodeMap::new(), |mut acc, (n, v)| {
            acc.insert(n, *v).unwrap();
            acc
        });
        assert!(rebuilt == m);
    }

    #[test]
    fn the_default_maximum_is_unbounded() {
        let mut m: NodeMap<u8, 1> = NodeMap::new();
        for i in 0..300u16 {
            assert_eq!(m.insert(format!("n{i}"), 0), Ok(None));
        }
        assert_eq!(m.len(), 300);
        let explicit: NodeMap<u8, 1, UNBOUNDED> = m.clone();
        assert_eq!(explicit.len(), 300);
    }
}
