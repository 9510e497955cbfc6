//! A firmware update MO in the style of OMA FUMO 1.0 (MOID
//! `urn:oma:mo:oma-fumo:1.0`): this project's example of an MO that owns
//! its data and finishes EXECs later (issue 18).
//!
//! - `DownloadAndUpdate` run with a ServerURI answers 202 at once; a
//!   thread downloads `DownloadAndUpdate/PkgURL`, installs the package, and
//!   finishes the EXEC's [`Completion`]: the agent then sends the Generic
//!   Alert with the final status (spec 5.4.1). Without a ServerURI the
//!   whole update runs inside the EXEC and its status is the command's.
//! - `State` (FUMO 1.0's numbers) is read from the device at every GET.
//! - Progress is kept in files of the work directory (`$DM_FUMO_DIR`, else
//!   `$DM_STATE_DIR/fumo`), written whole and renamed into place, so an
//!   update survives a restart of the agent: at the next start the agent
//!   hands the unfinished EXEC's new handle back (`resume_exec`) and the
//!   update goes on from where it stood.
//! - "Installing" writes the package to `firmware.bin` in the work
//!   directory (a stand-in for flashing) and records its version.
//! - A file `hold-update` in the work directory keeps a downloaded
//!   package in state 50 (Ready to Update) until it is removed: the
//!   device's consent or maintenance window.
//!
//! The final status is 200 when the update succeeded, else 500; the alert
//! data carries FUMO's own result code (`result`, e.g. 411 for a bad URL)
//! and the state.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/fumo.rs"));
}

mod work;

use std::path::PathBuf;

use dm_core::{Completion, ExecOutcome, ExecReport, ExecRequest, MoError, StatusCode};

pub use generated::Fumo;
use generated::{FumoBehaviour, FumoDownload, FumoDownloadAndUpdate, FumoLive};
pub use work::{result, state, Progress, Work};

/// Where the update keeps its files: given when compiled in
/// ([`Fumo::in_dir`]); for the plugin, `$DM_FUMO_DIR`, else
/// `$DM_STATE_DIR/fumo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkDir(Option<PathBuf>);

impl WorkDir {
    fn resolve(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.0 {
            return Some(dir.clone());
        }
        if let Some(dir) = std::env::var_os("DM_FUMO_DIR") {
            return Some(PathBuf::from(dir));
        }
        std::env::var_os("DM_STATE_DIR").map(|d| PathBuf::from(d).join("fumo"))
    }
}

impl Fumo {
    /// The device's one firmware instance, its files where the
    /// environment says (the plugin's case).
    pub fn device() -> Fumo {
        Fumo::with_required(
            FumoDownload::with_required(String::new()),
            FumoDownloadAndUpdate::with_required(String::new()),
            state::IDLE,
        )
    }

    /// The firmware instance keeping its files in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Fumo {
        let mut mo = Fumo::device();
        mo.dir = WorkDir(Some(dir.into()));
        mo
    }

    fn work(&self) -> Result<Work, MoError> {
        let dir = self.dir.resolve().ok_or_else(|| {
            MoError::Failed("no work directory: set DM_FUMO_DIR or DM_STATE_DIR".into())
        })?;
        Work::open(dir).map_err(|e| MoError::Failed(e.to_string()))
    }

    /// Starts (or, `asynchronous` without a handle, runs) one job.
    fn start(
        &self,
        job: work::Job,
        url: Option<&str>,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, MoError> {
        let work = self.work()?;
        let progress = work
            .begin(job, url, self.pkg_version.as_deref())
            .map_err(|e| MoError::Failed(e.to_string()))?;
        match &request.completion {
            Some(c) => {
                spawn(work, progress, c.clone());
                Ok(ExecOutcome::Started)
            }
            // spec 5.4.1: without a ServerURI the client decides; this MO
            // reports synchronously, in the command's own status.
            None => {
                let report = work.run(progress);
                if report.status == StatusCode::OK {
                    Ok(ExecOutcome::Done)
                } else {
                    Err(MoError::Failed(format!(
                        "firmware update: {:?}",
                        report.data
                    )))
                }
            }
        }
    }
}

/// Runs the job on its own thread and finishes `completion` with its end.
fn spawn(work: Work, progress: Progress, completion: Completion) {
    std::thread::spawn(move || {
        let report = work.run(progress);
        completion.finish(report);
    });
}

impl FumoBehaviour for Fumo {
    fn download(&mut self, _: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        let url = self.download.pkg_url.clone();
        self.start(work::Job::Download, Some(&url), request)
    }

    fn update(&mut self, _: &[&str], request: &ExecRequest) -> Result<ExecOutcome, MoError> {
        if let Some(data) = self.update.pkg_data.take() {
            // The server wrote the package itself: it is the download.
            let work = self.work()?;
            work.store_package(&data)
                .map_err(|e| MoError::Failed(e.to_string()))?;
        }
        self.start(work::Job::Update, None, request)
    }

    fn download_and_update(
        &mut self,
        _: &[&str],
        request: &ExecRequest,
    ) -> Result<ExecOutcome, MoError> {
        let url = self.download_and_update.pkg_url.clone();
        self.start(work::Job::DownloadAndUpdate, Some(&url), request)
    }

    fn resume_exec(&mut self, _path: &[&str], completion: Completion) {
        let Ok(work) = self.work() else {
            return;
        };
        match work.progress() {
            Ok(Some(p)) if !p.finished() => spawn(work, p, completion),
            // Finished before the stop, its alert not yet sent: say so.
            Ok(Some(p)) => {
                completion.finish(work::report_of(&p));
            }
            _ => {
                completion.finish(ExecReport::status(StatusCode::INTERNAL_ERROR));
            }
        }
    }
}

impl FumoLive for Fumo {
    fn read_state(&self) -> Result<i64, MoError> {
        let Some(dir) = self.dir.resolve() else {
            return Ok(state::IDLE);
        };
        Work::open(dir)
            .and_then(|w| w.progress())
            .map(|p| p.map_or(state::IDLE, |p| p.state))
            .map_err(|e| MoError::Failed(format!("reading the update state: {e}")))
    }
}

/// The built-in instance.
pub fn builtin_instances() -> Vec<(String, Fumo)> {
    vec![("fumo".to_owned(), Fumo::device())]
}

dm_core::dm_plugin!(Fumo, builtin_instances);
