//! The file protocol on a byte stream: each message is preceded by its
//! u32 length. File data is written and read without intermediate copies.

use crate::proto::{ProtoError, Response, MAX_MESSAGE, MAX_READ};
use std::io::{self, Read, Write};

/// Writes one length-prefixed message.
pub fn send(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    w.write_all(&(msg.len() as u32).to_le_bytes())?;
    w.write_all(msg)?;
    w.flush()
}

/// Writes a response; file data goes straight from `data` to the stream
/// (same bytes as `send(w, &resp.encode())`, one copy fewer).
pub fn send_response(w: &mut impl Write, resp: &Response) -> io::Result<()> {
    match resp {
        Response::Data(d) => {
            let mut head = [0u8; 9];
            head[..4].copy_from_slice(&((d.len() + 5) as u32).to_le_bytes());
            head[4] = 4;
            head[5..].copy_from_slice(&(d.len() as u32).to_le_bytes());
            w.write_all(&head)?;
            w.write_all(d)?;
            w.flush()
        }
        r => send(w, &r.encode()),
    }
}

/// Reads one response; file data is read straight into its own buffer.
/// `Ok(None)` at a clean end of stream; malformed input is `InvalidData`.
pub fn recv_response(r: &mut impl Read) -> io::Result<Option<Result<Response, ProtoError>>> {
    let Some(len) = read_len(r)? else { return Ok(None) };
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty message"));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    if tag[0] == 4 && len >= 5 {
        let mut n = [0u8; 4];
        r.read_exact(&mut n)?;
        let n = u32::from_le_bytes(n) as usize;
        if n != len - 5 || n > MAX_READ as usize {
            return Ok(Some(Err(ProtoError("data length does not match the message"))));
        }
        let mut data = vec![0u8; n];
        r.read_exact(&mut data)?;
        return Ok(Some(Ok(Response::Data(data))));
    }
    let mut buf = vec![0u8; len];
    buf[0] = tag[0];
    r.read_exact(&mut buf[1..])?;
    Ok(Some(Response::decode(&buf)))
}

/// Reads a message's length prefix; `Ok(None)` at a clean end of stream,
/// `InvalidData` above [`MAX_MESSAGE`].
fn read_len(r: &mut impl Read) -> io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "message too large"));
    }
    Ok(Some(len))
}

/// Reads one length-prefixed message; `Ok(None)` at a clean end of stream.
pub fn recv(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_len(r)? else { return Ok(None) };
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing_matches_encode() {
        for resp in [Response::Data(vec![1, 2, 3]), Response::Data(vec![]), Response::Link("x".into()), Response::Done]
        {
            let mut fast = Vec::new();
            send_response(&mut fast, &resp).unwrap();
            let mut plain = Vec::new();
            send(&mut plain, &resp.encode()).unwrap();
            assert_eq!(fast, plain);
            assert_eq!(recv_response(&mut &fast[..]).unwrap().unwrap(), Ok(resp));
        }
        // A Data header whose inner length disagrees with the frame.
        let mut bad = Vec::new();
        send(&mut bad, &[4, 9, 0, 0, 0, 1]).unwrap();
        assert!(recv_response(&mut &bad[..]).unwrap().unwrap().is_err());
        assert!(recv_response(&mut &[0u8, 0, 0, 0][..]).is_err(), "zero-length frame");
    }

    #[test]
    fn framing() {
        let mut buf = Vec::new();
        send(&mut buf, b"hello").unwrap();
        send(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(recv(&mut r).unwrap(), Some(b"hello".to_vec()));
        assert_eq!(recv(&mut r).unwrap(), Some(vec![]));
        assert_eq!(recv(&mut r).unwrap(), None);
        let huge = ((MAX_MESSAGE + 1) as u32).to_le_bytes();
        assert!(recv(&mut &huge[..]).is_err());
    }
}
