use dm_core::{ManagementObject, MoHooks, MoNode, NodeMap, Occurrence, Scope, UNBOUNDED};

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(moid = "urn:example:mo:pass:1.0", ddf_url = "http://example/pass.ddf", access = "Get", occurrence = "ZeroOrMore", scope = "Dynamic")]
struct Root {
    #[dm(name = "Name", format = "chr", access = "Get, Replace", occurrence = "One")]
    name: String,
    #[dm(name = "Size", format = "int", access = "Get", occurrence = "ZeroOrOne")]
    size: Option<i64>,
    #[dm(name = "Child", format = "node", access = "Get", occurrence = "One")]
    child: Child,
    #[dm(format = "node", access = "Add, Get", occurrence = "OneOrN(4)")]
    entries: NodeMap<Child, 1, 4>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Child {
    #[dm(name = "Data", format = "bin", access = "Replace", occurrence = "ZeroOrOne")]
    data: Option<Vec<u8>>,
    // Defaults: occurrence One, scope Dynamic, no access.
    #[dm(name = "Plain", format = "chr", scope = "Permanent")]
    plain: String,
    #[dm(format = "int", access = "Get", occurrence = "OneOrMore")]
    many: NodeMap<i64, 1, { ::dm_core::UNBOUNDED }>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Unit;

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(moid = "urn:example:mo:bare:1.0")]
struct Bare {
    #[dm(format = "chr", occurrence = "ZeroOrMore")]
    tags: NodeMap<String, 0, UNBOUNDED>,
}

impl MoHooks for Root {}
impl MoHooks for Bare {}

fn main() {
    let schema = Root::SCHEMA;
    assert_eq!(schema.moid, "urn:example:mo:pass:1.0");
    assert_eq!(schema.ddf_url, Some("http://example/pass.ddf"));
    assert_eq!(schema.root.children.len(), 4);
    assert_eq!(<Unit as MoNode>::CHILDREN.len(), 0);
    let plain = &<Child as MoNode>::CHILDREN[1];
    assert_eq!(plain.occurrence, Occurrence::One);
    assert_eq!(plain.scope, Scope::Permanent);
    assert!(plain.access.is_empty());
    let bare = Bare::SCHEMA;
    assert_eq!(bare.ddf_url, None);
    assert_eq!(bare.root.occurrence, Occurrence::One);
    assert_eq!(bare.root.scope, Scope::Dynamic);
    fn is_mo<T: ManagementObject>() {}
    is_mo::<Root>();
    is_mo::<Bare>();
}
