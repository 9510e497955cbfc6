//! The derive's error messages, pinned to the toolchain they were written
//! for (rustc's own wording around them changes between releases).

#[test]
fn ui() {
    let version =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
    if !version.starts_with("rustc 1.95.") {
        eprintln!("skipping the compile-fail tests: written for rustc 1.95, this is {version}");
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/missing_moid.rs");
    t.compile_fail("tests/ui/bad_values.rs");
    t.compile_fail("tests/ui/missing_properties.rs");
    t.compile_fail("tests/ui/unknown_key.rs");
    t.compile_fail("tests/ui/not_a_struct.rs");
    t.compile_fail("tests/ui/two_unnamed.rs");
    t.compile_fail("tests/ui/root_not_interior.rs");
    t.compile_fail("tests/ui/generic.rs");
}
