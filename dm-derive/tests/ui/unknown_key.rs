use dm_core::MoNode;

#[derive(MoNode)]
struct Unknown {
    #[dm(name = "A", format = "chr", access = "Get", occurrence = "One", colour = "red")]
    a: String,
}

fn main() {}
