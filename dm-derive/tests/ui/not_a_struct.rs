use dm_core::MoNode;

#[derive(MoNode)]
enum Node {
    A,
}

#[derive(MoNode)]
struct Tuple(#[dm(name = "A", format = "chr", access = "Get", occurrence = "One")] String);

fn main() {}
