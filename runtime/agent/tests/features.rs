//! Compile-time MO selection: a device build without a feature does not
//! contain the MO. CI runs this once with the default features and once
//! with only `mo-devinfo`.

#[test]
fn the_registry_holds_exactly_the_compiled_in_mos() {
    let registry = dm_agent::standard_registry("IMEI:1");
    let moids: Vec<&str> = registry.mos().into_iter().map(|(s, _)| s.moid).collect();
    let expect = [
        (
            cfg!(feature = "mo-devinfo"),
            "urn:oma:mo:oma-dm-devinfo:1.2",
        ),
        (
            cfg!(feature = "mo-sessioninfo"),
            "urn:oma:mo:oma-sessioninfomo:1.0",
        ),
        (cfg!(feature = "mo-dmacc"), "urn:oma:mo:oma-dm-dmacc:1.2"),
        (cfg!(feature = "mo-dacmo"), "urn:oma:mo:oma-dm-dacmo:1.0"),
    ];
    for (compiled_in, moid) in expect {
        assert_eq!(moids.contains(&moid), compiled_in, "{moid} in {moids:?}");
    }
}
