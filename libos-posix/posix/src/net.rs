//! Sockets: TCP and UDP over IPv4, served by the network server
//! (`exo_protocols::socket`), as file descriptors of this library.
//!
//! [`attach`] connects to the network server on an endpoint slot: a
//! buffer is attached and a notification of this process's own (from its
//! budget) subscribed. Every request is answered at once; a blocking
//! socket that gets "nothing yet" sleeps on the notification, which the
//! server signals when one of this process's sockets changes, and asks
//! again. Sockets made non-blocking ([`set_nonblocking`]) get `EAGAIN`
//! instead, and [`poll`] waits for any of several descriptors, as
//! `poll(2)` does. `read`, `write` and `close` of the library work on
//! socket descriptors.
//!
//! Names are numeric only ([`getaddrinfo`] parses `a.b.c.d` and a port):
//! there is no resolver yet. If the network server is restarted it has
//! lost every socket: operations on the old ones fail with `ECONNRESET`
//! (a blocked call asks again at least once a second, so it notices),
//! new sockets work (the buffer is attached to the new instance).
//! A process's sockets are used by one thread at a time.

use crate::{new_desc, socket_of, with, Desc, Errno, Fd, Result};
use exo_protocols::session::client::Attached;
use exo_protocols::session::Status;
use exo_protocols::socket::{self as proto, addr, Request};
use exo_rt::abi::FOREVER;
use exo_rt::caps::Endpoint;
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;

/// An IPv4 address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketAddr {
    /// The address, `[a, b, c, d]`.
    pub ip: [u8; 4],
    /// The port.
    pub port: u16,
}

impl SocketAddr {
    /// `ip:port`.
    pub const fn new(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr { ip, port }
    }

    fn from_word(w: u64) -> SocketAddr {
        let (ip, port) = addr::decode(w).unwrap_or(([0; 4], 0));
        SocketAddr { ip, port }
    }
}

impl core::fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.ip;
        write!(f, "{a}.{b}.{c}.{d}:{}", self.port)
    }
}

/// Which kind of socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP (`SOCK_STREAM`).
    Stream,
    /// UDP (`SOCK_DGRAM`).
    Datagram,
}

/// A socket descriptor's state in this process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sock {
    handle: u32,
    kind: Kind,
    nonblocking: bool,
    /// Connected (or accepted) once: a failure is then a reset.
    connected: bool,
    /// Which attachment made it: one of an earlier instance of the server
    /// is gone.
    epoch: u64,
}

/// Where the buffer shared with the network server is mapped, and its
/// size: the most bytes one request moves, then the push area, where the
/// server puts what a connection received unasked (`proto::push`), then
/// the status page, where it keeps each socket's flags (`proto::status`).
const BUF_VA: u64 = 0x0000_4200_0000_0000;
const DATA_PAGES: u64 = 16;
const PUSH_PAGES: u64 = 16;
const BUF_PAGES: u64 = DATA_PAGES + PUSH_PAGES + 1;
const CHUNK: usize = (DATA_PAGES * 4096) as usize;

struct Net {
    server: Attached,
    buffer: Mapping,
    epoch: u64,
    /// The server pushes received stream data (it took `PUSH`).
    pushing: bool,
    /// The lot in the push area being read: its number, and the bytes of
    /// it already taken.
    lot: (u64, usize),
}

static NET: SpinLock<Option<Net>> = SpinLock::new(None);

/// Connects to the network server on endpoint `endpoint_slot`.
pub fn attach(endpoint_slot: u64) -> Result<()> {
    if NET.lock().is_some() {
        return Err(Errno::EISCONN);
    }
    let (buffer, server, _) =
        Attached::new(Endpoint::from_slot(endpoint_slot), BUF_PAGES, BUF_VA).map_err(|_| Errno::ENETDOWN)?;
    let mut net = Net { server, buffer, epoch: 1, pushing: false, lot: (0, 0) };
    subscribe(&net)?;
    net.pushing = ask_push(&net);
    *NET.lock() = Some(net);
    Ok(())
}

/// Asks the server to push received stream data: whether it will.
fn ask_push(net: &Net) -> bool {
    let r = net.server.endpoint().call(Request::Push(PUSH_PAGES as u32).encode(), None, FOREVER);
    r.is_ok_and(|m| Status::from_word(m.words[0]) == Some(Status::Ok))
}

