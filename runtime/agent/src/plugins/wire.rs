//! The pipe between the agent and a plugin host process: frames of a
//! 4-byte little-endian length, one kind byte and the payload, each at most
//! [`MAX_MESSAGE`] bytes, so that neither side allocates what the other
//! claims without a bound.

use std::io::{self, Read, Write};

/// The largest frame either side sends or accepts (payload and kind byte):
/// a response that claims more ends the host process (it is broken), and a
/// plugin's own response longer than this is refused without being read.
pub const MAX_MESSAGE: usize = 16 << 20;

/// The host's first frame: what it loaded, as JSON.
pub(crate) const HELLO: u8 = b'H';
/// A response to the request before it (one at a time).
pub(crate) const RESPONSE: u8 = b'R';
/// An event from the plugin's own threads.
pub(crate) const EVENT: u8 = b'E';
/// A request from the agent.
pub(crate) const REQUEST: u8 = b'Q';

/// Writes one frame.
pub(crate) fn write_frame(out: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = payload.len() + 1;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {len} bytes, the bound is {MAX_MESSAGE}"),
        ));
    }
    // One buffer, one write: a frame of at most PIPE_BUF bytes reaches the
    // pipe whole, and no other writer's frame lands in the middle.
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one frame: `None` at a clean end of the stream.
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes, the bound is {MAX_MESSAGE}"),
        ));
    }
    let mut kind = [0u8; 1];
    input.read_exact(&mut kind)?;
    let mut payload = vec![0u8; len - 1];
    input.read_exact(&mut payload)?;
    Ok(Some((kind[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_huge_length_is_refused_unread() {
        let mut buf = Vec::new();
        write_frame(&mut buf, RESPONSE, b"{\"ok\":1}").unwrap_or_else(|e| panic!("{e}"));
        let mut input = &buf[..];
        let frame = read_frame(&mut input).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frame, Some((RESPONSE, b"{\"ok\":1}".to_vec())));
        assert!(matches!(read_frame(&mut input), Ok(None)));
        // 1 TB claimed: an error, not an allocation.
        let mut huge = &(u32::MAX).to_le_bytes()[..];
        assert!(read_frame(&mut huge).is_err());
    }
}
