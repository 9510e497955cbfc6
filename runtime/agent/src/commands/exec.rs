//! EXEC (5.3.5), with its asynchronous report (5.4.1), and SHOW (5.3.7).

use dm_core::{
    AccessType, Alert, ClientUri, ExecOutcome, ExecRequest, Rights, ServerUri, Status, StatusCode,
};

use super::status;
use crate::client::{Device, PendingAlert, SessionCtx};

impl Device {
    /// EXEC (5.3.5): every node must allow Exec (405) and the server needs
    /// the Execute right (403). With a ServerURI the result is reported
    /// asynchronously: 202 now, a Generic Alert in a new session (5.4.1).
    pub(crate) fn cmd_exec(
        &mut self,
        ctx: &SessionCtx,
        uri: &ClientUri,
        server_uri: Option<&ServerUri>,
    ) -> Status {
        let resolved = match self.resolve_for(ctx, uri) {
            Ok(r) => r,
            Err(code) => return status(code),
        };
        for r in &resolved {
            if !self
                .registry()
                .schema_at(r.instance, r.path.names())
                .is_some_and(|s| s.access.contains(AccessType::EXEC))
            {
                return status(StatusCode::COMMAND_NOT_ALLOWED);
            }
            if !self.rights_on(ctx, r).contains(Rights::EXECUTE) {
                return status(StatusCode::FORBIDDEN);
            }
        }
        let request = ExecRequest {
            asynchronous: server_uri.is_some(),
        };
        let mut code = StatusCode::OK;
        for r in &resolved {
            let path = r.path.refs();
            let Some(instance) = self.registry().instance(r.instance) else {
                return status(StatusCode::NOT_FOUND);
            };
            let moid = instance.mo().schema().moid;
            let node_uri = ClientUri::for_node(moid, instance.miid(), &path);
            let Some(mo) = self.registry_mut().mo_mut(r.instance) else {
                return status(StatusCode::NOT_FOUND);
            };
            let result = mo.exec(&path, &request);
            let outcome = match &result {
                Ok(ExecOutcome::Done) => StatusCode::OK,
                Ok(ExecOutcome::Started) => StatusCode::ACCEPTED,
                Err(e) => e.status(),
            };
            if result.is_ok() {
                // An Exec may change data (DCMO's Enabled): keep it.
                self.registry_mut().touch(r.instance);
                let _ = self.save(r.instance);
                self.mark_changed(r.instance);
            }
            match server_uri {
                Some(target) => {
                    let mut alert = Alert::new(crate::client::operation_complete_alert(moid));
                    alert.source_uri = Some(node_uri);
                    alert.data_type = Some("application/json".into());
                    alert.data = Some(serde_json::json!({ "sc": outcome.as_u16() }));
                    self.queue_alert(PendingAlert {
                        server_uri: target.resolve(&self.uri_params()),
                        alert,
                    });
                    code = StatusCode::ACCEPTED;
                }
                None if !outcome.is_success() => return status(outcome),
                None if outcome == StatusCode::ACCEPTED => code = outcome,
                None => {}
            }
        }
        status(code)
    }

    /// SHOW (5.3.7): start the Web Browser Component (`--show-cmd`) on the
    /// ServerURI and go on without waiting for the UI session.
    pub(crate) fn cmd_show(&mut self, server_uri: &ServerUri) -> Status {
        let Some(cmd) = self.show_cmd() else {
            // No browser component on this device.
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let uri = server_uri.resolve(&self.uri_params());
        let mut words = cmd.split_whitespace();
        let Some(program) = words.next() else {
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let spawned = std::process::Command::new(program)
            .args(words)
            .arg(&uri)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reap it in the background so it never lingers as a zombie.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                status(StatusCode::OK)
            }
            Err(_) => status(StatusCode::INTERNAL_ERROR),
        }
    }
}