/// Hands `f` at most `max` of the bytes the push area holds for
/// connection `k`, where they lie (the library's lock held): how many, or
/// `None` if no lot of its waits there.
fn take_pushed(k: &Sock, max: usize, f: impl FnOnce(&[u8])) -> Option<usize> {
    let mut guard = NET.lock();
    let (area, lot) = push_area(&mut guard, k)?;
    let (seq, len, n) = {
        let (seq, handle, data) = proto::push::waiting(area)?;
        if handle != k.handle {
            return None;
        }
        if lot.0 != seq {
            *lot = (seq, 0);
        }
        let from = lot.1.min(data.len());
        let n = (data.len() - from).min(max);
        f(&data[from..from + n]);
        (seq, data.len(), n)
    };
    lot.1 += n;
    if lot.1 >= len {
        proto::push::take(area, seq);
    }
    Some(n)
}

/// Whether a pushed lot of connection `k`'s waits.
fn lot_for(k: &Sock) -> bool {
    let mut guard = NET.lock();
    push_area(&mut guard, k)
        .and_then(|(area, _)| proto::push::waiting(area))
        .is_some_and(|(_, handle, _)| handle == k.handle)
}

/// The push area `k`'s lots come in, and how far the one being read was
/// taken; `None` if the server does not push, or `k` is of an earlier
/// attachment.
fn push_area<'a>(net: &'a mut Option<Net>, k: &Sock) -> Option<(&'a mut [u8], &'a mut (u64, usize))> {
    let net = net.as_mut().filter(|n| n.pushing && n.epoch == k.epoch)?;
    let (_, area, _) = proto::push::split(net.buffer.as_mut_slice(), PUSH_PAGES as usize)?;
    Some((area, &mut net.lot))
}

/// Connects to the network server this program was given: its endpoint
/// named `sockets` (`ENOENT` if it has none).
pub fn attach_given() -> Result<()> {
    attach(exo_rt::endpoint("sockets").ok_or(Errno::ENOENT)?.slot())
}

/// Has the server signal this process's one notification
/// ([`crate::wake_note`]).
fn subscribe(net: &Net) -> Result<()> {
    let note = crate::wake_note()?;
    let m = net
        .server
        .endpoint()
        .call(Request::Subscribe.encode(), Some(note.slot()), FOREVER)
        .map_err(|_| Errno::ENETDOWN)?;
    match Status::from_word(m.words[0]) {
        Some(Status::Ok) => Ok(()),
        _ => Err(Errno::ENETDOWN),
    }
}

/// What a refusal means for a socket that was (or was not) connected.
fn errno(s: Status, connected: bool) -> Errno {
    match s {
        Status::Empty => Errno::EAGAIN,
        Status::NoSuchSocket => Errno::EBADF,
        Status::AddressInUse => Errno::EADDRINUSE,
        Status::NotConnected => Errno::ENOTCONN,
        Status::ConnectionFailed if connected => Errno::ECONNRESET,
        Status::ConnectionFailed => Errno::ECONNREFUSED,
        Status::TooMany => Errno::EMFILE,
        Status::TooLarge => Errno::EMSGSIZE,
        _ => Errno::EINVAL,
    }
}

/// One request; `fill` writes the buffer first, `take` reads it after a
/// successful answer. A server restarted meanwhile (it answers
/// `NotAttached`) gets this process's buffer again, and the socket the
/// request named is reported reset.
fn request<R>(
    sock: Option<&Sock>,
    r: Request,
    fill: impl FnOnce(&mut [u8]),
    take: impl FnOnce(&[u8], [u64; 2]) -> R,
) -> Result<R> {
    let mut guard = NET.lock();
    let net = guard.as_mut().ok_or(Errno::ENETDOWN)?;
    if sock.is_some_and(|k| k.epoch != net.epoch) {
        return Err(Errno::ECONNRESET);
    }
    fill(net.buffer.as_mut_slice());
    // A call the dead instance held fails with `Dead`; a new instance
    // answers `NotAttached`.
    let status = match net.server.endpoint().call(r.encode(), None, FOREVER) {
        Ok(m) => Status::from_word(m.words[0]).map(|s| (s, [m.words[1], m.words[2]])),
        Err(exo_rt::abi::Error::Dead) => Some((Status::NotAttached, [0, 0])),
        Err(_) => return Err(Errno::ENETDOWN),
    };
    match status {
        Some((Status::Ok, words)) => Ok(take(net.buffer.as_mut_slice(), words)),
        Some((Status::NotAttached, _)) => {
            // A new instance (the supervisor restarted the server): it
            // knows none of our sockets. Attach to it for the next ones.
            net.server.attach_again().map_err(|_| Errno::ENETDOWN)?;
            subscribe(net)?;
            net.epoch += 1;
            if let (_, Some(page)) = proto::status::split(net.buffer.as_mut_slice()) {
                page.fill(0);
            }
            net.pushing = ask_push(net);
            net.lot = (0, 0);
            Err(if sock.is_some() { Errno::ECONNRESET } else { Errno::EAGAIN })
        }
        Some((s, _)) => Err(errno(s, sock.is_some_and(|k| k.connected))),
        None => Err(Errno::EIO),
    }
}

