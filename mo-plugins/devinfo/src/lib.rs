//! The DevInfo Management Object (spec 12.1, MOID
//! `urn:oma:mo:oma-dm-devinfo:1.2`).
//!
//! The structs come from `ddf/devinfo.ddf` at build time; this crate only
//! fills them with what the host says about itself.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/devinfo.rs"));
}

pub use generated::DevInfo;

/// What the device is, as far as DevInfo is concerned. Values the host does
/// not know stay as given here.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub dev_id: String,
    pub manufacturer: String,
    pub model: String,
    pub lang: String,
    pub dev_type: String,
    pub oem: String,
    pub firmware: String,
    pub software: String,
    pub hardware: String,
}

impl HostFacts {
    /// Reads what a Linux host tells about itself (DMI product name, kernel
    /// release, machine architecture, `LANG`); `dev_id` is the DevInfo/DevID
    /// to report.
    pub fn from_host(dev_id: impl Into<String>) -> HostFacts {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let lang = std::env::var("LANG")
            .ok()
            .and_then(|l| l.split(['.', '_']).next().map(str::to_owned))
            .filter(|l| !l.is_empty() && l != "C" && l != "POSIX")
            .unwrap_or_else(|| "en".into());
        HostFacts {
            dev_id: dev_id.into(),
            manufacturer: read("/sys/class/dmi/id/sys_vendor").unwrap_or_else(|| "unknown".into()),
            model: read("/sys/class/dmi/id/product_name").unwrap_or_else(|| "unknown".into()),
            lang,
            dev_type: "embedded-linux".into(),
            oem: read("/sys/class/dmi/id/board_vendor").unwrap_or_default(),
            firmware: read("/sys/class/dmi/id/bios_version").unwrap_or_default(),
            software: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
            hardware: std::env::consts::ARCH.to_owned(),
        }
    }
}

// DevInfo has no Exec node and no rule beyond its DDF.
impl generated::DevInfoBehaviour for DevInfo {}

/// The version this client reports in DevInfo/DmV.
pub const DM_VERSION: &str = "2.0";

impl DevInfo {
    /// The DevInfo instance for a device with these facts.
    pub fn new(facts: &HostFacts) -> DevInfo {
        DevInfo {
            bearer: None,
            dev_id: facts.dev_id.clone(),
            man: facts.manufacturer.clone(),
            mod_: facts.model.clone(),
            dm_v: DM_VERSION.to_owned(),
            lang: facts.lang.clone(),
            dev_type: facts.dev_type.clone(),
            oem: facts.oem.clone(),
            fw_v: facts.firmware.clone(),
            sw_v: facts.software.clone(),
            hw_v: facts.hardware.clone(),
            ext: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{AccessType, Format, ManagementObject, NodeData, Value};

    fn sample() -> DevInfo {
        DevInfo::new(&HostFacts {
            dev_id: "UUID:1234".into(),
            manufacturer: "Acme".into(),
            model: "Box".into(),
            lang: "en".into(),
            dev_type: "router".into(),
            oem: String::new(),
            firmware: "1.0".into(),
            software: "6.1".into(),
            hardware: "x86_64".into(),
        })
    }

    #[test]
    fn schema_comes_from_the_ddf() {
        let d = sample();
        let schema = d.schema();
        assert_eq!(schema.moid, "urn:oma:mo:oma-dm-devinfo:1.2");
        assert_eq!(
            schema.ddf_url,
            Some("https://omadm.example/ddf/devinfo.ddf")
        );
        let names: Vec<_> = schema.root.children.iter().filter_map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Bearer", "DevID", "Man", "Mod", "DmV", "Lang", "DevType", "OEM", "FwV", "SwV",
                "HwV", "Ext"
            ]
        );
        let dev_id = schema.root.child("DevID").unwrap();
        assert_eq!(
            (dev_id.format, dev_id.access),
            (Format::Chr, AccessType::GET)
        );
    }

    #[test]
    fn nodes_are_read_by_path() {
        let d = sample();
        assert_eq!(
            d.get(&["DevID"]),
            Ok(NodeData::Leaf(Value::Chr("UUID:1234".into())))
        );
        assert_eq!(
            d.get(&["Mod"]),
            Ok(NodeData::Leaf(Value::Chr("Box".into())))
        );
        assert!(d.get(&["Bearer"]).is_err(), "absent optional node");
        assert!(d.get(&["DevID", "x"]).is_err(), "below a leaf");
        assert!(d.get(&["Nope"]).is_err());
        let root = d.get(&[]).unwrap().to_json();
        assert_eq!(root["DmV"], "2.0");
        assert_eq!(root.as_object().map(|o| o.len()), Some(10));
    }
}
