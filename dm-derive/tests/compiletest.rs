//! The derive's error messages, pinned to the toolchain they were written
//! for (rustc's own wording around them changes between releases).

/// The toolchain the `.stderr` files were written with.
const PINNED: &str = "rustc 1.95.";

#[test]
fn ui() {
    let version =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
    if !version.starts_with(PINNED) {
        // CI runs the pinned toolchain: a skip there would hide a broken
        // test behind "passed", so it fails instead.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but rustc is `{}`; the compile-fail tests need {PINNED}x",
            version.trim()
        );
        // A test cannot mark itself ignored at run time, so the skip is one
        // line written to the process's stderr: libtest captures
        // `eprintln!` (and shows it only for failures), not a direct write.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: dm-derive compile-fail tests (written for {PINNED}x, this is `{}`)",
            version.trim()
        );
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
    t.compile_fail("tests/ui/one_error_not_a_cascade.rs");
    t.compile_fail("tests/ui/node_map_bounds.rs");
    t.compile_fail("tests/ui/node_map_zero_max.rs");
    t.compile_fail("tests/ui/live_skip_misuse.rs");
    t.compile_fail("tests/ui/live_without_read.rs");
}