/// The longest a blocked call sleeps before it asks the server again: a
/// restarted server knows nothing of this process and never signals it,
/// so that is how it is noticed.
const LOOK_AGAIN_NS: u64 = 1_000_000_000;

/// Sleeps until the server signals a change (at most `timeout` ns, and
/// [`LOOK_AGAIN_NS`]).
fn wait(timeout: u64) -> Result<()> {
    signalled(timeout).map(|_| ())
}

/// [`wait`]: whether the server signalled (else the time ran out). (The
/// console's signals wake it too: callers look again either way.)
fn signalled(timeout: u64) -> Result<bool> {
    let note = crate::wake_note()?;
    match note.wait(timeout.min(LOOK_AGAIN_NS)) {
        Ok(_) => Ok(true),
        Err(exo_rt::abi::Error::Timeout) => Ok(false),
        Err(_) => Err(Errno::ENETDOWN),
    }
}

/// Makes `op` blocking unless the socket is non-blocking: "nothing yet"
/// sleeps until the server signals, then asks again.
fn blocking<R>(sock: &Sock, mut op: impl FnMut() -> Result<R>) -> Result<R> {
    loop {
        match op() {
            Err(Errno::EAGAIN) if !sock.nonblocking => wait(FOREVER)?,
            r => return r,
        }
    }
}

/// [`blocking`] for a receive on a connection: when the status page says
/// it is connected and has nothing to read (and no lot of its waits),
/// sleeps first instead of asking to hear "nothing yet" (the server
/// signals when that changes). Anything else asks at once, so that a
/// socket that cannot receive hears so at once.
fn blocking_recv<R>(sock: &Sock, op: impl FnMut() -> Result<R>) -> Result<R> {
    let idle = |f: u32| f & proto::CONNECTED != 0 && f & proto::READABLE == 0;
    if !sock.nonblocking && sock.kind == Kind::Stream && told(sock).is_some_and(idle) && !lot_for(sock) {
        wait(FOREVER)?;
    }
    blocking(sock, op)
}

fn set(fd: Fd, sock: Sock) -> Result<()> {
    with(|s| match crate::desc(s, fd)? {
        Desc::Socket(k) => {
            *k = sock;
            Ok(())
        }
        Desc::File(_) | Desc::Pipe(..) | Desc::Device(_) => Err(Errno::ENOTSOCK),
    })
}

/// A new socket (`socket(AF_INET, SOCK_STREAM or SOCK_DGRAM, 0)`).
pub fn socket(kind: Kind) -> Result<Fd> {
    let open = Request::Open { udp: kind == Kind::Datagram };
    let open_once = || request(None, open, |_| {}, |_, [h, _]| h as u32);
    // A restarted server is attached again on the way: once more.
    let handle = match open_once() {
        Err(Errno::EAGAIN) => open_once()?,
        r => r?,
    };
    let epoch = NET.lock().as_ref().map_or(0, |n| n.epoch);
    descriptor(Sock { handle, kind, nonblocking: false, connected: false, epoch })
}

/// A descriptor for `sock` (closed again if there is none free).
fn descriptor(sock: Sock) -> Result<Fd> {
    with(|s| new_desc(s, Desc::Socket(sock))).inspect_err(|_| {
        let _ = close_sock(sock);
    })
}

/// Makes the socket's operations return `EAGAIN` instead of waiting
/// (`O_NONBLOCK`), or wait again.
pub fn set_nonblocking(fd: Fd, on: bool) -> Result<()> {
    let mut k = socket_of(fd)?;
    k.nonblocking = on;
    set(fd, k)
}

