//! `echod [PORT] [discard] [backlog N] [serve N]`: the echo service (RFC 862) on TCP
//! and UDP port 7 (or PORT), or with `discard` the discard service (RFC
//! 863: bytes read and dropped, the sink of the network benchmark), an
//! application of the POSIX library's sockets: one
//! event loop over `poll`, many connections at once, each one's bytes
//! sent back as they come (a connection that stops reading is not read
//! either: TCP's flow control pushes back on its sender). If the network
//! server is restarted, its connections end with `ECONNRESET` and it
//! listens again. `backlog N`: connections the listener holds before
//! they are accepted (default 32). `serve N` ends after N TCP connections that carried
//! data have ended (for tests; a peer that connects and goes away without
//! a byte is not counted). The network server is its endpoint named
//! `sockets`.
//!
//! The discard service reads each connection's bytes where the network
//! server put them (`net::recv_in_place`, no copy) and sums them as it
//! goes: the line that ends a connection gives the sum, which whoever sent
//! the bytes can check ([`StreamSum`]).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use exo_posix::net::{self, events::*, Kind, PollFd, SocketAddr};
use exo_posix::{self as posix, Errno, Fd};
use exo_rt::{eprintln, println};

exo_posix::entry!(main);

/// Datagrams logged one by one; the rest are counted.
const LOGGED_DATAGRAMS: u64 = 5;

struct Conn {
    fd: Fd,
    peer: SocketAddr,
    /// Where bytes to echo are received (empty until the first), the
    /// bytes read into it, and how many of those were sent back.
    pending: Vec<u8>,
    filled: usize,
    sent: usize,
    /// Bytes echoed (or discarded).
    echoed: u64,
    /// The sum of the bytes discarded.
    sum: StreamSum,
    /// The peer ended its stream.
    ended: bool,
}

fn main(args: &str) -> i32 {
    let mut port = 7u16;
    let mut stop_after: Option<u64> = None;
    let mut discard = false;
    let mut backlog = 32;
    let words = posix::argv::words(args);
    let mut words = words.iter().map(String::as_str);
    while let Some(w) = words.next() {
        match (w, w.parse::<u16>()) {
            ("discard", _) => discard = true,
            ("serve", _) => match words.next().and_then(|n| n.parse().ok()) {
                Some(n) => stop_after = Some(n),
                None => return usage(),
            },
            ("backlog", _) => match words.next().and_then(|n| n.parse().ok()) {
                Some(n) => backlog = n,
                None => return usage(),
            },
            (_, Ok(p)) if p != 0 => port = p,
            _ => return usage(),
        }
    }
    if let Err(e) = net::attach_given() {
        eprintln!("echod: no network server (an endpoint named sockets): {e:?}");
        return 1;
    }
    let (mut listener, mut udp) = match listen(port, backlog) {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!("echod: cannot serve port {port}: {e:?}");
            return 1;
        }
    };
    let (service, verb) = if discard { ("discard", "discarded") } else { ("echo", "echoed") };
    println!("echod: {service} on TCP and UDP port {port}");
    let mut conns: Vec<Conn> = Vec::new();
    let (mut served, mut datagrams) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    let mut fds: Vec<PollFd> = Vec::new();
    while stop_after.is_none_or(|n| served < n) {
        fds.clear();
        fds.push(PollFd::new(listener, POLLIN));
        fds.push(PollFd::new(udp, POLLIN));
        for c in &conns {
            fds.push(PollFd::new(c.fd, if c.sent < c.filled { POLLOUT } else { POLLIN }));
        }
        if let Err(e) = net::poll(&mut fds, None) {
            eprintln!("echod: poll: {e:?}");
            return 1;
        }
        if (fds[0].revents | fds[1].revents) & (POLLERR | POLLNVAL) != 0 {
            // The network server was restarted and lost every socket (the
            // connections' own errors end them below): listen again.
            let _ = posix::close(listener);
            let _ = posix::close(udp);
            match listen(port, backlog) {
                Ok((l, u)) => (listener, udp) = (l, u),
                Err(e) => {
                    eprintln!("echod: the network server lost its sockets, and listening again failed: {e:?}");
                    return 1;
                }
            }
            println!("echod: the network server lost its sockets; listening again on port {port}");
            fds[0].revents = 0;
            fds[1].revents = 0;
        }
        if fds[0].revents != 0 {
            accept_all(listener, port, &mut conns);
        }
        if fds[1].revents != 0 {
            datagrams += echo_datagrams(udp, port, &mut buf, datagrams, discard);
        }
        let mut big = conns.iter().filter(|c| c.pending.len() > SMALL_BUFFER).count();
        for (c, p) in conns.iter_mut().zip(&fds[2..]) {
            if p.revents != 0 {
                serve(c, &mut buf, discard, &mut big);
            }
        }
        conns.retain(|c| {
            let done = c.ended && c.sent == c.filled;
            if done {
                let _ = posix::close(c.fd);
                if discard {
                    println!(
                        "echod: TCP {port}: connection ended, {} bytes {verb}, sum {:016x} ({})",
                        c.echoed,
                        c.sum.value(),
                        c.peer
                    );
                } else {
                    println!("echod: TCP {port}: connection ended, {} bytes {verb} ({})", c.echoed, c.peer);
                }
                served += u64::from(c.echoed > 0);
            }
            !done
        });
    }
    println!("echod: {served} connection(s) served, {datagrams} datagram(s) {verb}; stopping");
    0
}

