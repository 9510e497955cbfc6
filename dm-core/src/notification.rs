//! Package#0, the DM Notification (spec 5.2.1, 7.1.1): a bit-exact binary
//! encoder and decoder, and the SHA256-DIGEST of 5.2.1.2.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-------+---------+-------------+
//! |  VER  |   OC    |  RESERVED   |   header, 2 bytes (7.1.1.1)
//! +-------+---------+-------------+
//! | Delta |     Option Length     |   one option (7.1.1.2), OC times,
//! +-------+-----------------------+   in increasing option number
//! |  Option Value (Length bytes)  |
//! +-------------------------------+
//! ```
//!
//! Every field is big-endian (network order, 7.1.1). VER is 4 bits and must
//! be 0x02 (5.2.1.1), OC is the 5-bit number of options, the 7 reserved bits
//! are written as zero and ignored when read. An option's number is the sum
//! of its 4-bit delta and every preceding delta (7.1.1.2); its length is 12
//! bits, so a value holds at most 4095 bytes.
//!
//! Widths the spec leaves open are decided in docs/architecture.md
//! ("Package#0 TIMESTAMP"): TIMESTAMP is POSIX seconds as an unsigned
//! big-endian integer, written on 8 bytes and read from 1 to 8 bytes;
//! NOTIFICATION-ID is exactly 2 bytes (5.2.1.2).

use std::fmt;

use sha2::{Digest as _, Sha256};

/// The DM Notification version of this specification (5.2.1.1).
pub const VERSION: u8 = 0x02;

/// The length of the SHA256-DIGEST option value (5.2.1.2).
pub const DIGEST_LEN: usize = 32;

/// The largest option value the 12-bit Option Length can describe.
pub const MAX_VALUE_LEN: usize = 0x0fff;

/// The largest number of options the 5-bit OC can count.
pub const MAX_OPTIONS: usize = 0x1f;

/// The largest gap between two option numbers the 4-bit delta can encode.
pub const MAX_DELTA: u16 = 0x0f;

/// Option numbers of Table 1 (5.2.1.2).
pub mod option {
    pub const SERVER_ID: u16 = 1;
    pub const PREFERRED_CON_TYPE: u16 = 2;
    pub const NOTIFICATION_ID: u16 = 3;
    pub const SHA256_DIGEST: u16 = 4;
    pub const TIMESTAMP: u16 = 5;
    pub const REQ_MOS: u16 = 6;
    /// The first number not defined by the spec.
    pub const FIRST_UNKNOWN: u16 = 7;

    /// The name of a standard option, as Table 1 writes it.
    pub fn name(number: u16) -> Option<&'static str> {
        Some(match number {
            SERVER_ID => "SERVER-ID",
            PREFERRED_CON_TYPE => "PREFERRED-CON-TYPE",
            NOTIFICATION_ID => "NOTIFICATION-ID",
            SHA256_DIGEST => "SHA256-DIGEST",
            TIMESTAMP => "TIMESTAMP",
            REQ_MOS => "REQ-MOS",
            _ => return None,
        })
    }
}

/// One entry of the PREFERRED-CON-TYPE option (5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// 0x00: anything currently available; only valid as the last entry.
    AnyAvailable,
    /// 0x01: cellular, e.g. GSM/CDMA/UMTS/LTE.
    Cellular,
    /// 0x02: WLAN, e.g. IEEE 802.11.
    Wlan,
    /// 0x03: wireline.
    Wireline,
    /// A value the spec does not define, kept as received.
    Other(u8),
}

impl ConnectionType {
    /// The type a byte of the option value stands for.
    pub const fn from_byte(b: u8) -> ConnectionType {
        match b {
            0 => ConnectionType::AnyAvailable,
            1 => ConnectionType::Cellular,
            2 => ConnectionType::Wlan,
            3 => ConnectionType::Wireline,
            other => ConnectionType::Other(other),
        }
    }

    /// The byte of the option value. `Other(0..=3)` writes the byte of the
    /// standard type it shadows.
    pub const fn to_byte(self) -> u8 {
        match self {
            ConnectionType::AnyAvailable => 0,
            ConnectionType::Cellular => 1,
            ConnectionType::Wlan => 2,
            ConnectionType::Wireline => 3,
            ConnectionType::Other(b) => b,
        }
    }

