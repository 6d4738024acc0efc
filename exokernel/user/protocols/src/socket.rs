//! The socket service: TCP and UDP sockets of the network server for
//! applications (the POSIX library's `socket`, `connect`, `accept` ...),
//! in a [`session`](crate::session).
//!
//! Every operation answers at once: one that would have to wait (nothing
//! to receive, no room to send, no connection to accept) answers
//! `[EMPTY, 0, 0]`. The client subscribes a notification (`SUBSCRIBE`,
//! passing it), which the server signals with [`READY`] whenever one of
//! the client's sockets becomes readable, writable, connected or closed;
//! the client sleeps on it and asks again (the POSIX library does this
//! for blocking sockets, `poll` included), so no request ever holds the
//! server.
//!
//! A socket is named by a handle the server gives (`OPEN`), valid for
//! the client that opened it only. Addresses are IPv4 with a port, one
//! word each ([`addr`]). Data goes through the buffer's start: `SEND`
//! takes `len` bytes from it, `RECV` puts them there. Handle and length
//! share one word ([`handle_len`]).
//!
//! A client that detaches, attaches again, or ends (its notification
//! dies with it) loses its sockets: connections are reset.
//!
//! A buffer of two pages or more ends in a status page ([`status`]): the
//! server writes there, for each of the client's sockets, the flags it
//! last told the client, whenever they change. A client reads them there
//! instead of asking `POLL`, and sleeps on its notification when nothing
//! it waits for is set: a flag that rises afterwards is signalled, as
//! for a `POLL` answer. Data then goes through the pages before it.
//!
//! A client may also ask the server to push received stream data
//! (`PUSH`): the pages before the status page become the push area
//! ([`push`]), where the server puts, whenever the client has taken the
//! last lot, what arrived on the connection the client last received
//! from, and signals. The client reads it there without a request.

pub use crate::session::{Status, ATTACH, DETACH};

/// Subscribe the passed notification. Answer: `[OK, 0, 0]`.
pub const SUBSCRIBE: u64 = crate::session::FIRST_OP;
/// `[OPEN, kind, 0]` ([`TCP`] or [`UDP`]). Answer: `[OK, handle, 0]`.
pub const OPEN: u64 = SUBSCRIBE + 1;
/// `[BIND, handle, addr]`: the local port (address 0: any of ours; port
/// 0: one the server picks). Answer: `[OK, addr bound, 0]`.
pub const BIND: u64 = SUBSCRIBE + 2;
/// `[LISTEN, handle, backlog]` (TCP, bound): accept connections, at most
/// `backlog` waiting (0: the default). Answer: `[OK, 0, 0]`.
pub const LISTEN: u64 = SUBSCRIBE + 3;
/// `[ACCEPT, handle, 0]`. Answer: `[OK, new handle, peer addr]`, or
/// `EMPTY`.
pub const ACCEPT: u64 = SUBSCRIBE + 4;
/// `[CONNECT, handle, addr]`. TCP: starts the handshake, answer `[OK, 0,
/// 0]`; the socket becomes [`CONNECTED`] (or [`FAILED`]). UDP: sets the
/// peer of later `SEND`s without an address and filters `RECV`.
pub const CONNECT: u64 = SUBSCRIBE + 5;
/// `[SEND, handle_len, addr]`: the buffer's first `len` bytes (UDP: one
/// datagram, to `addr`, or the connected peer when 0). Answer: `[OK,
/// bytes taken, 0]`, or `EMPTY` when no byte fits.
pub const SEND: u64 = SUBSCRIBE + 6;
/// `[RECV, handle_len, 0]`: at most `len` bytes into the buffer's start.
/// Answer: `[OK, n, peer addr]` (TCP: n = 0 at the end of the stream;
/// UDP: one datagram, cut to `len`), or `EMPTY`.
pub const RECV: u64 = SUBSCRIBE + 7;
/// `[POLL, count, 0]`: the buffer holds `count` handles (u32, little
/// endian); the server writes each one's [flags](READABLE) (u32) over it.
/// Answer: `[OK, how many have any flag but CONNECTED, 0]`.
pub const POLL: u64 = SUBSCRIBE + 8;
/// `[SHUTDOWN, handle, 0]`: no more sending (TCP: FIN once the data
/// queued is out). Answer: `[OK, 0, 0]`.
pub const SHUTDOWN: u64 = SUBSCRIBE + 9;
/// `[CLOSE, handle, 0]`: gone for the client (TCP: data queued still goes
/// out, then FIN). Answer: `[OK, 0, 0]`.
pub const CLOSE: u64 = SUBSCRIBE + 10;
/// `[NAMES, handle, 0]`. Answer: `[OK, local addr, peer addr]` (0 where
/// there is none).
pub const NAMES: u64 = SUBSCRIBE + 11;

