//! The derives on a hand-written MO that has every kind of child: reads,
//! writes, deletes and creation by path, with the DDF rules enforced.
#![allow(clippy::unwrap_used)]

use dm_core::{
    Change, ExecOutcome, ExecRequest, ManagementObject, MoError, MoHooks, MoNode, NodeData,
    NodeMap, NodeMapError, Value,
};

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(
    moid = "urn:example:mo:test:1.0",
    ddf_url = "http://example/test.ddf",
    access = "Get"
)]
struct Test {
    #[dm(
        name = "Name",
        format = "chr",
        access = "Get, Replace",
        occurrence = "One"
    )]
    name: String,
    #[dm(
        name = "Count",
        format = "int",
        access = "Get",
        occurrence = "ZeroOrOne"
    )]
    count: Option<i64>,
    #[dm(
        name = "Secret",
        format = "bin",
        access = "Replace",
        occurrence = "ZeroOrOne"
    )]
    secret: Option<Vec<u8>>,
    #[dm(name = "Conf", format = "node", access = "Get", occurrence = "One")]
    conf: Conf,
    #[dm(
        name = "Ext",
        format = "node",
        access = "Get",
        occurrence = "ZeroOrOne"
    )]
    ext: Option<Ext>,
    #[dm(
        format = "node",
        access = "Add, Get, Delete",
        occurrence = "ZeroOrN(2)",
        scope = "Dynamic"
    )]
    items: NodeMap<Item, 0, 2>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Conf {
    #[dm(
        name = "On",
        format = "bool",
        access = "Get, Replace",
        occurrence = "One"
    )]
    on: bool,
    #[dm(format = "chr", access = "Add, Get", occurrence = "ZeroOrMore")]
    tags: NodeMap<String>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Ext {}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Item {
    #[dm(name = "ID", format = "chr", access = "Get", occurrence = "One")]
    id: String,
    #[dm(name = "Run", format = "null", access = "Exec", occurrence = "One")]
    run: (),
}

impl MoHooks for Test {
    fn exec(&mut self, path: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        match path {
            [item, "Run"] if self.items.contains(item) => {
                self.count = Some(self.count.unwrap_or(0) + 1);
                Ok(if request.asynchronous {
                    ExecOutcome::Started
                } else {
                    ExecOutcome::Done
                })
            }
            _ => Err(MoError::NotExecutable(path.join("/"))),
        }
    }

    fn validate(&self) -> Result<(), MoError> {
        if self.name.is_empty() {
            return Err(MoError::Invalid("Name must not be empty".into()));
        }
        Ok(())
    }
}

fn leaf(v: Value) -> NodeData {
    NodeData::Leaf(v)
}

fn tree(children: Vec<(&str, NodeData)>) -> NodeData {
    NodeData::Interior(
        children
            .into_iter()
            .map(|(n, d)| (n.to_owned().into(), d))
            .collect(),
    )
}

fn sample() -> Test {
    Test::from_node(&tree(vec![
        ("Name", leaf(Value::Chr("t".into()))),
        (
            "Conf",
            tree(vec![
                ("On", leaf(Value::Bool(true))),
                ("a", leaf(Value::Chr("x".into()))),
            ]),
        ),
        (
            "i1",
            tree(vec![
                ("ID", leaf(Value::Chr("one".into()))),
                ("Run", leaf(Value::Null)),
            ]),
        ),
    ]))
    .unwrap()
}

#[test]
fn schema_reflects_the_attributes() {
    let s = sample();
    let schema = s.schema();
    assert_eq!(schema.moid, "urn:example:mo:test:1.0");
    let items = schema
        .root
        .children
        .iter()
        .find(|c| c.name.is_none())
        .unwrap();
    assert_eq!(items.occurrence.max(), Some(2));
    assert_eq!(
        schema.root.descendant(&["i9", "ID"]).unwrap().name,
        Some("ID")
    );
    assert_eq!(
        schema.root.descendant(&["Conf", "zz"]).unwrap().name,
        None,
        "un-named tag"
    );
}