    /// The name of Table "PREFERRED-CON-TYPE" values, or `0xNN`.
    pub fn name(self) -> String {
        match self {
            ConnectionType::AnyAvailable => "ANY_AVAILABLE".into(),
            ConnectionType::Cellular => "CELLULAR".into(),
            ConnectionType::Wlan => "WLAN".into(),
            ConnectionType::Wireline => "WIRELINE".into(),
            ConnectionType::Other(b) => format!("0x{b:02X}"),
        }
    }
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for ConnectionType {
    type Err = String;

    /// Reads a name of the spec's table (any case, `-` or `_`), `any`, or a
    /// number (`2`, `0x02`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        let named = match norm.as_str() {
            "ANY_AVAILABLE" | "ANY" => Some(ConnectionType::AnyAvailable),
            "CELLULAR" => Some(ConnectionType::Cellular),
            "WLAN" => Some(ConnectionType::Wlan),
            "WIRELINE" => Some(ConnectionType::Wireline),
            _ => None,
        };
        if let Some(t) = named {
            return Ok(t);
        }
        let number = match norm.strip_prefix("0X") {
            Some(hex) => u8::from_str_radix(hex, 16),
            None => norm.parse::<u8>(),
        };
        number
            .map(ConnectionType::from_byte)
            .map_err(|_| format!("unknown connection type `{s}`"))
    }
}

/// An option whose number the spec does not define (7 and above), kept as
/// received so that re-encoding gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownOption {
    pub number: u16,
    pub value: Vec<u8>,
}

/// A DM Notification (Package#0, spec 5.2.1). `None` / `false` means the
/// option is absent; every option occurs at most once (Table 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Notification {
    /// Option 1, SERVER-ID: the DMAcc server identifier.
    pub server_id: Option<String>,
    /// Option 2, PREFERRED-CON-TYPE: bearers by decreasing priority.
    pub preferred_con_types: Option<Vec<ConnectionType>>,
    /// Option 3, NOTIFICATION-ID: for duplicate detection with SERVER-ID.
    pub notification_id: Option<u16>,
    /// Option 4, SHA256-DIGEST (see [`Notification::sign`] and [`verify`]).
    pub digest: Option<[u8; DIGEST_LEN]>,
    /// Option 5, TIMESTAMP: POSIX seconds when the server sent it.
    pub timestamp: Option<u64>,
    /// Option 6, REQ-MOS: Package#1 must carry the MOS array.
    pub req_mos: bool,
    /// Options 7 and above, in increasing number.
    pub unknown: Vec<UnknownOption>,
}

/// Why a byte string is not a Package#0, with the byte offset of the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DM Notification at byte {offset}: {reason}")]
pub struct DecodeError {
    pub offset: usize,
    pub reason: DecodeErrorReason,
}

/// The kinds of Package#0 decoding error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorReason {
    #[error("input ends inside the {what}: {needed} more byte(s) needed")]
    Truncated { what: &'static str, needed: usize },
    #[error("VER is {0:#04x}; this specification defines 0x02 (5.2.1.1)")]
    BadVersion(u8),
    #[error("OC declares {declared} option(s) but the input ends after {found}")]
    MissingOptions { declared: usize, found: usize },
    #[error("bytes after the {declared} option(s) OC declares")]
    TrailingBytes { declared: usize },
    #[error("option number 0 (a first option with delta 0) is not defined")]
    ZeroOptionNumber,
    #[error("option {0} appears twice (delta 0): options must be in increasing order")]
    DuplicateOption(u16),
    #[error("{name} must be {expected} byte(s) long, found {found}")]
    BadLength {
        name: &'static str,
        expected: &'static str,
        found: usize,
    },
    #[error("SERVER-ID is not valid UTF-8")]
    InvalidUtf8,
    #[error("ANY_AVAILABLE must be the last preferred connection type")]
    AnyAvailableNotLast,
}

/// Why a [`Notification`] cannot be written as a Package#0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{count} options; OC has 5 bits, so at most 31")]
    TooManyOptions { count: usize },
    #[error("option {number} has {len} bytes; Option Length has 12 bits, so at most 4095")]
    ValueTooLong { number: u16, len: usize },
    #[error("option {number} follows option {previous}: the 4-bit delta reaches at most 15")]
    DeltaTooLarge { number: u16, previous: u16 },
    #[error("unknown option number {0} is not above the standard options (7 and above)")]
    NotAnUnknownNumber(u16),
    #[error("unknown options must be in strictly increasing number ({0} is out of order)")]
    UnknownOutOfOrder(u16),
    #[error("ANY_AVAILABLE must be the last preferred connection type")]
    AnyAvailableNotLast,
}

/// Why [`verify`] refused a notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the notification has no SHA256-DIGEST option")]
    NoDigest,
    #[error("the SHA256-DIGEST does not match the secret and auth data")]
    Mismatch,
}

fn derr(offset: usize, reason: DecodeErrorReason) -> DecodeError {
    DecodeError { offset, reason }
}

/// An option value and its number, in encoding order.
struct RawOption<'a> {
    number: u16,
    value: std::borrow::Cow<'a, [u8]>,
}

impl Notification {
    /// An empty notification (no options): the smallest valid Package#0.
    pub fn new() -> Notification {
        Notification::default()
    }

