//! Generates the MO structs from the project's DDF at build time.

fn main() {
    if let Err(e) = dm_codegen::Builder::new()
        .ddf("../../ddf/dacmo.ddf")
        .ddf_base_url("https://omadm.example/ddf/")
        .generate()
    {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