#[test]
fn from_node_builds_every_kind_of_child() {
    let s = sample();
    assert_eq!(s.name, "t");
    assert_eq!(s.count, None);
    assert!(s.conf.on);
    assert_eq!(s.conf.tags.get("a").map(String::as_str), Some("x"));
    assert_eq!(s.items.get("i1").unwrap().id, "one");
    let err = Test::from_node(&tree(vec![("Name", leaf(Value::Chr("t".into())))])).unwrap_err();
    assert_eq!(err, MoError::MissingNode("Conf".into()));
    let err = Test::from_node(&tree(vec![("Name", leaf(Value::Int(1)))])).unwrap_err();
    assert!(matches!(err, MoError::BadValue { .. }), "{err}");
    let err = Conf::from_node(&tree(vec![
        ("On", leaf(Value::Bool(true))),
        ("x", tree(vec![])),
    ]))
    .unwrap_err();
    assert!(
        matches!(err, MoError::BadValue { .. }),
        "an interior node is no tag: {err}"
    );
}

#[test]
fn reads_by_path() {
    let s = sample();
    assert_eq!(s.get(&["Conf", "a"]), Ok(leaf(Value::Chr("x".into()))));
    assert_eq!(s.get(&["i1", "ID"]), Ok(leaf(Value::Chr("one".into()))));
    assert_eq!(s.get(&["i2", "ID"]), Err(MoError::NotFound("i2/ID".into())));
    assert_eq!(s.get(&["Count"]), Err(MoError::NotFound("Count".into())));
    let root = s.get(&[]).unwrap().to_json();
    assert_eq!(root["i1"]["ID"], "one");
    assert_eq!(root["Conf"]["On"], true);
}

#[test]
fn the_root_json_is_the_readable_tree_written_from_the_fields() {
    let mut full = sample();
    MoNode::put_node(&mut full, &["Secret"], &leaf(Value::Bin(vec![1, 2]))).unwrap();
    MoNode::put_node(&mut full, &["Count"], &leaf(Value::Int(-3))).unwrap();
    MoNode::put_node(&mut full, &["Ext"], &tree(vec![])).unwrap();
    MoNode::put_node(
        &mut full,
        &["Conf", "b.x~1"],
        &leaf(Value::Chr("a\nb".into())),
    )
    .unwrap();
    MoNode::put_node(
        &mut full,
        &["i2"],
        &tree(vec![
            ("ID", leaf(Value::Chr("two\u{1}".into()))),
            ("Run", leaf(Value::Null)),
        ]),
    )
    .unwrap();
    for s in [sample(), full] {
        let mut direct = Vec::new();
        assert!((&s as &dyn ManagementObject).write_root_json(&mut direct));
        let mut data = s.get(&[]).unwrap();
        data.retain_readable(&s.schema().root);
        let mut built = Vec::new();
        data.write_json(&mut built);
        assert_eq!(
            String::from_utf8(direct.clone()).unwrap(),
            String::from_utf8(built).unwrap()
        );
        // Nodes without Get (Secret, Run) stay out.
        let json: serde_json::Value = serde_json::from_slice(&direct).unwrap();
        assert!(json.get("Secret").is_none(), "{json}");
        assert!(json["i1"].get("Run").is_none(), "{json}");
        assert_eq!(json["i1"]["ID"], "one");
    }
}

/// A full instance: every kind of child present, some without Get.
fn full() -> Test {
    let mut full = sample();
    MoNode::put_node(&mut full, &["Secret"], &leaf(Value::Bin(vec![1, 2]))).unwrap();
    MoNode::put_node(&mut full, &["Count"], &leaf(Value::Int(-3))).unwrap();
    MoNode::put_node(&mut full, &["Ext"], &tree(vec![])).unwrap();
    MoNode::put_node(&mut full, &["Conf", "b"], &leaf(Value::Chr("y".into()))).unwrap();
    MoNode::put_node(
        &mut full,
        &["i2"],
        &tree(vec![
            ("ID", leaf(Value::Chr("two".into()))),
            ("Run", leaf(Value::Null)),
        ]),
    )
    .unwrap();
    full
}

/// Checks `contains` against `get` at `path`, below it, and on every node
/// `get` lists under it; returns how many nodes were checked.
fn check_contains(mo: &dyn ManagementObject, path: &mut Vec<String>) -> usize {
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    let data = mo.get(&refs);
    assert_eq!(mo.contains(&refs), data.is_ok(), "{refs:?}");
    for extra in ["NoSuchNode", "Name", "i1"] {
        let mut beyond = refs.clone();
        beyond.push(extra);
        assert_eq!(mo.contains(&beyond), mo.get(&beyond).is_ok(), "{beyond:?}");
    }
    let mut checked = 1;
    if let Ok(NodeData::Interior(children)) = data {
        for (name, _) in children {
            path.push(name.into_owned());
            checked += check_contains(mo, path);
            path.pop();
        }
    }
    checked
}

