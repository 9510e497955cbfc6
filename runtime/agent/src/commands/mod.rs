//! The twelve DM commands (spec 5.3) as the device executes them, with the
//! statuses of Appendix C: [`Device::execute`] dispatches one command of a
//! Package#2 to the module of its concern.
//!
//! - [`resolve`]: which nodes a ClientURI addresses for the principal
//!   (6.1.2), 403 or 404 when none.
//! - [`read`]: GET, and the reads behind HPUT, HPOST, SUB and the local API.
//! - [`transfer`]: HGET, HPUT and HPOST, over HTTP to a Data Repository.
//! - [`write`]: writes with their checks and persistence, DELETE, new
//!   instances.
//! - [`exec`]: EXEC and SHOW.
//! - [`subscribe`]: SUB, UNSUB and DEFAULT, and notifying subscribers.
//!
//! Before a command touches a node the device checks, for every node
//! involved, the DDF access type (405 when the node does not allow the
//! operation) and the server's rights (403), in that order.

mod exec;
mod read;
mod resolve;
mod subscribe;
mod transfer;
mod write;

use dm_core::multipart::ResponseWriter;
use dm_core::{Command, Status, StatusCode};
use hyper::Method;

use crate::client::{Device, SessionCtx};

pub(crate) use read::ReadNode;

fn status(code: StatusCode) -> Status {
    Status::new(code)
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

impl Device {
    /// Executes one command of a Package#2.
    pub(crate) async fn execute(
        &mut self,
        ctx: &SessionCtx,
        index: usize,
        command: &Command,
        session_uri: &mut String,
        response: &mut ResponseWriter,
    ) -> Status {
        match command {
            Command::Get { client_uri } => self.cmd_get(ctx, index, client_uri, response),
            Command::Hget {
                server_uri,
                client_uri,
            } => self.cmd_hget(ctx, server_uri, client_uri.as_ref()).await,
            Command::Hput {
                server_uri,
                client_uris,
            } => {
                self.cmd_send(ctx, Method::PUT, server_uri, client_uris)
                    .await
            }
            Command::Hpost {
                server_uri,
                client_uris,
            } => {
                self.cmd_send(ctx, Method::POST, server_uri, client_uris)
                    .await
            }
            Command::Delete { client_uri } => self.cmd_delete(ctx, client_uri),
            Command::Exec {
                client_uri,
                server_uri,
            } => self.cmd_exec(ctx, client_uri, server_uri.as_ref()),
            Command::Show { server_uri } => self.cmd_show(server_uri),
            Command::Cont { server_uri } => {
                // spec 5.3.8: the rest of the session goes there.
                *session_uri = server_uri.resolve(&self.uri_params());
                Status::new(StatusCode::OK)
            }
            Command::Default { server_uri, moid } => self.cmd_default(ctx, server_uri, moid),
            Command::Sub {
                server_uri,
                client_uri,
            } => self.cmd_sub(ctx, server_uri, client_uri),
            Command::Unsub { client_uri } => self.cmd_unsub(ctx, client_uri),
            // Handled by the session loop.
            Command::End => Status::new(StatusCode::OK),
        }
    }
}

/// A device to run commands on in tests.
#[cfg(test)]
mod test_device {
    use crate::client::Device;

    /// A device with the standard MOs and a DMAcc account per SrvID in
    /// `ids` (Perm list `*`), bootstrapped from a factory file.
    pub(crate) fn with_accounts(ids: &[&str]) -> Device {
        let mut device = Device::new(
            crate::client::DeviceConfig::new("IMEI:1"),
            crate::standard_registry("IMEI:1"),
        );
        let accounts: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!({
                    "ClientURI": format!("urn:oma:mo:oma-dm-dmacc:1.2/{id}/"),
                    "MOData": { *id: {
                        "SrvID": id, "SrvURI": "https://dm.example/dm", "Name": id,
                        "Perm": { "p0": { "MOID": "*" } },
                    } }
                })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bootstrap.json");
        std::fs::write(&file, serde_json::Value::from(accounts).to_string()).unwrap();
        crate::service::apply_bootstrap(&mut device, &file).unwrap();
        device
    }
}
