//! Delegation access control (spec 10, 12.3, 13.2) end to end: DACMO is the
//! rule set the device evaluates, changes to it need Delegate, and
//! delegation goes only to servers bootstrapped with the MOID. Three
//! servers: A (Perm `*`), B (Perm DMAcc and DevInfo), C (Perm DevInfo).
//! Every session re-opens the device from its state directory, so each
//! granted or revoked right also survives a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{body, codes, delete, get, Repository};
use dm_agent::service::{self as agent, AgentOptions};
use dm_core::{Command, MoDataItem};
use dm_server::{CommandResult, ServerHandle};

const DEV_ID: &str = "IMEI:490154203237518";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DACMO: &str = "urn:oma:mo:oma-dm-dacmo:1.0";

struct World {
    tmp: tempfile::TempDir,
    servers: Vec<(&'static str, ServerHandle)>,
    repo: Repository,
    bootstrap: std::path::PathBuf,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let servers = vec![
        ("A", common::start_server(Vec::new()).await),
        ("B", common::start_server(Vec::new()).await),
        ("C", common::start_server(Vec::new()).await),
    ];
    let url = |id: &str| {
        servers
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, h)| h.dm_url())
            .unwrap()
    };
    let bootstrap = tmp.path().join("bootstrap.json");
    let body = serde_json::json!([
        common::dmacc_item("A", &url("A"), &["*"]),
        common::dmacc_item("B", &url("B"), &[DMACC, DEVINFO]),
        common::dmacc_item("C", &url("C"), &[DEVINFO]),
    ]);
    std::fs::write(&bootstrap, body.to_string()).unwrap();
    World {
        tmp,
        servers,
        repo: Repository::start().await,
        bootstrap,
    }
}

/// A DACMO node of instance `miid` of `moid` (12.3: `<MOID>/<MIID>/...`),
/// with the raw `:` of the MOID-named node the device accepts.
fn dacmo(moid: &str, miid: &str, rest: &str) -> String {
    format!("{DACMO}/{moid}/{miid}/{rest}")
}

impl World {
    fn server(&self, id: &str) -> &ServerHandle {
        self.servers
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, h)| h)
            .unwrap()
    }

    /// One session of `server_id` running `commands` on a device freshly
    /// opened from its state directory.
    async fn session(&self, server_id: &str, commands: Vec<Command>) -> Vec<CommandResult> {
        let opts = AgentOptions {
            bootstrap: Some(self.bootstrap.clone()),
            dev_id: Some(DEV_ID.into()),
            timeout: Duration::from_secs(10),
            ..AgentOptions::new(self.tmp.path().join("state"))
        };
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &self.bootstrap).unwrap();
        let server = self.server(server_id);
        common::session(server, server_id, DEV_ID, &mut device, commands).await
    }

    /// An HGET of `data` (the MOData of the node at `target`) from the
    /// repository into `target`.
    fn hget(&self, name: &str, target: &str, data: serde_json::Value) -> Command {
        self.repo.hget(name, target, data)
    }

    /// A's grant of `ar` to `maid` on its DMAcc instance: permission `p`
    /// of the rule the device wrote for A when A's account was created.
    fn grant(&self, p: &str, maid: &str, ar: u8) -> Command {
        self.hget(
            &format!("grant-{p}-{ar}-{}", maid.replace([':', '*'], "_")),
            &dacmo(DMACC, "A", &format!("1/Permissions/{p}")),
            serde_json::json!({ "MAID": maid, "AR": ar }),
        )
    }
}

