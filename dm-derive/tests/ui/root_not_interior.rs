use dm_core::{ManagementObject, MoHooks};

#[derive(Clone, ManagementObject)]
#[dm(moid = "urn:x:1.0", format = "chr")]
struct Root {}

impl MoHooks for Root {}

fn main() {}
