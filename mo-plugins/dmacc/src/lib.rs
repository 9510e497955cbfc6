//! The DM Account MO (spec 12.2, MOID `urn:oma:mo:oma-dm-dmacc:1.2`): one
//! instance per DM Server, written by bootstrap or HGET. Perm, the
//! bootstrap keys and Auth/Trsp/Secret have no Get in the DDF, so the
//! runtime never sends them to any server.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/dmacc.rs"));
}

pub use generated::DmAcc;

use dm_core::MoError;

/// The MOID of DMAcc.
pub const MOID: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

impl generated::DmAccBehaviour for DmAcc {
    /// SrvID identifies the server within the client (12.2): never empty.
    /// Its uniqueness among accounts is the agent's to check: it sees them
    /// all. `Auth/Noti/Type` has one defined value, 0 (SHA256 digest, 12.2).
    fn validate(&self) -> Result<(), MoError> {
        if self.srv_id.trim().is_empty() {
            return Err(MoError::Invalid("SrvID must not be empty".into()));
        }
        if self.srv_uri.trim().is_empty() {
            return Err(MoError::Invalid("SrvURI must not be empty".into()));
        }
        if let Some(noti) = self.auth.as_ref().and_then(|a| a.noti.as_ref()) {
            if noti.type_ != 0 {
                return Err(MoError::Invalid(format!(
                    "Auth/Noti/Type {} is not 0, the only type of spec 12.2",
                    noti.type_
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{MoHooks, MoNode, NodeData};

    fn account_json() -> serde_json::Value {
        serde_json::json!({
            "SrvID": "dms1", "SrvURI": "https://dms.example/dm", "Name": "Example",
            "Perm": {"p1": {"MOID": "urn:oma:mo:oma-dm-devinfo:1.2"}, "p2": {"MOID": "*"}},
            "Auth": {"Noti": {"Type": 0, "Data": "AQI=", "Secret": "c2VjcmV0"}}
        })
    }

    #[test]
    fn an_account_builds_from_dmacc_data() {
        let data = NodeData::from_json(&account_json(), &DmAcc::SCHEMA.root).unwrap();
        let acc = DmAcc::from_node(&data).unwrap();
        assert_eq!(acc.srv_id, "dms1");
        assert_eq!(acc.perm.perm_group.len(), 2);
        assert!(MoHooks::validate(&acc).is_ok());
    }

    #[test]
    fn a_notification_type_other_than_0_is_refused() {
        let mut json = account_json();
        json["Auth"]["Noti"]["Type"] = 1.into();
        let data = NodeData::from_json(&json, &DmAcc::SCHEMA.root).unwrap();
        let acc = DmAcc::from_node(&data).unwrap();
        let err = MoHooks::validate(&acc).unwrap_err();
        assert!(err.to_string().contains("Noti/Type 1"), "{err}");
        // HGET data the MO cannot take: 415 (Appendix C, HGET).
        assert_eq!(err.status(), dm_core::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn perm_and_secrets_have_no_get() {
        let root = &DmAcc::SCHEMA.root;
        for path in [
            &["Perm"][..],
            &["Perm", "x", "MOID"],
            &["Auth", "Trsp", "Secret"],
            &["Auth", "Bootstrap", "ClientSecretKey"],
        ] {
            let node = root.descendant(path).unwrap();
            assert!(!node.access.contains(dm_core::AccessType::GET), "{path:?}");
        }
    }

    #[test]
    fn empty_srv_id_is_refused() {
        let mut json = account_json();
        json["SrvID"] = serde_json::json!(" ");
        let data = NodeData::from_json(&json, &DmAcc::SCHEMA.root).unwrap();
        let acc = DmAcc::from_node(&data).unwrap();
        assert!(MoHooks::validate(&acc).is_err());
    }
}
