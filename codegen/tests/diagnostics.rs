//! Malformed DDFs get a diagnostic naming file, line and column, from the
//! library (what a build script prints) and from `dm-codegen check`.

use std::path::Path;
use std::process::Command;

use dm_codegen::{Builder, Ddf, DdfErrorKind};

/// A minimal valid node with `props` as its DFProperties body.
fn node(name: &str, props: &str, children: &str) -> String {
    format!(
        "<Node><NodeName>{name}</NodeName><DFProperties>{props}</DFProperties>{children}</Node>"
    )
}

const LEAF: &str = "<AccessType><Get/></AccessType><DFFormat><chr/></DFFormat>";
const INTERIOR: &str = "<AccessType><Get/></AccessType><DFFormat><node/></DFFormat>";

fn tree(nodes: &str) -> String {
    format!("<?xml version=\"1.0\"?>\n<MgmtTree>\n<VerDTD>1.2</VerDTD>\n{nodes}\n</MgmtTree>\n")
}

/// What a case expects: a description, the DDF text, the error kind and
/// the line of the fault (0: not checked).
type Case = (&'static str, String, fn(&DdfErrorKind) -> bool, usize);

#[test]
fn every_kind_of_fault_is_located() {
    let cases: Vec<Case> = vec![
        (
            "not well formed",
            tree("<Node><NodeName>a</NodeName>"),
            |k| matches!(k, DdfErrorKind::Xml(_)),
            0,
        ),
        (
            "wrong root",
            "<Tree></Tree>".into(),
            |k| matches!(k, DdfErrorKind::NotMgmtTree(_)),
            1,
        ),
        (
            "no node",
            tree(""),
            |k| matches!(k, DdfErrorKind::NoNode),
            2,
        ),
        (
            "no NodeName",
            tree("<Node><DFProperties/></Node>"),
            |k| matches!(k, DdfErrorKind::MissingNodeName),
            4,
        ),
        (
            "no DFProperties",
            tree("<Node><NodeName>a</NodeName></Node>"),
            |k| matches!(k, DdfErrorKind::MissingDfProperties(_)),
            4,
        ),
        (
            "no AccessType",
            tree(&node("a", "<DFFormat><chr/></DFFormat>", "")),
            |k| matches!(k, DdfErrorKind::MissingAccessType(_)),
            4,
        ),
        (
            "no DFFormat",
            tree(&node("a", "<AccessType><Get/></AccessType>", "")),
            |k| matches!(k, DdfErrorKind::MissingFormat(_)),
            4,
        ),
        (
            "unknown format",
            tree(&node(
                "a",
                "<AccessType/><DFFormat><string/></DFFormat>",
                "",
            )),
            |k| matches!(k, DdfErrorKind::BadProperty { .. }),
            4,
        ),
        (
            "unknown access type",
            tree(&node(
                "a",
                "<AccessType><Read/></AccessType><DFFormat><chr/></DFFormat>",
                "",
            )),
            |k| matches!(k, DdfErrorKind::BadProperty { .. }),
            4,
        ),
        (
            "bad occurrence count",
            tree(&node(
                "a",
                &format!("{LEAF}<Occurrence><ZeroOrN>many</ZeroOrN></Occurrence>"),
                "",
            )),
            |k| matches!(k, DdfErrorKind::BadProperty { .. }),
            4,
        ),
        (
            "leaf with children",
            tree(&node("a", LEAF, &node("b", LEAF, ""))),
            |k| matches!(k, DdfErrorKind::LeafWithChildren(_)),
            4,
        ),
        (
            "duplicate siblings",
            tree(&node(
                "a",
                INTERIOR,
                &format!("{}\n{}", node("b", LEAF, ""), node("b", LEAF, "")),
            )),
            |k| matches!(k, DdfErrorKind::DuplicateSibling { .. }),
            5,
        ),
    ];
    for (what, text, is_kind, line) in cases {
        let d = Ddf::parse(Path::new("bad.ddf"), &text).expect_err(what);
        assert!(is_kind(&d.kind), "{what}: got {:?}", d.kind);
        if line > 0 {
            assert_eq!(d.position.line, line, "{what}: {d}");
        }
        let shown = d.to_string();
        let prefix = format!("bad.ddf:{}:{}: ", d.position.line, d.position.column);
        assert!(shown.starts_with(&prefix), "{what}: {shown}");
    }
}

#[test]
fn builder_reports_the_position_as_a_build_script_would() {
    let tmp = tempfile::tempdir().unwrap();
    let ddf = tmp.path().join("broken.ddf");
    std::fs::write(
        &ddf,
        tree(&node("a", "<AccessType><Get/></AccessType>", "")),
    )
    .unwrap();
    let err = Builder::new()
        .ddf(&ddf)
        .out_dir(tmp.path())
        .generate()
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("broken.ddf:4:"), "{shown}");
    assert!(shown.contains("no <DFFormat>"), "{shown}");
    assert!(
        !tmp.path().join("broken.rs").exists(),
        "nothing written on error"
    );
}

#[test]
fn check_cli_exits_non_zero_with_the_location() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.ddf");
    std::fs::write(&bad, tree(&node("a", LEAF, &node("b", LEAF, "")))).unwrap();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ddf/devinfo.ddf");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-codegen"))
        .arg("check")
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.ddf:4:") && stderr.contains("has child nodes"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("devinfo.ddf: ok"));
}

#[test]
fn generate_writes_the_same_file_only_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ddf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ddf/devinfo.ddf");
    let files = Builder::new()
        .ddf(&ddf)
        .out_dir(tmp.path())
        .generate()
        .unwrap();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("// @generated by dm-codegen from devinfo.ddf"));
    assert!(text.contains("pub struct DevInfo {"));
    assert!(text.contains("pub dev_id: ::std::string::String,"));
    let before = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    Builder::new()
        .ddf(&ddf)
        .out_dir(tmp.path())
        .generate()
        .unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        before
    );
}
