//! The sockets of the network server's clients (`exo_protocols::socket`):
//! which smoltcp socket each handle names, whose it is, listeners with
//! their backlog, and what each client was last told.
//!
//! Nothing here waits: an operation that cannot go on answers `Empty`,
//! and [`Table::take_told`] (after every poll of the interface and every
//! request) says which flags changed, for the clients' status pages, and
//! which clients have a socket that became readable, writable, connected
//! or closed, so the server signals them.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use exo_protocols::session::Status;
use exo_protocols::socket::{addr, CONNECTED, FAILED, INVALID, MAX_DATAGRAM, PEER_CLOSED, READABLE, WRITABLE};
use smoltcp::iface::{Context, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, Ipv4Address};

/// Bytes a TCP connection buffers each way.
const TCP_RX: usize = 64 * 1024;
const TCP_TX: usize = 64 * 1024;
/// Datagrams and bytes a UDP socket buffers, received and to send (a
/// burst of 100 datagrams of 1 KiB had lost two thirds with 32 and 64
/// KiB: UDP has no flow control, the buffer is all there is).
const UDP_RX_PACKETS: usize = 512;
const UDP_RX_BYTES: usize = 512 * 1024;
const UDP_TX_PACKETS: usize = 128;
const UDP_TX_BYTES: usize = 128 * 1024;
/// Sockets at once, of all clients, and of one client.
const MAX_SOCKETS: usize = 256;
const MAX_PER_CLIENT: usize = 128;
/// Sockets a listener keeps listening between bursts of connections (more
/// are made for the SYNs of each batch of frames: `expect_connections`).
const LISTENING: usize = 2;
/// Backlog of a listener when the client gives 0, and the most.
const DEFAULT_BACKLOG: usize = 16;
const MAX_BACKLOG: usize = 64;
/// How long a closed connection may take to say goodbye before it is
/// reset (nanoseconds).
const LINGER_NS: u64 = 30_000_000_000;
/// How long a connection waits for its peer to acknowledge anything (its
/// SYN-ACK, data) before it is given up.
const HANDSHAKE_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(30);
/// Ports the server picks from.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

enum Kind {
    /// TCP, neither connected nor listening; maybe bound to a port.
    Tcp { port: u16 },
    /// TCP, listening on `port`: sockets listening or in their handshake,
    /// and connections made but not accepted yet.
    Listener { port: u16, backlog: usize, pool: Vec<Pooled>, ready: VecDeque<SocketHandle>, seen: u64 },
    /// A TCP connection (made by `CONNECT` or accepted).
    Stream { h: SocketHandle, shut: bool },
    /// UDP; `peer` set by `CONNECT`.
    Udp { h: SocketHandle, peer: Option<IpEndpoint> },
}

/// A socket of a listener's pool: listening, or in its handshake.
struct Pooled {
    h: SocketHandle,
    /// When its handshake was first seen (the listener's count of
    /// handshakes then; 0 while it listens): the oldest is given up first.
    since: u64,
}

struct Entry {
    owner: u64,
    generation: u16,
    kind: Kind,
    /// The flags the owner was last told (or found).
    told: u32,
}

/// Handshakes a listener with `backlog` keeps under way at once. Not
/// fewer than [`DEFAULT_BACKLOG`]: the backlog bounds the connections
/// made and not yet accepted, as in BSD and Linux; giving up a handshake
/// whose SYN-ACK went out resets the peer when its ACK comes.
fn handshakes(backlog: usize) -> usize {
    backlog.max(DEFAULT_BACKLOG)
}

