//! `NodeMap`: the instances of an un-named node (spec 6.3.1.3), keyed by
//! the names they get at run time, in the order they were added, with the
//! occurrence bounds of the DDF enforced (6.3.1: "The DM Server can add the
//! node up to the number specified as the part of MO specification").

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
#[derive(Clone, PartialEq)]
pub struct NodeMap<T, const MIN: usize = 0, const MAX: usize = UNBOUNDED> {
    entries: Vec<(String, T)>,
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

    pub fn get(&self, name: &str) -> Option<&T> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.entries
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
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
        self.entries.push((name, value));
        Ok(None)
    }

    /// Removes the instance called `name`; refuses to go below `MIN`.
    pub fn remove(&mut self, name: &str) -> Result<Option<T>, NodeMapError> {
        let Some(index) = self.entries.iter().position(|(n, _)| n == name) else {
            return Ok(None);
        };
        if self.entries.len() <= MIN {
            return Err(NodeMapError::AtMinimum {
                name: name.to_owned(),
                min: MIN,
            });
        }
        Ok(Some(self.entries.remove(index).1))
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
