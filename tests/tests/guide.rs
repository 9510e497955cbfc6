//! The MO author's guide (docs/mo-author-guide.md) cannot rot: every
//! block it marks with `<!-- file: PATH -->` must appear, line for line,
//! in that file, which CI builds and tests; and no Rust or TOML block goes
//! unmarked.
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// (marked file, language, lines) of each fenced block.
fn blocks(text: &str) -> Vec<(Option<String>, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(path) = line
            .trim()
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            marker = Some(path.to_owned());
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<String> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .map(str::to_owned)
                .collect();
            out.push((marker.take(), lang.to_owned(), body));
            continue;
        }
        if !line.trim().is_empty() {
            marker = None;
        }
    }
    out
}

#[test]
fn every_code_block_of_the_guide_is_in_the_file_it_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/mo-author-guide.md")).unwrap();
    let blocks = blocks(&guide);
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    for (file, lang, body) in blocks {
        let Some(file) = file else {
            assert!(
                !matches!(lang.as_str(), "rust" | "toml"),
                "a {lang} block without a file marker: {body:?}"
            );
            continue;
        };
        let source =
            std::fs::read_to_string(root.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let lines: Vec<&str> = source.lines().collect();
        let found = lines
            .windows(body.len())
            .any(|w| w.iter().zip(&body).all(|(a, b)| a == b));
        assert!(
            found,
            "the guide's block is not in {file}:\n{}",
            body.join("\n")
        );
    }
}