#[test]
fn contains_agrees_with_get_on_every_node_and_beyond() {
    for s in [sample(), full()] {
        let checked = check_contains(&s, &mut Vec::new());
        // Root, Name, Conf (On, a), i1 (ID, Run), at the least.
        assert!(checked >= 8, "{checked}");
    }
    // Absent optional children and instances.
    let s: &dyn ManagementObject = &sample();
    for path in [
        &["Ext"][..],
        &["Count"],
        &["i2"],
        &["i2", "ID"],
        &["Conf", "b"],
    ] {
        assert!(!s.contains(path), "{path:?}");
    }
}

/// An MO written by hand, with no fast path: the runtime's `contains` and
/// `write_root_json` fall back to `get`, and the MO writes nothing for them.
struct HandWritten;

impl ManagementObject for HandWritten {
    fn schema(&self) -> &'static dm_core::MoSchema {
        static SCHEMA: dm_core::MoSchema = Test::SCHEMA;
        &SCHEMA
    }

    fn get(&self, path: &[&str]) -> Result<NodeData, MoError> {
        match path {
            [] => Ok(tree(vec![("Name", leaf(Value::Chr("h".into())))])),
            ["Name"] => Ok(leaf(Value::Chr("h".into()))),
            _ => Err(MoError::NotFound(path.join("/"))),
        }
    }

    fn apply(&mut self, _: &[Change]) -> Result<(), MoError> {
        Err(MoError::Failed("read-only".into()))
    }

    fn exec(&mut self, path: &[&str], _: &ExecRequest) -> Result<ExecOutcome, MoError> {
        Err(MoError::NotExecutable(path.join("/")))
    }
}

#[test]
fn a_hand_written_mo_is_read_through_get() {
    let mo: &dyn ManagementObject = &HandWritten;
    assert_eq!(check_contains(mo, &mut Vec::new()), 2);
    assert!(!mo.contains(&["Name", "x"]));
    let mut out = b"kept".to_vec();
    assert!(!mo.write_root_json(&mut out));
    assert_eq!(out, b"kept");
}

/// An interior node written by hand inside a derived MO: the hidden
/// `FastNode` defaults read it through `get_node`. `Broken` fails to read,
/// to show that a failed root write leaves nothing behind.
#[derive(Debug, Clone, PartialEq)]
struct Manual {
    broken: bool,
}

impl MoNode for Manual {
    const CHILDREN: &'static [dm_core::NodeSchema] = &[
        dm_core::NodeSchema {
            name: Some("V"),
            format: dm_core::Format::Int,
            access: dm_core::AccessType::GET,
            occurrence: dm_core::Occurrence::One,
            scope: dm_core::Scope::Permanent,
            children: &[],
        },
        dm_core::NodeSchema {
            name: Some("W"),
            format: dm_core::Format::Int,
            access: dm_core::AccessType::REPLACE,
            occurrence: dm_core::Occurrence::One,
            scope: dm_core::Scope::Permanent,
            children: &[],
        },
    ];

    fn get_node(&self, path: &[&str]) -> Result<NodeData, MoError> {
        if self.broken {
            return Err(MoError::Failed("broken".into()));
        }
        match path {
            [] => Ok(tree(vec![
                ("V", leaf(Value::Int(1))),
                ("W", leaf(Value::Int(2))),
            ])),
            ["V"] => Ok(leaf(Value::Int(1))),
            ["W"] => Ok(leaf(Value::Int(2))),
            _ => Err(MoError::NotFound(path.join("/"))),
        }
    }

    fn put_node(&mut self, path: &[&str], _: &NodeData) -> Result<(), MoError> {
        Err(MoError::NotFound(path.join("/")))
    }

    fn delete_node(&mut self, path: &[&str]) -> Result<(), MoError> {
        Err(MoError::Required(path.join("/")))
    }

    fn from_node(_: &NodeData) -> Result<Self, MoError> {
        Ok(Manual { broken: false })
    }
}

