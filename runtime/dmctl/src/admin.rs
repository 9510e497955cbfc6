//! The admin API side of `dmctl server`: where it may listen, the token
//! made at the first start, and `dmctl server token create|list|revoke`
//! (README "Admin API").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dm_server::{self as server, AdminRole, AdminTokenError, Database, Storage};

/// `dmctl server token ...`: the admin API's bearer tokens in the
/// server's database. A running server sees a change at its next request.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Make a token; it is printed on stdout this once and stored hashed.
    Create {
        /// `read`: GET routes only; `operator`: every route.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The server's database: a SQLite file (created when missing) or
        /// a PostgreSQL URL, as `dmctl server --db`.
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
    },
    /// List the tokens: id, role, creation time (never the token).
    List {
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
    },
    /// Revoke a token by its id.
    Revoke {
        id: u64,
        #[arg(long, value_name = "PATH|URL")]
        db: PathBuf,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum RoleArg {
    Read,
    Operator,
}

impl From<RoleArg> for AdminRole {
    fn from(r: RoleArg) -> AdminRole {
        match r {
            RoleArg::Read => AdminRole::Read,
            RoleArg::Operator => AdminRole::Operator,
        }
    }
}

/// Exit status for bad usage or configuration, as everywhere in dmctl.
const EXIT_USAGE: u8 = 2;

fn open(db: &Path) -> Result<Box<dyn Storage>, ExitCode> {
    // Tokens need no notification secret, hence no secrets key.
    let db = Database::from_arg(db);
    let opened: Result<Box<dyn Storage>, _> = match &db {
        Database::Sqlite(path) => {
            server::SqliteStorage::open_without_secrets(path).map(|s| Box::new(s) as _)
        }
        Database::Postgres(url) => {
            server::PostgresStorage::connect_without_secrets(url).map(|s| Box::new(s) as _)
        }
    };
    opened.map_err(|e| {
        // `describe`: a URL's password stays out of the message.
        eprintln!("dmctl server token: cannot open {}: {e}", db.describe());
        ExitCode::from(EXIT_USAGE)
    })
}

pub(crate) fn run_token(cmd: TokenCmd) -> ExitCode {
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn run(cmd: TokenCmd) -> Result<(), ExitCode> {
    match cmd {
        TokenCmd::Create { role, db } => {
            let storage = open(&db)?;
            let (id, token) =
                server::create_admin_token(storage.as_ref(), role.into()).map_err(|e| {
                    eprintln!("dmctl server token: {e}");
                    ExitCode::FAILURE
                })?;
            eprintln!(
                "dmctl server token: token {id} ({}) created; it is shown only now",
                AdminRole::from(role).as_str()
            );
            println!("{token}");
        }
        TokenCmd::List { db } => {
            let tokens = open(&db)?.admin_tokens().map_err(|e| {
                eprintln!("dmctl server token: {e}");
                ExitCode::FAILURE
            })?;
            for t in tokens {
                println!("{} {} {}", t.id, t.role.as_str(), t.created);
            }
        }
        TokenCmd::Revoke { id, db } => {
            let deleted = open(&db)?.delete_admin_token(id).map_err(|e| {
                eprintln!("dmctl server token: {e}");
                ExitCode::FAILURE
            })?;
            if !deleted {
                eprintln!("dmctl server token: no token {id}");
                return Err(ExitCode::from(EXIT_USAGE));
            }
            eprintln!("dmctl server token: token {id} revoked");
        }
    }
    Ok(())
}

/// The admin API listens on loopback unless `--admin-public` says
/// otherwise: it has no TLS, so a token sent to it from another host
/// crosses the network in clear.
pub(crate) fn check_admin_addr(admin: Option<SocketAddr>, public: bool) -> Result<(), String> {
    match admin {
        Some(a) if !a.ip().is_loopback() && !public => Err(format!(
            "--admin {a} is not a loopback address: add --admin-public to serve it there \
             (and --admin-tls, or its tokens cross the network in clear)"
        )),
        _ => Ok(()),
    }
}

/// At a start with no admin token in the storage, an operator token,
/// returned to be shown once: without it nobody could use the API.
pub(crate) fn first_token(storage: &dyn Storage) -> Result<Option<String>, AdminTokenError> {
    if !storage.admin_tokens()?.is_empty() {
        return Ok(None);
    }
    let (_, token) = server::create_admin_token(storage, AdminRole::Operator)?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_non_loopback_admin_address_needs_the_opt_in() {
        let lo: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert!(check_admin_addr(Some(lo), false).is_ok());
        assert!(check_admin_addr(Some("[::1]:8081".parse().unwrap()), false).is_ok());
        assert!(check_admin_addr(None, false).is_ok());
        let refused = check_admin_addr(Some(any), false).unwrap_err();
        assert!(refused.contains("--admin-public"), "{refused}");
        assert!(check_admin_addr(Some(any), true).is_ok());
    }

    #[test]
    fn the_first_token_is_made_only_when_there_is_none() {
        let s = server::MemoryStorage::new();
        let token = first_token(&s).unwrap().unwrap();
        assert!(token.starts_with(server::TOKEN_PREFIX));
        let stored = s.admin_tokens().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].role, AdminRole::Operator);
        assert!(first_token(&s).unwrap().is_none());
        assert_eq!(s.admin_tokens().unwrap().len(), 1);
    }
}
