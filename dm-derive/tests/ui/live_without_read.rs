use dm_core::MoNode;

// A live field needs its read method (`dm-codegen` emits a trait for it).
#[derive(MoNode)]
struct Battery {
    #[dm(name = "Level", format = "int", access = "Get", live)]
    level: i64,
}

fn main() {}
