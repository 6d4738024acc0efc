//! What every ExoV6 file server shares, whatever reads its file system:
//! the file protocol served on an endpoint, in the session every service
//! shares (`exo_protocols::session::server`), with the test hooks that
//! kill or hang a server in the middle of a request. The native server
//! (`fs-server`, this crate's binary) and the NetBSD one (`fs-rump`,
//! crate `exo-fs-rump`) serve through it.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use exo_fs_core::backend::FileSystem;
use exo_protocols::file::{self, ErrorKind, Request, Response, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{FOREVER, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Message};
use exo_rt::println;

/// Where client buffers are mapped: a 64 MiB window each.
const CLIENT_VA: u64 = 0x60_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 20;
const MAX_CLIENTS: usize = 16;

/// What a test hook does in the middle of a request.
#[derive(Clone, Copy)]
pub enum Hook {
    /// Exit (code 70), as a crashing server would.
    Crash,
    /// Stop answering for good, as a deadlocked server would.
    Hang,
    /// Call this (a server's own way of failing, named for the report).
    Call(&'static str, fn()),
}

/// Takes `NAME N` out of `words`, wherever it is (the root task may add
/// it from the boot line): `None` if it is not there, `Some(None)` if N is
/// missing or not a number.
pub fn take_option(words: &mut alloc::vec::Vec<&str>, name: &str) -> Option<Option<u16>> {
    let at = words.iter().position(|w| *w == name)?;
    let value = words.get(at + 1).and_then(|v| v.parse().ok());
    words.drain(at..(at + 2).min(words.len()));
    Some(value)
}

/// The test hook of a server's arguments after its own: `crash-after N`
/// or `hang-after N` (in the middle of the N-th file request, or the
/// first read after it), in the first instance only (restarted ones know
/// they are: `exo_rt::generation`).
pub fn hook<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<(u64, Hook)> {
    match (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some("crash-after"), Some(n)) if exo_rt::generation() == 0 => Some((n, Hook::Crash)),
        (Some("hang-after"), Some(n)) if exo_rt::generation() == 0 => Some((n, Hook::Hang)),
        _ => None,
    }
}

/// Serves `fs` with the file protocol on `ep` until `clients` have come
/// and gone (for ever without), as program `name`; the exit code.
pub fn serve(
    name: &'static str,
    fs: &dyn FileSystem,
    ep: Endpoint,
    clients: Option<u64>,
    crash_after: Option<(u64, Hook)>,
) -> i32 {
    println!("{name}: serving the file protocol");
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name, clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    let mut requests = 0u64;
    let handler = |msg: Option<&Message>| {
        let m = msg?;
        if m.words[0] == file::REQUEST {
            requests += 1;
            match crash_after {
                Some((n, hook)) if requests >= n && is_read(&mut sessions, m) => match hook {
                    Hook::Crash => {
                        println!("{name}: test hook: dying in the middle of request {requests}");
                        exo_rt::sys::exit(70);
                    }
                    Hook::Hang => {
                        println!("{name}: test hook: hanging in the middle of request {requests}");
                        loop {
                            exo_rt::sys::sleep(u64::MAX);
                        }
                    }
                    Hook::Call(what, f) => {
                        println!("{name}: test hook: {what} in the middle of request {requests}");
                        f();
                    }
                },
                _ => {}
            }
        }
        let answer = handle(fs, &mut sessions, m);
        // The last client gone: leave the image as unmounting would
        // (a machine powered off now finds it clean), before answering.
        // Programs that ended without detaching do not count.
        if m.words[0] == exo_protocols::session::DETACH && {
            sessions.prune_dead();
            sessions.iter_mut().next().is_none()
        } {
            if let Err((_, e)) = fs.sync() {
                println!("{name}: {e}");
            }
        }
        Some(answer)
    };
    match server::serve(ep, how, handler) {
        Ended::Served(gone) => {
            println!("{name}: {gone} client(s) served; stopping");
            0
        }
        Ended::Failed(_) => 1,
    }
}

/// True if `msg` carries a request that only reads (for the test hook).
fn is_read(sessions: &mut Sessions, msg: &Message) -> bool {
    let Ok(c) = sessions.get(msg.badge) else { return false };
    let len = (msg.words[1] as usize).min(c.buffer().len());
    matches!(
        Request::decode(&c.buffer()[..len]),
        Ok(Request::Read { .. }
            | Request::ReadShared { .. }
            | Request::ReadMany(_)
            | Request::Stat(_)
            | Request::ReadDir(_))
    )
}

/// One message: the answer words.
fn handle(fs: &dyn FileSystem, sessions: &mut Sessions, msg: &Message) -> [u64; 3] {
    match msg.words {
        [file::ATTACH, 0, 0] => session::answer(sessions.attach(msg).map(|s| (s.bytes(), 0))),
        [file::DETACH, 0, 0] => session::answer(sessions.detach(msg.badge).map(|()| (0, 0))),
        [file::REQUEST, len, 0] => {
            let c = match sessions.get(msg.badge) {
                Ok(c) => c,
                Err(s) => return [s as u64, 0, 0],
            };
            if len > c.bytes() {
                return [Status::BadRequest as u64, 0, 0];
            }
            // The client waits in its call while we use its buffer.
            let buf = c.buffer();
            let (response, skip) = match Request::decode(&buf[..len as usize]) {
                Ok(req) => {
                    let skip = match &req {
                        Request::ReadDirFrom { skip, .. } => Some(*skip),
                        _ => None,
                    };
                    (exo_fs_core::server::handle(fs, req, None), skip)
                }
                Err(e) => (Response::Error(ErrorKind::Invalid, format!("malformed request: {e}")), None),
            };
            let mut out = response.encode();
            // A directory read in parts, as many entries a part as fit.
            if let (true, Response::Dir(entries), Some(skip)) = (out.len() > buf.len(), response, skip) {
                out = file::dir_fitting(entries, skip, buf.len()).encode();
            }
            if out.len() > buf.len() {
                return [Status::TooLarge as u64, out.len() as u64, 0];
            }
            buf[..out.len()].copy_from_slice(&out);
            [Status::Ok as u64, out.len() as u64, 0]
        }
        _ => {
            if let (Some(cap), file::ATTACH) = (msg.cap, msg.words[0]) {
                let _ = caps::delete(cap); // a malformed ATTACH
            }
            [Status::BadRequest as u64, 0, 0]
        }
    }
}
