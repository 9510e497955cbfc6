//! The real-world corpus: the 309 Windows DDF files of
//! `../shared/ddf-corpus/windows-2025-02` (see its README) all parse, and
//! the Rust generated for all of them compiles.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dm_codegen::{Ddf, EmitOptions};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ddf-corpus/windows-2025-02")
}

/// The corpus files, or `None` (with a message) when the corpus is absent.
fn corpus() -> Option<Vec<PathBuf>> {
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: no DDF corpus at {}", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("DDFv2")
        })
        .collect();
    files.sort();
    Some(files)
}

#[test]
fn every_corpus_file_parses() {
    let Some(files) = corpus() else { return };
    assert_eq!(files.len(), 309, "the README promises 309 files");
    let mut failures = Vec::new();
    let (mut nodes, mut roots, mut warnings, mut extensions) = (0, 0, 0, 0);
    for f in &files {
        match Ddf::read(f) {
            Ok(ddf) => {
                nodes += ddf.len();
                roots += ddf.roots().len();
                warnings += ddf.warnings.len();
                extensions += ddf.extensions.len()
                    + ddf
                        .nodes()
                        .map(|(id, _)| ddf.extensions_of(id).len())
                        .sum::<usize>();
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{nodes} nodes, {roots} roots, {warnings} warnings, {extensions} extensions");
    assert!(nodes > 5_000, "{nodes}");
    assert_eq!(roots, 396);
    assert!(extensions > 10_000, "MSFT: elements are kept: {extensions}");
}

/// Writes `content` unless the file already holds it, so that cargo sees
/// unchanged sources as unchanged and the check is a no-op on a re-run.
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Generates `src/<module>.rs` of the throwaway crate for one corpus file,
/// with a test MOID for every root and the behaviour impls; returns the
/// module name and the number of Exec nodes.
fn generate_module(f: &Path, dir: &Path) -> (String, usize) {
    let ddf = Ddf::read(f).unwrap();
    let stem = f.file_stem().unwrap().to_string_lossy().to_lowercase();
    let mut module: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    module.insert_str(0, "m_");
    let mut moids = HashMap::new();
    for &r in ddf.roots() {
        let root = ddf.node(r);
        if let Some(name) = root.name.clone().or_else(|| root.title.clone()) {
            moids.insert(name.clone(), format!("urn:test:{module}:{name}"));
        }
    }
    let opts = EmitOptions {
        ddf_url: None,
        source_name: f.file_name().unwrap().to_string_lossy().into_owned(),
        moids,
        ..EmitOptions::default()
    };
    let mut source = ddf.to_rust(&opts).unwrap();
    let mut execs = 0;
    // The behaviour of each MO, as its author would write it.
    for &r in ddf.roots() {
        let ty = &ddf.node(r).rust.type_name;
        let _ = writeln!(source, "\nimpl {ty}Behaviour for {ty} {{");
        for e in ddf.exec_nodes(r) {
            execs += 1;
            let method = ddf.node(e).rust.exec_method.as_ref().unwrap();
            let _ = writeln!(
                source,
                "    fn {method}(&mut self, names: &[&str], _: &::dm_core::ExecRequest) \
                 -> Result<::dm_core::ExecOutcome, ::dm_core::MoError> {{\n\
                 \x20       Err(::dm_core::MoError::NotExecutable(names.join(\"/\")))\n    }}"
            );
        }
        source.push_str("}\n");
    }
    write_if_changed(&dir.join(format!("src/{module}.rs")), &source);
    (module, execs)
}

/// Every corpus file becomes a module of one throwaway crate, which
/// `cargo check` must accept without a warning. To cover the MO code path
/// too (derive(ManagementObject), behaviour trait, Exec dispatch), every
/// root gets a test MOID (the Windows files have none) and the test writes
/// the behaviour impls, as an MO author would.
///
/// Cost (2 cores, measured 2026-11-22): the crate lives in
/// `target/tmp/dm-codegen-corpus` with its own target dir (about 500 MB),
/// so dm-core and its dependencies compile once: a cold run takes about
/// 40 s (30 s of it dependencies). Later runs regenerate (2-3 s here,
/// unoptimized, two threads) and re-check only what changed: 6-7 s for the
/// corpus crate after a generator change, and a cargo no-op (0.1 s) when
/// the output is unchanged. Files are rewritten only when their text
/// changes, so that cargo's fingerprints stay valid.
#[test]
fn generated_rust_for_the_corpus_compiles() {
    let Some(files) = corpus() else { return };
    let started = Instant::now();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dm-codegen-corpus");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Generation runs unoptimized here: two threads, as CI has two cores.
    let half = files.len().div_ceil(2);
    let (modules, execs) = std::thread::scope(|s| {
        let jobs: Vec<_> = files
            .chunks(half)
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|f| generate_module(f, &dir))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut modules = Vec::new();
        let mut execs = 0;
        for j in jobs {
            for (module, e) in j.join().unwrap() {
                modules.push(module);
                execs += e;
            }
        }
        (modules, execs)
    });
    let mut lib = String::from(
        "//! Generated by dm-codegen's corpus test: one module per Windows DDF.\n\
         #![deny(warnings)]\n#![allow(clippy::all)]\n\n",
    );
    let mut used = std::collections::HashSet::new();
    for module in &modules {
        assert!(
            used.insert(module.clone()),
            "two files make module {module}"
        );
        let _ = writeln!(lib, "pub mod {module};");
    }
    write_if_changed(&dir.join("src/lib.rs"), &lib);
    let dm_core = workspace.join("dm-core").canonicalize().unwrap();
    write_if_changed(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"dm-codegen-corpus\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\ndm-core = {{ path = {:?} }}\n\n[workspace]\n",
            dm_core.display().to_string()
        ),
    );
    // The workspace's lock file pins the same dependency versions, so the
    // check needs no registry access.
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap();
    write_if_changed(&dir.join("Cargo.lock"), &lock);
    let generated = started.elapsed();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--lib", "--message-format=short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{} files, {execs} Exec nodes: generated in {generated:.2?}, cargo check in {:.2?}",
        files.len(),
        started.elapsed() - generated
    );
    assert!(
        out.status.success(),
        "cargo check of the generated corpus crate ({}) failed:\n{}",
        dir.display(),
        stderr.lines().take(80).collect::<Vec<_>>().join("\n")
    );
    assert!(execs > 50, "{execs}");
}
