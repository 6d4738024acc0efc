//! The file server as an ExoV6 process: one per disk, so that a hostile
//! image can only crash its own server.
//!
//! It reaches its disk through a block driver (the block protocol on its
//! first endpoint, through rumpglue's block client, `rumpglue::exo`), finds the file system
//! there with the same code as the hosted server (`exo-fs-core`: ext2/3/4
//! read-only, FAT read-write with `rw`), and serves the file protocol
//! (`exo_protocols::file`) on its second endpoint, in the session every
//! service shares (`exo_protocols::session::server`).
//!
//! Arguments: `[rw] [serve N]`: `rw` allows changes (FAT only); `serve N`
//! stops after N clients have attached and detached (for tests; without
//! it, it serves for ever).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::sync::Arc;
use exo_fs_core::backend::FileSystem;
use exo_protocols::file::{self, ErrorKind, Request, Response, Status};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{FOREVER, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Message};
use exo_rt::println;
use rumpglue::exo::{self, BlockClient};

exo_rt::entry!(main);

/// The block driver's endpoint, and this server's.
const BLOCK_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE;
const FILES_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE + 1;

/// Where the buffer shared with the block driver is mapped.
const BLOCK_BUF_VA: u64 = 0x50_0000_0000;
/// Where client buffers are mapped: a 64 MiB window each.
const CLIENT_VA: u64 = 0x60_0000_0000;
const CLIENT_WINDOW: u64 = 64 << 20;
const MAX_CLIENTS: usize = 16;

fn main(args: &str) -> i32 {
    let mut words = args.split_whitespace().peekable();
    let rw = words.next_if_eq(&"rw").is_some();
    let clients = match (words.next(), words.next()) {
        (Some("serve"), Some(n)) => n.parse().ok(),
        _ => None,
    };
    // Test hooks: `crash-after N` dies (`hang-after N` stops answering
    // for good, as a deadlocked server would) in the middle of the N-th
    // file request (or the first read after it), with its client waiting
    // in its call, in the first instance only (restarted ones know they
    // are: `exo_rt::generation`).
    let crash_after = match (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) {
        (Some("crash-after"), Some(n)) if exo_rt::generation() == 0 => Some((n, Hook::Crash)),
        (Some("hang-after"), Some(n)) if exo_rt::generation() == 0 => Some((n, Hook::Hang)),
        _ => None,
    };
    let disk = match BlockClient::attach("fs-server", Endpoint::from_slot(BLOCK_EP), rw, BLOCK_BUF_VA) {
        Ok(d) => d,
        Err(e) => {
            println!("fs-server: cannot reach the disk: {e}");
            return 1;
        }
    };
    let sectors = disk.sectors();
    let sandbox = format!(
        "ExoV6 process: disk through a block driver ({sectors} sectors), {}",
        if rw { "read-write" } else { "read-only" }
    );
    let disk = Arc::new(disk);
    let fs = match exo_fs_core::backend::open(disk.clone(), None, Default::default(), &exo::CLOCK, sandbox) {
        Ok(fs) => fs,
        Err(e) => {
            println!("fs-server: {e}");
            return 1;
        }
    };
    let info = fs.info();
    println!("fs-server: {} file system \"{}\" on the {}, {} bytes", info.fs, info.label, info.partition, info.size);
    let code = serve(&*fs, Endpoint::from_slot(FILES_EP), clients, crash_after);
    drop(fs); // flushes what FAT still holds
              // Done with the disk: give the driver its buffer back.
    disk.detach();
    code
}

/// Serves the file protocol on `ep` until `clients` have come and gone.
/// What a test hook does.
#[derive(Clone, Copy)]
enum Hook {
    Crash,
    Hang,
}

fn serve(fs: &dyn FileSystem, ep: Endpoint, clients: Option<u64>, crash_after: Option<(u64, Hook)>) -> i32 {
    println!("fs-server: serving the file protocol");
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name: "fs-server", clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    let mut requests = 0u64;
    let handler = |msg: Option<&Message>| {
        let m = msg?;
        if m.words[0] == file::REQUEST {
            requests += 1;
            match crash_after {
                Some((n, hook)) if requests >= n && is_read(&mut sessions, m) => match hook {
                    Hook::Crash => {
                        println!("fs-server: test hook: dying in the middle of request {requests}");
                        exo_rt::sys::exit(70);
                    }
                    Hook::Hang => {
                        println!("fs-server: test hook: hanging in the middle of request {requests}");
                        loop {
                            exo_rt::sys::sleep(u64::MAX);
                        }
                    }
                },
                _ => {}
            }
        }
        Some(handle(fs, &mut sessions, m))
    };
    match server::serve(ep, how, handler) {
        Ended::Served(gone) => {
            println!("fs-server: {gone} client(s) served; stopping");
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
            let response = match Request::decode(&buf[..len as usize]) {
                Ok(req) => exo_fs_core::server::handle(fs, req, None),
                Err(e) => Response::Error(ErrorKind::Invalid, format!("malformed request: {e}")),
            };
            let out = response.encode();
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
