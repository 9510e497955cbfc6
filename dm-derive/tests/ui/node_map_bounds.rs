use dm_core::{MoNode, NodeMap};

// A NodeMap maximum of 0 no longer means "unbounded" (that is
// dm_core::UNBOUNDED); bounds must match the occurrence; an occurrence
// count of 0 allows no node; an empty ddf_url is not "none".
#[derive(MoNode)]
struct ZeroMax {
    #[dm(format = "chr", access = "Get", occurrence = "ZeroOrMore")]
    a: NodeMap<String, 0, 0>,
}

#[derive(MoNode)]
struct Mismatch {
    #[dm(format = "chr", access = "Get", occurrence = "OneOrN(3)")]
    a: NodeMap<String, 1, 4>,
}

#[derive(MoNode)]
struct ZeroCount {
    #[dm(format = "chr", access = "Get", occurrence = "ZeroOrN(0)")]
    a: NodeMap<String>,
}

#[derive(dm_core::ManagementObject)]
#[dm(moid = "urn:x:1.0", ddf_url = "")]
struct EmptyUrl {}

impl dm_core::MoHooks for EmptyUrl {}

fn main() {}
