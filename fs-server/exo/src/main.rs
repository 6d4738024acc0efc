//! The file server as an ExoV6 process: one per disk, so that a hostile
//! image can only crash its own server.
//!
//! It reaches its disk through a block driver (the block protocol,
//! `exo_drivers::block`, on its first endpoint), finds the file system
//! there with the same code as the hosted server (`exo-fs-core`: ext2/3/4
//! read-only, FAT read-write with `rw`), and serves the file protocol over
//! IPC (`exo_fs_core::ipc`) on its second endpoint.
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
use alloc::vec::Vec;
use exo_drivers::block::{self, Request as BlockRequest, Status};
use exo_fs_core::backend::FileSystem;
use exo_fs_core::ipc;
use exo_fs_core::proto::{ErrorKind, Request, Response};
use exo_rt::abi::{map_flags, slot, FOREVER, PAGE_SIZE};
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

/// A client with its buffer mapped.
struct Client {
    badge: u64,
    /// Its buffer, mapped in its window (the capability is ours to drop).
    buffer: Mapping,
    window: usize,
    bytes: u64,
}

/// Serves the file protocol on `ep` until `clients` have come and gone.
fn serve(fs: &dyn FileSystem, ep: Endpoint, clients: Option<u64>) -> i32 {
    println!("fs-server: serving the file protocol");
    let mut attached: Vec<Client> = Vec::new();
    let mut gone = 0;
    let mut answer: Option<[u64; 3]> = None;
    loop {
        let msg = match answer.take() {
            None => ep.recv(None, FOREVER),
            Some(words) => ep.reply_recv(words, None, FOREVER),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                println!("fs-server: receive failed: {}", e.name());
                return 1;
            }
        };
        let (words, detached) = handle(fs, &mut attached, &msg);
        gone += detached as u64;
        if clients.is_some_and(|n| gone >= n) {
            let _ = caps::reply(words, None);
            println!("fs-server: {gone} client(s) served; stopping");
            return 0;
        }
        answer = Some(words);
    }
}

fn window_va(w: usize) -> u64 {
    CLIENT_VA + w as u64 * CLIENT_WINDOW
}

/// One message: the answer words, and whether a client detached.
fn handle(fs: &dyn FileSystem, attached: &mut Vec<Client>, msg: &Message) -> ([u64; 3], bool) {
    let client = attached.iter().position(|c| c.badge == msg.badge);
    if msg.words[0] != ipc::ATTACH {
        if let Some(cap) = msg.cap {
            let _ = caps::delete(cap); // not asked for: do not keep it
        }
    }
    match msg.words {
        [ipc::ATTACH, 0, 0] => {
            let Some(cap) = msg.cap else { return ([ipc::NOT_ATTACHED, 0, 0], false) };
            let mem = Memory::from_slot(cap);
            if let Some(i) = client {
                drop_client(attached.swap_remove(i));
            }
            let bytes = caps::info(cap).map(|i| i.pages * PAGE_SIZE).unwrap_or(0);
            let window = (0..MAX_CLIENTS).find(|w| attached.iter().all(|c| c.window != *w));
            let mapped = window
                .filter(|_| bytes > 0 && bytes <= CLIENT_WINDOW)
                .map(|w| (w, Mapping::new(mem, window_va(w), map_flags::READ | map_flags::WRITE)));
            match mapped {
                Some((window, Ok(buffer))) => {
                    attached.push(Client { badge: msg.badge, buffer, window, bytes });
                    ([ipc::OK, bytes, 0], false)
                }
                _ => {
                    let _ = caps::delete(cap);
                    ([ipc::BAD_BUFFER, 0, 0], false)
                }
            }
        }
        [ipc::DETACH, 0, 0] => match client {
            Some(i) => {
                drop_client(attached.swap_remove(i));
                ([ipc::OK, 0, 0], true)
            }
            None => ([ipc::NOT_ATTACHED, 0, 0], false),
        },
        [ipc::REQUEST, len, 0] => {
            let Some(c) = client.map(|i| &mut attached[i]) else { return ([ipc::NOT_ATTACHED, 0, 0], false) };
            if len > c.bytes {
                return ([ipc::BAD_REQUEST, 0, 0], false);
            }
            // The client waits in its call while we use its buffer.
            let buf = &mut c.buffer.as_mut_slice()[..c.bytes as usize];
            let response = match Request::decode(&buf[..len as usize]) {
                Ok(req) => exo_fs_core::server::handle(fs, req, None),
                Err(e) => Response::Error(ErrorKind::Invalid, format!("malformed request: {e}")),
            };
            let out = response.encode();
            if out.len() > buf.len() {
                return ([ipc::TOO_LARGE, out.len() as u64, 0], false);
            }
            buf[..out.len()].copy_from_slice(&out);
            ([ipc::OK, out.len() as u64, 0], false)
        }
        _ => ([ipc::BAD_REQUEST, 0, 0], false),
    }
}

fn drop_client(c: Client) {
    let mem = c.buffer.memory();
    drop(c.buffer); // unmapped
    let _ = caps::delete(mem.slot());
}
