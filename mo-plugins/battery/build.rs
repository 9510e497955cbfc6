//! Generates the Battery structs from its DDF at build time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    dm_codegen::Builder::new()
        .ddf("../../ddf/battery.ddf")
        .ddf_base_url("https://omadm.example/ddf/")
        // Read from the device at every GET; nothing of it is stored.
        .live("Battery/Level")
        .live("Battery/Status")
        // MO code's own state: where the battery is.
        .field("Battery", "device: crate::Device")
        .generate()?;
    Ok(())
}
