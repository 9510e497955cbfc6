//! Hexadecimal digits: the one table dm-core writes and reads hex with.
//!
//! Lower case for the Package#0 digest and unknown options shown as text
//! (spec 7.1) and for JSON's `\u00XX` escapes (RFC 8259 7, as serde_json
//! writes them); upper case for percent-encoding (RFC 3986 2.1: "should use
//! uppercase hexadecimal digits").

/// Which digits a byte is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Lower,
    Upper,
}

/// The two digits of `b`, high nibble first.
pub(crate) fn digits(b: u8, case: Case) -> [u8; 2] {
    let table = match case {
        Case::Lower => b"0123456789abcdef",
        Case::Upper => b"0123456789ABCDEF",
    };
    [table[usize::from(b >> 4)], table[usize::from(b & 0x0f)]]
}

/// The value of one hex digit of either case.
pub(crate) fn value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        let [high, low] = digits(b, Case::Lower);
        s.push(char::from(high));
        s.push(char::from(low));
    }
    s
}

/// Why a hex string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("odd number of hex digits")]
    OddLength,
    #[error("`{found}` at position {position} is not a hex digit")]
    BadDigit { position: usize, found: char },
}

/// Reads hex (either case); whitespace between digits is ignored.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let digits: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    let value_of = |&(position, found): &(usize, char)| {
        u8::try_from(found)
            .ok()
            .and_then(value)
            .ok_or(HexError::BadDigit { position, found })
    };
    digits
        .chunks_exact(2)
        .map(|pair| Ok(value_of(&pair[0])? << 4 | value_of(&pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_written_as_format_writes_it_and_read_back() {
        for b in 0..=u8::MAX {
            assert_eq!(digits(b, Case::Lower), *format!("{b:02x}").as_bytes());
            assert_eq!(digits(b, Case::Upper), *format!("{b:02X}").as_bytes());
            for case in [Case::Lower, Case::Upper] {
                let [h, l] = digits(b, case);
                assert_eq!(value(h).zip(value(l)).map(|(h, l)| h << 4 | l), Some(b));
            }
        }
        for not_a_digit in [b'g', b'G', b'/', b':', b'@', b'`', b' ', 0xff] {
            assert_eq!(value(not_a_digit), None);
        }
    }

    #[test]
    fn hex_round_trips_and_reports_bad_digits() {
        assert_eq!(encode(&[0x20, 0x0f, 0xab]), "200fab");
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("20 0F ab").unwrap(), [0x20, 0x0f, 0xab]);
        assert_eq!(decode("abc"), Err(HexError::OddLength));
        assert_eq!(
            decode("zz"),
            Err(HexError::BadDigit {
                position: 0,
                found: 'z'
            })
        );
        // A non-ASCII character is a bad digit, not a panic.
        assert_eq!(
            decode("a\u{e9}"),
            Err(HexError::BadDigit {
                position: 1,
                found: '\u{e9}'
            })
        );
    }
}