impl dm_core::__private::FastNode for Manual {}

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(moid = "urn:example:mo:holder:1.0", access = "Get")]
struct Holder {
    #[dm(name = "Name", format = "chr", access = "Get")]
    name: String,
    #[dm(name = "M", format = "node", access = "Get")]
    manual: Manual,
}

impl MoHooks for Holder {}

#[test]
fn a_hand_written_node_in_a_derived_mo_uses_the_defaults() {
    let h = Holder {
        name: "n".into(),
        manual: Manual { broken: false },
    };
    let mo: &dyn ManagementObject = &h;
    assert_eq!(check_contains(mo, &mut Vec::new()), 5);
    let mut direct = Vec::new();
    assert!(mo.write_root_json(&mut direct));
    let mut data = mo.get(&[]).unwrap();
    data.retain_readable(&mo.schema().root);
    let mut built = Vec::new();
    data.write_json(&mut built);
    assert_eq!(
        String::from_utf8(direct).unwrap(),
        String::from_utf8(built).unwrap()
    );
    assert_eq!(built_json(mo), r#"{"Name":"n","M":{"V":1}}"#);

    let broken = Holder {
        name: "n".into(),
        manual: Manual { broken: true },
    };
    let mo: &dyn ManagementObject = &broken;
    let mut out = b"kept".to_vec();
    assert!(!mo.write_root_json(&mut out));
    assert_eq!(out, b"kept");
}

fn built_json(mo: &dyn ManagementObject) -> String {
    let mut out = Vec::new();
    assert!(mo.write_root_json(&mut out));
    String::from_utf8(out).unwrap()
}

#[test]
fn writes_merge_and_create_instances() {
    let mut s = sample();
    MoNode::put_node(&mut s, &["Name"], &leaf(Value::Chr("u".into()))).unwrap();
    MoNode::put_node(&mut s, &["Secret"], &leaf(Value::Bin(vec![1, 2]))).unwrap();
    MoNode::put_node(
        &mut s,
        &["Conf"],
        &tree(vec![("b", leaf(Value::Chr("y".into())))]),
    )
    .unwrap();
    MoNode::put_node(
        &mut s,
        &["i2"],
        &tree(vec![
            ("ID", leaf(Value::Chr("two".into()))),
            ("Run", leaf(Value::Null)),
        ]),
    )
    .unwrap();
    MoNode::put_node(&mut s, &["Ext"], &tree(vec![])).unwrap();
    assert_eq!(
        (s.name.as_str(), s.secret.as_deref()),
        ("u", Some(&[1u8, 2][..]))
    );
    assert_eq!(s.conf.tags.len(), 2, "merge keeps `a`, adds `b`");
    assert!(s.conf.on);
    assert_eq!(s.items.len(), 2);
    assert!(s.ext.is_some());
    // A third instance exceeds ZeroOrN(2).
    let err = MoNode::put_node(
        &mut s,
        &["i3"],
        &tree(vec![
            ("ID", leaf(Value::Chr("3".into()))),
            ("Run", leaf(Value::Null)),
        ]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MoError::Occurrence {
                source: NodeMapError::Full { max: 2, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        MoNode::put_node(&mut s, &["Name", "x"], &leaf(Value::Chr("v".into()))),
        Err(MoError::NotFound("Name/x".into()))
    );
    assert!(matches!(
        MoNode::put_node(&mut s, &["Name"], &leaf(Value::Int(3))),
        Err(MoError::BadValue { .. })
    ));
    assert!(matches!(
        MoNode::put_node(&mut s, &["i4"], &tree(vec![])),
        Err(MoError::MissingNode(_))
    ));
    // Names that are no named child address the un-named one, here Item.
    assert!(matches!(
        MoNode::put_node(&mut s, &["Bogus"], &leaf(Value::Null)),
        Err(MoError::BadValue { .. })
    ));
    let mut item = s.items.get("i1").unwrap().clone();
    assert_eq!(
        item.put_node(&["Bogus"], &leaf(Value::Null)),
        Err(MoError::UnknownNode("Bogus".into()))
    );
}

#[test]
fn deletes_respect_required_nodes() {
    let mut s = sample();
    assert_eq!(
        MoNode::delete_node(&mut s, &["Name"]),
        Err(MoError::Required("Name".into()))
    );
    assert_eq!(
        MoNode::delete_node(&mut s, &["Conf"]),
        Err(MoError::Required("Conf".into()))
    );
    assert_eq!(
        MoNode::delete_node(&mut s, &["Count"]),
        Err(MoError::NotFound("Count".into()))
    );
    MoNode::delete_node(&mut s, &["Conf", "a"]).unwrap();
    assert!(s.conf.tags.is_empty());
    MoNode::delete_node(&mut s, &["i1"]).unwrap();
    assert!(s.items.is_empty());
    assert_eq!(
        MoNode::delete_node(&mut s, &["i1"]),
        Err(MoError::NotFound("i1".into()))
    );
}

// MoHooks and ManagementObject both have `exec` and `validate`: the runtime
// calls the latter, MO authors implement the former.
#[test]
fn exec_and_validate_go_through_the_hooks() {
    let mut s = sample();
    assert_eq!(
        ManagementObject::exec(&mut s, &["i1", "Run"], &ExecRequest::default()),
        Ok(ExecOutcome::Done)
    );
    let asynchronous = ExecRequest {
        asynchronous: true,
        ..ExecRequest::default()
    };
    assert_eq!(
        ManagementObject::exec(&mut s, &["i1", "Run"], &asynchronous),
        Ok(ExecOutcome::Started)
    );
    assert_eq!(s.count, Some(2));
    assert!(matches!(
        ManagementObject::exec(&mut s, &["Name"], &ExecRequest::default()),
        Err(MoError::NotExecutable(_))
    ));
}

#[test]
fn apply_is_all_or_nothing() {
    let mut s = sample();
    let put = |path: &[&str], data: NodeData| Change::Put {
        path: path.iter().map(|p| p.to_string()).collect(),
        data,
    };
    let before = s.clone();
    // The validate hook refuses an empty Name: nothing of the command stays.
    let err = s
        .apply(&[
            put(&["Conf", "On"], leaf(Value::Bool(false))),
            put(&["Name"], leaf(Value::Chr(String::new()))),
        ])
        .unwrap_err();
    assert!(matches!(err, MoError::Invalid(_)));
    assert_eq!(s, before);
    // A failing change in the middle of a multi-node write: same.
    let err = s
        .apply(&[
            put(&["Conf", "On"], leaf(Value::Bool(false))),
            put(&["Count"], leaf(Value::Chr("x".into()))),
            put(&["Name"], leaf(Value::Chr("z".into()))),
        ])
        .unwrap_err();
    assert!(matches!(err, MoError::BadValue { .. }));
    assert_eq!(s, before);
    s.apply(&[
        put(&["Conf", "On"], leaf(Value::Bool(false))),
        Change::Delete {
            path: vec!["i1".into()],
        },
    ])
    .unwrap();
    assert!(!s.conf.on && s.items.is_empty());
}

/// The derives name the standard library by absolute path: a module whose
/// own items shadow the prelude still compiles their output.
#[allow(dead_code, non_upper_case_globals, non_snake_case, clippy::all)]
mod shadowed {
    use dm_core::{ManagementObject, MoHooks, MoNode, NodeMap};

    struct Option;
    struct String;
    struct Vec;
    struct Result;
    struct Box;
    const None: () = ();
    fn Some() {}
    fn Ok() {}
    fn Err() {}

    #[derive(Debug, Clone, PartialEq, ManagementObject)]
    #[dm(moid = "urn:example:mo:shadowed:1.0", access = "Get")]
    pub struct Root {
        #[dm(name = "Name", format = "chr", access = "Get, Replace")]
        name: ::std::string::String,
        #[dm(name = "Opt", format = "bin", occurrence = "ZeroOrOne")]
        opt: ::core::option::Option<::std::vec::Vec<u8>>,
        #[dm(format = "node", access = "Add, Get", occurrence = "ZeroOrMore")]
        items: NodeMap<Item>,
    }

    #[derive(Debug, Clone, PartialEq, MoNode)]
    pub struct Item {
        #[dm(name = "ID", format = "int", access = "Get")]
        id: i64,
    }

    impl MoHooks for Root {}

    #[test]
    fn derives_compile_with_the_prelude_shadowed() {
        let schema = Root::SCHEMA;
        ::std::assert_eq!(schema.root.children.len(), 3);
        ::std::assert_eq!(schema.ddf_url, ::core::option::Option::None);
    }
}
