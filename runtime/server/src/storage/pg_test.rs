//! A PostgreSQL for tests (feature `pg-test`): the server given in
//! `DM_TEST_POSTGRES_URL`, or else a throwaway cluster of the local
//! installation (`initdb` + `pg_ctl` on a free loopback port in a temp
//! directory), stopped and removed on drop.
//!
//! Debian keeps `initdb` and `pg_ctl` in `/usr/lib/postgresql/<version>/bin`,
//! off PATH; both refuse to run as root, so as root (as CI runs) the
//! cluster belongs to the `postgres` user (or `nobody`) through `runuser`.
//! Without an installation the tests skip, saying so once, except under
//! `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A PostgreSQL server the tests may create databases in.
#[derive(Debug)]
pub struct TestPostgres {
    /// `postgres://USER@HOST:PORT` (no database), or the given URL.
    base: Base,
    cluster: Option<Cluster>,
}

#[derive(Debug)]
enum Base {
    /// `DM_TEST_POSTGRES_URL`: databases are made through it (it needs
    /// CREATEDB) and named in URLs that replace its database name.
    Given(String),
    Own {
        port: u16,
    },
}

#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// Who runs `pg_ctl` (as root: not root).
    user: Option<String>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);
static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();

impl TestPostgres {
    /// A server to test against; `None` when PostgreSQL is not installed
    /// (after one line on stderr naming the package), outside CI only.
    /// A cluster that fails to start is a panic: a real failure.
    pub fn start() -> Option<TestPostgres> {
        if let Ok(url) = std::env::var("DM_TEST_POSTGRES_URL") {
            if !url.is_empty() {
                return Some(TestPostgres {
                    base: Base::Given(url),
                    cluster: None,
                });
            }
        }
        let Some(bin) = find_bin_dir() else {
            not_installed(std::env::var("CI").is_ok_and(|v| v == "true"));
            return None;
        };
        Some(start_cluster(&bin))
    }

    /// Makes a fresh, empty database for one test and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let name = format!(
            "dm_{}_{}_{}",
            name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.url("postgres");
        let create = name.clone();
        // On a thread of its own: the sync client must not run inside a
        // tokio runtime, and the caller may be a tokio test.
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)
                .unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
            // One statement each: CREATE DATABASE refuses a transaction,
            // which a multi-statement query is.
            for sql in [
                format!("DROP DATABASE IF EXISTS {create}"),
                format!("CREATE DATABASE {create}"),
            ] {
                client.batch_execute(&sql).unwrap_or_else(|e| {
                    panic!(
                        "test PostgreSQL: {sql}: {}",
                        crate::storage::postgres::message(&e)
                    )
                });
            }
        })
        .join()
        .unwrap_or_else(|_| panic!("test PostgreSQL: cannot create database {name}"));
        self.url(&name)
    }

    fn url(&self, database: &str) -> String {
        match &self.base {
            Base::Own { port } => format!("postgres://dm@127.0.0.1:{port}/{database}"),
            Base::Given(url) => with_database(url, database),
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let data = c.dir.join("data");
            let _ = c
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&c.dir);
        }
    }
}

impl Cluster {
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }
}

/// PostgreSQL is not installed: under CI a failure, else one line on
/// stderr per test process, naming the package.
fn not_installed(ci: bool) {
    if ci {
        panic!(
            "PostgreSQL is not installed (initdb not found in /usr/lib/postgresql/*/bin \
             nor on PATH), and under CI=true the PostgreSQL tests never skip: install \
             Debian's `postgresql` package (.ci/run does) or set DM_TEST_POSTGRES_URL"
        );
    }
    SKIP_NOTICE.call_once(|| {
        eprintln!(
            "skipping the PostgreSQL tests: PostgreSQL is not installed \
             (Debian: apt-get install postgresql; or set DM_TEST_POSTGRES_URL)"
        )
    });
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, or the
/// directory of an `initdb` on PATH.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The account to run the cluster as, when root: `postgres` (made by
/// Debian's package), else `nobody`; with its uid and gid.
fn unprivileged_user() -> (String, u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name)
                .then(|| Some((name.to_owned(), f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .unwrap_or_else(|| panic!("test PostgreSQL: no `postgres` or `nobody` user to run as"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("test PostgreSQL: no free port: {e}"))
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("test PostgreSQL: {what}: {e}"));
    if !out.status.success() {
        panic!(
            "test PostgreSQL: {what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn start_cluster(bin: &Path) -> TestPostgres {
    let dir = std::env::temp_dir().join(format!(
        "dm-pg-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let user = if is_root() {
        let (name, uid, gid) = unprivileged_user();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("test PostgreSQL: chown {}: {e}", dir.display()));
        Some(name)
    } else {
        None
    };
    let cluster = Cluster {
        dir: dir.clone(),
        bin: bin.to_path_buf(),
        user,
    };
    let data = dir.join("data");
    let log = dir.join("log");
    let mut init = cluster.command("initdb");
    init.arg("-D")
        .arg(&data)
        .args([
            "-U",
            "dm",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .arg("--locale=C");
    run(init, "initdb");
    // A port is taken between the probe and the start now and then:
    // try a few.
    for attempt in 0..3 {
        let port = free_port();
        let mut start = cluster.command("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off",
                dir.display()
            ))
            .arg("start");
        // No pipes: the postmaster pg_ctl leaves running must not hold one.
        let ok = start
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return TestPostgres {
                base: Base::Own { port },
                cluster: Some(cluster),
            };
        }
        if attempt == 2 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "test PostgreSQL: pg_ctl start failed; {}:\n{text}",
                log.display()
            );
        }
    }
    unreachable!("the loop returns or panics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_postgresql_ci_fails_and_others_skip() {
        // Outside CI: returns (the caller skips).
        not_installed(false);
        let ci = std::panic::catch_unwind(|| not_installed(true));
        let message = ci.expect_err("under CI a missing PostgreSQL fails");
        // A message without arguments is a `&str` payload, one with them a `String`.
        let text = message
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| message.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(text.contains("`postgresql` package"), "{text}");
    }

    #[test]
    fn a_given_url_gets_the_test_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5/base?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
    }
}
