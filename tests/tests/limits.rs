//! The agent's named limits (docs/architecture.md "Limits"): past each,
//! a status or the end of the session, and nothing grows.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{codes, get, Repository};
use dm_agent::{standard_registry, Device, DeviceConfig, Initiation, Limits, SessionError};
use dm_core::{Command, ServerUri, StatusCode};

const DEV_ID: &str = "IMEI:490154203237518";
const DEVINFO_ROOT: &str = "urn:oma:mo:oma-dm-devinfo:1.2//";

fn device(limits: Limits) -> Device {
    let mut config = DeviceConfig::new(DEV_ID);
    config.limits = limits;
    Device::new(config, standard_registry(DEV_ID))
}

/// A Package#2 of `n` GETs of DevID.
fn gets(n: usize) -> String {
    let cmd = r#"["GET","urn:oma:mo:oma-dm-devinfo:1.2//DevID"]"#;
    format!("{{\"CMD\":[{}]}}", vec![cmd; n].join(","))
}

#[tokio::test]
async fn too_many_commands_end_the_session_before_any_runs() {
    let addr = common::canned_server(common::package2_response(&gets(1_001))).await;
    let mut d = device(Limits::default());
    let err = d
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::TooManyCommands {
                commands: 1_001,
                limit: 1_000,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_package_over_its_size_ends_the_session() {
    let body = gets(40);
    let addr = common::canned_server(common::package2_response(&body)).await;
    let mut d = device(Limits {
        package_bytes: body.len() - 1,
        ..Limits::default()
    });
    let err = d
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::PackageTooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_full_response_answers_503_to_the_commands_after_it() {
    let server = common::start_server(Vec::new()).await;
    for _ in 0..10 {
        server.enqueue(DEV_ID, get(DEVINFO_ROOT));
    }
    let mut d = device(Limits {
        response_bytes: 1_000,
        ..Limits::default()
    });
    d.run_session(&server.dm_url(), Initiation::ClientInitiated, false)
        .await
        .unwrap();
    let got = codes(&server.device(DEV_ID).unwrap().results);
    let served = got.iter().filter(|c| **c == 200).count();
    assert!((1..10).contains(&served), "{got:?}");
    assert!(got[served..].iter().all(|c| *c == 503), "{got:?}");
}

#[tokio::test]
async fn registrations_per_server_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let server = common::start_server(Vec::new()).await;
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let opts = dm_agent::service::AgentOptions {
        dev_id: Some(DEV_ID.into()),
        ..dm_agent::service::AgentOptions::new(tmp.path().join("state"))
    };
    let mut d = dm_agent::service::open_device(&opts).unwrap();
    dm_agent::service::apply_bootstrap(&mut d, &bootstrap).unwrap();
    let limit = Limits::default().registrations_per_server;
    let defaults = (0..limit + 3).map(|i| Command::Default {
        server_uri: ServerUri::new(format!("https://repo.example/m{i}")),
        moid: format!("urn:example:mo:m{i}:1.0"),
    });
    // Registering the first MOID again replaces it: no growth, no refusal.
    let again = Command::Default {
        server_uri: ServerUri::new("https://repo.example/again"),
        moid: "urn:example:mo:m0:1.0".into(),
    };
    let results = common::session(
        &server,
        "A",
        DEV_ID,
        &mut d,
        defaults.chain([again]).collect(),
    )
    .await;
    let got = codes(&results);
    assert!(got[..limit].iter().all(|c| *c == 200), "{got:?}");
    assert_eq!(got[limit..], [503, 503, 503, 200]);
    assert_eq!(d.agent_state().defaults.len(), limit);
}

#[tokio::test]
async fn an_hget_past_the_instance_limit_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = common::start_server(Vec::new()).await;
    let repo = Repository::start().await;
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let mut d = device(Limits {
        instances_per_server: 4,
        ..Limits::default()
    });
    dm_agent::service::apply_bootstrap(&mut d, &bootstrap).unwrap();
    // A owns its own account: three more fit, four do not.
    let items: Vec<serde_json::Value> = (0..4)
        .map(|i| {
            let id = format!("x{i}");
            serde_json::json!({
                "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                "MOData": { id.clone(): { "SrvID": id, "SrvURI": "https://dms.example/dm",
                    "Name": "n", "Perm": { "p": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } } } }
            })
        })
        .collect();
    repo.route(
        "/four",
        200,
        "application/dmmo+json",
        serde_json::to_vec(&items).unwrap(),
    );
    let results = common::session(
        &server,
        "A",
        DEV_ID,
        &mut d,
        vec![Command::Hget {
            server_uri: ServerUri::new(repo.url("/four")),
            client_uri: None,
        }],
    )
    .await;
    assert_eq!(results[0].status.code, StatusCode::DEVICE_FULL);
    assert_eq!(d.accounts().len(), 1, "all or nothing: {:?}", d.accounts());
}

#[tokio::test]
async fn a_session_ends_at_its_deadline_however_fast_each_package_is() {
    // A server that never sends END, answering each package just in time.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let response = common::package2_response(&gets(1));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    let mut d = device(Limits {
        session_deadline: Duration::from_secs(1),
        ..Limits::default()
    });
    let t = Instant::now();
    let err = d
        .run_session(
            &format!("http://{addr}/dm"),
            Initiation::ClientInitiated,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::Deadline(1)), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
