use dm_core::MoNode;

#[derive(MoNode)]
struct Generic<T> {
    #[dm(name = "A", format = "chr", access = "Get", occurrence = "One")]
    a: T,
}

fn main() {}