    /// The options in increasing number, with their encoded values.
    fn raw_options(&self) -> Result<Vec<RawOption<'_>>, EncodeError> {
        use std::borrow::Cow;
        let mut out = Vec::new();
        if let Some(id) = &self.server_id {
            out.push(RawOption {
                number: option::SERVER_ID,
                value: Cow::Borrowed(id.as_bytes()),
            });
        }
        if let Some(types) = &self.preferred_con_types {
            if let Some(pos) = types.iter().position(|t| t.to_byte() == 0) {
                if pos + 1 != types.len() {
                    return Err(EncodeError::AnyAvailableNotLast);
                }
            }
            out.push(RawOption {
                number: option::PREFERRED_CON_TYPE,
                value: Cow::Owned(types.iter().map(|t| t.to_byte()).collect()),
            });
        }
        if let Some(id) = self.notification_id {
            out.push(RawOption {
                number: option::NOTIFICATION_ID,
                value: Cow::Owned(id.to_be_bytes().to_vec()),
            });
        }
        if let Some(digest) = &self.digest {
            out.push(RawOption {
                number: option::SHA256_DIGEST,
                value: Cow::Borrowed(digest),
            });
        }
        if let Some(ts) = self.timestamp {
            out.push(RawOption {
                number: option::TIMESTAMP,
                value: Cow::Owned(ts.to_be_bytes().to_vec()),
            });
        }
        if self.req_mos {
            out.push(RawOption {
                number: option::REQ_MOS,
                value: Cow::Borrowed(&[]),
            });
        }
        let mut previous = option::REQ_MOS;
        for u in &self.unknown {
            if u.number < option::FIRST_UNKNOWN {
                return Err(EncodeError::NotAnUnknownNumber(u.number));
            }
            if u.number <= previous {
                return Err(EncodeError::UnknownOutOfOrder(u.number));
            }
            previous = u.number;
            out.push(RawOption {
                number: u.number,
                value: Cow::Borrowed(&u.value),
            });
        }
        Ok(out)
    }

    /// Writes the notification as Package#0 bytes (7.1.1).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_with_offsets().map(|(bytes, _)| bytes)
    }

    /// Encodes, and returns the offset of the SHA256-DIGEST value if any.
    fn encode_with_offsets(&self) -> Result<(Vec<u8>, Option<usize>), EncodeError> {
        let options = self.raw_options()?;
        if options.len() > MAX_OPTIONS {
            return Err(EncodeError::TooManyOptions {
                count: options.len(),
            });
        }
        let size = 2 + options.iter().map(|o| 2 + o.value.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        // VER (4 bits) | OC (5 bits) | RESERVED (7 bits), big-endian.
        let header: u16 = (u16::from(VERSION) << 12) | ((options.len() as u16) << 7);
        out.extend_from_slice(&header.to_be_bytes());
        let mut previous = 0u16;
        let mut digest_at = None;
        for o in &options {
            let delta = o.number - previous;
            if delta > MAX_DELTA {
                return Err(EncodeError::DeltaTooLarge {
                    number: o.number,
                    previous,
                });
            }
            if o.value.len() > MAX_VALUE_LEN {
                return Err(EncodeError::ValueTooLong {
                    number: o.number,
                    len: o.value.len(),
                });
            }
            let word: u16 = (delta << 12) | o.value.len() as u16;
            out.extend_from_slice(&word.to_be_bytes());
            if o.number == option::SHA256_DIGEST {
                digest_at = Some(out.len());
            }
            out.extend_from_slice(&o.value);
            previous = o.number;
        }
        Ok((out, digest_at))
    }

    /// Reads Package#0 bytes (7.1.1). Rejects truncated input, a VER other
    /// than 0x02, an OC that disagrees with the options present, option
    /// number 0, repeated options, wrong fixed lengths (NOTIFICATION-ID 2,
    /// SHA256-DIGEST 32, TIMESTAMP 1 to 8, REQ-MOS 0), a SERVER-ID that is
    /// not UTF-8 and ANY_AVAILABLE before another connection type.
    pub fn decode(bytes: &[u8]) -> Result<Notification, DecodeError> {
        decode_with_offsets(bytes).map(|(n, _)| n)
    }

    /// The SHA256-DIGEST of this notification as 5.2.1.2 defines it:
    /// SHA256(server-secret | notification with a zero digest | auth-data),
    /// where the notification is this one with its digest option present
    /// and set to 32 zero bytes (Step 1 and 2).
    pub fn compute_digest(
        &self,
        secret: &[u8],
        auth_data: &[u8],
    ) -> Result<[u8; DIGEST_LEN], EncodeError> {
        let zeroed = Notification {
            digest: Some([0; DIGEST_LEN]),
            ..self.clone()
        };
        let bytes = zeroed.encode()?;
        Ok(compute_digest(secret, &bytes, auth_data))
    }

    /// Sets the SHA256-DIGEST option to the digest of 5.2.1.2 (Step 3).
    pub fn sign(&mut self, secret: &[u8], auth_data: &[u8]) -> Result<(), EncodeError> {
        self.digest = Some(self.compute_digest(secret, auth_data)?);
        Ok(())
    }

    /// True when the TIMESTAMP is at most `max_age` seconds before `now`
    /// and not more than `max_age` in its future (clock skew); also true
    /// without a TIMESTAMP, which the spec makes optional. 5.2.1.2 leaves
    /// the window to the implementation ("too old").
    pub fn is_fresh(&self, now: u64, max_age: u64) -> bool {
        match self.timestamp {
            None => true,
            Some(ts) => ts.abs_diff(now) <= max_age,
        }
    }
}

