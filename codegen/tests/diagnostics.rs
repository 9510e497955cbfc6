//! Malformed DDFs get a diagnostic naming file, line and column, from the
//! library (what a build script prints) and from the `dm-codegen` CLI
//! (`check`, `generate`, `doc`), which exits non-zero.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dm_codegen::{Builder, Ddf, DdfErrorKind, Error, Severity};

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

/// A malformed DDF: a name, its text, the kind of the first error and the
/// line of the fault (0: not checked).
struct Case {
    name: &'static str,
    text: String,
    is_kind: fn(&DdfErrorKind) -> bool,
    line: usize,
}

fn case(name: &'static str, text: String, is_kind: fn(&DdfErrorKind) -> bool, line: usize) -> Case {
    Case {
        name,
        text,
        is_kind,
        line,
    }
}

fn bad(props: &str) -> String {
    tree(&node("a", props, ""))
}

fn cases() -> Vec<Case> {
    use DdfErrorKind as K;
    vec![
        case(
            "not-well-formed",
            tree("<Node><NodeName>a</NodeName>"),
            |k| matches!(k, K::Xml(_)),
            0,
        ),
        case(
            "mismatched-end-tag",
            tree("<Node><NodeName>a</Name></Node>"),
            |k| matches!(k, K::Xml(_)),
            4,
        ),
        case(
            "unknown-entity",
            tree(&node("a&nbsp;", LEAF, "")),
            |k| matches!(k, K::Xml(_)),
            4,
        ),
        case(
            "wrong-root",
            "<Tree></Tree>".into(),
            |k| matches!(k, K::NotMgmtTree(_)),
            1,
        ),
        case("no-node", tree(""), |k| matches!(k, K::NoNode), 2),
        case(
            "no-nodename",
            tree("<Node><DFProperties/></Node>"),
            |k| matches!(k, K::MissingNodeName),
            4,
        ),
        case(
            "no-dfproperties",
            tree("<Node><NodeName>a</NodeName></Node>"),
            |k| matches!(k, K::MissingDfProperties(_)),
            4,
        ),
        case(
            "no-accesstype",
            bad("<DFFormat><chr/></DFFormat>"),
            |k| matches!(k, K::MissingAccessType(_)),
            4,
        ),
        case(
            "no-dfformat",
            bad("<AccessType><Get/></AccessType>"),
            |k| matches!(k, K::MissingFormat(_)),
            4,
        ),
        case(
            "empty-dfformat",
            bad("<AccessType><Get/></AccessType><DFFormat></DFFormat>"),
            |k| matches!(k, K::MissingFormat(_)),
            4,
        ),
        case(
            // <string/> is a warning; the leaf is left with no format.
            "undefined-format",
            bad("<AccessType/><DFFormat><string/></DFFormat>"),
            |k| matches!(k, K::MissingFormat(_)),
            4,
        ),
        case(
            "two-formats",
            bad("<AccessType/><DFFormat><chr/><int/></DFFormat>"),
            |k| matches!(k, K::BadProperty { reason, .. } if reason.contains("more than one")),
            4,
        ),
        case(
            "bad-occurrence-count",
            bad(&format!(
                "{LEAF}<Occurrence><ZeroOrN>many</ZeroOrN></Occurrence>"
            )),
            |k| matches!(k, K::BadProperty { .. }),
            4,
        ),
        case(
            "zero-occurrence-count",
            bad(&format!(
                "{LEAF}<Occurrence><OneOrN>0</OneOrN></Occurrence>"
            )),
            |k| matches!(k, K::BadProperty { reason, .. } if reason.contains("allows no node")),
            4,
        ),
        case(
            "two-occurrences",
            bad(&format!(
                "{LEAF}<Occurrence><One/><ZeroOrOne/></Occurrence>"
            )),
            |k| matches!(k, K::BadProperty { reason, .. } if reason.contains("exactly one")),
            4,
        ),
        case(
            "duplicate-dfformat",
            bad(&format!("{LEAF}<DFFormat><int/></DFFormat>")),
            |k| matches!(k, K::DuplicateElement { element, .. } if element == "DFFormat"),
            4,
        ),
        case(
            "leaf-with-children",
            tree(&node("a", LEAF, &node("b", LEAF, ""))),
            |k| matches!(k, K::LeafWithChildren(_)),
            4,
        ),
        case(
            "duplicate-siblings",
            tree(&node(
                "a",
                INTERIOR,
                &format!("\n{}\n{}", node("b", LEAF, ""), node("b", LEAF, "")),
            )),
            |k| matches!(k, K::DuplicateSibling { name, .. } if name == "b"),
            6,
        ),
        case(
            "two-unnamed-siblings",
            tree(&node(
                "a",
                INTERIOR,
                &format!("\n{}\n{}", node("", LEAF, ""), node(" ", LEAF, "")),
            )),
            |k| matches!(k, K::DuplicateUnnamed { .. }),
            6,
        ),
        case(
            "content-after-root",
            format!("{}<MgmtTree/>", tree(&node("a", LEAF, ""))),
            |k| matches!(k, K::TrailingContent(_)),
            6,
        ),
    ]
}

