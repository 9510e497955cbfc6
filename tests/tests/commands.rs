//! Every DM command against a device with two bootstrapped servers, with
//! the statuses of Appendix C, access control between the servers, cache
//! validators, and state that survives a restart (each session re-opens the
//! device from its state directory, as `dmctl client` does).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{body, codes, get, uri, Repository};
use dm_agent::service::{self as agent, AgentOptions};
use dm_core::{Command, MoDataItem, ServerUri, StatusCode};
use dm_server::{CommandResult, ServerHandle};

const DEV_ID: &str = "IMEI:490154203237518";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";

struct World {
    tmp: tempfile::TempDir,
    /// Server A: Perm `*`. Server B: Perm DevInfo only.
    a: ServerHandle,
    b: ServerHandle,
    repo: Repository,
    bootstrap: std::path::PathBuf,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, repo) = (
        common::start_server(Vec::new()).await,
        common::start_server(Vec::new()).await,
        Repository::start().await,
    );
    let bootstrap = tmp.path().join("bootstrap.json");
    let body = serde_json::json!([
        common::dmacc_item("A", &a.dm_url(), &["*"]),
        common::dmacc_item("B", &b.dm_url(), &[DEVINFO]),
    ]);
    std::fs::write(&bootstrap, body.to_string()).unwrap();
    World {
        tmp,
        a,
        b,
        repo,
        bootstrap,
    }
}

impl World {
    fn options(&self, show_cmd: Option<String>) -> AgentOptions {
        AgentOptions {
            bootstrap: Some(self.bootstrap.clone()),
            dev_id: Some(DEV_ID.into()),
            show_cmd,
            timeout: Duration::from_secs(10),
            ..AgentOptions::new(self.tmp.path().join("state"))
        }
    }

    /// One session of `server_id` running `commands`, on a device freshly
    /// opened from its state directory; returns the results.
    async fn session(&self, server_id: &str, commands: Vec<Command>) -> Vec<CommandResult> {
        self.session_with(server_id, commands, None).await
    }

    async fn session_with(
        &self,
        server_id: &str,
        commands: Vec<Command>,
        show_cmd: Option<String>,
    ) -> Vec<CommandResult> {
        let server = if server_id == "A" { &self.a } else { &self.b };
        let opts = self.options(show_cmd);
        let mut device = agent::open_device(&opts).unwrap();
        agent::apply_bootstrap(&mut device, &self.bootstrap).unwrap();
        common::session(server, server_id, DEV_ID, &mut device, commands).await
    }
}

fn dmacc_root_data(server_id: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "SrvID": server_id, "SrvURI": "http://127.0.0.1:9/dm", "Name": name,
        "Perm": {"p": {"MOID": DEVINFO}}
    })
}

