//! `nc`: TCP and UDP from the command line, on the POSIX library's
//! sockets (the network server is the endpoint named `sockets`).
//!
//! - `nc HOST PORT [TEXT...]`: connects over TCP, sends TEXT and a
//!   newline (if given) and then, with `< FILE` or after a `|`, its
//!   input; ends its side, and prints all that comes back until the peer
//!   ends. Without TEXT, at the console, it sends each line as it is
//!   typed and prints what comes back as it comes (^D ends its side; the
//!   peer ending the connection ends `nc`).
//! - `nc -u HOST PORT TEXT...`: sends TEXT as one datagram and prints the
//!   answer (waiting up to 5 s for it).
//! - `nc -l PORT`: accepts one TCP connection and prints all it sends
//!   until it ends; `nc -l -u PORT`: prints one datagram.
//!
//! What comes in goes to standard output byte for byte (a file or a
//! pipe gets exactly what was sent); what `nc` says of itself (listening,
//! a connection from ...) goes to the console.
//!
//! HOST is numeric (`10.0.2.2`) or `localhost`: there is no resolver.
//! Status 0 on success, 1 when the network fails, 2 for bad arguments.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use exo_posix::net::{self, events, Kind, PollFd, SocketAddr};
use exo_posix::{self as posix, Errno, Fd};
use exo_rt::eprintln;

exo_posix::entry!(main);

/// How long a UDP client waits for its answer.
const ANSWER_NS: u64 = 5_000_000_000;

fn main(args: &str) -> i32 {
    // The words as the user meant them: a quoted TEXT keeps its spaces
    // and the shell's characters (`exo_posix::argv`).
    let owned = posix::argv::words(args);
    let mut words: Vec<&str> = owned.iter().map(String::as_str).collect();
    let listen = take_flag(&mut words, "-l");
    let udp = take_flag(&mut words, "-u");
    let kind = if udp { Kind::Datagram } else { Kind::Stream };
    if let Err(e) = net::attach_given() {
        eprintln!("nc: no network server (an endpoint named sockets): {e:?}");
        return 1;
    }
    let r = match (listen, words.as_slice()) {
        (true, [port]) => match port.parse::<u16>() {
            Ok(p) if p != 0 => serve_once(kind, p),
            _ => return usage(),
        },
        (false, [host, port, text @ ..]) => match net::getaddrinfo(host, port) {
            Ok(to) if !(udp && text.is_empty()) => talk(kind, to, &text.join(" ")),
            Ok(_) => return usage(),
            Err(e) => {
                eprintln!("nc: {host}:{port}: not a numeric address and port ({e:?})");
                return 2;
            }
        },
        _ => return usage(),
    };
    match r {
        Ok(()) => 0,
        Err((what, e)) => {
            eprintln!("nc: {what}: {e:?}");
            1
        }
    }
}

fn usage() -> i32 {
    eprintln!("nc: usage: nc [-u] HOST PORT [TEXT...] | nc -l [-u] PORT");
    2
}

fn take_flag(words: &mut Vec<&str>, flag: &str) -> bool {
    let before = words.len();
    words.retain(|w| *w != flag);
    words.len() != before
}

