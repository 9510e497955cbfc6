//! The update itself, on the device: its progress in files of the work
//! directory (each written whole, then renamed into place), the download
//! and the install.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dm_core::{ExecReport, StatusCode};
use sha2::Digest as _;

/// FUMO 1.0 states (the `State` node).
pub mod state {
    pub const IDLE: i64 = 10;
    pub const DOWNLOAD_FAILED: i64 = 20;
    pub const DOWNLOAD_PROGRESSING: i64 = 30;
    pub const DOWNLOAD_COMPLETE: i64 = 40;
    pub const READY_TO_UPDATE: i64 = 50;
    pub const UPDATE_PROGRESSING: i64 = 60;
    pub const UPDATE_FAILED_NO_DATA: i64 = 80;
    pub const UPDATE_SUCCESSFUL_NO_DATA: i64 = 100;
}

/// FUMO 1.0 result codes, carried in the alert data (`result`).
pub mod result {
    pub const SUCCESSFUL: u16 = 200;
    pub const CLIENT_ERROR: u16 = 400;
    pub const CORRUPTED_PACKAGE: u16 = 402;
    pub const UPDATE_FAILED: u16 = 410;
    pub const BAD_URL: u16 = 411;
    pub const DOWNLOAD_SERVER_UNAVAILABLE: u16 = 412;
    pub const DOWNLOAD_SERVER_ERROR: u16 = 500;
    pub const NETWORK: u16 = 503;
}

/// The largest package downloaded; past it the download fails.
pub const MAX_PACKAGE: u64 = 64 * 1024 * 1024;
/// How long connecting and each read of a download may take.
const NET_TIMEOUT: Duration = Duration::from_secs(30);

/// What an EXEC asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Job {
    Download,
    Update,
    DownloadAndUpdate,
}

/// Where one update stands (`progress.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub job: Job,
    pub state: i64,
    pub url: Option<String>,
    pub version: Option<String>,
    /// FUMO's result code once it ended.
    pub result: Option<u16>,
}

impl Progress {
    /// Has the job ended (well or not)?
    pub fn finished(&self) -> bool {
        self.result.is_some()
    }
}

/// The final report of a job that ended.
pub fn report_of(p: &Progress) -> ExecReport {
    let code = p.result.unwrap_or(result::CLIENT_ERROR);
    ExecReport {
        status: if code == result::SUCCESSFUL {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_ERROR
        },
        data: Some((
            "application/json".to_owned(),
            serde_json::json!({ "result": code, "state": p.state, "version": p.version }),
        )),
    }
}

/// The work directory.
#[derive(Debug, Clone)]
pub struct Work {
    dir: PathBuf,
}

