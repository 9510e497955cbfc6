//! The device agent behind `dmctl client` (ARCHITECTURE "Command line").

use std::path::PathBuf;
use std::time::Duration;

use crate::client::{Device, DeviceConfig, Initiation, SessionError, SessionReport};
use crate::http::Observer;
use crate::state::{machine_dev_id, StateDir, StateError};

/// What `dmctl client` was asked to do.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub state: PathBuf,
    pub bootstrap: Option<PathBuf>,
    pub dev_id: Option<String>,
    pub server_id: Option<String>,
    /// Directory of MO plugin dylibs to load at start.
    pub plugins: Option<PathBuf>,
    pub timeout: Duration,
}

/// A configuration problem: the agent cannot start (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no DM Server account: bootstrap one with --bootstrap FILE")]
    NoAccounts,
    #[error("no DM Server account with SrvID `{0}`")]
    UnknownServer(String),
}

/// How one session went.
#[derive(Debug)]
pub struct SessionOutcome {
    pub server_id: String,
    pub result: Result<SessionReport, SessionError>,
}

/// Applies the bootstrap (if any), then runs one client-initiated session
/// with each account (or only `server_id`). A session to a freshly
/// bootstrapped server carries BootstrapComplete (spec 8), and the flag is
/// cleared only once that session ended with END.
pub async fn run_once(
    opts: &AgentOptions,
    observer: Option<Observer>,
) -> Result<Vec<SessionOutcome>, AgentError> {
    let state = StateDir::open(&opts.state)?;
    if let Some(file) = &opts.bootstrap {
        state.apply_bootstrap(file)?;
    }
    let dev_id = match &opts.dev_id {
        Some(id) => id.clone(),
        None => state.dev_id(machine_dev_id)?,
    };
    let mut accounts = state.accounts()?;
    if accounts.is_empty() {
        return Err(AgentError::NoAccounts);
    }
    if let Some(id) = &opts.server_id {
        if !accounts.iter().any(|a| &a.server_id == id) {
            return Err(AgentError::UnknownServer(id.clone()));
        }
    }
    let mut config = DeviceConfig::new(dev_id.clone());
    config.timeout = opts.timeout;
    let mut registry = crate::standard_registry(&dev_id);
    if let Some(dir) = &opts.plugins {
        // A refused plugin is reported; the device starts with the rest.
        for e in register_plugins(&mut registry, dir) {
            eprintln!("dmctl client: plugin refused: {e}");
        }
    }
    let mut device = Device::new(config, registry);
    if let Some(o) = observer {
        device.observe(o);
    }
    let mut outcomes = Vec::new();
    for i in 0..accounts.len() {
        let account = &accounts[i];
        if opts
            .server_id
            .as_ref()
            .is_some_and(|id| *id != account.server_id)
        {
            continue;
        }
        let initiation = if account.bootstrap_pending {
            Initiation::BootstrapComplete
        } else {
            Initiation::ClientInitiated
        };
        // MOS goes with BootstrapComplete, so a new server learns at once
        // what the device supports (5.2.2 allows it in any Package#1).
        let send_mos = initiation == Initiation::BootstrapComplete;
        let result = device
            .run_session(&account.server_uri, initiation, send_mos)
            .await;
        if result.is_ok() && account.bootstrap_pending {
            accounts[i].bootstrap_pending = false;
            state.save_accounts(&accounts)?;
        }
        outcomes.push(SessionOutcome {
            server_id: accounts[i].server_id.clone(),
            result,
        });
    }
    // Results of asynchronous EXECs go out in new sessions, one per
    // ServerURI, before the agent exits (spec 5.4.1).
    let pending = device.take_pending_alerts();
    let mut targets: Vec<&str> = Vec::new();
    for p in &pending {
        if !targets.contains(&p.server_uri.as_str()) {
            targets.push(&p.server_uri);
        }
    }
    for target in targets {
        let alerts = pending
            .iter()
            .filter(|p| p.server_uri == target)
            .map(|p| p.alert.clone())
            .collect();
        let result = device
            .run_session_with_alerts(target, Initiation::ClientInitiated, false, alerts)
            .await;
        outcomes.push(SessionOutcome {
            server_id: target.to_owned(),
            result,
        });
    }
    Ok(outcomes)
}

/// Loads the plugins in `dir` and registers each of their instances;
/// returns what was refused.
pub fn register_plugins(
    registry: &mut crate::Registry,
    dir: &std::path::Path,
) -> Vec<crate::plugins::PluginError> {
    let (plugins, mut errors) = crate::plugins::load_dir(dir, &registry.served_moids());
    for plugin in plugins {
        match plugin.instances() {
            Ok(miids) => {
                for miid in miids {
                    let instance =
                        crate::plugins::PluginInstance::new(plugin.clone(), miid.clone());
                    registry.insert(miid, Box::new(instance));
                }
            }
            Err(e) => errors.push(crate::plugins::PluginError::BadTable {
                path: plugin.path.clone(),
                reason: format!("instance list: {e}"),
            }),
        }
    }
    errors
}
