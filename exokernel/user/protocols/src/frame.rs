//! The network frame service: how a network server (smoltcp) sends and
//! receives Ethernet frames through a network driver, in a
//! [`session`](crate::session).
//!
//! The buffer (`ATTACH`, at least [`MIN_BUFFER`]; answer `[OK, MAC
//! address (48 bits), MTU]`): received frames land at its start, frames to
//! send are put at [`TX_OFFSET`]. The client may subscribe a notification
//! (`SUBSCRIBE`, passing it), which the driver signals with [`RX_READY`]
//! when frames are waiting, so that it can sleep on it between its own
//! timers. `RECV` hands over the next frame (or `Empty`), `SEND`
//! transmits one.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification to "frames waiting". Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// `[SEND, len, 0]`: transmit the `len`-byte frame at [`TX_OFFSET`].
pub const SEND: u64 = SUBSCRIBE + 1;
/// Take the next received frame into the buffer's start. Answer: `[OK,
/// len, 1 if more are waiting]`, or `[EMPTY, 0, 0]`.
pub const RECV: u64 = SUBSCRIBE + 2;

/// Where frames to send go in the buffer.
pub const TX_OFFSET: usize = 4096;
/// The smallest buffer: one page for a received frame, one for a frame to send.
pub const MIN_BUFFER: u64 = 8192;
/// Largest frame either way (Ethernet header and 1500 bytes of payload).
pub const MAX_FRAME: usize = 1514;
/// The notification bit that says frames are waiting.
pub const RX_READY: u64 = 1;

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`SUBSCRIBE`].
    Subscribe,
    /// See [`SEND`].
    Send(usize),
    /// See [`RECV`].
    Recv,
    /// See [`DETACH`].
    Detach,
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Subscribe => [SUBSCRIBE, 0, 0],
            Request::Send(len) => [SEND, len as u64, 0],
            Request::Recv => [RECV, 0, 0],
            Request::Detach => [DETACH, 0, 0],
        }
    }

    /// Decodes message words, checking a frame's length.
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [SUBSCRIBE, 0, 0] => Request::Subscribe,
            [SEND, len, 0] if (1..=MAX_FRAME as u64).contains(&len) => Request::Send(len as usize),
            [SEND, _, 0] => return Err(Status::BadFrame),
            [RECV, 0, 0] => Request::Recv,
            [DETACH, 0, 0] => Request::Detach,
            _ => return Err(Status::BadRequest),
        })
    }
}

/// A MAC address packed in a message word, and back.
pub fn mac_to_word(mac: [u8; 6]) -> u64 {
    mac.iter().fold(0, |w, b| w << 8 | *b as u64)
}

/// See [`mac_to_word`].
pub fn mac_from_word(w: u64) -> [u8; 6] {
    core::array::from_fn(|i| (w >> (8 * (5 - i))) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_frames_are_bounded() {
        for r in [
            Request::Attach,
            Request::Subscribe,
            Request::Send(60),
            Request::Send(MAX_FRAME),
            Request::Recv,
            Request::Detach,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        assert_eq!(Request::decode([SEND, 0, 0]), Err(Status::BadFrame));
        assert_eq!(Request::decode([SEND, MAX_FRAME as u64 + 1, 0]), Err(Status::BadFrame));
        for w in [[0, 0, 0], [RECV + 1, 0, 0], [RECV, 1, 0], [ATTACH, 0, 1], [SEND, 60, 1]] {
            assert_eq!(Request::decode(w), Err(Status::BadRequest), "{w:?}");
        }
    }

    #[test]
    fn mac_addresses_pack_into_a_word() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        assert_eq!(mac_to_word(mac), 0x5254_0012_3456);
        assert_eq!(mac_from_word(mac_to_word(mac)), mac);
    }
}
