//! The guide's last step: the battery tested through the same calls the
//! agent makes (docs/mo-author-guide.md, "Test it").
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use dm_core::{
    Change, ChangeReporter, Completion, ExecOutcome, ExecRequest, ManagementObject, NodeData,
    StatusCode, Value,
};
use mo_battery::Battery;

#[test]
fn the_battery_reads_writes_and_calibrates_on_its_device() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("capacity"), "81\n").unwrap();
    std::fs::write(dir.path().join("status"), "Discharging\n").unwrap();
    let mut battery = Battery::at(dir.path());
    assert!(battery.owns_data());

    // A GET reads the device at that moment.
    let level = |b: &Battery| b.get(&["Level"]).unwrap();
    assert_eq!(level(&battery), NodeData::Leaf(Value::Int(81)));
    std::fs::write(dir.path().join("capacity"), "79\n").unwrap();
    assert_eq!(level(&battery), NodeData::Leaf(Value::Int(79)));

    // A write is validated, then carried to the device by commit.
    let alarm = |v| Change::Put {
        path: vec!["LowAlarm".into()],
        data: NodeData::Leaf(Value::Int(v)),
    };
    assert!(battery.apply(&[alarm(150)]).is_err(), "not a percentage");
    battery.apply(&[alarm(15)]).unwrap();
    battery.commit().unwrap();
    let written = std::fs::read_to_string(dir.path().join("alarm")).unwrap();
    assert_eq!(written, "15");

    // An EXEC with a ServerURI finishes later, from another thread; the
    // change it makes on the device is reported.
    let changes = Arc::new(Mutex::new(0));
    let counter = changes.clone();
    battery.attach(ChangeReporter::new(move |_| *counter.lock().unwrap() += 1));
    let (tx, rx) = std::sync::mpsc::channel();
    let request = ExecRequest {
        asynchronous: true,
        completion: Some(Completion::new(1, move |_, report| {
            let _ = tx.send(report.status);
        })),
    };
    let outcome = battery.exec(&["Calibrate"], &request).unwrap();
    assert_eq!(outcome, ExecOutcome::Started);
    let status = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(dir.path().join("calibrated").exists());
    assert_eq!(*changes.lock().unwrap(), 1);
}

#[test]
fn compiled_in_the_battery_is_one_more_instance_of_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = dm_agent::standard_registry("IMEI:490154203237518");
    registry.insert("bat0", Box::new(Battery::at(dir.path())));
    let index = registry
        .find("urn:omadm-rs:mo:battery:1.0", "bat0")
        .unwrap();
    // Its device is unreadable here: a GET of it fails (500), no stale data.
    let mo = registry.instance(index).unwrap().mo();
    let e = mo.get(&["Level"]).unwrap_err();
    assert_eq!(e.status(), StatusCode::INTERNAL_ERROR);
}
