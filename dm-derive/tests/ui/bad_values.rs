use dm_core::MoNode;

// Every mistake is reported at once, each at its own span.
#[derive(MoNode)]
struct Bad {
    #[dm(name = "A", format = "string", access = "Get", occurrence = "One")]
    a: String,
    #[dm(name = "B", format = "chr", access = "Read", occurrence = "One")]
    b: String,
    #[dm(name = "C", format = "chr", access = "Get", occurrence = "Many")]
    c: String,
    #[dm(name = "D", format = "chr", access = "Get", occurrence = "One", scope = "Forever")]
    d: String,
}

fn main() {}
