//! `#[dm(live)]` and `#[dm(skip)]`: an MO that owns its data answers every
//! read from the device at read time (issue 18 item 1), through every read
//! path the derive generates; MO code keeps its own handles in fields that
//! are no node.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use dm_core::{
    Change, Completion, ExecReport, ManagementObject, MoError, MoHooks, MoNode, NodeData, NodeMap,
    StatusCode, Value,
};

/// What the "device" holds: read by the MO at every read.
#[derive(Debug, Default)]
struct Device {
    level: i64,
    health: Option<String>,
    ifaces: Vec<(&'static str, i64)>,
    failing: bool,
}

/// MO code's handle to the device: no node, so `#[dm(skip)]`. Equal when
/// it is the same device.
#[derive(Debug, Default, Clone)]
struct Handle(Arc<Mutex<Device>>);

impl PartialEq for Handle {
    fn eq(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&mut Device) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn read<T>(&self, f: impl FnOnce(&Device) -> T) -> Result<T, MoError> {
        self.with(|d| {
            if d.failing {
                Err(MoError::Failed("the device does not answer".into()))
            } else {
                Ok(f(d))
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(moid = "urn:example:mo:battery:1.0", access = "Get")]
struct Battery {
    #[dm(name = "Level", format = "int", access = "Get, Replace", live)]
    level: i64,
    #[dm(name = "Label", format = "chr", access = "Get, Replace")]
    label: String,
    #[dm(
        name = "Health",
        format = "chr",
        access = "Get",
        occurrence = "ZeroOrOne",
        live
    )]
    health: Option<String>,
    // A keyword field: read through `read_type`.
    #[dm(name = "Type", format = "chr", access = "Get", live)]
    r#type: String,
    #[dm(format = "node", access = "Get", occurrence = "ZeroOrMore", live)]
    ifaces: NodeMap<Iface>,
    #[dm(skip)]
    device: Handle,
    #[dm(skip)]
    pending: Option<Completion>,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Iface {
    #[dm(name = "Rx", format = "int", access = "Get")]
    rx: i64,
}

impl Battery {
    fn read_level(&self) -> Result<i64, MoError> {
        self.device.read(|d| d.level)
    }

    fn read_health(&self) -> Result<Option<String>, MoError> {
        self.device.read(|d| d.health.clone())
    }

    fn read_type(&self) -> Result<String, MoError> {
        self.device.read(|_| "Li-ion".to_owned())
    }

    fn read_ifaces(&self) -> Result<NodeMap<Iface>, MoError> {
        let list = self.device.read(|d| d.ifaces.clone())?;
        let mut map = NodeMap::new();
        for (name, rx) in list {
            map.insert(name, Iface { rx })
                .map_err(|e| MoError::Failed(e.to_string()))?;
        }
        Ok(map)
    }
}

impl MoHooks for Battery {}

fn battery() -> Battery {
    let device = Handle::default();
    device.with(|d| {
        d.level = 5;
        d.ifaces = vec![("eth0", 10)];
    });
    Battery {
        level: 0,
        label: "main".into(),
        health: None,
        r#type: String::new(),
        ifaces: NodeMap::new(),
        device,
        pending: None,
    }
}

fn int(i: i64) -> NodeData {
    NodeData::Leaf(Value::Int(i))
}

fn root_json(mo: &dyn ManagementObject) -> Option<String> {
    let mut out = b"x".to_vec();
    mo.write_root_json(&mut out)
        .then(|| String::from_utf8(out[1..].to_vec()).unwrap())
}

#[test]
fn a_live_leaf_is_read_from_the_device_at_every_read() {
    let b = battery();
    assert_eq!(b.get(&["Level"]), Ok(int(5)));
    b.device.with(|d| d.level = 7);
    assert_eq!(b.get(&["Level"]), Ok(int(7)));
    // The stored field is not what a read answers.
    assert_eq!(b.level, 0);
    assert_eq!(b.get(&["Health"]), Err(MoError::NotFound("Health".into())));
    b.device.with(|d| d.health = Some("good".into()));
    assert_eq!(
        b.get(&["Health"]),
        Ok(NodeData::Leaf(Value::Chr("good".into())))
    );
    assert_eq!(
        b.get(&["Type"]),
        Ok(NodeData::Leaf(Value::Chr("Li-ion".into())))
    );
}

#[test]
fn a_failed_live_read_is_the_mo_error() {
    let b = battery();
    b.device.with(|d| d.failing = true);
    let failed = Err(MoError::Failed("the device does not answer".into()));
    assert_eq!(b.get(&["Level"]), failed);
    assert_eq!(b.get(&["eth0", "Rx"]), failed);
    assert_eq!(b.get(&[]), failed);
    assert_eq!(
        b.get(&["Level"]).unwrap_err().status(),
        StatusCode::INTERNAL_ERROR
    );
    // A stored leaf still reads.
    assert_eq!(
        b.get(&["Label"]),
        Ok(NodeData::Leaf(Value::Chr("main".into())))
    );
    // The root writer writes nothing: the runtime then reads with `get`,
    // which reports the error.
    assert_eq!(root_json(&b), None);
    // `contains` cannot report an error: it sends the caller on to `get`.
    let mo: &dyn ManagementObject = &b;
    assert!(mo.contains(&["Level"]));
    assert!(mo.contains(&["eth9", "Rx"]));
}

#[test]
fn live_unnamed_instances_are_listed_at_read_time() {
    let b = battery();
    let mo: &dyn ManagementObject = &b;
    assert_eq!(b.get(&["eth0", "Rx"]), Ok(int(10)));
    assert!(mo.contains(&["eth0", "Rx"]));
    assert!(!mo.contains(&["wlan0"]));
    assert_eq!(
        b.get(&["wlan0", "Rx"]),
        Err(MoError::NotFound("wlan0/Rx".into()))
    );
    b.device
        .with(|d| d.ifaces = vec![("eth0", 11), ("wlan0", 3)]);
    // ClientURI resolution (spec 6.1.2) sees the new instance.
    assert!(mo.contains(&["wlan0"]));
    assert!(mo.contains(&["wlan0", "Rx"]));
    assert!(!mo.contains(&["wlan0", "Tx"]));
    assert_eq!(b.get(&["wlan0", "Rx"]), Ok(int(3)));
    assert_eq!(b.get(&["eth0", "Rx"]), Ok(int(11)));
    let NodeData::Interior(children) = b.get(&[]).unwrap() else {
        panic!("the root is interior");
    };
    let names: Vec<&str> = children.iter().map(|(n, _)| &**n).collect();
    assert_eq!(names, ["Level", "Label", "Type", "eth0", "wlan0"]);
    b.device.with(|d| d.ifaces.clear());
    assert!(!mo.contains(&["eth0"]));
}

#[test]
fn the_root_json_writer_uses_live_values() {
    let b = battery();
    assert_eq!(
        root_json(&b).unwrap(),
        r#"{"Level":5,"Label":"main","Type":"Li-ion","eth0":{"Rx":10}}"#
    );
    b.device.with(|d| {
        d.level = 6;
        d.ifaces.push(("wlan0", 1));
    });
    let direct = root_json(&b).unwrap();
    assert_eq!(
        direct,
        r#"{"Level":6,"Label":"main","Type":"Li-ion","eth0":{"Rx":10},"wlan0":{"Rx":1}}"#
    );
    // The same bytes as the tree that `get` builds.
    let mut built = Vec::new();
    let mut tree = b.get(&[]).unwrap();
    tree.retain_readable(&Battery::SCHEMA.root);
    tree.write_json(&mut built);
    assert_eq!(direct.as_bytes(), built);
}

#[test]
fn writes_to_a_live_field_update_the_stored_field() {
    let mut b = battery();
    let put = |path: &str, data: NodeData| Change::Put {
        path: vec![path.to_owned()],
        data,
    };
    b.apply(&[put("Level", int(9))]).unwrap();
    // `MoHooks::commit` carries `level` to the device; until then a read
    // answers what the device says.
    assert_eq!(b.level, 9);
    assert_eq!(b.get(&["Level"]), Ok(int(5)));
}

#[test]
fn skip_fields_survive_clone_and_writes() {
    let mut b = battery();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = seen.clone();
    let completion = Completion::new(3, move |id, _| {
        sink.lock().unwrap_or_else(|p| p.into_inner()).push(id)
    });
    b.pending = Some(completion);
    let device = b.device.clone();
    let copy = b.clone();
    assert_eq!(copy.device, device);
    assert_eq!(copy.pending, b.pending);
    b.apply(&[
        Change::Put {
            path: vec!["Label".into()],
            data: NodeData::Leaf(Value::Chr("spare".into())),
        },
        Change::Put {
            path: vec![],
            data: NodeData::Interior(vec![(
                "Label".into(),
                NodeData::Leaf(Value::Chr("x".into())),
            )]),
        },
        Change::Put {
            path: vec!["lo".into()],
            data: NodeData::Interior(vec![("Rx".into(), int(0))]),
        },
        Change::Delete {
            path: vec!["lo".into()],
        },
    ])
    .unwrap();
    assert_eq!(b.label, "x");
    assert_eq!(b.device, device);
    let pending = b.pending.as_ref().unwrap();
    assert!(pending.finish(ExecReport::status(StatusCode::OK)));
    assert_eq!(*seen.lock().unwrap_or_else(|p| p.into_inner()), vec![3]);
    // No node: not in the schema, not readable, not writable.
    assert!(Battery::SCHEMA
        .root
        .children
        .iter()
        .all(|c| c.name != Some("device") && c.name != Some("pending")));
    assert_eq!(b.get(&["device"]), Err(MoError::NotFound("device".into())));
    let refused = b.apply(&[Change::Put {
        path: vec!["device".into(), "x".into()],
        data: int(1),
    }]);
    assert!(refused.is_err());
    assert_eq!(b.device, device);
}

#[test]
fn from_node_starts_skip_fields_at_their_default() {
    let data = NodeData::Interior(vec![
        ("Level".into(), int(1)),
        ("Label".into(), NodeData::Leaf(Value::Chr("l".into()))),
        ("Type".into(), NodeData::Leaf(Value::Chr("t".into()))),
    ]);
    let b = Battery::from_node(&data).unwrap();
    assert_eq!(b.level, 1);
    assert_eq!(b.pending, None);
    assert_ne!(b.device, battery().device);
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Stored {
    #[dm(name = "A", format = "int", access = "Get")]
    a: i64,
}

#[derive(Debug, Clone, PartialEq, MoNode)]
struct Holder {
    #[dm(name = "In", format = "node", access = "Get", occurrence = "ZeroOrOne")]
    inner: Option<Battery>,
    #[dm(format = "node", access = "Get", occurrence = "ZeroOrMore")]
    stored: NodeMap<Stored>,
}

#[derive(Debug, Clone, PartialEq, ManagementObject)]
#[dm(moid = "urn:example:mo:stored:1.0")]
struct StoredMo {
    #[dm(name = "S", format = "node", access = "Get")]
    s: Stored,
    #[dm(skip)]
    handle: Handle,
}

impl MoHooks for StoredMo {}

#[test]
fn live_is_known_at_compile_time_through_every_holder() {
    const {
        assert!(<Battery as MoNode>::LIVE);
        assert!(!<Stored as MoNode>::LIVE);
        // A live node below: through Option (and the same for NodeMap).
        assert!(<Holder as MoNode>::LIVE);
        // A skip field is no node: not live.
        assert!(!<StoredMo as MoNode>::LIVE);
    }
    assert!(battery().owns_data());
    let stored = StoredMo {
        s: Stored { a: 1 },
        handle: Handle::default(),
    };
    assert!(!stored.owns_data());
}

#[test]
fn a_required_live_leaf_exists_without_a_read() {
    let b = battery();
    let mo: &dyn ManagementObject = &b;
    // No device at all: existence of a required leaf needs no read...
    b.device.with(|d| d.failing = true);
    assert!(mo.contains(&["Level"]));
    assert!(!mo.contains(&["Level", "below"]), "a leaf has no children");
    // ...an optional one does (absent when the device says so).
    b.device.with(|d| {
        d.failing = false;
        d.health = None;
    });
    assert!(!mo.contains(&["Health"]));
    b.device.with(|d| d.health = Some("good".into()));
    assert!(mo.contains(&["Health"]));
}
