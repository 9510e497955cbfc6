use dm_core::{ManagementObject, MoHooks};

#[derive(Clone, ManagementObject)]
struct NoMoid {
    #[dm(name = "A", format = "chr", access = "Get", occurrence = "One")]
    a: String,
}

impl MoHooks for NoMoid {}

fn main() {}
