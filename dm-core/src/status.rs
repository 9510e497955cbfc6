//! Response status codes for DM commands (spec Appendix C).

use std::fmt;

/// A DM command status code (Appendix C). The standard codes are associated
/// constants; 1000-1999 are application specific and carried as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    pub const OK: StatusCode = StatusCode(200);
    pub const ACCEPTED: StatusCode = StatusCode(202);
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const COMMAND_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    pub const SERVER_URI_ERROR: StatusCode = StatusCode(419);
    pub const INTERNAL_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const DEVICE_FULL: StatusCode = StatusCode(506);
    pub const USER_REJECTED: StatusCode = StatusCode(507);

    const STANDARD: [(u16, &'static str); 16] = [
        (200, "OK"),
        (202, "Accepted"),
        (204, "No Content"),
        (304, "Not Modified"),
        (400, "Bad Request"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (405, "Command Not Allowed"),
        (406, "Not Acceptable"),
        (415, "Unsupported Media Type"),
        (419, "ServerURI Error"),
        (500, "Internal Error"),
        (501, "Not Implemented"),
        (503, "Service Unavailable"),
        (506, "Device Full"),
        (507, "User Rejected"),
    ];

    /// A status code from its number: a standard code of Appendix C or an
    /// application-specific one (1000-1999). Other numbers are not valid
    /// DM statuses ("The only valid values are the standard values").
    pub fn from_u16(code: u16) -> Option<StatusCode> {
        let standard = StatusCode::STANDARD.iter().any(|(c, _)| *c == code);
        (standard || (1000..=1999).contains(&code)).then_some(StatusCode(code))
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// The label of Appendix C, or "Application Specific".
    pub fn label(self) -> &'static str {
        StatusCode::STANDARD
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, l)| *l)
            .unwrap_or("Application Specific")
    }

    /// True for the 2xx class (and application-specific 12xx).
    pub const fn is_success(self) -> bool {
        matches!(self.0, 200..=299 | 1200..=1299)
    }
}

impl fmt::Debug for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusCode({})", self.0)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_appendix_c_codes_are_valid() {
        assert_eq!(
            StatusCode::from_u16(419),
            Some(StatusCode::SERVER_URI_ERROR)
        );
        assert_eq!(
            StatusCode::from_u16(1404).map(|s| s.label()),
            Some("Application Specific")
        );
        assert_eq!(StatusCode::from_u16(201), None);
        assert_eq!(StatusCode::from_u16(2000), None);
        assert_eq!(
            StatusCode::NOT_IMPLEMENTED.to_string(),
            "501 Not Implemented"
        );
        assert!(StatusCode::ACCEPTED.is_success());
        assert!(!StatusCode::NOT_MODIFIED.is_success());
    }
}