type Failed = (&'static str, Errno);

/// Writes `bytes` to standard output as they came (any bytes: a file
/// or a pipe gets them exactly).
fn show(bytes: &[u8]) -> Result<(), Failed> {
    exo_utils::out(bytes).map_err(|e| ("standard output", e))
}

/// The client: sends `text` to `to` and prints the answer.
fn talk(kind: Kind, to: SocketAddr, text: &str) -> Result<(), Failed> {
    let fd = net::socket(kind).map_err(|e| ("socket", e))?;
    let r = talk_on(fd, kind, to, text);
    let _ = posix::close(fd);
    r
}

fn talk_on(fd: Fd, kind: Kind, to: SocketAddr, text: &str) -> Result<(), Failed> {
    net::connect(fd, to).map_err(|e| ("connect", e))?;
    let mut buf = vec![0u8; 64 * 1024];
    if kind == Kind::Datagram {
        net::send(fd, text.as_bytes()).map_err(|e| ("send", e))?;
        let mut p = [PollFd::new(fd, events::POLLIN)];
        if net::poll(&mut p, Some(ANSWER_NS)).map_err(|e| ("poll", e))? == 0 {
            return Err(("no answer in 5 s", Errno::ETIMEDOUT));
        }
        let n = net::recv(fd, &mut buf).map_err(|e| ("recv", e))?;
        return show(&buf[..n]);
    }
    if !text.is_empty() {
        let mut line = String::from(text);
        line.push('\n');
        posix::write_all(fd, line.as_bytes()).map_err(|e| ("send", e))?;
    }
    if posix::stdin_is_console() && text.is_empty() {
        return converse(fd, &mut buf);
    }
    // `nc HOST PORT < FILE` (or after a `|`): the input follows.
    if posix::stdin_redirected() && !posix::stdin_is_console() {
        loop {
            match posix::read(0, &mut buf).map_err(|e| ("standard input", e))? {
                0 => break,
                n => posix::write_all(fd, &buf[..n]).map_err(|e| ("send", e))?,
            }
        }
    }
    net::shutdown(fd).map_err(|e| ("shutdown", e))?;
    loop {
        match net::recv(fd, &mut buf).map_err(|e| ("recv", e))? {
            0 => return Ok(()),
            n => show(&buf[..n])?,
        }
    }
}

/// At the console: each line typed goes out as it is typed, and what
/// comes back is printed as it comes, both at once (one `poll` over the
/// connection and the console); ^D ends this side, and the rest that
/// comes back is printed until the peer ends.
fn converse(fd: Fd, buf: &mut [u8]) -> Result<(), Failed> {
    let mut typing = true;
    loop {
        let mut p = [PollFd::new(fd, events::POLLIN), PollFd::new(0, events::POLLIN)];
        let watched = if typing { 2 } else { 1 };
        net::poll(&mut p[..watched], None).map_err(|e| ("poll", e))?;
        if p[0].revents != 0 {
            match net::recv(fd, buf).map_err(|e| ("recv", e))? {
                0 => return Ok(()),
                n => show(&buf[..n])?,
            }
        }
        if typing && p[1].revents != 0 {
            match posix::read(0, buf).map_err(|e| ("standard input", e))? {
                0 => {
                    typing = false;
                    net::shutdown(fd).map_err(|e| ("shutdown", e))?;
                }
                n => posix::write_all(fd, &buf[..n]).map_err(|e| ("send", e))?,
            }
        }
    }
}

/// The listener: prints one connection's bytes (or one datagram).
fn serve_once(kind: Kind, port: u16) -> Result<(), Failed> {
    let fd = net::socket(kind).map_err(|e| ("socket", e))?;
    net::bind(fd, SocketAddr::new([0; 4], port)).map_err(|e| ("bind", e))?;
    let mut buf = vec![0u8; 64 * 1024];
    if kind == Kind::Datagram {
        eprintln!("nc: waiting for a datagram on UDP port {port}");
        let (n, from) = net::recvfrom(fd, &mut buf).map_err(|e| ("recv", e))?;
        eprintln!("nc: {n} bytes from {from}:");
        let r = show(&buf[..n]);
        let _ = posix::close(fd);
        return r;
    }
    net::listen(fd, 1).map_err(|e| ("listen", e))?;
    eprintln!("nc: listening on TCP port {port}");
    let (conn, peer) = net::accept(fd).map_err(|e| ("accept", e))?;
    let _ = posix::close(fd);
    eprintln!("nc: connection from {peer}");
    let r = loop {
        match net::recv(conn, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = show(&buf[..n]) {
                    break Err(e);
                }
            }
            Err(e) => break Err(("recv", e)),
        }
    };
    let _ = posix::close(conn);
    r
}
