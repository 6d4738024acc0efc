//! The file server as an ExoV6 process: one per disk, so that a hostile
//! image can only crash its own server.
//!
//! It reaches its disk through a block driver (the block protocol,
//! `exo_protocols::block`, on its first endpoint), finds the file system
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
use exo_protocols::block::{self, Request as BlockRequest, Status};
use exo_protocols::file::{self, ErrorKind, Request, Response};
use exo_protocols::session;
use exo_protocols::session::server::{self, Ended, Serve, Sessions};
use exo_rt::abi::{slot, FOREVER, PAGE_SIZE};
use exo_rt::caps::{self, Endpoint, Memory, Message, Untyped};
use exo_rt::mem::Mapping;
use exo_rt::sync::SpinLock;
use exo_rt::{println, sys};

exo_rt::entry!(main);

/// The block driver's endpoint, and this server's.
const BLOCK_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE;
const FILES_EP: u64 = exo_manifest::ENDPOINT_SLOT_BASE + 1;

/// Where the buffer shared with the block driver is mapped, and its size.
const BLOCK_BUF_VA: u64 = 0x50_0000_0000;
const BLOCK_BUF_PAGES: u64 = 32; // 128 KiB: the most one block request moves
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
    let disk = match Disk::attach(Endpoint::from_slot(BLOCK_EP), rw) {
        Ok(d) => d,
        Err(e) => {
            println!("fs-server: cannot reach the disk: {e}");
            return 1;
        }
    };
    let sectors = disk.sectors;
    let sandbox = format!(
        "ExoV6 process: disk through a block driver ({sectors} sectors), {}",
        if rw { "read-write" } else { "read-only" }
    );
    let fs = match exo_fs_core::backend::open(Arc::new(disk), None, Default::default(), &CLOCK, sandbox) {
        Ok(fs) => fs,
        Err(e) => {
            println!("fs-server: {e}");
            return 1;
        }
    };
    let info = fs.info();
    println!("fs-server: {} file system \"{}\" on the {}, {} bytes", info.fs, info.label, info.partition, info.size);
    let code = serve(&*fs, Endpoint::from_slot(FILES_EP), clients);
    drop(fs); // flushes what FAT still holds
              // Done with the disk: give the driver its buffer back.
    let _ = Endpoint::from_slot(BLOCK_EP).call(BlockRequest::Detach.encode(), None, FOREVER);
    code
}

/// The disk, as a rumpglue block device over the block protocol.
struct Disk {
    ep: Endpoint,
    sectors: u64,
    writable: bool,
    /// The buffer shared with the driver: one request at a time.
    buffer: SpinLock<Mapping>,
    /// Its memory capability, to attach it again to a restarted driver.
    memory: Memory,
}

/// How many times one block request is retried on a restarted driver.
const MAX_REATTACH: u32 = 4;

impl Disk {
    fn attach(ep: Endpoint, rw: bool) -> Result<Disk, &'static str> {
        let buffer = Mapping::alloc(Untyped::from_slot(slot::UNTYPED), BLOCK_BUF_PAGES, BLOCK_BUF_VA)
            .map_err(|_| "no memory for the buffer")?;
        let m = ep
            .call(BlockRequest::Attach.encode(), Some(buffer.memory().slot()), FOREVER)
            .map_err(|_| "the block driver does not answer")?;
        if Status::from_word(m.words[0]) != Some(Status::Ok) {
            return Err("the block driver refused the buffer");
        }
        let info =
            ep.call(BlockRequest::Info.encode(), None, FOREVER).map_err(|_| "the block driver does not answer")?;
        let read_only = info.words[2] != 0;
        let memory = buffer.memory();
        Ok(Disk { ep, sectors: m.words[1], writable: rw && !read_only, buffer: SpinLock::new(buffer), memory })
    }

    /// Runs `f` with the shared buffer held.
    /// (The driver writes the buffer only while we wait in a call.)
    fn locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(self.buffer.lock().as_mut_slice())
    }

    /// One request, retried on a driver the supervisor restarted (as
    /// MINIX 3's file servers retry block requests): a call the dead
    /// instance held fails with `Dead`, the new instance answers
    /// `NotAttached`; either way the buffer (still ours, its contents
    /// intact) is attached again and the request made again. Reads and
    /// whole-sector writes are idempotent, so a retry is safe.
    fn transfer(&self, r: BlockRequest) -> rumpglue::Result<()> {
        let reattach = || {
            let attached = self.ep.call(BlockRequest::Attach.encode(), Some(self.memory.slot()), FOREVER);
            let ok = attached.is_ok_and(|a| Status::from_word(a.words[0]) == Some(Status::Ok));
            if ok {
                println!("fs-server: the block driver was restarted: buffer attached again, request retried");
            }
            ok
        };
        let m = self
            .ep
            .call_across_restarts(r.encode(), Status::NotAttached as u64, MAX_REATTACH, reattach)
            .map_err(|_| rumpglue::Error::Io(rumpglue::errno::EIO))?;
        match Status::from_word(m.words[0]) {
            Some(Status::Ok) => Ok(()),
            Some(Status::OutOfRange) => Err(rumpglue::Error::OutOfRange),
            Some(Status::ReadOnly) => Err(rumpglue::Error::ReadOnly),
            _ => Err(rumpglue::Error::Io(rumpglue::errno::EIO)),
        }
    }

    /// Sectors `first..first + count` (at most the buffer) into the buffer.
    fn read_sectors(&self, first: u64, count: u64) -> rumpglue::Result<()> {
        self.transfer(BlockRequest::Read { sector: first, count })
    }
}

