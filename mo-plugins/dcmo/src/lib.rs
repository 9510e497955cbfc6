//! The example vendor plugin: OMA DCMO (MOID `urn:oma:mo:oma-dcmo:1.0`),
//! one instance per device capability, here `Camera` and `USB`.
//!
//! `Operations/Enable` and `Operations/Disable` switch `Enabled`. Run with a
//! ServerURI (asynchronous reporting, spec 5.4.1) the device answers 202 and
//! reports the result later in a Generic Alert of type
//! `urn:oma:at:dcmo:1.0:OperationComplete`.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/dcmo.rs"));
}

pub use generated::Dcmo;
use generated::{DcmoBehaviour, DcmoExt, DcmoOperations};

use dm_core::{ExecOutcome, ExecRequest, MoError};

/// The alert type that reports a finished DCMO operation.
pub const OPERATION_COMPLETE: &str = "urn:oma:at:dcmo:1.0:OperationComplete";

impl Dcmo {
    fn capability(property: &str, description: &str, enabled: bool) -> Dcmo {
        Dcmo {
            property: property.to_owned(),
            description: Some(description.to_owned()),
            attached: Some(true),
            enabled,
            operations: DcmoOperations {
                enable: (),
                disable: (),
            },
            ext: Some(DcmoExt {}),
        }
    }

    /// The built-in camera capability, enabled.
    pub fn camera() -> Dcmo {
        Dcmo::capability("Camera", "Built-in camera", true)
    }

    /// The USB port capability, enabled.
    pub fn usb() -> Dcmo {
        Dcmo::capability("USB", "USB host port", true)
    }

    /// Whether the capability is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
}

// The switch is immediate: the outcome is known now, and reported as the
// spec asks (synchronously, or in an alert for a ServerURI).
impl DcmoBehaviour for Dcmo {
    fn operations_enable(&mut self, _: &[&str], _: &ExecRequest) -> Result<ExecOutcome, MoError> {
        self.enabled = true;
        Ok(ExecOutcome::Done)
    }

    fn operations_disable(&mut self, _: &[&str], _: &ExecRequest) -> Result<ExecOutcome, MoError> {
        self.enabled = false;
        Ok(ExecOutcome::Done)
    }
}

/// The built-in instances, named after the capability.
pub fn builtin_instances() -> Vec<(String, Dcmo)> {
    vec![
        ("Camera".to_owned(), Dcmo::camera()),
        ("USB".to_owned(), Dcmo::usb()),
    ]
}

dm_core::dm_plugin!(Dcmo, builtin_instances);

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{ManagementObject, MoHooks};

    #[test]
    fn enable_and_disable_switch_enabled() {
        let mut camera = Dcmo::camera();
        MoHooks::exec(
            &mut camera,
            &["Operations", "Disable"],
            &ExecRequest::default(),
        )
        .unwrap();
        assert!(!camera.is_enabled());
        MoHooks::exec(
            &mut camera,
            &["Operations", "Enable"],
            &ExecRequest::default(),
        )
        .unwrap();
        assert!(camera.is_enabled());
        assert!(matches!(
            MoHooks::exec(&mut camera, &["Enabled"], &ExecRequest::default()),
            Err(MoError::NotExecutable(_))
        ));
        assert_eq!(camera.schema().moid, "urn:oma:mo:oma-dcmo:1.0");
    }
}