fn usage() -> i32 {
    eprintln!("echod: usage: echod [PORT] [discard] [backlog N] [serve N]");
    2
}

/// The TCP listener and the UDP socket on `port`, both non-blocking.
fn listen(port: u16, backlog: u32) -> Result<(Fd, Fd), Errno> {
    let any = SocketAddr::new([0; 4], port);
    let tcp = net::socket(Kind::Stream)?;
    net::bind(tcp, any)?;
    net::listen(tcp, backlog)?;
    net::set_nonblocking(tcp, true)?;
    let udp = net::socket(Kind::Datagram)?;
    net::bind(udp, any)?;
    net::set_nonblocking(udp, true)?;
    Ok((tcp, udp))
}

/// Accepts every connection waiting.
fn accept_all(listener: Fd, port: u16, conns: &mut Vec<Conn>) {
    loop {
        match net::accept(listener) {
            Ok((fd, peer)) => {
                let _ = net::set_nonblocking(fd, true);
                println!("echod: TCP {port}: connection from {peer}");
                conns.push(Conn {
                    fd,
                    peer,
                    pending: Vec::new(),
                    filled: 0,
                    sent: 0,
                    echoed: 0,
                    sum: StreamSum::default(),
                    ended: false,
                });
            }
            Err(Errno::EAGAIN) => return,
            Err(e) => {
                println!("echod: accept: {e:?}");
                return;
            }
        }
    }
}

/// Sends every datagram waiting back where it came from (or drops it, to
/// `discard`); how many.
fn echo_datagrams(udp: Fd, port: u16, buf: &mut [u8], before: u64, discard: bool) -> u64 {
    let mut n = 0;
    loop {
        match net::recvfrom(udp, buf) {
            Ok(_) if discard => n += 1,
            Ok((len, from)) => {
                match net::sendto(udp, &buf[..len], Some(from)) {
                    Ok(_) if before + n < LOGGED_DATAGRAMS => {
                        println!("echod: UDP {port}: {len} bytes from {from} echoed");
                    }
                    Ok(_) => {}
                    Err(e) => println!("echod: UDP {port}: {len} bytes from {from} not echoed: {e:?}"),
                }
                n += 1;
            }
            Err(Errno::EAGAIN) => return n,
            Err(e) => {
                println!("echod: UDP {port}: {e:?}");
                return n;
            }
        }
    }
}

/// Connections that get a buffer as large as `buf` (64 KiB) to echo
/// from; the others get [`SMALL_BUFFER`], so that a hundred connections
/// at once fit a small heap (a program started from the shell has 2 MiB).
const BIG_BUFFERS: usize = 16;
const SMALL_BUFFER: usize = 4096;

