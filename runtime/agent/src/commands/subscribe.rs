//! Subscriptions and default servers: SUB and UNSUB (5.3.11, 5.3.12),
//! DEFAULT (5.3.10), kept in the agent's state, and the notifications sent
//! to subscribers when an MO changes.

use dm_core::package::header;
use dm_core::{ClientUri, ServerUri, Status, StatusCode};
use hyper::Method;

use super::read::choose_format;
use super::status;
use super::transfer::home_server;
use crate::access::Principal;
use crate::client::{Device, SessionCtx};
use crate::store::Subscription;

impl Device {
    /// DEFAULT (5.3.10): one ServerURI per MOID, the newest replacing,
    /// with the server that registered it: its fetch may reach only that
    /// server's address range.
    pub(crate) fn cmd_default(
        &mut self,
        ctx: &SessionCtx,
        server_uri: &ServerUri,
        moid: &str,
    ) -> Status {
        let server_id = match &ctx.principal {
            Principal::Server(a) => Some(a.server_id.clone()),
            Principal::App(_) | Principal::Local => None,
        };
        let limit = self.config().limits.registrations_per_server;
        let state = self.agent_state_mut();
        if let Some(id) = &server_id {
            // A replacement for the same MOID does not grow the state.
            let held = state
                .default_servers
                .iter()
                .filter(|(m, s)| *s == id && *m != moid)
                .count();
            if held >= limit {
                tracing::warn!("DEFAULT refused: server {id:?} holds {held} (--max-registrations)");
                return status(StatusCode::SERVICE_UNAVAILABLE);
            }
        }
        state.defaults.retain(|(m, _)| m != moid);
        state
            .defaults
            .push((moid.to_owned(), server_uri.as_str().to_owned()));
        match server_id {
            Some(id) => state.default_servers.insert(moid.to_owned(), id),
            None => state.default_servers.remove(moid),
        };
        status(self.save_agent())
    }

    /// The HGET of the DEFAULT ServerURI registered for `moid` (5.3.10),
    /// run for `ctx` (a local application) with the repository addresses
    /// of the server that registered it (none once its account is gone);
    /// `None` when nothing is registered for `moid`.
    pub(crate) async fn fetch_default(&mut self, ctx: &SessionCtx, moid: &str) -> Option<Status> {
        let state = self.agent_state();
        let server_uri = state
            .defaults
            .iter()
            .find(|(m, _)| m == moid)
            .map(|(_, uri)| ServerUri::new(uri.clone()))?;
        let registrant = state
            .default_servers
            .get(moid)
            .and_then(|id| SessionCtx::for_server_id(self, Some(id)));
        let home = registrant.as_ref().and_then(home_server);
        Some(self.hget_for(ctx, home, &server_uri, None).await)
    }

    /// SUB (5.3.11): PUT the subtree to the ServerURI on every change.
    pub(crate) fn cmd_sub(
        &mut self,
        ctx: &SessionCtx,
        server_uri: &ServerUri,
        uri: &ClientUri,
    ) -> Status {
        if let Err(code) = self.read_nodes(ctx, uri) {
            return status(code);
        }
        let client_uri = uri.to_string();
        let server_id = match &ctx.principal {
            Principal::Server(a) => Some(a.server_id.clone()),
            Principal::App(_) | Principal::Local => None,
        };
        let limit = self.config().limits.registrations_per_server;
        let subscriptions = &mut self.agent_state_mut().subscriptions;
        subscriptions.retain(|s| !(s.client_uri == client_uri && s.server_id == server_id));
        let held = subscriptions
            .iter()
            .filter(|s| s.server_id == server_id)
            .count();
        if server_id.is_some() && held >= limit {
            tracing::warn!("SUB refused: server {server_id:?} holds {held} (--max-registrations)");
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        subscriptions.push(Subscription {
            server_id,
            client_uri,
            server_uri: server_uri.as_str().to_owned(),
        });
        status(self.save_agent())
    }

    /// UNSUB (5.3.12): the ClientURI of an earlier SUB, else 404.
    pub(crate) fn cmd_unsub(&mut self, ctx: &SessionCtx, uri: &ClientUri) -> Status {
        let client_uri = uri.to_string();
        let server_id = match &ctx.principal {
            Principal::Server(a) => Some(a.server_id.clone()),
            Principal::App(_) | Principal::Local => None,
        };
        let subscriptions = &mut self.agent_state_mut().subscriptions;
        let before = subscriptions.len();
        subscriptions.retain(|s| !(s.client_uri == client_uri && s.server_id == server_id));
        if subscriptions.len() == before {
            return status(StatusCode::NOT_FOUND);
        }
        status(self.save_agent())
    }

    /// Sends the subtree of every subscription whose MO changed (5.3.11):
    /// HTTP PUT, and once more with a type from `OMADM-Accept` on 415.
    pub(crate) async fn notify_subscribers(&mut self) {
        let changed = self.take_changed();
        if changed.is_empty() || self.agent_state().subscriptions.is_empty() {
            return;
        }
        let moids: Vec<String> = changed
            .iter()
            .filter_map(|i| {
                self.registry()
                    .instance(*i)
                    .map(|i| i.mo().schema().moid.to_owned())
            })
            .collect();
        for sub in self.agent_state().subscriptions.clone() {
            let Ok(uri) = sub.client_uri.parse::<ClientUri>() else {
                continue;
            };
            if !moids.iter().any(|m| m == uri.moid()) {
                continue;
            }
            // The subscriber's rights, or nothing once its account is gone.
            let Some(ctx) = SessionCtx::for_server_id(self, sub.server_id.as_deref()) else {
                continue;
            };
            let Ok(items) = self.read_nodes(&ctx, &uri) else {
                continue;
            };
            let target = ServerUri::new(sub.server_uri.clone()).resolve(&self.uri_params());
            // Only where the subscriber's own server may name (its range,
            // or --repository-allow): a refused address gets no PUT.
            let http = self.repository_http(home_server(&ctx)).await;
            let mut accept: Option<String> = None;
            for _attempt in 0..2 {
                let Some((content_type, body)) =
                    choose_format(&items, uri.has_wildcard(), accept.as_deref())
                else {
                    break;
                };
                let headers = [
                    ("Content-Type", content_type),
                    (header::DEV_ID, self.dev_id().to_owned()),
                ];
                let Ok(exchange) = http.call(Method::PUT, &target, &headers, body).await else {
                    break;
                };
                self.observe_exchange(&exchange);
                if crate::http::status_of(&exchange.response) != 415 {
                    break;
                }
                accept = exchange.response.header(header::ACCEPT).map(str::to_owned);
                if accept.is_none() {
                    break;
                }
            }
        }
    }
}
