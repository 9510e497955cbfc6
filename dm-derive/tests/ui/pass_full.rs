use dm_core::{ManagementObject, MoHooks, MoNode, NodeMap};

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
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Unit;

impl MoHooks for Root {}

fn main() {
    let schema = Root::SCHEMA;
    assert_eq!(schema.moid, "urn:example:mo:pass:1.0");
    assert_eq!(schema.root.children.len(), 4);
    assert_eq!(<Unit as MoNode>::CHILDREN.len(), 0);
    fn is_mo<T: ManagementObject>() {}
    is_mo::<Root>();
}
