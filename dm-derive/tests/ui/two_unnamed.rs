use dm_core::{MoNode, NodeMap};

#[derive(MoNode)]
struct Two {
    #[dm(format = "chr", access = "Get", occurrence = "ZeroOrMore")]
    a: NodeMap<String>,
    #[dm(format = "int", access = "Get", occurrence = "ZeroOrMore")]
    b: NodeMap<i64>,
}

fn main() {}
