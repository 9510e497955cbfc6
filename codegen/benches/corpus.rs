//! The Windows DDF corpus in one run (issue 4 goals, BENCHMARKS.md):
//!
//! - (a) parse + IR (`Ddf::parse`) of all 309 files;
//! - (b) a bare quick-xml event scan of the same bytes: the floor;
//! - (c) Python's `xml.etree.ElementTree` on the same files
//!   (`benches/etree.py`, run here when `python3` is on the PATH);
//! - (d) full generate: parse + IR + emit + prettyplease, every file.
//!
//! Goals: (a) at least 3x faster than (c) and within 2x of (b); (d) under
//! 1 s. Single-threaded; best of N runs after a warm-up, input already in
//! memory. Run with `cargo bench -p dm-codegen --bench corpus`
//! (`-- --runs N` to change N).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dm_codegen::{Ddf, EmitOptions};
use quick_xml::events::Event;
use quick_xml::Reader;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ddf-corpus/windows-2025-02")
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    // `--only parse|scan|emit|docs`: one phase, for a profiler.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let dir = corpus_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no DDF corpus at {}: nothing to measure", dir.display());
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("DDFv2"))
        })
        .collect();
    paths.sort();
    let files: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect();
    if let Some(phase) = only {
        for _ in 0..runs {
            for (path, text) in &files {
                match phase.as_str() {
                    "scan" => {
                        let mut reader = Reader::from_str(text);
                        while !matches!(reader.read_event(), Ok(Event::Eof) | Err(_)) {}
                    }
                    "parse" => {
                        black_box(Ddf::parse(path, text).ok());
                    }
                    "emit" | "docs" => {
                        let ddf = Ddf::parse(path, text).unwrap_or_default();
                        if phase == "emit" {
                            black_box(ddf.to_rust(&EmitOptions::default()).ok());
                        } else {
                            black_box(ddf.to_docs("x.xml").ok());
                        }
                    }
                    _ => return eprintln!("--only takes parse, scan, emit or docs"),
                }
            }
        }
        return;
    }
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    println!(
        "corpus: {} files, {:.1} MB, best of {runs} runs",
        files.len(),
        bytes as f64 / 1e6
    );

    // (a) and (b) alternate, run by run, so that both see the same machine
    // (this one is shared); each keeps its best run.
    let mut nodes = 0;
    let mut scan = Duration::MAX;
    let mut parse = Duration::MAX;
    for _ in 0..=runs {
        let t = Instant::now();
        for (_, text) in &files {
            let mut reader = Reader::from_str(text);
            let mut events = 0usize;
            loop {
                match reader.read_event() {
                    Ok(Event::Eof) | Err(_) => break,
                    Ok(e) => {
                        black_box(&e);
                        events += 1;
                    }
                }
            }
            black_box(events);
        }
        scan = scan.min(t.elapsed());
        let t = Instant::now();
        nodes = 0;
        for (path, text) in &files {
            let ddf = Ddf::parse(path, text).unwrap_or_default();
            nodes += ddf.len();
            black_box(ddf);
        }
        parse = parse.min(t.elapsed());
    }

    let ddfs: Vec<(String, Ddf)> = files
        .iter()
        .map(|(p, t)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, Ddf::parse(p, t).unwrap_or_default())
        })
        .collect();
    let mut out_bytes = 0;
    let emit = best_of(runs.min(10), || {
        out_bytes = 0;
        for (name, ddf) in &ddfs {
            let opts = EmitOptions {
                source_name: name.clone(),
                ..EmitOptions::default()
            };
            out_bytes += ddf.to_rust(&opts).map(|s| s.len()).unwrap_or(0);
        }
    });
    let generate = best_of(runs.min(10), || {
        for (path, text) in &files {
            let ddf = Ddf::parse(path, text).unwrap_or_default();
            let opts = EmitOptions {
                source_name: String::new(),
                ..EmitOptions::default()
            };
            black_box(ddf.to_rust(&opts).map(|s| s.len()).unwrap_or(0));
        }
    });
    let docs = best_of(runs.min(3), || {
        for (name, ddf) in &ddfs {
            black_box(ddf.to_docs(name).map(|p| p.len()).unwrap_or(0));
        }
    });

    let etree = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/etree.py"))
        .arg(&dir)
        .arg(runs.to_string())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(Duration::from_secs_f64);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("(a) parse + IR ({nodes} nodes)      {:9.2} ms", ms(parse));
    println!("(b) bare quick-xml event scan        {:9.2} ms", ms(scan));
    match etree {
        Some(e) => println!("(c) Python xml.etree.ElementTree     {:9.2} ms", ms(e)),
        None => println!("(c) Python xml.etree.ElementTree     (python3 not available)"),
    }
    println!(
        "(d) full generate (parse+emit+format) {:8.2} ms  (emit + format alone {:.2} ms, {:.1} MB of Rust)",
        ms(generate),
        ms(emit),
        out_bytes as f64 / 1e6
    );
    println!("    docs (Markdown + HTML, all pages) {:8.2} ms", ms(docs));
    println!();
    let scan_ratio = parse.as_secs_f64() / scan.as_secs_f64();
    println!(
        "goal: (a) within 2x of (b): {scan_ratio:.2}x -> {}",
        if scan_ratio <= 2.0 { "met" } else { "MISSED" }
    );
    if let Some(e) = etree {
        let speedup = e.as_secs_f64() / parse.as_secs_f64();
        println!(
            "goal: (a) >= 3x faster than (c): {speedup:.1}x -> {}",
            if speedup >= 3.0 { "met" } else { "MISSED" }
        );
    }
    println!(
        "goal: (d) under 1 s: {:.3} s -> {}",
        generate.as_secs_f64(),
        if generate < Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        }
    );
}
