use dm_core::MoNode;

// `format` has no default (<DFFormat> is mandatory in a DDF); occurrence,
// scope and access do (One, Dynamic, none), so `b` is fine.
#[derive(MoNode)]
struct Missing {
    #[dm(name = "A", access = "Get", occurrence = "One")]
    a: String,
    #[dm(name = "B", format = "chr", access = "Get")]
    b: String,
}

fn main() {}
