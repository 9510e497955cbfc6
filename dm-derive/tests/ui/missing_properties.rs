use dm_core::MoNode;

#[derive(MoNode)]
struct Missing {
    #[dm(name = "A", access = "Get", occurrence = "One")]
    a: String,
    #[dm(name = "B", format = "chr", access = "Get")]
    b: String,
}

fn main() {}