/// Binds the socket to a local address (port 0: one the server picks);
/// the address bound.
pub fn bind(fd: Fd, to: SocketAddr) -> Result<SocketAddr> {
    let k = socket_of(fd)?;
    request(Some(&k), Request::Bind(k.handle, (to.ip, to.port)), |_| {}, |_, [a, _]| SocketAddr::from_word(a))
}

/// Listens on a bound TCP socket, with at most `backlog` connections
/// waiting to be accepted (0: the server's default).
pub fn listen(fd: Fd, backlog: u32) -> Result<()> {
    let k = socket_of(fd)?;
    request(Some(&k), Request::Listen(k.handle, backlog), |_| {}, |_, _| ())
}

/// Accepts a connection: its descriptor (blocking, whatever the
/// listener is) and its peer.
pub fn accept(fd: Fd) -> Result<(Fd, SocketAddr)> {
    let k = socket_of(fd)?;
    let (handle, peer) =
        blocking(&k, || request(Some(&k), Request::Accept(k.handle), |_| {}, |_, [h, p]| (h as u32, p)))?;
    let sock = Sock { handle, kind: Kind::Stream, nonblocking: false, connected: true, epoch: k.epoch };
    Ok((descriptor(sock)?, SocketAddr::from_word(peer)))
}

/// Connects: TCP waits for the handshake (a non-blocking socket does not:
/// [`poll`] for writable); UDP sets the peer.
pub fn connect(fd: Fd, to: SocketAddr) -> Result<()> {
    let mut k = socket_of(fd)?;
    if k.connected {
        return Err(Errno::EISCONN);
    }
    request(Some(&k), Request::Connect(k.handle, (to.ip, to.port)), |_| {}, |_, _| ())?;
    if k.kind == Kind::Datagram {
        return Ok(());
    }
    let r = if k.nonblocking {
        Ok(())
    } else {
        blocking(&k, || {
            let f = flags(&k)?;
            if f & proto::FAILED != 0 {
                Err(Errno::ECONNREFUSED)
            } else if f & proto::CONNECTED != 0 {
                Ok(())
            } else {
                Err(Errno::EAGAIN)
            }
        })
    };
    // Connected from now on (a later failure is a reset), even while a
    // non-blocking handshake goes on.
    k.connected = r.is_ok();
    set(fd, k)?;
    r
}

/// The flags the server last told of `k`, from the status page, if it
/// has them (`None`: ask it).
fn told(k: &Sock) -> Option<u32> {
    let guard = NET.lock();
    let net = guard.as_ref().filter(|n| n.epoch == k.epoch)?;
    proto::status::read(proto::status::page(net.buffer.as_slice())?, k.handle)
}

/// The poll flags of one socket.
fn flags(k: &Sock) -> Result<u32> {
    request(
        Some(k),
        Request::Poll(1),
        |b| b[..4].copy_from_slice(&k.handle.to_le_bytes()),
        |b, _| u32::from_le_bytes(b[..4].try_into().expect("4 bytes")),
    )
}

/// Sends `data` (TCP: all of it, unless non-blocking, when as much as
/// fits; UDP: one datagram, to `to` or the connected peer); bytes sent.
pub fn sendto(fd: Fd, data: &[u8], to: Option<SocketAddr>) -> Result<usize> {
    send_on(socket_of(fd)?, data, to)
}

/// Sends `data` on a connected socket.
pub fn send(fd: Fd, data: &[u8]) -> Result<usize> {
    sendto(fd, data, None)
}

pub(crate) fn send_on(k: Sock, data: &[u8], to: Option<SocketAddr>) -> Result<usize> {
    let to = to.map(|a| (a.ip, a.port));
    if k.kind == Kind::Datagram {
        if data.len() > proto::MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        return blocking(&k, || {
            request(
                Some(&k),
                Request::Send(k.handle, data.len() as u32, to),
                |b| b[..data.len()].copy_from_slice(data),
                |_, [n, _]| n as usize,
            )
        });
    }
    let mut sent = 0;
    while sent < data.len() || data.is_empty() {
        let chunk = &data[sent..(sent + CHUNK).min(data.len())];
        let once = || {
            request(
                Some(&k),
                Request::Send(k.handle, chunk.len() as u32, None),
                |b| b[..chunk.len()].copy_from_slice(chunk),
                |_, [n, _]| n as usize,
            )
        };
        match once() {
            Ok(n) => sent += n,
            Err(Errno::EAGAIN) if k.nonblocking && sent > 0 => break,
            Err(Errno::EAGAIN) if !k.nonblocking => wait(FOREVER)?,
            Err(Errno::ECONNREFUSED | Errno::ECONNRESET | Errno::ENOTCONN) if sent > 0 => break,
            Err(Errno::ENOTCONN) if k.connected => return Err(Errno::EPIPE),
            Err(e) => return Err(e),
        }
        if data.is_empty() {
            break;
        }
    }
    Ok(sent)
}

