//! The emitted file's last pass: doc comments put back in place of their
//! placeholders, wrapped to rustfmt's width without opening a Markdown block.

/// Doc comments go through quote, syn and prettyplease as short
/// placeholders and are put back here, line by line: the Windows corpus has
/// megabytes of descriptions, and escaping them into string literals,
/// parsing and printing them again was half of the generation time.
pub(super) const DOC_MARK: &str = "///dm-codegen-doc:";

/// Puts the doc comment texts back in place of their placeholders,
/// wrapped to [`MAX_WIDTH`], after `out` (the file's header).
///
/// The same pass puts a `#[dm(...)]` attribute that prettyplease broke
/// over several lines (it keeps to 89 columns) back on one line when that
/// fits rustfmt's 100: one short attribute per field, as prost writes them.
pub(super) fn fill_docs(mut out: String, pretty: &str, docs: &[Vec<String>]) -> String {
    out.reserve(pretty.len() + docs.iter().flatten().map(|l| l.len() + 8).sum::<usize>());
    let mut lines = pretty.lines();
    while let Some(line) = lines.next() {
        let body = line.trim_start();
        if body == "#[dm(" {
            let indent = &line[..line.len() - body.len()];
            let mut joined = format!("{indent}#[dm(");
            let mut held = vec![line];
            for arg in lines.by_ref() {
                held.push(arg);
                let arg = arg.trim();
                if arg == ")]" {
                    break;
                }
                if !joined.ends_with('(') {
                    joined.push(' ');
                }
                joined.push_str(arg);
            }
            let joined = format!("{})]", joined.trim_end_matches(','));
            if held.last().is_some_and(|l| l.trim() == ")]") && joined.len() <= MAX_WIDTH {
                out.push_str(&joined);
                out.push('\n');
            } else {
                for l in held {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            continue;
        }
        let doc = body
            .strip_prefix(DOC_MARK)
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| docs.get(n));
        match doc {
            Some(lines) => {
                let indent = &line[..line.len() - body.len()];
                let width = MAX_WIDTH.saturating_sub(indent.len() + 3);
                for l in lines {
                    for part in wrap(l, width) {
                        out.push_str(indent);
                        out.push_str("///");
                        out.push_str(part);
                        out.push('\n');
                    }
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// rustfmt's default `max_width`: doc comments are wrapped to it (the code
/// itself is prettyplease's, which keeps to it where a line can break).
const MAX_WIDTH: usize = 100;

/// Splits a doc line (`" text"`, leading space included) into pieces of at
/// most `width` characters, breaking at spaces; each piece after the first
/// starts with a space. A word longer than `width` stays whole. A break is
/// never put before a word that would open a Markdown block at the start
/// of a line (`- `, `* `, `+ `, `# `, `1. `, `> `, `|`, `=`...), which would
/// change what rustdoc renders.
fn wrap(line: &str, width: usize) -> Vec<&str> {
    if line.len() <= width || line.chars().count() <= width {
        return vec![line];
    }
    // Allowed breaks: (byte index of the space, its char index).
    let mut breaks = Vec::new();
    let mut prev = ' ';
    for (char_index, (i, c)) in line.char_indices().enumerate() {
        if c == ' ' && i > 0 && prev != ' ' && !opens_block(&line[i + 1..]) {
            breaks.push((i, char_index));
        }
        prev = c;
    }
    let total = line.chars().count();
    let mut parts = Vec::new();
    let (mut start, mut start_char) = (0, 0);
    let mut next = 0;
    while total - start_char > width {
        // The last break that keeps the piece within `width`, else the
        // first one after it (a long word), else none: the rest stays.
        let mut chosen = None;
        while next < breaks.len() {
            let (b, bc) = breaks[next];
            if bc - start_char > width && chosen.is_some() {
                break;
            }
            chosen = Some((b, bc));
            next += 1;
            if bc - start_char > width {
                break;
            }
        }
        let Some((b, bc)) = chosen else { break };
        parts.push(&line[start..b]);
        (start, start_char) = (b, bc);
    }
    parts.push(&line[start..]);
    parts
}

/// Would `rest`, starting a doc line after one space, open a Markdown block
/// (list item, heading, quote, table, setext underline, code fence)?
fn opens_block(rest: &str) -> bool {
    let word = rest.split(' ').next().unwrap_or("");
    if word.is_empty() {
        // Several spaces: an indented code block could start.
        return true;
    }
    let digits = word.trim_start_matches(|c: char| c.is_ascii_digit());
    matches!(word, "-" | "*" | "+")
        || word.starts_with(['#', '>', '|', '=', '`', '~'])
        || word.starts_with("---")
        || word.starts_with("***")
        || word.starts_with("___")
        || (digits.len() < word.len() && matches!(digits, "." | ")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_lines_wrap_at_spaces_within_the_width() {
        let line = " aaaa bbbb cccc dddd eeee";
        assert_eq!(wrap(line, 10), [" aaaa bbbb", " cccc dddd", " eeee"]);
        assert_eq!(wrap(line, 100), [line]);
        // A word longer than the width stays whole, on its own piece.
        assert_eq!(
            wrap(" a verylongwordhere b", 8),
            [" a", " verylongwordhere", " b"]
        );
    }

    #[test]
    fn doc_lines_never_break_before_a_markdown_block() {
        // Breaking before "-" or "1." would start a list item.
        let pieces = wrap(" aaaa bbbb - cccc 1. dddd", 10);
        for p in &pieces[1..] {
            assert!(!opens_block(&p[1..]), "{pieces:?}");
        }
        assert_eq!(pieces.concat(), " aaaa bbbb - cccc 1. dddd");
    }
}