#[test]
fn every_kind_of_fault_is_located() {
    let cases = cases();
    assert!(cases.len() >= 20);
    for c in &cases {
        let all = Ddf::parse(Path::new("bad.ddf"), &c.text).expect_err(c.name);
        let d = all.first_error();
        assert!((c.is_kind)(&d.kind), "{}: got {:?}", c.name, d.kind);
        assert_eq!(d.severity(), Severity::Error);
        if c.line > 0 {
            assert_eq!(d.position.line, c.line, "{}: {d}", c.name);
        }
        let shown = d.to_string();
        let prefix = format!("bad.ddf:{}:{}: error: ", d.position.line, d.position.column);
        assert!(shown.starts_with(&prefix), "{}: {shown}", c.name);
    }
}

#[test]
fn all_errors_of_a_file_come_together_in_file_order() {
    let text = tree(&format!(
        "{}\n{}\n{}",
        node("a", "<DFFormat><chr/></DFFormat>", ""),
        node("b", "<AccessType><Get/></AccessType>", ""),
        node(
            "c",
            "<AccessType><Get/></AccessType><DFFormat><chr/><int/></DFFormat>",
            ""
        ),
    ));
    let all = Ddf::parse(Path::new("bad.ddf"), &text).unwrap_err();
    let lines: Vec<usize> = all.errors().map(|d| d.position.line).collect();
    assert_eq!(lines, [4, 5, 6], "{all}");
    assert_eq!(all.to_string().lines().count(), 3);
}

#[test]
fn columns_count_characters_and_errors_name_the_node_path() {
    let text = tree(&node(
        "Größe",
        INTERIOR,
        &node(
            "b",
            "<AccessType><Get/></AccessType><DFFormat><chr/></DFFormat><Occurrence><ZeroOrN>many</ZeroOrN></Occurrence>",
            "",
        ),
    ));
    let d = Ddf::parse(Path::new("x.ddf"), &text).unwrap_err();
    let d = d.first_error();
    assert!(d.to_string().contains("node `Größe/b`"), "{d}");
    let line = text.lines().nth(d.position.line - 1).unwrap();
    let col = line.chars().take(d.position.column - 1).collect::<String>();
    assert!(line[col.len()..].starts_with("<ZeroOrN>"), "{d}: {line}");
}

#[test]
fn lenient_input_parses_with_warnings() {
    let text = format!(
        "\u{feff}<?xml version=\"1.0\"?>\r\n<!DOCTYPE MgmtTree PUBLIC \" -//OMA//DTD-DM-DDF 1.2//EN\" \"x.dtd\" [<?oma-dm-ddf-ver supported-versions=\"1.2\"?>]>\r\n\
         <MgmtTree xmlns:MSFT=\"urn:x\"><VerDTD>1.2</VerDTD><MSFT:Diagnostics/>{}{}</MgmtTree>",
        node(
            " Root ",
            "<DFFormat><node/></DFFormat><AccessType><Get/></AccessType><Occurrence><OneOrN/></Occurrence><DFType><DDFName/></DFType><CaseSense><CIS/></CaseSense><Color>red</Color>",
            &node("", "<AccessType><Get/></AccessType><DFFormat><int/></DFFormat><DefaultValue>big</DefaultValue><DFType><MIME/></DFType>", ""),
        ),
        node("Other", LEAF, ""),
    );
    let ddf = Ddf::parse(Path::new("lenient.ddf"), &text).unwrap();
    assert_eq!(ddf.roots().len(), 2);
    let root = ddf.node(ddf.roots()[0]);
    assert_eq!(root.name.as_deref(), Some("Root"));
    assert_eq!(root.occurrence, dm_core::Occurrence::OneOrN(None));
    assert_eq!(
        ddf.extensions_of(ddf.roots()[0]).len(),
        1,
        "unknown element kept"
    );
    let kinds: Vec<&DdfErrorKind> = ddf.warnings.iter().map(|w| &w.kind).collect();
    assert!(matches!(kinds[0], DdfErrorKind::UnknownElement { element, .. } if element == "Color"));
    assert!(matches!(kinds[1], DdfErrorKind::BadDefault { .. }));
    assert_eq!(kinds.len(), 2);
    assert!(ddf.warnings[0].to_string().contains(": warning: "));
}

