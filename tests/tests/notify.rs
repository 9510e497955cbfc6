//! `dmctl notify` end to end: the Package#0 it prints (`--hex`) and the
//! datagram it sends (`--to`) are read back bit by bit by a decoder written
//! here from spec 7.1.1, independent of dm-core's.
// Test helpers may panic on their own setup failures.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command as Process, Output};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;

/// One option as it is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireOption {
    number: u32,
    value: Vec<u8>,
    /// Offset of the value in the package.
    value_at: usize,
}

/// A Package#0 read from the bits of 7.1.1: VER (4 bits), OC (5 bits),
/// 7 reserved bits, then OC options of delta (4 bits), length (12 bits)
/// and value.
#[derive(Debug)]
struct Wire {
    version: u8,
    reserved: u8,
    options: Vec<WireOption>,
}

fn read_wire(bytes: &[u8]) -> Wire {
    assert!(bytes.len() >= 2, "a header is 2 bytes");
    let version = bytes[0] >> 4;
    let count = (((bytes[0] & 0x0f) << 1) | (bytes[1] >> 7)) as usize;
    let reserved = bytes[1] & 0x7f;
    let mut options = Vec::new();
    let mut at = 2;
    let mut number = 0u32;
    for _ in 0..count {
        let delta = u32::from(bytes[at] >> 4);
        let length = (usize::from(bytes[at] & 0x0f) << 8) | usize::from(bytes[at + 1]);
        assert!(delta > 0, "options in strictly increasing order");
        number += delta;
        let value_at = at + 2;
        options.push(WireOption {
            number,
            value: bytes[value_at..value_at + length].to_vec(),
            value_at,
        });
        at = value_at + length;
    }
    assert_eq!(at, bytes.len(), "OC options and nothing after them");
    Wire {
        version,
        reserved,
        options,
    }
}

impl Wire {
    fn option(&self, number: u32) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|o| o.number == number)
            .map(|o| o.value.as_slice())
    }
}

fn dmctl(args: &[&str]) -> Output {
    Process::new(common::dmctl())
        .arg("notify")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    let text = text.trim();
    assert!(text.len() % 2 == 0, "{text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

const SIGNED: &[&str] = &[
    "--server-id",
    "dms1",
    "--notification-id",
    "4660",
    "--req-mos",
    "--timestamp=1700000000",
    "--con-type",
    "wlan",
    "cellular",
    "any",
    "--secret",
    "s3cret-value",
    "--auth-data",
    "auth-bytes",
];

#[test]
fn hex_output_is_a_bit_exact_package0() {
    let out = dmctl(&[&["--hex"], SIGNED].concat());
    assert!(out.status.success(), "{out:?}");
    let bytes = unhex(&stdout(&out));
    let wire = read_wire(&bytes);
    assert_eq!(wire.version, 2, "VER 0x02 (5.2.1.1)");
    assert_eq!(wire.reserved, 0);
    let numbers: Vec<u32> = wire.options.iter().map(|o| o.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6], "all six options, in order");
    assert_eq!(wire.option(1), Some(&b"dms1"[..]));
    assert_eq!(
        wire.option(2),
        Some(&[0x02, 0x01, 0x00][..]),
        "WLAN, CELLULAR, ANY"
    );
    assert_eq!(wire.option(3), Some(&[0x12, 0x34][..]), "4660, 2 bytes");
    assert_eq!(
        wire.option(5),
        Some(&1_700_000_000u64.to_be_bytes()[..]),
        "TIMESTAMP on 8 bytes"
    );
    assert_eq!(wire.option(6), Some(&[][..]), "REQ-MOS has no value");

    // SHA256-DIGEST as 5.2.1.2: zero digest, hash secret | package | auth.
    let digest = wire.options.iter().find(|o| o.number == 4).unwrap();
    assert_eq!(digest.value.len(), 32);
    let mut zeroed = bytes.clone();
    zeroed[digest.value_at..digest.value_at + 32].fill(0);
    let mut h = Sha256::new();
    h.update(b"s3cret-value");
    h.update(&zeroed);
    h.update(b"auth-bytes");
    assert_eq!(digest.value, h.finalize().to_vec());
    assert!(!stdout(&out).contains("s3cret"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));
}

#[test]
fn minimal_notification_and_current_timestamp() {
    let out = dmctl(&["--hex", "--server-id", "x"]);
    assert!(out.status.success(), "{out:?}");
    // 0x2080: VER 2, OC 1; 0x1001: option 1 of 1 byte; 'x'.
    assert_eq!(stdout(&out).trim(), "20801001".to_owned() + "78");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = dmctl(&["--hex", "--server-id", "x", "--timestamp"]);
    assert!(out.status.success(), "{out:?}");
    let wire = read_wire(&unhex(&stdout(&out)));
    let ts = u64::from_be_bytes(wire.option(5).unwrap().try_into().unwrap());
    assert!(ts >= before && ts <= before + 60, "{ts} vs {before}");
}

#[tokio::test]
async fn the_datagram_sent_is_the_hex_printed() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let out =
        tokio::task::spawn_blocking(move || dmctl(&[&["--to", addr.as_str()], SIGNED].concat()))
            .await
            .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("a datagram within 10 s")
        .unwrap();
    let received = buf[..n].to_vec();

    let printed = unhex(&stdout(&dmctl(&[&["--hex"], SIGNED].concat())));
    assert_eq!(
        received, printed,
        "one datagram holding exactly the package"
    );
    let wire = read_wire(&received);
    assert_eq!(wire.option(1), Some(&b"dms1"[..]));
    assert_eq!(wire.option(3), Some(&[0x12, 0x34][..]));
}

