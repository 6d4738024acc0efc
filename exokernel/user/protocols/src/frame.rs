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
//!
//! Received frames need not be copied: a client that asks `LEND` gets a
//! read-only capability to the driver's receive memory, where the device
//! puts frames, and from then on `RECV` writes where each frame lies
//! there ([`lent`]) instead of the frame: one entry of [`lent::ENTRY`]
//! bytes a frame, packed from the start of the receive half
//! ([`Layout::lent`]), so that a whole batch is read from one page rather
//! than one slot each (under emulation every page touched after an
//! address-space switch costs a TLB refill). Lent
//! frames stay as they are until the client's next `RECV` (or `DETACH`),
//! when the driver gives their memory back to the device: the client
//! reads them before it asks again.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification to "frames waiting". Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// `[SEND, n, 0]`: transmit the frames in the first `n` send slots.
/// Answer: `[OK, n, 0]`; `BadFrame` (nothing sent) if a slot's length is
/// 0 or over [`MAX_FRAME`]; `TooLarge` if the buffer has fewer slots.
pub const SEND: u64 = SUBSCRIBE + 1;
/// `[RECV, n, 0]`: transmit the frames in the first `n` send slots (as
/// `SEND`; none if 0), then fill the receive slots with waiting frames.
/// Answer: `[OK, frames, flags]` ([`MORE`], [`LENT`]), or `[EMPTY, 0, 0]`.
pub const RECV: u64 = SUBSCRIBE + 2;
/// `RECV` answer flag: more frames are waiting.
pub const MORE: u64 = 1;
/// `RECV` answer flag: the receive half holds where the frames lie in the
/// receive memory ([`lent`], [`Layout::lent`]) rather than the frames.
pub const LENT: u64 = 2;

/// `[LEND, 0, 0]`: lend received frames from now on. Answer: `[OK, bytes
/// of the receive memory, 0]` with a read-only capability to it.
pub const LEND: u64 = SUBSCRIBE + 3;

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

    /// Byte offset of the entry of lent frame `i` ([`lent`]): packed,
    /// [`lent::ENTRY`] bytes each, from the start of the receive half.
    pub fn lent(self, i: usize) -> usize {
        i * lent::ENTRY
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
    /// See [`LEND`].
    Lend,
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
            Request::Lend => [LEND, 0, 0],
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
            [LEND, 0, 0] => Request::Lend,
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

/// Lent frames: a receive slot says where its frame lies in the driver's
/// receive memory, as the offset (four bytes, little-endian) and the
/// length (two bytes).
pub mod lent {
    use super::MAX_FRAME;

    /// Bytes of an entry: the frame's offset (four bytes, little-endian),
    /// its length (two) and two unused. A receive half holds one for each
    /// of its slots, since `SLOT` is larger.
    pub const ENTRY: usize = 8;

    /// Writes where a frame lies into the entry at `slot`.
    pub fn put(slot: &mut [u8], offset: u32, len: u16) {
        slot[..4].copy_from_slice(&offset.to_le_bytes());
        slot[4..6].copy_from_slice(&len.to_le_bytes());
    }

    /// The frame the entry at `slot` names in `memory`, if its length is
    /// a frame's and it lies inside.
    pub fn get<'a>(slot: &[u8], memory: &'a [u8]) -> Option<&'a [u8]> {
        let offset = u32::from_le_bytes(slot.get(..4)?.try_into().ok()?) as usize;
        let len = usize::from(u16::from_le_bytes(slot.get(4..6)?.try_into().ok()?));
        if !(1..=MAX_FRAME).contains(&len) {
            return None;
        }
        memory.get(offset..offset.checked_add(len)?)
    }
}

