//! Generates the FUMO structs from the project's DDF at build time; its
//! State node is read from the device at every GET.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    dm_codegen::Builder::new()
        .ddf("../../ddf/fumo.ddf")
        .ddf_base_url("https://omadm.example/ddf/")
        .live("FUMO/State")
        .field("FUMO", "dir: crate::WorkDir")
        .generate()?;
    Ok(())
}
