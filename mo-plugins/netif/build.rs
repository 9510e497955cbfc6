//! Generates the NetIf structs from the project's DDF at build time; the
//! interface list and every value in it are read from the host at every
//! read, never stored.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    dm_codegen::Builder::new()
        .ddf("../../ddf/netif.ddf")
        .ddf_base_url("https://omadm.example/ddf/")
        .live("NetIf/Interfaces")
        .field("NetIf", "sysfs: crate::Sysfs")
        .generate()?;
    Ok(())
}
