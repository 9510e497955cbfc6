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
