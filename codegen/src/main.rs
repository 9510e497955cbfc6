//! `dm-codegen`: the command-line face of the DDF code generator.
//!
//! ```text
//! dm-codegen generate DDF... --out DIR
//! dm-codegen check DDF...
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use dm_codegen::{Builder, Ddf};

const USAGE: &str = "usage:
  dm-codegen generate DDF... --out DIR   write one <stem>.rs per DDF into DIR
  dm-codegen check DDF...                validate DDF files, print diagnostics";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate(&args[1..]),
        Some("check") => check(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn generate(args: &[String]) -> ExitCode {
    let mut out = None;
    let mut builder = Builder::new().cargo_metadata(false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--out" {
            out = it.next().map(PathBuf::from);
        } else {
            builder = builder.ddf(a);
        }
    }
    let Some(out) = out else {
        eprintln!("generate needs --out DIR\n{USAGE}");
        return ExitCode::from(2);
    };
    match builder.out_dir(out).generate() {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &[String]) -> ExitCode {
    if args.is_empty() {
        eprintln!("check needs at least one DDF\n{USAGE}");
        return ExitCode::from(2);
    }
    let mut failed = 0;
    for a in args {
        match Ddf::read(a.as_ref()) {
            Ok(ddf) => println!("{a}: ok ({} root node(s))", ddf.roots.len()),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