/// `[PUSH, pages, 0]`: push received stream data into the last `pages`
/// pages before the status page (at least 2; the buffer keeps a page of
/// data area before them). Answer: `[OK, 0, 0]`.
pub const PUSH: u64 = SUBSCRIBE + 12;

/// Socket kind: a TCP stream.
pub const TCP: u64 = 1;
/// Socket kind: UDP datagrams.
pub const UDP: u64 = 2;

/// The smallest buffer: one page.
pub const MIN_BUFFER: u64 = 4096;
/// The notification bit: a socket of the client changed.
pub const READY: u64 = 1;

/// Poll flag: `RECV` (or `ACCEPT`) has something, the end of the stream
/// or an error to tell.
pub const READABLE: u32 = 1;
/// Poll flag: `SEND` takes bytes.
pub const WRITABLE: u32 = 2;
/// Poll flag: a TCP connection is established (or was, and data remains).
pub const CONNECTED: u32 = 4;
/// Poll flag: the peer ended its stream.
pub const PEER_CLOSED: u32 = 8;
/// Poll flag: the connection failed (refused, reset or timed out).
pub const FAILED: u32 = 16;
/// Poll flag: no such socket (not the client's, or closed).
pub const INVALID: u32 = 32;

/// Largest UDP datagram carried (IP reassembles and fragments up to this).
pub const MAX_DATAGRAM: usize = 8000;

/// IPv4 addresses with ports in one word: address in bits 16 to 47, port
/// in bits 0 to 15.
pub mod addr {
    /// The word for `ip` (a.b.c.d as `[a, b, c, d]`) and `port`.
    pub fn encode(ip: [u8; 4], port: u16) -> u64 {
        u64::from(u32::from_be_bytes(ip)) << 16 | u64::from(port)
    }

    /// A numeric name, `a.b.c.d` (or `localhost`), and a port number, as
    /// `getaddrinfo` takes them; `None` for anything else.
    pub fn parse(host: &str, port: &str) -> Option<([u8; 4], u16)> {
        let port: u16 = port.parse().ok()?;
        let host = if host == "localhost" { "127.0.0.1" } else { host };
        let mut ip = [0u8; 4];
        let mut parts = host.split('.');
        for b in ip.iter_mut() {
            *b = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some((ip, port))
    }

    /// The address and port of a word; `None` if bits above 47 are set.
    pub fn decode(w: u64) -> Option<([u8; 4], u16)> {
        if w >> 48 != 0 {
            return None;
        }
        Some((((w >> 16) as u32).to_be_bytes(), w as u16))
    }
}

/// The status page: one word per socket, `handle << 32 | flags`, at the
/// index of the handle's low 9 bits. A word whose handle is not the one
/// asked about says nothing about it (a socket opened since, or one
/// whose index it shares): the client asks `POLL` then. The server writes
/// each word whole (one aligned 8-byte store), so a reader on another
/// CPU sees an old word or a new one.
pub mod status {
    /// Bytes of the status page.
    pub const BYTES: usize = 4096;
    /// Words in it.
    pub const WORDS: usize = BYTES / 8;

