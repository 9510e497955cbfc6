//! The pipe between the agent and a plugin host process: frames of a
//! 4-byte little-endian length, one kind byte and the payload, each at most
//! [`MAX_MESSAGE`] bytes, so that neither side allocates what the other
//! claims without a bound.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

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

/// Reads one frame, waiting for it until `deadline` at most
/// ([`io::ErrorKind::TimedOut`] then). A clean end is an error here: a
/// response was due.
pub(crate) fn read_frame_by(
    input: &mut (impl Read + AsFd),
    deadline: Instant,
) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    read_exact_by(input, &mut head, deadline)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes, the bound is {MAX_MESSAGE}"),
        ));
    }
    let mut payload = vec![0u8; len - 1];
    read_exact_by(input, &mut payload, deadline)?;
    Ok((head[4], payload))
}

fn read_exact_by(
    input: &mut (impl Read + AsFd),
    mut buf: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        if ms == 0 && left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let mut fd = libc::pollfd {
            fd: input.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fd, 1, ms.max(1)) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ready == 0 {
            continue;
        }
        match input.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