/// Receives into `buf`: bytes (TCP: 0 at the end of the stream; UDP: one
/// datagram, cut to `buf`) and the sender.
pub fn recvfrom(fd: Fd, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
    recv_on(socket_of(fd)?, buf)
}

/// Receives into `buf`; 0 at the end of a TCP stream.
pub fn recv(fd: Fd, buf: &mut [u8]) -> Result<usize> {
    recvfrom(fd, buf).map(|(n, _)| n)
}

pub(crate) fn recv_on(k: Sock, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
    received(k, buf.len(), |data| buf[..data.len()].copy_from_slice(data))
}

/// Receives at most `max` bytes on a connected socket and hands them to
/// `f` where they lie in the buffer shared with the network server (a
/// pushed lot, or what a request put in the data area), without copying
/// them out: how many (0 at the end of a TCP stream, when `f` is not
/// called). `f` runs with this library's lock held: it must not use the
/// network. Blocks as `recv` does.
pub fn recv_in_place(fd: Fd, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize> {
    received(socket_of(fd)?, max, |data| {
        if !data.is_empty() {
            f(data)
        }
    })
    .map(|(n, _)| n)
}

/// [`recv_on`] and [`recv_in_place`]: at most `max` bytes (a datagram
/// longer is cut), handed to `f`; how many, and from whom.
fn received(k: Sock, max: usize, mut f: impl FnMut(&[u8])) -> Result<(usize, SocketAddr)> {
    let want = max.min(CHUNK);
    if k.kind == Kind::Stream && max == 0 {
        return Ok((0, SocketAddr::from_word(0)));
    }
    blocking_recv(&k, || {
        // Pushed data first, without a request (a connection's peer is
        // not reported with them: `getpeername` has it).
        if k.kind == Kind::Stream {
            if let Some(n) = take_pushed(&k, want, &mut f) {
                return Ok((n, SocketAddr::from_word(0)));
            }
        }
        request(
            Some(&k),
            Request::Recv(k.handle, want as u32),
            |_| {},
            |b, [n, peer]| {
                let n = (n as usize).min(want);
                f(&b[..n]);
                (n, SocketAddr::from_word(peer))
            },
        )
    })
}

/// No more sending on the socket: the peer reads the end of the stream.
pub fn shutdown(fd: Fd) -> Result<()> {
    let k = socket_of(fd)?;
    request(Some(&k), Request::Shutdown(k.handle), |_| {}, |_, _| ())
}

pub(crate) fn close_sock(k: Sock) -> Result<()> {
    match request(Some(&k), Request::Close(k.handle), |_| {}, |_, _| ()) {
        // The server that had it is gone: nothing left to close.
        Err(Errno::ECONNRESET) => Ok(()),
        r => r,
    }
}

/// The socket's own address (`getsockname`).
pub fn local_addr(fd: Fd) -> Result<SocketAddr> {
    let k = socket_of(fd)?;
    request(Some(&k), Request::Names(k.handle), |_| {}, |_, [a, _]| SocketAddr::from_word(a))
}

/// The connected peer's address (`getpeername`).
pub fn peer_addr(fd: Fd) -> Result<SocketAddr> {
    let k = socket_of(fd)?;
    match request(Some(&k), Request::Names(k.handle), |_| {}, |_, [_, p]| p)? {
        0 => Err(Errno::ENOTCONN),
        p => Ok(SocketAddr::from_word(p)),
    }
}

/// `poll` events (the Linux values).
pub mod events {
    /// Something to read (or accept, or the end of the stream).
    pub const POLLIN: i16 = 0x1;
    /// Room to write.
    pub const POLLOUT: i16 = 0x4;
    /// The connection failed.
    pub const POLLERR: i16 = 0x8;
    /// The peer ended its stream.
    pub const POLLHUP: i16 = 0x10;
    /// Not an open descriptor.
    pub const POLLNVAL: i16 = 0x20;
}

/// One descriptor of a [`poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollFd {
    /// The descriptor.
    pub fd: Fd,
    /// What to wait for ([`events`]).
    pub events: i16,
    /// What happened (filled in).
    pub revents: i16,
}