    /// The data area and the status page of a client's buffer: the last
    /// page is the status page when the buffer has two pages or more.
    pub fn split(buffer: &mut [u8]) -> (&mut [u8], Option<&mut [u8]>) {
        if buffer.len() < 2 * BYTES {
            return (buffer, None);
        }
        let at = buffer.len() - BYTES;
        let (data, page) = buffer.split_at_mut(at);
        (data, Some(page))
    }

    /// The status page of a client's buffer, as [`split`] finds it.
    pub fn page(buffer: &[u8]) -> Option<&[u8]> {
        (buffer.len() >= 2 * BYTES).then(|| &buffer[buffer.len() - BYTES..])
    }

    /// Where `handle`'s word is in the page (in bytes).
    pub fn offset(handle: u32) -> usize {
        (handle as usize % WORDS) * 8
    }

    /// Writes `handle`'s flags into `page`.
    pub fn publish(page: &mut [u8], handle: u32, flags: u32) {
        let word = u64::from(handle) << 32 | u64::from(flags);
        let at = offset(handle);
        if let Some(slot) = page.get_mut(at..at + 8) {
            slot.copy_from_slice(&word.to_le_bytes());
        }
    }

    /// `handle`'s flags as `page` has them, if its word is `handle`'s.
    pub fn read(page: &[u8], handle: u32) -> Option<u32> {
        let at = offset(handle);
        let word = u64::from_le_bytes(page.get(at..at + 8)?.try_into().ok()?);
        (word >> 32 == u64::from(handle)).then_some(word as u32)
    }
}

/// The push area: a header of four words, then the data. The server
/// writes `len` bytes of data for `handle`, then the header's `seq` (one
/// more than the last); the client reads them and, when it has taken all,
/// writes `seq` into `taken`. The server pushes again only when `taken`
/// equals `seq`, and reads nothing else of the area.
pub mod push {
    use core::sync::atomic::{fence, Ordering};

    /// Bytes of the header.
    pub const HEADER: usize = 32;
    const SEQ: usize = 0;
    const HANDLE: usize = 8;
    const LEN: usize = 16;
    const TAKEN: usize = 24;

