//! `dmctl server` and `dmctl client` as processes on loopback, driven only
//! through the server's admin API and notifications: every DM command,
//! the asynchronous EXEC alert path, the Data Repository, DEFAULT/SUB
//! registrations, SHOW answers, a notification-started session, a
//! restart on the same database, and malformed packages; and who may use
//! the admin API (tokens and roles, Host, Origin, JSON bodies).
#![allow(clippy::unwrap_used)]

mod common;
mod dmserver;

use std::time::Duration;

use dmserver::{create_token, free_udp_addr, http, http_full, run_client, DmServer, FIRST_TOKEN};
use serde_json::{json, Value};

const DEV: &str = "IMEI:490154203237518";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";

async fn put_resource(s: &DmServer, path: &str, content_type: &str, body: &str) {
    let (status, reply) = http(
        &s.admin,
        "PUT",
        &format!("/api/devices/{DEV}/repository/{path}"),
        &[
            ("Content-Type", content_type),
            ("Authorization", s.auth().as_str()),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
}

fn name_of(command: &Value) -> String {
    command[0].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_drives_every_command_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("server.sqlite");
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, Some(&db)).await;
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    let plugins = common::plugins_in(tmp.path(), &["mo-dcmo"]);
    let state = tmp.path().join("state");

    // Repository content for HGET: a new DMAcc instance and two names.
    let extra = json!([{ "ClientURI": format!("{DMACC}//"), "MOData": { "extra": {
        "SrvID": "X", "SrvURI": "http://127.0.0.1:9/dm", "Name": "extra",
        "Perm": { "p": { "MOID": DEVINFO } } } } }]);
    put_resource(
        &s,
        "extra.json",
        "application/dmmo+json",
        &extra.to_string(),
    )
    .await;
    put_resource(&s, "name.txt", "text/plain", "Renamed").await;
    put_resource(&s, "name2.txt", "text/plain", "Changed again").await;

    let repo = |p: &str| format!("/repo/[DevID]/{p}");
    let name = format!("{DMACC}/extra/Name");
    let mut ids = Vec::new();
    for c in [
        json!(["GET", format!("{DEVINFO}/*/Man")]),
        json!(["GET", format!("{DEVINFO}/(x)/DevID?nv=(x)/DmV:2.0")]),
        json!(["HGET", repo("extra.json")]),
        json!(["HGET", repo("name.txt"), name]),
        json!(["HPUT", repo("devinfo.json"), format!("{DEVINFO}//")]),
        json!(["HPOST", repo("devid.txt"), format!("{DEVINFO}//DevID")]),
        json!(["EXEC", format!("{DCMO}/Camera/Operations/Disable")]),
        json!({ "command": ["EXEC", format!("{DCMO}/USB/Operations/Disable"), "/dm"] }),
    ] {
        ids.push(s.enqueue(DEV, c).await);
    }
    let show = s
        .ok(
            "POST",
            &format!("/api/devices/{DEV}/show"),
            json!({"prompt": "Install the update?"}),
        )
        .await;
    let default = s
        .ok(
            "POST",
            &format!("/api/devices/{DEV}/registrations"),
            json!({"kind": "DEFAULT", "moid": "urn:oma:mo:oma-mms:1.3", "server_uri": repo("mms.json")}),
        )
        .await;
    let sub = s
        .ok(
            "POST",
            &format!("/api/devices/{DEV}/registrations"),
            json!({"kind": "SUB", "client_uri": name, "server_uri": repo("sub-name")}),
        )
        .await;
    s.enqueue(DEV, json!(["HGET", repo("name2.txt"), name]))
        .await;
    s.ok(
        "DELETE",
        &format!("/api/devices/{DEV}/registrations/{}", sub["id"]),
        Value::Null,
    )
    .await;
    s.enqueue(DEV, json!(["CONT", "/dm/continued"])).await;
    s.enqueue(DEV, json!(["DELETE", format!("{DMACC}/extra/")]))
        .await;
    s.enqueue(DEV, json!(["END"])).await;

    let (code, stderr) = run_client(
        &dmctl,
        &[
            "--once",
            "--server-id",
            "A",
            "--dev-id",
            DEV,
            "--show-cmd",
            "true",
            "--state",
            state.to_str().unwrap(),
            "--bootstrap",
            bootstrap.to_str().unwrap(),
            "--plugins",
            plugins.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");

    let results = s
        .ok("GET", &format!("/api/devices/{DEV}/results"), Value::Null)
        .await;
    let table: Vec<(String, u64)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                name_of(&r["command"]),
                r["status"]["sc"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [
        ("GET", 200),
        ("GET", 200),
        ("HGET", 200),
        ("HGET", 200),
        ("HPUT", 200),
        ("HPOST", 200),
        ("EXEC", 200),
        ("EXEC", 202),
        ("SHOW", 200),
        ("DEFAULT", 200),
        ("SUB", 200),
        ("HGET", 200),
        ("UNSUB", 200),
        ("CONT", 200),
        ("DELETE", 200),
        ("END", 200),
    ];
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(n, c)| ((*n).to_owned(), *c))
        .collect();
    assert_eq!(table, expected, "{results:#}");
    let r = results.as_array().unwrap();
    // Wildcard and x-name GETs carry their data (Appendix F).
    assert!(r[0]["data"]["text"].as_str().unwrap().contains("Man"));
    assert_eq!(r[1]["data"]["text"], DEV);
    assert_eq!(r[2]["status"]["URI"], json!([format!("{DMACC}/extra/")]));
    // The asynchronous EXEC: 202 now, its final status from the alert.
    assert_eq!(r[7]["id"].as_u64(), Some(ids[7]));
    assert_eq!(r[7]["async_status"], 200, "{:#}", r[7]);
    let alerts = s
        .ok("GET", &format!("/api/devices/{DEV}/alerts"), Value::Null)
        .await;
    let complete = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert"]["AlertType"] == "urn:oma:at:dcmo:1.0:OperationComplete")
        .expect("the asynchronous EXEC's alert");
    assert_eq!(complete["command"].as_u64(), Some(ids[7]));

    // The repository got HPUT, HPOST and the SUB report of the change.
    let get_res = |p: &str| {
        let path = format!("/api/devices/{DEV}/repository/{p}");
        let s = &s;
        async move { s.ok("GET", &path, Value::Null).await }
    };
    let devinfo = get_res("devinfo.json").await;
    assert_eq!(devinfo["origin"], "PUT");
    assert_eq!(devinfo["json"][0]["MOData"]["devinfo"]["DevID"], DEV);
    let devid = get_res("devid.txt").await;
    assert_eq!(
        (devid["origin"].as_str(), devid["text"].as_str()),
        (Some("POST"), Some(DEV))
    );
    let pushed = get_res("sub-name").await;
    assert_eq!(pushed["text"], "Changed again");
    let regs = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/registrations"),
            Value::Null,
        )
        .await;
    assert_eq!(
        regs,
        json!([{ "id": default["id"], "kind": "DEFAULT", "moid": "urn:oma:mo:oma-mms:1.3",
                 "server_uri": default["server_uri"] }]),
        "UNSUB removed the SUB"
    );

    // Issue 19, item 6: the repository answers no anonymous request; the
    // formats it serves and takes (spec 5.5) are in repository_auth.rs,
    // through signed URLs.
    let repo_addr = s.base.trim_start_matches("http://").to_owned();
    let (status, _, body) = http_full(
        &repo_addr,
        "GET",
        &format!("/repo/{DEV}/name.txt"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&body).contains("Renamed"));
    let (status, _, _) = http_full(
        &repo_addr,
        "PUT",
        &format!("/repo/{DEV}/name.txt"),
        &[("Content-Type", "text/plain")],
        b"overwritten",
    )
    .await;
    assert_eq!(status, 401);
    let kept = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/repository/name.txt"),
            Value::Null,
        )
        .await;
    assert_eq!(kept["text"], "Renamed");

    // The SHOW page records the user's answer; the admin API reports it.
    // The page and its answer need the signed link the admin API gave.
    let uiid = show["uiid"].as_u64().unwrap();
    let ui_addr = s.base.trim_start_matches("http://").to_owned();
    let link = show["url"].as_str().unwrap();
    let (_, query) = link.split_once('?').unwrap();
    let (status, _) = http(&ui_addr, "GET", &format!("/ui?uiid={uiid}"), &[], b"").await;
    assert_eq!(status, 401);
    let (status, page) = http(&ui_addr, "GET", &format!("/ui?{query}"), &[], b"").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Install the update?"));
    let form = format!("uiid={uiid}&choice=decline");
    let (status, _) = http(
        &ui_addr,
        "POST",
        &format!("/ui/choice?{query}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let ui = s.ok("GET", &format!("/api/ui/{uiid}"), Value::Null).await;
    assert_eq!(ui["choice"], "decline");

    // A notification-started session: signed with the device's Auth/Noti
    // secret (the bootstrap's "secret"/"auth"), ids increasing.
    let udp = free_udp_addr();
    s.ok(
        "PUT",
        &format!("/api/devices/{DEV}/notification"),
        json!({"server_id": "A", "secret": "c2VjcmV0", "auth_data": "YXV0aA==", "udp": udp}),
    )
    .await;
    let before = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    let mut client = tokio::process::Command::new(&dmctl)
        .args([
            "client",
            "--once",
            "--dev-id",
            DEV,
            "--notify-udp",
            &udp,
            "--state",
        ])
        .arg(&state)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut ids_sent = Vec::new();
    let status = loop {
        let n = s
            .ok(
                "POST",
                &format!("/api/devices/{DEV}/notify"),
                json!({"req_mos": true, "timestamp": true, "con_types": ["wlan", "any"]}),
            )
            .await;
        ids_sent.push(n["notification_id"].as_u64().unwrap());
        if let Ok(Ok(st)) = tokio::time::timeout(Duration::from_millis(300), client.wait()).await {
            break st;
        }
        assert!(ids_sent.len() < 100, "the device never answered");
    };
    assert!(status.success());
    assert!(
        ids_sent.windows(2).all(|w| w[1] == w[0] + 1),
        "{ids_sent:?}"
    );
    let after = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    assert_eq!(
        after["sessions"].as_u64().unwrap(),
        before["sessions"].as_u64().unwrap() + 1
    );
    assert!(after["mos"].is_array(), "REQ-MOS asked for the MOS");
    assert!(after.to_string().find("c2VjcmV0").is_none(), "no secret");
    let alerts = s
        .ok("GET", &format!("/api/devices/{DEV}/alerts"), Value::Null)
        .await;
    assert_eq!(
        alerts.as_array().unwrap().last().unwrap()["alert"]["AlertType"],
        "urn:oma:at:dm:2.0:ServerInitiatedMgmt"
    );

    // Bad requests: 4xx and a JSON error.
    for (method, path, body) in [
        (
            "POST",
            format!("/api/devices/{DEV}/commands"),
            json!(["FROB", "x"]),
        ),
        (
            "POST",
            format!("/api/devices/{DEV}/commands"),
            json!(["GET", "not a uri"]),
        ),
        (
            "POST",
            format!("/api/devices/{DEV}/registrations"),
            json!({"kind": "SUB"}),
        ),
        (
            "PUT",
            format!("/api/devices/{DEV}/notification"),
            json!({"server_id": "A", "secret": "%%"}),
        ),
        ("POST", "/api/devices/nobody/notify".to_owned(), json!({})),
        ("GET", "/api/nothing".to_owned(), Value::Null),
    ] {
        let (status, reply) = s.api(method, &path, Some(body)).await;
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert!(reply["error"].is_string(), "{reply}");
    }

    // A restart on the same database keeps everything.
    s.stop().await;
    let s = DmServer::start(&dmctl, Some(&db)).await;
    let again = s
        .ok("GET", &format!("/api/devices/{DEV}/results"), Value::Null)
        .await;
    assert_eq!(again, results);
    let dev = s
        .ok("GET", &format!("/api/devices/{DEV}"), Value::Null)
        .await;
    assert_eq!(dev["sessions"], after["sessions"]);
    assert_eq!(dev["last_notification_id"], json!(ids_sent.last()));
    let ui = s.ok("GET", &format!("/api/ui/{uiid}"), Value::Null).await;
    assert_eq!(ui["choice"], "decline");
    let listed = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/repository"),
            Value::Null,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    let regs_again = s
        .ok(
            "GET",
            &format!("/api/devices/{DEV}/registrations"),
            Value::Null,
        )
        .await;
    assert_eq!(regs_again, regs);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packages_get_400_and_others_keep_being_served() {
    let tmp = tempfile::tempdir().unwrap();
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, None).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let bad: [(&str, &[u8]); 3] = [
        ("application/vnd.oma.dm.initiation+json", b"{\"MOS\": 7"),
        ("application/vnd.oma.dm.response+json", b"[]"),
        ("text/plain", b"hello"),
    ];
    for (content_type, body) in bad {
        let (status, reason) = http(
            &addr,
            "POST",
            "/dm",
            &[("Content-Type", content_type), ("OMADM-DevID", "IMEI:bad")],
            body,
        )
        .await;
        assert!(
            status == 400 || status == 415,
            "{content_type}: {status} {}",
            String::from_utf8_lossy(&reason)
        );
    }
    let logged = s.logged("IMEI:bad").await;
    assert!(
        logged
            .iter()
            .any(|l| l.contains("400") && l.contains("IMEI:bad")),
        "the reason is logged: {logged:?}"
    );

    // A DevID that decodes to a line break cannot forge a log line.
    let forged = "/api/devices/IMEI:bad%0Adm-server:%20200%20forged";
    let (status, _) = s.api("GET", forged, None).await;
    assert_eq!(status, 404);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let logged = s.log.lock().unwrap().clone();
        if logged.iter().any(|l| l.contains("forged")) {
            break logged;
        }
        assert!(std::time::Instant::now() < deadline, "{logged:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        logged.iter().all(|l| !l.starts_with("dm-server: 200")),
        "{logged:?}"
    );
    assert!(
        logged
            .iter()
            .any(|l| l.contains(r"IMEI:bad\ndm-server: 200 forged")),
        "escaped: {logged:?}"
    );

    // A good device is served as usual, in parallel with more garbage.
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    s.enqueue(DEV, json!(["GET", format!("{DEVINFO}//DevID")]))
        .await;
    let state = tmp.path().join("state");
    let args = [
        "--once",
        "--dev-id",
        DEV,
        "--state",
        state.to_str().unwrap(),
        "--bootstrap",
        bootstrap.to_str().unwrap(),
    ];
    let client = run_client(&dmctl, &args);
    let garbage = http(
        &addr,
        "POST",
        "/dm",
        &[
            ("Content-Type", "application/vnd.oma.dm.initiation+json"),
            ("OMADM-DevID", "IMEI:bad"),
        ],
        b"not json",
    );
    let ((code, stderr), (status, _)) = tokio::join!(client, garbage);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status, 400);
    let results = s
        .ok("GET", &format!("/api/devices/{DEV}/results"), Value::Null)
        .await;
    assert_eq!(results[0]["status"]["sc"], 200);
    assert_eq!(results[0]["data"]["text"], DEV);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_devices_are_served_at_once_each_with_its_own_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, Some(&tmp.path().join("db.sqlite"))).await;
    let bootstrap = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    let devs: Vec<String> = (0..6).map(|i| format!("IMEI:35000000000000{i}")).collect();
    for d in &devs {
        s.enqueue(d, json!(["GET", format!("{DEVINFO}//DevID")]))
            .await;
    }
    let mut clients = tokio::task::JoinSet::new();
    for d in &devs {
        let state = tmp.path().join(d.replace(':', "_"));
        let args = [
            "--once".to_owned(),
            "--dev-id".to_owned(),
            d.clone(),
            "--state".to_owned(),
            state.to_str().unwrap().to_owned(),
            "--bootstrap".to_owned(),
            bootstrap.to_str().unwrap().to_owned(),
        ];
        let dmctl = dmctl.clone();
        clients.spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_client(&dmctl, &args).await
        });
    }
    while let Some(done) = clients.join_next().await {
        let (code, stderr) = done.unwrap();
        assert_eq!(code, 0, "{stderr}");
    }
    let listed = s.ok("GET", "/api/devices", Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), devs.len());
    for d in &devs {
        let results = s
            .ok("GET", &format!("/api/devices/{d}/results"), Value::Null)
            .await;
        assert_eq!(results.as_array().unwrap().len(), 1, "{d}: {results}");
        assert_eq!(results[0]["data"]["text"], d.as_str(), "its own answer");
        let dev = s.ok("GET", &format!("/api/devices/{d}"), Value::Null).await;
        assert_eq!(
            (dev["sessions"].as_u64(), dev["ended"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(dev["last_session"].is_u64());
    }
    s.stop().await;
}

/// Every file SQLite keeps for `db` (the database, its WAL and index).
fn database_bytes(db: &std::path::Path) -> Vec<u8> {
    let name = db.file_name().unwrap().to_str().unwrap().to_owned();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_str().unwrap().starts_with(&name) {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_wants_a_token_of_the_right_role_its_own_host_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("server.sqlite");
    let dmctl = common::dmctl();
    let read = create_token(&dmctl, &db, "read").await;
    let s = DmServer::start(&dmctl, Some(&db)).await;
    let op = s.auth();
    let op = op.as_str();
    let read = format!("Bearer {read}");
    let read = read.as_str();
    let commands = format!("/api/devices/{DEV}/commands");
    let command = json!(["GET", format!("{DEVINFO}//DevID")]).to_string();
    let json = ("Content-Type", "application/json");

    // No token, a wrong one: 401 with the Bearer challenge, and logged.
    let (status, head, _) = http_full(&s.admin, "GET", "/api/devices", &[], b"").await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let wrong = format!("{op}A");
    let wrong = wrong.as_str();
    let (status, head, _) = http_full(
        &s.admin,
        "POST",
        &commands,
        &[json, ("Authorization", wrong)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert_eq!(queued(&s).await, 0);

    // A read-only token reads, and cannot queue.
    let (status, _) = http(
        &s.admin,
        "GET",
        "/api/devices",
        &[("Authorization", read)],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(
        &s.admin,
        "POST",
        &commands,
        &[json, ("Authorization", read)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(queued(&s).await, 0);

    // The operator's token queues, with a JSON body only.
    let (status, body) = http(
        &s.admin,
        "POST",
        &commands,
        &[json, ("Authorization", op)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let plain = ("Content-Type", "text/plain");
    let (status, _) = http(
        &s.admin,
        "POST",
        &commands,
        &[plain, ("Authorization", op)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 415);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let (status, _) = http(
        &s.admin,
        "POST",
        &commands,
        &[form, ("Authorization", op)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(queued(&s).await, 1);

    // A cross-site page and a DNS rebinding one: 403 even with the
    // operator's token (a browser may hold it); the same origin is served.
    let (status, _) = http(
        &s.admin,
        "POST",
        &commands,
        &[
            json,
            ("Authorization", op),
            ("Origin", "http://evil.example"),
        ],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 403);
    let own = format!("http://{}", s.admin);
    let own = own.as_str();
    let (status, _) = http(
        &s.admin,
        "POST",
        &commands,
        &[json, ("Authorization", op), ("Origin", own)],
        command.as_bytes(),
    )
    .await;
    assert_eq!(status, 201);
    let port = s.admin.rsplit(':').next().unwrap();
    let rebound = format!("evil.example:{port}");
    let (status, _, _) = raw_host_request(&s.admin, &rebound, op).await;
    assert_eq!(status, 403);
    let (status, _, _) = raw_host_request(&s.admin, &format!("localhost:{port}"), op).await;
    assert_eq!(status, 200);
    assert_eq!(queued(&s).await, 2);

    // Refusals are logged, never with the token.
    s.logged("403 a read-only token cannot POST").await;
    let logged = s.logged("401 no bearer token").await.join("\n");
    assert!(logged.contains("401 no bearer token"), "{logged}");
    assert!(
        logged.contains("403 a read-only token cannot POST"),
        "{logged}"
    );
    let op_token = s.token.clone();
    assert!(!logged.contains(&op_token[6..]), "{logged}");
    assert!(!logged.contains(&read[13..]), "{logged}");

    // A token revoked while the server runs is refused at once.
    let listed = std::process::Command::new(&dmctl)
        .args(["server", "token", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let read_id = listed
        .lines()
        .find(|l| l.contains(" read "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let revoked = std::process::Command::new(&dmctl)
        .args(["server", "token", "revoke", &read_id, "--db"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(revoked.success());
    let (status, _) = http(
        &s.admin,
        "GET",
        "/api/devices",
        &[("Authorization", read)],
        b"",
    )
    .await;
    assert_eq!(status, 401);
    s.stop().await;

    // The database holds neither token in clear (nor its random bytes).
    let stored = database_bytes(&db);
    assert!(!stored.is_empty());
    for token in [&op_token, &read[7..].to_owned()] {
        assert!(
            !contains(&stored, token.as_bytes()),
            "{token} stored in clear"
        );
        let random = &token[6..];
        assert!(!contains(&stored, random.as_bytes()));
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, random)
            .unwrap();
        assert!(!contains(&stored, &raw));
    }
}

/// How many commands the device has, queued or done.
async fn queued(s: &DmServer) -> usize {
    let auth = s.auth();
    let path = format!("/api/devices/{DEV}/results");
    let (status, body) = http(&s.admin, "GET", &path, &[("Authorization", &auth)], b"").await;
    match status {
        200 => serde_json::from_slice::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        _ => 0,
    }
}

/// A GET of `/api/devices` with the given Host header, on `addr`.
async fn raw_host_request(addr: &str, host: &str, auth: &str) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET /api/devices HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_stays_on_loopback_and_its_first_token_is_shown_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dmctl = common::dmctl();
    // A public address needs the explicit opt-in.
    let out = tokio::process::Command::new(&dmctl)
        .args(["server", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-public"));

    // A first start on a new database prints an operator token; the next
    // start, with one stored, prints none.
    let db = tmp.path().join("first.sqlite");
    let start = || {
        let mut child = tokio::process::Command::new(&dmctl)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--db",
            ])
            .arg(&db)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let (mut token, mut admin) = (None, None);
            while admin.is_none() {
                let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                if let Some(t) = line.strip_prefix(FIRST_TOKEN) {
                    token = Some(t.to_owned());
                }
                if let Some(a) = line.strip_prefix("dmctl server: admin API at http://") {
                    admin = Some(a.trim_end_matches("/api/devices").to_owned());
                }
            }
            (child, token, admin.unwrap())
        }
    };
    let (mut child, token, admin) = start().await;
    let token = token.expect("a first start prints a token");
    let auth = format!("Bearer {token}");
    let auth = auth.as_str();
    let (status, _) = http(
        &admin,
        "GET",
        "/api/devices",
        &[("Authorization", auth)],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    child.kill().await.unwrap();
    assert!(!contains(&database_bytes(&db), token.as_bytes()));
    let (mut child, again, admin) = start().await;
    assert_eq!(again, None, "shown once");
    let (status, _) = http(
        &admin,
        "GET",
        "/api/devices",
        &[("Authorization", auth)],
        b"",
    )
    .await;
    assert_eq!(status, 200, "the first token still works");
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_described_by_its_openapi_document_and_keeps_to_it() {
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, None).await;
    let doc = s.ok("GET", "/api/openapi.json", json!(null)).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let listing = s.ok("GET", "/api", json!(null)).await;
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|m| m.as_object().unwrap().len()).sum();
    assert_eq!(listing.as_array().unwrap().len(), documented);
    // Every documented route is served: never "no admin route", never 405.
    for (path, methods) in paths {
        let concrete = path
            .replace("{dev}", "IMEI:1")
            .replace("{id}", "1")
            .replace("{uiid}", "1")
            .replace("{path}", "x.txt");
        for method in methods.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if method == "DELETE" && concrete == "/api/devices/IMEI:1" {
                continue; // keeps the device for the rest of the walk
            }
            let content_type = if concrete.contains("/repository/") && method == "PUT" {
                "text/plain"
            } else {
                "application/json"
            };
            let auth = s.auth();
            let body: &[u8] = if method == "GET" || method == "DELETE" {
                b""
            } else {
                b"{}"
            };
            let (status, reply) = http(
                &s.admin,
                &method,
                &concrete,
                &[
                    ("Content-Type", content_type),
                    ("Authorization", auth.as_str()),
                ],
                body,
            )
            .await;
            let text = String::from_utf8_lossy(&reply);
            assert_ne!(status, 405, "{method} {concrete}: {text}");
            assert!(
                !text.contains("no admin route"),
                "{method} {concrete}: {text}"
            );
        }
    }
    // A documented path with another method: 405 and what it takes.
    let (status, head, _) = dmserver::http_full(
        &s.admin,
        "PATCH",
        "/api/devices/IMEI:1",
        &[("Authorization", s.auth().as_str())],
        b"",
    )
    .await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, delete"), "{head}");
    let (status, _) = s.api("GET", "/api/devices/IMEI:1/commands", None).await;
    assert_eq!(status, 405, "commands are POSTed");
    let (status, _) = s.api("GET", "/api/nothing", None).await;
    assert_eq!(status, 404);

    // A command for a DevID never seen is queued, and said to be so.
    let queued = s
        .ok(
            "POST",
            "/api/devices/IMEI:2/commands",
            json!(["GET", format!("{DEVINFO}//DevID")]),
        )
        .await;
    assert_eq!(queued["device_seen"], false, "{queued}");
    let id = queued["id"].as_u64().unwrap();
    // A queued command is taken back; twice is 404; the device is deleted.
    let deleted = s
        .ok(
            "DELETE",
            &format!("/api/devices/IMEI:2/commands/{id}"),
            json!(null),
        )
        .await;
    assert_eq!(deleted["deleted"], id);
    let (status, _) = s
        .api(
            "DELETE",
            &format!("/api/devices/IMEI:2/commands/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    s.ok("DELETE", "/api/devices/IMEI:2", json!(null)).await;
    let (status, _) = s.api("GET", "/api/devices/IMEI:2", None).await;
    assert_eq!(status, 404);
    let (status, _) = s.api("DELETE", "/api/devices/IMEI:2", None).await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_command_cannot_be_taken_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dmctl = common::dmctl();
    let s = DmServer::start(&dmctl, None).await;
    let id = s
        .enqueue(DEV, json!(["GET", format!("{DEVINFO}//DevID")]))
        .await;
    let boot = common::bootstrap_file(tmp.path(), "A", &s.dm_url);
    let state = tmp.path().join("state");
    let (code, log) = dmserver::run_client(
        &dmctl,
        &[
            "--once",
            "--dev-id",
            DEV,
            "--state",
            state.to_str().unwrap(),
            "--bootstrap",
            boot.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{log}");
    // One line for the session: packages, commands, statuses, duration.
    let lines = s.logged(&format!("session of {DEV} ended")).await;
    let line = lines.iter().find(|l| l.contains("ended")).unwrap();
    assert!(
        line.contains("2 package(s), 1 command(s) (200 x1)"),
        "{line}"
    );
    let (status, reply) = s
        .api("DELETE", &format!("/api/devices/{DEV}/commands/{id}"), None)
        .await;
    assert_eq!(status, 409, "{reply}");
    // An admin action is one line too (a read is none); no token in it.
    let lines = s.logged("admin DELETE").await;
    assert!(lines.iter().all(|l| !l.contains(&s.token)));
    let queued = s
        .ok(
            "POST",
            &format!("/api/devices/{DEV}/commands"),
            json!(["GET", format!("{DEVINFO}//Man")]),
        )
        .await;
    assert_eq!(queued["device_seen"], true);
    s.stop().await;
}
