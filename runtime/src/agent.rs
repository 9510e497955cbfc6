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
    let mut device = Device::new(config, crate::standard_registry(&dev_id));
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
        let result = device
            .run_session(&account.server_uri, initiation, false)
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
    Ok(outcomes)
}