#[test]
fn elements_the_dtd_does_not_define_in_dfproperties_are_named_warnings() {
    // Real vendor DDFs carry such elements: `check` accepts the file, names
    // each one where it is, and the node keeps what it has.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("vendor.ddf");
    let props = "<AccessType><Get/><Foo/></AccessType><DFFormat><chr/></DFFormat><Bar>x</Bar><Scope><Permanent/><Forever/></Scope>";
    let text_4 = node("a", props, "");
    std::fs::write(&file, tree(&text_4)).unwrap();
    let ddf = Ddf::read(&file).unwrap();
    let node = ddf.node(ddf.roots()[0]);
    assert_eq!(node.access, dm_core::AccessType::GET);
    assert_eq!(node.scope, dm_core::Scope::Permanent);
    let out = cli(&["check", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for (element, parent) in [
        ("Foo", "AccessType"),
        ("Bar", "DFProperties"),
        ("Forever", "Scope"),
    ] {
        // The node is on line 4, and all ASCII: the column is the offset.
        let column = text_4.find(&format!("<{element}")).unwrap() + 1;
        let expected =
            format!("vendor.ddf:4:{column}: warning: unknown element <{element}> in <{parent}>");
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }
}

#[test]
fn bad_encoding_is_a_located_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("latin.ddf");
    std::fs::write(
        &file,
        b"<MgmtTree>\n<Node><NodeName>Gr\xf6\xdfe</NodeName></Node></MgmtTree>",
    )
    .unwrap();
    let Err(Error::Ddf(d)) = Ddf::read(&file) else {
        panic!("not UTF-8 and no encoding declared")
    };
    let d = d.first_error();
    assert!(matches!(d.kind, DdfErrorKind::Encoding(_)));
    assert_eq!((d.position.line, d.position.column), (2, 19));
}

#[test]
fn builder_reports_the_position_as_a_build_script_would() {
    let tmp = tempfile::tempdir().unwrap();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ddf/devinfo.ddf");
    let ddf = tmp.path().join("broken.ddf");
    std::fs::write(&ddf, bad("<AccessType><Get/></AccessType>")).unwrap();
    let err = Builder::new()
        .ddf(&good)
        .ddf(&ddf)
        .out_dir(tmp.path())
        .generate()
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("broken.ddf:4:"), "{shown}");
    assert!(shown.contains("no <DFFormat>"), "{shown}");
    assert!(
        !tmp.path().join("devinfo.rs").exists() && !tmp.path().join("broken.rs").exists(),
        "nothing is written unless every DDF succeeded"
    );
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
    assert!(text.contains("pub(crate) dev_id: ::std::string::String,"));
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
    // Two DDFs that would write the same file.
    let other = tmp.path().join("sub/devinfo.ddf");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::copy(&ddf, &other).unwrap();
    let err = Builder::new()
        .ddf(&ddf)
        .ddf(&other)
        .out_dir(tmp.path())
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::OutputClash { .. }), "{err}");
}

// ---- the command line ----

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dm-codegen"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn project_ddf(stem: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../ddf/{stem}.ddf"))
}

#[test]
fn check_reports_every_malformed_file_with_its_location() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = cases();
    let mut args = vec![project_ddf("dmacc").display().to_string()];
    for c in &cases {
        let file = tmp.path().join(format!("{}.ddf", c.name));
        std::fs::write(&file, &c.text).unwrap();
        args.push(file.display().to_string());
    }
    let mut argv = vec!["check"];
    argv.extend(args.iter().map(String::as_str));
    let out = cli(&argv);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for c in &cases {
        let d = Ddf::parse(Path::new("x"), &c.text).unwrap_err();
        let d = d.first_error();
        let expected = format!(
            "{}.ddf:{}:{}: error: {}",
            c.name, d.position.line, d.position.column, d.kind
        );
        assert!(
            stderr.contains(&expected),
            "{}: {expected}\n{stderr}",
            c.name
        );
    }
    assert!(
        stderr.contains(&format!(
            "{} of {} DDF file(s) failed",
            cases.len(),
            cases.len() + 1
        )),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("dmacc.ddf: ok: 30 node(s), 1 root(s), 1 MO(s)"));
}

