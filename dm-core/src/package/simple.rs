//! The fast path of [`Package2::parse`] (the module's head gives its
//! figure): the Package#2 every server sends, an object whose only member
//! is `CMD`, an array of arrays of strings without escapes, read by a
//! plain byte scan. It answers only when the input is exactly that;
//! anything else (escapes, numbers, other members, any fault) is `None`
//! and goes to the serde path, which parses it or says what is wrong. A
//! test holds the two to the same result on mutated packages.

use super::{Command, CommandError, Package2};

struct Reader<'a> {
    /// The whole package, checked to be UTF-8 once: a string is then
    /// sliced out between two ASCII quotes, always at char boundaries.
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Consumes `b` after any whitespace.
    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        let found = self.bytes.get(self.at) == Some(&b);
        self.at += usize::from(found);
        found
    }

    /// A string without escapes or control characters, after any
    /// whitespace. Inlined: two per command, most of them short.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let len = crate::value::first_to_escape(self.bytes.get(start..)?)?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }
}

pub(super) fn parse(bytes: &[u8]) -> Option<Package2> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader { text, bytes, at: 0 };
    if !(r.eat(b'{') && r.string()? == "CMD" && r.eat(b':') && r.eat(b'[')) {
        return None;
    }
    // As the serde path: one vector, sized from the input once. A
    // GET of a short ClientURI takes some 40 bytes: sized for that, a
    // package of such commands never grows (and copies) the vector.
    let mut commands = Vec::with_capacity((bytes.len() / 36).clamp(4, 4096));
    let mut strings: Vec<&str> = Vec::with_capacity(8);
    if !r.eat(b']') {
        loop {
            if !r.eat(b'[') {
                return None;
            }
            strings.clear();
            if !r.eat(b']') {
                loop {
                    strings.push(r.string()?);
                    if !r.eat(b',') {
                        break;
                    }
                }
                if !r.eat(b']') {
                    return None;
                }
            }
            commands.push(match strings.split_first() {
                Some((name, params)) => Command::from_parts(name, params),
                None => Err(CommandError::Empty),
            });
            if !r.eat(b',') {
                break;
            }
        }
        if !r.eat(b']') {
            return None;
        }
    }
    if !r.eat(b'}') {
        return None;
    }
    r.skip_ws();
    (r.at == bytes.len()).then_some(Package2 { commands })
}
