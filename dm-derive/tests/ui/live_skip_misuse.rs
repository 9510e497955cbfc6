use dm_core::{ManagementObject, MoHooks, MoNode};

#[derive(MoNode)]
struct Fields {
    // Both flags: a field is one or the other.
    #[dm(live, skip)]
    both: i64,
    // A skip field is no node: no node property.
    #[dm(skip, name = "Handle")]
    handle: u8,
    // Flags take no value.
    #[dm(name = "A", format = "int", access = "Get", live = "yes")]
    a: i64,
}

#[derive(MoNode)]
#[dm(live)]
struct LiveStruct {
    #[dm(name = "B", format = "int", access = "Get")]
    b: i64,
}

#[derive(ManagementObject)]
#[dm(moid = "urn:example:mo:live:1.0", live)]
struct LiveRoot {
    #[dm(name = "C", format = "int", access = "Get")]
    c: i64,
}

impl MoHooks for LiveRoot {}

fn main() {}
