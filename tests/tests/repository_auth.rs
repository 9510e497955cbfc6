//! Issue 19, item 6: the Data Repository and the SHOW pages on the DM
//! port answer only the device they belong to (its own credentials) or
//! the holder of a short-lived URL the server signed into a command.
//! Devices without credentials (`--enroll flag`, plain HTTP) use the
//! signed URLs of their Package#2.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use dm_agent::service::{self as agent, AgentOptions};
use dm_core::{Command, ServerUri};
use dm_server::{Resource, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEV_ID: &str = "IMEI:356938035643809";

/// One request on its own connection: the status, the head and the body.
async fn http(
    server: &ServerHandle,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

/// The path and query of a signed URL of `server`.
fn target<'a>(server: &ServerHandle, url: &'a str) -> &'a str {
    url.strip_prefix(server.base_url()).unwrap()
}

fn store(server: &ServerHandle, path: &str, content_type: &str, body: &[u8]) {
    let r = Resource {
        content_type: content_type.into(),
        body: body.to_vec(),
        origin: "admin".into(),
        updated: 0,
    };
    server.storage().put_resource(DEV_ID, path, &r).unwrap();
}

fn stored(server: &ServerHandle, path: &str) -> Option<Vec<u8>> {
    server
        .storage()
        .resource(DEV_ID, path)
        .unwrap()
        .map(|r| r.body)
}

