//! SessionInfo describes the live session (spec 12.4): a session over
//! loopback has no bearer (CBT 0 "OTHERS/UNKNOWN"), and this host cannot
//! tell whether it roams (ROAMING 2).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use dm_agent::service::{self as agent, AgentOptions};
use dm_agent::Initiation;
use dm_core::Command;
use dm_server::{self as server, ServerConfig};

const DEV_ID: &str = "IMEI:490154203237518";
const SESSIONINFO: &str = "urn:oma:mo:oma-sessioninfomo:1.0";

#[tokio::test]
async fn cbt_and_roaming_come_from_the_session_not_the_start() {
    let server = server::start(ServerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        default_commands: Vec::new(),
        log_errors: false,
    })
    .await
    .unwrap();
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
    let at_start = device
        .registry()
        .instances()
        .find(|(_, i)| i.mo().schema().moid == SESSIONINFO)
        .map(|(_, i)| i.mo().get(&[]).unwrap().to_json())
        .unwrap();
    // Filled from the host at start: never "unknown" roaming.
    assert_ne!(at_start["ROAMING"], 2, "{at_start}");

    server.enqueue(
        DEV_ID,
        Command::Get {
            client_uri: format!("{SESSIONINFO}//").parse().unwrap(),
        },
    );
    device
        .run_session_as("A", Initiation::ClientInitiated, true, Vec::new())
        .await
        .unwrap();
    let results = server.device(DEV_ID).unwrap().results;
    assert_eq!(results[0].status.code.as_u16(), 200);
    let body = String::from_utf8(results[0].data.as_ref().unwrap().body.clone()).unwrap();
    let items = dm_core::MoDataItem::parse_list(body.as_bytes()).unwrap();
    let info = &items[0].mo_data["sessioninfo"];
    assert_eq!(info["CBT"], 0, "loopback carries the session: {info}");
    assert_eq!(info["ROAMING"], 2, "{info}");
    server.shutdown().await;
}
