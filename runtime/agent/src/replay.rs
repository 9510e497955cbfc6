//! Duplicate and replay detection of DM Notifications by NOTIFICATION-ID,
//! per server (spec 5.2.1.2: "the duplication can be detected by this
//! Option and the Server Identifier of the DM Server"; the server "may
//! sequentially increase this field").
//!
//! Each server has its own sliding window, as IPsec's anti-replay window
//! (RFC 4303 3.4.3): a bitmap of the last [`WINDOW`] IDs up to the
//! newest accepted. A newer ID moves the window; an ID inside it is
//! accepted once; an ID older than the window is refused. The IDs are
//! 16 bits and wrap: "newer" is serial-number arithmetic (RFC 1982), up to
//! half the ID space ahead. So without TIMESTAMP a captured notification
//! stays refused until its server has sent 32,768 more; notifications of
//! other servers never push it out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many IDs, the newest included, the window spans: the older ones
/// in it are still accepted once (late, reordered datagrams). A server
/// that skips more between two notifications to this device only loses
/// the older one, which a session started by the newer one made redundant.
pub const WINDOW: u16 = 64;

/// IDs at most this far ahead of the newest are newer; farther ones are
/// older (RFC 1982 serial number arithmetic on 16 bits).
const HALF: u16 = 0x8000;

/// One server's window, kept in the agent state across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationWindow {
    /// The newest NOTIFICATION-ID accepted from the server.
    pub newest: u16,
    /// Bit `i` set: ID `newest - i` was accepted (bit 0 is `newest`).
    pub seen: u64,
}

/// Why an ID is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    #[error("NOTIFICATION-ID {0} already seen")]
    Seen(u16),
    #[error(
        "NOTIFICATION-ID {id} older than the last {WINDOW} up to {newest}: a replay or too late"
    )]
    TooOld { id: u16, newest: u16 },
}

impl NotificationWindow {
    /// The window after a server's first notification.
    pub fn first(id: u16) -> NotificationWindow {
        NotificationWindow {
            newest: id,
            seen: 1,
        }
    }

    /// Accepts `id` once: records it, or says why it is refused.
    pub fn accept(&mut self, id: u16) -> Result<(), Replay> {
        let ahead = id.wrapping_sub(self.newest);
        if ahead == 0 {
            return Err(Replay::Seen(id));
        }
        if ahead < HALF {
            self.seen = self.seen.checked_shl(u32::from(ahead)).unwrap_or(0) | 1;
            self.newest = id;
            return Ok(());
        }
        let behind = self.newest.wrapping_sub(id);
        if behind >= WINDOW {
            return Err(Replay::TooOld {
                id,
                newest: self.newest,
            });
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            return Err(Replay::Seen(id));
        }
        self.seen |= bit;
        Ok(())
    }
}

/// Accepts `id` from `server` in `windows` (the agent state's map).
pub fn accept(
    windows: &mut BTreeMap<String, NotificationWindow>,
    server: &str,
    id: u16,
) -> Result<(), Replay> {
    match windows.get_mut(server) {
        Some(w) => w.accept(id),
        None => {
            windows.insert(server.to_owned(), NotificationWindow::first(id));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_once_newer_ones_move_the_window_older_ones_are_refused() {
        let mut w = NotificationWindow::first(100);
        assert_eq!(w.accept(100), Err(Replay::Seen(100)));
        assert_eq!(w.accept(103), Ok(()));
        // Late ones inside the window, once.
        assert_eq!(w.accept(101), Ok(()));
        assert_eq!(w.accept(101), Err(Replay::Seen(101)));
        assert_eq!(w.accept(100), Err(Replay::Seen(100)));
        assert_eq!(w.accept(102), Ok(()));
        // 103 - 64 = 39 is just outside.
        assert_eq!(w.accept(40), Ok(()));
        assert_eq!(
            w.accept(39),
            Err(Replay::TooOld {
                id: 39,
                newest: 103
            })
        );
        // A jump farther than the window forgets the bitmap, not the order.
        assert_eq!(w.accept(1000), Ok(()));
        assert_eq!(w.seen, 1);
        assert_eq!(
            w.accept(103),
            Err(Replay::TooOld {
                id: 103,
                newest: 1000
            })
        );
    }

    #[test]
    fn ids_wrap_around_16_bits() {
        let mut w = NotificationWindow::first(65_534);
        assert_eq!(w.accept(65_535), Ok(()));
        assert_eq!(w.accept(0), Ok(()));
        assert_eq!(w.accept(1), Ok(()));
        assert_eq!(w.newest, 1);
        assert_eq!(w.accept(65_535), Err(Replay::Seen(65_535)));
        assert_eq!(
            w.accept(65_533),
            Ok(()),
            "inside the window across the wrap"
        );
        assert_eq!(
            w.accept(65_000),
            Err(Replay::TooOld {
                id: 65_000,
                newest: 1
            })
        );
        // Half the ID space ahead is still newer; one more is older.
        assert_eq!(w.accept(1 + 0x7FFF), Ok(()));
        let mut v = NotificationWindow::first(0);
        assert!(matches!(v.accept(0x8000), Err(Replay::TooOld { .. })));
    }

    #[test]
    fn servers_have_their_own_windows() {
        let mut windows = BTreeMap::new();
        assert_eq!(accept(&mut windows, "A", 5), Ok(()));
        for id in 1..=300 {
            assert_eq!(accept(&mut windows, "B", id), Ok(()));
        }
        assert_eq!(accept(&mut windows, "A", 5), Err(Replay::Seen(5)));
        assert_eq!(accept(&mut windows, "A", 6), Ok(()));
    }
}
