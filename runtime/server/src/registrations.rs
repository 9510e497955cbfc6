//! DEFAULT (spec 5.3.10) and SUB (5.3.11) registrations: each queues its
//! command and is remembered, so that dropping a SUB queues its UNSUB
//! (5.3.12).

use dm_core::{ClientUri, Command, ServerUri};

use crate::state::{lock, Core};
use crate::{RegistrationKind, ServerError};

impl Core {
    pub(crate) fn register(
        &self,
        dev_id: &str,
        kind: RegistrationKind,
        server_uri: &str,
    ) -> Result<u64, ServerError> {
        let server_uri = ServerUri::new(server_uri);
        let command = match &kind {
            RegistrationKind::Default { moid } => Command::Default {
                server_uri: server_uri.clone(),
                moid: moid.clone(),
            },
            RegistrationKind::Sub { client_uri } => Command::Sub {
                server_uri: server_uri.clone(),
                client_uri: client_uri
                    .parse()
                    .map_err(|e: dm_core::UriError| ServerError::BadRequest(e.to_string()))?,
            },
        };
        let _guard = lock(&self.session_lock);
        self.ensure_device(dev_id)?;
        self.storage.add_entry(dev_id, &command)?;
        Ok(self
            .storage
            .put_registration(dev_id, &kind, server_uri.as_str())?)
    }

    pub(crate) fn unregister(&self, dev_id: &str, id: u64) -> Result<(), ServerError> {
        let _guard = lock(&self.session_lock);
        let Some(reg) = self
            .storage
            .registrations(dev_id)?
            .into_iter()
            .find(|r| r.id == id)
        else {
            return Err(ServerError::NoRegistration(dev_id.to_owned(), id));
        };
        if let RegistrationKind::Sub { client_uri } = &reg.kind {
            // spec 5.3.12: the same ClientURI as the SUB.
            let client_uri: ClientUri = client_uri
                .parse()
                .map_err(|e: dm_core::UriError| ServerError::BadRequest(e.to_string()))?;
            self.storage
                .add_entry(dev_id, &Command::Unsub { client_uri })?;
        }
        self.storage.delete_registration(dev_id, id)?;
        Ok(())
    }
}