/// The TCP checksum of a received frame, eight bytes a step.
///
/// A network server checks it here rather than in its TCP/IP stack when
/// the stack sums two bytes a step: under emulation each load counts, and
/// a segment that is copied anyway (joined, [`coalesce`]) is summed in the
/// same pass ([`copy_add`](checksum::copy_add)).
/// The one's-complement sum does not depend on byte order (RFC 1071), so
/// the words are added as they lie in memory and the result is swapped
/// once.
pub mod checksum {
    /// The one's-complement sum of `data` (its 16-bit words, in memory
    /// order) added to `acc`, not yet folded; `data` is taken as starting
    /// at an even offset, and an odd byte at its end as padded with zero.
    pub fn add(data: &[u8], mut acc: u64) -> u64 {
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let (sum, carry) = acc.overflowing_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
            acc = sum + u64::from(carry);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            let (sum, carry) = acc.overflowing_add(u64::from_le_bytes(last));
            acc = sum + u64::from(carry);
        }
        acc
    }

    /// Copies `src` into `dst` (as long) and adds `src` to `acc`, in one
    /// pass: under emulation every load counts, and a copy and a sum over
    /// the same bytes load them once. The result folds ([`fold`]) to what
    /// [`add`] gives, though the unfolded words may differ.
    pub fn copy_add(dst: &mut [u8], src: &[u8], acc: u64) -> u64 {
        let dst = &mut dst[..src.len()];
        // Eight words a step, unrolled: under emulation each loop turn
        // costs as much as its loads. Each word's halves go to two sums
        // (2^32 is 1 modulo 0xffff): no carry to follow from one addition
        // to the next, which an emulator computes at every `adc`. Neither
        // sum nor theirs can overflow for less than 16 GiB.
        let (mut low, mut high) = (0u64, 0u64);
        let mut blocks = src.chunks_exact(64);
        let mut at = 0;
        for block in &mut blocks {
            let block: &[u8; 64] = block.try_into().expect("64 bytes");
            let to: &mut [u8; 64] = (&mut dst[at..at + 64]).try_into().expect("64 bytes");
            for i in 0..8 {
                let w = u64::from_le_bytes(block[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                low += w & 0xffff_ffff;
                high += w >> 32;
                to[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
            }
            at += 64;
        }
        let rest = blocks.remainder();
        dst[at..].copy_from_slice(rest);
        add(rest, add(&(low.wrapping_add(high)).to_le_bytes(), acc))
    }

    /// `acc` folded to 16 bits, as the big-endian sum of the words.
    pub fn fold(mut acc: u64) -> u16 {
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        (acc as u16).swap_bytes()
    }

    /// Whether an Ethernet frame's TCP checksum is right: `Some(true)` or
    /// `Some(false)` for an IPv4 TCP segment that came whole; `None` for
    /// anything else (other protocols, fragments, malformed headers),
    /// which the stack checks (or rejects) itself.
    pub fn tcp_ok(frame: &[u8]) -> Option<bool> {
        let (ip, segment) = super::tcp_segment(frame)?;
        Some(fold(add(segment, pseudo(ip, segment.len()))) == 0xffff)
    }

    /// The sum of the pseudo-header of a TCP segment of `len` bytes in
    /// the IPv4 packet whose header is `ip`.
    pub(super) fn pseudo(ip: &[u8], len: usize) -> u64 {
        let mut pseudo = [0u8; 12];
        pseudo[..8].copy_from_slice(&ip[12..20]); // source, destination
        pseudo[9] = 6;
        pseudo[10..].copy_from_slice(&(len as u16).to_be_bytes());
        add(&pseudo, 0)
    }
}

/// Where an Ethernet frame stands in an IPv4 datagram sent in fragments:
/// `Some(true)` for a fragment that more follow, `Some(false)` for the
/// last one, `None` for a frame that is no fragment (or no IPv4).
pub fn ipv4_fragment(frame: &[u8]) -> Option<bool> {
    let ip = frame.get(14..34)?;
    if frame[12..14] != [0x08, 0x00] || ip[0] >> 4 != 4 {
        return None;
    }
    let word = u16::from_be_bytes([ip[6], ip[7]]);
    let (more, offset) = (word & 0x2000 != 0, word & 0x1fff);
    (more || offset != 0).then_some(more)
}

/// Whether an Ethernet frame carries a fragment of an IPv4 packet of TCP
/// (its first or a later one). A server that checks TCP checksums
/// before its stack, frame by frame ([`checksum::tcp_ok`]), cannot check
/// those: the stack reassembles them afterwards.
pub fn tcp_fragment(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(14..34) else { return false };
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff; // MF, offset
    frame[12..14] == [0x08, 0x00] && ip[0] >> 4 == 4 && ip[9] == 6 && fragment != 0
}

/// The IPv4 header and the TCP segment of an Ethernet frame that carries
/// one whole (not in fragments), with lengths that hold.
fn tcp_segment(frame: &[u8]) -> Option<(&[u8], &[u8])> {
    const ETH: usize = 14;
    if frame.get(12..14)? != [0x08, 0x00] {
        return None; // not IPv4
    }
    let ip = &frame[ETH..];
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff; // MF, offset
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || fragment != 0 || ip[9] != 6 {
        return None;
    }
    Some((&ip[..ihl], &ip[ihl..total]))
}

/// Received TCP segments of one connection joined into one, as Linux's
/// GRO does: a stack that takes a whole window as one segment walks its
/// headers once instead of once a frame (under emulation, most of what a
/// full-sized segment costs besides its copy).
///
/// Only what joins without loss: IPv4 without options or fragments, TCP
/// without options, flags ACK (and PSH) only, each segment's bytes right
/// after the one before's, same addresses and ports. The joined segment
/// has the first's headers with the last's acknowledgement and window,
/// PSH if any had it, and every payload in order; its IPv4 checksum is made
/// again, its TCP checksum is not: each segment's is checked as its
/// payload is copied ([`coalesce::Joined::add`]), so the stack need not.
pub mod coalesce {
    use super::{checksum, tcp_segment};

    /// The longest joined frame: an Ethernet header and what an IPv4 total
    /// length can say.
    pub const MAX: usize = 14 + 65535;
    /// Bytes of a joinable segment's headers: Ethernet, IPv4 and TCP
    /// without options.
    pub const HEADERS: usize = 14 + 20 + 20;

    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;

    /// A received frame's TCP segment that may be joined, its headers
    /// read once.
    pub struct Segment<'a> {
        frame: &'a [u8],
        ip: &'a [u8],
        tcp: &'a [u8],
        seq: u32,
    }

    /// The segment of `frame`, if it may be joined.
    pub fn segment(frame: &[u8]) -> Option<Segment<'_>> {
        let (ip, tcp) = tcp_segment(frame)?;
        if ip.len() != 20 || tcp.len() <= 20 || tcp[12] >> 4 != 5 || tcp[13] & !PSH != ACK {
            return None;
        }
        Some(Segment { frame, ip, tcp, seq: u32::from_be_bytes(tcp[4..8].try_into().ok()?) })
    }

    impl Segment<'_> {
        fn payload(&self) -> &[u8] {
            &self.tcp[20..]
        }

        /// Whether `next` may be joined to it: of one connection, and
        /// `next`'s bytes right after its own.
        pub fn followed_by(&self, next: &Segment) -> bool {
            self.frame[..14] == next.frame[..14] // MAC addresses, type
                && self.frame[26..38] == next.frame[26..38] // IPv4 addresses, ports
                && self.seq.wrapping_add(self.payload().len() as u32) == next.seq
        }
    }

    /// What [`Joined::add`] did with a frame.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Added {
        /// Joined: its payload follows the others.
        Joined,
        /// Its TCP checksum is wrong: it was left out (so may nothing
        /// after it be joined, its bytes being missing).
        BadChecksum,
        /// Not joinable, or past [`MAX`]: left out, the segment as it was.
        No,
    }

    /// A segment being joined from frames, in a buffer of [`MAX`] bytes
    /// made once (nothing is allocated or zeroed per segment).
    pub struct Joined {
        buf: alloc::vec::Vec<u8>,
        len: usize,
    }

    impl Default for Joined {
        fn default() -> Joined {
            Joined::new()
        }
    }

    impl Joined {
        /// An empty one (its buffer is made at the first [`Joined::add`]).
        pub const fn new() -> Joined {
            Joined { buf: alloc::vec::Vec::new(), len: 0 }
        }

        /// Empties it.
        pub fn clear(&mut self) {
            self.len = 0;
        }

        /// The frame joined so far.
        pub fn bytes(&self) -> &[u8] {
            &self.buf[..self.len]
        }

        /// Adds `frame`: its payload after the others' (the first's
        /// headers start the segment), its TCP checksum checked in the same
        /// pass over the bytes as their copy. The caller checks
        /// [`Segment::followed_by`]; [`Joined::finish`] makes the headers
        /// right.
        pub fn add(&mut self, frame: &[u8]) -> Added {
            let Some(seg) = segment(frame) else { return Added::No };
            let (ip, tcp, payload) = (seg.ip, seg.tcp, seg.payload());
            let first = self.len == 0;
            let at = if first { HEADERS } else { self.len };
            if at + payload.len() > MAX {
                return Added::No;
            }
            if self.buf.len() < MAX {
                self.buf.resize(MAX, 0);
            }
            let acc = checksum::add(&tcp[..20], checksum::pseudo(ip, tcp.len()));
            let acc = checksum::copy_add(&mut self.buf[at..at + payload.len()], payload, acc);
            if checksum::fold(acc) != 0xffff {
                return Added::BadChecksum;
            }
            if first {
                self.buf[..HEADERS].copy_from_slice(&frame[..HEADERS]);
            } else {
                let (ours, theirs) = (&mut self.buf[34..HEADERS], &frame[34..HEADERS]);
                ours[8..12].copy_from_slice(&theirs[8..12]); // acknowledgement
                ours[13] |= theirs[13] & PSH;
                ours[14..16].copy_from_slice(&theirs[14..16]); // window
            }
            self.len = at + payload.len();
            Added::Joined
        }

        /// Writes the joined segment's IPv4 total length and checksum.
        pub fn finish(&mut self) {
            if self.len < HEADERS {
                return;
            }
            let out = &mut self.buf[..self.len];
            let total = (out.len() - 14) as u16;
            out[16..18].copy_from_slice(&total.to_be_bytes());
            out[24..26].fill(0);
            let sum = !checksum::fold(checksum::add(&out[14..34], 0));
            out[24..26].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

/// Who opens a TCP connection and to where: the source and destination
/// (IPv4 address, port) of a SYN without ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syn {
    /// The peer that opens it.
    pub from: ([u8; 4], u16),
    /// The address and port it opens.
    pub to: ([u8; 4], u16),
}

/// The connection a frame opens (SYN without ACK), if it is one.
pub fn syn(frame: &[u8]) -> Option<Syn> {
    let (ip, tcp) = tcp_segment(frame)?;
    let flags = *tcp.get(13)?;
    let addr = |at: usize| [ip[at], ip[at + 1], ip[at + 2], ip[at + 3]];
    let port = |at: usize| u16::from_be_bytes([tcp[at], tcp[at + 1]]);
    (flags & 0x12 == 0x02).then(|| Syn { from: (addr(12), port(0)), to: (addr(16), port(2)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071's sum, two bytes a step, big-endian.
    fn reference(data: &[u8]) -> u16 {
        let mut acc = 0u32;
        for pair in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// An Ethernet frame with an IPv4 TCP segment of `payload`, its
    /// checksum computed with [`reference`].
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let total = 20 + 20 + payload.len();
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let mut tcp = vec![0x1f, 0x90, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0];
        tcp.extend_from_slice(payload);
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let sum = !reference(&pseudo);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn lent_slots_name_frames_inside_the_memory_only() {
        let memory: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
        let mut slot = [0u8; SLOT];
        lent::put(&mut slot, 2060, 60);
        assert_eq!(lent::get(&slot, &memory), Some(&memory[2060..2120]));
        lent::put(&mut slot, 8192 - 60, 60);
        assert_eq!(lent::get(&slot, &memory).map(<[u8]>::len), Some(60), "up to the end");
        for (offset, len) in [(8192 - 59, 60), (u32::MAX, 60), (0, 0), (0, MAX_FRAME as u16 + 1)] {
            lent::put(&mut slot, offset, len);
            assert_eq!(lent::get(&slot, &memory), None, "offset {offset}, length {len}");
        }
        assert_eq!(lent::get(&slot[..5], &memory), None, "a cut slot");
    }

    #[test]
    fn lent_entries_are_packed_and_fit_the_receive_half() {
        let memory: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
        for bytes in [MIN_BUFFER as usize, 64 * 4096, 64 * 4096 + 100] {
            let layout = Layout::of(bytes);
            let mut buffer = vec![0u8; bytes];
            for i in 0..layout.slots {
                lent::put(&mut buffer[layout.lent(i)..], i as u32 * 100, 60);
            }
            assert!(layout.lent(layout.slots) <= layout.tx(0), "{bytes} bytes: entries spill into the send half");
            for i in 0..layout.slots {
                let at = i * 100;
                assert_eq!(lent::get(&buffer[layout.lent(i)..], &memory), Some(&memory[at..at + 60]), "entry {i}");
            }
        }
        assert_eq!(Layout::of(64 * 4096).lent(63) + lent::ENTRY, 512, "64 entries in one page");
    }

    /// A segment of `payload` at `seq` with TCP `flags`, acknowledging
    /// `ack`, its TCP checksum right.
    fn segment(seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = tcp_frame(payload);
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f[42..46].copy_from_slice(&ack.to_be_bytes());
        f[47] = flags;
        resum(&mut f);
        f
    }

    /// Whether `next` may be joined to `prev`: both joinable, of one
    /// connection, and `next`'s bytes right after `prev`'s.
    fn follows(prev: &[u8], next: &[u8]) -> bool {
        matches!((coalesce::segment(prev), coalesce::segment(next)), (Some(a), Some(b)) if a.followed_by(&b))
    }

    /// Makes the TCP checksum of an IPv4 frame right again.
    fn resum(f: &mut [u8]) {
        f[50..52].fill(0);
        let (ip, tcp) = tcp_segment(f).unwrap();
        let sum = !checksum::fold(checksum::add(tcp, checksum::pseudo(ip, tcp.len())));
        f[50..52].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn segments_that_follow_each_other_are_joined() {
        let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 1000 + usize::from(i)]).collect();
        let mut seq = 7000u32;
        let mut frames = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let flags = if i == 1 { 0x18 } else { 0x10 };
            let mut f = segment(seq, 100 + i as u32, flags, p);
            f[48..50].copy_from_slice(&(500 + i as u16).to_be_bytes()); // window
            resum(&mut f);
            frames.push(f);
            seq += p.len() as u32;
        }
        assert!(follows(&frames[0], &frames[1]) && follows(&frames[1], &frames[2]));
        assert!(!follows(&frames[0], &frames[2]), "a gap");
        let mut joined = coalesce::Joined::new();
        for f in &frames {
            assert_eq!(joined.add(f), coalesce::Added::Joined);
        }
        joined.finish();
        let out = joined.bytes();
        let (ip, tcp) = tcp_segment(out).expect("one IPv4 TCP segment");
        assert_eq!(&tcp[20..], parts.concat().as_slice());
        assert_eq!(reference(ip), 0xffff, "IPv4 checksum made again");
        assert_eq!(u32::from_be_bytes(tcp[4..8].try_into().unwrap()), 7000, "the first's sequence number");
        assert_eq!(u32::from_be_bytes(tcp[8..12].try_into().unwrap()), 102, "the last's acknowledgement");
        assert_eq!(u16::from_be_bytes([tcp[14], tcp[15]]), 502, "the last's window");
        assert_eq!(tcp[13], 0x18, "PSH, since one had it");
        assert_eq!(out[..14], frames[0][..14]);
    }

    #[test]
    fn only_plain_segments_of_one_connection_in_order_are_joined() {
        let a = segment(1, 1, 0x10, &[1; 100]);
        assert!(follows(&a, &segment(101, 1, 0x10, &[2; 100])));
        for (why, b) in [
            ("a retransmission", segment(1, 1, 0x10, &[1; 100])),
            ("a FIN", segment(101, 1, 0x11, &[2; 100])),
            ("a SYN", segment(101, 1, 0x12, &[2; 100])),
            ("a reset", segment(101, 1, 0x14, &[2; 100])),
            ("no payload", segment(101, 1, 0x10, &[])),
        ] {
            assert!(!follows(&a, &b), "{why}");
        }
        let mut other_port = segment(101, 1, 0x10, &[2; 100]);
        other_port[36] ^= 1;
        assert!(!follows(&a, &other_port), "another connection");
        let mut options = segment(101, 1, 0x10, &[2; 100]);
        options[46] = 0x60; // data offset 6: an option
        assert!(!follows(&a, &options), "TCP options");
        let mut fragment = segment(101, 1, 0x10, &[2; 100]);
        fragment[20] = 0x20; // more fragments
        assert!(!follows(&a, &fragment), "a fragment");
        let mut udp = segment(101, 1, 0x10, &[2; 100]);
        udp[23] = 17;
        assert!(!follows(&a, &udp), "UDP");
        // Cut or lying frames (a hostile peer's) join nothing and start
        // nothing.
        let next = segment(101, 1, 0x10, &[2; 100]);
        let mut longer = next.clone();
        longer[16..18].copy_from_slice(&2000u16.to_be_bytes()); // IPv4 length past the frame
        for (why, bad) in
            [("empty", &[][..]), ("cut", &next[..40]), ("headers only", &next[..54]), ("lying length", &longer)]
        {
            assert!(!follows(&a, bad) && !follows(bad, &next), "{why}");
            assert_eq!(coalesce::Joined::new().add(bad), coalesce::Added::No, "{why}");
        }
    }

    #[test]
    fn a_joined_segment_stays_within_what_ipv4_can_say() {
        let mut out = coalesce::Joined::new();
        let mut seq = 0u32;
        let mut joined = 0;
        while out.add(&segment(seq, 1, 0x10, &[9; 1460])) == coalesce::Added::Joined {
            seq += 1460;
            joined += 1;
        }
        assert_eq!(joined, (65535 - 40) / 1460, "as many as fit");
        assert!(out.bytes().len() <= coalesce::MAX);
        out.finish();
        let (_, tcp) = tcp_segment(out.bytes()).expect("still one segment");
        assert_eq!(tcp.len(), 40 + joined * 1460 - 20);
        let fin = segment(0, 1, 0x11, &[1; 10]);
        assert_eq!(coalesce::Joined::new().add(&fin), coalesce::Added::No, "a FIN starts nothing");
    }

    #[test]
    fn a_wrong_checksum_leaves_its_segment_out_of_the_join() {
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut seq = 100u32;
        for i in 0..4u8 {
            let payload: Vec<u8> = (0..1000u32 + u32::from(i)).map(|b| (b * 7 + u32::from(i)) as u8).collect();
            let mut f = tcp_frame(&payload);
            f[38..42].copy_from_slice(&seq.to_be_bytes());
            resum(&mut f);
            assert_eq!(checksum::tcp_ok(&f), Some(true));
            seq += payload.len() as u32;
            frames.push(f);
        }
        for bad in 0..4 {
            let mut frames = frames.clone();
            let last = frames[bad].len() - 1;
            frames[bad][last] ^= 0x40; // one payload bit
            let mut joined = coalesce::Joined::new();
            let added: Vec<coalesce::Added> = frames.iter().take(bad + 1).map(|f| joined.add(f)).collect();
            assert_eq!(added[bad], coalesce::Added::BadChecksum, "segment {bad}");
            assert!(added[..bad].iter().all(|a| *a == coalesce::Added::Joined));
            joined.finish();
            if bad == 0 {
                assert!(joined.bytes().is_empty(), "nothing joined");
                continue;
            }
            let (ip, tcp) = tcp_segment(joined.bytes()).expect("the segments before it");
            let want: Vec<u8> = frames[..bad].iter().flat_map(|f| f[54..].to_vec()).collect();
            assert_eq!(&tcp[20..], want.as_slice(), "bad segment {bad}");
            assert_eq!(reference(ip), 0xffff);
        }
    }

    #[test]
    fn copying_and_summing_in_one_pass_is_a_copy_and_a_sum() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for start in [0, 1, 2, 5, 8] {
            for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 291] {
                let src = &data[start..start + len];
                let mut dst = vec![0xaau8; len];
                let acc = checksum::copy_add(&mut dst, src, 12345);
                assert_eq!(dst, src, "start {start}, {len} bytes");
                // The same sum, not necessarily the same unfolded word.
                let want = checksum::fold(checksum::add(src, 12345));
                assert_eq!(checksum::fold(acc), want, "start {start}, {len} bytes");
            }
        }
        // Every word all ones: the sums carry at every step.
        let ones = vec![0xffu8; 65535];
        let mut dst = vec![0u8; ones.len()];
        let acc = checksum::copy_add(&mut dst, &ones, u64::MAX - 1);
        assert_eq!(dst, ones);
        assert_eq!(checksum::fold(acc), checksum::fold(checksum::add(&ones, u64::MAX - 1)));
    }

    #[test]
    fn fragments_of_tcp_are_told_apart() {
        let whole = tcp_frame(b"some data");
        assert!(!tcp_fragment(&whole));
        for (flags_offset, fragment) in [(0x2000u16, true), (0x0001, true), (0x2005, true), (0x4000, false)] {
            let mut f = whole.clone();
            f[20..22].copy_from_slice(&flags_offset.to_be_bytes());
            assert_eq!(tcp_fragment(&f), fragment, "{flags_offset:#x}");
            f[23] = 17; // UDP
            assert!(!tcp_fragment(&f));
        }
        assert!(!tcp_fragment(&whole[..33]), "a cut header");
    }

    #[test]
    fn fragments_say_whether_more_follow() {
        let whole = tcp_frame(b"some data");
        assert_eq!(ipv4_fragment(&whole), None);
        for (flags_offset, more) in
            [(0x2000u16, Some(true)), (0x2005, Some(true)), (0x0005, Some(false)), (0x4000, None)]
        {
            let mut f = whole.clone();
            f[20..22].copy_from_slice(&flags_offset.to_be_bytes());
            f[23] = 17; // any protocol
            assert_eq!(ipv4_fragment(&f), more, "{flags_offset:#x}");
            f[12] = 0x86; // not IPv4
            assert_eq!(ipv4_fragment(&f), None);
        }
        assert_eq!(ipv4_fragment(&whole[..33]), None, "a cut header");
    }

    #[test]
    fn connection_openings_are_recognised() {
        let mut f = tcp_frame(b"");
        assert_eq!(syn(&f), None, "PSH ACK");
        f[14 + 20 + 13] = 0x02;
        assert_eq!(syn(&f), Some(Syn { from: ([10, 0, 2, 2], 8080), to: ([10, 0, 2, 15], 9) }));
        f[14 + 20 + 13] = 0x12;
        assert_eq!(syn(&f), None, "SYN ACK");
        f[14 + 20 + 13] = 0x02;
        f[14 + 9] = 17;
        assert_eq!(syn(&f), None, "UDP");
        assert_eq!(syn(&f[..14 + 20 + 10]), None, "cut");
    }

    #[test]
    fn the_fast_sum_is_rfc_1071s() {
        let data: Vec<u8> = (0..1500u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1460, 1500] {
            assert_eq!(checksum::fold(checksum::add(&data[..len], 0)), reference(&data[..len]), "{len} bytes");
        }
        let ones = [0xffu8; 40];
        assert_eq!(checksum::fold(checksum::add(&ones, 0)), reference(&ones), "carries all the way");
    }

    #[test]
    fn tcp_checksums_are_checked_and_other_frames_left_alone() {
        for len in [0, 1, 2, 3, 1000, 1460] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut f = tcp_frame(&payload);
            assert_eq!(checksum::tcp_ok(&f), Some(true), "{len} bytes");
            // Any flipped bit of the segment, or of the addresses, shows.
            for at in [14 + 12, 14 + 19, 14 + 20, 14 + 37, f.len() - 1] {
                f[at] ^= 0x10;
                assert_eq!(checksum::tcp_ok(&f), Some(false), "{len} bytes, byte {at} flipped");
                f[at] ^= 0x10;
            }
            // Ethernet padding after the datagram is not summed.
            f.extend_from_slice(&[0xaa; 6]);
            assert_eq!(checksum::tcp_ok(&f), Some(true), "{len} bytes, padded");
        }
        let f = tcp_frame(b"hello");
        let mut fragment = f.clone();
        fragment[14 + 6] |= 0x20; // more fragments
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut long = f.clone();
        long[14 + 2..14 + 4].copy_from_slice(&2000u16.to_be_bytes()); // beyond the frame
        let mut short_ihl = f.clone();
        short_ihl[14] = 0x44;
        for (what, frame) in [
            ("a fragment", &fragment[..]),
            ("UDP", &udp[..]),
            ("ARP", &arp[..]),
            ("a length beyond the frame", &long[..]),
            ("a header under 20 bytes", &short_ihl[..]),
            ("a cut frame", &f[..20]),
            ("nothing", &[][..]),
        ] {
            assert_eq!(checksum::tcp_ok(frame), None, "{what}");
        }
    }

    #[test]
    fn requests_round_trip_and_sends_carry_frames() {
        for r in [
            Request::Attach,
            Request::Subscribe,
            Request::Send(1),
            Request::Send(64),
            Request::Recv(0),
            Request::Recv(3),
            Request::Lend,
            Request::Detach,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r));
        }
        assert_eq!(Request::decode([SEND, 0, 0]), Err(Status::BadFrame));
        for w in [[0, 0, 0], [LEND + 1, 0, 0], [LEND, 1, 0], [RECV, 1, 1], [ATTACH, 0, 1], [SEND, 60, 1]] {
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
