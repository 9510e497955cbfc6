//! `dmctl notify`: build a Package#0 (spec 5.2.1, 7.1.1) and send it as one
//! UDP datagram, print it as hex, or decode one given in hex.
//!
//! `--secret` and `--auth-data` are text: their UTF-8 bytes are the
//! server-secret and auth-data of the SHA256-DIGEST (5.2.1.2). The secret
//! is never printed.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use dm_core::notification::{self, ConnectionType, Notification};

/// Exit status for bad usage (as clap's).
const EXIT_USAGE: u8 = 2;

/// Arguments of `dmctl notify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  dmctl notify --to 127.0.0.1:5683 --server-id dms1 --notification-id 7 --req-mos\n  dmctl notify --hex --server-id dms1 --secret s3cret --auth-data data --timestamp\n  dmctl notify --decode 2080 6000"
)]
pub struct NotifyArgs {
    /// UDP address to send the notification to (host:port).
    #[arg(long, value_name = "ADDR", required_unless_present_any = ["hex", "decode"])]
    to: Option<String>,
    /// SERVER-ID option: the DMAcc server identifier.
    #[arg(long, value_name = "ID", required_unless_present = "decode")]
    server_id: Option<String>,
    /// Server secret (text) for the SHA256-DIGEST option; with --decode,
    /// checks the digest instead. Never printed.
    #[arg(long, value_name = "S")]
    secret: Option<String>,
    /// Auth data (text) hashed after the notification; empty by default.
    #[arg(long, value_name = "D", requires = "secret")]
    auth_data: Option<String>,
    /// NOTIFICATION-ID option (0-65535), for duplicate detection.
    #[arg(long, value_name = "N")]
    notification_id: Option<u16>,
    /// REQ-MOS option: ask for the MOS array in Package#1.
    #[arg(long)]
    req_mos: bool,
    /// TIMESTAMP option: now, or the POSIX seconds given (--timestamp=SECS).
    #[arg(long, value_name = "SECS", num_args = 0..=1, require_equals = true)]
    timestamp: Option<Option<u64>>,
    /// PREFERRED-CON-TYPE option, by priority: any, cellular, wlan,
    /// wireline or a number (any must come last).
    #[arg(long = "con-type", value_name = "T", num_args = 1..)]
    con_type: Vec<ConnectionType>,
    /// Print the notification as hex on stdout instead of sending it;
    /// with --to, nothing is sent (scripts add --hex to a send command).
    #[arg(long)]
    hex: bool,
    /// Decode a notification given in hex and print its fields.
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with_all = ["to", "hex", "server_id", "notification_id", "req_mos", "timestamp", "con_type"]
    )]
    decode: Option<String>,
}

/// Runs `dmctl notify`.
pub async fn run(args: NotifyArgs) -> ExitCode {
    if let Some(text) = &args.decode {
        return decode(text, &args);
    }
    let n = Notification {
        server_id: args.server_id.clone(),
        preferred_con_types: (!args.con_type.is_empty()).then(|| args.con_type.clone()),
        notification_id: args.notification_id,
        digest: None,
        timestamp: args.timestamp.map(|t| t.unwrap_or_else(now)),
        req_mos: args.req_mos,
        unknown: Vec::new(),
    };
    let encoded = match &args.secret {
        Some(secret) => notification::encode_signed(
            &n,
            secret.as_bytes(),
            args.auth_data.as_deref().unwrap_or("").as_bytes(),
        ),
        None => n.encode(),
    };
    let bytes = match encoded {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dmctl notify: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // --hex wins over --to: print only (the contract: "`--hex` prints it
    // instead").
    if args.hex {
        println!("{}", notification::hex(&bytes));
        return ExitCode::SUCCESS;
    }
    let Some(to) = args.to.as_deref() else {
        eprintln!("dmctl notify: --to ADDR or --hex is required");
        return ExitCode::from(EXIT_USAGE);
    };
    match dm_server::send_notification(to, &bytes).await {
        Ok(addr) => {
            eprintln!(
                "dmctl notify: sent a {}-byte DM Notification to {addr}",
                bytes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dmctl notify: cannot send to {to}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// POSIX seconds now; 0 if the clock is before 1970.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `--decode HEX`: the fields, one per line, then the digest check when a
/// secret is given.
fn decode(text: &str, args: &NotifyArgs) -> ExitCode {
    let bytes = match notification::from_hex(text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dmctl notify --decode: not hex: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let n = match Notification::decode(&bytes) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("dmctl notify --decode: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{n}");
    if let Some(secret) = &args.secret {
        let auth = args.auth_data.as_deref().unwrap_or("");
        match notification::verify(&bytes, secret.as_bytes(), auth.as_bytes()) {
            Ok(_) => println!("DIGEST-CHECK: valid"),
            Err(e) => {
                println!("DIGEST-CHECK: invalid ({e})");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