/// A connection's buffer for the bytes to echo: `size` bytes, or
/// [`SMALL_BUFFER`] when the heap has no room for those, or none (the
/// connection is then ended, the others go on).
fn buffer(size: usize) -> Option<Vec<u8>> {
    [size, SMALL_BUFFER].into_iter().find_map(|n| {
        let mut v = Vec::new();
        v.try_reserve_exact(n).ok()?;
        v.resize(n, 0);
        Some(v)
    })
}

impl Conn {
    /// The connection failed: it ends, with nothing more to send.
    fn fail(&mut self, e: Errno) {
        println!("echod: connection from {}: {e:?}", self.peer);
        self.ended = true;
        (self.filled, self.sent) = (0, 0);
    }
}

/// Moves one connection's bytes along: sends what is pending, else reads
/// (and, to `discard`, drops what it read). `big`: connections with a
/// large buffer.
fn serve(c: &mut Conn, buf: &mut [u8], discard: bool, big: &mut usize) {
    if discard && !c.ended {
        // Read where they lie, summed, dropped.
        let sum = &mut c.sum;
        match net::recv_in_place(c.fd, buf.len(), |data| sum.update(data)) {
            Ok(0) => c.ended = true,
            Ok(n) => c.echoed += n as u64,
            Err(Errno::EAGAIN) => {}
            Err(e) => c.fail(e),
        }
        return;
    }
    if c.sent == c.filled && !c.ended {
        // Bytes to echo are received straight into `pending`, to be sent
        // back from there.
        if c.pending.is_empty() {
            match buffer(if *big < BIG_BUFFERS { buf.len() } else { SMALL_BUFFER }) {
                Some(pending) => c.pending = pending,
                None => return c.fail(Errno::ENOMEM),
            }
            *big += usize::from(c.pending.len() > SMALL_BUFFER);
        }
        (c.filled, c.sent) = (0, 0);
        match net::recv(c.fd, &mut c.pending) {
            Ok(0) => c.ended = true,
            Ok(n) => c.filled = n,
            Err(Errno::EAGAIN) => {}
            Err(e) => return c.fail(e),
        }
    }
    while c.sent < c.filled {
        match net::send(c.fd, &c.pending[c.sent..c.filled]) {
            Ok(n) => {
                c.sent += n;
                c.echoed += n as u64;
            }
            Err(Errno::EAGAIN) => return,
            Err(e) => return c.fail(e),
        }
    }
}

/// A position-dependent sum of a byte stream, cheap enough to take at the
/// speed bytes arrive: the stream is read as little-endian 64-bit words
/// (the last one padded with zeros) and, as in Fletcher's checksum, `a`
/// adds up the words and `b` adds up the successive values of `a`, both
/// modulo 2^64; the sum is `b`. A byte changed, lost or moved to another
/// place in its word, or a word moved, changes it.
#[derive(Default)]
struct StreamSum {
    a: u64,
    b: u64,
    /// The bytes of an unfinished word, and how many.
    partial: [u8; 8],
    filled: usize,
}

impl StreamSum {
    fn word(&mut self, w: u64) {
        self.a = self.a.wrapping_add(w);
        self.b = self.b.wrapping_add(self.a);
    }

    fn update(&mut self, mut data: &[u8]) {
        if self.filled > 0 {
            let n = (8 - self.filled).min(data.len());
            self.partial[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled < 8 {
                return;
            }
            self.filled = 0;
            self.word(u64::from_le_bytes(self.partial));
        }
        let words = data.chunks_exact(8);
        let rest = words.remainder();
        for w in words {
            self.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        self.partial[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// The sum of the stream so far (an unfinished word padded).
    fn value(&self) -> u64 {
        if self.filled == 0 {
            return self.b;
        }
        let mut last = [0u8; 8];
        last[..self.filled].copy_from_slice(&self.partial[..self.filled]);
        self.b.wrapping_add(self.a.wrapping_add(u64::from_le_bytes(last)))
    }
}