impl rumpglue::BlockDevice for Disk {
    fn size(&self) -> u64 {
        self.sectors * block::SECTOR
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> rumpglue::Result<()> {
        let end =
            offset.checked_add(out.len() as u64).filter(|e| *e <= self.size()).ok_or(rumpglue::Error::OutOfRange)?;
        self.locked(|buf| {
            let mut pos = offset;
            while pos < end {
                let first = pos / block::SECTOR;
                let last = (end - 1) / block::SECTOR;
                let count = (last - first + 1).min(BLOCK_BUF_PAGES * PAGE_SIZE / block::SECTOR);
                self.read_sectors(first, count)?;
                let skip = (pos - first * block::SECTOR) as usize;
                let n = ((count * block::SECTOR) as usize - skip).min((end - pos) as usize);
                let at = (pos - offset) as usize;
                out[at..at + n].copy_from_slice(&buf[skip..skip + n]);
                pos += n as u64;
            }
            Ok(())
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> rumpglue::Result<()> {
        if !self.writable {
            return Err(rumpglue::Error::ReadOnly);
        }
        let end =
            offset.checked_add(data.len() as u64).filter(|e| *e <= self.size()).ok_or(rumpglue::Error::OutOfRange)?;
        self.locked(|buf| {
            let mut pos = offset;
            while pos < end {
                let first = pos / block::SECTOR;
                let last = (end - 1) / block::SECTOR;
                let count = (last - first + 1).min(BLOCK_BUF_PAGES * PAGE_SIZE / block::SECTOR);
                let skip = (pos - first * block::SECTOR) as usize;
                let n = ((count * block::SECTOR) as usize - skip).min((end - pos) as usize);
                // Partial sectors at either end: read them first, so what
                // is not being written stays as it was.
                if skip != 0 || !n.is_multiple_of(block::SECTOR as usize) {
                    self.read_sectors(first, count)?;
                }
                let at = (pos - offset) as usize;
                buf[skip..skip + n].copy_from_slice(&data[at..at + n]);
                self.transfer(BlockRequest::Write { sector: first, count })?;
                pos += n as u64;
            }
            Ok(())
        })
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn flush(&self) -> rumpglue::Result<()> {
        Ok(()) // the driver writes through; nothing is held here
    }
}

/// The clock FAT stamps changes with. ExoV6 has no wall clock yet: times
/// count from 2000-01-01 plus the time since boot.
struct Clock;

static CLOCK: Clock = Clock;

impl rumpglue::Clock for Clock {
    fn monotonic_ns(&self) -> u64 {
        sys::clock()
    }
    fn wall(&self) -> (i64, u32) {
        let ns = sys::clock();
        (946_684_800 + (ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
    }
    fn sleep_ns(&self, ns: u64) {
        sys::sleep(ns);
    }
}

/// Serves the file protocol on `ep` until `clients` have come and gone.
fn serve(fs: &dyn FileSystem, ep: Endpoint, clients: Option<u64>) -> i32 {
    println!("fs-server: serving the file protocol");
    let mut sessions = Sessions::new(CLIENT_VA, CLIENT_WINDOW, MAX_CLIENTS, PAGE_SIZE);
    let how = Serve { name: "fs-server", clients, bound: None, timeout: FOREVER, takes_cap: &[] };
    match server::serve(ep, how, |msg| msg.map(|m| handle(fs, &mut sessions, m))) {
        Ended::Served(gone) => {
            println!("fs-server: {gone} client(s) served; stopping");
            0
        }
        Ended::Failed(_) => 1,
    }
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
