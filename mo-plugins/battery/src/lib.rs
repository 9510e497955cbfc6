//! The battery of `docs/mo-author-guide.md`: an MO written from its DDF
//! (`ddf/battery.ddf`, MOID `urn:omadm-rs:mo:battery:1.0`), compiled into
//! an agent or shipped as a dylib plugin. Its device is a directory laid
//! out as Linux's `/sys/class/power_supply/BAT0` (`capacity`, `status`)
//! plus the controller's `alarm` and `calibrated` files.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/battery.rs"));
}

use std::path::PathBuf;
use std::time::Duration;

use dm_core::{
    ChangeReporter, Completion, ExecOutcome, ExecReport, ExecRequest, MoError, StatusCode,
};

pub use generated::Battery;
use generated::{BatteryBehaviour, BatteryLive};

/// Where the battery is, and what MO code keeps between calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub dir: PathBuf,
    /// How the MO tells the agent about changes it did not make.
    pub reporter: ChangeReporter,
}

impl Device {
    fn read(&self, file: &str) -> Result<String, MoError> {
        std::fs::read_to_string(self.dir.join(file))
            .map(|s| s.trim().to_owned())
            .map_err(|e| MoError::Failed(format!("{file}: {e}")))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), MoError> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| MoError::Failed(format!("{file}: {e}")))
    }
}

impl Battery {
    /// The battery whose files are in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Battery {
        let mut battery = Battery::with_required(0, String::new(), 10);
        battery.device.dir = dir.into();
        battery
    }
}

// Reads answered from the device at the moment of the GET.
impl BatteryLive for Battery {
    fn read_level(&self) -> Result<i64, MoError> {
        self.device
            .read("capacity")?
            .parse()
            .map_err(|_| MoError::Failed("capacity is not a number".into()))
    }

    fn read_status(&self) -> Result<String, MoError> {
        self.device.read("status")
    }
}

impl BatteryBehaviour for Battery {
    // Checked after every write, before anything reaches the device.
    fn validate(&self) -> Result<(), MoError> {
        if !(0..=100).contains(&self.low_alarm) {
            return Err(MoError::Invalid("LowAlarm is a percentage".into()));
        }
        Ok(())
    }

    // The validated state goes to the device; an error takes the command
    // back, on the device too.
    fn commit(&mut self) -> Result<(), MoError> {
        self.device.write("alarm", &self.low_alarm.to_string())
    }

    // With a ServerURI the agent hands a completion: answer 202 now and
    // finish later, from any thread.
    fn calibrate(&mut self, _: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        let device = self.device.clone();
        match &request.completion {
            Some(done) => {
                let done = done.clone();
                std::thread::spawn(move || done.finish(calibrate(&device)));
                Ok(ExecOutcome::Started)
            }
            None => match calibrate(&device).status {
                StatusCode::OK => Ok(ExecOutcome::Done),
                _ => Err(MoError::Failed("calibration failed".into())),
            },
        }
    }

    // A calibration the agent stopped in the middle of is run again.
    fn resume_exec(&mut self, _path: &[&str], done: Completion) {
        let device = self.device.clone();
        std::thread::spawn(move || done.finish(calibrate(&device)));
    }

    // Keep the reporter: the device's own changes go through it.
    fn attach(&mut self, reporter: ChangeReporter) {
        self.device.reporter = reporter;
    }
}

/// One calibration cycle on the device.
fn calibrate(device: &Device) -> ExecReport {
    std::thread::sleep(Duration::from_millis(50));
    match device.write("calibrated", "1") {
        Ok(()) => {
            device.reporter.changed(&["Level"]);
            ExecReport::status(StatusCode::OK)
        }
        Err(_) => ExecReport::status(StatusCode::INTERNAL_ERROR),
    }
}

/// The instances a plugin build starts with: the battery in
/// `$DM_BATTERY_DIR`, else Linux's first one.
pub fn builtin_instances() -> Vec<(String, Battery)> {
    let dir = std::env::var_os("DM_BATTERY_DIR").map_or_else(
        || PathBuf::from("/sys/class/power_supply/BAT0"),
        PathBuf::from,
    );
    vec![("bat0".to_owned(), Battery::at(dir))]
}

dm_core::dm_plugin!(Battery, builtin_instances);
