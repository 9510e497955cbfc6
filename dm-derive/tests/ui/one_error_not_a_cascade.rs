use dm_core::{ManagementObject, MoHooks, MoNode, NodeMap};

// One mistake in a child struct and one on the root: each is reported
// once. The fallback implementations keep everything that uses the two
// types (the parent's fields, `Root::SCHEMA`, a `ManagementObject` bound)
// free of "trait not implemented" errors.
#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(access = "Get")]
struct Root {
    #[dm(name = "Child", format = "node", access = "Get")]
    child: Child,
    #[dm(format = "node", access = "Get", occurrence = "ZeroOrMore")]
    more: NodeMap<Child>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Child {
    #[dm(name = "A", format = "string", access = "Get")]
    a: String,
}

impl MoHooks for Root {}

fn main() {
    fn is_mo<T: ManagementObject>() {}
    is_mo::<Root>();
    let _ = Root::SCHEMA;
    let _ = <Child as MoNode>::CHILDREN;
}