/// Whether the connection a SYN opens is already under way here (past
/// its own SYN, not yet in TIME-WAIT): the SYN is a retransmission or a
/// forgery. smoltcp hands a segment to the first socket that takes it,
/// and a socket listening on the port would take a SYN before the
/// connection's own socket when it lies before it in the set: a second
/// handshake with the same addresses and ports, which resets the first.
/// Such a SYN is dropped instead; the connection's socket sends its
/// SYN-ACK again if the peer did not have it. (A connection opened from
/// here, in SYN-SENT, still takes a SYN: both ends opening at once.)
pub fn under_way(sockets: &SocketSet, syn: &exo_protocols::frame::Syn) -> bool {
    use tcp::State::{Closed, Listen, SynSent, TimeWait};
    let (local, remote) = (endpoint(syn.to), endpoint(syn.from));
    sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Tcp(t) => {
            !matches!(t.state(), Closed | Listen | SynSent | TimeWait)
                && t.local_endpoint() == Some(local)
                && t.remote_endpoint() == Some(remote)
        }
        _ => false,
    })
}

/// Every client's sockets.
pub struct Table {
    entries: Vec<Option<Entry>>,
    generation: u16,
    next_port: u16,
    /// Closed connections still sending their last bytes: until when.
    lingering: Vec<(SocketHandle, u64)>,
    /// Flags told since [`Table::take_told`]: owner, handle, flags (for
    /// the clients' status pages); owners with a flag that rose.
    told: Vec<(u64, u32, u32)>,
    rising: Vec<u64>,
}

/// An address word as smoltcp's endpoint.
fn endpoint((ip, port): ([u8; 4], u16)) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from_octets(ip)), port)
}

/// A smoltcp endpoint as an address word.
fn word(e: IpEndpoint) -> u64 {
    match e.addr {
        IpAddress::Ipv4(a) => addr::encode(a.octets(), e.port),
    }
}

fn listen_word(e: IpListenEndpoint) -> u64 {
    match e.addr {
        Some(IpAddress::Ipv4(a)) => addr::encode(a.octets(), e.port),
        None => addr::encode([0; 4], e.port),
    }
}

/// Heap kept free when socket buffers are allocated: what the rest of the
/// server allocates as it goes (smoltcp's socket list, reassembly, the
/// client table) must never find the heap exhausted.
const HEAP_HEADROOM: usize = 1 << 20;

/// `n` zero bytes, if the heap has them and its headroom to spare.
fn buffer<T: Clone>(n: usize, zero: T) -> Option<Vec<T>> {
    let bytes = n * core::mem::size_of::<T>();
    if exo_rt::heap_free() < bytes + HEAP_HEADROOM {
        return None;
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, zero);
    Some(v)
}

/// A TCP socket with its buffers; `None` when the heap cannot hold them
/// (the request is refused with `TooMany`, never a crash).
fn new_tcp() -> Option<tcp::Socket<'static>> {
    let mut s =
        tcp::Socket::new(tcp::SocketBuffer::new(buffer(TCP_RX, 0u8)?), tcp::SocketBuffer::new(buffer(TCP_TX, 0u8)?));
    // Acknowledge at once: a delayed ACK costs a timer wake-up per segment
    // when nothing flows back (a sink), and QEMU's user network then sends
    // one segment per ACK.
    s.set_ack_delay(None);
    Some(s)
}

/// A UDP socket with its buffers; `None` as for [`new_tcp`].
fn new_udp() -> Option<udp::Socket<'static>> {
    let buffer = |packets, bytes| {
        Some(udp::PacketBuffer::new(buffer(packets, udp::PacketMetadata::EMPTY)?, buffer(bytes, 0u8)?))
    };
    let rx = buffer(UDP_RX_PACKETS, UDP_RX_BYTES)?;
    Some(udp::Socket::new(rx, buffer(UDP_TX_PACKETS, UDP_TX_BYTES)?))
}

/// The flags of a TCP connection.
fn stream_flags(s: &tcp::Socket, shut: bool) -> u32 {
    use tcp::State::*;
    let state = s.state();
    // Closed without both sides having said goodbye: refused, reset or
    // timed out. (`shut` and the peer's FIN end in TimeWait or Closed
    // through the states below, which smoltcp reports on the way.)
    if state == Closed {
        return READABLE | WRITABLE | FAILED;
    }
    let mut f = 0;
    if !matches!(state, SynSent | SynReceived | Listen) {
        f |= CONNECTED;
    }
    if s.can_recv() {
        f |= READABLE;
    }
    if f & CONNECTED != 0 && !s.may_recv() {
        f |= READABLE | PEER_CLOSED;
    }
    if !shut && s.can_send() {
        f |= WRITABLE;
    }
    f
}