#[tokio::test]
async fn hex_added_to_a_send_command_prints_and_sends_nothing() {
    // The contract lists `--to` always; `--hex` is added to that command.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        dmctl(&[&["--to", addr.as_str()], SIGNED, &["--hex"]].concat())
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = stdout(&dmctl(&[&["--hex"], SIGNED].concat()));
    assert_eq!(stdout(&out), printed, "the same package as --hex alone");
    let mut buf = [0u8; 2048];
    let received =
        tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await;
    assert!(received.is_err(), "--hex sends nothing: {received:?}");
}

#[test]
fn decode_prints_the_fields_and_checks_the_digest() {
    let hex = stdout(&dmctl(&[&["--hex"], SIGNED].concat()));
    let out = dmctl(&["--decode", hex.trim()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for line in [
        "VER: 2",
        "SERVER-ID: dms1",
        "PREFERRED-CON-TYPE: WLAN, CELLULAR, ANY_AVAILABLE",
        "NOTIFICATION-ID: 4660",
        "TIMESTAMP: 1700000000",
        "REQ-MOS",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    assert!(text.contains("SHA256-DIGEST: "), "{text}");

    let ok = dmctl(&[
        "--decode",
        hex.trim(),
        "--secret",
        "s3cret-value",
        "--auth-data",
        "auth-bytes",
    ]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).contains("DIGEST-CHECK: valid"));
    assert!(!stdout(&ok).contains("s3cret"));

    let bad = dmctl(&[
        "--decode",
        hex.trim(),
        "--secret",
        "wrong",
        "--auth-data",
        "auth-bytes",
    ]);
    assert!(!bad.status.success());
    assert!(stdout(&bad).contains("DIGEST-CHECK: invalid"));
}

#[test]
fn bad_input_is_reported_not_panicked_on() {
    // OC 1 with a 3-byte SERVER-ID of which one byte is present.
    let out = dmctl(&["--decode", "2080100361"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at byte 5"), "{err}");

    let out = dmctl(&["--decode", "20x0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // ANY_AVAILABLE must be last (5.2.1.2).
    let out = dmctl(&["--hex", "--server-id", "a", "--con-type", "any", "wlan"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // Neither --to nor --hex.
    let out = dmctl(&["--server-id", "a"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