    fn word(area: &[u8], at: usize) -> u64 {
        area.get(at..at + 8).map_or(0, |w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
    }

    fn set(area: &mut [u8], at: usize, value: u64) {
        if let Some(w) = area.get_mut(at..at + 8) {
            w.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Whether a buffer of `bytes` holds a push area of `pages` pages
    /// (at least 2), a page of data area before it and the status page.
    pub fn fits(bytes: usize, pages: usize) -> bool {
        let page = super::status::BYTES;
        let need = pages.checked_mul(page).and_then(|push| push.checked_add(2 * page));
        pages >= 2 && need.is_some_and(|need| bytes >= need)
    }

    /// The data area, the push area (`pages` pages) and the status page
    /// of a client's buffer; `None` if it is too small for them.
    pub fn split(buffer: &mut [u8], pages: usize) -> Option<(&mut [u8], &mut [u8], &mut [u8])> {
        if !fits(buffer.len(), pages) {
            return None;
        }
        let (page, push) = (super::status::BYTES, pages * super::status::BYTES);
        let (rest, status) = buffer.split_at_mut(buffer.len() - page);
        let at = rest.len() - push;
        let (data, area) = rest.split_at_mut(at);
        Some((data, area, status))
    }

    // The other side runs at the same time (another CPU, or after a
    // preemption): the fences keep the compiler (and a CPU weaker than
    // x86's) from moving the header's reads and writes across each
    // other: the data and `len` are written before `seq`, and read after.

    /// Server: whether the client took the last lot.
    pub fn taken(area: &[u8]) -> bool {
        let taken = word(area, TAKEN) == word(area, SEQ);
        fence(Ordering::Acquire); // the client's reads of the lot are done
        taken
    }

    /// Server: where the next lot goes.
    pub fn room(area: &mut [u8]) -> &mut [u8] {
        area.get_mut(HEADER..).unwrap_or_default()
    }

    /// Server: `len` bytes of `handle` were written into [`room`]; the
    /// lot's number.
    pub fn pushed(area: &mut [u8], handle: u32, len: usize) -> u64 {
        let seq = word(area, SEQ).wrapping_add(1);
        set(area, HANDLE, u64::from(handle));
        set(area, LEN, len as u64);
        fence(Ordering::Release); // the data and length before the number
        set(area, SEQ, seq);
        seq
    }

    /// Client: the lot waiting, if any: its number, handle and data.
    pub fn waiting(area: &[u8]) -> Option<(u64, u32, &[u8])> {
        let seq = word(area, SEQ);
        if seq == word(area, TAKEN) {
            return None;
        }
        fence(Ordering::Acquire); // the number before the length and data
        let len = usize::try_from(word(area, LEN)).ok()?;
        let data = area.get(HEADER..HEADER.checked_add(len)?)?;
        Some((seq, word(area, HANDLE) as u32, data))
    }

    /// Client: lot `seq` is taken.
    pub fn take(area: &mut [u8], seq: u64) {
        fence(Ordering::Release); // its data read before it is given back
        set(area, TAKEN, seq);
    }

    /// Both: no lot (a fresh session).
    pub fn clear(area: &mut [u8]) {
        area[..HEADER].fill(0);
    }

    /// Server: the socket of the lot waiting (its data are not read any
    /// more: the socket was closed), which is dropped.
    pub fn drop_lot(area: &mut [u8], handle: u32) {
        if let Some((seq, h, _)) = waiting(area) {
            if h == handle {
                take(area, seq);
            }
        }
    }
}

/// One word for a handle and a length: handle in the low 32 bits.
pub fn handle_len(handle: u32, len: u32) -> u64 {
    u64::from(len) << 32 | u64::from(handle)
}

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// See [`ATTACH`].
    Attach,
    /// See [`SUBSCRIBE`].
    Subscribe,
    /// See [`OPEN`]: UDP when true.
    Open {
        /// A UDP socket (else TCP).
        udp: bool,
    },
    /// See [`BIND`].
    Bind(u32, ([u8; 4], u16)),
    /// See [`LISTEN`].
    Listen(u32, u32),
    /// See [`ACCEPT`].
    Accept(u32),
    /// See [`CONNECT`].
    Connect(u32, ([u8; 4], u16)),
    /// See [`SEND`]: handle, length, destination (UDP).
    Send(u32, u32, Option<([u8; 4], u16)>),
    /// See [`RECV`]: handle, most bytes.
    Recv(u32, u32),
    /// See [`POLL`]: how many handles.
    Poll(u32),
    /// See [`SHUTDOWN`].
    Shutdown(u32),
    /// See [`CLOSE`].
    Close(u32),
    /// See [`NAMES`].
    Names(u32),
    /// See [`PUSH`]: pages.
    Push(u32),
    /// See [`DETACH`].
    Detach,
}

impl Request {
    /// The message words.
    pub fn encode(self) -> [u64; 3] {
        let a = |x: ([u8; 4], u16)| addr::encode(x.0, x.1);
        match self {
            Request::Attach => [ATTACH, 0, 0],
            Request::Subscribe => [SUBSCRIBE, 0, 0],
            Request::Open { udp } => [OPEN, if udp { UDP } else { TCP }, 0],
            Request::Bind(h, to) => [BIND, u64::from(h), a(to)],
            Request::Listen(h, backlog) => [LISTEN, u64::from(h), u64::from(backlog)],
            Request::Accept(h) => [ACCEPT, u64::from(h), 0],
            Request::Connect(h, to) => [CONNECT, u64::from(h), a(to)],
            Request::Send(h, len, to) => [SEND, handle_len(h, len), to.map_or(0, a)],
            Request::Recv(h, len) => [RECV, handle_len(h, len), 0],
            Request::Poll(n) => [POLL, u64::from(n), 0],
            Request::Shutdown(h) => [SHUTDOWN, u64::from(h), 0],
            Request::Close(h) => [CLOSE, u64::from(h), 0],
            Request::Names(h) => [NAMES, u64::from(h), 0],
            Request::Push(pages) => [PUSH, u64::from(pages), 0],
            Request::Detach => [DETACH, 0, 0],
        }
    }

    /// Decodes message words; anything malformed (unknown operation or
    /// kind, a handle beyond 32 bits, a bad address word, a port 0 to
    /// connect to) is `BadRequest`.
    pub fn decode(w: [u64; 3]) -> Result<Request, Status> {
        let bad = Status::BadRequest;
        let handle = |x: u64| u32::try_from(x).map_err(|_| bad);
        let address = |x: u64| addr::decode(x).ok_or(bad);
        let split = |x: u64| (x as u32, (x >> 32) as u32);
        Ok(match w {
            [ATTACH, 0, 0] => Request::Attach,
            [SUBSCRIBE, 0, 0] => Request::Subscribe,
            [OPEN, TCP, 0] => Request::Open { udp: false },
            [OPEN, UDP, 0] => Request::Open { udp: true },
            [BIND, h, a] => Request::Bind(handle(h)?, address(a)?),
            [LISTEN, h, b] => Request::Listen(handle(h)?, u32::try_from(b).map_err(|_| bad)?),
            [ACCEPT, h, 0] => Request::Accept(handle(h)?),
            [CONNECT, h, a] => match address(a)? {
                (_, 0) => return Err(bad),
                to => Request::Connect(handle(h)?, to),
            },
            [SEND, hl, a] => {
                let (h, len) = split(hl);
                let to = if a == 0 { None } else { Some(address(a)?) };
                Request::Send(h, len, to)
            }
            [RECV, hl, 0] => {
                let (h, len) = split(hl);
                Request::Recv(h, len)
            }
            [POLL, n, 0] => Request::Poll(u32::try_from(n).map_err(|_| bad)?),
            [SHUTDOWN, h, 0] => Request::Shutdown(handle(h)?),
            [CLOSE, h, 0] => Request::Close(handle(h)?),
            [NAMES, h, 0] => Request::Names(handle(h)?),
            [PUSH, pages, 0] => Request::Push(u32::try_from(pages).map_err(|_| bad)?),
            [DETACH, 0, 0] => Request::Detach,
            _ => return Err(bad),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        let to = ([10, 0, 2, 2], 4321);
        for r in [
            Request::Attach,
            Request::Subscribe,
            Request::Open { udp: false },
            Request::Open { udp: true },
            Request::Bind(3, ([0, 0, 0, 0], 7)),
            Request::Listen(3, 16),
            Request::Accept(3),
            Request::Connect(4, to),
            Request::Send(5, 1000, None),
            Request::Send(5, 1000, Some(to)),
            Request::Recv(u32::MAX, u32::MAX),
            Request::Poll(20),
            Request::Shutdown(6),
            Request::Close(6),
            Request::Names(6),
            Request::Push(16),
            Request::Detach,
        ] {
            assert_eq!(Request::decode(r.encode()), Ok(r), "{r:?}");
        }
        for w in [
            [OPEN, 3, 0],
            [OPEN, TCP, 1],
            [BIND, 1 << 32, 0],
            [BIND, 1, 1 << 48],
            [CONNECT, 1, addr::encode([1, 2, 3, 4], 0)],
            [RECV, 1, 5],
            [u64::MAX, 0, 0],
            [ATTACH, 1, 0],
        ] {
            assert_eq!(Request::decode(w), Err(Status::BadRequest), "{w:?}");
        }
    }

    #[test]
    fn the_status_page_holds_each_sockets_last_flags() {
        let mut buffer = [0u8; 3 * status::BYTES];
        let (data, page) = status::split(&mut buffer);
        assert_eq!(data.len(), 2 * status::BYTES);
        let page = page.expect("a status page");
        page[0] = 1;
        assert_eq!(status::page(&buffer).map(|p| p[0]), Some(1), "the same page");
        let (_, page) = status::split(&mut buffer);
        let page = page.expect("a status page");
        assert_eq!(status::read(page, 0x0005_0003), None, "nothing written yet");
        status::publish(page, 0x0005_0003, READABLE | CONNECTED);
        assert_eq!(status::read(page, 0x0005_0003), Some(READABLE | CONNECTED));
        assert_eq!(status::read(page, 0x0006_0003), None, "another socket with the same index");
        // A handle sharing the index takes the word over.
        status::publish(page, 0x0003 + status::WORDS as u32, WRITABLE);
        assert_eq!(status::read(page, 0x0005_0003), None);
        assert_eq!(status::read(page, 0x0003 + status::WORDS as u32), Some(WRITABLE));
        let mut small = [0u8; status::BYTES + 100];
        let (data, page) = status::split(&mut small);
        assert_eq!((data.len(), page.is_none()), (status::BYTES + 100, true), "one page: no status");
    }

    #[test]
    fn pushed_lots_wait_until_taken() {
        let page = status::BYTES;
        let mut buffer = vec![0u8; 20 * page];
        assert!(push::split(&mut buffer, 1).is_none(), "one page is too few");
        assert!(push::split(&mut buffer, 19).is_none(), "no data page left");
        let (data, area, status) = push::split(&mut buffer, 18).expect("fits");
        assert_eq!((data.len(), area.len(), status.len()), (page, 18 * page, page));
        let (_, area, _) = push::split(&mut buffer, 16).expect("fits");
        push::clear(area);
        assert!(push::taken(area) && push::waiting(area).is_none(), "nothing yet");
        push::room(area)[..5].copy_from_slice(b"hello");
        let seq = push::pushed(area, 0x0002_0001, 5);
        assert!(!push::taken(area));
        assert_eq!(push::waiting(area), Some((seq, 0x0002_0001, &b"hello"[..])));
        push::take(area, seq);
        assert!(push::taken(area) && push::waiting(area).is_none());
        // A length beyond the area is no lot.
        let seq = push::pushed(area, 1, 16 * page);
        assert_eq!(push::waiting(area), None);
        push::take(area, seq);
    }

    #[test]
    fn addresses_pack_into_one_word() {
        let w = addr::encode([192, 168, 1, 20], 8080);
        assert_eq!(w, 0xc0a8_0114_1f90);
        assert_eq!(addr::decode(w), Some(([192, 168, 1, 20], 8080)));
        assert_eq!(addr::decode(0), Some(([0; 4], 0)));
        assert_eq!(addr::decode(u64::MAX), None);
        assert_eq!(handle_len(7, 9), 9 << 32 | 7);
    }

    #[test]
    fn numeric_names_parse_and_others_are_refused() {
        assert_eq!(addr::parse("10.0.2.2", "7"), Some(([10, 0, 2, 2], 7)));
        assert_eq!(addr::parse("localhost", "80"), Some(([127, 0, 0, 1], 80)));
        for (host, port) in [
            ("example.org", "80"),
            ("1.2.3.4.5", "80"),
            ("1.2.3.256", "80"),
            ("1.2.3", "80"),
            ("1.2.3.4", "99999"),
            ("1.2.3.4", ""),
        ] {
            assert_eq!(addr::parse(host, port), None, "{host}:{port}");
        }
    }
}
