//! EXEC (5.3.5), with its asynchronous report (5.4.1), and SHOW (5.3.7).

use dm_core::{
    AccessType, ClientUri, ExecOutcome, ExecRequest, Rights, ServerUri, Status, StatusCode,
};

use super::status;
use crate::access::Principal;
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
        // Where the report goes and as whom, decided before anything runs.
        let report_to = match server_uri {
            None => None,
            Some(target) => {
                let target = target.resolve(&self.uri_params());
                match self.alert_account(ctx, &target) {
                    Some(account) => Some((target, account)),
                    None => return status(StatusCode::FORBIDDEN),
                }
            }
        };
        let mut code = StatusCode::OK;
        for r in &resolved {
            let path = r.path.refs();
            let Some(instance) = self.registry().instance(r.instance) else {
                return status(StatusCode::NOT_FOUND);
            };
            let moid = instance.mo().schema().moid;
            let miid = instance.miid().to_owned();
            let node_uri = ClientUri::for_node(moid, &miid, &path);
            // spec 5.4.1: with a ServerURI the MO may finish later, through
            // this handle; its id is spent whatever the MO answers.
            let id = report_to.as_ref().map(|_| self.next_exec_id());
            let request = ExecRequest {
                asynchronous: server_uri.is_some(),
                completion: id.map(|id| self.completion(id)),
            };
            let Some(mo) = self.registry_mut().mo_mut(r.instance) else {
                return status(StatusCode::NOT_FOUND);
            };
            let result = mo.exec(&path, &request);
            let outcome = match &result {
                Ok(ExecOutcome::Done) => StatusCode::OK,
                Ok(ExecOutcome::Started) => StatusCode::ACCEPTED,
                Err(e) => e.status(),
            };
            // Started with a report address: the final status comes when
            // the MO finishes (crate::live), in a session of its own.
            if let (Some(id), Some((target, account)), StatusCode::ACCEPTED) =
                (id, &report_to, outcome)
            {
                let node = (
                    moid,
                    miid.as_str(),
                    path.iter().map(|s| (*s).to_owned()).collect(),
                );
                if !self.keep_pending_exec(id, node, target.clone(), account.clone()) {
                    return status(self.refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "{} EXECs already pending (MAX_PENDING_EXECS)",
                            crate::live::MAX_PENDING_EXECS
                        ),
                    ));
                }
                self.registry_mut().touch(r.instance);
                let _ = self.save(r.instance);
                self.mark_changed(r.instance);
                code = StatusCode::ACCEPTED;
                continue;
            }
            if result.is_ok() {
                // An Exec may change data (DCMO's Enabled): keep it.
                self.registry_mut().touch(r.instance);
                let _ = self.save(r.instance);
                self.mark_changed(r.instance);
            }
            match &report_to {
                Some((target, account)) => {
                    // Done (or failed) at once: the alert carries that.
                    let report = dm_core::ExecReport::status(outcome);
                    let alert = crate::live::exec_alert(moid, node_uri, &report);
                    self.queue_alert(PendingAlert {
                        server_uri: target.clone(),
                        account: account.clone(),
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

    /// The DMAcc account (MIID) whose session carries the report of an
    /// EXEC to `target`, or `None` when the EXEC is refused (403).
    ///
    /// A session a server causes runs as that server (its Perm list, its
    /// DACMO rights, its credentials), never as the device; and it goes
    /// only to that server's own origin (scheme, host and port of its
    /// SrvURI): spec 5.3.5 lets the ServerURI name any path there, but a
    /// report to another origin would hand the issuer's credentials, and a
    /// session, to a host no bootstrap named. Refusing it is the choice
    /// made here (docs/architecture.md "Who owns what"). A command of the
    /// device itself (bootstrap, a test harness) reports to the account
    /// whose SrvURI has that origin, if there is one.
    fn alert_account(&self, ctx: &SessionCtx, target: &str) -> Option<String> {
        let origin = crate::tls::origin(target)?;
        let same = |a: &crate::access::ServerAccount| {
            crate::tls::origin(&a.server_uri).as_deref() == Some(origin.as_str())
        };
        match &ctx.principal {
            Principal::Server(a) => same(a).then(|| a.miid.clone()),
            Principal::Local => self.accounts().into_iter().find(same).map(|a| a.miid),
            Principal::App(_) => None,
        }
    }

    /// SHOW (5.3.7): start the Web Browser Component (`--show-cmd`) on the
    /// ServerURI and go on without waiting for the UI session. Only an
    /// http(s) URI reaches the browser, after `--`, so that it is never
    /// read as an option; anything else is 400 (Appendix C: malformed
    /// syntax in the command) and nothing runs.
    pub(crate) fn cmd_show(&mut self, server_uri: &ServerUri) -> Status {
        let uri = server_uri.resolve(&self.uri_params());
        if let Err(refused) = browser_uri(&uri) {
            tracing::warn!("dmctl client: {refused}");
            return status(StatusCode::BAD_REQUEST);
        }
        let Some(cmd) = self.show_cmd() else {
            // No browser component on this device.
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let mut words = cmd.split_whitespace();
        let Some(program) = words.next() else {
            return status(StatusCode::NOT_IMPLEMENTED);
        };
        let spawned = std::process::Command::new(program)
            .args(words)
            .arg("--")
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

/// Why a SHOW's ServerURI does not go to the browser.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum ShowRefused {
    #[error("SHOW refused: ServerURI {uri:?} is not a URI: {reason}")]
    NotAUri { uri: String, reason: String },
    #[error("SHOW refused: ServerURI {uri:?} is not http:// or https://")]
    Scheme { uri: String },
    #[error("SHOW refused: ServerURI {uri:?} names no host")]
    NoHost { uri: String },
}

/// Checks that `uri` is an absolute http(s) URI with a host (5.3.7: the
/// browser loads a web page of the Web Server Component): never a local
/// file, a script, or a word the browser would read as an option.
fn browser_uri(uri: &str) -> Result<(), ShowRefused> {
    let parsed: hyper::Uri =
        uri.parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ShowRefused::NotAUri {
                uri: uri.to_owned(),
                reason: e.to_string(),
            })?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(ShowRefused::Scheme {
            uri: uri.to_owned(),
        });
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(ShowRefused::NoHost {
            uri: uri.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_uris_with_a_host_go_to_the_browser() {
        for ok in [
            "https://x/y",
            "http://127.0.0.1:8080/ui?uiid=1234",
            "HTTPS://Example.COM",
            "https://[::1]/ui",
        ] {
            assert_eq!(browser_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "--some-flag",
            "-x",
            "file:///etc/shadow",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/ui?uiid=1",
            "https://",
            "https://x/y z",
            "",
        ] {
            assert!(browser_uri(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            browser_uri("ftp://x/y"),
            Err(ShowRefused::Scheme { .. })
        ));
    }
}