#[tokio::test]
async fn ownership_shows_in_dacmo_and_keeps_other_servers_out() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                get(&dacmo(DMACC, "A", "1/Permissions/1/MAID")),
                get(&dacmo(DMACC, "A", "1/Permissions/1/AR")),
                get(&dacmo(DEVINFO, "devinfo", "1/Permissions/1/MAID")),
                get(&dacmo(DEVINFO, "devinfo", "1/Permissions/1/AR")),
                // The percent-encoded form addresses the same node.
                get("urn:oma:mo:oma-dm-dacmo:1.0/urn%3Aoma%3Amo%3Aoma-dm-dmacc%3A1.2/A/1/Permissions/1/AR"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 200, 200, 200]);
    let values: Vec<String> = results.iter().map(body).collect();
    assert_eq!(values, ["serverid:A", "15", "*", "7", "15"]);

    // B reads and writes only its own account.
    let results = w
        .session(
            "B",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
                w.hget(
                    "b-renames-a",
                    "urn:oma:mo:oma-dm-dmacc:1.2/A/Name",
                    "taken".into(),
                ),
                delete("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/B/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID"),
                // DACMO shows B the rules of what it may see, nothing else.
                get(&format!("{DACMO}/{DMACC}/")),
                get(&dacmo(DMACC, "A", "1/Permissions/1/MAID")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 403, 403, 200, 200, 200, 403]);
    let wildcard = body(&results[4]);
    assert!(
        wildcard.contains("\"B\"") && !wildcard.contains("\"A\""),
        "{wildcard}"
    );
    let rules = body(&results[5]);
    assert!(
        rules.contains("serverid:B") && !rules.contains("serverid:A"),
        "{rules}"
    );

    // C: DMAcc is outside its Perm list, even its own account, and so are
    // the DACMO rules about DMAcc.
    let results = w
        .session(
            "C",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/C/Name"),
                get(&dacmo(DMACC, "C", "1/Permissions/1/MAID")),
                get("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 403, 200]);
    let mos = w.server("C").device(DEV_ID).unwrap().mos.unwrap();
    let moids: Vec<&str> = mos.iter().filter_map(|m| m.moid.as_deref()).collect();
    assert_eq!(moids, [DEVINFO]);
}

#[tokio::test]
async fn a_delegates_read_to_b_then_revokes_it() {
    let w = world().await;
    let a_name = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name";
    let results = w.session("A", vec![w.grant("2", "serverid:B", 1)]).await;
    assert_eq!(codes(&results), [200]);

    let results = w
        .session(
            "B",
            vec![
                get(a_name),
                w.hget("b-writes", a_name, "mine now".into()),
                get("urn:oma:mo:oma-dm-dmacc:1.2/*/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 403, 200, 200], "Read only");
    assert_eq!(body(&results[0]), "server A");
    let wildcard = body(&results[2]);
    assert!(
        wildcard.contains("server A") && wildcard.contains("server B"),
        "{wildcard}"
    );
    let whole = body(&results[3]);
    assert!(
        whole.contains("SrvURI") && !whole.contains("Perm"),
        "no-Get nodes stay on the device: {whole}"
    );

    let results = w
        .session("A", vec![delete(&dacmo(DMACC, "A", "1/Permissions/2"))])
        .await;
    assert_eq!(codes(&results), [200]);
    let results = w
        .session(
            "B",
            vec![get(a_name), get("urn:oma:mo:oma-dm-dmacc:1.2/*/Name")],
        )
        .await;
    assert_eq!(codes(&results), [403, 200], "revoked");
    assert!(!body(&results[1]).contains("server A"));
}

#[tokio::test]
async fn changing_rules_needs_delegate() {
    let w = world().await;
    // Before any grant B cannot even see A's rules; with Read it sees them
    // but still may not change them.
    let b_grab = |w: &World, name: &str| {
        w.hget(
            name,
            &dacmo(DMACC, "A", "1/Permissions/9"),
            serde_json::json!({ "MAID": "serverid:B", "AR": 15 }),
        )
    };
    let results = w
        .session(
            "B",
            vec![
                b_grab(&w, "grab1"),
                delete(&dacmo(DMACC, "A", "1/Permissions/1")),
                // The device's own DevInfo: B may read it, but nobody but
                // the device holds Delegate there.
                w.hget(
                    "grab-devinfo",
                    &dacmo(DEVINFO, "devinfo", "1/Permissions/9"),
                    serde_json::json!({ "MAID": "serverid:B", "AR": 15 }),
                ),
                get(&dacmo(DEVINFO, "devinfo", "1/Permissions/1/AR")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 403, 403, 200]);

    let results = w.session("A", vec![w.grant("2", "serverid:B", 1)]).await;
    assert_eq!(codes(&results), [200]);
    let results = w
        .session(
            "B",
            vec![
                b_grab(&w, "grab2"),
                w.hget(
                    "raise",
                    &dacmo(DMACC, "A", "1/Permissions/2/AR"),
                    serde_json::json!(15),
                ),
                delete(&dacmo(DMACC, "A", "1/Permissions/1")),
                get(&dacmo(DMACC, "A", "1/Permissions/2/AR")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 403, 403, 200]);
    assert_eq!(body(&results[3]), "1", "the rules are unchanged");

    // With Read|Delegate (9), B may pass rights on, and only to a server
    // bootstrapped with DMAcc.
    let results = w.session("A", vec![w.grant("2", "serverid:B", 9)]).await;
    assert_eq!(codes(&results), [200]);
    let results = w
        .session(
            "B",
            vec![
                w.hget(
                    "b-to-c",
                    &dacmo(DMACC, "A", "1/Permissions/3"),
                    serde_json::json!({ "MAID": "serverid:C", "AR": 1 }),
                ),
                w.hget(
                    "b-raises-itself",
                    &dacmo(DMACC, "A", "1/Permissions/2/AR"),
                    serde_json::json!(11),
                ),
                w.hget(
                    "b-writes",
                    "urn:oma:mo:oma-dm-dmacc:1.2/A/Name",
                    "by B".into(),
                ),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 200, 200]);
}

#[tokio::test]
async fn delegation_to_an_authority_without_the_moid_is_refused() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                // C was bootstrapped without DMAcc, Z not at all.
                w.grant("2", "serverid:C", 1),
                w.grant("3", "serverid:Z", 1),
                // Not a Management Authority at all (12.3 MAID format).
                w.grant("4", "nobody", 1),
                // Every server and application: allowed; servers without
                // DMAcc in their Perm list still get nothing from it.
                w.grant("5", "*", 1),
                get(&dacmo(DMACC, "A", "1/Permissions")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [403, 403, 415, 200, 200]);
    let perms = body(&results[4]);
    assert!(
        !perms.contains("serverid:C") && !perms.contains("serverid:Z"),
        "refused grants leave nothing: {perms}"
    );
    let results = w
        .session("B", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")])
        .await;
    assert_eq!(codes(&results), [200], "`*` reaches B");
    let results = w
        .session("C", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")])
        .await;
    assert_eq!(codes(&results), [403], "but not C, outside its Perm list");
}

#[tokio::test]
async fn a_path_rule_overrides_the_instance_rule_and_prunes_parents() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                w.grant("2", "serverid:B", 1),
                // 13.2: a rule for the sub-tree /SrvURI that names only A.
                w.hget(
                    "path-rule",
                    &dacmo(DMACC, "A", "2"),
                    serde_json::json!({
                        "Path": "/SrvURI",
                        "Permissions": { "1": { "MAID": "serverid:A", "AR": 15 } }
                    }),
                ),
                // Not a path-from-moroot: refused as data the MO cannot take.
                w.hget(
                    "bad-path",
                    &dacmo(DMACC, "A", "3"),
                    serde_json::json!({
                        "Path": "SrvURI",
                        "Permissions": { "1": { "MAID": "serverid:A", "AR": 15 } }
                    }),
                ),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/SrvURI"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 415, 200]);
    let results = w
        .session(
            "B",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/SrvURI"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/*/SrvURI"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 403, 200, 200]);
    let items = MoDataItem::parse_list(body(&results[2]).as_bytes()).unwrap();
    let a = &items[0].mo_data["A"];
    assert_eq!(a["Name"], "server A");
    assert!(
        a.get("SrvURI").is_none(),
        "a child without Read never leaves inside its parent: {a}"
    );
    let wildcard = body(&results[3]);
    assert!(
        !wildcard.contains(&w.server("A").dm_url()),
        "nor inside a wildcard's result: {wildcard}"
    );
}

#[tokio::test]
async fn resolution_never_tells_what_a_server_may_not_read() {
    let w = world().await;
    let results = w
        .session(
            "B",
            vec![
                // An x-name matching A's account, which B may not see: as
                // if there were none (404), not 403.
                get("urn:oma:mo:oma-dm-dmacc:1.2/(x)/Name?nv=(x)/SrvID:A"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/(x)/Name?nv=(x)/SrvID:B"),
                // nv on a node without Get (Perm) never matches, in B's own
                // account either.
                get(&format!(
                    "urn:oma:mo:oma-dm-dmacc:1.2/(x)/Name?nv=(x)/Perm/p0/MOID:{DMACC}"
                )),
                get(&format!(
                    "urn:oma:mo:oma-dm-dmacc:1.2/B/Perm/(x)?nv=(x)/MOID:{DMACC}"
                )),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Perm/(x)?nv=(x)/MOID:x"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [404, 200, 404, 404, 403]);
    assert_eq!(body(&results[1]), "server B");
}

#[tokio::test]
async fn a_write_needs_the_right_on_every_node_it_touches() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                // B may read and write A's account, except /SrvURI.
                w.grant("2", "serverid:B", 3),
                w.hget(
                    "path-rule",
                    &dacmo(DMACC, "A", "2"),
                    serde_json::json!({
                        "Path": "/SrvURI",
                        "Permissions": { "1": { "MAID": "serverid:A", "AR": 15 } }
                    }),
                ),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200]);
    let a_url = w.server("A").dm_url();
    let results = w
        .session(
            "B",
            vec![
                w.hget("name", "urn:oma:mo:oma-dm-dmacc:1.2/A/Name", "by B".into()),
                // The root with SrvURI inside: denied as a whole. (HGET
                // replaces, 5.3.1: the data carries the rest as it is.)
                w.hget("root", "urn:oma:mo:oma-dm-dmacc:1.2/A/", {
                    let mut root = common::dmacc_item("A", &a_url, &["*"])["MOData"]["A"].take();
                    root["Name"] = "root by B".into();
                    root["SrvURI"] = "http://127.0.0.1:9/x".into();
                    root
                }),
                // Deleting the instance would delete SrvURI too.
                delete("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 403, 403, 200]);
    assert_eq!(
        body(&results[3]),
        "by B",
        "the refused root write left nothing"
    );
    let results = w
        .session("A", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/SrvURI")])
        .await;
    assert_eq!(body(&results[0]), a_url);
}
