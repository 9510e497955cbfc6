//! `dm-codegen`: the command-line face of the DDF code generator
//! (docs/architecture.md "Command line").
//!
//! ```text
//! dm-codegen generate DDF... --out DIR [--ddf-base-url URL] [--moid ROOT=MOID]...
//!                    [--live PATH]... [--field 'PATH=NAME: TYPE']...
//! dm-codegen check DDF...
//! dm-codegen doc DDF... --out DIR
//! ```
//!
//! Exit status: 0 on success, 1 when a DDF has an error (each printed as
//! `file:line:column: error: reason`), 2 for bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dm_codegen::{Builder, Ddf, Error, Position};

#[derive(Debug, Parser)]
#[command(
    name = "dm-codegen",
    version,
    about = "DM 1.2/1.3 DDF files -> typed Rust Management Objects and MO reference docs",
    long_about = "Reads Device Description Framework files (OMA DM 1.2/1.3 DDF, as used by \
                  OMA DM 2.0 section 6.4), validates them, and generates Rust modules or \
                  Markdown/HTML reference pages. Diagnostics are printed as \
                  file:line:column: error|warning: reason."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write one <stem>.rs per DDF into DIR (nothing is written if any DDF fails).
    Generate {
        /// DDF files.
        #[arg(required = true, value_name = "DDF")]
        ddfs: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Record <URL><file name> as each MO's DDF URL (spec 5.2.2).
        #[arg(long, value_name = "URL")]
        ddf_base_url: Option<String>,
        /// Make a root without MOID an MO: ROOT is its NodeName (or DFTitle).
        #[arg(long, value_name = "ROOT=MOID")]
        moid: Vec<String>,
        /// The MO owns the data of this node (every read asks MO code): a path of DDF node
        /// names from the root, e.g. Battery/Level, Battery/<Cell>, or Battery for every node
        /// of that MO with Get. Repeatable.
        #[arg(long, value_name = "PATH")]
        live: Vec<String>,
        /// Add a field that is no node to the struct of an interior node, e.g.
        /// 'Battery=device: crate::Device' (the type must be Default + Clone + Debug +
        /// PartialEq). Repeatable.
        #[arg(long, value_name = "PATH=NAME: TYPE")]
        field: Vec<String>,
    },
    /// Validate DDF files and print their diagnostics; exit 1 if any has an error.
    Check {
        /// DDF files.
        #[arg(required = true, value_name = "DDF")]
        ddfs: Vec<PathBuf>,
        /// Also exit 1 when a DDF has warnings.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Write an MO reference page per root node, <page>.md and <page>.html, into DIR.
    Doc {
        /// DDF files.
        #[arg(required = true, value_name = "DDF")]
        ddfs: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Generate {
            ddfs,
            out,
            ddf_base_url,
            moid,
            live,
            field,
        } => generate(ddfs, out, ddf_base_url, moid, live, field),
        Command::Check {
            ddfs,
            deny_warnings,
        } => check(&ddfs, deny_warnings),
        Command::Doc { ddfs, out } => doc(&ddfs, &out),
    }
}

fn report(e: &Error) {
    eprintln!("{}", prefixed(e));
}

/// Errors that are not diagnostics get an `error:` prefix.
fn prefixed(e: &Error) -> String {
    match e {
        Error::Ddf(d) => d.to_string(),
        other => format!("error: {other}"),
    }
}

fn generate(
    ddfs: Vec<PathBuf>,
    out: PathBuf,
    base: Option<String>,
    moids: Vec<String>,
    live: Vec<String>,
    fields: Vec<String>,
) -> ExitCode {
    let mut builder = Builder::new().cargo_metadata(false).out_dir(&out);
    if let Some(base) = base {
        builder = builder.ddf_base_url(base);
    }
    for m in moids {
        let Some((root, moid)) = m.split_once('=') else {
            eprintln!("error: --moid takes ROOT=MOID, got `{m}`");
            return ExitCode::from(2);
        };
        builder = builder.moid(root, moid);
    }
    for path in live {
        builder = builder.live(path);
    }
    for f in fields {
        let Some((path, spec)) = f.split_once('=') else {
            eprintln!("error: --field takes 'PATH=NAME: TYPE', got `{f}`");
            return ExitCode::from(2);
        };
        builder = builder.field(path, spec);
    }
    for d in &ddfs {
        builder = builder.ddf(d);
        // Warnings are not part of the Builder's result: show them here.
        if let Ok(ddf) = Ddf::read(d) {
            for w in &ddf.warnings {
                eprintln!("{w}");
            }
        }
    }
    match builder.generate() {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

fn check(ddfs: &[PathBuf], deny_warnings: bool) -> ExitCode {
    let mut failed = 0;
    for path in ddfs {
        match Ddf::read(path) {
            Ok(ddf) => {
                for w in &ddf.warnings {
                    eprintln!("{w}");
                }
                // A root without MOID generates a plain node struct, not an
                // MO: code that expects `<Root>Behaviour` or
                // `ManagementObject` then fails on a missing name (issue 18).
                let no_moid = ddf.roots().len() - ddf.mo_roots().count();
                if no_moid > 0 {
                    // For the line and column of each root (UTF-8 files).
                    let text = std::fs::read(path)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    for &root in ddf.roots() {
                        let def = ddf.node(root);
                        if def.moid.is_some() {
                            continue;
                        }
                        let at = Position::of_offset(&text, def.offset);
                        let name = def.name.as_deref().or(def.title.as_deref()).unwrap_or("");
                        eprintln!(
                            "{}:{}:{}: warning: root `{}` has no MOID (DFType/DDFName): it is \
                             generated as a plain node, not an MO; give it one in the DDF or \
                             with --moid {name}=MOID",
                            path.display(),
                            at.line,
                            at.column,
                            def.display_name(),
                        );
                    }
                }
                let warnings = ddf.warnings.len() + no_moid;
                if deny_warnings && warnings > 0 {
                    failed += 1;
                }
                let mos = ddf.mo_roots().count();
                println!(
                    "{}: ok: {} node(s), {} root(s), {} MO(s), {} warning(s)",
                    path.display(),
                    ddf.len(),
                    ddf.roots().len(),
                    mos,
                    warnings
                );
            }
            Err(e) => {
                report(&e);
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} of {} DDF file(s) failed", ddfs.len());
        ExitCode::FAILURE
    }
}

fn doc(ddfs: &[PathBuf], out: &Path) -> ExitCode {
    let mut pages = Vec::new();
    for path in ddfs {
        let ddf = match Ddf::read(path) {
            Ok(d) => d,
            Err(e) => {
                report(&e);
                return ExitCode::FAILURE;
            }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match ddf.to_docs(&name) {
            Ok(p) => pages.extend(p),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    // Two DDFs with one file stem (in different directories) get distinct
    // pages.
    let mut stems = std::collections::HashSet::new();
    for page in pages {
        let mut stem = page.stem.clone();
        let mut n = 2;
        while !stems.insert(stem.clone()) {
            stem = format!("{}-{n}", page.stem);
            n += 1;
        }
        for (ext, text) in [("md", &page.markdown), ("html", &page.html)] {
            let file = out.join(format!("{stem}.{ext}"));
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("error: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", file.display());
        }
    }
    ExitCode::SUCCESS
}
