//! The network frame service: how a network server (smoltcp) sends and
//! receives Ethernet frames through a network driver, in a
//! [`session`](crate::session), many frames a call.
//!
//! The buffer (`ATTACH`, at least [`MIN_BUFFER`]; answer `[OK, MAC
//! address (48 bits), MTU]`) is cut into slots of [`SLOT`] bytes, the
//! first half for received frames, the second for frames to send
//! ([`Layout`]). A slot holds a frame's length (two bytes, little-endian)
//! and the frame from byte [`FRAME_AT`] on. The client may subscribe a
//! notification (`SUBSCRIBE`, passing it), which the driver signals with
//! [`RX_READY`] when frames are waiting, so that it can sleep on it
//! between its own timers. `SEND n` transmits the frames in the first `n`
//! send slots, in order, after checking every length; `RECV n` does the
//! same (n may be 0), then fills receive slots from the first with the
//! frames waiting: a network server sends what it has and takes what came
//! in one call.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification to "frames waiting". Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// `[SEND, n, 0]`: transmit the frames in the first `n` send slots.
/// Answer: `[OK, n, 0]`; `BadFrame` (nothing sent) if a slot's length is
/// 0 or over [`MAX_FRAME`]; `TooLarge` if the buffer has fewer slots.
pub const SEND: u64 = SUBSCRIBE + 1;
/// `[RECV, n, 0]`: transmit the frames in the first `n` send slots (as
/// `SEND`; none if 0), then fill the receive slots with waiting frames.
/// Answer: `[OK, frames, 1 if more are waiting]`, or `[EMPTY, 0, 0]`.
pub const RECV: u64 = SUBSCRIBE + 2;

/// Bytes of a slot.
pub const SLOT: usize = 2048;
/// Where a slot's frame starts (after its length).
pub const FRAME_AT: usize = 2;
/// The smallest buffer: one slot each way.
pub const MIN_BUFFER: u64 = 2 * SLOT as u64;
/// Largest frame either way (Ethernet header and 1500 bytes of payload).
pub const MAX_FRAME: usize = 1514;
/// The notification bit that says frames are waiting.
pub const RX_READY: u64 = 1;

/// Where the slots of a buffer lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Slots each way.
    pub slots: usize,
}

impl Layout {
    /// The slots of a buffer of `bytes`.
    pub fn of(bytes: usize) -> Layout {
        Layout { slots: bytes / 2 / SLOT }
    }

    /// Byte offset of receive slot `i`.
    pub fn rx(self, i: usize) -> usize {
        i * SLOT
    }

    /// Byte offset of send slot `i`.
    pub fn tx(self, i: usize) -> usize {
        (self.slots + i) * SLOT
    }
}

/// Puts `frame` (at most [`MAX_FRAME`] bytes) in the slot at `slot`.
pub fn put(slot: &mut [u8], frame: &[u8]) {
    frame_of(slot, frame.len()).copy_from_slice(frame);
}

/// Writes the length `len` (at most [`MAX_FRAME`]) into the slot at
/// `slot`: where the frame's bytes go.
pub fn frame_of(slot: &mut [u8], len: usize) -> &mut [u8] {
    slot[..FRAME_AT].copy_from_slice(&(len as u16).to_le_bytes());
    &mut slot[FRAME_AT..FRAME_AT + len]
}

/// The frame in the slot at `slot`, if its length is a frame's.
pub fn get(slot: &[u8]) -> Option<&[u8]> {
    let len = u16::from_le_bytes([*slot.first()?, *slot.get(1)?]) as usize;
    if !(1..=MAX_FRAME).contains(&len) {
        return None;
    }
    slot.get(FRAME_AT..FRAME_AT + len)
}

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`SUBSCRIBE`].
    Subscribe,
    /// See [`SEND`]: how many frames.
    Send(usize),
    /// See [`RECV`]: how many frames to send first.
    Recv(usize),
    /// See [`DETACH`].
    Detach,
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Subscribe => [SUBSCRIBE, 0, 0],
            Request::Send(n) => [SEND, n as u64, 0],
            Request::Recv(n) => [RECV, n as u64, 0],
            Request::Detach => [DETACH, 0, 0],
        }
    }

    /// Decodes message words (a `SEND` of no frames is refused).
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [SUBSCRIBE, 0, 0] => Request::Subscribe,
            [SEND, n, 0] if n >= 1 => Request::Send(usize::try_from(n).map_err(|_| Status::TooLarge)?),
            [SEND, _, 0] => return Err(Status::BadFrame),
            [RECV, n, 0] => Request::Recv(usize::try_from(n).map_err(|_| Status::TooLarge)?),
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
    fn requests_round_trip_and_sends_carry_frames() {
        for r in [
            Request::Attach,
            Request::Subscribe,
            Request::Send(1),
            Request::Send(64),
            Request::Recv(0),
            Request::Recv(3),
            Request::Detach,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        assert_eq!(Request::decode([SEND, 0, 0]), Err(Status::BadFrame));
        for w in [[0, 0, 0], [RECV + 1, 0, 0], [RECV, 1, 1], [ATTACH, 0, 1], [SEND, 60, 1]] {
            assert_eq!(Request::decode(w), Err(Status::BadRequest), "{w:?}");
        }
    }

    #[test]
    fn slots_hold_frames_and_refuse_bad_lengths() {
        let l = Layout::of(64 * 1024);
        assert_eq!(l.slots, 16);
        assert_eq!((l.rx(0), l.rx(15), l.tx(0), l.tx(15)), (0, 15 * SLOT, 16 * SLOT, 31 * SLOT));
        assert_eq!(Layout::of(MIN_BUFFER as usize).slots, 1);
        assert_eq!(Layout::of(MIN_BUFFER as usize - 1).slots, 0);
        let mut slot = [0u8; SLOT];
        put(&mut slot, &[7; MAX_FRAME]);
        assert_eq!(get(&slot), Some(&[7u8; MAX_FRAME][..]));
        put(&mut slot, &[1, 2, 3]);
        assert_eq!(get(&slot), Some(&[1u8, 2, 3][..]));
        for bad in [0u16, MAX_FRAME as u16 + 1, u16::MAX] {
            slot[..2].copy_from_slice(&bad.to_le_bytes());
            assert_eq!(get(&slot), None, "length {bad}");
        }
        assert_eq!(get(&[5]), None);
    }

    #[test]
    fn mac_addresses_pack_into_a_word() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        assert_eq!(mac_to_word(mac), 0x5254_0012_3456);
        assert_eq!(mac_from_word(mac_to_word(mac)), mac);
    }
}