impl Table {
    /// No sockets.
    pub fn new(seed: u64) -> Table {
        let span = u64::from(EPHEMERAL.end() - EPHEMERAL.start());
        Table {
            entries: Vec::new(),
            generation: 1,
            next_port: EPHEMERAL.start() + (seed % span) as u16,
            lingering: Vec::new(),
            told: Vec::new(),
            rising: Vec::new(),
        }
    }

    /// Records that the owner of entry `i` knows its flags are `f`; a flag
    /// that rose makes it one to signal.
    fn tell(&mut self, i: usize, f: u32) {
        let handle = self.handle(i);
        let e = self.entry(i);
        if e.told == f {
            return;
        }
        let (owner, rose) = (e.owner, f & !e.told != 0);
        e.told = f;
        self.told.push((owner, handle, f));
        if rose && !self.rising.contains(&owner) {
            self.rising.push(owner);
        }
    }

    /// What was told since the last call: each change (owner, handle,
    /// flags) for the owners' status pages
    /// (`exo_protocols::socket::status`), then the owners to signal (a
    /// flag of theirs rose), each once.
    pub fn take_told(&mut self) -> (Vec<(u64, u32, u32)>, Vec<u64>) {
        (core::mem::take(&mut self.told), core::mem::take(&mut self.rising))
    }

    fn handle(&self, i: usize) -> u32 {
        let e = self.entries[i].as_ref().expect("a live entry");
        u32::from(e.generation) << 16 | (i as u32 + 1)
    }

    /// The entry `handle` names, if it is `owner`'s.
    fn find(&self, owner: u64, handle: u32) -> Result<usize, Status> {
        let i = (handle & 0xffff) as usize;
        let i = i.checked_sub(1).ok_or(Status::NoSuchSocket)?;
        match self.entries.get(i) {
            Some(Some(e)) if e.owner == owner && u32::from(e.generation) == handle >> 16 => Ok(i),
            _ => Err(Status::NoSuchSocket),
        }
    }

    fn entry(&mut self, i: usize) -> &mut Entry {
        self.entries[i].as_mut().expect("a live entry")
    }

    fn insert(&mut self, owner: u64, kind: Kind) -> Result<u32, Kind> {
        let live = self.entries.iter().flatten();
        if live.clone().count() >= MAX_SOCKETS || live.filter(|e| e.owner == owner).count() >= MAX_PER_CLIENT {
            return Err(kind);
        }
        self.generation = self.generation.wrapping_add(1).max(1);
        let e = Entry { owner, generation: self.generation, kind, told: 0 };
        let i = match self.entries.iter().position(Option::is_none) {
            Some(i) => {
                self.entries[i] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                self.entries.len() - 1
            }
        };
        let handle = self.handle(i);
        self.told.push((owner, handle, 0));
        Ok(handle)
    }

    /// Whether a TCP (or UDP) socket of anyone's has `port`.
    fn port_taken(&self, sockets: &SocketSet, udp: bool, port: u16) -> bool {
        self.entries.iter().flatten().any(|e| match &e.kind {
            Kind::Tcp { port: p } | Kind::Listener { port: p, .. } => !udp && *p == port,
            Kind::Stream { h, .. } => {
                !udp && sockets.get::<tcp::Socket>(*h).local_endpoint().is_some_and(|l| l.port == port)
            }
            Kind::Udp { h, .. } => udp && sockets.get::<udp::Socket>(*h).endpoint().port == port,
        })
    }

    /// A free port of the ephemeral range.
    fn pick_port(&mut self, sockets: &SocketSet, udp: bool) -> Result<u16, Status> {
        for _ in EPHEMERAL {
            let p = self.next_port;
            self.next_port = if p == *EPHEMERAL.end() { *EPHEMERAL.start() } else { p + 1 };
            if !self.port_taken(sockets, udp, p) {
                return Ok(p);
            }
        }
        Err(Status::AddressInUse)
    }