#[tokio::test]
async fn anonymous_repository_requests_are_refused_and_change_nothing() {
    let server = common::start_server(Vec::new()).await;
    store(&server, "secret", "text/plain", b"the secret");
    let path = format!("/repo/{DEV_ID}/secret");

    let (status, _, body) = http(&server, "GET", &path, &[], b"").await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&body).contains("the secret"));
    let (status, _, body) = http(&server, "HEAD", &path, &[], b"").await;
    assert_eq!((status, body.is_empty()), (401, true));

    for method in ["PUT", "POST"] {
        let (status, _, _) = http(
            &server,
            method,
            &path,
            &[("Content-Type", "text/plain")],
            b"replaced",
        )
        .await;
        assert_eq!(status, 401, "{method}");
        let (status, _, _) = http(
            &server,
            method,
            &format!("/repo/{DEV_ID}/new"),
            &[("Content-Type", "text/plain")],
            b"planted",
        )
        .await;
        assert_eq!(status, 401, "{method}");
    }
    assert_eq!(stored(&server, "secret").unwrap(), b"the secret");
    assert_eq!(stored(&server, "new"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn forged_misused_and_expired_signatures_are_refused() {
    let server = common::start_server(Vec::new()).await;
    store(&server, "secret", "text/plain", b"the secret");
    let get = server.signed_repo_url("GET", DEV_ID, "secret");
    let (status, _, body) = http(&server, "GET", target(&server, &get), &[], b"").await;
    assert_eq!((status, body.as_slice()), (200, &b"the secret"[..]));

    let (path, query) = target(&server, &get).split_once('?').unwrap();
    let sig = query.split("sig=").nth(1).unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    let exp: u64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    let expired = server.signed_repo_url_until("GET", DEV_ID, "secret", exp - 3600);
    let refused = [
        // Another signature, or the same for a later expiry.
        format!("{path}?exp={exp}&sig={flipped}"),
        format!("{path}?exp={}&sig={sig}", exp + 3600),
        format!("{path}?exp={exp}&sig=zz"),
        // The signature of another resource and of another device.
        format!("/repo/{DEV_ID}/other?{query}"),
        format!("/repo/IMEI:1/secret?{query}"),
        target(&server, &expired).to_owned(),
    ];
    for t in &refused {
        let (status, _, body) = http(&server, "GET", t, &[], b"").await;
        assert_eq!(status, 403, "{t}");
        assert!(!String::from_utf8_lossy(&body).contains("the secret"));
    }
    // A GET signature does not write.
    let (status, _, _) = http(
        &server,
        "PUT",
        target(&server, &get),
        &[("Content-Type", "text/plain")],
        b"replaced",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(stored(&server, "secret").unwrap(), b"the secret");
    // What was refused is logged without the signature.
    assert!(server.errors().iter().all(|e| !e.contains(sig)));
    server.shutdown().await;
}

#[tokio::test]
async fn signed_urls_reach_the_formats_checks_of_spec_5_5() {
    let server = common::start_server(Vec::new()).await;
    store(&server, "data.json", "application/dmmo+json", b"[]");
    let get = server.signed_repo_url("GET", DEV_ID, "data.json");
    let (status, head, _) = http(
        &server,
        "GET",
        target(&server, &get),
        &[("Accept", "text/plain")],
        b"",
    )
    .await;
    assert_eq!(status, 406);
    assert!(
        head.contains("omadm-accept: application/dmmo+json"),
        "{head}"
    );
    let put = server.signed_repo_url("PUT", DEV_ID, "picture");
    let (status, head, _) = http(
        &server,
        "PUT",
        target(&server, &put),
        &[("Content-Type", "image/png")],
        b"\x89PNG",
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        head.contains("omadm-accept: application/dmmo+json, "),
        "{head}"
    );
    let (status, _, _) = http(
        &server,
        "PUT",
        target(&server, &put),
        &[("Content-Type", "text/plain")],
        b"taken",
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(stored(&server, "picture").unwrap(), b"taken");
    server.shutdown().await;
}

#[tokio::test]
async fn a_device_without_credentials_uses_the_urls_of_its_package2() {
    let server = common::start_server(Vec::new()).await;
    store(&server, "secret", "text/plain", b"the secret");
    let repo = |p: &str| ServerUri::new(format!("{}/repo/[DevID]/{p}", server.base_url()));
    server.enqueue(
        DEV_ID,
        Command::Hget {
            server_uri: repo("secret"),
            client_uri: Some(common::uri("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
        },
    );
    server.enqueue(
        DEV_ID,
        Command::Hput {
            server_uri: repo("devinfo.json"),
            client_uris: vec![common::uri("urn:oma:mo:oma-dm-devinfo:1.2//")],
        },
    );
    // Bootstrapped for this server, no credentials: `--enroll flag`.
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let opts = AgentOptions {
        bootstrap: Some(bootstrap.clone()),
        dev_id: Some(DEV_ID.into()),
        timeout: Duration::from_secs(10),
        ..AgentOptions::new(tmp.path().join("state"))
    };
    let mut device = agent::open_device(&opts).unwrap();
    agent::apply_bootstrap(&mut device, &bootstrap).unwrap();
    let results = common::session(&server, "A", DEV_ID, &mut device, Vec::new()).await;
    assert_eq!(common::codes(&results), [200, 200]);
    let record = server.device(DEV_ID).unwrap();
    assert!(record.unauthenticated);
    assert!(String::from_utf8_lossy(&stored(&server, "devinfo.json").unwrap()).contains(DEV_ID));
    // The queued commands keep their unsigned URLs.
    assert!(record
        .results
        .iter()
        .all(|r| !format!("{:?}", r.command).contains("sig=")));
    server.shutdown().await;
}

#[tokio::test]
async fn only_the_signed_link_answers_a_show_prompt() {
    let server = common::start_server(Vec::new()).await;
    let uiid = server.show(DEV_ID, "Wipe the device?").unwrap();
    let link = match &server.device(DEV_ID).unwrap().queue[0] {
        Command::Show { server_uri } => server_uri.as_str().to_owned(),
        c => panic!("{c:?}"),
    };
    let (_, query) = link.split_once('?').unwrap();
    let choice = |server: &ServerHandle| server.storage().ui_session(uiid).unwrap().unwrap().choice;
    let form = format!("uiid={uiid}&choice=confirm");
    let post = |t: String| {
        let server = &server;
        let form = form.clone();
        async move {
            http(
                server,
                "POST",
                &t,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )
            .await
            .0
        }
    };

    let (status, _, page) = http(&server, "GET", &format!("/ui?uiid={uiid}"), &[], b"").await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&page).contains("Wipe"));
    assert_eq!(post("/ui/choice".into()).await, 401);
    assert_eq!(post(format!("/ui/choice?uiid={uiid}")).await, 401);
    let forged = query.replace("sig=", "sig=00");
    assert_eq!(post(format!("/ui/choice?{forged}")).await, 403);
    // Another prompt's link does not answer this one.
    let other = server.show(DEV_ID, "Another?").unwrap();
    let other_query = query.replace(&format!("uiid={uiid}"), &format!("uiid={other}"));
    let (status, _, _) = http(
        &server,
        "POST",
        &format!("/ui/choice?{other_query}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("uiid={other}&choice=confirm").as_bytes(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        server.storage().ui_session(other).unwrap().unwrap().choice,
        None
    );
    // A body naming another session than the link.
    assert_eq!(
        post(format!(
            "/ui/choice?{}",
            query.replace(&format!("uiid={uiid}"), &format!("uiid={other}"))
        ))
        .await,
        400
    );
    assert_eq!(choice(&server), None, "nothing recorded");

    let (status, _, page) = http(&server, "GET", &format!("/ui?{query}"), &[], b"").await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("Wipe the device?"));
    assert!(page.contains("action=\"/ui/choice?uiid="), "{page}");
    assert_eq!(post(format!("/ui/choice?{query}")).await, 200);
    assert_eq!(choice(&server).as_deref(), Some("confirm"));
    server.shutdown().await;
}
