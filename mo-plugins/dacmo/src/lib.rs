//! The Delegation Access Control MO (spec 10, 12.3, MOID
//! `urn:oma:mo:oma-dm-dacmo:1.0`): for each MO instance, rules of a Path
//! and the rights (AR) of each authority (MAID) on it.

// Generated names keep the spec's spelling (DACMO, DMAcc).
#[allow(clippy::upper_case_acronyms)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/dacmo.rs"));
}

pub use generated::DACMO as Dacmo;

use dm_core::MoHooks;

/// The MOID of DACMO.
pub const MOID: &str = "urn:oma:mo:oma-dm-dacmo:1.0";

impl MoHooks for Dacmo {
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
