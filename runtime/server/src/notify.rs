//! DM Notifications from the server (spec 5.2.1): a device's `Auth/Noti`
//! settings, and the signed Package#0 sent to it over UDP (E.3).

use dm_core::notification::{self, Notification};

use crate::state::{lock, Core};
use crate::{now, NotificationConfig, NotifyRequest, ServerError};

impl Core {
    pub(crate) fn configure_notification(
        &self,
        dev_id: &str,
        config: NotificationConfig,
    ) -> Result<(), ServerError> {
        let _guard = lock(&self.session_lock);
        let mut row = self.ensure_device(dev_id)?;
        row.notification = Some(config);
        self.storage.put_device(&row)?;
        Ok(())
    }

    /// Builds, signs and sends a Package#0 (spec 5.2.1, 7.1) with the
    /// encoder `dmctl notify` uses.
    pub(crate) async fn notify(
        &self,
        dev_id: &str,
        request: &NotifyRequest,
    ) -> Result<u16, ServerError> {
        let (bytes, to, id) = {
            let _guard = lock(&self.session_lock);
            let mut row = self
                .storage
                .device(dev_id)?
                .ok_or_else(|| ServerError::NoDevice(dev_id.to_owned()))?;
            let config = row.notification.clone().ok_or_else(|| {
                ServerError::BadRequest(format!("{dev_id}: no notification configuration"))
            })?;
            let to = request.to.clone().or(config.udp.clone()).ok_or_else(|| {
                ServerError::BadRequest(format!("{dev_id}: no UDP address to notify"))
            })?;
            // NOTIFICATION-ID increases per device (wrapping), so the
            // device's duplicate check never drops a new one.
            let id = row.last_notification_id.map_or(1, |n| n.wrapping_add(1));
            let n = Notification {
                server_id: Some(config.server_id.clone()),
                preferred_con_types: (!request.preferred_con_types.is_empty())
                    .then(|| request.preferred_con_types.clone()),
                notification_id: Some(id),
                digest: None,
                timestamp: request.timestamp.then(now),
                req_mos: request.req_mos,
                unknown: Vec::new(),
            };
            let encoded = match &config.secret {
                Some(secret) => notification::encode_signed(&n, secret, &config.auth_data),
                None => n.encode(),
            }
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
            row.last_notification_id = Some(id);
            self.storage.put_device(&row)?;
            (encoded, to, id)
        };
        send_notification(&to, &bytes).await?;
        Ok(id)
    }
}

/// Sends `bytes` as one datagram to the first address `to` resolves to,
/// from an ephemeral port of the same address family.
pub async fn send_notification(to: &str, bytes: &[u8]) -> std::io::Result<std::net::SocketAddr> {
    let addr = tokio::net::lookup_host(to).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolves to nothing",
        )
    })?;
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    let sent = socket.send_to(bytes, addr).await?;
    if sent != bytes.len() {
        return Err(std::io::Error::other(format!(
            "only {sent} of {} bytes sent",
            bytes.len()
        )));
    }
    Ok(addr)
}