    /// `OPEN`.
    pub fn open(&mut self, sockets: &mut SocketSet<'static>, owner: u64, udp: bool) -> Result<u32, Status> {
        let kind = if udp {
            Kind::Udp { h: sockets.add(new_udp().ok_or(Status::TooMany)?), peer: None }
        } else {
            Kind::Tcp { port: 0 }
        };
        self.insert(owner, kind).map_err(|kind| {
            if let Kind::Udp { h, .. } = kind {
                sockets.remove(h);
            }
            Status::TooMany
        })
    }

    /// `BIND`: the address bound.
    pub fn bind(
        &mut self,
        sockets: &mut SocketSet,
        owner: u64,
        handle: u32,
        to: ([u8; 4], u16),
    ) -> Result<u64, Status> {
        let i = self.find(owner, handle)?;
        let udp = matches!(self.entry(i).kind, Kind::Udp { .. });
        let port = match to.1 {
            0 => self.pick_port(sockets, udp)?,
            p if self.port_taken(sockets, udp, p) => return Err(Status::AddressInUse),
            p => p,
        };
        let local = if to.0 == [0; 4] { None } else { Some(endpoint(to).addr) };
        match &mut self.entry(i).kind {
            Kind::Tcp { port: p } if *p == 0 => {
                *p = port;
                Ok(addr::encode(to.0, port))
            }
            Kind::Udp { h, .. } => {
                let s = sockets.get_mut::<udp::Socket>(*h);
                if s.is_open() {
                    return Err(Status::BadRequest); // bound already
                }
                s.bind(IpListenEndpoint { addr: local, port }).map_err(|_| Status::BadRequest)?;
                Ok(listen_word(s.endpoint()))
            }
            _ => Err(Status::BadRequest),
        }
    }

    /// `LISTEN`.
    pub fn listen(
        &mut self,
        sockets: &mut SocketSet<'static>,
        owner: u64,
        handle: u32,
        backlog: u32,
    ) -> Result<(), Status> {
        let i = self.find(owner, handle)?;
        let Kind::Tcp { port } = self.entry(i).kind else { return Err(Status::BadRequest) };
        if port == 0 {
            return Err(Status::NotConnected); // bind first
        }
        let backlog = match backlog as usize {
            0 => DEFAULT_BACKLOG,
            b => b.min(MAX_BACKLOG),
        };
        self.entry(i).kind = Kind::Listener { port, backlog, pool: Vec::new(), ready: VecDeque::new(), seen: 0 };
        Self::refill(sockets, &mut self.entry(i).kind, 0);
        Ok(())
    }

