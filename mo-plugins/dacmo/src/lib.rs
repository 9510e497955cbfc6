//! The Delegation Access Control MO (spec 10, 12.3, MOID
//! `urn:oma:mo:oma-dm-dacmo:1.0`): for each MO instance, rules of a Path
//! and the rights (AR) of each authority (MAID) on it.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/dacmo.rs"));
}

pub use generated::Dacmo;

/// The MOID of DACMO.
pub const MOID: &str = "urn:oma:mo:oma-dm-dacmo:1.0";

impl generated::DacmoBehaviour for Dacmo {
    /// AR is a bit set of Read 1, Write 2, Execute 4, Delegate 8; MAID is
    /// `*`, `serverid:...` or `appid:...`; Path is a path-from-moroot
    /// (12.3). Rules the runtime could not evaluate are never stored.
    fn validate(&self) -> Result<(), dm_core::MoError> {
        let invalid = |m: String| Err(dm_core::MoError::Invalid(m));
        for (miid, inst) in self.miid.iter() {
            for (x, rule) in inst.access_rule.iter() {
                if let Some(path) = &rule.path {
                    if let Err(e) = dm_core::acl::parse_path(path) {
                        return invalid(format!("{miid}/{x}/Path: {e}"));
                    }
                }
                for (y, p) in rule.permissions.permission.iter() {
                    if !(0..=15).contains(&p.ar) {
                        return invalid(format!(
                            "{miid}/{x}/Permissions/{y}: AR {} is not a 4-bit right set",
                            p.ar
                        ));
                    }
                    if let Err(e) = p.maid.parse::<dm_core::Maid>() {
                        return invalid(format!("{miid}/{x}/Permissions/{y}/MAID: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}