#[tokio::test]
async fn mos_and_reads_follow_each_servers_perm_list_and_ownership() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/B/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/*/SrvID"),
            ],
        )
        .await;
    assert_eq!(
        codes(&results),
        [200, 403, 200],
        "A reads its own account only"
    );
    assert_eq!(body(&results[0]), "server A");
    let wildcard = body(&results[2]);
    assert!(
        wildcard.contains("\"A\"") && !wildcard.contains("\"B\""),
        "{wildcard}"
    );

    let results = w
        .session(
            "B",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/B/Name"),
                get("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
            ],
        )
        .await;
    assert_eq!(
        codes(&results),
        [403, 200],
        "DMAcc is outside B's Perm list"
    );
    let mos = w.b.device(DEV_ID).unwrap().mos.unwrap();
    let moids: Vec<&str> = mos.iter().filter_map(|m| m.moid.as_deref()).collect();
    assert_eq!(moids, [DEVINFO], "B sees only what its Perm list covers");
    let mos_a = w.a.device(DEV_ID).unwrap().mos.unwrap();
    let dmacc = mos_a
        .iter()
        .find(|m| m.moid.as_deref() == Some(DMACC))
        .unwrap();
    assert_eq!(dmacc.miids, ["A"], "A does not see B's instance");
}

#[tokio::test]
async fn nodes_without_get_never_leave_the_device() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Perm"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 405]);
    let whole = body(&results[0]);
    assert!(
        whole.contains("\"SrvURI\"") && !whole.contains("Perm") && !whole.contains("MOID"),
        "{whole}"
    );
}

#[tokio::test]
async fn hget_creates_replaces_and_reports_its_statuses() {
    let w = world().await;
    let new_instance = serde_json::json!([{ "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": { "extra": dmacc_root_data("X", "extra") } }]);
    w.repo.route(
        "/new",
        200,
        "application/dmmo+json",
        new_instance.to_string(),
    );
    w.repo.route("/name", 200, "text/plain", "Renamed");
    w.repo
        .route("/garbage", 200, "application/dmmo+json", "[{\"MOData\": 1");
    let hget = |path: &str, target: Option<&str>| Command::Hget {
        server_uri: ServerUri::new(w.repo.url(path)),
        client_uri: target.map(uri),
    };
    let results = w
        .session(
            "A",
            vec![
                hget("/new", None),
                hget("/name", Some("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
                hget("/name", Some("urn:oma:mo:oma-dm-devinfo:1.2//Mod")),
                hget("/missing", Some("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
                hget("/garbage", None),
                hget("/name", Some("urn:oma:mo:oma-dm-dmacc:1.2/B/Name")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 405, 419, 415, 403]);
    assert_eq!(
        results[0].status.uris,
        ["urn:oma:mo:oma-dm-dmacc:1.2/extra/"]
    );
    // After a restart: the new instance and the new name are there.
    let results = w
        .session(
            "A",
            vec![
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
                get("urn:oma:mo:oma-dm-dmacc:1.2/extra/Name"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200]);
    assert_eq!(
        (body(&results[0]).as_str(), body(&results[1]).as_str()),
        ("Renamed", "extra")
    );
    // The instance A created is A's alone.
    let results = w
        .session("B", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/extra/Name")])
        .await;
    assert_eq!(codes(&results), [403]);
}

#[tokio::test]
async fn a_failing_hget_leaves_the_instance_exactly_as_before() {
    let w = world().await;
    // Name is fine, SrvID is refused by DMAcc's validate hook: nothing of
    // the write may stay. The data carries every node A's account has, so
    // that only the hook refuses (HGET replaces: 5.3.1).
    let mut data = common::dmacc_item("A", &w.a.dm_url(), &["*"])["MOData"]["A"].take();
    data["SrvID"] = serde_json::json!(" ");
    data["Name"] = serde_json::json!("Changed");
    let item = serde_json::json!([{ "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/A/", "MOData": { "A": data } }]);
    w.repo
        .route("/bad", 200, "application/dmmo+json", item.to_string());
    let before = w
        .session("A", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/")])
        .await;
    let results = w
        .session(
            "A",
            vec![
                Command::Hget {
                    server_uri: ServerUri::new(w.repo.url("/bad")),
                    client_uri: Some(uri("urn:oma:mo:oma-dm-dmacc:1.2/A/")),
                },
                get("urn:oma:mo:oma-dm-dmacc:1.2/A/"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [415, 200]);
    let strip_cv = |s: String| {
        let items = MoDataItem::parse_list(s.as_bytes()).unwrap();
        items[0].mo_data.clone()
    };
    assert_eq!(strip_cv(body(&results[1])), strip_cv(body(&before[0])));
}

#[tokio::test]
async fn hput_and_hpost_send_data_to_the_repository() {
    let w = world().await;
    w.repo.route("/put", 200, "text/plain", "");
    w.repo.route("/post", 204, "text/plain", "");
    w.repo.route("/broken", 500, "text/plain", "");
    let send = |put: bool, path: &str, uris: &[&str]| {
        let server_uri = ServerUri::new(format!("{}?dev=[DevID]", w.repo.url(path)));
        let client_uris = uris.iter().map(|u| uri(u)).collect();
        if put {
            Command::Hput {
                server_uri,
                client_uris,
            }
        } else {
            Command::Hpost {
                server_uri,
                client_uris,
            }
        }
    };
    let results = w
        .session(
            "A",
            vec![
                send(true, "/put", &["urn:oma:mo:oma-dm-devinfo:1.2//DevID"]),
                send(
                    false,
                    "/post",
                    &[
                        "urn:oma:mo:oma-dm-devinfo:1.2//",
                        "urn:oma:mo:oma-dm-dmacc:1.2/A/",
                    ],
                ),
                send(true, "/broken", &["urn:oma:mo:oma-dm-devinfo:1.2//DevID"]),
                send(true, "/put", &["urn:oma:mo:oma-dcmo:1.0//"]),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 419, 404]);
    let requests = w.repo.requests();
    let put = requests
        .iter()
        .find(|r| r.path.starts_with("/put"))
        .unwrap();
    assert_eq!(
        (put.method.as_str(), put.body.as_slice()),
        ("PUT", DEV_ID.as_bytes())
    );
    assert_eq!(
        put.path, "/put?dev=IMEI:490154203237518",
        "[DevID] substituted (6.2)"
    );
    let post = requests
        .iter()
        .find(|r| r.path.starts_with("/post"))
        .unwrap();
    assert_eq!(post.header("content-type"), Some("application/dmmo+json"));
    let items = MoDataItem::parse_list(&post.body).unwrap();
    assert_eq!(items.len(), 2);
    let text = String::from_utf8_lossy(&post.body);
    assert!(!text.contains("Perm"), "no-Get nodes are not sent: {text}");
}

#[tokio::test]
async fn server_uri_parameters_the_device_does_not_support_are_minus_one() {
    let w = world().await;
    w.repo.route("/sink/-1", 200, "text/plain", "");
    // spec 6.2: every parameter is replaced ([Other] is none this client
    // supports: -1), and what goes out is an RFC 3986 URI. The agent runs
    // on hosts with no mobile network: MNC, MCC, CMNC, CMCC and SPName are
    // -1 ("If the DM Client is not associated with a mobile network").
    let server_uri = ServerUri::new(format!(
        "{}?dev=[DevID]&a=b[c&note=x y&net=[MCC]-[MNC]&cur=[CMCC]-[CMNC]&sp=[SPName]",
        w.repo.url("/sink/[Other]")
    ));
    let results = w
        .session(
            "A",
            vec![Command::Hput {
                server_uri,
                client_uris: vec![uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID")],
            }],
        )
        .await;
    assert_eq!(codes(&results), [200]);
    let requests = w.repo.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/sink/-1?dev=IMEI:490154203237518&a=b%5Bc&note=x%20y&net=-1--1&cur=-1--1&sp=-1"]
    );
}

#[tokio::test]
async fn delete_respects_ddf_scope_and_ownership() {
    let w = world().await;
    let new_instance = serde_json::json!([{ "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/gone/", "MOData": { "gone": dmacc_root_data("G", "gone") } }]);
    w.repo.route(
        "/new",
        200,
        "application/dmmo+json",
        new_instance.to_string(),
    );
    let delete = |s: &str| Command::Delete { client_uri: uri(s) };
    let results = w
        .session(
            "A",
            vec![
                Command::Hget {
                    server_uri: ServerUri::new(w.repo.url("/new")),
                    client_uri: None,
                },
                delete("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
                delete("urn:oma:mo:oma-dm-dmacc:1.2/A/Name"),
                delete("urn:oma:mo:oma-dm-dmacc:1.2/gone/"),
                delete("urn:oma:mo:oma-dm-dmacc:1.2/nothere/"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 405, 405, 200, 404]);
    let results = w
        .session("A", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/gone/Name")])
        .await;
    assert_eq!(
        codes(&results),
        [404],
        "the deleted instance stays deleted after a restart"
    );
}

/// A browser for SHOW that writes its arguments, one per line, to `out`.
fn recording_browser(dir: &std::path::Path, out: &std::path::Path) -> String {
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", out.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    script.display().to_string()
}

/// The arguments the recording browser was started with (waits a second).
async fn browser_args(out: &std::path::Path) -> Vec<String> {
    let mut shown = String::new();
    for _ in 0..50 {
        shown = std::fs::read_to_string(out).unwrap_or_default();
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shown.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn show_starts_the_browser_and_goes_on() {
    let w = world().await;
    let out = w.tmp.path().join("shown.txt");
    let browser = recording_browser(w.tmp.path(), &out);
    let show = Command::Show {
        server_uri: ServerUri::new("http://127.0.0.1:9/ui?uiid=7&dev=[DevID]"),
    };
    let results = w
        .session_with(
            "A",
            vec![show.clone(), get("urn:oma:mo:oma-dm-devinfo:1.2//DmV")],
            Some(browser),
        )
        .await;
    assert_eq!(codes(&results), [200, 200]);
    // The URI last, after `--`: never read as an option.
    assert_eq!(
        browser_args(&out).await,
        ["--", &format!("http://127.0.0.1:9/ui?uiid=7&dev={DEV_ID}")]
    );
    let results = w.session("A", vec![show]).await;
    assert_eq!(codes(&results), [501], "no browser component configured");
}

#[tokio::test]
async fn show_runs_the_browser_only_on_an_http_uri() {
    let w = world().await;
    let out = w.tmp.path().join("shown.txt");
    let browser = recording_browser(w.tmp.path(), &out);
    let show = |s: &str| Command::Show {
        server_uri: ServerUri::new(s),
    };
    let refused = ["--some-flag", "file:///etc/shadow", "javascript:alert(1)"];
    let mut commands: Vec<Command> = refused.iter().map(|s| show(s)).collect();
    commands.push(get("urn:oma:mo:oma-dm-devinfo:1.2//DmV"));
    let results = w.session_with("A", commands, Some(browser.clone())).await;
    // Appendix C 400: malformed syntax in the command; the next goes on.
    assert_eq!(codes(&results), [400, 400, 400, 200]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!out.exists(), "the browser never ran");

    let results = w
        .session_with("A", vec![show("https://x/y")], Some(browser))
        .await;
    assert_eq!(codes(&results), [200]);
    assert_eq!(browser_args(&out).await, ["--", "https://x/y"]);
}

#[tokio::test]
async fn default_sub_and_unsub() {
    let w = world().await;
    w.repo.route("/sub", 200, "text/plain", "");
    w.repo.route("/name", 200, "text/plain", "Subscribed");
    let name = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name";
    let results = w
        .session(
            "A",
            vec![
                Command::Default {
                    server_uri: ServerUri::new(w.repo.url("/mms")),
                    moid: "urn:oma:mo:oma-mms:1.3".into(),
                },
                Command::Sub {
                    server_uri: ServerUri::new(w.repo.url("/sub")),
                    client_uri: uri(name),
                },
                Command::Hget {
                    server_uri: ServerUri::new(w.repo.url("/name")),
                    client_uri: Some(uri(name)),
                },
                Command::Unsub {
                    client_uri: uri(name),
                },
                Command::Unsub {
                    client_uri: uri(name),
                },
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 200, 200, 404]);
    let pushed: Vec<_> = w
        .repo
        .requests()
        .into_iter()
        .filter(|r| r.path == "/sub")
        .collect();
    assert_eq!(pushed.len(), 1, "one change, one PUT");
    assert_eq!(
        (pushed[0].method.as_str(), pushed[0].body.as_slice()),
        ("PUT", &b"Subscribed"[..])
    );
    // What the state directory holds, as the next start reads it.
    let state = dm_agent::StateDir::open(&w.tmp.path().join("state"))
        .unwrap()
        .agent_state()
        .unwrap();
    assert_eq!(state.defaults[0].0, "urn:oma:mo:oma-mms:1.3");
    assert!(state.subscriptions.is_empty());
}

#[tokio::test]
async fn cache_validators_answer_304_until_the_instance_changes() {
    let w = world().await;
    w.repo.route("/name", 200, "text/plain", "Changed");
    let results = w
        .session("A", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/")])
        .await;
    let items = MoDataItem::parse_list(body(&results[0]).as_bytes()).unwrap();
    let cv = items[0].cv.clone().expect("CV at an instance root (11)");
    let with_cv = format!("urn:oma:mo:oma-dm-dmacc:1.2/A/?cv={cv}");
    let results = w
        .session(
            "A",
            vec![
                get(&with_cv),
                Command::Hget {
                    server_uri: ServerUri::new(w.repo.url("/name")),
                    client_uri: Some(uri("urn:oma:mo:oma-dm-dmacc:1.2/A/Name")),
                },
                get(&with_cv),
            ],
        )
        .await;
    assert_eq!(codes(&results), [304, 200, 200]);
    assert!(results[0].data.is_none());
}

#[tokio::test]
async fn a_cache_validator_serves_every_node_of_its_instance() {
    // spec 11.1: "the cache validator can be used for all read operations
    // (i.e., GET/HPUT/HPOST) targeting any node in a cacheable MO instance".
    let w = world().await;
    let root = w
        .session("A", vec![get("urn:oma:mo:oma-dm-dmacc:1.2/A/")])
        .await;
    let items = MoDataItem::parse_list(body(&root[0]).as_bytes()).unwrap();
    let cv = items[0].cv.clone().expect("CV at an instance root (11)");
    let leaf = format!("urn:oma:mo:oma-dm-dmacc:1.2/A/Name?cv={cv}");
    let interior = format!("urn:oma:mo:oma-dm-dmacc:1.2/A/Auth/Noti?cv={cv}");
    let stale = "urn:oma:mo:oma-dm-dmacc:1.2/A/Name?cv=0-0000000000000000";
    let no_get = format!("urn:oma:mo:oma-dm-dmacc:1.2/A/Perm?cv={cv}");
    let hput = |uri: &str| Command::Hput {
        server_uri: ServerUri::new(w.repo.url("/put")),
        client_uris: vec![common::uri(uri)],
    };
    w.repo.route("/put", 200, "text/plain", "");
    let results = w
        .session(
            "A",
            vec![
                get(&leaf),
                get(&interior),
                get(stale),
                hput(&leaf),
                hput(&interior),
                // 304 means "the access is allowed" (Appendix C): a node
                // without Get is refused, whatever the validator.
                get(&no_get),
            ],
        )
        .await;
    assert_eq!(codes(&results), [304, 304, 200, 304, 304, 405]);
    assert!(results[0].data.is_none() && results[1].data.is_none());
    assert_eq!(body(&results[2]), "server A");
    let sent = w
        .repo
        .requests()
        .into_iter()
        .filter(|r| r.path == "/put")
        .count();
    assert_eq!(sent, 0, "HPUT with a current cv sends nothing");
}

#[tokio::test]
async fn hget_of_a_bare_value_needs_a_media_type_that_fits_the_leaf() {
    // 5.3.1, 5.5, Appendix C 415; the mapping is `bare_value` in the agent.
    let w = world().await;
    let name = format!("{DMACC}/A/Name");
    let data = format!("{DMACC}/A/Auth/Noti/Data");
    let mut commands = Vec::new();
    for (path, leaf, content_type, bytes) in [
        ("/n1", &name, "application/octet-stream", &b"Binary"[..]),
        ("/n2", &name, "image/png", b"Png"),
        ("/n3", &name, "text/plain; charset=utf-8", b"Texted"),
        ("/n4", &name, "application/json", b"\"Jsoned\""),
        ("/d1", &data, "text/plain", b"AAEC"),
        ("/d2", &data, "application/octet-stream", &[0xde, 0xad]),
    ] {
        w.repo.route(path, 200, content_type, bytes.to_vec());
        commands.push(Command::Hget {
            server_uri: ServerUri::new(w.repo.url(path)),
            client_uri: Some(uri(leaf)),
        });
        commands.push(get(leaf));
    }
    let results = w.session("A", commands).await;
    let got: Vec<(u16, &[u8])> = results
        .chunks(2)
        .map(|pair| {
            let data = pair[1].data.as_ref().expect("GET data");
            (pair[0].status.code.as_u16(), data.body.as_slice())
        })
        .collect();
    assert_eq!(
        got,
        [
            (415, &b"server A"[..]),
            (415, b"server A"),
            (200, b"Texted"),
            (200, b"Jsoned"),
            // A bin leaf: text/plain does not fit it; the bytes do.
            (415, b"auth"),
            (200, &[0xde, 0xad]),
        ]
    );
}

#[tokio::test]
async fn hget_replaces_the_node_and_leaves_no_child_the_data_lacks() {
    // 5.3.1: "replacing all existing data, if any". A's rule on its own
    // account gets two more permissions, then an HGET of the Permissions
    // node that carries only one of them.
    const DACMO: &str = "urn:oma:mo:oma-dm-dacmo:1.0";
    let permissions = format!("{DACMO}/{DMACC}/A/1/Permissions");
    let w = world().await;
    let w_hget = |name: &str, target: &str, data| w.repo.hget(name, target, data);
    let results = w
        .session(
            "A",
            vec![
                w_hget(
                    "p2",
                    &format!("{permissions}/p2"),
                    serde_json::json!({ "MAID": "appid:one", "AR": 1 }),
                ),
                w_hget(
                    "p3",
                    &format!("{permissions}/p3"),
                    serde_json::json!({ "MAID": "appid:two", "AR": 1 }),
                ),
                w_hget(
                    "only-p2",
                    &permissions,
                    serde_json::json!({
                        "1": { "MAID": "serverid:A", "AR": 15 },
                        "p2": { "MAID": "appid:one", "AR": 1 }
                    }),
                ),
                get(&permissions),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 200, 200, 200]);
    let left = body(&results[3]);
    assert!(left.contains("appid:one"), "{left}");
    assert!(!left.contains("appid:two"), "p3 is gone: {left}");

    // A node the data lacks that may not be deleted refuses the HGET whole:
    // DMAcc's Auth/Noti has no Delete, so Auth without it is refused and
    // Noti keeps its data.
    let results = w
        .session(
            "A",
            vec![
                w_hget("no-noti", &format!("{DMACC}/A/Auth"), serde_json::json!({})),
                get(&format!("{DMACC}/A/Auth/Noti/Data")),
            ],
        )
        .await;
    assert_eq!(codes(&results), [405, 200]);
    assert_eq!(results[1].data.as_ref().unwrap().body, b"auth");
}

#[tokio::test]
async fn a_write_the_disk_refuses_is_taken_back_in_memory_too() {
    // docs/architecture.md "Persistence": memory changes only once the
    // command's record is on disk. A directory where the journal should
    // be makes every append fail, for root too (unlike a read-only mode).
    let w = world().await;
    let mut device = agent::open_device(&w.options(None)).unwrap();
    agent::apply_bootstrap(&mut device, &w.bootstrap).unwrap();
    let journal = w.tmp.path().join("state/journal");
    std::fs::rename(&journal, w.tmp.path().join("journal.kept")).unwrap();
    std::fs::create_dir(&journal).unwrap();
    w.repo.route("/new-name", 200, "text/plain", "Changed");
    let name = format!("{DMACC}/A/Name");
    let results = common::session(
        &w.a,
        "A",
        DEV_ID,
        &mut device,
        vec![
            Command::Hget {
                server_uri: ServerUri::new(w.repo.url("/new-name")),
                client_uri: Some(uri(&name)),
            },
            get(&name),
        ],
    )
    .await;
    assert_eq!(codes(&results), [500, 200]);
    assert_eq!(
        body(&results[1]),
        "server A",
        "memory holds what the disk does"
    );
}

#[tokio::test]
async fn a_refused_hget_names_the_node_and_the_rule() {
    // Issue "Device agent under a hostile server", item 8: the 415 alone
    // does not say which node or rule; the log and `take_refusal` do.
    let w = world().await;
    let mut device = agent::open_device(&w.options(None)).unwrap();
    agent::apply_bootstrap(&mut device, &w.bootstrap).unwrap();
    w.repo
        .route("/png", 200, "image/png", vec![0x89, b'P', b'N', b'G']);
    let name = format!("{DMACC}/A/Name");
    let results = common::session(
        &w.a,
        "A",
        DEV_ID,
        &mut device,
        vec![Command::Hget {
            server_uri: ServerUri::new(w.repo.url("/png")),
            client_uri: Some(uri(&name)),
        }],
    )
    .await;
    assert_eq!(codes(&results), [415]);
    let reason = device.take_refusal().expect("a reason");
    assert!(
        reason.contains(&name) && reason.contains("image/png") && reason.contains("`chr`"),
        "{reason}"
    );
}

#[tokio::test]
async fn unknown_commands_and_bad_uris_keep_their_order() {
    let w = world().await;
    let results = w
        .session(
            "A",
            vec![
                get("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
                Command::Exec {
                    client_uri: uri("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
                    server_uri: None,
                },
                get("urn:oma:mo:oma-dm-devinfo:1.2//NoSuchNode"),
            ],
        )
        .await;
    assert_eq!(codes(&results), [200, 405, 404]);
    assert_eq!(results[0].status.code, StatusCode::OK);
}