/// SHA256(secret | message | auth_data) (5.2.1.2 Step 2). `message` is the
/// encoded notification whose SHA256-DIGEST value is 32 zero bytes.
pub fn compute_digest(secret: &[u8], message: &[u8], auth_data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(message);
    h.update(auth_data);
    h.finalize().into()
}

/// Decodes `bytes` and checks its SHA256-DIGEST against `secret` and
/// `auth_data` (5.2.1.2): the digest value is replaced by zeros in the bytes
/// as received, hashed with the secret before and the auth data after, and
/// compared. A notification without the digest option is refused: the
/// caller asked for an authenticated one.
pub fn verify(bytes: &[u8], secret: &[u8], auth_data: &[u8]) -> Result<Notification, VerifyError> {
    let (notification, digest_at) = decode_with_offsets(bytes)?;
    let (Some(at), Some(received)) = (digest_at, notification.digest) else {
        return Err(VerifyError::NoDigest);
    };
    let mut zeroed = bytes.to_vec();
    zeroed[at..at + DIGEST_LEN].fill(0);
    let expected = compute_digest(secret, &zeroed, auth_data);
    // Compare without an early exit, so timing tells nothing of the digest.
    let diff = expected
        .iter()
        .zip(received.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(notification)
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Encodes `n` with its digest computed from `secret` and `auth_data`.
pub fn encode_signed(
    n: &Notification,
    secret: &[u8],
    auth_data: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let zeroed = Notification {
        digest: Some([0; DIGEST_LEN]),
        ..n.clone()
    };
    let (mut bytes, digest_at) = zeroed.encode_with_offsets()?;
    let digest = compute_digest(secret, &bytes, auth_data);
    if let Some(at) = digest_at {
        bytes[at..at + DIGEST_LEN].copy_from_slice(&digest);
    }
    Ok(bytes)
}

fn decode_with_offsets(bytes: &[u8]) -> Result<(Notification, Option<usize>), DecodeError> {
    let header = match bytes {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => {
            return Err(derr(
                bytes.len(),
                DecodeErrorReason::Truncated {
                    what: "header",
                    needed: 2 - bytes.len(),
                },
            ))
        }
    };
    let version = (header >> 12) as u8;
    if version != VERSION {
        return Err(derr(0, DecodeErrorReason::BadVersion(version)));
    }
    let declared = usize::from((header >> 7) & 0x1f);
    let mut n = Notification::default();
    let mut digest_at = None;
    let mut pos = 2;
    let mut number = 0u16;
    for found in 0..declared {
        let start = pos;
        let word = match bytes.get(pos..pos + 2) {
            Some([a, b]) => u16::from_be_bytes([*a, *b]),
            _ if pos == bytes.len() => {
                return Err(derr(
                    pos,
                    DecodeErrorReason::MissingOptions { declared, found },
                ))
            }
            _ => {
                return Err(derr(
                    bytes.len(),
                    DecodeErrorReason::Truncated {
                        what: "option header",
                        needed: pos + 2 - bytes.len(),
                    },
                ))
            }
        };
        let delta = word >> 12;
        let len = usize::from(word & 0x0fff);
        if delta == 0 {
            let reason = if found == 0 {
                DecodeErrorReason::ZeroOptionNumber
            } else {
                DecodeErrorReason::DuplicateOption(number)
            };
            return Err(derr(start, reason));
        }
        number += delta;
        pos += 2;
        let value_at = pos;
        let value = bytes.get(pos..pos + len).ok_or_else(|| {
            derr(
                bytes.len(),
                DecodeErrorReason::Truncated {
                    what: "option value",
                    needed: pos + len - bytes.len(),
                },
            )
        })?;
        pos += len;
        let bad_length = |expected: &'static str| {
            derr(
                start,
                DecodeErrorReason::BadLength {
                    name: option::name(number).unwrap_or("option"),
                    expected,
                    found: len,
                },
            )
        };
        match number {
            option::SERVER_ID => {
                let text = std::str::from_utf8(value).map_err(|e| {
                    derr(value_at + e.valid_up_to(), DecodeErrorReason::InvalidUtf8)
                })?;
                n.server_id = Some(text.to_owned());
            }
            option::PREFERRED_CON_TYPE => {
                if let Some(i) = value.iter().position(|b| *b == 0) {
                    if i + 1 != value.len() {
                        return Err(derr(value_at + i, DecodeErrorReason::AnyAvailableNotLast));
                    }
                }
                n.preferred_con_types = Some(
                    value
                        .iter()
                        .map(|b| ConnectionType::from_byte(*b))
                        .collect(),
                );
            }
            option::NOTIFICATION_ID => match value {
                [a, b] => n.notification_id = Some(u16::from_be_bytes([*a, *b])),
                _ => return Err(bad_length("2")),
            },
            option::SHA256_DIGEST => {
                let digest: [u8; DIGEST_LEN] = value.try_into().map_err(|_| bad_length("32"))?;
                n.digest = Some(digest);
                digest_at = Some(value_at);
            }
            option::TIMESTAMP => {
                if value.is_empty() || value.len() > 8 {
                    return Err(bad_length("1 to 8"));
                }
                n.timestamp = Some(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
            }
            option::REQ_MOS => {
                if !value.is_empty() {
                    return Err(bad_length("0"));
                }
                n.req_mos = true;
            }
            _ => n.unknown.push(UnknownOption {
                number,
                value: value.to_vec(),
            }),
        }
    }
    if pos != bytes.len() {
        return Err(derr(pos, DecodeErrorReason::TrailingBytes { declared }));
    }
    Ok((n, digest_at))
}

impl fmt::Display for Notification {
    /// One `NAME: value` line per option present, in option order. The
    /// digest is shown in hex; it is a hash, not the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VER: {VERSION}")?;
        if let Some(id) = &self.server_id {
            writeln!(f, "SERVER-ID: {id}")?;
        }
        if let Some(types) = &self.preferred_con_types {
            let names: Vec<String> = types.iter().map(|t| t.name()).collect();
            writeln!(f, "PREFERRED-CON-TYPE: {}", names.join(", "))?;
        }
        if let Some(id) = self.notification_id {
            writeln!(f, "NOTIFICATION-ID: {id}")?;
        }
        if let Some(d) = &self.digest {
            writeln!(f, "SHA256-DIGEST: {}", hex(d))?;
        }
        if let Some(ts) = self.timestamp {
            writeln!(f, "TIMESTAMP: {ts}")?;
        }
        if self.req_mos {
            writeln!(f, "REQ-MOS")?;
        }
        for u in &self.unknown {
            writeln!(f, "OPTION-{}: {}", u.number, hex(&u.value))?;
        }
        Ok(())
    }
}

/// The digest and options as the text above shows them, and back (the
/// `notify` tool reads a digest given in hex).
pub use crate::hex::{decode as from_hex, encode as hex, HexError};

/// Remembers the NOTIFICATION-IDs recently seen per SERVER-ID, so that a
/// duplicated notification is dropped (5.2.1.2: "The DM Client MUST drop
/// the duplicated DM Notification"). Keeps the last `capacity` pairs.
#[derive(Debug, Clone)]
pub struct SeenNotifications {
    capacity: usize,
    seen: std::collections::VecDeque<(String, u16)>,
}

impl SeenNotifications {
    pub fn new(capacity: usize) -> SeenNotifications {
        SeenNotifications {
            capacity: capacity.max(1),
            seen: std::collections::VecDeque::new(),
        }
    }

    /// Records the notification; false when the same (SERVER-ID,
    /// NOTIFICATION-ID) pair was already seen, i.e. it must be dropped. A
    /// notification without NOTIFICATION-ID is never a duplicate (the
    /// transport is then trusted to discard duplicates).
    pub fn first_time(&mut self, server_id: &str, n: &Notification) -> bool {
        let Some(id) = n.notification_id else {
            return true;
        };
        if self.seen.iter().any(|(s, i)| s == server_id && *i == id) {
            return false;
        }
        if self.seen.len() == self.capacity {
            self.seen.pop_front();
        }
        self.seen.push_back((server_id.to_owned(), id));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Notification {
        Notification {
            server_id: Some("dms1".into()),
            preferred_con_types: Some(vec![
                ConnectionType::Wlan,
                ConnectionType::Cellular,
                ConnectionType::AnyAvailable,
            ]),
            notification_id: Some(0x1234),
            digest: Some([0xAB; DIGEST_LEN]),
            timestamp: Some(1_700_000_000),
            req_mos: true,
            unknown: vec![],
        }
    }

    #[test]
    fn empty_notification_is_the_two_byte_header() {
        // VER=0x2 in the top 4 bits, OC=0, reserved 0 (7.1.1.1, Table 2).
        assert_eq!(Notification::new().encode().unwrap(), [0x20, 0x00]);
        assert_eq!(
            Notification::decode(&[0x20, 0x00]).unwrap(),
            Notification::new()
        );
    }

    #[test]
    fn header_bits_follow_table_2() {
        let n = Notification {
            req_mos: true,
            ..Notification::new()
        };
        // 0010 00001 0000000 = 0x2080; then delta 6, length 0 (7.1.1.2:
        // "the shortest Option can be 2 bytes long").
        assert_eq!(n.encode().unwrap(), [0x20, 0x80, 0x60, 0x00]);
        // OC = 31 uses all 5 bits: 0010 11111 0000000 = 0x2F80.
        let many = Notification {
            unknown: (7..=37)
                .map(|number| UnknownOption {
                    number,
                    value: vec![],
                })
                .collect(),
            ..Notification::new()
        };
        let bytes = many.encode().unwrap();
        assert_eq!(&bytes[..2], [0x2F, 0x80]);
        assert_eq!(&bytes[2..4], [0x70, 0x00], "first option: delta 7");
        assert_eq!(Notification::decode(&bytes).unwrap(), many);
    }

    #[test]
    fn every_option_is_encoded_bit_exactly() {
        let bytes = full().encode().unwrap();
        let mut expected = vec![0x23, 0x00]; // VER 2, OC 6
        expected.extend([0x10, 0x04]); // delta 1 length 4
        expected.extend(b"dms1");
        expected.extend([0x10, 0x03, 0x02, 0x01, 0x00]); // delta 1, WLAN, CELLULAR, ANY
        expected.extend([0x10, 0x02, 0x12, 0x34]); // NOTIFICATION-ID 0x1234
        expected.extend([0x10, 0x20]); // delta 1 length 32
        expected.extend([0xAB; 32]);
        expected.extend([0x10, 0x08]); // TIMESTAMP on 8 bytes
        expected.extend(1_700_000_000u64.to_be_bytes());
        expected.extend([0x10, 0x00]); // REQ-MOS
        assert_eq!(bytes, expected);
        assert_eq!(Notification::decode(&bytes).unwrap(), full());
    }

    #[test]
    fn deltas_skip_absent_options() {
        let n = Notification {
            server_id: Some("s".into()),
            timestamp: Some(1),
            ..Notification::new()
        };
        let bytes = n.encode().unwrap();
        // SERVER-ID delta 1, then TIMESTAMP delta 4 (5 - 1).
        assert_eq!(bytes[..5], [0x21, 0x00, 0x10, 0x01, b's']);
        assert_eq!(bytes[5..7], [0x40, 0x08]);
    }

    #[test]
    fn timestamp_is_read_from_one_to_eight_bytes() {
        for (value, expected) in [
            (&[0x05][..], 5u64),
            (&[0x65, 0x53, 0xF1, 0x00], 0x6553_F100),
            (&[0xFF; 8], u64::MAX),
        ] {
            let mut bytes = vec![0x20, 0x80, 0x50, value.len() as u8];
            bytes.extend_from_slice(value);
            let n = Notification::decode(&bytes).unwrap();
            assert_eq!(n.timestamp, Some(expected));
        }
    }

    #[test]
    fn unknown_options_round_trip() {
        // OC 1, then delta 9 length 2: option 9, which Table 1 does not define.
        let bytes = [0x20, 0x80, 0x90, 0x02, 0xCA, 0xFE];
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!(
            n.unknown,
            [UnknownOption {
                number: 9,
                value: vec![0xCA, 0xFE]
            }]
        );
        assert_eq!(n.encode().unwrap(), bytes);
    }

    #[test]
    fn malformed_input_is_rejected_with_its_offset() {
        use DecodeErrorReason as R;
        let cases: Vec<(Vec<u8>, usize, R)> = vec![
            (
                vec![],
                0,
                R::Truncated {
                    what: "header",
                    needed: 2,
                },
            ),
            (
                vec![0x20],
                1,
                R::Truncated {
                    what: "header",
                    needed: 1,
                },
            ),
            (vec![0x10, 0x00], 0, R::BadVersion(1)),
            (vec![0x30, 0x00], 0, R::BadVersion(3)),
            // OC 1 but nothing follows.
            (
                vec![0x20, 0x80],
                2,
                R::MissingOptions {
                    declared: 1,
                    found: 0,
                },
            ),
            // OC 1, half an option header.
            (
                vec![0x20, 0x80, 0x60],
                3,
                R::Truncated {
                    what: "option header",
                    needed: 1,
                },
            ),
            // OC 1, SERVER-ID of length 3 with 1 byte.
            (
                vec![0x20, 0x80, 0x10, 0x03, b'a'],
                5,
                R::Truncated {
                    what: "option value",
                    needed: 2,
                },
            ),
            // OC 0 but an option follows.
            (
                vec![0x20, 0x00, 0x60, 0x00],
                2,
                R::TrailingBytes { declared: 0 },
            ),
            // First option with delta 0 has number 0.
            (vec![0x20, 0x80, 0x00, 0x00], 2, R::ZeroOptionNumber),
            // REQ-MOS twice (second delta 0).
            (
                vec![0x21, 0x00, 0x60, 0x00, 0x00, 0x00],
                4,
                R::DuplicateOption(6),
            ),
            // NOTIFICATION-ID of 1 byte.
            (
                vec![0x20, 0x80, 0x30, 0x01, 0x07],
                2,
                R::BadLength {
                    name: "NOTIFICATION-ID",
                    expected: "2",
                    found: 1,
                },
            ),
            // SHA256-DIGEST of 2 bytes.
            (
                vec![0x20, 0x80, 0x40, 0x02, 0, 0],
                2,
                R::BadLength {
                    name: "SHA256-DIGEST",
                    expected: "32",
                    found: 2,
                },
            ),
            // TIMESTAMP of 0 bytes.
            (
                vec![0x20, 0x80, 0x50, 0x00],
                2,
                R::BadLength {
                    name: "TIMESTAMP",
                    expected: "1 to 8",
                    found: 0,
                },
            ),
            // REQ-MOS with a value.
            (
                vec![0x20, 0x80, 0x60, 0x01, 0x00],
                2,
                R::BadLength {
                    name: "REQ-MOS",
                    expected: "0",
                    found: 1,
                },
            ),
            // SERVER-ID "a\xFF".
            (vec![0x20, 0x80, 0x10, 0x02, b'a', 0xFF], 5, R::InvalidUtf8),
            // ANY_AVAILABLE before CELLULAR.
            (
                vec![0x20, 0x80, 0x20, 0x02, 0x00, 0x01],
                4,
                R::AnyAvailableNotLast,
            ),
        ];
        for (bytes, offset, reason) in cases {
            let e = Notification::decode(&bytes).unwrap_err();
            assert_eq!((e.offset, &e.reason), (offset, &reason), "{bytes:02x?}");
        }
    }

    #[test]
    fn encoder_refuses_what_the_format_cannot_carry() {
        let long = Notification {
            server_id: Some("x".repeat(4096)),
            ..Notification::new()
        };
        assert_eq!(
            long.encode(),
            Err(EncodeError::ValueTooLong {
                number: 1,
                len: 4096
            })
        );
        let max = Notification {
            server_id: Some("x".repeat(4095)),
            ..Notification::new()
        };
        assert_eq!(&max.encode().unwrap()[2..4], [0x1F, 0xFF]);
        let gap = Notification {
            unknown: vec![UnknownOption {
                number: 22,
                value: vec![],
            }],
            req_mos: true,
            ..Notification::new()
        };
        assert_eq!(
            gap.encode(),
            Err(EncodeError::DeltaTooLarge {
                number: 22,
                previous: 6
            })
        );
        let any_first = Notification {
            preferred_con_types: Some(vec![ConnectionType::AnyAvailable, ConnectionType::Wlan]),
            ..Notification::new()
        };
        assert_eq!(any_first.encode(), Err(EncodeError::AnyAvailableNotLast));
        let too_many = Notification {
            unknown: (7..=38)
                .map(|number| UnknownOption {
                    number,
                    value: vec![],
                })
                .collect(),
            ..Notification::new()
        };
        assert_eq!(
            too_many.encode(),
            Err(EncodeError::TooManyOptions { count: 32 })
        );
        let standard_number = Notification {
            unknown: vec![UnknownOption {
                number: 3,
                value: vec![0, 0],
            }],
            ..Notification::new()
        };
        assert_eq!(
            standard_number.encode(),
            Err(EncodeError::NotAnUnknownNumber(3))
        );
        let unordered = Notification {
            unknown: vec![
                UnknownOption {
                    number: 9,
                    value: vec![],
                },
                UnknownOption {
                    number: 8,
                    value: vec![],
                },
            ],
            ..Notification::new()
        };
        assert_eq!(unordered.encode(), Err(EncodeError::UnknownOutOfOrder(8)));
    }

    #[test]
    fn digest_follows_5_2_1_2_steps() {
        let secret = b"server-secret";
        let auth = b"auth-data";
        let mut n = full();
        n.digest = None;
        let bytes = encode_signed(&n, secret, auth).unwrap();

        // Step 1: the same notification with a zero digest.
        let mut zero = n.clone();
        zero.digest = Some([0; 32]);
        let zero_bytes = zero.encode().unwrap();
        // Step 2: Hash(server-secret | notification-message | auth-data),
        // computed here without compute_digest.
        let mut h = Sha256::new();
        h.update([secret.as_slice(), &zero_bytes, auth].concat());
        let expected: [u8; 32] = h.finalize().into();
        // Step 3: the zero digest replaced, nothing else changed.
        let decoded = verify(&bytes, secret, auth).unwrap();
        assert_eq!(decoded.digest, Some(expected));
        assert_eq!(bytes.len(), zero_bytes.len());
        let at = zero_bytes.len() - 32 - 2 - 8 - 2;
        assert_eq!(&bytes[at..at + 32], expected);
        assert_eq!(bytes[..at], zero_bytes[..at]);
        assert_eq!(bytes[at + 32..], zero_bytes[at + 32..]);

        let mut signed = n.clone();
        signed.sign(secret, auth).unwrap();
        assert_eq!(signed.digest, Some(expected));
        assert_eq!(signed.encode().unwrap(), bytes);
    }

    #[test]
    fn verify_refuses_wrong_secret_tampering_and_missing_digest() {
        let secret = b"s3cret";
        let auth = b"data";
        let bytes = encode_signed(&full(), secret, auth).unwrap();
        assert!(verify(&bytes, secret, auth).is_ok());
        assert_eq!(verify(&bytes, b"other", auth), Err(VerifyError::Mismatch));
        assert_eq!(verify(&bytes, secret, b"other"), Err(VerifyError::Mismatch));
        let mut tampered = bytes.clone();
        tampered[4] ^= 1; // a byte of SERVER-ID
        assert_eq!(verify(&tampered, secret, auth), Err(VerifyError::Mismatch));
        let unsigned = Notification {
            digest: None,
            ..full()
        }
        .encode()
        .unwrap();
        assert_eq!(verify(&unsigned, secret, auth), Err(VerifyError::NoDigest));
        assert!(matches!(
            verify(&[0x10, 0x00], secret, auth),
            Err(VerifyError::Decode(_))
        ));
    }

    #[test]
    fn verify_hashes_the_bytes_as_received() {
        // A 4-byte TIMESTAMP and set reserved bits: re-encoding would differ,
        // the digest must still be checked over what was sent.
        let secret = b"k";
        let auth = b"";
        let mut bytes = vec![0x21, 0x7F]; // OC 2, reserved bits all set
        bytes.extend([0x40, 0x20]);
        bytes.extend([0u8; 32]);
        bytes.extend([0x10, 0x04, 0x65, 0x53, 0xF1, 0x00]);
        let digest = compute_digest(secret, &bytes, auth);
        bytes[4..36].copy_from_slice(&digest);
        let n = verify(&bytes, secret, auth).unwrap();
        assert_eq!(n.timestamp, Some(0x6553_F100));
        assert_ne!(n.encode().unwrap(), bytes);
    }

    #[test]
    fn connection_types_parse_and_keep_unknown_values() {
        assert_eq!("wlan".parse(), Ok(ConnectionType::Wlan));
        assert_eq!("ANY-AVAILABLE".parse(), Ok(ConnectionType::AnyAvailable));
        assert_eq!("0x07".parse(), Ok(ConnectionType::Other(7)));
        assert_eq!("3".parse(), Ok(ConnectionType::Wireline));
        assert!("fiber".parse::<ConnectionType>().is_err());
        let bytes = [0x20, 0x80, 0x20, 0x02, 0x09, 0x00];
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!(
            n.preferred_con_types,
            Some(vec![ConnectionType::Other(9), ConnectionType::AnyAvailable])
        );
        assert_eq!(n.encode().unwrap(), bytes);
    }

    #[test]
    fn duplicates_are_detected_per_server_and_freshness_is_a_window() {
        let mut seen = SeenNotifications::new(2);
        let n = |id| Notification {
            notification_id: Some(id),
            ..Notification::new()
        };
        assert!(seen.first_time("a", &n(1)));
        assert!(!seen.first_time("a", &n(1)));
        assert!(seen.first_time("b", &n(1)));
        assert!(seen.first_time("a", &n(2))); // evicts ("a", 1)
        assert!(seen.first_time("a", &n(1)));
        assert!(seen.first_time("a", &Notification::new()));
        assert!(seen.first_time("a", &Notification::new()));

        let t = Notification {
            timestamp: Some(1000),
            ..Notification::new()
        };
        assert!(t.is_fresh(1300, 300));
        assert!(!t.is_fresh(1301, 300));
        assert!(t.is_fresh(700, 300));
        assert!(Notification::new().is_fresh(u64::MAX, 0));
    }
}
