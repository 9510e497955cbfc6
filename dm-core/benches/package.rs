//! Package#2 parse + Package#3 build for 1,000 commands, against a bare
//! `serde_json::from_slice::<serde_json::Value>` of the same bytes
//! (docs/architecture.md "Performance budget": within 3x). Results in BENCHMARKS.md.
//!
//! `cargo bench -p dm-core --bench package`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dm_core::{Command, Package2, Package3, Status, StatusCode};

/// A Package#2 of `n` commands in a realistic mix: GET of leaves and
/// sub-trees with `lv`/`cv`, HGET with and without a ClientURI, HPUT with
/// two ClientURIs, EXEC, DELETE, most of them through x-names and `nv`.
fn package2(n: usize) -> Vec<u8> {
    let mut cmds = Vec::with_capacity(n);
    for i in 0..n {
        let cmd = match i % 8 {
            0 => r#"["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]"#.to_owned(),
            1 => format!(
                r#"["GET", "urn:oma:mo:oma-scomo:1.0/(x)/Inventory/Deployed/*/ID?nv=(x)/Name:store{i}&lv=2&cv=686897696a7c876b7e"]"#
            ),
            2 => format!(
                r#"["HGET", "https://dms.example.com/new_secret?DevID=[DevID]&n={i}", "urn:oma:mo:oma-dm-dmacc:1.2/(x)/Auth/Noti/Secret?nv=(x)/SrvID:DMS_ID{i}"]"#
            ),
            3 => format!(
                r#"["HPUT", "http://dr.example.com/state/[DevID]/{i}", "urn:oma:mo:oma-dcmo:1.0/(x)/Enabled?nv=(x)/Property:Camera", "urn:oma:mo:oma-sessioninfomo:1.0//ROAMING"]"#
            ),
            4 => format!(
                r#"["EXEC", "urn:oma:mo:oma-dcmo:1.0/(x)/Operations/Enable?nv=(x)/Property:USB{i}", "https://dms.example.com/report/{i}"]"#
            ),
            5 => format!(
                r#"["DELETE", "urn:oma:mo:oma-scomo:1.0/scomo1/Inventory/Deployed/(y)?nv=(y)/ID:pkg{i}"]"#
            ),
            6 => format!(r#"["HGET", "https://dms.example.com/dcmo_usb/{i}"]"#),
            _ => format!(
                r#"["HPOST", "https://dms.example.com/[DevID]/{i}", "urn:oma:mo:oma-dm-devinfo:1.2//", "urn:oma:mo:oma-sessioninfomo:1.0/(z)/?nv=(z)/ROAMING:0"]"#
            ),
        };
        cmds.push(cmd);
    }
    format!("{{\"CMD\": [\n{}\n]}}", cmds.join(",\n")).into_bytes()
}

/// The Package#3 answering `p`: one status per command, HGET without a
/// ClientURI reporting where it stored the data (7.2.1.3).
fn package3_for(p: &Package2) -> Vec<u8> {
    let statuses = p
        .commands
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Ok(Command::Hget {
                client_uri: None, ..
            }) => Status {
                code: StatusCode::OK,
                uris: vec![format!("urn:oma:mo:oma-dcmo:1.0/usb{i}/")],
            },
            Ok(Command::Exec { .. }) => Status::new(StatusCode::ACCEPTED),
            Ok(_) => Status::new(StatusCode::OK),
            Err(e) => Status::new(e.status()),
        })
        .collect();
    Package3 {
        statuses,
        alerts: Vec::new(),
    }
    .to_vec()
}

fn bench(c: &mut Criterion) {
    let bytes = package2(1000);
    let parsed = Package2::parse(&bytes).expect("the bench package parses");
    assert_eq!(parsed.commands.len(), 1000);
    if let Some(e) = parsed.commands.iter().find_map(|c| c.as_ref().err()) {
        panic!("a bench command does not parse: {e}");
    }

    let mut g = c.benchmark_group("package2_1000_commands");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let v: serde_json::Value =
                serde_json::from_slice(black_box(&bytes)).expect("valid JSON");
            black_box(v)
        })
    });
    g.bench_function("dm_core_parse_and_package3", |b| {
        b.iter(|| {
            let p = Package2::parse(black_box(&bytes)).expect("valid Package#2");
            black_box(package3_for(&p))
        })
    });
    g.bench_function("dm_core_parse_only", |b| {
        b.iter(|| black_box(Package2::parse(black_box(&bytes)).expect("valid Package#2")))
    });
    g.bench_function("package3_build_only", |b| {
        b.iter(|| black_box(package3_for(black_box(&parsed))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
