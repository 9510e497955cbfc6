//! Generates the DevInfo structs from the project's DDF at build time.

fn main() {
    if let Err(e) = dm_codegen::Builder::new()
        .ddf("../../ddf/devinfo.ddf")
        .ddf_base_url("https://omadm.example/ddf/")
        .generate()
    {
        // Cargo shows a failed build script's stderr: file:line:column: reason.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
