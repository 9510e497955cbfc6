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
    /// AR is a bit set of Read 1, Write 2, Execute 4, Delegate 8 (12.3).
    fn validate(&self) -> Result<(), dm_core::MoError> {
        for (miid, inst) in self.miid.iter() {
            for (_, rule) in inst.access_rule.iter() {
                for (_, p) in rule.permissions.permission.iter() {
                    if !(0..=15).contains(&p.ar) {
                        return Err(dm_core::MoError::Invalid(format!(
                            "{miid}: AR {} is not a 4-bit right set",
                            p.ar
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