impl Work {
    /// The directory, made when missing (owner only).
    pub fn open(dir: PathBuf) -> std::io::Result<Work> {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Work { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` to `name` whole: a temporary file, synced, renamed.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.path(&format!("{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(name))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The update's progress, none before the first.
    pub fn progress(&self) -> std::io::Result<Option<Progress>> {
        match std::fs::read(self.path("progress.json")) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn save(&self, p: &Progress) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(p).map_err(std::io::Error::other)?;
        self.write("progress.json", &bytes)
    }

    /// Records a new job; refused while another one runs.
    pub fn begin(
        &self,
        job: Job,
        url: Option<&str>,
        version: Option<&str>,
    ) -> std::io::Result<Progress> {
        if let Some(p) = self.progress()? {
            if !p.finished() {
                return Err(std::io::Error::other("an update is already running"));
            }
        }
        let p = Progress {
            job,
            state: match job {
                Job::Update => state::UPDATE_PROGRESSING,
                _ => state::DOWNLOAD_PROGRESSING,
            },
            url: url.map(str::to_owned),
            version: version.map(str::to_owned),
            result: None,
        };
        self.save(&p)?;
        Ok(p)
    }

    /// Keeps a package the server wrote itself (Update/PkgData).
    pub fn store_package(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.write("package.bin", bytes)
    }

    /// Runs a job from where it stands to its end; the report of that end.
    pub fn run(&self, mut p: Progress) -> ExecReport {
        if p.state == state::DOWNLOAD_PROGRESSING {
            match p.url.as_deref().map(download) {
                Some(Ok(bytes)) => {
                    if self.store_package(&bytes).is_err() {
                        return self.end(p, state::DOWNLOAD_FAILED, result::CLIENT_ERROR);
                    }
                    p.state = state::DOWNLOAD_COMPLETE;
                    let _ = self.save(&p);
                }
                Some(Err(code)) => return self.end(p, state::DOWNLOAD_FAILED, code),
                None => return self.end(p, state::DOWNLOAD_FAILED, result::BAD_URL),
            }
        }
        if p.job == Job::Download {
            return self.end(p, state::DOWNLOAD_COMPLETE, result::SUCCESSFUL);
        }
        if p.state == state::DOWNLOAD_COMPLETE || p.state == state::READY_TO_UPDATE {
            p.state = state::READY_TO_UPDATE;
            let _ = self.save(&p);
            while self.path("hold-update").exists() {
                std::thread::sleep(Duration::from_millis(100));
            }
            p.state = state::UPDATE_PROGRESSING;
            let _ = self.save(&p);
        }
        self.install(p)
    }

    fn install(&self, p: Progress) -> ExecReport {
        let package = match std::fs::read(self.path("package.bin")) {
            Ok(b) if !b.is_empty() => b,
            _ => return self.end(p, state::UPDATE_FAILED_NO_DATA, result::CORRUPTED_PACKAGE),
        };
        let record = serde_json::json!({
            "version": p.version,
            "sha256": dm_core::notification::hex(&sha2::Sha256::digest(&package)),
        });
        let installed = self
            .write("firmware.bin", &package)
            .and_then(|()| self.write("installed.json", record.to_string().as_bytes()));
        if installed.is_err() {
            return self.end(p, state::UPDATE_FAILED_NO_DATA, result::UPDATE_FAILED);
        }
        let _ = std::fs::remove_file(self.path("package.bin"));
        self.end(p, state::UPDATE_SUCCESSFUL_NO_DATA, result::SUCCESSFUL)
    }

    fn end(&self, mut p: Progress, state: i64, code: u16) -> ExecReport {
        p.state = state;
        p.result = Some(code);
        // The report goes out even when the record cannot be written.
        let _ = self.save(&p);
        report_of(&p)
    }

    /// The installed firmware (for tests and the demo).
    pub fn firmware(&self) -> Option<Vec<u8>> {
        std::fs::read(self.path("firmware.bin")).ok()
    }

    /// The work directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// GETs a package over plain HTTP from a loopback address (the only
/// place a package travels unencrypted; an https:// download is left to a
/// device build with a TLS stack: FUMO result 412 here). The result code
/// of a failure.
fn download(url: &str) -> Result<Vec<u8>, u16> {
    let rest = url
        .strip_prefix("http://")
        .ok_or(if url.starts_with("https://") {
            result::DOWNLOAD_SERVER_UNAVAILABLE
        } else {
            result::BAD_URL
        })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
        return Err(result::BAD_URL);
    }
    let addr = authority
        .to_socket_addrs()
        .or_else(|_| format!("{authority}:80").to_socket_addrs())
        .map_err(|_| result::BAD_URL)?
        .next()
        .ok_or(result::BAD_URL)?;
    if !is_loopback(addr.ip()) {
        return Err(result::BAD_URL);
    }
    let mut tcp = TcpStream::connect_timeout(&addr, NET_TIMEOUT).map_err(|_| result::NETWORK)?;
    tcp.set_read_timeout(Some(NET_TIMEOUT))
        .map_err(|_| result::NETWORK)?;
    // HTTP/1.0: the body ends with the connection, never chunked.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .map_err(|_| result::NETWORK)?;
    let mut response = Vec::new();
    tcp.take(MAX_PACKAGE + 64 * 1024)
        .read_to_end(&mut response)
        .map_err(|_| result::NETWORK)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(result::DOWNLOAD_SERVER_ERROR)?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(result::DOWNLOAD_SERVER_ERROR)?;
    if status != 200 {
        return Err(result::DOWNLOAD_SERVER_ERROR);
    }
    let body = response.split_off(split + 4);
    if body.len() as u64 > MAX_PACKAGE {
        return Err(result::CORRUPTED_PACKAGE);
    }
    Ok(body)
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_job_survives_in_its_files_and_ends_once() {
        let tmp = tempfile::tempdir().unwrap();
        let work = Work::open(tmp.path().join("w")).unwrap();
        assert_eq!(work.progress().ok().flatten(), None);
        work.store_package(b"firmware v2").unwrap();
        let p = work.begin(Job::Update, None, Some("2.0")).unwrap();
        assert!(
            work.begin(Job::Update, None, None).is_err(),
            "one at a time"
        );
        // Read back as a restart would.
        let again = work.progress().ok().flatten();
        assert_eq!(again.as_ref(), Some(&p));
        let report = work.run(p);
        assert_eq!(report.status, StatusCode::OK);
        assert_eq!(work.firmware().as_deref(), Some(&b"firmware v2"[..]));
        let end = work.progress().ok().flatten();
        assert_eq!(end.map(|p| p.state), Some(state::UPDATE_SUCCESSFUL_NO_DATA));
    }

    #[test]
    fn bad_urls_fail_with_fumo_codes() {
        assert_eq!(download("ftp://x/p"), Err(result::BAD_URL));
        assert_eq!(
            download("https://example.invalid/p"),
            Err(result::DOWNLOAD_SERVER_UNAVAILABLE)
        );
        assert_eq!(
            download("http://192.0.2.1/p"),
            Err(result::BAD_URL),
            "not loopback"
        );
        assert_eq!(download("http:///p"), Err(result::BAD_URL));
    }
}
