//! MOs that own their data (issue 18 item 1): `Builder::live` /
//! `--live` mark nodes `#[dm(live)]` with a typed `<Type>Live` trait,
//! `Builder::field` / `--field` add fields that are no node, mistakes are
//! errors naming the node; and `check` warns about a root without MOID
//! (issue 18 item 7). The generated code is compiled and run by the
//! fixture crate (`tests/fixture`, module `battery`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dm_codegen::{Builder, EmitError, Error};

fn battery_ddf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ddf/battery.ddf")
}

fn generate(builder: Builder) -> Result<String, Error> {
    let tmp = tempfile::tempdir().unwrap();
    let files = builder
        .cargo_metadata(false)
        .ddf(battery_ddf())
        .out_dir(tmp.path())
        .generate()?;
    Ok(std::fs::read_to_string(&files[0]).unwrap())
}

#[test]
fn live_nodes_get_the_attribute_and_a_typed_read() {
    let out = generate(
        Builder::new()
            .live("Battery/Level")
            .live("Battery/<Cell>")
            .live("Battery/Cell/Voltage"),
    )
    .unwrap();
    assert!(
        out.contains(r#"#[dm(name = "Level", format = "int", access = "Get", live)]"#),
        "{out}"
    );
    assert!(
        out.contains(r#"#[dm(format = "node", access = "Get", occurrence = "ZeroOrMore", live)]"#)
    );
    // Status is not chosen: stored.
    assert!(out.contains(r#"#[dm(name = "Status", format = "chr", access = "Get, Replace")]"#));
    assert!(out.contains("pub trait BatteryLive {"));
    assert!(
        out.contains("fn read_level(&self) -> ::core::result::Result<i64, ::dm_core::MoError>;")
    );
    assert!(out.contains("fn read_cell(\n        &self,\n    ) -> ::core::result::Result<"));
    assert!(out.contains("pub trait BatteryCellLive {"));
    assert!(
        out.contains("fn read_voltage(&self) -> ::core::result::Result<f64, ::dm_core::MoError>;")
    );
    // The method's doc names the DDF node and its format.
    assert!(out.contains("/// Reads `Battery/Level` (int) from the device, now."));
    assert!(
        out.lines().all(|l| l.len() <= 100),
        "a line over 100 columns"
    );
}

#[test]
fn a_whole_mo_is_live_in_every_node_it_reads() {
    let out = generate(Builder::new().live("Battery")).unwrap();
    for name in ["Level", "Status", "Label"] {
        let attr = out
            .lines()
            .find(|l| l.contains(&format!("name = \"{name}\"")))
            .unwrap();
        assert!(attr.ends_with(", live)]"), "{attr}");
    }
    // Calibrate has no Get: nothing to read, not live.
    let calibrate = out
        .lines()
        .find(|l| l.contains("name = \"Calibrate\""))
        .unwrap();
    assert!(!calibrate.contains("live"), "{calibrate}");
    assert!(out.contains("fn read_label("));
    assert!(!out.contains("fn read_calibrate("));
    // Nothing chosen: no trait, no attribute.
    let stored = generate(Builder::new()).unwrap();
    assert!(!stored.contains("Live") && !stored.contains("live)]"));
}

#[test]
fn a_live_node_without_get_is_an_error_naming_it() {
    let err = generate(Builder::new().live("Battery/Calibrate")).unwrap_err();
    assert!(
        matches!(&err, Error::Emit(EmitError::LiveWithoutGet { path, .. }) if path == "Battery/Calibrate"),
        "{err}"
    );
    assert!(err.to_string().contains("has no Get"), "{err}");
    let err = generate(Builder::new().live("Battery/Levle")).unwrap_err();
    assert!(
        err.to_string()
            .contains("`Battery` has no child `Levle` (its children: Level, Status, Label, <Cell>, Calibrate)"),
        "{err}"
    );
    let err = generate(Builder::new().live("Batery/Level")).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownRoot { option: "live", root, .. } if root == "Batery"),
        "{err}"
    );
}

#[test]
fn extra_fields_are_skip_fields_that_start_at_their_default() {
    let out = generate(
        Builder::new()
            .field("Battery", "device: crate::Device")
            .field("Battery/<Cell>", "raw: ::core::option::Option<u32>"),
    )
    .unwrap();
    assert!(
        out.contains("#[dm(skip)]\n    pub(crate) device: crate::Device,"),
        "{out}"
    );
    assert!(out.contains("pub(crate) raw: ::core::option::Option<u32>,"));
    assert!(out.contains("device: ::core::default::Default::default(),"));
    for (path, spec, reason) in [
        ("Battery", "level: u8", "already has a field `level`"),
        ("Battery", "no type", "expected `name: Type`"),
        ("Battery", "x: 1 +", "is not a type"),
        ("Battery/Level", "x: u8", "a leaf has no struct"),
    ] {
        let err = generate(Builder::new().field(path, spec)).unwrap_err();
        assert!(err.to_string().contains(reason), "{spec}: {err}");
    }
}

// ---- the command line ----

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dm-codegen"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn generate_takes_live_and_field_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().display().to_string();
    let ddf = battery_ddf().display().to_string();
    let out = cli(&[
        "generate",
        &ddf,
        "--out",
        &out_dir,
        "--live",
        "Battery/Level",
        "--live",
        "Battery/Status",
        "--field",
        "Battery=device: u8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rs = std::fs::read_to_string(tmp.path().join("battery.rs")).unwrap();
    assert!(rs.contains("fn read_level(") && rs.contains("fn read_status("));
    assert!(rs.contains("pub(crate) device: u8,"));

    let out = cli(&[
        "generate",
        &ddf,
        "--out",
        &out_dir,
        "--live",
        "Battery/Calibrate",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`Battery/Calibrate` is chosen live but has no Get"));
    let out = cli(&["generate", &ddf, "--out", &out_dir, "--field", "Battery"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_warns_about_a_root_without_moid() {
    let kitchen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ddf/kitchen.ddf");
    let out = cli(&["check", &kitchen.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    // Two roots: `Extra` has no MOID, `<Kitchen>` has one.
    assert!(
        err.contains("kitchen.ddf:593:3: warning: root `Extra` has no MOID (DFType/DDFName)"),
        "{err}"
    );
    assert!(err.contains("with --moid Extra=MOID"), "{err}");
    assert_eq!(err.matches("has no MOID").count(), 1, "{err}");
    let out = cli(&[
        "check",
        "--deny-warnings",
        &battery_ddf().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("MOID"));
}
