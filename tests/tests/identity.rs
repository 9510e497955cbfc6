//! The device's DevID is kept in `--state`: the first start records the
//! one it uses (`--dev-id` or the machine's), later starts keep it, and a
//! start with another `--dev-id` is a configuration error (exit 2): a
//! server keeps what it has for a device under its DevID (spec 5.2.2), so
//! switching silently would strand it.
#![allow(clippy::unwrap_used)]

mod common;

const DEV_ID: &str = "IMEI:356938035643809";
const OTHER: &str = "IMEI:490154203237518";

fn client(
    state: &std::path::Path,
    bootstrap: &std::path::Path,
    dev_id: Option<&str>,
) -> std::process::Output {
    let mut command = std::process::Command::new(common::dmctl());
    command
        .args(["client", "--once", "--state"])
        .arg(state)
        .arg("--bootstrap")
        .arg(bootstrap);
    if let Some(id) = dev_id {
        command.args(["--dev-id", id]);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_id_is_kept_in_the_state_and_another_one_is_refused() {
    let server = common::start_server(Vec::new()).await;
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &server.dm_url());
    let state = tmp.path().join("state");
    let run = |dev_id: Option<&'static str>| {
        let (state, bootstrap) = (state.clone(), bootstrap.clone());
        tokio::task::spawn_blocking(move || client(&state, &bootstrap, dev_id))
    };

    let out = run(Some(DEV_ID)).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.device(DEV_ID).unwrap().sessions, 1);

    // No --dev-id: the recorded one, not the machine's.
    let out = run(None).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.device(DEV_ID).unwrap().sessions, 2);

    // Another --dev-id: refused before any session, naming both.
    let out = run(Some(OTHER)).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(OTHER) && stderr.contains(DEV_ID),
        "{stderr}"
    );
    assert!(server.device(OTHER).is_none());
    assert_eq!(server.device(DEV_ID).unwrap().sessions, 2);

    // The same one again is fine.
    let out = run(Some(DEV_ID)).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.device(DEV_ID).unwrap().sessions, 3);
    server.shutdown().await;
}

/// A first start without --dev-id records the machine's; a later one
/// naming another is refused too.
#[test]
fn the_machine_dev_id_is_recorded_at_the_first_start() {
    use dm_agent::service::{self as agent, AgentError, AgentOptions};
    let tmp = tempfile::tempdir().unwrap();
    let opts = AgentOptions::new(tmp.path().join("state"));
    let device = agent::open_device(&opts).unwrap();
    let machine = device.dev_id().to_owned();
    drop(device);
    let again = agent::open_device(&opts).unwrap();
    assert_eq!(again.dev_id(), machine);
    drop(again);
    let other = AgentOptions {
        dev_id: Some(OTHER.into()),
        ..opts.clone()
    };
    match agent::open_device(&other) {
        Err(AgentError::DevIdChanged {
            given, recorded, ..
        }) => {
            assert_eq!(
                (given.as_str(), recorded.as_str()),
                (OTHER, machine.as_str())
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("another --dev-id was accepted"),
    }
}
