use dm_core::NodeMap;

// Without the derive, NodeMap itself refuses a maximum of 0 (it used to
// mean "unbounded"; that is dm_core::UNBOUNDED now).
fn main() {
    let map: NodeMap<String, 0, 0> = NodeMap::new();
    assert!(map.is_empty());
}
