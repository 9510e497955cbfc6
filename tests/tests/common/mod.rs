//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The `dmctl` entry point (`dm_runtime::cli::main`), built as this
/// package's `dmctl-e2e` binary.
pub fn dmctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dmctl-e2e"))
}

/// Builds the plugin dylibs (the DCMO example and the loader's fixtures)
/// once per test process and returns the directory cargo put them in.
/// `cargo test` builds cdylib-only crates as test harnesses, not as
/// libraries, so the tests ask cargo for them; a nested cargo run on the
/// same target directory is safe once the test binaries are built.
pub fn plugin_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "mo-dcmo",
                "-p",
                "plugin-crash",
                "-p",
                "plugin-abi2",
                "-p",
                "plugin-dup",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // target/<profile>/deps/<test> -> target/<profile>
        let exe = std::env::current_exe().expect("test executable");
        exe.parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_owned()
    })
}

/// The file name of a plugin library built by cargo (`libmo_dcmo.so`).
pub fn plugin_file(crate_name: &str) -> PathBuf {
    let name = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    plugin_dir().join(name)
}

/// A fresh directory holding copies of the named plugins.
pub fn plugins_in(dir: &Path, crates: &[&str]) -> PathBuf {
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).unwrap();
    for c in crates {
        let src = plugin_file(c);
        std::fs::copy(&src, out.join(src.file_name().unwrap())).unwrap();
    }
    out
}

/// A DM "server" that answers every request with the same raw HTTP
/// response: for testing what the device does with bad answers.
pub async fn canned_server(response: String) -> SocketAddr {
    let response: std::sync::Arc<str> = response.into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

/// An HTTP response carrying `body` as a Package#2.
pub fn package2_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oma.dm.request+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A factory bootstrap file with one DMAcc account.
pub fn bootstrap_file(dir: &Path, server_id: &str, server_uri: &str) -> PathBuf {
    let path = dir.join("bootstrap.json");
    let body = serde_json::json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/acc1/",
        "MOData": { "acc1": { "SrvID": server_id, "SrvURI": server_uri, "Name": "test server" } }
    }]);
    std::fs::write(&path, body.to_string()).unwrap();
    path
}