impl PollFd {
    /// Waits on `fd` for `events`.
    pub const fn new(fd: Fd, events: i16) -> PollFd {
        PollFd { fd, events, revents: 0 }
    }
}

/// Waits until one of `fds` has what it waits for (or an error or end),
/// at most `timeout_ns` (`None`: for ever); how many have something.
/// Files are always ready; descriptor 0 reading the console is readable
/// when a line (or the end of the input) was typed.
pub fn poll(fds: &mut [PollFd], timeout_ns: Option<u64>) -> Result<usize> {
    use events::*;
    let deadline = timeout_ns.map(|t| exo_rt::sys::clock().saturating_add(t));
    let socks: alloc::vec::Vec<Option<Sock>> = fds.iter().map(|p| socket_of(p.fd).ok()).collect();
    if fds.len() * 4 > CHUNK {
        return Err(Errno::EINVAL);
    }
    // The flags come from the status page; the server is asked when it
    // lacks a socket's, and after a wait it did not end (a restarted
    // server knows nothing of this process and never signals).
    let mut ask = false;
    loop {
        // Asked only when needed: the common case allocates nothing here.
        let known = |k: &Option<Sock>| k.as_ref().map_or(Some(0), told);
        let asked: Option<alloc::vec::Vec<u32>> = if !socks.iter().any(Option::is_some) {
            None
        } else if ask || socks.iter().any(|k| known(k).is_none()) {
            let r = request(
                None,
                Request::Poll(socks.len() as u32),
                |b| {
                    for (i, k) in socks.iter().enumerate() {
                        b[i * 4..i * 4 + 4].copy_from_slice(&k.map_or(0, |k| k.handle).to_le_bytes());
                    }
                },
                |b, _| {
                    (0..socks.len()).map(|i| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().expect("4"))).collect()
                },
            );
            match r {
                // Attached to a restarted server on the way: look again
                // (the old sockets now report POLLERR).
                Err(Errno::EAGAIN) => continue,
                r => Some(r?),
            }
        } else {
            None
        };
        let flag = |i: usize| asked.as_ref().map_or_else(|| known(&socks[i]).unwrap_or(0), |a| a[i]);
        let mut ready = 0;
        for (i, (p, k)) in fds.iter_mut().zip(&socks).enumerate() {
            p.revents = match k {
                None if p.fd == 0 && crate::stdin_is_console() => {
                    p.events & if crate::console_in::ready()? { POLLIN } else { 0 }
                }
                // A file: always ready; nothing: invalid.
                None if socket_of(p.fd).err() == Some(Errno::ENOTSOCK) => p.events & (POLLIN | POLLOUT),
                None => POLLNVAL,
                Some(k) if k.epoch != NET.lock().as_ref().map_or(0, |n| n.epoch) => POLLERR,
                Some(k) => {
                    let f = flag(i);
                    let mut r = 0;
                    if f & proto::READABLE != 0 || lot_for(k) {
                        r |= POLLIN;
                    }
                    if f & proto::WRITABLE != 0 {
                        r |= POLLOUT;
                    }
                    if f & proto::PEER_CLOSED != 0 {
                        r |= POLLHUP;
                    }
                    if f & proto::FAILED != 0 {
                        r |= POLLERR;
                    }
                    if f & proto::INVALID != 0 {
                        r = POLLNVAL;
                    }
                    r & (p.events | POLLERR | POLLHUP | POLLNVAL)
                }
            };
            ready += usize::from(p.revents != 0);
        }
        if ready > 0 {
            return Ok(ready);
        }
        let now = exo_rt::sys::clock();
        ask = !match deadline {
            Some(d) if now >= d => return Ok(0),
            Some(d) => signalled(d - now)?,
            None => signalled(FOREVER)?,
        };
    }
}

/// `getaddrinfo` for numeric names: `a.b.c.d` (or `localhost`) and a
/// port number; any other name is `EAFNOSUPPORT` (no resolver yet).
pub fn getaddrinfo(host: &str, port: &str) -> Result<SocketAddr> {
    let (ip, port) = addr::parse(host, port).ok_or(Errno::EAFNOSUPPORT)?;
    Ok(SocketAddr { ip, port })
}