#[test]
fn check_of_good_files_exits_zero_and_can_deny_warnings() {
    let all: Vec<String> = ["devinfo", "dmacc", "dacmo", "sessioninfo", "dcmo"]
        .iter()
        .map(|s| project_ddf(s).display().to_string())
        .collect();
    let mut argv = vec!["check"];
    argv.extend(all.iter().map(String::as_str));
    let out = cli(&argv);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5);

    let kitchen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ddf/kitchen.ddf");
    let kitchen = kitchen.display().to_string();
    let out = cli(&["check", &kitchen]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("kitchen.ddf:"),
        "warnings are shown"
    );
    let out = cli(&["check", "--deny-warnings", &kitchen]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for argv in [
        &[][..],
        &["frobnicate"][..],
        &["check"][..],
        &["generate", "x.ddf"][..],
        &["doc", "x.ddf"][..],
        &["generate", "--out"][..],
    ] {
        let out = cli(argv);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{argv:?}: {}",
            text(&out.stderr)
        );
    }
    let out = cli(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for sub in ["generate", "check", "doc"] {
        assert!(help.contains(sub), "{help}");
    }
    for sub in ["generate", "check", "doc"] {
        let out = cli(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(text(&out.stdout).contains("DDF"), "{sub}");
    }
}

#[test]
fn generate_and_doc_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.ddf");
    std::fs::write(&broken, tree(&node("a", LEAF, &node("b", LEAF, "")))).unwrap();
    let out_dir = tmp.path().join("out");
    let good = project_ddf("devinfo").display().to_string();
    let broken = broken.display().to_string();
    let out_arg = out_dir.display().to_string();
    for sub in ["generate", "doc"] {
        let out = cli(&[sub, &good, &broken, "--out", &out_arg]);
        assert_eq!(out.status.code(), Some(1), "{sub}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("broken.ddf:4:") && stderr.contains("has child nodes"),
            "{sub}: {stderr}"
        );
        assert!(!out_dir.exists(), "{sub} wrote something");
    }
    let missing = tmp.path().join("missing.ddf").display().to_string();
    let out = cli(&["check", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.ddf"));
}

#[test]
fn generate_and_doc_write_their_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out_arg = tmp.path().display().to_string();
    let dmacc = project_ddf("dmacc").display().to_string();
    let dcmo = project_ddf("dcmo").display().to_string();
    let out = cli(&[
        "generate",
        &dmacc,
        &dcmo,
        "--out",
        &out_arg,
        "--ddf-base-url",
        "https://x/",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rs = std::fs::read_to_string(tmp.path().join("dmacc.rs")).unwrap();
    assert!(rs.contains("ddf_url = \"https://x/dmacc.ddf\""));
    assert!(tmp.path().join("dcmo.rs").exists());

    let out = cli(&["doc", &dmacc, &dcmo, "--out", &out_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("dmacc.html")).unwrap();
    assert!(
        html.contains(
            "<span class=\"parent\">&lt;DMAcc&gt;&#x2F;Auth&#x2F;Noti&#x2F;</span>Secret</span>"
        ),
        "{html}"
    );
    assert!(tmp.path().join("dcmo.md").exists());

    // --moid turns a root without MOID into an MO.
    let kitchen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ddf/kitchen.ddf");
    let kitchen = kitchen.display().to_string();
    let out = cli(&[
        "generate",
        &kitchen,
        "--out",
        &out_arg,
        "--moid",
        "Extra=urn:x:extra:1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rs = std::fs::read_to_string(tmp.path().join("kitchen.rs")).unwrap();
    assert!(rs.contains("pub trait ExtraBehaviour"), "{rs}");
    // Without --ddf-base-url the MO has no DDF URL: the key is left out
    // (the schema holds `None`), not written as "".
    assert!(rs.contains("#[dm(moid = \"urn:x:extra:1\""), "{rs}");
    assert!(!rs.contains("ddf_url"), "{rs}");
    let out = cli(&["generate", &kitchen, "--out", &out_arg, "--moid", "Extra"]);
    assert_eq!(out.status.code(), Some(2));
}