    /// Keeps a listener's pool: `wanted` sockets listening (at least
    /// [`LISTENING`], at most [`handshakes`] of the backlog), as long as
    /// fewer than `backlog` connections wait to be accepted (beyond that,
    /// new SYNs are dropped: `expect_connections`). The pool holds at most
    /// that many handshakes + [`LISTENING`] sockets, so handshakes that
    /// never finish (a flood of SYNs, a peer that vanished) take no more
    /// memory than that: past that many of them, the oldest (by when its
    /// handshake was first seen, not by its place in the pool) is given
    /// up and its socket listens again. That happens
    /// after a poll, or before one when this batch's SYNs need sockets and
    /// the pool is full; a burst's listening sockets beyond [`LISTENING`]
    /// are let go after it (every poll of the interface walks them all).
    fn refill(sockets: &mut SocketSet<'static>, kind: &mut Kind, wanted: usize) {
        use tcp::State::{Listen, SynReceived};
        let Kind::Listener { port, backlog, pool, ready, seen } = kind else { return };
        let most = handshakes(*backlog);
        let state = |sockets: &SocketSet, h: SocketHandle| sockets.get::<tcp::Socket>(h).state();
        for p in pool.iter_mut() {
            match state(sockets, p.h) {
                SynReceived if p.since == 0 => {
                    *seen += 1;
                    p.since = *seen;
                }
                SynReceived => {}
                _ => p.since = 0,
            }
        }
        // The oldest handshake, given up: its socket listens again (the
        // peer is sent nothing). Whether there was one.
        let give_up_oldest = |sockets: &mut SocketSet<'static>, pool: &mut Vec<Pooled>| {
            let Some(p) = pool.iter_mut().filter(|p| p.since != 0).min_by_key(|p| p.since) else { return false };
            let s = sockets.get_mut::<tcp::Socket>(p.h);
            s.abort();
            let _ = s.listen(*port);
            p.since = 0;
            true
        };
        let half_open = pool.iter().filter(|p| p.since != 0).count();
        // (Only after a poll: before one, the last ACK of a handshake may
        // be in the batch about to be looked at.)
        if wanted == 0 {
            for _ in most..half_open {
                give_up_oldest(sockets, pool);
            }
            let mut surplus = pool.iter().filter(|p| state(sockets, p.h) == Listen).count().saturating_sub(LISTENING);
            pool.retain(|p| {
                let drop = surplus > 0 && state(sockets, p.h) == Listen;
                if drop {
                    sockets.remove(p.h);
                    surplus -= 1;
                }
                !drop
            });
        }
        if ready.len() >= *backlog {
            return;
        }
        let mut listening = pool.iter().filter(|p| state(sockets, p.h) == Listen).count();
        while listening < wanted.max(LISTENING).min(most) {
            if pool.len() < most + LISTENING {
                // No memory for another: the SYN is dropped
                // (`expect_connections`).
                let Some(mut s) = new_tcp() else { return };
                s.set_timeout(Some(HANDSHAKE_TIMEOUT));
                if s.listen(*port).is_err() {
                    return;
                }
                pool.push(Pooled { h: sockets.add(s), since: 0 });
            } else if !give_up_oldest(sockets, pool) {
                return;
            }
            listening += 1;
        }
    }

    /// Before smoltcp sees a batch of received frames: `syns` holds the
    /// slot and port of each connection they open, and each finds a
    /// socket listening on its port (within the listener's backlog).
    /// Listeners keep only [`LISTENING`] sockets between bursts, since
    /// every poll of the interface walks every socket. smoltcp answers a
    /// SYN that finds no listening socket with a reset; on a port that has
    /// a listener (its backlog full, or no memory for another socket)
    /// the SYN's slot goes into `unserved` instead, to be dropped, as
    /// Linux drops a SYN when its accept queue is full: the peer sends it
    /// again a second later, by when the program may have accepted.
    pub fn expect_connections(
        &mut self,
        sockets: &mut SocketSet<'static>,
        syns: &[(usize, u16)],
        unserved: &mut Vec<usize>,
    ) {
        for e in self.entries.iter_mut().flatten() {
            if let Kind::Listener { port, .. } = e.kind {
                let mine = || syns.iter().filter(|(_, p)| *p == port);
                let wanted = mine().count();
                if wanted > 0 {
                    Self::refill(sockets, &mut e.kind, wanted);
                    let Kind::Listener { pool, ready, backlog, .. } = &e.kind else { continue };
                    // smoltcp gives the SYNs, in order, the listening sockets.
                    let listening = pool.iter().filter(|p| sockets.get::<tcp::Socket>(p.h).is_listening()).count();
                    let room = if ready.len() >= *backlog { 0 } else { listening };
                    unserved.extend(mine().skip(room).map(|(slot, _)| *slot));
                }
            }
        }
    }

    /// `ACCEPT`: the new socket's handle and its peer.
    pub fn accept(&mut self, sockets: &mut SocketSet<'static>, owner: u64, handle: u32) -> Result<(u64, u64), Status> {
        let i = self.find(owner, handle)?;
        let Kind::Listener { ready, .. } = &mut self.entry(i).kind else { return Err(Status::NotConnected) };
        let Some(h) = ready.pop_front() else { return Err(Status::Empty) };
        match self.insert(owner, Kind::Stream { h, shut: false }) {
            Ok(new) => {
                let peer = sockets.get::<tcp::Socket>(h).remote_endpoint().map_or(0, word);
                Self::refill(sockets, &mut self.entry(i).kind, 0);
                Ok((u64::from(new), peer))
            }
            Err(_) => {
                // No room for it: the peer is told at once.
                sockets.get_mut::<tcp::Socket>(h).abort();
                self.lingering.push((h, 0));
                Err(Status::TooMany)
            }
        }
    }

    /// `CONNECT`.
    pub fn connect(
        &mut self,
        cx: &mut Context,
        sockets: &mut SocketSet<'static>,
        owner: u64,
        handle: u32,
        to: ([u8; 4], u16),
    ) -> Result<(), Status> {
        let i = self.find(owner, handle)?;
        let remote = endpoint(to);
        match self.entry(i).kind {
            Kind::Tcp { port } => {
                let port = if port == 0 { self.pick_port(sockets, false)? } else { port };
                let mut s = new_tcp().ok_or(Status::TooMany)?;
                s.set_timeout(Some(HANDSHAKE_TIMEOUT));
                s.connect(cx, remote, port).map_err(|_| Status::BadRequest)?;
                self.entry(i).kind = Kind::Stream { h: sockets.add(s), shut: false };
                Ok(())
            }
            Kind::Udp { h, .. } => {
                self.udp_bound(sockets, h)?;
                let Kind::Udp { peer, .. } = &mut self.entry(i).kind else { unreachable!() };
                *peer = Some(remote);
                Ok(())
            }
            _ => Err(Status::BadRequest),
        }
    }

    /// Binds UDP socket `h` to a port of ours if it has none.
    fn udp_bound(&mut self, sockets: &mut SocketSet, h: SocketHandle) -> Result<(), Status> {
        if !sockets.get::<udp::Socket>(h).is_open() {
            let port = self.pick_port(sockets, true)?;
            sockets.get_mut::<udp::Socket>(h).bind(port).map_err(|_| Status::BadRequest)?;
        }
        Ok(())
    }

    /// `SEND` of `data`: how many bytes were taken.
    pub fn send(
        &mut self,
        sockets: &mut SocketSet,
        owner: u64,
        handle: u32,
        data: &[u8],
        to: Option<([u8; 4], u16)>,
    ) -> Result<u64, Status> {
        let i = self.find(owner, handle)?;
        let r = match self.entry(i).kind {
            Kind::Stream { h, shut } => {
                let s = sockets.get_mut::<tcp::Socket>(h);
                if shut {
                    Err(Status::NotConnected)
                } else if !s.may_send() && s.state() != tcp::State::SynSent {
                    Err(Status::ConnectionFailed) // failed, or closed by us or the peer
                } else {
                    match s.send_slice(data) {
                        Ok(0) if !data.is_empty() => Err(Status::Empty),
                        Ok(n) => Ok(n as u64),
                        Err(_) => Err(Status::Empty), // handshake still on
                    }
                }
            }
            Kind::Udp { h, peer } => {
                let to = to.map(endpoint).or(peer).ok_or(Status::NotConnected)?;
                if data.len() > MAX_DATAGRAM {
                    return Err(Status::TooLarge);
                }
                self.udp_bound(sockets, h)?;
                match sockets.get_mut::<udp::Socket>(h).send_slice(data, to) {
                    Ok(()) => Ok(data.len() as u64),
                    Err(udp::SendError::BufferFull) => Err(Status::Empty),
                    Err(udp::SendError::Unaddressable) => Err(Status::BadRequest),
                }
            }
            _ => Err(Status::NotConnected),
        };
        self.note_told(sockets, i);
        r
    }

    /// `RECV` into `buf`: bytes and the peer.
    pub fn recv(
        &mut self,
        sockets: &mut SocketSet,
        owner: u64,
        handle: u32,
        buf: &mut [u8],
    ) -> Result<(u64, u64), Status> {
        let i = self.find(owner, handle)?;
        let r = match self.entry(i).kind {
            Kind::Stream { h, .. } => {
                let s = sockets.get_mut::<tcp::Socket>(h);
                let peer = s.remote_endpoint().map_or(0, word);
                if s.can_recv() {
                    let n = s.recv_slice(buf).unwrap_or(0);
                    Ok((n as u64, peer))
                } else if s.state() == tcp::State::Closed {
                    Err(Status::ConnectionFailed)
                } else if stream_flags(s, false) & PEER_CLOSED != 0 {
                    Ok((0, peer)) // the end of the stream
                } else {
                    Err(Status::Empty)
                }
            }
            Kind::Udp { h, peer } => {
                let s = sockets.get_mut::<udp::Socket>(h);
                if !s.is_open() {
                    return Err(Status::NotConnected);
                }
                loop {
                    match s.recv() {
                        // A connected socket takes its peer's only.
                        Ok((_, meta)) if peer.is_some_and(|p| p != meta.endpoint) => continue,
                        Ok((data, meta)) => {
                            let n = data.len().min(buf.len());
                            buf[..n].copy_from_slice(&data[..n]);
                            break Ok((n as u64, word(meta.endpoint)));
                        }
                        Err(_) => break Err(Status::Empty),
                    }
                }
            }
            _ => Err(Status::NotConnected),
        };
        self.note_told(sockets, i);
        r
    }

    /// Records that the owner of entry `i` now knows its flags (it was
    /// answered).
    fn note_told(&mut self, sockets: &SocketSet, i: usize) {
        let f = self.flags_of(sockets, i);
        self.tell(i, f);
    }

    fn flags_of(&self, sockets: &SocketSet, i: usize) -> u32 {
        let Some(e) = &self.entries[i] else { return INVALID };
        match &e.kind {
            Kind::Tcp { .. } => 0,
            Kind::Listener { ready, .. } => {
                if ready.is_empty() {
                    0
                } else {
                    READABLE
                }
            }
            Kind::Stream { h, shut } => stream_flags(sockets.get::<tcp::Socket>(*h), *shut),
            Kind::Udp { h, .. } => {
                let s = sockets.get::<udp::Socket>(*h);
                (if s.can_recv() { READABLE } else { 0 }) | (if s.can_send() { WRITABLE } else { 0 })
            }
        }
    }

    /// `POLL`: the flags of `owner`'s socket `handle` (`INVALID` if it has
    /// no such socket), now told.
    pub fn poll(&mut self, sockets: &SocketSet, owner: u64, handle: u32) -> u32 {
        match self.find(owner, handle) {
            Ok(i) => {
                self.note_told(sockets, i);
                self.entry(i).told
            }
            Err(_) => INVALID,
        }
    }

    /// Whether `owner`'s `handle` is a TCP connection.
    pub fn is_stream(&self, owner: u64, handle: u32) -> bool {
        self.find(owner, handle)
            .is_ok_and(|i| matches!(self.entries[i].as_ref().map(|e| &e.kind), Some(Kind::Stream { .. })))
    }

    /// Moves what `owner`'s connection `handle` received into `room` (its
    /// push area): how many bytes (0 if none, or not a connection).
    pub fn push_into(&mut self, sockets: &mut SocketSet, owner: u64, handle: u32, room: &mut [u8]) -> usize {
        let Ok(i) = self.find(owner, handle) else { return 0 };
        let Kind::Stream { h, .. } = self.entry(i).kind else { return 0 };
        let s = sockets.get_mut::<tcp::Socket>(h);
        if !s.can_recv() {
            return 0;
        }
        let n = s.recv_slice(room).unwrap_or(0);
        self.note_told(sockets, i);
        n
    }

    /// `SHUTDOWN`.
    pub fn shutdown(&mut self, sockets: &mut SocketSet, owner: u64, handle: u32) -> Result<(), Status> {
        let i = self.find(owner, handle)?;
        match &mut self.entry(i).kind {
            Kind::Stream { h, shut } => {
                *shut = true;
                sockets.get_mut::<tcp::Socket>(*h).close(); // FIN after what is queued
                Ok(())
            }
            _ => Err(Status::NotConnected),
        }
    }

    /// `NAMES`: local and peer address.
    pub fn names(&mut self, sockets: &SocketSet, owner: u64, handle: u32) -> Result<(u64, u64), Status> {
        let i = self.find(owner, handle)?;
        Ok(match &self.entry(i).kind {
            Kind::Tcp { port } | Kind::Listener { port, .. } => (addr::encode([0; 4], *port), 0),
            Kind::Stream { h, .. } => {
                let s = sockets.get::<tcp::Socket>(*h);
                (s.local_endpoint().map_or(0, word), s.remote_endpoint().map_or(0, word))
            }
            Kind::Udp { h, peer } => (listen_word(sockets.get::<udp::Socket>(*h).endpoint()), peer.map_or(0, word)),
        })
    }

    /// `CLOSE` (`reset`: the client is gone, connections are reset
    /// instead of ended).
    pub fn close(&mut self, sockets: &mut SocketSet, owner: u64, handle: u32, reset: bool) -> Result<(), Status> {
        let i = self.find(owner, handle)?;
        let e = self.entries[i].take().expect("found");
        let now = exo_rt::sys::clock();
        match e.kind {
            Kind::Tcp { .. } => {}
            Kind::Listener { pool, ready, .. } => {
                for h in pool.into_iter().map(|p| p.h).chain(ready) {
                    sockets.get_mut::<tcp::Socket>(h).abort();
                    self.lingering.push((h, now));
                }
            }
            Kind::Stream { h, .. } => {
                let s = sockets.get_mut::<tcp::Socket>(h);
                if reset {
                    s.abort();
                    self.lingering.push((h, now));
                } else {
                    s.close();
                    self.lingering.push((h, now + LINGER_NS));
                }
            }
            Kind::Udp { h, .. } => {
                sockets.remove(h);
            }
        }
        Ok(())
    }

    /// Closes every socket of `owner` (detached, attached again, or gone),
    /// resetting its connections; how many there were.
    pub fn close_all(&mut self, sockets: &mut SocketSet, owner: u64) -> usize {
        let mine: Vec<u32> = (0..self.entries.len())
            .filter(|i| self.entries[*i].as_ref().is_some_and(|e| e.owner == owner))
            .map(|i| self.handle(i))
            .collect();
        for h in &mine {
            let _ = self.close(sockets, owner, *h, true);
        }
        mine.len()
    }

    /// After a poll of the interface: connections made move to their
    /// listener's queue, listeners are refilled, closed connections that
    /// are done are let go; every socket's flags are told (owners whose
    /// sockets gained a flag are to be signalled: [`Table::take_told`]).
    /// `now`: the poll's time (ns since boot), for lingering connections'
    /// deadlines.
    pub fn update(&mut self, sockets: &mut SocketSet<'static>, now: u64) {
        use tcp::State::*;
        self.lingering.retain(|&(h, until)| {
            let state = sockets.get::<tcp::Socket>(h).state();
            let done = matches!(state, Closed | TimeWait);
            if done {
                sockets.remove(h);
            } else if now >= until {
                sockets.get_mut::<tcp::Socket>(h).abort(); // the RST goes out, then it is let go
            }
            !done
        });
        for i in 0..self.entries.len() {
            let Some(e) = self.entries[i].as_mut() else { continue };
            if let Kind::Listener { port, pool, ready, .. } = &mut e.kind {
                pool.retain(|&Pooled { h, .. }| {
                    let s = sockets.get_mut::<tcp::Socket>(h);
                    match s.state() {
                        Listen | SynReceived => true,
                        // A handshake that failed: listen again.
                        Closed => {
                            s.listen(*port).is_ok() || {
                                sockets.remove(h);
                                false
                            }
                        }
                        _ => {
                            ready.push_back(h);
                            false
                        }
                    }
                });
                Self::refill(sockets, &mut e.kind, 0);
            }
            let f = self.flags_of(sockets, i);
            self.tell(i, f);
        }
    }

    /// How many sockets are open, and how many connections.
    pub fn counts(&self) -> (usize, usize) {
        let live = self.entries.iter().flatten();
        (live.clone().count(), live.filter(|e| matches!(e.kind, Kind::Stream { .. })).count())
    }
}
